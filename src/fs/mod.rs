//! Files written so that nothing the user has is ever lost.
//!
//! - Every output goes through [`write_atomic`] or [`replace_with`]: a temporary file beside
//!   the target, flushed, renamed over it, so that a crash at any moment leaves the old file
//!   or the new one, never a torn one.
//! - The target is what the path *means*: a symbolic link is followed to the file it names
//!   (the link stays a link); a terminal, a pipe or another special file (`/dev/stdout`,
//!   `/proc/self/fd/1`) is written in place; `-` is standard output.
//! - [`check_outputs`] checks every output of a command before any work starts: its
//!   extension, its folder, that it is not a folder, and that it is not the same file as an
//!   input or another output.
//! - The temporary files are listed while they exist ([`remove_unfinished`] clears them from
//!   a signal handler) and removed at the next write in their folder when the process that
//!   made them was killed.
//! - Inputs are opened by [`open_input`] and [`read_input`]: a FIFO, a device or a folder is
//!   refused (reading one would block, never end, or mean nothing), and so is a file larger
//!   than the memory left.

mod check;
mod temp;

pub use check::{check_outputs, same_file, Input, Output};
pub use temp::remove_unfinished;

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Symbolic links followed before a path is given up on (Linux's own limit).
const MAX_LINKS: usize = 40;

/// Where writing a path puts the bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// A regular file, existing or not, with every symbolic link on the way resolved: it is
    /// replaced atomically.
    File(PathBuf),
    /// An existing file that is not a regular one (a terminal, a pipe, a character device): it
    /// is opened and written in place.
    Special(PathBuf),
    /// `-`: standard output.
    Stdout,
}

/// What writing to `path` writes to: see [`Target`]. Fails for a folder, a block device, a
/// path with no file name, and a loop of links.
pub fn resolve(path: &Path) -> Result<Target> {
    if path.as_os_str() == "-" {
        return Ok(Target::Stdout);
    }
    let err = |detail: String| Error::Config(format!("{}: {detail}", path.display()));
    if names_a_descriptor(path) {
        // `/dev/stdout` where stdout is a file: write the descriptor (which may be appending
        // to a log), not a new file in the log's place.
        return Ok(Target::Special(path.to_path_buf()));
    }
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => Err(err(
            "is a folder; give a file name (inside it, if that is where it should go)".into(),
        )),
        Ok(m) if m.is_file() => std::fs::canonicalize(path)
            .map(Target::File)
            .map_err(|e| io_error(path, e)),
        Ok(m) if is_block_device(&m) => Err(err(
            "is a block device; wgtrain does not write onto disks. Give a file name".into(),
        )),
        Ok(_) => Ok(Target::Special(path.to_path_buf())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // Not there: a new file, perhaps behind a link that points at nothing yet.
            let mut p = path.to_path_buf();
            for _ in 0..MAX_LINKS {
                match std::fs::symlink_metadata(&p) {
                    Ok(m) if m.file_type().is_symlink() => {
                        let to = std::fs::read_link(&p).map_err(|e| io_error(&p, e))?;
                        p = match p.parent() {
                            Some(dir) if to.is_relative() => dir.join(to),
                            _ => to,
                        };
                    }
                    _ => {
                        if p.file_name().is_none() {
                            return Err(err("is not a file name".into()));
                        }
                        return Ok(Target::File(p));
                    }
                }
            }
            Err(err(format!(
                "more than {MAX_LINKS} symbolic links in a row"
            )))
        }
        Err(e) => Err(io_error(path, e)),
    }
}

/// `/dev/stdout`, `/dev/stderr`, `/dev/fd/N`, `/proc/<pid>/fd/N`: an open descriptor.
fn names_a_descriptor(path: &Path) -> bool {
    let s = path.to_string_lossy();
    s == "/dev/stdout"
        || s == "/dev/stderr"
        || s.starts_with("/dev/fd/")
        || (s.starts_with("/proc/") && s.contains("/fd/"))
}

/// Opens the input file `path`, refusing what is not a regular file: a FIFO would block until
/// a writer comes (forever, if none does), `/dev/zero` never ends, and a folder is not data.
pub fn open_input(path: &Path) -> Result<std::fs::File> {
    let io = |source| Error::Io {
        path: path.display().to_string(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    if !meta.is_file() {
        let what = if meta.is_dir() {
            "a folder".to_string()
        } else {
            special_kind(&meta)
        };
        return Err(Error::Data {
            source_name: path.display().to_string(),
            detail: format!(
                "is {what}, not a regular file; wgtrain reads data from files (save a stream to a file first)"
            ),
        });
    }
    std::fs::File::open(path).map_err(io)
}

fn special_kind(meta: &std::fs::Metadata) -> String {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        let t = meta.file_type();
        if t.is_fifo() {
            return "a named pipe (FIFO)".into();
        }
        if t.is_char_device() {
            return "a character device".into();
        }
        if t.is_block_device() {
            return "a block device".into();
        }
        if t.is_socket() {
            return "a socket".into();
        }
    }
    let _ = meta;
    "a special file".into()
}

/// The whole of the input file `path` (see [`open_input`]), refused without reading it when
/// it is larger than the memory left.
pub fn read_input(path: &Path) -> Result<Vec<u8>> {
    use std::io::Read;
    let mut file = open_input(path)?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let too_big = || Error::Data {
        source_name: path.display().to_string(),
        detail: format!(
            "the file is {}, more than the memory available to read it into",
            crate::host::format_bytes(size)
        ),
    };
    if crate::host::available_memory().is_some_and(|free| size > free) {
        return Err(too_big());
    }
    let mut bytes = Vec::new();
    bytes
        .try_reserve_exact(size as usize)
        .map_err(|_| too_big())?;
    file.read_to_end(&mut bytes)
        .map_err(|e| io_error(path, e))?;
    Ok(bytes)
}

#[cfg(unix)]
fn is_block_device(m: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::FileTypeExt;
    m.file_type().is_block_device()
}

#[cfg(not(unix))]
fn is_block_device(_: &std::fs::Metadata) -> bool {
    false
}

fn io_error(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.display().to_string(),
        source,
    }
}

