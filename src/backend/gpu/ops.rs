//! [`Backend`] for [`GpuBackend`]: each op checked as every backend checks it, then recorded
//! as a dispatch (or, for reads and writes, run on the queue).

use super::kernels::{self, Constants};

use super::{u32_dim, GpuBackend, GpuPlan, GpuTensor};
use crate::backend::{
    check, Activation, Backend, DeviceTime, DropoutMask, Guard, Loss, Optimizer, PointError,
    RandomSlopes, ReadTicket, StepValues, Tensor,
};
use crate::error::Result;

impl Backend for GpuBackend {
    type Tensor = GpuTensor;
    type Plan = GpuPlan;

    fn describe(&self) -> String {
        self.ctx.adapter().to_string()
    }

    fn memory_limits(&self) -> crate::backend::MemoryLimits {
        let l = self.ctx.limits();
        let (limit, name) = if l.max_storage_buffer_binding_size <= l.max_buffer_size {
            (
                l.max_storage_buffer_binding_size,
                "max_storage_buffer_binding_size",
            )
        } else {
            (l.max_buffer_size, "max_buffer_size")
        };
        crate::backend::MemoryLimits {
            max_tensor_bytes: Some(limit),
            max_tensor_limit: name,
            // A software adapter's buffers are host memory.
            in_host_memory: self.ctx.adapter().device_type == "Cpu",
        }
    }

    fn zeros(&mut self, rows: usize, cols: usize) -> Result<GpuTensor> {
        // wgpu zero-initialises new buffers.
        self.new_tensor(rows, cols, None)
    }

    fn upload(&mut self, rows: usize, cols: usize, data: &[f32]) -> Result<GpuTensor> {
        let t = self.new_tensor(rows, cols, Some(data))?;
        self.stats.data_bytes_written += std::mem::size_of_val(data) as u64;
        Ok(t)
    }

    fn gather_rows(
        &mut self,
        src: &GpuTensor,
        order: &GpuTensor,
        offset: usize,
        dst: &mut GpuTensor,
    ) -> Result<()> {
        self.record_gather(src, order, offset, dst)
    }

    fn device_time(&self) -> Option<DeviceTime> {
        Some(DeviceTime {
            waiting_ns: self.stats.wait_ns,
            submitting_ns: self.stats.submit_ns,
        })
    }

    fn gather_rows_pair(
        &mut self,
        x_src: &GpuTensor,
        y_src: &GpuTensor,
        order: &GpuTensor,
        offset: usize,
        x_dst: &mut GpuTensor,
        y_dst: &mut GpuTensor,
    ) -> Result<()> {
        self.record_gather_pair(x_src, y_src, order, offset, x_dst, y_dst)
    }

    fn begin_plan(&mut self) -> Result<bool> {
        self.begin_plan_impl()
    }

    fn end_plan(&mut self) -> Result<Option<GpuPlan>> {
        self.end_plan_impl()
    }

    fn replay(&mut self, plan: &mut GpuPlan, step: StepValues) -> Result<bool> {
        self.replay_impl(plan, step)
    }

    fn write(&mut self, t: &mut GpuTensor, data: &[f32]) -> Result<()> {
        check::write(t, data)?;
        self.break_capture("a write inside the step");
        self.stats.data_bytes_written += std::mem::size_of_val(data) as u64;
        // The copy lands before the *next* submit's work, so work already recorded against
        // `t` must be submitted first to see the old contents.
        if !self.recorded.is_empty() {
            self.flush()?;
        }
        self.stage_write(t, bytemuck::cast_slice(data));
        Ok(())
    }

    fn read(&mut self, t: &GpuTensor) -> Result<Vec<f32>> {
        let mut out = Vec::with_capacity(t.len());
        self.read_back(&[t], &mut out)?;
        Ok(out)
    }

    fn read_all(&mut self, ts: &[&GpuTensor], out: &mut Vec<f32>) -> Result<()> {
        self.read_back(ts, out)
    }

    fn read_start(&mut self, ts: &[&GpuTensor], _out: &mut Vec<f32>) -> Result<ReadTicket> {
        self.read_back_start(ts)
    }

    fn read_finish(&mut self, ticket: ReadTicket, out: &mut Vec<f32>) -> Result<()> {
        self.read_back_finish(ticket, out)
    }

    fn flush(&mut self) -> Result<()> {
        if self.recorded.is_empty() && self.uploads.is_none() {
            return Ok(());
        }
        let encoder = self.encode(None);
        self.submit(encoder)
    }

    fn finish(&mut self) -> Result<()> {
        self.flush()?;
        self.wait()
    }

