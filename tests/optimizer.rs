//! The optimizers on every backend against the reference: plain, and guarded as `fit` guards
//! them (the spec of `Backend::optimizer_step`, every state of the guard); on the GPU, the
//! grouped one-dispatch update, and its fallback for groups too big to bind.

mod common;

use common::{assert_close, rng, uniform, upload, ROW_SHAPES};
use wgtrain::backend::{reference, Backend, Guard, GuardSlots, Optimizer, Tensor};
use wgtrain::tolerance::Tolerance;

fn check_optimizers<B: Backend>(b: &mut B) {
    let mut r = rng(6);
    let opts = [
        Optimizer::Sgd { lr: 0.1 },
        Optimizer::Momentum {
            lr: 0.05,
            momentum: 0.9,
            nesterov: false,
        },
        Optimizer::Momentum {
            lr: 0.05,
            momentum: 0.9,
            nesterov: true,
        },
        Optimizer::adam(1e-3),
        Optimizer::Adam {
            lr: 0.01,
            beta1: 0.8,
            beta2: 0.99,
            eps: 1e-8,
            weight_decay: 0.01,
        },
    ];
    for opt in opts {
        for &(rows, cols, why) in ROW_SHAPES {
            let n = rows * cols;
            let mut p_ref = uniform(&mut r, n, -1.0, 1.0);
            let mut state_ref = vec![vec![0.0f32; n]; opt.state_tensors()];
            let mut param = upload(b, rows, cols, &p_ref);
            let mut state: Vec<B::Tensor> = (0..opt.state_tensors())
                .map(|_| b.zeros(rows, cols).unwrap())
                .collect();
            for t in 1..=3 {
                let g_data = uniform(&mut r, n, -1.0, 1.0);
                let grad = upload(b, rows, cols, &g_data);
                b.optimizer_step(opt, t, &mut param, &grad, &mut state, None)
                    .unwrap();
                let mut views: Vec<&mut [f32]> =
                    state_ref.iter_mut().map(|s| s.as_mut_slice()).collect();
                reference::optimizer_step(opt, t, &mut p_ref, &g_data, &mut views);
            }
            let what = format!("{opt:?} {rows}×{cols} ({why})");
            let tol = Tolerance::new(1e-6, 1e-5);
            assert_close(
                &format!("{what}: param"),
                tol,
                &b.read(&param).unwrap(),
                &p_ref,
            );
            for (s, want) in state.iter().zip(&state_ref) {
                assert_close(&format!("{what}: state"), tol, &b.read(s).unwrap(), want);
            }
        }
    }
}
backend_test!(optimizers, check_optimizers);

/// One guarded step of `opt` at `t` from `start` with `grad`, the accumulator holding `acc`
/// (loss, flag, flag, step), the outputs holding -9; returns the parameter, each state
/// tensor, the new parameter and each new state tensor, and the accumulator's bits.
fn guarded_step<B: Backend>(
    b: &mut B,
    opt: Optimizer,
    t: u64,
    start: &[f32],
    grad: &[f32],
    acc: [f32; 4],
) -> (Vec<Vec<f32>>, Vec<u32>) {
    let n = start.len();
    let mut param = upload(b, 1, n, start);
    let grad = upload(b, 1, n, grad);
    let mut state: Vec<B::Tensor> = (0..opt.state_tensors())
        .map(|_| b.zeros(1, n).unwrap())
        .collect();
    let mut param_out = upload(b, 1, n, &vec![-9.0; n]);
    let mut state_out: Vec<B::Tensor> = (0..opt.state_tensors())
        .map(|_| upload(b, 1, n, &vec![-9.0; n]))
        .collect();
    let mut acc_t = upload(b, 1, 4, &acc);
    let guard = Guard {
        acc: &mut acc_t,
        slots: GuardSlots::after(0, 1),
        params_out: std::slice::from_mut(&mut param_out),
        state_out: std::slice::from_mut(&mut state_out),
    };
    b.optimizer_step(opt, t, &mut param, &grad, &mut state, Some(guard))
        .unwrap();
    let tensors = std::iter::once(&param)
        .chain(&state)
        .chain(std::iter::once(&param_out))
        .chain(&state_out)
        .map(|t| b.read(t).unwrap())
        .collect();
    let bits = b
        .read(&acc_t)
        .unwrap()
        .iter()
        .map(|v| v.to_bits())
        .collect();
    (tensors, bits)
}

