//! The reference functions of the layers beyond Dense: dropout and its generator, batch
//! normalization, PReLU, maxout and the weight penalties. Like the rest of the reference they
//! are plain loops over slices with f64 arithmetic, written to be read; the GPU kernels in
//! `shaders/layers.wgsl` are held to them by the parity suite.

use crate::backend::{DropoutMask, RandomSlopes};

// ----------------------------------------------------------------------------------------
// the generator

/// Threefry-2x32 with 20 rounds (Random123's `threefry2x32`): the 64-bit block `ctr`
/// encrypted under `key`. Only u32 additions, rotations and xors, so the WGSL copy in
/// `shaders/layers.wgsl` computes the same bits.
pub fn threefry2x32(ctr: [u32; 2], key: [u32; 2]) -> [u32; 2] {
    const ROTATIONS: [u32; 8] = [13, 15, 26, 6, 17, 29, 16, 24];
    let ks = [key[0], key[1], 0x1BD1_1BDA ^ key[0] ^ key[1]];
    let mut x = [ctr[0].wrapping_add(ks[0]), ctr[1].wrapping_add(ks[1])];
    for round in 0..20 {
        x[0] = x[0].wrapping_add(x[1]);
        x[1] = x[1].rotate_left(ROTATIONS[round % 8]) ^ x[0];
        if round % 4 == 3 {
            let s = round / 4 + 1;
            x[0] = x[0].wrapping_add(ks[s % 3]);
            x[1] = x[1].wrapping_add(ks[(s + 1) % 3]).wrapping_add(s as u32);
        }
    }
    x
}

/// Whether `mask` keeps element `i`.
pub fn dropout_keeps(mask: DropoutMask, i: usize) -> bool {
    let (counter, word) = mask.pair_counter(i);
    threefry2x32(counter, mask.key())[word] >= mask.drop_below()
}

/// Inverted dropout: `keep[i] = scale` where `mask` keeps element `i`, else 0, and
/// `y = x ⊙ keep`. The backward pass is `dx = dy ⊙ keep` ([`multiply`]), with the forward's
/// `keep`.
pub fn dropout_forward(x: &[f32], y: &mut [f32], keep: &mut [f32], mask: DropoutMask) {
    let scale = mask.scale();
    for (i, k) in keep.iter_mut().enumerate() {
        *k = if dropout_keeps(mask, i) { scale } else { 0.0 };
    }
    multiply(x, keep, y);
}

/// `c = a ⊙ b`, element by element (each product rounded once to f32).
pub fn multiply(a: &[f32], b: &[f32], c: &mut [f32]) {
    for ((out, &u), &v) in c.iter_mut().zip(a).zip(b) {
        *out = (u as f64 * v as f64) as f32;
    }
}

// ----------------------------------------------------------------------------------------
// randomized leaky ReLU

/// Element `i`'s slope: `lower + (upper - lower) · u` in f32, as the kernel computes it.
pub fn rrelu_slope(slopes: RandomSlopes, i: usize) -> f32 {
    let m = slopes.mask();
    let u = RandomSlopes::unit(threefry2x32(m.counter(i), m.key())[1]);
    slopes.lower + (slopes.upper - slopes.lower) * u
}

/// `y = x` where `x ≥ 0`, else `slope_i · x`.
pub fn rrelu_forward(x: &[f32], y: &mut [f32], slopes: RandomSlopes) {
    for (i, (out, &v)) in y.iter_mut().zip(x).enumerate() {
        *out = if v >= 0.0 {
            v
        } else {
            (rrelu_slope(slopes, i) as f64 * v as f64) as f32
        };
    }
}

/// `dx = dy` where `x ≥ 0`, else `slope_i · dy`.
pub fn rrelu_backward(x: &[f32], dy: &[f32], dx: &mut [f32], slopes: RandomSlopes) {
    for (i, (out, (&v, &g))) in dx.iter_mut().zip(x.iter().zip(dy)).enumerate() {
        *out = if v >= 0.0 {
            g
        } else {
            (rrelu_slope(slopes, i) as f64 * g as f64) as f32
        };
    }
}

