//! The convolution and pooling ops on [`GpuBackend`]: each checked as every backend checks
//! it, then recorded as dispatches of `shaders/conv.wgsl` and `shaders/conv_gemm.wgsl`. Each
//! of a convolution's three products runs the variant [`GpuBackend::conv_variant_for`] picks
//! (`conv_gemm.rs`): v1 direct, v2 im2col and the tuned matmul kernels (the input gradient
//! folded back by col2im), or v3 and v4, implicit GEMM. The [`Backend`] impl in `ops.rs`
//! calls these through [`window_ops!`](crate::window_ops).

use super::conv_gemm::{ConvKey, ConvProduct, ConvVariant};
use super::kernels::{self, Constants, ConvParams};
use super::{u32_dim, GpuBackend, GpuTensor};
use crate::backend::{check, Activation, Backend, Tensor, Window};
use crate::error::Result;

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

/// The scratch buffer `use_` of this shape (v2's windows, v3 and v4's split parts), made on
/// its first use (a bind group is cached per tensor and size, so each shape has its own).
pub(super) fn scratch(
    b: &mut GpuBackend,
    use_: &'static str,
    rows: usize,
    cols: usize,
) -> Result<GpuTensor> {
    let key = (use_, rows, cols);
    if !b.conv_scratch.contains_key(&key) {
        let t = b.zeros(rows, cols)?;
        b.conv_scratch.insert(key, t);
    }
    Ok(b.conv_scratch[&key].handle())
}

/// Records `kernel` with one invocation per element of a `len`-element output.
fn dispatch(
    b: &mut GpuBackend,
    kernel: kernels::Kernel,
    p: ConvParams,
    bindings: &[&GpuTensor],
    len: usize,
) -> Result<()> {
    let groups = b.grid_1d(len)?;
    b.record(kernel, Constants::default(), p, bindings, groups)
}

/// `x`'s windows as the rows of a `[N·P, kh·kw·C]` buffer (v2).
fn im2col(b: &mut GpuBackend, op: &'static str, x: &GpuTensor, w: &Window) -> Result<GpuTensor> {
    let taps = w.kernel[0] * w.kernel[1] * w.input[2];
    let cols = scratch(b, "windows", x.rows() * w.positions(), taps)?;
    let p = params(op, w, x.rows(), 1)?;
    u32_dim(op, cols.len())?;
    dispatch(b, kernels::IM2COL, p, &[&cols, x], cols.len())?;
    Ok(cols)
}

