//! A PyTorch `nn.Sequential` of `nn.Linear` layers, saved as its state_dict with
//! `safetensors.torch.save_file(model.state_dict(), path)`, read as a wgtrain model.
//!
//! The mapping: the Linear layers are the tensors `<k>.weight` `[out, in]` and `<k>.bias`
//! `[out]`, `k` the module's index in the Sequential (the activations between them, such as
//! `nn.ReLU`, have no tensors: `0.weight`, `0.bias`, `2.weight`, `2.bias`, ...). Layer i, in
//! the order of k, becomes `dense_{i}` with `weight = <k>.weight` transposed (wgtrain computes
//! `x·W + b`) and `bias = <k>.bias` (zeros for `bias=False`). The state_dict does not say which
//! activations sit between the layers: [`TorchLayout`] does.

use std::collections::BTreeMap;

use safetensors::tensor::SafeTensors;

use crate::backend::{Activation, Optimizer};
use crate::checkpoint::{read_f32, Checkpoint, LayerConfig, ModelConfig, TensorProblem, FORMAT};
use crate::error::{Error, Result};
use crate::metrics::DEFAULT_THRESHOLD;
use crate::nn::{Dense, LayerState, LayerWeights, LossFn};

/// The activations of a PyTorch stack, which its state_dict does not record.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TorchLayout {
    /// After every Linear but the last (an `nn.ReLU` is `Activation::Relu`).
    pub hidden: Activation,
    /// After the last (linear for raw outputs or logits; softmax or sigmoid for
    /// probabilities).
    pub output: Activation,
}

/// Whether the safetensors file holds a PyTorch state_dict of Linear layers (and no
/// wgtrain model): every tensor named `<k>.weight` or `<k>.bias`.
pub fn is_state_dict(st: &SafeTensors<'_>, metadata_has_config: bool) -> bool {
    !metadata_has_config
        && !st.names().is_empty()
        && st.names().iter().all(|n| parse_name(n).is_some())
}

/// `("3", "weight")` from `3.weight`.
fn parse_name(name: &str) -> Option<(usize, bool)> {
    let (k, what) = name.split_once('.')?;
    let k = k.parse().ok()?;
    match what {
        "weight" => Some((k, true)),
        "bias" => Some((k, false)),
        _ => None,
    }
}

/// The wgtrain model the state_dict in `st` describes, with `layout`'s activations; `source`
/// names the file in errors. The model predicts; it carries no optimizer state, and training
/// it further starts a new run.
pub fn from_state_dict(
    st: &SafeTensors<'_>,
    source: &str,
    layout: TorchLayout,
) -> Result<Checkpoint> {
    let err = |detail: String| Error::Data {
        source_name: source.to_string(),
        detail: format!("a PyTorch state_dict: {detail}"),
    };
    let mut modules: BTreeMap<usize, (Option<String>, Option<String>)> = BTreeMap::new();
    for name in st.names() {
        let (k, is_weight) = parse_name(name).expect("is_state_dict checked every name");
        let entry = modules.entry(k).or_default();
        if is_weight {
            entry.0 = Some(name.to_string());
        } else {
            entry.1 = Some(name.to_string());
        }
    }
    let read = |name: &str, shape: &[usize]| -> Result<Vec<f32>> {
        let v = read_f32(st, name, shape).map_err(|problem| {
            err(match problem {
                TensorProblem::Missing => format!("`{name}` is missing"),
                TensorProblem::Dtype(d) => format!(
                    "`{name}` is {d:?}; wgtrain reads float32 (save `model.float().state_dict()`)"
                ),
                TensorProblem::Shape(s) => format!("`{name}` has shape {s:?}, expected {shape:?}"),
            })
        })?;
        match v.iter().find(|x| !x.is_finite()) {
            Some(bad) => Err(err(format!("`{name}` holds a non-finite value ({bad})"))),
            None => Ok(v),
        }
    };
    let mut weights = Vec::new();
    let mut fan_in = None;
    for (k, (weight, bias)) in &modules {
        let Some(weight) = weight else {
            return Err(err(format!(
                "`{k}.bias` has no `{k}.weight`: module {k} is not an nn.Linear"
            )));
        };
        let shape = st
            .tensor(weight)
            .map_err(|e| err(e.to_string()))?
            .shape()
            .to_vec();
        let [out, inp] = shape[..] else {
            return Err(err(format!(
                "`{weight}` has shape {shape:?}; an nn.Linear weight is [out_features, in_features]"
            )));
        };
        if let Some(prev) = fan_in.filter(|&p| p != inp) {
            return Err(err(format!(
                "`{weight}` takes {inp} inputs, but the layer before gives {prev}: the Linear layers do not chain"
            )));
        }
        if out == 0 || inp == 0 {
            return Err(err(format!(
                "`{weight}` has shape {shape:?}, with a zero width"
            )));
        }
        let w = read(weight, &[out, inp])?;
        // [out, in] → [in, out].
        let transposed = (0..inp * out)
            .map(|j| w[(j % out) * inp + j / out])
            .collect();
        let b = match bias {
            Some(b) => read(b, &[out])?,
            None => vec![0.0; out],
        };
        weights.push(LayerWeights::dense(inp, out, transposed, b));
        fan_in = Some(out);
    }
    let n = weights.len();
    let layers: Vec<LayerConfig> = weights
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let activation = if i + 1 == n {
                layout.output
            } else {
                layout.hidden
            };
            LayerConfig::Dense(Dense::new(w.params[0].shape[1], activation))
        })
        .collect();
    // The loss only decides what predict returns: probabilities after a softmax or sigmoid
    // output, the raw outputs otherwise.
    let loss = match layout.output {
        Activation::Softmax => LossFn::SparseCategoricalCrossentropy { from_logits: false },
        Activation::Sigmoid => LossFn::BinaryCrossentropy { from_logits: false },
        _ => LossFn::MeanSquaredError,
    };
    let config = ModelConfig {
        format: FORMAT.into(),
        input_dim: weights[0].params[0].shape[0],
        layers,
        loss,
        optimizer: Optimizer::Sgd { lr: 0.01 },
        metrics: Vec::new(),
        threshold: DEFAULT_THRESHOLD,
        seed: 0,
    };
    config.validate().map_err(|why| {
        err(format!(
            "as a wgtrain model with --activation {} and --output-activation {}, {why}",
            layout.hidden.name(),
            layout.output.name()
        ))
    })?;
    let optimizer_state = weights
        .iter()
        .map(|_| LayerState {
            params: vec![Vec::new(), Vec::new()],
        })
        .collect();
    Ok(Checkpoint {
        config,
        weights,
        optimizer_state,
        epoch: 0,
        step: 0,
        standardizer: None,
        run: None,
    })
}
