//! Metrics, Keras' families: what each accumulates on the device during an epoch (one
//! reduction per batch into a slot of one accumulator tensor) and how the host turns the
//! sums into the value once per epoch.
//!
//! A metric is written as Keras names it, optionally with its one argument after a colon:
//! `precision`, `precision:0.3` (a threshold), `top_k_categorical_accuracy:3` (k),
//! `precision_at_recall:0.9` (the recall to reach). [`Metric::from_name`] parses that form and
//! [`Metric::spec`] writes it; checkpoints store it.

mod plan;

use plan::Kind;
pub use plan::{auc_from_histogram, MetricPlan, Outputs, LOSS_SLOT};

use crate::backend::PointError;
use crate::error::{Error, Result};
use crate::nn::Task;

/// The decision threshold of yes/no outputs when neither the metric nor the model names one
/// (Keras' 0.5).
pub const DEFAULT_THRESHOLD: f32 = 0.5;

/// A metric, as Keras names it. A `threshold` of `None` is the model's (see
/// [`crate::train::Compile::threshold`], default [`DEFAULT_THRESHOLD`]).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(into = "String", try_from = "SpecOrLegacy")]
pub enum Metric {
    /// Keras' `"accuracy"`: binary (at the model's threshold), categorical or sparse
    /// categorical, chosen from the loss.
    Accuracy,
    /// Fraction of outputs with `(p > threshold) == y`.
    BinaryAccuracy {
        /// The decision threshold.
        threshold: Option<f32>,
    },
    /// Fraction of rows with `argmax(p) == argmax(y)` (one-hot targets).
    CategoricalAccuracy,
    /// Fraction of rows with `argmax(p) == y` (integer labels).
    SparseCategoricalAccuracy,
    /// Fraction of rows whose true class (one-hot targets) is among the k highest scores.
    TopKCategoricalAccuracy {
        /// k (Keras' default 5).
        k: usize,
    },
    /// Fraction of rows whose true class (an integer label) is among the k highest scores.
    SparseTopKCategoricalAccuracy {
        /// k (Keras' default 5).
        k: usize,
    },
    /// `TP / (TP + FP)` of `p > threshold`, over every output (0 when nothing is predicted
    /// positive).
    Precision {
        /// The decision threshold.
        threshold: Option<f32>,
    },
    /// `TP / (TP + FN)` of `p > threshold`, over every output (0 with no positives).
    Recall {
        /// The decision threshold.
        threshold: Option<f32>,
    },
    /// The count of outputs with `p > threshold` and `y != 0`.
    TruePositives {
        /// The decision threshold.
        threshold: Option<f32>,
    },
    /// The count of outputs with `p <= threshold` and `y == 0`.
    TrueNegatives {
        /// The decision threshold.
        threshold: Option<f32>,
    },
    /// The count of outputs with `p > threshold` and `y == 0`.
    FalsePositives {
        /// The decision threshold.
        threshold: Option<f32>,
    },
    /// The count of outputs with `p <= threshold` and `y != 0`.
    FalseNegatives {
        /// The decision threshold.
        threshold: Option<f32>,
    },
    /// The F1 score `2 TP / (2 TP + FP + FN)` of each class, averaged over the classes
    /// (Keras' `F1Score(average="macro")`; Keras' default `average=None` returns one value per
    /// class, where a History holds one number). A class is predicted where its score is above
    /// the threshold; with none, on a softmax model, where it is the row's argmax (Keras'
    /// `threshold=None`), and on yes/no outputs above the model's threshold.
    F1Score {
        /// The decision threshold, if any.
        threshold: Option<f32>,
    },
    /// Area under the ROC curve, from a 200-threshold histogram (Keras' AUC defaults).
    Auc,
    /// The best precision at a threshold whose recall is at least `recall`, searched over the
    /// AUC's 200 thresholds (0 when none reaches it).
    PrecisionAtRecall {
        /// The recall to reach, in `[0, 1]`.
        recall: f32,
    },
    /// The best sensitivity (recall) at a threshold whose specificity `TN / (TN + FP)` is at
    /// least `specificity`, over the AUC's 200 thresholds.
    SensitivityAtSpecificity {
        /// The specificity to reach, in `[0, 1]`.
        specificity: f32,
    },
    /// The best specificity at a threshold whose sensitivity is at least `sensitivity`, over
    /// the AUC's 200 thresholds.
    SpecificityAtSensitivity {
        /// The sensitivity to reach, in `[0, 1]`.
        sensitivity: f32,
    },
    /// Mean of `(p - y)²`.
    MeanSquaredError,
    /// Square root of the epoch's mean squared error.
    RootMeanSquaredError,
    /// Mean of `|p - y|`.
    MeanAbsoluteError,
    /// Mean of `100 |y - p| / max(|y|, ε)`.
    MeanAbsolutePercentageError,
    /// Mean of `(ln(1 + p) - ln(1 + y))²`.
    MeanSquaredLogarithmicError,
    /// Mean over rows of `Σ_c y ln(y / p)`, both clipped to `[ε, 1]`.
    KlDivergence,
    /// Mean of `p - y ln(p + ε)`.
    Poisson,
    /// Mean binary cross-entropy per output: from the logits when the model outputs
    /// sigmoid probabilities from logits, else of the probabilities, clipped.
    BinaryCrossentropy,
    /// Mean categorical cross-entropy per row, one-hot targets: from the logits of a softmax
    /// model, else of the probabilities (normalised per row and clipped).
    CategoricalCrossentropy,
    /// The same with integer labels.
    SparseCategoricalCrossentropy,
}

