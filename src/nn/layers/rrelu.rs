//! `RReLU(lower, upper)`: the randomized leaky ReLU (Xu et al. 2015; PyTorch's `nn.RReLU`).
//! In training each negative element is scaled by its own slope drawn uniformly in
//! `[lower, upper]` from the counter-based generator (see
//! [`crate::backend::RandomSlopes`]), drawn again by the backward pass; in inference the
//! slope is their mean, a leaky ReLU. No tensors. PyTorch's defaults: 1/8 and 1/3.

use serde::{Deserialize, Serialize};

use super::{Backward, Forward, Kind, Mode, Shape};
use crate::backend::{Activation, Backend, RandomSlopes};
use crate::error::Result;

/// A leaky ReLU whose slope is random in training.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct RRelu {
    /// The smallest slope.
    pub lower: f32,
    /// The largest slope.
    pub upper: f32,
}

impl Default for RRelu {
    fn default() -> Self {
        RRelu {
            lower: 1.0 / 8.0,
            upper: 1.0 / 3.0,
        }
    }
}

impl RRelu {
    /// Slopes in `[1/8, 1/3]`, PyTorch's defaults.
    pub fn new() -> RRelu {
        RRelu::default()
    }

    fn slopes(&self, mode: Mode, index: usize) -> Option<RandomSlopes> {
        match mode {
            Mode::Train { seed, step } => Some(RandomSlopes {
                seed,
                layer: index as u32,
                step,
                lower: self.lower,
                upper: self.upper,
            }),
            Mode::Infer => None,
        }
    }
}

impl Kind for RRelu {
    const NAME: &'static str = "rrelu";

    fn validate(&self) -> std::result::Result<(), String> {
        if self.lower.is_finite() && self.upper.is_finite() && self.lower <= self.upper {
            Ok(())
        } else {
            Err(format!(
                "the slopes must be finite with lower ≤ upper, got [{}, {}]",
                self.lower, self.upper
            ))
        }
    }

    /// Element by element: images stay images.
    fn bind(&mut self, input: Shape) -> std::result::Result<Shape, String> {
        Ok(input)
    }

    fn width(&self, fan_in: usize) -> usize {
        fan_in
    }

    fn describe(&self) -> String {
        format!("slopes in [{}, {}]", self.lower, self.upper)
    }

    fn forward<B: Backend>(&self, f: Forward<'_, B>) -> Result<()> {
        match self.slopes(f.mode, f.index) {
            Some(slopes) => f.b.rrelu_forward(f.x, slopes, f.y),
            None => {
                let alpha = ((self.lower as f64 + self.upper as f64) / 2.0) as f32;
                f.b.activation(Activation::LeakyRelu { alpha }, f.x, f.y)
            }
        }
    }

    fn backward<B: Backend>(&self, g: Backward<'_, B>) -> Result<()> {
        if g.need_dx {
            let slopes = self.slopes(g.mode, g.index).expect("backward trains");
            g.b.rrelu_backward(g.x, slopes, g.dy, g.dx)?;
        }
        Ok(())
    }
}
