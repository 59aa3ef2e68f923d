//! Regression: fit y = sin(2πx) + noise on [0, 1] with a tanh MLP and mean squared error,
//! then compare the fitted curve with the true one.
//!
//! `cargo run --release --example regression`

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use wgtrain::backend::{on_default_backend, Activation, Backend, BackendJob, Optimizer};
use wgtrain::data::Matrix;
use wgtrain::nn::{Dense, LossFn, Sequential};
use wgtrain::train::{Compile, FitConfig, Metric};

fn truth(x: f32) -> f32 {
    (2.0 * std::f32::consts::PI * x).sin()
}

fn main() -> wgtrain::Result<()> {
    on_default_backend(Regression)?
}

/// The example, on whichever backend [`on_default_backend`] picks.
struct Regression;

impl BackendJob for Regression {
    type Output = wgtrain::Result<()>;
    fn run<B: Backend>(self, new_backend: &dyn Fn() -> wgtrain::Result<B>) -> wgtrain::Result<()> {
        let mut rng = StdRng::seed_from_u64(3);
        let n = 512;
        let xs: Vec<f32> = (0..n).map(|_| rng.random_range(0.0..1.0)).collect();
        let ys: Vec<f32> = xs
            .iter()
            .map(|&x| truth(x) + rng.random_range(-0.1..0.1))
            .collect();
        let (x, y) = (Matrix::new(n, 1, xs)?, Matrix::new(n, 1, ys)?);

        let mut model = Sequential::new()
            .add(Dense::new(32, Activation::Tanh))
            .add(Dense::new(32, Activation::Tanh))
            .add(Dense::new(1, Activation::Linear))
            .compile(
                new_backend()?,
                Compile::new(LossFn::MeanSquaredError, Optimizer::adam(0.01))
                    .metrics(&[Metric::MeanAbsoluteError])
                    .seed(4),
            )?;
        let history = model.fit(
            &x,
            &y,
            FitConfig::epochs(150)
                .batch_size(64)
                .validation_split(0.2)
                .verbose(0),
        )?;
        let mse = history.get("loss").unwrap_or(&[]);
        println!(
            "training MSE: epoch 1 {:.4}, epoch 50 {:.4}, epoch 150 {:.4}",
            mse[0], mse[49], mse[149]
        );
        println!(
            "validation MAE after training: {:.4}",
            history.last("val_mean_absolute_error").unwrap_or(f64::NAN)
        );

        let grid = Matrix::new(11, 1, (0..11).map(|i| i as f32 / 10.0).collect())?;
        let fitted = model.predict(&grid, 16)?;
        println!("    x   true  fitted");
        for i in 0..11 {
            let x = grid.data()[i];
            println!("{x:5.1} {:6.3} {:7.3}", truth(x), fitted.data()[i]);
        }
        Ok(())
    }
}
