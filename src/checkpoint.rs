//! Checkpoints in safetensors: everything needed to use a model later or to resume training
//! exactly where it stopped.
//!
//! Tensors (all f32, little-endian):
//!
//! | name | shape | what |
//! | --- | --- | --- |
//! | `dense_{k}.weight` | `[fan_in, units]` | the k-th Dense layer's `W` (`z = x·W + b`) |
//! | `dense_{k}.bias` | `[units]` | its `b` |
//! | `batchnorm_{k}.gamma`, `.beta` | `[units]` | the k-th batch normalization's scale and shift |
//! | `batchnorm_{k}.moving_mean`, `.moving_variance` | `[units]` | its moving statistics (not trained) |
//! | `prelu_{k}.alpha` | `[units]` | the k-th PReLU's slopes |
//! | `maxout_{k}.weight`, `.bias` | `[fan_in, units · pieces]`, `[units · pieces]` | the k-th Maxout's maps |
//! | `conv2d_{k}.kernel` | `[kh, kw, in_channels, filters]` | the k-th Conv2D's kernel, Keras' layout |
//! | `conv2d_{k}.bias` | `[filters]` | its bias (absent with `use_bias: false`) |
//! | `optimizer.<tensor>.{m,v}` / `.velocity` | like the tensor | Adam's moments / momentum's velocity, for each trainable tensor |
//! | `standardize.mean`, `standardize.std` | `[features]` | input standardization, if used |
//!
//! Layers are numbered per kind (`dense_0`, `dropout` has no tensors, `dense_1`, ...), so that
//! inserting a layer without tensors renames nothing.
//!
//! Metadata (strings): `wgtrain.config` (the model as JSON: input width, layers, loss,
//! optimizer with its learning rate, metrics, seed), `wgtrain.epoch` (epochs completed),
//! `wgtrain.step` (optimizer steps taken, Adam's t), `wgtrain.rng` (the shuffle generator's
//! state: the seed, since epoch e's order is drawn from a generator seeded by (seed, e)), and
//! `wgtrain.run` (a [`RunRecord`] as JSON: what decided the split and the batch order, which a
//! resume must not change).
//!
//! The layers are listed in the config each with its kind (`{"kind": "dense", "units": 64,
//! "activation": "relu"}`); convolution and pooling layers with the image shape they were
//! built for (`"input": [28, 28, 1]`). Format 1 (`wgtrain-checkpoint-1`, before the layer stack) listed
//! Dense layers only, without a kind: it still loads, its layers read as Dense.
//!
//! A PyTorch `nn.Linear` stores its weight `[out, in]`: `dense_{i}.weight` is its transpose
//! (`scripts/interop.py` does the mapping both ways).

use std::collections::HashMap;
use std::path::Path;

use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use serde::{Deserialize, Serialize};

use crate::backend::Optimizer;
use crate::data::{Matrix, Standardizer};
use crate::error::{Error, Result};
use crate::fs::write_atomic;
use crate::metrics::Metric;
use crate::nn::{HostTensor, Layer, LayerState, LayerWeights, LossFn, Sequential};

/// The format tag in `wgtrain.config`.
pub const FORMAT: &str = "wgtrain-checkpoint-2";

/// The format before the layer stack: Dense layers only, `{units, activation}` each.
pub const FORMAT_1: &str = "wgtrain-checkpoint-1";

