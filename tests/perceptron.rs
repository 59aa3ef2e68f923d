//! The first lecture: McCulloch–Pitts units for AND, OR, NOR and NOT with the course's
//! thresholds, the enumeration that finds no unit for XOR, and the perceptron rule converging
//! on separable data and not on XOR.

use wgtrain::nn::perceptron::{all_inputs, Perceptron, ThresholdUnit};

fn xor(x: &[bool]) -> bool {
    x[0] ^ x[1]
}

#[test]
fn threshold_units_realise_and_or_nor_not() {
    for n in 1..=4 {
        assert!(
            ThresholdUnit::and(n).realises(|x| x.iter().all(|&v| v)),
            "AND of {n}"
        );
        assert!(
            ThresholdUnit::or(n).realises(|x| x.iter().any(|&v| v)),
            "OR of {n}"
        );
        assert!(
            ThresholdUnit::nor(n).realises(|x| !x.iter().any(|&v| v)),
            "NOR of {n}"
        );
    }
    assert_eq!(ThresholdUnit::and(3).theta, 3);
    assert_eq!(ThresholdUnit::or(3).theta, 1);
    assert!(ThresholdUnit::not().realises(|x| !x[0]));
    assert!(ThresholdUnit::not().fire(&[false]) && !ThresholdUnit::not().fire(&[true]));
    // An inhibitory input vetoes whatever the others say.
    let unit = ThresholdUnit {
        inhibitory: vec![false, false, true],
        theta: 1,
    };
    assert!(unit.fire(&[true, false, false]) && !unit.fire(&[true, true, true]));
}

#[test]
fn no_threshold_unit_realises_xor() {
    assert_eq!(all_inputs(2).count(), 4);
    assert!(ThresholdUnit::search(2, xor).is_empty());
    assert!(ThresholdUnit::search(3, |x| x[0] ^ x[1] ^ x[2]).is_empty());
    // The search does find the others: AND of two is θ = 2, both excitatory, only.
    assert_eq!(
        ThresholdUnit::search(2, |x| x[0] && x[1]),
        vec![ThresholdUnit::and(2)]
    );
    assert!(
        ThresholdUnit::search(2, |x| x[0] && !x[1]).contains(&ThresholdUnit {
            inhibitory: vec![false, true],
            theta: 1
        })
    );
}

fn truth_table(f: fn(&[bool]) -> bool) -> (Vec<Vec<f64>>, Vec<f64>) {
    all_inputs(2)
        .map(|x| {
            let y = f(&x) as u8 as f64;
            (x.iter().map(|&b| b as u8 as f64).collect(), y)
        })
        .unzip()
}

#[test]
fn the_perceptron_rule_converges_on_separable_data() {
    let and: fn(&[bool]) -> bool = |x| x[0] && x[1];
    let or: fn(&[bool]) -> bool = |x| x[0] || x[1];
    for (name, f) in [("AND", and), ("OR", or)] {
        let (x, y) = truth_table(f);
        let mut p = Perceptron::new(2);
        let fit = p.train(&x, &y, 0.1, 100).unwrap();
        let epochs = fit
            .converged_after
            .unwrap_or_else(|| panic!("{name} did not converge"));
        assert!(epochs <= 10, "{name}: {fit:?}");
        assert_eq!(*fit.errors.last().unwrap(), 0);
        for (xi, &yi) in x.iter().zip(&y) {
            assert_eq!(p.predict(xi), yi, "{name} {xi:?}");
        }
    }
    // A separable cloud in 2-D: points above the line x1 = 2 x0 - 1.
    let x: Vec<Vec<f64>> = (0..60)
        .map(|i| vec![(i % 10) as f64 / 9.0, (i / 10) as f64 / 5.0])
        .filter(|p| (p[1] - (2.0 * p[0] - 1.0)).abs() > 0.05)
        .collect();
    let y: Vec<f64> = x
        .iter()
        .map(|p| (p[1] > 2.0 * p[0] - 1.0) as u8 as f64)
        .collect();
    let fit = Perceptron::new(2).train(&x, &y, 0.5, 1000).unwrap();
    assert!(fit.converged_after.is_some(), "{fit:?}");
}

#[test]
fn on_xor_the_perceptron_reports_that_it_did_not_converge() {
    let (x, y) = truth_table(xor);
    let mut p = Perceptron::new(2);
    let fit = p.train(&x, &y, 0.1, 50).unwrap();
    assert_eq!(fit.converged_after, None);
    assert_eq!(fit.epochs, 50);
    assert!(fit.errors.iter().all(|&e| e > 0), "{fit:?}");
    // Never more than 3 of the 4 right: one line cannot separate XOR.
    let right = x
        .iter()
        .zip(&y)
        .filter(|(xi, &yi)| p.predict(xi) == yi)
        .count();
    assert!(right <= 3);
}

#[test]
fn bad_input_is_an_error() {
    let mut p = Perceptron::new(2);
    assert!(p.train(&[vec![0.0, 1.0]], &[0.5], 0.1, 5).is_err());
    assert!(p.train(&[vec![0.0]], &[1.0], 0.1, 5).is_err());
    assert!(p.train(&[vec![0.0, 1.0]], &[1.0, 0.0], 0.1, 5).is_err());
    assert!(p.train(&[vec![0.0, 1.0]], &[1.0], 0.0, 5).is_err());
}
