//! The ops of the layers beyond Dense on [`GpuBackend`] (dropout, batch normalization and its
//! moving averages, PReLU, maxout, the weight penalties): each checked as every backend checks
//! it, then recorded as one dispatch of `shaders/layers.wgsl` (or `optim.wgsl` for the moving
//! average). The [`Backend`](crate::backend::Backend) impl in `ops.rs` calls these.

use super::kernels::{self, Constants, LayerParams};
use super::optim::{guard_slots, update_constants, update_params};
use super::plan::Patch;
use super::reduce::TWO_PASS_FROM;
use super::{u32_dim, GpuBackend, GpuTensor};
use crate::backend::{check, DropoutMask, Guard, GuardSlots, RandomSlopes, Tensor};
use crate::error::Result;

fn shape(op: &'static str, t: &GpuTensor) -> Result<LayerParams> {
    Ok(LayerParams {
        rows: u32_dim(op, t.rows)?,
        cols: u32_dim(op, t.cols)?,
        ..LayerParams::default()
    })
}

impl GpuBackend {
    pub(super) fn record_dropout(
        &mut self,
        x: &GpuTensor,
        mask: DropoutMask,
        y: &mut GpuTensor,
        keep: &mut GpuTensor,
    ) -> Result<()> {
        check::dropout(x, mask, y, keep)?;
        let [key0, key1] = mask.key();
        let params = LayerParams {
            a: mask.scale(),
            drop_below: mask.drop_below(),
            key0,
            key1,
            step: mask.step as u32,
            ..shape("dropout", x)?
        };
        // One invocation per pair of elements: one draw decides both.
        let groups = self.grid_1d(x.len().div_ceil(2))?;
        self.record(
            kernels::DROPOUT,
            Constants::default(),
            params,
            &[y, keep, x],
            groups,
        )?;
        self.patch_last(Patch::Draw);
        Ok(())
    }

    pub(super) fn record_multiply(
        &mut self,
        a: &GpuTensor,
        b: &GpuTensor,
        c: &mut GpuTensor,
    ) -> Result<()> {
        check::same("multiply", &[("a", a), ("b", b), ("c", &*c)])?;
        let params = shape("multiply", a)?;
        let groups = self.grid_1d(a.len())?;
        self.record(
            kernels::MULTIPLY,
            Constants::default(),
            params,
            &[c, a, b],
            groups,
        )
    }

    fn rrelu_params(op: &'static str, x: &GpuTensor, slopes: RandomSlopes) -> Result<LayerParams> {
        let [key0, key1] = slopes.mask().key();
        Ok(LayerParams {
            a: slopes.lower,
            b: slopes.upper,
            key0,
            key1,
            step: slopes.step as u32,
            ..shape(op, x)?
        })
    }

    pub(super) fn record_rrelu_forward(
        &mut self,
        x: &GpuTensor,
        slopes: RandomSlopes,
        y: &mut GpuTensor,
    ) -> Result<()> {
        check::rrelu("rrelu_forward", slopes, &[("x", x), ("y", &*y)])?;
        let params = Self::rrelu_params("rrelu_forward", x, slopes)?;
        let groups = self.grid_1d(x.len())?;
        self.record(
            kernels::RRELU_FORWARD,
            Constants::default(),
            params,
            &[y, x],
            groups,
        )?;
        self.patch_last(Patch::Draw);
        Ok(())
    }

    pub(super) fn record_rrelu_backward(
        &mut self,
        x: &GpuTensor,
        slopes: RandomSlopes,
        dy: &GpuTensor,
        dx: &mut GpuTensor,
    ) -> Result<()> {
        check::rrelu(
            "rrelu_backward",
            slopes,
            &[("x", x), ("dy", dy), ("dx", &*dx)],
        )?;
        let params = Self::rrelu_params("rrelu_backward", x, slopes)?;
        let groups = self.grid_1d(x.len())?;
        self.record(
            kernels::RRELU_BACKWARD,
            Constants::default(),
            params,
            &[dx, x, dy],
            groups,
        )?;
        self.patch_last(Patch::Draw);
        Ok(())
    }

    pub(super) fn record_batchnorm_stats(
        &mut self,
        x: &GpuTensor,
        mean: &mut GpuTensor,
        var: &mut GpuTensor,
    ) -> Result<()> {
        check::per_column("batchnorm_stats", x, &[mean, var], &[])?;
        let params = shape("batchnorm_stats", x)?;
        let groups = self.grid_1d(x.cols)?;
        self.record(
            kernels::BATCHNORM_STATS,
            Constants::default(),
            params,
            &[mean, var, x],
            groups,
        )
    }