/// The names [`Metric::from_name`] accepts, and the argument each takes after a colon.
pub const METRIC_NAMES: &str = "accuracy (acc), binary_accuracy[:threshold], categorical_accuracy, \
     sparse_categorical_accuracy, top_k_categorical_accuracy[:k], sparse_top_k_categorical_accuracy[:k], \
     precision[:threshold], recall[:threshold], true_positives[:threshold], true_negatives[:threshold], \
     false_positives[:threshold], false_negatives[:threshold], f1_score[:threshold], auc, \
     precision_at_recall:recall, sensitivity_at_specificity:specificity, \
     specificity_at_sensitivity:sensitivity, mse, rmse, mae, mape, msle, kl_divergence (kld), poisson, \
     binary_crossentropy, categorical_crossentropy, sparse_categorical_crossentropy";

/// Keras' default k of the top-k accuracies.
const DEFAULT_K: usize = 5;

/// What a metric's argument is.
#[derive(Clone, Copy)]
enum Arg {
    None,
    Threshold,
    K,
    /// A rate in `[0, 1]` that the metric needs, named.
    Rate(&'static str),
}

impl Metric {
    /// Parses a Keras name or its short form, with its argument after a colon where it takes
    /// one: `precision:0.3`, `top_k_categorical_accuracy:3`, `precision_at_recall:0.9`.
    pub fn from_name(spec: &str) -> Result<Metric> {
        let (name, value) = match spec.split_once(':') {
            Some((n, v)) => (n.trim(), Some(v.trim())),
            None => (spec.trim(), None),
        };
        Metric::by_name(name)
            .ok_or_else(|| {
                Error::Config(format!("unknown metric `{name}`; valid: {METRIC_NAMES}"))
            })?
            .with_arg(value)
    }

