//! Handwritten digits (8×8) with a small MLP: softmax cross-entropy from logits, Adam, a
//! validation split, early stopping, and the learning curve printed per epoch.
//!
//! `cargo run --release --example digits`

use wgtrain::backend::{on_default_backend, Activation, Backend, BackendJob, Optimizer};
use wgtrain::data;
use wgtrain::nn::{Dense, LossFn, Sequential};
use wgtrain::train::{Compile, EarlyStopping, FitConfig, Metric};

fn main() -> wgtrain::Result<()> {
    on_default_backend(Digits)?
}

/// The example, on whichever backend [`on_default_backend`] picks.
struct Digits;

impl BackendJob for Digits {
    type Output = wgtrain::Result<()>;
    fn run<B: Backend>(self, new_backend: &dyn Fn() -> wgtrain::Result<B>) -> wgtrain::Result<()> {
        let (x, y) = data::digits();
        let (x_train, y_train, x_test, y_test) = data::train_test_split(&x, &y, 0.2, 42)?;

        let mut model = Sequential::new()
            .add(Dense::new(64, Activation::Relu))
            .add(Dense::new(10, Activation::Linear))
            .compile(
                new_backend()?,
                Compile::new(
                    LossFn::SparseCategoricalCrossentropy { from_logits: true },
                    Optimizer::adam(2e-3),
                )
                .metrics(&[
                    Metric::Accuracy,
                    Metric::SparseTopKCategoricalAccuracy { k: 3 },
                ])
                .seed(1),
            )?;
        let config = FitConfig::epochs(25)
            .batch_size(32)
            .validation_split(0.15)
            .verbose(2)
            .callback(EarlyStopping::new("val_loss", 4).restore_best_weights(true));
        let history = model.fit(&x_train, &y_train, config)?;
        if let Some(why) = &history.stopped_early {
            println!("{why}");
        }
        let test = model.evaluate(&x_test, &y_test, 256)?;
        println!(
            "test loss {:.4}, accuracy {:.4}, top-3 accuracy {:.4} on {}",
            test.loss,
            test.get("accuracy").unwrap_or(f64::NAN),
            test.get("sparse_top_k_categorical_accuracy")
                .unwrap_or(f64::NAN),
            model.backend().describe()
        );
        let first = model.predict_classes(&x_test.head(10), 10)?;
        println!(
            "first ten test digits: predicted {first:?}, true {:?}",
            &y_test.data()[..10]
        );
        Ok(())
    }
}
