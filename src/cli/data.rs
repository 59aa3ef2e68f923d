//! The data a subcommand reads, and what the labels decide: the loss (and why), the number of
//! classes, the targets. Every message about a row names its file and line.

use std::path::{Path, PathBuf};

use wgtrain::data::{self, csv::LabelColumn, idx, Matrix, Origin, RowUnit};
use wgtrain::error::quote;
use wgtrain::nn::{LossFn, Task};
use wgtrain::train::targets::{check_targets, class_count, label_kind, LabelKind};
use wgtrain::{Error, Result};

use super::args::flag_error;

/// Labelled data as a source gives it.
pub(crate) struct Labelled {
    pub(crate) x: Matrix,
    pub(crate) y: Matrix,
    /// Where each row came from.
    pub(crate) origin: Origin,
    /// The source's own test split (MNIST's t10k) and where its rows came from, if it has one.
    pub(crate) test: Option<(Matrix, Matrix, Origin)>,
    /// What it is, for reports.
    pub(crate) source: String,
    /// The label column's name, for messages (empty for IDX labels).
    pub(crate) label_name: String,
    /// The images' `[height, width, channels]`, where the source says (IDX files, the
    /// built-in digits); `--input-shape` gives or overrides it.
    pub(crate) image: Option<[usize; 3]>,
}

/// The files `path` stands for, as inputs an output must not replace: an MNIST folder's
/// files, or the file itself.
pub(crate) fn input_files(path: &Path) -> Vec<PathBuf> {
    if path.is_dir() {
        idx::mnist_files(path)
    } else {
        vec![path.to_path_buf()]
    }
}

/// The built-in digits, raw 0..16 pixels (the model scales them, and saves the scaling, so
/// that evaluate and predict on data/digits.csv see what training saw).
pub(crate) fn builtin_digits() -> Labelled {
    let (x, y) = data::digits_unscaled();
    let source = "built-in digits (8×8, pixels scaled to [0, 1] by the model)".to_string();
    Labelled {
        x,
        y,
        // data/digits.csv: a header, then row r at line r + 2.
        origin: Origin {
            numbers: Some((0..1797).map(|r| r + 2).collect()),
            ..Origin::new("built-in digits (data/digits.csv)", RowUnit::Line)
        },
        test: None,
        source,
        label_name: "label".into(),
        image: Some([8, 8, 1]),
    }
}

/// Labelled data from `path` (named by `flag`): an MNIST folder gives its train and t10k
/// splits; a CSV file gives one table, its label in `label` (default: the last column).
pub(crate) fn load_labelled(flag: &str, path: &Path, label: &Option<String>) -> Result<Labelled> {
    if path.is_dir() {
        if let Some(l) = label {
            return Err(flag_error(
                "--label-column",
                l,
                &format!(
                    "{flag} {} is an MNIST folder, whose labels are files of their own; drop --label-column",
                    path.display()
                ),
            ));
        }
        let ((x, y, xt, yt), image) = idx::load_mnist_images(path)?;
        let labels = |split: &str| {
            let stem = format!("{split}-labels-idx1-ubyte");
            let file = idx::mnist_files(path)
                .into_iter()
                .find(|p| {
                    p.file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with(&stem))
                })
                .unwrap_or_else(|| path.join(stem));
            Origin::new(&file.display().to_string(), RowUnit::Item)
        };
        return Ok(Labelled {
            x,
            y,
            origin: labels("train"),
            test: Some((xt, yt, labels("t10k"))),
            source: format!("{} (IDX, pixels scaled to [0, 1])", path.display()),
            label_name: String::new(),
            image,
        });
    }
    let label = label
        .as_deref()
        .map_or(LabelColumn::Last, LabelColumn::parse);
    let d = data::csv::load(path, &label)?;
    Ok(Labelled {
        x: d.x,
        y: d.y,
        origin: d.origin,
        test: None,
        source: path.display().to_string(),
        label_name: d.label_name,
        image: None,
    })
}