    /// The metric a name (or short form) stands for, before its argument: defaults, and NaN
    /// for the rate an `*_at_*` metric needs.
    fn by_name(name: &str) -> Option<Metric> {
        Some(match name {
            "accuracy" | "acc" => Metric::Accuracy,
            "binary_accuracy" => Metric::BinaryAccuracy { threshold: None },
            "categorical_accuracy" => Metric::CategoricalAccuracy,
            "sparse_categorical_accuracy" => Metric::SparseCategoricalAccuracy,
            "top_k_categorical_accuracy" => Metric::TopKCategoricalAccuracy { k: DEFAULT_K },
            "sparse_top_k_categorical_accuracy" => {
                Metric::SparseTopKCategoricalAccuracy { k: DEFAULT_K }
            }
            "precision" => Metric::Precision { threshold: None },
            "recall" => Metric::Recall { threshold: None },
            "true_positives" => Metric::TruePositives { threshold: None },
            "true_negatives" => Metric::TrueNegatives { threshold: None },
            "false_positives" => Metric::FalsePositives { threshold: None },
            "false_negatives" => Metric::FalseNegatives { threshold: None },
            "f1_score" => Metric::F1Score { threshold: None },
            "auc" => Metric::Auc,
            "precision_at_recall" => Metric::PrecisionAtRecall { recall: f32::NAN },
            "sensitivity_at_specificity" => Metric::SensitivityAtSpecificity {
                specificity: f32::NAN,
            },
            "specificity_at_sensitivity" => Metric::SpecificityAtSensitivity {
                sensitivity: f32::NAN,
            },
            "mse" | "mean_squared_error" => Metric::MeanSquaredError,
            "rmse" | "root_mean_squared_error" => Metric::RootMeanSquaredError,
            "mae" | "mean_absolute_error" => Metric::MeanAbsoluteError,
            "mape" | "mean_absolute_percentage_error" => Metric::MeanAbsolutePercentageError,
            "msle" | "mean_squared_logarithmic_error" => Metric::MeanSquaredLogarithmicError,
            "kl_divergence" | "kld" | "kullback_leibler_divergence" => Metric::KlDivergence,
            "poisson" => Metric::Poisson,
            "binary_crossentropy" => Metric::BinaryCrossentropy,
            "categorical_crossentropy" => Metric::CategoricalCrossentropy,
            "sparse_categorical_crossentropy" => Metric::SparseCategoricalCrossentropy,
            _ => return None,
        })
    }

    /// This metric with the argument of `name:value` applied (none given: the default, or an
    /// error for a metric that needs one).
    fn with_arg(self, value: Option<&str>) -> Result<Metric> {
        let name = self.name();
        let arg = self.arg();
        let bad = |what: String| {
            Error::Config(format!(
                "metric `{name}`: {what}; write it as {}",
                match arg {
                    Arg::None => name.to_string(),
                    Arg::Threshold => format!("{name} or {name}:THRESHOLD (e.g. {name}:0.3)"),
                    Arg::K => format!("{name} or {name}:K (e.g. {name}:3)"),
                    Arg::Rate(r) => format!("{name}:{} (e.g. {name}:0.9)", r.to_uppercase()),
                }
            ))
        };
        let rate = |v: &str| -> Result<f32> {
            match v.parse::<f32>() {
                Ok(x) if (0.0..=1.0).contains(&x) => Ok(x),
                _ => Err(bad(format!("`{v}` is not a number in [0, 1]"))),
            }
        };
        Ok(match (arg, value) {
            (Arg::None, None) | (Arg::Threshold | Arg::K, None) => self,
            (Arg::None, Some(v)) => return Err(bad(format!("it takes no argument, got `{v}`"))),
            (Arg::Rate(r), None) => return Err(bad(format!("it needs the {r} to reach"))),
            (Arg::Threshold, Some(v)) => self.set_threshold(rate(v)?),
            (Arg::K, Some(v)) => match v.parse::<usize>() {
                Ok(k) if k >= 1 => match self {
                    Metric::TopKCategoricalAccuracy { .. } => Metric::TopKCategoricalAccuracy { k },
                    _ => Metric::SparseTopKCategoricalAccuracy { k },
                },
                _ => return Err(bad(format!("k must be a whole number ≥ 1, got `{v}`"))),
            },
            (Arg::Rate(_), Some(v)) => {
                let x = rate(v)?;
                match self {
                    Metric::PrecisionAtRecall { .. } => Metric::PrecisionAtRecall { recall: x },
                    Metric::SensitivityAtSpecificity { .. } => {
                        Metric::SensitivityAtSpecificity { specificity: x }
                    }
                    _ => Metric::SpecificityAtSensitivity { sensitivity: x },
                }
            }
        })
    }

