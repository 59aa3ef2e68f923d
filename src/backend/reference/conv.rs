//! The reference functions of the convolutional layers: 2-D convolution (forward, and its
//! gradients with respect to the input and to the kernel) and max and average pooling, on
//! channels-last images laid out as [`Window`] describes. Plain loops in f64, each output
//! rounded once to f32; the other backends are held to them by the parity suite.
//!
//! The kernel `[kh, kw, C, F]` (Keras' layout) is the row-major matrix `[kh·kw·C, F]`: tap
//! `(i, j)`, input channel `c` and filter `f` at `((i·kw + j)·C + c)·F + f`.

use crate::backend::Window;

/// Every (output position, tap, input position) of one image, in the order the sums run:
/// output rows, output columns, kernel rows, kernel columns. Taps in the padding are left out.
fn taps(w: &Window) -> impl Iterator<Item = (usize, usize, usize)> + '_ {
    let [oh, ow] = w.output();
    let [kh, kw] = w.kernel;
    (0..oh * ow).flat_map(move |o| {
        (0..kh * kw).filter_map(move |t| {
            let [y, x] = w.tap([o / ow, o % ow], [t / kw, t % kw])?;
            Some((o, t, y * w.input[1] + x))
        })
    })
}

/// `z = conv(x, kernel) + bias` for `rows` images: `x` `[rows, H·W·C]`, `z`
/// `[rows, Ho·Wo·F]`, `z[n, o·F + f] = bias[f] + Σ_{taps, c} x[n, p·C + c] · k[(t·C + c)·F + f]`
/// over the taps `t` of output position `o` that read input position `p`.
pub fn conv2d_forward(
    x: &[f32],
    kernel: &[f32],
    bias: Option<&[f32]>,
    w: &Window,
    filters: usize,
    z: &mut [f32],
) {
    let (c, len, positions) = (w.input[2], w.input_len(), w.positions());
    for (xn, zn) in x.chunks(len).zip(z.chunks_mut(positions * filters)) {
        let mut acc = vec![0f64; positions * filters];
        for (o, t, p) in taps(w) {
            for ch in 0..c {
                let v = xn[p * c + ch] as f64;
                let k = &kernel[(t * c + ch) * filters..][..filters];
                for (a, &kv) in acc[o * filters..][..filters].iter_mut().zip(k) {
                    *a += v * kv as f64;
                }
            }
        }
        for (i, (out, a)) in zn.iter_mut().zip(acc).enumerate() {
            *out = (a + bias.map_or(0.0, |b| b[i % filters] as f64)) as f32;
        }
    }
}

/// The gradient of [`conv2d_forward`] with respect to its input: `dx[n, p·C + c] =
/// Σ_{(o, t) reading p} Σ_f dz[n, o·F + f] · k[(t·C + c)·F + f]` (0 where no tap reads `p`).
pub fn conv2d_backward_input(
    dz: &[f32],
    kernel: &[f32],
    w: &Window,
    filters: usize,
    dx: &mut [f32],
) {
    let (c, len, positions) = (w.input[2], w.input_len(), w.positions());
    for (dzn, dxn) in dz.chunks(positions * filters).zip(dx.chunks_mut(len)) {
        let mut acc = vec![0f64; len];
        for (o, t, p) in taps(w) {
            let d = &dzn[o * filters..][..filters];
            for ch in 0..c {
                let k = &kernel[(t * c + ch) * filters..][..filters];
                let s: f64 = d.iter().zip(k).map(|(&g, &kv)| g as f64 * kv as f64).sum();
                acc[p * c + ch] += s;
            }
        }
        for (out, a) in dxn.iter_mut().zip(acc) {
            *out = a as f32;
        }
    }
}

/// The gradients of [`conv2d_forward`] with respect to the kernel and the bias, summed over
/// the batch: `dk[(t·C + c)·F + f] = Σ_n Σ_{(o, t) reading p} x[n, p·C + c] · dz[n, o·F + f]`,
/// `db[f] = Σ_n Σ_o dz[n, o·F + f]`.
pub fn conv2d_backward_kernel(
    x: &[f32],
    dz: &[f32],
    w: &Window,
    filters: usize,
    dkernel: &mut [f32],
    dbias: Option<&mut [f32]>,
) {
    let (c, len, positions) = (w.input[2], w.input_len(), w.positions());
    let mut acc = vec![0f64; dkernel.len()];
    let mut bias = vec![0f64; filters];
    for (xn, dzn) in x.chunks(len).zip(dz.chunks(positions * filters)) {
        for (o, t, p) in taps(w) {
            let d = &dzn[o * filters..][..filters];
            for ch in 0..c {
                let v = xn[p * c + ch] as f64;
                for (a, &g) in acc[(t * c + ch) * filters..][..filters].iter_mut().zip(d) {
                    *a += v * g as f64;
                }
            }
        }
        for row in dzn.chunks(filters) {
            for (b, &g) in bias.iter_mut().zip(row) {
                *b += g as f64;
            }
        }
    }
    for (out, a) in dkernel.iter_mut().zip(acc) {
        *out = a as f32;
    }
    if let Some(db) = dbias {
        for (out, b) in db.iter_mut().zip(bias) {
            *out = b as f32;
        }
    }
}

