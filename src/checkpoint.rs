//! Checkpoints in safetensors: everything needed to use a model later or to resume training
//! exactly where it stopped.
//!
//! Tensors (all f32, little-endian):
//!
//! | name | shape | what |
//! | --- | --- | --- |
//! | `dense_{i}.weight` | `[fan_in, units]` | layer i's `W` (`z = x·W + b`) |
//! | `dense_{i}.bias` | `[units]` | layer i's `b` |
//! | `optimizer.dense_{i}.weight.{m,v}` / `.velocity` | like the weight | Adam's moments / momentum's velocity |
//! | `optimizer.dense_{i}.bias.{m,v}` / `.velocity` | like the bias | the same for the bias |
//! | `standardize.mean`, `standardize.std` | `[features]` | input standardization, if used |
//!
//! Metadata (strings): `wgtrain.config` (the model as JSON: input width, layers, loss,
//! optimizer with its learning rate, metrics, seed), `wgtrain.epoch` (epochs completed),
//! `wgtrain.step` (optimizer steps taken, Adam's t), and `wgtrain.rng` (the shuffle generator's
//! state: the seed, since epoch e's order is drawn from a generator seeded by (seed, e)).
//!
//! A PyTorch `nn.Linear` stores its weight `[out, in]`: `dense_{i}.weight` is its transpose
//! (`scripts/interop.py` does the mapping both ways).

use std::collections::HashMap;
use std::path::Path;

use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use serde::{Deserialize, Serialize};

use crate::backend::{Activation, Optimizer};
use crate::data::Standardizer;
use crate::error::{Error, Result};
use crate::fs::write_atomic;
use crate::nn::{LayerState, LayerWeights, LossFn};
use crate::train::Metric;

/// The format tag in `wgtrain.config`.
pub const FORMAT: &str = "wgtrain-checkpoint-1";

/// One layer of the architecture.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerConfig {
    /// Output width.
    pub units: usize,
    /// Activation (with its parameter).
    pub activation: Activation,
}

/// The model as JSON in the `wgtrain.config` metadata entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    /// [`FORMAT`].
    pub format: String,
    /// Input width.
    pub input_dim: usize,
    /// The layers, bottom first.
    pub layers: Vec<LayerConfig>,
    /// The loss.
    pub loss: LossFn,
    /// The optimizer, with the learning rate in force when saved.
    pub optimizer: Optimizer,
    /// The metrics.
    pub metrics: Vec<Metric>,
    /// The seed of the initial weights and the shuffles.
    pub seed: u64,
}

/// Everything a checkpoint holds, in host memory.
#[derive(Clone, Debug, PartialEq)]
pub struct Checkpoint {
    /// The architecture and training configuration.
    pub config: ModelConfig,
    /// Every layer's weights.
    pub weights: Vec<LayerWeights>,
    /// Every layer's optimizer state.
    pub optimizer_state: Vec<LayerState>,
    /// Epochs completed.
    pub epoch: usize,
    /// Optimizer steps taken.
    pub step: u64,
    /// Input standardization, if the model was trained with one.
    pub standardizer: Option<Standardizer>,
}

/// The names of an optimizer's state tensors, in the order the backend keeps them.
pub fn state_names(opt: Optimizer) -> &'static [&'static str] {
    match opt {
        Optimizer::Sgd { .. } => &[],
        Optimizer::Momentum { .. } => &["velocity"],
        Optimizer::Adam { .. } => &["m", "v"],
    }
}

fn le_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

