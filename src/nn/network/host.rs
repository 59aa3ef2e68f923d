//! A [`Network`]'s tensors to and from the host: each layer's weights and state, and the
//! optimizer's state, read back or replaced (checkpoints, `restore_best_weights`,
//! `set_weights`), with the shapes checked layer by layer; and the gradients of a
//! data-parallel step, averaged over the ranks whole or bucket by bucket.

use std::ops::{Range, RangeInclusive};

use super::Network;
use crate::backend::{Backend, ReadTicket, Tensor};
use crate::error::{Error, Result};
use crate::nn::{HostTensor, LayerState, LayerWeights};

impl<T: Tensor> Network<T> {
    /// Reads every layer's tensors back: its trainable ones and its state.
    pub fn weights<B: Backend<Tensor = T>>(&self, b: &mut B) -> Result<Vec<LayerWeights>> {
        let read = |b: &mut B, ts: &[T]| -> Result<Vec<HostTensor>> {
            ts.iter()
                .map(|t| {
                    Ok(HostTensor {
                        shape: t.shape(),
                        values: b.read(t)?,
                    })
                })
                .collect()
        };
        (0..self.layers.len())
            .map(|i| {
                Ok(LayerWeights {
                    params: read(b, &self.params[self.param_at[i].clone()])?,
                    state: read(b, &self.moving[self.state_at[i].clone()])?,
                })
            })
            .collect()
    }