/// The input position (within one image, `p·C + c`) max pooling takes for output `o`,
/// channel `ch`: the first largest of the window's taps inside the image, scanned by rows
/// then columns (a NaN wins only where it comes first).
fn max_pool_winner(xn: &[f32], w: &Window, o: usize, ch: usize) -> usize {
    let [_, ow] = w.output();
    let [kh, kw] = w.kernel;
    let c = w.input[2];
    let mut best: Option<usize> = None;
    for t in 0..kh * kw {
        if let Some([y, x]) = w.tap([o / ow, o % ow], [t / kw, t % kw]) {
            let i = (y * w.input[1] + x) * c + ch;
            if best.is_none_or(|b| xn[i] > xn[b]) {
                best = Some(i);
            }
        }
    }
    // Every window holds at least one position of the image (Window::validate, and 'same'
    // padding never exceeds the kernel).
    best.expect("a pooling window inside the image")
}

/// Max pooling for `rows` images: `y[n, o·C + c]` is the largest input of window `o` in
/// channel `c`, and `winners[n, o·C + c]` its position within the image (`p·C + c`, as an
/// exact f32), which the backward pass routes the gradient to.
pub fn max_pool_forward(x: &[f32], w: &Window, y: &mut [f32], winners: &mut [f32]) {
    let (c, len, out) = (w.input[2], w.input_len(), w.positions() * w.input[2]);
    for ((xn, yn), wn) in x
        .chunks(len)
        .zip(y.chunks_mut(out))
        .zip(winners.chunks_mut(out))
    {
        for (i, (yv, wv)) in yn.iter_mut().zip(wn).enumerate() {
            let win = max_pool_winner(xn, w, i / c, i % c);
            (*yv, *wv) = (xn[win], win as f32);
        }
    }
}

/// The backward of [`max_pool_forward`]: `dx[n, p]` is the sum of `dy` over the outputs
/// whose winner was `p` (in output order), 0 where none chose it.
pub fn max_pool_backward(dy: &[f32], winners: &[f32], w: &Window, dx: &mut [f32]) {
    let (len, out) = (w.input_len(), w.positions() * w.input[2]);
    for ((dyn_, wn), dxn) in dy
        .chunks(out)
        .zip(winners.chunks(out))
        .zip(dx.chunks_mut(len))
    {
        let mut acc = vec![0f64; len];
        for (&g, &win) in dyn_.iter().zip(wn) {
            acc[win as usize] += g as f64;
        }
        for (d, a) in dxn.iter_mut().zip(acc) {
            *d = a as f32;
        }
    }
}

/// How many of output position `o`'s taps lie inside the image: the divisor of average
/// pooling (padding is not counted, as in Keras).
fn inside(w: &Window, o: usize) -> usize {
    let [_, ow] = w.output();
    let [kh, kw] = w.kernel;
    (0..kh * kw)
        .filter(|t| w.tap([o / ow, o % ow], [t / kw, t % kw]).is_some())
        .count()
}

/// Average pooling: `y[n, o·C + c]` is the mean of window `o`'s inputs in channel `c` inside
/// the image.
pub fn avg_pool_forward(x: &[f32], w: &Window, y: &mut [f32]) {
    let (c, len, positions) = (w.input[2], w.input_len(), w.positions());
    for (xn, yn) in x.chunks(len).zip(y.chunks_mut(positions * c)) {
        let mut acc = vec![0f64; positions * c];
        for (o, _, p) in taps(w) {
            for ch in 0..c {
                acc[o * c + ch] += xn[p * c + ch] as f64;
            }
        }
        for (i, (out, a)) in yn.iter_mut().zip(acc).enumerate() {
            *out = (a / inside(w, i / c) as f64) as f32;
        }
    }
}

