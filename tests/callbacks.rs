//! Callbacks, and the errors for models and data that cannot train (TerminateOnNaN is in
//! tests/divergence.rs).

mod common;

use std::cell::RefCell;
use std::rc::Rc;

use wgtrain::backend::{reference::ReferenceBackend, Activation, Backend, Optimizer};
use wgtrain::data::{self, Matrix};
use wgtrain::nn::{Dense, LossFn, Sequential};
use wgtrain::train::{
    Callback, Compile, EarlyStopping, FitConfig, LambdaCallback, Logs, Metric, Model, ModelControl,
    ReduceLrOnPlateau,
};
use wgtrain::Result;

fn small_digits() -> (Matrix, Matrix) {
    let (x, y) = data::digits();
    (x.head(200), y.head(200))
}

fn classifier<B: Backend>(b: B) -> Model<B> {
    Sequential::new()
        .add(Dense::new(16, Activation::Relu))
        .add(Dense::new(10, Activation::Linear))
        .compile(
            b,
            Compile::new(
                LossFn::SparseCategoricalCrossentropy { from_logits: true },
                Optimizer::adam(1e-2),
            )
            .metrics(&[Metric::Accuracy])
            .seed(11),
        )
        .unwrap()
}

/// EarlyStopping with an impossible min_delta stops after `patience` epochs without
/// improvement and, with restore_best_weights, puts back the weights of epoch 1.
fn check_early_stopping_restores_the_best_weights<B: Backend>(backend: impl Fn() -> B) {
    let (x, y) = small_digits();
    let mut model = classifier(backend());
    let stop = EarlyStopping::new("loss", 2)
        .min_delta(1e9)
        .restore_best_weights(true);
    let history = model
        .fit(&x, &y, FitConfig::epochs(10).verbose(0).callback(stop))
        .unwrap();
    assert_eq!(history.epochs, vec![1, 2, 3]);
    assert!(
        history
            .stopped_early
            .as_deref()
            .unwrap()
            .contains("EarlyStopping"),
        "{history:?}"
    );

    // The same seed for one epoch gives the weights of epoch 1.
    let mut twin = classifier(backend());
    twin.fit(&x, &y, FitConfig::epochs(1).verbose(0)).unwrap();
    for (a, b) in model.weights().unwrap().iter().zip(twin.weights().unwrap()) {
        common::assert_close(
            "restored weights",
            wgtrain::tolerance::Tolerance::new(1e-6, 1e-5),
            a.weight(),
            b.weight(),
        );
    }
}
model_test!(
    early_stopping_restores_the_best_weights,
    check_early_stopping_restores_the_best_weights
);

fn check_reduce_lr_on_plateau<B: Backend>(backend: impl Fn() -> B) {
    let (x, y) = small_digits();
    let mut model = classifier(backend());
    let mut plateau = ReduceLrOnPlateau::new("loss", 0.5, 2);
    plateau.min_delta = 1e9; // never an improvement after the first epoch
    let history = model
        .fit(&x, &y, FitConfig::epochs(6).verbose(0).callback(plateau))
        .unwrap();
    let lr: Vec<f64> = history
        .learning_rate
        .iter()
        .map(|&v| (v * 1e6).round() / 1e6)
        .collect();
    assert_eq!(lr, vec![0.01, 0.01, 0.01, 0.005, 0.005, 0.0025]);
}
model_test!(reduce_lr_on_plateau, check_reduce_lr_on_plateau);

#[test]
fn a_closure_runs_after_every_epoch_with_the_logs() {
    let (x, y) = small_digits();
    let seen = Rc::new(RefCell::new(Vec::new()));
    let sink = seen.clone();
    let cb = LambdaCallback(move |epoch, logs: &wgtrain::train::Logs| {
        sink.borrow_mut()
            .push((epoch, logs.get("val_accuracy").is_some()));
        Ok(())
    });
    let mut model = classifier(ReferenceBackend::new());
    model
        .fit(
            &x,
            &y,
            FitConfig::epochs(3)
                .validation_split(0.25)
                .verbose(0)
                .callback(cb),
        )
        .unwrap();
    assert_eq!(*seen.borrow(), vec![(1, true), (2, true), (3, true)]);
}

