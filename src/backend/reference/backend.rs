//! [`Backend`] for the reference: [`HostTensor`]s, each op checked as every
//! backend checks it, then computed by the functions of [`super`].

use super::*;
use crate::backend::{check, Backend, DropoutMask, Guard, HostTensor, RandomSlopes, StepValues};
use crate::error::Result;

/// The reference backend. Every op runs at once; `flush` has nothing to do.
#[derive(Debug, Default)]
pub struct ReferenceBackend;

impl ReferenceBackend {
    /// A new reference backend.
    pub fn new() -> Self {
        ReferenceBackend
    }
}

impl Backend for ReferenceBackend {
    type Tensor = HostTensor;
    /// Every op runs when it is called: there is nothing to replay.
    type Plan = std::convert::Infallible;

    fn describe(&self) -> String {
        "cpu reference (f32 storage, f64 arithmetic)".into()
    }

    fn zeros(&mut self, rows: usize, cols: usize) -> Result<HostTensor> {
        HostTensor::zeros(rows, cols)
    }

    fn upload(&mut self, rows: usize, cols: usize, data: &[f32]) -> Result<HostTensor> {
        HostTensor::upload(rows, cols, data)
    }

    fn write(&mut self, t: &mut HostTensor, data: &[f32]) -> Result<()> {
        check::write(t, data)?;
        t.data.copy_from_slice(data);
        Ok(())
    }

    fn read(&mut self, t: &HostTensor) -> Result<Vec<f32>> {
        Ok(t.data.clone())
    }

    fn flush(&mut self) -> Result<()> {
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        Ok(())
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
        matmul_forward(&a.data, ta, &b.data, tb, &mut c.data, m, n, k);
        Ok(())
    }

    fn bias_add(&mut self, z: &mut HostTensor, bias: &HostTensor) -> Result<()> {
        check::row_vector("bias_add", z, bias)?;
        bias_forward(&mut z.data, &bias.data, z.cols);
        Ok(())
    }

    fn bias_grad(&mut self, dy: &HostTensor, db: &mut HostTensor) -> Result<()> {
        check::row_vector("bias_grad", dy, db)?;
        bias_backward(&dy.data, &mut db.data, dy.cols);
        Ok(())
    }

