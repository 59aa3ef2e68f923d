//! Reading the learning curves as the course does: underfitting (the training loss stays
//! high), overfitting (the validation loss turns up while the training loss keeps falling), a
//! good fit (both settle, close together), or too few epochs to tell (they were still falling
//! when training stopped). [`History::diagnose`] applies these rules with the thresholds below.

use serde::Serialize;

use super::History;

/// Fewer epochs than this are too few to read a curve from.
pub const MIN_EPOCHS: usize = 3;
/// Overfitting: the final validation loss is more than this fraction above its best...
pub const OVERFIT_RISE: f64 = 0.10;
/// Underfitting: the lowest training loss is above this fraction of the first epoch's
/// (still falling or not).
pub const UNDERFIT_RATIO: f64 = 0.5;
/// A curve is still falling when, over its last fifth of epochs (at least one), it fell by
/// more than this fraction of the first epoch's training loss. The same fraction is the least
/// rise (and gap) that counts, so that noise on a flat curve is not read as a trend.
pub const FALLING: f64 = 0.01;
/// A curve falls fast when it fell by more than this fraction of the first epoch's training
/// loss over its last fifth: then a high loss says only that training stopped too soon.
pub const FALLING_FAST: f64 = 0.10;

/// What the curves say.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The training loss stayed high: the model is too small, or training too weak (a
    /// bigger network, more epochs or a higher learning rate).
    Underfitting,
    /// The validation loss rose from its best while the training loss kept falling: the model
    /// learns the training set's noise (more data, regularization, early stopping).
    Overfitting,
    /// Both losses settled, and the validation loss did not turn up.
    GoodFit,
    /// Too few epochs to read, or the losses were still falling at the end: train longer.
    TooFewEpochs,
}

impl Verdict {
    /// The name in logs and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Underfitting => "underfitting",
            Verdict::Overfitting => "overfitting",
            Verdict::GoodFit => "good_fit",
            Verdict::TooFewEpochs => "too_few_epochs",
        }
    }
}

/// [`History::diagnose`]'s reading of the curves.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Diagnosis {
    /// The verdict.
    pub verdict: Verdict,
    /// The epoch (from 1) with the lowest validation loss (the training loss without
    /// validation): where the validation loss stopped improving.
    pub best_epoch: usize,
    /// The generalization gap, validation loss minus training loss, at the best epoch (None
    /// without validation).
    pub generalization_gap: Option<f64>,
    /// The same at the last epoch.
    pub final_gap: Option<f64>,
    /// Why, in one line.
    pub reason: String,
}

/// The epochs a trend is read over: the last fifth of `n`, at least one.
fn tail(n: usize) -> usize {
    (n / 5).max(1)
}

/// Whether `v` fell by more than `by` over its [`tail`].
fn still_falling(v: &[f64], by: f64) -> bool {
    let n = v.len();
    v[n - 1 - tail(n)] - v[n - 1] > by
}

/// The first index of the lowest finite value.
fn argmin(v: &[f64]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x < v[best] || !v[best].is_finite() {
            best = i;
        }
    }
    best
}

