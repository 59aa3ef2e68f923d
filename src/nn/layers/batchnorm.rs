//! `BatchNormalization` with Keras' defaults (momentum 0.99, ε = 1e-3, center and scale):
//! in training `y = gamma · (x - mean) / √(var + ε) + beta` with the batch's mean and biased
//! variance per unit, and after the step `moving = momentum · moving + (1 - momentum) ·
//! batch`; in inference the moving statistics stand for the batch's. Tensors
//! `batchnorm_{i}.gamma`, `.beta` (trainable) and `.moving_mean`, `.moving_variance` (state),
//! each `[units]`.
//!
//! PyTorch's `BatchNorm1d` is the same layer with `momentum = 1 - 0.99 = 0.01` in its
//! convention (it weighs the new batch by its momentum), `eps = 1e-5` by default, and an
//! unbiased variance in its running average (`N / (N - 1)` times Keras').

use serde::{Deserialize, Serialize};

use super::{row, Backward, Forward, Kind, Mode, ParamSpec, Shape, StateSpec};
use crate::backend::Backend;
use crate::error::Result;
use crate::nn::Initializer;

/// Batch normalization of each unit.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct BatchNormalization {
    /// The moving statistics' weight on their old value (Keras: 0.99).
    pub momentum: f32,
    /// Added to the variance under the square root (Keras: 1e-3).
    pub epsilon: f32,
}

impl Default for BatchNormalization {
    fn default() -> Self {
        BatchNormalization {
            momentum: 0.99,
            epsilon: 1e-3,
        }
    }
}

impl BatchNormalization {
    /// Keras' defaults.
    pub fn new() -> BatchNormalization {
        BatchNormalization::default()
    }
}

impl Kind for BatchNormalization {
    const NAME: &'static str = "batchnorm";

    fn validate(&self) -> std::result::Result<(), String> {
        if !(0.0..=1.0).contains(&self.momentum) {
            return Err(format!("momentum must be in [0, 1], got {}", self.momentum));
        }
        if !(self.epsilon > 0.0 && self.epsilon.is_finite()) {
            return Err(format!("epsilon must be > 0, got {}", self.epsilon));
        }
        Ok(())
    }

    /// Feature vectors only: Keras normalises a feature map per channel, which this layer
    /// (per feature) does not do.
    fn bind(&mut self, input: Shape) -> std::result::Result<Shape, String> {
        match input {
            Shape::Flat => Ok(Shape::Flat),
            Shape::Image(_) => Err(format!(
                "batch normalization of {} would normalise each position of each channel on its own, not each channel as Keras does; put it after Flatten (or a global pooling)",
                input.describe()
            )),
        }
    }

    fn width(&self, fan_in: usize) -> usize {
        fan_in
    }

    fn params(&self, fan_in: usize) -> Vec<ParamSpec> {
        let p = |name, value| ParamSpec {
            name,
            shape: row(fan_in),
            init: Initializer::Constant(value),
            regularizer: None,
            conv_kernel: None,
        };
        vec![p("gamma", 1.0), p("beta", 0.0)]
    }

    fn state(&self, fan_in: usize) -> Vec<StateSpec> {
        vec![
            StateSpec {
                name: "moving_mean",
                shape: row(fan_in),
                init: 0.0,
            },
            StateSpec {
                name: "moving_variance",
                shape: row(fan_in),
                init: 1.0,
            },
        ]
    }

    fn describe(&self) -> String {
        format!("momentum {}, epsilon {}", self.momentum, self.epsilon)
    }

    fn forward<B: Backend>(&self, f: Forward<'_, B>) -> Result<()> {
        let affine = [&f.params[0], &f.params[1]];
        match f.mode {
            Mode::Train { .. } => {
                let (mean, var) = f.batch_stats.split_at_mut(1);
                f.b.batchnorm_stats(f.x, &mut mean[0], &mut var[0])?;
                let stats = [&f.batch_stats[0], &f.batch_stats[1]];
                f.b.batchnorm_forward(f.x, stats, affine, self.epsilon, f.y)
            }
            Mode::Infer => {
                let stats = [&f.state[0], &f.state[1]];
                f.b.batchnorm_forward(f.x, stats, affine, self.epsilon, f.y)
            }
        }
    }

    fn backward<B: Backend>(&self, g: Backward<'_, B>) -> Result<()> {
        let stats = [&g.batch_stats[0], &g.batch_stats[1]];
        let (dgamma, dbeta) = g.grads.split_at_mut(1);
        g.b.batchnorm_backward(
            g.x,
            stats,
            &g.params[0],
            g.dy,
            self.epsilon,
            g.dx,
            [&mut dgamma[0], &mut dbeta[0]],
        )
    }
}
