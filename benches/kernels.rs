//! The element-wise kernels in GB/s and the training step in steps/s, on the GPU backend
//! (whatever adapter `GpuContext` picks; `WGTRAIN_ADAPTER` overrides), on the fast CPU backend
//! and on the CPU reference.
//!
//! Element-wise kernels are memory bound, so criterion's throughput is set to the bytes each
//! must move at least once (reads plus writes, f32): its "B/s" column is the bandwidth to hold
//! against the device's. Each GPU iteration records the op and waits for the queue, so small
//! sizes include one submit's overhead; the large size is the bandwidth figure.
//!
//! `step/MLP-A` and `step/MLP-B` time one whole training step of those workloads (forward,
//! loss, backward, one Adam dispatch, recorded into one submit) through `Model::fit` on a
//! resident batch, after a warm-up that builds pipelines and autotunes.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::time::Duration;
use wgtrain::backend::cpu::CpuBackend;
use wgtrain::backend::gpu::GpuBackend;
use wgtrain::backend::reference::ReferenceBackend;
use wgtrain::backend::{Activation, Backend, Guard, GuardSlots};
use wgtrain::bench::{mlp_model, Workload, ADAM};
use wgtrain::data::synthetic;
use wgtrain::train::FitConfig;

/// Rows × columns of the element-wise benchmarks: a batch of 128 through a 512-wide layer, and
/// a large tensor for bandwidth.
const SIZES: &[(usize, usize)] = &[(128, 512), (4096, 1024)];

fn values(n: usize, seed: u64) -> Vec<f32> {
    (0..n as u64)
        .map(|i| (synthetic::value(seed, i) >> 40) as f32 / (1u64 << 23) as f32 - 1.0)
        .collect()
}

fn elementwise<B: Backend>(c: &mut Criterion, b: &mut B, who: &str) {
    let mut group = c.benchmark_group("elementwise");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for &(rows, cols) in SIZES {
        let n = rows * cols;
        let size = format!("{rows}x{cols}");
        let z = b.upload(rows, cols, &values(n, 1)).unwrap();
        let da = b.upload(rows, cols, &values(n, 2)).unwrap();
        let bias = b.upload(1, cols, &values(cols, 3)).unwrap();
        let mut a = b.zeros(rows, cols).unwrap();
        let mut out = b.zeros(rows, cols).unwrap();
        let mut db = b.zeros(1, cols).unwrap();
        let f32s = |k: usize| Throughput::Bytes((4 * k * n) as u64);

        // z += bias: read z, write z (the bias row is negligible).
        group.throughput(f32s(2));
        group.bench_function(
            BenchmarkId::new(format!("{who}/bias_add"), &size),
            |bench| {
                bench.iter(|| {
                    b.bias_add(&mut out, &bias).unwrap();
                    b.finish().unwrap();
                })
            },
        );
        // db = Σ_rows dy: read dy.
        group.throughput(f32s(1));
        group.bench_function(
            BenchmarkId::new(format!("{who}/bias_grad"), &size),
            |bench| {
                bench.iter(|| {
                    b.bias_grad(&da, &mut db).unwrap();
                    b.finish().unwrap();
                })
            },
        );
        for act in [Activation::Relu, Activation::Gelu, Activation::Softmax] {
            // a = act(z): read z, write a.
            group.throughput(f32s(2));
            let id = BenchmarkId::new(format!("{who}/{}", act.name()), &size);
            group.bench_function(id, |bench| {
                bench.iter(|| {
                    b.activation(act, &z, &mut a).unwrap();
                    b.finish().unwrap();
                })
            });
            // dz = act'(z, a) ⊙ da: read z, a, da, write dz.
            group.throughput(f32s(4));
            let id = BenchmarkId::new(format!("{who}/{} backward", act.name()), &size);
            group.bench_function(id, |bench| {
                bench.iter(|| {
                    b.activation_backward(act, &z, &a, &da, &mut out).unwrap();
                    b.finish().unwrap();
                })
            });
        }
        // Adam over a group of two tensors (one dispatch on the GPU): read p, g, m, v; write
        // p, m, v.
        let shapes = [[rows, cols], [1, cols]];
        let mut p = b.zeros_group(&shapes).unwrap();
        let g = b.zeros_group(&shapes).unwrap();
        let mut state: Vec<Vec<B::Tensor>> = vec![Vec::new(), Vec::new()];
        for _ in 0..2 {
            for (s, t) in state.iter_mut().zip(b.zeros_group(&shapes).unwrap()) {
                s.push(t);
            }
        }
        group.throughput(Throughput::Bytes((4 * 7 * (n + cols)) as u64));
        let mut t = 0;
        group.bench_function(BenchmarkId::new(format!("{who}/adam"), &size), |bench| {
            bench.iter(|| {
                t += 1;
                b.optimizer_step_all(ADAM, t, &mut p, &g, &mut state, None)
                    .unwrap();
                b.finish().unwrap();
            })
        });
        // The same update guarded as fit guards it: read p, g, m, v and the accumulator's
        // slots; write the new p, m, v to the spare set (the same bytes as in place).
        let mut p_out = b.zeros_group(&shapes).unwrap();
        let mut s_out: Vec<Vec<B::Tensor>> = vec![Vec::new(), Vec::new()];
        for _ in 0..2 {
            for (s, t) in s_out.iter_mut().zip(b.zeros_group(&shapes).unwrap()) {
                s.push(t);
            }
        }
        let mut acc = b.zeros(1, 4).unwrap();
        let mut t = 0;
        let id = BenchmarkId::new(format!("{who}/adam guarded"), &size);
        group.bench_function(id, |bench| {
            bench.iter(|| {
                t += 1;
                let guard = Guard {
                    acc: &mut acc,
                    slots: GuardSlots::after(0, 1),
                    params_out: &mut p_out,
                    state_out: &mut s_out,
                };
                b.optimizer_step_all(ADAM, t, &mut p, &g, &mut state, Some(guard))
                    .unwrap();
                b.finish().unwrap();
            })
        });
    }
    group.finish();
}

