//! A compiled model: a network on a backend, with its loss, optimizer and metrics, and the
//! step that trains it. The step is written once for every backend; on the GPU it records its
//! dispatches and the fit loop submits them once per step.

use std::borrow::Cow;
use std::path::Path;

use rand::rngs::StdRng;
use rand::SeedableRng;

use super::callbacks::ModelControl;
use super::metrics::{Metric, MetricPlan, LOSS_SLOT};
use super::targets::check_targets;
use crate::backend::{Activation, Backend, GuardSlots, Optimizer, Tensor};
use crate::checkpoint::{Checkpoint, LayerConfig, ModelConfig, FORMAT};
use crate::data::{Matrix, Origin, RowUnit, Standardizer};
use crate::error::{Error, Result};
use crate::nn::{Activations, Head, LayerWeights, LossFn, Network, Sequential, Task};

/// What `compile` takes besides the layers and the backend.
#[derive(Clone, Debug)]
pub struct Compile {
    /// The loss.
    pub loss: LossFn,
    /// The optimizer and its hyper-parameters.
    pub optimizer: Optimizer,
    /// Metrics reported besides the loss.
    pub metrics: Vec<Metric>,
    /// Seeds the initial weights and the shuffles (default 0).
    pub seed: u64,
}

impl Compile {
    /// A loss and an optimizer, no metrics, seed 0.
    pub fn new(loss: LossFn, optimizer: Optimizer) -> Compile {
        Compile {
            loss,
            optimizer,
            metrics: Vec::new(),
            seed: 0,
        }
    }

    /// The same with these metrics.
    pub fn metrics(mut self, metrics: &[Metric]) -> Compile {
        self.metrics = metrics.to_vec();
        self
    }

    /// The same with this seed.
    pub fn seed(mut self, seed: u64) -> Compile {
        self.seed = seed;
        self
    }
}

impl Sequential {
    /// Compiles the stack for training on `backend`. The weights are created when the model
    /// first sees data (their input width comes from it), or by [`Model::build`].
    ///
    /// Fails with a message saying what to do when the loss cannot train the last layer (a
    /// softmax output fed to a loss that applies softmax again, one output with categorical
    /// cross-entropy, ...) or a metric does not fit the loss.
    pub fn compile<B: Backend>(self, backend: B, config: Compile) -> Result<Model<B>> {
        self.validate()?;
        config.optimizer.validate(1)?;
        let last = self
            .layers
            .last()
            .expect("validate checked there is a layer");
        let (head, warning) = config.loss.head(last.activation, last.units)?;
        let plan = MetricPlan::new(&config.metrics, head.task)?;
        Ok(Model {
            backend,
            spec: self,
            loss: config.loss,
            head,
            optimizer: config.optimizer,
            plan,
            metrics: config.metrics,
            seed: config.seed,
            rng: StdRng::seed_from_u64(config.seed),
            standardizer: None,
            epochs_done: 0,
            net: None,
            batches: Vec::new(),
            host_x: Vec::new(),
            host_y: Vec::new(),
            accumulators: [None, None],
            step: 0,
            last_good: LastGood::Current { step: 0 },
            warnings: warning.into_iter().collect(),
            stop_reason: None,
        })
    }
}

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

/// A compiled model: see [`Sequential::compile`].
#[derive(Debug)]
pub struct Model<B: Backend> {
    pub(crate) backend: B,
    spec: Sequential,
    loss: LossFn,
    pub(crate) head: Head,
    pub(crate) optimizer: Optimizer,
    pub(crate) plan: MetricPlan,
    metrics: Vec<Metric>,
    /// Seeds the initial weights (through `rng`) and each epoch's shuffle.
    pub(crate) seed: u64,
    /// Draws the initial weights.
    rng: StdRng,
    /// Applied to every input before it reaches the network.
    standardizer: Option<Standardizer>,
    /// Epochs completed, across `fit` calls and checkpoints.
    pub(crate) epochs_done: usize,
    pub(crate) net: Option<Network<B::Tensor>>,
    batches: Vec<Batch<B::Tensor>>,
    host_x: Vec<f32>,
    host_y: Vec<f32>,
    /// The loss and metric sums of training and of evaluation, kept between calls.
    accumulators: [Option<B::Tensor>; 2],
    pub(crate) step: u64,
    /// The weights a diverged run goes back to.
    pub(crate) last_good: LastGood,
    warnings: Vec<String>,
    pub(crate) stop_reason: Option<String>,
}

