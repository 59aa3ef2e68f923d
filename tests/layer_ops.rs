//! The ops of the layers beyond Dense (dropout, batch normalization and its moving averages,
//! PReLU, maxout, the weight penalties): the generator against its published known answers,
//! values worked by hand, every op on both backends against the reference functions on the
//! named shapes (dropout exactly: the same masks), and every backward of the reference
//! against finite differences of its forward.

// Finite differences index the analytic gradient and the input alike.
#![allow(clippy::needless_range_loop)]

mod common;

use common::{assert_close, rng, uniform, upload, ROW_SHAPES};
use rand::Rng;
use wgtrain::backend::{reference, Backend, DropoutMask, GuardSlots};
use wgtrain::tolerance::Tolerance;

/// Column sums in f32 against the reference's f64, and a square root.
const REDUCTION: Tolerance = Tolerance::new(1e-5, 1e-4);

#[test]
fn threefry_matches_random123_known_answers() {
    // Random123's kat_vectors for threefry2x32 with 20 rounds: counter, key, result.
    let cases = [
        ([0, 0], [0, 0], [0x6b20_0159, 0x99ba_4efe]),
        (
            [0xffff_ffff, 0xffff_ffff],
            [0xffff_ffff, 0xffff_ffff],
            [0x1cb9_96fc, 0xbb00_2be7],
        ),
        (
            [0x243f_6a88, 0x85a3_08d3],
            [0x1319_8a2e, 0x0370_7344],
            [0xc492_3a9c, 0x483d_f7a0],
        ),
    ];
    for (ctr, key, want) in cases {
        assert_eq!(
            reference::threefry2x32(ctr, key),
            want,
            "counter {ctr:x?} key {key:x?}"
        );
    }
}

#[test]
fn dropout_drops_about_its_rate_and_scales_the_rest() {
    let x = vec![1.0f32; 100_000];
    let (mut y, mut keep) = (vec![0.0; x.len()], vec![0.0; x.len()]);
    for rate in [0.0, 0.2, 0.5, 0.9] {
        let mask = DropoutMask {
            seed: 7,
            layer: 1,
            step: 3,
            rate,
        };
        reference::dropout_forward(&x, &mut y, &mut keep, mask);
        assert_eq!(y, keep, "x is all ones");
        let kept = y.iter().filter(|&&v| v != 0.0).count() as f64 / x.len() as f64;
        assert!(
            (kept - (1.0 - rate as f64)).abs() < 0.01,
            "rate {rate}: kept {kept}"
        );
        assert!(
            y.iter().all(|&v| v == 0.0 || v == mask.scale()),
            "rate {rate}"
        );
    }
    // Another step, layer or seed draws another mask.
    let base = DropoutMask {
        seed: 7,
        layer: 1,
        step: 3,
        rate: 0.5,
    };
    let draw = |m: DropoutMask| {
        (0..64)
            .map(|i| reference::dropout_keeps(m, i))
            .collect::<Vec<_>>()
    };
    for other in [
        DropoutMask { step: 4, ..base },
        DropoutMask { layer: 2, ..base },
        DropoutMask { seed: 8, ..base },
    ] {
        assert_ne!(draw(base), draw(other), "{other:?}");
    }
}

#[test]
fn batchnorm_by_hand() {
    // One column [1, 2, 3, 4]: mean 2.5, biased variance 1.25; gamma 2, beta 0.5, ε 1e-3.
    let x = [1.0f32, 2.0, 3.0, 4.0];
    let (mut mean, mut var) = ([0.0f32], [0.0f32]);
    reference::batchnorm_stats(&x, &mut mean, &mut var, 1);
    assert_eq!((mean[0], var[0]), (2.5, 1.25));
    let mut y = [0.0f32; 4];
    reference::batchnorm_forward(&x, &mean, &var, &[2.0], &[0.5], 1e-3, &mut y, 1);
    let s = (1.25f64 + 1e-3).sqrt();
    for (got, xi) in y.iter().zip(x) {
        let want = 2.0 * (xi as f64 - 2.5) / s + 0.5;
        assert!((*got as f64 - want).abs() < 1e-6, "{got} vs {want}");
    }
    // Inference with moving statistics mean 0, variance 1 (the initial ones): y ≈ 2x + 0.5.
    reference::batchnorm_forward(&x, &[0.0], &[1.0], &[2.0], &[0.5], 1e-3, &mut y, 1);
    let want = 2.0 * 3.0 / (1.0f64 + 1e-3).sqrt() + 0.5;
    assert!((y[2] as f64 - want).abs() < 1e-6);
    // A batch of one: variance 0, ε keeps it finite, the output is beta.
    reference::batchnorm_stats(&[5.0], &mut mean, &mut var, 1);
    reference::batchnorm_forward(&[5.0], &mean, &var, &[2.0], &[0.5], 1e-3, &mut y[..1], 1);
    assert_eq!((var[0], y[0]), (0.0, 0.5));
    // Keras' moving average: 0.99 · 1 + 0.01 · 3.
    let mut moving = [1.0f32];
    reference::moving_average(0.99, &mut moving, &[3.0]);
    assert!((moving[0] - 1.02).abs() < 1e-6);
}

