//! The synthetic benchmark data of `BENCHMARKS.md`, bit for bit as the peers generate it, so
//! that every program trains on identical bytes.
//!
//! Counter-based SplitMix64: `v(seed, i) = mix(seed + (i + 1) · 0x9E3779B97F4A7C15)` (wrapping).
//! Inputs: `m[k] = v(42, k) >> 40` (24 bits), `x[k] = m[k] / 2^24`, row-major `[rows, 784]`.
//! Labels: the index of the largest of the 10 sums of 78 consecutive `m` values among pixels
//! 0..780 of a row (exact integer sums, the first index on ties).

use super::Matrix;

/// Features per sample.
pub const FEATURES: usize = 784;
/// Classes.
pub const CLASSES: usize = 10;
/// Samples in the benchmark set.
pub const SAMPLES: usize = 16384;

const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `v(seed, i)`.
pub fn value(seed: u64, i: u64) -> u64 {
    mix(seed.wrapping_add((i + 1).wrapping_mul(GOLDEN)))
}

/// The first `rows` samples: features `[rows, 784]` in `[0, 1)` and labels `[rows, 1]`.
pub fn benchmark_data(rows: usize) -> (Matrix, Matrix) {
    let mut x = Vec::with_capacity(rows * FEATURES);
    let mut y = Vec::with_capacity(rows);
    let mut m = [0u64; FEATURES];
    for r in 0..rows {
        for (c, slot) in m.iter_mut().enumerate() {
            *slot = value(42, (r * FEATURES + c) as u64) >> 40;
            x.push((*slot as f64 / (1u64 << 24) as f64) as f32);
        }
        let group = (FEATURES - FEATURES % CLASSES) / CLASSES; // 78
        let sums: Vec<u64> = (0..CLASSES)
            .map(|g| m[g * group..(g + 1) * group].iter().sum())
            .collect();
        let best = (0..CLASSES).fold(0, |best, g| if sums[g] > sums[best] { g } else { best });
        y.push(best as f32);
    }
    (
        Matrix::new(rows, FEATURES, x).expect("sized above"),
        Matrix::new(rows, 1, y).expect("sized above"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The check values BENCHMARKS.md publishes.
    #[test]
    fn matches_the_published_check_values() {
        let (x, y) = benchmark_data(10);
        assert_eq!(&x.row(0)[..3], &[0.741_564_87, 0.159_910_38, 0.278_601_1]);
        assert_eq!(
            y.data(),
            &[3.0, 3.0, 3.0, 7.0, 7.0, 1.0, 2.0, 9.0, 7.0, 7.0]
        );
    }
}
