//! Optimizer updates on the GPU: one dispatch per parameter, or one vec4 dispatch over a
//! whole parameter group; in place, or guarded (see `Backend::optimizer_step`).

use super::kernels::{self, Constants};
use super::{u32_dim, GpuBackend, GpuTensor};
use crate::backend::{GuardSlots, Optimizer, Tensor};
use crate::error::Result;

impl GpuBackend {
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
        self.record(kernel, constants, params, &bindings, groups)
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