    fn fill(&mut self, t: &mut GpuTensor, value: f32) -> Result<()> {
        let params = kernels::FillParams {
            len: u32_dim("fill", t.len())?,
            value,
            _pad: [0; 2],
        };
        let groups = self.grid_1d(t.len())?;
        self.record(kernels::FILL, Constants::default(), params, &[t], groups)
    }

    fn copy(&mut self, src: &GpuTensor, dst: &mut GpuTensor) -> Result<()> {
        check::same("copy", &[("src", src), ("dst", &*dst)])?;
        self.copy_dispatch(src, dst)
    }

    fn copy_all(&mut self, src: &[GpuTensor], dst: &mut [GpuTensor]) -> Result<()> {
        check::copy_all(src.len(), dst.len())?;
        for (s, d) in src.iter().zip(dst.iter()) {
            check::same("copy_all", &[("src", s), ("dst", d)])?;
        }
        // One dispatch over the whole groups when both are groups of the same length.
        let whole = GpuTensor::whole_group(src.iter())
            .zip(GpuTensor::whole_group(dst.iter()))
            .filter(|(s, d)| s.len() == d.len());
        match whole {
            Some((s, mut d)) => self.copy_dispatch(&s, &mut d),
            None => {
                for (s, d) in src.iter().zip(dst) {
                    self.copy_dispatch(s, d)?;
                }
                Ok(())
            }
        }
    }

    fn matmul(
        &mut self,
        a: &GpuTensor,
        ta: bool,
        b: &GpuTensor,
        tb: bool,
        c: &mut GpuTensor,
    ) -> Result<()> {
        let (m, n, k) = check::matmul(a, ta, b, tb, c)?;
        let tiles = self.tiles_for(m, n, k, ta, tb)?;
        self.record_matmul(tiles, a, ta, b, tb, c)
    }

    fn dense_forward(
        &mut self,
        x: &GpuTensor,
        w: &GpuTensor,
        bias: &GpuTensor,
        act: Activation,
        z: &mut GpuTensor,
        a: &mut GpuTensor,
    ) -> Result<()> {
        self.record_dense_forward(x, w, bias, act, z, a)
    }

    fn bias_add(&mut self, z: &mut GpuTensor, bias: &GpuTensor) -> Result<()> {
        check::row_vector("bias_add", z, bias)?;
        let params = kernels::BiasParams {
            rows: u32_dim("bias_add", z.rows)?,
            cols: u32_dim("bias_add", z.cols)?,
            _pad: [0; 2],
        };
        let groups = self.grid_1d(z.len())?;
        self.record(
            kernels::BIAS_ADD,
            Constants::default(),
            params,
            &[z, bias],
            groups,
        )
    }

    fn bias_grad(&mut self, dy: &GpuTensor, db: &mut GpuTensor) -> Result<()> {
        check::row_vector("bias_grad", dy, db)?;
        let params = kernels::BiasParams {
            rows: u32_dim("bias_grad", dy.rows)?,
            cols: u32_dim("bias_grad", dy.cols)?,
            _pad: [0; 2],
        };
        let (kernel, groups) = if self.parallel_reductions {
            // 32 columns per workgroup (see bias.wgsl).
            (kernels::BIAS_GRAD, self.grid_each(dy.cols.div_ceil(32))?)
        } else {
            (kernels::BIAS_GRAD_COLUMNS, self.grid_1d(dy.cols)?)
        };
        self.record(kernel, Constants::default(), params, &[db, dy], groups)
    }

    fn activation(&mut self, act: Activation, z: &GpuTensor, a: &mut GpuTensor) -> Result<()> {
        check::same("activation", &[("z", z), ("a", &*a)])?;
        let params = act_params(act, z)?;
        let constants = Constants::new(&[("ACT", act.code() as f64)]);
        if act.is_row_wise() {
            let (kernel, groups) =
                self.row_kernel(z, kernels::SOFTMAX_FORWARD, kernels::SOFTMAX_FORWARD_WIDE)?;
            self.record(kernel, Constants::default(), params, &[a, z], groups)
        } else {
            let groups = self.grid_1d(z.len())?;
            self.record(kernels::ACT_FORWARD, constants, params, &[a, z], groups)
        }
    }

    fn activation_backward(
        &mut self,
        act: Activation,
        z: &GpuTensor,
        a: &GpuTensor,
        da: &GpuTensor,
        dz: &mut GpuTensor,
    ) -> Result<()> {
        check::same(
            "activation_backward",
            &[("z", z), ("a", a), ("da", da), ("dz", &*dz)],
        )?;
        let params = act_params(act, z)?;
        let constants = Constants::new(&[("ACT", act.code() as f64)]);
        if act.is_row_wise() {
            let (kernel, groups) =
                self.row_kernel(z, kernels::SOFTMAX_BACKWARD, kernels::SOFTMAX_BACKWARD_WIDE)?;
            self.record(
                kernel,
                Constants::default(),
                params,
                &[dz, z, a, da],
                groups,
            )
        } else {
            let groups = self.grid_1d(z.len())?;
            self.record(
                kernels::ACT_BACKWARD,
                constants,
                params,
                &[dz, z, a, da],
                groups,
            )
        }
    }

