//! A compiled model: a network on a backend, with its loss, optimizer and metrics, and the
//! step that trains it. The step is written once for every backend; on the GPU it records its
//! dispatches and the fit loop submits them once per step.

use std::borrow::Cow;
use std::path::Path;

use rand::rngs::StdRng;
use rand::SeedableRng;

use super::callbacks::ModelControl;
use super::metrics::{Metric, MetricPlan, DEFAULT_THRESHOLD};
use super::resident::{Source, StepKind};
pub(crate) use super::step::{Batch, LastGood, Phase};
use super::targets::check_targets;
use crate::backend::{Activation, Backend, Optimizer};
use crate::checkpoint::{DataRecord, RunRecord};
use crate::data::{Matrix, Origin, RowUnit, Standardizer};
use crate::error::{Error, Result};
use crate::nn::{Head, LayerWeights, LossFn, Mode, Network, Sequential, Summary, Task};

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
    /// The decision threshold of yes/no outputs: the binary metrics that name none of their
    /// own count a prediction above it as a yes (default [`DEFAULT_THRESHOLD`], 0.5).
    pub threshold: f32,
}

impl Compile {
    /// A loss and an optimizer, no metrics, seed 0.
    pub fn new(loss: LossFn, optimizer: Optimizer) -> Compile {
        Compile {
            loss,
            optimizer,
            metrics: Vec::new(),
            seed: 0,
            threshold: DEFAULT_THRESHOLD,
        }
    }

    /// The same with these metrics.
    pub fn metrics(mut self, metrics: &[Metric]) -> Compile {
        self.metrics = metrics.to_vec();
        self
    }

    /// The same with this decision threshold for yes/no outputs (see [`Compile::threshold`]).
    pub fn threshold(mut self, threshold: f32) -> Compile {
        self.threshold = threshold;
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
    pub fn compile<B: Backend>(mut self, backend: B, config: Compile) -> Result<Model<B>> {
        self.validate()?;
        self.bind()?;
        config.optimizer.validate(1)?;
        let units = self
            .output_units()
            .expect("validate checked there is a Dense layer");
        let (head, warning) = config.loss.head(self.output_activation(), units)?;
        let plan = MetricPlan::new(&config.metrics, head.task, config.threshold, units)?;
        Ok(Model {
            backend,
            spec: self,
            loss: config.loss,
            head,
            optimizer: config.optimizer,
            plan,
            metrics: config.metrics,
            threshold: config.threshold,
            seed: config.seed,
            rng: StdRng::seed_from_u64(config.seed),
            standardizer: None,
            epochs_done: 0,
            net: None,
            batches: Vec::new(),
            host_x: Vec::new(),
            host_y: Vec::new(),
            plans: Default::default(),
            accumulators: [None, None],
            step: 0,
            last_good: LastGood { step: 0, swaps: 0 },
            warnings: warning.into_iter().collect(),
            stop_reason: None,
            run: None,
            resumed: None,
            data_split: None,
            dist: None,
        })
    }
}

/// A compiled model: see [`Sequential::compile`].
#[derive(Debug)]
pub struct Model<B: Backend> {
    pub(crate) backend: B,
    pub(crate) spec: Sequential,
    pub(crate) loss: LossFn,
    pub(crate) head: Head,
    pub(crate) optimizer: Optimizer,
    pub(crate) plan: MetricPlan,
    pub(crate) metrics: Vec<Metric>,
    pub(crate) threshold: f32,
    /// Seeds the initial weights (through `rng`) and each epoch's shuffle.
    pub(crate) seed: u64,
    /// Draws the initial weights.
    pub(crate) rng: StdRng,
    /// Applied to every input before it reaches the network.
    pub(crate) standardizer: Option<Standardizer>,
    /// Epochs completed, across `fit` calls and checkpoints.
    pub(crate) epochs_done: usize,
    pub(crate) net: Option<Network<B::Tensor>>,
    pub(crate) batches: Vec<Batch<B::Tensor>>,
    pub(crate) host_x: Vec<f32>,
    pub(crate) host_y: Vec<f32>,
    /// The recorded steps and the data kept on the backend.
    pub(crate) plans: super::resident::Plans<B>,
    /// The loss and metric sums of training and of evaluation, kept between calls.
    pub(crate) accumulators: [Option<B::Tensor>; 2],
    pub(crate) step: u64,
    /// The weights a diverged run goes back to.
    pub(crate) last_good: LastGood,
    pub(crate) warnings: Vec<String>,
    pub(crate) stop_reason: Option<String>,
    /// What decided the split and batch order of the last `fit` (saved in checkpoints).
    pub(crate) run: Option<RunRecord>,
    /// The record of the checkpoint this model was restored from: a `fit` that continues it
    /// must not change it.
    pub(crate) resumed: Option<RunRecord>,
    /// The test split made before `fit`, and the data it split, as the caller described them.
    pub(crate) data_split: Option<(f32, DataRecord)>,
    /// Its part in a data-parallel run, if it has one.
    pub(crate) dist: Option<super::distributed::Dist>,
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
        self.spec.output_units().unwrap_or(0)
    }

