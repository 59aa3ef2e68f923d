//! [`Backend`] for the fast CPU backend: each op checked as every backend checks it, then
//! run by this module's kernels, or by the reference's functions where the op's cost does
//! not show in a step (see [`super`]): the reference checks their arguments as this backend
//! must, and keeps nothing between calls.

use super::elementwise::{activation_backward_rows, activation_rows};
use super::gemm::matmul_into;
use super::loss::loss_rows;
use super::optim::{update_all, Segment};
use super::{CpuBackend, HostTensor};
use crate::backend::reference::{self, ReferenceBackend};
use crate::backend::{
    check, Activation, Backend, DropoutMask, Guard, Loss, Optimizer, PointError, RandomSlopes,
    StepValues,
};
use crate::error::Result;

/// Element-wise ops on tensors at least this long are split over the pool's threads.
const PARALLEL_ELEMENTS: usize = 1 << 16;

impl Backend for CpuBackend {
    type Tensor = HostTensor;
    /// Every op runs when it is called: there is nothing to replay.
    type Plan = std::convert::Infallible;

    fn describe(&self) -> String {
        format!("cpu ({} threads, f32, faer GEMM)", self.threads())
    }

    fn zeros(&mut self, rows: usize, cols: usize) -> Result<HostTensor> {
        HostTensor::zeros(rows, cols)
    }

    fn upload(&mut self, rows: usize, cols: usize, data: &[f32]) -> Result<HostTensor> {
        HostTensor::upload(rows, cols, data)
    }

    fn write(&mut self, t: &mut HostTensor, data: &[f32]) -> Result<()> {
        ReferenceBackend.write(t, data)
    }

    fn read(&mut self, t: &HostTensor) -> Result<Vec<f32>> {
        Ok(t.data.clone())
    }

