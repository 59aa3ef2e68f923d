//! CSV datasets: a header row, one sample per row, every cell a number, one label column.

use std::path::Path;

use super::Matrix;
use crate::error::{Error, Result};

/// Which column holds the target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LabelColumn {
    /// The last column (the default).
    Last,
    /// A column by its 0-based index.
    Index(usize),
    /// A column by its header name.
    Name(String),
    /// No label: every column is a feature and the target is `[N, 0]` (data to predict on).
    None,
}

impl LabelColumn {
    /// Parses a command-line value: a header name, or a 0-based index if it is a number.
    pub fn parse(s: &str) -> LabelColumn {
        match s.parse() {
            Ok(i) => LabelColumn::Index(i),
            Err(_) => LabelColumn::Name(s.to_string()),
        }
    }
}

/// A CSV dataset split into features and target.
#[derive(Clone, Debug)]
pub struct CsvData {
    /// Features `[N, columns - 1]`.
    pub x: Matrix,
    /// Target `[N, 1]`.
    pub y: Matrix,
    /// Header names of the feature columns.
    pub feature_names: Vec<String>,
    /// Header name of the label column.
    pub label_name: String,
}

/// Reads a CSV file.
pub fn load(path: &Path, label: &LabelColumn) -> Result<CsvData> {
    let file = std::fs::File::open(path).map_err(|source| Error::Io {
        path: path.display().to_string(),
        source,
    })?;
    parse(file, &path.display().to_string(), label)
}

/// Parses CSV text from `reader`; `source_name` names it in errors.
pub fn parse(
    reader: impl std::io::Read,
    source_name: &str,
    label: &LabelColumn,
) -> Result<CsvData> {
    let err = |detail: String| Error::Data {
        source_name: source_name.to_string(),
        detail,
    };
    let mut rdr = ::csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .trim(::csv::Trim::All)
        .from_reader(reader);
    let headers: Vec<String> = rdr
        .headers()
        .map_err(|e| err(format!("cannot read the header row: {e}")))?
        .iter()
        .map(str::to_string)
        .collect();
    if headers.is_empty() || headers.iter().all(String::is_empty) {
        return Err(err(
            "the file is empty: expected a header row, then one row per sample".into(),
        ));
    }
    if headers.len() < 2 && *label != LabelColumn::None {
        return Err(err(format!(
            "only one column ({}); need at least one feature column and a label column",
            headers[0]
        )));
    }
    let label_idx = match label {
        LabelColumn::None => usize::MAX,
        LabelColumn::Last => headers.len() - 1,
        LabelColumn::Index(i) if *i < headers.len() => *i,
        LabelColumn::Index(i) => {
            return Err(err(format!(
                "label column index {i} is out of range: the file has {} columns (0..{})",
                headers.len(),
                headers.len() - 1
            )))
        }
        LabelColumn::Name(n) => headers.iter().position(|h| h == n).ok_or_else(|| {
            err(format!(
                "no column named `{n}`; the columns are: {}",
                headers.join(", ")
            ))
        })?,
    };

    let mut x = Vec::new();
    let mut y = Vec::new();
    let mut rows = 0usize;
    for (i, record) in rdr.records().enumerate() {
        // Line numbers as an editor shows them: the header is line 1.
        let line = i + 2;
        let record = record.map_err(|e| err(format!("line {line}: {e}")))?;
        if record.len() == 1 && record.get(0) == Some("") {
            continue; // a blank line
        }
        if record.len() != headers.len() {
            return Err(err(format!(
                "line {line} has {} cells but the header has {} columns; every row needs one value per column",
                record.len(),
                headers.len()
            )));
        }
        for (c, cell) in record.iter().enumerate() {
            let v: f32 = cell.parse().map_err(|_| {
                err(format!(
                    "line {line}, column {} (`{}`): `{cell}` is not a number",
                    c + 1,
                    headers[c]
                ))
            })?;
            if !v.is_finite() {
                return Err(err(format!(
                    "line {line}, column {} (`{}`): `{cell}` is not a finite number; remove or impute it",
                    c + 1,
                    headers[c]
                )));
            }
            if c == label_idx {
                y.push(v);
            } else {
                x.push(v);
            }
        }
        rows += 1;
    }
    if rows == 0 {
        return Err(err("the file has a header but no data rows".into()));
    }
    let mut feature_names = headers.clone();
    let (label_name, y_cols) = if label_idx == usize::MAX {
        (String::new(), 0)
    } else {
        (feature_names.remove(label_idx), 1)
    };
    Ok(CsvData {
        x: Matrix::new(rows, feature_names.len(), x)?,
        y: Matrix::new(rows, y_cols, y)?,
        feature_names,
        label_name,
    })
}
