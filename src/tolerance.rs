//! Tolerance is a type: how close two f32 results must be, and a report that says exactly how
//! they differed when they were not.
//!
//! ```
//! use wgtrain::tolerance::Tolerance;
//! let tol = Tolerance::new(1e-6, 1e-5);
//! assert!(tol.compare(&[1.0, 2.0], &[1.0, 2.000001]).is_ok());
//! let err = tol.compare(&[1.0, f32::NAN], &[1.0, 2.0]).unwrap_err();
//! assert_eq!(err.mismatches, 1); // NaN never passes
//! ```

use std::fmt;

/// `|got - want| ≤ abs + rel · |want|`, element by element. NaN or an infinity where the
/// other side is not the same infinity never passes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tolerance {
    /// Absolute part.
    pub abs: f32,
    /// Relative part, scaled by `|want|`.
    pub rel: f32,
}

/// How two arrays differed.
#[derive(Clone, Debug)]
pub struct Mismatch {
    /// The tolerance that was applied.
    pub tolerance: Tolerance,
    /// Number of elements compared.
    pub len: usize,
    /// Number of elements outside the tolerance.
    pub mismatches: usize,
    /// Largest absolute error over all elements (NaN counts as infinite).
    pub max_abs: f32,
    /// Largest relative error over all elements.
    pub max_rel: f32,
    /// The first few mismatches: (index, got, want).
    pub first: Vec<(usize, f32, f32)>,
    /// Set when the lengths differ (then nothing else was compared).
    pub length: Option<(usize, usize)>,
}

impl Tolerance {
    /// A tolerance with the given absolute and relative parts.
    pub const fn new(abs: f32, rel: f32) -> Self {
        Tolerance { abs, rel }
    }

    /// Exact equality (NaN still fails).
    pub const EXACT: Tolerance = Tolerance::new(0.0, 0.0);

    /// Whether one pair is within tolerance.
    pub fn accepts(&self, got: f32, want: f32) -> bool {
        if got.is_nan() || want.is_nan() {
            return false;
        }
        if got.is_infinite() || want.is_infinite() {
            return got == want;
        }
        (got - want).abs() <= self.abs + self.rel * want.abs()
    }

    /// Compares `got` to `want` element by element.
    pub fn compare(&self, got: &[f32], want: &[f32]) -> Result<(), Mismatch> {
        let mut report = Mismatch {
            tolerance: *self,
            len: want.len(),
            mismatches: 0,
            max_abs: 0.0,
            max_rel: 0.0,
            first: Vec::new(),
            length: None,
        };
        if got.len() != want.len() {
            report.length = Some((got.len(), want.len()));
            return Err(report);
        }
        for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
            let abs = if g.is_nan() || w.is_nan() {
                f32::INFINITY
            } else {
                (g - w).abs()
            };
            let abs = if abs.is_nan() { 0.0 } else { abs }; // inf - inf of equal infinities
            report.max_abs = report.max_abs.max(abs);
            report.max_rel = report.max_rel.max(abs / w.abs().max(f32::MIN_POSITIVE));
            if !self.accepts(g, w) {
                report.mismatches += 1;
                if report.first.len() < 8 {
                    report.first.push((i, g, w));
                }
            }
        }
        if report.mismatches == 0 {
            Ok(())
        } else {
            Err(report)
        }
    }
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some((g, w)) = self.length {
            return write!(f, "length mismatch: got {g} values, want {w}");
        }
        writeln!(
            f,
            "{} of {} values outside |got - want| <= {} + {}·|want|; max abs error {:e}, max rel error {:e}",
            self.mismatches, self.len, self.tolerance.abs, self.tolerance.rel, self.max_abs, self.max_rel
        )?;
        for (i, g, w) in &self.first {
            writeln!(f, "  [{i}] got {g:e}, want {w:e}, diff {:e}", (g - w).abs())?;
        }
        Ok(())
    }
}

impl std::error::Error for Mismatch {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nan_never_passes_even_against_nan() {
        let loose = Tolerance::new(f32::MAX, f32::MAX);
        assert!(!loose.accepts(f32::NAN, 1.0));
        assert!(!loose.accepts(1.0, f32::NAN));
        assert!(!loose.accepts(f32::NAN, f32::NAN));
    }

    #[test]
    fn infinities_pass_only_against_the_same_infinity() {
        let tol = Tolerance::new(1.0, 1.0);
        assert!(tol.accepts(f32::INFINITY, f32::INFINITY));
        assert!(!tol.accepts(f32::INFINITY, f32::NEG_INFINITY));
        assert!(!tol.accepts(f32::MAX, f32::INFINITY));
    }

    #[test]
    fn the_report_names_indices_values_and_maxima() {
        let tol = Tolerance::new(1e-3, 0.0);
        let err = tol
            .compare(&[1.0, 2.5, 3.0, f32::NAN], &[1.0, 2.0, 3.0, 4.0])
            .unwrap_err();
        assert_eq!(err.mismatches, 2);
        assert_eq!(
            err.first.iter().map(|m| m.0).collect::<Vec<_>>(),
            vec![1, 3]
        );
        assert!(err.max_abs.is_infinite());
        let text = err.to_string();
        assert!(
            text.contains("2 of 4 values") && text.contains("[1] got 2.5e0, want 2e0"),
            "{text}"
        );
    }

    #[test]
    fn lengths_must_agree() {
        let err = Tolerance::EXACT.compare(&[1.0], &[1.0, 2.0]).unwrap_err();
        assert_eq!(err.to_string(), "length mismatch: got 1 values, want 2");
    }
}
