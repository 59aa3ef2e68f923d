//! Building a [`Network`]: each layer's parameters drawn by its initializer, its state at
//! its starting values, the optimizer's state at zeros, every kind of tensor in one group.

use rand::rngs::StdRng;

use super::{group, Network};
use crate::backend::{Backend, Optimizer, Tensor};
use crate::error::{Error, Result};
use crate::nn::Sequential;

impl<T: Tensor> Network<T> {
    /// Builds the layers of `spec` for inputs of width `input_dim`, drawing initial values
    /// from `rng` layer by layer, each layer's tensors in its kind's order (a Dense layer's
    /// weights, then its bias).
    pub fn build<B: Backend<Tensor = T>>(
        b: &mut B,
        spec: &Sequential,
        input_dim: usize,
        optimizer: Optimizer,
        rng: &mut StdRng,
    ) -> Result<Network<T>> {
        spec.validate()?;
        let (mut shapes, mut initial, mut regularized) = (Vec::new(), Vec::new(), Vec::new());
        let (mut moving_shapes, mut moving_initial) = (Vec::new(), Vec::new());
        let (mut fan_ins, mut param_at, mut state_at) = (Vec::new(), Vec::new(), Vec::new());
        let mut fan_in = input_dim;
        for (i, l) in spec.layers.iter().enumerate() {
            if let Some([h, w, c]) = l
                .input_image()
                .filter(|s| s.iter().product::<usize>() != fan_in)
            {
                let what = if i == 0 {
                    "the data has"
                } else {
                    "the layer below gives"
                };
                return Err(Error::Config(format!(
                    "layer {i} ({}) takes {h}×{w}×{c} images ({} values a row), but {what} {fan_in}; give the model the input shape of the data",
                    l.kind(),
                    h * w * c
                )));
            }
            fan_ins.push(fan_in);
            let start = shapes.len();
            for p in l.params(fan_in) {
                let values = p.init.sample_fans(p.shape, p.fans(), rng);
                let values = values.map_err(|e| {
                    Error::Config(format!("layer {i} ({}), {}: {e}", l.kind(), p.name))
                })?;
                if let Some(r) = p.regularizer {
                    regularized.push((shapes.len(), r));
                }
                initial.push(values);
                shapes.push(p.shape);
            }
            param_at.push(start..shapes.len());
            let start = moving_shapes.len();
            for s in l.state(fan_in) {
                moving_initial.push(vec![s.init; s.shape[0] * s.shape[1]]);
                moving_shapes.push(s.shape);
            }
            state_at.push(start..moving_shapes.len());
            fan_in = l.width(fan_in);
        }
        let mut params = b.zeros_group(&shapes)?;
        for (t, values) in params.iter_mut().zip(&initial) {
            b.write(t, values)?;
        }
        let grads = b.zeros_group(&shapes)?;
        let mut state: Vec<Vec<T>> = (0..shapes.len()).map(|_| Vec::new()).collect();
        for _ in 0..optimizer.state_tensors() {
            for (s, t) in state.iter_mut().zip(b.zeros_group(&shapes)?) {
                s.push(t);
            }
        }
        let moving = group(b, &moving_shapes, Some(&moving_initial))?;
        Ok(Network {
            input_dim,
            layers: spec.layers.clone(),
            fan_ins,
            param_at,
            state_at,
            params,
            grads,
            state,
            moving,
            spare_params: Vec::new(),
            spare_state: Vec::new(),
            spare_moving: Vec::new(),
            swaps: 0,
            kept: Vec::new(),
            kept_moving: Vec::new(),
            shapes,
            moving_shapes,
            regularized,
        })
    }
}
