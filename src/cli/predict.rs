//! `wgtrain predict`: a saved model's outputs for each row, as CSV.

use serde_json::json;
use wgtrain::backend::Backend;
use wgtrain::data::{self, csv::LabelColumn, idx};
use wgtrain::fs::write_atomic;
use wgtrain::nn::Task;
use wgtrain::train::Model;
use wgtrain::Result;

use super::args::PredictArgs;
use super::output::emit;
use super::Job;

/// A value for a CSV cell: plain decimals in the usual range, exponent notation for tiny or
/// huge magnitudes (a probability of 6e-42 would otherwise take 45 characters). Round-trips.
fn csv_number(v: f32) -> String {
    if v == 0.0 || (1e-4..1e7).contains(&v.abs()) {
        v.to_string()
    } else {
        format!("{v:e}")
    }
}

pub(crate) struct Predict<'a>(pub(crate) &'a PredictArgs);

impl Job for Predict<'_> {
    fn run<B: Backend>(self, backend: B, kind: &str) -> Result<()> {
        let args = self.0;
        let adapter = backend.describe();
        let mut model = Model::load(&args.input.model, backend)?;
        let inputs = model.input_dim().expect("a loaded model is built");
        let (x, source) = if args.input.data.is_dir() {
            let (_, _, xt, _) = idx::load_mnist_dir(&args.input.data)?;
            (xt, format!("{} (t10k images)", args.input.data.display()))
        } else {
            // A file with one column more than the model takes has a label column to drop.
            let all = data::csv::load(&args.input.data, &LabelColumn::None)?;
            let x = if all.x.cols() == inputs + 1 || args.input.label_column.is_some() {
                let label = args
                    .input
                    .label_column
                    .as_deref()
                    .map_or(LabelColumn::Last, LabelColumn::parse);
                data::csv::load(&args.input.data, &label)?.x
            } else {
                all.x
            };
            (x, args.input.data.display().to_string())
        };
        let p = model.predict(&x, args.input.batch_size)?;
        let classifier = matches!(
            model.head().task,
            Task::Categorical | Task::SparseCategorical
        );
        let mut csv = String::new();
        if classifier {
            csv += "class";
            (0..p.cols()).for_each(|c| csv += &format!(",p_{c}"));
        } else {
            csv += &(0..p.cols())
                .map(|c| format!("output_{c}"))
                .collect::<Vec<_>>()
                .join(",");
        }
        csv += "\n";
        for r in 0..p.rows() {
            let values: Vec<String> = p.row(r).iter().map(|&v| csv_number(v)).collect();
            if classifier {
                csv += &format!("{},", wgtrain::backend::cpu::argmax(p.row(r)));
            }
            csv += &values.join(",");
            csv += "\n";
        }
        match &args.out {
            Some(path) => write_atomic(path, csv.as_bytes())?,
            None if !args.common.json => emit(&csv)?,
            None => {}
        }
        if args.common.json {
            let mut report = json!({ "backend": kind, "adapter": adapter, "data": source, "rows": p.rows(), "outputs": p.cols() });
            match &args.out {
                Some(path) => report["out"] = json!(path.display().to_string()),
                None => {
                    report["predictions"] =
                        json!((0..p.rows()).map(|r| p.row(r).to_vec()).collect::<Vec<_>>());
                }
            }
            outln!("{report}");
        } else if let Some(path) = &args.out {
            wgtrain::stderr_line!(
                "wrote {} predictions for {source} to {}",
                p.rows(),
                path.display()
            );
        }
        Ok(())
    }
}