    pub(super) fn record_batchnorm_forward(
        &mut self,
        x: &GpuTensor,
        [mean, var]: [&GpuTensor; 2],
        [gamma, beta]: [&GpuTensor; 2],
        eps: f32,
        y: &mut GpuTensor,
    ) -> Result<()> {
        check::per_column("batchnorm_forward", x, &[mean, var, gamma, beta], &[y])?;
        check::epsilon("batchnorm_forward", eps)?;
        let params = LayerParams {
            a: eps,
            ..shape("batchnorm_forward", x)?
        };
        let groups = self.grid_1d(x.len())?;
        self.record(
            kernels::BATCHNORM_FORWARD,
            Constants::default(),
            params,
            &[y, x, mean, var, gamma, beta],
            groups,
        )
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn record_batchnorm_backward(
        &mut self,
        x: &GpuTensor,
        [mean, var]: [&GpuTensor; 2],
        gamma: &GpuTensor,
        dy: &GpuTensor,
        eps: f32,
        dx: &mut GpuTensor,
        [dgamma, dbeta]: [&mut GpuTensor; 2],
    ) -> Result<()> {
        check::per_column(
            "batchnorm_backward",
            x,
            &[mean, var, gamma, dgamma, dbeta],
            &[dy, dx],
        )?;
        check::epsilon("batchnorm_backward", eps)?;
        let params = LayerParams {
            a: eps,
            ..shape("batchnorm_backward", x)?
        };
        let groups = self.grid_1d(x.cols)?;
        self.record(
            kernels::BATCHNORM_BACKWARD,
            Constants::default(),
            params,
            &[dx, dgamma, dbeta, x, mean, var, gamma, dy],
            groups,
        )
    }

    pub(super) fn record_moving_average_all(
        &mut self,
        momentum: f32,
        t: u64,
        moving: &mut [GpuTensor],
        batch: &[GpuTensor],
        guard: Option<Guard<'_, GpuTensor>>,
    ) -> Result<()> {
        check::moving_average(momentum, moving, batch, guard.as_ref())?;
        if moving.is_empty() {
            return Ok(());
        }
        // One dispatch over the whole groups when they are groups of the same length (the
        // layout is then the same); otherwise one per statistic.
        let whole = GpuTensor::whole_group(moving.iter()).and_then(|m| {
            let b = GpuTensor::whole_group(batch.iter())?;
            let out = match &guard {
                Some(g) => Some(GpuTensor::whole_group(g.params_out.iter())?),
                None => None,
            };
            let same = b.len() == m.len() && out.as_ref().is_none_or(|o| o.len() == m.len());
            same.then_some((m, b, out))
        });
        let slots = guard.as_ref().map(|g| g.slots);
        let mut acc = guard.map(|g| (g.acc, g.params_out));
        match whole {
            Some((mut m, b, out)) => {
                let guard = acc.as_mut().map(|(a, _)| &mut **a).zip(slots);
                self.moving_dispatch(momentum, t, &mut m, &b, guard.zip(out.as_ref()))
            }
            None => {
                for (j, (m, b)) in moving.iter_mut().zip(batch).enumerate() {
                    let guard = acc
                        .as_mut()
                        .map(|(a, outs)| (&mut **a, slots.expect("with the guard"), &outs[j]));
                    let guard = guard.map(|(a, s, o)| ((a, s), o));
                    self.moving_dispatch(momentum, t, m, b, guard)?;
                }
                Ok(())
            }
        }
    }

    /// One moving-average dispatch over `moving` (checked by the caller), in place or guarded
    /// (the accumulator, its slots, and where the new values go).
    fn moving_dispatch(
        &mut self,
        momentum: f32,
        t: u64,
        moving: &mut GpuTensor,
        batch: &GpuTensor,
        guard: Option<((&mut GpuTensor, GuardSlots), &GpuTensor)>,
    ) -> Result<()> {
        let mut params = update_params("moving_average", moving.len(), momentum, t)?;
        let constants = update_constants(false, guard.is_some());
        let unused: Vec<GpuTensor> = self.unguarded.iter().map(GpuTensor::handle).collect();
        let (acc, out): (&GpuTensor, &GpuTensor) = match &guard {
            Some(((acc, slots), out)) => {
                guard_slots("moving_average", &mut params, *slots)?;
                (&**acc, out)
            }
            None => (&unused[0], &unused[1]),
        };
        let groups = self.grid_1d(moving.len())?;
        self.record(
            kernels::MOVING_AVERAGE,
            constants,
            params,
            &[moving, acc, batch, out],
            groups,
        )?;
        self.patch_last(Patch::Moving);
        Ok(())
    }

    pub(super) fn record_prelu_forward(
        &mut self,
        x: &GpuTensor,
        alpha: &GpuTensor,
        y: &mut GpuTensor,
    ) -> Result<()> {
        check::per_column("prelu_forward", x, &[alpha], &[y])?;
        let params = shape("prelu_forward", x)?;
        let groups = self.grid_1d(x.len())?;
        self.record(
            kernels::PRELU_FORWARD,
            Constants::default(),
            params,
            &[y, x, alpha],
            groups,
        )
    }

    pub(super) fn record_prelu_backward(
        &mut self,
        x: &GpuTensor,
        alpha: &GpuTensor,
        dy: &GpuTensor,
        dx: &mut GpuTensor,
        dalpha: &mut GpuTensor,
    ) -> Result<()> {
        check::per_column("prelu_backward", x, &[alpha, dalpha], &[dy, dx])?;
        let params = shape("prelu_backward", x)?;
        let groups = self.grid_1d(x.cols)?;
        self.record(
            kernels::PRELU_BACKWARD,
            Constants::default(),
            params,
            &[dx, dalpha, x, alpha, dy],
            groups,
        )
    }

    pub(super) fn record_maxout_forward(
        &mut self,
        z: &GpuTensor,
        pieces: usize,
        y: &mut GpuTensor,
    ) -> Result<()> {
        check::maxout("maxout_forward", z, pieces, y)?;
        let params = LayerParams {
            pieces: u32_dim("maxout_forward", pieces)?,
            ..shape("maxout_forward", y)?
        };
        let groups = self.grid_1d(y.len())?;
        self.record(
            kernels::MAXOUT_FORWARD,
            Constants::default(),
            params,
            &[y, z],
            groups,
        )
    }

    pub(super) fn record_maxout_backward(
        &mut self,
        z: &GpuTensor,
        pieces: usize,
        dy: &GpuTensor,
        dz: &mut GpuTensor,
    ) -> Result<()> {
        check::maxout("maxout_backward", z, pieces, dy)?;
        check::same("maxout_backward", &[("z", z), ("dz", &*dz)])?;
        let params = LayerParams {
            pieces: u32_dim("maxout_backward", pieces)?,
            ..shape("maxout_backward", dy)?
        };
        let groups = self.grid_1d(dy.len())?;
        self.record(
            kernels::MAXOUT_BACKWARD,
            Constants::default(),
            params,
            &[dz, z, dy],
            groups,
        )
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn record_penalty_into(
        &mut self,
        w: &GpuTensor,
        l1: f32,
        l2: f32,
        scale: f32,
        acc: &mut GpuTensor,
        slot: usize,
    ) -> Result<()> {
        check::penalty(l1, l2)?;
        check::slot("penalty_into", acc, slot)?;
        let params = LayerParams {
            slot: u32_dim("penalty_into", slot)?,
            a: l1,
            b: l2,
            c: scale,
            ..shape("penalty_into", w)?
        };
        if w.len() < TWO_PASS_FROM {
            return self.record(
                kernels::PENALTY_SUM,
                Constants::default(),
                params,
                &[acc, w],
                [1, 1, 1],
            );
        }
        // Partials over many workgroups (a Dense kernel is 10⁵–10⁶ weights), then their sum.
        let (chunk, groups, partials) = self.partials_for(w.len())?;
        let first = LayerParams {
            pieces: u32_dim("penalty_into", chunk)?,
            ..params
        };
        let grid = self.grid_each(groups)?;
        self.record(
            kernels::PENALTY_SUM,
            Constants::default(),
            first,
            &[&partials, w],
            grid,
        )?;
        self.sum_partials_into(&partials, groups, acc, slot)
    }

    pub(super) fn record_penalty_backward(
        &mut self,
        w: &GpuTensor,
        l1: f32,
        l2: f32,
        grad: &mut GpuTensor,
    ) -> Result<()> {
        check::penalty(l1, l2)?;
        check::same("penalty_backward", &[("w", w), ("grad", &*grad)])?;
        let params = LayerParams {
            a: l1,
            b: l2,
            ..shape("penalty_backward", w)?
        };
        let groups = self.grid_1d(w.len())?;
        self.record(
            kernels::PENALTY_BACKWARD,
            Constants::default(),
            params,
            &[grad, w],
            groups,
        )
    }
}