    fn loss(
        &mut self,
        loss: Loss,
        pred: &GpuTensor,
        target: &GpuTensor,
        grad: &mut GpuTensor,
        row_loss: &mut GpuTensor,
    ) -> Result<()> {
        check::loss(loss, pred, target, grad, row_loss)?;
        let params = kernels::LossParams {
            rows: u32_dim("loss", pred.rows)?,
            cols: u32_dim("loss", pred.cols)?,
            delta: loss.delta(),
            inv_rows: (1.0 / pred.rows as f64) as f32,
        };
        let (kernel, groups) = self.row_kernel(pred, kernels::LOSS, kernels::LOSS_WIDE)?;
        self.record(
            kernel,
            Constants::new(&[("LOSS", loss.code() as f64)]),
            params,
            &[grad, row_loss, pred, target],
            groups,
        )
    }

    fn sum_into(&mut self, x: &GpuTensor, acc: &mut GpuTensor, slot: usize) -> Result<()> {
        self.record_sum_into(x, acc, slot)
    }

    fn argmax_correct_into(
        &mut self,
        pred: &GpuTensor,
        target: &GpuTensor,
        acc: &mut GpuTensor,
        slot: usize,
    ) -> Result<()> {
        self.record_argmax_correct_into(pred, target, acc, slot)
    }

    fn threshold_correct_into(
        &mut self,
        pred: &GpuTensor,
        target: &GpuTensor,
        threshold: f32,
        acc: &mut GpuTensor,
        slot: usize,
    ) -> Result<()> {
        self.record_threshold_correct_into(pred, target, threshold, acc, slot)
    }

    fn topk_correct_into(
        &mut self,
        pred: &GpuTensor,
        target: &GpuTensor,
        k: usize,
        acc: &mut GpuTensor,
        slot: usize,
    ) -> Result<()> {
        self.record_topk_correct_into(pred, target, k, acc, slot)
    }

    fn confusion_into(
        &mut self,
        pred: &GpuTensor,
        target: &GpuTensor,
        threshold: f32,
        acc: &mut GpuTensor,
        slot: usize,
    ) -> Result<()> {
        self.record_confusion_into(pred, target, threshold, acc, slot)
    }

    fn roc_histogram_into(
        &mut self,
        pred: &GpuTensor,
        target: &GpuTensor,
        acc: &mut GpuTensor,
        slot: usize,
    ) -> Result<()> {
        self.record_roc_histogram_into(pred, target, acc, slot)
    }

    fn error_sum_into(
        &mut self,
        kind: PointError,
        pred: &GpuTensor,
        target: &GpuTensor,
        acc: &mut GpuTensor,
        slot: usize,
    ) -> Result<()> {
        self.record_error_sum_into(kind, pred, target, acc, slot)
    }

    fn crossentropy_sum_into(
        &mut self,
        from_logits: bool,
        pred: &GpuTensor,
        target: &GpuTensor,
        acc: &mut GpuTensor,
        slot: usize,
    ) -> Result<()> {
        self.record_crossentropy_sum_into(from_logits, pred, target, acc, slot)
    }

    fn class_confusion_into(
        &mut self,
        pred: &GpuTensor,
        target: &GpuTensor,
        threshold: Option<f32>,
        acc: &mut GpuTensor,
        slot: usize,
    ) -> Result<()> {
        self.record_class_confusion_into(pred, target, threshold, acc, slot)
    }

    fn dropout(
        &mut self,
        x: &GpuTensor,
        mask: DropoutMask,
        y: &mut GpuTensor,
        keep: &mut GpuTensor,
    ) -> Result<()> {
        self.record_dropout(x, mask, y, keep)
    }

    fn multiply(&mut self, a: &GpuTensor, b: &GpuTensor, c: &mut GpuTensor) -> Result<()> {
        self.record_multiply(a, b, c)
    }

    fn rrelu_forward(
        &mut self,
        x: &GpuTensor,
        slopes: RandomSlopes,
        y: &mut GpuTensor,
    ) -> Result<()> {
        self.record_rrelu_forward(x, slopes, y)
    }

    fn rrelu_backward(
        &mut self,
        x: &GpuTensor,
        slopes: RandomSlopes,
        dy: &GpuTensor,
        dx: &mut GpuTensor,
    ) -> Result<()> {
        self.record_rrelu_backward(x, slopes, dy, dx)
    }