/// The weights a diverged run goes back to, and the step they are from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LastGood {
    /// No update has run since the weights were set (built, restored, replaced): they are
    /// the ones to keep.
    Current {
        /// The step count when they were set.
        step: u64,
    },
    /// The network's backup: the weights before the last guarded update that ran.
    Backup {
        /// The step they are from.
        step: u64,
    },
}

/// The result of [`Model::evaluate`].
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Evaluation {
    /// The mean loss.
    pub loss: f64,
    /// Each metric by its Keras name.
    pub metrics: Vec<(String, f64)>,
}

impl Evaluation {
    /// A metric by name (or `"loss"`).
    pub fn get(&self, name: &str) -> Option<f64> {
        if name == "loss" {
            return Some(self.loss);
        }
        self.metrics
            .iter()
            .find(|(n, _)| n == name)
            .map(|&(_, v)| v)
    }
}

impl<B: Backend> Model<B> {
    /// The backend.
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// The backend, mutably.
    pub fn backend_mut(&mut self) -> &mut B {
        &mut self.backend
    }

    /// The loss it was compiled with.
    pub fn loss(&self) -> LossFn {
        self.loss
    }

    /// How the loss pairs with the last layer.
    pub fn head(&self) -> Head {
        self.head
    }

    /// Warnings from `compile` about doubtful (but trainable) choices.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The optimizer, with its current learning rate.
    pub fn optimizer(&self) -> Optimizer {
        self.optimizer
    }

    /// Optimizer steps taken so far.
    pub fn steps(&self) -> u64 {
        self.step
    }

    /// The input width, once built.
    pub fn input_dim(&self) -> Option<usize> {
        self.net.as_ref().map(Network::input_dim)
    }

    /// The number of outputs.
    pub fn output_dim(&self) -> usize {
        self.spec.layers().last().map_or(0, |l| l.units)
    }

    /// Trainable values, once built.
    pub fn parameter_count(&self) -> Option<usize> {
        self.net.as_ref().map(Network::parameter_count)
    }

