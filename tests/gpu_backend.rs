//! What the GPU backend promises beyond parity: adapter choice and its errors, the binding
//! limit, and that a repeated step records into one submit and allocates nothing after the
//! first.

mod common;

use wgtrain::backend::gpu::GpuContext;
use wgtrain::backend::{Activation, Backend, Loss, Optimizer};
use wgtrain::backend::{Guard, GuardSlots};
use wgtrain::tolerance::Tolerance;
use wgtrain::Error;

#[test]
fn every_kernel_compiles() {
    let Some(g) = common::gpu() else { return };
    g.context().precompile_all().unwrap();
}

#[test]
fn an_adapter_filter_that_matches_nothing_lists_what_was_found() {
    let Some(g) = common::gpu() else { return };
    let err = GpuContext::with_adapter(Some("no-such-adapter-xyz")).unwrap_err();
    assert!(matches!(err, Error::NoAdapter { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("WGTRAIN_ADAPTER=no-such-adapter-xyz"), "{msg}");
    assert!(msg.contains(&g.context().adapter().name), "{msg}");
    assert!(msg.contains("mesa-vulkan-drivers"), "{msg}");
}

#[test]
fn an_adapter_filter_picks_by_part_of_the_name() {
    let Some(g) = common::gpu() else { return };
    let name = g.context().adapter().name.clone();
    let part = &name[..name.len().min(5)].to_uppercase();
    let ctx = GpuContext::with_adapter(Some(part)).unwrap();
    assert_eq!(ctx.adapter().name, name);
}

#[test]
fn a_tensor_over_the_binding_limit_names_the_limit() {
    let Some(mut g) = common::gpu() else { return };
    let limit = g.context().limits().max_storage_buffer_binding_size as usize;
    let rows = limit / 4 / 8 + 1;
    let err = g.zeros(rows, 8).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::TensorTooLarge { .. }), "{msg}");
    assert!(
        msg.contains("max_storage_buffer_binding_size") && msg.contains(&format!("[{rows}, 8]")),
        "{msg}"
    );
}

/// One layer's forward, backward and Adam update: what a training step records.
fn step<B: Backend>(b: &mut B, t: &mut Tensors<B::Tensor>, step: u64) {
    b.matmul(&t.x, false, &t.w, false, &mut t.z).unwrap();
    b.bias_add(&mut t.z, &t.bias).unwrap();
    b.activation(Activation::Linear, &t.z, &mut t.a).unwrap();
    b.loss(
        Loss::SparseSoftmaxCrossEntropy,
        &t.a,
        &t.y,
        &mut t.da,
        &mut t.row_loss,
    )
    .unwrap();
    b.sum_into(&t.row_loss, &mut t.acc, 0).unwrap();
    b.argmax_correct_into(&t.a, &t.y, &mut t.acc, 1).unwrap();
    b.activation_backward(Activation::Linear, &t.z, &t.a, &t.da, &mut t.dz)
        .unwrap();
    b.matmul(&t.x, true, &t.dz, false, &mut t.dw).unwrap();
    b.bias_grad(&t.dz, &mut t.db).unwrap();
    // Guarded as fit guards it: the new values go to the spare tensors, and the two swap.
    let slots = GuardSlots::after(0, 2);
    for (p, g, s, p_out, s_out) in [
        (
            &mut t.w,
            &t.dw,
            &mut t.w_state,
            &mut t.w_spare,
            &mut t.w_state_spare,
        ),
        (
            &mut t.bias,
            &t.db,
            &mut t.b_state,
            &mut t.b_spare,
            &mut t.b_state_spare,
        ),
    ] {
        let guard = Guard {
            acc: &mut t.acc,
            slots,
            params_out: std::slice::from_mut(p_out),
            state_out: std::slice::from_mut(s_out),
        };
        b.optimizer_step(Optimizer::adam(0.1), step, p, g, s, Some(guard))
            .unwrap();
        std::mem::swap(p, p_out);
        std::mem::swap(s, s_out);
    }
}

struct Tensors<T> {
    x: T,
    y: T,
    w: T,
    bias: T,
    z: T,
    a: T,
    da: T,
    dz: T,
    dw: T,
    db: T,
    row_loss: T,
    acc: T,
    w_state: Vec<T>,
    b_state: Vec<T>,
    w_spare: T,
    b_spare: T,
    w_state_spare: Vec<T>,
    b_state_spare: Vec<T>,
}

