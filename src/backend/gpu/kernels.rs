//! The kernel table: each GPU op's shader module, entry point and binding layout, and the
//! `Params` uniform each one reads. The Rust structs here mirror the WGSL `struct Params` of
//! the same shader field for field.

use bytemuck::{Pod, Zeroable};

/// A shader family; each is `shaders/common.wgsl` followed by its own file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Module {
    /// `shaders/matmul.wgsl`
    Matmul,
    /// `shaders/bias.wgsl`
    Bias,
    /// `shaders/fill.wgsl`
    Fill,
    /// `shaders/activation.wgsl`
    Activation,
    /// `shaders/loss.wgsl`
    Loss,
    /// `shaders/reduce.wgsl`
    Reduce,
    /// `shaders/optim.wgsl`
    Optim,
}

macro_rules! shader {
    ($file:literal) => {
        concat!(
            include_str!("../../../shaders/common.wgsl"),
            "\n",
            include_str!(concat!("../../../shaders/", $file))
        )
    };
}

impl Module {
    /// The WGSL source, with the common prelude.
    pub fn source(self) -> &'static str {
        match self {
            Module::Matmul => shader!("matmul.wgsl"),
            Module::Bias => shader!("bias.wgsl"),
            Module::Fill => shader!("fill.wgsl"),
            Module::Activation => shader!("activation.wgsl"),
            Module::Loss => shader!("loss.wgsl"),
            Module::Reduce => shader!("reduce.wgsl"),
            Module::Optim => shader!("optim.wgsl"),
        }
    }

    /// The file name, for labels and error messages.
    pub fn file(self) -> &'static str {
        match self {
            Module::Matmul => "matmul.wgsl",
            Module::Bias => "bias.wgsl",
            Module::Fill => "fill.wgsl",
            Module::Activation => "activation.wgsl",
            Module::Loss => "loss.wgsl",
            Module::Reduce => "reduce.wgsl",
            Module::Optim => "optim.wgsl",
        }
    }
}

/// How a storage binding is accessed. Binding 0 is always the `Params` uniform; storage
/// bindings follow from 1 in the order of [`Kernel::bindings`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Access {
    /// `var<storage, read>`
    Read,
    /// `var<storage, read_write>`
    ReadWrite,
}

use Access::{Read as R, ReadWrite as RW};

/// One entry point and the bindings it is dispatched with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Kernel {
    /// The shader family.
    pub module: Module,
    /// The WGSL entry point.
    pub entry: &'static str,
    /// Storage bindings 1.. in order.
    pub bindings: &'static [Access],
}

const fn k(module: Module, entry: &'static str, bindings: &'static [Access]) -> Kernel {
    Kernel {
        module,
        entry,
        bindings,
    }
}

/// c, a, b
pub const MATMUL: Kernel = k(Module::Matmul, "matmul", &[RW, R, R]);
/// z, bias
pub const BIAS_ADD: Kernel = k(Module::Bias, "bias_add", &[RW, R]);
/// db, dy
pub const BIAS_GRAD: Kernel = k(Module::Bias, "bias_grad", &[RW, R]);
/// dst
pub const FILL: Kernel = k(Module::Fill, "fill", &[RW]);
/// a, z
pub const ACT_FORWARD: Kernel = k(Module::Activation, "act_forward_main", &[RW, R]);
/// dz, z, a, da
pub const ACT_BACKWARD: Kernel = k(Module::Activation, "act_backward_main", &[RW, R, R, R]);
/// a, z
pub const SOFTMAX_FORWARD: Kernel = k(Module::Activation, "softmax_forward", &[RW, R]);
/// dz, z, a, da
pub const SOFTMAX_BACKWARD: Kernel = k(Module::Activation, "softmax_backward", &[RW, R, R, R]);
/// grad, row_loss, pred, target
pub const LOSS: Kernel = k(Module::Loss, "loss_rows", &[RW, RW, R, R]);
/// acc, x
pub const SUM_INTO: Kernel = k(Module::Reduce, "sum_into", &[RW, R]);
/// acc, pred, target
pub const ARGMAX_CORRECT: Kernel = k(Module::Reduce, "argmax_correct", &[RW, R, R]);
/// acc, pred, target
pub const THRESHOLD_CORRECT: Kernel = k(Module::Reduce, "threshold_correct", &[RW, R, R]);
/// param, grad
pub const OPT_SGD: Kernel = k(Module::Optim, "opt_sgd", &[RW, R]);
/// param, grad, v
pub const OPT_MOMENTUM: Kernel = k(Module::Optim, "opt_momentum", &[RW, R, RW]);
/// param, grad, m, v
pub const OPT_ADAM: Kernel = k(Module::Optim, "opt_adam", &[RW, R, RW, RW]);

/// Every kernel, for tests that build every pipeline.
pub const ALL: [Kernel; 15] = [
    MATMUL,
    BIAS_ADD,
    BIAS_GRAD,
    FILL,
    ACT_FORWARD,
    ACT_BACKWARD,
    SOFTMAX_FORWARD,
    SOFTMAX_BACKWARD,
    LOSS,
    SUM_INTO,
    ARGMAX_CORRECT,
    THRESHOLD_CORRECT,
    OPT_SGD,
    OPT_MOMENTUM,
    OPT_ADAM,
];

/// The size every `Params` is padded to and bound with: one uniform window per dispatch.
pub const PARAMS_SIZE: usize = 64;

/// `matmul.wgsl`
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub struct MatmulParams {
    pub m: u32,
    pub n: u32,
    pub k: u32,
    pub _pad: u32,
}

/// `bias.wgsl`
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub struct BiasParams {
    pub rows: u32,
    pub cols: u32,
    pub _pad: [u32; 2],
}

/// `fill.wgsl`
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub struct FillParams {
    pub len: u32,
    pub value: f32,
    pub _pad: [u32; 2],
}

/// `activation.wgsl`
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub struct ActParams {
    pub rows: u32,
    pub cols: u32,
    pub alpha: f32,
    pub _pad: u32,
}

/// `loss.wgsl`
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub struct LossParams {
    pub rows: u32,
    pub cols: u32,
    pub delta: f32,
    pub inv_rows: f32,
}

/// `reduce.wgsl`
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub struct ReduceParams {
    pub rows: u32,
    pub cols: u32,
    pub slot: u32,
    pub target_cols: u32,
    pub threshold: f32,
    pub _pad: [u32; 3],
}

/// `optim.wgsl`
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub struct OptimParams {
    pub len: u32,
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub weight_decay: f32,
    pub bias_correction1: f32,
    pub bias_correction2: f32,
}
