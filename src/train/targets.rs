//! What targets say and what they must be: the kind of labels a dataset has (which decides
//! the loss when the user lets it be chosen), the number of classes of integer labels,
//! one-hot targets, and the checks that name the file and line of a bad target.

use std::collections::BTreeSet;

use crate::data::{Matrix, Origin};
use crate::error::{Error, Result};
use crate::nn::{LossFn, Task};

/// A value as a message shows it: `1e30` rather than 31 digits.
fn shown(v: f32) -> String {
    if v.is_finite() && v.abs() >= 1e7 {
        format!("{v:e}")
    } else {
        v.to_string()
    }
}

/// The most classes labels may have for their kind to be [`LabelKind::Classes`]: more than
/// this many distinct integer values are taken for a quantity.
pub const AUTO_MAX_CLASSES: usize = 1000;

/// The largest number of classes a classifier may have: every integer up to 2^24 is exact in
/// f32, which stores the labels.
pub const MAX_CLASSES: usize = 1 << 24;

/// What a column of labels looks like, for choosing a loss.
#[derive(Clone, Debug, PartialEq)]
pub enum LabelKind {
    /// Integers `0..classes`, most of them present: class indices.
    Classes {
        /// The number of classes, the largest label + 1.
        classes: usize,
        /// How many of them occur.
        present: usize,
    },
    /// A quantity: fractional values, or more distinct integers than classes would have.
    Quantity {
        /// Why, with an example.
        why: String,
    },
    /// One value throughout: nothing to learn.
    Constant {
        /// The value.
        value: f32,
    },
    /// Integers, but not class indices `0..K`: negative, or few values spread far apart
    /// (years, prices, codes). Either a quantity or classes to renumber; the data cannot say.
    Ambiguous {
        /// What the labels are, with an example.
        why: String,
    },
}

impl LabelKind {
    /// What the labels are, in a sentence (`the labels are the integers 0 to 9 (10 classes)`).
    pub fn describe(&self) -> String {
        match self {
            LabelKind::Classes { classes, present } => {
                let missing = if present < classes {
                    format!("; {} of them never occur", classes - present)
                } else {
                    String::new()
                };
                format!(
                    "the labels are the integers 0 to {} ({classes} classes{missing})",
                    classes - 1
                )
            }
            LabelKind::Quantity { why } | LabelKind::Ambiguous { why } => why.clone(),
            LabelKind::Constant { value } => format!("every label is {value}"),
        }
    }
}

/// The kind of the labels `y` (`[N, 1]`; a target of several columns is a quantity).
pub fn label_kind(y: &Matrix, origin: &Origin) -> LabelKind {
    if y.cols() != 1 {
        return LabelKind::Quantity {
            why: format!("the targets have {} columns", y.cols()),
        };
    }
    let values = y.data();
    let Some(&first) = values.first() else {
        return LabelKind::Quantity {
            why: "there are no labels".into(),
        };
    };
    if let Some(r) = values.iter().position(|v| v.fract() != 0.0) {
        return LabelKind::Quantity {
            why: format!(
                "the labels have fractional values ({}: {})",
                origin.row(r),
                values[r]
            ),
        };
    }
    // Past 2^24 an f32 no longer holds every integer: neighbouring labels may have merged.
    if let Some(r) = values.iter().position(|v| v.abs() > MAX_CLASSES as f32) {
        return LabelKind::Ambiguous {
            why: format!(
                "the labels include integers as large as {} ({}), past 16777216, where 32-bit floats no longer hold every integer",
                shown(values[r]),
                origin.row(r)
            ),
        };
    }
    let mut distinct = BTreeSet::new();
    for &v in values {
        if distinct.len() > AUTO_MAX_CLASSES {
            break;
        }
        distinct.insert(v as i64);
    }
    if distinct.len() == 1 {
        return LabelKind::Constant { value: first };
    }
    if distinct.len() > AUTO_MAX_CLASSES {
        return LabelKind::Quantity {
            why: format!(
                "the labels take more than {AUTO_MAX_CLASSES} distinct integer values, more than classes would"
            ),
        };
    }
    let (lo, hi) = (
        *distinct.first().expect("two values"),
        *distinct.last().expect("two values"),
    );
    if lo < 0 {
        let r = values
            .iter()
            .position(|&v| v < 0.0)
            .expect("one is negative");
        return LabelKind::Ambiguous {
            why: format!(
                "the labels are integers from {lo} to {hi}, negative ones among them ({}: {}), not class indices 0, 1, 2, ...",
                origin.row(r),
                values[r]
            ),
        };
    }
    // Class indices fill most of 0..=hi; a few values spread far apart are codes or amounts.
    if hi >= AUTO_MAX_CLASSES as i64 || (distinct.len() as i64) * 2 < hi + 1 {
        return LabelKind::Ambiguous {
            why: format!(
                "the labels are {} distinct integers from {lo} to {hi}, not class indices 0, 1, 2, ... (most of 0..{hi} never occur)",
                distinct.len()
            ),
        };
    }
    LabelKind::Classes {
        classes: hi as usize + 1,
        present: distinct.len(),
    }
}

/// The number of classes integer labels `y` (`[N, 1]`) need: the largest + 1, at least 2.
/// Every label must be an integer in `0..MAX_CLASSES`; the first that is not is an error
/// naming its row in `origin`.
pub fn class_count(y: &Matrix, origin: &Origin) -> Result<usize> {
    let mut max = 0.0f32;
    for (r, &v) in y.data().iter().enumerate() {
        if !(v >= 0.0 && v.fract() == 0.0) {
            return Err(origin.error(
                r,
                format!(
                    "label {} is not a class index; classification needs integer labels 0, 1, 2, ...",
                    shown(v)
                ),
            ));
        }
        if v >= MAX_CLASSES as f32 {
            return Err(origin.error(
                r,
                format!(
                    "label {} is too large for a class index: a classifier has at most {MAX_CLASSES} classes",
                    shown(v)
                ),
            ));
        }
        max = max.max(v);
    }
    Ok((max as usize + 1).max(2))
}

