//! Convolution and pooling on the fast CPU backend. A convolution is one GEMM over the whole
//! batch: the input's windows laid out as rows (`cols [N·Ho·Wo, kh·kw·C]`, im2col, built in
//! parallel over the rows), times the kernel `[kh·kw·C, F]`, which is the output
//! `[N·Ho·Wo, F]` = `[N, Ho·Wo·F]` as it lies in memory; the bias and activation run in the
//! GEMM's epilogue, as for Dense. The kernel gradient is `colsᵀ · dz`, the input gradient
//! `dz · Kᵀ` folded back onto the image (col2im, in parallel over the images, each summed in
//! one order). Pooling runs in f32 over the images in parallel. The windows' buffers are the
//! backend's, grown on first use, so a step allocates nothing once it has run; every sum runs
//! in an order that does not depend on the thread count.

use super::gemm::matmul_into;
use super::CpuBackend;
use crate::backend::{check, Activation, HostTensor, Window};
use crate::error::Result;

/// Rows of work below this many values run on one thread.
const PARALLEL_VALUES: usize = 1 << 14;

/// `buf` at least `len` long (growing it only the first time a shape needs more).
fn at_least(buf: &mut Vec<f32>, len: usize) -> &mut [f32] {
    if buf.len() < len {
        buf.resize(len, 0.0);
    }
    &mut buf[..len]
}

/// The windows of `x` as rows: row `n·P + o`, column `t·C + c` is input channel `c` under
/// tap `t` of output position `o` of image `n` (0 in the padding).
fn im2col(b: &CpuBackend, x: &[f32], w: &Window, cols: &mut [f32]) {
    let (c, len, positions) = (w.input[2], w.input_len(), w.positions());
    let [kh, kw] = w.kernel;
    let [_, ow] = w.output();
    let taps = kh * kw * c;
    b.pool.rows(cols, taps, PARALLEL_VALUES, &|rows, out| {
        for (r, row) in rows.zip(out.chunks_exact_mut(taps)) {
            let (n, o) = (r / positions, r % positions);
            let image = &x[n * len..][..len];
            for t in 0..kh * kw {
                let dst = &mut row[t * c..][..c];
                match w.tap([o / ow, o % ow], [t / kw, t % kw]) {
                    Some([y, xx]) => dst.copy_from_slice(&image[(y * w.input[1] + xx) * c..][..c]),
                    None => dst.fill(0.0),
                }
            }
        }
    });
}

/// The backward of [`im2col`]: `dx[n, p·C + c]` is the sum of the rows' entries that read it,
/// in row order within each image.
fn col2im(b: &CpuBackend, dcols: &[f32], w: &Window, dx: &mut [f32]) {
    let (c, len, positions) = (w.input[2], w.input_len(), w.positions());
    let [kh, kw] = w.kernel;
    let [_, ow] = w.output();
    let taps = kh * kw * c;
    b.pool.rows(dx, len, PARALLEL_VALUES, &|images, out| {
        for (n, image) in images.zip(out.chunks_exact_mut(len)) {
            image.fill(0.0);
            for o in 0..positions {
                let row = &dcols[(n * positions + o) * taps..][..taps];
                for t in 0..kh * kw {
                    if let Some([y, xx]) = w.tap([o / ow, o % ow], [t / kw, t % kw]) {
                        let dst = &mut image[(y * w.input[1] + xx) * c..][..c];
                        for (d, &v) in dst.iter_mut().zip(&row[t * c..][..c]) {
                            *d += v;
                        }
                    }
                }
            }
        }
    });
}

/// [`Backend::conv2d_forward`](crate::backend::Backend::conv2d_forward): im2col, then one
/// GEMM with the bias and activation in its epilogue (softmax is refused).
#[allow(clippy::too_many_arguments)]
pub(super) fn conv2d_forward(
    b: &mut CpuBackend,
    x: &HostTensor,
    kernel: &HostTensor,
    bias: Option<&HostTensor>,
    w: &Window,
    act: Activation,
    z: &mut HostTensor,
    a: &mut HostTensor,
) -> Result<()> {
    check::feature_map_activation("conv2d_forward", act)?;
    check::conv2d("conv2d_forward", x, kernel, bias, w, z)?;
    check::same("conv2d_forward", &[("z", &*z), ("a", &*a)])?;
    let (rows, taps, filters) = (x.rows * w.positions(), kernel.rows, kernel.cols);
    let mut cols = std::mem::take(&mut b.cols);
    let mut zeros = std::mem::take(&mut b.zero_bias);
    let window = at_least(&mut cols, rows * taps);
    im2col(b, &x.data, w, window);
    let bias = match bias {
        Some(t) => t.data.as_slice(),
        None => &*at_least(&mut zeros, filters),
    };
    let epilogue = Some((act, bias, a.data.as_mut_slice()));
    matmul_into(
        &b.pool,
        window,
        false,
        &kernel.data,
        false,
        &mut z.data,
        [rows, filters, taps],
        epilogue,
    );
    (b.cols, b.zero_bias) = (cols, zeros);
    Ok(())
}

