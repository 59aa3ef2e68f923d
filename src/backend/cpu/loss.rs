//! Losses on the fast CPU backend, in f32, row by row: the reference's
//! [`loss_forward_backward`](crate::backend::reference::loss_forward_backward) without its
//! per-row vectors.

use super::elementwise::softmax_row;
use crate::backend::{Loss, BCE_EPSILON};

/// `pred[N, C]`, `target[N, TC]`: each row's loss into `row_loss[N]`, and
/// `grad[N, C] = d(mean_r loss_r) / d pred`.
pub(crate) fn loss_rows(
    loss: Loss,
    pred: &[f32],
    target: &[f32],
    grad: &mut [f32],
    row_loss: &mut [f32],
    cols: usize,
) {
    let rows = row_loss.len();
    let tc = loss.target_cols(cols);
    let inv_n = 1.0 / rows as f32;
    let rows_of = pred
        .chunks_exact(cols)
        .zip(target.chunks_exact(tc))
        .zip(grad.chunks_exact_mut(cols))
        .zip(row_loss.iter_mut());
    match loss {
        Loss::SparseSoftmaxCrossEntropy => {
            for (((p, t), g), l) in rows_of {
                let y = t[0];
                if !(y >= 0.0 && y.fract() == 0.0 && y < cols as f32) {
                    *l = f32::NAN;
                    g.fill(f32::NAN);
                    continue;
                }
                let label = y as usize;
                softmax_row(p, g);
                *l = logsumexp(p) - p[label];
                g[label] -= 1.0;
                for v in g.iter_mut() {
                    *v *= inv_n;
                }
            }
        }
        Loss::SoftmaxCrossEntropy => {
            for (((p, t), g), l) in rows_of {
                let lse = logsumexp(p);
                *l = p.iter().zip(t).map(|(z, y)| y * (lse - z)).sum();
                let sum_y: f32 = t.iter().sum();
                softmax_row(p, g);
                for (v, &y) in g.iter_mut().zip(t) {
                    *v = (*v * sum_y - y) * inv_n;
                }
            }
        }
        _ => {
            let inv_c = 1.0 / cols as f32;
            for (((p, t), g), l) in rows_of {
                let mut sum = 0.0f32;
                for ((v, &x), &y) in g.iter_mut().zip(p).zip(t) {
                    let (e, d) = elementwise(loss, x, y);
                    sum += e;
                    *v = d * inv_c * inv_n;
                }
                *l = sum * inv_c;
            }
        }
    }
}

fn logsumexp(z: &[f32]) -> f32 {
    let m = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    m + z.iter().map(|&v| (v - m).exp()).sum::<f32>().ln()
}

/// `(loss, d loss / d x)` of one element of an element-wise loss (see the reference's).
#[inline]
fn elementwise(loss: Loss, x: f32, y: f32) -> (f32, f32) {
    let e = x - y;
    match loss {
        Loss::BinaryCrossEntropyFromLogits => {
            let softplus = x.max(0.0) + (-x.abs()).exp().ln_1p();
            let sigmoid = if x >= 0.0 {
                1.0 / (1.0 + (-x).exp())
            } else {
                let e = x.exp();
                e / (1.0 + e)
            };
            (softplus - x * y, sigmoid - y)
        }
        Loss::BinaryCrossEntropy => {
            let (lo, hi) = (BCE_EPSILON, 1.0 - BCE_EPSILON);
            let q = x.clamp(lo, hi);
            let l = -(y * q.ln() + (1.0 - y) * (1.0 - q).ln());
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
            if e.abs() <= delta {
                (0.5 * e * e, e)
            } else {
                (delta * (e.abs() - 0.5 * delta), delta * e.signum())
            }
        }
        Loss::SparseSoftmaxCrossEntropy | Loss::SoftmaxCrossEntropy => unreachable!("row-wise"),
    }
}