fn check_dropout<B: Backend>(b: &mut B) {
    let mut r = rng(41);
    for &(rows, cols, why) in ROW_SHAPES {
        for rate in [0.0, 0.3, 0.75] {
            let x_data = uniform(&mut r, rows * cols, -2.0, 2.0);
            let mask = DropoutMask {
                seed: 0x1234_5678_9abc,
                layer: 3,
                step: 17,
                rate,
            };
            let x = upload(b, rows, cols, &x_data);
            let (mut y, mut keep) = (b.zeros(rows, cols).unwrap(), b.zeros(rows, cols).unwrap());
            b.dropout(&x, mask, &mut y, &mut keep).unwrap();
            let (mut want, mut want_keep) = (vec![0.0; x_data.len()], vec![0.0; x_data.len()]);
            reference::dropout_forward(&x_data, &mut want, &mut want_keep, mask);
            let what = format!("dropout rate {rate} on [{rows}, {cols}] ({why})");
            assert_eq!(
                b.read(&keep).unwrap(),
                want_keep,
                "{what}: the masks differ"
            );
            assert_eq!(b.read(&y).unwrap(), want, "{what}: the outputs differ");
            // The backward pass, dy ⊙ keep, exactly too.
            let mut dx = b.zeros(rows, cols).unwrap();
            b.multiply(&x, &keep, &mut dx).unwrap();
            let mut want_dx = vec![0.0; x_data.len()];
            reference::multiply(&x_data, &want_keep, &mut want_dx);
            assert_eq!(
                b.read(&dx).unwrap(),
                want_dx,
                "{what}: the backward differs"
            );
        }
    }
}
backend_test!(dropout_same_masks, check_dropout);

fn check_batchnorm<B: Backend>(b: &mut B) {
    let mut r = rng(42);
    for &(rows, cols, why) in ROW_SHAPES {
        let what = format!("[{rows}, {cols}] ({why})");
        let x_data = uniform(&mut r, rows * cols, -3.0, 3.0);
        let gamma_data = uniform(&mut r, cols, 0.5, 1.5);
        let beta_data = uniform(&mut r, cols, -0.5, 0.5);
        let dy_data = uniform(&mut r, rows * cols, -1.0, 1.0);
        let x = upload(b, rows, cols, &x_data);
        let (gamma, beta) = (
            upload(b, 1, cols, &gamma_data),
            upload(b, 1, cols, &beta_data),
        );
        let dy = upload(b, rows, cols, &dy_data);
        let (mut mean, mut var) = (b.zeros(1, cols).unwrap(), b.zeros(1, cols).unwrap());
        b.batchnorm_stats(&x, &mut mean, &mut var).unwrap();
        let (mut want_mean, mut want_var) = (vec![0.0; cols], vec![0.0; cols]);
        reference::batchnorm_stats(&x_data, &mut want_mean, &mut want_var, cols);
        assert_close(
            &format!("mean {what}"),
            REDUCTION,
            &b.read(&mean).unwrap(),
            &want_mean,
        );
        assert_close(
            &format!("var {what}"),
            REDUCTION,
            &b.read(&var).unwrap(),
            &want_var,
        );

        let mut y = b.zeros(rows, cols).unwrap();
        b.batchnorm_forward(&x, [&mean, &var], [&gamma, &beta], 1e-3, &mut y)
            .unwrap();
        let mut want_y = vec![0.0; rows * cols];
        reference::batchnorm_forward(
            &x_data,
            &want_mean,
            &want_var,
            &gamma_data,
            &beta_data,
            1e-3,
            &mut want_y,
            cols,
        );
        assert_close(
            &format!("forward {what}"),
            REDUCTION,
            &b.read(&y).unwrap(),
            &want_y,
        );

        let mut dx = b.zeros(rows, cols).unwrap();
        let (mut dgamma, mut dbeta) = (b.zeros(1, cols).unwrap(), b.zeros(1, cols).unwrap());
        b.batchnorm_backward(
            &x,
            [&mean, &var],
            &gamma,
            &dy,
            1e-3,
            &mut dx,
            [&mut dgamma, &mut dbeta],
        )
        .unwrap();
        let mut want_dx = vec![0.0; rows * cols];
        let (mut want_dg, mut want_db) = (vec![0.0; cols], vec![0.0; cols]);
        reference::batchnorm_backward(
            &x_data,
            &want_mean,
            &want_var,
            &gamma_data,
            &dy_data,
            1e-3,
            &mut want_dx,
            &mut want_dg,
            &mut want_db,
            cols,
        );
        // dx is a difference of sums: its error scales with the row count, not its size.
        let tol = Tolerance::new(1e-5 * (rows as f32).sqrt() * 4.0, 1e-3);
        assert_close(&format!("dx {what}"), tol, &b.read(&dx).unwrap(), &want_dx);
        assert_close(
            &format!("dgamma {what}"),
            tol,
            &b.read(&dgamma).unwrap(),
            &want_dg,
        );
        assert_close(
            &format!("dbeta {what}"),
            tol,
            &b.read(&dbeta).unwrap(),
            &want_db,
        );
    }
}
backend_test!(batchnorm, check_batchnorm);