/// A guarded update, as `Backend::optimizer_step` specifies it: the parameter and state are
/// only read; with the loss finite and the previous step's flag down, the new values go to
/// the outputs and the step is recorded; with the loss not finite or the previous flag
/// raised, nothing is written but this step's flag, which is raised; a result that is not
/// finite raises it too. Flags alternate with t's parity.
fn check_optimizer_guard<B: Backend>(b: &mut B) {
    let adam = Optimizer::adam(0.1);
    let start = [1.0, -2.0, 3.0];
    let grad = [0.5, 0.5, -0.5];
    let tol = Tolerance::new(1e-6, 1e-6);
    let (unwritten, zeros) = (vec![-9.0f32; 3], vec![0.0f32; 3]);
    let (seven, nan, one) = (7f32.to_bits(), f32::NAN.to_bits(), 1);
    let reference = |t: u64| {
        let (mut p, mut m, mut v) = (start.to_vec(), vec![0.0; 3], vec![0.0; 3]);
        reference::optimizer_step(adam, t, &mut p, &grad, &mut [&mut m, &mut v]);
        [p, m, v]
    };

    // Slots: loss 0, flags 1 and 2, step 3. Odd steps read flag 1 (the previous step's) and
    // raise flag 2; even steps the other way round.
    // Clear: the new values go to the outputs; the inputs stay; nothing is raised.
    let (got, acc) = guarded_step(b, adam, 1, &start, &grad, [7.0, 0.0, 0.0, 0.0]);
    assert_eq!(
        (&got[0], &got[1], &got[2]),
        (&start.to_vec(), &zeros, &zeros),
        "inputs kept"
    );
    assert_close("the new parameter", tol, &got[3], &[0.9, -2.1, 3.1]);
    for (i, want) in reference(1).iter().enumerate() {
        assert_close(&format!("output {i}"), tol, &got[3 + i], want);
    }
    assert_eq!(acc, vec![seven, 0, 0, 1], "no flag, step 1 recorded");

    // The loss so far is not finite: nothing written; this step's flag (t = 2: slot 1) goes up.
    let (got, acc) = guarded_step(b, adam, 2, &start, &grad, [f32::NAN, 0.0, 0.0, 0.0]);
    assert_eq!(got[0], start.to_vec());
    assert_eq!(
        (&got[3], &got[4], &got[5]),
        (&unwritten, &unwritten, &unwritten),
        "a NaN loss must skip"
    );
    assert_eq!(acc, vec![nan, one, 0, 0]);

    // The previous step raised its flag (t = 3 reads slot 1): nothing written, slot 2 goes up.
    let raised = f32::from_bits(1);
    let (got, acc) = guarded_step(b, adam, 3, &start, &grad, [7.0, raised, 0.0, 0.0]);
    assert_eq!(got[3], unwritten, "a raised flag must skip the update");
    assert_eq!(acc, vec![seven, one, one, 0]);
    // This step's own flag (slot 2 for t = 3), raised earlier, does not stop it.
    let (got, acc) = guarded_step(b, adam, 3, &start, &grad, [7.0, 0.0, raised, 0.0]);
    for (i, want) in reference(3).iter().enumerate() {
        assert_close(&format!("t = 3 output {i}"), tol, &got[3 + i], want);
    }
    assert_eq!(acc, vec![seven, 0, one, 3]);

    // An update whose result is not finite is written, and raises the flag.
    let sgd = Optimizer::Sgd { lr: f32::MAX };
    let (got, acc) = guarded_step(b, sgd, 1, &start, &[-2.0, 0.0, 0.0], [7.0, 0.0, 0.0, 0.0]);
    assert!(got[1][0].is_infinite() && got[1][1] == -2.0, "{:?}", got[1]);
    assert_eq!(got[0], start.to_vec(), "SGD's input parameter is kept");
    assert_eq!(acc, vec![seven, 0, one, 1]);
}
backend_test!(optimizer_guard, check_optimizer_guard);

