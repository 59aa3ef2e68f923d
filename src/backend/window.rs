//! The geometry of a 2-D sliding window over a batch of channels-last images: what a
//! convolution and a pooling op share. A batch of images `[N, H, W, C]` is the 2-D tensor
//! `[N, H·W·C]`, row-major, so that element `(n, y, x, c)` is at column `(y·W + x)·C + c` of
//! row `n`; an op's output `[N, Ho, Wo, C']` is laid out the same way.

use serde::{Deserialize, Serialize};

/// Keras' `padding`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Padding {
    /// No padding: only windows that fit inside the image (`Ho = ⌊(H − kh) / sh⌋ + 1`).
    #[default]
    Valid,
    /// Zeros around the image so that `Ho = ⌈H / sh⌉`; when the padding needed is odd, the
    /// extra row (column) goes after the image, as TensorFlow does.
    Same,
}

impl Padding {
    /// `valid` or `same`.
    pub fn name(self) -> &'static str {
        match self {
            Padding::Valid => "valid",
            Padding::Same => "same",
        }
    }
}

/// A window of `kernel` (rows, columns) moved by `strides` over images of `input`
/// (height, width, channels) with `padding`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Window {
    /// The images' height, width and channels.
    pub input: [usize; 3],
    /// The window's rows and columns.
    pub kernel: [usize; 2],
    /// How far it moves down and across.
    pub strides: [usize; 2],
    /// How the edges are treated.
    pub padding: Padding,
}

impl Window {
    /// Whether the window fits the images: every size at least 1 and, without padding, the
    /// kernel no larger than the image. The error is a sentence with both shapes.
    pub fn validate(&self) -> Result<(), String> {
        let [h, w, c] = self.input;
        let [kh, kw] = self.kernel;
        let [sh, sw] = self.strides;
        if h == 0 || w == 0 || c == 0 {
            return Err(format!("an input of {h}×{w}×{c} has no elements"));
        }
        if kh == 0 || kw == 0 || sh == 0 || sw == 0 {
            return Err(format!(
                "a window of {kh}×{kw} with strides {sh}×{sw}: every size must be at least 1"
            ));
        }
        if self.padding == Padding::Valid && (kh > h || kw > w) {
            return Err(format!(
                "a {kh}×{kw} window does not fit a {h}×{w} input with 'valid' padding (use a smaller window, or 'same' padding)"
            ));
        }
        // Offsets within one image must be exact in f32 (the winners of max pooling are
        // stored as f32) and in the GPU's u32 indices.
        if h.saturating_mul(w).saturating_mul(c) > 1 << 24 {
            return Err(format!("an image of {h}×{w}×{c} has more than 2^24 values"));
        }
        Ok(())
    }

    /// The output's height and width.
    pub fn output(&self) -> [usize; 2] {
        let out = |i: usize, k: usize, s: usize| match self.padding {
            Padding::Valid => (i.saturating_sub(k)) / s + 1,
            Padding::Same => i.div_ceil(s),
        };
        [
            out(self.input[0], self.kernel[0], self.strides[0]),
            out(self.input[1], self.kernel[1], self.strides[1]),
        ]
    }

    /// The padding before the image: rows above, columns to the left.
    pub fn pad_before(&self) -> [usize; 2] {
        let [oh, ow] = self.output();
        let pad = |o: usize, s: usize, k: usize, i: usize| match self.padding {
            Padding::Valid => 0,
            Padding::Same => ((o - 1) * s + k).saturating_sub(i) / 2,
        };
        [
            pad(oh, self.strides[0], self.kernel[0], self.input[0]),
            pad(ow, self.strides[1], self.kernel[1], self.input[1]),
        ]
    }

    /// Values per input image: `H·W·C`.
    pub fn input_len(&self) -> usize {
        self.input[0] * self.input[1] * self.input[2]
    }

    /// Output positions per image: `Ho·Wo`.
    pub fn positions(&self) -> usize {
        let [oh, ow] = self.output();
        oh * ow
    }

    /// The input position `(y, x)` that kernel tap `(i, j)` of output position `(oy, ox)`
    /// reads, or `None` where it falls in the padding.
    #[inline]
    pub fn tap(&self, [oy, ox]: [usize; 2], [i, j]: [usize; 2]) -> Option<[usize; 2]> {
        let [pt, pl] = self.pad_before();
        let y = (oy * self.strides[0] + i).checked_sub(pt)?;
        let x = (ox * self.strides[1] + j).checked_sub(pl)?;
        (y < self.input[0] && x < self.input[1]).then_some([y, x])
    }
}

