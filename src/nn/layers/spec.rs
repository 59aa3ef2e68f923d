//! Layers written as text, the form `wgtrain train --layers` takes: a comma-separated list
//! of items, each one of [`FORMS`].

use super::{
    ActivationLayer, BatchNormalization, Dense, Dropout, Layer, Maxout, PRelu, RRelu, Regularizer,
};
use crate::backend::Activation;
use crate::nn::Initializer;

/// The forms of a layer item, for messages.
pub const FORMS: &str =
    "N (a Dense layer of N units with the hidden activation), N:ACT (with activation ACT), \
N:prelu (Dense then PReLU), N:rrelu (Dense then RReLU), dropout:RATE, batchnorm, maxout:N:PIECES, activation:ACT, \
prelu, rrelu";

/// What every Dense and Maxout layer an item makes gets: the hidden activation of a bare `N`,
/// the kernel initializer, and the kernel penalty.
#[derive(Clone, Debug)]
pub struct LayerDefaults {
    /// The activation of `N`.
    pub activation: Activation,
    /// How kernels start.
    pub kernel_initializer: Initializer,
    /// The penalty on every kernel (`--l1`, `--l2`).
    pub kernel_regularizer: Option<Regularizer>,
}

/// The layers one item stands for (`64:prelu` is two), or why it is not one of [`FORMS`].
pub fn parse_item(item: &str, d: &LayerDefaults) -> Result<Vec<Layer>, String> {
    let parts: Vec<&str> = item.trim().split(':').collect();
    let count = |s: &str, what: &str| -> Result<usize, String> {
        match s.parse::<usize>() {
            Ok(0) => Err(format!("{what} 0: every {what} must be at least 1")),
            Ok(n) => Ok(n),
            Err(_) => Err(format!("{what} must be a whole number, got `{s}`")),
        }
    };
    let activation = |name: &str| {
        Activation::from_name(name).map_err(|_| {
            format!(
                "unknown activation `{name}`; valid: {}",
                Activation::ALL.map(|a| a.name()).join(", ")
            )
        })
    };
    let dense = |units: usize, act: Activation| {
        let mut l = Dense::new(units, act).kernel_initializer(d.kernel_initializer.clone());
        l.kernel_regularizer = d.kernel_regularizer;
        Layer::Dense(l)
    };
    let check = |l: Layer| l.validate().map(|()| l);
    match parts.as_slice() {
        [n] if n.chars().all(|c| c.is_ascii_digit()) => {
            Ok(vec![dense(count(n, "width")?, d.activation)])
        }
        [n, "prelu"] if n.chars().all(|c| c.is_ascii_digit()) => Ok(vec![
            dense(count(n, "width")?, Activation::Linear),
            Layer::PRelu(PRelu::new()),
        ]),
        [n, "rrelu"] if n.chars().all(|c| c.is_ascii_digit()) => Ok(vec![
            dense(count(n, "width")?, Activation::Linear),
            Layer::RRelu(RRelu::new()),
        ]),
        [n, act] if n.chars().all(|c| c.is_ascii_digit()) => {
            Ok(vec![dense(count(n, "width")?, activation(act)?)])
        }
        ["dropout", rate] => {
            let rate: f32 = rate
                .parse()
                .map_err(|_| format!("a dropout rate must be a number, got `{rate}`"))?;
            Ok(vec![check(Layer::Dropout(Dropout::new(rate)))?])
        }
        ["batchnorm"] => Ok(vec![Layer::BatchNormalization(BatchNormalization::new())]),
        ["prelu"] => Ok(vec![Layer::PRelu(PRelu::new())]),
        ["rrelu"] => Ok(vec![Layer::RRelu(RRelu::new())]),
        ["activation", act] => Ok(vec![Layer::Activation(ActivationLayer::new(activation(
            act,
        )?))]),
        ["maxout", n, pieces] => {
            let mut l = Maxout::new(
                count(n, "width")?,
                pieces.parse().map_err(|_| {
                    format!("maxout's pieces must be a whole number, got `{pieces}`")
                })?,
            );
            l.kernel_initializer = d.kernel_initializer.clone();
            l.kernel_regularizer = d.kernel_regularizer;
            Ok(vec![check(Layer::Maxout(l))?])
        }
        [kind, ..] => {
            let known = [
                "dropout",
                "batchnorm",
                "maxout",
                "activation",
                "prelu",
                "rrelu",
            ];
            if known.contains(kind) {
                Err(format!("`{kind}` takes another form"))
            } else {
                Err(format!("unknown layer kind `{kind}`"))
            }
        }
        [] => Err("an empty item".into()),
    }
}

/// The layers of a comma-separated list's items, or an error naming the item and its
/// position (1-based) and listing the valid forms.
pub fn parse_layers(items: &[String], d: &LayerDefaults) -> Result<Vec<Layer>, String> {
    let mut layers = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let more = parse_item(item, d).map_err(|why| {
            format!(
                "item {} `{}`: {why}; the valid forms are {FORMS}",
                i + 1,
                item.trim()
            )
        })?;
        layers.extend(more);
    }
    Ok(layers)
}