/// Params, grads, each kind of optimizer state, then the new params and each kind of new
/// state (a guarded step's outputs) as tensors of `shapes`, made as one group each (or one by one) and filled from `values`
/// (`shapes.len()` tensors per role, in that order); one `optimizer_step_all` at step 3,
/// guarded by an accumulator holding `acc` (loss, flag, flag, step) or unguarded; every
/// tensor and the accumulator read back in the same order.
fn step_all<B: Backend>(
    b: &mut B,
    opt: Optimizer,
    shapes: &[[usize; 2]],
    values: &[Vec<f32>],
    grouped: bool,
    acc: Option<[f32; 4]>,
) -> Vec<Vec<f32>> {
    let n = shapes.len();
    let make = |b: &mut B, vals: &[Vec<f32>]| -> Vec<B::Tensor> {
        let mut ts = if grouped {
            b.zeros_group(shapes).unwrap()
        } else {
            shapes
                .iter()
                .map(|s| b.zeros(s[0], s[1]).unwrap())
                .collect()
        };
        for (t, v) in ts.iter_mut().zip(vals) {
            b.write(t, v).unwrap();
        }
        ts
    };
    let by_param = |kinds: Vec<Vec<B::Tensor>>| -> Vec<Vec<B::Tensor>> {
        let mut out: Vec<Vec<B::Tensor>> = (0..n).map(|_| Vec::new()).collect();
        for kind in kinds {
            for (o, t) in out.iter_mut().zip(kind) {
                o.push(t);
            }
        }
        out
    };
    let kinds = opt.state_tensors();
    let mut params = make(b, &values[..n]);
    let grads = make(b, &values[n..2 * n]);
    let mut state = by_param(
        (0..kinds)
            .map(|k| make(b, &values[(2 + k) * n..(3 + k) * n]))
            .collect(),
    );
    let mut params_out = make(b, &values[(2 + kinds) * n..(3 + kinds) * n]);
    let mut state_out = by_param(
        (0..kinds)
            .map(|k| make(b, &values[(3 + kinds + k) * n..(4 + kinds + k) * n]))
            .collect(),
    );
    let mut acc_t = b.upload(1, 4, &acc.unwrap_or_default()).unwrap();
    let guard = acc.map(|_| Guard {
        acc: &mut acc_t,
        slots: GuardSlots::after(0, 1),
        params_out: &mut params_out,
        state_out: &mut state_out,
    });
    b.optimizer_step_all(opt, 3, &mut params, &grads, &mut state, guard)
        .unwrap();
    let mut out: Vec<Vec<f32>> = params
        .iter()
        .chain(&grads)
        .map(|t| b.read(t).unwrap())
        .collect();
    for k in 0..kinds {
        out.extend(state.iter().map(|s| b.read(&s[k]).unwrap()));
    }
    out.extend(params_out.iter().map(|t| b.read(t).unwrap()));
    for k in 0..kinds {
        out.extend(state_out.iter().map(|s| b.read(&s[k]).unwrap()));
    }
    out.push(b.read(&acc_t).unwrap());
    out
}

