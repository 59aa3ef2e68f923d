//! Every output of a command checked before any work starts, so that a run never fails at its
//! end, after it has already replaced some of its outputs, over a mistake in a path.

use std::path::{Path, PathBuf};

use super::{folder, resolve, temp, Target};
use crate::error::{Error, Result};

/// A file a command will write.
#[derive(Clone, Copy, Debug)]
pub struct Output<'a> {
    /// The flag that names it, for messages (`--save`).
    pub flag: &'a str,
    /// The path as given.
    pub path: &'a Path,
    /// The extensions it may have, lower case, without the dot; empty for any.
    pub extensions: &'a [&'a str],
    /// Whether `-` (standard output) is allowed.
    pub stdout: bool,
}

/// A file a command reads.
#[derive(Clone, Copy, Debug)]
pub struct Input<'a> {
    /// The flag that names it (`--data`).
    pub flag: &'a str,
    /// The path as given.
    pub path: &'a Path,
    /// The flags of outputs that may name this same file: the input is read whole before
    /// anything is written, and replacing it is the point (`--resume m --save m`).
    pub replaced_by: &'a [&'a str],
}

/// Checks, for each output: its extension; that it is not a folder or a block device; that
/// its folder exists and this process can create files in it; that an existing file there is
/// not read-only; that it is not the same file as an input (unless the input names its flag
/// in `replaced_by`) or as another output. The first problem is an error naming the flag,
/// the path and what to do. Nothing is created or changed (a probe file is made and removed).
///
/// ```
/// use std::path::Path;
/// use wgtrain::fs::{check_outputs, Input, Output};
///
/// let plot = Output { flag: "--plot", path: Path::new("curves.jpg"), extensions: &["png", "svg"], stdout: false };
/// let err = check_outputs(&[plot], &[]).unwrap_err().to_string();
/// assert!(err.contains("--plot curves.jpg") && err.contains(".png or .svg"), "{err}");
///
/// let data = Input { flag: "--data", path: Path::new("Cargo.toml"), replaced_by: &[] };
/// let save = Output { flag: "--save", path: Path::new("Cargo.toml"), extensions: &[], stdout: false };
/// let err = check_outputs(&[save], &[data]).unwrap_err().to_string();
/// assert!(err.contains("same file as --data"), "{err}");
/// ```
pub fn check_outputs(outputs: &[Output<'_>], inputs: &[Input<'_>]) -> Result<()> {
    let mut resolved: Vec<(&Output, Option<PathBuf>)> = Vec::new();
    for out in outputs {
        let file = check_one(out)?;
        if let Some(file) = &file {
            for input in inputs {
                if !input.replaced_by.contains(&out.flag) && same_file(file, input.path) {
                    return Err(fail(
                        out,
                        format!(
                            "is the same file as {} {}: writing it would destroy that input. Give the output another name",
                            input.flag,
                            input.path.display()
                        ),
                    ));
                }
            }
            for (other, other_file) in &resolved {
                if other_file.as_deref().is_some_and(|o| same_file(file, o)) {
                    return Err(fail(
                        out,
                        format!(
                            "is the same file as {} {}: each output needs its own file",
                            other.flag,
                            other.path.display()
                        ),
                    ));
                }
            }
        }
        resolved.push((out, file));
    }
    Ok(())
}

fn fail(out: &Output, detail: String) -> Error {
    Error::Config(format!("{} {}: {detail}", out.flag, out.path.display()))
}

/// The checks of one output; the regular file it will replace, if it is one.
fn check_one(out: &Output) -> Result<Option<PathBuf>> {
    if out.path.as_os_str() == "-" {
        return if out.stdout {
            Ok(None)
        } else {
            Err(fail(
                out,
                "standard output (`-`) cannot take this; give a file name".into(),
            ))
        };
    }
    let target = match resolve(out.path) {
        Ok(target) => target,
        Err(Error::Config(detail)) => {
            let detail = detail
                .strip_prefix(&format!("{}: ", out.path.display()))
                .unwrap_or(&detail)
                .to_string();
            return Err(fail(out, detail));
        }
        Err(e) => return Err(fail(out, e.to_string())),
    };
    if !out.extensions.is_empty() {
        let ext = out
            .path
            .extension()
            .map(|e| e.to_string_lossy().to_lowercase());
        if !ext.as_deref().is_some_and(|e| out.extensions.contains(&e)) {
            let wanted: Vec<String> = out.extensions.iter().map(|e| format!(".{e}")).collect();
            let what = match ext {
                Some(e) => format!("`.{e}` is not a format this writes"),
                None => "the name has no extension".into(),
            };
            return Err(fail(
                out,
                format!("{what}; use a {} file name", wanted.join(" or ")),
            ));
        }
    }
    let Target::File(file) = target else {
        return Ok(None); // a special file, written in place
    };
    let dir = folder(&file);
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(fail(out, format!("{} is not a folder", dir.display()))),
        Err(_) => {
            return Err(fail(
                out,
                format!(
                    "the folder {} does not exist; create it first (mkdir -p {})",
                    dir.display(),
                    dir.display()
                ),
            ))
        }
    }
    if std::fs::metadata(&file).is_ok_and(|m| m.permissions().readonly()) {
        return Err(fail(
            out,
            "is read-only; make it writable (chmod u+w) if it may be replaced, or choose another name".into(),
        ));
    }
    let name = file
        .file_name()
        .map_or("probe".into(), |n| n.to_string_lossy());
    match temp::create(dir, &name) {
        Ok(probe) => {
            let _ = std::fs::remove_file(&probe);
            temp::forget(&probe);
        }
        Err(e) => {
            return Err(fail(
                out,
                format!("cannot create files in the folder {}: {e}", dir.display()),
            ))
        }
    }
    Ok(Some(file))
}

/// Whether `a` and `b` name the same file: the same device and inode where both exist, else
/// the same path once links and `..` are resolved (as far as the path exists).
pub fn same_file(a: &Path, b: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if let (Ok(ma), Ok(mb)) = (std::fs::metadata(a), std::fs::metadata(b)) {
            return (ma.dev(), ma.ino()) == (mb.dev(), mb.ino());
        }
    }
    match (normalized(a), normalized(b)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

/// `path` with links resolved: the whole path if it exists, else its folder and its name.
fn normalized(path: &Path) -> Option<PathBuf> {
    std::fs::canonicalize(path).ok().or_else(|| {
        let dir = std::fs::canonicalize(folder(path)).ok()?;
        Some(dir.join(path.file_name()?))
    })
}
