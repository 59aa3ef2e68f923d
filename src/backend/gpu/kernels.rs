//! The kernel table: each GPU op's shader module, entry point and binding layout, and the
//! `Params` uniform each one reads. The Rust structs here mirror the WGSL `struct Params` of
//! the same shader field for field.

use bytemuck::{Pod, Zeroable};

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

/// `shaders/common.wgsl` followed by the named files, in order.
macro_rules! shader {
    ($($file:literal),+) => {
        concat!(
            include_str!("../../../shaders/common.wgsl"),
            $("\n", include_str!(concat!("../../../shaders/", $file))),+
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
            Module::Bias => shader!("bias.wgsl"),
            Module::Fill => shader!("fill.wgsl"),
            Module::Activation => shader!("act_math.wgsl", "activation.wgsl"),
            Module::Loss => shader!("loss.wgsl"),
            Module::Reduce => shader!("reduce.wgsl"),
            Module::Optim => shader!("optim.wgsl"),
        }
    }

    /// The file name, for labels and error messages.
    pub fn file(self) -> &'static str {
        match self {
            Module::Matmul => "matmul.wgsl",
            Module::MatmulVec4 => "matmul_vec4.wgsl",
            Module::MatmulSubgroup => "matmul_subgroup.wgsl",
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

/// Every kernel, for tests that build every pipeline.
pub const ALL: [Kernel; 27] = [
    MATMUL,
    MATMUL_DIRECT,
    MATMUL_VEC4,
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
    MATMUL_BIAS_ACT,
    MATMUL_DIRECT_BIAS_ACT,
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

/// The matmul kernels of `shaders/matmul.wgsl`, numbered as there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatmulVariant {
    /// v1: workgroup-memory tiles (for real GPUs).
    Tiled,
    /// v2: register blocks read straight from storage (for software adapters).
    Direct,
    /// v3: 8 × 8 register blocks from vec4 loads straight from storage, for shapes whose
    /// N, K (and M, when A is transposed) are multiples of 4 (others run v2).
    Vec4,
    /// v4: v3 with op(A) loaded once per subgroup of 8 and broadcast; for adapters whose
    /// subgroups are exactly 8 wide. `wg_x` is the subgroup (8), `wg_y` subgroups per
    /// workgroup.
    Subgroup,
    /// v5: v4 with 16 rows per invocation (two shared loads of op(A) per step).
    Subgroup16,
}

impl MatmulVariant {
    /// The kernel that runs this variant.
    pub(crate) fn kernel(self) -> Kernel {
        match self {
            MatmulVariant::Tiled => MATMUL,
            MatmulVariant::Direct => MATMUL_DIRECT,
            MatmulVariant::Vec4 => MATMUL_VEC4,
            MatmulVariant::Subgroup => MATMUL_SUBGROUP,
            MatmulVariant::Subgroup16 => MATMUL_SUBGROUP16,
        }
    }

    /// The fused forward's name in a profile.
    pub fn bias_act_label(self) -> &'static str {
        match self {
            MatmulVariant::Tiled => "matmul A·B + bias + act",
            MatmulVariant::Direct => "matmul_direct A·B + bias + act",
            MatmulVariant::Vec4 => "matmul_vec4 A·B + bias + act",
            MatmulVariant::Subgroup => "matmul_subgroup A·B + bias + act",
            MatmulVariant::Subgroup16 => "matmul_subgroup16 A·B + bias + act",
        }
    }

    /// The same product with the bias + activation epilogue.
    pub(crate) fn bias_act_kernel(self) -> Kernel {
        match self {
            MatmulVariant::Tiled => MATMUL_BIAS_ACT,
            MatmulVariant::Direct => MATMUL_DIRECT_BIAS_ACT,
            MatmulVariant::Vec4 => MATMUL_VEC4_BIAS_ACT,
            MatmulVariant::Subgroup => MATMUL_SUBGROUP_BIAS_ACT,
            MatmulVariant::Subgroup16 => MATMUL_SUBGROUP16_BIAS_ACT,
        }
    }

    /// Whether it needs subgroups of exactly 8 invocations (`wg_x` = 8).
    pub fn needs_subgroups(self) -> bool {
        matches!(self, MatmulVariant::Subgroup | MatmulVariant::Subgroup16)
    }

    /// The name of a product with these transposes in a profile.
    pub fn label(self, trans_a: bool, trans_b: bool) -> &'static str {
        use MatmulVariant::*;
        match (self, trans_a, trans_b) {
            (Tiled, false, false) => "matmul A·B",
            (Tiled, false, true) => "matmul A·Bᵀ",
            (Tiled, true, false) => "matmul Aᵀ·B",
            (Tiled, true, true) => "matmul Aᵀ·Bᵀ",
            (Direct, false, false) => "matmul_direct A·B",
            (Direct, false, true) => "matmul_direct A·Bᵀ",
            (Direct, true, false) => "matmul_direct Aᵀ·B",
            (Direct, true, true) => "matmul_direct Aᵀ·Bᵀ",
            (Vec4, false, false) => "matmul_vec4 A·B",
            (Vec4, false, true) => "matmul_vec4 A·Bᵀ",
            (Vec4, true, false) => "matmul_vec4 Aᵀ·B",
            (Vec4, true, true) => "matmul_vec4 Aᵀ·Bᵀ",
            (Subgroup, false, false) => "matmul_subgroup A·B",
            (Subgroup, false, true) => "matmul_subgroup A·Bᵀ",
            (Subgroup, true, false) => "matmul_subgroup Aᵀ·B",
            (Subgroup, true, true) => "matmul_subgroup Aᵀ·Bᵀ",
            (Subgroup16, false, false) => "matmul_subgroup16 A·B",
            (Subgroup16, false, true) => "matmul_subgroup16 A·Bᵀ",
            (Subgroup16, true, false) => "matmul_subgroup16 Aᵀ·B",
            (Subgroup16, true, true) => "matmul_subgroup16 Aᵀ·Bᵀ",
        }
    }

    /// Each thread's register block, rows × columns.
    pub fn register_block(self) -> (u32, u32) {
        match self {
            MatmulVariant::Tiled | MatmulVariant::Direct => (MATMUL_TM, MATMUL_TN),
            MatmulVariant::Vec4 | MatmulVariant::Subgroup => (8, 8),
            MatmulVariant::Subgroup16 => (16, 8),
        }
    }
}

