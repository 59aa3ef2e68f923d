//! The reference backend: plain loops, f32 storage, f64 arithmetic. This file is the
//! specification the GPU kernels are held to; it is written to be read, not to be fast.
//!
//! Each op is a free `<op>_forward` / `<op>_backward` function on slices with its shapes in a
//! comment (the form of llm.c's `train_gpt2.c`); [`ReferenceBackend`] implements [`Backend`](super::Backend) by
//! calling them. The scalar formulas (`activation_f64`, `loss_row_f64`, ...) work in f64 so that
//! the gradient checks in `tests/gradcheck.rs` can hold every backward to finite differences.

mod backend;
pub(crate) mod conv;
mod data;
mod layers;
mod reduce;

pub use super::tensor::HostTensor;
pub use backend::ReferenceBackend;
pub(crate) use backend::{guard_allows, guard_done};
pub use conv::*;
pub use data::*;
pub use layers::*;
pub use reduce::*;

use super::ops::{SELU_ALPHA, SELU_LAMBDA};
use super::{Activation, Loss, Optimizer, PointError, BCE_EPSILON, ROC_HISTOGRAM_SLOTS};

// ----------------------------------------------------------------------------------------
// matmul

/// `c[M, N] = op(a) · op(b)`; `a` is `[M, K]` (stored `[K, M]` when `trans_a`), `b` is
/// `[K, N]` (stored `[N, K]` when `trans_b`).
#[allow(clippy::too_many_arguments)]
pub fn matmul_forward(
    a: &[f32],
    trans_a: bool,
    b: &[f32],
    trans_b: bool,
    c: &mut [f32],
    m: usize,
    n: usize,
    k: usize,
) {
    for i in 0..m {
        for j in 0..n {
            let mut sum = 0.0f64;
            for p in 0..k {
                let aip = if trans_a { a[p * m + i] } else { a[i * k + p] };
                let bpj = if trans_b { b[j * k + p] } else { b[p * n + j] };
                sum += aip as f64 * bpj as f64;
            }
            c[i * n + j] = sum as f32;
        }
    }
}

// ----------------------------------------------------------------------------------------
// bias

/// `z[N, C] += bias[1, C]` broadcast over rows.
pub fn bias_forward(z: &mut [f32], bias: &[f32], cols: usize) {
    for row in z.chunks_mut(cols) {
        for (v, b) in row.iter_mut().zip(bias) {
            *v = (*v as f64 + *b as f64) as f32;
        }
    }
}

/// `db[1, C] = Σ_r dy[r, C]`.
pub fn bias_backward(dy: &[f32], db: &mut [f32], cols: usize) {
    for (c, out) in db.iter_mut().enumerate() {
        let sum: f64 = dy.iter().skip(c).step_by(cols).map(|&v| v as f64).sum();
        *out = sum as f32;
    }
}

// ----------------------------------------------------------------------------------------
// activations

/// Standard normal CDF Φ(z) = (1 + erf(z/√2)) / 2.
fn normal_cdf(z: f64) -> f64 {
    0.5 * (1.0 + libm::erf(z / std::f64::consts::SQRT_2))
}

