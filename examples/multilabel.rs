//! Multi-label classification: three independent yes/no questions about each input, answered
//! by three sigmoid outputs trained with binary cross-entropy per output (from logits), with
//! precision, recall and AUC.
//!
//! `cargo run --release --example multilabel`

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use wgtrain::backend::{on_default_backend, Activation, Backend, BackendJob, Optimizer};
use wgtrain::data::{self, Matrix};
use wgtrain::nn::{Dense, LossFn, Sequential};
use wgtrain::train::{Compile, FitConfig, Metric};

fn main() -> wgtrain::Result<()> {
    on_default_backend(Multilabel)?
}

/// The example, on whichever backend [`on_default_backend`] picks.
struct Multilabel;

impl BackendJob for Multilabel {
    type Output = wgtrain::Result<()>;
    fn run<B: Backend>(self, new_backend: &dyn Fn() -> wgtrain::Result<B>) -> wgtrain::Result<()> {
        // Points in the square [-1, 1]²; the labels: right half? inside the circle? x·y > 0?
        let mut rng = StdRng::seed_from_u64(5);
        let n = 2000;
        let pts: Vec<[f32; 2]> = (0..n)
            .map(|_| [rng.random_range(-1.0..1.0), rng.random_range(-1.0..1.0)])
            .collect();
        let labels: Vec<f32> = pts
            .iter()
            .flat_map(|&[a, b]| {
                [
                    (a > 0.0) as u8 as f32,
                    (a * a + b * b < 0.6) as u8 as f32,
                    (a * b > 0.0) as u8 as f32,
                ]
            })
            .collect();
        let x = Matrix::new(n, 2, pts.concat())?;
        let y = Matrix::new(n, 3, labels)?;
        let (x_train, y_train, x_test, y_test) = data::train_test_split(&x, &y, 0.25, 1)?;

        let mut model = Sequential::new()
            .add(Dense::new(32, Activation::Relu))
            .add(Dense::new(32, Activation::Relu))
            .add(Dense::new(3, Activation::Linear))
            .compile(
                new_backend()?,
                Compile::new(
                    LossFn::BinaryCrossentropy { from_logits: true },
                    Optimizer::adam(0.01),
                )
                .metrics(&[
                    Metric::BinaryAccuracy { threshold: None },
                    Metric::Precision { threshold: None },
                    Metric::Recall { threshold: None },
                    Metric::Auc,
                ])
                .seed(2),
            )?;
        model.fit(
            &x_train,
            &y_train,
            FitConfig::epochs(40).batch_size(64).verbose(0),
        )?;
        let test = model.evaluate(&x_test, &y_test, 256)?;
        println!("test loss {:.4}", test.loss);
        for (name, value) in &test.metrics {
            println!("  {name}: {value:.4}");
        }
        let p = model.predict(&x_test.head(3), 3)?;
        for i in 0..3 {
            println!(
                "point {:?}: P(right half, in circle, same sign) = {:.2?}, truth {:?}",
                x_test.row(i),
                p.row(i),
                y_test.row(i)
            );
        }
        Ok(())
    }
}