/// The moving averages over a group in one pass, in place and guarded: a guard whose loss is
/// not finite writes nothing and raises its flag.
fn check_moving_average<B: Backend>(b: &mut B) {
    let mut r = rng(43);
    let shapes = [[1, 3], [1, 3], [1, 70], [1, 70]];
    let start: Vec<Vec<f32>> = shapes
        .iter()
        .map(|s| uniform(&mut r, s[1], 0.0, 2.0))
        .collect();
    let batch_data: Vec<Vec<f32>> = shapes
        .iter()
        .map(|s| uniform(&mut r, s[1], 0.0, 2.0))
        .collect();
    let mut moving = b.zeros_group(&shapes).unwrap();
    let mut batch = b.zeros_group(&shapes).unwrap();
    for (t, v) in moving
        .iter_mut()
        .zip(&start)
        .chain(batch.iter_mut().zip(&batch_data))
    {
        b.write(t, v).unwrap();
    }
    b.moving_average_all(0.9, 1, &mut moving, &batch, None)
        .unwrap();
    for (j, t) in moving.iter().enumerate() {
        let mut want = start[j].clone();
        reference::moving_average(0.9, &mut want, &batch_data[j]);
        assert_close(
            &format!("moving {j}"),
            REDUCTION,
            &b.read(t).unwrap(),
            &want,
        );
    }
    // Guarded: the outputs get the update, the inputs stay; then a NaN loss stops the next.
    let slots = GuardSlots::after(0, 1);
    let mut acc = b.zeros(1, 1 + GuardSlots::COUNT).unwrap();
    let mut out = b.zeros_group(&shapes).unwrap();
    let before: Vec<Vec<f32>> = moving.iter().map(|t| b.read(t).unwrap()).collect();
    let guard = wgtrain::backend::Guard {
        acc: &mut acc,
        slots,
        params_out: &mut out,
        state_out: &mut [],
    };
    b.moving_average_all(0.5, 2, &mut moving, &batch, Some(guard))
        .unwrap();
    for j in 0..shapes.len() {
        assert_eq!(
            b.read(&moving[j]).unwrap(),
            before[j],
            "guarded input {j} changed"
        );
        let mut want = before[j].clone();
        reference::moving_average(0.5, &mut want, &batch_data[j]);
        assert_close(
            &format!("guarded {j}"),
            REDUCTION,
            &b.read(&out[j]).unwrap(),
            &want,
        );
    }
    let acc_now = b.read(&acc).unwrap();
    assert!(!slots.tripped(&acc_now));
    assert_eq!(slots.last_step(&acc_now), Some(2));
    b.write(&mut acc, &[f32::NAN, 0.0, 0.0, 0.0]).unwrap();
    let written: Vec<Vec<f32>> = out.iter().map(|t| b.read(t).unwrap()).collect();
    let guard = wgtrain::backend::Guard {
        acc: &mut acc,
        slots,
        params_out: &mut out,
        state_out: &mut [],
    };
    b.moving_average_all(0.5, 3, &mut moving, &batch, Some(guard))
        .unwrap();
    assert!(
        slots.tripped(&b.read(&acc).unwrap()),
        "a NaN loss raises the flag"
    );
    for j in 0..shapes.len() {
        assert_eq!(
            b.read(&out[j]).unwrap(),
            written[j],
            "a stopped update wrote {j}"
        );
    }
}
backend_test!(moving_average, check_moving_average);

