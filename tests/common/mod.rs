//! Shared by the test binaries: the GPU-or-skip rule, the one-body-every-backend macro,
//! seeded inputs, and the named shapes that break tiling.
#![allow(dead_code)]

pub mod cli;
pub mod finite;

use std::io::Write;
use std::sync::Once;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use wgtrain::backend::gpu::GpuBackend;
use wgtrain::backend::Backend;
use wgtrain::tolerance::Tolerance;

/// True when CI asked for GPU tests to fail rather than skip without an adapter.
pub fn gpu_required() -> bool {
    std::env::var("WGTRAIN_REQUIRE_GPU").is_ok_and(|v| v == "1")
}

/// A GPU backend on the process-wide context, or `None` (test skipped) when there is no
/// adapter and `WGTRAIN_REQUIRE_GPU=1` is not set. Names the adapter once per test binary,
/// on stderr directly so that the test harness does not capture it and the CI log shows it.
pub fn gpu() -> Option<GpuBackend> {
    static ANNOUNCE: Once = Once::new();
    match GpuBackend::new() {
        Ok(b) => {
            ANNOUNCE.call_once(|| {
                let _ = writeln!(
                    std::io::stderr(),
                    "wgtrain GPU tests run on: {}",
                    b.describe()
                );
            });
            Some(b)
        }
        Err(e) if gpu_required() => panic!("WGTRAIN_REQUIRE_GPU=1 but no GPU backend: {e}"),
        Err(e) => {
            ANNOUNCE.call_once(|| {
                let _ = writeln!(std::io::stderr(), "wgtrain GPU tests SKIPPED: {e}");
            });
            None
        }
    }
}

/// One test body, every backend: `backend_test!(name, body)` makes `name::reference`,
/// `name::cpu` (the fast CPU backend) and `name::gpu`, each calling `body(&mut backend)`.
#[macro_export]
macro_rules! backend_test {
    ($name:ident, $body:ident) => {
        mod $name {
            #[test]
            fn reference() {
                super::$body(&mut wgtrain::backend::reference::ReferenceBackend::new());
            }
            #[test]
            fn cpu() {
                super::$body(&mut $crate::common::cpu());
            }
            #[test]
            fn gpu() {
                if let Some(mut b) = $crate::common::gpu() {
                    super::$body(&mut b);
                }
            }
        }
    };
}

/// `backend_test!` for ops with two GPU forms (see `GpuBackend::set_parallel_reductions`):
/// `name::reference`, `name::cpu`, `name::gpu_parallel` and `name::gpu_serial`, so that both forms run on every
/// adapter, whichever is its default.
#[macro_export]
macro_rules! reduction_test {
    ($name:ident, $body:ident) => {
        mod $name {
            #[test]
            fn reference() {
                super::$body(&mut wgtrain::backend::reference::ReferenceBackend::new());
            }
            #[test]
            fn cpu() {
                super::$body(&mut $crate::common::cpu());
            }
            #[test]
            fn gpu_parallel() {
                if let Some(mut b) = $crate::common::gpu() {
                    b.set_parallel_reductions(true);
                    super::$body(&mut b);
                }
            }
            #[test]
            fn gpu_serial() {
                if let Some(mut b) = $crate::common::gpu() {
                    b.set_parallel_reductions(false);
                    super::$body(&mut b);
                }
            }
        }
    };
}

/// For bodies that build their own models: `model_test!(name, body)` makes `name::reference`,
/// `name::cpu` and `name::gpu`, each calling `body(make_backend)`.
#[macro_export]
macro_rules! model_test {
    ($name:ident, $body:ident) => {
        mod $name {
            #[test]
            fn reference() {
                super::$body(wgtrain::backend::reference::ReferenceBackend::new);
            }
            #[test]
            fn cpu() {
                super::$body($crate::common::cpu);
            }
            #[test]
            fn gpu() {
                if $crate::common::gpu().is_some() {
                    super::$body(|| {
                        $crate::common::gpu().expect("the adapter was there a moment ago")
                    });
                }
            }
        }
    };
}

