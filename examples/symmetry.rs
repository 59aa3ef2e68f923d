//! The symmetry problem: start every weight of the hidden layer at the same value and its
//! units compute the same output and get the same gradient at every step, so after training
//! they are still copies of one another (the layer has, in effect, one unit). A small random
//! start (the course's ×0.01) breaks the symmetry and the units learn different features.
//!
//! `cargo run --release --example symmetry`

use wgtrain::backend::{on_default_backend, Activation, Backend, BackendJob, Optimizer};
use wgtrain::data::Matrix;
use wgtrain::nn::{Dense, Initializer, LossFn, Sequential};
use wgtrain::train::{Compile, FitConfig, Metric};

const HIDDEN: usize = 4;

fn main() -> wgtrain::Result<()> {
    on_default_backend(Symmetry)?
}

/// The example, on whichever backend [`on_default_backend`] picks.
struct Symmetry;

impl BackendJob for Symmetry {
    type Output = wgtrain::Result<()>;
    fn run<B: Backend>(self, new_backend: &dyn Fn() -> wgtrain::Result<B>) -> wgtrain::Result<()> {
        // XOR: it needs at least two different hidden units.
        let x = Matrix::new(4, 2, vec![0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0])?;
        let y = Matrix::new(4, 1, vec![0.0, 1.0, 1.0, 0.0])?;
        // Equal outgoing weights too: the symmetry needs both sides of the hidden layer.
        let small = Initializer::RandomNormal {
            mean: 0.0,
            stddev: 0.01,
        };
        for (name, init, out) in [
            (
                "every weight 0.5",
                Initializer::Constant(0.5),
                Initializer::Constant(0.5),
            ),
            ("random_normal ×0.01", small, Initializer::GlorotUniform),
        ] {
            let mut model = Sequential::new()
                .add(Dense::new(HIDDEN, Activation::Tanh).kernel_initializer(init.clone()))
                .add(Dense::new(1, Activation::Sigmoid).kernel_initializer(out))
                .compile(
                    new_backend()?,
                    Compile::new(
                        LossFn::BinaryCrossentropy { from_logits: false },
                        Optimizer::adam(0.1),
                    )
                    .metrics(&[Metric::Accuracy])
                    .seed(5),
                )?;
            let history = model.fit(&x, &y, FitConfig::epochs(200).batch_size(4).verbose(0))?;
            let w = model.weights()?;
            println!(
                "{name}: after {} steps, loss {:.4}, accuracy {:.2}; hidden units (w from x0, w from x1, bias):",
                model.steps(),
                history.last("loss").unwrap_or(f64::NAN),
                history.last("accuracy").unwrap_or(f64::NAN)
            );
            for j in 0..HIDDEN {
                println!(
                    "  unit {j}: ({:8.4}, {:8.4}, {:8.4})",
                    w[0].weight()[j],
                    w[0].weight()[HIDDEN + j],
                    w[0].bias()[j]
                );
            }
        }
        println!("tests/symmetry.rs checks that equal units stay bitwise equal, on every backend");
        Ok(())
    }
}