fn tensors<B: Backend>(b: &mut B) -> Tensors<B::Tensor> {
    let (n, d, c) = (32, 6, 3);
    let x: Vec<f32> = (0..n * d)
        .map(|i| ((i * 37 % 11) as f32 - 5.0) / 5.0)
        .collect();
    // Labels from a linear rule of the inputs, so the layer can learn them.
    let y: Vec<f32> = (0..n)
        .map(|r| {
            let s: f32 = x[r * d..(r + 1) * d]
                .iter()
                .enumerate()
                .map(|(j, v)| v * (j as f32 - 2.5))
                .sum();
            if s > 0.5 {
                2.0
            } else if s < -0.5 {
                0.0
            } else {
                1.0
            }
        })
        .collect();
    Tensors {
        x: b.upload(n, d, &x).unwrap(),
        y: b.upload(n, 1, &y).unwrap(),
        w: b.upload(d, c, &vec![0.01; d * c]).unwrap(),
        bias: b.zeros(1, c).unwrap(),
        z: b.zeros(n, c).unwrap(),
        a: b.zeros(n, c).unwrap(),
        da: b.zeros(n, c).unwrap(),
        dz: b.zeros(n, c).unwrap(),
        dw: b.zeros(d, c).unwrap(),
        db: b.zeros(1, c).unwrap(),
        row_loss: b.zeros(n, 1).unwrap(),
        acc: b.zeros(1, 2 + GuardSlots::COUNT).unwrap(),
        w_state: vec![b.zeros(d, c).unwrap(), b.zeros(d, c).unwrap()],
        b_state: vec![b.zeros(1, c).unwrap(), b.zeros(1, c).unwrap()],
        w_spare: b.zeros(d, c).unwrap(),
        b_spare: b.zeros(1, c).unwrap(),
        w_state_spare: vec![b.zeros(d, c).unwrap(), b.zeros(d, c).unwrap()],
        b_state_spare: vec![b.zeros(1, c).unwrap(), b.zeros(1, c).unwrap()],
    }
}

/// A step is one submit; after the first two (one on each of the swapping sets of weights,
/// whose bind groups are made once each), nothing more is allocated.
#[test]
fn a_repeated_step_is_one_submit_and_allocates_nothing_after_the_first_two() {
    let Some(mut g) = common::gpu() else { return };
    let mut t = tensors(&mut g);
    for s in 1..=2 {
        step(&mut g, &mut t, s);
        g.flush().unwrap();
    }
    let warm = g.stats();
    for s in 3..=20 {
        step(&mut g, &mut t, s);
        g.flush().unwrap();
    }
    let after = g.stats();
    assert_eq!(
        after.buffers_created, warm.buffers_created,
        "{warm:?} -> {after:?}"
    );
    assert_eq!(
        after.bind_groups_created, warm.bind_groups_created,
        "{warm:?} -> {after:?}"
    );
    assert_eq!(after.submits - warm.submits, 18, "one submit per step");
    assert_eq!(
        after.dispatches - warm.dispatches,
        18 * 11,
        "eleven dispatches per step"
    );
}

/// The same 20 steps on both backends give the same loss sums and weights, and they learn.
#[test]
fn twenty_steps_agree_with_the_reference_and_learn() {
    let Some(mut g) = common::gpu() else { return };
    let mut c = wgtrain::backend::reference::ReferenceBackend::new();
    let mut tg = tensors(&mut g);
    let mut tc = tensors(&mut c);
    let mut first = None;
    for s in 1..=20 {
        g.fill(&mut tg.acc, 0.0).unwrap();
        c.fill(&mut tc.acc, 0.0).unwrap();
        step(&mut g, &mut tg, s);
        step(&mut c, &mut tc, s);
        let (lg, lc) = (g.read(&tg.acc).unwrap(), c.read(&tc.acc).unwrap());
        common::assert_close(
            &format!("step {s} loss sum, correct count"),
            Tolerance::new(1e-4, 1e-4),
            &lg,
            &lc,
        );
        first.get_or_insert(lc[0]);
    }
    let w_tol = Tolerance::new(1e-5, 1e-4);
    common::assert_close(
        "weights after 20 steps",
        w_tol,
        &g.read(&tg.w).unwrap(),
        &c.read(&tc.w).unwrap(),
    );
    let last = c.read(&tc.acc).unwrap()[0];
    assert!(
        last < 0.5 * first.unwrap(),
        "loss sum went {} -> {last}",
        first.unwrap()
    );
}

