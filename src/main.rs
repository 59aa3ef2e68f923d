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
use cli::predict::Predict;
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

#[derive(Subcommand)]
enum Command {
    /// Train an MLP (by default on the built-in digits set) and report test accuracy.
    Train(Box<TrainArgs>),
    /// Loss and metrics of a saved model on labelled data.
    Evaluate(EvaluateArgs),
    /// A saved model's outputs (probabilities for a classifier) for each row of the data.
    Predict(PredictArgs),
    /// Run the BENCHMARKS.md workloads on the adapter (and the small ones on the CPU
    /// reference, side by side) and print the measurements.
    Bench(BenchArgs),
}

fn main() -> ExitCode {
    quiet_mesa();
    let started = Instant::now();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Train(args) => {
            prepare_training(&args, started).and_then(|job| dispatch(args.common.backend, job))
        }
        Command::Evaluate(args) => dispatch(args.common.backend, Evaluate(&args)),
        Command::Predict(args) => dispatch(args.common.backend, Predict(&args)),
        Command::Bench(args) => bench(&args, started),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            wgtrain::stderr_line!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Mesa's software Vulkan prints "XDG_RUNTIME_DIR is invalid" at every start when the
/// variable is unset: harmless, but it reads like a failure. Give it a private folder.
fn quiet_mesa() {
    #[cfg(unix)]
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        use std::os::unix::fs::DirBuilderExt;
        let dir = std::env::temp_dir().join(format!("wgtrain-runtime-{}", std::process::id()));
        if std::fs::DirBuilder::new().mode(0o700).create(&dir).is_ok() {
            // Called first thing in main, before any other thread exists.
            std::env::set_var("XDG_RUNTIME_DIR", &dir);
        }
    }
}
