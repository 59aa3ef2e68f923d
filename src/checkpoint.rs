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
//! `wgtrain.step` (optimizer steps taken, Adam's t), `wgtrain.rng` (the shuffle generator's
//! state: the seed, since epoch e's order is drawn from a generator seeded by (seed, e)), and
//! `wgtrain.run` (a [`RunRecord`] as JSON: what decided the split and the batch order, which a
//! resume must not change).
//!
//! A PyTorch `nn.Linear` stores its weight `[out, in]`: `dense_{i}.weight` is its transpose
//! (`scripts/interop.py` does the mapping both ways).

use std::collections::HashMap;
use std::path::Path;

use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use serde::{Deserialize, Serialize};

use crate::backend::{Activation, Optimizer};
use crate::data::{Matrix, Standardizer};
use crate::error::{Error, Result};
use crate::fs::write_atomic;
use crate::metrics::Metric;
use crate::nn::{LayerState, LayerWeights, LossFn};

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
    /// The decision threshold of yes/no outputs for metrics that name none (0.5 in
    /// checkpoints that do not say).
    #[serde(default = "default_threshold")]
    pub threshold: f32,
    /// The seed of the initial weights and the shuffles.
    pub seed: u64,
}

fn default_threshold() -> f32 {
    crate::metrics::DEFAULT_THRESHOLD
}

impl ModelConfig {
    /// Checks that this config describes a model wgtrain can build: at least one layer, every
    /// width at least 1, softmax only on top, a loss that can train the last layer, valid
    /// optimizer hyper-parameters, metrics that fit the loss. What is wrong is said in terms
    /// of the file (a checkpoint that fails this was edited, or not written by wgtrain).
    pub fn validate(&self) -> std::result::Result<(), String> {
        if self.input_dim == 0 {
            return Err("the input width is 0".into());
        }
        let Some(last) = self.layers.last() else {
            return Err("it has no layers".into());
        };
        if let Some(i) = self.layers.iter().position(|l| l.units == 0) {
            return Err(format!("layer {i} has 0 units"));
        }
        if let Some(i) = self.layers[..self.layers.len() - 1]
            .iter()
            .position(|l| l.activation.is_row_wise())
        {
            return Err(format!("layer {i} is a hidden softmax layer"));
        }
        let (head, _) = self.loss.head(last.activation, last.units).map_err(|_| {
            format!(
                "its loss {} cannot train its last layer ({} units, {})",
                self.loss.name(),
                last.units,
                last.activation.name()
            )
        })?;
        self.optimizer
            .validate(1)
            .map_err(|e| format!("its optimizer is not valid ({e})"))?;
        crate::metrics::MetricPlan::new(&self.metrics, head.task, self.threshold, last.units)
            .map_err(|_| format!("its metrics do not fit its loss {}", self.loss.name()))?;
        Ok(())
    }
}

/// Rows of data, told apart by a checksum: a resume on other data (other rows, another order)
/// would mix rows the run tested on into its training.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataRecord {
    /// Where they came from, for messages.
    pub source: String,
    /// Rows.
    pub rows: usize,
    /// Features per row.
    pub features: usize,
    /// CRC-32 of the features and then the targets, as little-endian f32, row-major.
    pub crc32: u32,
}

impl DataRecord {
    /// The record of features `x` and targets `y` from `source`.
    pub fn of(x: &Matrix, y: &Matrix, source: &str) -> DataRecord {
        let mut h = crc32fast::Hasher::new();
        for m in [x, y] {
            for v in m.data() {
                h.update(&v.to_le_bytes());
            }
        }
        DataRecord {
            source: source.to_string(),
            rows: x.rows(),
            features: x.cols(),
            crc32: h.finalize(),
        }
    }

    /// Whether both are the same rows (the source's name aside).
    pub fn same_rows(&self, other: &DataRecord) -> bool {
        (self.rows, self.features, self.crc32) == (other.rows, other.features, other.crc32)
    }
}

impl std::fmt::Display for DataRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} rows of {} features of {} (CRC-32 {:08x})",
            self.rows, self.features, self.source, self.crc32
        )
    }
}

