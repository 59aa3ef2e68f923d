//! `PReLU`: `y = x` where `x > 0`, else `alpha · x`, with a learned slope per unit starting
//! at 0 (Keras' default: the layer starts as a ReLU). Tensor `prelu_{i}.alpha` `[units]`.

use serde::{Deserialize, Serialize};

use super::{row, zeros, Backward, Forward, Kind, ParamSpec, Shape};
use crate::backend::Backend;
use crate::error::Result;
use crate::nn::Initializer;

/// A ReLU whose negative slope is learned, one per unit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PRelu {
    /// How the slopes start (zeros, as Keras).
    #[serde(skip, default = "zeros")]
    pub alpha_initializer: Initializer,
}

impl Default for PRelu {
    fn default() -> Self {
        PRelu {
            alpha_initializer: Initializer::Zeros,
        }
    }
}

impl PRelu {
    /// Slopes starting at 0.
    pub fn new() -> PRelu {
        PRelu::default()
    }
}

impl Kind for PRelu {
    const NAME: &'static str = "prelu";

    fn validate(&self) -> std::result::Result<(), String> {
        self.alpha_initializer.validate()
    }

    /// Element by element: images stay images.
    fn bind(&mut self, input: Shape) -> std::result::Result<Shape, String> {
        Ok(input)
    }

    fn width(&self, fan_in: usize) -> usize {
        fan_in
    }

    fn params(&self, fan_in: usize) -> Vec<ParamSpec> {
        vec![ParamSpec {
            name: "alpha",
            shape: row(fan_in),
            init: self.alpha_initializer.clone(),
            regularizer: None,
            conv_kernel: None,
        }]
    }

    fn describe(&self) -> String {
        "a learned slope per unit".into()
    }

    fn forward<B: Backend>(&self, f: Forward<'_, B>) -> Result<()> {
        f.b.prelu_forward(f.x, &f.params[0], f.y)
    }

    fn backward<B: Backend>(&self, g: Backward<'_, B>) -> Result<()> {
        g.b.prelu_backward(g.x, &g.params[0], g.dy, g.dx, &mut g.grads[0])
    }
}
