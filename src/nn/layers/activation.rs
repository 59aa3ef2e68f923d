//! `Activation`: an activation on its own, `y = act(x)`. No tensors. On top of the stack it
//! pairs with the loss as an activation of the Dense layer below would (a softmax folded into
//! the cross-entropy computed from the logits).

use serde::{Deserialize, Serialize};

use super::{Backward, Forward, Kind, Shape};
use crate::backend::{Activation, Backend};
use crate::error::Result;

/// `y = act(x)`, element-wise (or row-wise for softmax).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ActivationLayer {
    /// The activation.
    pub activation: Activation,
}

impl ActivationLayer {
    /// The layer applying `activation`.
    pub fn new(activation: Activation) -> ActivationLayer {
        ActivationLayer { activation }
    }
}

impl Kind for ActivationLayer {
    const NAME: &'static str = "activation";

    fn validate(&self) -> std::result::Result<(), String> {
        Ok(())
    }

    /// Element by element: images stay images.
    fn bind(&mut self, input: Shape) -> std::result::Result<Shape, String> {
        Ok(input)
    }

    fn width(&self, fan_in: usize) -> usize {
        fan_in
    }

    fn output_activation(&self) -> Option<Activation> {
        Some(self.activation)
    }

    fn describe(&self) -> String {
        self.activation.name().to_string()
    }

    fn forward<B: Backend>(&self, f: Forward<'_, B>) -> Result<()> {
        f.b.activation(self.activation, f.x, f.y)
    }

    fn backward<B: Backend>(&self, g: Backward<'_, B>) -> Result<()> {
        if g.need_dx {
            g.b.activation_backward(self.activation, g.x, g.y, g.dy, g.dx)?;
        }
        Ok(())
    }
}
