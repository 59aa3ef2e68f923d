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
pub(crate) mod ranks;
pub(crate) mod summary;
pub(crate) mod train;
pub(crate) mod train_run;

use wgtrain::backend::cpu::CpuBackend;
use wgtrain::backend::gpu::GpuBackend;
use wgtrain::backend::reference::ReferenceBackend;
use wgtrain::backend::{choose_auto, AutoChoice, Backend};
use wgtrain::Result;

use args::BackendChoice;

/// The backend a subcommand runs on: its name in `--json`'s `backend`, and, for
/// `--backend auto`, why it was chosen (`backend_reason`).
pub(crate) struct Chosen {
    pub(crate) kind: &'static str,
    pub(crate) why: Option<String>,
}

/// A subcommand that runs on whichever backend `--backend` picks.
pub(crate) trait Job {
    fn run<B: Backend>(self, backend: B, chosen: &Chosen) -> Result<()>;
}

pub(crate) fn dispatch(choice: BackendChoice, job: impl Job) -> Result<()> {
    let named = |kind| Chosen { kind, why: None };
    match choice {
        BackendChoice::Cpu => job.run(CpuBackend::new()?, &named("cpu")),
        BackendChoice::Reference => job.run(ReferenceBackend::new(), &named("reference")),
        BackendChoice::Gpu => job.run(GpuBackend::new()?, &named("gpu")),
        BackendChoice::Auto => {
            let (choice, why) = choose_auto()?;
            let kind = match choice {
                AutoChoice::Gpu(_) => "gpu",
                AutoChoice::Cpu(_) => "cpu",
            };
            wgtrain::stderr_line!("backend: {kind} (--backend auto): {why}");
            let chosen = Chosen {
                kind,
                why: Some(why),
            };
            match choice {
                AutoChoice::Gpu(g) => job.run(*g, &chosen),
                AutoChoice::Cpu(c) => job.run(c, &chosen),
            }
        }
    }
}
