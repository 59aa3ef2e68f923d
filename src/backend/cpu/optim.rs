//! Optimizer updates on the fast CPU backend: every parameter of a model as one flat index
//! space, split evenly over the pool's threads, each thread a loop over its range that the
//! compiler vectorises. In f32; the reference's formulas ([`reference::optimizer_step`]).
//!
//! Each element's update reads only that element, so the split changes no bits: the result
//! is the same on any number of threads.
//!
//! [`reference::optimizer_step`]: crate::backend::reference::optimizer_step

use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};

use super::pool::Pool;
use crate::backend::{HostTensor, Optimizer};

/// Updates below this many parameters in all run on one thread.
const PARALLEL_PARAMS: usize = 1 << 15;

/// An update rule with its per-step constants, in f32.
#[derive(Clone, Copy)]
enum Rule {
    Sgd {
        lr: f32,
    },
    Momentum {
        lr: f32,
        mu: f32,
        nesterov: bool,
    },
    /// `step` is lr / (1 - β1^t) and `root` 1 / sqrt(1 - β2^t), each rounded once from f64:
    /// one square root and one division per element, as PyTorch's Adam has them.
    Adam {
        step: f32,
        root: f32,
        b1: f32,
        b2: f32,
        eps: f32,
        decay: f32,
    },
}

impl Rule {
    fn new(opt: Optimizer, t: u64) -> Rule {
        match opt {
            Optimizer::Sgd { lr } => Rule::Sgd { lr },
            Optimizer::Momentum {
                lr,
                momentum,
                nesterov,
            } => Rule::Momentum {
                lr,
                mu: momentum,
                nesterov,
            },
            Optimizer::Adam {
                lr,
                beta1,
                beta2,
                eps,
                weight_decay,
            } => {
                let (bc1, bc2) = Optimizer::adam_bias_corrections(beta1, beta2, t);
                Rule::Adam {
                    step: (lr as f64 / bc1 as f64) as f32,
                    root: (1.0 / (bc2 as f64).sqrt()) as f32,
                    b1: beta1,
                    b2: beta2,
                    eps,
                    decay: 1.0 - lr * weight_decay,
                }
            }
        }
    }
}

/// One parameter tensor's part of an update, as raw views so that the pool's threads can
/// each take a disjoint range of its elements. `p_in` and `s_in` are null for an update in
/// place (the outputs are then the inputs).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Segment {
    pub p_in: *const f32,
    pub s_in: [*const f32; 2],
    pub g: *const f32,
    pub p_out: *mut f32,
    pub s_out: [*mut f32; 2],
    pub len: usize,
}

// Built from borrows the caller holds for the whole update; see `update_all`.
unsafe impl Send for Segment {}
unsafe impl Sync for Segment {}

impl Segment {
    /// An update of `p` (and its state) in place from `g`.
    pub(crate) fn in_place(p: &mut HostTensor, g: &HostTensor, s: &mut [HostTensor]) -> Segment {
        let mut s_out = [std::ptr::null_mut(); 2];
        for (o, t) in s_out.iter_mut().zip(s.iter_mut()) {
            *o = t.data.as_mut_ptr();
        }
        Segment {
            p_in: std::ptr::null(),
            s_in: [std::ptr::null(); 2],
            g: g.data.as_ptr(),
            p_out: p.data.as_mut_ptr(),
            s_out,
            len: p.data.len(),
        }
    }

    /// An update that reads `p` and `s` and writes the new values to `p_out` and `s_out`.
    pub(crate) fn out_of_place(
        p: &HostTensor,
        g: &HostTensor,
        s: &[HostTensor],
        p_out: &mut HostTensor,
        s_out: &mut [HostTensor],
    ) -> Segment {
        let mut seg = Segment::in_place(p_out, g, s_out);
        seg.p_in = p.data.as_ptr();
        for (i, t) in seg.s_in.iter_mut().zip(s) {
            *i = t.data.as_ptr();
        }
        seg
    }
}

/// One update of every segment, split over the pool by elements; whether every value
/// written is finite.
///
/// # Safety
/// Every segment's pointers are valid for `len` elements for the whole call, and its
/// outputs are written by nothing else meanwhile (nor overlap another segment's).
pub(crate) unsafe fn update_all(pool: &Pool, opt: Optimizer, t: u64, segments: &[Segment]) -> bool {
    let rule = Rule::new(opt, t);
    let states = opt.state_tensors();
    let total: usize = segments.iter().map(|s| s.len).sum();
    let parts = if total < PARALLEL_PARAMS {
        1
    } else {
        pool.threads()
    };
    let finite = AtomicBool::new(true);
    let run = |part: usize| {
        let (lo, hi) = (total * part / parts, total * (part + 1) / parts);
        let mut base = 0;
        let mut ok = true;
        for seg in segments {
            let (a, b) = (
                lo.max(base) - base,
                hi.min(base + seg.len).saturating_sub(base),
            );
            base += seg.len;
            if a < b {
                ok &= unsafe { update_range(rule, states, seg, a..b) };
            }
        }
        if !ok {
            finite.store(false, Ordering::Relaxed);
        }
    };
    pool.run(parts, &run);
    finite.load(Ordering::Relaxed)
}

