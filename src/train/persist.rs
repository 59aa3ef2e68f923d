//! A model to and from a checkpoint: everything needed to use it later or to resume its
//! training exactly.

use std::path::Path;

use super::model::{Compile, Model};
use crate::backend::Backend;
use crate::checkpoint::{Checkpoint, ModelConfig, FORMAT};
use crate::error::{Error, Result};
use crate::nn::LayerWeights;

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
                layers: self.spec.layers().to_vec(),
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
        let spec = c.sequential();
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
        self.check_architecture(&ckpt.config)?;
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

impl<B: Backend> Model<B> {
    /// Whether a checkpoint of `config` describes this model's layers: the same kinds, in the
    /// same order, with the same configs and tensor shapes. Otherwise an error names the
    /// first layer or tensor that differs.
    fn check_architecture(&self, config: &ModelConfig) -> Result<()> {
        let mine = ModelConfig {
            layers: self.spec.layers().to_vec(),
            ..config.clone()
        };
        let (theirs, ours) = (config.named_layers(), mine.named_layers());
        for (i, ((l, fan_in, name), (m, my_fan_in, my_name))) in
            theirs.iter().zip(&ours).enumerate()
        {
            if name != my_name {
                return Err(Error::Config(format!(
                    "architecture mismatch at layer {i}: the checkpoint has {name} where this model has {my_name}"
                )));
            }
            let their_params = l.params(*fan_in);
            for (p, q) in their_params.iter().zip(m.params(*my_fan_in)) {
                if p.shape != q.shape {
                    return Err(Error::Config(format!(
                        "architecture mismatch at tensor {name}.{}: the checkpoint has {:?}, this model {:?}",
                        p.name,
                        p.shape,
                        q.shape
                    )));
                }
            }
            // The configs, as saved (initializers are not).
            let json = |l: &crate::nn::Layer| serde_json::to_string(l).unwrap_or_default();
            if json(l) != json(m) {
                let (a, b) = if l.describe() != m.describe() {
                    (l.describe(), m.describe())
                } else {
                    (json(l), json(m))
                };
                return Err(Error::Config(format!(
                    "architecture mismatch at layer {i} ({name}): the checkpoint's is {a}, this model's {b}"
                )));
            }
        }
        if theirs.len() != ours.len() {
            let (more, n) = if theirs.len() > ours.len() {
                ("the checkpoint", theirs.len())
            } else {
                ("this model", ours.len())
            };
            let first = theirs.len().min(ours.len());
            let extra = if theirs.len() > ours.len() {
                &theirs[first].2
            } else {
                &ours[first].2
            };
            return Err(Error::Config(format!(
                "architecture mismatch: the checkpoint has {} layers, this model {}; {more} has {n}, from {extra} on",
                theirs.len(),
                ours.len()
            )));
        }
        Ok(())
    }
}

/// `weights`, if every value is finite: a checkpoint of NaN or infinite weights would only
/// replace something usable with something that is not.
fn finite_weights(weights: Vec<LayerWeights>) -> Result<Vec<LayerWeights>> {
    for (i, w) in weights.iter().enumerate() {
        if let Some(v) = w.values().find(|v| !v.is_finite()) {
            return Err(Error::Config(format!(
                "layer {i} holds a non-finite weight ({v}); a checkpoint of it would be unusable, so none was written"
            )));
        }
    }
    Ok(weights)
}
