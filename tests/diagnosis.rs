//! `History::diagnose` on seeded real runs on the digits, on the reference backend: a far too
//! small network underfits, a wide one on 100 samples overfits, a sensible one fits.

use wgtrain::backend::reference::ReferenceBackend;
use wgtrain::backend::{Activation, Optimizer};
use wgtrain::data::{digits, Matrix};
use wgtrain::nn::{Dense, LossFn, Sequential};
use wgtrain::train::{Compile, FitConfig, History, Verdict};

fn fit(hidden: &[usize], x: &Matrix, y: &Matrix, epochs: usize, lr: f32) -> History {
    let mut model = Sequential::new();
    for &units in hidden {
        model = model.add(Dense::new(units, Activation::Relu));
    }
    let compile = Compile::new(
        LossFn::SparseCategoricalCrossentropy { from_logits: true },
        Optimizer::adam(lr),
    )
    .seed(3);
    let mut model = model
        .add(Dense::new(10, Activation::Linear))
        .compile(ReferenceBackend::new(), compile)
        .unwrap();
    model
        .fit(
            x,
            y,
            FitConfig::epochs(epochs)
                .batch_size(32)
                .validation_split(0.3)
                .verbose(0),
        )
        .unwrap()
}

#[test]
fn a_far_too_small_network_underfits() {
    let (x, y) = digits();
    let (x, y) = (x.head(600), y.head(600));
    let d = fit(&[1], &x, &y, 20, 1e-3).diagnose();
    assert_eq!(d.verdict, Verdict::Underfitting, "{d:?}");
}

#[test]
fn a_wide_network_on_100_samples_overfits() {
    let (x, y) = digits();
    let (x, y) = (x.head(100), y.head(100));
    let d = fit(&[512, 512], &x, &y, 120, 3e-3).diagnose();
    assert_eq!(d.verdict, Verdict::Overfitting, "{d:?}");
    let (gap_best, gap_end) = (d.generalization_gap.unwrap(), d.final_gap.unwrap());
    assert!(gap_end > gap_best && gap_best > 0.0, "{d:?}");
}

#[test]
fn a_sensible_network_on_the_digits_fits() {
    let (x, y) = digits();
    let d = fit(&[64], &x, &y, 30, 3e-3).diagnose();
    assert_eq!(d.verdict, Verdict::GoodFit, "{d:?}");
}