fn check_prelu<B: Backend>(b: &mut B) {
    let mut r = rng(44);
    for &(rows, cols, why) in ROW_SHAPES {
        let what = format!("[{rows}, {cols}] ({why})");
        let mut x_data = uniform(&mut r, rows * cols, -2.0, 2.0);
        x_data[0] = 0.0; // the kink: x = 0 takes the negative side, as Keras
        let alpha_data = uniform(&mut r, cols, -0.5, 0.5);
        let dy_data = uniform(&mut r, rows * cols, -1.0, 1.0);
        let x = upload(b, rows, cols, &x_data);
        let alpha = upload(b, 1, cols, &alpha_data);
        let dy = upload(b, rows, cols, &dy_data);
        let mut y = b.zeros(rows, cols).unwrap();
        b.prelu_forward(&x, &alpha, &mut y).unwrap();
        let mut want = vec![0.0; rows * cols];
        reference::prelu_forward(&x_data, &alpha_data, &mut want, cols);
        assert_close(
            &format!("prelu {what}"),
            REDUCTION,
            &b.read(&y).unwrap(),
            &want,
        );
        let (mut dx, mut da) = (b.zeros(rows, cols).unwrap(), b.zeros(1, cols).unwrap());
        b.prelu_backward(&x, &alpha, &dy, &mut dx, &mut da).unwrap();
        let (mut want_dx, mut want_da) = (vec![0.0; rows * cols], vec![0.0; cols]);
        reference::prelu_backward(
            &x_data,
            &alpha_data,
            &dy_data,
            &mut want_dx,
            &mut want_da,
            cols,
        );
        assert_close(
            &format!("prelu dx {what}"),
            REDUCTION,
            &b.read(&dx).unwrap(),
            &want_dx,
        );
        assert_close(
            &format!("prelu dalpha {what}"),
            REDUCTION,
            &b.read(&da).unwrap(),
            &want_da,
        );
    }
}
backend_test!(prelu, check_prelu);

fn check_maxout<B: Backend>(b: &mut B) {
    let mut r = rng(45);
    for &(rows, units, why) in ROW_SHAPES {
        for pieces in [2, 3, 5] {
            let what = format!("[{rows}, {units}] × {pieces} pieces ({why})");
            let cols = units * pieces;
            let mut z_data = uniform(&mut r, rows * cols, -2.0, 2.0);
            // A tie: the gradient goes to the first piece.
            z_data[1] = z_data[0];
            let dy_data = uniform(&mut r, rows * units, -1.0, 1.0);
            let z = upload(b, rows, cols, &z_data);
            let dy = upload(b, rows, units, &dy_data);
            let mut y = b.zeros(rows, units).unwrap();
            b.maxout_forward(&z, pieces, &mut y).unwrap();
            let mut want = vec![0.0; rows * units];
            reference::maxout_forward(&z_data, &mut want, units, pieces);
            assert_eq!(b.read(&y).unwrap(), want, "maxout {what}");
            let mut dz = b.zeros(rows, cols).unwrap();
            b.maxout_backward(&z, pieces, &dy, &mut dz).unwrap();
            let mut want_dz = vec![0.0; rows * cols];
            reference::maxout_backward(&z_data, &dy_data, &mut want_dz, units, pieces);
            assert_eq!(b.read(&dz).unwrap(), want_dz, "maxout backward {what}");
        }
    }
}
backend_test!(maxout, check_maxout);

