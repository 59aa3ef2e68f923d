//! The layer stack: every kind of layer a [`crate::nn::Sequential`] holds, each in its own
//! file with its config, its parameters and state, its forward pass in training and in
//! inference, its backward pass, its checkpoint names and its summary row. [`Layer`] is the
//! table that ties them: adding a kind touches its file, its kernels and reference functions,
//! and the match arms below, and nothing in the network or the fit loop.
//!
//! A layer sees its input `x` `[N, fan_in]` and writes its output `y` `[N, width]`; in the
//! backward pass it gets `dy` and writes its parameters' gradients and, where the layer below
//! needs it, `dx`. What it saves between the two passes lives in its scratch buffers (one set
//! per batch size); what it keeps between steps that is not trained (batch normalization's
//! moving statistics) is its state.

mod activation;
mod batchnorm;
mod conv;
mod dense;
mod dropout;
mod maxout;
mod pool;
mod prelu;
mod rrelu;
pub mod spec;

pub use activation::ActivationLayer;
pub use batchnorm::BatchNormalization;
pub use conv::Conv2D;
pub use dense::Dense;
pub use dropout::Dropout;
pub use maxout::Maxout;
pub use pool::{AveragePooling2D, Flatten, GlobalAveragePooling2D, MaxPooling2D};
pub use prelu::PRelu;
pub use rrelu::RRelu;

use serde::{Deserialize, Serialize};

use super::Initializer;
use crate::backend::{Activation, Backend, DropoutMask};
use crate::error::Result;

/// What a layer takes and gives, for the layers that need to know: flat feature vectors, or
/// channels-last images `[height, width, channels]` (in the backend a batch of either is a
/// `[N, features]` tensor). Set when the model is built from its input shape
/// ([`crate::nn::Sequential::input_shape`]): see [`Layer::bind`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// Feature vectors, of whatever width the data has.
    Flat,
    /// Images of `[height, width, channels]`.
    Image([usize; 3]),
}

impl Shape {
    /// `H×W×C`, or `flat`, for messages.
    pub fn describe(self) -> String {
        match self {
            Shape::Flat => "flat features".into(),
            Shape::Image([h, w, c]) => format!("{h}×{w}×{c} images"),
        }
    }
}

/// Keras' weight penalty `l1 · Σ |w| + l2 · Σ w²` on a layer's kernel or bias; it is added to
/// the loss (and reported with it) and its gradient to the parameter's, on the device.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Regularizer {
    /// The factor of `Σ |w|`.
    pub l1: f32,
    /// The factor of `Σ w²`.
    pub l2: f32,
}

impl Regularizer {
    /// Keras' `L1(l1)`.
    pub fn l1(l1: f32) -> Regularizer {
        Regularizer { l1, l2: 0.0 }
    }

    /// Keras' `L2(l2)` (no ½: the gradient is `2 · l2 · w`).
    pub fn l2(l2: f32) -> Regularizer {
        Regularizer { l1: 0.0, l2 }
    }

    /// Keras' `L1L2(l1, l2)`.
    pub fn l1_l2(l1: f32, l2: f32) -> Regularizer {
        Regularizer { l1, l2 }
    }

    /// Both factors finite and ≥ 0.
    pub fn validate(self) -> std::result::Result<(), String> {
        if self.l1 >= 0.0 && self.l1.is_finite() && self.l2 >= 0.0 && self.l2.is_finite() {
            Ok(())
        } else {
            Err(format!(
                "a regularizer's factors must be finite and ≥ 0, got l1 = {}, l2 = {}",
                self.l1, self.l2
            ))
        }
    }
}

