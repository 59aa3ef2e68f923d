//! [`Backend`] for the reference: [`CpuTensor`]s in host memory, each op checked as every
//! backend checks it, then computed by the functions of [`super`].

use super::*;
use crate::backend::{check, Backend, Guard, Tensor};
use crate::error::Result;

/// A tensor in host memory.
#[derive(Clone, Debug, PartialEq)]
pub struct CpuTensor {
    rows: usize,
    cols: usize,
    data: Vec<f32>,
}

impl CpuTensor {
    /// The values, row-major.
    pub fn data(&self) -> &[f32] {
        &self.data
    }
}

impl Tensor for CpuTensor {
    fn rows(&self) -> usize {
        self.rows
    }
    fn cols(&self) -> usize {
        self.cols
    }
}

/// The reference backend. Every op runs at once; `flush` has nothing to do.
#[derive(Debug, Default)]
pub struct CpuBackend;

impl CpuBackend {
    /// A new reference backend.
    pub fn new() -> Self {
        CpuBackend
    }
}

impl Backend for CpuBackend {
    type Tensor = CpuTensor;

    fn describe(&self) -> String {
        "cpu reference (f32 storage, f64 arithmetic)".into()
    }

    fn zeros(&mut self, rows: usize, cols: usize) -> Result<CpuTensor> {
        check::new_tensor(rows, cols, None)?;
        // An allocation that fails is an error, not an abort.
        let len = rows.saturating_mul(cols);
        let mut data = Vec::new();
        data.try_reserve_exact(len)
            .map_err(|_| crate::Error::Invalid {
                op: "tensor",
                detail: format!("out of memory for a [{rows}, {cols}] tensor"),
            })?;
        data.resize(len, 0.0);
        Ok(CpuTensor { rows, cols, data })
    }

    fn upload(&mut self, rows: usize, cols: usize, data: &[f32]) -> Result<CpuTensor> {
        check::new_tensor(rows, cols, Some(data))?;
        Ok(CpuTensor {
            rows,
            cols,
            data: data.to_vec(),
        })
    }

    fn write(&mut self, t: &mut CpuTensor, data: &[f32]) -> Result<()> {
        check::write(t, data)?;
        t.data.copy_from_slice(data);
        Ok(())
    }

    fn read(&mut self, t: &CpuTensor) -> Result<Vec<f32>> {
        Ok(t.data.clone())
    }

    fn flush(&mut self) -> Result<()> {
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        Ok(())
    }

    fn fill(&mut self, t: &mut CpuTensor, value: f32) -> Result<()> {
        t.data.fill(value);
        Ok(())
    }

    fn matmul(
        &mut self,
        a: &CpuTensor,
        ta: bool,
        b: &CpuTensor,
        tb: bool,
        c: &mut CpuTensor,
    ) -> Result<()> {
        let (m, n, k) = check::matmul(a, ta, b, tb, c)?;
        matmul_forward(&a.data, ta, &b.data, tb, &mut c.data, m, n, k);
        Ok(())
    }

    fn bias_add(&mut self, z: &mut CpuTensor, bias: &CpuTensor) -> Result<()> {
        check::row_vector("bias_add", z, bias)?;
        bias_forward(&mut z.data, &bias.data, z.cols);
        Ok(())
    }

    fn bias_grad(&mut self, dy: &CpuTensor, db: &mut CpuTensor) -> Result<()> {
        check::row_vector("bias_grad", dy, db)?;
        bias_backward(&dy.data, &mut db.data, dy.cols);
        Ok(())
    }

    fn activation(&mut self, act: Activation, z: &CpuTensor, a: &mut CpuTensor) -> Result<()> {
        check::same("activation", &[("z", z), ("a", &*a)])?;
        activation_forward(act, &z.data, &mut a.data, z.cols);
        Ok(())
    }

    fn activation_backward(
        &mut self,
        act: Activation,
        z: &CpuTensor,
        a: &CpuTensor,
        da: &CpuTensor,
        dz: &mut CpuTensor,
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
        pred: &CpuTensor,
        target: &CpuTensor,
        grad: &mut CpuTensor,
        row_loss: &mut CpuTensor,
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

    fn sum_into(&mut self, x: &CpuTensor, acc: &mut CpuTensor, slot: usize) -> Result<()> {
        check::slot("sum_into", acc, slot)?;
        let sum: f64 = x.data.iter().map(|&v| v as f64).sum();
        acc.data[slot] = (acc.data[slot] as f64 + sum) as f32;
        Ok(())
    }

    fn argmax_correct_into(
        &mut self,
        pred: &CpuTensor,
        target: &CpuTensor,
        acc: &mut CpuTensor,
        slot: usize,
    ) -> Result<()> {
        check::argmax("argmax_correct_into", pred, target)?;
        check::slot("argmax_correct_into", acc, slot)?;
        acc.data[slot] += argmax_correct(&pred.data, &target.data, pred.cols, target.cols) as f32;
        Ok(())
    }

    fn threshold_correct_into(
        &mut self,
        pred: &CpuTensor,
        target: &CpuTensor,
        threshold: f32,
        acc: &mut CpuTensor,
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
        pred: &CpuTensor,
        target: &CpuTensor,
        k: usize,
        acc: &mut CpuTensor,
        slot: usize,
    ) -> Result<()> {
        check::argmax("topk_correct_into", pred, target)?;
        check::slot("topk_correct_into", acc, slot)?;
        acc.data[slot] += topk_correct(&pred.data, &target.data, pred.cols, target.cols, k) as f32;
        Ok(())
    }

    fn confusion_into(
        &mut self,
        pred: &CpuTensor,
        target: &CpuTensor,
        threshold: f32,
        acc: &mut CpuTensor,
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
        pred: &CpuTensor,
        target: &CpuTensor,
        acc: &mut CpuTensor,
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
        pred: &CpuTensor,
        target: &CpuTensor,
        acc: &mut CpuTensor,
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
        pred: &CpuTensor,
        target: &CpuTensor,
        acc: &mut CpuTensor,
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
        pred: &CpuTensor,
        target: &CpuTensor,
        threshold: Option<f32>,
        acc: &mut CpuTensor,
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
        param: &mut CpuTensor,
        grad: &CpuTensor,
        state: &mut [CpuTensor],
        guard: Option<Guard<'_, CpuTensor>>,
    ) -> Result<()> {
        check::optimizer(opt, t, param, grad, state, guard.as_ref())?;
        let mut views: Vec<&mut [f32]> = state.iter_mut().map(|s| s.data.as_mut_slice()).collect();
        let Some(g) = guard else {
            optimizer_step(opt, t, &mut param.data, &grad.data, &mut views);
            return Ok(());
        };
        // See Backend::optimizer_step: the flags and the step are u32 bit patterns, and the
        // new values go to the outputs, so the old ones stay.
        let (acc, s) = (&mut g.acc.data, g.slots);
        let this_flag = s.flags + (t % 2) as usize;
        let previous_flag = s.flags + ((t + 1) % 2) as usize;
        if !acc[s.loss].is_finite() || acc[previous_flag].to_bits() != 0 {
            acc[this_flag] = f32::from_bits(1);
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
        if !new.into_iter().all(|v| v.is_finite()) {
            acc[this_flag] = f32::from_bits(1);
        }
        acc[s.step] = f32::from_bits(t as u32);
        Ok(())
    }
}