fn check_penalty<B: Backend>(b: &mut B) {
    let mut r = rng(46);
    for &(rows, cols, why) in ROW_SHAPES.iter().chain(common::SUM_SHAPES) {
        let what = format!("[{rows}, {cols}] ({why})");
        let mut w_data = uniform(&mut r, rows * cols, -1.0, 1.0);
        w_data[0] = 0.0; // sign(0) = 0
        let g_data = uniform(&mut r, rows * cols, -1.0, 1.0);
        let w = upload(b, rows, cols, &w_data);
        for (l1, l2) in [(0.01, 0.0), (0.0, 0.001), (0.003, 0.02)] {
            let mut acc = b.zeros(1, 3).unwrap();
            b.penalty_into(&w, l1, l2, 32.0, &mut acc, 1).unwrap();
            let want = (reference::penalty(&w_data, l1, l2) * 32.0) as f32;
            let got = b.read(&acc).unwrap();
            assert_close(
                &format!("penalty {what}"),
                REDUCTION,
                &got,
                &[0.0, want, 0.0],
            );
            let mut g = upload(b, rows, cols, &g_data);
            b.penalty_backward(&w, l1, l2, &mut g).unwrap();
            let mut want_g = g_data.clone();
            reference::penalty_backward(&w_data, &mut want_g, l1, l2);
            assert_close(
                &format!("penalty grad {what}"),
                REDUCTION,
                &b.read(&g).unwrap(),
                &want_g,
            );
        }
    }
}
backend_test!(penalty, check_penalty);

#[test]
fn bad_arguments_are_errors_on_every_backend() {
    fn check<B: Backend>(b: &mut B) {
        let x = b.zeros(2, 3).unwrap();
        let mut y = b.zeros(2, 3).unwrap();
        let mask = DropoutMask {
            seed: 0,
            layer: 0,
            step: 1,
            rate: 1.0,
        };
        let mut keep = b.zeros(2, 3).unwrap();
        assert!(b.dropout(&x, mask, &mut y, &mut keep).is_err(), "rate 1");
        let mut y2 = b.zeros(2, 2).unwrap();
        assert!(
            b.maxout_forward(&x, 2, &mut y2).is_err(),
            "3 columns are not 2 × 2"
        );
        let w = b.zeros(1, 3).unwrap();
        let mut acc = b.zeros(1, 1).unwrap();
        assert!(
            b.penalty_into(&w, -1.0, 0.0, 1.0, &mut acc, 0).is_err(),
            "l1 < 0"
        );
        let v = b.zeros(1, 3).unwrap();
        assert!(
            b.batchnorm_forward(&x, [&v, &v], [&v, &v], 0.0, &mut y)
                .is_err(),
            "ε = 0"
        );
    }
    check(&mut reference::ReferenceBackend::new());
    check(&mut common::cpu());
    if let Some(mut g) = common::gpu() {
        check(&mut g);
    }
}

// ---------------------------------------------------------------------------------------
// the reference's backwards against finite differences of its forwards

use common::finite::{assert_grad, fd, weighted};

#[test]
fn batchnorm_backward_is_the_gradient_through_the_batch_statistics() {
    let mut r = common::rng(50);
    let (rows, cols) = (5, 3);
    let x: Vec<f32> = uniform(&mut r, rows * cols, -2.0, 2.0);
    let gamma = uniform(&mut r, cols, 0.5, 1.5);
    let beta = uniform(&mut r, cols, -0.5, 0.5);
    let w: Vec<f64> = (0..rows * cols)
        .map(|_| r.random_range(-1.0..1.0))
        .collect();
    let eps = 1e-3;
    // L = Σ w ⊙ BN_train(x; gamma, beta): the statistics are recomputed from x each time.
    let loss = |x: &[f32], gamma: &[f32], beta: &[f32]| {
        let (mut m, mut v) = (vec![0.0; cols], vec![0.0; cols]);
        reference::batchnorm_stats(x, &mut m, &mut v, cols);
        let mut y = vec![0.0; x.len()];
        reference::batchnorm_forward(x, &m, &v, gamma, beta, eps, &mut y, cols);
        weighted(&y, &w)
    };
    let dy: Vec<f32> = w.iter().map(|&v| v as f32).collect();
    let (mut m, mut v) = (vec![0.0; cols], vec![0.0; cols]);
    reference::batchnorm_stats(&x, &mut m, &mut v, cols);
    let (mut dx, mut dg, mut db) = (vec![0.0; x.len()], vec![0.0; cols], vec![0.0; cols]);
    reference::batchnorm_backward(
        &x, &m, &v, &gamma, &dy, eps, &mut dx, &mut dg, &mut db, cols,
    );
    for i in 0..x.len() {
        assert_grad(
            &format!("dx[{i}]"),
            dx[i],
            fd(&x, i, |x| loss(x, &gamma, &beta)),
        );
    }
    for c in 0..cols {
        assert_grad(
            &format!("dgamma[{c}]"),
            dg[c],
            fd(&gamma, c, |g| loss(&x, g, &beta)),
        );
        assert_grad(
            &format!("dbeta[{c}]"),
            db[c],
            fd(&beta, c, |b| loss(&x, &gamma, b)),
        );
    }
}

