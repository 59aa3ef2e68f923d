//! Activations on the fast CPU backend, in f32: the formulas of the reference
//! ([`crate::backend::reference::activation_f64`] and its derivative) with the same guards
//! against overflow, one element at a time in loops the compiler vectorises (ReLU, leaky
//! ReLU, linear) or calls into libm (the transcendental ones).

use crate::backend::ops::{SELU_ALPHA, SELU_LAMBDA};
use crate::backend::reference::soboleva_f64;
use crate::backend::Activation;

const SQRT_2_OVER_PI: f32 = 0.797_884_6;
const GELU_C: f32 = 0.044715;
const FRAC_1_SQRT_2: f32 = std::f32::consts::FRAC_1_SQRT_2;
const LAMBDA: f32 = SELU_LAMBDA as f32;
const LAMBDA_ALPHA: f32 = (SELU_LAMBDA * SELU_ALPHA) as f32;

fn sigmoid(z: f32) -> f32 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

fn normal_cdf(z: f32) -> f32 {
    0.5 * (1.0 + libm::erff(z * FRAC_1_SQRT_2))
}

/// `act(z)` for an element-wise activation (not softmax).
#[inline]
pub(crate) fn act_f32(act: Activation, z: f32) -> f32 {
    match act {
        Activation::Linear => z,
        Activation::Relu => z.max(0.0),
        Activation::LeakyRelu { .. } => {
            if z > 0.0 {
                z
            } else {
                act.alpha() * z
            }
        }
        Activation::Elu { .. } => {
            if z > 0.0 {
                z
            } else {
                act.alpha() * z.exp_m1()
            }
        }
        Activation::Sigmoid => sigmoid(z),
        Activation::Tanh => z.tanh(),
        Activation::Softplus => z.max(0.0) + (-z.abs()).exp().ln_1p(),
        Activation::Gelu => z * normal_cdf(z),
        Activation::GeluTanh => {
            0.5 * z * (1.0 + (SQRT_2_OVER_PI * (z + GELU_C * z * z * z)).tanh())
        }
        Activation::Silu => z * sigmoid(z),
        Activation::BinaryStep => (z >= 0.0) as u8 as f32,
        Activation::Selu => {
            if z > 0.0 {
                LAMBDA * z
            } else {
                LAMBDA_ALPHA * z.exp_m1()
            }
        }
        Activation::Gaussian => (-z * z).exp(),
        // Four exponentials with scaled guards: the reference's f64 formula.
        Activation::Soboleva { .. } => soboleva_f64(act, z as f64).0 as f32,
        Activation::Softmax => unreachable!("softmax is row-wise: see activation_rows"),
    }
}

/// `d act / d z` at `z`, given `a = act(z)`.
#[inline]
pub(crate) fn act_grad_f32(act: Activation, z: f32, a: f32) -> f32 {
    match act {
        Activation::Linear => 1.0,
        Activation::Relu => (z > 0.0) as u8 as f32,
        Activation::LeakyRelu { .. } => {
            if z > 0.0 {
                1.0
            } else {
                act.alpha()
            }
        }
        Activation::Elu { .. } => {
            if z > 0.0 {
                1.0
            } else {
                a + act.alpha()
            }
        }
        Activation::Sigmoid => a * (1.0 - a),
        Activation::Tanh => 1.0 - a * a,
        Activation::Softplus => sigmoid(z),
        Activation::Gelu => {
            normal_cdf(z) + z * (-0.5 * z * z).exp() / (2.0 * std::f32::consts::PI).sqrt()
        }
        Activation::GeluTanh => {
            let t = (SQRT_2_OVER_PI * (z + GELU_C * z * z * z)).tanh();
            0.5 * (1.0 + t)
                + 0.5 * z * (1.0 - t * t) * SQRT_2_OVER_PI * (1.0 + 3.0 * GELU_C * z * z)
        }
        Activation::Silu => {
            let s = sigmoid(z);
            s * (1.0 + z * (1.0 - s))
        }
        Activation::BinaryStep => 0.0,
        Activation::Selu => {
            if z > 0.0 {
                LAMBDA
            } else {
                a + LAMBDA_ALPHA
            }
        }
        Activation::Gaussian => -2.0 * z * a,
        Activation::Soboleva { .. } => soboleva_f64(act, z as f64).1 as f32,
        Activation::Softmax => unreachable!("softmax is row-wise: see activation_backward_rows"),
    }
}

/// `a = act(z)` over whole rows of `cols` values (softmax per row).
pub(crate) fn activation_rows(act: Activation, z: &[f32], a: &mut [f32], cols: usize) {
    match act {
        Activation::Softmax => {
            for (zr, ar) in z.chunks_exact(cols).zip(a.chunks_exact_mut(cols)) {
                softmax_row(zr, ar);
            }
        }
        Activation::Linear => a.copy_from_slice(z),
        Activation::Relu => map(z, a, |v| v.max(0.0)),
        Activation::LeakyRelu { .. } => {
            let alpha = act.alpha();
            map(z, a, |v| if v > 0.0 { v } else { alpha * v })
        }
        _ => map(z, a, |v| act_f32(act, v)),
    }
}

/// `z += bias; a = act(z)` over one row's block (`bias` the block's columns); softmax
/// only where the block is a whole row.
pub(crate) fn bias_activation(act: Activation, z: &mut [f32], bias: &[f32], a: &mut [f32]) {
    for (v, b) in z.iter_mut().zip(bias) {
        *v += b;
    }
    activation_rows(act, z, a, z.len());
}

/// `dz = da · act'(z)` over whole rows (softmax's Jacobian-vector product per row).
pub(crate) fn activation_backward_rows(
    act: Activation,
    z: &[f32],
    a: &[f32],
    da: &[f32],
    dz: &mut [f32],
    cols: usize,
) {
    match act {
        Activation::Softmax => {
            for ((ar, dar), dzr) in a
                .chunks_exact(cols)
                .zip(da.chunks_exact(cols))
                .zip(dz.chunks_exact_mut(cols))
            {
                let dot: f32 = ar.iter().zip(dar).map(|(x, y)| x * y).sum();
                for ((o, &x), &y) in dzr.iter_mut().zip(ar).zip(dar) {
                    *o = x * (y - dot);
                }
            }
        }
        Activation::Linear => dz.copy_from_slice(da),
        Activation::Relu => {
            for ((o, &zv), &g) in dz.iter_mut().zip(z).zip(da) {
                *o = if zv > 0.0 { g } else { 0.0 };
            }
        }
        _ => {
            for (((o, &zv), &av), &g) in dz.iter_mut().zip(z).zip(a).zip(da) {
                *o = g * act_grad_f32(act, zv, av);
            }
        }
    }
}

/// `softmax(z)` of one row, stable: `exp(z - max) / Σ exp(z - max)`.
pub(crate) fn softmax_row(z: &[f32], a: &mut [f32]) {
    let m = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut s = 0.0f32;
    for (o, &v) in a.iter_mut().zip(z) {
        *o = (v - m).exp();
        s += *o;
    }
    for o in a.iter_mut() {
        *o /= s;
    }
}

/// [`softmax_row`] of `a` into itself.
pub(crate) fn softmax_row_in_place(a: &mut [f32]) {
    let m = a.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut s = 0.0f32;
    for v in a.iter_mut() {
        *v = (*v - m).exp();
        s += *v;
    }
    for v in a.iter_mut() {
        *v /= s;
    }
}

#[inline(always)]
fn map(z: &[f32], a: &mut [f32], f: impl Fn(f32) -> f32) {
    for (o, &v) in a.iter_mut().zip(z) {
        *o = f(v);
    }
}
