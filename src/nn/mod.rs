//! Layers and the network math: a [`Sequential`] stack of [`Layer`]s (each kind in
//! [`layers`]), their initializers, the losses they are trained with, and [`Network`], the
//! parameters and state on a backend with forward, backward and update written once for every
//! [`Backend`](crate::backend::Backend).
//!
//! Shapes, for a batch of N samples through a Dense layer with `fan_in → units`:
//! `x [N, fan_in] · W [fan_in, units] + b [1, units] = z [N, units]`, `a = act(z)`.

pub mod init;
pub mod layers;
pub mod loss;
mod network;
pub mod perceptron;
mod summary;

pub use init::Initializer;
pub use layers::{
    ActivationLayer, AveragePooling2D, BatchNormalization, Conv2D, Dense, Dropout, Flatten,
    GlobalAveragePooling2D, Layer, MaxPooling2D, Maxout, Mode, PRelu, RRelu, Regularizer, Shape,
};
pub use loss::{Head, LossFn, Task};
pub use network::{Activations, GradBucket, LossSite, Network};
pub use summary::{thousands, Summary, SummaryRow};

use crate::backend::Activation;
use crate::error::{Error, Result};

/// A stack of layers; the input width comes from the data. `compile` it with a backend, a
/// loss, an optimizer and metrics to get a trainable [`crate::train::Model`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Sequential {
    pub(crate) layers: Vec<Layer>,
    /// The images the model takes, `[height, width, channels]`, where it takes images.
    pub(crate) input_shape: Option<[usize; 3]>,
}

impl Sequential {
    /// An empty stack.
    pub fn new() -> Sequential {
        Sequential::default()
    }

    /// The same stack taking images of `[height, width, channels]` (Keras'
    /// `Input(shape=(H, W, C))`), row-major and channels last in each row of the data: what
    /// convolution and pooling layers need to know.
    pub fn input_shape(mut self, shape: [usize; 3]) -> Sequential {
        self.input_shape = Some(shape);
        self
    }

    /// The images the model takes, if it was given their shape.
    pub fn image_shape(&self) -> Option<[usize; 3]> {
        self.input_shape
    }

    /// The stack with `layer` on top.
    #[allow(clippy::should_implement_trait)]
    pub fn add(mut self, layer: impl Into<Layer>) -> Sequential {
        self.layers.push(layer.into());
        self
    }

    /// The layers, bottom first.
    pub fn layers(&self) -> &[Layer] {
        &self.layers
    }

    /// The output width: that of the top Dense or Maxout layer (the others keep their input's).
    pub fn output_units(&self) -> Option<usize> {
        self.layers.iter().rev().find_map(|l| match l {
            Layer::Dense(d) => Some(d.units),
            Layer::Maxout(m) => Some(m.units),
            _ => None,
        })
    }

    /// The activation the stack ends with, which the loss pairs with: the top layer's if it is
    /// a Dense or an Activation layer, else linear.
    pub fn output_activation(&self) -> Activation {
        self.layers
            .last()
            .and_then(Layer::output_activation)
            .unwrap_or(Activation::Linear)
    }

    /// Checks the stack can be built: at least one Dense or Maxout layer (which set the
    /// width), every layer's config valid, softmax only on top.
    pub fn validate(&self) -> Result<()> {
        if self.output_units().is_none() {
            return Err(Error::Config(
                "the model has no Dense or Maxout layer: add at least one Dense layer".into(),
            ));
        }
        for (i, l) in self.layers.iter().enumerate() {
            l.validate()
                .map_err(|e| Error::Config(format!("layer {i} ({}): {e}", l.kind())))?;
        }
        self.clone().bind()?;
        if let Some(i) = self.layers[..self.layers.len() - 1]
            .iter()
            .position(|l| l.output_activation().is_some_and(Activation::is_row_wise))
        {
            return Err(Error::Config(format!(
                "layer {i} is a hidden softmax layer; softmax belongs on the output layer only"
            )));
        }
        Ok(())
    }
}

impl Sequential {
    /// Gives each layer the shape of its input, from the model's input shape up (see
    /// [`Layer::bind`]): convolutions and pooling keep their images'. An error names the
    /// layer and both shapes where one cannot take what the layer below gives, and says
    /// where the input shape comes from when a layer needs images and none was given.
    pub(crate) fn bind(&mut self) -> Result<()> {
        let mut shape = self.input_shape.map_or(Shape::Flat, Shape::Image);
        let mut counts = std::collections::HashMap::new();
        for (i, l) in self.layers.iter_mut().enumerate() {
            let n = counts.entry(l.kind()).or_insert(0usize);
            let name = format!("{}_{n}", l.kind());
            *n += 1;
            shape = l.bind(shape).map_err(|e| {
                Error::Config(format!(
                    "layer {i} ({name}) cannot take {}: {e}",
                    shape.describe()
                ))
            })?;
        }
        Ok(())
    }
}

/// A tensor on the host: its shape and its values, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct HostTensor {
    /// `[rows, cols]`.
    pub shape: [usize; 2],
    /// The values.
    pub values: Vec<f32>,
}

/// One layer's tensors on the host, in the order its kind lists them: the trainable ones
/// (a Dense layer's `weight` `[fan_in, units]` and `bias` `[1, units]`) and the state (batch
/// normalization's moving mean and variance).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LayerWeights {
    /// The trainable tensors.
    pub params: Vec<HostTensor>,
    /// The non-trainable state.
    pub state: Vec<HostTensor>,
}

impl LayerWeights {
    /// A Dense layer's: `weight` row-major `[fan_in, units]`, `bias` `[units]`.
    pub fn dense(fan_in: usize, units: usize, weight: Vec<f32>, bias: Vec<f32>) -> LayerWeights {
        LayerWeights {
            params: vec![
                HostTensor {
                    shape: [fan_in, units],
                    values: weight,
                },
                HostTensor {
                    shape: [1, units],
                    values: bias,
                },
            ],
            state: Vec::new(),
        }
    }

    /// The first trainable tensor's values (a Dense layer's `W`), or none.
    pub fn weight(&self) -> &[f32] {
        self.params.first().map_or(&[], |t| &t.values)
    }

    /// The second trainable tensor's values (a Dense layer's `b`), or none.
    pub fn bias(&self) -> &[f32] {
        self.params.get(1).map_or(&[], |t| &t.values)
    }

    /// Every value, trainable then state.
    pub fn values(&self) -> impl Iterator<Item = &f32> {
        self.params
            .iter()
            .chain(&self.state)
            .flat_map(|t| &t.values)
    }
}

/// One layer's optimizer state on the host: for each trainable tensor, the optimizer's state
/// tensors (Adam: m, v; momentum: the velocity; SGD: none), each shaped like it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LayerState {
    /// `params[j][k]`: state tensor `k` of the layer's trainable tensor `j`.
    pub params: Vec<Vec<Vec<f32>>>,
}
