//! Moving values between the host and a backend, on every backend: a `write` is ordered after
//! the work recorded before it; `read_all` gives every tensor's values in order, after the
//! work recorded so far, appended to what its buffer holds (the gradient exchange of a
//! data-parallel step reads all of a model's gradients with it); `read_start`/`read_finish` read
//! while later work is recorded (its buckets).

mod common;

use common::{rng, uniform, upload};
use wgtrain::backend::{Backend, ReadTicket};

/// Work recorded before a `write` must see the old contents; work after it, the new.
fn check_write_orders_after_recorded_work<B: Backend>(b: &mut B) {
    let mut x = upload(b, 1, 4, &[1.0, 2.0, 3.0, 4.0]);
    let mut acc = b.zeros(1, 2).unwrap();
    b.sum_into(&x, &mut acc, 0).unwrap();
    b.write(&mut x, &[10.0, 20.0, 30.0, 40.0]).unwrap();
    b.sum_into(&x, &mut acc, 1).unwrap();
    assert_eq!(b.read(&acc).unwrap(), vec![10.0, 100.0]);
}
backend_test!(
    write_orders_after_recorded_work,
    check_write_orders_after_recorded_work
);

/// `read_all` is the tensors' reads one after another, appended to `out`, and sees the work
/// recorded before it; a larger read after a smaller one (the GPU's staging buffer grows)
/// and a read of no tensors are reads too.
fn check_read_all<B: Backend>(b: &mut B) {
    let mut r = rng(7);
    let shapes = [(1, 3), (17, 33), (2, 1), (64, 130)];
    let data: Vec<Vec<f32>> = shapes
        .iter()
        .map(|&(rows, cols)| uniform(&mut r, rows * cols, -1.0, 1.0))
        .collect();
    let tensors: Vec<B::Tensor> = shapes
        .iter()
        .zip(&data)
        .map(|(&(rows, cols), d)| upload(b, rows, cols, d))
        .collect();
    // Recorded work the read must wait for: the first tensor's sum into a fresh one.
    let mut acc = b.zeros(1, 1).unwrap();
    b.sum_into(&tensors[0], &mut acc, 0).unwrap();

    let mut out = vec![-7.0];
    b.read_all(&[&tensors[0]], &mut out).unwrap();
    assert_eq!(out[1..], data[0][..], "one small tensor");

    let mut out = vec![-7.0];
    let mut all: Vec<&B::Tensor> = tensors.iter().collect();
    all.push(&acc);
    b.read_all(&all, &mut out).unwrap();
    let mut want = vec![-7.0];
    for (t, d) in tensors.iter().zip(&data) {
        assert_eq!(b.read(t).unwrap(), *d);
        want.extend_from_slice(d);
    }
    let sum: f64 = data[0].iter().map(|&v| f64::from(v)).sum();
    let got_sum = *out.last().unwrap();
    assert!(
        (f64::from(got_sum) - sum).abs() < 1e-5,
        "the sum recorded before the read: {got_sum} vs {sum}"
    );
    assert_eq!(out[..out.len() - 1], want[..], "every tensor, in order");

    let before = out.clone();
    b.read_all(&[], &mut out).unwrap();
    assert_eq!(out, before, "a read of no tensors appends nothing");
}
backend_test!(read_all, check_read_all);

/// `read_start`/`read_finish`: a read started gives the values as they were when it started,
/// though the tensors are written and summed into after it; several reads may be under way
/// and be finished in any order; a ticket is ended once, on its backend.
fn check_read_start_finish<B: Backend>(b: &mut B) {
    let mut r = rng(11);
    let a_data = uniform(&mut r, 5 * 7, -1.0, 1.0);
    let c_data = uniform(&mut r, 40 * 33, -1.0, 1.0);
    let mut a = upload(b, 5, 7, &a_data);
    let c = upload(b, 40, 33, &c_data);
    let mut acc = b.zeros(1, 1).unwrap();
    // Work recorded before the first start, which it must see.
    b.sum_into(&c, &mut acc, 0).unwrap();

    let mut first = vec![-1.0];
    let t1 = b.read_start(&[&a, &acc], &mut first).unwrap();
    // Writes and work recorded while the first read is under way.
    let a_new: Vec<f32> = a_data.iter().map(|v| v * 3.0 + 1.0).collect();
    b.write(&mut a, &a_new).unwrap();
    b.sum_into(&a, &mut acc, 0).unwrap();
    let mut second = Vec::new();
    let t2 = b.read_start(&[&c, &a, &acc], &mut second).unwrap();
    b.write(&mut a, &a_data).unwrap();

    // Finished out of order: the second first.
    b.read_finish(t2, &mut second).unwrap();
    b.read_finish(t1, &mut first).unwrap();

    let c_sum: f64 = c_data.iter().map(|&v| f64::from(v)).sum();
    let a_sum: f64 = a_new.iter().map(|&v| f64::from(v)).sum();
    assert_eq!(first.len(), 1 + a_data.len() + 1);
    assert_eq!(first[0], -1.0, "appended to what the buffer held");
    assert_eq!(
        first[1..=a_data.len()],
        a_data[..],
        "a, as at the first start"
    );
    let got = f64::from(first[a_data.len() + 1]);
    assert!(
        (got - c_sum).abs() < 1e-4,
        "acc at the first start: {got} vs {c_sum}"
    );

    assert_eq!(second.len(), c_data.len() + a_new.len() + 1);
    assert_eq!(second[..c_data.len()], c_data[..], "c");
    assert_eq!(
        second[c_data.len()..c_data.len() + a_new.len()],
        a_new[..],
        "a as written after the first start, not as written after the second"
    );
    let got = f64::from(*second.last().unwrap());
    assert!(
        (got - (c_sum + a_sum)).abs() < 1e-3,
        "acc with the sum recorded between the starts: {got} vs {}",
        c_sum + a_sum
    );
    assert_eq!(b.read(&a).unwrap(), a_data, "the last write is in place");

    // A ticket this backend did not give (or one ended already) is an error, not a panic.
    let mut v = Vec::new();
    let foreign = b.read_finish(ReadTicket::on_device(1000), &mut v);
    assert!(foreign.is_err() && v.is_empty(), "{foreign:?}");
}
backend_test!(read_start_finish, check_read_start_finish);
