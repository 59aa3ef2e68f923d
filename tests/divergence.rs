//! TerminateOnNaN: a run whose loss, updates or validation loss stop being finite stops, and
//! its model holds the weights of the last step whose loss was finite — not the ones the
//! diverging update made — on both backends.

mod common;

use wgtrain::backend::{Activation, Backend, Optimizer};
use wgtrain::data::Matrix;
use wgtrain::nn::{Dense, LayerWeights, LossFn, Sequential};
use wgtrain::tolerance::Tolerance;
use wgtrain::train::{Compile, FitConfig, Model};

/// y = 3x on 64 rows in [0, 8); with `outlier`, row 40 (the sixth batch of 8) is that far
/// out.
fn line(outlier: Option<f32>) -> (Matrix, Matrix) {
    let mut xs: Vec<f32> = (0..64).map(|i| i as f32 / 8.0).collect();
    if let Some(v) = outlier {
        xs[40] = v;
    }
    let y = Matrix::new(64, 1, xs.iter().map(|x| 3.0 * x).collect()).unwrap();
    (Matrix::new(64, 1, xs).unwrap(), y)
}

/// A linear 1 → 4 → 1 network: nothing saturates, so a large error grows without bound.
fn regressor<B: Backend>(b: B, opt: Optimizer) -> Model<B> {
    Sequential::new()
        .add(Dense::new(4, Activation::Linear))
        .add(Dense::new(1, Activation::Linear))
        .compile(b, Compile::new(LossFn::MeanSquaredError, opt).seed(3))
        .unwrap()
}

fn finite(w: &[LayerWeights]) -> bool {
    w.iter()
        .all(|l| l.weight().iter().chain(l.bias()).all(|v| v.is_finite()))
}

fn assert_weights_eq(what: &str, got: &[LayerWeights], want: &[LayerWeights], exact: bool) {
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        if exact {
            assert_eq!(g, w, "{what}: layer {i}");
        } else {
            let tol = Tolerance::new(1e-5, 1e-4);
            common::assert_close(
                &format!("{what}: layer {i} weight"),
                tol,
                g.weight(),
                w.weight(),
            );
            common::assert_close(&format!("{what}: layer {i} bias"), tol, g.bias(), w.bias());
        }
    }
}

/// The case: SGD at lr 1e30. The first update's loss is finite, but the weights it
/// makes overflow the next step's loss: the run stops in epoch 1 and goes back to the weights
/// it started from, which still evaluate to a finite loss.
fn check_the_first_diverging_update_is_undone<B: Backend>(backend: impl Fn() -> B) {
    let (x, y) = line(None);
    let mut model = regressor(backend(), Optimizer::Sgd { lr: 1e30 });
    model.build(1).unwrap();
    let initial = model.weights().unwrap();
    let history = model
        .fit(&x, &y, FitConfig::epochs(5).batch_size(8).verbose(0))
        .unwrap();
    let d = history.diverged.clone().expect("the run diverged");
    assert_eq!((d.epoch, d.step), (1, 0), "{d:?}");
    let reason = history.stopped_early.clone().unwrap();
    assert!(
        reason.contains("TerminateOnNaN") && reason.contains("ones it started from"),
        "{reason}"
    );
    assert_eq!(history.epochs, vec![1]);
    assert_eq!((model.epochs_done(), model.steps()), (0, 0));
    let w = model.weights().unwrap();
    assert_weights_eq("back to the start", &w, &initial, true);
    let eval = model.evaluate(&x, &y, 64).unwrap();
    assert!(eval.loss.is_finite(), "{eval:?}");
}
model_test!(
    the_first_diverging_update_is_undone,
    check_the_first_diverging_update_is_undone
);

