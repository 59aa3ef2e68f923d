//! Matmul tilings: the numbered variants of `shaders/matmul*.wgsl`, their block shapes and
//! pipeline constants, and the form the autotune's disk cache stores them in.

use super::kernels::{
    Constants, Kernel, MATMUL, MATMUL_BIAS_ACT, MATMUL_DIRECT, MATMUL_DIRECT_BIAS_ACT,
    MATMUL_SUBGROUP, MATMUL_SUBGROUP16, MATMUL_SUBGROUP16_BIAS_ACT, MATMUL_SUBGROUP_BIAS_ACT,
    MATMUL_TILED8, MATMUL_TILED8_BIAS_ACT, MATMUL_TILED8_FULL, MATMUL_TILED8_FULL_BIAS_ACT,
    MATMUL_VEC4, MATMUL_VEC4_BIAS_ACT,
};

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
    /// v6: 8 × 8 per thread from double-buffered vec4 workgroup tiles, op(A) k-major and
    /// padded, a 128 × 128 block per 16 × 16 workgroup; for real GPUs, on the shapes v3 takes.
    /// Shapes that are whole blocks run without bounds checks.
    Tiled8,
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
            MatmulVariant::Tiled8 => MATMUL_TILED8,
        }
    }

    /// The kernel that runs an `[m, n, k]` product with `tiles` of this variant: v6 on whole
    /// blocks runs from the module without runtime checks.
    pub(crate) fn kernel_for(self, tiles: MatmulTiles, mnk: [usize; 3]) -> Kernel {
        match self {
            MatmulVariant::Tiled8 if tiles.whole_blocks(mnk) => MATMUL_TILED8_FULL,
            _ => self.kernel(),
        }
    }

    /// [`MatmulVariant::kernel_for`] with the forward's epilogue.
    pub(crate) fn bias_act_kernel_for(self, tiles: MatmulTiles, mnk: [usize; 3]) -> Kernel {
        match self {
            MatmulVariant::Tiled8 if tiles.whole_blocks(mnk) => MATMUL_TILED8_FULL_BIAS_ACT,
            _ => self.bias_act_kernel(),
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
            MatmulVariant::Tiled8 => "matmul_tiled8 A·B + bias + act",
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
            MatmulVariant::Tiled8 => MATMUL_TILED8_BIAS_ACT,
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
            (Tiled8, false, false) => "matmul_tiled8 A·B",
            (Tiled8, false, true) => "matmul_tiled8 A·Bᵀ",
            (Tiled8, true, false) => "matmul_tiled8 Aᵀ·B",
            (Tiled8, true, true) => "matmul_tiled8 Aᵀ·Bᵀ",
        }
    }

    /// Each thread's register block, rows × columns.
    pub fn register_block(self) -> (u32, u32) {
        match self {
            MatmulVariant::Tiled | MatmulVariant::Direct => (MATMUL_TM, MATMUL_TN),
            MatmulVariant::Vec4 | MatmulVariant::Subgroup | MatmulVariant::Tiled8 => (8, 8),
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
    /// Slices of K computed by separate workgroups and summed after (split-K, for products
    /// with few output blocks and a long K); 1 for none. v6 only.
    pub split_k: u32,
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
        split_k: 1,
    };

    /// v2 with 8 × 8 threads of 4 × 4 outputs each (`bk` unused). Runs the shapes v3 cannot.
    pub const DIRECT: MatmulTiles = MatmulTiles {
        variant: MatmulVariant::Direct,
        wg_x: 8,
        wg_y: 8,
        bk: 1,
        split_k: 1,
    };

    /// v3 with 8 × 8 threads of 8 × 8 outputs each (`bk` unused). The default on software
    /// adapters without 8-wide subgroups.
    pub const VEC4: MatmulTiles = MatmulTiles {
        variant: MatmulVariant::Vec4,
        wg_x: 8,
        wg_y: 8,
        bk: 1,
        split_k: 1,
    };

    /// v4 with 8 subgroups of 8 per workgroup: a 64 × 64 block of C.
    pub const SUBGROUP: MatmulTiles = MatmulTiles {
        variant: MatmulVariant::Subgroup,
        wg_x: 8,
        wg_y: 8,
        bk: 1,
        split_k: 1,
    };

    /// v5 with 4 subgroups of 8 per workgroup: a 64 × 64 block of C. The default on software
    /// adapters with 8-wide subgroups (once checked against the reference).
    pub const SUBGROUP16: MatmulTiles = MatmulTiles {
        variant: MatmulVariant::Subgroup16,
        wg_x: 8,
        wg_y: 4,
        bk: 1,
        split_k: 1,
    };

    /// v6 (the only shape it has): 16 × 16 threads of 8 × 8 outputs, K in steps of 8.
    pub const TILED8: MatmulTiles = MatmulTiles {
        variant: MatmulVariant::Tiled8,
        wg_x: 16,
        wg_y: 16,
        bk: 8,
        split_k: 1,
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
            // Two stages of two tiles of 8 k-rows, each 33 vec4 (padded).
            MatmulVariant::Tiled8 => 2 * 2 * 8 * 33 * 16,
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
            MatmulVariant::Tiled8 => "tiled8",
        };
        match self.split_k {
            1 => format!("{v} {} {} {}", self.wg_x, self.wg_y, self.bk),
            s => format!("{v} {} {} {} {s}", self.wg_x, self.wg_y, self.bk),
        }
    }

    pub(crate) fn decode(s: &str) -> Option<MatmulTiles> {
        let mut it = s.split(' ');
        let variant = match it.next()? {
            "tiled" => MatmulVariant::Tiled,
            "direct" => MatmulVariant::Direct,
            "vec4" => MatmulVariant::Vec4,
            "subgroup" => MatmulVariant::Subgroup,
            "subgroup16" => MatmulVariant::Subgroup16,
            "tiled8" => MatmulVariant::Tiled8,
            _ => return None,
        };
        let mut n = || it.next()?.parse().ok();
        let (wg_x, wg_y, bk) = (n()?, n()?, n()?);
        // A fifth number is split-K's slices (older caches have four).
        let split_k = n().unwrap_or(1);
        let t = MatmulTiles {
            variant,
            wg_x,
            wg_y,
            bk,
            split_k,
        };
        let fits = split_k >= 1 && (split_k == 1 || variant == MatmulVariant::Tiled8);
        (it.next().is_none() && fits).then_some(t)
    }

    /// The pipeline constants for the fused `[m, n, k]` product with `act` in its epilogue.
    pub fn bias_act_constants(self, act_code: u32, [m, n, k]: [usize; 3]) -> Constants {
        let mut list = self.constants(false, false, [m, n, k]).to_wgpu();
        list.push(("ACT", act_code as f64));
        Constants::new(&list)
    }

    /// Whether an `[m, n, k]` product is whole blocks of this tiling: v6 then runs its entry
    /// points without bounds checks.
    pub fn whole_blocks(self, [m, n, k]: [usize; 3]) -> bool {
        let (bm, bn) = (self.block_m() as usize, self.block_n() as usize);
        m % bm == 0 && n % bn == 0 && k % self.bk as usize == 0
    }

    /// The pipeline constants for an `[m, n, k]` product with these transposes.
    pub fn constants(self, trans_a: bool, trans_b: bool, mnk: [usize; 3]) -> Constants {
        let all = [
            ("TRANS_A", trans_a as u8 as f64),
            ("TRANS_B", trans_b as u8 as f64),
            ("WG_X", self.wg_x as f64),
            ("WG_Y", self.wg_y as f64),
            ("BK", self.bk as f64),
        ];
        match self.variant {
            // Its workgroup is fixed: the constants are the transposes and FULL.
            MatmulVariant::Tiled8 => Constants::new(&[
                all[0],
                all[1],
                ("FULL", self.whole_blocks(mnk) as u8 as f64),
            ]),
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
            MatmulVariant::Vec4
            | MatmulVariant::Subgroup
            | MatmulVariant::Subgroup16
            | MatmulVariant::Tiled8 => k % 4 == 0 && n % 4 == 0 && (!trans_a || m % 4 == 0),
        }
    }
}
