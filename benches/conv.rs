//! Convolution GFLOP/s per variant, side by side, on CNN-A's two convolutions (batch 128):
//! each of the GPU's variants (v1 direct, v2 im2col and the matmul kernels, v3 and v4 implicit
//! GEMM; `ConvVariant`) on whatever adapter
//! `GpuContext` picks (`WGTRAIN_ADAPTER` overrides), the fast CPU backend, and the reference
//! on a batch of 8. Forward, kernel gradient and input gradient each; criterion's throughput
//! is their FLOPs (2 per multiply-add), so its "elem/s" reads as FLOP/s. Each result is
//! checked against the reference on the first images before it is timed.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::time::Duration;
use wgtrain::backend::cpu::CpuBackend;
use wgtrain::backend::gpu::{ConvVariant, GpuBackend};
use wgtrain::backend::reference::{self, ReferenceBackend};
use wgtrain::backend::{Backend, Padding, Window};

/// CNN-A's convolutions: (name, input, filters).
const LAYERS: [(&str, [usize; 3], usize); 2] = [
    ("CNN-A conv1 28x28x1->32", [28, 28, 1], 32),
    ("CNN-A conv2 13x13x32->64", [13, 13, 32], 64),
];

fn window(input: [usize; 3]) -> Window {
    Window {
        input,
        kernel: [3, 3],
        strides: [1, 1],
        padding: Padding::Valid,
    }
}

/// Times the three ops of one layer on `b` with a batch of `rows`.
fn layer<B: Backend>(
    c: &mut Criterion,
    b: &mut B,
    who: &str,
    (name, input, f): (&str, [usize; 3], usize),
    rows: usize,
) {
    let w = window(input);
    let (len, out, taps) = (w.input_len(), w.positions() * f, 9 * input[2]);
    let mut r = StdRng::seed_from_u64(11);
    let mut data = |n: usize| {
        (0..n)
            .map(|_| r.random_range(-1.0f32..1.0))
            .collect::<Vec<_>>()
    };
    let (xd, kd, dzd) = (data(rows * len), data(taps * f), data(rows * out));
    let x = b.upload(rows, len, &xd).unwrap();
    let k = b.upload(taps, f, &kd).unwrap();
    let dz = b.upload(rows, out, &dzd).unwrap();
    let (mut z, mut dk, mut dx) = (
        b.zeros(rows, out).unwrap(),
        b.zeros(taps, f).unwrap(),
        b.zeros(rows, len).unwrap(),
    );
    // Checked on the first image against the reference.
    b.conv2d(&x, &k, None, &w, &mut z).unwrap();
    let mut want = vec![0.0; out];
    reference::conv2d_forward(&xd[..len], &kd, None, &w, f, &mut want);
    let got = b.read(&z).unwrap();
    for (i, (g, e)) in got[..out].iter().zip(&want).enumerate() {
        assert!(
            (g - e).abs() <= 1e-4 * (1.0 + e.abs()),
            "{who} {name}: z[{i}] = {g}, want {e}"
        );
    }
    let flops = (2 * rows * w.positions() * taps * f) as u64;
    let mut group = c.benchmark_group("conv2d");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .throughput(Throughput::Elements(flops));
    group.bench_function(BenchmarkId::new(format!("{who} forward"), name), |bench| {
        bench.iter(|| {
            b.conv2d(&x, &k, None, &w, &mut z).unwrap();
            b.finish().unwrap();
        })
    });
    group.bench_function(
        BenchmarkId::new(format!("{who} kernel grad"), name),
        |bench| {
            bench.iter(|| {
                b.conv2d_backward_kernel(&x, &dz, &w, &mut dk, None)
                    .unwrap();
                b.finish().unwrap();
            })
        },
    );
    group.bench_function(
        BenchmarkId::new(format!("{who} input grad"), name),
        |bench| {
            bench.iter(|| {
                b.conv2d_backward_input(&dz, &k, &w, &mut dx).unwrap();
                b.finish().unwrap();
            })
        },
    );
    group.finish();
}

fn bench(c: &mut Criterion) {
    match GpuBackend::new() {
        Ok(mut g) => {
            eprintln!("GPU: {}", g.describe());
            for l in LAYERS {
                for v in ConvVariant::ALL {
                    g.set_conv_variant(Some(v));
                    let who = format!("gpu-{}", v.name().replace(' ', "-"));
                    layer(c, &mut g, &who, l, 128);
                }
            }
        }
        Err(e) => eprintln!("no GPU backend ({e}); the CPU backends only"),
    }
    let mut cpu = CpuBackend::new().expect("the fast CPU backend");
    for l in LAYERS {
        layer(c, &mut cpu, "cpu", l, 128);
        layer(c, &mut ReferenceBackend::new(), "cpu-reference", l, 8);
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