/// [`Backend::conv2d`](crate::backend::Backend::conv2d): the forward without an activation,
/// into `z` alone.
pub(super) fn conv2d(
    b: &mut CpuBackend,
    x: &HostTensor,
    kernel: &HostTensor,
    bias: Option<&HostTensor>,
    w: &Window,
    z: &mut HostTensor,
) -> Result<()> {
    check::conv2d("conv2d", x, kernel, bias, w, z)?;
    let (rows, taps, filters) = (x.rows * w.positions(), kernel.rows, kernel.cols);
    let mut cols = std::mem::take(&mut b.cols);
    let window = at_least(&mut cols, rows * taps);
    im2col(b, &x.data, w, window);
    matmul_into(
        &b.pool,
        window,
        false,
        &kernel.data,
        false,
        &mut z.data,
        [rows, filters, taps],
        None,
    );
    if let Some(bias) = bias {
        b.pool
            .rows(&mut z.data, filters, PARALLEL_VALUES, &|_, out| {
                for row in out.chunks_exact_mut(filters) {
                    for (v, &bv) in row.iter_mut().zip(&bias.data) {
                        *v += bv;
                    }
                }
            });
    }
    b.cols = cols;
    Ok(())
}

pub(super) fn conv2d_backward_input(
    b: &mut CpuBackend,
    dz: &HostTensor,
    kernel: &HostTensor,
    w: &Window,
    dx: &mut HostTensor,
) -> Result<()> {
    check::conv2d("conv2d_backward_input", dx, kernel, None, w, dz)?;
    let (rows, taps, filters) = (dx.rows * w.positions(), kernel.rows, kernel.cols);
    let mut dcols = std::mem::take(&mut b.cols);
    let window = at_least(&mut dcols, rows * taps);
    // dcols [N·P, T] = dz [N·P, F] · Kᵀ
    matmul_into(
        &b.pool,
        &dz.data,
        false,
        &kernel.data,
        true,
        window,
        [rows, taps, filters],
        None,
    );
    col2im(b, window, w, &mut dx.data);
    b.cols = dcols;
    Ok(())
}

pub(super) fn conv2d_backward_kernel(
    b: &mut CpuBackend,
    x: &HostTensor,
    dz: &HostTensor,
    w: &Window,
    dkernel: &mut HostTensor,
    dbias: Option<&mut HostTensor>,
) -> Result<()> {
    let op = "conv2d_backward_kernel";
    check::conv2d(op, x, dkernel, dbias.as_deref(), w, dz)?;
    let (rows, taps, filters) = (x.rows * w.positions(), dkernel.rows, dkernel.cols);
    let mut cols = std::mem::take(&mut b.cols);
    let window = at_least(&mut cols, rows * taps);
    im2col(b, &x.data, w, window);
    // dK [T, F] = colsᵀ [T, N·P] · dz [N·P, F]
    matmul_into(
        &b.pool,
        window,
        true,
        &dz.data,
        false,
        &mut dkernel.data,
        [taps, filters, rows],
        None,
    );
    b.cols = cols;
    if let Some(db) = dbias {
        // Row by row in order, each filter's sum in f32: the same bits on any thread count.
        db.data.fill(0.0);
        for row in dz.data.chunks_exact(filters) {
            for (s, v) in db.data.iter_mut().zip(row) {
                *s += v;
            }
        }
    }
    Ok(())
}

/// Image `n`'s output `o`, channel `ch`: the first largest input of its window (as the
/// reference scans it) and where it is in the image.
fn max_of(image: &[f32], w: &Window, o: usize, ch: usize) -> (f32, usize) {
    let [_, ow] = w.output();
    let [kh, kw] = w.kernel;
    let c = w.input[2];
    let mut best: Option<(f32, usize)> = None;
    for t in 0..kh * kw {
        if let Some([y, x]) = w.tap([o / ow, o % ow], [t / kw, t % kw]) {
            let i = (y * w.input[1] + x) * c + ch;
            if best.is_none_or(|(v, _)| image[i] > v) {
                best = Some((image[i], i));
            }
        }
    }
    best.expect("a pooling window inside the image")
}

