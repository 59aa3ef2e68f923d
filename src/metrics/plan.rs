//! How each metric accumulates on the device (its [`Kind`] and slots) and how the host turns
//! the sums into its value.

use crate::backend::{Activation, Backend, PointError, AUC_THRESHOLDS, ROC_HISTOGRAM_SLOTS};
use crate::error::{Error, Result};
use crate::nn::Task;

use super::Metric;

/// Which value of the confusion counts a metric reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Count {
    Precision,
    Recall,
    TruePositives,
    FalsePositives,
    TrueNegatives,
    FalseNegatives,
}

/// The `*At*` metrics: the best of one rate where another reaches a target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum At {
    PrecisionAtRecall,
    SensitivityAtSpecificity,
    SpecificityAtSensitivity,
}

/// What an error sum is divided by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Scale {
    /// The elements: the mean per output.
    Elements,
    /// The square root of the mean per output (RMSE).
    Root,
    /// The rows: a sum per row, averaged over rows (KL divergence).
    Rows,
}

/// The computation behind a metric.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Kind {
    Argmax,
    TopK(usize),
    Threshold(f32),
    /// The four confusion counts at a threshold, and the value made of them.
    Confusion(f32, Count),
    /// Per-class counts by a threshold, or by the argmax.
    F1(Option<f32>),
    Auc,
    At(At, f32),
    Error(PointError, Scale),
    BinaryCrossentropy,
    /// Categorical cross-entropy, with one-hot targets or integer labels (the targets say).
    CategoricalCrossentropy,
}

impl Kind {
    fn slots(self, outputs: usize) -> usize {
        match self {
            Kind::Confusion(..) => 4,
            Kind::F1(_) => 3 * outputs,
            Kind::Auc | Kind::At(..) => ROC_HISTOGRAM_SLOTS,
            _ => 1,
        }
    }

    /// Whether it reads probabilities (the model's predictions) rather than the raw output.
    fn needs_probabilities(self) -> bool {
        !matches!(
            self,
            Kind::Argmax
                | Kind::TopK(_)
                | Kind::Error(
                    PointError::Squared
                        | PointError::Absolute
                        | PointError::AbsolutePercentage
                        | PointError::SquaredLog,
                    _
                )
        )
    }

    /// Element-wise against targets shaped like the outputs (not integer labels).
    fn elementwise(self) -> bool {
        !matches!(
            self,
            Kind::Argmax | Kind::TopK(_) | Kind::F1(_) | Kind::CategoricalCrossentropy
        )
    }
}

/// What one batch's metrics read: the model's output, the same as probabilities, and the
/// logits behind them where the model has them.
#[derive(Clone, Copy, Debug)]
pub struct Outputs<'a, T> {
    /// The last layer's output (logits, when the loss applies the output activation).
    pub output: &'a T,
    /// The predictions in probability space (`output` with the output activation applied).
    pub probs: &'a T,
    /// The logits and the activation that turns them into `probs` (softmax or sigmoid),
    /// where the model computes them.
    pub logits: Option<(&'a T, Activation)>,
}

/// Where each metric accumulates: slot 0 holds the loss sum, then each metric's slots.
#[derive(Clone, Debug)]
pub struct MetricPlan {
    entries: Vec<(Metric, Kind, usize)>,
    slots: usize,
    outputs: usize,
}

/// The accumulator slot of the loss sum.
pub const LOSS_SLOT: usize = 0;

impl MetricPlan {
    /// Lays out `metrics` for a model learning `task` with `outputs` outputs, `threshold`
    /// its decision threshold for yes/no outputs; rejects metrics that make no sense for it.
    pub fn new(
        metrics: &[Metric],
        task: Task,
        threshold: f32,
        outputs: usize,
    ) -> Result<MetricPlan> {
        if !(0.0..=1.0).contains(&threshold) {
            return Err(Error::Config(format!(
                "the decision threshold must be in [0, 1], got {threshold}"
            )));
        }
        let mut entries = Vec::new();
        let mut next = LOSS_SLOT + 1;
        for (i, &m) in metrics.iter().enumerate() {
            if metrics[..i].iter().any(|o| o.name() == m.name()) {
                return Err(Error::Config(format!(
                    "the metric {} is asked for twice; each is logged once, under its name",
                    m.name()
                )));
            }
            let kind = m.kind(task, threshold)?;
            if kind.elementwise() && task == Task::SparseCategorical {
                return Err(Error::Config(format!(
                    "{} compares outputs with targets element by element, but sparse categorical targets are \
                     integer labels; use categorical_crossentropy with one-hot targets, or an accuracy metric",
                    m.name()
                )));
            }
            entries.push((m, kind, next));
            next += kind.slots(outputs);
        }
        Ok(MetricPlan {
            entries,
            slots: next,
            outputs,
        })
    }

    /// The accumulator's width.
    pub fn slots(&self) -> usize {
        self.slots
    }

    /// Whether any metric reads probabilities.
    pub fn needs_probabilities(&self) -> bool {
        self.entries.iter().any(|(_, k, _)| k.needs_probabilities())
    }