    /// A one-line-per-layer description.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        let mut fan_in = self.input_dim();
        for (i, l) in self.spec.layers().iter().enumerate() {
            let params = fan_in.map_or("?".to_string(), |f| (f * l.units + l.units).to_string());
            s += &format!(
                "dense_{i}: {} units, {} ({params} parameters)\n",
                l.units,
                l.activation.name()
            );
            fan_in = Some(l.units);
        }
        s += &format!(
            "loss: {}, optimizer: {:?}",
            self.loss.name(),
            self.optimizer
        );
        s
    }

    /// Creates the weights for inputs of width `input_dim` (done by `fit` and friends on
    /// first use). Fails if the model was built for another width.
    pub fn build(&mut self, input_dim: usize) -> Result<()> {
        match &self.net {
            Some(net) if net.input_dim() == input_dim => Ok(()),
            Some(net) => Err(Error::Config(format!(
                "the model takes inputs of {} features, but the data has {input_dim} columns",
                net.input_dim()
            ))),
            None => {
                let net = Network::build(
                    &mut self.backend,
                    &self.spec,
                    input_dim,
                    self.optimizer,
                    &mut self.rng,
                )?;
                self.net = Some(net);
                self.last_good = LastGood::Current { step: self.step };
                Ok(())
            }
        }
    }

    /// Every layer's weights, read back from the backend.
    pub fn weights(&mut self) -> Result<Vec<LayerWeights>> {
        match &self.net {
            Some(net) => net.weights(&mut self.backend),
            None => Err(Error::Config(
                "the model has no weights yet: fit it or call build(input_dim) first".into(),
            )),
        }
    }

    /// Replaces every layer's weights (building the model from their shape if needed).
    pub fn set_weights(&mut self, weights: &[LayerWeights]) -> Result<()> {
        if let Some(first) = weights.first() {
            self.build(first.fan_in)?;
        }
        let net = self
            .net
            .as_mut()
            .ok_or_else(|| Error::Config("no weights given".into()))?;
        net.set_weights(&mut self.backend, weights)?;
        self.last_good = LastGood::Current { step: self.step };
        Ok(())
    }

    /// The input standardization, if any.
    pub fn standardizer(&self) -> Option<&Standardizer> {
        self.standardizer.as_ref()
    }

    /// Standardizes every input from now on (fit, evaluate, predict) and saves it with the
    /// model. Fit it on the training data only: [`Standardizer::fit`].
    pub fn set_standardizer(&mut self, s: Option<Standardizer>) {
        self.standardizer = s;
    }

    /// Epochs completed so far, across `fit` calls and checkpoints.
    pub fn epochs_done(&self) -> usize {
        self.epochs_done
    }

    /// `x` as the network sees it: standardized if the model has a standardizer.
    pub(crate) fn prepare<'a>(&self, x: &'a Matrix) -> Result<Cow<'a, Matrix>> {
        Ok(match &self.standardizer {
            Some(s) => Cow::Owned(s.apply(x)?),
            None => Cow::Borrowed(x),
        })
    }

    /// Everything needed to use this model later or resume its training.
    pub fn checkpoint(&mut self) -> Result<Checkpoint> {
        let net = self.net.as_ref().ok_or_else(|| {
            Error::Config(
                "the model has no weights yet: fit it or call build(input_dim) first".into(),
            )
        })?;
        Ok(Checkpoint {
            config: ModelConfig {
                format: FORMAT.into(),
                input_dim: net.input_dim(),
                layers: self
                    .spec
                    .layers()
                    .iter()
                    .map(|l| LayerConfig {
                        units: l.units,
                        activation: l.activation,
                    })
                    .collect(),
                loss: self.loss,
                optimizer: self.optimizer,
                metrics: self.metrics.clone(),
                seed: self.seed,
            },
            weights: finite_weights(net.weights(&mut self.backend)?)?,
            optimizer_state: net.optimizer_state(&mut self.backend)?,
            epoch: self.epochs_done,
            step: self.step,
            standardizer: self.standardizer.clone(),
        })
    }

    /// Saves a checkpoint to `path`, atomically.
    pub fn save(&mut self, path: &Path) -> Result<()> {
        self.checkpoint()?.save(path)
    }

    /// The model a checkpoint describes, on `backend`, ready to predict or to resume training.
    pub fn from_checkpoint(backend: B, ckpt: &Checkpoint) -> Result<Model<B>> {
        let c = &ckpt.config;
        let mut spec = Sequential::new();
        for l in &c.layers {
            spec = spec.add(crate::nn::Dense::new(l.units, l.activation));
        }
        let compile = Compile {
            loss: c.loss,
            optimizer: c.optimizer,
            metrics: c.metrics.clone(),
            seed: c.seed,
        };
        let mut model = spec.compile(backend, compile)?;
        model.build(c.input_dim)?;
        model.restore(ckpt)?;
        Ok(model)
    }

    /// Reads a checkpoint file into a model on `backend`.
    pub fn load(path: &Path, backend: B) -> Result<Model<B>> {
        Model::from_checkpoint(backend, &Checkpoint::load(path)?)
    }

    /// Loads a checkpoint's weights, optimizer state, step, epoch and standardizer into this
    /// model, whose architecture must match: otherwise an error names the first tensor that
    /// differs, with both shapes.
    pub fn restore(&mut self, ckpt: &Checkpoint) -> Result<()> {
        self.build(ckpt.config.input_dim).map_err(|_| {
            Error::Config(format!(
                "the checkpoint takes {} input features, this model {}",
                ckpt.config.input_dim,
                self.input_dim().unwrap_or(0)
            ))
        })?;
        let mut fan_in = ckpt.config.input_dim;
        for (i, (l, w)) in self.spec.layers().iter().zip(&ckpt.weights).enumerate() {
            if [w.fan_in, w.units] != [fan_in, l.units] {
                return Err(Error::Config(format!(
                    "architecture mismatch at tensor dense_{i}.weight: the checkpoint has [{}, {}], this model [{fan_in}, {}]",
                    w.fan_in, w.units, l.units
                )));
            }
            fan_in = l.units;
        }
        if ckpt.weights.len() != self.spec.layers().len() {
            return Err(Error::Config(format!(
                "architecture mismatch: the checkpoint has {} layers (tensor dense_{} {}), this model {}",
                ckpt.weights.len(),
                self.spec.layers().len().min(ckpt.weights.len()),
                if ckpt.weights.len() > self.spec.layers().len() { "is extra" } else { "is missing" },
                self.spec.layers().len()
            )));
        }
        if ckpt.config.loss != self.loss {
            return Err(Error::Config(format!(
                "the checkpoint was trained with {:?}, this model uses {:?}; resume with the same loss",
                ckpt.config.loss, self.loss
            )));
        }
        if std::mem::discriminant(&ckpt.config.optimizer) != std::mem::discriminant(&self.optimizer)
        {
            return Err(Error::Config(format!(
                "the checkpoint was trained with {:?}, this model uses {:?}; resume with the same optimizer",
                ckpt.config.optimizer, self.optimizer
            )));
        }
        let net = self.net.as_mut().expect("built above");
        net.set_weights(&mut self.backend, &ckpt.weights)?;
        net.set_optimizer_state(&mut self.backend, &ckpt.optimizer_state)?;
        self.optimizer = ckpt.config.optimizer;
        self.step = ckpt.step;
        self.last_good = LastGood::Current { step: self.step };
        self.epochs_done = ckpt.epoch;
        self.standardizer = ckpt.standardizer.clone();
        Ok(())
    }

    /// Checks `x` (and `y`, if given) fit this model; builds it on first use.
    pub(crate) fn check_data(
        &mut self,
        x: &Matrix,
        y: Option<&Matrix>,
        source: &str,
    ) -> Result<()> {
        if x.rows() == 0 {
            return Err(Error::Data {
                source_name: source.into(),
                detail: "no samples".into(),
            });
        }
        if let Some((r, c)) = x.first_non_finite() {
            return Err(Error::Data {
                source_name: source.into(),
                detail: format!(
                    "feature row {r}, column {c} is {}; features must be finite",
                    x.row(r)[c]
                ),
            });
        }
        if let Some(y) = y {
            if y.rows() != x.rows() {
                return Err(Error::Data {
                    source_name: source.into(),
                    detail: format!("{} feature rows but {} target rows", x.rows(), y.rows()),
                });
            }
            check_targets(
                y,
                self.head.task,
                self.output_dim(),
                &Origin::new(source, RowUnit::Row),
            )?;
        }
        self.build(x.cols())
    }

    /// The index of the buffers for batches of `rows`, created on first use.
    fn batch_index(&mut self, rows: usize, y_cols: usize) -> Result<usize> {
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
        let Model {
            backend: b,
            net,
            batches,
            head,
            plan,
            optimizer,
            step,
            ..
        } = self;
        let net = net.as_mut().expect("check_data builds the network");
        let batch = &mut batches[i];
        let acts = &mut batch.acts;
        let top = acts.a.len() - 1;
        net.forward(b, &batch.x, acts)?;
        // The loss's gradient goes where backward starts: dz of the top layer when the loss
        // reads the logits, or when the top layer is linear (then a = z, and dz = da would
        // only be a copy); its da otherwise.
        let onto_z = head.on_logits || net.top_activation() == Activation::Linear;
        if onto_z {
            b.loss(
                head.loss,
                &acts.z[top],
                &batch.y,
                &mut acts.dz[top],
                &mut batch.row_loss,
            )?;
        } else {
            b.loss(
                head.loss,
                &acts.a[top],
                &batch.y,
                &mut acts.da[top],
                &mut batch.row_loss,
            )?;
        }
        b.sum_into(&batch.row_loss, acc, LOSS_SLOT)?;
        let output = &acts.a[top];
        let probs = if head.output != Activation::Linear && plan.needs_probabilities() {
            b.activation(head.output, output, &mut batch.probs)?;
            &batch.probs
        } else {
            output
        };
        plan.record(b, output, probs, &batch.y, acc)?;
        if train {
            net.backward(b, &batch.x, acts, onto_z)?;
            *step += 1;
            let slots = GuardSlots::after(LOSS_SLOT, plan.slots());
            let guard = guard.then_some((&mut *acc, slots));
            net.update(b, *optimizer, *step, guard)?;
        }
        Ok(())
    }

    /// Takes the zeroed accumulator for training or evaluation (created on first use); give it
    /// back with [`Model::put_accumulator`].
    pub(crate) fn take_accumulator(&mut self, which: Phase) -> Result<B::Tensor> {
        let mut acc = match self.accumulators[which as usize].take() {
            Some(acc) => acc,
            None => self
                .backend
                .zeros(1, self.plan.slots() + GuardSlots::COUNT)?,
        };
        self.backend.fill(&mut acc, 0.0)?;
        Ok(acc)
    }

    /// Where a guarded training step keeps its books: after the metrics' slots.
    pub(crate) fn guard_slots(&self) -> GuardSlots {
        GuardSlots::after(LOSS_SLOT, self.plan.slots())
    }

    /// Goes back to the last good weights (see [`LastGood`]) after a divergence: the backup
    /// the guarded updates kept, or the weights as they were set if no update ran since.
    /// Returns the step they are from, which becomes the step count.
    pub(crate) fn roll_back(&mut self) -> Result<u64> {
        let step = match self.last_good {
            LastGood::Backup { step } => {
                let net = self.net.as_mut().expect("a model that trained is built");
                net.restore_backup(&mut self.backend)?;
                step
            }
            LastGood::Current { step } => step,
        };
        self.step = step;
        self.last_good = LastGood::Current { step };
        Ok(step)
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
        for (name, value) in self.plan.finish(acc, samples, self.output_dim()) {
            logs.push(format!("{prefix}{name}"), value);
        }
    }

    /// The mean loss and the metrics over `(x, y)`, in batches of `batch_size`.
    pub fn evaluate(&mut self, x: &Matrix, y: &Matrix, batch_size: usize) -> Result<Evaluation> {
        let mut logs = super::Logs::default();
        self.evaluate_into(x, y, batch_size, "", &mut logs)?;
        let mut it = logs.iter();
        let loss = it.next().map_or(f64::NAN, |(_, v)| v);
        Ok(Evaluation {
            loss,
            metrics: it.map(|(n, v)| (n.to_string(), v)).collect(),
        })
    }

    pub(crate) fn evaluate_into(
        &mut self,
        x: &Matrix,
        y: &Matrix,
        batch_size: usize,
        prefix: &str,
        logs: &mut super::Logs,
    ) -> Result<()> {
        super::check_batch_size(batch_size)?;
        let x = &*self.prepare(x)?;
        self.check_data(x, Some(y), "evaluation data")?;
        let mut acc = self.take_accumulator(Phase::Evaluate)?;
        let result = (|| {
            let order: Vec<usize> = (0..x.rows()).collect();
            for idx in order.chunks(batch_size) {
                let i = self.load_batch(x, Some(y), idx)?;
                self.step_batch(i, &mut acc, false, false)?;
            }
            self.backend.read(&acc)
        })();
        self.put_accumulator(Phase::Evaluate, acc);
        self.finish_logs(&result?, x.rows(), prefix, logs);
        Ok(())
    }

    /// The model's outputs for `x`: probabilities for a classifier (through softmax or
    /// sigmoid when it was trained from logits), values for a regressor. `[N, outputs]`.
    pub fn predict(&mut self, x: &Matrix, batch_size: usize) -> Result<Matrix> {
        super::check_batch_size(batch_size)?;
        let x = &*self.prepare(x)?;
        self.check_data(x, None, "prediction data")?;
        let mut out = Vec::with_capacity(x.rows() * self.output_dim());
        let order: Vec<usize> = (0..x.rows()).collect();
        for idx in order.chunks(batch_size) {
            let i = self.load_batch(x, None, idx)?;
            let Model {
                backend: b,
                net,
                batches,
                head,
                ..
            } = self;
            let net = net.as_ref().expect("check_data builds the network");
            let batch = &mut batches[i];
            net.forward(b, &batch.x, &mut batch.acts)?;
            let output = batch.acts.a.last().expect("a network has layers");
            if head.output == Activation::Linear {
                out.extend(b.read(output)?);
            } else {
                b.activation(head.output, output, &mut batch.probs)?;
                out.extend(b.read(&batch.probs)?);
            }
        }
        Matrix::new(x.rows(), self.output_dim(), out)
    }

    /// The predicted class of each row: the argmax for a multi-class model, `p > 0.5` for a
    /// model with one yes/no output.
    pub fn predict_classes(&mut self, x: &Matrix, batch_size: usize) -> Result<Vec<usize>> {
        let p = self.predict(x, batch_size)?;
        match (self.head.task, p.cols()) {
            (Task::Categorical | Task::SparseCategorical, _) => {
                Ok((0..p.rows()).map(|r| crate::backend::cpu::argmax(p.row(r))).collect())
            }
            (Task::Binary, 1) => Ok(p.data().iter().map(|&v| (v > 0.5) as usize).collect()),
            _ => Err(Error::Config(
                "predict_classes needs a classifier with one class per row; for several yes/no outputs, threshold \
                 predict()'s probabilities"
                    .into(),
            )),
        }
    }
}

