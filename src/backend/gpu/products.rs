//! The products: `c = op(a)·op(b)` with a tiling, the Dense forward with its bias and
//! activation fused into the product's epilogue, and split-K for matmul v6 — a product with
//! few output blocks and a long K runs as slices of K in separate workgroups (each into its
//! part of a scratch buffer), then one pass sums the slices in order
//! (`shaders/splitk.wgsl`), with the forward's bias and activation when it has them. The
//! 128 × 512 × 784 forward of MLP-A is 4 blocks of v6 without it.

use super::kernels::{self, Constants, MatmulTiles, SplitKParams};
use super::{u32_dim, GpuBackend, GpuTensor};
use crate::backend::{check, Activation, Backend, Tensor};
use crate::error::{Error, Result};

/// The forward's epilogue, done by the sum: bias, activation, and where `act(z)` goes.
pub(super) struct Epilogue<'a> {
    pub(super) bias: &'a GpuTensor,
    pub(super) act: Activation,
    pub(super) out: &'a mut GpuTensor,
}

impl GpuBackend {
    /// The slices and the slice length a product of depth `k` takes with `tiles`: `None`
    /// without split-K, or where K is one slice. Slices are whole 8-deep tiles and none is
    /// empty (fewer slices than asked where K is short).
    pub(super) fn split_of(tiles: MatmulTiles, k: usize) -> Option<(usize, usize)> {
        if tiles.split_k <= 1 {
            return None;
        }
        let bk = tiles.bk as usize;
        let k_tiles = k.div_ceil(bk);
        let per = k_tiles.div_ceil(tiles.split_k as usize);
        let slices = k_tiles.div_ceil(per);
        (slices > 1).then_some((slices, per * bk))
    }

