//! How each metric accumulates on the device (its [`Kind`] and slots) and how the host turns
//! the sums into its value.

use crate::backend::{Backend, PointError, AUC_THRESHOLDS, ROC_HISTOGRAM_SLOTS};
use crate::error::{Error, Result};
use crate::nn::Task;

use super::Metric;

/// The computation behind a metric.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Kind {
    Argmax,
    TopK(usize),
    Threshold,
    Precision,
    Recall,
    Auc,
    /// The error, and whether the value is the square root of its mean.
    Error(PointError, bool),
}

impl Kind {
    fn slots(self) -> usize {
        match self {
            Kind::Precision | Kind::Recall => 4,
            Kind::Auc => ROC_HISTOGRAM_SLOTS,
            _ => 1,
        }
    }

    /// Whether it reads probabilities (`[0, 1]` outputs) rather than the raw output.
    fn needs_probabilities(self) -> bool {
        matches!(
            self,
            Kind::Threshold | Kind::Precision | Kind::Recall | Kind::Auc
        )
    }

    /// Element-wise against targets shaped like the outputs (not integer labels).
    fn elementwise(self) -> bool {
        !matches!(self, Kind::Argmax | Kind::TopK(_))
    }
}

/// Where each metric accumulates: slot 0 holds the loss sum, then each metric's slots.
#[derive(Clone, Debug)]
pub struct MetricPlan {
    entries: Vec<(Metric, Kind, usize)>,
    slots: usize,
}

/// The accumulator slot of the loss sum.
pub const LOSS_SLOT: usize = 0;

impl MetricPlan {
    /// Lays out `metrics` for a model learning `task`; rejects metrics that make no sense for it.
    pub fn new(metrics: &[Metric], task: Task) -> Result<MetricPlan> {
        let mut entries = Vec::new();
        let mut next = LOSS_SLOT + 1;
        for (i, &m) in metrics.iter().enumerate() {
            if metrics[..i].iter().any(|o| o.name() == m.name()) {
                return Err(Error::Config(format!(
                    "the metric {} is asked for twice; each is logged once, under its name",
                    m.name()
                )));
            }
            let kind = m.kind(task)?;
            if kind.elementwise() && task == Task::SparseCategorical {
                return Err(Error::Config(format!(
                    "{} compares outputs with targets element by element, but sparse categorical targets are \
                     integer labels; use categorical_crossentropy with one-hot targets, or an accuracy metric",
                    m.name()
                )));
            }
            entries.push((m, kind, next));
            next += kind.slots();
        }
        Ok(MetricPlan {
            entries,
            slots: next,
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

    /// Records one batch into `acc`: `output` is the model's output (scores or values),
    /// `probs` the same in probability space, `y` the targets.
    pub fn record<B: Backend>(
        &self,
        b: &mut B,
        output: &B::Tensor,
        probs: &B::Tensor,
        y: &B::Tensor,
        acc: &mut B::Tensor,
    ) -> Result<()> {
        for &(_, kind, slot) in &self.entries {
            match kind {
                Kind::Argmax => b.argmax_correct_into(output, y, acc, slot)?,
                Kind::TopK(k) => b.topk_correct_into(output, y, k, acc, slot)?,
                Kind::Threshold => b.threshold_correct_into(probs, y, 0.5, acc, slot)?,
                Kind::Precision | Kind::Recall => b.confusion_into(probs, y, 0.5, acc, slot)?,
                Kind::Auc => b.roc_histogram_into(probs, y, acc, slot)?,
                Kind::Error(e, _) => b.error_sum_into(e, output, y, acc, slot)?,
            }
        }
        Ok(())
    }

    /// The metrics' values from the accumulator read back after `samples` samples of
    /// `outputs` outputs each.
    pub fn finish(&self, acc: &[f32], samples: usize, outputs: usize) -> Vec<(&'static str, f64)> {
        let n = samples.max(1) as f64;
        let elements = (samples * outputs).max(1) as f64;
        let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
        self.entries
            .iter()
            .map(|&(m, kind, slot)| {
                let s = |i: usize| acc[slot + i] as f64;
                let value = match kind {
                    Kind::Argmax | Kind::TopK(_) => s(0) / n,
                    Kind::Threshold => s(0) / elements,
                    Kind::Precision => ratio(s(0), s(0) + s(1)),
                    Kind::Recall => ratio(s(0), s(0) + s(3)),
                    Kind::Auc => auc_from_histogram(&acc[slot..slot + ROC_HISTOGRAM_SLOTS]),
                    Kind::Error(_, true) => (s(0) / elements).sqrt(),
                    Kind::Error(_, false) => s(0) / elements,
                };
                (m.name(), value)
            })
            .collect()
    }
}

/// ROC AUC by the trapezoidal rule over the [`AUC_THRESHOLDS`] thresholds, from the
/// histogram of [`Backend::roc_histogram_into`]: at threshold j, the positives predicted
/// positive are those in buckets above j. 0 when either class is absent (as Keras).
pub fn auc_from_histogram(h: &[f32]) -> f64 {
    let buckets = AUC_THRESHOLDS + 1;
    let pos: Vec<f64> = (0..buckets).map(|b| h[2 * b] as f64).collect();
    let neg: Vec<f64> = (0..buckets).map(|b| h[2 * b + 1] as f64).collect();
    let (total_pos, total_neg): (f64, f64) = (pos.iter().sum(), neg.iter().sum());
    if total_pos == 0.0 || total_neg == 0.0 {
        return 0.0;
    }
    // tpr[j], fpr[j] for thresholds j = 0..N-1: counts in buckets j+1..=N.
    let mut tpr = vec![0.0; AUC_THRESHOLDS];
    let mut fpr = vec![0.0; AUC_THRESHOLDS];
    let (mut tp, mut fp) = (0.0, 0.0);
    for j in (0..AUC_THRESHOLDS).rev() {
        tp += pos[j + 1];
        fp += neg[j + 1];
        tpr[j] = tp / total_pos;
        fpr[j] = fp / total_neg;
    }
    (0..AUC_THRESHOLDS - 1)
        .map(|j| (fpr[j] - fpr[j + 1]) * (tpr[j] + tpr[j + 1]) / 2.0)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::cpu::roc_histogram;
    use crate::train::metrics::Metric;

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
            Metric::Accuracy.kind(Task::Binary).unwrap(),
            Kind::Threshold
        );
        assert_eq!(
            Metric::Accuracy.kind(Task::SparseCategorical).unwrap(),
            Kind::Argmax
        );
        assert!(Metric::Accuracy.kind(Task::Regression).is_err());
        assert!(MetricPlan::new(&[Metric::MeanSquaredError], Task::SparseCategorical).is_err());
    }
}