/// `weights`, if every value is finite: a checkpoint of NaN or infinite weights would only
/// replace something usable with something that is not.
fn finite_weights(weights: Vec<LayerWeights>) -> Result<Vec<LayerWeights>> {
    for (i, w) in weights.iter().enumerate() {
        if let Some(v) = w.weight.iter().chain(&w.bias).find(|v| !v.is_finite()) {
            return Err(Error::Config(format!(
                "layer {i} holds a non-finite weight ({v}); a checkpoint of it would be unusable, so none was written"
            )));
        }
    }
    Ok(weights)
}

impl<B: Backend> ModelControl for Model<B> {
    fn stop_training(&mut self, reason: String) {
        self.stop_reason.get_or_insert(reason);
    }

    fn learning_rate(&self) -> f32 {
        self.optimizer.lr()
    }

    fn set_learning_rate(&mut self, lr: f32) {
        match &mut self.optimizer {
            Optimizer::Sgd { lr: l }
            | Optimizer::Momentum { lr: l, .. }
            | Optimizer::Adam { lr: l, .. } => *l = lr,
        }
    }

    fn get_weights(&mut self) -> Result<Vec<LayerWeights>> {
        self.weights()
    }

    fn set_weights(&mut self, weights: &[LayerWeights]) -> Result<()> {
        Model::set_weights(self, weights)
    }

    fn save_checkpoint(&mut self, path: &Path) -> Result<()> {
        self.save(path)
    }
}