    fn arg(self) -> Arg {
        match self {
            Metric::BinaryAccuracy { .. }
            | Metric::Precision { .. }
            | Metric::Recall { .. }
            | Metric::TruePositives { .. }
            | Metric::TrueNegatives { .. }
            | Metric::FalsePositives { .. }
            | Metric::FalseNegatives { .. }
            | Metric::F1Score { .. } => Arg::Threshold,
            Metric::TopKCategoricalAccuracy { .. }
            | Metric::SparseTopKCategoricalAccuracy { .. } => Arg::K,
            Metric::PrecisionAtRecall { .. } => Arg::Rate("recall"),
            Metric::SensitivityAtSpecificity { .. } => Arg::Rate("specificity"),
            Metric::SpecificityAtSensitivity { .. } => Arg::Rate("sensitivity"),
            _ => Arg::None,
        }
    }

    /// The metric's own threshold, for those that take one.
    pub fn threshold(self) -> Option<f32> {
        match self {
            Metric::BinaryAccuracy { threshold }
            | Metric::Precision { threshold }
            | Metric::Recall { threshold }
            | Metric::TruePositives { threshold }
            | Metric::TrueNegatives { threshold }
            | Metric::FalsePositives { threshold }
            | Metric::FalseNegatives { threshold }
            | Metric::F1Score { threshold } => threshold,
            _ => None,
        }
    }

    fn set_threshold(self, t: f32) -> Metric {
        let threshold = Some(t);
        match self {
            Metric::BinaryAccuracy { .. } => Metric::BinaryAccuracy { threshold },
            Metric::Precision { .. } => Metric::Precision { threshold },
            Metric::Recall { .. } => Metric::Recall { threshold },
            Metric::TruePositives { .. } => Metric::TruePositives { threshold },
            Metric::TrueNegatives { .. } => Metric::TrueNegatives { threshold },
            Metric::FalsePositives { .. } => Metric::FalsePositives { threshold },
            Metric::FalseNegatives { .. } => Metric::FalseNegatives { threshold },
            Metric::F1Score { .. } => Metric::F1Score { threshold },
            other => other,
        }
    }

    /// The metric written as [`Metric::from_name`] reads it: the name, then `:value` where an
    /// argument was given (thresholds) or is part of it (k, the `*_at_*` targets).
    pub fn spec(self) -> String {
        let value = match self {
            Metric::TopKCategoricalAccuracy { k } | Metric::SparseTopKCategoricalAccuracy { k } => {
                Some(k.to_string())
            }
            Metric::PrecisionAtRecall { recall: v }
            | Metric::SensitivityAtSpecificity { specificity: v }
            | Metric::SpecificityAtSensitivity { sensitivity: v } => Some(v.to_string()),
            other => other.threshold().map(|t| t.to_string()),
        };
        match value {
            Some(v) => format!("{}:{v}", self.name()),
            None => self.name().to_string(),
        }
    }

    /// The name under which the metric appears in logs, History and JSON: Keras'.
    pub fn name(self) -> &'static str {
        match self {
            Metric::Accuracy => "accuracy",
            Metric::BinaryAccuracy { .. } => "binary_accuracy",
            Metric::CategoricalAccuracy => "categorical_accuracy",
            Metric::SparseCategoricalAccuracy => "sparse_categorical_accuracy",
            Metric::TopKCategoricalAccuracy { .. } => "top_k_categorical_accuracy",
            Metric::SparseTopKCategoricalAccuracy { .. } => "sparse_top_k_categorical_accuracy",
            Metric::Precision { .. } => "precision",
            Metric::Recall { .. } => "recall",
            Metric::TruePositives { .. } => "true_positives",
            Metric::TrueNegatives { .. } => "true_negatives",
            Metric::FalsePositives { .. } => "false_positives",
            Metric::FalseNegatives { .. } => "false_negatives",
            Metric::F1Score { .. } => "f1_score",
            Metric::Auc => "auc",
            Metric::PrecisionAtRecall { .. } => "precision_at_recall",
            Metric::SensitivityAtSpecificity { .. } => "sensitivity_at_specificity",
            Metric::SpecificityAtSensitivity { .. } => "specificity_at_sensitivity",
            Metric::MeanSquaredError => "mean_squared_error",
            Metric::RootMeanSquaredError => "root_mean_squared_error",
            Metric::MeanAbsoluteError => "mean_absolute_error",
            Metric::MeanAbsolutePercentageError => "mean_absolute_percentage_error",
            Metric::MeanSquaredLogarithmicError => "mean_squared_logarithmic_error",
            Metric::KlDivergence => "kl_divergence",
            Metric::Poisson => "poisson",
            Metric::BinaryCrossentropy => "binary_crossentropy",
            Metric::CategoricalCrossentropy => "categorical_crossentropy",
            Metric::SparseCategoricalCrossentropy => "sparse_categorical_crossentropy",
        }
    }