    /// The metrics' names, in order.
    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.entries.iter().map(|(m, _, _)| m.name())
    }

    /// Records one batch into `acc`, against the targets `y`.
    pub fn record<B: Backend>(
        &self,
        b: &mut B,
        out: Outputs<'_, B::Tensor>,
        y: &B::Tensor,
        acc: &mut B::Tensor,
    ) -> Result<()> {
        let Outputs {
            output,
            probs,
            logits,
        } = out;
        let logits_of = |act: Activation| logits.filter(|&(_, a)| a == act).map(|(z, _)| z);
        for &(_, kind, slot) in &self.entries {
            match kind {
                Kind::Argmax => b.argmax_correct_into(output, y, acc, slot)?,
                Kind::TopK(k) => b.topk_correct_into(output, y, k, acc, slot)?,
                Kind::Threshold(t) => b.threshold_correct_into(probs, y, t, acc, slot)?,
                Kind::Confusion(t, _) => b.confusion_into(probs, y, t, acc, slot)?,
                Kind::F1(t) => b.class_confusion_into(probs, y, t, acc, slot)?,
                Kind::Auc | Kind::At(..) => b.roc_histogram_into(probs, y, acc, slot)?,
                Kind::Error(e, _) if kind.needs_probabilities() => {
                    b.error_sum_into(e, probs, y, acc, slot)?
                }
                Kind::Error(e, _) => b.error_sum_into(e, output, y, acc, slot)?,
                Kind::BinaryCrossentropy => match logits_of(Activation::Sigmoid) {
                    Some(z) => {
                        b.error_sum_into(PointError::BinaryCrossentropyFromLogits, z, y, acc, slot)?
                    }
                    None => {
                        b.error_sum_into(PointError::BinaryCrossentropy, probs, y, acc, slot)?
                    }
                },
                Kind::CategoricalCrossentropy => match logits_of(Activation::Softmax) {
                    Some(z) => b.crossentropy_sum_into(true, z, y, acc, slot)?,
                    None => b.crossentropy_sum_into(false, probs, y, acc, slot)?,
                },
            }
        }
        Ok(())
    }

    /// The metrics' values from the accumulator read back after `samples` samples.
    pub fn finish(&self, acc: &[f32], samples: usize) -> Vec<(&'static str, f64)> {
        let n = samples.max(1) as f64;
        let elements = (samples * self.outputs).max(1) as f64;
        self.entries
            .iter()
            .map(|&(m, kind, slot)| {
                let s = |i: usize| acc[slot + i] as f64;
                let value = match kind {
                    Kind::Argmax | Kind::TopK(_) => s(0) / n,
                    Kind::Threshold(_) => s(0) / elements,
                    Kind::Confusion(_, count) => {
                        let (tp, fp, tn, fn_) = (s(0), s(1), s(2), s(3));
                        match count {
                            Count::Precision => ratio(tp, tp + fp),
                            Count::Recall => ratio(tp, tp + fn_),
                            Count::TruePositives => tp,
                            Count::FalsePositives => fp,
                            Count::TrueNegatives => tn,
                            Count::FalseNegatives => fn_,
                        }
                    }
                    Kind::F1(_) => f1_macro(&acc[slot..slot + 3 * self.outputs]),
                    Kind::Auc => auc_from_histogram(&acc[slot..slot + ROC_HISTOGRAM_SLOTS]),
                    Kind::At(at, target) => {
                        at_constraint(at, target, &acc[slot..slot + ROC_HISTOGRAM_SLOTS])
                    }
                    Kind::Error(_, Scale::Root) => (s(0) / elements).sqrt(),
                    Kind::Error(_, Scale::Rows) | Kind::CategoricalCrossentropy => s(0) / n,
                    Kind::Error(_, Scale::Elements) | Kind::BinaryCrossentropy => s(0) / elements,
                };
                (m.name(), value)
            })
            .collect()
    }
}

/// `a / b`, or 0 when `b` is 0 (Keras' `divide_no_nan`).
fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        a / b
    } else {
        0.0
    }
}

/// The mean over classes of `2 TP / (2 TP + FP + FN)` from `[TP, FP, FN]` per class, a class
/// with no positives and no positive predictions scoring 0 (Keras adds ε = 1e-7 to each
/// denominator instead of testing for 0; the values differ by less than 1e-6).
fn f1_macro(counts: &[f32]) -> f64 {
    let classes = counts.len() / 3;
    let sum: f64 = counts
        .chunks(3)
        .map(|c| {
            let (tp, fp, fn_) = (c[0] as f64, c[1] as f64, c[2] as f64);
            ratio(2.0 * tp, 2.0 * tp + fp + fn_)
        })
        .sum();
    sum / classes.max(1) as f64
}

