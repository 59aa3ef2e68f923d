//! A training step on the fast CPU backend allocates nothing once it has run (an MLP's and a
//! CNN's): every
//! allocation in this binary is counted, on every thread, so it holds one test only (the
//! harness would run others beside it).

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use wgtrain::backend::cpu::CpuBackend;
use wgtrain::data::{self, Matrix};
use wgtrain::train::FitConfig;

/// Counts every allocation in this test binary, on every thread.
struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn a_training_step_allocates_nothing_once_it_has_run() {
    // Two fresh models, one epoch each, of 4 and of 16 steps: the same warm-up and the same
    // books per epoch, so any difference is 12 steps' allocations.
    let (x, y) = data::digits();
    let rows = |n: usize| {
        let cols = x.cols();
        let xs = Matrix::new(n, cols, x.data()[..n * cols].to_vec()).unwrap();
        let ys = Matrix::new(n, 1, y.data()[..n].to_vec()).unwrap();
        (xs, ys)
    };
    let count = |steps: usize| {
        let (xs, ys) = rows(steps * 32);
        let (mut model, _, _) = common::digits_cpu_model(CpuBackend::with_threads(2));
        let config = FitConfig::epochs(1)
            .batch_size(32)
            .verbose(0)
            .shuffle(false);
        let before = ALLOCATIONS.load(Ordering::Relaxed);
        model.fit(&xs, &ys, config).unwrap();
        ALLOCATIONS.load(Ordering::Relaxed) - before
    };
    count(2);
    let (four, sixteen) = (count(4), count(16));
    assert_eq!(
        sixteen,
        four,
        "an epoch of 16 steps allocated {sixteen} times, one of 4 steps {four}: {} per step",
        (sixteen as f64 - four as f64) / 12.0
    );

    // A CNN (convolutions with and without bias, both poolings): its windows' buffers grow on
    // the first step and are reused after.
    let count_cnn = |steps: usize| {
        let (xs, ys) = rows(steps * 32);
        let mut model = common::digits_cpu_cnn(CpuBackend::with_threads(2));
        let config = FitConfig::epochs(1)
            .batch_size(32)
            .verbose(0)
            .shuffle(false);
        let before = ALLOCATIONS.load(Ordering::Relaxed);
        model.fit(&xs, &ys, config).unwrap();
        ALLOCATIONS.load(Ordering::Relaxed) - before
    };
    count_cnn(2);
    let (four, sixteen) = (count_cnn(4), count_cnn(16));
    assert_eq!(
        sixteen,
        four,
        "a CNN's epoch of 16 steps allocated {sixteen} times, one of 4 steps {four}: {} per step",
        (sixteen as f64 - four as f64) / 12.0
    );
}
