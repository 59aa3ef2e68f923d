//! The losses a user compiles with (Keras' names and flags), and how each pairs with the last
//! layer's activation: which backend loss runs, on which tensor, and what `predict` returns.

use crate::backend::{Activation, Loss};
use crate::error::{Error, Result};

/// A loss, as Keras names it.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LossFn {
    /// Mean squared error: regression with a linear output.
    MeanSquaredError,
    /// Mean absolute error.
    MeanAbsoluteError,
    /// Huber loss with threshold δ (Keras' default 1.0).
    Huber {
        /// Where the loss turns from quadratic to linear.
        delta: f32,
    },
    /// Binary cross-entropy per output: binary and multi-label classification. With
    /// `from_logits` the last layer is linear and the loss applies the sigmoid itself (the
    /// stable form); without it the last layer is a sigmoid.
    BinaryCrossentropy {
        /// The model outputs raw scores (logits), not probabilities.
        from_logits: bool,
    },
    /// Softmax cross-entropy with one-hot (or probability) targets `[N, C]`.
    CategoricalCrossentropy {
        /// The model outputs logits; recommended, with a linear last layer.
        from_logits: bool,
    },
    /// Softmax cross-entropy with integer labels `[N, 1]`.
    SparseCategoricalCrossentropy {
        /// The model outputs logits; recommended, with a linear last layer.
        from_logits: bool,
    },
}

/// What the model is learning, which decides what `"accuracy"` means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Task {
    /// Real-valued targets.
    Regression,
    /// Yes/no per output (binary or multi-label): targets in `[0, 1]`.
    Binary,
    /// One class of C, one-hot targets `[N, C]`.
    Categorical,
    /// One class of C, integer labels `[N, 1]`.
    SparseCategorical,
}

/// How a compiled model computes its loss and its predictions.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Head {
    /// The backend loss.
    pub loss: Loss,
    /// The loss reads the last layer's pre-activation `z` (softmax or sigmoid folded into a
    /// loss computed from logits, for stability) instead of its output `a`.
    pub on_logits: bool,
    /// Applied to the last layer's output by `predict` (softmax or sigmoid for a model trained
    /// from logits; linear otherwise).
    pub output: Activation,
    /// The task.
    pub task: Task,
}

impl LossFn {
    /// Parses a Keras name. `from_logits` applies to the cross-entropies.
    pub fn from_name(name: &str, from_logits: bool) -> Result<LossFn> {
        Ok(match name {
            "mse" | "mean_squared_error" => LossFn::MeanSquaredError,
            "mae" | "mean_absolute_error" => LossFn::MeanAbsoluteError,
            "huber" => LossFn::Huber { delta: 1.0 },
            "binary_crossentropy" | "bce" => LossFn::BinaryCrossentropy { from_logits },
            "categorical_crossentropy" => LossFn::CategoricalCrossentropy { from_logits },
            "sparse_categorical_crossentropy" => LossFn::SparseCategoricalCrossentropy { from_logits },
            _ => {
                return Err(Error::Config(format!(
                    "unknown loss `{name}`; valid: mse (mean_squared_error), mae (mean_absolute_error), huber, \
                     binary_crossentropy, categorical_crossentropy, sparse_categorical_crossentropy"
                )))
            }
        })
    }

