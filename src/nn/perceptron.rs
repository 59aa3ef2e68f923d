//! The course's first lecture: the McCulloch–Pitts threshold unit and Rosenblatt's perceptron.
//!
//! These run on the host: they are a handful of boolean inputs and a few weights, and they
//! are here so that the first things the course teaches can be done, and checked, with
//! wgtrain. The networks of the rest of the course are [`crate::nn::Sequential`].

/// A McCulloch–Pitts unit: boolean inputs, each excitatory or inhibitory, and a threshold
/// θ. It fires (outputs 1) when no inhibitory input is on and at least θ excitatory inputs
/// are: `y = 1` iff `Σ excitatory x_i ≥ θ` and every inhibitory `x_i = 0`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ThresholdUnit {
    /// For each input, whether it is inhibitory (an absolute veto).
    pub inhibitory: Vec<bool>,
    /// The threshold θ on the count of excitatory inputs that are on.
    pub theta: usize,
}

impl ThresholdUnit {
    /// AND of `n` inputs: all excitatory, θ = n.
    pub fn and(n: usize) -> ThresholdUnit {
        ThresholdUnit {
            inhibitory: vec![false; n],
            theta: n,
        }
    }

    /// OR of `n` inputs: all excitatory, θ = 1.
    pub fn or(n: usize) -> ThresholdUnit {
        ThresholdUnit {
            inhibitory: vec![false; n],
            theta: 1,
        }
    }

    /// NOR of `n` inputs: all inhibitory, θ = 0 (it fires unless some input is on).
    pub fn nor(n: usize) -> ThresholdUnit {
        ThresholdUnit {
            inhibitory: vec![true; n],
            theta: 0,
        }
    }

    /// NOT: one inhibitory input, θ = 0.
    pub fn not() -> ThresholdUnit {
        ThresholdUnit::nor(1)
    }

    /// The number of inputs.
    pub fn inputs(&self) -> usize {
        self.inhibitory.len()
    }

    /// The unit's output for `x` (one boolean per input).
    ///
    /// # Panics
    /// When `x` does not have one value per input.
    pub fn fire(&self, x: &[bool]) -> bool {
        assert_eq!(x.len(), self.inputs(), "one boolean per input");
        let vetoed = x.iter().zip(&self.inhibitory).any(|(&on, &inh)| on && inh);
        let count = x
            .iter()
            .zip(&self.inhibitory)
            .filter(|&(&on, &inh)| on && !inh)
            .count();
        !vetoed && count >= self.theta
    }

    /// Whether the unit computes `f` on every one of the `2^n` inputs.
    pub fn realises(&self, f: impl Fn(&[bool]) -> bool) -> bool {
        all_inputs(self.inputs()).all(|x| self.fire(&x) == f(&x))
    }

    /// Every unit of `n` inputs that computes `f`, found by enumerating all of them: each
    /// input excitatory or inhibitory, and every θ in `0..=n + 1` (past `n` it never fires).
    /// Empty for XOR: no single threshold unit realises it.
    pub fn search(n: usize, f: impl Fn(&[bool]) -> bool) -> Vec<ThresholdUnit> {
        let mut found = Vec::new();
        for mask in 0..1usize << n {
            let inhibitory: Vec<bool> = (0..n).map(|i| mask >> i & 1 == 1).collect();
            for theta in 0..=n + 1 {
                let unit = ThresholdUnit {
                    inhibitory: inhibitory.clone(),
                    theta,
                };
                if unit.realises(&f) {
                    found.push(unit);
                }
            }
        }
        found
    }
}

/// The `2^n` boolean inputs of `n` variables, in binary counting order.
pub fn all_inputs(n: usize) -> impl Iterator<Item = Vec<bool>> {
    (0..1usize << n).map(move |k| (0..n).map(|i| k >> (n - 1 - i) & 1 == 1).collect())
}

/// Rosenblatt's perceptron: `ŷ = step(w·x + b)`, the step being 1 at or above 0, trained by
/// the rule `w ← w + η (y − ŷ) x`, `b ← b + η (y − ŷ)`, one sample at a time.
#[derive(Clone, Debug, PartialEq)]
pub struct Perceptron {
    /// The weights, one per input.
    pub weights: Vec<f64>,
    /// The bias (a weight on a constant input of 1; `-θ` in the threshold form).
    pub bias: f64,
}

/// What [`Perceptron::train`] did.
#[derive(Clone, Debug, PartialEq)]
pub struct PerceptronFit {
    /// The epoch (from 1) after which every sample was classified right, if it came.
    pub converged_after: Option<usize>,
    /// Epochs run: up to the one that converged, else the limit.
    pub epochs: usize,
    /// Misclassified samples in each epoch (counted as the epoch went, before each update).
    pub errors: Vec<usize>,
}

impl Perceptron {
    /// A perceptron of `inputs` inputs, every weight and the bias at 0.
    pub fn new(inputs: usize) -> Perceptron {
        Perceptron {
            weights: vec![0.0; inputs],
            bias: 0.0,
        }
    }

    /// `step(w·x + b)`: 1 when `w·x + b ≥ 0`, else 0.
    pub fn predict(&self, x: &[f64]) -> f64 {
        let z: f64 = self.weights.iter().zip(x).map(|(w, x)| w * x).sum::<f64>() + self.bias;
        if z >= 0.0 {
            1.0
        } else {
            0.0
        }
    }

    /// Trains with the perceptron rule at rate `eta`, visiting the samples in order, until an
    /// epoch makes no mistake or `max_epochs` have run. On linearly separable data it
    /// converges (the perceptron convergence theorem); on data that is not, such as XOR, it
    /// cycles, and the fit says it did not converge.
    ///
    /// Errors when `x` and `y` differ in length, a row has the wrong width, a target is not
    /// 0 or 1, or `eta` is not a finite number above 0.
    pub fn train(
        &mut self,
        x: &[Vec<f64>],
        y: &[f64],
        eta: f64,
        max_epochs: usize,
    ) -> crate::Result<PerceptronFit> {
        let bad = |detail: String| crate::Error::Invalid {
            op: "perceptron",
            detail,
        };
        if x.len() != y.len() {
            return Err(bad(format!("{} samples but {} targets", x.len(), y.len())));
        }
        if let Some(i) = x.iter().position(|r| r.len() != self.weights.len()) {
            return Err(bad(format!(
                "sample {i} has {} values, the perceptron {} inputs",
                x[i].len(),
                self.weights.len()
            )));
        }
        if let Some(i) = y.iter().position(|&t| t != 0.0 && t != 1.0) {
            return Err(bad(format!("target {i} is {}, not 0 or 1", y[i])));
        }
        if !(eta.is_finite() && eta > 0.0) {
            return Err(bad(format!("the learning rate must be above 0, got {eta}")));
        }
        let mut errors = Vec::new();
        for epoch in 1..=max_epochs {
            let mut wrong = 0;
            for (xi, &yi) in x.iter().zip(y) {
                let delta = yi - self.predict(xi);
                if delta != 0.0 {
                    wrong += 1;
                    for (w, &v) in self.weights.iter_mut().zip(xi) {
                        *w += eta * delta * v;
                    }
                    self.bias += eta * delta;
                }
            }
            errors.push(wrong);
            if wrong == 0 {
                return Ok(PerceptronFit {
                    converged_after: Some(epoch),
                    epochs: epoch,
                    errors,
                });
            }
        }
        Ok(PerceptronFit {
            converged_after: None,
            epochs: max_epochs,
            errors,
        })
    }
}