/// Every matmul variant, with its tile sizes set as WGSL `override` constants from the host,
/// and with its fused bias + activation epilogue, gives the reference's products on the shapes
/// that break tiling; impossible tilings are refused.
#[test]
fn every_matmul_variant_and_tiling_agrees_with_the_reference() {
    use wgtrain::backend::gpu::{MatmulTiles, MatmulVariant};
    let Some(mut g) = common::gpu() else { return };
    let tiled = |wg_x, wg_y, bk| MatmulTiles {
        variant: MatmulVariant::Tiled,
        wg_x,
        wg_y,
        bk,
        split_k: 1,
    };
    let direct = |wg_x, wg_y| MatmulTiles {
        variant: MatmulVariant::Direct,
        wg_x,
        wg_y,
        bk: 1,
        split_k: 1,
    };
    let vec4 = |wg_x, wg_y| MatmulTiles {
        variant: MatmulVariant::Vec4,
        wg_x,
        wg_y,
        bk: 1,
        split_k: 1,
    };
    let tilings = [
        MatmulTiles::TILED,
        MatmulTiles::DIRECT,
        MatmulTiles::VEC4,
        vec4(4, 2),
        vec4(1, 1),
        tiled(8, 8, 8),
        tiled(32, 4, 4),
        tiled(4, 16, 32),
        tiled(1, 1, 1),
        direct(16, 16),
        direct(32, 2),
        direct(1, 1),
    ];
    let subgroup = |wg_y| MatmulTiles {
        variant: MatmulVariant::Subgroup,
        wg_x: 8,
        wg_y,
        bk: 1,
        split_k: 1,
    };
    let mut tilings = tilings.to_vec();
    let v6_bytes = MatmulTiles::TILED8.workgroup_bytes();
    if v6_bytes <= g.context().limits().max_compute_workgroup_storage_size as u64 {
        // Split-K in 2, 3 and 16 slices: of every K above (fewer, where K is short).
        let split = |split_k| MatmulTiles {
            split_k,
            ..MatmulTiles::TILED8
        };
        tilings.extend([MatmulTiles::TILED8, split(2), split(3), split(16)]);
        let err = g
            .set_matmul_tiles(MatmulTiles {
                split_k: 2,
                ..MatmulTiles::VEC4
            })
            .unwrap_err();
        assert!(err.to_string().contains("split-K"), "{err}");
    } else {
        let err = g.set_matmul_tiles(MatmulTiles::TILED8).unwrap_err();
        assert!(err.to_string().contains("workgroup memory"), "{err}");
        eprintln!("{v6_bytes} bytes of workgroup memory do not fit here: matmul v6 not tested");
    }
    if g.context().adapter().subgroup_sizes == Some((8, 8)) {
        tilings.extend([MatmulTiles::SUBGROUP, subgroup(2), subgroup(1)]);
        tilings.extend([
            MatmulTiles::SUBGROUP16,
            MatmulTiles {
                wg_y: 1,
                ..MatmulTiles::SUBGROUP16
            },
        ]);
    } else {
        let err = g.set_matmul_tiles(MatmulTiles::SUBGROUP).unwrap_err();
        assert!(err.to_string().contains("exactly 8"), "{err}");
        eprintln!("no 8-wide subgroups here: matmul v4 not tested");
    }
    let mut r = common::rng(20);
    for tiles in tilings {
        g.set_matmul_tiles(tiles).unwrap();
        for &(m, n, k, why) in common::MATMUL_SHAPES {
            for (ta, tb) in [(false, false), (false, true), (true, false)] {
                let a_data = common::uniform(&mut r, m * k, -1.0, 1.0);
                let b_data = common::uniform(&mut r, k * n, -1.0, 1.0);
                let a = if ta {
                    g.upload(k, m, &a_data)
                } else {
                    g.upload(m, k, &a_data)
                }
                .unwrap();
                let b = if tb {
                    g.upload(n, k, &b_data)
                } else {
                    g.upload(k, n, &b_data)
                }
                .unwrap();
                let mut c = g.zeros(m, n).unwrap();
                g.matmul(&a, ta, &b, tb, &mut c).unwrap();
                let mut want = vec![0.0; m * n];
                wgtrain::backend::reference::matmul_forward(
                    &a_data, ta, &b_data, tb, &mut want, m, n, k,
                );
                let tol = Tolerance::new(2e-6 * (k as f32).sqrt() + 1e-6, 1e-5);
                common::assert_close(
                    &format!("{tiles:?} M={m} N={n} K={k} ta={ta} tb={tb} ({why})"),
                    tol,
                    &g.read(&c).unwrap(),
                    &want,
                );
                if (ta, tb) == (false, false) {
                    // The same product with this variant's bias + ELU epilogue (or unfused).
                    let bias_data = common::uniform(&mut r, n, -1.0, 1.0);
                    let bias = g.upload(1, n, &bias_data).unwrap();
                    let mut act = g.zeros(m, n).unwrap();
                    g.dense_forward(
                        &a,
                        &b,
                        &bias,
                        Activation::Elu { alpha: 0.7 },
                        &mut c,
                        &mut act,
                    )
                    .unwrap();
                    wgtrain::backend::reference::bias_forward(&mut want, &bias_data, n);
                    let mut want_act = vec![0.0; m * n];
                    wgtrain::backend::reference::activation_forward(
                        Activation::Elu { alpha: 0.7 },
                        &want,
                        &mut want_act,
                        n,
                    );
                    let what = format!("{tiles:?} dense forward M={m} N={n} K={k} ({why})");
                    common::assert_close(&what, tol, &g.read(&c).unwrap(), &want);
                    let tol = Tolerance::new(tol.abs + 2e-6, 2e-5);
                    common::assert_close(&what, tol, &g.read(&act).unwrap(), &want_act);
                }
            }
        }
    }
    let too_big = tiled(64, 64, 16);
    let err = g.set_matmul_tiles(too_big).unwrap_err().to_string();
    assert!(
        err.contains("max_compute_invocations_per_workgroup"),
        "{err}"
    );
    let err = g.set_matmul_tiles(tiled(0, 8, 8)).unwrap_err().to_string();
    assert!(err.contains("at least 1"), "{err}");
}