#[test]
fn prelu_backward_is_the_gradient() {
    let mut r = common::rng(51);
    let (rows, cols) = (4, 3);
    // Away from the kink at 0 by more than the step.
    let x: Vec<f32> = uniform(&mut r, rows * cols, -2.0, 2.0)
        .into_iter()
        .map(|v| if v.abs() < 0.1 { v + 0.3 } else { v })
        .collect();
    let alpha = uniform(&mut r, cols, -0.5, 0.5);
    let w: Vec<f64> = (0..rows * cols)
        .map(|_| r.random_range(-1.0..1.0))
        .collect();
    let loss = |x: &[f32], a: &[f32]| {
        let mut y = vec![0.0; x.len()];
        reference::prelu_forward(x, a, &mut y, cols);
        weighted(&y, &w)
    };
    let dy: Vec<f32> = w.iter().map(|&v| v as f32).collect();
    let (mut dx, mut da) = (vec![0.0; x.len()], vec![0.0; cols]);
    reference::prelu_backward(&x, &alpha, &dy, &mut dx, &mut da, cols);
    for i in 0..x.len() {
        assert_grad(&format!("dx[{i}]"), dx[i], fd(&x, i, |x| loss(x, &alpha)));
    }
    for c in 0..cols {
        assert_grad(
            &format!("dalpha[{c}]"),
            da[c],
            fd(&alpha, c, |a| loss(&x, a)),
        );
    }
}

#[test]
fn maxout_backward_is_the_gradient() {
    let mut r = common::rng(52);
    let (rows, units, pieces) = (3, 4, 3);
    // Pieces apart by more than the step, so that no winner changes.
    let z: Vec<f32> = (0..rows * units * pieces)
        .map(|i| (i % pieces) as f32 * 0.5 + r.random_range(-0.2f32..0.2) + (i / pieces) as f32)
        .collect();
    let w: Vec<f64> = (0..rows * units)
        .map(|_| r.random_range(-1.0..1.0))
        .collect();
    let loss = |z: &[f32]| {
        let mut y = vec![0.0; rows * units];
        reference::maxout_forward(z, &mut y, units, pieces);
        weighted(&y, &w)
    };
    let dy: Vec<f32> = w.iter().map(|&v| v as f32).collect();
    let mut dz = vec![0.0; z.len()];
    reference::maxout_backward(&z, &dy, &mut dz, units, pieces);
    for i in 0..z.len() {
        assert_grad(&format!("dz[{i}]"), dz[i], fd(&z, i, loss));
    }
}

#[test]
fn penalty_backward_is_the_gradient() {
    let mut r = common::rng(53);
    let w: Vec<f32> = uniform(&mut r, 20, -1.0, 1.0)
        .into_iter()
        .map(|v| if v.abs() < 0.05 { v + 0.2 } else { v })
        .collect();
    let (l1, l2) = (0.03, 0.2);
    let mut g = vec![0.0; w.len()];
    reference::penalty_backward(&w, &mut g, l1, l2);
    for i in 0..w.len() {
        assert_grad(
            &format!("dw[{i}]"),
            g[i],
            fd(&w, i, |w| reference::penalty(w, l1, l2)),
        );
    }
}

#[test]
fn dropout_backward_is_its_forward() {
    // y = x ⊙ keep is linear in x: its gradient is dy ⊙ keep.
    let mask = DropoutMask {
        seed: 3,
        layer: 0,
        step: 9,
        rate: 0.4,
    };
    let mut r = common::rng(54);
    let x = uniform(&mut r, 30, -1.0, 1.0);
    let w: Vec<f64> = (0..30).map(|_| r.random_range(-1.0..1.0)).collect();
    let dy: Vec<f32> = w.iter().map(|&v| v as f32).collect();
    let (mut y, mut keep, mut dx) = (vec![0.0; 30], vec![0.0; 30], vec![0.0; 30]);
    reference::dropout_forward(&x, &mut y, &mut keep, mask);
    reference::multiply(&dy, &keep, &mut dx);
    let loss = |x: &[f32]| {
        let (mut y, mut keep) = (vec![0.0; 30], vec![0.0; 30]);
        reference::dropout_forward(x, &mut y, &mut keep, mask);
        weighted(&y, &w)
    };
    for i in 0..30 {
        assert_grad(&format!("dx[{i}]"), dx[i], fd(&x, i, loss));
    }
}