    fn activation(&mut self, act: Activation, z: &HostTensor, a: &mut HostTensor) -> Result<()> {
        check::same("activation", &[("z", z), ("a", &*a)])?;
        activation_forward(act, &z.data, &mut a.data, z.cols);
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
        activation_backward(act, &z.data, &a.data, &da.data, &mut dz.data, z.cols);
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
        loss_forward_backward(
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
        check::slot("sum_into", acc, slot)?;
        let sum: f64 = x.data.iter().map(|&v| v as f64).sum();
        acc.data[slot] = (acc.data[slot] as f64 + sum) as f32;
        Ok(())
    }

    fn argmax_correct_into(
        &mut self,
        pred: &HostTensor,
        target: &HostTensor,
        acc: &mut HostTensor,
        slot: usize,
    ) -> Result<()> {
        check::argmax("argmax_correct_into", pred, target)?;
        check::slot("argmax_correct_into", acc, slot)?;
        acc.data[slot] += argmax_correct(&pred.data, &target.data, pred.cols, target.cols) as f32;
        Ok(())
    }

    fn threshold_correct_into(
        &mut self,
        pred: &HostTensor,
        target: &HostTensor,
        threshold: f32,
        acc: &mut HostTensor,
        slot: usize,
    ) -> Result<()> {
        check::same(
            "threshold_correct_into",
            &[("pred", pred), ("target", target)],
        )?;
        check::slot("threshold_correct_into", acc, slot)?;
        acc.data[slot] += threshold_correct(&pred.data, &target.data, threshold) as f32;
        Ok(())
    }

    fn topk_correct_into(
        &mut self,
        pred: &HostTensor,
        target: &HostTensor,
        k: usize,
        acc: &mut HostTensor,
        slot: usize,
    ) -> Result<()> {
        check::argmax("topk_correct_into", pred, target)?;
        check::slot("topk_correct_into", acc, slot)?;
        acc.data[slot] += topk_correct(&pred.data, &target.data, pred.cols, target.cols, k) as f32;
        Ok(())
    }

    fn confusion_into(
        &mut self,
        pred: &HostTensor,
        target: &HostTensor,
        threshold: f32,
        acc: &mut HostTensor,
        slot: usize,
    ) -> Result<()> {
        check::same("confusion_into", &[("pred", pred), ("target", target)])?;
        check::slots("confusion_into", acc, slot, 4)?;
        for (i, n) in confusion(&pred.data, &target.data, threshold)
            .into_iter()
            .enumerate()
        {
            acc.data[slot + i] += n as f32;
        }
        Ok(())
    }

    fn roc_histogram_into(
        &mut self,
        pred: &HostTensor,
        target: &HostTensor,
        acc: &mut HostTensor,
        slot: usize,
    ) -> Result<()> {
        check::same("roc_histogram_into", &[("pred", pred), ("target", target)])?;
        check::slots("roc_histogram_into", acc, slot, ROC_HISTOGRAM_SLOTS)?;
        for (i, n) in roc_histogram(&pred.data, &target.data)
            .into_iter()
            .enumerate()
        {
            acc.data[slot + i] += n as f32;
        }
        Ok(())
    }

    fn error_sum_into(
        &mut self,
        kind: PointError,
        pred: &HostTensor,
        target: &HostTensor,
        acc: &mut HostTensor,
        slot: usize,
    ) -> Result<()> {
        check::same("error_sum_into", &[("pred", pred), ("target", target)])?;
        check::slot("error_sum_into", acc, slot)?;
        let sum: f64 = pred
            .data
            .iter()
            .zip(&target.data)
            .map(|(&p, &y)| point_error_f64(kind, p as f64, y as f64))
            .sum();
        acc.data[slot] = (acc.data[slot] as f64 + sum) as f32;
        Ok(())
    }

    fn crossentropy_sum_into(
        &mut self,
        from_logits: bool,
        pred: &HostTensor,
        target: &HostTensor,
        acc: &mut HostTensor,
        slot: usize,
    ) -> Result<()> {
        check::argmax("crossentropy_sum_into", pred, target)?;
        check::slot("crossentropy_sum_into", acc, slot)?;
        let sum: f64 = pred
            .data
            .chunks(pred.cols)
            .zip(target.data.chunks(target.cols))
            .map(|(p, t)| {
                let p: Vec<f64> = p.iter().map(|&v| v as f64).collect();
                let t: Vec<f64> = t.iter().map(|&v| v as f64).collect();
                crossentropy_row_f64(from_logits, &p, &t)
            })
            .sum();
        acc.data[slot] = (acc.data[slot] as f64 + sum) as f32;
        Ok(())
    }

    fn class_confusion_into(
        &mut self,
        pred: &HostTensor,
        target: &HostTensor,
        threshold: Option<f32>,
        acc: &mut HostTensor,
        slot: usize,
    ) -> Result<()> {
        check::argmax("class_confusion_into", pred, target)?;
        check::slots("class_confusion_into", acc, slot, 3 * pred.cols)?;
        let counts = class_confusion(&pred.data, &target.data, pred.cols, target.cols, threshold);
        for (i, n) in counts.into_iter().enumerate() {
            acc.data[slot + i] += n as f32;
        }
        Ok(())
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
        let mut views: Vec<&mut [f32]> = state.iter_mut().map(|s| s.data.as_mut_slice()).collect();
        let Some(g) = guard else {
            optimizer_step(opt, t, &mut param.data, &grad.data, &mut views);
            return Ok(());
        };
        // See Backend::optimizer_step: the flags and the step are u32 bit patterns, and the
        // new values go to the outputs, so the old ones stay.
        if !guard_allows(&mut g.acc.data, g.slots, t) {
            return Ok(());
        }
        let (param_out, state_out) = (&mut g.params_out[0], &mut g.state_out[0]);
        param_out.data.copy_from_slice(&param.data);
        for (out, v) in state_out.iter_mut().zip(&views) {
            out.data.copy_from_slice(v);
        }
        let mut outs: Vec<&mut [f32]> = state_out
            .iter_mut()
            .map(|s| s.data.as_mut_slice())
            .collect();
        optimizer_step(opt, t, &mut param_out.data, &grad.data, &mut outs);
        let new = param_out
            .data
            .iter()
            .chain(outs.iter().flat_map(|v| v.iter()));
        let finite = new.into_iter().all(|v| v.is_finite());
        guard_done(&mut g.acc.data, g.slots, t, finite);
        Ok(())
    }

    fn copy(&mut self, src: &HostTensor, dst: &mut HostTensor) -> Result<()> {
        check::same("copy", &[("src", src), ("dst", &*dst)])?;
        dst.data.copy_from_slice(&src.data);
        Ok(())
    }

    fn gather_rows(
        &mut self,
        src: &HostTensor,
        order: &HostTensor,
        offset: usize,
        dst: &mut HostTensor,
    ) -> Result<()> {
        check::gather_rows(src, order, offset, dst)?;
        gather_rows(&src.data, src.cols, &order.data, offset, &mut dst.data)
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

    fn dropout(
        &mut self,
        x: &HostTensor,
        mask: DropoutMask,
        y: &mut HostTensor,
        keep: &mut HostTensor,
    ) -> Result<()> {
        check::dropout(x, mask, y, keep)?;
        dropout_forward(&x.data, &mut y.data, &mut keep.data, mask);
        Ok(())
    }

    fn multiply(&mut self, a: &HostTensor, b: &HostTensor, c: &mut HostTensor) -> Result<()> {
        check::same("multiply", &[("a", a), ("b", b), ("c", &*c)])?;
        multiply(&a.data, &b.data, &mut c.data);
        Ok(())
    }

    fn rrelu_forward(
        &mut self,
        x: &HostTensor,
        slopes: RandomSlopes,
        y: &mut HostTensor,
    ) -> Result<()> {
        check::rrelu("rrelu_forward", slopes, &[("x", x), ("y", &*y)])?;
        rrelu_forward(&x.data, &mut y.data, slopes);
        Ok(())
    }

    fn rrelu_backward(
        &mut self,
        x: &HostTensor,
        slopes: RandomSlopes,
        dy: &HostTensor,
        dx: &mut HostTensor,
    ) -> Result<()> {
        check::rrelu(
            "rrelu_backward",
            slopes,
            &[("x", x), ("dy", dy), ("dx", &*dx)],
        )?;
        rrelu_backward(&x.data, &dy.data, &mut dx.data, slopes);
        Ok(())
    }

    fn batchnorm_stats(
        &mut self,
        x: &HostTensor,
        mean: &mut HostTensor,
        var: &mut HostTensor,
    ) -> Result<()> {
        check::per_column("batchnorm_stats", x, &[mean, var], &[])?;
        batchnorm_stats(&x.data, &mut mean.data, &mut var.data, x.cols);
        Ok(())
    }

    fn batchnorm_forward(
        &mut self,
        x: &HostTensor,
        [mean, var]: [&HostTensor; 2],
        [gamma, beta]: [&HostTensor; 2],
        eps: f32,
        y: &mut HostTensor,
    ) -> Result<()> {
        check::per_column("batchnorm_forward", x, &[mean, var, gamma, beta], &[y])?;
        check::epsilon("batchnorm_forward", eps)?;
        batchnorm_forward(
            &x.data,
            &mean.data,
            &var.data,
            &gamma.data,
            &beta.data,
            eps,
            &mut y.data,
            x.cols,
        );
        Ok(())
    }

    fn batchnorm_backward(
        &mut self,
        x: &HostTensor,
        [mean, var]: [&HostTensor; 2],
        gamma: &HostTensor,
        dy: &HostTensor,
        eps: f32,
        dx: &mut HostTensor,
        [dgamma, dbeta]: [&mut HostTensor; 2],
    ) -> Result<()> {
        check::per_column(
            "batchnorm_backward",
            x,
            &[mean, var, gamma, dgamma, dbeta],
            &[dy, dx],
        )?;
        check::epsilon("batchnorm_backward", eps)?;
        batchnorm_backward(
            &x.data,
            &mean.data,
            &var.data,
            &gamma.data,
            &dy.data,
            eps,
            &mut dx.data,
            &mut dgamma.data,
            &mut dbeta.data,
            x.cols,
        );
        Ok(())
    }

    fn moving_average_all(
        &mut self,
        momentum: f32,
        t: u64,
        moving: &mut [HostTensor],
        batch: &[HostTensor],
        guard: Option<Guard<'_, HostTensor>>,
    ) -> Result<()> {
        check::moving_average(momentum, moving, batch, guard.as_ref())?;
        let Some(g) = guard else {
            for (m, b) in moving.iter_mut().zip(batch) {
                moving_average(momentum, &mut m.data, &b.data);
            }
            return Ok(());
        };
        if !guard_allows(&mut g.acc.data, g.slots, t) {
            return Ok(());
        }
        let mut finite = true;
        for ((m, b), out) in moving.iter().zip(batch).zip(g.params_out.iter_mut()) {
            out.data.copy_from_slice(&m.data);
            moving_average(momentum, &mut out.data, &b.data);
            finite &= out.data.iter().all(|v| v.is_finite());
        }
        guard_done(&mut g.acc.data, g.slots, t, finite);
        Ok(())
    }

    fn prelu_forward(
        &mut self,
        x: &HostTensor,
        alpha: &HostTensor,
        y: &mut HostTensor,
    ) -> Result<()> {
        check::per_column("prelu_forward", x, &[alpha], &[y])?;
        prelu_forward(&x.data, &alpha.data, &mut y.data, x.cols);
        Ok(())
    }

    fn prelu_backward(
        &mut self,
        x: &HostTensor,
        alpha: &HostTensor,
        dy: &HostTensor,
        dx: &mut HostTensor,
        dalpha: &mut HostTensor,
    ) -> Result<()> {
        check::per_column("prelu_backward", x, &[alpha, dalpha], &[dy, dx])?;
        prelu_backward(
            &x.data,
            &alpha.data,
            &dy.data,
            &mut dx.data,
            &mut dalpha.data,
            x.cols,
        );
        Ok(())
    }

    crate::window_ops!(HostTensor, super::conv::checked);

    fn maxout_forward(&mut self, z: &HostTensor, pieces: usize, y: &mut HostTensor) -> Result<()> {
        check::maxout("maxout_forward", z, pieces, y)?;
        maxout_forward(&z.data, &mut y.data, y.cols, pieces);
        Ok(())
    }

    fn maxout_backward(
        &mut self,
        z: &HostTensor,
        pieces: usize,
        dy: &HostTensor,
        dz: &mut HostTensor,
    ) -> Result<()> {
        check::maxout("maxout_backward", z, pieces, dy)?;
        check::same("maxout_backward", &[("z", z), ("dz", &*dz)])?;
        maxout_backward(&z.data, &dy.data, &mut dz.data, dy.cols, pieces);
        Ok(())
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
        check::penalty(l1, l2)?;
        check::slot("penalty_into", acc, slot)?;
        let p = penalty(&w.data, l1, l2) * scale as f64;
        acc.data[slot] = (acc.data[slot] as f64 + p) as f32;
        Ok(())
    }

    fn penalty_backward(
        &mut self,
        w: &HostTensor,
        l1: f32,
        l2: f32,
        grad: &mut HostTensor,
    ) -> Result<()> {
        check::penalty(l1, l2)?;
        check::same("penalty_backward", &[("w", w), ("grad", &*grad)])?;
        penalty_backward(&w.data, &mut grad.data, l1, l2);
        Ok(())
    }
}

/// Whether a guarded update may write (see [`Backend::optimizer_step`]): not when the loss so
/// far is not finite or the previous step raised its flag, and then this step's flag is raised.
/// The flags and the step are u32 bit patterns.
pub(crate) fn guard_allows(acc: &mut [f32], s: crate::backend::GuardSlots, t: u64) -> bool {
    let this_flag = s.flags + (t % 2) as usize;
    let previous_flag = s.flags + ((t + 1) % 2) as usize;
    if !acc[s.loss].is_finite() || acc[previous_flag].to_bits() != 0 {
        acc[this_flag] = f32::from_bits(1);
        return false;
    }
    true
}

/// The books of a guarded update that wrote: its flag raised if what it wrote is not finite,
/// and its step recorded.
pub(crate) fn guard_done(acc: &mut [f32], s: crate::backend::GuardSlots, t: u64, finite: bool) {
    if !finite {
        acc[s.flags + (t % 2) as usize] = f32::from_bits(1);
    }
    acc[s.step] = f32::from_bits(t as u32);
}
