//! `Conv2D(filters, kernel_size, strides, padding, activation, use_bias)`: Keras' 2-D
//! convolution of channels-last images, `z = conv(x, K) + b`, `a = act(z)`; each output
//! looks at one `kh × kw` window of the input, the same kernel at every position.
//! `kh·kw·C·F + F` parameters. Tensors `conv2d_{i}.kernel` `[kh, kw, C, F]` (Keras' layout)
//! and `conv2d_{i}.bias` `[F]`. The layer keeps its input's image shape, set when the model is
//! built ([`Kind::bind`]).

use serde::{Deserialize, Serialize};

use super::dense::validate_linear;
use super::{glorot, row, zeros, Backward, Forward, Kind, ParamSpec, Regularizer, Shape};
use crate::backend::{Activation, Backend, Padding, Window};
use crate::error::Result;
use crate::nn::Initializer;

/// A 2-D convolution with `filters` output channels.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Conv2D {
    /// Output channels.
    pub filters: usize,
    /// The window's rows and columns.
    pub kernel_size: [usize; 2],
    /// How far the window moves down and across (1, 1).
    pub strides: [usize; 2],
    /// `valid` (no padding, the default) or `same`.
    pub padding: Padding,
    /// Applied to `z` (linear by default, as in Keras); not softmax.
    pub activation: Activation,
    /// Whether there is a bias (true).
    pub use_bias: bool,
    /// How the kernel starts (Glorot uniform, over the receptive field).
    #[serde(skip, default = "glorot")]
    pub kernel_initializer: Initializer,
    /// How the bias starts (zeros).
    #[serde(skip, default = "zeros")]
    pub bias_initializer: Initializer,
    /// A penalty on the kernel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel_regularizer: Option<Regularizer>,
    /// A penalty on the bias.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bias_regularizer: Option<Regularizer>,
    /// The input images' `[height, width, channels]`, set when the model is built.
    #[serde(default)]
    pub input: Option<[usize; 3]>,
}

impl Conv2D {
    /// `filters` channels from a square `kernel × kernel` window, stride 1, 'valid', with
    /// `activation`, a bias, and Keras' default initializers.
    pub fn new(filters: usize, kernel: usize, activation: Activation) -> Conv2D {
        Conv2D {
            filters,
            kernel_size: [kernel, kernel],
            strides: [1, 1],
            padding: Padding::Valid,
            activation,
            use_bias: true,
            kernel_initializer: Initializer::GlorotUniform,
            bias_initializer: Initializer::Zeros,
            kernel_regularizer: None,
            bias_regularizer: None,
            input: None,
        }
    }

    /// The same layer moving by `stride` in both directions.
    pub fn strides(mut self, stride: usize) -> Conv2D {
        self.strides = [stride, stride];
        self
    }

    /// The same layer with `padding`.
    pub fn padding(mut self, padding: Padding) -> Conv2D {
        self.padding = padding;
        self
    }

    /// The same layer with or without its bias.
    pub fn use_bias(mut self, yes: bool) -> Conv2D {
        self.use_bias = yes;
        self
    }

    /// The same layer with a penalty on its kernel.
    pub fn kernel_regularizer(mut self, r: Regularizer) -> Conv2D {
        self.kernel_regularizer = Some(r);
        self
    }

    /// The window over the bound input (none before the model is built).
    pub fn window(&self) -> Option<Window> {
        self.input.map(|input| Window {
            input,
            kernel: self.kernel_size,
            strides: self.strides,
            padding: self.padding,
        })
    }

    fn channels(&self) -> usize {
        self.input.map_or(0, |[_, _, c]| c)
    }
}

impl Kind for Conv2D {
    const NAME: &'static str = "conv2d";