    /// Trainable values, once built.
    pub fn parameter_count(&self) -> Option<usize> {
        self.net.as_ref().map(Network::parameter_count)
    }

    /// The layers with their output shapes and parameter counts, as Keras' `model.summary()`
    /// (its [`std::fmt::Display`] prints the table). Needs the input width: `None` before the
    /// model is built.
    pub fn summary(&self) -> Option<Summary> {
        self.input_dim().map(|d| Summary::of(&self.spec, d))
    }

    /// The layers, bottom first.
    pub fn layers(&self) -> &[crate::nn::Layer] {
        self.spec.layers()
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
                self.check_memory(input_dim, 0)?;
                let net = Network::build(
                    &mut self.backend,
                    &self.spec,
                    input_dim,
                    self.optimizer,
                    &mut self.rng,
                )?;
                self.net = Some(net);
                self.mark_good();
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
        if let Some(width) = input_width_of(&self.spec, weights) {
            self.build(width)?;
        }
        let net = self
            .net
            .as_mut()
            .ok_or_else(|| Error::Config("no weights given".into()))?;
        net.set_weights(&mut self.backend, weights)?;
        self.mark_good();
        Ok(())
    }

    /// The input standardization, if any.
    pub fn standardizer(&self) -> Option<&Standardizer> {
        self.standardizer.as_ref()
    }

    /// Standardizes every input from now on (fit, evaluate, predict) and saves it with the
    /// model. Fit it on the training data only: [`Standardizer::fit`].
    pub fn set_standardizer(&mut self, s: Option<Standardizer>) {
        if s != self.standardizer {
            // The data kept on the backend was standardized by the old one.
            self.drop_resident();
        }
        self.standardizer = s;
    }

    /// Says that the data `fit` will get is what is left of `source` after holding out
    /// `test_split` of it for testing: saved in checkpoints, so that a resume that splits
    /// other data, or splits it otherwise, can be refused.
    pub fn set_data_split(&mut self, test_split: f32, source: DataRecord) {
        self.data_split = Some((test_split, source));
    }

