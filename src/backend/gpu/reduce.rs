//! The loss and metric reductions of [`GpuBackend`]: each checked as every backend checks
//! it, then recorded as one dispatch into the accumulator. The [`Backend`](crate::backend::Backend)
//! impl in `ops.rs` calls these.

use super::kernels::{self, Constants};
use super::{u32_dim, GpuBackend, GpuTensor};
use crate::backend::{check, Backend, PointError, Tensor, ROC_HISTOGRAM_SLOTS};
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

/// Elements from which a sum runs in two passes (partials over many workgroups, then their
/// sum): below it one workgroup's 256 threads take at most 64 each.
pub(super) const TWO_PASS_FROM: usize = 16_384;

/// Elements per workgroup in a sum's first pass, and the most partials it writes.
const CHUNK: usize = 4096;
const MAX_PARTIALS: usize = 1024;

impl GpuBackend {
    /// For a sum over `len` elements in two passes: the chunk each workgroup takes and the
    /// partials buffer (made once, at its largest).
    pub(super) fn partials_for(&mut self, len: usize) -> Result<(usize, usize, GpuTensor)> {
        let groups = len.div_ceil(CHUNK).min(MAX_PARTIALS);
        let chunk = len.div_ceil(groups);
        if self.partials.is_none() {
            self.partials = Some(self.zeros(1, MAX_PARTIALS)?);
        }
        let partials = self.partials.as_ref().expect("made just above").handle();
        Ok((chunk, groups, partials))
    }

    /// `acc[slot] += Σ x`: one workgroup, or past [`TWO_PASS_FROM`] elements partials over
    /// many workgroups and then their sum.
    pub(super) fn record_sum_into(
        &mut self,
        x: &GpuTensor,
        acc: &mut GpuTensor,
        slot: usize,
    ) -> Result<()> {
        check::slot("sum_into", acc, slot)?;
        let params = reduce_params(x, x.cols, slot, 0.0)?;
        if x.len() < TWO_PASS_FROM {
            return self.record(
                kernels::SUM_INTO,
                Constants::default(),
                params,
                &[acc, x],
                [1, 1, 1],
            );
        }
        let (chunk, groups, partials) = self.partials_for(x.len())?;
        let first = kernels::ReduceParams {
            k: u32_dim("sum_into", chunk)?,
            ..params
        };
        let grid = self.grid_each(groups)?;
        self.record(
            kernels::SUM_PARTIALS,
            Constants::default(),
            first,
            &[&partials, x],
            grid,
        )?;
        self.sum_partials_into(&partials, groups, acc, slot)
    }

    /// `acc[slot] += Σ partials[..groups]`: a two-pass sum's second pass.
    pub(super) fn sum_partials_into(
        &mut self,
        partials: &GpuTensor,
        groups: usize,
        acc: &mut GpuTensor,
        slot: usize,
    ) -> Result<()> {
        let params = kernels::ReduceParams {
            rows: 1,
            cols: u32_dim("sum_into", groups)?,
            slot: u32_dim("sum_into", slot)?,
            target_cols: 1,
            threshold: 0.0,
            k: 0,
            _pad: [0; 2],
        };
        self.record(
            kernels::SUM_INTO,
            Constants::default(),
            params,
            &[acc, partials],
            [1, 1, 1],
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