impl Checkpoint {
    /// The file's bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
        let names = state_names(self.config.optimizer);
        for (i, (w, s)) in self.weights.iter().zip(&self.optimizer_state).enumerate() {
            tensors.push((
                format!("dense_{i}.weight"),
                vec![w.fan_in, w.units],
                le_bytes(&w.weight),
            ));
            tensors.push((format!("dense_{i}.bias"), vec![w.units], le_bytes(&w.bias)));
            for (name, values) in names.iter().zip(&s.weight) {
                tensors.push((
                    format!("optimizer.dense_{i}.weight.{name}"),
                    vec![w.fan_in, w.units],
                    le_bytes(values),
                ));
            }
            for (name, values) in names.iter().zip(&s.bias) {
                tensors.push((
                    format!("optimizer.dense_{i}.bias.{name}"),
                    vec![w.units],
                    le_bytes(values),
                ));
            }
        }
        if let Some(st) = &self.standardizer {
            tensors.push((
                "standardize.mean".into(),
                vec![st.mean.len()],
                le_bytes(&st.mean),
            ));
            tensors.push((
                "standardize.std".into(),
                vec![st.std.len()],
                le_bytes(&st.std),
            ));
        }
        let views = tensors
            .iter()
            .map(|(name, shape, bytes)| {
                TensorView::new(Dtype::F32, shape.clone(), bytes)
                    .map(|v| (name.clone(), v))
                    .map_err(|e| Error::Config(format!("tensor {name}: {e}")))
            })
            .collect::<Result<Vec<_>>>()?;
        let config =
            serde_json::to_string(&self.config).map_err(|e| Error::Config(e.to_string()))?;
        let metadata = HashMap::from([
            ("wgtrain.config".to_string(), config),
            ("wgtrain.epoch".to_string(), self.epoch.to_string()),
            ("wgtrain.step".to_string(), self.step.to_string()),
            (
                "wgtrain.rng".to_string(),
                format!("seed={} per-epoch", self.config.seed),
            ),
        ]);
        safetensors::serialize(views, Some(metadata))
            .map_err(|e| Error::Config(format!("serializing the checkpoint: {e}")))
    }

    /// Writes the checkpoint atomically: see [`crate::fs::write_atomic`].
    pub fn save(&self, path: &Path) -> Result<()> {
        write_atomic(path, &self.to_bytes()?)
    }

    /// Reads a checkpoint file.
    pub fn load(path: &Path) -> Result<Checkpoint> {
        let bytes = std::fs::read(path).map_err(|source| Error::Io {
            path: path.display().to_string(),
            source,
        })?;
        Checkpoint::from_bytes(&bytes, &path.display().to_string())
    }

    /// Parses a checkpoint; `source` names it in errors.
    pub fn from_bytes(bytes: &[u8], source: &str) -> Result<Checkpoint> {
        let err = |detail: String| Error::Data {
            source_name: source.to_string(),
            detail,
        };
        let st = SafeTensors::deserialize(bytes).map_err(|e| {
            err(format!(
                "not a readable safetensors checkpoint (truncated or corrupted?): {e}"
            ))
        })?;
        let (_, meta) = SafeTensors::read_metadata(bytes)
            .map_err(|e| err(format!("unreadable header: {e}")))?;
        let meta = meta.metadata().clone().unwrap_or_default();
        let get = |key: &str| {
            meta.get(key).ok_or_else(|| {
                err(format!("no `{key}` metadata: this safetensors file was not written by wgtrain (see scripts/interop.py to convert one)"))
            })
        };
        let config: ModelConfig = serde_json::from_str(get("wgtrain.config")?)
            .map_err(|e| err(format!("the model config is not valid: {e}")))?;
        if config.format != FORMAT {
            return Err(err(format!(
                "format `{}`, this wgtrain reads `{FORMAT}`",
                config.format
            )));
        }
        let number = |key: &str| -> Result<u64> {
            get(key)?
                .parse()
                .map_err(|_| err(format!("`{key}` is not a number")))
        };
        let (epoch, step) = (number("wgtrain.epoch")? as usize, number("wgtrain.step")?);

        let tensor = |name: &str, shape: &[usize]| -> Result<Vec<f32>> {
            let t = st
                .tensor(name)
                .map_err(|_| err(format!("missing tensor `{name}`")))?;
            if t.dtype() != Dtype::F32 {
                return Err(err(format!(
                    "tensor `{name}` is {:?}, expected F32",
                    t.dtype()
                )));
            }
            if t.shape() != shape {
                return Err(err(format!(
                    "tensor `{name}` has shape {:?}, the config says {shape:?}",
                    t.shape()
                )));
            }
            Ok(t.data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect())
        };
        let names = state_names(config.optimizer);
        let mut weights = Vec::new();
        let mut optimizer_state = Vec::new();
        let mut fan_in = config.input_dim;
        for (i, l) in config.layers.iter().enumerate() {
            let w_shape = [fan_in, l.units];
            weights.push(LayerWeights {
                fan_in,
                units: l.units,
                weight: tensor(&format!("dense_{i}.weight"), &w_shape)?,
                bias: tensor(&format!("dense_{i}.bias"), &[l.units])?,
            });
            optimizer_state.push(LayerState {
                weight: names
                    .iter()
                    .map(|n| tensor(&format!("optimizer.dense_{i}.weight.{n}"), &w_shape))
                    .collect::<Result<_>>()?,
                bias: names
                    .iter()
                    .map(|n| tensor(&format!("optimizer.dense_{i}.bias.{n}"), &[l.units]))
                    .collect::<Result<_>>()?,
            });
            fan_in = l.units;
        }
        let standardizer = if st.names().contains(&"standardize.mean") {
            let n = config.input_dim;
            Some(Standardizer {
                mean: tensor("standardize.mean", &[n])?,
                std: tensor("standardize.std", &[n])?,
            })
        } else {
            None
        };
        let values = weights
            .iter()
            .flat_map(|w| w.weight.iter().chain(&w.bias))
            .chain(
                optimizer_state
                    .iter()
                    .flat_map(|s| s.weight.iter().chain(&s.bias).flatten()),
            )
            .chain(
                standardizer
                    .iter()
                    .flat_map(|s| s.mean.iter().chain(&s.std)),
            );
        if let Some(bad) = values.into_iter().find(|v| !v.is_finite()) {
            return Err(err(format!(
                "a tensor holds a non-finite value ({bad}); the file is corrupted"
            )));
        }
        if let Some(s) = standardizer
            .as_ref()
            .and_then(|s| s.std.iter().find(|&&v| v <= 0.0))
        {
            return Err(err(format!(
                "standardize.std holds {s}; a deviation must be positive"
            )));
        }
        Ok(Checkpoint {
            config,
            weights,
            optimizer_state,
            epoch,
            step,
            standardizer,
        })
    }
}
