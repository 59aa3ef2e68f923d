//! `Dropout(rate)`: inverted dropout. In training each element is dropped with probability
//! `rate` and the rest scaled by `1 / (1 - rate)`, the mask drawn from a counter-based
//! generator keyed by (seed, layer, step, element) (see [`crate::backend::DropoutMask`]), so
//! the GPU draws the reference's mask and a resumed run draws what it would have. The forward
//! pass keeps the mask (scaled) in a scratch buffer for the backward pass, `dx = dy ⊙ keep`.
//! In inference the layer passes its input through, without a copy. No tensors.

use serde::{Deserialize, Serialize};

use super::{Backward, Forward, Kind, Shape};
use crate::backend::Backend;
use crate::error::Result;

/// Inverted dropout of `rate`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Dropout {
    /// The fraction of elements dropped in training, in `[0, 1)`.
    pub rate: f32,
}

impl Dropout {
    /// Dropout of `rate`.
    pub fn new(rate: f32) -> Dropout {
        Dropout { rate }
    }
}

impl Kind for Dropout {
    const NAME: &'static str = "dropout";

    fn validate(&self) -> std::result::Result<(), String> {
        if (0.0..1.0).contains(&self.rate) {
            Ok(())
        } else {
            Err(format!(
                "a dropout rate must be in [0, 1), got {} (1 would drop everything)",
                self.rate
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

    fn identity_in_inference(&self) -> bool {
        true
    }

    /// The mask of the last training forward pass, scaled: `1 / (1 - rate)` or 0.
    fn scratch(&self, fan_in: usize) -> Vec<usize> {
        vec![fan_in]
    }

    fn describe(&self) -> String {
        format!("rate {}", self.rate)
    }

    fn forward<B: Backend>(&self, f: Forward<'_, B>) -> Result<()> {
        let mask = f
            .mode
            .mask(f.index, self.rate)
            .expect("the network skips a dropout in inference");
        f.b.dropout(f.x, mask, f.y, &mut f.scratch[0])
    }

    fn backward<B: Backend>(&self, g: Backward<'_, B>) -> Result<()> {
        if g.need_dx {
            g.b.multiply(g.dy, &g.scratch[0], g.dx)?;
        }
        Ok(())
    }
}
