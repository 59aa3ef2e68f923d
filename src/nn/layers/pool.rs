//! The layers that reshape images without parameters: `MaxPooling2D(pool_size, strides,
//! padding)` (the largest value of each window, the gradient routed to it),
//! `AveragePooling2D` (the mean of each window), `GlobalAveragePooling2D` (the mean of each
//! channel, giving feature vectors) and `Flatten` (images read as feature vectors, which in
//! the backend they already are). Each keeps its input's image shape, set when the model is
//! built ([`Kind::bind`]).

use serde::{Deserialize, Serialize};

use super::{Backward, Forward, Kind, Shape};
use crate::backend::{Backend, Padding, Window};
use crate::error::Result;

/// The image a pooling layer was given, or why it cannot take `input`.
fn image(
    input: Shape,
    bound: Option<[usize; 3]>,
    what: &str,
) -> std::result::Result<[usize; 3], String> {
    match (input, bound) {
        (Shape::Image(s), _) => Ok(s),
        (Shape::Flat, Some(s)) => Ok(s),
        (Shape::Flat, None) => Err(format!(
            "{what} needs images, got flat features: give the model its input shape (Sequential::input_shape, --input-shape H,W,C), or put it before Flatten"
        )),
    }
}

/// What `MaxPooling2D` and `AveragePooling2D` share: the window and the bound input.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Pooling {
    /// The window's rows and columns.
    pub pool_size: [usize; 2],
    /// How far it moves (the pool size by default, as in Keras).
    pub strides: [usize; 2],
    /// `valid` (the default) or `same`.
    pub padding: Padding,
    /// The input images' `[height, width, channels]`, set when the model is built.
    #[serde(default)]
    pub input: Option<[usize; 3]>,
}

impl Pooling {
    fn new(pool: usize) -> Pooling {
        Pooling {
            pool_size: [pool, pool],
            strides: [pool, pool],
            padding: Padding::Valid,
            input: None,
        }
    }

    /// The window over the bound input.
    pub fn window(&self) -> Option<Window> {
        self.input.map(|input| Window {
            input,
            kernel: self.pool_size,
            strides: self.strides,
            padding: self.padding,
        })
    }

    fn validate(&self) -> std::result::Result<(), String> {
        let [ph, pw] = self.pool_size;
        let [sh, sw] = self.strides;
        if ph == 0 || pw == 0 || sh == 0 || sw == 0 {
            return Err(format!(
                "a {ph}×{pw} pool with strides {sh}×{sw}: every size must be at least 1"
            ));
        }
        Ok(())
    }

    fn bind(&mut self, input: Shape, what: &str) -> std::result::Result<Shape, String> {
        let s = image(input, self.input, what)?;
        self.input = Some(s);
        let w = self.window().expect("just bound");
        w.validate()?;
        let [oh, ow] = w.output();
        Ok(Shape::Image([oh, ow, s[2]]))
    }

    fn width(&self) -> usize {
        self.window().map_or(0, |w| w.positions() * w.input[2])
    }

    fn describe(&self) -> String {
        let ([ph, pw], [sh, sw]) = (self.pool_size, self.strides);
        format!("{ph}×{pw}, strides {sh}×{sw}, {}", self.padding.name())
    }
}

macro_rules! pooling_layer {
    ($name:ident, $doc:literal) => {
        #[doc = $doc]
        #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
        pub struct $name {
            /// The window, its strides and padding, and the input.
            #[serde(flatten)]
            pub pool: Pooling,
        }

        impl $name {
            /// A `pool × pool` window moving by its own size, 'valid'.
            pub fn new(pool: usize) -> $name {
                $name {
                    pool: Pooling::new(pool),
                }
            }

            /// The same layer moving by `stride`.
            pub fn strides(mut self, stride: usize) -> $name {
                self.pool.strides = [stride, stride];
                self
            }

            /// The same layer with `padding`.
            pub fn padding(mut self, padding: Padding) -> $name {
                self.pool.padding = padding;
                self
            }
        }
    };
}

pooling_layer!(
    MaxPooling2D,
    "The largest value of each window, in each channel."
);
pooling_layer!(
    AveragePooling2D,
    "The mean of each window, in each channel."
);

impl Kind for MaxPooling2D {
    const NAME: &'static str = "max_pooling2d";

    fn validate(&self) -> std::result::Result<(), String> {
        self.pool.validate()
    }

    fn bind(&mut self, input: Shape) -> std::result::Result<Shape, String> {
        self.pool.bind(input, "max pooling")
    }

    fn width(&self, _fan_in: usize) -> usize {
        self.pool.width()
    }

