//! Split-K for matmul v6: a product with few output blocks and a long K runs as slices of K
//! in separate workgroups (each into its part of a scratch buffer), then one pass sums the
//! slices in order (`shaders/splitk.wgsl`), with the forward's bias and activation when it
//! has them. The 128 × 512 × 784 forward of MLP-A is 4 blocks of v6 without it.

use super::kernels::{self, Constants, MatmulTiles, SplitKParams};
use super::{u32_dim, GpuBackend, GpuTensor};
use crate::backend::{Activation, Backend, Tensor};
use crate::error::Result;

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
        let params = kernels::MatmulParams {
            m: u32_dim("matmul", m)?,
            n: u32_dim("matmul", n)?,
            k: u32_dim("matmul", k)?,
            k_slice: u32_dim("matmul", k_slice)?,
            q: [0.0; 4],
        };
        self.record_labeled(
            tiles.variant.kernel(),
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
}
