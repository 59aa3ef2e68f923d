//! CSV datasets: a header row, one sample per row, every cell a number, one label column (or
//! several, for multi-label and multi-output targets).
//! Gzip-compressed files are read as such (by their magic bytes, whatever their name).

use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use super::{Matrix, Origin, RowUnit};
use crate::error::{quote, Error, Result};
use crate::host::{available_memory, format_bytes};

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
    /// Several columns, each by index or name: the target is `[N, k]`, its columns in this
    /// order (one yes/no per column for a multi-label task).
    Many(Vec<LabelColumn>),
}

impl LabelColumn {
    /// Parses a command-line value: a header name, or a 0-based index if it is a number; a
    /// comma-separated list of them is several label columns.
    pub fn parse(s: &str) -> LabelColumn {
        if s.contains(',') {
            return LabelColumn::Many(s.split(',').map(|p| LabelColumn::parse(p.trim())).collect());
        }
        match s.parse() {
            Ok(i) => LabelColumn::Index(i),
            Err(_) => LabelColumn::Name(s.to_string()),
        }
    }

    /// The indices in `headers` of the label columns, in order (empty for [`LabelColumn::None`]),
    /// or what is wrong: a name that is no column, an index past the end, a column twice.
    pub fn resolve(&self, headers: &[String]) -> std::result::Result<Vec<usize>, String> {
        let listed = || {
            let shown: Vec<String> = headers.iter().take(LIST_MAX).map(|h| quote(h)).collect();
            match headers.len().checked_sub(LIST_MAX) {
                Some(more) if more > 0 => format!("{} and {more} more", shown.join(", ")),
                _ => shown.join(", "),
            }
        };
        let one = |l: &LabelColumn| -> std::result::Result<usize, String> {
            match l {
                LabelColumn::Index(i) if *i < headers.len() => Ok(*i),
                LabelColumn::Index(i) => Err(format!(
                    "label column index {i} is out of range: the file has {} columns (0..{})",
                    headers.len(),
                    headers.len().saturating_sub(1)
                )),
                LabelColumn::Name(n) => headers.iter().position(|h| h == n).ok_or_else(|| {
                    format!(
                        "no column named `{}`; the columns are: {}",
                        quote(n),
                        listed()
                    )
                }),
                _ => Ok(headers.len().saturating_sub(1)),
            }
        };
        match self {
            LabelColumn::None => Ok(Vec::new()),
            LabelColumn::Many(list) => {
                let mut out = Vec::with_capacity(list.len());
                for l in list {
                    if matches!(
                        l,
                        LabelColumn::Many(_) | LabelColumn::None | LabelColumn::Last
                    ) {
                        return Err("a label column list holds names or indices".into());
                    }
                    let i = one(l)?;
                    if out.contains(&i) {
                        return Err(format!(
                            "column `{}` is named twice as a label",
                            quote(&headers[i])
                        ));
                    }
                    out.push(i);
                }
                if out.len() >= headers.len() {
                    return Err(format!(
                        "all {} columns are labels; at least one must be a feature",
                        headers.len()
                    ));
                }
                Ok(out)
            }
            single => Ok(vec![one(single)?]),
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
    /// The file and the line of each row, for messages about a row.
    pub origin: Origin,
}

/// The header names a message lists before it says how many more there are.
const LIST_MAX: usize = 12;

/// Reads a CSV file, plain or gzip-compressed. Refuses a file larger than the memory left.
pub fn load(path: &Path, label: &LabelColumn) -> Result<CsvData> {
    let name = path.display().to_string();
    let file = crate::fs::open_input(path)?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    if let Some(free) = available_memory() {
        if size > free {
            return Err(Error::Data {
                source_name: name,
                detail: format!(
                    "the file is {} and only {} of memory is available to read it into",
                    format_bytes(size),
                    format_bytes(free)
                ),
            });
        }
    }
    let mut reader = BufReader::new(file);
    let gzip = reader
        .fill_buf()
        .map_err(|source| Error::Io {
            path: name.clone(),
            source,
        })?
        .starts_with(&[0x1f, 0x8b]);
    if gzip {
        parse(flate2::bufread::MultiGzDecoder::new(reader), &name, label)
    } else {
        parse(reader, &name, label)
    }
}

/// Where the line breaks of a text are: the offsets of its `\n` and `\r` bytes.
#[derive(Default)]
struct Breaks {
    newlines: Vec<u64>,
    returns: Vec<u64>,
}

impl Breaks {
    /// The line (from 1) of a record that the `csv` crate says starts at byte `at`. Its count
    /// of lines skips the blank lines it skips, and its offset is where the blank lines before
    /// the record begin: step over those, then count the line breaks before.
    fn line_of_record(&self, mut at: u64) -> usize {
        let has = |v: &Vec<u64>, x: u64| v.binary_search(&x).is_ok();
        loop {
            if has(&self.newlines, at) {
                at += 1;
            } else if has(&self.returns, at) && has(&self.newlines, at + 1) {
                at += 2;
            } else {
                break;
            }
        }
        1 + self.newlines.partition_point(|&e| e < at)
    }
}

/// A reader that notes where the line breaks are (see [`Breaks`]).
struct Lines<R> {
    inner: R,
    read: u64,
    breaks: std::rc::Rc<std::cell::RefCell<Breaks>>,
}

impl<R: Read> Read for Lines<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut breaks = self.breaks.borrow_mut();
        for (i, &b) in buf[..n].iter().enumerate() {
            match b {
                b'\n' => breaks.newlines.push(self.read + i as u64),
                b'\r' => breaks.returns.push(self.read + i as u64),
                _ => {}
            }
        }
        self.read += n as u64;
        Ok(n)
    }
}