    /// Where each output's value came from, for the backward pass.
    fn scratch(&self, _fan_in: usize) -> Vec<usize> {
        vec![self.pool.width()]
    }

    fn describe(&self) -> String {
        self.pool.describe()
    }

    fn forward<B: Backend>(&self, f: Forward<'_, B>) -> Result<()> {
        let w = self
            .pool
            .window()
            .expect("a built model's layers are bound");
        f.b.max_pool_forward(f.x, &w, f.y, &mut f.scratch[0])
    }

    fn backward<B: Backend>(&self, g: Backward<'_, B>) -> Result<()> {
        if g.need_dx {
            let w = self
                .pool
                .window()
                .expect("a built model's layers are bound");
            g.b.max_pool_backward(g.dy, &g.scratch[0], &w, g.dx)?;
        }
        Ok(())
    }
}

impl Kind for AveragePooling2D {
    const NAME: &'static str = "average_pooling2d";

    fn validate(&self) -> std::result::Result<(), String> {
        self.pool.validate()
    }

    fn bind(&mut self, input: Shape) -> std::result::Result<Shape, String> {
        self.pool.bind(input, "average pooling")
    }

    fn width(&self, _fan_in: usize) -> usize {
        self.pool.width()
    }

    fn describe(&self) -> String {
        self.pool.describe()
    }

    fn forward<B: Backend>(&self, f: Forward<'_, B>) -> Result<()> {
        let w = self
            .pool
            .window()
            .expect("a built model's layers are bound");
        f.b.avg_pool_forward(f.x, &w, f.y)
    }

    fn backward<B: Backend>(&self, g: Backward<'_, B>) -> Result<()> {
        if g.need_dx {
            let w = self
                .pool
                .window()
                .expect("a built model's layers are bound");
            g.b.avg_pool_backward(g.dy, &w, g.dx)?;
        }
        Ok(())
    }
}

/// The mean of each channel over the whole image: `[H, W, C]` images to `C` features.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GlobalAveragePooling2D {
    /// The input images' `[height, width, channels]`, set when the model is built.
    #[serde(default)]
    pub input: Option<[usize; 3]>,
}

impl GlobalAveragePooling2D {
    /// The layer.
    pub fn new() -> GlobalAveragePooling2D {
        GlobalAveragePooling2D::default()
    }

    /// Average pooling with one window the size of the image.
    fn window(&self) -> Option<Window> {
        self.input.map(|input| Window {
            input,
            kernel: [input[0], input[1]],
            strides: [input[0], input[1]],
            padding: Padding::Valid,
        })
    }
}

impl Kind for GlobalAveragePooling2D {
    const NAME: &'static str = "global_average_pooling2d";

    fn validate(&self) -> std::result::Result<(), String> {
        Ok(())
    }

    fn bind(&mut self, input: Shape) -> std::result::Result<Shape, String> {
        self.input = Some(image(input, self.input, "global average pooling")?);
        Ok(Shape::Flat)
    }

    fn width(&self, _fan_in: usize) -> usize {
        self.input.map_or(0, |[_, _, c]| c)
    }

    fn describe(&self) -> String {
        "mean per channel".into()
    }

    fn forward<B: Backend>(&self, f: Forward<'_, B>) -> Result<()> {
        let w = self.window().expect("a built model's layers are bound");
        f.b.avg_pool_forward(f.x, &w, f.y)
    }

    fn backward<B: Backend>(&self, g: Backward<'_, B>) -> Result<()> {
        if g.need_dx {
            let w = self.window().expect("a built model's layers are bound");
            g.b.avg_pool_backward(g.dy, &w, g.dx)?;
        }
        Ok(())
    }
}

/// Images read as feature vectors (row-major, channels last): the values do not move, so
/// inference passes the input through and training copies it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Flatten {}

impl Flatten {
    /// The layer.
    pub fn new() -> Flatten {
        Flatten {}
    }
}

impl Kind for Flatten {
    const NAME: &'static str = "flatten";

    fn validate(&self) -> std::result::Result<(), String> {
        Ok(())
    }

    fn width(&self, fan_in: usize) -> usize {
        fan_in
    }

    fn identity_in_inference(&self) -> bool {
        true
    }

    fn describe(&self) -> String {
        "to feature vectors".into()
    }

    fn forward<B: Backend>(&self, f: Forward<'_, B>) -> Result<()> {
        f.b.copy(f.x, f.y)
    }

    fn backward<B: Backend>(&self, g: Backward<'_, B>) -> Result<()> {
        if g.need_dx {
            g.b.copy(g.dy, g.dx)?;
        }
        Ok(())
    }
}
