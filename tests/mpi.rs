//! `mpirun -np 2 wgtrain train` (the `mpi` feature): two processes train what one process
//! with the same global batch trains (within 1e-6 relative on the CPU backend, 1e-4 on
//! lavapipe); a run resumes from 2 ranks in 1 and from 1 in 2; a rank killed mid-run, or one
//! that stops answering, ends the job with an error that says so, and the last checkpoint
//! rank 0 wrote is whole. Skipped without `mpirun` unless `WGTRAIN_REQUIRE_MPI=1` (CI).
#![cfg(all(feature = "mpi", unix))]

mod common;

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::cli::Scratch;
use wgtrain::checkpoint::Checkpoint;

/// `mpirun`'s flags for this machine: Open MPI wants `--oversubscribe` for more ranks than
/// cores, and `--allow-run-as-root` in containers that run as root.
fn mpirun() -> Option<Command> {
    let version = Command::new("mpirun").arg("--version").output();
    let open_mpi = match version {
        Ok(o) => String::from_utf8_lossy(&o.stdout).contains("Open MPI"),
        Err(e) => {
            assert!(
                std::env::var("WGTRAIN_REQUIRE_MPI").map_or(true, |v| v != "1"),
                "WGTRAIN_REQUIRE_MPI=1 but mpirun does not run: {e}"
            );
            eprintln!("wgtrain MPI tests SKIPPED: no mpirun ({e})");
            return None;
        }
    };
    let mut c = Command::new("mpirun");
    if open_mpi {
        c.args(["--oversubscribe", "--allow-run-as-root"]);
    }
    Some(c)
}