// ---------------------------------------------------------------------------------------
// the activations that complete the course's sheet

#[test]
fn selu_gaussian_soboleva_and_the_binary_step_by_hand() {
    use wgtrain::backend::Activation;
    let f = reference::activation_f64;
    // SELU: λ z above 0, λ α (e^z - 1) below; λ α ≈ 1.7581 is its floor.
    assert!((f(Activation::Selu, 2.0) - 2.101_401_974_710_961).abs() < 1e-12);
    assert!((f(Activation::Selu, -1.0) - (-1.111_330_737_812_562_6)).abs() < 1e-12);
    assert!((f(Activation::Selu, -50.0) + 1.758_099_340_847_376_8).abs() < 1e-9);
    // The Gaussian: 1 at 0, e^-1 at ±1.
    assert_eq!(f(Activation::Gaussian, 0.0), 1.0);
    assert!((f(Activation::Gaussian, -1.0) - (-1.0f64).exp()).abs() < 1e-15);
    // Soboleva with a = b = c = d = 1 is tanh; with (2, 1, 1, 1) at z = 1:
    // (e² - e⁻¹) / (e + e⁻¹).
    let tanh_like = Activation::Soboleva {
        a: 1.0,
        b: 1.0,
        c: 1.0,
        d: 1.0,
    };
    for z in [-3.0, -0.5, 0.0, 0.7, 4.0] {
        assert!((f(tanh_like, z) - f64::tanh(z)).abs() < 1e-12, "at {z}");
    }
    let s = Activation::Soboleva {
        a: 2.0,
        b: 1.0,
        c: 1.0,
        d: 1.0,
    };
    let e = std::f64::consts::E;
    let want = (e * e - 1.0 / e) / (e + 1.0 / e);
    assert!((f(s, 1.0) - want).abs() < 1e-12);
    // Far out it stays finite where the quotient is: tanh at ±100.
    assert_eq!(f(tanh_like, 100.0), 1.0);
    assert_eq!(f(tanh_like, -100.0), -1.0);
    // The binary step: 1 from 0 up; its derivative is 0 (nothing to descend).
    assert_eq!(f(Activation::BinaryStep, 0.0), 1.0);
    assert_eq!(f(Activation::BinaryStep, -1e-9), 0.0);
    assert_eq!(
        reference::activation_derivative_f64(Activation::BinaryStep, 0.3, 1.0),
        0.0
    );
}

#[test]
fn soboleva_derivative_with_its_own_parameters() {
    use wgtrain::backend::Activation;
    let act = Activation::Soboleva {
        a: 0.7,
        b: 1.3,
        c: 0.4,
        d: 2.1,
    };
    for z in [-8.0, -2.0, -0.4, 0.3, 1.7, 9.0] {
        let h = 1e-6;
        let numeric = (reference::activation_f64(act, z + h)
            - reference::activation_f64(act, z - h))
            / (2.0 * h);
        let analytic =
            reference::activation_derivative_f64(act, z, reference::activation_f64(act, z));
        assert!(
            (analytic - numeric).abs() < 1e-6 * (1.0 + numeric.abs()),
            "at {z}: {analytic} vs {numeric}"
        );
    }
}

/// The new activations on both backends with parameters other than the defaults and inputs
/// far out (overflow in the naive forms), forward and backward.
fn check_new_activations<B: Backend>(b: &mut B) {
    use wgtrain::backend::Activation;
    let mut r = rng(47);
    let acts = [
        Activation::Selu,
        Activation::Gaussian,
        Activation::BinaryStep,
        Activation::Soboleva {
            a: 0.7,
            b: 1.3,
            c: 0.4,
            d: 2.1,
        },
        Activation::Soboleva {
            a: 1.0,
            b: 1.0,
            c: 1.0,
            d: 1.0,
        },
    ];
    let (rows, cols) = (7, 33);
    let mut z_data = uniform(&mut r, rows * cols, -6.0, 6.0);
    z_data[..4].copy_from_slice(&[-80.0, 80.0, 0.0, -0.0]);
    let da_data = uniform(&mut r, rows * cols, -1.0, 1.0);
    for act in acts {
        let z = upload(b, rows, cols, &z_data);
        let da = upload(b, rows, cols, &da_data);
        let (mut a, mut dz) = (b.zeros(rows, cols).unwrap(), b.zeros(rows, cols).unwrap());
        b.activation(act, &z, &mut a).unwrap();
        let mut want = vec![0.0; rows * cols];
        reference::activation_forward(act, &z_data, &mut want, cols);
        let got = b.read(&a).unwrap();
        let tol = Tolerance::new(1e-5, 1e-4);
        assert_close(&format!("{} forward", act.name()), tol, &got, &want);
        b.activation_backward(act, &z, &a, &da, &mut dz).unwrap();
        let mut want_dz = vec![0.0; rows * cols];
        reference::activation_backward(act, &z_data, &want, &da_data, &mut want_dz, cols);
        assert_close(
            &format!("{} backward", act.name()),
            tol,
            &b.read(&dz).unwrap(),
            &want_dz,
        );
    }
}
backend_test!(new_activations, check_new_activations);

