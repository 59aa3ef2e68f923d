//! The kernel table: each GPU op's shader module, entry point and binding layout, and the
//! `Params` uniform each one reads. The Rust structs here mirror the WGSL `struct Params` of
//! the same shader field for field.

use bytemuck::{Pod, Zeroable};

pub mod conv;
pub use conv::*;

/// A shader family; each is `shaders/common.wgsl` followed by its own file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Module {
    /// `shaders/matmul.wgsl`
    Matmul,
    /// `shaders/matmul_vec4.wgsl`
    MatmulVec4,
    /// `shaders/matmul_vec4.wgsl` + `shaders/matmul_subgroup.wgsl` (only on adapters with
    /// subgroup operations).
    MatmulSubgroup,
    /// `shaders/matmul_tiled8.wgsl`
    MatmulTiled8,
    /// `shaders/matmul_tiled8.wgsl` created as a trusted module, without the bounds checks
    /// and loop bounding wgpu adds: only for whole-block shapes, where every access is in
    /// range (the argument is in the shader's header).
    MatmulTiled8Unchecked,
    /// `shaders/splitk.wgsl`
    SplitK,
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
    /// `shaders/layers.wgsl`
    Layers,
    /// `shaders/data.wgsl`
    Data,
    /// `shaders/conv_common.wgsl` + `shaders/conv.wgsl`
    Conv,
    /// `shaders/conv_common.wgsl` + `shaders/conv_gemm.wgsl`
    ConvGemm,
}

/// `shaders/common.wgsl` followed by the named files, in order.
macro_rules! shader {
    ($($file:literal),+) => {
        concat!(
            include_str!("../../../../shaders/common.wgsl"),
            $("\n", include_str!(concat!("../../../../shaders/", $file))),+
        )
    };
}