/// Targets as `loss` wants them: integer labels `[N, 1]` as one-hot rows of `outputs` for
/// categorical cross-entropy (labels past the last class become zero rows, for
/// [`check_targets`] to report first); anything else as it is.
pub fn targets_for(loss: LossFn, y: Matrix, outputs: usize) -> Matrix {
    if loss.task() != Task::Categorical || y.cols() != 1 {
        return y;
    }
    let mut data = vec![0.0; y.rows() * outputs];
    for r in 0..y.rows() {
        let c = y.row(r)[0];
        if c >= 0.0 && (c as usize) < outputs {
            data[r * outputs + c as usize] = 1.0;
        }
    }
    Matrix::new(y.rows(), outputs, data).expect("sized above")
}

/// Checks `y` suits `task` for a model with `outputs` outputs: labels are integers in range,
/// binary targets in `[0, 1]`, every value finite. The first bad target is an error naming
/// its row as `origin` numbers it (a CSV's line).
pub fn check_targets(y: &Matrix, task: Task, outputs: usize, origin: &Origin) -> Result<()> {
    let whole = |detail: String| {
        Err(Error::Data {
            source_name: origin.source.clone(),
            detail,
        })
    };
    let want_cols = if task == Task::SparseCategorical {
        1
    } else {
        outputs
    };
    if y.cols() != want_cols {
        return whole(match task {
            Task::SparseCategorical => format!(
                "sparse categorical cross-entropy takes one integer label per row, got {} target columns",
                y.cols()
            ),
            Task::Categorical if y.cols() == 1 => format!(
                "categorical cross-entropy takes one-hot targets of {outputs} columns, got integer labels \
                 (1 column): use sparse_categorical_crossentropy for integer labels"
            ),
            _ => format!("the model has {outputs} outputs but the targets have {} columns", y.cols()),
        });
    }
    if let Some((r, c)) = y.first_non_finite() {
        return Err(origin.error(
            r,
            format!(
                "target column {c} is {}; targets must be finite",
                y.row(r)[c]
            ),
        ));
    }
    match task {
        Task::SparseCategorical => {
            if let Some(r) = (0..y.rows()).find(|&r| {
                let v = y.row(r)[0];
                v < 0.0 || v.fract() != 0.0 || v as usize >= outputs
            }) {
                return Err(origin.error(
                    r,
                    format!(
                        "label {}, but labels must be integers in 0..{} for a model with {outputs} output units",
                        shown(y.row(r)[0]),
                        outputs - 1
                    ),
                ));
            }
        }
        Task::Binary => {
            if let Some(i) = y.data().iter().position(|v| !(0.0..=1.0).contains(v)) {
                return Err(origin.error(
                    i / y.cols(),
                    format!(
                        "target column {} is {}; binary cross-entropy targets must be in [0, 1]",
                        i % y.cols(),
                        shown(y.data()[i])
                    ),
                ));
            }
        }
        Task::Categorical | Task::Regression => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::RowUnit;

    fn kind(labels: &[f32]) -> LabelKind {
        let y = Matrix::new(labels.len(), 1, labels.to_vec()).unwrap();
        let origin = Origin {
            numbers: Some((0..labels.len()).map(|r| r + 2).collect()),
            ..Origin::new("f.csv", RowUnit::Line)
        };
        label_kind(&y, &origin)
    }

    #[test]
    fn label_kinds() {
        assert_eq!(
            kind(&[0.0, 1.0, 2.0, 1.0]),
            LabelKind::Classes {
                classes: 3,
                present: 3
            }
        );
        // 1-based classes: class 0 never occurs, and that is said.
        let k = kind(&[1.0, 2.0, 3.0]);
        assert!(k.describe().contains("1 of them never occur"), "{k:?}");
        assert!(
            matches!(kind(&[0.5, 1.0]), LabelKind::Quantity { why } if why.contains("line 2: 0.5"))
        );
        assert_eq!(kind(&[0.0; 5]), LabelKind::Constant { value: 0.0 });
        // Prices, years and ±1 labels are not class indices.
        for labels in [
            &[250_000.0, 300_000.0, 350_000.0][..],
            &[1990.0, 2005.0],
            &[-1.0, 1.0],
        ] {
            assert!(
                matches!(kind(labels), LabelKind::Ambiguous { .. }),
                "{labels:?}"
            );
        }
        let many: Vec<f32> = (0..2000).map(|i| (i * 7) as f32).collect();
        assert!(matches!(kind(&many), LabelKind::Quantity { .. }));
        // 1e30 is an "integer" in f32; no class count overflows.
        assert!(matches!(kind(&[0.0, 1e30]), LabelKind::Ambiguous { .. }));
    }

    #[test]
    fn class_counts_name_the_line_of_a_bad_label() {
        let origin = Origin {
            numbers: Some(vec![2, 3, 40]),
            ..Origin::new("f.csv", RowUnit::Line)
        };
        let y = |v: f32| Matrix::new(3, 1, vec![0.0, 1.0, v]).unwrap();
        assert_eq!(class_count(&y(4.0), &origin).unwrap(), 5);
        let e = class_count(&y(1.5), &origin).unwrap_err().to_string();
        assert!(e.starts_with("f.csv: line 40: label 1.5"), "{e}");
        let e = class_count(&y(3e9), &origin).unwrap_err().to_string();
        assert!(e.contains("too large for a class index"), "{e}");
    }
}
