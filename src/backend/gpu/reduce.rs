//! The loss and metric reductions of [`GpuBackend`]: each checked as every backend checks
//! it, then recorded as one dispatch into the accumulator. The [`Backend`](crate::backend::Backend)
//! impl in `ops.rs` calls these.

use super::kernels::{self, Constants};
use super::{u32_dim, GpuBackend, GpuTensor};
use crate::backend::{check, PointError, ROC_HISTOGRAM_SLOTS};
use crate::error::Result;

impl GpuBackend {
    pub(super) fn record_argmax_correct_into(
        &mut self,
        pred: &GpuTensor,
        target: &GpuTensor,
        acc: &mut GpuTensor,
        slot: usize,
    ) -> Result<()> {
        check::argmax("argmax_correct_into", pred, target)?;
        check::slot("argmax_correct_into", acc, slot)?;
        let params = reduce_params(pred, target.cols, slot, 0.0)?;
        self.reduce(
            kernels::ARGMAX_CORRECT,
            Constants::default(),
            params,
            acc,
            pred,
            target,
        )
    }

    pub(super) fn record_threshold_correct_into(
        &mut self,
        pred: &GpuTensor,
        target: &GpuTensor,
        threshold: f32,
        acc: &mut GpuTensor,
        slot: usize,
    ) -> Result<()> {
        check::same(
            "threshold_correct_into",
            &[("pred", pred), ("target", target)],
        )?;
        check::slot("threshold_correct_into", acc, slot)?;
        let params = reduce_params(pred, target.cols, slot, threshold)?;
        self.reduce(
            kernels::THRESHOLD_CORRECT,
            Constants::default(),
            params,
            acc,
            pred,
            target,
        )
    }

    pub(super) fn record_topk_correct_into(
        &mut self,
        pred: &GpuTensor,
        target: &GpuTensor,
        k: usize,
        acc: &mut GpuTensor,
        slot: usize,
    ) -> Result<()> {
        check::argmax("topk_correct_into", pred, target)?;
        check::slot("topk_correct_into", acc, slot)?;
        let mut params = reduce_params(pred, target.cols, slot, 0.0)?;
        params.k = u32::try_from(k).unwrap_or(u32::MAX);
        self.reduce(
            kernels::TOPK_CORRECT,
            Constants::default(),
            params,
            acc,
            pred,
            target,
        )
    }

    pub(super) fn record_confusion_into(
        &mut self,
        pred: &GpuTensor,
        target: &GpuTensor,
        threshold: f32,
        acc: &mut GpuTensor,
        slot: usize,
    ) -> Result<()> {
        check::same("confusion_into", &[("pred", pred), ("target", target)])?;
        check::slots("confusion_into", acc, slot, 4)?;
        let params = reduce_params(pred, target.cols, slot, threshold)?;
        self.reduce(
            kernels::CONFUSION,
            Constants::default(),
            params,
            acc,
            pred,
            target,
        )
    }

    pub(super) fn record_roc_histogram_into(
        &mut self,
        pred: &GpuTensor,
        target: &GpuTensor,
        acc: &mut GpuTensor,
        slot: usize,
    ) -> Result<()> {
        check::same("roc_histogram_into", &[("pred", pred), ("target", target)])?;
        check::slots("roc_histogram_into", acc, slot, ROC_HISTOGRAM_SLOTS)?;
        let params = reduce_params(pred, target.cols, slot, 0.0)?;
        self.reduce(
            kernels::ROC_HISTOGRAM,
            Constants::default(),
            params,
            acc,
            pred,
            target,
        )
    }

    pub(super) fn record_error_sum_into(
        &mut self,
        kind: PointError,
        pred: &GpuTensor,
        target: &GpuTensor,
        acc: &mut GpuTensor,
        slot: usize,
    ) -> Result<()> {
        check::same("error_sum_into", &[("pred", pred), ("target", target)])?;
        check::slot("error_sum_into", acc, slot)?;
        let params = reduce_params(pred, target.cols, slot, 0.0)?;
        let constants = Constants::new(&[("ERR", kind.code() as f64)]);
        self.reduce(kernels::ERROR_SUM, constants, params, acc, pred, target)
    }

    pub(super) fn record_crossentropy_sum_into(
        &mut self,
        from_logits: bool,
        pred: &GpuTensor,
        target: &GpuTensor,
        acc: &mut GpuTensor,
        slot: usize,
    ) -> Result<()> {
        check::argmax("crossentropy_sum_into", pred, target)?;
        check::slot("crossentropy_sum_into", acc, slot)?;
        let mut params = reduce_params(pred, target.cols, slot, 0.0)?;
        params.k = from_logits as u32;
        self.reduce(
            kernels::CROSSENTROPY_SUM,
            Constants::default(),
            params,
            acc,
            pred,
            target,
        )
    }

    pub(super) fn record_class_confusion_into(
        &mut self,
        pred: &GpuTensor,
        target: &GpuTensor,
        threshold: Option<f32>,
        acc: &mut GpuTensor,
        slot: usize,
    ) -> Result<()> {
        check::argmax("class_confusion_into", pred, target)?;
        check::slots("class_confusion_into", acc, slot, 3 * pred.cols)?;
        let mut params = reduce_params(pred, target.cols, slot, threshold.unwrap_or(0.0))?;
        params.k = threshold.is_some() as u32;
        let groups = self.grid_each(pred.cols)?;
        self.record(
            kernels::CLASS_CONFUSION,
            Constants::default(),
            params,
            &[acc, pred, target],
            groups,
        )
    }
}

pub(super) fn reduce_params(
    x: &GpuTensor,
    target_cols: usize,
    slot: usize,
    threshold: f32,
) -> Result<kernels::ReduceParams> {
    Ok(kernels::ReduceParams {
        rows: u32_dim("reduce", x.rows)?,
        cols: u32_dim("reduce", x.cols)?,
        slot: u32_dim("reduce", slot)?,
        target_cols: u32_dim("reduce", target_cols)?,
        threshold,
        k: 0,
        _pad: [0; 2],
    })
}
