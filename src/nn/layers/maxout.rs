//! `Maxout(units, pieces)`: each output is the largest of `pieces` linear maps of the input,
//! `y[u] = max_k (x·W + b)[u · pieces + k]` (Goodfellow et al. 2013; TensorFlow Addons'
//! layout, each unit's pieces side by side), `pieces × (fan_in · units + units)` parameters;
//! the gradient flows to the winning piece. Tensors `maxout_{i}.weight`
//! `[fan_in, units · pieces]` and `maxout_{i}.bias` `[units · pieces]`.

use serde::{Deserialize, Serialize};

use super::dense::validate_linear;
use super::{glorot, row, zeros, Backward, Forward, Kind, ParamSpec, Regularizer};
use crate::backend::Backend;
use crate::error::Result;
use crate::nn::Initializer;

/// The maximum of `pieces` linear maps, for each of `units` outputs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Maxout {
    /// Output width.
    pub units: usize,
    /// Linear maps per output (at least 2).
    pub pieces: usize,
    /// How `W` starts (Glorot uniform).
    #[serde(skip, default = "glorot")]
    pub kernel_initializer: Initializer,
    /// How `b` starts (zeros).
    #[serde(skip, default = "zeros")]
    pub bias_initializer: Initializer,
    /// A penalty on `W`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel_regularizer: Option<Regularizer>,
    /// A penalty on `b`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bias_regularizer: Option<Regularizer>,
}

impl Maxout {
    /// `units` outputs of `pieces` maps each, with Keras' default initializers.
    pub fn new(units: usize, pieces: usize) -> Maxout {
        Maxout {
            units,
            pieces,
            kernel_initializer: Initializer::GlorotUniform,
            bias_initializer: Initializer::Zeros,
            kernel_regularizer: None,
            bias_regularizer: None,
        }
    }

    /// The same layer with a penalty on its weights.
    pub fn kernel_regularizer(mut self, r: Regularizer) -> Maxout {
        self.kernel_regularizer = Some(r);
        self
    }

    fn maps(&self) -> usize {
        self.units.saturating_mul(self.pieces)
    }
}

impl Kind for Maxout {
    const NAME: &'static str = "maxout";

    fn validate(&self) -> std::result::Result<(), String> {
        if self.pieces < 2 {
            return Err(format!(
                "maxout needs at least 2 pieces per unit, got {} (one piece is a linear Dense layer)",
                self.pieces
            ));
        }
        validate_linear(
            self.units,
            [self.kernel_regularizer, self.bias_regularizer],
            [&self.kernel_initializer, &self.bias_initializer],
        )
    }

    fn width(&self, _fan_in: usize) -> usize {
        self.units
    }

    fn params(&self, fan_in: usize) -> Vec<ParamSpec> {
        vec![
            ParamSpec {
                name: "weight",
                shape: [fan_in, self.maps()],
                init: self.kernel_initializer.clone(),
                regularizer: self.kernel_regularizer,
                conv_kernel: None,
            },
            ParamSpec {
                name: "bias",
                shape: row(self.maps()),
                init: self.bias_initializer.clone(),
                regularizer: self.bias_regularizer,
                conv_kernel: None,
            },
        ]
    }

    /// `z` and `dz`, `[N, units · pieces]`.
    fn scratch(&self, _fan_in: usize) -> Vec<usize> {
        vec![self.maps(), self.maps()]
    }

    fn describe(&self) -> String {
        format!("{} units of {} pieces", self.units, self.pieces)
    }

    fn forward<B: Backend>(&self, f: Forward<'_, B>) -> Result<()> {
        let z = &mut f.scratch[0];
        f.b.matmul(f.x, false, &f.params[0], false, z)?;
        f.b.bias_add(z, &f.params[1])?;
        f.b.maxout_forward(z, self.pieces, f.y)
    }

    fn backward<B: Backend>(&self, g: Backward<'_, B>) -> Result<()> {
        let (z, dz) = g.scratch.split_at_mut(1);
        g.b.maxout_backward(&z[0], self.pieces, g.dy, &mut dz[0])?;
        let (dw, db) = g.grads.split_at_mut(1);
        g.b.matmul(g.x, true, &dz[0], false, &mut dw[0])?;
        g.b.bias_grad(&dz[0], &mut db[0])?;
        if g.need_dx {
            g.b.matmul(&dz[0], false, &g.params[0], true, g.dx)?;
        }
        Ok(())
    }
}
