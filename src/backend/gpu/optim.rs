//! Parameter groups and optimizer updates on the GPU: a group's tensors in one buffer, and
//! one dispatch per parameter, or one vec4 dispatch over a whole group; in place, or guarded
//! (see `Backend::optimizer_step`). The [`Backend`](crate::backend::Backend) impl in `ops.rs`
//! calls these.

use std::sync::atomic::Ordering;

use super::kernels::{self, Constants};
use super::plan::Patch;
use super::{u32_dim, GpuBackend, GpuTensor, Group, NEXT_TENSOR_ID};
use crate::backend::{check, Backend, Guard, GuardSlots, Optimizer, Tensor};
use crate::error::Result;

impl GpuBackend {
    pub(super) fn record_zeros_group(&mut self, shapes: &[[usize; 2]]) -> Result<Vec<GpuTensor>> {
        // Each part starts at the storage-offset alignment (and on a vec4), so each can be
        // bound on its own; the gaps stay zero.
        let align = (self.ctx.limits().min_storage_buffer_offset_alignment as usize).max(16) / 4;
        let mut starts = Vec::with_capacity(shapes.len());
        let mut end = 0usize;
        for &[rows, cols] in shapes {
            check::new_tensor(rows, cols, None)?;
            let start = end.next_multiple_of(align);
            starts.push(start);
            end = start + rows * cols;
        }
        if shapes.is_empty() {
            return Ok(Vec::new());
        }
        let len = end.next_multiple_of(4);
        let limits = self.ctx.limits();
        let bind_limit = limits
            .max_storage_buffer_binding_size
            .min(limits.max_buffer_size);
        if 4 * len as u64 > bind_limit {
            // Too big to bind as one buffer: separate tensors, stepped one by one.
            return shapes.iter().map(|&[r, c]| self.zeros(r, c)).collect();
        }
        let whole = self.new_tensor(1, len, None)?;
        Ok(shapes
            .iter()
            .zip(starts)
            .enumerate()
            .map(|(index, (&[rows, cols], start))| GpuTensor {
                buffer: whole.buffer.clone(),
                offset: start as u64 * 4,
                id: NEXT_TENSOR_ID.fetch_add(1, Ordering::Relaxed),
                rows,
                cols,
                group: Some(Group {
                    id: whole.id,
                    index,
                    count: shapes.len(),
                    len,
                }),
            })
            .collect())
    }

    pub(super) fn record_optimizer_step_all(
        &mut self,
        opt: Optimizer,
        t: u64,
        params: &mut [GpuTensor],
        grads: &[GpuTensor],
        state: &mut [Vec<GpuTensor>],
        mut guard: Option<Guard<'_, GpuTensor>>,
    ) -> Result<()> {
        check::optimizer_all(params.len(), grads.len(), state.len(), guard.as_ref())?;
        for (j, ((p, g), s)) in params.iter().zip(grads).zip(state.iter()).enumerate() {
            let part = guard.as_mut().map(|g| g.part(j));
            check::optimizer(opt, t, p, g, s, part.as_ref())?;
        }
        // One dispatch over the whole buffers when params, grads, each kind of state (and
        // each kind of output) are whole groups with the same layout; otherwise one step per
        // tensor.
        let kinds = opt.state_tensors();
        let whole = GpuTensor::whole_group(params.iter()).and_then(|p| {
            let g = GpuTensor::whole_group(grads.iter())?;
            let s = (0..kinds)
                .map(|k| GpuTensor::whole_group(state.iter().map(|s| &s[k])))
                .collect::<Option<Vec<_>>>()?;
            let b = match &guard {
                Some(guard) => {
                    let mut outs = vec![GpuTensor::whole_group(guard.params_out.iter())?];
                    for k in 0..kinds {
                        outs.push(GpuTensor::whole_group(
                            guard.state_out.iter().map(|s| &s[k]),
                        )?);
                    }
                    Some(outs)
                }
                None => None,
            };
            let lens = std::iter::once(g.len())
                .chain(s.iter().map(Tensor::len))
                .chain(b.iter().flatten().map(Tensor::len));
            let same = lens.into_iter().all(|l| l == p.len());
            same.then_some((p, g, s, b))
        });
        match whole {
            Some((mut p, g, mut s, b)) => {
                let guard = guard.map(|guard| (guard.acc, guard.slots));
                let whole_guard = guard.zip(b.as_deref());
                self.optimizer_dispatch(opt, t, &mut p, &g, &mut s, whole_guard, true)
            }
            None => {
                for (j, ((p, g), s)) in params.iter_mut().zip(grads).zip(state).enumerate() {
                    let part = guard.as_mut().map(|g| g.part(j));
                    self.optimizer_step(opt, t, p, g, s, part)?;
                }
                Ok(())
            }
        }
    }