/// `optimizer_step_all` over tensors made by `zeros_group` updates every parameter as the
/// reference's per-tensor steps do, in one dispatch; over tensors that are not whole groups it
/// falls back to one dispatch per tensor with the same result. Each optimizer, unguarded and
/// in each state of the guard: clear, a NaN loss, the previous step's flag raised, and a
/// result that overflows; the outputs and the accumulator's bits agree too.
#[test]
fn a_grouped_optimizer_step_is_one_dispatch_and_matches_the_reference() {
    use wgtrain::backend::reference::ReferenceBackend;
    let Some(mut g) = common::gpu() else { return };
    let shapes = [[7, 5], [1, 5], [5, 3], [1, 3], [3, 1], [1, 1]];
    let n = shapes.len();
    let adam = Optimizer::Adam {
        lr: 0.01,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-7,
        weight_decay: 0.01,
    };
    let optimizers = [
        Optimizer::Sgd { lr: 0.1 },
        Optimizer::Momentum {
            lr: 0.05,
            momentum: 0.9,
            nesterov: true,
        },
        adam,
        // Steps of 3e38: some parameters overflow to ±infinity.
        Optimizer::Sgd { lr: 3e38 },
    ];
    // Step 3 reads flag slot 1 (the previous step's) and raises slot 2.
    let raised = f32::from_bits(1);
    let guards = [
        None,
        Some([7.0, 0.0, 0.0, 0.0]),
        Some([f32::NAN, 0.0, 0.0, 0.0]),
        Some([7.0, raised, 0.0, 0.0]),
    ];
    let mut r = common::rng(33);
    for opt in optimizers {
        let overflows = opt.lr() > 1.0;
        let cases = guards
            .iter()
            .flat_map(|&acc| [(true, acc), (false, acc)])
            .filter(|&(grouped, acc)| !overflows || (grouped && acc.is_some()));
        for (grouped, acc) in cases {
            let kinds = opt.state_tensors();
            let values: Vec<Vec<f32>> = (0..(3 + 2 * kinds) * n)
                .map(|i| {
                    let [rows, cols] = shapes[i % n];
                    let lo = if i / n == 3 { 0.0 } else { -1.0 }; // Adam's v is ≥ 0
                    let v = common::uniform(&mut r, rows * cols, lo, 1.0);
                    // Gradients up to 4: 3e38 × 4 overflows, 3e38 × 1 does not.
                    let scale = if overflows && i / n == 1 { 4.0 } else { 1.0 };
                    v.into_iter().map(|x| x * scale).collect()
                })
                .collect();
            let want = step_all(
                &mut ReferenceBackend::new(),
                opt,
                &shapes,
                &values,
                grouped,
                acc,
            );
            let before = g.stats().dispatches;
            let got = step_all(&mut g, opt, &shapes, &values, grouped, acc);
            let dispatches = g.stats().dispatches - before;
            let what = format!("{opt:?} grouped={grouped} acc={acc:?}");
            let (got_acc, want_acc) = (got.last().unwrap(), want.last().unwrap());
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(got_acc), bits(want_acc), "{what}: the accumulator");
            for (i, (got, want)) in got.iter().zip(&want).enumerate().rev().skip(1) {
                if overflows {
                    // Where f32 overflows, both must; the rest as closely as always.
                    let finite = |v: &[f32]| v.iter().map(|x| x.is_finite()).collect::<Vec<_>>();
                    assert_eq!(finite(got), finite(want), "{what}: tensor {i}");
                    let keep = |v: &[f32]| {
                        v.iter()
                            .map(|x| if x.is_finite() { *x } else { 0.0 })
                            .collect::<Vec<_>>()
                    };
                    common::assert_close(
                        &format!("{what}: tensor {i}"),
                        Tolerance::new(1e-6, 1e-5),
                        &keep(got),
                        &keep(want),
                    );
                } else {
                    common::assert_close(
                        &format!("{what}: tensor {i}"),
                        Tolerance::new(1e-6, 1e-5),
                        got,
                        want,
                    );
                }
            }
            let skipped = acc.is_some_and(|a| a[0].is_nan() || a[1] != 0.0);
            let inputs = (2 + kinds) * n;
            if acc.is_none() {
                assert_ne!(got[..n], values[..n], "{what}: nothing moved");
                assert_eq!(
                    got[inputs..got.len() - 1],
                    values[inputs..],
                    "{what}: outputs written"
                );
            } else if skipped {
                assert_eq!(got[..got.len() - 1], values[..], "{what}: a tensor changed");
                assert_eq!(got_acc[2].to_bits(), 1, "{what}: this step's flag is up");
            } else {
                assert_eq!(
                    got[..inputs],
                    values[..inputs],
                    "{what}: the inputs changed"
                );
                assert_ne!(
                    got[inputs..inputs + n],
                    values[inputs..inputs + n],
                    "{what}: no output"
                );
                assert_eq!(got_acc[3].to_bits(), 3, "{what}: step 3 recorded");
                assert_eq!(got_acc[2].to_bits(), overflows as u32, "{what}: the flag");
            }
            let expected = if grouped { 1 } else { n as u64 };
            assert_eq!(dispatches, expected, "{what}: dispatches");
        }
    }
}

/// A group larger than one binding can hold is made of separate tensors instead, and its
/// optimizer step falls back to one dispatch per tensor.
#[test]
fn a_group_too_big_to_bind_whole_falls_back_to_separate_tensors() {
    let Some(mut g) = common::gpu() else { return };
    let limit = g.context().limits().max_storage_buffer_binding_size as usize / 4;
    // Two parts that fit a binding each but not together.
    let rows = limit / 2 / 1024 + 1;
    let shapes = [[rows, 1024], [rows, 1024]];
    let mut params = g.zeros_group(&shapes).unwrap();
    let grads = g.zeros_group(&shapes).unwrap();
    let mut state: Vec<Vec<_>> = (0..2).map(|_| Vec::new()).collect();
    let before = g.stats().dispatches;
    g.optimizer_step_all(
        Optimizer::Sgd { lr: 0.1 },
        1,
        &mut params,
        &grads,
        &mut state,
        None,
    )
    .unwrap();
    assert_eq!(g.stats().dispatches - before, 2);
    assert_eq!(params[1].shape(), [rows, 1024]);
}
