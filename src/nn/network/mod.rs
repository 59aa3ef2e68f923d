//! [`Network`]: a [`Sequential`]'s parameters, optimizer state and layer state on a backend,
//! with the forward pass, the backward pass and the update written once over the layer table
//! ([`Layer`]) and every backend.
//!
//! Every trainable tensor of every layer is one member of one group
//! ([`Backend::zeros_group`]), bottom layer first, each layer's in its kind's order; so are
//! their gradients and each kind of optimizer state, so the whole update is one
//! [`Backend::optimizer_step_all`]: one dispatch on the GPU. The layers' state (batch
//! normalization's moving statistics) is a group of its own, updated after the step by one
//! [`Backend::moving_average_all`].

mod build;
mod host;

pub use host::GradBucket;

use std::ops::{Range, RangeInclusive};

use super::{Layer, Mode, Regularizer};
use crate::backend::{Backend, Guard, GuardSlots, Optimizer, Tensor};
use crate::error::Result;
use crate::nn::layers::{Backward, Forward};

/// Where the loss reads the network's output and writes its gradient.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LossSite {
    /// The top Dense layer's pre-activation `z` and its `dz`: for a loss computed from the
    /// logits, or a linear top layer (where `a = z`).
    Logits,
    /// The output of the layer below a top Activation layer (the logits of the activation the
    /// loss folds), and its gradient; backward starts below the Activation layer.
    Below,
    /// The network's output and its gradient.
    Output,
}

/// The per-batch-size buffers of a forward and backward pass: each layer's output and its
/// gradient, each layer's scratch, and the batch's statistics. Allocated once per batch size
/// and reused every step.
#[derive(Debug)]
pub struct Activations<T> {
    rows: usize,
    /// Each layer's output.
    pub out: Vec<T>,
    /// `∂L/∂out`, one per layer.
    pub dout: Vec<T>,
    /// Each layer's scratch buffers (a Dense layer's `z` and `dz`).
    pub scratch: Vec<Vec<T>>,
    /// The batch's statistics, laid out as the network's layer state (one group).
    pub stats: Vec<T>,
    /// Where the bottom layer's `dx` goes when its kernel writes one anyway.
    d_input: T,
}

impl<T> Activations<T> {
    /// The batch size these buffers hold.
    pub fn rows(&self) -> usize {
        self.rows
    }
}

/// The parameters and state of a stack of layers on a backend, with their gradients and
/// optimizer state.
#[derive(Debug)]
pub struct Network<T> {
    input_dim: usize,
    layers: Vec<Layer>,
    /// Each layer's input width.
    fan_ins: Vec<usize>,
    /// Each layer's trainable tensors in `params`, and its state in `moving`.
    param_at: Vec<Range<usize>>,
    state_at: Vec<Range<usize>>,
    params: Vec<T>,
    grads: Vec<T>,
    /// `state[j]`: the optimizer's state tensors of parameter `j`.
    state: Vec<Vec<T>>,
    /// The layers' non-trainable state.
    moving: Vec<T>,
    /// The second set of parameters, optimizer state and layer state, laid out as the first
    /// (each kind one group), made by the first guarded update: a guarded update reads one set
    /// and writes the other, and the two swap, so the spare holds the values before the last
    /// update.
    spare_params: Vec<T>,
    spare_state: Vec<Vec<T>>,
    spare_moving: Vec<T>,
    /// How many times the two sets have swapped: its parity says which is in use.
    swaps: u64,
    /// The weights and layer state kept by [`Network::keep`] (early stopping's best), on the
    /// device, laid out as the set in use.
    kept: Vec<T>,
    kept_moving: Vec<T>,
    shapes: Vec<[usize; 2]>,
    moving_shapes: Vec<[usize; 2]>,
    /// The penalized parameters.
    regularized: Vec<(usize, Regularizer)>,
}

impl<T: Tensor> Network<T> {
    /// The input width.
    pub fn input_dim(&self) -> usize {
        self.input_dim
    }

