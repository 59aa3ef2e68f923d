//! The training runtime's promises: the same trajectory on both backends, one submission per
//! step and no allocation after warm-up on the GPU, metrics that match a host computation,
//! callbacks, TerminateOnNaN, and clear errors for pairings that cannot train.

mod common;

use wgtrain::backend::{reference, Activation, Backend, Optimizer, PointError};
use wgtrain::data::{self, Matrix};
use wgtrain::nn::{Dense, LossFn, Sequential};
use wgtrain::tolerance::Tolerance;
use wgtrain::train::metrics::auc_from_histogram;
use wgtrain::train::{Compile, FitConfig, Metric, Model};

fn digits_subset(n: usize) -> (Matrix, Matrix) {
    let (x, y) = data::digits();
    (x.head(n), y.head(n))
}

fn digits_model<B: Backend>(b: B, seed: u64) -> Model<B> {
    Sequential::new()
        .add(Dense::new(32, Activation::Relu))
        .add(Dense::new(10, Activation::Linear))
        .compile(
            b,
            Compile::new(
                LossFn::SparseCategoricalCrossentropy { from_logits: true },
                Optimizer::adam(3e-3),
            )
            .metrics(&[Metric::Accuracy])
            .seed(seed),
        )
        .unwrap()
}

#[test]
fn every_backend_follows_the_reference_trajectory() {
    every_backend_follows(digits_model(common::cpu(), 3));
    if let Some(g) = common::gpu() {
        every_backend_follows(digits_model(g, 3));
    }
}

fn every_backend_follows<B: Backend>(mut on_gpu: Model<B>) {
    let (x, y) = digits_subset(300);
    let config = || {
        FitConfig::epochs(4)
            .batch_size(32)
            .validation_split(0.2)
            .verbose(0)
    };
    let mut on_cpu = digits_model(reference::ReferenceBackend::new(), 3);
    let hg = on_gpu.fit(&x, &y, config()).unwrap();
    let hc = on_cpu.fit(&x, &y, config()).unwrap();
    for name in ["loss", "accuracy", "val_loss", "val_accuracy"] {
        common::assert_close(
            &format!("{name} per epoch"),
            Tolerance::new(1e-4, 1e-4),
            &hg.get(name)
                .unwrap()
                .iter()
                .map(|&v| v as f32)
                .collect::<Vec<_>>(),
            &hc.get(name)
                .unwrap()
                .iter()
                .map(|&v| v as f32)
                .collect::<Vec<_>>(),
        );
    }
    let loss = hc.get("loss").unwrap();
    assert!(loss[3] < 0.8 * loss[0], "the loss should fall: {loss:?}");
    for (lg, lc) in on_gpu
        .weights()
        .unwrap()
        .iter()
        .zip(on_cpu.weights().unwrap())
    {
        common::assert_close(
            "final weights",
            Tolerance::new(1e-4, 1e-3),
            lg.weight(),
            lc.weight(),
        );
        common::assert_close(
            "final biases",
            Tolerance::new(1e-4, 1e-3),
            lg.bias(),
            lc.bias(),
        );
    }
}

#[test]
fn after_warm_up_a_step_is_one_submit_and_allocates_nothing() {
    let Some(g) = common::gpu() else { return };
    let (x, y) = digits_subset(200);
    let (xv, yv) = (x.head(48), y.head(48));
    // 200 = 6 full batches of 32 and one of 8; validation: one of 32 and one of 16.
    let config = || {
        FitConfig::epochs(2)
            .batch_size(32)
            .validation_data(xv.clone(), yv.clone())
            .verbose(0)
    };
    let mut model = digits_model(g, 1);
    model.fit(&x, &y, config()).unwrap();
    let warm = model.backend().stats();
    model.fit(&x, &y, config()).unwrap();
    let after = model.backend().stats();
    assert_eq!(
        after.buffers_created, warm.buffers_created,
        "buffers created after warm-up"
    );
    assert_eq!(
        after.bind_groups_created, warm.bind_groups_created,
        "bind groups created after warm-up"
    );
    // Per epoch: one submit per training step, one for the epoch's read-back, and the same
    // for validation.
    let (steps, val_steps) = (7, 2);
    assert_eq!(
        after.submits - warm.submits,
        2 * (steps + 1 + val_steps + 1),
        "{warm:?} -> {after:?}"
    );
}