// ----------------------------------------------------------------------------------------
// batch normalization

/// The batch statistics of `x [N, C]` per column: `mean[c] = Σ_r x / N` and the biased
/// variance `var[c] = Σ_r (x - mean)² / N` (what Keras normalizes by and averages).
pub fn batchnorm_stats(x: &[f32], mean: &mut [f32], var: &mut [f32], cols: usize) {
    let rows = x.len() / cols;
    for c in 0..cols {
        let column = || x.iter().skip(c).step_by(cols).map(|&v| v as f64);
        let m = column().sum::<f64>() / rows as f64;
        let v = column().map(|v| (v - m) * (v - m)).sum::<f64>() / rows as f64;
        mean[c] = m as f32;
        var[c] = v as f32;
    }
}

/// `y = gamma · (x - mean) / √(var + eps) + beta`, per column (`mean`, `var`, `gamma`,
/// `beta` are `[1, C]`): with the batch's statistics in training, the moving ones in inference.
#[allow(clippy::too_many_arguments)]
pub fn batchnorm_forward(
    x: &[f32],
    mean: &[f32],
    var: &[f32],
    gamma: &[f32],
    beta: &[f32],
    eps: f32,
    y: &mut [f32],
    cols: usize,
) {
    for (i, (out, &v)) in y.iter_mut().zip(x).enumerate() {
        let c = i % cols;
        let inv = 1.0 / (var[c] as f64 + eps as f64).sqrt();
        *out = (gamma[c] as f64 * (v as f64 - mean[c] as f64) * inv + beta[c] as f64) as f32;
    }
}

/// The backward of [`batchnorm_forward`] in training, where `mean` and `var` are the batch's
/// own (so they depend on `x` too). Per column, with `x̂ = (x - mean) / √(var + eps)`:
/// `dbeta = Σ dy`, `dgamma = Σ dy · x̂`, `dx = gamma / √(var + eps) · (dy - dbeta / N - x̂ ·
/// dgamma / N)`.
#[allow(clippy::too_many_arguments)]
pub fn batchnorm_backward(
    x: &[f32],
    mean: &[f32],
    var: &[f32],
    gamma: &[f32],
    dy: &[f32],
    eps: f32,
    dx: &mut [f32],
    dgamma: &mut [f32],
    dbeta: &mut [f32],
    cols: usize,
) {
    let rows = (x.len() / cols) as f64;
    for c in 0..cols {
        let inv = 1.0 / (var[c] as f64 + eps as f64).sqrt();
        let xhat = |r: usize| (x[r * cols + c] as f64 - mean[c] as f64) * inv;
        let n = x.len() / cols;
        let sum_dy: f64 = (0..n).map(|r| dy[r * cols + c] as f64).sum();
        let sum_dy_xhat: f64 = (0..n).map(|r| dy[r * cols + c] as f64 * xhat(r)).sum();
        for r in 0..n {
            let g = dy[r * cols + c] as f64 - sum_dy / rows - xhat(r) * sum_dy_xhat / rows;
            dx[r * cols + c] = (gamma[c] as f64 * inv * g) as f32;
        }
        dgamma[c] = sum_dy_xhat as f32;
        dbeta[c] = sum_dy as f32;
    }
}

/// Keras' moving average: `moving = momentum · moving + (1 - momentum) · batch`.
pub fn moving_average(momentum: f32, moving: &mut [f32], batch: &[f32]) {
    let m = momentum as f64;
    for (v, &b) in moving.iter_mut().zip(batch) {
        *v = (m * *v as f64 + (1.0 - m) * b as f64) as f32;
    }
}

// ----------------------------------------------------------------------------------------
// PReLU

