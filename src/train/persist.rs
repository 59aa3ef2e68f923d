//! A model to and from a checkpoint: everything needed to use it later or to resume its
//! training exactly.

use std::path::Path;

use super::model::{Compile, Model};
use crate::backend::Backend;
use crate::checkpoint::{Checkpoint, LayerConfig, ModelConfig, FORMAT};
use crate::error::{Error, Result};
use crate::nn::{LayerWeights, Sequential};

impl<B: Backend> Model<B> {
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
                threshold: self.threshold,
                seed: self.seed,
            },
            weights: finite_weights(net.weights(&mut self.backend)?)?,
            optimizer_state: net.optimizer_state(&mut self.backend)?,
            epoch: self.epochs_done,
            step: self.step,
            standardizer: self.standardizer.clone(),
            run: self.run.clone(),
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
            threshold: c.threshold,
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
            if let Some(c) = ckpt
                .config
                .layers
                .get(i)
                .filter(|c| c.activation != l.activation)
            {
                return Err(Error::Config(format!(
                    "architecture mismatch at layer {i}: the checkpoint's activation is {}, this model's {}",
                    c.activation.name(),
                    l.activation.name()
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
        self.mark_good();
        self.epochs_done = ckpt.epoch;
        self.standardizer = ckpt.standardizer.clone();
        self.run = ckpt.run.clone();
        self.resumed = ckpt.run.clone();
        Ok(())
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