/// The uniform of `w` over `rows` images with `filters` output channels.
pub(super) fn params(
    op: &'static str,
    w: &Window,
    rows: usize,
    filters: usize,
) -> Result<ConvParams> {
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

fn key(product: ConvProduct, w: &Window, rows: usize, filters: usize) -> ConvKey {
    ConvKey {
        product,
        window: *w,
        rows,
        filters,
    }
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
    let v = b.conv_variant_for(key(ConvProduct::Forward, w, x.rows(), kernel.cols()))?;
    forward_with(b, v, x, kernel, bias, w, None, z)
}

#[allow(clippy::too_many_arguments)]
pub(super) fn conv2d_forward(
    b: &mut GpuBackend,
    x: &GpuTensor,
    kernel: &GpuTensor,
    bias: Option<&GpuTensor>,
    w: &Window,
    act: Activation,
    z: &mut GpuTensor,
    a: &mut GpuTensor,
) -> Result<()> {
    let op = "conv2d_forward";
    check::feature_map_activation(op, act)?;
    check::conv2d(op, x, kernel, bias, w, z)?;
    check::same(op, &[("z", &*z), ("a", &*a)])?;
    let v = b.conv_variant_for(key(ConvProduct::Forward, w, x.rows(), kernel.cols()))?;
    forward_with(b, v, x, kernel, bias, w, Some((act, a)), z)
}

/// The forward with variant `v`: `z` = the convolution (+ bias), and `act(z)` where `act`
/// names it, in the product's epilogue where the variant has one.
#[allow(clippy::too_many_arguments)]
pub(super) fn forward_with(
    b: &mut GpuBackend,
    v: ConvVariant,
    x: &GpuTensor,
    kernel: &GpuTensor,
    bias: Option<&GpuTensor>,
    w: &Window,
    act: Option<(Activation, &mut GpuTensor)>,
    z: &mut GpuTensor,
) -> Result<()> {
    match v {
        ConvVariant::Direct => {
            let p = ConvParams {
                has_bias: bias.is_some() as u32,
                ..params("conv2d", w, x.rows(), kernel.cols())?
            };
            // Without a bias the kernel is bound in its place, and not read there.
            let bias = bias.unwrap_or(kernel);
            let bindings = [&*z, x, kernel, bias];
            dispatch(b, kernels::CONV2D_FORWARD, p, &bindings, z.len())?;
        }
        ConvVariant::Im2col => {
            let cols = im2col(b, "conv2d", x, w)?;
            let mut out = z.reshaped(cols.rows(), kernel.cols());
            match (bias, act) {
                (Some(bias), Some((act, a))) => {
                    let mut a_out = a.reshaped(cols.rows(), kernel.cols());
                    return b.record_dense_forward(&cols, kernel, bias, act, &mut out, &mut a_out);
                }
                (bias, act) => {
                    b.matmul(&cols, false, kernel, false, &mut out)?;
                    if let Some(bias) = bias {
                        b.bias_add(&mut out, bias)?;
                    }
                    if let Some((act, a)) = act {
                        b.activation(act, z, a)?;
                    }
                }
            }
            return Ok(());
        }
        ConvVariant::Implicit | ConvVariant::ImplicitTiled => {
            let k = key(ConvProduct::Forward, w, x.rows(), kernel.cols());
            let act = act.map(|(act, a)| (act, &*a));
            return b.record_conv_gemm(v, &k, z, x, kernel, bias, act);
        }
    }
    match act {
        Some((act, a)) => b.activation(act, z, a),
        None => Ok(()),
    }
}

pub(super) fn conv2d_backward_input(
    b: &mut GpuBackend,
    dz: &GpuTensor,
    kernel: &GpuTensor,
    w: &Window,
    dx: &mut GpuTensor,
) -> Result<()> {
    check::conv2d("conv2d_backward_input", dx, kernel, None, w, dz)?;
    let k = key(ConvProduct::InputGrad, w, dx.rows(), kernel.cols());
    let v = b.conv_variant_for(k)?;
    input_grad_with(b, v, dz, kernel, w, dx)
}

/// The input gradient with variant `v`.
pub(super) fn input_grad_with(
    b: &mut GpuBackend,
    v: ConvVariant,
    dz: &GpuTensor,
    kernel: &GpuTensor,
    w: &Window,
    dx: &mut GpuTensor,
) -> Result<()> {
    let op = "conv2d_backward_input";
    match v {
        ConvVariant::Direct => {
            let p = params(op, w, dx.rows(), kernel.cols())?;
            let bindings = [&*dx, dz, kernel];
            dispatch(b, kernels::CONV2D_BACKWARD_INPUT, p, &bindings, dx.len())
        }
        ConvVariant::Im2col => {
            // dcols [N·P, T] = dz [N·P, F] · Kᵀ, folded back onto the images.
            let mut dcols = scratch(b, "windows", dx.rows() * w.positions(), kernel.rows())?;
            let grad = dz.reshaped(dcols.rows(), kernel.cols());
            b.matmul(&grad, false, kernel, true, &mut dcols)?;
            let p = params(op, w, dx.rows(), 1)?;
            dispatch(b, kernels::COL2IM, p, &[dx, &dcols], dx.len())
        }
        ConvVariant::Implicit | ConvVariant::ImplicitTiled => {
            let k = key(ConvProduct::InputGrad, w, dx.rows(), kernel.cols());
            b.record_conv_gemm(v, &k, dx, dz, kernel, None, None)
        }
    }
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
    let v = b.conv_variant_for(key(ConvProduct::KernelGrad, w, x.rows(), dkernel.cols()))?;
    kernel_grad_with(b, v, x, dz, w, dkernel, dbias)
}

/// The kernel and bias gradients with variant `v`.
pub(super) fn kernel_grad_with(
    b: &mut GpuBackend,
    v: ConvVariant,
    x: &GpuTensor,
    dz: &GpuTensor,
    w: &Window,
    dkernel: &mut GpuTensor,
    dbias: Option<&mut GpuTensor>,
) -> Result<()> {
    let op = "conv2d_backward_kernel";
    let grad = dz.reshaped(x.rows() * w.positions(), dkernel.cols());
    match v {
        ConvVariant::Direct => {
            let p = params(op, w, x.rows(), dkernel.cols())?;
            let bindings = [&*dkernel, x, dz];
            dispatch(
                b,
                kernels::CONV2D_BACKWARD_KERNEL,
                p,
                &bindings,
                dkernel.len(),
            )?;
            if let Some(db) = dbias {
                let bindings = [&*db, dz];
                dispatch(b, kernels::CONV2D_BACKWARD_BIAS, p, &bindings, db.len())?;
            }
            return Ok(());
        }
        ConvVariant::Im2col => {
            // dK [T, F] = colsᵀ · dz [N·P, F].
            let cols = im2col(b, op, x, w)?;
            b.matmul(&cols, true, &grad, false, dkernel)?;
        }
        ConvVariant::Implicit | ConvVariant::ImplicitTiled => {
            let k = key(ConvProduct::KernelGrad, w, x.rows(), dkernel.cols());
            b.record_conv_gemm(v, &k, dkernel, x, dz, None, None)?;
        }
    }
    // db: the column sums of dz [N·P, F].
    match dbias {
        Some(db) => b.bias_grad(&grad, db),
        None => Ok(()),
    }
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
    dispatch(b, kernels::MAX_POOL_FORWARD, p, &[y, winners, x], y.len())
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
    dispatch(
        b,
        kernels::MAX_POOL_BACKWARD,
        p,
        &[dx, dy, winners],
        dx.len(),
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
    dispatch(b, kernels::AVG_POOL_FORWARD, p, &[y, x], y.len())
}

pub(super) fn avg_pool_backward(
    b: &mut GpuBackend,
    dy: &GpuTensor,
    w: &Window,
    dx: &mut GpuTensor,
) -> Result<()> {
    check::pool("avg_pool_backward", dx, w, dy)?;
    let p = params("avg_pool_backward", w, dx.rows(), w.input[2])?;
    dispatch(b, kernels::AVG_POOL_BACKWARD, p, &[dx, dy], dx.len())
}
