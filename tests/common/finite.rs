//! Central finite differences of f32 forwards, for the gradient checks of the reference's
//! backwards (tests/layer_ops.rs, tests/conv_ops.rs).

/// A step large enough that f32 rounding of the outputs stays far below the difference.
pub const H: f32 = 1e-2;

/// `Σ y ⊙ w`: a scalar loss whose gradient with respect to `y` is `w`.
pub fn weighted(y: &[f32], w: &[f64]) -> f64 {
    y.iter().zip(w).map(|(&a, b)| a as f64 * b).sum()
}

/// The analytic gradient within `2e-3 · (1 + |numeric|)` of the finite difference.
pub fn assert_grad(what: &str, analytic: f32, numeric: f64) {
    let err = (analytic as f64 - numeric).abs();
    assert!(
        err <= 2e-3 * (1.0 + numeric.abs()),
        "{what}: analytic {analytic:e}, finite difference {numeric:e}"
    );
}

/// `∂/∂v[i]` of `f` by central differences of step [`H`].
pub fn fd(v: &[f32], i: usize, f: impl Fn(&[f32]) -> f64) -> f64 {
    let (mut plus, mut minus) = (v.to_vec(), v.to_vec());
    plus[i] += H;
    minus[i] -= H;
    (f(&plus) - f(&minus)) / (2.0 * H as f64)
}
