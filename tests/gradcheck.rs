//! The reference proven: every backward in `backend::reference` against central finite differences
//! of its forward, computed in f64.

mod common;

use rand::Rng;
use wgtrain::backend::{reference, Activation, Loss};

const H: f64 = 1e-6;

/// Central difference of `f` at `x`.
fn fd(f: impl Fn(f64) -> f64, x: f64) -> f64 {
    (f(x + H) - f(x - H)) / (2.0 * H)
}

fn assert_grad(what: &str, analytic: f64, numeric: f64, tol: f64) {
    let err = (analytic - numeric).abs();
    assert!(
        err <= tol * (1.0 + numeric.abs()) && analytic.is_finite(),
        "{what}: analytic {analytic:e}, finite difference {numeric:e}, error {err:e}"
    );
}

#[test]
fn elementwise_activation_derivatives() {
    // Points away from the kinks at 0 (relu, leaky relu, elu), where no derivative exists.
    let points = [
        -30.0, -6.0, -2.5, -1.0, -0.3, -1e-3, 1e-3, 0.2, 0.7, 1.5, 3.0, 8.0, 30.0,
    ];
    for act in Activation::ALL.into_iter().chain([
        Activation::LeakyRelu { alpha: 0.01 },
        Activation::Elu { alpha: 0.5 },
    ]) {
        if act.is_row_wise() {
            continue;
        }
        for z in points {
            let a = reference::activation_f64(act, z);
            let analytic = reference::activation_derivative_f64(act, z, a);
            let numeric = fd(|x| reference::activation_f64(act, x), z);
            assert_grad(&format!("{} at {z}", act.name()), analytic, numeric, 1e-7);
        }
    }
}

#[test]
fn softmax_backward_is_the_jacobian_vector_product() {
    let mut r = common::rng(10);
    for cols in [1, 2, 5, 17] {
        let z: Vec<f64> = (0..cols).map(|_| r.random_range(-4.0..4.0)).collect();
        let da: Vec<f64> = (0..cols).map(|_| r.random_range(-1.0..1.0)).collect();
        // L = Σ da ⊙ softmax(z); the backward in the reference runs on f32 slices.
        let loss = |z: &[f64]| -> f64 {
            reference::softmax_row_f64(z)
                .iter()
                .zip(&da)
                .map(|(a, d)| a * d)
                .sum()
        };
        let z32: Vec<f32> = z.iter().map(|&v| v as f32).collect();
        let da32: Vec<f32> = da.iter().map(|&v| v as f32).collect();
        let mut a32 = vec![0.0; cols];
        reference::activation_forward(Activation::Softmax, &z32, &mut a32, cols);
        let mut dz = vec![0.0; cols];
        reference::activation_backward(Activation::Softmax, &z32, &a32, &da32, &mut dz, cols);
        for i in 0..cols {
            let numeric = fd(
                |x| {
                    let mut zz = z.clone();
                    zz[i] = x;
                    loss(&zz)
                },
                z[i],
            );
            assert_grad(
                &format!("softmax C={cols} [{i}]"),
                dz[i] as f64,
                numeric,
                1e-5,
            );
        }
    }
}

#[test]
fn loss_gradients() {
    let mut r = common::rng(11);
    for loss in Loss::ALL.into_iter().chain([Loss::Huber { delta: 0.3 }]) {
        for cols in [1, 3, 10] {
            for _ in 0..5 {
                let (pred, target): (Vec<f64>, Vec<f64>) = match loss {
                    Loss::SparseSoftmaxCrossEntropy => (
                        (0..cols).map(|_| r.random_range(-5.0..5.0)).collect(),
                        vec![r.random_range(0..cols) as f64],
                    ),
                    Loss::SoftmaxCrossEntropy => {
                        let t: Vec<f64> = (0..cols).map(|_| r.random_range(0.0..1.0)).collect();
                        let s: f64 = t.iter().sum();
                        (
                            (0..cols).map(|_| r.random_range(-5.0..5.0)).collect(),
                            t.iter().map(|v| v / s).collect(),
                        )
                    }
                    Loss::BinaryCrossEntropy => (
                        (0..cols).map(|_| r.random_range(0.01..0.99)).collect(),
                        (0..cols).map(|_| r.random_range(0.0..1.0)).collect(),
                    ),
                    _ => (
                        (0..cols).map(|_| r.random_range(-3.0..3.0)).collect(),
                        (0..cols).map(|_| r.random_range(-3.0..3.0)).collect(),
                    ),
                };
                let analytic = reference::loss_row_grad_f64(loss, &pred, &target);
                for i in 0..cols {
                    let numeric = fd(
                        |x| {
                            let mut p = pred.clone();
                            p[i] = x;
                            reference::loss_row_f64(loss, &p, &target)
                        },
                        pred[i],
                    );
                    assert_grad(
                        &format!("{} C={cols} [{i}] at {pred:?}", loss.name()),
                        analytic[i],
                        numeric,
                        1e-6,
                    );
                }
            }
        }
    }
}