pub(super) fn max_pool_forward(
    b: &mut CpuBackend,
    x: &HostTensor,
    w: &Window,
    y: &mut HostTensor,
    winners: &mut HostTensor,
) -> Result<()> {
    check::pool("max_pool_forward", x, w, y)?;
    check::same("max_pool_forward", &[("y", &*y), ("winners", &*winners)])?;
    let (c, len, out) = (w.input[2], w.input_len(), w.positions() * w.input[2]);
    let win = SyncSlice(winners.data.as_mut_ptr());
    b.pool
        .rows(&mut y.data, out, PARALLEL_VALUES, &|images, ys| {
            for (n, yn) in images.zip(ys.chunks_exact_mut(out)) {
                let image = &x.data[n * len..][..len];
                for (i, yv) in yn.iter_mut().enumerate() {
                    let (v, at) = max_of(image, w, i / c, i % c);
                    *yv = v;
                    // SAFETY: each part writes the winners of its own images only.
                    unsafe { *win.at(n * out + i) = at as f32 };
                }
            }
        });
    Ok(())
}

/// A pointer the pool's parts write disjoint elements through.
#[derive(Clone, Copy)]
struct SyncSlice(*mut f32);
unsafe impl Send for SyncSlice {}
unsafe impl Sync for SyncSlice {}

impl SyncSlice {
    /// Element `i` (a method, so that closures capture the whole, `Sync`, value).
    fn at(&self, i: usize) -> *mut f32 {
        self.0.wrapping_add(i)
    }
}

pub(super) fn max_pool_backward(
    b: &mut CpuBackend,
    dy: &HostTensor,
    winners: &HostTensor,
    w: &Window,
    dx: &mut HostTensor,
) -> Result<()> {
    check::pool("max_pool_backward", dx, w, dy)?;
    check::same("max_pool_backward", &[("dy", dy), ("winners", winners)])?;
    check::winners("max_pool_backward", &winners.data, w)?;
    let (len, out) = (w.input_len(), w.positions() * w.input[2]);
    b.pool
        .rows(&mut dx.data, len, PARALLEL_VALUES, &|images, dxs| {
            for (n, dxn) in images.zip(dxs.chunks_exact_mut(len)) {
                dxn.fill(0.0);
                let (g, at) = (&dy.data[n * out..][..out], &winners.data[n * out..][..out]);
                for (&gv, &p) in g.iter().zip(at) {
                    dxn[p as usize] += gv;
                }
            }
        });
    Ok(())
}

/// How many of output `o`'s taps lie inside the image.
fn inside(w: &Window, o: usize) -> f32 {
    let [_, ow] = w.output();
    let [kh, kw] = w.kernel;
    (0..kh * kw)
        .filter(|t| w.tap([o / ow, o % ow], [t / kw, t % kw]).is_some())
        .count() as f32
}

pub(super) fn avg_pool_forward(
    b: &mut CpuBackend,
    x: &HostTensor,
    w: &Window,
    y: &mut HostTensor,
) -> Result<()> {
    check::pool("avg_pool_forward", x, w, y)?;
    let (c, len, positions) = (w.input[2], w.input_len(), w.positions());
    let [_, ow] = w.output();
    let [kh, kw] = w.kernel;
    b.pool.rows(
        &mut y.data,
        positions * c,
        PARALLEL_VALUES,
        &|images, ys| {
            for (n, yn) in images.zip(ys.chunks_exact_mut(positions * c)) {
                let image = &x.data[n * len..][..len];
                for (o, yo) in yn.chunks_exact_mut(c).enumerate() {
                    yo.fill(0.0);
                    for t in 0..kh * kw {
                        if let Some([yy, xx]) = w.tap([o / ow, o % ow], [t / kw, t % kw]) {
                            let src = &image[(yy * w.input[1] + xx) * c..][..c];
                            for (d, &v) in yo.iter_mut().zip(src) {
                                *d += v;
                            }
                        }
                    }
                    let count = inside(w, o);
                    for d in yo.iter_mut() {
                        *d /= count;
                    }
                }
            }
        },
    );
    Ok(())
}

pub(super) fn avg_pool_backward(
    b: &mut CpuBackend,
    dy: &HostTensor,
    w: &Window,
    dx: &mut HostTensor,
) -> Result<()> {
    check::pool("avg_pool_backward", dx, w, dy)?;
    let (c, len, positions) = (w.input[2], w.input_len(), w.positions());
    let [_, ow] = w.output();
    let [kh, kw] = w.kernel;
    b.pool
        .rows(&mut dx.data, len, PARALLEL_VALUES, &|images, dxs| {
            for (n, dxn) in images.zip(dxs.chunks_exact_mut(len)) {
                dxn.fill(0.0);
                for o in 0..positions {
                    let g = &dy.data[(n * positions + o) * c..][..c];
                    let count = inside(w, o);
                    for t in 0..kh * kw {
                        if let Some([yy, xx]) = w.tap([o / ow, o % ow], [t / kw, t % kw]) {
                            let dst = &mut dxn[(yy * w.input[1] + xx) * c..][..c];
                            for (d, &v) in dst.iter_mut().zip(g) {
                                *d += v / count;
                            }
                        }
                    }
                }
            }
        });
    Ok(())
}