/// Records every call it gets, in order: ("begin", epoch) and ("end", epoch).
struct Calls(Rc<RefCell<Vec<(&'static str, usize)>>>);

impl Callback for Calls {
    fn on_epoch_begin(&mut self, epoch: usize, _model: &mut dyn ModelControl) -> Result<()> {
        self.0.borrow_mut().push(("begin", epoch));
        Ok(())
    }
    fn on_epoch_end(
        &mut self,
        epoch: usize,
        _logs: &Logs,
        _model: &mut dyn ModelControl,
    ) -> Result<()> {
        self.0.borrow_mut().push(("end", epoch));
        Ok(())
    }
}

/// Each epoch begins before it ends and after the one before it ended, numbered on from the
/// fit's initial epoch.
#[test]
fn every_epoch_begins_then_ends_in_order() {
    let (x, y) = small_digits();
    let calls = Rc::new(RefCell::new(Vec::new()));
    let mut model = classifier(ReferenceBackend::new());
    let config = FitConfig::epochs(4)
        .initial_epoch(1)
        .verbose(0)
        .callback(Calls(calls.clone()));
    model.fit(&x, &y, config).unwrap();
    let want = [2, 3, 4]
        .into_iter()
        .flat_map(|e| [("begin", e), ("end", e)]);
    assert_eq!(*calls.borrow(), want.collect::<Vec<_>>());
}

#[test]
fn early_stopping_on_a_quantity_that_is_not_logged_says_what_is() {
    let (x, y) = small_digits();
    let mut model = classifier(ReferenceBackend::new());
    let err = model
        .fit(
            &x,
            &y,
            FitConfig::epochs(2)
                .verbose(0)
                .callback(EarlyStopping::new("val_loss", 1)),
        )
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("val_loss") && err.contains("loss, accuracy") && err.contains("validation"),
        "{err}"
    );
}

#[test]
fn pairings_that_cannot_train_are_errors_that_say_what_to_do() {
    let compile = |last: Activation, units: usize, loss: LossFn| {
        Sequential::new()
            .add(Dense::new(4, Activation::Relu))
            .add(Dense::new(units, last))
            .compile(
                ReferenceBackend::new(),
                Compile::new(loss, Optimizer::adam(1e-3)),
            )
            .map(|_| ())
            .unwrap_err()
            .to_string()
    };
    let twice = compile(
        Activation::Softmax,
        3,
        LossFn::SparseCategoricalCrossentropy { from_logits: true },
    );
    assert!(
        twice.contains("softmax") && twice.contains("again") && twice.contains("linear"),
        "{twice}"
    );
    let one = compile(
        Activation::Linear,
        1,
        LossFn::CategoricalCrossentropy { from_logits: true },
    );
    assert!(
        one.contains("at least 2 output units") && one.contains("sigmoid"),
        "{one}"
    );
    let probs = compile(
        Activation::Linear,
        1,
        LossFn::BinaryCrossentropy { from_logits: false },
    );
    assert!(
        probs.contains("probabilities") && probs.contains("from_logits=true"),
        "{probs}"
    );
    let acc = Sequential::new()
        .add(Dense::new(1, Activation::Linear))
        .compile(
            ReferenceBackend::new(),
            Compile::new(LossFn::MeanSquaredError, Optimizer::adam(1e-3))
                .metrics(&[Metric::Accuracy]),
        )
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(acc.contains("regression") && acc.contains("mae"), "{acc}");
}

#[test]
fn labels_that_do_not_fit_the_model_are_errors_naming_the_row() {
    let (x, _) = small_digits();
    let mut model = classifier(ReferenceBackend::new());
    let mut labels = vec![0usize; 200];
    labels[17] = 10;
    let err = model
        .fit(
            &x,
            &Matrix::from_labels(&labels),
            FitConfig::epochs(1).verbose(0),
        )
        .unwrap_err()
        .to_string();
    assert!(err.contains("row 17") && err.contains("0..9"), "{err}");

    let onehot = Sequential::new()
        .add(Dense::new(10, Activation::Linear))
        .compile(
            ReferenceBackend::new(),
            Compile::new(
                LossFn::CategoricalCrossentropy { from_logits: true },
                Optimizer::adam(1e-3),
            ),
        );
    let err = onehot
        .unwrap()
        .fit(
            &x,
            &Matrix::from_labels(&[0; 200]),
            FitConfig::epochs(1).verbose(0),
        )
        .unwrap_err();
    assert!(
        err.to_string().contains("sparse_categorical_crossentropy"),
        "{err}"
    );

    let err = model
        .fit(&x, &Matrix::from_labels(&[0; 200]), FitConfig::epochs(0))
        .unwrap_err()
        .to_string();
    assert!(err.contains("epochs"), "{err}");
    let err = model
        .fit(
            &x,
            &Matrix::from_labels(&[0; 200]),
            FitConfig::epochs(1).batch_size(0),
        )
        .unwrap_err()
        .to_string();
    assert!(err.contains("batch size"), "{err}");
    let narrow = Matrix::new(200, 3, vec![0.0; 600]).unwrap();
    model
        .fit(
            &x,
            &Matrix::from_labels(&[0; 200]),
            FitConfig::epochs(1).verbose(0),
        )
        .unwrap();
    let err = model.predict(&narrow, 32).unwrap_err().to_string();
    assert!(
        err.contains("64 features") && err.contains("3 columns"),
        "{err}"
    );
}

#[test]
fn a_model_trained_from_logits_predicts_probabilities() {
    let (x, y) = small_digits();
    let mut model = classifier(ReferenceBackend::new());
    model.fit(&x, &y, FitConfig::epochs(2).verbose(0)).unwrap();
    let p = model.predict(&x.head(5), 8).unwrap();
    for r in 0..5 {
        let s: f32 = p.row(r).iter().sum();
        assert!(
            (s - 1.0).abs() < 1e-5 && p.row(r).iter().all(|&v| (0.0..=1.0).contains(&v)),
            "{:?}",
            p.row(r)
        );
    }
}
