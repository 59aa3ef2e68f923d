//! Datasets in host memory: the [`Matrix`] every API takes, the built-in digits set, seeded
//! shuffles and splits, and the CSV reader.

pub mod csv;
pub mod idx;
pub mod synthetic;

use std::sync::atomic::{AtomicU64, Ordering};

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

use crate::error::{Error, Result};

/// A dense, row-major `[rows, cols]` f32 matrix in host memory: a dataset's features, or its
/// targets (`[N, 1]` integer class labels stored as f32, or `[N, C]` values).
///
/// A matrix cannot be changed once made (every method that would returns a new one), so a
/// model can keep a copy on its device and know it by the matrix's [`Matrix::id`].
#[derive(Clone, Debug)]
pub struct Matrix {
    rows: usize,
    cols: usize,
    data: Vec<f32>,
    /// Unique to the contents: a clone shares it, a new matrix gets its own.
    id: u64,
}

impl PartialEq for Matrix {
    fn eq(&self, other: &Matrix) -> bool {
        self.rows == other.rows && self.cols == other.cols && self.data == other.data
    }
}

static NEXT_MATRIX_ID: AtomicU64 = AtomicU64::new(1);

fn matrix(rows: usize, cols: usize, data: Vec<f32>) -> Matrix {
    Matrix {
        rows,
        cols,
        data,
        id: NEXT_MATRIX_ID.fetch_add(1, Ordering::Relaxed),
    }
}

impl Matrix {
    /// A matrix from row-major data; `data.len()` must be `rows * cols`.
    pub fn new(rows: usize, cols: usize, data: Vec<f32>) -> Result<Matrix> {
        if data.len() != rows * cols {
            return Err(Error::Shape {
                op: "Matrix::new",
                detail: format!(
                    "[{rows}, {cols}] needs {} values, got {}",
                    rows * cols,
                    data.len()
                ),
            });
        }
        Ok(matrix(rows, cols, data))
    }

    /// A `[rows.len(), cols]` matrix from rows of equal length.
    pub fn from_rows(rows: &[Vec<f32>]) -> Result<Matrix> {
        let cols = rows.first().map_or(0, Vec::len);
        if let Some(i) = rows.iter().position(|r| r.len() != cols) {
            return Err(Error::Shape {
                op: "Matrix::from_rows",
                detail: format!("row {i} has {} values, row 0 has {cols}", rows[i].len()),
            });
        }
        Matrix::new(rows.len(), cols, rows.concat())
    }

    /// An `[N, 1]` matrix of integer class labels.
    pub fn from_labels(labels: &[usize]) -> Matrix {
        matrix(labels.len(), 1, labels.iter().map(|&l| l as f32).collect())
    }

    /// Number of rows (samples).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns (features or outputs).
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// The values, row-major.
    pub fn data(&self) -> &[f32] {
        &self.data
    }

    /// An id that only this matrix and its clones have (the same values under the same id).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Row `i`.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.cols..(i + 1) * self.cols]
    }

    /// The rows at `indices`, in that order.
    pub fn gather(&self, indices: &[usize]) -> Matrix {
        let mut data = Vec::with_capacity(indices.len() * self.cols);
        for &i in indices {
            data.extend_from_slice(self.row(i));
        }
        matrix(indices.len(), self.cols, data)
    }

    /// Rows `[0, at)` and `[at, rows)`.
    pub fn split_at(&self, at: usize) -> (Matrix, Matrix) {
        let (a, b) = self.data.split_at(at * self.cols);
        (
            matrix(at, self.cols, a.to_vec()),
            matrix(self.rows - at, self.cols, b.to_vec()),
        )
    }

    /// Rows `[0, n)`.
    pub fn head(&self, n: usize) -> Matrix {
        self.split_at(n.min(self.rows)).0
    }

    /// Every value multiplied by `factor` (e.g. pixel scaling to `[0, 1]`).
    pub fn scaled(mut self, factor: f32) -> Matrix {
        self.data.iter_mut().for_each(|v| *v *= factor);
        matrix(self.rows, self.cols, self.data)
    }

    /// The first non-finite value, as `(row, col)`.
    pub fn first_non_finite(&self) -> Option<(usize, usize)> {
        self.data
            .iter()
            .position(|v| !v.is_finite())
            .map(|i| (i / self.cols, i % self.cols))
    }
}

/// Where the rows of a loaded table came from, so that a message about one row can name the
/// file and the line (or the item) it came from rather than its place after a shuffle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    /// The file, or a description of in-memory data.
    pub source: String,
    /// What a row is in the source.
    pub unit: RowUnit,
    /// Each row's number in the source (a CSV row's line), where it is not its index.
    pub numbers: Option<Vec<usize>>,
}

/// What a row of an [`Origin`] is in its source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowUnit {
    /// A line of a text file (from 1; a CSV's header is line 1).
    Line,
    /// An item of a binary file of records (IDX), from 0.
    Item,
    /// A row of data in memory, from 0.
    Row,
}

impl Origin {
    /// Rows of `source`, numbered by their index, as `unit`s.
    pub fn new(source: &str, unit: RowUnit) -> Origin {
        Origin {
            source: source.to_string(),
            unit,
            numbers: None,
        }
    }

    /// The number of row `r` in the source.
    pub fn number(&self, r: usize) -> usize {
        self.numbers
            .as_ref()
            .and_then(|n| n.get(r).copied())
            .unwrap_or(r)
    }

    /// Row `r` as a message names it: `line 40`, `item 39`, `row 39`.
    pub fn row(&self, r: usize) -> String {
        let unit = match self.unit {
            RowUnit::Line => "line",
            RowUnit::Item => "item",
            RowUnit::Row => "row",
        };
        format!("{unit} {}", self.number(r))
    }

