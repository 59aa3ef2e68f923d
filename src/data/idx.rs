//! IDX, the MNIST file format: a big-endian header (two zero bytes, a type code, the number
//! of dimensions, then each dimension as a u32) and the values, raw or gzip-compressed.
//! Only unsigned bytes (type 0x08) are read: that is what MNIST and its relatives use.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::Matrix;
use crate::error::{Error, Result};

/// An IDX array of unsigned bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Idx {
    /// The dimensions, outermost first (`[N, 28, 28]` for MNIST images, `[N]` for labels).
    pub dims: Vec<usize>,
    /// The values, row-major.
    pub data: Vec<u8>,
}

/// The largest file this reader accepts once decompressed (MNIST's training images are 47 MB).
const MAX_BYTES: u64 = 2 << 30;

/// Parses IDX bytes (gzip-compressed if they start with gzip's magic); `source` names the file
/// in errors.
pub fn parse(bytes: &[u8], source: &str) -> Result<Idx> {
    let err = |detail: String| Error::Data {
        source_name: source.to_string(),
        detail,
    };
    let raw;
    let bytes = if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(bytes)
            .take(MAX_BYTES + 1)
            .read_to_end(&mut out)
            .map_err(|e| err(format!("the gzip stream is damaged or truncated: {e}")))?;
        if out.len() as u64 > MAX_BYTES {
            return Err(err(format!("decompresses to more than {MAX_BYTES} bytes")));
        }
        raw = out;
        &raw[..]
    } else {
        bytes
    };
    if bytes.len() < 4 {
        return Err(err(format!(
            "{} bytes is too short for an IDX header (4 bytes of magic number)",
            bytes.len()
        )));
    }
    if bytes[0] != 0 || bytes[1] != 0 {
        return Err(err(format!(
            "not an IDX file: the magic number {:02x}{:02x}{:02x}{:02x} should start with two zero bytes",
            bytes[0], bytes[1], bytes[2], bytes[3]
        )));
    }
    if bytes[2] != 0x08 {
        return Err(err(format!(
            "IDX type 0x{:02x} is not supported; only unsigned bytes (0x08, as in MNIST) are",
            bytes[2]
        )));
    }
    let ndim = bytes[3] as usize;
    if ndim == 0 {
        return Err(err("the IDX header declares 0 dimensions".into()));
    }
    let header = 4 + 4 * ndim;
    if bytes.len() < header {
        return Err(err(format!(
            "truncated: the header declares {ndim} dimensions but the file ends at byte {}",
            bytes.len()
        )));
    }
    let dims: Vec<usize> = (0..ndim)
        .map(|i| {
            u32::from_be_bytes(bytes[4 + 4 * i..8 + 4 * i].try_into().expect("4 bytes")) as usize
        })
        .collect();
    let count = dims
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64))
        .filter(|&c| c <= MAX_BYTES);
    let Some(count) = count else {
        return Err(err(format!("dimensions {dims:?} are too large")));
    };
    let body = &bytes[header..];
    if (body.len() as u64) < count {
        return Err(err(format!(
            "truncated: dimensions {dims:?} need {count} bytes of data, the file has {}",
            body.len()
        )));
    }
    if (body.len() as u64) > count {
        return Err(err(format!(
            "{} bytes of data follow the {count} that dimensions {dims:?} describe",
            body.len() as u64 - count
        )));
    }
    Ok(Idx {
        dims,
        data: body.to_vec(),
    })
}

/// Reads an IDX file, raw or gzip.
pub fn load(path: &Path) -> Result<Idx> {
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        path: path.display().to_string(),
        source,
    })?;
    parse(&bytes, &path.display().to_string())
}

/// Images `[N, ...]` and labels `[N]` as features `[N, pixels]` scaled to `[0, 1]` and labels
/// `[N, 1]`; the counts must agree.
pub fn images_and_labels(images: &Idx, labels: &Idx, source: &str) -> Result<(Matrix, Matrix)> {
    let err = |detail: String| Error::Data {
        source_name: source.to_string(),
        detail,
    };
    if images.dims.len() < 2 {
        return Err(err(format!(
            "images need at least 2 dimensions (count, pixels...), got {:?}",
            images.dims
        )));
    }
    if labels.dims.len() != 1 {
        return Err(err(format!(
            "labels need 1 dimension (count), got {:?}",
            labels.dims
        )));
    }
    if images.dims[0] != labels.dims[0] {
        return Err(err(format!(
            "{} images but {} labels",
            images.dims[0], labels.dims[0]
        )));
    }
    let n = images.dims[0];
    let pixels = images.dims[1..].iter().product();
    let x = Matrix::new(
        n,
        pixels,
        images.data.iter().map(|&p| p as f32 / 255.0).collect(),
    )?;
    Ok((
        x,
        Matrix::new(n, 1, labels.data.iter().map(|&l| l as f32).collect())?,
    ))
}

/// A folder of MNIST-style files: `train-images-idx3-ubyte`, `train-labels-idx1-ubyte`,
/// `t10k-images-idx3-ubyte`, `t10k-labels-idx1-ubyte`, each raw or with `.gz`.
/// Returns `(x_train, y_train, x_test, y_test)`, pixels scaled to `[0, 1]`.
pub fn load_mnist_dir(dir: &Path) -> Result<(Matrix, Matrix, Matrix, Matrix)> {
    let find = |stem: &str| -> Result<PathBuf> {
        let candidates = [dir.join(stem), dir.join(format!("{stem}.gz"))];
        candidates.iter().find(|p| p.is_file()).cloned().ok_or_else(|| Error::Data {
            source_name: dir.display().to_string(),
            detail: format!("no `{stem}` or `{stem}.gz` here; an MNIST folder holds train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte (each optionally .gz)"),
        })
    };
    let pair = |split: &str| -> Result<(Matrix, Matrix)> {
        let images = find(&format!("{split}-images-idx3-ubyte"))?;
        let labels = find(&format!("{split}-labels-idx1-ubyte"))?;
        images_and_labels(
            &load(&images)?,
            &load(&labels)?,
            &format!("{} + {}", images.display(), labels.display()),
        )
    };
    let (x_train, y_train) = pair("train")?;
    let (x_test, y_test) = pair("t10k")?;
    if x_train.cols() != x_test.cols() {
        return Err(Error::Data {
            source_name: dir.display().to_string(),
            detail: format!(
                "training images have {} pixels, test images {}",
                x_train.cols(),
                x_test.cols()
            ),
        });
    }
    Ok((x_train, y_train, x_test, y_test))
}