fn train_args(extra: &[&str]) -> Vec<String> {
    // The digits, a small network, a short last batch (1438 training rows in 32s).
    let mut args: Vec<String> = ["train", "--layers", "32", "--lr", "0.005", "--verbose", "0"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

fn spawn(ranks: Option<usize>, dir: &Path, args: &[String], env: &[(&str, &str)]) -> Child {
    let mut c = match ranks {
        Some(n) => {
            let mut c = mpirun().expect("checked by the caller");
            c.args(["-np", &n.to_string(), env!("CARGO_BIN_EXE_wgtrain")]);
            c
        }
        None => Command::new(env!("CARGO_BIN_EXE_wgtrain")),
    };
    c.args(args)
        .envs(env.iter().copied())
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the command starts")
}

/// Waits for `child` at most `limit` (killed and failed after), with its output.
fn finish(mut child: Child, limit: Duration) -> Output {
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "still running after {limit:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

fn run(ranks: Option<usize>, dir: &Path, args: &[String]) -> Output {
    let out = finish(spawn(ranks, dir, args, &[]), Duration::from_secs(600));
    assert!(
        out.status.success(),
        "{ranks:?} ranks, {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Every trained tensor of a checkpoint, in order.
fn weights(path: &str) -> Vec<Vec<f32>> {
    Checkpoint::load(Path::new(path))
        .unwrap()
        .weights
        .into_iter()
        .flat_map(|w| w.params)
        .map(|t| t.values)
        .collect()
}

/// The largest difference of a tensor's values over its largest value, worst tensor.
fn gap(a: &[Vec<f32>], b: &[Vec<f32>]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(a, b)| {
            let scale = b.iter().fold(0.0f64, |m, v| m.max(v.abs() as f64));
            let d = a
                .iter()
                .zip(b)
                .fold(0.0f64, |m, (x, y)| m.max((x - y).abs() as f64));
            d / scale.max(f64::MIN_POSITIVE)
        })
        .fold(0.0, f64::max)
}

/// `--backend backend` on 2 ranks (with `extra` flags) against one process.
fn two_ranks_match_one(backend: &str, extra: &[&str], tolerance: f64) {
    if mpirun().is_none() {
        return;
    }
    let dir = Scratch::new(&format!("mpi-match-{backend}{}", extra.concat()));
    let flags = ["--backend", backend, "--epochs", "3"];
    let one = train_args(&[&flags[..], &["--save", "one.safetensors"]].concat());
    let two = train_args(&[&flags[..], &["--save", "two.safetensors", "--json"], extra].concat());
    run(None, &dir.0, &one);
    let out = run(Some(2), &dir.0, &two);
    // Rank 0 alone reports: one JSON line.
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(stdout.contains("\"ranks\":2"), "{stdout}");
    let g = gap(
        &weights(&dir.path("two.safetensors")),
        &weights(&dir.path("one.safetensors")),
    );
    assert!(
        g <= tolerance,
        "{backend} {extra:?}: 2 ranks' weights {g:e} from one process's"
    );
}

#[test]
fn two_ranks_train_as_one_process_cpu() {
    two_ranks_match_one("cpu", &[], 1e-6);
}

#[test]
fn two_ranks_train_as_one_process_gpu() {
    if common::gpu().is_some() {
        two_ranks_match_one("gpu", &[], 1e-4);
        // In buckets (each layer its own), each read back while the layer below it runs.
        two_ranks_match_one("gpu", &["--bucket-mb", "0"], 1e-4);
    }
}

#[test]
fn a_run_resumes_from_two_ranks_in_one_and_from_one_in_two() {
    if mpirun().is_none() {
        return;
    }
    let dir = Scratch::new("mpi-resume");
    let cpu = ["--backend", "cpu"];
    let args = |extra: &[&str]| train_args(&[&cpu[..], extra].concat());
    run(
        None,
        &dir.0,
        &args(&["--epochs", "4", "--save", "straight.safetensors"]),
    );
    // 2 ranks for 2 epochs, then 1 process for 2 more.
    run(
        Some(2),
        &dir.0,
        &args(&["--epochs", "2", "--save", "half2.safetensors"]),
    );
    let resume = dir.path("half2.safetensors");
    run(
        None,
        &dir.0,
        &args(&[
            "--epochs",
            "4",
            "--resume",
            &resume,
            "--save",
            "end1.safetensors",
        ]),
    );
    // 1 process for 2 epochs, then 2 ranks for 2 more.
    run(
        None,
        &dir.0,
        &args(&["--epochs", "2", "--save", "half1.safetensors"]),
    );
    let resume = dir.path("half1.safetensors");
    run(
        Some(2),
        &dir.0,
        &args(&[
            "--epochs",
            "4",
            "--resume",
            &resume,
            "--save",
            "end2.safetensors",
        ]),
    );
    let straight = weights(&dir.path("straight.safetensors"));
    for end in ["end1.safetensors", "end2.safetensors"] {
        let g = gap(&weights(&dir.path(end)), &straight);
        assert!(g <= 1e-6, "{end}: {g:e} from an unbroken run");
    }
}

/// The pid of rank `rank` among `mpirun`'s children, from their environment.
fn rank_pid(mpirun: u32, rank: usize) -> Option<u32> {
    let children =
        std::fs::read_to_string(format!("/proc/{mpirun}/task/{mpirun}/children")).ok()?;
    children.split_whitespace().find_map(|pid| {
        let env = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
        let wanted = format!("OMPI_COMM_WORLD_RANK={rank}");
        env.split(|&b| b == 0)
            .any(|v| v == wanted.as_bytes())
            .then(|| pid.parse().ok())
            .flatten()
    })
}

/// Starts a long 2-rank run that checkpoints every epoch, waits for its first checkpoint,
/// sends rank 1 `signal`, and returns the run's output (its folder removed).
fn interrupt_rank_one(name: &str, signal: &str, env: &[(&str, &str)]) -> Option<Output> {
    mpirun()?;
    let dir = Scratch::new(name);
    let save = dir.path("run.safetensors");
    let args = train_args(&[
        "--backend",
        "cpu",
        "--epochs",
        "100000",
        "--save",
        &save,
        "--save-mode",
        "epoch",
    ]);
    let child = spawn(Some(2), &dir.0, &args, env);
    let start = Instant::now();
    while !Path::new(&save).exists() {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no checkpoint after 2 minutes"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let pid = rank_pid(child.id(), 1).expect("rank 1 is one of mpirun's children");
    let killed = Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = finish(child, Duration::from_secs(120));
    // Rank 0's checkpoint is whole: written atomically, epoch by epoch.
    let ckpt = Checkpoint::load(Path::new(&save)).expect("the last checkpoint loads");
    assert!(ckpt.epoch >= 1);
    Some(out)
}

#[test]
fn a_killed_rank_ends_the_job_and_names_itself() {
    let Some(out) = interrupt_rank_one("mpi-kill", "-KILL", &[]) else {
        return;
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    // Open MPI's mpirun names the rank that died.
    assert!(
        stderr.contains("rank 1") && stderr.contains("signal 9"),
        "{stderr}"
    );
}

#[test]
fn a_rank_that_stops_answering_times_the_job_out() {
    let env = [("WGTRAIN_MPI_TIMEOUT", "3")];
    let Some(out) = interrupt_rank_one("mpi-stop", "-STOP", &env) else {
        return;
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("rank 0 of 2: the other ranks did not reach"),
        "{stderr}"
    );
}
