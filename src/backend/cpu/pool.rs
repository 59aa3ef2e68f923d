//! The fast CPU backend's scheduler: a fixed pool of worker threads, started once per
//! process and thread count, that runs one job at a time split into one part per thread.
//!
//! A job is a borrowed closure `f(part)`; the caller runs part 0 and each worker one more, so
//! a job's parts and their order never depend on timing: an op splits its work by the
//! thread count alone, and gives the same bits run to run. Handing a job over allocates
//! nothing (a pointer and a counter), so a training step allocates nothing either. Workers
//! spin for a short while after each job, since a step's ops come back to back, then park
//! on a condition variable.
//!
//! One job runs at a time. A second backend submitting while a job is in flight (another
//! thread's model) does not wait for the pool: it runs its parts in order on its own thread,
//! which gives the same results.

use std::cell::UnsafeCell;
use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long an idle worker spins before it parks.
const SPIN: Duration = Duration::from_micros(200);

/// A job's closure: `f(part)` for each part.
type Job = dyn Fn(usize) + Sync;

/// The pool of `threads - 1` workers (the caller is the first thread).
pub(crate) struct Pool {
    threads: usize,
    shared: Arc<Shared>,
    /// Held while a job is in flight.
    submit: Mutex<()>,
}

struct Shared {
    /// Bumped once per job; a worker runs a job when it sees a new value.
    epoch: AtomicU64,
    /// The current job, valid from its epoch's bump until `remaining` reaches 0.
    job: UnsafeCell<Option<*const Job>>,
    /// Workers yet to finish the current job.
    remaining: AtomicUsize,
    /// Workers parked (or about to park) on `wake`.
    sleepers: AtomicUsize,
    panicked: AtomicBool,
    lock: Mutex<()>,
    wake: Condvar,
}

// The job pointer is written only by the submitter holding `Pool::submit`, before the epoch
// bump that publishes it, and read by workers after they see that bump.
unsafe impl Sync for Shared {}
unsafe impl Send for Shared {}

impl Pool {
    /// The process's pool of `threads` threads (at least 1), started on first use.
    pub(crate) fn shared(threads: usize) -> Arc<Pool> {
        static POOLS: OnceLock<Mutex<HashMap<usize, Arc<Pool>>>> = OnceLock::new();
        let threads = threads.max(1);
        let pools = POOLS.get_or_init(Default::default);
        let mut pools = pools.lock().unwrap_or_else(|e| e.into_inner());
        pools
            .entry(threads)
            .or_insert_with(|| Arc::new(Pool::start(threads)))
            .clone()
    }

    fn start(threads: usize) -> Pool {
        let shared = Arc::new(Shared {
            epoch: AtomicU64::new(0),
            job: UnsafeCell::new(None),
            remaining: AtomicUsize::new(0),
            sleepers: AtomicUsize::new(0),
            panicked: AtomicBool::new(false),
            lock: Mutex::new(()),
            wake: Condvar::new(),
        });
        let mut started = 1;
        for part in 1..threads {
            let s = shared.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("wgtrain-cpu-{part}"))
                .spawn(move || worker(&s, part));
            // A thread the system refuses is a smaller pool, not an error: the parts it would
            // have run run on the caller (see `run`).
            if spawned.is_err() {
                break;
            }
            started += 1;
        }
        Pool {
            threads: started,
            shared,
            submit: Mutex::new(()),
        }
    }

    /// The threads a job is split over (the caller's included).
    pub(crate) fn threads(&self) -> usize {
        self.threads
    }

    /// Runs `f(part)` for every `part` in `0..parts` (at most [`Pool::threads`] of them do
    /// run at once: more are run in turn) and returns when all have. A panic in a part is
    /// raised again here, after every part has finished.
    pub(crate) fn run(&self, parts: usize, f: &(dyn Fn(usize) + Sync)) {
        if parts <= 1 || self.threads == 1 {
            (0..parts).for_each(f);
            return;
        }
        let Ok(_held) = self.submit.try_lock() else {
            (0..parts).for_each(f);
            return;
        };
        let workers = self.threads - 1;
        let each = |part: usize| {
            // Part p runs on thread p % threads, in order: the same parts, whatever the timing.
            let mut p = part;
            while p < parts {
                f(p);
                p += self.threads;
            }
        };
        let s = &*self.shared;
        // SAFETY: the pointer outlives its use: `Wait` below does not return (nor unwind past)
        // until every worker has decremented `remaining`, after its last use of the job.
        let job: &(dyn Fn(usize) + Sync + '_) = &each;
        let job: *const Job =
            unsafe { std::mem::transmute::<&(dyn Fn(usize) + Sync + '_), &'static Job>(job) };
        unsafe { *s.job.get() = Some(job) };
        s.remaining.store(workers, SeqCst);
        s.epoch.fetch_add(1, SeqCst);
        if s.sleepers.load(SeqCst) > 0 {
            let _l = s.lock.lock().unwrap_or_else(|e| e.into_inner());
            s.wake.notify_all();
        }
        struct Wait<'a>(&'a Shared);
        impl Drop for Wait<'_> {
            fn drop(&mut self) {
                while self.0.remaining.load(SeqCst) != 0 {
                    std::hint::spin_loop();
                }
            }
        }
        let wait = Wait(s);
        each(0);
        drop(wait);
        if s.panicked.swap(false, SeqCst) {
            panic!("a wgtrain CPU worker thread panicked (see its message above)");
        }
    }
}