/// One trainable tensor of a layer.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamSpec {
    /// Its name in checkpoints, after the layer's (`weight` in `dense_0.weight`).
    pub name: &'static str,
    /// `[rows, cols]`.
    pub shape: [usize; 2],
    /// How it starts.
    pub init: Initializer,
    /// Its penalty, if any.
    pub regularizer: Option<Regularizer>,
    /// `[kh, kw, C, F]` for a convolution kernel (`shape` is then `[kh·kw·C, F]`): its shape
    /// in checkpoints, and the fans its initializer draws with (Keras' receptive field on
    /// both sides, see [`Initializer::sample_fans`]).
    pub conv_kernel: Option<[usize; 4]>,
}

impl ParamSpec {
    /// Its shape in checkpoints: `[kh, kw, C, F]` for a convolution kernel, `[cols]` for a
    /// per-unit vector (`[1, cols]`, a bias), else `[rows, cols]`.
    pub fn file_shape(&self) -> Vec<usize> {
        match self.conv_kernel {
            Some(k) => k.to_vec(),
            None => file_shape(self.name, self.shape),
        }
    }

    /// The fans its initializer draws with: `[kh·kw·C, kh·kw·F]` for a convolution kernel,
    /// else its shape.
    pub fn fans(&self) -> [usize; 2] {
        match self.conv_kernel {
            Some([kh, kw, c, f]) => [kh * kw * c, kh * kw * f],
            None => self.shape,
        }
    }
}

impl StateSpec {
    /// Its shape in checkpoints: `[cols]`.
    pub fn file_shape(&self) -> Vec<usize> {
        file_shape(self.name, self.shape)
    }
}

/// Weights (`weight`) are saved as matrices, every other tensor (biases, per-unit vectors)
/// as a vector of its columns.
fn file_shape(name: &str, [rows, cols]: [usize; 2]) -> Vec<usize> {
    if name == "weight" {
        vec![rows, cols]
    } else {
        vec![cols]
    }
}

/// One non-trainable tensor of a layer, kept between steps and saved in checkpoints.
#[derive(Clone, Debug, PartialEq)]
pub struct StateSpec {
    /// Its name in checkpoints, after the layer's (`moving_mean` in `batchnorm_0.moving_mean`).
    pub name: &'static str,
    /// `[rows, cols]`.
    pub shape: [usize; 2],
    /// Every value it starts at.
    pub init: f32,
}

/// Whether a pass trains (batch statistics, dropout masks) or infers (moving statistics, no
/// dropout).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// A training step: `step` is the optimizer step it leads to (1 for the first), `seed` the
    /// model's, which with the layer's position key its random draws.
    Train {
        /// The model's seed.
        seed: u64,
        /// The optimizer step of this forward pass.
        step: u64,
    },
    /// Validation, evaluation and prediction.
    Infer,
}

/// What a layer's forward pass reads and writes.
#[derive(Debug)]
pub struct Forward<'a, B: Backend> {
    /// The backend.
    pub b: &'a mut B,
    /// The input `[N, fan_in]`.
    pub x: &'a B::Tensor,
    /// The output `[N, width]`.
    pub y: &'a mut B::Tensor,
    /// The layer's parameters, in [`Layer::params`]' order.
    pub params: &'a [B::Tensor],
    /// The layer's state, in [`Layer::state`]' order.
    pub state: &'a [B::Tensor],
    /// Where training writes the batch's statistics, laid out as the state.
    pub batch_stats: &'a mut [B::Tensor],
    /// The layer's scratch buffers, [`Layer::scratch`]' widths.
    pub scratch: &'a mut [B::Tensor],
    /// Training or inference.
    pub mode: Mode,
    /// The layer's position in the stack.
    pub index: usize,
}

