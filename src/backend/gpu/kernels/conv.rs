//! The convolutional layers' kernels (`shaders/conv.wgsl`, and the implicit GEMM of
//! `shaders/conv_gemm.wgsl`) and their uniform.

use super::Access::{Read as R, ReadWrite as RW};
use super::{k, Kernel, Module};
use bytemuck::{Pod, Zeroable};

/// z, x, kernel, bias (v1, direct)
pub const CONV2D_FORWARD: Kernel = k(Module::Conv, "conv2d_forward", &[RW, R, R, R]);
/// dx, dz, kernel
pub const CONV2D_BACKWARD_INPUT: Kernel = k(Module::Conv, "conv2d_backward_input", &[RW, R, R]);
/// dkernel, x, dz
pub const CONV2D_BACKWARD_KERNEL: Kernel = k(Module::Conv, "conv2d_backward_kernel", &[RW, R, R]);
/// dbias, dz
pub const CONV2D_BACKWARD_BIAS: Kernel = k(Module::Conv, "conv2d_backward_bias", &[RW, R]);
/// y, winners, x
pub const MAX_POOL_FORWARD: Kernel = k(Module::Conv, "max_pool_forward", &[RW, RW, R]);
/// dx, dy, winners
pub const MAX_POOL_BACKWARD: Kernel = k(Module::Conv, "max_pool_backward", &[RW, R, R]);
/// y, x
pub const AVG_POOL_FORWARD: Kernel = k(Module::Conv, "avg_pool_forward", &[RW, R]);
/// dx, dy
pub const AVG_POOL_BACKWARD: Kernel = k(Module::Conv, "avg_pool_backward", &[RW, R]);

/// cols, x (v2)
pub const IM2COL: Kernel = k(Module::Conv, "im2col", &[RW, R]);
/// dx, dcols (v2)
pub const COL2IM: Kernel = k(Module::Conv, "col2im", &[RW, R]);

/// product, A's source, B's source, bias (v4, workgroup tiles; `MODE` picks the product)
pub const CONV_GEMM: Kernel = k(Module::ConvGemm, "conv_gemm", &[RW, R, R, R]);
/// z, x, kernel, bias, act(z) (v4's forward with its epilogue)
pub const CONV_GEMM_BIAS_ACT: Kernel =
    k(Module::ConvGemm, "conv_gemm_bias_act", &[RW, R, R, R, RW]);
/// product, A's source, B's source, bias (v3, register blocks)
pub const CONV_GEMM_DIRECT: Kernel = k(Module::ConvGemm, "conv_gemm_direct", &[RW, R, R, R]);
/// z, x, kernel, bias, act(z) (v3's forward with its epilogue)
pub const CONV_GEMM_DIRECT_BIAS_ACT: Kernel = k(
    Module::ConvGemm,
    "conv_gemm_direct_bias_act",
    &[RW, R, R, R, RW],
);
/// dkernel, the split kernel gradient's parts
pub const CONV_GEMM_SLICES: Kernel = k(Module::ConvGemm, "conv_gemm_slices", &[RW, R]);

/// Every convolution and pooling kernel, for tests that build every pipeline.
pub const ALL: [Kernel; 15] = [
    CONV2D_FORWARD,
    CONV2D_BACKWARD_INPUT,
    CONV2D_BACKWARD_KERNEL,
    CONV2D_BACKWARD_BIAS,
    MAX_POOL_FORWARD,
    MAX_POOL_BACKWARD,
    AVG_POOL_FORWARD,
    AVG_POOL_BACKWARD,
    IM2COL,
    COL2IM,
    CONV_GEMM,
    CONV_GEMM_BIAS_ACT,
    CONV_GEMM_DIRECT,
    CONV_GEMM_DIRECT_BIAS_ACT,
    CONV_GEMM_SLICES,
];

/// `conv_common.wgsl`, for `conv.wgsl` and `conv_gemm.wgsl`
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Default)]
pub struct ConvParams {
    pub rows: u32,
    pub in_h: u32,
    pub in_w: u32,
    pub in_c: u32,
    pub k_h: u32,
    pub k_w: u32,
    pub s_h: u32,
    pub s_w: u32,
    pub pad_t: u32,
    pub pad_l: u32,
    pub out_h: u32,
    pub out_w: u32,
    pub filters: u32,
    pub has_bias: u32,
    /// Implicit GEMM's split-K: the slice of the product's K (whole images), 0 for none.
    pub k_slice: u32,
    /// How many slices (1 without split-K).
    pub slices: u32,
    /// The activation's parameters (the fused forward only).
    pub q: [f32; 4],
}
