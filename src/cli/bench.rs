//! `wgtrain bench`: the BENCHMARKS.md workloads, measured and printed.

use std::time::Instant;

use serde_json::json;
use wgtrain::backend::cpu::CpuBackend;
use wgtrain::backend::gpu::GpuBackend;
use wgtrain::backend::reference::ReferenceBackend;
use wgtrain::backend::{choose_auto, AutoChoice};
use wgtrain::Result;

use super::args::{BackendChoice, BenchArgs};

/// `wgtrain bench`: each workload on the chosen backend, then the small ones on the reference.
pub(crate) fn bench(
    args: &BenchArgs,
    process_start: Instant,
    ranks: super::ranks::Ranks,
) -> Result<()> {
    use wgtrain::bench::{profile, run, BenchInputs, Workload};
    let bucket_bytes = super::args::bucket_bytes(args.bucket_mb, &ranks)?;
    if let Some(comm) = ranks {
        return bench_ranks(args, process_start, comm, bucket_bytes);
    }
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
    // The backend the workloads run on; the reference's rows come after each as before.
    let (gpu, cpu) = match args.common.backend {
        BackendChoice::Cpu => (None, Some(CpuBackend::new()?.threads())),
        BackendChoice::Reference => (None, None),
        BackendChoice::Gpu => (Some(GpuBackend::new()?), None),
        BackendChoice::Auto => {
            let (choice, why) = choose_auto()?;
            wgtrain::stderr_line!("backend (--backend auto): {why}");
            match choice {
                AutoChoice::Gpu(g) => (Some(*g), None),
                AutoChoice::Cpu(c) => (None, Some(c.threads())),
            }
        }
    };
    let adapter = gpu.as_ref().map(|g| g.context().adapter().clone());
    let software = adapter.as_ref().is_some_and(|a| a.device_type == "Cpu");
    if let Some(a) = &adapter {
        wgtrain::stderr_line!("adapter: {a}");
    }
    // Beside the rows it is a rate for; not before MNIST-E2E alone, whose time counts from
    // process start.
    let rated = workloads.iter().any(|w| *w != Workload::MnistE2e);
    let sgemm = cpu.filter(|_| rated).map(|threads| {
        wgtrain::stderr_line!("measuring the machine's SGEMM rate (1024³, {threads} threads)...");
        (threads, sgemm_gflops(threads))
    });
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
        if let Some(threads) = cpu {
            wgtrain::stderr_line!("running {} on the CPU backend...", w.name());
            let b = CpuBackend::with_threads(threads);
            results.push(run(b, w, args.repeats as usize, &inputs)?);
            inputs.started = Instant::now();
        }
        let accelerated = gpu.is_some() || cpu.is_some();
        let reference_row = !accelerated || (!args.no_reference && w.fits_the_reference());
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
        let sgemm = sgemm.map(|(threads, g)| json!({ "gflops": g, "threads": threads, "n": SGEMM_N, "by": "faer, its own rayon split" }));
        outln!(
            "{}",
            json!({ "adapter": adapter, "sgemm": sgemm, "results": results })
        );
    } else {
        if let Some((threads, g)) = sgemm {
            outln!(
                "machine SGEMM: {g:.1} GFLOP/s ({SGEMM_N}³, faer on its own rayon split, {threads} threads; the CPU rows' GFLOP/s are theirs)\n"
            );
        }
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

/// `mpirun -np N wgtrain bench`: MLP-A and MLP-B (or the workloads named) trained
/// data-parallel on the chosen backend, one adapter per rank; rank 0 prints the total and
/// per-rank samples/s and the share of each step spent exchanging gradients.
fn bench_ranks(
    args: &BenchArgs,
    started: Instant,
    comm: std::rc::Rc<dyn wgtrain::dist::Communicator>,
    buckets: Option<usize>,
) -> Result<()> {
    use wgtrain::bench::{run_data_parallel, Workload};
    let workloads: Vec<Workload> = if args.workloads.is_empty() {
        vec![Workload::MlpA, Workload::MlpB]
    } else {
        args.workloads
            .iter()
            .map(|w| Workload::from_name(w))
            .collect::<Result<_>>()?
    };
    let (rank, size) = (comm.rank(), comm.size());
    let speaks = rank == 0;
    let repeats = args.repeats as usize;
    let mut results = Vec::new();
    let mut clock = started;
    for w in workloads {
        if speaks {
            wgtrain::stderr_line!("running {} on {size} ranks...", w.name());
        }
        let c = comm.clone();
        let r = match args.common.backend {
            BackendChoice::Cpu => {
                run_data_parallel(CpuBackend::new()?, w, repeats, clock, c, buckets)?
            }
            BackendChoice::Reference => {
                run_data_parallel(ReferenceBackend::new(), w, repeats, clock, c, buckets)?
            }
            BackendChoice::Gpu => {
                run_data_parallel(GpuBackend::new()?, w, repeats, clock, c, buckets)?
            }
            BackendChoice::Auto => match choose_auto()?.0 {
                AutoChoice::Gpu(g) => run_data_parallel(*g, w, repeats, clock, c, buckets)?,
                AutoChoice::Cpu(cpu) => run_data_parallel(cpu, w, repeats, clock, c, buckets)?,
            },
        };
        results.push(r);
        clock = Instant::now();
    }
    if !speaks {
        return Ok(());
    }
    if args.common.json {
        outln!("{}", json!({ "ranks": size, "results": results }));
        return Ok(());
    }
    outln!(
        "{:<9} {:>5} {:>10} {:>9} {:>8} {:>11} {:>12} {:>9} {:>7} {:>8}  backend (rank 0)",
        "workload",
        "ranks",
        "samples/s",
        "per rank",
        "ms/step",
        "exchange µs",
        "allreduce µs",
        "alone µs",
        "comm %",
        "MB/step"
    );
    for r in &results {
        let total = r.samples_per_sec.unwrap_or(f64::NAN);
        let exchange = r.exchange_us_per_step.unwrap_or(f64::NAN);
        outln!(
            "{:<9} {:>5} {:>10.0} {:>9.0} {:>8.3} {:>11.1} {:>12.1} {:>9.1} {:>7.1} {:>8.2}  {}",
            r.workload,
            size,
            total,
            total / size as f64,
            r.ms_per_step,
            exchange,
            r.allreduce_us_per_step.unwrap_or(f64::NAN),
            r.allreduce_alone_us.unwrap_or(f64::NAN),
            100.0 * exchange / 1e3 / r.ms_per_step,
            r.allreduce_bytes.unwrap_or(0) as f64 / 1e6,
            r.backend
        );
    }
    outln!(
        "exchange: the gradients' read-back, allreduce and upload per step; allreduce: the part in the allreduce, \
         waiting for the slowest rank included; alone: the same allreduce with no training around it"
    );
    let split = match buckets {
        None => "the whole gradient at once, after the backward pass".to_string(),
        Some(bytes) => format!(
            "in {} buckets of at least {} MB, each while the backward pass of the layers below it runs",
            results.iter().map(|r| r.buckets.unwrap_or(0).to_string()).collect::<Vec<_>>().join("/"),
            bytes as f64 / 1e6
        ),
    };
    outln!("gradients exchanged {split}");
    Ok(())
}

/// The side of the SGEMM measured beside the CPU backend's workloads.
const SGEMM_N: usize = 1024;

/// The machine's SGEMM rate: `[n, n] · [n, n]` by faer on its own split over `threads`
/// threads (not the backend's pool), the best of five after two warm-ups.
fn sgemm_gflops(threads: usize) -> f64 {
    let n = SGEMM_N;
    let a: Vec<f32> = (0..n * n)
        .map(|i| ((i * 7 % 13) as f32 - 6.0) / 8.0)
        .collect();
    let b: Vec<f32> = (0..n * n)
        .map(|i| ((i * 5 % 11) as f32 - 5.0) / 8.0)
        .collect();
    let mut c = vec![0.0f32; n * n];
    let mut best = f64::INFINITY;
    for i in 0..7 {
        let t = Instant::now();
        wgtrain::backend::cpu::library_sgemm(&a, &b, &mut c, (n, n, n), threads);
        if i >= 2 {
            best = best.min(t.elapsed().as_secs_f64());
        }
    }
    2.0 * (n * n * n) as f64 / best / 1e9
}
