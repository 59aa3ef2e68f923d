//! The fast CPU backend's own promises, beyond the parity suite that holds each of its ops
//! to the reference: the same bits on any thread count and run to run, and the thread
//! count's variable checked (`tests/cpu_alloc.rs` holds that a step allocates nothing).

mod common;

use wgtrain::backend::cpu::CpuBackend;
use wgtrain::backend::{Activation, Backend};
use wgtrain::train::FitConfig;

/// `op(a) · op(b)` and a fused dense forward on `threads` threads.
fn products(threads: usize, m: usize, n: usize, k: usize) -> Vec<Vec<f32>> {
    let mut b = CpuBackend::with_threads(threads);
    let mut rng = common::rng((m * 31 + n * 7 + k) as u64);
    let a_data = common::uniform(&mut rng, m * k, -1.0, 1.0);
    let b_data = common::uniform(&mut rng, k * n, -1.0, 1.0);
    let bias = common::uniform(&mut rng, n, -1.0, 1.0);
    let mut out = Vec::new();
    for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
        let (ar, ac) = if ta { (k, m) } else { (m, k) };
        let (br, bc) = if tb { (n, k) } else { (k, n) };
        let a = b.upload(ar, ac, &a_data).unwrap();
        let w = b.upload(br, bc, &b_data).unwrap();
        let mut c = b.zeros(m, n).unwrap();
        b.matmul(&a, ta, &w, tb, &mut c).unwrap();
        out.push(b.read(&c).unwrap());
    }
    let x = b.upload(m, k, &a_data).unwrap();
    let w = b.upload(k, n, &b_data).unwrap();
    let bias = b.upload(1, n, &bias).unwrap();
    for act in [Activation::Relu, Activation::Tanh, Activation::Softmax] {
        let (mut z, mut a) = (b.zeros(m, n).unwrap(), b.zeros(m, n).unwrap());
        b.dense_forward(&x, &w, &bias, act, &mut z, &mut a).unwrap();
        out.push(b.read(&z).unwrap());
        out.push(b.read(&a).unwrap());
    }
    out
}

#[test]
fn products_give_the_same_bits_on_any_thread_count() {
    // MLP-A's three products, MLP-B's widest, and the split's uneven edges.
    for (m, n, k) in [
        (128, 512, 784),
        (128, 784, 512),
        (784, 512, 128),
        (64, 128, 784),
        (257, 33, 130),
        (40, 301, 100),
    ] {
        let one = products(1, m, n, k);
        for threads in [2, 3] {
            assert!(
                one == products(threads, m, n, k),
                "{m}×{n}×{k}: {threads} threads differ from one"
            );
        }
    }
}

fn trained_weights(threads: usize) -> Vec<Vec<f32>> {
    let (mut model, x, y) = common::digits_cpu_model(CpuBackend::with_threads(threads));
    model
        .fit(&x, &y, FitConfig::epochs(2).batch_size(128).verbose(0))
        .unwrap();
    let weights = model.weights().unwrap();
    weights
        .iter()
        .flat_map(|l| [l.weight().to_vec(), l.bias().to_vec()])
        .collect()
}

/// A CNN's weights after an epoch on `threads` threads, as bits.
fn cnn_weights(threads: usize) -> Vec<u32> {
    let mut model = common::digits_cpu_cnn(CpuBackend::with_threads(threads));
    let (x, y) = wgtrain::data::digits();
    model
        .fit(&x, &y, FitConfig::epochs(1).batch_size(64).verbose(0))
        .unwrap();
    let weights = model.weights().unwrap();
    weights
        .iter()
        .flat_map(|l| l.values().map(|v| v.to_bits()).collect::<Vec<_>>())
        .collect()
}

/// im2col and col2im are split by rows and images, the products by blocks, the bias gradient
/// not at all: a CNN trains to the same bits on 1, 2 and 3 threads.
#[test]
fn cnn_training_gives_the_same_bits_on_any_thread_count() {
    let two = cnn_weights(2);
    assert!(two == cnn_weights(2), "two runs on 2 threads differ");
    assert!(two == cnn_weights(1), "1 thread differs from 2");
    assert!(two == cnn_weights(3), "3 threads differ from 2");
}

#[test]
fn training_gives_the_same_bits_run_to_run_and_on_any_thread_count() {
    let two = trained_weights(2);
    assert!(two == trained_weights(2), "two runs on 2 threads differ");
    assert!(two == trained_weights(1), "1 thread differs from 2");
    assert!(two == trained_weights(3), "3 threads differ from 2");
}

#[test]
fn a_bad_thread_count_is_an_error_that_names_the_variable() {
    // The only test here that sets it; `CpuBackend::new` reads it on each call.
    std::env::set_var(wgtrain::backend::cpu::THREADS_VAR, "zero");
    let e = CpuBackend::new().unwrap_err().to_string();
    std::env::set_var(wgtrain::backend::cpu::THREADS_VAR, "3");
    let three = CpuBackend::new().unwrap().threads();
    std::env::remove_var(wgtrain::backend::cpu::THREADS_VAR);
    assert!(
        e.contains("WGTRAIN_THREADS") && e.contains("positive integer"),
        "{e}"
    );
    assert_eq!(three, 3);
}