/// The folder a file is in (`.` for a bare name).
pub(crate) fn folder(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// Writes `bytes` to `path`: atomically for a file (see [`replace_with`]), in place for a
/// special file, to standard output for `-` (a reader that closed the pipe is not an error).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    match resolve(path)? {
        Target::File(file) => replace_file(&file, path, |tmp| {
            std::fs::File::create(tmp)?.write_all(bytes)
        }),
        target => write_in_place(&target, path, bytes),
    }
}

/// Replaces `path` with what `write` puts in a temporary file in the same folder (its name
/// ends like `path`'s, so writers that go by the extension work): the file is flushed to
/// disk, renamed over `path`, and the folder flushed so that the rename survives a power cut.
/// A crash at any moment leaves the old file or the new one, never a torn one; on an error the
/// temporary file is removed and `path` is untouched. Links are followed to their file; a
/// special file or `-` gets the finished bytes written in place.
pub fn replace_with(path: &Path, write: impl FnOnce(&Path) -> std::io::Result<()>) -> Result<()> {
    match resolve(path)? {
        Target::File(file) => replace_file(&file, path, write),
        target => {
            // The writer needs a path: let it write a private file, then copy that.
            let dir = std::env::temp_dir();
            let name = path
                .file_name()
                .map_or("output".into(), |n| n.to_string_lossy());
            let tmp = temp::create(&dir, &name).map_err(|e| io_error(&dir, e))?;
            let bytes = write(&tmp).and_then(|()| std::fs::read(&tmp));
            let _ = std::fs::remove_file(&tmp);
            temp::forget(&tmp);
            write_in_place(&target, path, &bytes.map_err(|e| io_error(path, e))?)
        }
    }
}

/// The atomic replacement of the regular file `file` (`asked` is what the user named).
fn replace_file(
    file: &Path,
    asked: &Path,
    write: impl FnOnce(&Path) -> std::io::Result<()>,
) -> Result<()> {
    let dir = folder(file);
    let name = file
        .file_name()
        .ok_or_else(|| Error::Config(format!("{} is not a file path", asked.display())))?
        .to_string_lossy();
    temp::remove_stale(dir);
    let tmp = temp::create(dir, &name).map_err(|e| io_error(asked, e))?;
    let result = (|| {
        write(&tmp)?;
        std::fs::OpenOptions::new()
            .write(true)
            .open(&tmp)?
            .sync_all()?;
        std::fs::rename(&tmp, file)?;
        #[cfg(unix)]
        std::fs::File::open(dir)?.sync_all()?;
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    temp::forget(&tmp);
    result.map_err(|e| io_error(asked, e))
}

/// Opens an existing special file for writing. A named pipe is opened without waiting: with no
/// reader at the other end that is an error (`ENXIO`), not a process blocked until one comes;
/// once open, its writes wait as usual.
fn open_for_writing(path: &Path) -> std::io::Result<std::fs::File> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
        use std::os::unix::io::AsRawFd;
        if std::fs::metadata(path).is_ok_and(|m| m.file_type().is_fifo()) {
            let file = std::fs::OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(path)
                .map_err(|e| match e.raw_os_error() {
                    Some(libc::ENXIO) => std::io::Error::other(
                        "a named pipe with nothing reading it; start the reader first",
                    ),
                    _ => e,
                })?;
            let fd = file.as_raw_fd();
            // SAFETY: fd is open for as long as `file` lives; F_GETFL/F_SETFL only change flags.
            unsafe {
                let flags = libc::fcntl(fd, libc::F_GETFL);
                libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK);
            }
            return Ok(file);
        }
    }
    std::fs::OpenOptions::new().write(true).open(path)
}

/// Writes `bytes` to a special file or standard output, as they are. A reader that closed
/// its end of a pipe early (`| head`) has what it wanted: that is not an error.
fn write_in_place(target: &Target, asked: &Path, bytes: &[u8]) -> Result<()> {
    let result = match target {
        Target::Stdout => {
            let mut out = std::io::stdout().lock();
            out.write_all(bytes).and_then(|()| out.flush())
        }
        Target::Special(p) | Target::File(p) => {
            open_for_writing(p).and_then(|mut f| f.write_all(bytes))
        }
    };
    match result {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => r.map_err(|e| io_error(asked, e)),
    }
}
