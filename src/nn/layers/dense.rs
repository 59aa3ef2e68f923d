//! `Dense`: `y = act(x·W + b)`, the bias and an element-wise activation fused into the
//! product's epilogue on the GPU. Tensors `dense_{i}.weight` `[fan_in, units]` and
//! `dense_{i}.bias` `[1, units]` (`[units]` in checkpoints).

use serde::{Deserialize, Serialize};

use super::{glorot, row, zeros, Backward, Forward, Kind, ParamSpec, Regularizer};
use crate::backend::{Activation, Backend};
use crate::error::Result;
use crate::nn::Initializer;

/// A fully connected layer: `a = act(x·W + b)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Dense {
    /// Output width.
    pub units: usize,
    /// The activation applied to `x·W + b`.
    pub activation: Activation,
    /// How `W` starts (Glorot uniform by default, as Keras). Not saved: a saved model has its
    /// weights.
    #[serde(skip, default = "glorot")]
    pub kernel_initializer: Initializer,
    /// How `b` starts (zeros by default).
    #[serde(skip, default = "zeros")]
    pub bias_initializer: Initializer,
    /// A penalty on `W`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel_regularizer: Option<Regularizer>,
    /// A penalty on `b`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bias_regularizer: Option<Regularizer>,
}

impl Dense {
    /// A layer of `units` outputs with Keras' default initializers and no penalty.
    pub fn new(units: usize, activation: Activation) -> Dense {
        Dense {
            units,
            activation,
            kernel_initializer: Initializer::GlorotUniform,
            bias_initializer: Initializer::Zeros,
            kernel_regularizer: None,
            bias_regularizer: None,
        }
    }

    /// The same layer with another weight initializer.
    pub fn kernel_initializer(mut self, init: Initializer) -> Dense {
        self.kernel_initializer = init;
        self
    }

    /// The same layer with another bias initializer.
    pub fn bias_initializer(mut self, init: Initializer) -> Dense {
        self.bias_initializer = init;
        self
    }

    /// The same layer with a penalty on its weights.
    pub fn kernel_regularizer(mut self, r: Regularizer) -> Dense {
        self.kernel_regularizer = Some(r);
        self
    }

    /// The same layer with a penalty on its bias.
    pub fn bias_regularizer(mut self, r: Regularizer) -> Dense {
        self.bias_regularizer = Some(r);
        self
    }
}

/// The checks Dense and Maxout share: a width, valid penalties and initializers.
pub(super) fn validate_linear(
    units: usize,
    regularizers: [Option<Regularizer>; 2],
    inits: [&Initializer; 2],
) -> std::result::Result<(), String> {
    if units == 0 {
        return Err("0 units; every layer needs at least one".into());
    }
    for r in regularizers.into_iter().flatten() {
        r.validate()?;
    }
    for i in inits {
        i.validate()?;
    }
    Ok(())
}

impl Kind for Dense {
    const NAME: &'static str = "dense";

    fn validate(&self) -> std::result::Result<(), String> {
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
                shape: [fan_in, self.units],
                init: self.kernel_initializer.clone(),
                regularizer: self.kernel_regularizer,
                conv_kernel: None,
            },
            ParamSpec {
                name: "bias",
                shape: row(self.units),
                init: self.bias_initializer.clone(),
                regularizer: self.bias_regularizer,
                conv_kernel: None,
            },
        ]
    }

    /// `z` and `dz`.
    fn scratch(&self, _fan_in: usize) -> Vec<usize> {
        vec![self.units, self.units]
    }

    fn output_activation(&self) -> Option<Activation> {
        Some(self.activation)
    }

    fn describe(&self) -> String {
        format!("{} units, {}", self.units, self.activation.name())
    }

    fn forward<B: Backend>(&self, f: Forward<'_, B>) -> Result<()> {
        let (w, bias) = (&f.params[0], &f.params[1]);
        f.b.dense_forward(f.x, w, bias, self.activation, &mut f.scratch[0], f.y)
    }

    /// `dz = act'(z) ⊙ dy` (nothing for a linear layer, or when the loss wrote `dz`),
    /// `dW = xᵀ·dz`, `db = Σ_rows dz`, `dx = dz·Wᵀ`.
    fn backward<B: Backend>(&self, g: Backward<'_, B>) -> Result<()> {
        let (z, dz) = g.scratch.split_at_mut(1);
        let dz: &B::Tensor = if g.dz_given {
            &dz[0]
        } else if self.activation == Activation::Linear {
            g.dy
        } else {
            g.b.activation_backward(self.activation, &z[0], g.y, g.dy, &mut dz[0])?;
            &dz[0]
        };
        let (dw, db) = g.grads.split_at_mut(1);
        g.b.matmul(g.x, true, dz, false, &mut dw[0])?;
        g.b.bias_grad(dz, &mut db[0])?;
        if g.need_dx {
            g.b.matmul(dz, false, &g.params[0], true, g.dx)?;
        }
        Ok(())
    }
}
