//! `wgtrain evaluate`: a saved model's loss and metrics on labelled data.

use serde_json::json;
use wgtrain::backend::Backend;
use wgtrain::train::Model;
use wgtrain::Result;

use super::args::EvaluateArgs;
use super::data::{load_labelled, targets_for, Labelled};
use super::Job;

pub(crate) struct Evaluate<'a>(pub(crate) &'a EvaluateArgs);

impl Job for Evaluate<'_> {
    fn run<B: Backend>(self, backend: B, kind: &str) -> Result<()> {
        let args = self.0;
        let adapter = backend.describe();
        let mut model = Model::load(&args.input.model, backend)?;
        let Labelled { x, y, test, source } =
            load_labelled(&args.input.data, &args.input.label_column)?;
        let (x, y) = test.unwrap_or((x, y));
        let y = targets_for(model.loss(), y, model.output_dim());
        let eval = model.evaluate(&x, &y, args.input.batch_size)?;
        if args.common.json {
            let mut report = json!({ "backend": kind, "adapter": adapter, "data": source, "samples": x.rows(), "loss": eval.loss });
            for (name, value) in &eval.metrics {
                report[name] = json!(value);
            }
            outln!("{report}");
        } else {
            let metrics: Vec<String> = eval
                .metrics
                .iter()
                .map(|(n, v)| format!("{n} {v:.4}"))
                .collect();
            outln!(
                "loss {:.4}, {} on {} samples of {source}",
                eval.loss,
                metrics.join(", "),
                x.rows()
            );
        }
        Ok(())
    }
}