/// The binary metrics of a multi-label model (three sigmoid outputs trained from logits),
/// computed on the device during `evaluate`, equal the same metrics computed on the host
/// from `predict`'s probabilities.
fn check_binary_metrics_match_the_host<B: Backend>(backend: impl Fn() -> B) {
    let mut r = common::rng(30);
    let (n, f, c) = (150, 6, 3);
    let x = Matrix::new(n, f, common::uniform(&mut r, n * f, -1.0, 1.0)).unwrap();
    // Each output is a yes/no rule of the inputs, so the model can learn something.
    let y: Vec<f32> = (0..n)
        .flat_map(|i| {
            let row = x.row(i);
            [
                (row[0] > 0.0) as u8 as f32,
                (row[1] + row[2] > 0.3) as u8 as f32,
                (row[3] * row[4] > 0.0) as u8 as f32,
            ]
        })
        .collect();
    let y = Matrix::new(n, c, y).unwrap();
    let metrics = [
        Metric::Accuracy,
        Metric::Precision { threshold: None },
        Metric::Recall { threshold: None },
        Metric::Auc,
        Metric::TruePositives { threshold: None },
        Metric::F1Score {
            threshold: Some(0.4),
        },
        Metric::BinaryCrossentropy,
    ];
    let mut model = Sequential::new()
        .add(Dense::new(8, Activation::Tanh))
        .add(Dense::new(c, Activation::Linear))
        .compile(
            backend(),
            Compile::new(
                LossFn::BinaryCrossentropy { from_logits: true },
                Optimizer::adam(0.02),
            )
            .metrics(&metrics)
            .seed(5),
        )
        .unwrap();
    model
        .fit(&x, &y, FitConfig::epochs(10).batch_size(16).verbose(0))
        .unwrap();
    let eval = model.evaluate(&x, &y, 64).unwrap();
    let p = model.predict(&x, 64).unwrap();
    let (pd, yd) = (p.data(), y.data());
    let [tp, fp, _, fn_] = reference::confusion(pd, yd, 0.5).map(|v| v as f64);
    let hist: Vec<f32> = reference::roc_histogram(pd, yd)
        .into_iter()
        .map(|v| v as f32)
        .collect();
    let want = [
        (
            "accuracy",
            reference::threshold_correct(pd, yd, 0.5) as f64 / (n * c) as f64,
        ),
        ("precision", tp / (tp + fp)),
        ("recall", tp / (tp + fn_)),
        ("auc", auc_from_histogram(&hist)),
        ("true_positives", tp),
        ("f1_score", {
            // Per output column at 0.4, then the mean over the three.
            let f1 = |col: usize| {
                let (mut tp, mut wrong) = (0.0, 0.0);
                for i in 0..n {
                    let (yes, truth) = (pd[i * c + col] > 0.4, yd[i * c + col] != 0.0);
                    tp += (yes && truth) as u8 as f64;
                    wrong += (yes != truth) as u8 as f64;
                }
                2.0 * tp / (2.0 * tp + wrong)
            };
            (0..c).map(f1).sum::<f64>() / c as f64
        }),
        // On the device from the logits; here from the probabilities, clipped as Keras.
        (
            "binary_crossentropy",
            pd.iter()
                .zip(yd)
                .map(|(&p, &y)| {
                    reference::point_error_f64(PointError::BinaryCrossentropy, p as f64, y as f64)
                })
                .sum::<f64>()
                / (n * c) as f64,
        ),
    ];
    // The cross-entropy metric is the loss itself.
    let bce = eval.get("binary_crossentropy").unwrap();
    assert!(
        (bce - eval.loss).abs() < 1e-5,
        "{bce} vs loss {}",
        eval.loss
    );
    for (name, value) in want {
        let got = eval.get(name).unwrap();
        assert!(
            (got - value).abs() < 1e-5,
            "{name}: device {got}, host {value}"
        );
    }
    assert!(
        eval.get("auc").unwrap() > 0.7,
        "the model should have learned something: {eval:?}"
    );
}

