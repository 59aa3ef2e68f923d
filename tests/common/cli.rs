//! Running the `wgtrain` binary from tests: with a time limit (a hang is a failure, not a
//! stuck CI job), its output drained as it comes; in scratch folders, with small models.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Runs the binary with `args` in `dir`, killed (and failed) after `limit`.
pub fn run_in(dir: &Path, args: &[String], limit: Duration) -> Output {
    run_with(dir, args, &[], limit)
}

/// [`run_in`] with these environment variables set.
pub fn run_with(dir: &Path, args: &[String], env: &[(&str, &str)], limit: Duration) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_wgtrain"))
        .args(args)
        .envs(env.iter().copied())
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    // Drain the pipes on threads so that a chatty run cannot block on a full pipe.
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let out_t = std::thread::spawn(move || {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut out, &mut v).ok();
        v
    });
    let err_t = std::thread::spawn(move || {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut err, &mut v).ok();
        v
    });
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > limit {
            child.kill().ok();
            child.wait().ok();
            panic!("{args:?} ran past {limit:?}: it hangs");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Output {
        status,
        stdout: out_t.join().unwrap(),
        stderr: err_t.join().unwrap(),
    }
}

/// A folder of its own under the temporary folder, removed when dropped.
pub struct Scratch(pub PathBuf);

impl Scratch {
    /// `wgtrain-<name>-<pid>`, made empty.
    pub fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("wgtrain-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    /// The path of `file` in it.
    pub fn path(&self, file: &str) -> String {
        self.0.join(file).to_str().unwrap().to_string()
    }

    /// Writes `bytes` to `file` in it (making the folders on the way); returns its path.
    pub fn write(&self, file: &str, bytes: &[u8]) -> String {
        let p = self.0.join(file);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, bytes).unwrap();
        self.path(file)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.0).ok();
    }
}

/// Owned arguments.
pub fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// Trains a small model (1 epoch, one hidden layer of 8, on the reference, quietly) in `dir`,
/// saved to `save`, with `extra` flags.
pub fn train_small(dir: &Path, save: &str, extra: &[&str]) -> Output {
    let mut a = args(&[
        "train",
        "--backend",
        "cpu",
        "--epochs",
        "1",
        "--layers",
        "8",
        "--verbose",
        "0",
        "--save",
        save,
    ]);
    a.extend(extra.iter().map(|s| s.to_string()));
    run_in(dir, &a, Duration::from_secs(120))
}