impl Module {
    /// The WGSL source, with the common prelude.
    pub fn source(self) -> &'static str {
        match self {
            Module::Matmul => shader!("act_math.wgsl", "matmul.wgsl"),
            Module::MatmulVec4 => shader!("act_math.wgsl", "matmul_vec4.wgsl"),
            // naga 30 takes subgroup builtins without (and refuses) `enable subgroups;`.
            Module::MatmulSubgroup => {
                shader!("act_math.wgsl", "matmul_vec4.wgsl", "matmul_subgroup.wgsl")
            }
            Module::MatmulTiled8 | Module::MatmulTiled8Unchecked => {
                shader!("act_math.wgsl", "matmul_tiled8.wgsl")
            }
            Module::SplitK => shader!("act_math.wgsl", "splitk.wgsl"),
            Module::Bias => shader!("bias.wgsl"),
            Module::Fill => shader!("fill.wgsl"),
            Module::Activation => shader!("act_math.wgsl", "rows.wgsl", "activation.wgsl"),
            Module::Loss => shader!("rows.wgsl", "loss.wgsl"),
            Module::Reduce => shader!("reduce.wgsl"),
            Module::Optim => shader!("optim.wgsl"),
            Module::Layers => shader!("layers.wgsl"),
            Module::Data => shader!("data.wgsl"),
            Module::Conv => shader!("conv_common.wgsl", "conv.wgsl"),
            Module::ConvGemm => shader!("act_math.wgsl", "conv_common.wgsl", "conv_gemm.wgsl"),
        }
    }

    /// Whether the module is created without wgpu's runtime checks (see
    /// [`Module::MatmulTiled8Unchecked`]).
    pub fn unchecked(self) -> bool {
        self == Module::MatmulTiled8Unchecked
    }

    /// The file name, for labels and error messages.
    pub fn file(self) -> &'static str {
        match self {
            Module::Matmul => "matmul.wgsl",
            Module::MatmulVec4 => "matmul_vec4.wgsl",
            Module::MatmulSubgroup => "matmul_subgroup.wgsl",
            Module::MatmulTiled8 => "matmul_tiled8.wgsl",
            Module::MatmulTiled8Unchecked => "matmul_tiled8.wgsl (unchecked)",
            Module::SplitK => "splitk.wgsl",
            Module::Bias => "bias.wgsl",
            Module::Fill => "fill.wgsl",
            Module::Activation => "activation.wgsl",
            Module::Loss => "loss.wgsl",
            Module::Reduce => "reduce.wgsl",
            Module::Optim => "optim.wgsl",
            Module::Layers => "layers.wgsl",
            Module::Data => "data.wgsl",
            Module::Conv => "conv.wgsl",
            Module::ConvGemm => "conv_gemm.wgsl",
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

/// c, a, b: v1, tiled in workgroup memory
pub const MATMUL: Kernel = k(Module::Matmul, "matmul", &[RW, R, R]);
/// c, a, b: v2, straight from storage
pub const MATMUL_DIRECT: Kernel = k(Module::Matmul, "matmul_direct", &[RW, R, R]);
/// c, a, b: v3, vec4 loads and 8 × 8 per thread, straight from storage
pub const MATMUL_VEC4: Kernel = k(Module::MatmulVec4, "matmul_vec4", &[RW, R, R]);
/// c, a, b: v4, v3 with op(A) shared by subgroup broadcasts (adapters with 8-wide subgroups;
/// not in [`ALL`])
pub const MATMUL_SUBGROUP: Kernel = k(Module::MatmulSubgroup, "matmul_subgroup", &[RW, R, R]);
/// c, a, b: v5, v4 with 16 rows per invocation (not in [`ALL`])
pub const MATMUL_SUBGROUP16: Kernel = k(Module::MatmulSubgroup, "matmul_subgroup16", &[RW, R, R]);
/// z, x, w, bias, a: v1 with the epilogue `z = x·w + bias; a = act(z)`
pub const MATMUL_BIAS_ACT: Kernel = k(Module::Matmul, "matmul_bias_act", &[RW, R, R, R, RW]);
/// z, x, w, bias, a: v2 with the epilogue
pub const MATMUL_DIRECT_BIAS_ACT: Kernel =
    k(Module::Matmul, "matmul_direct_bias_act", &[RW, R, R, R, RW]);
/// z, x, w, bias, a: v3 with the epilogue
pub const MATMUL_VEC4_BIAS_ACT: Kernel = k(
    Module::MatmulVec4,
    "matmul_vec4_bias_act",
    &[RW, R, R, R, RW],
);
/// z, x, w, bias, a: v4 with the epilogue (not in [`ALL`])
pub const MATMUL_SUBGROUP_BIAS_ACT: Kernel = k(
    Module::MatmulSubgroup,
    "matmul_subgroup_bias_act",
    &[RW, R, R, R, RW],
);
/// z, x, w, bias, a: v5 with the epilogue (not in [`ALL`])
pub const MATMUL_SUBGROUP16_BIAS_ACT: Kernel = k(
    Module::MatmulSubgroup,
    "matmul_subgroup16_bias_act",
    &[RW, R, R, R, RW],
);
/// c, a, b: v6, 8 × 8 per thread from double-buffered vec4 workgroup tiles (real GPUs)
pub const MATMUL_TILED8: Kernel = k(Module::MatmulTiled8, "matmul_tiled8", &[RW, R, R]);
/// z, x, w, bias, a: v6 with the epilogue
pub const MATMUL_TILED8_BIAS_ACT: Kernel = k(
    Module::MatmulTiled8,
    "matmul_tiled8_bias_act",
    &[RW, R, R, R, RW],
);
/// c, a, b: v6 on whole blocks, from the unchecked module
pub const MATMUL_TILED8_FULL: Kernel =
    k(Module::MatmulTiled8Unchecked, "matmul_tiled8", &[RW, R, R]);
/// z, x, w, bias, a: v6 with the epilogue on whole blocks, from the unchecked module
pub const MATMUL_TILED8_FULL_BIAS_ACT: Kernel = k(
    Module::MatmulTiled8Unchecked,
    "matmul_tiled8_bias_act",
    &[RW, R, R, R, RW],
);
/// c, partial: split-K's sum of slices
pub const SPLITK_SUM: Kernel = k(Module::SplitK, "splitk_sum", &[RW, R]);
/// z, partial, bias, a: split-K's sum with the forward's epilogue
pub const SPLITK_SUM_BIAS_ACT: Kernel = k(Module::SplitK, "splitk_sum_bias_act", &[RW, R, R, RW]);
/// z, bias
pub const BIAS_ADD: Kernel = k(Module::Bias, "bias_add", &[RW, R]);
/// db, dy
pub const BIAS_GRAD: Kernel = k(Module::Bias, "bias_grad", &[RW, R]);
/// db, dy: a thread per column (software adapters)
pub const BIAS_GRAD_COLUMNS: Kernel = k(Module::Bias, "bias_grad_columns", &[RW, R]);
/// dst
pub const FILL: Kernel = k(Module::Fill, "fill", &[RW]);
/// dst, src
pub const COPY: Kernel = k(Module::Fill, "copy", &[RW, R]);
/// dst, src, order
pub const GATHER_ROWS: Kernel = k(Module::Data, "gather_rows", &[RW, R, R]);
/// dst, src, order: rows of a multiple of 4 columns, as vec4
pub const GATHER_ROWS4: Kernel = k(Module::Data, "gather_rows4", &[RW, R, R]);
/// dst, src, order, dst_y, src_y: a batch's features (as vec4) and targets in one pass
pub const GATHER_PAIR4: Kernel = k(Module::Data, "gather_pair4", &[RW, R, R, RW, R]);
/// a, z
pub const ACT_FORWARD: Kernel = k(Module::Activation, "act_forward_main", &[RW, R]);
/// dz, z, a, da
pub const ACT_BACKWARD: Kernel = k(Module::Activation, "act_backward_main", &[RW, R, R, R]);
/// a, z
pub const SOFTMAX_FORWARD: Kernel = k(Module::Activation, "softmax_forward", &[RW, R]);
/// dz, z, a, da
pub const SOFTMAX_BACKWARD: Kernel = k(Module::Activation, "softmax_backward", &[RW, R, R, R]);
/// a, z: a workgroup per row
pub const SOFTMAX_FORWARD_WIDE: Kernel = k(Module::Activation, "softmax_forward_wide", &[RW, R]);
/// dz, z, a, da: a workgroup per row
pub const SOFTMAX_BACKWARD_WIDE: Kernel =
    k(Module::Activation, "softmax_backward_wide", &[RW, R, R, R]);
/// grad, row_loss, pred, target
pub const LOSS: Kernel = k(Module::Loss, "loss_rows", &[RW, RW, R, R]);
/// grad, row_loss, pred, target: a workgroup per row
pub const LOSS_WIDE: Kernel = k(Module::Loss, "loss_rows_wide", &[RW, RW, R, R]);
/// acc, x
pub const SUM_INTO: Kernel = k(Module::Reduce, "sum_into", &[RW, R]);
/// partials, x: a sum's first pass over many workgroups
pub const SUM_PARTIALS: Kernel = k(Module::Reduce, "sum_partials", &[RW, R]);
/// acc, pred, target
pub const ARGMAX_CORRECT: Kernel = k(Module::Reduce, "argmax_correct", &[RW, R, R]);
/// acc, pred, target
pub const THRESHOLD_CORRECT: Kernel = k(Module::Reduce, "threshold_correct", &[RW, R, R]);
/// acc, pred, target
pub const TOPK_CORRECT: Kernel = k(Module::Reduce, "topk_correct", &[RW, R, R]);
/// acc, pred, target
pub const CONFUSION: Kernel = k(Module::Reduce, "confusion", &[RW, R, R]);
/// acc, pred, target
pub const ROC_HISTOGRAM: Kernel = k(Module::Reduce, "roc_histogram", &[RW, R, R]);
/// acc, pred, target
pub const ERROR_SUM: Kernel = k(Module::Reduce, "error_sum", &[RW, R, R]);
/// acc, pred, target
pub const CROSSENTROPY_SUM: Kernel = k(Module::Reduce, "crossentropy_sum", &[RW, R, R]);
/// acc, pred, target; one workgroup per class
pub const CLASS_CONFUSION: Kernel = k(Module::Reduce, "class_confusion", &[RW, R, R]);
// The optimizers: param, acc, grad, then each state tensor, each followed by where its new
// values go when guarded (see optim.wgsl); unguarded updates write in place and bind small
// unused buffers for acc and the outputs.
/// param, acc, grad, new param
pub const OPT_SGD: Kernel = k(Module::Optim, "opt_sgd", &[RW, RW, R, RW]);
/// param, acc, grad, new param, v, new v
pub const OPT_MOMENTUM: Kernel = k(Module::Optim, "opt_momentum", &[RW, RW, R, RW, RW, RW]);
/// param, acc, grad, new param, m, new m, v, new v
pub const OPT_ADAM: Kernel = k(Module::Optim, "opt_adam", &[RW, RW, R, RW, RW, RW, RW, RW]);
/// The same three over a whole parameter group as vec4 (`p.len` in vec4s).
pub const OPT_SGD4: Kernel = k(Module::Optim, "opt_sgd4", &[RW, RW, R, RW]);
/// See [`OPT_SGD4`].
pub const OPT_MOMENTUM4: Kernel = k(Module::Optim, "opt_momentum4", &[RW, RW, R, RW, RW, RW]);
/// See [`OPT_SGD4`].
pub const OPT_ADAM4: Kernel = k(Module::Optim, "opt_adam4", &[RW, RW, R, RW, RW, RW, RW, RW]);
/// param (the moving statistic), acc, grad (the batch's), new param: a batch normalization's
/// moving average, guarded as the updates
pub const MOVING_AVERAGE: Kernel = k(Module::Optim, "moving_average", &[RW, RW, R, RW]);
/// y, keep, x; one invocation per pair of elements
pub const DROPOUT: Kernel = k(Module::Layers, "dropout", &[RW, RW, R]);
/// c, a, b
pub const MULTIPLY: Kernel = k(Module::Layers, "multiply", &[RW, R, R]);
/// y, x
pub const RRELU_FORWARD: Kernel = k(Module::Layers, "rrelu_forward", &[RW, R]);
/// dx, x, dy
pub const RRELU_BACKWARD: Kernel = k(Module::Layers, "rrelu_backward", &[RW, R, R]);
/// mean, var, x
pub const BATCHNORM_STATS: Kernel = k(Module::Layers, "batchnorm_stats", &[RW, RW, R]);
/// y, x, mean, var, gamma, beta
pub const BATCHNORM_FORWARD: Kernel = k(Module::Layers, "batchnorm_forward", &[RW, R, R, R, R, R]);
/// dx, dgamma, dbeta, x, mean, var, gamma, dy
pub const BATCHNORM_BACKWARD: Kernel = k(
    Module::Layers,
    "batchnorm_backward",
    &[RW, RW, RW, R, R, R, R, R],
);
/// y, x, alpha
pub const PRELU_FORWARD: Kernel = k(Module::Layers, "prelu_forward", &[RW, R, R]);
/// dx, dalpha, x, alpha, dy
pub const PRELU_BACKWARD: Kernel = k(Module::Layers, "prelu_backward", &[RW, RW, R, R, R]);
/// y, z
pub const MAXOUT_FORWARD: Kernel = k(Module::Layers, "maxout_forward", &[RW, R]);
/// dz, z, dy
pub const MAXOUT_BACKWARD: Kernel = k(Module::Layers, "maxout_backward", &[RW, R, R]);
/// acc, w
pub const PENALTY_SUM: Kernel = k(Module::Layers, "penalty_sum", &[RW, R]);
/// grad, w
pub const PENALTY_BACKWARD: Kernel = k(Module::Layers, "penalty_backward", &[RW, R]);

/// Every kernel but the convolutional layers' ([`conv::ALL`]), for tests that build every
/// pipeline.
pub const ALL: [Kernel; 56] = [
    MATMUL,
    MATMUL_DIRECT,
    MATMUL_VEC4,
    MATMUL_TILED8,
    BIAS_ADD,
    BIAS_GRAD,
    BIAS_GRAD_COLUMNS,
    FILL,
    COPY,
    GATHER_ROWS,
    GATHER_ROWS4,
    GATHER_PAIR4,
    ACT_FORWARD,
    ACT_BACKWARD,
    SOFTMAX_FORWARD,
    SOFTMAX_BACKWARD,
    SOFTMAX_FORWARD_WIDE,
    SOFTMAX_BACKWARD_WIDE,
    LOSS,
    LOSS_WIDE,
    SUM_INTO,
    SUM_PARTIALS,
    ARGMAX_CORRECT,
    THRESHOLD_CORRECT,
    TOPK_CORRECT,
    CONFUSION,
    ROC_HISTOGRAM,
    ERROR_SUM,
    OPT_SGD,
    OPT_MOMENTUM,
    OPT_ADAM,
    OPT_SGD4,
    OPT_MOMENTUM4,
    OPT_ADAM4,
    MATMUL_VEC4_BIAS_ACT,
    MATMUL_TILED8_BIAS_ACT,
    MATMUL_TILED8_FULL,
    MATMUL_TILED8_FULL_BIAS_ACT,
    SPLITK_SUM,
    SPLITK_SUM_BIAS_ACT,
    MATMUL_BIAS_ACT,
    MATMUL_DIRECT_BIAS_ACT,
    MOVING_AVERAGE,
    DROPOUT,
    MULTIPLY,
    RRELU_FORWARD,
    RRELU_BACKWARD,
    BATCHNORM_STATS,
    BATCHNORM_FORWARD,
    BATCHNORM_BACKWARD,
    PRELU_FORWARD,
    PRELU_BACKWARD,
    MAXOUT_FORWARD,
    MAXOUT_BACKWARD,
    PENALTY_SUM,
    PENALTY_BACKWARD,
];

/// The most storage bindings any kernel has.
pub const MAX_BINDINGS: usize = 8;

/// The most `override` constants any pipeline is specialised with.
pub const MAX_CONSTANTS: usize = 6;

/// A pipeline's `override` constants as a fixed-size value, so that looking a pipeline up in
/// the cache allocates nothing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Constants {
    len: usize,
    items: [(&'static str, u64); MAX_CONSTANTS],
}

impl Constants {
    /// `list` as (name, value) pairs; at most [`MAX_CONSTANTS`].
    pub fn new(list: &[(&'static str, f64)]) -> Self {
        assert!(
            list.len() <= MAX_CONSTANTS,
            "raise MAX_CONSTANTS to {}",
            list.len()
        );
        let mut c = Constants {
            len: list.len(),
            ..Constants::default()
        };
        for (slot, &(name, value)) in c.items.iter_mut().zip(list) {
            *slot = (name, value.to_bits());
        }
        c
    }

    /// In the form `PipelineCompilationOptions::constants` takes.
    pub fn to_wgpu(self) -> Vec<(&'static str, f64)> {
        self.items[..self.len]
            .iter()
            .map(|&(n, v)| (n, f64::from_bits(v)))
            .collect()
    }
}

pub use super::tiles::{MatmulTiles, MatmulVariant};

/// The size every `Params` is padded to and bound with: one uniform window per dispatch.
pub const PARAMS_SIZE: usize = 80;

/// `matmul.wgsl`
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub struct MatmulParams {
    pub m: u32,
    pub n: u32,
    pub k: u32,
    /// Split-K's slice of K (v6; 0 elsewhere).
    pub k_slice: u32,
    /// The activation's parameters (fused epilogues only).
    pub q: [f32; 4],
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
    pub _pad: [u32; 2],
    /// The activation's parameters.
    pub q: [f32; 4],
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
    pub k: u32,
    pub _pad: [u32; 2],
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
    pub loss_slot: u32,
    pub flag_slot: u32,
    pub step_slot: u32,
    pub t: u32,
}

/// `splitk.wgsl`
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub struct SplitKParams {
    pub len4: u32,
    pub n4: u32,
    pub slices: u32,
    pub _pad: u32,
    pub q: [f32; 4],
}

/// `data.wgsl`
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub struct GatherParams {
    pub len: u32,
    pub cols: u32,
    pub offset: u32,
    pub src_rows: u32,
    pub y_cols: u32,
    pub y_len: u32,
    pub _pad: [u32; 2],
}

/// `layers.wgsl`
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Default)]
pub struct LayerParams {
    pub rows: u32,
    pub cols: u32,
    pub pieces: u32,
    pub slot: u32,
    /// Dropout's scale, batch normalization's ε, the penalty's l1, the lowest RReLU slope.
    pub a: f32,
    /// The penalty's l2, the highest RReLU slope.
    pub b: f32,
    /// The penalty's scale.
    pub c: f32,
    pub drop_below: u32,
    pub key0: u32,
    pub key1: u32,
    pub step: u32,
    pub _pad: u32,
}
