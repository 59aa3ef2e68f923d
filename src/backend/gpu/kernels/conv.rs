//! The convolutional layers' kernels (`shaders/conv.wgsl`) and their uniform.

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

/// Every convolution and pooling kernel, for tests that build every pipeline.
pub const ALL: [Kernel; 10] = [
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
];

/// `conv.wgsl`
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
    pub _pad0: u32,
    pub _pad1: u32,
}