/// Updates elements `r` of one segment; whether what it wrote is finite. On x86-64 with
/// AVX2 the loops are compiled for it (8 lanes instead of SSE2's 4); the arithmetic is the
/// same IEEE operations either way (no FMA contraction), so the bits are too.
unsafe fn update_range(rule: Rule, states: usize, seg: &Segment, r: Range<usize>) -> bool {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        return update_range_avx2(rule, states, seg, r);
    }
    update_range_any(rule, states, seg, r)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn update_range_avx2(rule: Rule, states: usize, seg: &Segment, r: Range<usize>) -> bool {
    update_range_any(rule, states, seg, r)
}

/// [`update_range`] for any target: each rule gets its own copy of the loops, with its
/// constants hoisted, so that the compiler vectorises them.
#[inline(always)]
unsafe fn update_range_any(rule: Rule, states: usize, seg: &Segment, r: Range<usize>) -> bool {
    match rule {
        Rule::Sgd { lr } => update_with(|p, g, s| (p - lr * g, s), states, seg, r),
        Rule::Momentum {
            lr,
            mu,
            nesterov: false,
        } => update_with(
            |p, g, s: [f32; 2]| {
                let v = mu * s[0] - lr * g;
                (p + v, [v, 0.0])
            },
            states,
            seg,
            r,
        ),
        Rule::Momentum {
            lr,
            mu,
            nesterov: true,
        } => update_with(
            |p, g, s: [f32; 2]| {
                let v = mu * s[0] - lr * g;
                (p + (mu * v - lr * g), [v, 0.0])
            },
            states,
            seg,
            r,
        ),
        Rule::Adam {
            step,
            root,
            b1,
            b2,
            eps,
            decay,
        } => update_with(
            |p, g, s: [f32; 2]| {
                let m = b1 * s[0] + (1.0 - b1) * g;
                let v = b2 * s[1] + (1.0 - b2) * g * g;
                (p * decay - step * m / (v.sqrt() * root + eps), [m, v])
            },
            states,
            seg,
            r,
        ),
    }
}

/// 1 where `x` is infinite or NaN, else 0: summed without branches, so that the check runs in
/// the update's own vectorised loop.
#[inline(always)]
fn non_finite(x: f32) -> u32 {
    ((x.to_bits() & 0x7fff_ffff) >= 0x7f80_0000) as u32
}

/// [`update_range_any`] with the rule `rule`. An update out of place also counts the
/// non-finite values it writes, in the same pass.
#[inline(always)]
unsafe fn update_with(
    rule: impl Fn(f32, f32, [f32; 2]) -> (f32, [f32; 2]),
    states: usize,
    seg: &Segment,
    r: Range<usize>,
) -> bool {
    let n = r.len();
    let out = |p: *mut f32| std::slice::from_raw_parts_mut(p.add(r.start), n);
    let inp = |p: *const f32| std::slice::from_raw_parts(p.add(r.start), n);
    let g = inp(seg.g);
    let p = out(seg.p_out);
    let mut bad = 0u32;
    match (states, seg.p_in.is_null()) {
        (0, true) => {
            for (p, &g) in p.iter_mut().zip(g) {
                *p = rule(*p, g, [0.0; 2]).0;
            }
        }
        (0, false) => {
            for ((p, &pi), &g) in p.iter_mut().zip(inp(seg.p_in)).zip(g) {
                *p = rule(pi, g, [0.0; 2]).0;
                bad |= non_finite(*p);
            }
        }
        (1, true) => {
            for ((p, &g), s) in p.iter_mut().zip(g).zip(out(seg.s_out[0])) {
                let (np, ns) = rule(*p, g, [*s, 0.0]);
                (*p, *s) = (np, ns[0]);
            }
        }
        (1, false) => {
            let ins = inp(seg.p_in).iter().zip(inp(seg.s_in[0]));
            for (((p, &g), s), (&pi, &si)) in p.iter_mut().zip(g).zip(out(seg.s_out[0])).zip(ins) {
                let (np, ns) = rule(pi, g, [si, 0.0]);
                (*p, *s) = (np, ns[0]);
                bad |= non_finite(np) | non_finite(ns[0]);
            }
        }
        (_, true) => {
            let s = out(seg.s_out[0]).iter_mut().zip(out(seg.s_out[1]));
            for ((p, &g), (m, v)) in p.iter_mut().zip(g).zip(s) {
                let (np, ns) = rule(*p, g, [*m, *v]);
                (*p, *m, *v) = (np, ns[0], ns[1]);
            }
        }
        (_, false) => {
            let s = out(seg.s_out[0]).iter_mut().zip(out(seg.s_out[1]));
            let ins = inp(seg.p_in)
                .iter()
                .zip(inp(seg.s_in[0]))
                .zip(inp(seg.s_in[1]));
            for (((p, &g), (m, v)), ((&pi, &mi), &vi)) in p.iter_mut().zip(g).zip(s).zip(ins) {
                let (np, ns) = rule(pi, g, [mi, vi]);
                (*p, *m, *v) = (np, ns[0], ns[1]);
                bad |= non_finite(np) | non_finite(ns[0]) | non_finite(ns[1]);
            }
        }
    }
    // An update in place counts nothing: nothing reads the flag of an unguarded update.
    bad == 0
}
