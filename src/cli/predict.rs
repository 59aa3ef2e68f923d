//! `wgtrain predict`: a saved model's outputs for each row, as CSV.

use serde_json::json;
use wgtrain::backend::Backend;
use wgtrain::checkpoint::Checkpoint;
use wgtrain::data::{self, csv::LabelColumn, idx, Matrix};
use wgtrain::fs::{check_outputs, write_atomic, Input, Output};
use wgtrain::nn::Task;
use wgtrain::torch::TorchLayout;
use wgtrain::train::Model;
use wgtrain::Result;

use super::args::{about, flag_error, hidden_activation, output_activation, PredictArgs};
use super::evaluate::check_width;
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

/// Before any backend is made: the flags, and `--out` (not the model, not the data; `-` is
/// standard output, which `--json` also writes to).
pub(crate) fn check_predict(args: &PredictArgs) -> Result<()> {
    args.input.check()?;
    let Some(out) = &args.out else {
        return Ok(());
    };
    if out.as_os_str() == "-" && args.common.json {
        return Err(wgtrain::Error::Config(
            "--out - and --json would both write to standard output; give --out a file name, or drop --json"
                .into(),
        ));
    }
    let mut read = vec![("--model", args.input.model.clone())];
    read.extend(
        super::data::input_files(&args.input.data)
            .into_iter()
            .map(|f| ("--data", f)),
    );
    let inputs: Vec<Input> = read
        .iter()
        .map(|(flag, path)| Input {
            flag,
            path,
            replaced_by: &[],
        })
        .collect();
    let output = Output {
        flag: "--out",
        path: out,
        extensions: &[],
        stdout: true,
    };
    check_outputs(&[output], &inputs)
}

/// The model of --model: a wgtrain checkpoint, or a PyTorch state_dict with the activations
/// --activation and --output-activation name (which a wgtrain checkpoint records itself).
fn load_predictor<B: Backend>(args: &PredictArgs, backend: B) -> Result<Model<B>> {
    let input = &args.input;
    let hidden = hidden_activation(args.activation.as_deref().unwrap_or("relu"))?;
    let output = output_activation(args.output_activation.as_deref().unwrap_or("linear"))?;
    let layout = TorchLayout { hidden, output };
    let ckpt = Checkpoint::load_with(&input.model, Some(layout))
        .map_err(|e| about("--model", &input.model, e))?;
    let layers = &ckpt.config.layers;
    let last = layers.len() - 1;
    for (flag, given, recorded) in [
        (
            "--activation",
            args.activation.is_some().then_some(hidden),
            layers[..last].first(),
        ),
        (
            "--output-activation",
            args.output_activation.is_some().then_some(output),
            layers.last(),
        ),
    ] {
        let recorded = recorded.and_then(|l| l.output_activation());
        if let (Some(given), Some(l)) = (given, recorded) {
            if l != given {
                return Err(flag_error(
                    flag,
                    given.name(),
                    &format!(
                        "applies to a PyTorch state_dict; {} is a wgtrain checkpoint, whose layer applies {}: drop {flag}",
                        input.model.display(),
                        l.name()
                    ),
                ));
            }
        }
    }
    Model::from_checkpoint(backend, &ckpt).map_err(|e| about("--model", &input.model, e))
}

/// The columns `keep` of `x`, in order.
fn keep_columns(x: &Matrix, keep: &[usize]) -> Result<Matrix> {
    let data = (0..x.rows())
        .flat_map(|r| {
            let row = x.row(r);
            keep.iter().map(move |&c| row[c])
        })
        .collect();
    Matrix::new(x.rows(), keep.len(), data)
}

impl Job for Predict<'_> {
    fn run<B: Backend>(self, backend: B, chosen: &super::Chosen) -> Result<()> {
        let args = self.0;
        let input = &args.input;
        let adapter = backend.describe();
        let mut model = load_predictor(args, backend)?;
        let inputs = model.input_dim().expect("a loaded model is built");
        let (x, source) = if input.data.is_dir() {
            if let Some(l) = &input.label_column {
                return Err(flag_error(
                    "--label-column",
                    l,
                    "--data is an MNIST folder, whose labels are files of their own; drop --label-column",
                ));
            }
            let (_, _, xt, _) = idx::load_mnist_dir(&input.data)?;
            (xt, format!("{} (t10k images)", input.data.display()))
        } else {
            // Read once, every column; a label column (named, or the one extra column) is
            // dropped.
            let all = data::csv::load(&input.data, &LabelColumn::None)?;
            let labels = match &input.label_column {
                Some(l) => LabelColumn::parse(l)
                    .resolve(&all.feature_names)
                    .map_err(|e| {
                        flag_error(
                            "--label-column",
                            l,
                            &format!("{}: {e}", input.data.display()),
                        )
                    })?,
                None if all.x.cols() == inputs + 1 => vec![all.x.cols() - 1],
                None => Vec::new(),
            };
            let keep: Vec<usize> = (0..all.x.cols()).filter(|c| !labels.contains(c)).collect();
            let x = if labels.is_empty() {
                all.x
            } else {
                keep_columns(&all.x, &keep)?
            };
            (x, input.data.display().to_string())
        };
        check_width(&model, input, x.cols())?;
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
                csv += &format!("{},", wgtrain::backend::reference::argmax(p.row(r)));
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
            let mut report = json!({ "backend": chosen.kind,
            "backend_reason": chosen.why, "adapter": adapter, "data": source, "rows": p.rows(), "outputs": p.cols() });
            match &args.out {
                Some(path) => report["out"] = json!(path.display().to_string()),
                None => {
                    report["predictions"] =
                        json!((0..p.rows()).map(|r| p.row(r).to_vec()).collect::<Vec<_>>());
                }
            }
            outln!("{report}");
        } else if let Some(path) = args.out.as_ref().filter(|p| p.as_os_str() != "-") {
            wgtrain::stderr_line!(
                "wrote {} predictions for {source} to {}",
                p.rows(),
                path.display()
            );
        }
        Ok(())
    }
}