/// What a layer's backward pass reads and writes.
#[derive(Debug)]
pub struct Backward<'a, B: Backend> {
    /// The backend.
    pub b: &'a mut B,
    /// The forward pass's input.
    pub x: &'a B::Tensor,
    /// The forward pass's output.
    pub y: &'a B::Tensor,
    /// `∂L/∂y`.
    pub dy: &'a B::Tensor,
    /// Where `∂L/∂x` goes.
    pub dx: &'a mut B::Tensor,
    /// Whether the layer below needs `dx` (not for the bottom layer); a layer whose kernel
    /// writes it anyway may write it regardless.
    pub need_dx: bool,
    /// The layer's parameters.
    pub params: &'a [B::Tensor],
    /// Where their gradients go, in the same order.
    pub grads: &'a mut [B::Tensor],
    /// The batch's statistics the forward pass wrote.
    pub batch_stats: &'a [B::Tensor],
    /// The layer's scratch buffers, as the forward pass left them.
    pub scratch: &'a mut [B::Tensor],
    /// The loss has already written the gradient of the layer's pre-activation (a Dense
    /// layer's `dz`, in its second scratch buffer): see [`Layer::logits_scratch`].
    pub dz_given: bool,
    /// The forward pass's mode (always [`Mode::Train`]).
    pub mode: Mode,
    /// The layer's position in the stack.
    pub index: usize,
}

impl Mode {
    /// The dropout mask of the layer at `index` with this `rate`, in training.
    pub(crate) fn mask(self, index: usize, rate: f32) -> Option<DropoutMask> {
        match self {
            Mode::Train { seed, step } => Some(DropoutMask {
                seed,
                layer: index as u32,
                step,
                rate,
            }),
            Mode::Infer => None,
        }
    }
}

/// One layer of a [`crate::nn::Sequential`]. Serialized (in checkpoints) as its kind and its
/// config: `{"kind": "dense", "units": 64, "activation": "relu"}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Layer {
    /// A fully connected layer.
    Dense(Dense),
    /// An activation on its own.
    Activation(ActivationLayer),
    /// Inverted dropout.
    Dropout(Dropout),
    /// Batch normalization.
    #[serde(rename = "batchnorm")]
    BatchNormalization(BatchNormalization),
    /// A ReLU with a learned slope per unit.
    #[serde(rename = "prelu")]
    PRelu(PRelu),
    /// The maximum of several linear maps.
    Maxout(Maxout),
    /// A leaky ReLU with random slopes in training.
    #[serde(rename = "rrelu")]
    RRelu(RRelu),
    /// A 2-D convolution of channels-last images.
    #[serde(rename = "conv2d")]
    Conv2D(Conv2D),
    /// The largest value of each window.
    #[serde(rename = "max_pooling2d")]
    MaxPooling2D(MaxPooling2D),
    /// The mean of each window.
    #[serde(rename = "average_pooling2d")]
    AveragePooling2D(AveragePooling2D),
    /// The mean of each channel over the whole image.
    #[serde(rename = "global_average_pooling2d")]
    GlobalAveragePooling2D(GlobalAveragePooling2D),
    /// Images as flat feature vectors.
    Flatten(Flatten),
}

macro_rules! each {
    ($self:expr, $l:ident => $e:expr) => {
        match $self {
            Layer::Dense($l) => $e,
            Layer::Activation($l) => $e,
            Layer::Dropout($l) => $e,
            Layer::BatchNormalization($l) => $e,
            Layer::PRelu($l) => $e,
            Layer::Maxout($l) => $e,
            Layer::RRelu($l) => $e,
            Layer::Conv2D($l) => $e,
            Layer::MaxPooling2D($l) => $e,
            Layer::AveragePooling2D($l) => $e,
            Layer::GlobalAveragePooling2D($l) => $e,
            Layer::Flatten($l) => $e,
        }
    };
}