    /// The layers, bottom first.
    pub fn layers(&self) -> &[Layer] {
        &self.layers
    }

    /// The activation the top layer applies last (see [`Layer::output_activation`]), or
    /// linear.
    pub fn output_activation(&self) -> crate::backend::Activation {
        self.layers
            .last()
            .and_then(Layer::output_activation)
            .unwrap_or(crate::backend::Activation::Linear)
    }

    /// The output width.
    pub fn output_dim(&self) -> usize {
        self.width(self.layers.len() - 1)
    }

    fn width(&self, i: usize) -> usize {
        self.layers[i].width(self.fan_ins[i])
    }

    /// Number of trainable values.
    pub fn parameter_count(&self) -> usize {
        self.params.iter().map(|t| t.len()).sum()
    }

    /// Number of non-trainable values (the layers' state).
    pub fn state_count(&self) -> usize {
        self.moving_shapes.iter().map(|s| s[0] * s[1]).sum()
    }

    /// The penalized parameters, with their penalties.
    pub fn regularized(&self) -> impl Iterator<Item = (&T, Regularizer)> {
        self.regularized.iter().map(|&(j, r)| (&self.params[j], r))
    }

    /// Where the loss reads and writes for a head that does (`on_logits`) or does not
    /// compute it from the logits: see [`LossSite`].
    pub fn loss_site(&self, on_logits: bool) -> LossSite {
        let top = self.layers.last().expect("a network has layers");
        match top {
            Layer::Dense(d) if on_logits || d.activation == crate::backend::Activation::Linear => {
                LossSite::Logits
            }
            Layer::Activation(_) if on_logits && self.layers.len() > 1 => LossSite::Below,
            _ => LossSite::Output,
        }
    }

    /// Where the top layer keeps its logits and their gradient (see
    /// [`Layer::logits_scratch`]); only asked at [`LossSite::Logits`], which a top layer
    /// without them never gets.
    fn logits_scratch(&self) -> (usize, usize) {
        self.layers
            .last()
            .and_then(Layer::logits_scratch)
            .expect("LossSite::Logits is only chosen for a top layer with logits")
    }

    /// The layer whose output layer `i` reads in `mode` (`None`: the network's input): the one
    /// below, except that inference skips the layers that pass their input through.
    fn source(&self, i: usize, mode: Mode) -> Option<usize> {
        (0..i)
            .rev()
            .find(|&j| mode != Mode::Infer || !self.layers[j].identity_in_inference())
    }

    /// Buffers for batches of `rows` samples.
    pub fn activations<B: Backend<Tensor = T>>(
        &self,
        b: &mut B,
        rows: usize,
    ) -> Result<Activations<T>> {
        let n = self.layers.len();
        let mut out = Vec::with_capacity(n);
        let mut dout = Vec::with_capacity(n);
        let mut scratch = Vec::with_capacity(n);
        for i in 0..n {
            out.push(b.zeros(rows, self.width(i))?);
            dout.push(b.zeros(rows, self.width(i))?);
            let widths = self.layers[i].scratch(self.fan_ins[i]);
            scratch.push(
                widths
                    .into_iter()
                    .map(|w| b.zeros(rows, w))
                    .collect::<Result<_>>()?,
            );
        }
        Ok(Activations {
            rows,
            out,
            dout,
            scratch,
            stats: group(b, &self.moving_shapes, None)?,
            d_input: b.zeros(rows, self.input_dim)?,
        })
    }

    /// The network's output after a forward pass in `mode`, for input `x`.
    pub fn output<'a>(&self, x: &'a T, acts: &'a Activations<T>, mode: Mode) -> &'a T {
        match self.source(self.layers.len(), mode) {
            Some(j) => &acts.out[j],
            None => x,
        }
    }