/// The [`Backend`](super::Backend) methods of the convolution and pooling ops, each calling
/// the function of the same name in `$ops` with the backend first (the function checks its
/// operands): one list of the seven signatures for every backend, whose tensors are `$t`.
/// With `fused`, also `conv2d_forward` (the convolution with its activation), for backends
/// whose `$ops` fuses it.
#[macro_export]
#[doc(hidden)]
macro_rules! window_ops {
    ($t:ty, $ops:path, fused) => {
        $crate::window_ops!($t, $ops);

        #[allow(clippy::too_many_arguments)]
        fn conv2d_forward(
            &mut self,
            x: &$t,
            kernel: &$t,
            bias: Option<&$t>,
            window: &$crate::backend::Window,
            act: $crate::backend::Activation,
            z: &mut $t,
            a: &mut $t,
        ) -> $crate::Result<()> {
            use $ops as ops;
            ops::conv2d_forward(self, x, kernel, bias, window, act, z, a)
        }
    };
    ($t:ty, $ops:path) => {
        fn conv2d(
            &mut self,
            x: &$t,
            kernel: &$t,
            bias: Option<&$t>,
            window: &$crate::backend::Window,
            z: &mut $t,
        ) -> $crate::Result<()> {
            use $ops as ops;
            ops::conv2d(self, x, kernel, bias, window, z)
        }

        fn conv2d_backward_input(
            &mut self,
            dz: &$t,
            kernel: &$t,
            window: &$crate::backend::Window,
            dx: &mut $t,
        ) -> $crate::Result<()> {
            use $ops as ops;
            ops::conv2d_backward_input(self, dz, kernel, window, dx)
        }

        fn conv2d_backward_kernel(
            &mut self,
            x: &$t,
            dz: &$t,
            window: &$crate::backend::Window,
            dkernel: &mut $t,
            dbias: Option<&mut $t>,
        ) -> $crate::Result<()> {
            use $ops as ops;
            ops::conv2d_backward_kernel(self, x, dz, window, dkernel, dbias)
        }

        fn max_pool_forward(
            &mut self,
            x: &$t,
            window: &$crate::backend::Window,
            y: &mut $t,
            winners: &mut $t,
        ) -> $crate::Result<()> {
            use $ops as ops;
            ops::max_pool_forward(self, x, window, y, winners)
        }

        fn max_pool_backward(
            &mut self,
            dy: &$t,
            winners: &$t,
            window: &$crate::backend::Window,
            dx: &mut $t,
        ) -> $crate::Result<()> {
            use $ops as ops;
            ops::max_pool_backward(self, dy, winners, window, dx)
        }

        fn avg_pool_forward(
            &mut self,
            x: &$t,
            window: &$crate::backend::Window,
            y: &mut $t,
        ) -> $crate::Result<()> {
            use $ops as ops;
            ops::avg_pool_forward(self, x, window, y)
        }

        fn avg_pool_backward(
            &mut self,
            dy: &$t,
            window: &$crate::backend::Window,
            dx: &mut $t,
        ) -> $crate::Result<()> {
            use $ops as ops;
            ops::avg_pool_backward(self, dy, window, dx)
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(input: [usize; 3], k: usize, s: usize, padding: Padding) -> Window {
        Window {
            input,
            kernel: [k, k],
            strides: [s, s],
            padding,
        }
    }

    /// TensorFlow's sizes: `valid` ⌊(H − k)/s⌋ + 1, `same` ⌈H/s⌉ with the odd row after.
    #[test]
    fn output_sizes_and_padding_are_tensorflows() {
        let w = window([28, 28, 1], 3, 1, Padding::Valid);
        assert_eq!((w.output(), w.pad_before()), ([26, 26], [0, 0]));
        let w = window([7, 7, 3], 3, 2, Padding::Valid);
        assert_eq!(w.output(), [3, 3]);
        let w = window([7, 7, 3], 3, 2, Padding::Same);
        assert_eq!((w.output(), w.pad_before()), ([4, 4], [1, 1]));
        // An even kernel with 'same': 3 rows of padding, 1 before and 2 after.
        let w = window([5, 5, 1], 4, 1, Padding::Same);
        assert_eq!((w.output(), w.pad_before()), ([5, 5], [1, 1]));
        let w = window([6, 6, 1], 2, 2, Padding::Same);
        assert_eq!((w.output(), w.pad_before()), ([3, 3], [0, 0]));
        assert_eq!(w.tap([0, 0], [1, 1]), Some([1, 1]));
        let w = window([5, 5, 1], 4, 1, Padding::Same);
        assert_eq!(w.tap([0, 0], [0, 0]), None);
        // Two rows after the image: the last output's taps 2 and 3 read padding.
        assert_eq!(
            w.tap([4, 4], [2, 2]),
            None,
            "the extra rows are after the image"
        );
        assert_eq!(w.tap([4, 4], [1, 1]), Some([4, 4]));
    }

    #[test]
    fn windows_that_do_not_fit_say_both_shapes() {
        let e = window([2, 2, 1], 3, 1, Padding::Valid)
            .validate()
            .unwrap_err();
        assert!(e.contains("3×3") && e.contains("2×2"), "{e}");
        assert!(window([2, 2, 1], 3, 1, Padding::Same).validate().is_ok());
        assert!(window([2, 2, 1], 1, 0, Padding::Same).validate().is_err());
    }
}