    /// An error about row `r`: the source, where the row is in it, and `detail`.
    pub fn error(&self, r: usize, detail: impl std::fmt::Display) -> Error {
        Error::Data {
            source_name: self.source.clone(),
            detail: format!("{}: {detail}", self.row(r)),
        }
    }

    /// The origin of rows `indices` of these, in that order (after a shuffle or a split).
    pub fn gather(&self, indices: &[usize]) -> Origin {
        Origin {
            source: self.source.clone(),
            unit: self.unit,
            numbers: Some(indices.iter().map(|&i| self.number(i)).collect()),
        }
    }
}

/// Per-feature standardization `(x - mean) / std`, fitted on training data only and applied to
/// every split, and saved with the model so that `evaluate` and `predict` apply it too.
#[derive(Clone, Debug, PartialEq)]
pub struct Standardizer {
    /// Per-feature mean of the data it was fitted on.
    pub mean: Vec<f32>,
    /// Per-feature standard deviation (population); 1 for a constant feature, which is then
    /// only centred.
    pub std: Vec<f32>,
}

impl Standardizer {
    /// Fits the per-column mean and standard deviation of `x` (accumulated in f64).
    pub fn fit(x: &Matrix) -> Standardizer {
        let (n, c) = (x.rows().max(1) as f64, x.cols());
        let mut mean = vec![0.0f64; c];
        for r in 0..x.rows() {
            for (m, &v) in mean.iter_mut().zip(x.row(r)) {
                *m += v as f64;
            }
        }
        mean.iter_mut().for_each(|m| *m /= n);
        let mut var = vec![0.0f64; c];
        for r in 0..x.rows() {
            for ((s, &v), m) in var.iter_mut().zip(x.row(r)).zip(&mean) {
                *s += (v as f64 - m) * (v as f64 - m);
            }
        }
        let std = var
            .iter()
            .map(|s| (s / n).sqrt())
            .map(|s| if s > 1e-12 { s as f32 } else { 1.0 })
            .collect();
        Standardizer {
            mean: mean.into_iter().map(|m| m as f32).collect(),
            std,
        }
    }

    /// Plain scaling `x / divisor` of `features` columns (pixel values to `[0, 1]`, say), as a
    /// standardizer with mean 0, so that it is saved with a model like any other.
    pub fn scale(features: usize, divisor: f32) -> Standardizer {
        Standardizer {
            mean: vec![0.0; features],
            std: vec![divisor; features],
        }
    }

    /// `(x - mean) / std`, column by column.
    pub fn apply(&self, x: &Matrix) -> Result<Matrix> {
        if x.cols() != self.mean.len() {
            return Err(Error::Data {
                source_name: "standardization".into(),
                detail: format!(
                    "fitted on {} features, applied to data with {} columns",
                    self.mean.len(),
                    x.cols()
                ),
            });
        }
        let mut out = x.clone();
        for row in out.data.chunks_mut(x.cols()) {
            for ((v, m), s) in row.iter_mut().zip(&self.mean).zip(&self.std) {
                *v = (*v - m) / s;
            }
        }
        Ok(out)
    }
}

/// The 8×8 handwritten digits compiled into the library (1797 samples; UCI via scikit-learn,
/// see `data/README.md`): features `[1797, 64]` scaled from 0..16 to `[0, 1]`, labels
/// `[1797, 1]` in 0..10.
pub fn digits() -> (Matrix, Matrix) {
    let (x, y) = digits_unscaled();
    (x.scaled(1.0 / DIGITS_MAX), y)
}

/// The largest pixel value of the digits set.
pub const DIGITS_MAX: f32 = 16.0;

/// The built-in digits as stored in `data/digits.csv`: pixel values 0..16.
pub fn digits_unscaled() -> (Matrix, Matrix) {
    const DIGITS: &str = include_str!("../../data/digits.csv");
    let d = csv::parse(
        DIGITS.as_bytes(),
        "built-in digits",
        &csv::LabelColumn::Last,
    )
    .expect("the built-in digits file is well formed");
    (d.x, d.y)
}

/// The rows of a `rows`-row table, shuffled by a seeded generator and split: the last
/// `test_fraction` of them (rounded) for testing, the rest for training, as
/// `(train, test)` indices. What [`train_test_split`] gathers.
pub fn split_indices(
    rows: usize,
    test_fraction: f32,
    seed: u64,
) -> Result<(Vec<usize>, Vec<usize>)> {
    if !(0.0..1.0).contains(&test_fraction) {
        return Err(Error::Config(format!(
            "the test fraction must be in [0, 1), got {test_fraction}"
        )));
    }
    let mut order: Vec<usize> = (0..rows).collect();
    order.shuffle(&mut StdRng::seed_from_u64(seed));
    let n_test = (rows as f64 * test_fraction as f64).round() as usize;
    let test = order.split_off(rows - n_test);
    Ok((order, test))
}

/// Shuffles the rows of `x` and `y` together with a seeded generator and splits off the last
/// `test_fraction` of them: `(x_train, y_train, x_test, y_test)`.
pub fn train_test_split(
    x: &Matrix,
    y: &Matrix,
    test_fraction: f32,
    seed: u64,
) -> Result<(Matrix, Matrix, Matrix, Matrix)> {
    if x.rows() != y.rows() {
        return Err(Error::Data {
            source_name: "train_test_split".into(),
            detail: format!("{} feature rows but {} target rows", x.rows(), y.rows()),
        });
    }
    let (train, test) = split_indices(x.rows(), test_fraction, seed)?;
    Ok((
        x.gather(&train),
        y.gather(&train),
        x.gather(&test),
        y.gather(&test),
    ))
}