/// `y = x` where `x > 0`, else `alpha[c] · x` (`alpha` `[1, C]`, one slope per unit).
pub fn prelu_forward(x: &[f32], alpha: &[f32], y: &mut [f32], cols: usize) {
    for (i, (out, &v)) in y.iter_mut().zip(x).enumerate() {
        *out = if v > 0.0 {
            v
        } else {
            (alpha[i % cols] as f64 * v as f64) as f32
        };
    }
}

/// The backward of [`prelu_forward`]: `dx = dy` where `x > 0`, else `alpha[c] · dy`;
/// `dalpha[c] = Σ_r dy · x` over the rows where `x ≤ 0`.
pub fn prelu_backward(
    x: &[f32],
    alpha: &[f32],
    dy: &[f32],
    dx: &mut [f32],
    dalpha: &mut [f32],
    cols: usize,
) {
    let mut sums = vec![0.0f64; cols];
    for (i, (out, (&v, &g))) in dx.iter_mut().zip(x.iter().zip(dy)).enumerate() {
        let c = i % cols;
        if v > 0.0 {
            *out = g;
        } else {
            *out = (alpha[c] as f64 * g as f64) as f32;
            sums[c] += g as f64 * v as f64;
        }
    }
    for (out, s) in dalpha.iter_mut().zip(sums) {
        *out = s as f32;
    }
}

// ----------------------------------------------------------------------------------------
// maxout

/// `y[r, u] = max_k z[r, u · pieces + k]`: `z` is `[N, units · pieces]`, each unit's pieces
/// side by side (TensorFlow Addons' layout), `y` `[N, units]`.
pub fn maxout_forward(z: &[f32], y: &mut [f32], units: usize, pieces: usize) {
    for (r, row) in y.chunks_mut(units).enumerate() {
        for (u, out) in row.iter_mut().enumerate() {
            let base = r * units * pieces + u * pieces;
            *out = z[base + maxout_winner(&z[base..base + pieces])];
        }
    }
}

/// The first piece holding the largest value: the one the gradient flows to.
pub fn maxout_winner(pieces: &[f32]) -> usize {
    let mut best = 0;
    for (k, &v) in pieces.iter().enumerate().skip(1) {
        if v > pieces[best] {
            best = k;
        }
    }
    best
}

/// The backward of [`maxout_forward`]: `dz` is `dy` at each unit's winning piece, 0 elsewhere.
pub fn maxout_backward(z: &[f32], dy: &[f32], dz: &mut [f32], units: usize, pieces: usize) {
    for (r, row) in dy.chunks(units).enumerate() {
        for (u, &g) in row.iter().enumerate() {
            let base = r * units * pieces + u * pieces;
            let win = maxout_winner(&z[base..base + pieces]);
            for k in 0..pieces {
                dz[base + k] = if k == win { g } else { 0.0 };
            }
        }
    }
}

// ----------------------------------------------------------------------------------------
// weight penalties

/// Keras' `L1L2` penalty of `w`: `l1 · Σ |w| + l2 · Σ w²`.
pub fn penalty(w: &[f32], l1: f32, l2: f32) -> f64 {
    let (a, s) = w.iter().fold((0.0f64, 0.0f64), |(a, s), &v| {
        (a + (v as f64).abs(), s + v as f64 * v as f64)
    });
    l1 as f64 * a + l2 as f64 * s
}

/// Adds the penalty's gradient to `grad`: `l1 · sign(w) + 2 · l2 · w` (sign(0) = 0).
pub fn penalty_backward(w: &[f32], grad: &mut [f32], l1: f32, l2: f32) {
    for (g, &v) in grad.iter_mut().zip(w) {
        let v = v as f64;
        let sign = if v > 0.0 {
            1.0
        } else if v < 0.0 {
            -1.0
        } else {
            0.0
        };
        *g = (*g as f64 + l1 as f64 * sign + 2.0 * l2 as f64 * v) as f32;
    }
}
