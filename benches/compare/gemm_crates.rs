//! GEMM crates side by side on the products wgtrain trains (docs/BENCHMARKS.md MM-M, MM-MLP
//! and MLP-B's five), transposes read through strides (no copies), on every thread and on
//! one: the measurement behind the fast CPU backend's choice of GEMM (issue 13). Not part of
//! wgtrain's build: copy it into a scratch project outside the repository, as `src/main.rs`
//! of a binary crate whose Cargo.toml depends on
//!
//!     gemm = "0.18"
//!     matrixmultiply = { version = "0.3", features = ["threading"] }
//!     faer = "0.22"
//!
//! (`[profile.release] codegen-units = 1`), then `cargo build --release` (about 1.5 minutes
//! on 2 cores) and run the binary: a Markdown table of GFLOP/s (2·M·N·K over the best of five
//! timings of at least 0.2 s each), after checking every crate's product against
//! matrixmultiply's.
use std::time::Instant;

/// c[M, N] = op(a) · op(b): a stored [M, K] or [K, M] (ta), b stored [K, N] or [N, K] (tb).
struct Shape {
    name: &'static str,
    m: usize,
    n: usize,
    k: usize,
    ta: bool,
    tb: bool,
}

fn strides(rows: usize, cols: usize, t: bool) -> (isize, isize) {
    // (row stride, col stride) of op(x) [rows, cols] over x stored row-major.
    if t {
        (1, rows as isize)
    } else {
        (cols as isize, 1)
    }
}

fn time(mut f: impl FnMut()) -> f64 {
    for _ in 0..3 {
        f();
    }
    let mut best = f64::INFINITY;
    for _ in 0..5 {
        let start = Instant::now();
        let mut n = 0;
        while start.elapsed().as_secs_f64() < 0.2 {
            f();
            n += 1;
        }
        best = best.min(start.elapsed().as_secs_f64() / n as f64);
    }
    best
}

fn main() {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    std::env::set_var("MATMUL_NUM_THREADS", threads.to_string());
    let shapes = [
        Shape {
            name: "MM-M 1024³",
            m: 1024,
            n: 1024,
            k: 1024,
            ta: false,
            tb: false,
        },
        Shape {
            name: "MM-MLP X·W",
            m: 128,
            n: 512,
            k: 784,
            ta: false,
            tb: false,
        },
        Shape {
            name: "MM-MLP dY·Wᵀ",
            m: 128,
            n: 784,
            k: 512,
            ta: false,
            tb: true,
        },
        Shape {
            name: "MM-MLP Xᵀ·dY",
            m: 784,
            n: 512,
            k: 128,
            ta: true,
            tb: false,
        },
        Shape {
            name: "MLP-B X·W1",
            m: 64,
            n: 128,
            k: 784,
            ta: false,
            tb: false,
        },
        Shape {
            name: "MLP-B H·W2",
            m: 64,
            n: 10,
            k: 128,
            ta: false,
            tb: false,
        },
        Shape {
            name: "MLP-B Hᵀ·dY",
            m: 128,
            n: 10,
            k: 64,
            ta: true,
            tb: false,
        },
        Shape {
            name: "MLP-B dY·W2ᵀ",
            m: 64,
            n: 128,
            k: 10,
            ta: false,
            tb: true,
        },
        Shape {
            name: "MLP-B Xᵀ·dZ",
            m: 784,
            n: 128,
            k: 64,
            ta: true,
            tb: false,
        },
    ];
    println!("threads: {threads}");
    println!("| shape | M×N×K | matrixmultiply | gemm | gemm, 1 thread | faer | faer, 1 thread |");
    println!("|---|---|---:|---:|---:|---:|---:|");
    for s in &shapes {
        let (m, n, k) = (s.m, s.n, s.k);
        let a: Vec<f32> = (0..m * k)
            .map(|i| ((i * 7919) % 61) as f32 / 61.0 - 0.5)
            .collect();
        let b: Vec<f32> = (0..k * n)
            .map(|i| ((i * 104_729) % 53) as f32 / 53.0 - 0.5)
            .collect();
        let mut c = vec![0f32; m * n];
        let (ars, acs) = strides(m, k, s.ta);
        let (brs, bcs) = strides(k, n, s.tb);
        let flops = 2.0 * (m * n * k) as f64;
        let mm = time(|| unsafe {
            matrixmultiply::sgemm(
                m,
                k,
                n,
                1.0,
                a.as_ptr(),
                ars,
                acs,
                b.as_ptr(),
                brs,
                bcs,
                0.0,
                c.as_mut_ptr(),
                n as isize,
                1,
            )
        });
        let want = c.clone();
        let par = if threads > 1 {
            gemm::Parallelism::Rayon(threads)
        } else {
            gemm::Parallelism::None
        };
        let ge = time(|| unsafe {
            gemm::gemm(
                m,
                n,
                k,
                c.as_mut_ptr(),
                1,
                n as isize,
                false,
                a.as_ptr(),
                acs,
                ars,
                b.as_ptr(),
                bcs,
                brs,
                0.0f32,
                1.0f32,
                false,
                false,
                false,
                par,
            )
        });
        let check = |c: &[f32], who: &str| {
            let err = c
                .iter()
                .zip(&want)
                .map(|(x, y)| (x - y).abs())
                .fold(0.0, f32::max);
            assert!(err < 1e-3 * k as f32, "{who} {}: max error {err}", s.name);
        };
        check(&c, "gemm");
        c.iter_mut().for_each(|v| *v = 0.0);
        let ge1 = time(|| unsafe {
            gemm::gemm(
                m,
                n,
                k,
                c.as_mut_ptr(),
                1,
                n as isize,
                false,
                a.as_ptr(),
                acs,
                ars,
                b.as_ptr(),
                bcs,
                brs,
                0.0f32,
                1.0f32,
                false,
                false,
                false,
                gemm::Parallelism::None,
            )
        });
        let mut fa_run = |fpar: faer::Par| {
            time(|| {
                let a_ref = if s.ta {
                    faer::MatRef::from_row_major_slice(&a, k, m).transpose()
                } else {
                    faer::MatRef::from_row_major_slice(&a, m, k)
                };
                let b_ref = if s.tb {
                    faer::MatRef::from_row_major_slice(&b, n, k).transpose()
                } else {
                    faer::MatRef::from_row_major_slice(&b, k, n)
                };
                let c_mut = faer::MatMut::from_row_major_slice_mut(&mut c, m, n);
                faer::linalg::matmul::matmul(
                    c_mut,
                    faer::Accum::Replace,
                    a_ref,
                    b_ref,
                    1.0f32,
                    fpar,
                );
            })
        };
        let fa1 = fa_run(faer::Par::Seq);
        let fa = fa_run(if threads > 1 {
            faer::Par::rayon(threads)
        } else {
            faer::Par::Seq
        });
        check(&c, "faer");
        let g = |t: f64| format!("{:.1}", flops / t / 1e9);
        println!(
            "| {} | {m}×{n}×{k} | {} | {} | {} | {} | {} |",
            s.name,
            g(mm),
            g(ge),
            g(ge1),
            g(fa),
            g(fa1)
        );
    }
}
