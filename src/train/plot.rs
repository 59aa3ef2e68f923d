//! Learning curves as a picture: training and validation loss, and the main metric, per
//! epoch. The curves the course reads: both falling together is a good fit, training falling
//! while validation rises is overfitting, both staying high is underfitting. A dashed line
//! marks the best epoch (the lowest validation loss, see [`History::diagnose`]).

use std::path::Path;
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::History;
use crate::error::{Error, Result};
use crate::fs::{replace_with, write_atomic};

const SIZE: (u32, u32) = (1100, 420);
const TRAIN: RGBColor = RGBColor(31, 119, 180);
const VALIDATION: RGBColor = RGBColor(255, 127, 14);

/// Registers the embedded DejaVu Sans as plotters' "sans-serif", so that no system font is
/// needed. wgtrain builds plotters with its `ab_glyph` font backend, and Cargo unifies that
/// feature across a build: a program that also draws with plotters should call this once
/// before drawing text, or plotters reports `FontUnavailable`.
pub fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = plotters::style::register_font(
            "sans-serif",
            FontStyle::Normal,
            dejavu::sans::regular(),
        );
    });
}

/// The metric drawn beside the loss: the first logged series that is not a loss or a
/// validation series (`accuracy`, say), if any.
fn main_metric(history: &History) -> Option<&str> {
    history
        .series
        .iter()
        .map(|(n, _)| n.as_str())
        .find(|n| *n != "loss" && !n.starts_with("val_"))
}

/// Draws `history` to `path`: PNG or SVG by its extension. Written atomically.
pub fn plot_history(history: &History, path: &Path) -> Result<()> {
    if history.epochs.is_empty() {
        return Err(Error::Config("the history has no epochs to plot".into()));
    }
    register_font();
    let err = |e: String| Error::Config(format!("plotting {}: {e}", path.display()));
    match path.extension().and_then(|e| e.to_str()) {
        Some("svg") => {
            let mut svg = String::new();
            {
                let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
                draw(history, &root).map_err(err)?;
                root.present().map_err(|e| err(e.to_string()))?;
            }
            write_atomic(path, svg.as_bytes())
        }
        Some("png") => {
            let mut failure = None;
            replace_with(path, |tmp| {
                let root = BitMapBackend::new(tmp, SIZE).into_drawing_area();
                let drawn =
                    draw(history, &root).and_then(|()| root.present().map_err(|e| e.to_string()));
                drawn.map_err(|e| {
                    failure = Some(e);
                    std::io::Error::other("drawing failed")
                })
            })
            .map_err(|e| failure.take().map_or(e, err))
        }
        _ => Err(Error::Config(format!(
            "--plot {}: use a .png or .svg file name",
            path.display()
        ))),
    }
}

fn draw<DB: DrawingBackend>(
    history: &History,
    root: &DrawingArea<DB, Shift>,
) -> std::result::Result<(), String> {
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let panels: Vec<&str> = std::iter::once("loss")
        .chain(main_metric(history))
        .collect();
    let areas = root.split_evenly((1, panels.len()));
    let best = history.diagnose().best_epoch;
    for (name, area) in panels.iter().zip(&areas) {
        panel(history, name, best, area).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// One line of a panel: its legend, colour and (epoch, value) points.
struct Curve {
    label: &'static str,
    color: RGBColor,
    points: Vec<(f64, f64)>,
}

/// One panel; `best` is the epoch [`History::diagnose`] names best, marked by a vertical line.
fn panel<DB: DrawingBackend>(
    history: &History,
    name: &str,
    best: usize,
    area: &DrawingArea<DB, Shift>,
) -> std::result::Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let val_name = format!("val_{name}");
    let series: Vec<Curve> = [
        (name, TRAIN, "training"),
        (val_name.as_str(), VALIDATION, "validation"),
    ]
    .into_iter()
    .filter_map(|(key, color, label)| {
        let values = history.get(key)?;
        let points = history
            .epochs
            .iter()
            .zip(values)
            .filter(|(_, v)| v.is_finite())
            .map(|(&e, &v)| (e as f64, v))
            .collect();
        Some(Curve {
            label,
            color,
            points,
        })
    })
    .collect();
    let all = series.iter().flat_map(|c| c.points.iter().map(|&(_, v)| v));
    let (lo, hi) = all.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    let (lo, hi) = if lo.is_finite() { (lo, hi) } else { (0.0, 1.0) };
    let pad = ((hi - lo) * 0.05).max(1e-6);
    let first = *history.epochs.first().expect("checked non-empty") as f64;
    let last = (*history.epochs.last().expect("checked non-empty") as f64).max(first + 1.0);

    let mut chart = ChartBuilder::on(area)
        .caption(name, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(first..last, (lo - pad)..(hi + pad))?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc(name)
        .x_label_formatter(&|e| format!("{e:.0}"))
        .label_style(("sans-serif", 14))
        .draw()?;
    for Curve {
        label,
        color,
        points,
    } in series
    {
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))?
            .label(label)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        chart.draw_series(points.iter().map(|&p| Circle::new(p, 3, color.filled())))?;
    }
    if best > 0 {
        let x = best as f64;
        let grey = RGBColor(110, 110, 110);
        chart
            .draw_series(DashedLineSeries::new(
                [(x, lo - pad), (x, hi + pad)],
                6,
                4,
                grey.stroke_width(1),
            ))?
            .label(format!("best epoch ({best})"))
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], grey.stroke_width(1))
            });
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .draw()?;
    Ok(())
}