/// What every kind of layer defines; [`Layer`] dispatches to it.
pub(crate) trait Kind {
    /// The kind's name: the prefix of its checkpoint tensors and its summary rows.
    const NAME: &'static str;
    /// Whether the config can be built (rates, sizes, factors), as a sentence.
    fn validate(&self) -> std::result::Result<(), String>;
    /// The shape of the output for inputs of `input`, keeping what the layer needs of it
    /// (a convolution its image shape); or why the layer cannot take such inputs. Layers
    /// that read any width and give feature vectors (Dense, Maxout) take the default.
    fn bind(&mut self, _input: Shape) -> std::result::Result<Shape, String> {
        Ok(Shape::Flat)
    }
    /// The output width for inputs of `fan_in`.
    fn width(&self, fan_in: usize) -> usize;
    /// The trainable tensors for inputs of `fan_in`.
    fn params(&self, _fan_in: usize) -> Vec<ParamSpec> {
        Vec::new()
    }
    /// The non-trainable state.
    fn state(&self, _fan_in: usize) -> Vec<StateSpec> {
        Vec::new()
    }
    /// The widths of the per-batch scratch buffers (`[N, width]` each).
    fn scratch(&self, _fan_in: usize) -> Vec<usize> {
        Vec::new()
    }
    /// The activation the layer applies last, if it is one the loss may fold (Dense,
    /// Activation).
    fn output_activation(&self) -> Option<Activation> {
        None
    }
    /// Whether inference passes the input through unchanged (dropout): the network then reads
    /// the layer's input in its place, and no copy is made.
    fn identity_in_inference(&self) -> bool {
        false
    }
    /// The summary's description of the config (`64 units, relu`).
    fn describe(&self) -> String;
    /// The forward pass.
    fn forward<B: Backend>(&self, f: Forward<'_, B>) -> Result<()>;
    /// The backward pass.
    fn backward<B: Backend>(&self, g: Backward<'_, B>) -> Result<()>;
}

impl Layer {
    /// The kind's name (`dense`, `activation`, `dropout`, `batchnorm`, `prelu`, `maxout`): the
    /// prefix of the layer's checkpoint tensors, numbered per kind.
    pub fn kind(&self) -> &'static str {
        fn name<K: Kind>(_: &K) -> &'static str {
            K::NAME
        }
        each!(self, l => name(l))
    }

    /// Checks the config.
    pub fn validate(&self) -> std::result::Result<(), String> {
        each!(self, l => l.validate())
    }

    /// The output's shape for inputs of `input` (see [`Shape`]), the layer keeping what it
    /// needs of it; or why it cannot take them, as a sentence.
    pub fn bind(&mut self, input: Shape) -> std::result::Result<Shape, String> {
        each!(self, l => l.bind(input))
    }

    /// Whether the layer works on images (a convolution or a pooling layer): a stack with one
    /// needs its input shape.
    pub fn reads_images(&self) -> bool {
        matches!(
            self,
            Layer::Conv2D(_)
                | Layer::MaxPooling2D(_)
                | Layer::AveragePooling2D(_)
                | Layer::GlobalAveragePooling2D(_)
        )
    }

    /// The images a bound convolution or pooling layer takes (see [`Layer::bind`]): its
    /// input must be exactly their `H·W·C` values.
    pub fn input_image(&self) -> Option<[usize; 3]> {
        match self {
            Layer::Conv2D(l) => l.input,
            Layer::MaxPooling2D(l) => l.pool.input,
            Layer::AveragePooling2D(l) => l.pool.input,
            Layer::GlobalAveragePooling2D(l) => l.input,
            _ => None,
        }
    }

    /// The output width for inputs of `fan_in`.
    pub fn width(&self, fan_in: usize) -> usize {
        each!(self, l => l.width(fan_in))
    }

    /// The trainable tensors for inputs of `fan_in`.
    pub fn params(&self, fan_in: usize) -> Vec<ParamSpec> {
        each!(self, l => l.params(fan_in))
    }

    /// The non-trainable state for inputs of `fan_in`.
    pub fn state(&self, fan_in: usize) -> Vec<StateSpec> {
        each!(self, l => l.state(fan_in))
    }

    /// The widths of the per-batch scratch buffers.
    pub fn scratch(&self, fan_in: usize) -> Vec<usize> {
        each!(self, l => l.scratch(fan_in))
    }