    /// Replaces every layer's tensors; shapes must match layer by layer.
    pub fn set_weights<B: Backend<Tensor = T>>(
        &mut self,
        b: &mut B,
        weights: &[LayerWeights],
    ) -> Result<()> {
        if weights.len() != self.layers.len() {
            return Err(Error::Config(format!(
                "{} layers of weights given for a model of {} layers",
                weights.len(),
                self.layers.len()
            )));
        }
        for (i, w) in weights.iter().enumerate() {
            let kinds = [
                (
                    "trainable",
                    &w.params,
                    &self.params[self.param_at[i].clone()],
                ),
                ("state", &w.state, &self.moving[self.state_at[i].clone()]),
            ];
            for (what, given, have) in kinds {
                let ok = given.len() == have.len()
                    && given
                        .iter()
                        .zip(have)
                        .all(|(g, t)| g.shape == t.shape() && g.values.len() == t.len());
                if !ok {
                    let shapes = |s: Vec<[usize; 2]>| {
                        s.iter()
                            .map(|[r, c]| format!("[{r}, {c}]"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    };
                    return Err(Error::Config(format!(
                        "layer {i} ({}): {what} tensors {} given for a layer of {}",
                        self.layers[i].kind(),
                        shapes(given.iter().map(|g| g.shape).collect()),
                        shapes(have.iter().map(Tensor::shape).collect())
                    )));
                }
            }
        }
        for (i, w) in weights.iter().enumerate() {
            let (p, s) = (self.param_at[i].clone(), self.state_at[i].clone());
            for (t, h) in self.params[p].iter_mut().zip(&w.params) {
                b.write(t, &h.values)?;
            }
            for (t, h) in self.moving[s].iter_mut().zip(&w.state) {
                b.write(t, &h.values)?;
            }
        }
        Ok(())
    }

    /// Reads the optimizer state back: per layer, per trainable tensor, the optimizer's state
    /// tensors (Adam: m, v; momentum: the velocity; SGD: none).
    pub fn optimizer_state<B: Backend<Tensor = T>>(&self, b: &mut B) -> Result<Vec<LayerState>> {
        self.param_at
            .iter()
            .map(|r| {
                Ok(LayerState {
                    params: self.state[r.clone()]
                        .iter()
                        .map(|s| s.iter().map(|t| b.read(t)).collect::<Result<Vec<_>>>())
                        .collect::<Result<_>>()?,
                })
            })
            .collect()
    }

    /// Replaces the optimizer state; counts and lengths must match layer by layer.
    pub fn set_optimizer_state<B: Backend<Tensor = T>>(
        &mut self,
        b: &mut B,
        state: &[LayerState],
    ) -> Result<()> {
        if state.len() != self.layers.len() {
            return Err(Error::Config(format!(
                "optimizer state for {} layers given to a model of {} layers",
                state.len(),
                self.layers.len()
            )));
        }
        for (i, s) in state.iter().enumerate() {
            let have = &self.state[self.param_at[i].clone()];
            let ok = s.params.len() == have.len()
                && s.params.iter().zip(have).all(|(g, h)| {
                    g.len() == h.len() && g.iter().zip(h).all(|(v, t)| v.len() == t.len())
                });
            if !ok {
                return Err(Error::Config(format!(
                    "layer {i} ({}): the optimizer state given does not match the optimizer's ({} state tensors per parameter)",
                    self.layers[i].kind(),
                    have.first().map_or(0, Vec::len)
                )));
            }
        }
        for (i, s) in state.iter().enumerate() {
            let r = self.param_at[i].clone();
            for (ts, values) in self.state[r].iter_mut().zip(&s.params) {
                for (t, v) in ts.iter_mut().zip(values) {
                    b.write(t, v)?;
                }
            }
        }
        Ok(())
    }

    /// Averages the gradients of the last backward pass over the ranks of `comm`: each rank's
    /// are scaled by `weight` (its slice's share of the global batch, [`crate::dist::weight`])
    /// and summed over the ranks as one flat buffer, bottom layer first: one read-back, one
    /// allreduce, one write per tensor. After it every rank holds the gradient of the global
    /// batch's mean loss. A rank whose slice is empty gives `None`: it adds zeros (its
    /// gradients are not read, being stale). `tail` rides along in the same allreduce (the
    /// training loop's flags) and is replaced by its sum. `flat` is scratch, kept between steps.
    /// Gives the time spent in the allreduce itself (the rest is read-back and upload).
    pub fn average_grads<B: Backend<Tensor = T>>(
        &mut self,
        b: &mut B,
        comm: &dyn crate::dist::Communicator,
        weight: Option<f32>,
        tail: &mut [f32],
        flat: &mut Vec<f32>,
    ) -> Result<std::time::Duration> {
        flat.clear();
        match weight {
            Some(weight) => {
                let grads: Vec<&T> = self.grads.iter().collect();
                b.read_all(&grads, flat)?;
                flat.iter_mut().for_each(|v| *v *= weight);
            }
            None => flat.resize(self.grads.iter().map(|g| g.len()).sum(), 0.0),
        }
        let n_grads = flat.len();
        flat.extend_from_slice(tail);
        let reducing = std::time::Instant::now();
        comm.all_reduce_sum(flat)?;
        let reduced = reducing.elapsed();
        tail.copy_from_slice(&flat[n_grads..]);
        let mut at = 0;
        for g in &mut self.grads {
            let n = g.len();
            b.write(g, &flat[at..at + n])?;
            at += n;
        }
        Ok(reduced)
    }

    /// The layers split into buckets whose gradients hold at least `bytes` each (the last
    /// may hold fewer), from the top down: the order the backward pass finishes them in, so
    /// that a bucket can be exchanged while the backward of the layers below it runs. Every
    /// layer is in one bucket; a bucket ends at a layer with parameters. Into `out`, cleared.
    pub fn grad_buckets(&self, bytes: usize, out: &mut Vec<GradBucket>) {
        out.clear();
        let mut hi = self.layers.len() - 1;
        let mut held = 0;
        for i in (0..self.layers.len()).rev() {
            held += self.grads[self.param_at[i].clone()]
                .iter()
                .map(|g| 4 * g.len())
                .sum::<usize>();
            if i == 0 || (held > 0 && held >= bytes) {
                if held == 0 && i == 0 {
                    // Layers with no parameters at the bottom: the bucket above runs them.
                    if let Some(last) = out.last_mut() {
                        last.layers = 0..=*last.layers.end();
                        break;
                    }
                }
                out.push(GradBucket {
                    layers: i..=hi,
                    grads: self.param_at[i].start..self.param_at[hi].end,
                });
                held = 0;
                hi = i.saturating_sub(1);
            }
        }
    }

    /// How many gradient values `bucket` holds.
    pub fn bucket_len(&self, bucket: &GradBucket) -> usize {
        self.grads[bucket.grads.clone()]
            .iter()
            .map(|g| g.len())
            .sum()
    }

    /// Starts reading `bucket`'s gradients back, bottom layer first, and then `extra` if
    /// given ([`Backend::read_start`]).
    pub fn read_bucket_start<B: Backend<Tensor = T>>(
        &self,
        b: &mut B,
        bucket: &GradBucket,
        extra: Option<&T>,
        out: &mut Vec<f32>,
    ) -> Result<ReadTicket> {
        let ts: Vec<&T> = self.grads[bucket.grads.clone()]
            .iter()
            .chain(extra)
            .collect();
        b.read_start(&ts, out)
    }

    /// Replaces `bucket`'s gradients by `values`, bottom layer first (as they were read).
    pub fn write_bucket<B: Backend<Tensor = T>>(
        &mut self,
        b: &mut B,
        bucket: &GradBucket,
        values: &[f32],
    ) -> Result<()> {
        let mut at = 0;
        for g in &mut self.grads[bucket.grads.clone()] {
            let n = g.len();
            b.write(g, &values[at..at + n])?;
            at += n;
        }
        Ok(())
    }
}

/// Consecutive layers whose gradients a data-parallel step exchanges together
/// ([`Network::grad_buckets`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GradBucket {
    /// The layers, by index.
    pub layers: RangeInclusive<usize>,
    /// Their parameters' gradients, by index in the network's list.
    pub grads: Range<usize>,
}