    pub(super) fn record_optimizer_step(
        &mut self,
        opt: Optimizer,
        t: u64,
        param: &mut GpuTensor,
        grad: &GpuTensor,
        state: &mut [GpuTensor],
        guard: Option<Guard<'_, GpuTensor>>,
    ) -> Result<()> {
        check::optimizer(opt, t, param, grad, state, guard.as_ref())?;
        let outs: Option<Vec<GpuTensor>> = guard.as_ref().map(|g| {
            std::iter::once(&g.params_out[0])
                .chain(&g.state_out[0])
                .map(GpuTensor::handle)
                .collect()
        });
        let guard = guard.map(|g| (g.acc, g.slots)).zip(outs.as_deref());
        self.optimizer_dispatch(opt, t, param, grad, state, guard, false)
    }

    /// One optimizer dispatch over `param` (checked by the caller): one thread per element,
    /// or with `vec4` (whole groups, whose lengths are multiples of 4) per four. A guard is the
    /// accumulator with its slots, and where the new parameter and each new state tensor go.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn optimizer_dispatch(
        &mut self,
        opt: Optimizer,
        t: u64,
        param: &mut GpuTensor,
        grad: &GpuTensor,
        state: &mut [GpuTensor],
        guard: Option<((&mut GpuTensor, GuardSlots), &[GpuTensor])>,
        vec4: bool,
    ) -> Result<()> {
        let lanes = if vec4 { 4 } else { 1 };
        let kernel = match (opt, vec4) {
            (Optimizer::Sgd { .. }, false) => kernels::OPT_SGD,
            (Optimizer::Sgd { .. }, true) => kernels::OPT_SGD4,
            (Optimizer::Momentum { .. }, false) => kernels::OPT_MOMENTUM,
            (Optimizer::Momentum { .. }, true) => kernels::OPT_MOMENTUM4,
            (Optimizer::Adam { .. }, false) => kernels::OPT_ADAM,
            (Optimizer::Adam { .. }, true) => kernels::OPT_ADAM4,
        };
        let mut params = update_params("optimizer_step", param.len() / lanes, opt.lr(), t)?;
        let mut nesterov = false;
        match opt {
            Optimizer::Sgd { .. } => {}
            Optimizer::Momentum {
                momentum,
                nesterov: n,
                ..
            } => {
                params.beta1 = momentum;
                nesterov = n;
            }
            Optimizer::Adam {
                beta1,
                beta2,
                eps,
                weight_decay,
                ..
            } => {
                let (bc1, bc2) = Optimizer::adam_bias_corrections(beta1, beta2, t);
                params.beta1 = beta1;
                params.beta2 = beta2;
                params.eps = eps;
                params.weight_decay = weight_decay;
                params.bias_correction1 = bc1;
                params.bias_correction2 = bc2;
            }
        }
        let constants = update_constants(nesterov, guard.is_some());
        let unused: Vec<GpuTensor> = self.unguarded.iter().map(GpuTensor::handle).collect();
        let (acc, outs): (&GpuTensor, Vec<&GpuTensor>) = match &guard {
            Some(((acc, slots), outs)) => {
                guard_slots("optimizer_step", &mut params, *slots)?;
                (&**acc, outs.iter().collect())
            }
            None => (&unused[0], unused[1..].iter().collect()),
        };
        // param, acc, grad, new param, then each state tensor and its new values.
        let mut bindings: Vec<&GpuTensor> = vec![param, acc, grad, outs[0]];
        for (k, s) in state.iter().enumerate() {
            bindings.push(s);
            bindings.push(outs[k + 1]);
        }
        let groups = self.grid_1d(param.len() / lanes)?;
        self.record(kernel, constants, params, &bindings, groups)?;
        self.patch_last(Patch::Optimizer(opt));
        Ok(())
    }
}

/// The uniform of an update (`optim.wgsl`) over `len` elements (or vec4s) at step `t` with
/// rate `lr` (the moving average's momentum), unguarded, the other rules' fields unset.
pub(super) fn update_params(
    op: &'static str,
    len: usize,
    lr: f32,
    t: u64,
) -> Result<kernels::OptimParams> {
    Ok(kernels::OptimParams {
        len: u32_dim(op, len)?,
        lr,
        beta1: 0.0,
        beta2: 0.0,
        eps: 0.0,
        weight_decay: 0.0,
        bias_correction1: 1.0,
        bias_correction2: 1.0,
        loss_slot: 0,
        flag_slot: 0,
        step_slot: 0,
        t: u32::try_from(t).unwrap_or(u32::MAX),
    })
}

/// The pipeline constants of an update.
pub(super) fn update_constants(nesterov: bool, guarded: bool) -> Constants {
    Constants::new(&[
        ("NESTEROV", nesterov as u8 as f64),
        ("GUARDED", guarded as u8 as f64),
    ])
}

/// A guarded update's slots, into its uniform.
pub(super) fn guard_slots(
    op: &'static str,
    params: &mut kernels::OptimParams,
    slots: GuardSlots,
) -> Result<()> {
    params.loss_slot = u32_dim(op, slots.loss)?;
    params.flag_slot = u32_dim(op, slots.flags)?;
    params.step_slot = u32_dim(op, slots.step)?;
    Ok(())
}
