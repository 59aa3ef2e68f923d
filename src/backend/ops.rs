//! One definition per op: the enums the model code names, and the one table that ties each
//! variant to its WGSL code and its Keras name.
//!
//! The CPU formulas live in [`crate::backend::reference`] and the WGSL in `shaders/`; both switch on
//! the codes defined here. `tests/op_table.rs` reads the shaders and checks that every code in
//! this file matches the constant of the same name in WGSL, so the two cannot drift apart.

use crate::error::{Error, Result};

/// An element-wise (or, for softmax, row-wise) activation.
///
/// Backward takes what forward saved: both the pre-activation `z` and the output `a`. Most
/// derivatives are cheapest from `a` (sigmoid, tanh, elu); GELU and softplus need `z`.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// `a = z`.
    Linear,
    /// `a = max(z, 0)`; the derivative at 0 is taken as 0.
    Relu,
    /// `a = z` for `z > 0`, else `alpha * z`. Keras' `leaky_relu` default is `alpha = 0.2`.
    LeakyRelu {
        /// Slope for negative inputs.
        alpha: f32,
    },
    /// `a = z` for `z > 0`, else `alpha * (exp(z) - 1)`. Keras' default is `alpha = 1`.
    Elu {
        /// Saturation value for negative inputs is `-alpha`.
        alpha: f32,
    },
    /// `a = 1 / (1 + exp(-z))`, computed without overflow for any finite `z`.
    Sigmoid,
    /// `a = tanh(z)`.
    Tanh,
    /// `a = ln(1 + exp(z))`, computed as `max(z, 0) + ln(1 + exp(-|z|))`.
    Softplus,
    /// `a = z * Φ(z)` with the exact normal CDF `Φ(z) = (1 + erf(z / √2)) / 2` (Keras' default).
    Gelu,
    /// The tanh approximation `0.5 z (1 + tanh(√(2/π) (z + 0.044715 z³)))` (Keras' `approximate=True`).
    GeluTanh,
    /// `a = z * sigmoid(z)` (also called swish).
    Silu,
    /// Row-wise `a_ij = exp(z_ij - max_j z) / Σ_j exp(z_ij - max_j z)`.
    Softmax,
    /// The binary step (Heaviside): `a = 1` for `z ≥ 0`, else 0. Its derivative is 0
    /// everywhere it exists, so gradient descent cannot train through it: it is the
    /// perceptron's unit, trained by the perceptron rule ([`crate::nn::perceptron`]).
    BinaryStep,
    /// SELU (Klambauer et al. 2017): `λ z` for `z > 0`, else `λ α (e^z - 1)`, with
    /// λ = 1.0507009873554805 and α = 1.6732632423543772. Keras recommends LeCun-normal
    /// initialisation with it (`--kernel-initializer lecun_normal`).
    Selu,
    /// The Gaussian `e^{-z²}`.
    Gaussian,
    /// The Soboleva modified hyperbolic tangent `(e^{az} - e^{-bz}) / (e^{cz} + e^{-dz})`
    /// (tanh when all four are 1, the default), computed scaled so that it does not overflow
    /// where the function itself is finite.
    Soboleva {
        /// The numerator's rate for positive inputs.
        a: f32,
        /// The numerator's rate for negative inputs.
        b: f32,
        /// The denominator's rate for positive inputs.
        c: f32,
        /// The denominator's rate for negative inputs.
        d: f32,
    },
}

/// SELU's λ.
pub const SELU_LAMBDA: f64 = 1.050_700_987_355_480_5;
/// SELU's α.
pub const SELU_ALPHA: f64 = 1.673_263_242_354_377_2;

impl Activation {
    /// Every activation, with its default parameters, in table order.
    pub const ALL: [Activation; 15] = [
        Activation::Linear,
        Activation::Relu,
        Activation::LeakyRelu { alpha: 0.2 },
        Activation::Elu { alpha: 1.0 },
        Activation::Sigmoid,
        Activation::Tanh,
        Activation::Softplus,
        Activation::Gelu,
        Activation::GeluTanh,
        Activation::Silu,
        Activation::Softmax,
        Activation::BinaryStep,
        Activation::Selu,
        Activation::Gaussian,
        Activation::Soboleva {
            a: 1.0,
            b: 1.0,
            c: 1.0,
            d: 1.0,
        },
    ];

