//! Which kernel runs each of a convolution's three products, and the implicit GEMM kernels
//! (v3, v4: `shaders/conv_gemm.wgsl`). The variants are numbered as the shaders number them;
//! every one is held to the reference by the parity suite. By default each product's exact
//! shape is autotuned once per backend among v2, v3 and v4 (those that fit the adapter), on
//! scratch operands, as the matmul tilings are ([`GpuBackend::set_conv_variant`] fixes one).

use super::kernels::{self, Constants, ConvParams};
use super::tune::fastest_of;
use super::{u32_dim, GpuBackend, GpuTensor};
use crate::backend::{Activation, Backend, Tensor, Window};
use crate::error::Result;

/// A convolution kernel, numbered as in `shaders/conv.wgsl` and `shaders/conv_gemm.wgsl`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConvVariant {
    /// v1: direct, one invocation per output element (every shape; slow).
    Direct,
    /// v2: the windows laid out as rows (im2col, col2im), multiplied by the tuned matmuls.
    Im2col,
    /// v3: implicit GEMM, 4 × 4 register blocks read straight from storage (software
    /// adapters).
    Implicit,
    /// v4: implicit GEMM, matmul v1's workgroup-memory tiles loaded through the gathers
    /// (real GPUs).
    ImplicitTiled,
}

impl ConvVariant {
    /// Every variant, in number order.
    pub const ALL: [ConvVariant; 4] = [
        ConvVariant::Direct,
        ConvVariant::Im2col,
        ConvVariant::Implicit,
        ConvVariant::ImplicitTiled,
    ];

    /// `v1` … `v4` and what it is, for tables.
    pub fn name(self) -> &'static str {
        match self {
            ConvVariant::Direct => "v1 direct",
            ConvVariant::Im2col => "v2 im2col",
            ConvVariant::Implicit => "v3 implicit",
            ConvVariant::ImplicitTiled => "v4 implicit tiled",
        }
    }

    /// Workgroup width and height (each invocation a 4 × 4 block).
    fn workgroup(self) -> (usize, usize) {
        match self {
            ConvVariant::ImplicitTiled => (16, 16),
            _ => (8, 8),
        }
    }
}

/// One of a convolution's three products.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum ConvProduct {
    Forward,
    InputGrad,
    KernelGrad,
}

/// A product's shape, the autotune's key (with the batch rounded up to a power of two, so
/// that a last short batch or an evaluation batch is not timed again).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) struct ConvKey {
    pub(super) product: ConvProduct,
    pub(super) window: Window,
    pub(super) rows: usize,
    pub(super) filters: usize,
}

/// The kernel gradient is split into enough slices of whole images that about this many
/// invocations run (its output alone is a few hundred blocks).
const SPLIT_INVOCATIONS: usize = 16_384;

impl ConvKey {
    /// The product's `[M, N]` (see `shaders/conv_gemm.wgsl`).
    fn mn(&self) -> [usize; 2] {
        let w = &self.window;
        match self.product {
            ConvProduct::Forward => [self.rows * w.positions(), self.filters],
            ConvProduct::InputGrad => [self.rows * w.input[0] * w.input[1], w.input[2]],
            ConvProduct::KernelGrad => [taps(w), self.filters],
        }
    }

    /// The workgroups of one slice for v3 or v4.
    fn grid(&self, v: ConvVariant) -> [usize; 2] {
        let [m, n] = self.mn();
        let (wx, wy) = v.workgroup();
        [n.div_ceil(wx * 4), m.div_ceil(wy * 4)]
    }

    /// Split-K for v3 and v4: `(slices, k_slice)`, `(1, 0)` unsplit.
    fn split(&self, v: ConvVariant) -> (usize, usize) {
        if self.product != ConvProduct::KernelGrad {
            return (1, 0);
        }
        let [gx, gy] = self.grid(v);
        let (wx, wy) = v.workgroup();
        let want = SPLIT_INVOCATIONS
            .div_ceil(gx * gy * wx * wy)
            .clamp(1, self.rows);
        let per = self.rows.div_ceil(want);
        let slices = self.rows.div_ceil(per);
        if slices <= 1 {
            (1, 0)
        } else {
            (slices, per * self.window.positions())
        }
    }
}

