//! The temporary files atomic writes go through: named so that wgtrain knows its own, listed
//! while they exist so that a signal handler can remove them, and removed at the next write
//! in their folder when the process that made them died without a chance to (SIGKILL, a
//! power cut).
//!
//! A temporary file is `.wgtrain-tmp-<pid>-<host>-<name>` beside its target: `<host>` is a
//! hash of this machine's name (so that a folder shared between machines is cleaned only of
//! the files of this machine's dead processes), and the name ends like the target's, so that
//! writers that go by the extension work.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

const PREFIX: &str = ".wgtrain-tmp-";

/// The longest target name kept whole in a temporary file's name; longer ones keep their
/// last bytes (the extension), so that the whole name stays under the usual 255-byte limit.
const NAME_TAIL: usize = 200;

/// Temporary files this process has created and not yet renamed or removed.
static PENDING: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
/// Set once [`remove_unfinished`] has run: the process is ending, no new file may start.
static ENDING: AtomicBool = AtomicBool::new(false);

fn pending() -> MutexGuard<'static, Vec<PathBuf>> {
    PENDING.lock().unwrap_or_else(|p| p.into_inner())
}

/// This machine's name as 8 hex digits (CRC-32), the same in every process.
fn host_tag() -> String {
    format!("{:08x}", crc32fast::hash(host_name().as_bytes()))
}

#[cfg(unix)]
fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname writes at most that many bytes.
    let ok = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0;
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    if ok {
        String::from_utf8_lossy(&buf[..end]).into_owned()
    } else {
        String::new()
    }
}

#[cfg(not(unix))]
fn host_name() -> String {
    std::env::var("COMPUTERNAME").unwrap_or_default()
}

/// Whether process `pid` still runs on this machine. Where that cannot be known, yes.
#[cfg(unix)]
fn alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return true;
    };
    // SAFETY: signal 0 sends nothing; it only asks whether the process exists.
    if unsafe { libc::kill(pid, 0) } == 0 {
        return true;
    }
    // EPERM: it exists, but belongs to someone else.
    std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

#[cfg(not(unix))]
fn alive(_pid: u32) -> bool {
    true
}

/// The temporary file's name for a target named `name`, for process `pid`.
fn temp_name(name: &str, pid: u32) -> String {
    let mut start = name.len().saturating_sub(NAME_TAIL);
    while !name.is_char_boundary(start) {
        start += 1;
    }
    format!("{PREFIX}{pid}-{}-{}", host_tag(), &name[start..])
}

/// The pid and host tag of a temporary file's name, if it is one of wgtrain's.
fn parse(name: &str) -> Option<(u32, &str)> {
    let rest = name.strip_prefix(PREFIX)?;
    let (pid, rest) = rest.split_once('-')?;
    let (host, _) = rest.split_once('-')?;
    Some((pid.parse().ok()?, host))
}

/// Creates an empty temporary file for a target named `name` in `dir` and lists it, under
/// the lock a signal handler takes: the file is either listed (and removed by the handler) or
/// never made. Fails once the process is ending.
pub(crate) fn create(dir: &Path, name: &str) -> std::io::Result<PathBuf> {
    let mut list = pending();
    if ENDING.load(Ordering::SeqCst) {
        return Err(std::io::Error::other("the process is ending (interrupted)"));
    }
    let path = dir.join(temp_name(name, std::process::id()));
    // A leftover of this very pid (a reused pid after a reboot) is not anybody's work.
    if !list.contains(&path) {
        let _ = std::fs::remove_file(&path);
    }
    File::options().write(true).create_new(true).open(&path)?;
    list.push(path.clone());
    Ok(path)
}

/// Takes `path` off the list, once it has been renamed into place or removed.
pub(crate) fn forget(path: &Path) {
    pending().retain(|p| p != path);
}

/// Removes every temporary file this process has not finished, and refuses new ones from
/// now on. For a signal handler (SIGINT, SIGTERM): call it, then end the process. A write
/// in progress then fails or completes; the file it replaces is whole either way.
pub fn remove_unfinished() {
    let mut list = pending();
    ENDING.store(true, Ordering::SeqCst);
    for path in list.drain(..) {
        let _ = std::fs::remove_file(path);
    }
}

/// Removes, from `dir`, the temporary files of this machine's processes that no longer run:
/// what a SIGKILL or a power cut left behind. Errors are ignored: this is tidying, not the
/// write itself.
pub(crate) fn remove_stale(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let (host, me) = (host_tag(), std::process::id());
    let mine = pending().clone();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some((pid, tag)) = name.to_str().and_then(parse) else {
            continue;
        };
        let path = entry.path();
        let stale = tag == host
            && if pid == me {
                !mine.contains(&path)
            } else {
                !alive(pid)
            };
        if stale && entry.file_type().is_ok_and(|t| t.is_file()) {
            let _ = std::fs::remove_file(&path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_keep_the_extension() {
        let n = temp_name("model.safetensors", 4242);
        assert!(n.ends_with("-model.safetensors"), "{n}");
        assert_eq!(parse(&n), Some((4242, host_tag().as_str())));
        let long = format!("{}.png", "x".repeat(400));
        let n = temp_name(&long, 1);
        assert!(n.len() < 255 && n.ends_with(".png"), "{}", n.len());
        assert_eq!(parse(".tmp-12-model"), None);
        assert_eq!(parse(".wgtrain-tmp-abc-1-x"), None);
    }

    #[test]
    fn this_process_is_alive() {
        assert!(alive(std::process::id()));
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("wgtrain-temp-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// A process that has exited: its pid, which nothing reuses in the moment the test takes.
    #[cfg(unix)]
    fn dead_pid() -> u32 {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        pid
    }

    #[cfg(unix)]
    fn stale_files_of_dead_processes_go_and_the_rest_stay() {
        let dir = scratch("stale");
        let dead = dir.join(temp_name("m.safetensors", dead_pid()));
        let living = dir.join(temp_name("m.safetensors", 1)); // init: always running
        let elsewhere = dir.join(format!("{PREFIX}{}-00000000-m.safetensors", dead_pid()));
        let other_tool = dir.join(format!(".tmp-{}-m.safetensors", dead_pid()));
        let mine_unlisted = dir.join(temp_name("old.csv", std::process::id()));
        for p in [&dead, &living, &elsewhere, &other_tool, &mine_unlisted] {
            std::fs::write(p, b"x").unwrap();
        }
        let mine = create(&dir, "busy.csv").unwrap();
        remove_stale(&dir);
        assert!(!dead.exists(), "a dead process's file stays");
        assert!(
            !mine_unlisted.exists(),
            "this pid's unlisted leftover stays"
        );
        for p in [&living, &elsewhere, &other_tool, &mine] {
            assert!(p.exists(), "{} was removed", p.display());
        }
        forget(&mine);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// One test, because both parts use the global list (and `ENDING`): stale files of dead
    /// processes go at the next write, unfinished ones when the process ends.
    #[test]
    fn temporary_files_are_tidied() {
        #[cfg(unix)]
        stale_files_of_dead_processes_go_and_the_rest_stay();
        let dir = scratch("unfinished");
        let a = create(&dir, "a.png").unwrap();
        let b = create(&dir, "b.csv").unwrap();
        forget(&b);
        remove_unfinished();
        assert!(!a.exists() && b.exists());
        assert!(create(&dir, "c.csv").is_err(), "the process is ending");
        ENDING.store(false, Ordering::SeqCst);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