    /// The table: `(code, name)`. The code is the WGSL constant `ACT_<NAME>` in
    /// `shaders/activation.wgsl`; the name is Keras' (`gelu_tanh` is ours).
    pub fn spec(self) -> (u32, &'static str) {
        match self {
            Activation::Linear => (0, "linear"),
            Activation::Relu => (1, "relu"),
            Activation::LeakyRelu { .. } => (2, "leaky_relu"),
            Activation::Elu { .. } => (3, "elu"),
            Activation::Sigmoid => (4, "sigmoid"),
            Activation::Tanh => (5, "tanh"),
            Activation::Softplus => (6, "softplus"),
            Activation::Gelu => (7, "gelu"),
            Activation::GeluTanh => (8, "gelu_tanh"),
            Activation::Silu => (9, "silu"),
            Activation::Softmax => (10, "softmax"),
            Activation::BinaryStep => (11, "binary_step"),
            Activation::Selu => (12, "selu"),
            Activation::Gaussian => (13, "gaussian"),
            Activation::Soboleva { .. } => (14, "soboleva_tanh"),
        }
    }

    /// The WGSL code of this activation.
    pub fn code(self) -> u32 {
        self.spec().0
    }

    /// The Keras name of this activation.
    pub fn name(self) -> &'static str {
        self.spec().1
    }

    /// The parameter `alpha` (leaky relu, elu), or 0 for activations without one.
    pub fn alpha(self) -> f32 {
        self.params()[0]
    }

    /// The parameters as the kernels take them: `alpha` first (leaky relu, elu), or the
    /// Soboleva tanh's `a, b, c, d`; zeros for the activations without.
    pub fn params(self) -> [f32; 4] {
        match self {
            Activation::LeakyRelu { alpha } | Activation::Elu { alpha } => [alpha, 0.0, 0.0, 0.0],
            Activation::Soboleva { a, b, c, d } => [a, b, c, d],
            _ => [0.0; 4],
        }
    }

    /// True for softmax, whose output element depends on the whole row.
    pub fn is_row_wise(self) -> bool {
        matches!(self, Activation::Softmax)
    }

    /// Parses a Keras name (`"relu"`, `"leaky_relu"`, ...), with default parameters.
    pub fn from_name(name: &str) -> Result<Activation> {
        Activation::ALL
            .into_iter()
            .find(|a| a.name() == name)
            .ok_or_else(|| Error::Invalid {
                op: "activation",
                detail: format!(
                    "unknown activation `{name}`; valid: {}",
                    Activation::ALL.map(|a| a.name()).join(", ")
                ),
            })
    }
}

/// A loss, with its gradient with respect to the network output. Every loss is the mean over
/// the batch of a per-sample loss, as Keras' default reduction (`sum_over_batch_size`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Loss {
    /// Softmax cross-entropy from logits `[N, C]` with integer labels `[N, 1]` (stored as f32,
    /// exact below 2^24). Per sample: `logsumexp(z) - z[label]`.
    SparseSoftmaxCrossEntropy,
    /// Softmax cross-entropy from logits `[N, C]` with one-hot or probability targets `[N, C]`.
    /// Per sample: `Σ_c y_c (logsumexp(z) - z_c)`.
    SoftmaxCrossEntropy,
    /// Binary cross-entropy from logits `[N, C]`, targets in `[0, 1]`, per output in the stable
    /// form `max(z, 0) - z y + ln(1 + exp(-|z|))`, mean over the outputs.
    BinaryCrossEntropyFromLogits,
    /// Binary cross-entropy from probabilities, clipped to `[ε, 1 - ε]` with `ε = 1e-7` as Keras
    /// does; the gradient is 0 where the clip is active. Mean over the outputs.
    BinaryCrossEntropy,
    /// `mean_c (p - y)²`.
    MeanSquaredError,
    /// `mean_c |p - y|`; the derivative at 0 is taken as 0.
    MeanAbsoluteError,
    /// `mean_c h(p - y)` with `h(e) = e²/2` for `|e| ≤ δ`, else `δ (|e| - δ/2)`. Keras' default δ = 1.
    Huber {
        /// Where the loss turns from quadratic to linear.
        delta: f32,
    },
}

/// Keras' `epsilon()`, used to clip probabilities in [`Loss::BinaryCrossEntropy`].
pub const BCE_EPSILON: f32 = 1e-7;

