//! What the CLI does with the user's files under faults: a run that diverges, a stderr that
//! closes, Ctrl-C and SIGKILL during a write, outputs behind links and on special files. Bad
//! input of every kind is in tests/bad_input.rs.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::cli::{args, run_in, run_with, train_small, Scratch};

const MINUTE: Duration = Duration::from_secs(60);

/// The built-in digits as a file (the runs here happen in scratch folders).
const DIGITS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data/digits.csv");

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The case: SGD at lr 1e30 onto an existing good model. The run fails, the model
/// file is untouched, the last good weights are beside it and evaluate to a finite loss, and
/// the message and the JSON say which step they are from. A model whose outputs are not
/// finite fails `evaluate`.
#[test]
fn a_diverged_run_never_replaces_the_model_and_keeps_its_last_good_weights() {
    let s = Scratch::new("safety-diverge");
    let good = s.path("good.safetensors");
    assert!(train_small(&s.0, &good, &[]).status.success());
    let before = std::fs::read(&good).unwrap();
    let o = run_in(
        &s.0,
        &args(&[
            "train",
            "--backend",
            "cpu",
            "--optimizer",
            "sgd",
            "--lr",
            "1e30",
            "--epochs",
            "2",
            "--layers",
            "8",
            "--save",
            &good,
            "--json",
            "--history",
            &s.path("h.json"),
        ]),
        MINUTE,
    );
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert_eq!(
        std::fs::read(&good).unwrap(),
        before,
        "the good model was replaced"
    );
    let last_good = s.path("good.last-good.safetensors");
    assert!(
        err.contains("good.safetensors was not written") && err.contains(&last_good),
        "{err}"
    );
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["diverged"]["step"], 0, "{report}");
    assert_eq!(report["diverged"]["last_good"], last_good.as_str());
    let h: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(s.path("h.json")).unwrap()).unwrap();
    assert_eq!(h["diverged"]["epoch"], 1, "the history records it: {h}");
    let eval = |model: &str| {
        run_in(
            &s.0,
            &args(&[
                "evaluate",
                "--backend",
                "cpu",
                "--model",
                model,
                "--data",
                DIGITS,
                "--json",
            ]),
            MINUTE,
        )
    };
    let e = eval(&last_good);
    assert!(e.status.success(), "{}", stderr(&e));
    let loss = serde_json::from_slice::<serde_json::Value>(&e.stdout).unwrap()["loss"].as_f64();
    assert!(loss.is_some_and(f64::is_finite), "{loss:?}");

    // Weights of 3e38 load (they are finite) but overflow the outputs: evaluate fails.
    let mut bytes = std::fs::read(&good).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let [lo, hi] = [0, 1].map(|i| {
        header["dense_0.weight"]["data_offsets"][i]
            .as_u64()
            .unwrap() as usize
    });
    for w in bytes[8 + n + lo..8 + n + hi].chunks_exact_mut(4) {
        w.copy_from_slice(&3e38f32.to_le_bytes());
    }
    let blown = s.path("blown.safetensors");
    std::fs::write(&blown, bytes).unwrap();
    let e = eval(&blown);
    assert_eq!(e.status.code(), Some(1), "{}", stderr(&e));
    assert!(stderr(&e).contains("not finite"), "{}", stderr(&e));
}

/// `wgtrain train --verbose 2 --save m 2>&1 >/dev/null | head -c1`: the reader of stderr
/// goes away after one byte; the run finishes and saves.
#[test]
fn a_closed_stderr_does_not_stop_the_run() {
    let s = Scratch::new("safety-stderr");
    let model = s.path("m.safetensors");
    let mut child = Command::new(env!("CARGO_BIN_EXE_wgtrain"))
        .args([
            "train",
            "--backend",
            "cpu",
            "--epochs",
            "3",
            "--layers",
            "8",
            "--verbose",
            "2",
            "--save",
            &model,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 1];
    std::io::Read::read_exact(child.stderr.as_mut().unwrap(), &mut first).unwrap();
    drop(child.stderr.take()); // the pipe is closed now
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert!(Path::new(&model).exists());
}

/// The temporary files in `dir`.
fn temporaries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".wgtrain-tmp-"))
        .collect()
}