/// `kh·kw·C`: a kernel's rows.
fn taps(w: &Window) -> usize {
    w.kernel[0] * w.kernel[1] * w.input[2]
}

impl GpuBackend {
    /// Runs every convolution product with `variant` from now on, or (`None`, the default)
    /// autotunes each product's shape among v2, v3 and v4. A variant that cannot run a shape
    /// here (a grid over the adapter's limits) leaves it to v2.
    pub fn set_conv_variant(&mut self, variant: Option<ConvVariant>) {
        self.conv_variant = variant;
        self.conv_tuned.clear();
        self.plan_generation += 1;
    }

    /// Whether `v` can run `key` on this adapter.
    fn conv_fits(&self, v: ConvVariant, key: &ConvKey) -> bool {
        let limits = self.ctx.limits();
        match v {
            ConvVariant::Direct | ConvVariant::Im2col => true,
            ConvVariant::Implicit | ConvVariant::ImplicitTiled => {
                let (wx, wy) = v.workgroup();
                let max = limits.max_compute_workgroups_per_dimension as usize;
                let [gx, gy] = key.grid(v);
                let (slices, _) = key.split(v);
                // v4's two tiles: (16·4) × 16 floats each.
                let memory = if v == ConvVariant::ImplicitTiled {
                    8192
                } else {
                    0
                };
                gx <= max
                    && gy <= max
                    && slices <= max
                    && wx * wy <= limits.max_compute_invocations_per_workgroup as usize
                    && wx <= limits.max_compute_workgroup_size_x as usize
                    && wy <= limits.max_compute_workgroup_size_y as usize
                    && memory <= limits.max_compute_workgroup_storage_size as usize
            }
        }
    }

    /// The variant that runs `key`: the fixed one, or the autotuned one (timed on its first
    /// use, for its shape class, then looked up).
    pub(super) fn conv_variant_for(&mut self, key: ConvKey) -> Result<ConvVariant> {
        let class = ConvKey {
            rows: key.rows.next_power_of_two(),
            ..key
        };
        if let Some(v) = self.conv_variant {
            return Ok(if self.conv_fits(v, &key) {
                v
            } else {
                ConvVariant::Im2col
            });
        }
        if let Some(&v) = self.conv_tuned.get(&class) {
            if self.conv_fits(v, &key) {
                return Ok(v);
            }
        }
        // v4's barriers are context switches on a software adapter (lavapipe), where it was
        // 2 to 19 times slower than v3 on every shape timed (docs/PERFORMANCE.md): not timed
        // there.
        let software = self.ctx.adapter().device_type == "Cpu";
        let candidates: Vec<ConvVariant> = [
            ConvVariant::Im2col,
            ConvVariant::Implicit,
            ConvVariant::ImplicitTiled,
        ]
        .into_iter()
        .filter(|&v| !(software && v == ConvVariant::ImplicitTiled))
        .filter(|&v| self.conv_fits(v, &key))
        .collect();
        let best = if !self.autotune || candidates.len() < 2 {
            candidates[0]
        } else {
            self.tune_conv(&key, &candidates)?
        };
        self.conv_tuned.insert(class, best);
        Ok(best)
    }

    /// Times `candidates` on scratch operands of `key`'s shape; the fastest.
    fn tune_conv(&mut self, key: &ConvKey, candidates: &[ConvVariant]) -> Result<ConvVariant> {
        let w = key.window;
        let (rows, f) = (key.rows, key.filters);
        let x = self.zeros(rows, w.input_len())?;
        let dz = self.zeros(rows, w.positions() * f)?;
        let kernel = self.zeros(taps(&w), f)?;
        let mut bias = self.zeros(1, f)?;
        let times = match key.product {
            ConvProduct::Forward => {
                let mut z = self.zeros(rows, w.positions() * f)?;
                let mut a = self.zeros(rows, w.positions() * f)?;
                self.time_each(candidates.len(), |g, i| {
                    let act = Some((Activation::Relu, &mut a));
                    let v = candidates[i];
                    super::conv::forward_with(g, v, &x, &kernel, Some(&bias), &w, act, &mut z)
                })?
            }
            ConvProduct::InputGrad => {
                let mut dx = self.zeros(rows, w.input_len())?;
                self.time_each(candidates.len(), |g, i| {
                    super::conv::input_grad_with(g, candidates[i], &dz, &kernel, &w, &mut dx)
                })?
            }
            ConvProduct::KernelGrad => {
                let mut dk = self.zeros(taps(&w), f)?;
                self.time_each(candidates.len(), |g, i| {
                    let db = Some(&mut bias);
                    super::conv::kernel_grad_with(g, candidates[i], &x, &dz, &w, &mut dk, db)
                })?
            }
        };
        self.stats.tunings += 1;
        Ok(fastest_of(&times, candidates))
    }