/// The regression metrics of a regressor equal the host's computation from `predict`.
fn check_regression_metrics_match_the_host<B: Backend>(backend: impl Fn() -> B) {
    let mut r = common::rng(31);
    let n = 120;
    let x = Matrix::new(n, 2, common::uniform(&mut r, n * 2, 0.0, 1.0)).unwrap();
    let y = Matrix::new(
        n,
        1,
        (0..n)
            .map(|i| 0.5 + x.row(i)[0] * 2.0 - x.row(i)[1])
            .collect(),
    )
    .unwrap();
    let metrics = [
        Metric::MeanSquaredError,
        Metric::RootMeanSquaredError,
        Metric::MeanAbsoluteError,
        Metric::MeanAbsolutePercentageError,
        Metric::MeanSquaredLogarithmicError,
    ];
    let mut model = Sequential::new()
        .add(Dense::new(1, Activation::Linear))
        .compile(
            backend(),
            Compile::new(LossFn::MeanSquaredError, Optimizer::adam(0.05))
                .metrics(&metrics)
                .seed(2),
        )
        .unwrap();
    model
        .fit(&x, &y, FitConfig::epochs(5).batch_size(16).verbose(0))
        .unwrap();
    let eval = model.evaluate(&x, &y, 50).unwrap();
    let p = model.predict(&x, 50).unwrap();
    let mean = |kind| {
        p.data()
            .iter()
            .zip(y.data())
            .map(|(&a, &b)| reference::point_error_f64(kind, a as f64, b as f64))
            .sum::<f64>()
            / n as f64
    };
    use wgtrain::backend::PointError::*;
    let want = [
        ("mean_squared_error", mean(Squared)),
        ("root_mean_squared_error", mean(Squared).sqrt()),
        ("mean_absolute_error", mean(Absolute)),
        ("mean_absolute_percentage_error", mean(AbsolutePercentage)),
        ("mean_squared_logarithmic_error", mean(SquaredLog)),
    ];
    for (name, value) in want {
        let got = eval.get(name).unwrap();
        assert!(
            (got - value).abs() <= 1e-5 * (1.0 + value.abs()),
            "{name}: device {got}, host {value}"
        );
    }
    // The loss is the MSE.
    assert!(
        (eval.loss - mean(Squared)).abs() <= 1e-5 * (1.0 + eval.loss),
        "{eval:?}"
    );
}

model_test!(
    binary_metrics_match_the_host,
    check_binary_metrics_match_the_host
);
model_test!(
    regression_metrics_match_the_host,
    check_regression_metrics_match_the_host
);

/// With a standardizer, validation sees the data standardized once, exactly as `evaluate`
/// does: the last epoch's validation loss equals evaluate's loss on the held-out rows.
#[test]
fn validation_with_a_standardizer_matches_evaluate() {
    let (x, y) = data::digits_unscaled();
    let (x, y) = (x.head(300), y.head(300));
    let mut model = digits_model(reference::ReferenceBackend::new(), 4);
    model.set_standardizer(Some(data::Standardizer::fit(&x.head(240))));
    let h = model
        .fit(
            &x,
            &y,
            FitConfig::epochs(2).validation_split(0.2).verbose(0),
        )
        .unwrap();
    let (_, xv) = x.split_at(240);
    let (_, yv) = y.split_at(240);
    let e = model.evaluate(&xv, &yv, 32).unwrap();
    assert!(
        (h.last("val_loss").unwrap() - e.loss).abs() < 1e-9,
        "{h:?} vs {e:?}"
    );
}
