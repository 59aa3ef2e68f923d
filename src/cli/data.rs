//! The data a subcommand reads, and what the labels decide: the loss, the number of classes,
//! the targets.

use std::path::Path;

use wgtrain::backend::Optimizer;
use wgtrain::data::{self, csv::LabelColumn, idx, Matrix};
use wgtrain::nn::{LossFn, Task};
use wgtrain::{Error, Result};

/// Labelled data as a source gives it.
pub(crate) struct Labelled {
    pub(crate) x: Matrix,
    pub(crate) y: Matrix,
    /// The source's own test split (MNIST's t10k), if it has one.
    pub(crate) test: Option<(Matrix, Matrix)>,
    /// What it is, for reports.
    pub(crate) source: String,
}

/// Labelled data from a path: an MNIST folder gives its train and t10k splits; a CSV file
/// gives one table.
pub(crate) fn load_labelled(path: &Path, label: &Option<String>) -> Result<Labelled> {
    if path.is_dir() {
        let (x, y, xt, yt) = idx::load_mnist_dir(path)?;
        let source = format!("{} (IDX, pixels scaled to [0, 1])", path.display());
        return Ok(Labelled {
            x,
            y,
            test: Some((xt, yt)),
            source,
        });
    }
    let label = label
        .as_deref()
        .map_or(LabelColumn::Last, LabelColumn::parse);
    let d = data::csv::load(path, &label)?;
    Ok(Labelled {
        x: d.x,
        y: d.y,
        test: None,
        source: path.display().to_string(),
    })
}

/// The loss for these labels: `auto` means sparse categorical cross-entropy when every label
/// is a non-negative integer, mean squared error otherwise. Cross-entropies train from logits.
pub(crate) fn choose_loss(name: &str, y: &Matrix) -> Result<LossFn> {
    if name != "auto" {
        return LossFn::from_name(name, true);
    }
    let integers = y.data().iter().all(|&v| v >= 0.0 && v.fract() == 0.0);
    Ok(if integers && y.data().iter().any(|&v| v >= 1.0) {
        LossFn::SparseCategoricalCrossentropy { from_logits: true }
    } else {
        LossFn::MeanSquaredError
    })
}

pub(crate) fn optimizer(name: &str, lr: f32) -> Result<Optimizer> {
    Ok(match name {
        "sgd" => Optimizer::Sgd { lr },
        "momentum" => Optimizer::Momentum {
            lr,
            momentum: 0.9,
            nesterov: false,
        },
        "nesterov" => Optimizer::Momentum {
            lr,
            momentum: 0.9,
            nesterov: true,
        },
        "adam" => Optimizer::adam(lr),
        // Keras' AdamW default weight decay.
        "adamw" => Optimizer::Adam {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-7,
            weight_decay: 0.004,
        },
        _ => {
            return Err(Error::Config(format!(
                "unknown optimizer `{name}`; valid: adam, adamw, sgd, momentum, nesterov"
            )))
        }
    })
}

/// The batch size when none is given: Keras' 32 for small data; 128 from 10,000 samples on,
/// where larger batches train as well (MNIST: 98.0% at 128 against 97.7% at 32, both 5
/// epochs) and run faster.
pub(crate) fn default_batch_size(samples: usize) -> usize {
    if samples >= 10_000 {
        128
    } else {
        32
    }
}

/// Number of classes in integer labels, with a clear error for labels that are not.
pub(crate) fn classes(y: &Matrix) -> Result<usize> {
    if let Some(r) = (0..y.rows()).find(|&r| y.row(r)[0] < 0.0 || y.row(r)[0].fract() != 0.0) {
        return Err(Error::Data {
            source_name: "labels".into(),
            detail: format!(
                "row {r} has label {}; classification needs integer labels 0, 1, 2, ... (use --loss mse for regression)",
                y.row(r)[0]
            ),
        });
    }
    let max = y.data().iter().fold(0.0f32, |m, &v| m.max(v));
    Ok((max as usize + 1).max(2))
}

/// Targets as the loss wants them: one-hot rows of `outputs` for categorical cross-entropy
/// (labels past the last class are left for the model's own check to report).
pub(crate) fn targets_for(loss: LossFn, y: Matrix, outputs: usize) -> Matrix {
    if loss.task() != Task::Categorical || y.cols() != 1 {
        return y;
    }
    let mut data = vec![0.0; y.rows() * outputs];
    for r in 0..y.rows() {
        let c = y.row(r)[0] as usize;
        if c < outputs {
            data[r * outputs + c] = 1.0;
        }
    }
    Matrix::new(y.rows(), outputs, data).expect("sized above")
}
