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
    read(bytes, source)
}

/// Reads an IDX file, raw or gzip (by its magic bytes).
pub fn load(path: &Path) -> Result<Idx> {
    let file = crate::fs::open_input(path)?;
    read(std::io::BufReader::new(file), &path.display().to_string())
}

/// Reads IDX from `reader`, decompressing gzip as it goes. The header's dimensions are checked
/// against the limit and the memory left before the data is read, and the data against the
/// dimensions as it arrives: a small gzip file that claims or unpacks to gigabytes is refused
/// without taking them.
fn read(mut reader: impl std::io::BufRead, source: &str) -> Result<Idx> {
    let err = |detail: String| Error::Data {
        source_name: source.to_string(),
        detail,
    };
    let io = |e: std::io::Error| err(format!("cannot be read: {e}"));
    let gzip = reader.fill_buf().map_err(io)?.starts_with(&[0x1f, 0x8b]);
    if gzip {
        let decoder = flate2::bufread::MultiGzDecoder::new(reader);
        return read_raw(
            std::io::BufReader::new(decoder),
            source,
            "the gzip stream is damaged or truncated: ",
        );
    }
    read_raw(reader, source, "")
}

fn read_raw(mut r: impl Read, source: &str, io_context: &str) -> Result<Idx> {
    let err = |detail: String| Error::Data {
        source_name: source.to_string(),
        detail,
    };
    // Fills `buf` or says how much there was.
    let mut fill = |buf: &mut [u8]| -> Result<usize> {
        let mut got = 0;
        while got < buf.len() {
            match r.read(&mut buf[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(err(format!("{io_context}{e}"))),
            }
        }
        Ok(got)
    };
    let mut magic = [0u8; 4];
    let got = fill(&mut magic)?;
    if got < 4 {
        return Err(err(format!(
            "{got} bytes is too short for an IDX header (4 bytes of magic number)"
        )));
    }
    if magic[0] != 0 || magic[1] != 0 {
        return Err(err(format!(
            "not an IDX file: the magic number {:02x}{:02x}{:02x}{:02x} should start with two zero bytes",
            magic[0], magic[1], magic[2], magic[3]
        )));
    }
    if magic[2] != 0x08 {
        return Err(err(format!(
            "IDX type 0x{:02x} is not supported; only unsigned bytes (0x08, as in MNIST) are",
            magic[2]
        )));
    }
    let ndim = magic[3] as usize;
    if ndim == 0 {
        return Err(err("the IDX header declares 0 dimensions".into()));
    }
    let mut header = vec![0u8; 4 * ndim];
    let got = fill(&mut header)?;
    if got < header.len() {
        return Err(err(format!(
            "truncated: the header declares {ndim} dimensions but the file ends at byte {}",
            4 + got
        )));
    }
    let dims: Vec<usize> = header
        .chunks_exact(4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .collect();
    let count = dims
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64))
        .filter(|&c| c <= MAX_BYTES);
    let Some(count) = count else {
        return Err(err(format!(
            "dimensions {dims:?} are too large (more than {MAX_BYTES} bytes)"
        )));
    };
    // As f32 features, the values take 4 bytes each.
    if let Some(free) = crate::host::available_memory() {
        if count.saturating_mul(5) > free {
            return Err(err(format!(
                "dimensions {dims:?} need {} in memory, more than the {} available",
                crate::host::format_bytes(count * 5),
                crate::host::format_bytes(free)
            )));
        }
    }
    // The data as it arrives (never more than the header declares, never more than the
    // stream holds): a small file that claims gigabytes takes only what it has.
    let mut data = Vec::new();
    let mut chunk = vec![0u8; 1 << 16];
    while (data.len() as u64) < count {
        let want = chunk.len().min((count - data.len() as u64) as usize);
        let got = fill(&mut chunk[..want])?;
        if data.try_reserve(got).is_err() {
            return Err(err(format!(
                "out of memory after {} bytes of data",
                data.len()
            )));
        }
        data.extend_from_slice(&chunk[..got]);
        if got < want {
            return Err(err(format!(
                "truncated: dimensions {dims:?} need {count} bytes of data, the file has {}",
                data.len()
            )));
        }
    }
    // Whatever follows is counted (up to 64 kB: a stream that goes on is not read to its end).
    let extra = std::io::copy(&mut r.take(1 << 16), &mut std::io::sink())
        .map_err(|e| err(format!("{io_context}{e}")))?;
    if extra > 0 {
        let at_least = if extra == 1 << 16 { "at least " } else { "" };
        return Err(err(format!(
            "{at_least}{extra} bytes of data follow the {count} that dimensions {dims:?} describe"
        )));
    }
    Ok(Idx { dims, data })
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

/// The files of an MNIST folder's four arrays, as [`load_mnist_dir`] names them.
pub const MNIST_STEMS: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
];

/// Those of the files [`load_mnist_dir`] reads that exist in `dir` (each raw or `.gz`): what
/// an output must not replace.
pub fn mnist_files(dir: &Path) -> Vec<PathBuf> {
    MNIST_STEMS
        .iter()
        .flat_map(|stem| [dir.join(stem), dir.join(format!("{stem}.gz"))])
        .filter(|p| p.exists())
        .collect()
}

/// The images' `[height, width, channels]` of an IDX file of `[n, h, w]` (one channel) or
/// `[n, h, w, c]` images: what a convolution over them needs.
pub fn image_shape(images: &Idx) -> Option<[usize; 3]> {
    match images.dims[..] {
        [_, h, w] => Some([h, w, 1]),
        [_, h, w, c] => Some([h, w, c]),
        _ => None,
    }
}

/// A folder of MNIST-style files: `train-images-idx3-ubyte`, `train-labels-idx1-ubyte`,
/// `t10k-images-idx3-ubyte`, `t10k-labels-idx1-ubyte`, each raw or with `.gz`.
/// Returns `(x_train, y_train, x_test, y_test)`, pixels scaled to `[0, 1]`.
pub fn load_mnist_dir(dir: &Path) -> Result<(Matrix, Matrix, Matrix, Matrix)> {
    load_mnist_images(dir).map(|(data, _)| data)
}

/// [`load_mnist_dir`], with the training images' shape ([`image_shape`]).
#[allow(clippy::type_complexity)]
pub fn load_mnist_images(
    dir: &Path,
) -> Result<((Matrix, Matrix, Matrix, Matrix), Option<[usize; 3]>)> {
    let find = |stem: &str| -> Result<PathBuf> {
        let candidates = [dir.join(stem), dir.join(format!("{stem}.gz"))];
        candidates.iter().find(|p| p.is_file()).cloned().ok_or_else(|| Error::Data {
            source_name: dir.display().to_string(),
            detail: format!("no `{stem}` or `{stem}.gz` here; an MNIST folder holds train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte (each optionally .gz)"),
        })
    };
    let pair = |split: &str| -> Result<(Matrix, Matrix, Option<[usize; 3]>)> {
        let images = find(&format!("{split}-images-idx3-ubyte"))?;
        let labels = find(&format!("{split}-labels-idx1-ubyte"))?;
        let idx = load(&images)?;
        let (x, y) = images_and_labels(
            &idx,
            &load(&labels)?,
            &format!("{} + {}", images.display(), labels.display()),
        )?;
        Ok((x, y, image_shape(&idx)))
    };
    let (x_train, y_train, shape) = pair("train")?;
    let (x_test, y_test, _) = pair("t10k")?;
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
    Ok(((x_train, y_train, x_test, y_test), shape))
}