// ---------------------------------------------------------------------------------------
// the randomized leaky ReLU

fn slopes(step: u64) -> wgtrain::backend::RandomSlopes {
    wgtrain::backend::RandomSlopes {
        seed: 77,
        layer: 2,
        step,
        lower: 0.125,
        upper: 1.0 / 3.0,
    }
}

#[test]
fn rrelu_slopes_fill_their_range_and_change_with_the_step() {
    let s: Vec<f32> = (0..20_000)
        .map(|i| reference::rrelu_slope(slopes(5), i))
        .collect();
    assert!(s.iter().all(|&v| (0.125..=1.0 / 3.0).contains(&v)));
    let mean = s.iter().map(|&v| v as f64).sum::<f64>() / s.len() as f64;
    assert!(
        (mean - (0.125 + 1.0 / 3.0) / 2.0).abs() < 2e-3,
        "mean slope {mean}"
    );
    let other: Vec<f32> = (0..64)
        .map(|i| reference::rrelu_slope(slopes(6), i))
        .collect();
    assert_ne!(&s[..64], &other[..]);
}

/// The GPU draws the reference's slopes: the draws are the same bits, and the slope's one
/// multiply-add may round once differently where the compiler fuses it, so to an ulp.
fn check_rrelu<B: Backend>(b: &mut B) {
    let mut r = rng(48);
    for &(rows, cols, why) in ROW_SHAPES {
        let what = format!("[{rows}, {cols}] ({why})");
        let x_data = uniform(&mut r, rows * cols, -2.0, 2.0);
        let dy_data = uniform(&mut r, rows * cols, -1.0, 1.0);
        let x = upload(b, rows, cols, &x_data);
        let dy = upload(b, rows, cols, &dy_data);
        let (mut y, mut dx) = (b.zeros(rows, cols).unwrap(), b.zeros(rows, cols).unwrap());
        b.rrelu_forward(&x, slopes(9), &mut y).unwrap();
        b.rrelu_backward(&x, slopes(9), &dy, &mut dx).unwrap();
        let (mut want_y, mut want_dx) = (vec![0.0; rows * cols], vec![0.0; rows * cols]);
        reference::rrelu_forward(&x_data, &mut want_y, slopes(9));
        reference::rrelu_backward(&x_data, &dy_data, &mut want_dx, slopes(9));
        let tol = Tolerance::new(1e-6, 1e-6);
        assert_close(&format!("rrelu {what}"), tol, &b.read(&y).unwrap(), &want_y);
        assert_close(
            &format!("rrelu dx {what}"),
            tol,
            &b.read(&dx).unwrap(),
            &want_dx,
        );
    }
}
backend_test!(rrelu, check_rrelu);

#[test]
fn rrelu_backward_is_the_gradient_for_its_slopes() {
    let mut r = common::rng(55);
    let x: Vec<f32> = uniform(&mut r, 40, -2.0, 2.0)
        .into_iter()
        .map(|v| if v.abs() < 0.05 { v + 0.2 } else { v })
        .collect();
    let w: Vec<f64> = (0..40).map(|_| r.random_range(-1.0..1.0)).collect();
    let dy: Vec<f32> = w.iter().map(|&v| v as f32).collect();
    let mut dx = vec![0.0; 40];
    reference::rrelu_backward(&x, &dy, &mut dx, slopes(3));
    let loss = |x: &[f32]| {
        let mut y = vec![0.0; 40];
        reference::rrelu_forward(x, &mut y, slopes(3));
        weighted(&y, &w)
    };
    for i in 0..40 {
        assert_grad(&format!("dx[{i}]"), dx[i], fd(&x, i, loss));
    }
}
