//! Weight initializers, Keras' definitions. Every draw comes from the model's seeded generator,
//! so a model built twice from one seed has the same weights.

use rand::rngs::StdRng;
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

/// How a layer's weights or biases start.
#[derive(Clone, Debug, PartialEq)]
pub enum Initializer {
    /// All zeros (Keras' default for biases). Never for weights of a hidden layer: every unit
    /// would compute the same thing and get the same gradient, forever.
    Zeros,
    /// Every value the same.
    Constant(f32),
    /// Uniform on `±√(6 / (fan_in + fan_out))` (Keras' default for weights).
    GlorotUniform,
    /// Truncated normal with `σ = √(2 / (fan_in + fan_out))`.
    GlorotNormal,
    /// Uniform on `±√(6 / fan_in)`: for relu layers.
    HeUniform,
    /// Truncated normal with `σ = √(2 / fan_in)`: for relu layers.
    HeNormal,
    /// Uniform on `±√(3 / fan_in)`: for selu/tanh layers.
    LecunUniform,
    /// Truncated normal with `σ = √(1 / fan_in)`.
    LecunNormal,
    /// Exactly these values (row-major `[fan_in, fan_out]` for weights, `[fan_out]` for biases).
    Values(Vec<f32>),
}

/// Keras draws "normal" initializers from a normal truncated at 2σ, scaled by this factor so
/// that the truncated distribution keeps the intended variance.
const TRUNCATED_STDDEV_CORRECTION: f64 = 0.879_625_661_034_239_8;

impl Initializer {
    /// `fan_in × fan_out` values for a weight matrix, or `fan_out` values for a bias
    /// (`fan_in = 1`).
    pub fn sample(
        &self,
        fan_in: usize,
        fan_out: usize,
        rng: &mut StdRng,
    ) -> Result<Vec<f32>, String> {
        let n = fan_in * fan_out;
        let (fi, fo) = (fan_in as f64, fan_out as f64);
        let uniform = |limit: f64, rng: &mut StdRng| -> Vec<f32> {
            (0..n)
                .map(|_| rng.random_range(-limit..limit) as f32)
                .collect()
        };
        let truncated = |stddev: f64, rng: &mut StdRng| -> Vec<f32> {
            let s = stddev / TRUNCATED_STDDEV_CORRECTION;
            (0..n)
                .map(|_| loop {
                    let z: f64 = StandardNormal.sample(rng);
                    if z.abs() <= 2.0 {
                        break (z * s) as f32;
                    }
                })
                .collect()
        };
        Ok(match self {
            Initializer::Zeros => vec![0.0; n],
            Initializer::Constant(c) => vec![*c; n],
            Initializer::GlorotUniform => uniform((6.0 / (fi + fo)).sqrt(), rng),
            Initializer::GlorotNormal => truncated((2.0 / (fi + fo)).sqrt(), rng),
            Initializer::HeUniform => uniform((6.0 / fi).sqrt(), rng),
            Initializer::HeNormal => truncated((2.0 / fi).sqrt(), rng),
            Initializer::LecunUniform => uniform((3.0 / fi).sqrt(), rng),
            Initializer::LecunNormal => truncated((1.0 / fi).sqrt(), rng),
            Initializer::Values(v) if v.len() == n => v.clone(),
            Initializer::Values(v) => {
                return Err(format!(
                    "{} initial values given for a [{fan_in}, {fan_out}] tensor ({n} values)",
                    v.len()
                ))
            }
        })
    }

    /// Parses a Keras name: `glorot_uniform`, `he_normal`, `zeros`, ...
    pub fn from_name(name: &str) -> Result<Initializer, String> {
        Ok(match name {
            "zeros" => Initializer::Zeros,
            "ones" => Initializer::Constant(1.0),
            "glorot_uniform" => Initializer::GlorotUniform,
            "glorot_normal" => Initializer::GlorotNormal,
            "he_uniform" => Initializer::HeUniform,
            "he_normal" => Initializer::HeNormal,
            "lecun_uniform" => Initializer::LecunUniform,
            "lecun_normal" => Initializer::LecunNormal,
            _ => {
                return Err(format!(
                "unknown initializer `{name}`; valid: zeros, ones, glorot_uniform, glorot_normal, \
                     he_uniform, he_normal, lecun_uniform, lecun_normal"
            ))
            }
        })
    }
}