impl Loss {
    /// Every loss, with default parameters, in table order.
    pub const ALL: [Loss; 7] = [
        Loss::SparseSoftmaxCrossEntropy,
        Loss::SoftmaxCrossEntropy,
        Loss::BinaryCrossEntropyFromLogits,
        Loss::BinaryCrossEntropy,
        Loss::MeanSquaredError,
        Loss::MeanAbsoluteError,
        Loss::Huber { delta: 1.0 },
    ];

    /// The table: `(code, name)`. The code is the WGSL constant `LOSS_<NAME>` in
    /// `shaders/loss.wgsl`.
    pub fn spec(self) -> (u32, &'static str) {
        match self {
            Loss::SparseSoftmaxCrossEntropy => (0, "sparse_softmax_cross_entropy"),
            Loss::SoftmaxCrossEntropy => (1, "softmax_cross_entropy"),
            Loss::BinaryCrossEntropyFromLogits => (2, "binary_cross_entropy_from_logits"),
            Loss::BinaryCrossEntropy => (3, "binary_cross_entropy"),
            Loss::MeanSquaredError => (4, "mean_squared_error"),
            Loss::MeanAbsoluteError => (5, "mean_absolute_error"),
            Loss::Huber { .. } => (6, "huber"),
        }
    }

    /// The WGSL code of this loss.
    pub fn code(self) -> u32 {
        self.spec().0
    }

    /// This loss's name.
    pub fn name(self) -> &'static str {
        self.spec().1
    }

    /// δ for Huber, 0 otherwise.
    pub fn delta(self) -> f32 {
        match self {
            Loss::Huber { delta } => delta,
            _ => 0.0,
        }
    }

    /// The target width this loss expects for outputs of width `cols`: 1 (an integer label)
    /// for the sparse loss, `cols` for every other.
    pub fn target_cols(self, cols: usize) -> usize {
        match self {
            Loss::SparseSoftmaxCrossEntropy => 1,
            _ => cols,
        }
    }
}

/// An optimizer's update rule and hyper-parameters. The math is written once per backend
/// (`reference::optimizer_step` and `shaders/optim.wgsl`).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Optimizer {
    /// `p -= lr * g`.
    Sgd {
        /// Learning rate.
        lr: f32,
    },
    /// Keras' momentum: `v = μ v - lr g; p += v`, or with Nesterov `p += μ v - lr g`.
    /// State: one tensor `v` per parameter, starting at zero.
    Momentum {
        /// Learning rate.
        lr: f32,
        /// μ, typically 0.9.
        momentum: f32,
        /// Use the Nesterov look-ahead form.
        nesterov: bool,
    },
    /// Adam (Kingma & Ba, Algorithm 1) with bias correction:
    /// `m = β1 m + (1-β1) g; v = β2 v + (1-β2) g²; p -= lr m̂ / (√v̂ + ε)` with
    /// `m̂ = m / (1-β1^t)`, `v̂ = v / (1-β2^t)`. With `weight_decay > 0` it is AdamW
    /// (decoupled: `p -= lr wd p` before the Adam step, as PyTorch). State: `m`, `v`.
    Adam {
        /// Learning rate (default 1e-3).
        lr: f32,
        /// β1 (default 0.9).
        beta1: f32,
        /// β2 (default 0.999).
        beta2: f32,
        /// ε (default 1e-7, Keras'; PyTorch uses 1e-8).
        eps: f32,
        /// Decoupled weight decay (0 for plain Adam).
        weight_decay: f32,
    },
}

impl Optimizer {
    /// Adam with the defaults documented on [`Optimizer::Adam`].
    pub fn adam(lr: f32) -> Optimizer {
        Optimizer::Adam {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-7,
            weight_decay: 0.0,
        }
    }

    /// The table: `(code, name)`; the code is the WGSL constant `OPT_<NAME>` in `shaders/optim.wgsl`.
    pub fn spec(self) -> (u32, &'static str) {
        match self {
            Optimizer::Sgd { .. } => (0, "sgd"),
            Optimizer::Momentum {
                nesterov: false, ..
            } => (1, "momentum"),
            Optimizer::Momentum { nesterov: true, .. } => (2, "nesterov"),
            Optimizer::Adam { .. } => (3, "adam"),
        }
    }

    /// The WGSL code of this update rule.
    pub fn code(self) -> u32 {
        self.spec().0
    }

    /// How many state tensors (each shaped like the parameter) the rule keeps.
    pub fn state_tensors(self) -> usize {
        match self {
            Optimizer::Sgd { .. } => 0,
            Optimizer::Momentum { .. } => 1,
            Optimizer::Adam { .. } => 2,
        }
    }

