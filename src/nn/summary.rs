//! A model's summary as Keras prints it: each layer with its output shape and its parameter
//! count (trainable and not), then the totals.

use serde::Serialize;

use super::{Layer, Sequential, Shape};

/// One row of a [`Summary`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SummaryRow {
    /// The layer's name, numbered per kind as its checkpoint tensors (`dense_0`).
    pub name: String,
    /// Its kind as Keras names the class (`Dense`, `BatchNormalization`, ...).
    pub layer_type: &'static str,
    /// Its output width (the shape is `(None, width)`).
    pub output_width: usize,
    /// Its output images' `[height, width, channels]`, where it gives images (the shape is
    /// then `(None, H, W, C)`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_image: Option<[usize; 3]>,
    /// All its values, trainable or not (Keras' `Param #`).
    pub params: usize,
    /// Its trainable values.
    pub trainable: usize,
    /// What it is, in words (`64 units, relu`).
    pub config: String,
}

/// Keras' `model.summary()`, as data; [`std::fmt::Display`] prints the table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// The input width.
    pub input_width: usize,
    /// One row per layer, bottom first.
    pub layers: Vec<SummaryRow>,
    /// Every value.
    pub total_params: usize,
    /// The trained values.
    pub trainable_params: usize,
    /// The values kept but not trained (batch normalization's moving statistics).
    pub non_trainable_params: usize,
}

fn keras_type(l: &Layer) -> &'static str {
    match l {
        Layer::Dense(_) => "Dense",
        Layer::Activation(_) => "Activation",
        Layer::Dropout(_) => "Dropout",
        Layer::BatchNormalization(_) => "BatchNormalization",
        Layer::PRelu(_) => "PReLU",
        Layer::Maxout(_) => "Maxout",
        Layer::RRelu(_) => "RReLU",
        Layer::Conv2D(_) => "Conv2D",
        Layer::MaxPooling2D(_) => "MaxPooling2D",
        Layer::AveragePooling2D(_) => "AveragePooling2D",
        Layer::GlobalAveragePooling2D(_) => "GlobalAveragePooling2D",
        Layer::Flatten(_) => "Flatten",
    }
}

impl Summary {
    /// The summary of `spec` for inputs of `input_width` features.
    pub fn of(spec: &Sequential, input_width: usize) -> Summary {
        let mut counts = std::collections::HashMap::<&str, usize>::new();
        let mut fan_in = input_width;
        // Each layer bound to its input's shape, as compile binds them (a stack that cannot
        // be bound fails to compile; its summary counts what it can).
        let mut spec = spec.clone();
        spec.bind().ok();
        let mut shape = spec.image_shape().map_or(Shape::Flat, Shape::Image);
        let layers: Vec<SummaryRow> = spec
            .layers()
            .iter()
            .map(|l| {
                let k = counts.entry(l.kind()).or_default();
                let name = format!("{}_{k}", l.kind());
                *k += 1;
                let trainable = l.parameter_count(fan_in);
                let params = trainable.saturating_add(l.state_count(fan_in));
                fan_in = l.width(fan_in);
                shape = l.clone().bind(shape).unwrap_or(Shape::Flat);
                let output_image = match shape {
                    Shape::Image(s) => Some(s),
                    Shape::Flat => None,
                };
                SummaryRow {
                    name,
                    layer_type: keras_type(l),
                    output_width: fan_in,
                    output_image,
                    params,
                    trainable,
                    config: l.describe(),
                }
            })
            .collect();
        let total = layers
            .iter()
            .map(|r| r.params)
            .fold(0, usize::saturating_add);
        let trainable = layers
            .iter()
            .map(|r| r.trainable)
            .fold(0, usize::saturating_add);
        Summary {
            input_width,
            layers,
            total_params: total,
            trainable_params: trainable,
            non_trainable_params: total - trainable,
        }
    }
}

/// `1234567` as `1,234,567`, as Keras prints counts.
pub fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `n` f32 values in bytes, as Keras prints sizes (`18.79 KB`).
fn size(n: usize) -> String {
    let bytes = 4.0 * n as f64;
    match bytes {
        b if b >= 1024.0 * 1024.0 => format!("{:.2} MB", b / (1024.0 * 1024.0)),
        b if b >= 1024.0 => format!("{:.2} KB", b / 1024.0),
        b => format!("{b:.2} B"),
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let rows: Vec<[String; 3]> = self
            .layers
            .iter()
            .map(|r| {
                [
                    format!("{} ({})", r.name, r.layer_type),
                    match r.output_image {
                        Some([h, w, c]) => format!("(None, {h}, {w}, {c})"),
                        None => format!("(None, {})", r.output_width),
                    },
                    thousands(r.params),
                ]
            })
            .collect();
        let head = [
            "Layer (type)".to_string(),
            "Output Shape".into(),
            "Param #".into(),
        ];
        let w: Vec<usize> = (0..3)
            .map(|c| {
                rows.iter()
                    .chain([&head])
                    .map(|r| r[c].chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let line = "─".repeat(w[0] + w[1] + w[2] + 6);
        writeln!(f, "{line}")?;
        writeln!(
            f,
            "{:<a$}   {:<b$}   {:>c$}",
            head[0],
            head[1],
            head[2],
            a = w[0],
            b = w[1],
            c = w[2]
        )?;
        writeln!(f, "{line}")?;
        for r in &rows {
            writeln!(
                f,
                "{:<a$}   {:<b$}   {:>c$}",
                r[0],
                r[1],
                r[2],
                a = w[0],
                b = w[1],
                c = w[2]
            )?;
        }
        writeln!(f, "{line}")?;
        let total = |label: &str, n: usize| format!("{label}: {} ({})", thousands(n), size(n));
        writeln!(f, "{}", total("Total params", self.total_params))?;
        writeln!(f, "{}", total("Trainable params", self.trainable_params))?;
        write!(
            f,
            "{}",
            total("Non-trainable params", self.non_trainable_params)
        )
    }
}