    fn validate(&self) -> std::result::Result<(), String> {
        validate_linear(
            self.filters,
            [self.kernel_regularizer, self.bias_regularizer],
            [&self.kernel_initializer, &self.bias_initializer],
        )
        .map_err(|e| e.replace("units", "filters"))?;
        let [kh, kw] = self.kernel_size;
        let [sh, sw] = self.strides;
        if kh == 0 || kw == 0 || sh == 0 || sw == 0 {
            return Err(format!(
                "a {kh}×{kw} kernel with strides {sh}×{sw}: every size must be at least 1"
            ));
        }
        if self.activation == Activation::Softmax {
            return Err("softmax over a feature map would normalise across positions and filters together; use it on a Dense layer after Flatten".into());
        }
        Ok(())
    }

    fn bind(&mut self, input: Shape) -> std::result::Result<Shape, String> {
        let image = match (input, self.input) {
            (Shape::Image(s), _) => s,
            // A restored layer keeps the shape it was built for.
            (Shape::Flat, Some(s)) => s,
            (Shape::Flat, None) => {
                return Err(
                    "a convolution needs images: give the model its input shape (Sequential::input_shape, --input-shape H,W,C; IDX files and the built-in digits carry theirs), or put it before Flatten".into(),
                )
            }
        };
        self.input = Some(image);
        let w = self.window().expect("just bound");
        w.validate()?;
        let [oh, ow] = w.output();
        Ok(Shape::Image([oh, ow, self.filters]))
    }

    fn width(&self, _fan_in: usize) -> usize {
        self.window().map_or(0, |w| w.positions() * self.filters)
    }

    fn params(&self, _fan_in: usize) -> Vec<ParamSpec> {
        let [kh, kw] = self.kernel_size;
        let c = self.channels();
        let mut p = vec![ParamSpec {
            name: "kernel",
            shape: [kh * kw * c, self.filters],
            init: self.kernel_initializer.clone(),
            regularizer: self.kernel_regularizer,
            conv_kernel: Some([kh, kw, c, self.filters]),
        }];
        if self.use_bias {
            p.push(ParamSpec {
                name: "bias",
                shape: row(self.filters),
                init: self.bias_initializer.clone(),
                regularizer: self.bias_regularizer,
                conv_kernel: None,
            });
        }
        p
    }

    /// `z` and `dz`, `[N, Ho·Wo·F]`.
    fn scratch(&self, fan_in: usize) -> Vec<usize> {
        vec![self.width(fan_in); 2]
    }

    fn describe(&self) -> String {
        let [kh, kw] = self.kernel_size;
        let [sh, sw] = self.strides;
        let stride = if [sh, sw] == [1, 1] {
            String::new()
        } else {
            format!(", strides {sh}×{sw}")
        };
        format!(
            "{} filters {kh}×{kw}{stride}, {}, {}",
            self.filters,
            self.padding.name(),
            self.activation.name()
        )
    }

    fn forward<B: Backend>(&self, f: Forward<'_, B>) -> Result<()> {
        let w = self.window().expect("a built model's layers are bound");
        let bias = self.use_bias.then(|| &f.params[1]);
        let z = &mut f.scratch[0];
        f.b.conv2d_forward(f.x, &f.params[0], bias, &w, self.activation, z, f.y)
    }

    /// `dz = act'(z) ⊙ dy` (nothing for a linear layer), then the kernel and bias gradients,
    /// and `dx` where the layer below needs it.
    fn backward<B: Backend>(&self, g: Backward<'_, B>) -> Result<()> {
        let w = self.window().expect("a built model's layers are bound");
        let (z, dz) = g.scratch.split_at_mut(1);
        let dz: &B::Tensor = if self.activation == Activation::Linear {
            g.dy
        } else {
            g.b.activation_backward(self.activation, &z[0], g.y, g.dy, &mut dz[0])?;
            &dz[0]
        };
        let (dk, db) = g.grads.split_at_mut(1);
        g.b.conv2d_backward_kernel(g.x, dz, &w, &mut dk[0], db.first_mut())?;
        if g.need_dx {
            g.b.conv2d_backward_input(dz, &g.params[0], &w, g.dx)?;
        }
        Ok(())
    }
}