    /// What decided the split and the batch order of the last `fit`, or of the checkpoint
    /// this model was restored from.
    pub fn run_record(&self) -> Option<&RunRecord> {
        self.run.as_ref()
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
        self.check_data(x, Some(y), "evaluation data")?;
        let kind = StepKind::Evaluate;
        let resident = self.make_resident(kind, x, Some(y), true)?;
        let host = if resident {
            None
        } else {
            Some(self.prepare(x)?)
        };
        let mut acc = self.take_accumulator(Phase::Evaluate)?;
        let result = (|| {
            let order: Vec<usize> = (0..x.rows()).collect();
            self.set_order(kind, &order)?;
            self.backend.fill(&mut acc, 0.0)?;
            for (s, idx) in order.chunks(batch_size).enumerate() {
                let source = match &host {
                    Some(hx) => Source::Host(hx, Some(y), idx),
                    None => Source::Resident,
                };
                self.run_step(
                    kind,
                    source,
                    s * batch_size,
                    idx.len(),
                    Some(&mut acc),
                    false,
                )?;
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
        self.check_data(x, None, "prediction data")?;
        let kind = StepKind::Predict;
        let resident = self.make_resident(kind, x, None, true)?;
        let host = if resident {
            None
        } else {
            Some(self.prepare(x)?)
        };
        let mut out = Vec::with_capacity(x.rows() * self.output_dim());
        let order: Vec<usize> = (0..x.rows()).collect();
        self.set_order(kind, &order)?;
        for (s, idx) in order.chunks(batch_size).enumerate() {
            let source = match &host {
                Some(hx) => Source::Host(hx, None, idx),
                None => Source::Resident,
            };
            let i = self.run_step(kind, source, s * batch_size, idx.len(), None, false)?;
            let Model {
                backend: b,
                net,
                batches,
                head,
                ..
            } = self;
            let batch = &batches[i];
            if head.output == Activation::Linear {
                let net = net.as_ref().expect("check_data builds the network");
                out.extend(b.read(net.output(&batch.x, &batch.acts, Mode::Infer))?);
            } else {
                out.extend(b.read(&batch.probs)?);
            }
        }
        Matrix::new(x.rows(), self.output_dim(), out)
    }

    /// The forward pass of a loaded batch for `predict`, and the output activation into its
    /// `probs` where the loss applied it.
    pub(crate) fn predict_batch(&mut self, i: usize) -> Result<()> {
        let Model {
            backend: b,
            net,
            batches,
            head,
            ..
        } = self;
        let net = net.as_ref().expect("check_data builds the network");
        let batch = &mut batches[i];
        net.forward(b, &batch.x, &mut batch.acts, Mode::Infer)?;
        if head.output != Activation::Linear {
            let output = net.output(&batch.x, &batch.acts, Mode::Infer);
            b.activation(head.output, output, &mut batch.probs)?;
        }
        Ok(())
    }

    /// The predicted class of each row: the argmax for a multi-class model, `p > 0.5` for a
    /// model with one yes/no output.
    pub fn predict_classes(&mut self, x: &Matrix, batch_size: usize) -> Result<Vec<usize>> {
        let p = self.predict(x, batch_size)?;
        match (self.head.task, p.cols()) {
            (Task::Categorical | Task::SparseCategorical, _) => {
                Ok((0..p.rows()).map(|r| crate::backend::reference::argmax(p.row(r))).collect())
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
        // Every rank of a data-parallel run holds the same weights: rank 0 alone writes.
        if self.rank() > 0 {
            return Ok(());
        }
        self.save(path)
    }

    fn keep_weights(&mut self) -> Result<()> {
        match self.net.as_mut() {
            Some(net) => net.keep(&mut self.backend),
            None => Err(Error::Config(
                "the model has no weights yet: fit it or call build(input_dim) first".into(),
            )),
        }
    }

    fn restore_kept_weights(&mut self) -> Result<bool> {
        let Some(net) = self.net.as_mut() else {
            return Ok(false);
        };
        let restored = net.restore_kept(&mut self.backend)?;
        if restored {
            // The weights in use are the ones a divergence goes back to from now on.
            self.mark_good();
        }
        Ok(restored)
    }
}

/// The input width `weights` were made for: the rows of the first Dense or Maxout weight, or
/// the width of a per-unit tensor of a layer below it (every layer below the first Dense keeps
/// the input's width).
fn input_width_of(spec: &Sequential, weights: &[LayerWeights]) -> Option<usize> {
    spec.layers()
        .iter()
        .zip(weights)
        .find_map(|(l, w)| match (l, w.params.first()) {
            // Convolutions and pooling know their images.
            _ if l.input_image().is_some() => l.input_image().map(|s| s.iter().product()),
            (crate::nn::Layer::Dense(_) | crate::nn::Layer::Maxout(_), Some(t)) => Some(t.shape[0]),
            (_, Some(t)) => Some(t.shape[1]),
            _ => None,
        })
}
