//! The convolution and pooling ops on [`GpuBackend`]: each checked as every backend checks
//! it, then recorded as dispatches of `shaders/conv.wgsl`. Convolutions have two variants:
//! v2 (the default) lays the windows out as rows (im2col) and multiplies them with the tuned
//! matmul kernels, the input gradient folded back by col2im; v1 is direct, one invocation
//! per output element ([`GpuBackend::set_conv_direct`]). The
//! [`Backend`](crate::backend::Backend) impl in `ops.rs` calls these through
//! [`window_ops!`](crate::window_ops).

use super::kernels::{self, Constants, ConvParams};
use super::{u32_dim, GpuBackend, GpuTensor};
use crate::backend::{check, Backend, Tensor, Window};
use crate::error::Result;

impl GpuBackend {
    /// Runs convolutions as v1, direct (`true`), or v2, im2col and the matmul kernels
    /// (`false`, the default): both are held to the reference by the parity suite.
    pub fn set_conv_direct(&mut self, direct: bool) {
        self.conv_direct = direct;
    }
}

impl GpuTensor {
    /// The same values read as `[rows, cols]` (as many elements): a batch of feature maps
    /// `[N, P·F]` as the product's `[N·P, F]`. Same id and size, so the same bind groups.
    fn reshaped(&self, rows: usize, cols: usize) -> GpuTensor {
        debug_assert_eq!(rows * cols, self.len());
        GpuTensor {
            rows,
            cols,
            ..self.handle()
        }
    }
}

/// The windows' buffer of this shape, made on its first use.
fn scratch(b: &mut GpuBackend, rows: usize, cols: usize) -> Result<GpuTensor> {
    if !b.conv_cols.contains_key(&(rows, cols)) {
        let t = b.zeros(rows, cols)?;
        b.conv_cols.insert((rows, cols), t);
    }
    Ok(b.conv_cols[&(rows, cols)].handle())
}

/// `x`'s windows as the rows of a `[N·P, kh·kw·C]` buffer (v2).
fn im2col(b: &mut GpuBackend, op: &'static str, x: &GpuTensor, w: &Window) -> Result<GpuTensor> {
    let taps = w.kernel[0] * w.kernel[1] * w.input[2];
    let cols = scratch(b, x.rows() * w.positions(), taps)?;
    let p = params(op, w, x.rows(), 1)?;
    u32_dim(op, cols.len())?;
    let groups = b.grid_1d(cols.len())?;
    b.record(
        kernels::IM2COL,
        Constants::default(),
        p,
        &[&cols, x],
        groups,
    )?;
    Ok(cols)
}

/// The uniform of `w` over `rows` images with `filters` output channels.
fn params(op: &'static str, w: &Window, rows: usize, filters: usize) -> Result<ConvParams> {
    let d = |v: usize| u32_dim(op, v);
    let [oh, ow] = w.output();
    let [pt, pl] = w.pad_before();
    // Every index the kernels compute must fit a u32.
    let largest = rows
        .saturating_mul(w.input_len().max(w.positions().saturating_mul(filters)))
        .max(w.kernel[0] * w.kernel[1] * w.input[2] * filters);
    d(largest)?;
    Ok(ConvParams {
        rows: d(rows)?,
        in_h: d(w.input[0])?,
        in_w: d(w.input[1])?,
        in_c: d(w.input[2])?,
        k_h: d(w.kernel[0])?,
        k_w: d(w.kernel[1])?,
        s_h: d(w.strides[0])?,
        s_w: d(w.strides[1])?,
        pad_t: d(pt)?,
        pad_l: d(pl)?,
        out_h: d(oh)?,
        out_w: d(ow)?,
        filters: d(filters)?,
        ..ConvParams::default()
    })
}

pub(super) fn conv2d(
    b: &mut GpuBackend,
    x: &GpuTensor,
    kernel: &GpuTensor,
    bias: Option<&GpuTensor>,
    w: &Window,
    z: &mut GpuTensor,
) -> Result<()> {
    check::conv2d("conv2d", x, kernel, bias, w, z)?;
    if !b.conv_direct {
        let cols = im2col(b, "conv2d", x, w)?;
        let mut out = z.reshaped(cols.rows(), kernel.cols());
        b.matmul(&cols, false, kernel, false, &mut out)?;
        if let Some(bias) = bias {
            b.bias_add(&mut out, bias)?;
        }
        return Ok(());
    }
    let p = ConvParams {
        has_bias: bias.is_some() as u32,
        ..params("conv2d", w, x.rows(), kernel.cols())?
    };
    let groups = b.grid_1d(z.len())?;
    // Without a bias the kernel is bound in its place, and not read there.
    let bias = bias.unwrap_or(kernel);
    b.record(
        kernels::CONV2D_FORWARD,
        Constants::default(),
        p,
        &[z, x, kernel, bias],
        groups,
    )
}

