//! One step of a compiled model, written once for every backend: the batch buffers, the
//! upload of a batch, the forward pass, loss, metrics, backward pass and guarded update, the
//! accumulators they sum into, and the rollback after a divergence.

use super::metrics::{Outputs, LOSS_SLOT};
use super::model::Model;
use crate::backend::{Activation, Backend, GuardSlots, Tensor};
use crate::data::Matrix;
use crate::error::Result;
use crate::nn::{Activations, Mode};

/// Which accumulator: training's or evaluation's (validation runs inside an epoch of training).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Phase {
    Train = 0,
    Evaluate = 1,
}

/// Buffers for one batch size: inputs, targets, activations and the loss per row.
#[derive(Debug)]
pub(crate) struct Batch<T> {
    pub(crate) x: T,
    pub(crate) y: T,
    pub(crate) acts: Activations<T>,
    pub(crate) row_loss: T,
    /// The output in probability space, for models trained from logits.
    pub(crate) probs: T,
}

/// The weights a diverged run goes back to: those from step `step`, which are in the set of
/// parameters (see [`crate::nn::Network::update`]) that was in use after `swaps` swaps.
/// Skipped updates write neither set, so a set keeps its weights until an update writes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LastGood {
    /// The step the weights are from.
    pub(crate) step: u64,
    /// The network's swap count when their set was in use.
    pub(crate) swaps: u64,
}

impl<B: Backend> Model<B> {
    /// The index of the buffers for batches of `rows`, created on first use.
    pub(crate) fn batch_index(&mut self, rows: usize, y_cols: usize) -> Result<usize> {
        if let Some(i) = self
            .batches
            .iter()
            .position(|b| b.acts.rows() == rows && b.y.cols() == y_cols)
        {
            return Ok(i);
        }
        let net = self.net.as_ref().expect("check_data builds the network");
        let b = &mut self.backend;
        let batch = Batch {
            x: b.zeros(rows, net.input_dim())?,
            y: b.zeros(rows, y_cols)?,
            acts: net.activations(b, rows)?,
            row_loss: b.zeros(rows, 1)?,
            probs: b.zeros(rows, net.output_dim())?,
        };
        self.batches.push(batch);
        Ok(self.batches.len() - 1)
    }

    /// Uploads rows `idx` of `x` (and `y`) into the buffers for that batch size.
    pub(crate) fn load_batch(
        &mut self,
        x: &Matrix,
        y: Option<&Matrix>,
        idx: &[usize],
    ) -> Result<usize> {
        let y_cols = y.map_or(1, Matrix::cols);
        let i = self.batch_index(idx.len(), y_cols)?;
        self.host_x.clear();
        for &r in idx {
            self.host_x.extend_from_slice(x.row(r));
        }
        self.backend.write(&mut self.batches[i].x, &self.host_x)?;
        if let Some(y) = y {
            self.host_y.clear();
            for &r in idx {
                self.host_y.extend_from_slice(y.row(r));
            }
            self.backend.write(&mut self.batches[i].y, &self.host_y)?;
        }
        Ok(i)
    }