/// Five good steps, then an outlier row sends the weights off: the model ends with the
/// weights of the step the run reports, the same as a run of exactly that many steps.
fn check_a_later_divergence_keeps_the_last_finite_step<B: Backend>(backend: impl Fn() -> B) {
    let (x, y) = line(Some(3e4));
    let opt = Optimizer::Sgd { lr: 0.05 };
    let config = || FitConfig::epochs(3).batch_size(8).shuffle(false).verbose(0);
    let mut model = regressor(backend(), opt);
    let history = model.fit(&x, &y, config()).unwrap();
    let d = history
        .diverged
        .clone()
        .expect("the outlier makes it diverge");
    assert!(d.step >= 5 && d.step < 24, "{d:?}");
    assert_eq!(model.steps(), d.step);
    let kept = model.weights().unwrap();
    assert!(finite(&kept), "{kept:?}");

    // The same model trained for exactly `d.step` steps (one unshuffled epoch over the rows
    // those steps saw, or more epochs for a later step).
    let mut again = regressor(backend(), opt);
    let rows = d.step as usize * 8;
    let (epochs, rows) = (rows.div_ceil(64), rows.min(64));
    if rows == 64 {
        assert_eq!(d.step % 8, 0, "a step past epoch 1 ends an epoch here");
    }
    again
        .fit(
            &x.head(rows),
            &y.head(rows),
            FitConfig::epochs(epochs)
                .batch_size(8)
                .shuffle(false)
                .verbose(0),
        )
        .unwrap();
    let exact = std::any::type_name::<B>().contains("Cpu");
    assert_weights_eq(
        &format!("the weights after step {}", d.step),
        &kept,
        &again.weights().unwrap(),
        exact,
    );
}
model_test!(
    a_later_divergence_keeps_the_last_finite_step,
    check_a_later_divergence_keeps_the_last_finite_step
);

/// An update that overflows the weights while the loss that led to it was finite is caught
/// by the update itself (its flag), not by a later loss: the run stops in that epoch and
/// the weights are those before it.
fn check_an_overflowing_update_is_caught_by_its_flag<B: Backend>(backend: impl Fn() -> B) {
    let (x, y) = line(None);
    let mut model = Sequential::new()
        .add(Dense::new(1, Activation::Linear))
        .compile(
            backend(),
            Compile::new(LossFn::MeanSquaredError, Optimizer::Sgd { lr: f32::MAX }).seed(3),
        )
        .unwrap();
    model.build(1).unwrap();
    let initial = model.weights().unwrap();
    // One batch: the only update overflows, and no later loss sees it.
    let history = model
        .fit(&x, &y, FitConfig::epochs(2).batch_size(64).verbose(0))
        .unwrap();
    let d = history.diverged.clone().expect("the update overflowed");
    assert!(d.cause.contains("update"), "{d:?}");
    assert_eq!((d.epoch, d.step), (1, 0));
    assert_weights_eq(
        "before the update",
        &model.weights().unwrap(),
        &initial,
        true,
    );
}
model_test!(
    an_overflowing_update_is_caught_by_its_flag,
    check_an_overflowing_update_is_caught_by_its_flag
);

/// Without TerminateOnNaN nothing is guarded or undone: the weights go where the updates
/// take them.
#[test]
fn without_terminate_on_nan_nothing_is_undone() {
    let (x, y) = line(None);
    let mut model = regressor(
        wgtrain::backend::reference::ReferenceBackend::new(),
        Optimizer::Sgd { lr: 1e30 },
    );
    let config = FitConfig {
        terminate_on_nan: false,
        ..FitConfig::epochs(2).batch_size(8).verbose(0)
    };
    let history = model.fit(&x, &y, config).unwrap();
    assert!(history.diverged.is_none() && history.stopped_early.is_none());
    assert_eq!(history.epochs, vec![1, 2]);
    assert!(!finite(&model.weights().unwrap()));
}

/// A run without the guard between guarded ones updates the weights in use in place: a later
/// guarded run whose very first loss is not finite keeps those (the ones it started from),
/// not the older weights left in the spare set.
fn check_weights_left_by_an_unguarded_run_are_the_ones_kept<B: Backend>(backend: impl Fn() -> B) {
    use wgtrain::train::ModelControl;
    let (x, y) = line(None);
    let mut model = regressor(backend(), Optimizer::Sgd { lr: 0.01 });
    let config = || FitConfig::epochs(1).batch_size(8).verbose(0);
    model.fit(&x, &y, config()).unwrap();
    model.set_learning_rate(1e30);
    let unguarded = FitConfig {
        terminate_on_nan: false,
        ..config()
    };
    model.fit(&x, &y, unguarded).unwrap();
    let (left, steps) = (model.weights().unwrap(), model.steps());
    assert!(!finite(&left), "the unguarded run was meant to blow up");
    let history = model.fit(&x, &y, config()).unwrap();
    let d = history.diverged.expect("its first loss is not finite");
    assert_eq!(d.step, steps, "{d:?}");
    let bits = |w: &[LayerWeights]| -> Vec<u32> {
        w.iter()
            .flat_map(|l| l.weight().iter().chain(l.bias()).map(|v| v.to_bits()))
            .collect()
    };
    assert_eq!(bits(&model.weights().unwrap()), bits(&left));
}
model_test!(
    weights_left_by_an_unguarded_run_are_the_ones_kept,
    check_weights_left_by_an_unguarded_run_are_the_ones_kept
);