/// The backward of [`avg_pool_forward`]: each output's gradient shared equally by the inputs
/// it averaged, `dx[n, p·C + c] = Σ_{o reading p} dy[n, o·C + c] / count(o)`.
pub fn avg_pool_backward(dy: &[f32], w: &Window, dx: &mut [f32]) {
    let (c, len, positions) = (w.input[2], w.input_len(), w.positions());
    let counts: Vec<f64> = (0..positions).map(|o| inside(w, o) as f64).collect();
    for (dyn_, dxn) in dy.chunks(positions * c).zip(dx.chunks_mut(len)) {
        let mut acc = vec![0f64; len];
        for (o, _, p) in taps(w) {
            for ch in 0..c {
                acc[p * c + ch] += dyn_[o * c + ch] as f64 / counts[o];
            }
        }
        for (d, a) in dxn.iter_mut().zip(acc) {
            *d = a as f32;
        }
    }
}

/// The convolution and pooling ops on [`HostTensor`](crate::backend::HostTensor)s, checked as every backend checks them:
/// what [`window_ops!`](crate::window_ops) makes the reference's (and, until it has
/// its own, the fast CPU backend's) [`Backend`](crate::backend::Backend) methods of.
pub mod checked {
    use super::*;
    use crate::backend::{check, HostTensor};
    use crate::error::Result;

    /// [`conv2d_forward`].
    pub fn conv2d<B>(
        _: &mut B,
        x: &HostTensor,
        kernel: &HostTensor,
        bias: Option<&HostTensor>,
        w: &Window,
        z: &mut HostTensor,
    ) -> Result<()> {
        check::conv2d("conv2d", x, kernel, bias, w, z)?;
        let bias = bias.map(|b| b.data.as_slice());
        conv2d_forward(&x.data, &kernel.data, bias, w, kernel.cols, &mut z.data);
        Ok(())
    }

    /// [`conv2d_backward_input`].
    pub fn conv2d_backward_input<B>(
        _: &mut B,
        dz: &HostTensor,
        kernel: &HostTensor,
        w: &Window,
        dx: &mut HostTensor,
    ) -> Result<()> {
        check::conv2d("conv2d_backward_input", dx, kernel, None, w, dz)?;
        super::conv2d_backward_input(&dz.data, &kernel.data, w, kernel.cols, &mut dx.data);
        Ok(())
    }

    /// [`conv2d_backward_kernel`].
    pub fn conv2d_backward_kernel<B>(
        _: &mut B,
        x: &HostTensor,
        dz: &HostTensor,
        w: &Window,
        dkernel: &mut HostTensor,
        dbias: Option<&mut HostTensor>,
    ) -> Result<()> {
        let op = "conv2d_backward_kernel";
        check::conv2d(op, x, dkernel, dbias.as_deref(), w, dz)?;
        let filters = dkernel.cols;
        let dbias = dbias.map(|b| b.data.as_mut_slice());
        super::conv2d_backward_kernel(&x.data, &dz.data, w, filters, &mut dkernel.data, dbias);
        Ok(())
    }

    /// [`max_pool_forward`].
    pub fn max_pool_forward<B>(
        _: &mut B,
        x: &HostTensor,
        w: &Window,
        y: &mut HostTensor,
        winners: &mut HostTensor,
    ) -> Result<()> {
        check::pool("max_pool_forward", x, w, y)?;
        check::same("max_pool_forward", &[("y", &*y), ("winners", &*winners)])?;
        super::max_pool_forward(&x.data, w, &mut y.data, &mut winners.data);
        Ok(())
    }

    /// [`max_pool_backward`].
    pub fn max_pool_backward<B>(
        _: &mut B,
        dy: &HostTensor,
        winners: &HostTensor,
        w: &Window,
        dx: &mut HostTensor,
    ) -> Result<()> {
        check::pool("max_pool_backward", dx, w, dy)?;
        check::same("max_pool_backward", &[("dy", dy), ("winners", winners)])?;
        check::winners("max_pool_backward", &winners.data, w)?;
        super::max_pool_backward(&dy.data, &winners.data, w, &mut dx.data);
        Ok(())
    }

    /// [`avg_pool_forward`].
    pub fn avg_pool_forward<B>(
        _: &mut B,
        x: &HostTensor,
        w: &Window,
        y: &mut HostTensor,
    ) -> Result<()> {
        check::pool("avg_pool_forward", x, w, y)?;
        super::avg_pool_forward(&x.data, w, &mut y.data);
        Ok(())
    }

    /// [`avg_pool_backward`].
    pub fn avg_pool_backward<B>(
        _: &mut B,
        dy: &HostTensor,
        w: &Window,
        dx: &mut HostTensor,
    ) -> Result<()> {
        check::pool("avg_pool_backward", dx, w, dy)?;
        super::avg_pool_backward(&dy.data, w, &mut dx.data);
        Ok(())
    }
}