    /// Forward pass of a loaded batch, then its loss and metrics into `acc`; with `train`,
    /// also backward and the optimizer step (guarded by `acc`'s [`Model::guard_slots`], if
    /// `guard`: see [`Backend::optimizer_step`]).
    pub(crate) fn step_batch(
        &mut self,
        i: usize,
        acc: &mut B::Tensor,
        train: bool,
        guard: bool,
    ) -> Result<()> {
        let slots = self.guard_slots();
        let Model {
            backend: b,
            net,
            batches,
            head,
            plan,
            optimizer,
            step,
            seed,
            dist,
            ..
        } = self;
        let net = net.as_mut().expect("check_data builds the network");
        let batch = &mut batches[i];
        let mode = if train {
            Mode::Train {
                seed: *seed,
                step: *step + 1,
            }
        } else {
            Mode::Infer
        };
        net.forward(b, &batch.x, &mut batch.acts, mode)?;
        // Where the loss reads and writes its gradient (see LossSite): the top Dense layer's
        // z and dz when the loss reads the logits, or when that layer is linear (then a = z,
        // and dz = da would only be a copy); the layer below a top Activation layer whose
        // activation the loss folds; else the output.
        let site = net.loss_site(head.on_logits);
        let (pred, grad) = net.loss_io(&batch.x, &mut batch.acts, site, mode);
        b.loss(head.loss, pred, &batch.y, grad, &mut batch.row_loss)?;
        b.sum_into(&batch.row_loss, acc, LOSS_SLOT)?;
        // The penalties are part of the loss, weighted so that the mean per sample is the
        // penalty once per batch (as Keras adds it to each batch's loss).
        for (w, r) in net.regularized() {
            b.penalty_into(w, r.l1, r.l2, batch.acts.rows() as f32, acc, LOSS_SLOT)?;
        }
        let output = net.output(&batch.x, &batch.acts, mode);
        let probs = if head.output != Activation::Linear && plan.needs_probabilities() {
            b.activation(head.output, output, &mut batch.probs)?;
            &batch.probs
        } else {
            output
        };
        // The logits behind the predictions: the output itself when the loss applies the
        // output activation, what the loss read when the network applies it.
        let logits = if head.output != Activation::Linear {
            Some((output, head.output))
        } else if head.on_logits {
            let pred = net.loss_input(&batch.x, &batch.acts, site, mode);
            Some((pred, net.output_activation()))
        } else {
            None
        };
        let outputs = Outputs {
            output,
            probs,
            logits,
        };
        plan.record(b, outputs, &batch.y, acc)?;
        if train {
            match dist.as_mut().filter(|d| d.comm.size() > 1) {
                Some(d) => {
                    let pass = super::distributed::Pass {
                        x: &batch.x,
                        acts: &mut batch.acts,
                        site,
                        mode,
                    };
                    super::distributed::backward_exchange(b, net, d, acc, guard, Some(pass))?;
                }
                None => net.backward(b, &batch.x, &mut batch.acts, site, mode)?,
            }
            *step += 1;
            let guarded = guard.then_some((&mut *acc, slots));
            net.update(b, *optimizer, *step, &batch.acts, guarded)?;
            if !guard {
                // An update in place: the weights in use are the ones to go back to.
                self.mark_good();
            }
        }
        Ok(())
    }

    /// Takes the accumulator for training or evaluation (created on first use, zeroed); give
    /// it back with [`Model::put_accumulator`]. Its sums are the last run's: fill it with
    /// zeros before summing (after any write, which would submit the fill on its own).
    pub(crate) fn take_accumulator(&mut self, which: Phase) -> Result<B::Tensor> {
        match self.accumulators[which as usize].take() {
            Some(acc) => Ok(acc),
            None => self.backend.zeros(1, self.plan.slots() + GuardSlots::COUNT),
        }
    }

    /// Where a guarded training step keeps its books: after the metrics' slots.
    pub(crate) fn guard_slots(&self) -> GuardSlots {
        GuardSlots::after(LOSS_SLOT, self.plan.slots())
    }

    /// The weights in use now, as the ones to go back to: when they are set (built,
    /// restored, replaced), before any update has run on them.
    pub(crate) fn mark_good(&mut self) {
        let swaps = self.net.as_ref().map_or(0, |n| n.swaps());
        self.last_good = LastGood {
            step: self.step,
            swaps,
        };
    }

    /// Goes back to the last good weights (see [`LastGood`]) after a divergence: a swap of the
    /// network's sets when they are the spare ones, nothing when they are in use. Returns the
    /// step they are from, which becomes the step count.
    pub(crate) fn roll_back(&mut self) -> u64 {
        let LastGood { step, swaps } = self.last_good;
        if let Some(net) = self.net.as_mut() {
            if net.swaps() % 2 != swaps % 2 {
                net.swap_sets();
            }
        }
        self.step = step;
        self.mark_good();
        step
    }

    pub(crate) fn put_accumulator(&mut self, which: Phase, acc: B::Tensor) {
        self.accumulators[which as usize] = Some(acc);
    }

    /// Loss and metrics from an accumulator read back after `samples` samples.
    pub(crate) fn finish_logs(
        &self,
        acc: &[f32],
        samples: usize,
        prefix: &str,
        logs: &mut super::Logs,
    ) {
        logs.push(
            format!("{prefix}loss"),
            acc[LOSS_SLOT] as f64 / samples.max(1) as f64,
        );
        for (name, value) in self.plan.finish(acc, samples) {
            logs.push(format!("{prefix}{name}"), value);
        }
    }
}