/// From the ROC histogram of [`Backend::roc_histogram_into`], for each threshold `j` of the
/// [`AUC_THRESHOLDS`]: `(TP, FP, TN, FN)` of `prediction > threshold j`, the positives above
/// it being those in buckets `j + 1..=N`.
fn roc_counts(h: &[f32]) -> Vec<[f64; 4]> {
    let buckets = AUC_THRESHOLDS + 1;
    let pos = |b: usize| h[2 * b] as f64;
    let neg = |b: usize| h[2 * b + 1] as f64;
    let total_pos: f64 = (0..buckets).map(pos).sum();
    let total_neg: f64 = (0..buckets).map(neg).sum();
    let mut counts = vec![[0.0; 4]; AUC_THRESHOLDS];
    let (mut tp, mut fp) = (0.0, 0.0);
    for j in (0..AUC_THRESHOLDS).rev() {
        tp += pos(j + 1);
        fp += neg(j + 1);
        counts[j] = [tp, fp, total_neg - fp, total_pos - tp];
    }
    counts
}

/// One of Keras' `*At*` metrics from the ROC histogram: over the AUC's thresholds, the
/// largest dependent rate among those where the constrained one reaches `target` (0 when none
/// does), each rate 0 where its denominator is (Keras' `_find_max_under_constraint`). Keras'
/// `*At*` thresholds are 0 and 1 at the ends where the AUC's are -1e-7 and 1 + 1e-7: a
/// prediction in (-1e-7, 0] counts as positive at the first threshold here, negative there.
pub(super) fn at_constraint(at: At, target: f32, h: &[f32]) -> f64 {
    let target = target as f64;
    roc_counts(h)
        .into_iter()
        .filter_map(|[tp, fp, tn, fn_]| {
            let recall = ratio(tp, tp + fn_);
            let specificity = ratio(tn, tn + fp);
            let (constrained, dependent) = match at {
                At::PrecisionAtRecall => (recall, ratio(tp, tp + fp)),
                At::SensitivityAtSpecificity => (specificity, recall),
                At::SpecificityAtSensitivity => (recall, specificity),
            };
            (constrained >= target).then_some(dependent)
        })
        .fold(0.0, f64::max)
}

/// ROC AUC by the trapezoidal rule over the [`AUC_THRESHOLDS`] thresholds, from the
/// histogram of [`Backend::roc_histogram_into`]. 0 when either class is absent (as Keras).
pub fn auc_from_histogram(h: &[f32]) -> f64 {
    let counts = roc_counts(h);
    let [tp, fp, tn, fn_] = counts[0];
    let (total_pos, total_neg) = (tp + fn_, fp + tn);
    if total_pos == 0.0 || total_neg == 0.0 {
        return 0.0;
    }
    let rates: Vec<(f64, f64)> = counts
        .iter()
        .map(|c| (c[1] / total_neg, c[0] / total_pos))
        .collect();
    rates
        .windows(2)
        .map(|w| (w[0].0 - w[1].0) * (w[0].1 + w[1].1) / 2.0)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::reference::roc_histogram;
    use crate::metrics::Metric;

    fn auc(pred: &[f32], target: &[f32]) -> f64 {
        let h: Vec<f32> = roc_histogram(pred, target)
            .into_iter()
            .map(|c| c as f32)
            .collect();
        auc_from_histogram(&h)
    }

    #[test]
    fn auc_of_perfect_random_and_inverted_rankings() {
        assert!((auc(&[0.1, 0.2, 0.8, 0.9], &[0.0, 0.0, 1.0, 1.0]) - 1.0).abs() < 1e-9);
        assert!(auc(&[0.9, 0.8, 0.2, 0.1], &[0.0, 0.0, 1.0, 1.0]).abs() < 1e-9);
        // Every score the same: the ROC curve is the diagonal.
        assert!((auc(&[0.5; 4], &[0.0, 1.0, 0.0, 1.0]) - 0.5).abs() < 1e-9);
        // One class absent.
        assert_eq!(auc(&[0.3, 0.6], &[1.0, 1.0]), 0.0);
    }

    #[test]
    fn auc_matches_the_exact_rank_statistic_when_scores_sit_between_thresholds() {
        // Scores apart by more than 1/199: the histogram resolves every pair, so the AUC is
        // the fraction of (positive, negative) pairs ranked correctly: here 5 of 6.
        let pred = [0.1, 0.35, 0.6, 0.2, 0.7];
        let target = [0.0, 0.0, 1.0, 1.0, 1.0];
        assert!(
            (auc(&pred, &target) - 5.0 / 6.0).abs() < 1e-9,
            "{}",
            auc(&pred, &target)
        );
    }

    #[test]
    fn accuracy_resolves_from_the_task() {
        assert_eq!(
            Metric::Accuracy.kind(Task::Binary, 0.5).unwrap(),
            Kind::Threshold(0.5)
        );
        assert_eq!(
            Metric::Accuracy.kind(Task::SparseCategorical, 0.5).unwrap(),
            Kind::Argmax
        );
        assert!(Metric::Accuracy.kind(Task::Regression, 0.5).is_err());
        assert!(
            MetricPlan::new(&[Metric::MeanSquaredError], Task::SparseCategorical, 0.5, 3).is_err()
        );
    }
}
