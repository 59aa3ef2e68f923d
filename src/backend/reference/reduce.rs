//! The reductions the metrics need: correct counts, confusion counts, ROC histograms, error
//! and cross-entropy sums, each over a batch (the specification of `shaders/reduce.wgsl`).

use super::*;
use crate::backend::{PointError, AUC_THRESHOLDS, ROC_HISTOGRAM_SLOTS};

/// First index of the largest value (Keras' argmax).
pub fn argmax(row: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = i;
        }
    }
    best
}

/// Number of rows of `pred[N, C]` whose argmax is the label: `target[N, 1]` holds labels,
/// `target[N, C]` one-hot rows (compared by argmax).
pub fn argmax_correct(pred: &[f32], target: &[f32], cols: usize, target_cols: usize) -> usize {
    pred.chunks(cols)
        .zip(target.chunks(target_cols))
        .filter(|(p, t)| {
            let label = if target_cols == 1 {
                t[0] as usize
            } else {
                argmax(t)
            };
            argmax(p) == label
        })
        .count()
}

/// Number of elements with `(pred > threshold) as 0/1 == target` exactly.
pub fn threshold_correct(pred: &[f32], target: &[f32], threshold: f32) -> usize {
    pred.iter()
        .zip(target)
        .filter(|(&p, &t)| (if p > threshold { 1.0 } else { 0.0 }) == t)
        .count()
}

/// The true class of a row: the label of a `[N, 1]` target, or the argmax of a `[N, C]` row.
fn label_of(t: &[f32]) -> usize {
    if t.len() == 1 {
        t[0] as usize
    } else {
        argmax(t)
    }
}

/// Number of rows of `pred[N, C]` whose true class has fewer than `k` classes scoring strictly
/// higher (ties count as in the top k, as `in_top_k`). Targets as for [`argmax_correct`].
pub fn topk_correct(
    pred: &[f32],
    target: &[f32],
    cols: usize,
    target_cols: usize,
    k: usize,
) -> usize {
    pred.chunks(cols)
        .zip(target.chunks(target_cols))
        .filter(|(p, t)| {
            let label = label_of(t);
            label < cols && p.iter().filter(|&&v| v > p[label]).count() < k
        })
        .count()
}

/// `[TP, FP, TN, FN]` of `pred > threshold` against `target != 0`, element by element.
pub fn confusion(pred: &[f32], target: &[f32], threshold: f32) -> [usize; 4] {
    let mut counts = [0; 4];
    for (&p, &t) in pred.iter().zip(target) {
        let (predicted, actual) = (p > threshold, t != 0.0);
        let i = match (predicted, actual) {
            (true, true) => 0,
            (true, false) => 1,
            (false, false) => 2,
            (false, true) => 3,
        };
        counts[i] += 1;
    }
    counts
}

/// The number of AUC thresholds strictly below `v`: threshold 0 is -1e-7, threshold
/// `j` in `1..N-1` is `j / (N - 1)` (compared as `j < v·(N-1)`, exact in f32), threshold
/// `N - 1` is 1 + 1e-7. NaN goes to bucket 0.
pub fn roc_bucket(v: f32) -> usize {
    let n = AUC_THRESHOLDS;
    if v.is_nan() || v <= -1e-7 {
        return 0;
    }
    let q = v * (n - 1) as f32;
    let inner = if q > 1.0 {
        (q.ceil() as usize - 1).min(n - 2)
    } else {
        0
    };
    1 + inner + (v > 1.0 + 1e-7) as usize
}

/// The ROC histogram: for bucket `b` ([`roc_bucket`]), positives at `2b`, negatives at `2b + 1`.
pub fn roc_histogram(pred: &[f32], target: &[f32]) -> Vec<usize> {
    let mut h = vec![0; ROC_HISTOGRAM_SLOTS];
    for (&p, &t) in pred.iter().zip(target) {
        h[2 * roc_bucket(p) + (t == 0.0) as usize] += 1;
    }
    h
}