/// One layer of the architecture, as the config lists it.
pub type LayerConfig = Layer;

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
        if self.layers.is_empty() {
            return Err("it has no layers".into());
        }
        let spec = self.sequential();
        spec.validate().map_err(|e| e.to_string())?;
        let (last, units) = (
            spec.output_activation(),
            spec.output_units().expect("validate checked"),
        );
        let (head, _) = self.loss.head(last, units).map_err(|_| {
            format!(
                "its loss {} cannot train its last layer ({units} units, {})",
                self.loss.name(),
                last.name()
            )
        })?;
        self.optimizer
            .validate(1)
            .map_err(|e| format!("its optimizer is not valid ({e})"))?;
        crate::metrics::MetricPlan::new(&self.metrics, head.task, self.threshold, units)
            .map_err(|_| format!("its metrics do not fit its loss {}", self.loss.name()))?;
        Ok(())
    }

    /// The layers as a stack.
    pub fn sequential(&self) -> Sequential {
        self.layers
            .iter()
            .cloned()
            .fold(Sequential::new(), Sequential::add)
    }

    /// Each layer with its input width and its name in the file (`dense_0`, numbered per
    /// kind).
    pub fn named_layers(&self) -> Vec<(&Layer, usize, String)> {
        let mut counts: HashMap<&str, usize> = HashMap::new();
        let mut fan_in = self.input_dim;
        self.layers
            .iter()
            .map(|l| {
                let k = counts.entry(l.kind()).or_default();
                let name = format!("{}_{k}", l.kind());
                *k += 1;
                let here = fan_in;
                fan_in = l.width(fan_in);
                (l, here, name)
            })
            .collect()
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
        // The little-endian bytes of every value, hashed a block at a time: crc32fast's
        // vectorised path needs long inputs (value by value it takes its byte-wise path, 13%
        // of an MLP-B benchmark's cycles, which calls `fit` once per epoch).
        let mut h = crc32fast::Hasher::new();
        let mut bytes = [0u8; 4096];
        for m in [x, y] {
            for block in m.data().chunks(bytes.len() / 4) {
                for (b, v) in bytes.chunks_exact_mut(4).zip(block) {
                    b.copy_from_slice(&v.to_le_bytes());
                }
                h.update(&bytes[..4 * block.len()]);
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
        let layers = self.config.named_layers();
        for (((layer, fan_in, prefix), w), s) in
            layers.iter().zip(&self.weights).zip(&self.optimizer_state)
        {
            for (j, p) in layer.params(*fan_in).iter().enumerate() {
                let (shape, name) = (p.file_shape(), format!("{prefix}.{}", p.name));
                let values = w.params.get(j).map_or(&[][..], |t| &t.values);
                tensors.push((name.clone(), shape.clone(), le_bytes(values)));
                for (state, values) in names.iter().zip(s.params.get(j).into_iter().flatten()) {
                    tensors.push((
                        format!("optimizer.{name}.{state}"),
                        shape.clone(),
                        le_bytes(values),
                    ));
                }
            }
            for (j, st) in layer.state(*fan_in).iter().enumerate() {
                let values = w.state.get(j).map_or(&[][..], |t| &t.values);
                tensors.push((
                    format!("{prefix}.{}", st.name),
                    st.file_shape(),
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
        let mut config = parse_config(get("wgtrain.config")?).map_err(&err)?;
        // Checkpoints before sparse_top_k_categorical_accuracy had its own name stored it as
        // top_k_categorical_accuracy, whatever the targets.
        if config.loss.task() == crate::nn::Task::SparseCategorical {
            for m in &mut config.metrics {
                if let Metric::TopKCategoricalAccuracy { k } = *m {
                    *m = Metric::SparseTopKCategoricalAccuracy { k };
                }
            }
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
        for (layer, fan_in, prefix) in config.named_layers() {
            let mut w = LayerWeights::default();
            let mut s = LayerState::default();
            for p in layer.params(fan_in) {
                let (shape, name) = (p.file_shape(), format!("{prefix}.{}", p.name));
                w.params.push(HostTensor {
                    shape: p.shape,
                    values: tensor(&name, &shape)?,
                });
                s.params.push(
                    names
                        .iter()
                        .map(|n| tensor(&format!("optimizer.{name}.{n}"), &shape))
                        .collect::<Result<_>>()?,
                );
            }
            for st in layer.state(fan_in) {
                w.state.push(HostTensor {
                    shape: st.shape,
                    values: tensor(&format!("{prefix}.{}", st.name), &st.file_shape())?,
                });
            }
            weights.push(w);
            optimizer_state.push(s);
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
            .flat_map(LayerWeights::values)
            .chain(
                optimizer_state
                    .iter()
                    .flat_map(|s| s.params.iter().flatten().flatten()),
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

/// The `wgtrain.config` entry: format 2, or format 1 (Dense layers without a kind) migrated
/// to it.
fn parse_config(json: &str) -> std::result::Result<ModelConfig, String> {
    let mut value: serde_json::Value =
        serde_json::from_str(json).map_err(|e| format!("the model config is not valid: {e}"))?;
    let format = value
        .get("format")
        .and_then(|f| f.as_str())
        .unwrap_or("")
        .to_string();
    if format == FORMAT_1 {
        if let Some(layers) = value.get_mut("layers").and_then(|l| l.as_array_mut()) {
            for l in layers {
                if let Some(o) = l.as_object_mut() {
                    o.insert("kind".into(), "dense".into());
                }
            }
        }
        value["format"] = FORMAT.into();
    } else if format != FORMAT {
        return Err(format!(
            "format `{}`, this wgtrain reads `{FORMAT}` and `{FORMAT_1}`",
            crate::error::quote(&format)
        ));
    }
    serde_json::from_value(value).map_err(|e| format!("the model config is not valid: {e}"))
}