pub(super) fn conv2d_backward_input(
    b: &mut GpuBackend,
    dz: &GpuTensor,
    kernel: &GpuTensor,
    w: &Window,
    dx: &mut GpuTensor,
) -> Result<()> {
    let op = "conv2d_backward_input";
    check::conv2d(op, dx, kernel, None, w, dz)?;
    if !b.conv_direct {
        // dcols [N·P, T] = dz [N·P, F] · Kᵀ, folded back onto the images.
        let mut dcols = scratch(b, dx.rows() * w.positions(), kernel.rows())?;
        let grad = dz.reshaped(dcols.rows(), kernel.cols());
        b.matmul(&grad, false, kernel, true, &mut dcols)?;
        let p = params(op, w, dx.rows(), 1)?;
        let groups = b.grid_1d(dx.len())?;
        return b.record(
            kernels::COL2IM,
            Constants::default(),
            p,
            &[dx, &dcols],
            groups,
        );
    }
    let p = params(op, w, dx.rows(), kernel.cols())?;
    let groups = b.grid_1d(dx.len())?;
    b.record(
        kernels::CONV2D_BACKWARD_INPUT,
        Constants::default(),
        p,
        &[dx, dz, kernel],
        groups,
    )
}

pub(super) fn conv2d_backward_kernel(
    b: &mut GpuBackend,
    x: &GpuTensor,
    dz: &GpuTensor,
    w: &Window,
    dkernel: &mut GpuTensor,
    dbias: Option<&mut GpuTensor>,
) -> Result<()> {
    let op = "conv2d_backward_kernel";
    check::conv2d(op, x, dkernel, dbias.as_deref(), w, dz)?;
    if !b.conv_direct {
        // dK [T, F] = colsᵀ · dz [N·P, F]; db the column sums of dz [N·P, F].
        let cols = im2col(b, op, x, w)?;
        let grad = dz.reshaped(cols.rows(), dkernel.cols());
        b.matmul(&cols, true, &grad, false, dkernel)?;
        if let Some(db) = dbias {
            b.bias_grad(&grad, db)?;
        }
        return Ok(());
    }
    let p = params(op, w, x.rows(), dkernel.cols())?;
    let groups = b.grid_1d(dkernel.len())?;
    b.record(
        kernels::CONV2D_BACKWARD_KERNEL,
        Constants::default(),
        p,
        &[dkernel, x, dz],
        groups,
    )?;
    if let Some(db) = dbias {
        let groups = b.grid_1d(db.len())?;
        b.record(
            kernels::CONV2D_BACKWARD_BIAS,
            Constants::default(),
            p,
            &[db, dz],
            groups,
        )?;
    }
    Ok(())
}

pub(super) fn max_pool_forward(
    b: &mut GpuBackend,
    x: &GpuTensor,
    w: &Window,
    y: &mut GpuTensor,
    winners: &mut GpuTensor,
) -> Result<()> {
    let op = "max_pool_forward";
    check::pool(op, x, w, y)?;
    check::same(op, &[("y", &*y), ("winners", &*winners)])?;
    let p = params(op, w, x.rows(), w.input[2])?;
    let groups = b.grid_1d(y.len())?;
    b.record(
        kernels::MAX_POOL_FORWARD,
        Constants::default(),
        p,
        &[y, winners, x],
        groups,
    )
}

pub(super) fn max_pool_backward(
    b: &mut GpuBackend,
    dy: &GpuTensor,
    winners: &GpuTensor,
    w: &Window,
    dx: &mut GpuTensor,
) -> Result<()> {
    let op = "max_pool_backward";
    check::pool(op, dx, w, dy)?;
    check::same(op, &[("dy", dy), ("winners", winners)])?;
    let p = params(op, w, dx.rows(), w.input[2])?;
    let groups = b.grid_1d(dx.len())?;
    b.record(
        kernels::MAX_POOL_BACKWARD,
        Constants::default(),
        p,
        &[dx, dy, winners],
        groups,
    )
}

pub(super) fn avg_pool_forward(
    b: &mut GpuBackend,
    x: &GpuTensor,
    w: &Window,
    y: &mut GpuTensor,
) -> Result<()> {
    check::pool("avg_pool_forward", x, w, y)?;
    let p = params("avg_pool_forward", w, x.rows(), w.input[2])?;
    let groups = b.grid_1d(y.len())?;
    b.record(
        kernels::AVG_POOL_FORWARD,
        Constants::default(),
        p,
        &[y, x],
        groups,
    )
}

pub(super) fn avg_pool_backward(
    b: &mut GpuBackend,
    dy: &GpuTensor,
    w: &Window,
    dx: &mut GpuTensor,
) -> Result<()> {
    check::pool("avg_pool_backward", dx, w, dy)?;
    let p = params("avg_pool_backward", w, dx.rows(), w.input[2])?;
    let groups = b.grid_1d(dx.len())?;
    b.record(
        kernels::AVG_POOL_BACKWARD,
        Constants::default(),
        p,
        &[dx, dy],
        groups,
    )
}
