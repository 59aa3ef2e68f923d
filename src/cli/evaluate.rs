//! `wgtrain evaluate`: a saved model's loss and metrics on labelled data. A loss that is not
//! finite is a failure (exit 1), after the report.

use serde_json::json;
use wgtrain::backend::Backend;
use wgtrain::nn::Task;
use wgtrain::train::targets::{check_targets, targets_for};
use wgtrain::train::Model;
use wgtrain::{Error, Result};

use super::args::{about, EvaluateArgs, ModelInput};
use super::data::load_labelled;
use super::Job;

pub(crate) struct Evaluate<'a>(pub(crate) &'a EvaluateArgs);

/// The model `--model` names, on `backend`.
pub(crate) fn load_model<B: Backend>(input: &ModelInput, backend: B) -> Result<Model<B>> {
    Model::load(&input.model, backend).map_err(|e| about("--model", &input.model, e))
}

/// The data must have the columns the model was trained on.
pub(crate) fn check_width<B: Backend>(
    model: &Model<B>,
    input: &ModelInput,
    cols: usize,
) -> Result<()> {
    let want = model.input_dim().expect("a loaded model is built");
    if cols == want {
        return Ok(());
    }
    Err(Error::Data {
        source_name: input.data.display().to_string(),
        detail: format!(
            "{cols} feature columns, but the model in --model {} was trained on {want}{}",
            input.model.display(),
            if input.label_column.is_none() {
                " (the label is taken from the last column unless --label-column says otherwise)"
            } else {
                ""
            }
        ),
    })
}

impl Job for Evaluate<'_> {
    fn run<B: Backend>(self, backend: B, chosen: &super::Chosen) -> Result<()> {
        let input = &self.0.input;
        let adapter = backend.describe();
        let mut model = load_model(input, backend)?;
        let data = load_labelled("--data", &input.data, &input.label_column)?;
        let source = data.source;
        let (x, y, origin) = data.test.unwrap_or((data.x, data.y, data.origin));
        check_width(&model, input, x.cols())?;
        // Labels checked here, where their file and line are known.
        let (task, outputs) = (model.head().task, model.output_dim());
        let labels = if task == Task::Categorical && y.cols() == 1 {
            Task::SparseCategorical
        } else {
            task
        };
        check_targets(&y, labels, outputs, &origin)?;
        let y = targets_for(model.loss(), y, outputs);
        let eval = model.evaluate(&x, &y, input.batch_size)?;
        if self.0.common.json {
            let mut report = json!({ "backend": chosen.kind,
            "backend_reason": chosen.why, "adapter": adapter, "data": source, "samples": x.rows(), "loss": eval.loss });
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
        if !eval.loss.is_finite() {
            return Err(Error::Config(format!(
                "--model {}: its loss on this data is {}: the model's outputs are not finite (a model that diverged, \
                 or inputs far outside the range it was trained on)",
                input.model.display(),
                eval.loss
            )));
        }
        Ok(())
    }
}