/// The fast CPU backend on the machine's threads (or `WGTRAIN_THREADS`).
pub fn cpu() -> wgtrain::backend::cpu::CpuBackend {
    wgtrain::backend::cpu::CpuBackend::new().expect("the fast CPU backend")
}

/// The digits, and a 64 → 64 (ReLU) → 10 classifier of them on `backend` (seed 5, Adam
/// 2e-3, accuracy): the CPU backend's determinism and allocation tests train it.
pub fn digits_cpu_model(
    backend: wgtrain::backend::cpu::CpuBackend,
) -> (
    wgtrain::train::Model<wgtrain::backend::cpu::CpuBackend>,
    wgtrain::data::Matrix,
    wgtrain::data::Matrix,
) {
    use wgtrain::backend::{Activation, Optimizer};
    use wgtrain::nn::{Dense, LossFn, Sequential};
    use wgtrain::train::{Compile, Metric};
    let (x, y) = wgtrain::data::digits();
    let model = Sequential::new()
        .add(Dense::new(64, Activation::Relu))
        .add(Dense::new(10, Activation::Linear))
        .compile(
            backend,
            Compile::new(
                LossFn::SparseCategoricalCrossentropy { from_logits: true },
                Optimizer::adam(2e-3),
            )
            .metrics(&[Metric::Accuracy])
            .seed(5),
        )
        .unwrap();
    (model, x, y)
}

/// A seeded generator, so every failure reproduces.
pub fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

/// `n` values uniform on `[lo, hi)`.
pub fn uniform(rng: &mut StdRng, n: usize, lo: f32, hi: f32) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(lo..hi)).collect()
}

/// Compares and panics with the full report (index, both values, max errors, first mismatches).
pub fn assert_close(what: &str, tol: Tolerance, got: &[f32], want: &[f32]) {
    if let Err(m) = tol.compare(got, want) {
        panic!("{what}: {m}");
    }
}

/// Uploads, runs nothing, reads back: the backend's `[rows, cols]` copy of `data`.
pub fn upload<B: Backend>(b: &mut B, rows: usize, cols: usize, data: &[f32]) -> B::Tensor {
    b.upload(rows, cols, data).expect("upload")
}

/// Matmul shapes `(M, N, K)` chosen to break tiling. The kernel's defaults: 4 × 4 outputs per
/// thread, a 64 × 64 block per 16 × 16 workgroup, K in steps of 16.
pub const MATMUL_SHAPES: &[(usize, usize, usize, &str)] = &[
    (1, 1, 1, "1×1×1: every tile is almost all padding"),
    (1, 17, 1, "k = 1: one partial K step"),
    (3, 5, 3, "k = 3, everything smaller than a register block"),
    (
        4,
        4,
        4,
        "exactly one register block, a partial workgroup block",
    ),
    (17, 13, 17, "k = 17: one full K step plus one element"),
    (64, 64, 64, "exactly one workgroup block: the no-edge path"),
    (63, 65, 63, "k = 63, one under and one over a 64 block"),
    (65, 63, 65, "k = 65, one over and one under a 64 block"),
    (33, 31, 127, "k = 127: many K steps with a remainder of 15"),
    (31, 33, 129, "k = 129: many K steps with a remainder of 1"),
    (7, 11, 257, "k = 257, primes for M and N"),
    (67, 71, 13, "primes, non-multiples of every tile size"),
    (
        300,
        3,
        31,
        "M ≫ N: a tall, thin output (a 3-class layer on a batch)",
    ),
    (2, 300, 29, "N ≫ M: a short, wide output (a batch of 2)"),
    (129, 1, 17, "one output column (a 1-unit layer)"),
    (
        12,
        20,
        28,
        "multiples of 4, not of 8: v3 runs, with clamped edge blocks",
    ),
    (
        68,
        36,
        132,
        "multiples of 4 past one 64 block: v3 with partial blocks",
    ),
    (1, 130, 66, "one output row (a batch of 1)"),
    (
        256,
        128,
        24,
        "whole 128 × 128 blocks and K of 8: v6's unchecked (FULL) entry points",
    ),
    (
        132,
        260,
        12,
        "multiples of 4 one vec4 past v6's blocks: its edges, 2 K tiles with a partial second",
    ),
    (
        257,
        33,
        130,
        "over the fast CPU backend's parallel threshold, M ≥ N: split by rows, an uneven last block",
    ),
    (
        40,
        301,
        100,
        "over the CPU threshold, N > M: split by columns, a last block of 13",
    ),
    (
        20,
        24,
        600,
        "K = 600: faer's K blocks of 512 plus a remainder, on one CPU thread",
    ),
];