/// What decided a run's split and the order of its batches: a resume that changes any of it
/// would not continue the run it claims to (a new seed redraws the split, so rows the model
/// trained on become test rows).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// The seed of the weights and the shuffles.
    pub seed: u64,
    /// Samples per step.
    pub batch_size: usize,
    /// The last fraction `fit` held out for validation.
    pub validation_split: f32,
    /// Whether each epoch was shuffled.
    pub shuffle: bool,
    /// The rows `fit` was given (before its validation split).
    pub train: DataRecord,
    /// The fraction held out for testing before `fit`, by whoever split the data (the command
    /// line's `--test-split`), if it was split so.
    pub test_split: Option<f32>,
    /// The data that was split, if it was split before `fit`.
    pub source: Option<DataRecord>,
}

impl RunRecord {
    /// The record of a `fit` with this seed, batch size, validation split and shuffling on
    /// features `x` and targets `y` (before its validation split), which are what is left of
    /// the data in `split` after its test split, if they were split so.
    pub fn new(
        seed: u64,
        batch_size: usize,
        validation_split: f32,
        shuffle: bool,
        x: &Matrix,
        y: &Matrix,
        split: Option<&(f32, DataRecord)>,
    ) -> RunRecord {
        RunRecord {
            seed,
            batch_size,
            validation_split,
            shuffle,
            train: DataRecord::of(x, y, "training data"),
            test_split: split.map(|(t, _)| *t),
            source: split.map(|(_, d)| d.clone()),
        }
    }

    /// What differs between this record and `now`'s, as (field, then, now), in the order a
    /// person would look: seed, splits, batch size, shuffling, data.
    pub fn differences(&self, now: &RunRecord) -> Vec<(&'static str, String, String)> {
        let mut out = Vec::new();
        let mut check = |field: &'static str, a: String, b: String| {
            if a != b {
                out.push((field, a, b));
            }
        };
        check("seed", self.seed.to_string(), now.seed.to_string());
        let split = |s: Option<f32>| s.map_or("none".to_string(), |v| v.to_string());
        check("test_split", split(self.test_split), split(now.test_split));
        check(
            "validation_split",
            self.validation_split.to_string(),
            now.validation_split.to_string(),
        );
        check(
            "batch_size",
            self.batch_size.to_string(),
            now.batch_size.to_string(),
        );
        check("shuffle", self.shuffle.to_string(), now.shuffle.to_string());
        match (&self.source, &now.source) {
            (Some(a), Some(b)) if !a.same_rows(b) => {
                out.push(("data", a.to_string(), b.to_string()))
            }
            _ if !self.train.same_rows(&now.train) => {
                out.push(("data", self.train.to_string(), now.train.to_string()))
            }
            _ => {}
        }
        out
    }
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
    /// What decided the split and the batch order, if the model was trained by `fit` (older
    /// checkpoints have none).
    pub run: Option<RunRecord>,
}

/// Why a tensor could not be read by [`read_f32`].
pub(crate) enum TensorProblem {
    /// No tensor of that name.
    Missing,
    /// Not float32.
    Dtype(Dtype),
    /// Another shape than the one expected: this one.
    Shape(Vec<usize>),
}