/// 1 / (1 + e^-z) without overflow.
pub fn sigmoid_f64(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

/// ln(1 + e^z) without overflow.
pub fn softplus_f64(z: f64) -> f64 {
    z.max(0.0) + (-z.abs()).exp().ln_1p()
}

const SQRT_2_OVER_PI: f64 = 0.797_884_560_802_865_4;
const GELU_C: f64 = 0.044715;

/// The Soboleva tanh `(e^{az} - e^{-bz}) / (e^{cz} + e^{-dz})` and its derivative at `z`,
/// with numerator and denominator scaled by `e^{-cz}` (z > 0) or `e^{dz}` (z ≤ 0), so that
/// neither overflows where the quotient is finite.
pub fn soboleva_f64(act: Activation, z: f64) -> (f64, f64) {
    let [a, b, c, d] = act.params().map(|v| v as f64);
    // f = N / D; f' = N' / D - f · D' / D, every term scaled alike.
    let (n, dn, den, dden) = if z > 0.0 {
        let s = (-(c + d) * z).exp();
        (
            ((a - c) * z).exp() - (-(b + c) * z).exp(),
            a * ((a - c) * z).exp() + b * (-(b + c) * z).exp(),
            1.0 + s,
            c - d * s,
        )
    } else {
        let s = ((c + d) * z).exp();
        (
            ((a + d) * z).exp() - ((d - b) * z).exp(),
            a * ((a + d) * z).exp() + b * ((d - b) * z).exp(),
            s + 1.0,
            c * s - d,
        )
    };
    let f = n / den;
    (f, dn / den - f * dden / den)
}

/// `act(z)` for an element-wise activation (not softmax).
pub fn activation_f64(act: Activation, z: f64) -> f64 {
    let alpha = act.alpha() as f64;
    match act {
        Activation::Linear => z,
        Activation::Relu => z.max(0.0),
        Activation::LeakyRelu { .. } => {
            if z > 0.0 {
                z
            } else {
                alpha * z
            }
        }
        Activation::Elu { .. } => {
            if z > 0.0 {
                z
            } else {
                alpha * z.exp_m1()
            }
        }
        Activation::Sigmoid => sigmoid_f64(z),
        Activation::Tanh => z.tanh(),
        Activation::Softplus => softplus_f64(z),
        Activation::Gelu => z * normal_cdf(z),
        Activation::GeluTanh => {
            0.5 * z * (1.0 + (SQRT_2_OVER_PI * (z + GELU_C * z * z * z)).tanh())
        }
        Activation::Silu => z * sigmoid_f64(z),
        Activation::BinaryStep => (z >= 0.0) as u8 as f64,
        Activation::Selu => {
            if z > 0.0 {
                SELU_LAMBDA * z
            } else {
                SELU_LAMBDA * SELU_ALPHA * z.exp_m1()
            }
        }
        Activation::Gaussian => (-z * z).exp(),
        Activation::Soboleva { .. } => soboleva_f64(act, z).0,
        Activation::Softmax => unreachable!("softmax is row-wise: see softmax_forward"),
    }
}

/// `d act / d z` at `z`, given `a = act(z)` (backward takes what forward saved).
pub fn activation_derivative_f64(act: Activation, z: f64, a: f64) -> f64 {
    let alpha = act.alpha() as f64;
    match act {
        Activation::Linear => 1.0,
        Activation::Relu => (z > 0.0) as u8 as f64,
        Activation::LeakyRelu { .. } => {
            if z > 0.0 {
                1.0
            } else {
                alpha
            }
        }
        Activation::Elu { .. } => {
            if z > 0.0 {
                1.0
            } else {
                a + alpha
            }
        }
        Activation::Sigmoid => a * (1.0 - a),
        Activation::Tanh => 1.0 - a * a,
        Activation::Softplus => sigmoid_f64(z),
        Activation::Gelu => {
            normal_cdf(z) + z * (-0.5 * z * z).exp() / (2.0 * std::f64::consts::PI).sqrt()
        }
        Activation::GeluTanh => {
            let t = (SQRT_2_OVER_PI * (z + GELU_C * z * z * z)).tanh();
            0.5 * (1.0 + t)
                + 0.5 * z * (1.0 - t * t) * SQRT_2_OVER_PI * (1.0 + 3.0 * GELU_C * z * z)
        }
        Activation::Silu => {
            let s = sigmoid_f64(z);
            s * (1.0 + z * (1.0 - s))
        }
        Activation::BinaryStep => 0.0,
        Activation::Selu => {
            if z > 0.0 {
                SELU_LAMBDA
            } else {
                a + SELU_LAMBDA * SELU_ALPHA
            }
        }
        Activation::Gaussian => -2.0 * z * a,
        Activation::Soboleva { .. } => soboleva_f64(act, z).1,
        Activation::Softmax => unreachable!("softmax is row-wise: see softmax_backward"),
    }
}

/// Row-wise softmax of one row, stable: `exp(z - max) / Σ exp(z - max)`.
pub fn softmax_row_f64(z: &[f64]) -> Vec<f64> {
    let m = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = z.iter().map(|&v| (v - m).exp()).collect();
    let s: f64 = e.iter().sum();
    e.into_iter().map(|v| v / s).collect()
}

/// `a[N, C] = act(z[N, C])`; softmax is taken over each row.
pub fn activation_forward(act: Activation, z: &[f32], a: &mut [f32], cols: usize) {
    if act.is_row_wise() {
        for (zr, ar) in z.chunks(cols).zip(a.chunks_mut(cols)) {
            let zr: Vec<f64> = zr.iter().map(|&v| v as f64).collect();
            for (o, v) in ar.iter_mut().zip(softmax_row_f64(&zr)) {
                *o = v as f32;
            }
        }
    } else {
        for (o, &v) in a.iter_mut().zip(z) {
            *o = activation_f64(act, v as f64) as f32;
        }
    }
}

/// `dz[N, C] = ∂L/∂z` from `da[N, C] = ∂L/∂a`, `z` and `a = act(z)`. For softmax, per row,
/// the Jacobian-vector product `dz = a ⊙ (da - Σ_c a_c da_c)`.
pub fn activation_backward(
    act: Activation,
    z: &[f32],
    a: &[f32],
    da: &[f32],
    dz: &mut [f32],
    cols: usize,
) {
    if act.is_row_wise() {
        for ((ar, dar), dzr) in a.chunks(cols).zip(da.chunks(cols)).zip(dz.chunks_mut(cols)) {
            let dot: f64 = ar.iter().zip(dar).map(|(&x, &y)| x as f64 * y as f64).sum();
            for ((o, &x), &y) in dzr.iter_mut().zip(ar).zip(dar) {
                *o = (x as f64 * (y as f64 - dot)) as f32;
            }
        }
    } else {
        for i in 0..z.len() {
            let d = activation_derivative_f64(act, z[i] as f64, a[i] as f64);
            dz[i] = (da[i] as f64 * d) as f32;
        }
    }
}

// ----------------------------------------------------------------------------------------
// losses

/// Per-sample loss of one row: `pred[C]`, `target[C]` (or `target[1]` = the label for the
/// sparse loss). NaN for a sparse label that is not an integer in `[0, C)`.
pub fn loss_row_f64(loss: Loss, pred: &[f64], target: &[f64]) -> f64 {
    let c = pred.len() as f64;
    match loss {
        Loss::SparseSoftmaxCrossEntropy => match sparse_label(target[0], pred.len()) {
            Some(label) => logsumexp(pred) - pred[label],
            None => f64::NAN,
        },
        Loss::SoftmaxCrossEntropy => {
            let lse = logsumexp(pred);
            pred.iter().zip(target).map(|(z, y)| y * (lse - z)).sum()
        }
        _ => {
            let sum: f64 = pred
                .iter()
                .zip(target)
                .map(|(&x, &y)| elementwise_loss(loss, x, y).0)
                .sum();
            sum / c
        }
    }
}

/// `d loss_row / d pred` for one row (the per-sample loss, not yet divided by the batch).
pub fn loss_row_grad_f64(loss: Loss, pred: &[f64], target: &[f64]) -> Vec<f64> {
    let c = pred.len() as f64;
    match loss {
        Loss::SparseSoftmaxCrossEntropy => match sparse_label(target[0], pred.len()) {
            Some(label) => {
                let mut g = softmax_row_f64(pred);
                g[label] -= 1.0;
                g
            }
            None => vec![f64::NAN; pred.len()],
        },
        Loss::SoftmaxCrossEntropy => {
            let sum_y: f64 = target.iter().sum();
            softmax_row_f64(pred)
                .into_iter()
                .zip(target)
                .map(|(s, y)| s * sum_y - y)
                .collect()
        }
        _ => pred
            .iter()
            .zip(target)
            .map(|(&x, &y)| elementwise_loss(loss, x, y).1 / c)
            .collect(),
    }
}

fn sparse_label(y: f64, classes: usize) -> Option<usize> {
    (y >= 0.0 && y.fract() == 0.0 && y < classes as f64).then_some(y as usize)
}

fn logsumexp(z: &[f64]) -> f64 {
    let m = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    m + z.iter().map(|&v| (v - m).exp()).sum::<f64>().ln()
}

/// `(loss, d loss / d x)` of one element-wise term of an element-wise loss.
fn elementwise_loss(loss: Loss, x: f64, y: f64) -> (f64, f64) {
    let e = x - y;
    match loss {
        Loss::BinaryCrossEntropyFromLogits => (softplus_f64(x) - x * y, sigmoid_f64(x) - y),
        Loss::BinaryCrossEntropy => {
            // The clip bounds as f32 computes them (1 - 1e-7 rounds to 1 - 2^-23), as Keras does.
            let (lo, hi) = (BCE_EPSILON as f64, (1.0f32 - BCE_EPSILON) as f64);
            let q = x.clamp(lo, hi);
            let l = -(y * q.ln() + (1.0 - y) * (1.0 - q).ln());
            // The clip's gradient is 0 outside [ε, 1 - ε], as in Keras.
            let g = if x > lo && x < hi {
                (q - y) / (q * (1.0 - q))
            } else {
                0.0
            };
            (l, g)
        }
        Loss::MeanSquaredError => (e * e, 2.0 * e),
        Loss::MeanAbsoluteError => (e.abs(), if e == 0.0 { 0.0 } else { e.signum() }),
        Loss::Huber { delta } => {
            let d = delta as f64;
            if e.abs() <= d {
                (0.5 * e * e, e)
            } else {
                (d * (e.abs() - 0.5 * d), d * e.signum())
            }
        }
        Loss::SparseSoftmaxCrossEntropy | Loss::SoftmaxCrossEntropy => unreachable!("row-wise"),
    }
}

/// `pred[N, C]`, `target[N, TC]` (TC = 1 for the sparse loss, else C): writes
/// `row_loss[N, 1]` and `grad[N, C] = d(mean_r loss_r)/d pred`.
pub fn loss_forward_backward(
    loss: Loss,
    pred: &[f32],
    target: &[f32],
    grad: &mut [f32],
    row_loss: &mut [f32],
    cols: usize,
) {
    let rows = row_loss.len();
    let tc = loss.target_cols(cols);
    for r in 0..rows {
        let p: Vec<f64> = pred[r * cols..(r + 1) * cols]
            .iter()
            .map(|&v| v as f64)
            .collect();
        let t: Vec<f64> = target[r * tc..(r + 1) * tc]
            .iter()
            .map(|&v| v as f64)
            .collect();
        row_loss[r] = loss_row_f64(loss, &p, &t) as f32;
        for (o, g) in grad[r * cols..(r + 1) * cols]
            .iter_mut()
            .zip(loss_row_grad_f64(loss, &p, &t))
        {
            *o = (g / rows as f64) as f32;
        }
    }
}

// ----------------------------------------------------------------------------------------
// optimizers

/// One update of `param` from `grad` at step `t` (≥ 1); `state` holds the rule's state
/// tensors (momentum: `[v]`, Adam: `[m, v]`), each shaped like `param`.
pub fn optimizer_step(
    opt: Optimizer,
    t: u64,
    param: &mut [f32],
    grad: &[f32],
    state: &mut [&mut [f32]],
) {
    match opt {
        Optimizer::Sgd { lr } => {
            for (p, &g) in param.iter_mut().zip(grad) {
                *p = (*p as f64 - lr as f64 * g as f64) as f32;
            }
        }
        Optimizer::Momentum {
            lr,
            momentum,
            nesterov,
        } => {
            let (lr, mu) = (lr as f64, momentum as f64);
            let v = &mut state[0];
            for i in 0..param.len() {
                let g = grad[i] as f64;
                let vi = mu * v[i] as f64 - lr * g;
                v[i] = vi as f32;
                let step = if nesterov { mu * vi - lr * g } else { vi };
                param[i] = (param[i] as f64 + step) as f32;
            }
        }
        Optimizer::Adam {
            lr,
            beta1,
            beta2,
            eps,
            weight_decay,
        } => {
            let (bc1, bc2) = Optimizer::adam_bias_corrections(beta1, beta2, t);
            let (lr, b1, b2, eps, wd) = (
                lr as f64,
                beta1 as f64,
                beta2 as f64,
                eps as f64,
                weight_decay as f64,
            );
            let (ms, vs) = state.split_at_mut(1);
            let (m, v) = (&mut ms[0], &mut vs[0]);
            for i in 0..param.len() {
                let g = grad[i] as f64;
                let mi = b1 * m[i] as f64 + (1.0 - b1) * g;
                let vi = b2 * v[i] as f64 + (1.0 - b2) * g * g;
                m[i] = mi as f32;
                v[i] = vi as f32;
                let m_hat = mi / bc1 as f64;
                let v_hat = vi / bc2 as f64;
                let decayed = param[i] as f64 * (1.0 - lr * wd);
                param[i] = (decayed - lr * m_hat / (v_hat.sqrt() + eps)) as f32;
            }
        }
    }
}