    /// Keras' name, as it appears in History and JSON.
    pub fn name(self) -> &'static str {
        match self {
            LossFn::MeanSquaredError => "mean_squared_error",
            LossFn::MeanAbsoluteError => "mean_absolute_error",
            LossFn::Huber { .. } => "huber",
            LossFn::BinaryCrossentropy { .. } => "binary_crossentropy",
            LossFn::CategoricalCrossentropy { .. } => "categorical_crossentropy",
            LossFn::SparseCategoricalCrossentropy { .. } => "sparse_categorical_crossentropy",
        }
    }

    /// The task this loss implies.
    pub fn task(self) -> Task {
        match self {
            LossFn::MeanSquaredError | LossFn::MeanAbsoluteError | LossFn::Huber { .. } => {
                Task::Regression
            }
            LossFn::BinaryCrossentropy { .. } => Task::Binary,
            LossFn::CategoricalCrossentropy { .. } => Task::Categorical,
            LossFn::SparseCategoricalCrossentropy { .. } => Task::SparseCategorical,
        }
    }

    /// Pairs this loss with a last layer of `units` outputs and activation `last`. A pairing
    /// that cannot train is an error saying what to do; a doubtful one returns a warning.
    pub fn head(self, last: Activation, units: usize) -> Result<(Head, Option<String>)> {
        let task = self.task();
        let name = self.name();
        let head = |loss, on_logits, output| Head {
            loss,
            on_logits,
            output,
            task,
        };
        let err = |msg: String| Err(Error::Config(msg));
        match self {
            LossFn::MeanSquaredError => Ok((head(Loss::MeanSquaredError, false, Activation::Linear), None)),
            LossFn::MeanAbsoluteError => Ok((head(Loss::MeanAbsoluteError, false, Activation::Linear), None)),
            LossFn::Huber { delta } if delta > 0.0 => Ok((head(Loss::Huber { delta }, false, Activation::Linear), None)),
            LossFn::Huber { delta } => err(format!("huber's delta must be > 0, got {delta}")),

            LossFn::CategoricalCrossentropy { from_logits } | LossFn::SparseCategoricalCrossentropy { from_logits } => {
                let loss = if task == Task::Categorical { Loss::SoftmaxCrossEntropy } else { Loss::SparseSoftmaxCrossEntropy };
                if units < 2 {
                    return err(format!(
                        "{name} needs at least 2 output units (one per class), the last layer has {units}: with one \
                         output the softmax is always 1 and nothing is learned. For a yes/no target use one sigmoid \
                         unit with binary_crossentropy"
                    ));
                }
                match (from_logits, last) {
                    (true, Activation::Linear) => Ok((head(loss, false, Activation::Softmax), None)),
                    (true, Activation::Softmax) => err(format!(
                        "the last layer applies softmax and {name}(from_logits=true) applies it again: use a linear \
                         last layer (recommended), or from_logits=false"
                    )),
                    (true, other) => Ok((
                        head(loss, false, Activation::Softmax),
                        Some(format!(
                            "{name}(from_logits=true) expects raw scores, but the last layer applies {}; a linear last \
                             layer is usual",
                            other.name()
                        )),
                    )),
                    // Softmax then cross-entropy is computed as cross-entropy from the logits z:
                    // the same value and gradient, without log(0).
                    (false, Activation::Softmax) => Ok((head(loss, true, Activation::Linear), None)),
                    (false, other) => err(format!(
                        "{name}(from_logits=false) expects softmax probabilities, but the last layer applies {}: use a \
                         linear last layer with from_logits=true (recommended), or a softmax last layer",
                        other.name()
                    )),
                }
            }

            LossFn::BinaryCrossentropy { from_logits } => match (from_logits, last) {
                (true, Activation::Linear) => Ok((head(Loss::BinaryCrossEntropyFromLogits, false, Activation::Sigmoid), None)),
                (true, Activation::Sigmoid) => err(
                    "the last layer applies sigmoid and binary_crossentropy(from_logits=true) applies it again: use a \
                     linear last layer, or from_logits=false"
                        .into(),
                ),
                (true, other) => Ok((
                    head(Loss::BinaryCrossEntropyFromLogits, false, Activation::Sigmoid),
                    Some(format!(
                        "binary_crossentropy(from_logits=true) expects raw scores, but the last layer applies {}",
                        other.name()
                    )),
                )),
                // Sigmoid then BCE is computed from the logits z in the stable form.
                (false, Activation::Sigmoid) => Ok((head(Loss::BinaryCrossEntropyFromLogits, true, Activation::Linear), None)),
                (false, Activation::Softmax) => Ok((
                    head(Loss::BinaryCrossEntropy, false, Activation::Linear),
                    Some("binary_crossentropy on a softmax output: the outputs compete; for independent yes/no outputs \
                          use sigmoid"
                        .into()),
                )),
                (false, other) => err(format!(
                    "binary_crossentropy(from_logits=false) expects probabilities in [0, 1], but the last layer applies \
                     {}: use a sigmoid last layer, or a linear one with from_logits=true",
                    other.name()
                )),
            },
        }
    }
}