    /// The learning rate.
    pub fn lr(self) -> f32 {
        match self {
            Optimizer::Sgd { lr } | Optimizer::Momentum { lr, .. } | Optimizer::Adam { lr, .. } => {
                lr
            }
        }
    }

    /// Checks the hyper-parameters; the step count `t` starts at 1.
    pub fn validate(self, t: u64) -> Result<()> {
        let bad = |detail: String| {
            Err(Error::Invalid {
                op: "optimizer_step",
                detail,
            })
        };
        if !self.lr().is_finite() || self.lr() < 0.0 {
            return bad(format!(
                "learning rate must be finite and ≥ 0, got {}",
                self.lr()
            ));
        }
        match self {
            Optimizer::Momentum { momentum, .. } if !(0.0..1.0).contains(&momentum) => {
                bad(format!("momentum must be in [0, 1), got {momentum}"))
            }
            Optimizer::Adam {
                beta1,
                beta2,
                eps,
                weight_decay,
                ..
            } => {
                if !(0.0..1.0).contains(&beta1) || !(0.0..1.0).contains(&beta2) {
                    bad(format!(
                        "Adam betas must be in [0, 1), got β1 = {beta1}, β2 = {beta2}"
                    ))
                } else if eps.is_nan() || eps <= 0.0 {
                    bad(format!("Adam ε must be > 0, got {eps}"))
                } else if weight_decay.is_nan() || weight_decay < 0.0 {
                    bad(format!("weight decay must be ≥ 0, got {weight_decay}"))
                } else if t == 0 {
                    bad("Adam's step count starts at 1, got 0".into())
                } else {
                    Ok(())
                }
            }
            _ => Ok(()),
        }
    }

    /// Adam's bias corrections `(1 - β1^t, 1 - β2^t)`, computed in f64 on the host so that
    /// both backends use the same values.
    pub fn adam_bias_corrections(beta1: f32, beta2: f32, t: u64) -> (f32, f32) {
        let t = t.min(i32::MAX as u64) as i32;
        (
            (1.0 - (beta1 as f64).powi(t)) as f32,
            (1.0 - (beta2 as f64).powi(t)) as f32,
        )
    }
}

/// A per-element error summed by [`crate::backend::Backend::error_sum_into`], for the
/// regression and probabilistic metrics. Definitions are Keras', with ε = 1e-7.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PointError {
    /// `(p - y)²` (MSE, RMSE).
    Squared,
    /// `|p - y|` (MAE).
    Absolute,
    /// `100 |y - p| / max(|y|, ε)` with ε = 1e-7 (MAPE).
    AbsolutePercentage,
    /// `(ln(max(p, ε) + 1) - ln(max(y, ε) + 1))²` with ε = 1e-7 (MSLE).
    SquaredLog,
    /// `y' ln(y' / p')` with `y'`, `p'` clipped to `[ε, 1]` (KL divergence; Keras sums it over
    /// a row, so its metric divides the sum by the rows, not the elements).
    KlDivergence,
    /// `p - y ln(p + ε)` (Poisson).
    Poisson,
    /// `-(y ln p' + (1 - y) ln(1 - p'))` with `p'` clipped to `[ε, 1 - ε]` (binary
    /// cross-entropy of a probability).
    BinaryCrossentropy,
    /// `max(z, 0) - z y + ln(1 + exp(-|z|))` (binary cross-entropy of a logit, the stable form).
    BinaryCrossentropyFromLogits,
}

impl PointError {
    /// Every kind, in table order.
    pub const ALL: [PointError; 8] = [
        PointError::Squared,
        PointError::Absolute,
        PointError::AbsolutePercentage,
        PointError::SquaredLog,
        PointError::KlDivergence,
        PointError::Poisson,
        PointError::BinaryCrossentropy,
        PointError::BinaryCrossentropyFromLogits,
    ];

    /// The table: `(code, name)`; the code is the WGSL constant `ERR_<NAME>` in
    /// `shaders/reduce.wgsl`.
    pub fn spec(self) -> (u32, &'static str) {
        match self {
            PointError::Squared => (0, "squared"),
            PointError::Absolute => (1, "absolute"),
            PointError::AbsolutePercentage => (2, "absolute_percentage"),
            PointError::SquaredLog => (3, "squared_log"),
            PointError::KlDivergence => (4, "kl_divergence"),
            PointError::Poisson => (5, "poisson"),
            PointError::BinaryCrossentropy => (6, "binary_crossentropy"),
            PointError::BinaryCrossentropyFromLogits => (7, "binary_crossentropy_from_logits"),
        }
    }

