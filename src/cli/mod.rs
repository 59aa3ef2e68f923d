//! The subcommands of the `wgtrain` binary, one module each, over the library.

/// `println!` through [`output::emit`]: a closed stdout ends the output, not the process.
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::cli::output::emit(&format!("{}\n", format!($($arg)*)))?
    };
}

pub(crate) mod args;
pub(crate) mod bench;
pub(crate) mod data;
pub(crate) mod evaluate;
pub(crate) mod output;
pub(crate) mod predict;
pub(crate) mod summary;
pub(crate) mod train;
pub(crate) mod train_run;

use wgtrain::backend::gpu::GpuBackend;
use wgtrain::backend::reference::ReferenceBackend;
use wgtrain::backend::Backend;
use wgtrain::Result;

use args::BackendChoice;

/// A subcommand that runs on whichever backend `--backend` picks.
pub(crate) trait Job {
    fn run<B: Backend>(self, backend: B, kind: &str) -> Result<()>;
}

pub(crate) fn dispatch(choice: BackendChoice, job: impl Job) -> Result<()> {
    match choice {
        BackendChoice::Cpu => job.run(ReferenceBackend::new(), "cpu"),
        BackendChoice::Gpu => job.run(GpuBackend::new()?, "gpu"),
        BackendChoice::Auto => match GpuBackend::new() {
            Ok(g) => job.run(g, "gpu"),
            Err(e) => {
                wgtrain::stderr_line!(
                    "warning: no GPU ({e}); running on the CPU reference, which is slow"
                );
                job.run(ReferenceBackend::new(), "cpu")
            }
        },
    }
}
