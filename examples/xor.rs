//! Why XOR needs a hidden layer: a single sigmoid neuron draws one line and gets at most 3 of
//! the 4 points right; with a hidden layer of 4 tanh units the network learns all four.
//!
//! `cargo run --release --example xor`

use wgtrain::backend::{on_default_backend, Activation, Backend, BackendJob, Optimizer};
use wgtrain::data::Matrix;
use wgtrain::nn::{Dense, LossFn, Sequential};
use wgtrain::train::{Compile, FitConfig, Metric};

fn main() -> wgtrain::Result<()> {
    on_default_backend(Xor)?
}

/// The example, on whichever backend [`on_default_backend`] picks.
struct Xor;

impl BackendJob for Xor {
    type Output = wgtrain::Result<()>;
    fn run<B: Backend>(self, new_backend: &dyn Fn() -> wgtrain::Result<B>) -> wgtrain::Result<()> {
        let x = Matrix::new(4, 2, vec![0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0])?;
        let y = Matrix::new(4, 1, vec![0.0, 1.0, 1.0, 0.0])?;
        let compile = || {
            Compile::new(
                LossFn::BinaryCrossentropy { from_logits: false },
                Optimizer::adam(0.05),
            )
            .metrics(&[Metric::Accuracy])
            .seed(7)
        };

        for (name, model) in [
            (
                "no hidden layer",
                Sequential::new().add(Dense::new(1, Activation::Sigmoid)),
            ),
            (
                "one hidden layer of 4",
                Sequential::new()
                    .add(Dense::new(4, Activation::Tanh))
                    .add(Dense::new(1, Activation::Sigmoid)),
            ),
        ] {
            let mut model = model.compile(new_backend()?, compile())?;
            let history = model.fit(&x, &y, FitConfig::epochs(400).batch_size(4).verbose(0))?;
            let p = model.predict(&x, 4)?;
            println!(
                "{name}: loss {:.4}, accuracy {:.2}, outputs for (0,0) (0,1) (1,0) (1,1): {:.3?}",
                history.last("loss").unwrap_or(f64::NAN),
                history.last("accuracy").unwrap_or(f64::NAN),
                p.data()
            );
        }
        Ok(())
    }
}