    /// Records product `key` with v3 or v4: `out = A·B` from the sources `a` and `b` (x or dz,
    /// the kernel or dz), the forward with its bias and, where `act` is given, its activation
    /// into `act`'s tensor.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn record_conv_gemm(
        &mut self,
        v: ConvVariant,
        key: &ConvKey,
        out: &GpuTensor,
        a: &GpuTensor,
        b: &GpuTensor,
        bias: Option<&GpuTensor>,
        act: Option<(Activation, &GpuTensor)>,
    ) -> Result<()> {
        let op = "conv2d (implicit GEMM)";
        let (slices, k_slice) = key.split(v);
        let w = &key.window;
        let p = ConvParams {
            has_bias: bias.is_some() as u32,
            k_slice: u32_dim(op, k_slice)?,
            slices: u32_dim(op, slices)?,
            q: act.map_or([0.0; 4], |(act, _)| act.params()),
            ..super::conv::params(op, w, key.rows, key.filters)?
        };
        let (wx, wy) = v.workgroup();
        let mode = match key.product {
            ConvProduct::Forward => 0,
            ConvProduct::InputGrad => 1,
            ConvProduct::KernelGrad => 2,
        };
        let act_code = act.map_or(0.0, |(act, _)| act.code() as f64);
        let constants = Constants::new(&[
            ("MODE", f64::from(mode)),
            ("WG_X", wx as f64),
            ("WG_Y", wy as f64),
            ("BK", 16.0),
            ("ACT", act_code),
        ]);
        let [gx, gy] = key.grid(v);
        let groups = [u32_dim(op, gx)?, u32_dim(op, gy)?, u32_dim(op, slices)?];
        let bias = bias.unwrap_or(b);
        let tiled = v == ConvVariant::ImplicitTiled;
        if let Some((_, act_out)) = act {
            let kernel = if tiled {
                kernels::CONV_GEMM_BIAS_ACT
            } else {
                kernels::CONV_GEMM_DIRECT_BIAS_ACT
            };
            return self.record(kernel, constants, p, &[out, a, b, bias, act_out], groups);
        }
        let kernel = if tiled {
            kernels::CONV_GEMM
        } else {
            kernels::CONV_GEMM_DIRECT
        };
        let label = match (tiled, key.product) {
            (false, ConvProduct::Forward) => "conv_gemm_direct forward",
            (false, ConvProduct::InputGrad) => "conv_gemm_direct input grad",
            (false, ConvProduct::KernelGrad) => "conv_gemm_direct kernel grad",
            (true, ConvProduct::Forward) => "conv_gemm forward",
            (true, ConvProduct::InputGrad) => "conv_gemm input grad",
            (true, ConvProduct::KernelGrad) => "conv_gemm kernel grad",
        };
        if slices == 1 {
            return self.record_labeled(kernel, label, constants, p, &[out, a, b, bias], groups);
        }
        let len = out.len();
        u32_dim(op, slices * len)?;
        let parts = super::conv::scratch(self, "slices", slices, len)?;
        self.record_labeled(kernel, label, constants, p, &[&parts, a, b, bias], groups)?;
        let groups = self.grid_1d(len)?;
        self.record(
            kernels::CONV_GEMM_SLICES,
            Constants::default(),
            p,
            &[out, &parts],
            groups,
        )
    }
}