/// One MLP-A or MLP-B training step, with the models `wgtrain bench` builds: as fit runs it
/// (its update guarded), and beside it unguarded (`terminate_on_nan: false`), so that the
/// guard's cost is measured in the same run.
fn step<B: Backend>(c: &mut Criterion, make: impl Fn() -> B, who: &str) {
    let mut group = c.benchmark_group("step");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(8));
    let (x, y) = synthetic::benchmark_data(1024);
    for w in [Workload::MlpB, Workload::MlpA] {
        let (mut model, batch) = mlp_model(make(), w, &[]).unwrap();
        let (xb, yb) = (x.head(batch), y.head(batch));
        let config = || {
            FitConfig::epochs(1)
                .batch_size(batch)
                .shuffle(false)
                .verbose(0)
        };
        model.fit(&xb, &yb, config()).unwrap();
        group.throughput(Throughput::Elements(batch as u64));
        group.bench_function(BenchmarkId::new(who, w.name()), |bench| {
            bench.iter(|| model.fit(&xb, &yb, config()).unwrap())
        });
        let unguarded = || FitConfig {
            terminate_on_nan: false,
            ..config()
        };
        model.fit(&xb, &yb, unguarded()).unwrap();
        let id = BenchmarkId::new(format!("{who} unguarded"), w.name());
        group.bench_function(id, |bench| {
            bench.iter(|| model.fit(&xb, &yb, unguarded()).unwrap())
        });
    }
    group.finish();
}

fn bench(c: &mut Criterion) {
    let gpu = match GpuBackend::new() {
        Ok(g) => Some(g),
        Err(e) => {
            eprintln!("no GPU backend ({e}); CPU reference only");
            None
        }
    };
    if let Some(mut g) = gpu {
        eprintln!("GPU: {}", g.describe());
        elementwise(c, &mut g, "gpu");
        step(c, || GpuBackend::new().unwrap(), "gpu");
    }
    let mut fast = CpuBackend::new().expect("the fast CPU backend");
    eprintln!("CPU: {}", fast.describe());
    elementwise(c, &mut fast, "cpu");
    step(c, || CpuBackend::new().unwrap(), "cpu");
    let mut cpu = ReferenceBackend::new();
    elementwise(c, &mut cpu, "cpu-reference");
    step(c, ReferenceBackend::new, "cpu-reference");
}

criterion_group!(benches, bench);
criterion_main!(benches);
