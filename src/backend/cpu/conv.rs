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

/// A window's numbers worked out once per op (what [`Window::tap`] computes per call).
#[derive(Clone, Copy)]
struct Taps {
    in_h: usize,
    in_w: usize,
    out_w: usize,
    k_h: usize,
    k_w: usize,
    strides: [usize; 2],
    pad: [usize; 2],
}

impl Taps {
    fn of(w: &Window) -> Taps {
        Taps {
            in_h: w.input[0],
            in_w: w.input[1],
            out_w: w.output()[1],
            k_h: w.kernel[0],
            k_w: w.kernel[1],
            strides: w.strides,
            pad: w.pad_before(),
        }
    }

    /// The input position (`y·W + x`) tap `t` of output position `o` reads, or `None` in the
    /// padding: [`Window::tap`].
    #[inline]
    fn at(&self, o: usize, t: usize) -> Option<usize> {
        let (oy, ox, i, j) = (o / self.out_w, o % self.out_w, t / self.k_w, t % self.k_w);
        let y = (oy * self.strides[0] + i).checked_sub(self.pad[0])?;
        let x = (ox * self.strides[1] + j).checked_sub(self.pad[1])?;
        (y < self.in_h && x < self.in_w).then_some(y * self.in_w + x)
    }

    fn count(&self) -> usize {
        self.k_h * self.k_w
    }
}

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
    let (c, len, positions, g) = (w.input[2], w.input_len(), w.positions(), Taps::of(w));
    let taps = g.count() * c;
    b.pool.rows(cols, taps, PARALLEL_VALUES, &|rows, out| {
        for (r, row) in rows.zip(out.chunks_exact_mut(taps)) {
            let (n, o) = (r / positions, r % positions);
            let image = &x[n * len..][..len];
            for t in 0..g.count() {
                let dst = &mut row[t * c..][..c];
                match g.at(o, t) {
                    Some(p) => dst.copy_from_slice(&image[p * c..][..c]),
                    None => dst.fill(0.0),
                }
            }
        }
    });
}

/// The backward of [`im2col`]: `dx[n, p·C + c]` is the sum of the rows' entries that read it,
/// in row order within each image.
fn col2im(b: &CpuBackend, dcols: &[f32], w: &Window, dx: &mut [f32]) {
    let (c, len, positions, g) = (w.input[2], w.input_len(), w.positions(), Taps::of(w));
    let taps = g.count() * c;
    b.pool.rows(dx, len, PARALLEL_VALUES, &|images, out| {
        for (n, image) in images.zip(out.chunks_exact_mut(len)) {
            image.fill(0.0);
            for o in 0..positions {
                let row = &dcols[(n * positions + o) * taps..][..taps];
                for t in 0..g.count() {
                    if let Some(p) = g.at(o, t) {
                        let dst = &mut image[p * c..][..c];
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

pub(super) fn max_pool_forward(
    b: &mut CpuBackend,
    x: &HostTensor,
    w: &Window,
    y: &mut HostTensor,
    winners: &mut HostTensor,
) -> Result<()> {
    check::pool("max_pool_forward", x, w, y)?;
    check::same("max_pool_forward", &[("y", &*y), ("winners", &*winners)])?;
    let (c, len, out, g) = (
        w.input[2],
        w.input_len(),
        w.positions() * w.input[2],
        Taps::of(w),
    );
    let win = SyncSlice(winners.data.as_mut_ptr());
    b.pool
        .rows(&mut y.data, out, PARALLEL_VALUES, &|images, ys| {
            for (n, yn) in images.zip(ys.chunks_exact_mut(out)) {
                let image = &x.data[n * len..][..len];
                // SAFETY: each part writes the winners of its own images only.
                let wn = unsafe { std::slice::from_raw_parts_mut(win.at(n * out), out) };
                for (o, (yo, wo)) in yn
                    .chunks_exact_mut(c)
                    .zip(wn.chunks_exact_mut(c))
                    .enumerate()
                {
                    // Taps in the reference's order, each channel keeping its first largest.
                    let mut first = true;
                    for t in 0..g.count() {
                        let Some(p) = g.at(o, t) else { continue };
                        let src = &image[p * c..][..c];
                        for (ch, ((yv, wv), &v)) in
                            yo.iter_mut().zip(wo.iter_mut()).zip(src).enumerate()
                        {
                            if first || v > *yv {
                                (*yv, *wv) = (v, (p * c + ch) as f32);
                            }
                        }
                        first = false;
                    }
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
fn inside(g: &Taps, o: usize) -> f32 {
    (0..g.count()).filter(|&t| g.at(o, t).is_some()).count() as f32
}

pub(super) fn avg_pool_forward(
    b: &mut CpuBackend,
    x: &HostTensor,
    w: &Window,
    y: &mut HostTensor,
) -> Result<()> {
    check::pool("avg_pool_forward", x, w, y)?;
    let (c, len, positions, g) = (w.input[2], w.input_len(), w.positions(), Taps::of(w));
    b.pool.rows(
        &mut y.data,
        positions * c,
        PARALLEL_VALUES,
        &|images, ys| {
            for (n, yn) in images.zip(ys.chunks_exact_mut(positions * c)) {
                let image = &x.data[n * len..][..len];
                for (o, yo) in yn.chunks_exact_mut(c).enumerate() {
                    yo.fill(0.0);
                    for p in (0..g.count()).filter_map(|t| g.at(o, t)) {
                        for (d, &v) in yo.iter_mut().zip(&image[p * c..][..c]) {
                            *d += v;
                        }
                    }
                    let count = inside(&g, o);
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
    let (c, len, positions, g) = (w.input[2], w.input_len(), w.positions(), Taps::of(w));
    b.pool
        .rows(&mut dx.data, len, PARALLEL_VALUES, &|images, dxs| {
            for (n, dxn) in images.zip(dxs.chunks_exact_mut(len)) {
                dxn.fill(0.0);
                for o in 0..positions {
                    let grad = &dy.data[(n * positions + o) * c..][..c];
                    let count = inside(&g, o);
                    for p in (0..g.count()).filter_map(|t| g.at(o, t)) {
                        for (d, &v) in dxn[p * c..][..c].iter_mut().zip(grad) {
                            *d += v / count;
                        }
                    }
                }
            }
        });
    Ok(())
}