    /// Higher is better (accuracies, precision, recall, AUC, F1, the true counts); for the
    /// errors, cross-entropies and false counts lower is.
    pub fn higher_is_better(self) -> bool {
        !matches!(
            self,
            Metric::FalsePositives { .. }
                | Metric::FalseNegatives { .. }
                | Metric::MeanSquaredError
                | Metric::RootMeanSquaredError
                | Metric::MeanAbsoluteError
                | Metric::MeanAbsolutePercentageError
                | Metric::MeanSquaredLogarithmicError
                | Metric::KlDivergence
                | Metric::Poisson
                | Metric::BinaryCrossentropy
                | Metric::CategoricalCrossentropy
                | Metric::SparseCategoricalCrossentropy
        )
    }

    /// What this metric computes for a model learning `task`, with `threshold` the model's
    /// decision threshold.
    fn kind(self, task: Task, threshold: f32) -> Result<Kind> {
        use plan::{At, Count, Scale};
        let classes = matches!(task, Task::Categorical | Task::SparseCategorical);
        let needs_classes = |what: &str| {
            Error::Config(format!(
                "{what} needs a classification loss (categorical or sparse categorical cross-entropy); \
                 use binary_accuracy or precision/recall for yes/no outputs"
            ))
        };
        let target_form = |what: &str, sparse: bool, other: &str| {
            let (want, have) = if sparse {
                (
                    "integer labels (sparse_categorical_crossentropy)",
                    "one-hot",
                )
            } else {
                (
                    "one-hot targets (categorical_crossentropy)",
                    "integer-label",
                )
            };
            Error::Config(format!(
                "{what} reads {want}, but this model learns from {have} targets; use {other}"
            ))
        };
        let th = self.threshold().unwrap_or(threshold);
        Ok(match self {
            Metric::Accuracy => match task {
                Task::Binary => Kind::Threshold(threshold),
                Task::Categorical | Task::SparseCategorical => Kind::Argmax,
                Task::Regression => {
                    return Err(Error::Config(
                        "accuracy has no meaning for a regression loss (mse, mae, huber); use mae, mse, rmse, mape or msle"
                            .into(),
                    ))
                }
            },
            Metric::BinaryAccuracy { .. } => Kind::Threshold(th),
            Metric::CategoricalAccuracy | Metric::SparseCategoricalAccuracy if classes => {
                Kind::Argmax
            }
            Metric::CategoricalAccuracy | Metric::SparseCategoricalAccuracy => {
                return Err(needs_classes(self.name()))
            }
            Metric::TopKCategoricalAccuracy { k } => match task {
                Task::Categorical => Kind::TopK(k),
                Task::SparseCategorical => {
                    return Err(target_form(
                        self.name(),
                        false,
                        &format!("sparse_top_k_categorical_accuracy:{k}"),
                    ))
                }
                _ => return Err(needs_classes(self.name())),
            },
            Metric::SparseTopKCategoricalAccuracy { k } => match task {
                Task::SparseCategorical => Kind::TopK(k),
                Task::Categorical => {
                    return Err(target_form(
                        self.name(),
                        true,
                        &format!("top_k_categorical_accuracy:{k}"),
                    ))
                }
                _ => return Err(needs_classes(self.name())),
            },
            Metric::Precision { .. } => Kind::Confusion(th, Count::Precision),
            Metric::Recall { .. } => Kind::Confusion(th, Count::Recall),
            Metric::TruePositives { .. } => Kind::Confusion(th, Count::TruePositives),
            Metric::TrueNegatives { .. } => Kind::Confusion(th, Count::TrueNegatives),
            Metric::FalsePositives { .. } => Kind::Confusion(th, Count::FalsePositives),
            Metric::FalseNegatives { .. } => Kind::Confusion(th, Count::FalseNegatives),
            Metric::F1Score { threshold: own } => match (own, classes) {
                (Some(t), _) => Kind::F1(Some(t)),
                (None, true) => Kind::F1(None),
                (None, false) => Kind::F1(Some(threshold)),
            },
            Metric::Auc => Kind::Auc,
            Metric::PrecisionAtRecall { recall } => Kind::At(At::PrecisionAtRecall, recall),
            Metric::SensitivityAtSpecificity { specificity } => {
                Kind::At(At::SensitivityAtSpecificity, specificity)
            }
            Metric::SpecificityAtSensitivity { sensitivity } => {
                Kind::At(At::SpecificityAtSensitivity, sensitivity)
            }
            Metric::MeanSquaredError => Kind::Error(PointError::Squared, Scale::Elements),
            Metric::RootMeanSquaredError => Kind::Error(PointError::Squared, Scale::Root),
            Metric::MeanAbsoluteError => Kind::Error(PointError::Absolute, Scale::Elements),
            Metric::MeanAbsolutePercentageError => {
                Kind::Error(PointError::AbsolutePercentage, Scale::Elements)
            }
            Metric::MeanSquaredLogarithmicError => {
                Kind::Error(PointError::SquaredLog, Scale::Elements)
            }
            Metric::KlDivergence => Kind::Error(PointError::KlDivergence, Scale::Rows),
            Metric::Poisson => Kind::Error(PointError::Poisson, Scale::Elements),
            Metric::BinaryCrossentropy => Kind::BinaryCrossentropy,
            Metric::CategoricalCrossentropy => match task {
                Task::SparseCategorical => {
                    return Err(target_form(
                        self.name(),
                        false,
                        "sparse_categorical_crossentropy",
                    ))
                }
                _ => Kind::CategoricalCrossentropy,
            },
            Metric::SparseCategoricalCrossentropy => match task {
                Task::SparseCategorical => Kind::CategoricalCrossentropy,
                _ => {
                    return Err(target_form(
                        self.name(),
                        true,
                        "categorical_crossentropy",
                    ))
                }
            },
        })
    }
}