/// Matmul tiling. The WGSL `override`s of the same names are set from these at pipeline
/// creation, and the host sizes the dispatch grid from them, so the two cannot disagree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MatmulTiles {
    /// Which kernel.
    pub variant: MatmulVariant,
    /// Threads per workgroup along N.
    pub wg_x: u32,
    /// Threads per workgroup along M.
    pub wg_y: u32,
    /// K step per workgroup-memory tile.
    pub bk: u32,
}

/// Each thread's register block, `TM × TN` in matmul.wgsl (WGSL needs these as constants).
pub const MATMUL_TM: u32 = 4;
/// See [`MATMUL_TM`].
pub const MATMUL_TN: u32 = 4;

impl MatmulTiles {
    /// v1 with 16 × 16 threads, a 64 × 64 block of C per workgroup, K in steps of 16: 8 KiB
    /// of workgroup memory and 256 invocations, inside WebGPU's default limits. The default on
    /// real GPUs.
    pub const TILED: MatmulTiles = MatmulTiles {
        variant: MatmulVariant::Tiled,
        wg_x: 16,
        wg_y: 16,
        bk: 16,
    };

    /// v2 with 8 × 8 threads of 4 × 4 outputs each (`bk` unused). Runs the shapes v3 cannot.
    pub const DIRECT: MatmulTiles = MatmulTiles {
        variant: MatmulVariant::Direct,
        wg_x: 8,
        wg_y: 8,
        bk: 1,
    };

    /// v3 with 8 × 8 threads of 8 × 8 outputs each (`bk` unused). The default on software
    /// adapters without 8-wide subgroups.
    pub const VEC4: MatmulTiles = MatmulTiles {
        variant: MatmulVariant::Vec4,
        wg_x: 8,
        wg_y: 8,
        bk: 1,
    };

    /// v4 with 8 subgroups of 8 per workgroup: a 64 × 64 block of C.
    pub const SUBGROUP: MatmulTiles = MatmulTiles {
        variant: MatmulVariant::Subgroup,
        wg_x: 8,
        wg_y: 8,
        bk: 1,
    };

    /// v5 with 4 subgroups of 8 per workgroup: a 64 × 64 block of C. The default on software
    /// adapters with 8-wide subgroups (once checked against the reference).
    pub const SUBGROUP16: MatmulTiles = MatmulTiles {
        variant: MatmulVariant::Subgroup16,
        wg_x: 8,
        wg_y: 4,
        bk: 1,
    };