/// The values of tensor `name` of `st`, float32 little-endian of shape `shape`.
pub(crate) fn read_f32(
    st: &SafeTensors<'_>,
    name: &str,
    shape: &[usize],
) -> std::result::Result<Vec<f32>, TensorProblem> {
    let t = st.tensor(name).map_err(|_| TensorProblem::Missing)?;
    if t.dtype() != Dtype::F32 {
        return Err(TensorProblem::Dtype(t.dtype()));
    }
    if t.shape() != shape {
        return Err(TensorProblem::Shape(t.shape().to_vec()));
    }
    Ok(t.data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect())
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
        let mut metadata = HashMap::from([
            ("wgtrain.config".to_string(), config),
            ("wgtrain.epoch".to_string(), self.epoch.to_string()),
            ("wgtrain.step".to_string(), self.step.to_string()),
            (
                "wgtrain.rng".to_string(),
                format!("seed={} per-epoch", self.config.seed),
            ),
        ]);
        if let Some(run) = &self.run {
            let json = serde_json::to_string(run).map_err(|e| Error::Config(e.to_string()))?;
            metadata.insert("wgtrain.run".to_string(), json);
        }
        safetensors::serialize(views, Some(metadata))
            .map_err(|e| Error::Config(format!("serializing the checkpoint: {e}")))
    }

    /// Writes the checkpoint atomically: see [`crate::fs::write_atomic`].
    pub fn save(&self, path: &Path) -> Result<()> {
        write_atomic(path, &self.to_bytes()?)
    }

    /// Reads a checkpoint file.
    pub fn load(path: &Path) -> Result<Checkpoint> {
        Checkpoint::load_with(path, None)
    }

    /// Reads a checkpoint file, or, given the activations it does not record, a PyTorch
    /// state_dict of Linear layers (see [`crate::torch`]).
    pub fn load_with(path: &Path, torch: Option<crate::torch::TorchLayout>) -> Result<Checkpoint> {
        let bytes = crate::fs::read_input(path)?;
        Checkpoint::parse(&bytes, &path.display().to_string(), torch)
    }

    /// Parses a checkpoint; `source` names it in errors.
    pub fn from_bytes(bytes: &[u8], source: &str) -> Result<Checkpoint> {
        Checkpoint::parse(bytes, source, None)
    }

    fn parse(
        bytes: &[u8],
        source: &str,
        torch: Option<crate::torch::TorchLayout>,
    ) -> Result<Checkpoint> {
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
        if crate::torch::is_state_dict(&st, meta.contains_key("wgtrain.config")) {
            return match torch {
                Some(layout) => crate::torch::from_state_dict(&st, source, layout),
                None => Err(err(
                    "a PyTorch state_dict (tensors 0.weight, 0.bias, ...), which does not record its activations; \
                     `wgtrain predict --model FILE --activation relu --output-activation softmax` reads it (name yours)"
                        .into(),
                )),
            };
        }
        let get = |key: &str| {
            meta.get(key).ok_or_else(|| {
                err(format!("no `{key}` metadata: this safetensors file was not written by wgtrain (see scripts/interop.py to convert one)"))
            })
        };
        let mut config: ModelConfig = serde_json::from_str(get("wgtrain.config")?)
            .map_err(|e| err(format!("the model config is not valid: {e}")))?;
        // Checkpoints before sparse_top_k_categorical_accuracy had its own name stored it as
        // top_k_categorical_accuracy, whatever the targets.
        if config.loss.task() == crate::nn::Task::SparseCategorical {
            for m in &mut config.metrics {
                if let Metric::TopKCategoricalAccuracy { k } = *m {
                    *m = Metric::SparseTopKCategoricalAccuracy { k };
                }
            }
        }
        if config.format != FORMAT {
            return Err(err(format!(
                "format `{}`, this wgtrain reads `{FORMAT}`",
                crate::error::quote(&config.format)
            )));
        }
        config.validate().map_err(|why| {
            err(format!(
                "the model config is not valid: {why}. The file was edited, or not written by wgtrain"
            ))
        })?;
        let number = |key: &str| -> Result<u64> {
            get(key)?
                .parse()
                .map_err(|_| err(format!("`{key}` is not a number")))
        };
        let (epoch, step) = (number("wgtrain.epoch")? as usize, number("wgtrain.step")?);

        let tensor = |name: &str, shape: &[usize]| -> Result<Vec<f32>> {
            read_f32(&st, name, shape).map_err(|problem| {
                err(match problem {
                    TensorProblem::Missing => format!("missing tensor `{name}`"),
                    TensorProblem::Dtype(d) => format!("tensor `{name}` is {d:?}, expected F32"),
                    TensorProblem::Shape(s) => {
                        format!("tensor `{name}` has shape {s:?}, the config says {shape:?}")
                    }
                })
            })
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
        let run = match meta.get("wgtrain.run") {
            Some(json) => Some(
                serde_json::from_str(json)
                    .map_err(|e| err(format!("the `wgtrain.run` record is not valid: {e}")))?,
            ),
            None => None,
        };
        Ok(Checkpoint {
            config,
            weights,
            optimizer_state,
            epoch,
            step,
            standardizer,
            run,
        })
    }
}