    /// Records `c = op(a)·op(b)` (and the epilogue) as split-K: v6 over `slices` slices of
    /// `k_slice` into the scratch buffer, then their sum into `c`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn record_split(
        &mut self,
        tiles: MatmulTiles,
        (slices, k_slice): (usize, usize),
        a: &GpuTensor,
        ta: bool,
        b: &GpuTensor,
        tb: bool,
        c: &mut GpuTensor,
        epilogue: Option<Epilogue<'_>>,
    ) -> Result<()> {
        let (m, n) = (c.rows, c.cols);
        let k = if ta { a.rows } else { a.cols };
        let need = slices * m * n;
        if self.split_scratch.as_ref().is_none_or(|s| s.len() < need) {
            self.split_scratch = Some(self.zeros(1, need)?);
        }
        let scratch = self
            .split_scratch
            .as_ref()
            .expect("made just above")
            .handle();
        let mut groups = self.matmul_grid(tiles, m, n)?;
        groups[2] = u32_dim("matmul", slices)?;
        let params = matmul_params([m, n, k], k_slice, [0.0; 4])?;
        self.record_labeled(
            tiles.variant.kernel_for(tiles, [m, n, k]),
            tiles.variant.label(ta, tb),
            tiles.constants(ta, tb, [m, n, k]),
            params,
            &[&scratch, a, b],
            groups,
        )?;
        let len4 = m * n / 4;
        let mut sum = SplitKParams {
            len4: u32_dim("matmul", len4)?,
            n4: u32_dim("matmul", n / 4)?,
            slices: u32_dim("matmul", slices)?,
            _pad: 0,
            q: [0.0; 4],
        };
        let groups = self.grid_1d(len4)?;
        match epilogue {
            None => self.record(
                kernels::SPLITK_SUM,
                Constants::default(),
                sum,
                &[c, &scratch],
                groups,
            ),
            Some(e) => {
                sum.q = e.act.params();
                self.record(
                    kernels::SPLITK_SUM_BIAS_ACT,
                    Constants::new(&[("ACT", e.act.code() as f64)]),
                    sum,
                    &[c, &scratch, e.bias, e.out],
                    groups,
                )
            }
        }
    }

    /// Records `c = op(a)·op(b)` with `tiles` (which must run this shape).
    pub(super) fn record_matmul(
        &mut self,
        tiles: MatmulTiles,
        a: &GpuTensor,
        ta: bool,
        b: &GpuTensor,
        tb: bool,
        c: &mut GpuTensor,
    ) -> Result<()> {
        let (m, n) = (c.rows, c.cols);
        let k = if ta { a.rows } else { a.cols };
        if let Some(split) = Self::split_of(tiles, k) {
            return self.record_split(tiles, split, a, ta, b, tb, c, None);
        }
        let groups = self.matmul_grid(tiles, m, n)?;
        let params = matmul_params([m, n, k], 0, [0.0; 4])?;
        self.record_labeled(
            tiles.variant.kernel_for(tiles, [m, n, k]),
            tiles.variant.label(ta, tb),
            tiles.constants(ta, tb, [m, n, k]),
            params,
            &[c, a, b],
            groups,
        )
    }

    /// Workgroups for an `[m, n]` product with `tiles`.
    pub(super) fn matmul_grid(&self, tiles: MatmulTiles, m: usize, n: usize) -> Result<[u32; 3]> {
        let max = self.ctx.limits().max_compute_workgroups_per_dimension as usize;
        let groups = [
            n.div_ceil(tiles.block_n() as usize),
            m.div_ceil(tiles.block_m() as usize),
        ];
        if groups.iter().any(|&g| g > max) {
            return Err(Error::Invalid {
                op: "matmul",
                detail: format!(
                    "a [{m}, {n}] output needs {groups:?} workgroups; this adapter allows {max} per dimension"
                ),
            });
        }
        Ok([groups[0] as u32, groups[1] as u32, 1])
    }

    /// The Dense forward `z = x·w + bias; a = act(z)`: the bias and activation in the
    /// product's epilogue, or (softmax, which needs whole rows) after it.
    pub(super) fn record_dense_forward(
        &mut self,
        x: &GpuTensor,
        w: &GpuTensor,
        bias: &GpuTensor,
        act: Activation,
        z: &mut GpuTensor,
        a: &mut GpuTensor,
    ) -> Result<()> {
        let (m, n, k) = check::matmul(x, false, w, false, z)?;
        check::row_vector("dense_forward", z, bias)?;
        check::same("dense_forward", &[("z", &*z), ("a", &*a)])?;
        let tiles = self.tiles_for(m, n, k, false, false)?;
        if act.is_row_wise() {
            // Softmax needs whole rows: its own kernel after the product.
            self.record_matmul(tiles, x, false, w, false, z)?;
            self.bias_add(z, bias)?;
            return self.activation(act, z, a);
        }
        if let Some(split) = Self::split_of(tiles, k) {
            let epilogue = Epilogue { bias, act, out: a };
            return self.record_split(tiles, split, x, false, w, false, z, Some(epilogue));
        }
        let params = matmul_params([m, n, k], 0, act.params())?;
        let groups = self.matmul_grid(tiles, m, n)?;
        self.record_labeled(
            tiles.variant.bias_act_kernel_for(tiles, [m, n, k]),
            tiles.variant.bias_act_label(),
            tiles.bias_act_constants(act.code(), [m, n, k]),
            params,
            &[z, x, w, bias, a],
            groups,
        )
    }
}

/// A product's uniform: its shape, split-K's slice of K (0 for none), the activation's
/// parameters for a fused epilogue.
fn matmul_params(
    [m, n, k]: [usize; 3],
    k_slice: usize,
    q: [f32; 4],
) -> Result<kernels::MatmulParams> {
    Ok(kernels::MatmulParams {
        m: u32_dim("matmul", m)?,
        n: u32_dim("matmul", n)?,
        k: u32_dim("matmul", k)?,
        k_slice: u32_dim("matmul", k_slice)?,
        q,
    })
}