    /// What the loss reads at `site` after a forward pass in `mode`: the prediction, or the
    /// logits.
    pub fn loss_input<'a>(
        &self,
        x: &'a T,
        acts: &'a Activations<T>,
        site: LossSite,
        mode: Mode,
    ) -> &'a T {
        let top = self.layers.len() - 1;
        let layer = match site {
            LossSite::Logits => return &acts.scratch[top][self.logits_scratch().0],
            LossSite::Below => self.source(top, mode),
            LossSite::Output => self.source(top + 1, mode),
        };
        match layer {
            Some(j) => &acts.out[j],
            None => x,
        }
    }

    /// What the loss reads (the prediction, or the logits) and where it writes its gradient,
    /// after a forward pass in `mode`: see [`LossSite`].
    pub fn loss_io<'a>(
        &self,
        x: &'a T,
        acts: &'a mut Activations<T>,
        site: LossSite,
        mode: Mode,
    ) -> (&'a T, &'a mut T) {
        let top = self.layers.len() - 1;
        match site {
            LossSite::Logits => {
                let (z, dz) = self.logits_scratch();
                let (low, high) = acts.scratch[top].split_at_mut(dz.max(z));
                if z < dz {
                    (&low[z], &mut high[0])
                } else {
                    (&high[0], &mut low[dz])
                }
            }
            LossSite::Below => {
                let pred = match self.source(top, mode) {
                    Some(j) => &acts.out[j],
                    None => x,
                };
                (pred, &mut acts.dout[top - 1])
            }
            LossSite::Output => {
                let pred = match self.source(top + 1, mode) {
                    Some(j) => &acts.out[j],
                    None => x,
                };
                (pred, &mut acts.dout[top])
            }
        }
    }

    /// Forward pass, layer by layer, in `mode`. `x` is `[rows, input_dim]`.
    pub fn forward<B: Backend<Tensor = T>>(
        &self,
        b: &mut B,
        x: &T,
        acts: &mut Activations<T>,
        mode: Mode,
    ) -> Result<()> {
        for (i, layer) in self.layers.iter().enumerate() {
            if mode == Mode::Infer && layer.identity_in_inference() {
                continue;
            }
            let src = self.source(i, mode);
            let (below, rest) = acts.out.split_at_mut(i);
            let input = match src {
                Some(j) => &below[j],
                None => x,
            };
            layer.forward(Forward {
                b,
                x: input,
                y: &mut rest[0],
                params: &self.params[self.param_at[i].clone()],
                state: &self.moving[self.state_at[i].clone()],
                batch_stats: &mut acts.stats[self.state_at[i].clone()],
                scratch: &mut acts.scratch[i],
                mode,
                index: i,
            })?;
        }
        Ok(())
    }

    /// Backward pass by the chain rule, from the top down, after a training forward pass in
    /// `mode` whose loss wrote its gradient at `site` (see [`Network::loss_io`]); then the
    /// penalties' gradients are added to their parameters'.
    pub fn backward<B: Backend<Tensor = T>>(
        &mut self,
        b: &mut B,
        x: &T,
        acts: &mut Activations<T>,
        site: LossSite,
        mode: Mode,
    ) -> Result<()> {
        let layers = 0..=self.layers.len() - 1;
        self.backward_layers(b, x, acts, site, mode, layers)
    }

    /// [`Network::backward`] of the layers `layers` alone, their penalties' gradients
    /// included: their parameters' gradients are final after it. Run over consecutive ranges
    /// from the top down (as [`Network::grad_buckets`] gives them), it is the whole pass.
    pub fn backward_layers<B: Backend<Tensor = T>>(
        &mut self,
        b: &mut B,
        x: &T,
        acts: &mut Activations<T>,
        site: LossSite,
        mode: Mode,
        layers: RangeInclusive<usize>,
    ) -> Result<()> {
        let top = self.layers.len() - 1;
        let (lo, hi) = (*layers.start(), (*layers.end()).min(top));
        let start = if site == LossSite::Below {
            top - 1
        } else {
            top
        };
        let Activations {
            out,
            dout,
            scratch,
            stats,
            d_input,
            ..
        } = acts;
        for i in (lo..=start.min(hi)).rev() {
            let input = if i == 0 { x } else { &out[i - 1] };
            let (below, rest) = dout.split_at_mut(i);
            let dx = if i == 0 {
                &mut *d_input
            } else {
                &mut below[i - 1]
            };
            let (p, s) = (self.param_at[i].clone(), self.state_at[i].clone());
            self.layers[i].backward(Backward {
                b,
                x: input,
                y: &out[i],
                dy: &rest[0],
                dx,
                need_dx: i > 0,
                params: &self.params[p.clone()],
                grads: &mut self.grads[p],
                batch_stats: &stats[s],
                scratch: &mut scratch[i],
                dz_given: i == top && site == LossSite::Logits,
                mode,
                index: i,
            })?;
        }
        let params = self.param_at[lo].start..self.param_at[hi].end;
        for &(j, r) in self.regularized.iter().filter(|(j, _)| params.contains(j)) {
            b.penalty_backward(&self.params[j], r.l1, r.l2, &mut self.grads[j])?;
        }
        Ok(())
    }

    /// Applies the gradients of the last backward pass: step `t` of `optimizer`, then the
    /// moving averages of the batch statistics in `acts`. With a guard (the accumulator and
    /// its slots), the update reads this set of parameters and state and writes the spare one,
    /// all or nothing, decided on the device (see [`Backend::optimizer_step`]); then the sets
    /// swap, so that the spare holds the values before the update and [`Network::swap_sets`]
    /// undoes it. The spare set is made by the first guarded update. Without a guard the
    /// update is in place.
    pub fn update<B: Backend<Tensor = T>>(
        &mut self,
        b: &mut B,
        optimizer: Optimizer,
        t: u64,
        acts: &Activations<T>,
        guard: Option<(&mut T, GuardSlots)>,
    ) -> Result<()> {
        let Some((acc, slots)) = guard else {
            b.optimizer_step_all(
                optimizer,
                t,
                &mut self.params,
                &self.grads,
                &mut self.state,
                None,
            )?;
            return self.update_moving(b, t, &acts.stats, None);
        };
        if self.spare_params.is_empty() {
            self.make_spare(b, optimizer)?;
        }
        let guard = Guard {
            acc: &mut *acc,
            slots,
            params_out: &mut self.spare_params,
            state_out: &mut self.spare_state,
        };
        b.optimizer_step_all(
            optimizer,
            t,
            &mut self.params,
            &self.grads,
            &mut self.state,
            Some(guard),
        )?;
        self.update_moving(b, t, &acts.stats, Some((acc, slots)))?;
        self.swap_sets();
        Ok(())
    }

    /// The moving averages of every layer with state (batch normalization): one pass over the
    /// whole group when the layers share a momentum, else one per layer.
    fn update_moving<B: Backend<Tensor = T>>(
        &mut self,
        b: &mut B,
        t: u64,
        batch: &[T],
        mut guard: Option<(&mut T, GuardSlots)>,
    ) -> Result<()> {
        let momenta: Vec<(f32, Range<usize>)> = self
            .layers
            .iter()
            .zip(&self.state_at)
            .filter_map(|(l, r)| match l {
                Layer::BatchNormalization(bn) if !r.is_empty() => Some((bn.momentum, r.clone())),
                _ => None,
            })
            .collect();
        let Some(&(first, _)) = momenta.first() else {
            return Ok(());
        };
        let runs = if momenta.iter().all(|(m, _)| *m == first) {
            vec![(first, 0..self.moving.len())]
        } else {
            momenta
        };
        for (momentum, r) in runs {
            let g = guard.as_mut().map(|(acc, slots)| Guard {
                acc: &mut **acc,
                slots: *slots,
                params_out: &mut self.spare_moving[r.clone()],
                state_out: &mut [],
            });
            b.moving_average_all(momentum, t, &mut self.moving[r.clone()], &batch[r], g)?;
        }
        Ok(())
    }

    /// The spare set: one group per kind of value (the parameters, each kind of optimizer
    /// state, the layers' state), like the set in use, holding the same values.
    fn make_spare<B: Backend<Tensor = T>>(
        &mut self,
        b: &mut B,
        optimizer: Optimizer,
    ) -> Result<()> {
        let mut params = b.zeros_group(&self.shapes)?;
        copy_all(b, &self.params, &mut params)?;
        let mut state: Vec<Vec<T>> = self.shapes.iter().map(|_| Vec::new()).collect();
        for k in 0..optimizer.state_tensors() {
            let mut kind = b.zeros_group(&self.shapes)?;
            let from: Vec<&T> = self.state.iter().map(|s| &s[k]).collect();
            for (t, f) in kind.iter_mut().zip(from) {
                let values = b.read(f)?;
                b.write(t, &values)?;
            }
            for (slot, t) in state.iter_mut().zip(kind) {
                slot.push(t);
            }
        }
        let mut moving = group(b, &self.moving_shapes, None)?;
        copy_all(b, &self.moving, &mut moving)?;
        self.spare_params = params;
        self.spare_state = state;
        self.spare_moving = moving;
        Ok(())
    }

    /// Swaps the set of parameters and state in use with the spare one: after a guarded
    /// update, undoes it. Nothing is copied.
    pub fn swap_sets(&mut self) {
        if self.spare_params.is_empty() {
            return;
        }
        std::mem::swap(&mut self.params, &mut self.spare_params);
        std::mem::swap(&mut self.state, &mut self.spare_state);
        std::mem::swap(&mut self.moving, &mut self.spare_moving);
        self.swaps += 1;
    }

    /// Keeps a copy of the weights and the layers' state in use, on the device (one copy per
    /// group; the buffers are made by the first call): what [`Network::restore_kept`] goes
    /// back to. The optimizer state is not kept (as Keras' `restore_best_weights`).
    pub fn keep<B: Backend<Tensor = T>>(&mut self, b: &mut B) -> Result<()> {
        if self.kept.is_empty() {
            self.kept = b.zeros_group(&self.shapes)?;
            self.kept_moving = group(b, &self.moving_shapes, None)?;
        }
        b.copy_all(&self.params, &mut self.kept)?;
        b.copy_all(&self.moving, &mut self.kept_moving)
    }

    /// Puts the kept weights and layer state back into the set in use; false if nothing was
    /// kept.
    pub fn restore_kept<B: Backend<Tensor = T>>(&mut self, b: &mut B) -> Result<bool> {
        if self.kept.is_empty() {
            return Ok(false);
        }
        b.copy_all(&self.kept, &mut self.params)?;
        b.copy_all(&self.kept_moving, &mut self.moving)?;
        Ok(true)
    }

    /// How many times the sets have swapped (each guarded update swaps once).
    pub fn swaps(&self) -> u64 {
        self.swaps
    }
}

/// A group of these shapes (none when there are none), holding `initial` if given.
fn group<B: Backend>(
    b: &mut B,
    shapes: &[[usize; 2]],
    initial: Option<&[Vec<f32>]>,
) -> Result<Vec<B::Tensor>> {
    if shapes.is_empty() {
        return Ok(Vec::new());
    }
    let mut g = b.zeros_group(shapes)?;
    if let Some(values) = initial {
        for (t, v) in g.iter_mut().zip(values) {
            b.write(t, v)?;
        }
    }
    Ok(g)
}

/// Copies each of `from` into the tensor of `to` at the same place, through the host (once,
/// when the spare set is made).
fn copy_all<B: Backend>(b: &mut B, from: &[B::Tensor], to: &mut [B::Tensor]) -> Result<()> {
    for (f, t) in from.iter().zip(to) {
        let values = b.read(f)?;
        b.write(t, &values)?;
    }
    Ok(())
}
