//! Metrics, Keras' families: what each accumulates on the device during an epoch (one
//! reduction per batch into a slot of one accumulator tensor) and how the host turns the
//! sums into the value once per epoch.

mod plan;

use plan::Kind;
pub use plan::{auc_from_histogram, MetricPlan, LOSS_SLOT};

use crate::backend::PointError;
use crate::error::{Error, Result};
use crate::nn::Task;

/// A metric, as Keras names it.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Keras' `"accuracy"`: binary, categorical or sparse categorical, chosen from the loss.
    Accuracy,
    /// Fraction of outputs with `(p > 0.5) == y`.
    BinaryAccuracy,
    /// Fraction of rows with `argmax(p) == argmax(y)` (one-hot targets).
    CategoricalAccuracy,
    /// Fraction of rows with `argmax(p) == y` (integer labels).
    SparseCategoricalAccuracy,
    /// Fraction of rows whose true class is among the k highest scores.
    TopKCategoricalAccuracy {
        /// k (Keras' default 5).
        k: usize,
    },
    /// `TP / (TP + FP)` of `p > 0.5`, over every output.
    Precision,
    /// `TP / (TP + FN)` of `p > 0.5`, over every output.
    Recall,
    /// Area under the ROC curve, from a 200-threshold histogram (Keras' AUC defaults).
    Auc,
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
}

/// The names [`Metric::from_name`] accepts.
pub const METRIC_NAMES: &str =
    "accuracy (acc), binary_accuracy, categorical_accuracy, sparse_categorical_accuracy, \
     top_k_categorical_accuracy, precision, recall, auc, mse, rmse, mae, mape, msle";

impl Metric {
    /// Parses a Keras name or its short form.
    pub fn from_name(name: &str) -> Result<Metric> {
        Ok(match name {
            "accuracy" | "acc" => Metric::Accuracy,
            "binary_accuracy" => Metric::BinaryAccuracy,
            "categorical_accuracy" => Metric::CategoricalAccuracy,
            "sparse_categorical_accuracy" => Metric::SparseCategoricalAccuracy,
            "top_k_categorical_accuracy" | "sparse_top_k_categorical_accuracy" => {
                Metric::TopKCategoricalAccuracy { k: 5 }
            }
            "precision" => Metric::Precision,
            "recall" => Metric::Recall,
            "auc" => Metric::Auc,
            "mse" | "mean_squared_error" => Metric::MeanSquaredError,
            "rmse" | "root_mean_squared_error" => Metric::RootMeanSquaredError,
            "mae" | "mean_absolute_error" => Metric::MeanAbsoluteError,
            "mape" | "mean_absolute_percentage_error" => Metric::MeanAbsolutePercentageError,
            "msle" | "mean_squared_logarithmic_error" => Metric::MeanSquaredLogarithmicError,
            _ => {
                return Err(Error::Config(format!(
                    "unknown metric `{name}`; valid: {METRIC_NAMES}"
                )))
            }
        })
    }

    /// The name under which the metric appears in logs and History.
    pub fn name(self) -> &'static str {
        match self {
            Metric::Accuracy => "accuracy",
            Metric::BinaryAccuracy => "binary_accuracy",
            Metric::CategoricalAccuracy => "categorical_accuracy",
            Metric::SparseCategoricalAccuracy => "sparse_categorical_accuracy",
            Metric::TopKCategoricalAccuracy { .. } => "top_k_categorical_accuracy",
            Metric::Precision => "precision",
            Metric::Recall => "recall",
            Metric::Auc => "auc",
            Metric::MeanSquaredError => "mean_squared_error",
            Metric::RootMeanSquaredError => "root_mean_squared_error",
            Metric::MeanAbsoluteError => "mean_absolute_error",
            Metric::MeanAbsolutePercentageError => "mean_absolute_percentage_error",
            Metric::MeanSquaredLogarithmicError => "mean_squared_logarithmic_error",
        }
    }

    /// Higher is better (accuracies, precision, recall, AUC); for the errors lower is.
    pub fn higher_is_better(self) -> bool {
        !matches!(self.kind(Task::Regression), Ok(Kind::Error(..)))
    }

    /// What this metric computes for a model learning `task`.
    fn kind(self, task: Task) -> Result<Kind> {
        let needs_classes = |what: &str| {
            Error::Config(format!(
                "{what} needs a classification loss (categorical or sparse categorical cross-entropy); \
                 use binary_accuracy or precision/recall for yes/no outputs"
            ))
        };
        Ok(match self {
            Metric::Accuracy => match task {
                Task::Binary => Kind::Threshold,
                Task::Categorical | Task::SparseCategorical => Kind::Argmax,
                Task::Regression => {
                    return Err(Error::Config(
                        "accuracy has no meaning for a regression loss (mse, mae, huber); use mae, mse, rmse, mape or msle"
                            .into(),
                    ))
                }
            },
            Metric::BinaryAccuracy => Kind::Threshold,
            Metric::CategoricalAccuracy | Metric::SparseCategoricalAccuracy => match task {
                Task::Categorical | Task::SparseCategorical => Kind::Argmax,
                _ => return Err(needs_classes(self.name())),
            },
            Metric::TopKCategoricalAccuracy { k } => match task {
                Task::Categorical | Task::SparseCategorical if k >= 1 => Kind::TopK(k),
                Task::Categorical | Task::SparseCategorical => {
                    return Err(Error::Config("top_k_categorical_accuracy needs k ≥ 1".into()))
                }
                _ => return Err(needs_classes(self.name())),
            },
            Metric::Precision => Kind::Precision,
            Metric::Recall => Kind::Recall,
            Metric::Auc => Kind::Auc,
            Metric::MeanSquaredError => Kind::Error(PointError::Squared, false),
            Metric::RootMeanSquaredError => Kind::Error(PointError::Squared, true),
            Metric::MeanAbsoluteError => Kind::Error(PointError::Absolute, false),
            Metric::MeanAbsolutePercentageError => Kind::Error(PointError::AbsolutePercentage, false),
            Metric::MeanSquaredLogarithmicError => Kind::Error(PointError::SquaredLog, false),
        })
    }
}