/// The batch gradient is the per-row gradient divided by the batch (mean reduction).
#[test]
fn batch_loss_gradient_is_the_gradient_of_the_mean() {
    let mut r = common::rng(12);
    let (rows, cols) = (4, 3);
    let pred: Vec<f32> = (0..rows * cols)
        .map(|_| r.random_range(-2.0..2.0))
        .collect();
    let target: Vec<f32> = (0..rows * cols)
        .map(|_| r.random_range(-2.0..2.0))
        .collect();
    let mean_loss = |p: &[f32]| -> f64 {
        let mut g = vec![0.0; rows * cols];
        let mut l = vec![0.0; rows];
        reference::loss_forward_backward(Loss::MeanSquaredError, p, &target, &mut g, &mut l, cols);
        l.iter().map(|&v| v as f64).sum::<f64>() / rows as f64
    };
    let mut grad = vec![0.0; rows * cols];
    let mut l = vec![0.0; rows];
    reference::loss_forward_backward(
        Loss::MeanSquaredError,
        &pred,
        &target,
        &mut grad,
        &mut l,
        cols,
    );
    for i in 0..rows * cols {
        // f32 storage: a larger step keeps the difference above f32 rounding.
        let h = 1e-2f32;
        let (mut up, mut down) = (pred.clone(), pred.clone());
        up[i] += h;
        down[i] -= h;
        let numeric = (mean_loss(&up) - mean_loss(&down)) / (up[i] - down[i]) as f64;
        assert_grad(&format!("mse batch [{i}]"), grad[i] as f64, numeric, 1e-4);
    }
}

/// For C = A·B and L = Σ G ⊙ C: dL/dA = G·Bᵀ and dL/dB = Aᵀ·G, the transposed products the
/// backward pass runs. Checked through the reference's own transposed matmul.
#[test]
fn matmul_backward_products() {
    let mut r = common::rng(13);
    let (m, n, k) = (3, 4, 5);
    let a: Vec<f32> = (0..m * k).map(|_| r.random_range(-1.0..1.0)).collect();
    let b: Vec<f32> = (0..k * n).map(|_| r.random_range(-1.0..1.0)).collect();
    let g: Vec<f32> = (0..m * n).map(|_| r.random_range(-1.0..1.0)).collect();
    let loss = |a: &[f64], b: &[f64]| -> f64 {
        let mut s = 0.0;
        for i in 0..m {
            for j in 0..n {
                let c: f64 = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
                s += g[i * n + j] as f64 * c;
            }
        }
        s
    };
    let a64: Vec<f64> = a.iter().map(|&v| v as f64).collect();
    let b64: Vec<f64> = b.iter().map(|&v| v as f64).collect();
    let mut da = vec![0.0; m * k];
    reference::matmul_forward(&g, false, &b, true, &mut da, m, k, n);
    let mut db = vec![0.0; k * n];
    reference::matmul_forward(&a, true, &g, false, &mut db, k, n, m);
    for i in 0..m * k {
        let numeric = fd(
            |x| {
                let mut aa = a64.clone();
                aa[i] = x;
                loss(&aa, &b64)
            },
            a64[i],
        );
        assert_grad(&format!("dA[{i}]"), da[i] as f64, numeric, 1e-6);
    }
    for i in 0..k * n {
        let numeric = fd(
            |x| {
                let mut bb = b64.clone();
                bb[i] = x;
                loss(&a64, &bb)
            },
            b64[i],
        );
        assert_grad(&format!("dB[{i}]"), db[i] as f64, numeric, 1e-6);
    }
}

/// For Z = X + b (broadcast) and L = Σ G ⊙ Z: dL/db is the column sum of G.
#[test]
fn bias_backward_is_the_column_sum() {
    let mut r = common::rng(14);
    let (rows, cols) = (5, 3);
    let g: Vec<f32> = (0..rows * cols)
        .map(|_| r.random_range(-1.0..1.0))
        .collect();
    let bias: Vec<f64> = (0..cols).map(|_| r.random_range(-1.0..1.0)).collect();
    let loss = |b: &[f64]| -> f64 { (0..rows * cols).map(|i| g[i] as f64 * b[i % cols]).sum() };
    let mut db = vec![0.0; cols];
    reference::bias_backward(&g, &mut db, cols);
    for c in 0..cols {
        let numeric = fd(
            |x| {
                let mut bb = bias.clone();
                bb[c] = x;
                loss(&bb)
            },
            bias[c],
        );
        assert_grad(&format!("db[{c}]"), db[c] as f64, numeric, 1e-6);
    }
}