/// Parses CSV text from `reader`; `source_name` names it in errors.
pub fn parse(reader: impl Read, source_name: &str, label: &LabelColumn) -> Result<CsvData> {
    let breaks = std::rc::Rc::new(std::cell::RefCell::new(Breaks::default()));
    let reader = Lines {
        inner: reader,
        read: 0,
        breaks: breaks.clone(),
    };
    let line_at = |at: u64| breaks.borrow().line_of_record(at);
    let err = |detail: String| Error::Data {
        source_name: source_name.to_string(),
        detail,
    };
    let read_err = |e: ::csv::Error| {
        let line = e
            .position()
            .map_or(String::new(), |p| format!("line {}: ", p.line()));
        match e.kind() {
            ::csv::ErrorKind::Utf8 { .. } => err(format!(
                "{line}not UTF-8 text; is this a CSV file? (a gzip-compressed CSV is read as one)"
            )),
            ::csv::ErrorKind::Io(io) => err(format!("{line}cannot be read: {io}")),
            _ => err(format!("{line}{e}")),
        }
    };
    let mut rdr = ::csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .trim(::csv::Trim::All)
        .from_reader(reader);
    let headers: Vec<String> = rdr
        .headers()
        .map_err(read_err)?
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
            "only one column (`{}`); need at least one feature column and a label column",
            quote(&headers[0])
        )));
    }
    for (i, h) in headers.iter().enumerate() {
        if let Some(j) = headers[..i].iter().position(|o| o == h) {
            return Err(err(format!(
                "line 1: columns {} and {} are both named `{}`; give each column its own name",
                j + 1,
                i + 1,
                quote(h)
            )));
        }
    }
    let label_idx = label.resolve(&headers).map_err(err)?;
    // Where each column's value goes: its position among the labels, or a feature.
    let label_slot: Vec<Option<usize>> = (0..headers.len())
        .map(|c| label_idx.iter().position(|&l| l == c))
        .collect();

    // What the values may take: the memory left when reading starts (a gzip file's size
    // says little about its contents), checked as rows arrive.
    let budget = available_memory().map(|b| b / 4);
    let mut x: Vec<f32> = Vec::new();
    let mut y: Vec<f32> = Vec::new();
    let mut lines = Vec::new();
    let mut record = ::csv::StringRecord::new();
    let mut labels = vec![0.0f32; label_idx.len()];
    loop {
        match rdr.read_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(read_err(e)),
        }
        // Line numbers as an editor shows them: the header is line 1.
        let line = record.position().map_or(0, |p| line_at(p.byte()));
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
        if budget.is_some_and(|b| (x.len() + record.len()) as u64 > b)
            || x.try_reserve(record.len()).is_err()
            || y.try_reserve(label_idx.len()).is_err()
            || lines.try_reserve(1).is_err()
        {
            return Err(err(format!(
                "line {line}: out of memory after {} values; the data does not fit in this machine's memory",
                x.len() + y.len()
            )));
        }
        for (c, cell) in record.iter().enumerate() {
            let v = number(cell).map_err(|why| {
                err(format!(
                    "line {line}, column {} (`{}`): `{}` {why}",
                    c + 1,
                    quote(&headers[c]),
                    quote(cell)
                ))
            })?;
            match label_slot[c] {
                Some(k) => labels[k] = v,
                None => x.push(v),
            }
        }
        y.extend_from_slice(&labels);
        lines.push(line);
    }
    let rows = lines.len();
    if rows == 0 {
        return Err(err("the file has a header but no data rows".into()));
    }
    let label_name = label_idx
        .iter()
        .map(|&i| headers[i].clone())
        .collect::<Vec<_>>()
        .join(",");
    let y_cols = label_idx.len();
    let feature_names: Vec<String> = headers
        .iter()
        .zip(&label_slot)
        .filter(|(_, slot)| slot.is_none())
        .map(|(h, _)| h.clone())
        .collect();
    Ok(CsvData {
        x: Matrix::new(rows, feature_names.len(), x)?,
        y: Matrix::new(rows, y_cols, y)?,
        feature_names,
        label_name,
        origin: Origin {
            source: source_name.to_string(),
            unit: RowUnit::Line,
            numbers: Some(lines),
        },
    })
}

/// A cell as an f32 (parsed as one, so rounded once), or why it is not one.
fn number(cell: &str) -> std::result::Result<f32, &'static str> {
    let v: f32 = cell.parse().map_err(|_| "is not a number")?;
    if v.is_finite() {
        return Ok(v);
    }
    // `inf` and `NaN` say so themselves; `1e39` is a finite number f32 cannot hold.
    if cell.parse::<f64>().is_ok_and(f64::is_finite) {
        Err("is beyond the range of 32-bit floats (±3.4e38); rescale the column")
    } else {
        Err("is not a finite number; remove or impute it")
    }
}