impl History {
    /// The course's reading of these curves: see [`Verdict`] and the thresholds of this
    /// module. The rules, in order, with `L` the training loss, `V` the validation loss and
    /// `s` the first epoch's `L`:
    /// 1. fewer than [`MIN_EPOCHS`] epochs, or a loss that is not finite: too few epochs;
    /// 2. overfitting: `V` ends more than [`OVERFIT_RISE`] above its best (and more than
    ///    [`FALLING`]·s), and `L` ended no higher than it was at `V`'s best;
    /// 3. underfitting: the lowest `L` is above [`UNDERFIT_RATIO`]·s, whether it stopped
    ///    falling or still falls slowly (the course reads both as underfitting), unless `L`
    ///    fell by more than [`FALLING_FAST`]·s over the last fifth (then rule 4 says train
    ///    longer);
    /// 4. still falling: `L` (or `V`) fell by more than [`FALLING`]·s over the last fifth of
    ///    the epochs: too few epochs;
    /// 5. otherwise a good fit.
    ///
    /// Without a validation series, rule 2 cannot apply and the gaps are None. `s` is the
    /// mean over the first epoch, already below the untrained loss: a model that learns its
    /// task within one epoch and then barely moves reads as underfitting, so look at the loss
    /// itself too.
    pub fn diagnose(&self) -> Diagnosis {
        let train = self.get("loss").unwrap_or(&[]);
        let val = self.get("val_loss").filter(|v| v.len() == train.len());
        let n = train.len();
        let finite = train
            .iter()
            .chain(val.into_iter().flatten())
            .all(|x| x.is_finite());
        let watched = val.unwrap_or(train);
        let best = if n > 0 { argmin(watched) } else { 0 };
        let gap = |i: usize| val.map(|v| v[i] - train[i]);
        let (generalization_gap, final_gap) = if n > 0 {
            (gap(best), gap(n - 1))
        } else {
            (None, None)
        };
        let diagnosis = |verdict, reason: String| Diagnosis {
            verdict,
            best_epoch: self.epochs.get(best).copied().unwrap_or(0),
            generalization_gap,
            final_gap,
            reason,
        };
        if n < MIN_EPOCHS || !finite {
            let why = if finite {
                format!("{n} epoch(s): at least {MIN_EPOCHS} are needed to read the curves")
            } else {
                "a loss is not finite: the curves cannot be read".to_string()
            };
            return diagnosis(Verdict::TooFewEpochs, why);
        }
        let s = train[0].abs().max(f64::MIN_POSITIVE);
        let best_epoch = self.epochs[best];
        if let Some(v) = val {
            let rise = v[n - 1] - v[best];
            if rise > OVERFIT_RISE * v[best].abs()
                && rise > FALLING * s
                && train[n - 1] <= train[best]
            {
                return diagnosis(
                    Verdict::Overfitting,
                    format!(
                        "the validation loss rose {:.0}% above its best ({:.4} at epoch {best_epoch}) while the training \
                         loss fell to {:.4}: the gap grew from {:.4} to {:.4}",
                        100.0 * rise / v[best].abs().max(f64::MIN_POSITIVE),
                        v[best],
                        train[n - 1],
                        v[best] - train[best],
                        v[n - 1] - train[n - 1]
                    ),
                );
            }
        }
        let lowest = train.iter().cloned().fold(f64::INFINITY, f64::min);
        let falling = std::iter::once(("training", train))
            .chain(val.map(|v| ("validation", v)))
            .find(|(_, series)| still_falling(series, FALLING * s));
        let k = tail(n);
        let fast = still_falling(train, FALLING_FAST * s);
        if lowest > UNDERFIT_RATIO * s && !fast {
            let trend = match falling {
                Some(_) => format!(
                    ", and fell only {:.4} over the last {k} epochs: a bigger network or a higher learning rate learns \
                     faster than more epochs",
                    train[n - 1 - k] - train[n - 1]
                ),
                None => " and stopped falling: the model is too small or training too weak".to_string(),
            };
            return diagnosis(
                Verdict::Underfitting,
                format!(
                    "the training loss stayed high, {lowest:.4} at its lowest, {:.0}% of its first epoch's {:.4}{trend}",
                    100.0 * lowest / s,
                    train[0]
                ),
            );
        }
        if let Some((name, series)) = falling {
            return diagnosis(
                Verdict::TooFewEpochs,
                format!(
                    "the {name} loss was still falling at the last epoch ({:.4} → {:.4} over the last {k}): train longer",
                    series[n - 1 - k],
                    series[n - 1],
                ),
            );
        }
        let reason = match val {
            Some(v) => format!(
                "both losses settled (validation {:.4}, best at epoch {best_epoch}; training {:.4}), the validation loss \
                 did not turn up",
                v[n - 1],
                train[n - 1]
            ),
            None => format!(
                "the training loss settled at {:.4} (no validation: overfitting cannot be seen)",
                train[n - 1]
            ),
        };
        diagnosis(Verdict::GoodFit, reason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn history(train: &[f64], val: Option<&[f64]>) -> History {
        let mut h = History::default();
        for (i, &l) in train.iter().enumerate() {
            let mut logs = super::super::Logs::default();
            logs.push("loss", l);
            if let Some(v) = val {
                logs.push("val_loss", v[i]);
            }
            h.push(i + 1, &logs, 1e-3);
        }
        h
    }

    #[test]
    fn the_four_verdicts_on_synthetic_curves() {
        // Both fall and settle, close together.
        let train = [1.0, 0.5, 0.3, 0.2, 0.15, 0.12, 0.11, 0.105, 0.104, 0.104];
        let val = [1.0, 0.55, 0.35, 0.25, 0.2, 0.17, 0.16, 0.155, 0.155, 0.155];
        let d = history(&train, Some(&val)).diagnose();
        assert_eq!(d.verdict, Verdict::GoodFit, "{}", d.reason);
        assert_eq!(d.best_epoch, 8);
        assert!((d.generalization_gap.unwrap() - (0.155 - 0.105)).abs() < 1e-12);

        // Training keeps falling, validation turns up after epoch 4.
        let train = [1.0, 0.6, 0.4, 0.3, 0.2, 0.12, 0.08, 0.05, 0.03, 0.02];
        let val = [1.0, 0.7, 0.55, 0.5, 0.52, 0.56, 0.6, 0.66, 0.7, 0.75];
        let d = history(&train, Some(&val)).diagnose();
        assert_eq!(d.verdict, Verdict::Overfitting, "{}", d.reason);
        assert_eq!(d.best_epoch, 4);
        assert!((d.final_gap.unwrap() - 0.73).abs() < 1e-12);

        // Flat and high; or high and still falling slowly: both underfitting.
        let train = [1.0, 0.8, 0.75, 0.74, 0.74, 0.74, 0.739, 0.739, 0.739, 0.739];
        let d = history(&train, Some(&train)).diagnose();
        assert_eq!(d.verdict, Verdict::Underfitting, "{}", d.reason);
        assert!(d.reason.contains("stopped falling"), "{}", d.reason);
        let train = [1.0, 0.95, 0.92, 0.9, 0.88, 0.86, 0.84, 0.82, 0.8, 0.78];
        let d = history(&train, None).diagnose();
        assert_eq!(d.verdict, Verdict::Underfitting, "{}", d.reason);
        assert!(d.reason.contains("bigger network"), "{}", d.reason);

        // Still falling at the end, from high to low: train longer.
        let train = [1.0, 0.5, 0.35, 0.3, 0.25, 0.2, 0.16, 0.13, 0.1, 0.08];
        let d = history(&train, None).diagnose();
        assert_eq!(d.verdict, Verdict::TooFewEpochs, "{}", d.reason);
        assert_eq!(d.generalization_gap, None);

        // High but falling fast: too soon to say it underfits.
        let train = [2.3, 1.8, 1.2];
        let d = history(&train, None).diagnose();
        assert_eq!(d.verdict, Verdict::TooFewEpochs, "{}", d.reason);

        // Two epochs, or a NaN: nothing to read.
        let d = history(&[1.0, 0.5], None).diagnose();
        assert_eq!(d.verdict, Verdict::TooFewEpochs);
        let d = history(&[1.0, f64::NAN, 0.5], None).diagnose();
        assert_eq!(d.verdict, Verdict::TooFewEpochs);
        assert!(d.reason.contains("not finite"));
    }

    #[test]
    fn noise_on_a_flat_curve_is_not_a_trend() {
        // Validation wobbles by 0.2% of the first loss: below FALLING, not overfitting.
        let train = [1.0, 0.3, 0.1, 0.05, 0.04, 0.04, 0.04, 0.04, 0.04, 0.04];
        let val = [
            1.0, 0.3, 0.1, 0.050, 0.052, 0.051, 0.053, 0.052, 0.054, 0.056,
        ];
        let d = history(&train, Some(&val)).diagnose();
        assert_eq!(d.verdict, Verdict::GoodFit, "{}", d.reason);
    }
}
