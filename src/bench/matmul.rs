//! The matmul workloads (MM-S, MM-M, MM-L, MM-MLP): each product validated against f64
//! dot products, then timed over enough iterations for about 0.2 s of work.

use std::time::Instant;

use super::{empty_result, median, BenchResult, Workload};
use crate::backend::Backend;
use crate::data::synthetic;
use crate::error::{Error, Result};

/// `(name, M, N, K, trans_a, trans_b)` of a matmul workload's products.
fn products(w: Workload) -> Vec<(&'static str, usize, usize, usize, bool, bool)> {
    match w {
        Workload::MmS => vec![("C=A·B", 128, 128, 128, false, false)],
        Workload::MmM => vec![("C=A·B", 1024, 1024, 1024, false, false)],
        Workload::MmL => vec![("C=A·B", 4096, 4096, 4096, false, false)],
        Workload::MmMlp => vec![
            ("X·W", 128, 512, 784, false, false),
            ("dY·Wᵀ", 128, 784, 512, false, true),
            ("Xᵀ·dY", 784, 512, 128, true, false),
        ],
        Workload::MlpA
        | Workload::MlpABnDrop
        | Workload::MlpB
        | Workload::MnistE2e
        | Workload::CnnA => vec![],
    }
}

pub(super) fn run_matmul<B: Backend>(mut b: B, w: Workload, repeats: usize) -> Result<BenchResult> {
    let backend = b.describe();
    let mut state = 7u64;
    let mut uniform = |n: usize| -> Vec<f32> {
        (0..n)
            .map(|_| {
                state = state.wrapping_add(1);
                (synthetic::value(9, state) >> 40) as f32 / (1u64 << 23) as f32 - 1.0
            })
            .collect()
    };
    let mut flops = 0.0;
    let mut operands = Vec::new();
    for (name, m, n, k, ta, tb) in products(w) {
        let (a, bm) = (uniform(m * k), uniform(k * n));
        let (ar, ac) = if ta { (k, m) } else { (m, k) };
        let (br, bc) = if tb { (n, k) } else { (k, n) };
        let (at, bt, mut ct) = (
            b.upload(ar, ac, &a)?,
            b.upload(br, bc, &bm)?,
            b.zeros(m, n)?,
        );
        b.matmul(&at, ta, &bt, tb, &mut ct)?;
        validate(&b.read(&ct)?, &a, &bm, (m, n, k, ta, tb))
            .map_err(|e| Error::Config(format!("{} {name}: {e}", w.name())))?;
        flops += 2.0 * (m * n * k) as f64;
        operands.push((at, ta, bt, tb, ct));
    }
    // Enough iterations per repetition for at least ~0.2 s of work, at most 1000.
    let start = Instant::now();
    for (at, ta, bt, tb, ct) in &mut operands {
        b.matmul(at, *ta, bt, *tb, ct)?;
    }
    b.finish()?;
    let once = start.elapsed().as_secs_f64().max(1e-6);
    let iterations = ((0.2 / once).ceil() as usize).clamp(1, 1000);
    let mut times = Vec::new();
    for _ in 0..repeats {
        let start = Instant::now();
        for _ in 0..iterations {
            for (at, ta, bt, tb, ct) in &mut operands {
                b.matmul(at, *ta, bt, *tb, ct)?;
            }
        }
        b.finish()?;
        times.push(start.elapsed().as_secs_f64() / iterations as f64);
    }
    let t = median(times);
    Ok(BenchResult {
        gflops: Some(flops / t / 1e9),
        ms_per_step: t * 1e3,
        flops_per_step: flops,
        ..empty_result(w, backend)
    })
}

/// 64 entries of the product against f64 dot products of the inputs.
fn validate(
    got: &[f32],
    a: &[f32],
    b: &[f32],
    (m, n, k, ta, tb): (usize, usize, usize, bool, bool),
) -> std::result::Result<(), String> {
    for s in 0..64u64 {
        let i = (synthetic::value(3, s) % m as u64) as usize;
        let j = (synthetic::value(4, s) % n as u64) as usize;
        let want: f64 = (0..k)
            .map(|p| {
                let aip = if ta { a[p * m + i] } else { a[i * k + p] };
                let bpj = if tb { b[j * k + p] } else { b[p * n + j] };
                aip as f64 * bpj as f64
            })
            .sum();
        let g = got[i * n + j] as f64;
        let err = (g - want).abs();
        if err.is_nan() || err > 1e-4 * (k as f64).sqrt() {
            return Err(format!("C[{i},{j}] = {g}, the reference gives {want}"));
        }
    }
    Ok(())
}