    /// The WGSL code.
    pub fn code(self) -> u32 {
        self.spec().0
    }

    /// The name.
    pub fn name(self) -> &'static str {
        self.spec().1
    }
}

/// Thresholds of the ROC histogram behind the AUC metric (Keras' default `num_thresholds`).
/// Threshold `j` is `j / (N - 1)`, with the first moved just below 0 and the last just above 1.
pub const AUC_THRESHOLDS: usize = 200;

/// Slots [`crate::backend::Backend::roc_histogram_into`] fills: for each bucket (the number of
/// thresholds below a prediction, 0..=N), a count of positives, then a count of negatives.
pub const ROC_HISTOGRAM_SLOTS: usize = 2 * (AUC_THRESHOLDS + 1);

/// Which elements a dropout keeps, drawn by a counter-based generator (Threefry-2x32 with 20
/// rounds, Salmon et al. 2011) so that the reference and the GPU draw the same mask from the
/// same numbers and a resumed run needs no generator state: element `i` of layer `layer` at
/// optimizer step `step` is kept when word `i mod 2` of `threefry2x32([⌊i / 2⌋, step],
/// key(seed, layer))` is at least [`DropoutMask::drop_below`] (one draw serves two
/// elements), and a kept element is scaled by [`DropoutMask::scale`] (inverted dropout, as
/// Keras).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DropoutMask {
    /// The model's seed.
    pub seed: u64,
    /// The layer's position in the stack.
    pub layer: u32,
    /// The optimizer step the forward pass belongs to (1 for the first).
    pub step: u64,
    /// The fraction of elements dropped, in `[0, 1)`.
    pub rate: f32,
}

impl DropoutMask {
    /// The generator's key: the seed's two halves, the high one mixed with the layer.
    pub fn key(self) -> [u32; 2] {
        [
            self.seed as u32,
            (self.seed >> 32) as u32 ^ self.layer.wrapping_mul(0x9E37_79B9),
        ]
    }

    /// Element `i`'s counter for a draw of its own (RReLU's slopes): the element and the step
    /// (both mod 2³²).
    pub fn counter(self, i: usize) -> [u32; 2] {
        [i as u32, self.step as u32]
    }

    /// The counter of the draw that decides element `i` of a dropout, and which of its two
    /// words does: elements `2j` and `2j + 1` share draw `j`.
    pub fn pair_counter(self, i: usize) -> ([u32; 2], usize) {
        ([(i / 2) as u32, self.step as u32], i % 2)
    }

    /// The draws below this (`rate · 2³²`) are dropped.
    pub fn drop_below(self) -> u32 {
        (self.rate as f64 * 4_294_967_296.0).min(u32::MAX as f64) as u32
    }

    /// What a kept element is multiplied by: `1 / (1 - rate)`, rounded once to f32.
    pub fn scale(self) -> f32 {
        (1.0 / (1.0 - self.rate as f64)) as f32
    }
}

/// The slopes of a randomized leaky ReLU (Xu et al. 2015) in training: element `i` of layer
/// `layer` at optimizer step `step` has the slope `lower + (upper - lower) · u`, with `u` the
/// top 24 bits of the second word of `threefry2x32([i, step], key(seed, layer))` over 2²⁴
/// (the generator and key of [`DropoutMask`]). The backward pass draws the same slopes again.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RandomSlopes {
    /// The model's seed.
    pub seed: u64,
    /// The layer's position in the stack.
    pub layer: u32,
    /// The optimizer step the forward pass belongs to.
    pub step: u64,
    /// The smallest slope.
    pub lower: f32,
    /// The largest slope.
    pub upper: f32,
}

impl RandomSlopes {
    /// The generator's key and element `i`'s counter, as [`DropoutMask`]'s.
    pub fn mask(self) -> DropoutMask {
        DropoutMask {
            seed: self.seed,
            layer: self.layer,
            step: self.step,
            rate: 0.0,
        }
    }

    /// `u` from the generator's second word: its top 24 bits over 2²⁴, exact in f32.
    pub fn unit(word: u32) -> f32 {
        (word >> 8) as f32 * (1.0 / 16_777_216.0)
    }
}
