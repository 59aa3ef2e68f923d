//! `wgtrain bench`: the BENCHMARKS.md workloads, measured and printed.

use std::time::Instant;

use serde_json::json;
use wgtrain::backend::gpu::GpuBackend;
use wgtrain::backend::reference::ReferenceBackend;
use wgtrain::Result;

use super::args::{BackendChoice, BenchArgs};

/// `wgtrain bench`: each workload on the chosen backend, then the small ones on the reference.
pub(crate) fn bench(args: &BenchArgs, process_start: Instant) -> Result<()> {
    use wgtrain::bench::{profile, run, BenchInputs, Workload};
    let explicit = !args.workloads.is_empty();
    let workloads: Vec<Workload> = if explicit {
        args.workloads
            .iter()
            .map(|w| Workload::from_name(w))
            .collect::<Result<_>>()?
    } else {
        Workload::ALL
            .into_iter()
            .filter(|w| {
                let skip = *w == Workload::MnistE2e && !args.mnist.is_dir();
                if skip {
                    wgtrain::stderr_line!(
                        "note: MNIST-E2E skipped: no MNIST folder at {} (--mnist DIR)",
                        args.mnist.display()
                    );
                }
                !skip
            })
            .collect()
    };
    let gpu = match args.common.backend {
        BackendChoice::Cpu => None,
        BackendChoice::Gpu => Some(GpuBackend::new()?),
        BackendChoice::Auto => GpuBackend::new()
            .map_err(|e| {
                wgtrain::stderr_line!("warning: no GPU ({e}); benchmarking the CPU reference only")
            })
            .ok(),
    };
    let adapter = gpu.as_ref().map(|g| g.context().adapter().clone());
    let software = adapter.as_ref().is_some_and(|a| a.device_type == "Cpu");
    if let Some(a) = &adapter {
        wgtrain::stderr_line!("adapter: {a}");
    }
    let mut results = Vec::new();
    // Start-up of the first workload counts from process start; later ones from their own
    // start, with the device already open.
    let mut inputs = BenchInputs {
        started: process_start,
        mnist: args.mnist.clone(),
    };
    for w in workloads {
        if gpu.is_some() && !(w.real_gpu_only() && software && !explicit) {
            wgtrain::stderr_line!("running {} on the GPU backend...", w.name());
            let mut r = run(GpuBackend::new()?, w, args.repeats as usize, &inputs)?;
            if args.profile && matches!(w, Workload::MlpA | Workload::MlpABnDrop | Workload::MlpB) {
                wgtrain::stderr_line!("profiling {} with timestamp queries...", w.name());
                r.kernels = profile(GpuBackend::new()?, w)?;
            }
            results.push(r);
            inputs.started = Instant::now();
        }
        let reference_row = gpu.is_none() || (!args.no_reference && w.fits_the_reference());
        if reference_row && (w.fits_the_reference() || explicit) {
            wgtrain::stderr_line!("running {} on the CPU reference...", w.name());
            results.push(run(
                ReferenceBackend::new(),
                w,
                args.repeats as usize,
                &inputs,
            )?);
            inputs.started = Instant::now();
        }
    }
    if args.common.json {
        let adapter = adapter.map(|a| {
            json!({ "name": a.name, "backend": a.backend, "device_type": a.device_type, "driver": a.driver, "driver_info": a.driver_info })
        });
        outln!("{}", json!({ "adapter": adapter, "results": results }));
    } else {
        outln!(
            "{:<9} {:>9} {:>10} {:>10} {:>9} {:>8} {:>9}  backend",
            "workload",
            "GFLOP/s",
            "samples/s",
            "ms/step",
            "host µs",
            "loss",
            "start s"
        );
        let opt = |v: Option<f64>, p: usize| v.map_or("-".to_string(), |v| format!("{v:.p$}"));
        for r in &results {
            outln!(
                "{:<9} {:>9} {:>10} {:>10.3} {:>9} {:>8} {:>9}  {}",
                r.workload,
                opt(r.gflops, 2),
                opt(r.samples_per_sec, 0),
                r.ms_per_step,
                opt(r.host_us_per_step, 1),
                opt(r.final_loss, 4),
                opt(r.startup_s, 2),
                r.backend
            );
        }
        for r in results.iter().filter(|r| !r.test_accuracy.is_empty()) {
            let acc: Vec<String> = r.test_accuracy.iter().map(|a| format!("{a:.4}")).collect();
            outln!(
                "\n{}: test accuracy by epoch {}; ≥ 98% after {} s; {} s from process start",
                r.workload,
                acc.join(", "),
                opt(r.seconds_to_98, 1),
                opt(r.wall_s, 1)
            );
        }
        for r in results.iter().filter(|r| !r.kernels.is_empty()) {
            let gpu: f64 = r.kernels.iter().map(|k| k.gpu_ms_per_step).sum();
            outln!(
                "\n{}: GPU time per step by kernel (timestamp queries); {:.3} of {:.3} ms/step",
                r.workload,
                gpu,
                r.ms_per_step
            );
            for k in &r.kernels {
                outln!(
                    "  {:<24} {:>6.1} dispatches {:>9.3} ms {:>5.1}%",
                    k.kernel,
                    k.dispatches_per_step,
                    k.gpu_ms_per_step,
                    100.0 * k.gpu_ms_per_step / r.ms_per_step
                );
            }
        }
    }
    Ok(())
}