    /// The activation the layer applies last, where the loss may fold it (Dense, Activation).
    pub fn output_activation(&self) -> Option<Activation> {
        each!(self, l => l.output_activation())
    }

    /// Whether inference passes the input through unchanged.
    pub fn identity_in_inference(&self) -> bool {
        each!(self, l => l.identity_in_inference())
    }

    /// The config, as the summary shows it.
    pub fn describe(&self) -> String {
        each!(self, l => l.describe())
    }

    /// Which of the layer's scratch buffers hold its pre-activation `z` and its gradient `dz`,
    /// where a loss may read the logits and write their gradient directly (a Dense layer).
    pub fn logits_scratch(&self) -> Option<(usize, usize)> {
        match self {
            Layer::Dense(_) => Some((0, 1)),
            _ => None,
        }
    }

    /// The number of trainable values for inputs of `fan_in`.
    pub fn parameter_count(&self, fan_in: usize) -> usize {
        self.params(fan_in)
            .iter()
            .map(|p| p.shape[0].saturating_mul(p.shape[1]))
            .fold(0, usize::saturating_add)
    }

    /// The number of non-trainable values for inputs of `fan_in`.
    pub fn state_count(&self, fan_in: usize) -> usize {
        self.state(fan_in)
            .iter()
            .map(|p| p.shape[0].saturating_mul(p.shape[1]))
            .fold(0, usize::saturating_add)
    }

    pub(crate) fn forward<B: Backend>(&self, f: Forward<'_, B>) -> Result<()> {
        each!(self, l => l.forward(f))
    }

    pub(crate) fn backward<B: Backend>(&self, g: Backward<'_, B>) -> Result<()> {
        each!(self, l => l.backward(g))
    }
}

impl From<Dense> for Layer {
    fn from(l: Dense) -> Layer {
        Layer::Dense(l)
    }
}
impl From<ActivationLayer> for Layer {
    fn from(l: ActivationLayer) -> Layer {
        Layer::Activation(l)
    }
}
impl From<Dropout> for Layer {
    fn from(l: Dropout) -> Layer {
        Layer::Dropout(l)
    }
}
impl From<BatchNormalization> for Layer {
    fn from(l: BatchNormalization) -> Layer {
        Layer::BatchNormalization(l)
    }
}
impl From<PRelu> for Layer {
    fn from(l: PRelu) -> Layer {
        Layer::PRelu(l)
    }
}
impl From<RRelu> for Layer {
    fn from(l: RRelu) -> Layer {
        Layer::RRelu(l)
    }
}
impl From<Maxout> for Layer {
    fn from(l: Maxout) -> Layer {
        Layer::Maxout(l)
    }
}
impl From<Conv2D> for Layer {
    fn from(l: Conv2D) -> Layer {
        Layer::Conv2D(l)
    }
}
impl From<MaxPooling2D> for Layer {
    fn from(l: MaxPooling2D) -> Layer {
        Layer::MaxPooling2D(l)
    }
}
impl From<AveragePooling2D> for Layer {
    fn from(l: AveragePooling2D) -> Layer {
        Layer::AveragePooling2D(l)
    }
}
impl From<GlobalAveragePooling2D> for Layer {
    fn from(l: GlobalAveragePooling2D) -> Layer {
        Layer::GlobalAveragePooling2D(l)
    }
}
impl From<Flatten> for Layer {
    fn from(l: Flatten) -> Layer {
        Layer::Flatten(l)
    }
}

/// `[1, n]`, a per-unit vector.
pub(crate) fn row(n: usize) -> [usize; 2] {
    [1, n]
}

/// Keras' default weight initializer, for serde.
pub(crate) fn glorot() -> Initializer {
    Initializer::GlorotUniform
}

/// Keras' default bias initializer, for serde.
pub(crate) fn zeros() -> Initializer {
    Initializer::Zeros
}
