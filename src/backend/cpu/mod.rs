//! The fast CPU backend: what `--backend cpu` trains on, and what `--backend auto` picks on
//! a machine without a real GPU.
//!
//! [`HostTensor`]s in host memory, f32 storage and arithmetic; products on faer's SIMD GEMM
//! (`gemm.rs`), split over a fixed pool of threads sized to the machine (`pool.rs`); a dense
//! layer's bias and activation applied to each block of the product as it is finished;
//! the optimizer updates over every parameter as one flat range (`optim.rs`). Ops whose cost
//! does not show in a step (the metrics' counts, batch normalization, the layer-stack's
//! rarer ops) run the reference's functions, which are the specification. Convolutions are
//! one GEMM over the batch's windows (`conv.rs`).
//!
//! Results are the same run to run for a given thread count. Which bits change with the
//! thread count: none of the element-wise ops, the reductions or the optimizer (their work is
//! split by element, or not split); a product's values do not depend on its blocks either
//! (faer blocks K the same way for every block), which the tests hold on 1, 2 and 3 threads.
//! The thread count is the machine's (`std::thread::available_parallelism`), or
//! `WGTRAIN_THREADS`, or [`CpuBackend::with_threads`].
//!
//! Nothing is allocated inside a training step once the first has run: the pool hands jobs
//! over by pointer, faer keeps its packing buffers per thread, and the one list an update
//! builds is kept between steps.

mod backend;
mod conv;
mod elementwise;
mod gemm;
mod loss;
mod optim;
mod pool;

use std::sync::Arc;

pub use super::tensor::HostTensor;
use crate::error::{Error, Result};

/// The fast CPU backend. Every op runs when it is called, on the calling thread and the
/// pool's; `flush` has nothing to do.
pub struct CpuBackend {
    pool: Arc<pool::Pool>,
    /// The optimizer's list of tensors, kept so that a step allocates nothing.
    segments: Vec<optim::Segment>,
    /// A convolution's windows as rows (im2col), or their gradient: grown to the largest
    /// layer's on first use.
    cols: Vec<f32>,
    /// Zeros for the epilogue of a convolution without a bias.
    zero_bias: Vec<f32>,
}

impl std::fmt::Debug for CpuBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CpuBackend")
            .field("threads", &self.threads())
            .finish()
    }
}

/// The variable that sets the fast CPU backend's thread count.
pub const THREADS_VAR: &str = "WGTRAIN_THREADS";

impl CpuBackend {
    /// The fast CPU backend on every thread of the machine (its share of them, for a rank of
    /// a data-parallel job: [`crate::dist::local_ranks`]), or on `WGTRAIN_THREADS` threads
    /// when it is set (a positive integer, else an error).
    pub fn new() -> Result<CpuBackend> {
        Ok(CpuBackend::with_threads(default_threads()?))
    }

    /// The fast CPU backend on `threads` threads (at least 1). Backends of the same thread
    /// count share one pool in a process.
    pub fn with_threads(threads: usize) -> CpuBackend {
        CpuBackend {
            pool: pool::Pool::shared(threads),
            segments: Vec::new(),
            cols: Vec::new(),
            zero_bias: Vec::new(),
        }
    }

    /// The threads its ops are split over.
    pub fn threads(&self) -> usize {
        self.pool.threads()
    }
}

/// `WGTRAIN_THREADS`, or the machine's available parallelism.
pub fn default_threads() -> Result<usize> {
    match std::env::var(THREADS_VAR) {
        Ok(v) => match v.trim().parse::<usize>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(Error::Invalid {
                op: "cpu backend",
                detail: format!(
                    "{THREADS_VAR}={v:?} is not a thread count: set it to a positive integer, or unset it to use every core"
                ),
            }),
        },
        Err(_) => {
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            // The ranks of a data-parallel job on this machine share its cores.
            Ok((cores / crate::dist::local_ranks().unwrap_or(1)).max(1))
        }
    }
}

/// The machine's SGEMM rate as `wgtrain bench` measures it beside the backend: `c = a · b`
/// for row-major `a [m, k]`, `b [k, n]` and `c [m, n]` by faer alone, on its own split over
/// `threads` rayon threads (not this backend's pool, blocks and checks). Panics if the slices
/// are not of those lengths.
pub fn library_sgemm(
    a: &[f32],
    b: &[f32],
    c: &mut [f32],
    (m, n, k): (usize, usize, usize),
    threads: usize,
) {
    gemm::library_sgemm(a, b, c, (m, n, k), threads);
}
