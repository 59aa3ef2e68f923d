//! `--backend auto`: a real GPU where wgpu finds one, else the fast CPU backend, and the
//! examples' way to run the same job on whichever was picked.

use super::{cpu, gpu, Backend};
use crate::error::Result;

/// Work written once for every backend, run by [`on_default_backend`] on the one it picks.
pub trait BackendJob {
    /// What the work returns.
    type Output;
    /// Runs the work; `new_backend` makes a backend of the chosen kind each time it is called
    /// (a model takes one), the first call handing over the one already opened.
    fn run<B: Backend>(self, new_backend: &dyn Fn() -> Result<B>) -> Self::Output;
}

/// What [`choose_auto`] picked.
#[derive(Debug)]
pub enum AutoChoice {
    /// A real GPU (discrete, integrated or virtual).
    Gpu(Box<gpu::GpuBackend>),
    /// The fast CPU backend: no GPU adapter, or only a software one.
    Cpu(cpu::CpuBackend),
}

/// The choice of `--backend auto`, and why: a real GPU (discrete, integrated or virtual)
/// when wgpu finds one, else the fast CPU backend, which is much faster than a software
/// adapter such as lavapipe (`--backend gpu` still runs on one). `WGTRAIN_ADAPTER` narrows
/// the adapters looked at, as for `--backend gpu`. An error only for a bad
/// `WGTRAIN_THREADS`.
pub fn choose_auto() -> Result<(AutoChoice, String)> {
    let cpu_because = |why: String| -> Result<(AutoChoice, String)> {
        Ok((AutoChoice::Cpu(cpu::CpuBackend::new()?), why))
    };
    // The adapter is looked at before a device is opened on it: opening lavapipe only to
    // reject it would cost the start-up a CPU run does not need.
    match gpu::GpuContext::best_adapter() {
        Ok(a) if a.device_type == "Cpu" => cpu_because(format!(
            "the only GPU adapter is a software one ({a}), slower than the CPU backend; --backend gpu runs on it"
        )),
        Ok(_) => match gpu::GpuBackend::new() {
            Ok(g) => {
                let why = format!("a real GPU adapter, {}", g.context().adapter());
                Ok((AutoChoice::Gpu(Box::new(g)), why))
            }
            Err(e) => cpu_because(format!("the GPU adapter could not be opened ({e})")),
        },
        Err(e) => cpu_because(format!("no GPU adapter ({e})")),
    }
}

/// Runs `job` as `wgtrain train --backend auto` would ([`choose_auto`]): on a real GPU, else
/// on the fast CPU backend, saying which and why on stderr (the examples use this, so that
/// they run well on a machine without a GPU).
pub fn on_default_backend<J: BackendJob>(job: J) -> Result<J::Output> {
    let (choice, why) = choose_auto()?;
    match choice {
        AutoChoice::Gpu(first) => {
            crate::stderr_line!("backend: gpu: {why}");
            let first = std::cell::RefCell::new(Some(*first));
            Ok(job.run(&|| match first.borrow_mut().take() {
                Some(b) => Ok(b),
                None => gpu::GpuBackend::new(),
            }))
        }
        AutoChoice::Cpu(first) => {
            crate::stderr_line!("backend: cpu: {why}");
            let threads = first.threads();
            Ok(job.run(&|| Ok(cpu::CpuBackend::with_threads(threads))))
        }
    }
}