/// Whether higher is better for the metric logged under `name` (`precision_at_recall`, with
/// or without its argument); None for a name that is no metric (the loss).
pub fn higher_is_better(name: &str) -> Option<bool> {
    Metric::by_name(name).map(Metric::higher_is_better)
}

impl std::fmt::Display for Metric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.spec())
    }
}

impl From<Metric> for String {
    fn from(m: Metric) -> String {
        m.spec()
    }
}

/// A metric as a checkpoint stores it: its spec (`"precision:0.3"`), or the map the first
/// checkpoints wrote for top-k (`{"top_k_categorical_accuracy": {"k": 5}}`).
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum SpecOrLegacy {
    Spec(String),
    Legacy(std::collections::BTreeMap<String, LegacyArgs>),
}

#[derive(serde::Deserialize)]
struct LegacyArgs {
    k: usize,
}

impl TryFrom<SpecOrLegacy> for Metric {
    type Error = String;
    fn try_from(m: SpecOrLegacy) -> std::result::Result<Metric, String> {
        match m {
            SpecOrLegacy::Spec(s) => Metric::from_name(&s).map_err(|e| e.to_string()),
            SpecOrLegacy::Legacy(map) => match map.into_iter().next() {
                Some((name, LegacyArgs { k })) if name == "top_k_categorical_accuracy" => {
                    Metric::from_name(&format!("{name}:{k}")).map_err(|e| e.to_string())
                }
                _ => Err("a metric is neither a name nor top_k_categorical_accuracy's map".into()),
            },
        }
    }
}