/// One element's error for a regression or probabilistic metric (Keras' definitions,
/// ε = 1e-7; see [`PointError`]).
pub fn point_error_f64(kind: PointError, p: f64, y: f64) -> f64 {
    const EPS: f64 = 1e-7;
    let clip = |v: f64, hi: f64| v.clamp(EPS, hi);
    match kind {
        PointError::Squared => (p - y) * (p - y),
        PointError::Absolute => (p - y).abs(),
        PointError::AbsolutePercentage => 100.0 * ((y - p) / y.abs().max(EPS)).abs(),
        PointError::SquaredLog => {
            let d = (p.max(EPS) + 1.0).ln() - (y.max(EPS) + 1.0).ln();
            d * d
        }
        PointError::KlDivergence => {
            let (y, p) = (clip(y, 1.0), clip(p, 1.0));
            y * (y / p).ln()
        }
        PointError::Poisson => p - y * (p + EPS).ln(),
        PointError::BinaryCrossentropy => {
            // The bounds as f32 holds them, as the loss does: 1 - ε is 1 - 1.19e-7 there.
            let p = p.clamp(BCE_EPSILON as f64, (1.0f32 - BCE_EPSILON) as f64);
            -(y * p.ln() + (1.0 - y) * (1.0 - p).ln())
        }
        PointError::BinaryCrossentropyFromLogits => p.max(0.0) - p * y + (-p.abs()).exp().ln_1p(),
    }
}

/// The categorical cross-entropy of one row, Keras' definition: from logits
/// `Σ_c y_c (logsumexp(z) - z_c)`; from probabilities `-Σ_c y_c ln(p'_c)` with `p` divided by
/// its row sum and clipped to `[ε, 1 - ε]`. A one-element `target` is an integer label (the
/// sparse form); a label outside `[0, C)` gives NaN.
pub fn crossentropy_row_f64(from_logits: bool, pred: &[f64], target: &[f64]) -> f64 {
    const EPS: f64 = 1e-7;
    let log_p: Vec<f64> = if from_logits {
        let lse = logsumexp(pred);
        pred.iter().map(|&z| z - lse).collect()
    } else {
        let sum: f64 = pred.iter().sum();
        pred.iter()
            .map(|&p| (p / sum).clamp(EPS, (1.0f32 - BCE_EPSILON) as f64).ln())
            .collect()
    };
    if target.len() == 1 && pred.len() > 1 {
        return match sparse_label(target[0], pred.len()) {
            Some(label) => -log_p[label],
            None => f64::NAN,
        };
    }
    -target.iter().zip(&log_p).map(|(y, l)| y * l).sum::<f64>()
}

/// Per class `c`, `[TP_c, FP_c, FN_c]` (3·C counts, class-major) of one decision per element:
/// with a threshold, `pred[r, c] > threshold`; without one, `c == argmax(pred[r])`. The truth
/// is `target[r, c] != 0` for `[N, C]` targets (one output: a yes/no), `label(r) == c` for
/// `[N, 1]` labels of `C > 1` classes.
pub fn class_confusion(
    pred: &[f32],
    target: &[f32],
    cols: usize,
    target_cols: usize,
    threshold: Option<f32>,
) -> Vec<usize> {
    let mut counts = vec![0; 3 * cols];
    for (p, t) in pred.chunks(cols).zip(target.chunks(target_cols)) {
        let best = argmax(p);
        for c in 0..cols {
            let predicted = match threshold {
                Some(th) => p[c] > th,
                None => c == best,
            };
            let actual = if target_cols == 1 && cols > 1 {
                t[0] == c as f32
            } else {
                t[c] != 0.0
            };
            match (predicted, actual) {
                (true, true) => counts[3 * c] += 1,
                (true, false) => counts[3 * c + 1] += 1,
                (false, true) => counts[3 * c + 2] += 1,
                (false, false) => {}
            }
        }
    }
    counts
}