/// Element-wise and row-wise shapes `(rows, cols)`.
pub const ROW_SHAPES: &[(usize, usize, &str)] = &[
    (1, 1, "a single element"),
    (1, 10, "a single row"),
    (3, 17, "not a multiple of anything"),
    (65, 3, "65 rows: one past a 64-row workgroup"),
    (129, 10, "two and a bit row workgroups, 10 classes"),
    (
        2,
        257,
        "wide rows: 257 columns, one past a 256-thread workgroup",
    ),
    (
        37,
        300,
        "11100 elements: many 1-D workgroups, a partial last one",
    ),
    (
        2,
        127,
        "one column short of a workgroup per row: a thread per row",
    ),
    (
        4,
        128,
        "the first width with a workgroup per row (softmax, losses)",
    ),
    (3, 4099, "a row of 64 columns per lane and three more"),
    (
        1000,
        33,
        "the bias gradient's 8 row lanes over 1000 rows, 33 columns: 32 per workgroup and one",
    ),
];

/// Shapes for the sums (the loss, the penalties), each with why it is hard: around the size
/// from which a sum runs in two passes (partials over many workgroups, then their sum), and
/// past the most partials the first pass writes.
pub const SUM_SHAPES: &[(usize, usize, &str)] = &[
    (1, 16_383, "one element short of two passes"),
    (
        16_384,
        1,
        "the first size summed in two passes: 4 chunks of 4096",
    ),
    (
        784,
        512,
        "MLP-A's first kernel: 98 partials, the last chunk short",
    ),
    (
        4097,
        1025,
        "4.2 million: the partials capped at 1024, each chunk longer than 4096",
    ),
];

/// [`digits_cpu_model`]'s data and training, with a CNN: the digits as 8×8×1 images, conv
/// 3×3 'same' (8 filters, relu), 2×2 max pooling, conv 2×2 (4, tanh, no bias), 2×2 average
/// pooling, flatten, 10 logits.
pub fn digits_cpu_cnn(
    backend: wgtrain::backend::cpu::CpuBackend,
) -> wgtrain::train::Model<wgtrain::backend::cpu::CpuBackend> {
    use wgtrain::backend::{Activation, Optimizer, Padding};
    use wgtrain::nn::{AveragePooling2D, Conv2D, Dense, Flatten, LossFn, MaxPooling2D, Sequential};
    use wgtrain::train::{Compile, Metric};
    Sequential::new()
        .input_shape([8, 8, 1])
        .add(Conv2D::new(8, 3, Activation::Relu).padding(Padding::Same))
        .add(MaxPooling2D::new(2))
        .add(Conv2D::new(4, 2, Activation::Tanh).use_bias(false))
        .add(AveragePooling2D::new(2).padding(Padding::Same))
        .add(Flatten::new())
        .add(Dense::new(10, Activation::Linear))
        .compile(
            backend,
            Compile::new(
                LossFn::SparseCategoricalCrossentropy { from_logits: true },
                Optimizer::adam(2e-3),
            )
            .metrics(&[Metric::Accuracy])
            .seed(5),
        )
        .unwrap()
}