/// With profiling on, every dispatch is timed by timestamp queries and the times are summed
/// per kernel, the matmul named with its transposes.
#[test]
fn profiling_times_every_dispatch_by_kernel() {
    let Some(mut g) = common::gpu() else { return };
    if !g.context().has_timestamps() {
        eprintln!("no timestamp queries on this adapter: skipped");
        assert!(g.enable_profiling().is_err());
        return;
    }
    g.enable_profiling().unwrap();
    g.set_autotune(false); // its trial runs would be timed too
    let a = g.upload(16, 8, &[0.5; 128]).unwrap();
    let w = g.upload(8, 4, &[0.25; 32]).unwrap();
    let mut c = g.zeros(16, 4).unwrap();
    let mut d = g.zeros(16, 4).unwrap();
    for _ in 0..3 {
        g.matmul(&a, false, &w, false, &mut c).unwrap();
        g.activation(Activation::Relu, &c, &mut d).unwrap();
    }
    g.flush().unwrap();
    g.matmul(&a, false, &w, false, &mut c).unwrap();
    assert_eq!(g.read(&c).unwrap()[0], 1.0);
    let times = g.kernel_times();
    let find = |name: &str| times.iter().find(|t| t.kernel.contains(name)).cloned();
    let mm = find("A·B").expect("the matmul was timed");
    let act = find("act_forward").expect("the activation was timed");
    assert_eq!((mm.dispatches, act.dispatches), (4, 3), "{times:?}");
    assert!(mm.nanos > 0.0 && act.nanos > 0.0, "{times:?}");
    g.reset_kernel_times();
    assert!(g.kernel_times().is_empty());
}

/// The matmul tiling is measured once per shape class (dimensions rounded up to powers of two,
/// and the transposes) and the choice is shared by every backend on the context; a tiling set
/// by hand turns tuning off.
#[test]
fn autotuning_runs_once_per_shape_class_and_is_shared_by_the_context() {
    use std::sync::Arc;
    use wgtrain::backend::gpu::{GpuBackend, MatmulTiles};
    if common::gpu().is_none() {
        return;
    }
    let ctx = Arc::new(GpuContext::new().unwrap());
    let mut g = GpuBackend::with_context(ctx.clone());
    let product = |g: &mut GpuBackend, m: usize, n: usize, k: usize| {
        let a = g.upload(m, k, &vec![1.0; m * k]).unwrap();
        let b = g.upload(k, n, &vec![0.5; k * n]).unwrap();
        let mut c = g.zeros(m, n).unwrap();
        g.matmul(&a, false, &b, false, &mut c).unwrap();
        assert!(g.read(&c).unwrap().iter().all(|&v| v == 0.5 * k as f32));
    };
    product(&mut g, 40, 44, 36);
    assert_eq!(g.stats().tunings, 1, "first use of the 64×64×64 class");
    product(&mut g, 36, 60, 48);
    assert_eq!(g.stats().tunings, 1, "the same class again");
    product(&mut g, 4, 8, 200);
    assert_eq!(g.stats().tunings, 2, "a new class");
    let mut other = GpuBackend::with_context(ctx);
    product(&mut other, 40, 44, 36);
    assert_eq!(other.stats().tunings, 0, "another backend on the context");
    other.set_matmul_tiles(MatmulTiles::VEC4).unwrap();
    product(&mut other, 400, 400, 400);
    assert_eq!(other.stats().tunings, 0, "a fixed tiling is not tuned");
}
