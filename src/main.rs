//! The `wgtrain` command line: a thin layer over the library.
//! Flags are read in `cli::args`; each subcommand lives in its own module under `src/cli/`.

mod cli;

use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand};

use cli::args::{BenchArgs, EvaluateArgs, PredictArgs, TrainArgs};
use cli::bench::bench;
use cli::dispatch;
use cli::evaluate::Evaluate;
use cli::predict::{check_predict, Predict};
use cli::train::prepare_training;

#[derive(Parser)]
#[command(
    name = "wgtrain",
    version,
    about = "Train neural networks on any GPU wgpu reaches"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Negative numbers are values (`--lr -1` is then refused for what it is, not misread as a flag).
#[derive(Subcommand)]
enum Command {
    /// Train an MLP (by default on the built-in digits set) and report test accuracy.
    #[command(allow_negative_numbers = true)]
    Train(Box<TrainArgs>),
    /// Loss and metrics of a saved model on labelled data.
    #[command(allow_negative_numbers = true)]
    Evaluate(EvaluateArgs),
    /// A saved model's outputs (probabilities for a classifier) for each row of the data.
    #[command(allow_negative_numbers = true)]
    Predict(PredictArgs),
    /// Run the BENCHMARKS.md workloads on the adapter (and the small ones on the CPU
    /// reference, side by side) and print the measurements.
    #[command(allow_negative_numbers = true)]
    Bench(BenchArgs),
    /// A saved model's layers, output shapes and parameter counts (total, trainable and
    /// not), as Keras' model.summary() prints them.
    Summary(cli::summary::SummaryArgs),
}

fn main() -> ExitCode {
    quiet_mesa();
    remove_temporary_files_on_signals();
    let started = Instant::now();
    let cli = Cli::parse();
    // Joined first: an MPI launcher's ranks agree on everything else later.
    let ranks = match cli::ranks::join() {
        Ok(r) => r,
        Err(e) => {
            wgtrain::stderr_line!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let prefix = cli::ranks::prefix(&ranks);
    let result = match cli.command {
        Command::Train(args) => prepare_training(&args, started, ranks.clone())
            .and_then(|job| dispatch(args.common.backend, job)),
        Command::Evaluate(args) => cli::ranks::refuse(&ranks, "evaluate")
            .and_then(|()| args.input.check())
            .and_then(|()| dispatch(args.common.backend, Evaluate(&args))),
        Command::Predict(args) => cli::ranks::refuse(&ranks, "predict")
            .and_then(|()| check_predict(&args))
            .and_then(|()| dispatch(args.common.backend, Predict(&args))),
        Command::Bench(args) => bench(&args, started, ranks.clone()),
        Command::Summary(args) => cli::summary::summary(&args),
    };
    // The last holder of the job finalizes MPI.
    drop(ranks);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            wgtrain::stderr_line!("error: {prefix}{e}");
            ExitCode::FAILURE
        }
    }
}

/// Mesa's software Vulkan prints "XDG_RUNTIME_DIR is invalid" at every start when the
/// variable is unset: harmless, but it reads like a failure. Give it a private folder: one per
/// user, made once and reused, so that runs leave nothing behind; skipped (Mesa then warns)
/// where a folder of that name exists but is not this user's alone.
fn quiet_mesa() {
    #[cfg(unix)]
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        use std::os::unix::fs::{DirBuilderExt, MetadataExt};
        // SAFETY: getuid cannot fail.
        let uid = unsafe { libc::getuid() };
        let dir = std::env::temp_dir().join(format!("wgtrain-runtime-{uid}"));
        let _ = std::fs::DirBuilder::new().mode(0o700).create(&dir);
        let private = std::fs::symlink_metadata(&dir)
            .is_ok_and(|m| m.is_dir() && m.uid() == uid && m.mode() & 0o077 == 0);
        if private {
            // Called first thing in main, before any other thread exists.
            std::env::set_var("XDG_RUNTIME_DIR", &dir);
        }
    }
}

/// On SIGINT, SIGTERM or SIGHUP, removes the temporary files of unfinished writes (the file
/// each would have replaced is whole), then ends the process by the same signal, as it would
/// have ended without the handler.
fn remove_temporary_files_on_signals() {
    #[cfg(unix)]
    {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]) else {
            return;
        };
        std::thread::spawn(move || {
            if let Some(signal) = signals.forever().next() {
                wgtrain::fs::remove_unfinished();
                let _ = signal_hook::low_level::emulate_default_handler(signal);
                std::process::exit(128 + signal);
            }
        });
    }
}
