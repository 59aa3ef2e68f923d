//! The course's sigmoid neuron `f(x) = σ(w x + b)` on its two points, (0.5, 0.2) and
//! (2.5, 0.9), fitted two ways: by random search on the error surface (keep a random (w, b)
//! when it is better than the best so far) and by gradient descent (wgtrain's SGD on the mean
//! squared error, one step per epoch on both points). It prints the loss of both per step and
//! draws the error surface, a heat map with contour lines, with both paths on it.
//!
//! `cargo run --release --example error_surface [-- OUT.png]` (default `error_surface.png`)

use std::path::PathBuf;

use plotters::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use wgtrain::backend::reference::ReferenceBackend;
use wgtrain::backend::{Activation, Optimizer};
use wgtrain::data::Matrix;
use wgtrain::nn::{Dense, Initializer, LossFn, Sequential};
use wgtrain::train::{Compile, FitConfig};

const X: [f32; 2] = [0.5, 2.5];
const Y: [f32; 2] = [0.2, 0.9];
/// The course's start, and the window of the surface drawn.
const START: (f64, f64) = (-2.0, -2.0);
const RANGE: (f64, f64) = (-6.0, 6.0);
const STEPS: usize = 60;

/// The mean squared error of σ(w x + b) on the two points.
fn loss(w: f64, b: f64) -> f64 {
    X.iter()
        .zip(Y)
        .map(|(&x, y)| {
            let f = 1.0 / (1.0 + (-(w * x as f64 + b)).exp());
            (f - y as f64).powi(2)
        })
        .sum::<f64>()
        / 2.0
}

/// Random search: each step draws (w, b) in the window and keeps it if it is better.
fn random_search(rng: &mut StdRng) -> Vec<(f64, f64, f64)> {
    let mut best = (START.0, START.1, loss(START.0, START.1));
    let mut path = vec![best];
    for _ in 0..STEPS {
        let (w, b) = (
            rng.random_range(RANGE.0..RANGE.1),
            rng.random_range(RANGE.0..RANGE.1),
        );
        let l = loss(w, b);
        if l < best.2 {
            best = (w, b, l);
        }
        path.push(best);
    }
    path
}

/// Gradient descent with wgtrain: one sigmoid unit from (w, b) = START, SGD at rate `lr`.
fn gradient_descent(lr: f32) -> wgtrain::Result<Vec<(f64, f64, f64)>> {
    let x = Matrix::new(2, 1, X.to_vec())?;
    let y = Matrix::new(2, 1, Y.to_vec())?;
    let unit = Dense::new(1, Activation::Sigmoid)
        .kernel_initializer(Initializer::Constant(START.0 as f32))
        .bias_initializer(Initializer::Constant(START.1 as f32));
    let mut model = Sequential::new().add(unit).compile(
        ReferenceBackend::new(),
        Compile::new(LossFn::MeanSquaredError, Optimizer::Sgd { lr }),
    )?;
    let mut path = vec![(START.0, START.1, loss(START.0, START.1))];
    for _ in 0..STEPS {
        let config = FitConfig::epochs(1).batch_size(2).shuffle(false).verbose(0);
        model.fit(&x, &y, config)?;
        let weights = model.weights()?;
        let (w, b) = (weights[0].weight()[0] as f64, weights[0].bias()[0] as f64);
        path.push((w, b, loss(w, b)));
    }
    Ok(path)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or("error_surface.png".into()),
    );
    let random = random_search(&mut StdRng::seed_from_u64(1));
    let descent = gradient_descent(5.0)?;
    println!("step  random search loss  gradient descent loss");
    for (i, (r, g)) in random.iter().zip(&descent).enumerate() {
        println!("{i:4}  {:18.6}  {:21.6}", r.2, g.2);
    }
    let (r, g) = (random[STEPS], descent[STEPS]);
    println!(
        "after {STEPS} steps: random search (w, b) = ({:.3}, {:.3}), gradient descent ({:.3}, {:.3})",
        r.0, r.1, g.0, g.1
    );
    draw(&out, &random, &descent)?;
    println!("the error surface and both paths: {}", out.display());
    Ok(())
}