impl Pool {
    /// `f(rows, block)` over blocks of whole rows of `out` (`[rows, cols]`), one per thread
    /// when `out` has at least `min_len` values, else one: `block` is `out`'s rows `rows`.
    pub(crate) fn rows(
        &self,
        out: &mut [f32],
        cols: usize,
        min_len: usize,
        f: &(dyn Fn(std::ops::Range<usize>, &mut [f32]) + Sync),
    ) {
        let rows = out.len() / cols.max(1);
        let parts = if out.len() < min_len {
            1
        } else {
            self.threads.min(rows)
        };
        if parts <= 1 {
            f(0..rows, out);
            return;
        }
        let ptr = OutPtr(out.as_mut_ptr());
        self.run(parts, &|part| {
            let r = rows * part / parts..rows * (part + 1) / parts;
            // SAFETY: the parts' row ranges are disjoint blocks of `out`, borrowed
            // mutably for the whole call.
            let block = unsafe {
                std::slice::from_raw_parts_mut(ptr.get().add(r.start * cols), r.len() * cols)
            };
            f(r, block);
        });
    }
}

#[derive(Clone, Copy)]
struct OutPtr(*mut f32);
unsafe impl Sync for OutPtr {}
impl OutPtr {
    fn get(self) -> *mut f32 {
        self.0
    }
}

fn worker(s: &Shared, part: usize) {
    let mut seen = 0u64;
    loop {
        let started = Instant::now();
        let mut spins = 0u32;
        while s.epoch.load(SeqCst) == seen {
            std::hint::spin_loop();
            spins = spins.wrapping_add(1);
            if spins % 256 == 0 && started.elapsed() > SPIN {
                let mut l = s.lock.lock().unwrap_or_else(|e| e.into_inner());
                s.sleepers.fetch_add(1, SeqCst);
                while s.epoch.load(SeqCst) == seen {
                    l = s.wake.wait(l).unwrap_or_else(|e| e.into_inner());
                }
                s.sleepers.fetch_sub(1, SeqCst);
            }
        }
        seen = s.epoch.load(SeqCst);
        // SAFETY: published before the epoch bump just seen, alive until `remaining` is 0.
        let job = unsafe { (*s.job.get()).expect("a job is published with its epoch") };
        let job: &Job = unsafe { &*job };
        if catch_unwind(AssertUnwindSafe(|| job(part))).is_err() {
            s.panicked.store(true, SeqCst);
        }
        s.remaining.fetch_sub(1, SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_part_runs_once_on_any_thread_count() {
        for threads in [1, 2, 3, 5] {
            let pool = Pool::shared(threads);
            for parts in [0, 1, 2, 3, 7, 16] {
                let hits: Vec<AtomicUsize> = (0..parts).map(|_| AtomicUsize::new(0)).collect();
                for _ in 0..50 {
                    pool.run(parts, &|p| {
                        hits[p].fetch_add(1, SeqCst);
                    });
                }
                for (p, h) in hits.iter().enumerate() {
                    assert_eq!(h.load(SeqCst), 50, "threads {threads}, part {p} of {parts}");
                }
            }
        }
    }

    #[test]
    fn a_panicking_part_is_raised_on_the_caller_after_all_parts() {
        let pool = Pool::shared(2);
        let done = AtomicUsize::new(0);
        let r = catch_unwind(AssertUnwindSafe(|| {
            pool.run(2, &|p| {
                if p == 1 {
                    panic!("part 1 fails");
                }
                std::thread::sleep(Duration::from_millis(20));
                done.fetch_add(1, SeqCst);
            })
        }));
        assert!(r.is_err());
        assert_eq!(done.load(SeqCst), 1);
        // The pool still works.
        let n = AtomicUsize::new(0);
        pool.run(2, &|_| {
            n.fetch_add(1, SeqCst);
        });
        assert_eq!(n.load(SeqCst), 2);
    }
}
