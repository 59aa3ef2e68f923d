//! Learning-curve plots are written, and they are pictures of the curves, not blank images.

use wgtrain::backend::{reference::ReferenceBackend, Activation, Optimizer};
use wgtrain::data;
use wgtrain::nn::{Dense, LossFn, Sequential};
use wgtrain::train::plot::plot_history;
use wgtrain::train::{Compile, FitConfig, History, Metric};

fn history() -> History {
    let (x, y) = data::digits();
    let mut model = Sequential::new()
        .add(Dense::new(16, Activation::Relu))
        .add(Dense::new(10, Activation::Linear))
        .compile(
            ReferenceBackend::new(),
            Compile::new(
                LossFn::SparseCategoricalCrossentropy { from_logits: true },
                Optimizer::adam(3e-3),
            )
            .metrics(&[Metric::Accuracy]),
        )
        .unwrap();
    model
        .fit(
            &x.head(400),
            &y.head(400),
            FitConfig::epochs(6).validation_split(0.25).verbose(0),
        )
        .unwrap()
}

#[test]
fn png_and_svg_plots_show_both_curves() {
    let dir = std::env::temp_dir().join(format!("wgtrain-plot-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let h = history();

    let png = dir.join("curves.png");
    plot_history(&h, &png).unwrap();
    let img = image::open(&png).unwrap().to_rgb8();
    assert_eq!(img.dimensions(), (1100, 420));
    let count = |rgb: [u8; 3]| img.pixels().filter(|p| p.0 == rgb).count();
    let (train, val, white) = (
        count([31, 119, 180]),
        count([255, 127, 14]),
        count([255, 255, 255]),
    );
    assert!(
        train > 200 && val > 200,
        "curves missing: {train} training and {val} validation pixels"
    );
    assert!(white < 1100 * 420 * 98 / 100, "the image is almost blank");

    let svg = dir.join("curves.svg");
    plot_history(&h, &svg).unwrap();
    let text = std::fs::read_to_string(&svg).unwrap();
    for want in [
        "<svg",
        "loss",
        "accuracy",
        "validation",
        "epoch",
        "#1F77B4",
        "#FF7F0E",
    ] {
        assert!(text.contains(want), "no `{want}` in the SVG");
    }

    let err = plot_history(&h, &dir.join("curves.jpg"))
        .unwrap_err()
        .to_string();
    assert!(err.contains(".png or .svg"), "{err}");
    let names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "no temporary files left: {names:?}");
    std::fs::remove_dir_all(&dir).ok();
}
