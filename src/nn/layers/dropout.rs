//! `Dropout(rate)`: inverted dropout. In training each element is dropped with probability
//! `rate` and the rest scaled by `1 / (1 - rate)`, the mask drawn from a counter-based
//! generator keyed by (seed, layer, step, element) (see [`crate::backend::DropoutMask`]), so
//! the backward pass draws it again and a resumed run draws what it would have. In
//! inference the layer passes its input through, without a copy. No tensors.

use serde::{Deserialize, Serialize};

use super::{Backward, Forward, Kind};
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

    fn width(&self, fan_in: usize) -> usize {
        fan_in
    }

    fn identity_in_inference(&self) -> bool {
        true
    }

    fn describe(&self) -> String {
        format!("rate {}", self.rate)
    }

    fn forward<B: Backend>(&self, f: Forward<'_, B>) -> Result<()> {
        let mask = f
            .mode
            .mask(f.index, self.rate)
            .expect("the network skips a dropout in inference");
        f.b.dropout(f.x, mask, f.y)
    }

    fn backward<B: Backend>(&self, g: Backward<'_, B>) -> Result<()> {
        if g.need_dx {
            let mask = g.mode.mask(g.index, self.rate).expect("backward trains");
            g.b.dropout(g.dy, mask, g.dx)?;
        }
        Ok(())
    }
}