/// A colour for `v` in [0, 1]: viridis' five stops, from dark blue through green to yellow.
fn heat(v: f64) -> RGBColor {
    const STOPS: [(f64, f64, f64); 5] = [
        (68.0, 1.0, 84.0),
        (59.0, 82.0, 139.0),
        (33.0, 145.0, 140.0),
        (94.0, 201.0, 98.0),
        (253.0, 231.0, 37.0),
    ];
    let x = v.clamp(0.0, 1.0) * 4.0;
    let i = (x.floor() as usize).min(3);
    let t = x - i as f64;
    let (a, b) = (STOPS[i], STOPS[i + 1]);
    let mix = |p: f64, q: f64| (p + t * (q - p)).round() as u8;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// Cells of the heat map per side.
const GRID: usize = 120;

fn draw(
    out: &std::path::Path,
    random: &[(f64, f64, f64)],
    descent: &[(f64, f64, f64)],
) -> Result<(), Box<dyn std::error::Error>> {
    wgtrain::train::plot::register_font();
    let cell = (RANGE.1 - RANGE.0) / GRID as f64;
    let at = |i: usize| RANGE.0 + i as f64 * cell;
    // The loss at the grid's corners, [i][j] for w = at(i), b = at(j).
    let corners: Vec<Vec<f64>> = (0..=GRID)
        .map(|i| (0..=GRID).map(|j| loss(at(i), at(j))).collect())
        .collect();
    let max = corners.iter().flatten().cloned().fold(0.0, f64::max);
    let mut failure = None;
    wgtrain::fs::replace_with(out, |tmp| {
        let root = BitMapBackend::new(tmp, (760, 700)).into_drawing_area();
        let drawn = (|| -> Result<(), Box<dyn std::error::Error>> {
            root.fill(&WHITE)?;
            let mut chart = ChartBuilder::on(&root)
                .caption(
                    "error surface of σ(wx + b) on (0.5, 0.2), (2.5, 0.9)",
                    ("sans-serif", 20),
                )
                .margin(12)
                .x_label_area_size(40)
                .y_label_area_size(50)
                .build_cartesian_2d(RANGE.0..RANGE.1, RANGE.0..RANGE.1)?;
            chart
                .configure_mesh()
                .x_desc("w")
                .y_desc("b")
                .disable_mesh()
                .draw()?;
            // The heat map: low loss dark blue, high loss yellow.
            chart.draw_series((0..GRID).flat_map(|i| (0..GRID).map(move |j| (i, j))).map(
                |(i, j)| {
                    let v = loss(at(i) + cell / 2.0, at(j) + cell / 2.0) / max;
                    let color = heat(v);
                    Rectangle::new([(at(i), at(j)), (at(i + 1), at(j + 1))], color.filled())
                },
            ))?;
            // Contour lines by marching squares: in each cell, the segment where the loss
            // crosses the level, between the crossings on its edges.
            for k in 1..10 {
                let level = max * k as f64 / 10.0;
                let mut segments = Vec::new();
                for i in 0..GRID {
                    for j in 0..GRID {
                        let c = [
                            (at(i), at(j), corners[i][j]),
                            (at(i + 1), at(j), corners[i + 1][j]),
                            (at(i + 1), at(j + 1), corners[i + 1][j + 1]),
                            (at(i), at(j + 1), corners[i][j + 1]),
                        ];
                        let crossings: Vec<(f64, f64)> = (0..4)
                            .filter_map(|e| {
                                let (a, b) = (c[e], c[(e + 1) % 4]);
                                ((a.2 - level) * (b.2 - level) < 0.0).then(|| {
                                    let t = (level - a.2) / (b.2 - a.2);
                                    (a.0 + t * (b.0 - a.0), a.1 + t * (b.1 - a.1))
                                })
                            })
                            .collect();
                        for pair in crossings.chunks_exact(2) {
                            segments.push([pair[0], pair[1]]);
                        }
                    }
                }
                chart.draw_series(
                    segments
                        .into_iter()
                        .map(|s| PathElement::new(s.to_vec(), WHITE.mix(0.6).stroke_width(1))),
                )?;
            }
            for (name, path, color) in [
                ("random search", random, RED),
                ("gradient descent", descent, BLACK),
            ] {
                let points: Vec<(f64, f64)> = path.iter().map(|&(w, b, _)| (w, b)).collect();
                chart
                    .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))?
                    .label(name)
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                    });
                chart.draw_series(points.iter().map(|&p| Circle::new(p, 3, color.filled())))?;
            }
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .label_font(("sans-serif", 14))
                .draw()?;
            root.present()?;
            Ok(())
        })();
        drawn.map_err(|e| {
            failure = Some(e.to_string());
            std::io::Error::other("drawing failed")
        })
    })
    .map_err(|e| failure.take().unwrap_or_else(|| e.to_string()))?;
    Ok(())
}
