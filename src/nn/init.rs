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
    /// Normal with this mean and deviation, not truncated (Keras' `RandomNormal`, default
    /// mean 0, stddev 0.05). The course's small random start `w = 0.01 · randn` is
    /// `RandomNormal { mean: 0.0, stddev: 0.01 }`.
    RandomNormal {
        /// The mean.
        mean: f32,
        /// The standard deviation (≥ 0).
        stddev: f32,
    },
    /// Uniform on `[minval, maxval)` (Keras' `RandomUniform`, default ±0.05).
    RandomUniform {
        /// The lower bound.
        minval: f32,
        /// The upper bound (above `minval`).
        maxval: f32,
    },
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
        self.sample_fans([fan_in, fan_out], [fan_in, fan_out], rng)
    }

    /// `rows × cols` values for a tensor of `shape` whose fans are `fans`: for a convolution
    /// kernel `[kh·kw·C, F]`, Keras' `[kh·kw·C, kh·kw·F]` (the receptive field counts on both
    /// sides).
    pub fn sample_fans(
        &self,
        [rows, cols]: [usize; 2],
        [fan_in, fan_out]: [usize; 2],
        rng: &mut StdRng,
    ) -> Result<Vec<f32>, String> {
        let n = rows * cols;
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
        self.validate()?;
        Ok(match self {
            Initializer::Zeros => vec![0.0; n],
            &Initializer::RandomNormal { mean, stddev } => (0..n)
                .map(|_| {
                    let z: f64 = StandardNormal.sample(rng);
                    (mean as f64 + stddev as f64 * z) as f32
                })
                .collect(),
            &Initializer::RandomUniform { minval, maxval } => (0..n)
                .map(|_| rng.random_range(minval as f64..maxval as f64) as f32)
                .collect(),
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
                    "{} initial values given for a [{rows}, {cols}] tensor ({n} values)",
                    v.len()
                ))
            }
        })
    }

    /// Checks the parameters: finite, a deviation ≥ 0, bounds in order.
    pub fn validate(&self) -> Result<(), String> {
        match *self {
            Initializer::RandomNormal { mean, stddev }
                if !(mean.is_finite() && stddev.is_finite() && stddev >= 0.0) =>
            {
                Err(format!(
                    "random_normal needs a finite mean and a finite stddev ≥ 0, got mean {mean}, stddev {stddev}"
                ))
            }
            Initializer::RandomUniform { minval, maxval }
                if !(minval.is_finite() && maxval.is_finite() && minval < maxval) =>
            {
                Err(format!(
                    "random_uniform needs finite bounds with minval < maxval, got {minval}, {maxval}"
                ))
            }
            Initializer::Constant(c) if !c.is_finite() => {
                Err(format!("a constant initializer must be finite, got {c}"))
            }
            _ => Ok(()),
        }
    }

    /// Parses a Keras name, with its parameters after a colon where it has them:
    /// `glorot_uniform`, `he_normal`, `zeros`, `constant:0.1`, `random_normal` (mean 0, stddev
    /// 0.05), `random_normal:STDDEV` or `random_normal:MEAN,STDDEV` (`random_normal:0.01` is
    /// the course's ×0.01 start), `random_uniform` (±0.05), `random_uniform:LIMIT` (±LIMIT) or
    /// `random_uniform:MIN,MAX`.
    pub fn from_name(spec: &str) -> Result<Initializer, String> {
        let (name, args) = match spec.split_once(':') {
            Some((n, a)) => (n.trim(), Some(a)),
            None => (spec.trim(), None),
        };
        let numbers = |a: &str| -> Result<Vec<f32>, String> {
            a.split(',')
                .map(|v| {
                    v.trim()
                        .parse::<f32>()
                        .map_err(|_| format!("{name}: `{}` is not a number", v.trim()))
                })
                .collect()
        };
        let nums = args.map(numbers).transpose()?;
        let init = match (name, nums.as_deref()) {
            ("constant", Some(&[c])) => Initializer::Constant(c),
            ("random_normal", None) => Initializer::RandomNormal {
                mean: 0.0,
                stddev: 0.05,
            },
            ("random_normal", Some(&[stddev])) => Initializer::RandomNormal { mean: 0.0, stddev },
            ("random_normal", Some(&[mean, stddev])) => Initializer::RandomNormal { mean, stddev },
            ("random_uniform", None) => Initializer::RandomUniform {
                minval: -0.05,
                maxval: 0.05,
            },
            ("random_uniform", Some(&[limit])) => Initializer::RandomUniform {
                minval: -limit,
                maxval: limit,
            },
            ("random_uniform", Some(&[minval, maxval])) => {
                Initializer::RandomUniform { minval, maxval }
            }
            ("constant" | "random_normal" | "random_uniform", _) => {
                return Err(format!(
                    "`{spec}`: write constant:VALUE, random_normal[:STDDEV | :MEAN,STDDEV] or \
                     random_uniform[:LIMIT | :MIN,MAX]"
                ))
            }
            (_, Some(_)) if Initializer::from_plain(name).is_ok() => {
                return Err(format!("`{spec}`: {name} takes no parameters"))
            }
            _ => Initializer::from_plain(name)?,
        };
        init.validate()?;
        Ok(init)
    }

    fn from_plain(name: &str) -> Result<Initializer, String> {
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
                "unknown initializer `{name}`; valid: zeros, ones, constant:VALUE, glorot_uniform, \
                     glorot_normal, he_uniform, he_normal, lecun_uniform, lecun_normal, \
                     random_normal[:STDDEV | :MEAN,STDDEV], random_uniform[:LIMIT | :MIN,MAX]"
            ))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn stats(v: &[f32]) -> (f64, f64) {
        let n = v.len() as f64;
        let mean = v.iter().map(|&x| x as f64).sum::<f64>() / n;
        let var = v.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n;
        (mean, var.sqrt())
    }

    #[test]
    fn random_normal_and_uniform_have_their_moments_and_bounds() {
        let mut rng = StdRng::seed_from_u64(1);
        let v = Initializer::from_name("random_normal:0.01")
            .unwrap()
            .sample(200, 100, &mut rng)
            .unwrap();
        let (mean, sd) = stats(&v);
        assert!(mean.abs() < 2e-4 && (sd - 0.01).abs() < 2e-4, "{mean} {sd}");
        let v = Initializer::RandomNormal {
            mean: 1.0,
            stddev: 2.0,
        }
        .sample(200, 100, &mut rng)
        .unwrap();
        let (mean, sd) = stats(&v);
        assert!(
            (mean - 1.0).abs() < 0.05 && (sd - 2.0).abs() < 0.05,
            "{mean} {sd}"
        );
        // Not truncated: about 4.6% of a normal lies past 2σ.
        let past = v.iter().filter(|&&x| (x - 1.0).abs() > 4.0).count() as f64 / v.len() as f64;
        assert!((past - 0.0455).abs() < 0.01, "{past}");

        let v = Initializer::from_name("random_uniform:-0.3,0.1")
            .unwrap()
            .sample(200, 100, &mut rng)
            .unwrap();
        assert!(v.iter().all(|&x| (-0.3..0.1).contains(&x)));
        let (mean, sd) = stats(&v);
        // Uniform on [a, b): mean (a + b) / 2, deviation (b - a) / √12.
        assert!((mean + 0.1).abs() < 3e-3 && (sd - 0.4 / 12f64.sqrt()).abs() < 3e-3);
        assert_eq!(
            Initializer::from_name("random_uniform").unwrap(),
            Initializer::RandomUniform {
                minval: -0.05,
                maxval: 0.05
            }
        );
    }

    #[test]
    fn bad_parameters_are_errors_not_panics() {
        for (spec, says) in [
            ("random_uniform:0.1,0.1", "minval < maxval"),
            ("random_uniform:0.2,0.1", "minval < maxval"),
            ("random_normal:-1", "stddev ≥ 0"),
            ("random_normal:0,1,2", "write constant:VALUE"),
            ("random_normal:x", "not a number"),
            ("constant", "write constant:VALUE"),
            ("he_normal:2", "takes no parameters"),
            ("orthogonal", "unknown initializer"),
        ] {
            let err = Initializer::from_name(spec).unwrap_err();
            assert!(err.contains(says), "{spec}: {err}");
        }
        let mut rng = StdRng::seed_from_u64(1);
        let bad = Initializer::RandomUniform {
            minval: 1.0,
            maxval: 0.0,
        };
        assert!(bad.sample(2, 2, &mut rng).is_err());
    }
}