    /// The default for an adapter of this wgpu device type (`"Cpu"` for a software one).
    pub fn for_device_type(device_type: &str) -> MatmulTiles {
        if device_type == "Cpu" {
            MatmulTiles::VEC4
        } else {
            MatmulTiles::TILED
        }
    }

    /// Bytes of workgroup memory a workgroup uses.
    pub fn workgroup_bytes(self) -> u64 {
        match self.variant {
            MatmulVariant::Tiled => {
                4 * self.bk as u64 * (self.block_m() as u64 + self.block_n() as u64)
            }
            MatmulVariant::Direct
            | MatmulVariant::Vec4
            | MatmulVariant::Subgroup
            | MatmulVariant::Subgroup16 => 0,
        }
    }

    /// Rows of C per workgroup.
    pub fn block_m(self) -> u32 {
        self.wg_y * self.variant.register_block().0
    }

    /// Columns of C per workgroup.
    pub fn block_n(self) -> u32 {
        self.wg_x * self.variant.register_block().1
    }

    /// `"variant wg_x wg_y bk"`, the autotune disk cache's form.
    pub(crate) fn encode(self) -> String {
        let v = match self.variant {
            MatmulVariant::Tiled => "tiled",
            MatmulVariant::Direct => "direct",
            MatmulVariant::Vec4 => "vec4",
            MatmulVariant::Subgroup => "subgroup",
            MatmulVariant::Subgroup16 => "subgroup16",
        };
        format!("{v} {} {} {}", self.wg_x, self.wg_y, self.bk)
    }

    pub(crate) fn decode(s: &str) -> Option<MatmulTiles> {
        let mut it = s.split(' ');
        let variant = match it.next()? {
            "tiled" => MatmulVariant::Tiled,
            "direct" => MatmulVariant::Direct,
            "vec4" => MatmulVariant::Vec4,
            "subgroup" => MatmulVariant::Subgroup,
            "subgroup16" => MatmulVariant::Subgroup16,
            _ => return None,
        };
        let mut n = || it.next()?.parse().ok();
        let t = MatmulTiles {
            variant,
            wg_x: n()?,
            wg_y: n()?,
            bk: n()?,
        };
        it.next().is_none().then_some(t)
    }

    /// The pipeline constants for the fused product with `act` in its epilogue.
    pub fn bias_act_constants(self, act_code: u32) -> Constants {
        let mut list = self.constants(false, false).to_wgpu();
        list.push(("ACT", act_code as f64));
        Constants::new(&list)
    }

    /// The pipeline constants for a product with these transposes.
    pub fn constants(self, trans_a: bool, trans_b: bool) -> Constants {
        let all = [
            ("TRANS_A", trans_a as u8 as f64),
            ("TRANS_B", trans_b as u8 as f64),
            ("WG_X", self.wg_x as f64),
            ("WG_Y", self.wg_y as f64),
            ("BK", self.bk as f64),
        ];
        match self.variant {
            MatmulVariant::Tiled => Constants::new(&all),
            // No workgroup tiles, so no BK.
            MatmulVariant::Direct
            | MatmulVariant::Vec4
            | MatmulVariant::Subgroup
            | MatmulVariant::Subgroup16 => Constants::new(&all[..4]),
        }
    }

    /// Whether this variant runs `op(A)[M, K] · op(B)[K, N]` with these transposes: v3 reads
    /// every operand as vec4 along its contiguous dimension, so K, and M (when A is
    /// transposed) must be multiples of 4, and N, because C is written as vec4 too.
    pub fn runs(self, m: usize, n: usize, k: usize, trans_a: bool, _trans_b: bool) -> bool {
        match self.variant {
            MatmulVariant::Tiled | MatmulVariant::Direct => true,
            MatmulVariant::Vec4 | MatmulVariant::Subgroup | MatmulVariant::Subgroup16 => {
                k % 4 == 0 && n % 4 == 0 && (!trans_a || m % 4 == 0)
            }
        }
    }
}

/// The size every `Params` is padded to and bound with: one uniform window per dispatch.
pub const PARAMS_SIZE: usize = 64;

/// `matmul.wgsl`
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub struct MatmulParams {
    pub m: u32,
    pub n: u32,
    pub k: u32,
    /// The activation's α (fused epilogues only).
    pub alpha: f32,
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