/// Starts a training whose plot is drawn into a temporary file (which takes long enough to
/// catch), and sends `signal` once that file exists. Returns whether it was caught there.
#[cfg(unix)]
fn signal_during_a_write(dir: &Path, signal: i32) -> (bool, std::process::ExitStatus) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_wgtrain"))
        .current_dir(dir)
        .args([
            "train",
            "--backend",
            "cpu",
            "--epochs",
            "2",
            "--layers",
            "8",
            "--verbose",
            "0",
            "--plot",
            "p.png",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let mut caught = false;
    while child.try_wait().unwrap().is_none() && start.elapsed() < MINUTE {
        if !temporaries(dir).is_empty() {
            // SAFETY: signalling our own child.
            unsafe { libc::kill(child.id() as libc::pid_t, signal) };
            caught = true;
            break;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    (caught, child.wait().unwrap())
}

/// Ctrl-C (SIGINT) or SIGTERM during a write: the temporary file goes, the process ends by
/// that signal, and the target is absent or whole. SIGKILL cannot be caught: its temporary
/// file stays, and the next write in the folder removes it.
#[cfg(unix)]
#[test]
fn interrupted_writes_leave_no_temporary_files() {
    use std::os::unix::process::ExitStatusExt;
    let s = Scratch::new("safety-signals");
    for signal in [libc::SIGINT, libc::SIGTERM] {
        let mut hit = 0;
        for _ in 0..20 {
            let (caught, status) = signal_during_a_write(&s.0, signal);
            assert!(
                temporaries(&s.0).is_empty(),
                "signal {signal} left {:?}",
                temporaries(&s.0)
            );
            if caught && status.signal() == Some(signal) {
                hit += 1;
                if let Ok(bytes) = std::fs::read(s.0.join("p.png")) {
                    assert!(bytes.starts_with(b"\x89PNG"), "a torn plot");
                }
                break;
            }
        }
        assert!(
            hit > 0,
            "signal {signal} never landed during a write in 20 tries"
        );
    }
    let mut left = Vec::new();
    for _ in 0..20 {
        let (caught, status) = signal_during_a_write(&s.0, libc::SIGKILL);
        left = temporaries(&s.0);
        if caught && status.signal() == Some(libc::SIGKILL) && !left.is_empty() {
            break;
        }
    }
    assert!(
        !left.is_empty(),
        "SIGKILL never landed during a write in 20 tries"
    );
    assert!(train_small(&s.0, &s.path("next.safetensors"), &[])
        .status
        .success());
    assert!(
        temporaries(&s.0).is_empty(),
        "the next write left {:?}",
        temporaries(&s.0)
    );
}

/// `--out` through a link writes the file the link names (the link stays a link); `-`,
/// `/dev/stdout` and `/proc/self/fd/1` write to standard output, whatever it is.
#[test]
fn outputs_behind_links_and_on_special_files() {
    let s = Scratch::new("safety-special");
    let model = s.path("m.safetensors");
    assert!(train_small(&s.0, &model, &[]).status.success());
    let predict = |out: &str| {
        run_in(
            &s.0,
            &args(&[
                "predict",
                "--backend",
                "cpu",
                "--model",
                &model,
                "--data",
                DIGITS,
                "--out",
                out,
            ]),
            MINUTE,
        )
    };
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink("target.csv", s.0.join("link.csv")).unwrap();
        let o = predict(&s.path("link.csv"));
        assert!(o.status.success(), "{}", stderr(&o));
        let link = std::fs::symlink_metadata(s.0.join("link.csv")).unwrap();
        assert!(
            link.file_type().is_symlink(),
            "the link was replaced by a file"
        );
        let text = std::fs::read_to_string(s.0.join("target.csv")).unwrap();
        assert_eq!(text.lines().count(), 1798);
    }
    for out in ["-", "/dev/stdout", "/proc/self/fd/1"] {
        if out.starts_with('/') && !Path::new(out).exists() {
            continue;
        }
        let o = predict(out);
        assert!(o.status.success(), "{out}: {}", stderr(&o));
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(
            text.starts_with("class,p_0") && text.lines().count() == 1798,
            "{out}: {text:.200}"
        );
    }
}

/// Data as users have it: a gzip-compressed CSV (whatever its name), a UTF-8 byte-order
/// mark; and a test label the training rows never have is said, not passed over.
#[test]
fn gzip_a_byte_order_mark_and_an_unseen_test_label() {
    use std::io::Write;
    let s = Scratch::new("safety-data");
    let digits = std::fs::read(DIGITS).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&digits).unwrap();
    std::fs::write(s.0.join("digits.csv"), gz.finish().unwrap()).unwrap();
    let o = run_in(
        &s.0,
        &args(&[
            "train",
            "--backend",
            "cpu",
            "--data",
            "digits.csv",
            "--epochs",
            "1",
            "--layers",
            "8",
            "--verbose",
            "0",
            "--json",
        ]),
        MINUTE,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let mut bom = b"\xef\xbb\xbf".to_vec();
    bom.extend_from_slice(&digits);
    std::fs::write(s.0.join("bom.csv"), bom).unwrap();
    let o = run_in(
        &s.0,
        &args(&[
            "train",
            "--backend",
            "cpu",
            "--data",
            "bom.csv",
            "--label-column",
            "pixel_0_0",
            "--loss",
            "mse",
            "--epochs",
            "1",
            "--layers",
            "8",
            "--verbose",
            "0",
        ]),
        MINUTE,
    );
    assert!(
        o.status.success(),
        "the first header is `pixel_0_0`, not a BOM and `pixel_0_0`: {}",
        stderr(&o)
    );
    let rows: String = (0..40).map(|i| format!("{i},{}\n", i % 3)).collect();
    std::fs::write(s.0.join("train.csv"), format!("a,label\n{rows}")).unwrap();
    std::fs::write(s.0.join("test.csv"), "a,label\n1,0\n2,5\n").unwrap();
    let o = run_in(
        &s.0,
        &args(&[
            "train",
            "--backend",
            "cpu",
            "--data",
            "train.csv",
            "--test-data",
            "test.csv",
            "--epochs",
            "1",
            "--verbose",
            "0",
        ]),
        MINUTE,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("test.csv line 3: label 5 never occurs in the training rows"),
        "{}",
        stderr(&o)
    );
}

/// A resume continues with its checkpoint's learning rate: a different `--lr` is said to be
/// unused, not silently dropped.
#[test]
fn a_resume_says_that_it_keeps_its_learning_rate() {
    let s = Scratch::new("safety-resume-lr");
    let model = s.path("m.safetensors");
    assert!(train_small(&s.0, &model, &[]).status.success());
    let o = run_in(
        &s.0,
        &args(&[
            "train",
            "--backend",
            "cpu",
            "--epochs",
            "2",
            "--layers",
            "8",
            "--verbose",
            "0",
            "--resume",
            &model,
            "--lr",
            "0.0001",
        ]),
        MINUTE,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("--lr 0.0001 is not used"),
        "{}",
        stderr(&o)
    );
}

/// A `WGTRAIN_TUNE_CACHE` that names a FIFO (or `/dev/zero`) is skipped, not read forever.
#[cfg(unix)]
#[test]
fn a_tune_cache_that_is_not_a_file_does_not_hang() {
    if common::gpu().is_none() {
        return;
    }
    let s = Scratch::new("safety-tune-fifo");
    let fifo = s.path("cache.fifo");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    for cache in [fifo.as_str(), "/dev/zero"] {
        let o = run_with(
            &s.0,
            &args(&[
                "bench",
                "--workload",
                "MM-S",
                "--repeats",
                "1",
                "--backend",
                "gpu",
                "--no-reference",
            ]),
            &[("WGTRAIN_TUNE_CACHE", cache)],
            MINUTE,
        );
        assert!(o.status.success(), "{cache}: {}", stderr(&o));
    }
}
