//! Layers written as text, the form `wgtrain train --layers` takes: a comma-separated list
//! of items, each one of [`FORMS`].

use super::{
    ActivationLayer, AveragePooling2D, BatchNormalization, Conv2D, Dense, Dropout, Flatten,
    GlobalAveragePooling2D, Layer, MaxPooling2D, Maxout, PRelu, RRelu, Regularizer,
};
use crate::backend::{Activation, Padding};
use crate::nn::Initializer;

/// The forms of a layer item, for messages.
pub const FORMS: &str =
    "N (a Dense layer of N units with the hidden activation), N:ACT (with activation ACT), \
N:prelu (Dense then PReLU), N:rrelu (Dense then RReLU), dropout:RATE, batchnorm, maxout:N:PIECES, activation:ACT, \
prelu, rrelu, conv:FILTERS:K[:sS][:same|valid][:ACT] (a K×K or KHxKW convolution with the hidden activation, or ACT), \
maxpool:P[:sS][:same|valid], avgpool:P[:sS][:same|valid], globalavgpool, flatten";

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
        ["conv", filters, kernel, options @ ..] => {
            let mut l = Conv2D::new(count(filters, "filters")?, 1, d.activation);
            l.kernel_size = window_size(kernel, "kernel size")?;
            l.kernel_initializer = d.kernel_initializer.clone();
            l.kernel_regularizer = d.kernel_regularizer;
            for o in options {
                match window_option(o)? {
                    WindowOption::Stride(s) => l.strides = [s, s],
                    WindowOption::Padding(p) => l.padding = p,
                    WindowOption::Other(name) => l.activation = activation(name)?,
                }
            }
            Ok(vec![check(Layer::Conv2D(l))?])
        }
        [pool @ ("maxpool" | "avgpool"), size, options @ ..] => {
            let [ph, pw] = window_size(size, "pool size")?;
            let (mut strides, mut padding) = ([ph, pw], Padding::Valid);
            for o in options {
                match window_option(o)? {
                    WindowOption::Stride(s) => strides = [s, s],
                    WindowOption::Padding(p) => padding = p,
                    WindowOption::Other(name) => {
                        return Err(format!(
                            "a pooling layer takes sS, same or valid, got `{name}`"
                        ))
                    }
                }
            }
            let layer = if *pool == "maxpool" {
                let mut l = MaxPooling2D::new(1);
                (l.pool.pool_size, l.pool.strides, l.pool.padding) = ([ph, pw], strides, padding);
                Layer::MaxPooling2D(l)
            } else {
                let mut l = AveragePooling2D::new(1);
                (l.pool.pool_size, l.pool.strides, l.pool.padding) = ([ph, pw], strides, padding);
                Layer::AveragePooling2D(l)
            };
            Ok(vec![check(layer)?])
        }
        ["globalavgpool"] => Ok(vec![Layer::GlobalAveragePooling2D(
            GlobalAveragePooling2D::new(),
        )]),
        ["flatten"] => Ok(vec![Layer::Flatten(Flatten::new())]),
        [kind, ..] => {
            let known = [
                "dropout",
                "batchnorm",
                "maxout",
                "activation",
                "prelu",
                "rrelu",
                "conv",
                "maxpool",
                "avgpool",
                "globalavgpool",
                "flatten",
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

/// `K` (a square window) or `KHxKW`, each at least 1.
fn window_size(s: &str, what: &str) -> Result<[usize; 2], String> {
    let side = |v: &str| match v.parse::<usize>() {
        Ok(0) | Err(_) => Err(format!(
            "a {what} is K or KHxKW with whole numbers of at least 1, got `{s}`"
        )),
        Ok(n) => Ok(n),
    };
    match s.split_once('x') {
        Some((h, w)) => Ok([side(h)?, side(w)?]),
        None => side(s).map(|k| [k, k]),
    }
}

/// One of a window's optional parts: `sS` (the stride), `same` or `valid`, or anything else
/// (a convolution's activation).
enum WindowOption<'a> {
    Stride(usize),
    Padding(Padding),
    Other(&'a str),
}

fn window_option(o: &str) -> Result<WindowOption<'_>, String> {
    match o {
        "same" => Ok(WindowOption::Padding(Padding::Same)),
        "valid" => Ok(WindowOption::Padding(Padding::Valid)),
        _ if o.starts_with('s') && o[1..].chars().all(|c| c.is_ascii_digit()) && o.len() > 1 => {
            match o[1..].parse::<usize>() {
                Ok(n) if n >= 1 => Ok(WindowOption::Stride(n)),
                _ => Err(format!("a stride is sS with S at least 1, got `{o}`")),
            }
        }
        _ => Ok(WindowOption::Other(o)),
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
