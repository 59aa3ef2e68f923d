//! Products on the fast CPU backend: faer's GEMM (AVX2/AVX-512 kernels, transposes read
//! through strides, no copies), called single-threaded on each thread's block of the output.
//!
//! The split is by the thread count and the shape alone, so a product gives the same bits
//! run to run. faer's K blocking depends on K only, so a block's values do not depend on
//! where its edges are either; the tests hold products on 1, 2 and 3 threads to each other.
//! The block goes along the longer side of the output: a split of the rows has every thread
//! pack all of `op(b)`, a split of the columns all of `op(a)`, so the smaller is packed
//! twice. A dense layer's bias and activation run over each block right after its product,
//! while it is in cache.

use std::ops::Range;

use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};

use super::elementwise::bias_activation;
use super::pool::Pool;
use crate::backend::Activation;

/// Products below this many FLOPs run on one thread: splitting costs more than it saves
/// (MLP-B's 10-wide products, about 0.2 MFLOP, ran 4–8× slower on faer's two threads).
pub(crate) const PARALLEL_FLOPS: usize = 1 << 21;

/// Block edges are multiples of this, the widest of faer's register tiles.
const ALIGN: usize = 16;

/// `c[M, N] = op(a) · op(b)`, shapes as [`Backend::matmul`](crate::backend::Backend::matmul)'s.
#[allow(clippy::too_many_arguments)]
pub(crate) fn matmul_into(
    pool: &Pool,
    a: &[f32],
    ta: bool,
    b: &[f32],
    tb: bool,
    c: &mut [f32],
    [m, n, k]: [usize; 3],
    epilogue: Option<(Activation, &[f32], &mut [f32])>,
) {
    let parts = parts_for(pool, m, n, k);
    let by_rows = m >= n;
    let out = SyncPtr(c.as_mut_ptr());
    // The epilogue `z += bias; a = act(z)` over each block, `z` being `c`.
    let epilogue = epilogue.map(|(act, bias, a)| (act, bias, SyncPtr(a.as_mut_ptr())));
    let run = |part: usize| {
        let (rows, cols) = if by_rows {
            (split(m, parts, part), 0..n)
        } else {
            (0..m, split(n, parts, part))
        };
        if rows.is_empty() || cols.is_empty() {
            return;
        }
        // SAFETY: every part writes only its own block of `c` (and of the epilogue's `a`),
        // and the blocks of one split do not overlap.
        unsafe {
            gemm_block(
                a,
                ta,
                b,
                tb,
                out.get(),
                [m, n, k],
                rows.clone(),
                cols.clone(),
            );
            if let Some((act, bias, a_out)) = epilogue {
                for r in rows {
                    let at = r * n + cols.start;
                    let z = std::slice::from_raw_parts_mut(out.get().add(at), cols.len());
                    let act_out = std::slice::from_raw_parts_mut(a_out.get().add(at), cols.len());
                    bias_activation(act, z, &bias[cols.clone()], act_out);
                }
            }
        }
    };
    pool.run(parts, &run);
}

/// How many blocks a product is split into.
fn parts_for(pool: &Pool, m: usize, n: usize, k: usize) -> usize {
    let flops = 2usize.saturating_mul(m).saturating_mul(n).saturating_mul(k);
    let long = m.max(n);
    if flops < PARALLEL_FLOPS || long < 2 * ALIGN {
        1
    } else {
        pool.threads().min(long.div_ceil(ALIGN))
    }
}

/// Part `part` of `0..len` split into `parts` blocks whose edges are multiples of [`ALIGN`].
pub(crate) fn split(len: usize, parts: usize, part: usize) -> Range<usize> {
    let chunk = len.div_ceil(parts.max(1)).next_multiple_of(ALIGN);
    let start = (part * chunk).min(len);
    start..((part + 1) * chunk).min(len)
}

#[derive(Clone, Copy)]
struct SyncPtr(*mut f32);
unsafe impl Sync for SyncPtr {}
unsafe impl Send for SyncPtr {}
impl SyncPtr {
    /// The pointer (a method, so that closures capture the `Sync` wrapper, not its field).
    fn get(self) -> *mut f32 {
        self.0
    }
}

/// `c[rows, cols] = op(a)[rows, :] · op(b)[:, cols]` on this thread.
///
/// # Safety
/// `c` points at the whole `[m, n]` output; no other thread may touch this block meanwhile.
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_block(
    a: &[f32],
    ta: bool,
    b: &[f32],
    tb: bool,
    c: *mut f32,
    [m, n, k]: [usize; 3],
    rows: Range<usize>,
    cols: Range<usize>,
) {
    debug_assert!(a.len() >= m * k && b.len() >= k * n);
    // op(a) [m, k]: stored [m, k] (row stride k) or [k, m] (row stride 1, column stride m).
    let (ars, acs) = if ta { (1, m as isize) } else { (k as isize, 1) };
    let (brs, bcs) = if tb { (1, k as isize) } else { (n as isize, 1) };
    let lhs = MatRef::from_raw_parts(
        a.as_ptr().offset(rows.start as isize * ars),
        rows.len(),
        k,
        ars,
        acs,
    );
    let rhs = MatRef::from_raw_parts(
        b.as_ptr().offset(cols.start as isize * bcs),
        k,
        cols.len(),
        brs,
        bcs,
    );
    let dst = MatMut::from_raw_parts_mut(
        c.add(rows.start * n + cols.start),
        rows.len(),
        cols.len(),
        n as isize,
        1,
    );
    matmul(dst, Accum::Replace, lhs, rhs, 1.0f32, Par::Seq);
}

/// `c = a · b`, `[n, n]` row-major, by faer on its own parallel split (see
/// [`super::library_sgemm`]).
pub(crate) fn library_sgemm(
    a: &[f32],
    b: &[f32],
    c: &mut [f32],
    (m, n, k): (usize, usize, usize),
    threads: usize,
) {
    assert!(a.len() == m * k && b.len() == k * n && c.len() == m * n);
    let lhs = MatRef::from_row_major_slice(a, m, k);
    let rhs = MatRef::from_row_major_slice(b, k, n);
    let dst = MatMut::from_row_major_slice_mut(c, m, n);
    let par = std::num::NonZeroUsize::new(threads).map_or(Par::Seq, Par::Rayon);
    matmul(dst, Accum::Replace, lhs, rhs, 1.0f32, par);
}
