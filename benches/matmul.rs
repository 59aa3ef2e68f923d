//! Matmul throughput for the MM-S, MM-M and MM-MLP workloads of BENCHMARKS.md, on the GPU
//! backend (whatever adapter `GpuContext` picks; `WGTRAIN_ADAPTER` overrides), on the fast
//! CPU backend (`cpu`, its pool of `WGTRAIN_THREADS` or the machine's threads) with faer's own
//! parallel SGEMM beside it (`cpu-faer-alone`, the machine's rate), and on the CPU reference
//! for the small shapes. Criterion's throughput is set to the FLOPs of one product
//! (2·M·N·K), so its "elem/s" column reads as FLOP/s.
//!
//! Each GPU iteration records one product, submits it and waits for the queue to drain, so
//! the figure includes the per-submit overhead a training step pays once. Every result is
//! checked against the reference on a sample of entries before it is timed. Both matmul
//! variants run side by side (`gpu-v1-tiled`, `gpu-v2-direct`).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::time::Duration;
use wgtrain::backend::cpu::{library_sgemm, CpuBackend};
use wgtrain::backend::gpu::{GpuBackend, MatmulTiles};
use wgtrain::backend::reference::ReferenceBackend;
use wgtrain::backend::Backend;

/// One benchmarked product: `C[M, N] = op(A) · op(B)`.
#[derive(Clone, Copy)]
struct Shape {
    name: &'static str,
    m: usize,
    n: usize,
    k: usize,
    trans_a: bool,
    trans_b: bool,
}

const fn shape(
    name: &'static str,
    m: usize,
    n: usize,
    k: usize,
    trans_a: bool,
    trans_b: bool,
) -> Shape {
    Shape {
        name,
        m,
        n,
        k,
        trans_a,
        trans_b,
    }
}

const SHAPES: &[Shape] = &[
    shape("MM-S", 128, 128, 128, false, false),
    shape("MM-MLP X·W", 128, 512, 784, false, false),
    shape("MM-MLP dY·Wᵀ", 128, 784, 512, false, true),
    shape("MM-MLP Xᵀ·dY", 784, 512, 128, true, false),
    shape("MM-M", 1024, 1024, 1024, false, false),
    // MLP-B's two large products: its step is short in K on the weight gradient.
    shape("MLP-B X·W", 64, 128, 784, false, false),
    shape("MLP-B Xᵀ·dZ", 784, 128, 64, true, false),
];

/// The reference runs on shapes up to this many multiply-adds.
const REFERENCE_MAX_MACS: usize = 64 << 20;

/// Seeded operands on a backend, with host copies for validation.
struct Operands<T> {
    a: Vec<f32>,
    b: Vec<f32>,
    a_t: T,
    b_t: T,
    c_t: T,
}

impl Shape {
    fn operands<B: Backend>(&self, be: &mut B) -> Operands<B::Tensor> {
        let Shape {
            m,
            n,
            k,
            trans_a,
            trans_b,
            ..
        } = *self;
        let mut r = StdRng::seed_from_u64(7);
        let a: Vec<f32> = (0..m * k).map(|_| r.random_range(-1.0..1.0)).collect();
        let b: Vec<f32> = (0..k * n).map(|_| r.random_range(-1.0..1.0)).collect();
        let (ar, ac) = if trans_a { (k, m) } else { (m, k) };
        let (br, bc) = if trans_b { (n, k) } else { (k, n) };
        Operands {
            a_t: be.upload(ar, ac, &a).unwrap(),
            b_t: be.upload(br, bc, &b).unwrap(),
            c_t: be.zeros(m, n).unwrap(),
            a,
            b,
        }
    }

    fn run<B: Backend>(&self, be: &mut B, o: &mut Operands<B::Tensor>) {
        be.matmul(&o.a_t, self.trans_a, &o.b_t, self.trans_b, &mut o.c_t)
            .unwrap();
    }

    /// Checks 64 entries of the product against f64 dot products.
    fn validate<T>(&self, got: &[f32], o: &Operands<T>) {
        let Shape {
            name,
            m,
            n,
            k,
            trans_a,
            trans_b,
        } = *self;
        let mut r = StdRng::seed_from_u64(8);
        for _ in 0..64 {
            let (i, j) = (r.random_range(0..m), r.random_range(0..n));
            let want: f64 = (0..k)
                .map(|p| {
                    let aip = if trans_a {
                        o.a[p * m + i]
                    } else {
                        o.a[i * k + p]
                    };
                    let bpj = if trans_b {
                        o.b[j * k + p]
                    } else {
                        o.b[p * n + j]
                    };
                    aip as f64 * bpj as f64
                })
                .sum();
            let err = (got[i * n + j] as f64 - want).abs();
            assert!(
                err <= 1e-4 * (k as f64).sqrt(),
                "{name}: C[{i},{j}] = {} but want {want}",
                got[i * n + j]
            );
        }
    }
}

fn bench(c: &mut Criterion) {
    let mut gpu = match GpuBackend::new() {
        Ok(g) => Some(g),
        Err(e) => {
            eprintln!("no GPU backend, benchmarking the reference only: {e}");
            None
        }
    };
    if let Some(g) = &gpu {
        eprintln!("GPU: {}", g.describe());
    }
    let mut group = c.benchmark_group("matmul");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    for s in SHAPES {
        group.throughput(Throughput::Elements((2 * s.m * s.n * s.k) as u64));
        if let Some(g) = gpu.as_mut() {
            // Every matmul variant, side by side, each validated before it is timed.
            for (id, tiles) in [
                ("gpu-v1-tiled", MatmulTiles::TILED),
                ("gpu-v2-direct", MatmulTiles::DIRECT),
                ("gpu-v3-vec4", MatmulTiles::VEC4),
                ("gpu-v4-subgroup", MatmulTiles::SUBGROUP),
                ("gpu-v5-subgroup16", MatmulTiles::SUBGROUP16),
            ] {
                if g.set_matmul_tiles(tiles).is_err() {
                    continue; // v4 and v5 need 8-wide subgroups
                }
                let mut o = s.operands(g);
                s.run(g, &mut o);
                s.validate(&g.read(&o.c_t).unwrap(), &o);
                group.bench_function(BenchmarkId::new(id, s.name), |bench| {
                    bench.iter(|| {
                        s.run(g, &mut o);
                        g.finish().unwrap();
                    })
                });
            }
        }
        {
            let mut fast = CpuBackend::new().expect("the fast CPU backend");
            let mut o = s.operands(&mut fast);
            s.run(&mut fast, &mut o);
            s.validate(&fast.read(&o.c_t).unwrap(), &o);
            group.bench_function(BenchmarkId::new("cpu", s.name), |bench| {
                bench.iter(|| s.run(&mut fast, &mut o))
            });
            if !s.trans_a && !s.trans_b {
                let threads = fast.threads();
                let mut c_out = vec![0.0; s.m * s.n];
                group.bench_function(BenchmarkId::new("cpu-faer-alone", s.name), |bench| {
                    bench.iter(|| library_sgemm(&o.a, &o.b, &mut c_out, (s.m, s.n, s.k), threads))
                });
            }
        }
        if s.m * s.n * s.k <= REFERENCE_MAX_MACS {
            let mut cpu = ReferenceBackend::new();
            let mut o = s.operands(&mut cpu);
            s.run(&mut cpu, &mut o);
            s.validate(&cpu.read(&o.c_t).unwrap(), &o);
            group.bench_function(BenchmarkId::new("cpu-reference", s.name), |bench| {
                bench.iter(|| s.run(&mut cpu, &mut o))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