    fn batchnorm_stats(
        &mut self,
        x: &GpuTensor,
        mean: &mut GpuTensor,
        var: &mut GpuTensor,
    ) -> Result<()> {
        self.record_batchnorm_stats(x, mean, var)
    }

    fn batchnorm_forward(
        &mut self,
        x: &GpuTensor,
        stats: [&GpuTensor; 2],
        affine: [&GpuTensor; 2],
        eps: f32,
        y: &mut GpuTensor,
    ) -> Result<()> {
        self.record_batchnorm_forward(x, stats, affine, eps, y)
    }

    fn batchnorm_backward(
        &mut self,
        x: &GpuTensor,
        stats: [&GpuTensor; 2],
        gamma: &GpuTensor,
        dy: &GpuTensor,
        eps: f32,
        dx: &mut GpuTensor,
        grads: [&mut GpuTensor; 2],
    ) -> Result<()> {
        self.record_batchnorm_backward(x, stats, gamma, dy, eps, dx, grads)
    }

    fn moving_average_all(
        &mut self,
        momentum: f32,
        t: u64,
        moving: &mut [GpuTensor],
        batch: &[GpuTensor],
        guard: Option<Guard<'_, GpuTensor>>,
    ) -> Result<()> {
        self.record_moving_average_all(momentum, t, moving, batch, guard)
    }

    fn prelu_forward(&mut self, x: &GpuTensor, alpha: &GpuTensor, y: &mut GpuTensor) -> Result<()> {
        self.record_prelu_forward(x, alpha, y)
    }

    fn prelu_backward(
        &mut self,
        x: &GpuTensor,
        alpha: &GpuTensor,
        dy: &GpuTensor,
        dx: &mut GpuTensor,
        dalpha: &mut GpuTensor,
    ) -> Result<()> {
        self.record_prelu_backward(x, alpha, dy, dx, dalpha)
    }

    crate::window_ops!(GpuTensor, super::conv, fused);

    fn maxout_forward(&mut self, z: &GpuTensor, pieces: usize, y: &mut GpuTensor) -> Result<()> {
        self.record_maxout_forward(z, pieces, y)
    }

    fn maxout_backward(
        &mut self,
        z: &GpuTensor,
        pieces: usize,
        dy: &GpuTensor,
        dz: &mut GpuTensor,
    ) -> Result<()> {
        self.record_maxout_backward(z, pieces, dy, dz)
    }

    fn penalty_into(
        &mut self,
        w: &GpuTensor,
        l1: f32,
        l2: f32,
        scale: f32,
        acc: &mut GpuTensor,
        slot: usize,
    ) -> Result<()> {
        self.record_penalty_into(w, l1, l2, scale, acc, slot)
    }

    fn penalty_backward(
        &mut self,
        w: &GpuTensor,
        l1: f32,
        l2: f32,
        grad: &mut GpuTensor,
    ) -> Result<()> {
        self.record_penalty_backward(w, l1, l2, grad)
    }

    fn zeros_group(&mut self, shapes: &[[usize; 2]]) -> Result<Vec<GpuTensor>> {
        self.record_zeros_group(shapes)
    }

    fn optimizer_step_all(
        &mut self,
        opt: Optimizer,
        t: u64,
        params: &mut [GpuTensor],
        grads: &[GpuTensor],
        state: &mut [Vec<GpuTensor>],
        guard: Option<Guard<'_, GpuTensor>>,
    ) -> Result<()> {
        self.record_optimizer_step_all(opt, t, params, grads, state, guard)
    }

    fn optimizer_step(
        &mut self,
        opt: Optimizer,
        t: u64,
        param: &mut GpuTensor,
        grad: &GpuTensor,
        state: &mut [GpuTensor],
        guard: Option<Guard<'_, GpuTensor>>,
    ) -> Result<()> {
        self.record_optimizer_step(opt, t, param, grad, state, guard)
    }
}

impl GpuBackend {
    /// One copy dispatch of `src` into `dst` (checked by the caller).
    fn copy_dispatch(&mut self, src: &GpuTensor, dst: &mut GpuTensor) -> Result<()> {
        let params = kernels::FillParams {
            len: u32_dim("copy", src.len())?,
            value: 0.0,
            _pad: [0; 2],
        };
        let groups = self.grid_1d(src.len())?;
        self.record(
            kernels::COPY,
            Constants::default(),
            params,
            &[dst, src],
            groups,
        )
    }
}

fn act_params(act: Activation, z: &GpuTensor) -> Result<kernels::ActParams> {
    Ok(kernels::ActParams {
        rows: u32_dim("activation", z.rows)?,
        cols: u32_dim("activation", z.cols)?,
        _pad: [0; 2],
        q: act.params(),
    })
}