    fn read_all(&mut self, ts: &[&HostTensor], out: &mut Vec<f32>) -> Result<()> {
        for t in ts {
            out.extend_from_slice(&t.data);
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        Ok(())
    }

    fn gather_rows(
        &mut self,
        src: &HostTensor,
        order: &HostTensor,
        offset: usize,
        dst: &mut HostTensor,
    ) -> Result<()> {
        ReferenceBackend.gather_rows(src, order, offset, dst)
    }

    fn begin_plan(&mut self) -> Result<bool> {
        Ok(false)
    }

    fn end_plan(&mut self) -> Result<Option<Self::Plan>> {
        Ok(None)
    }

    fn replay(&mut self, plan: &mut Self::Plan, _step: StepValues) -> Result<bool> {
        match *plan {}
    }

    fn copy(&mut self, src: &HostTensor, dst: &mut HostTensor) -> Result<()> {
        ReferenceBackend.copy(src, dst)
    }

    fn fill(&mut self, t: &mut HostTensor, value: f32) -> Result<()> {
        t.data.fill(value);
        Ok(())
    }

    fn matmul(
        &mut self,
        a: &HostTensor,
        ta: bool,
        b: &HostTensor,
        tb: bool,
        c: &mut HostTensor,
    ) -> Result<()> {
        let (m, n, k) = check::matmul(a, ta, b, tb, c)?;
        matmul_into(
            &self.pool,
            &a.data,
            ta,
            &b.data,
            tb,
            &mut c.data,
            [m, n, k],
            None,
        );
        Ok(())
    }

    fn bias_add(&mut self, z: &mut HostTensor, bias: &HostTensor) -> Result<()> {
        check::row_vector("bias_add", z, bias)?;
        for row in z.data.chunks_exact_mut(bias.data.len()) {
            for (v, b) in row.iter_mut().zip(&bias.data) {
                *v += b;
            }
        }
        Ok(())
    }

    fn dense_forward(
        &mut self,
        x: &HostTensor,
        w: &HostTensor,
        bias: &HostTensor,
        act: Activation,
        z: &mut HostTensor,
        a: &mut HostTensor,
    ) -> Result<()> {
        let (m, n, k) = check::matmul(x, false, w, false, z)?;
        check::row_vector("dense_forward", z, bias)?;
        check::same("dense_forward", &[("z", z), ("a", a)])?;
        // A block of the product may be part of a row: softmax, which needs whole rows,
        // runs over `a` after it.
        let fused = if act.is_row_wise() {
            Activation::Linear
        } else {
            act
        };
        let epilogue = Some((fused, bias.data.as_slice(), a.data.as_mut_slice()));
        matmul_into(
            &self.pool,
            &x.data,
            false,
            &w.data,
            false,
            &mut z.data,
            [m, n, k],
            epilogue,
        );
        if act.is_row_wise() {
            for row in a.data.chunks_exact_mut(n) {
                super::elementwise::softmax_row_in_place(row);
            }
        }
        Ok(())
    }

    fn bias_grad(&mut self, dy: &HostTensor, db: &mut HostTensor) -> Result<()> {
        check::row_vector("bias_grad", dy, db)?;
        // Row by row in order, each column's sum in f32: the same bits on any thread count.
        db.data.fill(0.0);
        for row in dy.data.chunks_exact(db.data.len()) {
            for (s, v) in db.data.iter_mut().zip(row) {
                *s += v;
            }
        }
        Ok(())
    }

    fn activation(&mut self, act: Activation, z: &HostTensor, a: &mut HostTensor) -> Result<()> {
        check::same("activation", &[("z", z), ("a", &*a)])?;
        let cols = z.cols;
        self.pool
            .rows(&mut a.data, cols, PARALLEL_ELEMENTS, &|r, out| {
                activation_rows(act, &z.data[r.start * cols..r.end * cols], out, cols)
            });
        Ok(())
    }

    fn activation_backward(
        &mut self,
        act: Activation,
        z: &HostTensor,
        a: &HostTensor,
        da: &HostTensor,
        dz: &mut HostTensor,
    ) -> Result<()> {
        check::same(
            "activation_backward",
            &[("z", z), ("a", a), ("da", da), ("dz", &*dz)],
        )?;
        let cols = z.cols;
        self.pool
            .rows(&mut dz.data, cols, PARALLEL_ELEMENTS, &|r, out| {
                let span = r.start * cols..r.end * cols;
                let (z, a, da) = (&z.data[span.clone()], &a.data[span.clone()], &da.data[span]);
                activation_backward_rows(act, z, a, da, out, cols)
            });
        Ok(())
    }

    fn loss(
        &mut self,
        loss: Loss,
        pred: &HostTensor,
        target: &HostTensor,
        grad: &mut HostTensor,
        row_loss: &mut HostTensor,
    ) -> Result<()> {
        check::loss(loss, pred, target, grad, row_loss)?;
        loss_rows(
            loss,
            &pred.data,
            &target.data,
            &mut grad.data,
            &mut row_loss.data,
            pred.cols,
        );
        Ok(())
    }

    fn sum_into(&mut self, x: &HostTensor, acc: &mut HostTensor, slot: usize) -> Result<()> {
        ReferenceBackend.sum_into(x, acc, slot)
    }

    fn argmax_correct_into(
        &mut self,
        pred: &HostTensor,
        target: &HostTensor,
        acc: &mut HostTensor,
        slot: usize,
    ) -> Result<()> {
        ReferenceBackend.argmax_correct_into(pred, target, acc, slot)
    }

    fn threshold_correct_into(
        &mut self,
        pred: &HostTensor,
        target: &HostTensor,
        threshold: f32,
        acc: &mut HostTensor,
        slot: usize,
    ) -> Result<()> {
        ReferenceBackend.threshold_correct_into(pred, target, threshold, acc, slot)
    }

    fn topk_correct_into(
        &mut self,
        pred: &HostTensor,
        target: &HostTensor,
        k: usize,
        acc: &mut HostTensor,
        slot: usize,
    ) -> Result<()> {
        ReferenceBackend.topk_correct_into(pred, target, k, acc, slot)
    }

    fn confusion_into(
        &mut self,
        pred: &HostTensor,
        target: &HostTensor,
        threshold: f32,
        acc: &mut HostTensor,
        slot: usize,
    ) -> Result<()> {
        ReferenceBackend.confusion_into(pred, target, threshold, acc, slot)
    }

    fn roc_histogram_into(
        &mut self,
        pred: &HostTensor,
        target: &HostTensor,
        acc: &mut HostTensor,
        slot: usize,
    ) -> Result<()> {
        ReferenceBackend.roc_histogram_into(pred, target, acc, slot)
    }

    fn error_sum_into(
        &mut self,
        kind: PointError,
        pred: &HostTensor,
        target: &HostTensor,
        acc: &mut HostTensor,
        slot: usize,
    ) -> Result<()> {
        ReferenceBackend.error_sum_into(kind, pred, target, acc, slot)
    }

    fn crossentropy_sum_into(
        &mut self,
        from_logits: bool,
        pred: &HostTensor,
        target: &HostTensor,
        acc: &mut HostTensor,
        slot: usize,
    ) -> Result<()> {
        ReferenceBackend.crossentropy_sum_into(from_logits, pred, target, acc, slot)
    }

    fn class_confusion_into(
        &mut self,
        pred: &HostTensor,
        target: &HostTensor,
        threshold: Option<f32>,
        acc: &mut HostTensor,
        slot: usize,
    ) -> Result<()> {
        ReferenceBackend.class_confusion_into(pred, target, threshold, acc, slot)
    }

    fn dropout(
        &mut self,
        x: &HostTensor,
        mask: DropoutMask,
        y: &mut HostTensor,
        keep: &mut HostTensor,
    ) -> Result<()> {
        ReferenceBackend.dropout(x, mask, y, keep)
    }

    fn multiply(&mut self, a: &HostTensor, b: &HostTensor, c: &mut HostTensor) -> Result<()> {
        ReferenceBackend.multiply(a, b, c)
    }

    fn rrelu_forward(
        &mut self,
        x: &HostTensor,
        slopes: RandomSlopes,
        y: &mut HostTensor,
    ) -> Result<()> {
        ReferenceBackend.rrelu_forward(x, slopes, y)
    }

    fn rrelu_backward(
        &mut self,
        x: &HostTensor,
        slopes: RandomSlopes,
        dy: &HostTensor,
        dx: &mut HostTensor,
    ) -> Result<()> {
        ReferenceBackend.rrelu_backward(x, slopes, dy, dx)
    }

    fn batchnorm_stats(
        &mut self,
        x: &HostTensor,
        mean: &mut HostTensor,
        var: &mut HostTensor,
    ) -> Result<()> {
        ReferenceBackend.batchnorm_stats(x, mean, var)
    }

    fn batchnorm_forward(
        &mut self,
        x: &HostTensor,
        stats: [&HostTensor; 2],
        affine: [&HostTensor; 2],
        eps: f32,
        y: &mut HostTensor,
    ) -> Result<()> {
        ReferenceBackend.batchnorm_forward(x, stats, affine, eps, y)
    }

    fn batchnorm_backward(
        &mut self,
        x: &HostTensor,
        stats: [&HostTensor; 2],
        gamma: &HostTensor,
        dy: &HostTensor,
        eps: f32,
        dx: &mut HostTensor,
        grads: [&mut HostTensor; 2],
    ) -> Result<()> {
        ReferenceBackend.batchnorm_backward(x, stats, gamma, dy, eps, dx, grads)
    }

    fn moving_average_all(
        &mut self,
        momentum: f32,
        t: u64,
        moving: &mut [HostTensor],
        batch: &[HostTensor],
        guard: Option<Guard<'_, HostTensor>>,
    ) -> Result<()> {
        ReferenceBackend.moving_average_all(momentum, t, moving, batch, guard)
    }

    fn prelu_forward(
        &mut self,
        x: &HostTensor,
        alpha: &HostTensor,
        y: &mut HostTensor,
    ) -> Result<()> {
        ReferenceBackend.prelu_forward(x, alpha, y)
    }

    fn prelu_backward(
        &mut self,
        x: &HostTensor,
        alpha: &HostTensor,
        dy: &HostTensor,
        dx: &mut HostTensor,
        dalpha: &mut HostTensor,
    ) -> Result<()> {
        ReferenceBackend.prelu_backward(x, alpha, dy, dx, dalpha)
    }

    crate::window_ops!(HostTensor, super::conv, fused);

    fn maxout_forward(&mut self, z: &HostTensor, pieces: usize, y: &mut HostTensor) -> Result<()> {
        ReferenceBackend.maxout_forward(z, pieces, y)
    }

    fn maxout_backward(
        &mut self,
        z: &HostTensor,
        pieces: usize,
        dy: &HostTensor,
        dz: &mut HostTensor,
    ) -> Result<()> {
        ReferenceBackend.maxout_backward(z, pieces, dy, dz)
    }

    fn penalty_into(
        &mut self,
        w: &HostTensor,
        l1: f32,
        l2: f32,
        scale: f32,
        acc: &mut HostTensor,
        slot: usize,
    ) -> Result<()> {
        ReferenceBackend.penalty_into(w, l1, l2, scale, acc, slot)
    }

    fn penalty_backward(
        &mut self,
        w: &HostTensor,
        l1: f32,
        l2: f32,
        grad: &mut HostTensor,
    ) -> Result<()> {
        ReferenceBackend.penalty_backward(w, l1, l2, grad)
    }

    fn optimizer_step(
        &mut self,
        opt: Optimizer,
        t: u64,
        param: &mut HostTensor,
        grad: &HostTensor,
        state: &mut [HostTensor],
        guard: Option<Guard<'_, HostTensor>>,
    ) -> Result<()> {
        check::optimizer(opt, t, param, grad, state, guard.as_ref())?;
        let params = std::slice::from_mut(param);
        self.update(
            opt,
            t,
            params,
            std::slice::from_ref(grad),
            &mut [state],
            guard,
        )
    }

    fn optimizer_step_all(
        &mut self,
        opt: Optimizer,
        t: u64,
        params: &mut [HostTensor],
        grads: &[HostTensor],
        state: &mut [Vec<HostTensor>],
        mut guard: Option<Guard<'_, HostTensor>>,
    ) -> Result<()> {
        check::optimizer_all(params.len(), grads.len(), state.len(), guard.as_ref())?;
        for (j, ((p, g), s)) in params.iter().zip(grads).zip(state.iter()).enumerate() {
            let part = guard.as_mut().map(|g| g.part(j));
            check::optimizer(opt, t, p, g, s, part.as_ref())?;
        }
        self.update(opt, t, params, grads, state, guard)
    }
}

impl CpuBackend {
    /// The checked update of every `params[j]`, in place or, with a guard, into its outputs
    /// (deciding as [`Backend::optimizer_step`] describes).
    fn update<S: AsRef<[HostTensor]> + AsMut<[HostTensor]>>(
        &mut self,
        opt: Optimizer,
        t: u64,
        params: &mut [HostTensor],
        grads: &[HostTensor],
        state: &mut [S],
        guard: Option<Guard<'_, HostTensor>>,
    ) -> Result<()> {
        self.segments.clear();
        let Some(g) = guard else {
            for ((p, gr), s) in params.iter_mut().zip(grads).zip(state.iter_mut()) {
                self.segments.push(Segment::in_place(p, gr, s.as_mut()));
            }
            // SAFETY: the segments point into tensors borrowed for this call, `&mut` where
            // written; each tensor is its own allocation.
            unsafe { update_all(&self.pool, opt, t, &self.segments) };
            return Ok(());
        };
        if !reference::guard_allows(&mut g.acc.data, g.slots, t) {
            return Ok(());
        }
        let outs = g.params_out.iter_mut().zip(g.state_out.iter_mut());
        for (((p, gr), s), (po, so)) in params.iter().zip(grads).zip(state.iter()).zip(outs) {
            self.segments
                .push(Segment::out_of_place(p, gr, s.as_ref(), po, so));
        }
        // SAFETY: as above; the outputs are the guard's, distinct from the inputs.
        let finite = unsafe { update_all(&self.pool, opt, t, &self.segments) };
        reference::guard_done(&mut g.acc.data, g.slots, t, finite);
        Ok(())
    }
}