/// The loss `--loss` names, or for `auto` the one the labels call for, with why. `auto`
/// refuses labels that are all one value, and integers that are not class indices (which may
/// be a quantity or classes to renumber), naming the flags that decide. Cross-entropies train
/// from logits.
pub(crate) fn choose_loss(name: &str, data: &Labelled) -> Result<(LossFn, String)> {
    let columns = data.y.cols();
    if name != "auto" {
        let loss = LossFn::from_name(name, true)?;
        if columns > 1 && loss.task() == Task::SparseCategorical {
            return Err(flag_error(
                "--loss",
                name,
                &format!(
                    "reads one integer label per row, but --label-column names {columns} columns ({}); for \
                     several yes/no labels use binary_crossentropy",
                    data.label_name
                ),
            ));
        }
        return Ok((loss, "given by --loss".into()));
    }
    if columns > 1 {
        let yes_no = data.y.data().iter().all(|&v| v == 0.0 || v == 1.0);
        return Ok(if yes_no {
            (
                LossFn::BinaryCrossentropy { from_logits: true },
                format!(
                    "--loss auto: {columns} label columns ({}) of 0s and 1s, so multi-label: binary cross-entropy \
                     per output",
                    data.label_name
                ),
            )
        } else {
            (
                LossFn::MeanSquaredError,
                format!(
                    "--loss auto: {columns} label columns ({}) of numbers, so regression with one output each",
                    data.label_name
                ),
            )
        });
    }
    let column = if data.label_name.is_empty() {
        String::new()
    } else {
        format!(" (column `{}`)", quote(&data.label_name))
    };
    let kind = label_kind(&data.y, &data.origin);
    let why = kind.describe();
    match kind {
        LabelKind::Classes { .. } => Ok((
            LossFn::SparseCategoricalCrossentropy { from_logits: true },
            format!("--loss auto: {why}"),
        )),
        LabelKind::Quantity { .. } => Ok((
            LossFn::MeanSquaredError,
            format!("--loss auto: {why}, so regression"),
        )),
        LabelKind::Constant { .. } => Err(Error::Data {
            source_name: data.origin.source.clone(),
            detail: format!(
                "{why}{column}: there is nothing to learn. Is the label in another column? (--label-column NAME|INDEX; the default is the last)"
            ),
        }),
        LabelKind::Ambiguous { .. } => Err(Error::Data {
            source_name: data.origin.source.clone(),
            detail: format!(
                "--loss auto cannot tell what these labels are: {why}{column}. For a quantity pass --loss mse (or mae, \
                 huber); for classes, number them 0, 1, 2, ... and pass --loss sparse_categorical_crossentropy"
            ),
        }),
    }
}

/// The number of outputs `loss` needs for these labels: one per class for the
/// cross-entropies, counted from every labelled row given (each an integer class index, or an
/// error naming its file and line), else the target's width. Binary targets are checked to be
/// in [0, 1] here too.
pub(crate) fn outputs_for(loss: LossFn, sets: &[(&Matrix, &Origin)]) -> Result<usize> {
    match loss.task() {
        Task::SparseCategorical | Task::Categorical => {
            let mut classes = 2;
            for (y, origin) in sets {
                classes = classes.max(class_count(y, origin)?);
            }
            Ok(classes)
        }
        Task::Binary => {
            let cols = sets[0].0.cols();
            for (y, origin) in sets {
                check_targets(y, Task::Binary, cols, origin)?;
            }
            Ok(cols)
        }
        Task::Regression => Ok(sets[0].0.cols()),
    }
}

/// The first label of `test` that never occurs in `train`, for a warning: the model cannot
/// learn a class it never sees.
pub(crate) fn unseen_label(train: &Matrix, test: &Matrix, origin: &Origin) -> Option<String> {
    let seen: std::collections::BTreeSet<u32> = train.data().iter().map(|v| v.to_bits()).collect();
    let r = test
        .data()
        .iter()
        .position(|v| !seen.contains(&v.to_bits()))?;
    Some(format!(
        "{} {}: label {} never occurs in the training rows; the model cannot learn it",
        origin.source,
        origin.row(r),
        test.data()[r]
    ))
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
