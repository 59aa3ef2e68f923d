//! `wgtrain train`: flags to a model and data, then fit, save and report.

use std::time::Instant;

use serde_json::json;
use wgtrain::backend::{Activation, Backend};
use wgtrain::checkpoint::Checkpoint;
use wgtrain::data::{self, Matrix, Standardizer};
use wgtrain::fs::write_atomic;
use wgtrain::nn::{Dense, Sequential, Task};
use wgtrain::train::{Compile, FitConfig, Metric, ModelCheckpoint};
use wgtrain::{Error, Result};

use super::args::{SaveMode, TrainArgs};
use super::data::{
    choose_loss, classes, default_batch_size, load_labelled, optimizer, targets_for, Labelled,
};
use super::Job;

pub(crate) struct Train<'a> {
    args: &'a TrainArgs,
    model: Sequential,
    compile: Compile,
    resume: Option<Checkpoint>,
    x_train: Matrix,
    y_train: Matrix,
    x_test: Matrix,
    y_test: Matrix,
    source: String,
    started: Instant,
}

pub(crate) fn prepare_training(args: &TrainArgs, started: Instant) -> Result<Train<'_>> {
    let hidden = Activation::from_name(&args.activation)?;
    if hidden.is_row_wise() {
        return Err(Error::Config(
            "--activation softmax is for output layers; pick relu, tanh, ...".into(),
        ));
    }
    if args.layers.contains(&0) {
        return Err(Error::Config(
            "--layers: every width must be at least 1".into(),
        ));
    }
    let opt = optimizer(&args.optimizer, args.lr)?;
    let resume = args.resume.as_deref().map(Checkpoint::load).transpose()?;

    let Labelled {
        x,
        y,
        test: split,
        source,
    } = match &args.data {
        None => {
            // Raw 0..16 pixels; the model scales them (saved with it, so that evaluate and
            // predict on data/digits.csv see what training saw).
            let (x, y) = data::digits_unscaled();
            let source = "built-in digits (8×8, pixels scaled to [0, 1] by the model)".to_string();
            Labelled {
                x,
                y,
                test: None,
                source,
            }
        }
        Some(path) => load_labelled(path, &args.label_column)?,
    };
    let (x_train, y_train, x_test, y_test) = match (split, &args.test_data) {
        (_, Some(path)) => {
            let test = load_labelled(path, &args.label_column)?;
            (x, y, test.x, test.y)
        }
        (Some((xt, yt)), None) => (x, y, xt, yt),
        (None, None) => {
            let (a, b, c, d) = data::train_test_split(&x, &y, args.test_split, args.seed)?;
            if c.rows() == 0 {
                return Err(Error::Config(format!(
                    "--test-split {} of {} rows leaves no test rows",
                    args.test_split,
                    x.rows()
                )));
            }
            (a, b, c, d)
        }
    };
    if x_test.cols() != x_train.cols() {
        return Err(Error::Data {
            source_name: "test data".into(),
            detail: format!(
                "{} feature columns, the training data has {}",
                x_test.cols(),
                x_train.cols()
            ),
        });
    }

    let loss = choose_loss(&args.loss, &y_train)?;
    let outputs = match loss.task() {
        Task::SparseCategorical | Task::Categorical => classes(&y_train)?.max(classes(&y_test)?),
        Task::Binary | Task::Regression => y_train.cols(),
    };
    let (y_train, y_test) = (
        targets_for(loss, y_train, outputs),
        targets_for(loss, y_test, outputs),
    );
    let metric_names: Vec<String> = if args.metrics.is_empty() {
        vec![if loss.task() == Task::Regression {
            "mae".into()
        } else {
            "accuracy".into()
        }]
    } else {
        args.metrics.clone()
    };
    let metrics = metric_names
        .iter()
        .map(|m| Metric::from_name(m))
        .collect::<Result<Vec<_>>>()?;

    let mut model = Sequential::new();
    for &units in &args.layers {
        model = model.add(Dense::new(units, hidden));
    }
    let model = model.add(Dense::new(outputs, Activation::Linear));
    let compile = Compile::new(loss, opt).metrics(&metrics).seed(args.seed);
    Ok(Train {
        args,
        model,
        compile,
        resume,
        x_train,
        y_train,
        x_test,
        y_test,
        source,
        started,
    })
}

impl Job for Train<'_> {
    fn run<B: Backend>(self, backend: B, kind: &str) -> Result<()> {
        let args = self.args;
        let adapter = backend.describe();
        let mut model = self.model.compile(backend, self.compile)?;
        for w in model.warnings() {
            wgtrain::stderr_line!("warning: {w}");
        }
        let mut initial_epoch = 0;
        if let Some(ckpt) = &self.resume {
            model.restore(ckpt).map_err(|e| {
                Error::Config(format!(
                    "cannot resume from {}: {e}",
                    args.resume.as_ref().expect("resume").display()
                ))
            })?;
            initial_epoch = ckpt.epoch;
        } else if args.standardize {
            // Fitted on the rows that train, not on those fit() holds out for validation.
            let n_val =
                (self.x_train.rows() as f64 * args.validation_split as f64).round() as usize;
            model.set_standardizer(Some(Standardizer::fit(
                &self.x_train.head(self.x_train.rows() - n_val),
            )));
        } else if args.data.is_none() {
            model.set_standardizer(Some(Standardizer::scale(
                self.x_train.cols(),
                data::DIGITS_MAX,
            )));
        }
        if !args.common.json && args.verbose > 0 {
            wgtrain::stderr_line!(
                "training on {adapter}\ndata: {} ({} train, {} test samples, {} features){}",
                self.source,
                self.x_train.rows(),
                self.x_test.rows(),
                self.x_train.cols(),
                if initial_epoch > 0 {
                    format!("; resuming after epoch {initial_epoch}")
                } else {
                    String::new()
                }
            );
        }
        let mut config = FitConfig {
            epochs: args.epochs,
            batch_size: args
                .batch_size
                .unwrap_or(default_batch_size(self.x_train.rows())),
            validation_split: args.validation_split,
            verbose: args.verbose,
            initial_epoch,
            ..FitConfig::default()
        };
        match (&args.save, args.save_mode) {
            (Some(path), SaveMode::Epoch) => config
                .callbacks
                .push(Box::new(ModelCheckpoint::every_epoch(path))),
            (Some(path), SaveMode::Best) => config
                .callbacks
                .push(Box::new(ModelCheckpoint::best_only(path, &args.monitor))),
            _ => {}
        }
        let fit_start = Instant::now();
        let history = model.fit(&self.x_train, &self.y_train, config)?;
        let fit_seconds = fit_start.elapsed().as_secs_f64();
        if let Some(reason) = &history.stopped_early {
            wgtrain::stderr_line!("{reason}");
        }
        if let (Some(path), SaveMode::End) = (&args.save, args.save_mode) {
            model.save(path)?;
        }
        if let Some(path) = &args.history {
            let text = match path.extension().and_then(|e| e.to_str()) {
                Some("json") => history.to_json(),
                Some("csv") => history.to_csv(),
                _ => {
                    return Err(Error::Config(format!(
                        "--history {}: use a .csv or .json file name",
                        path.display()
                    )))
                }
            };
            write_atomic(path, text.as_bytes())?;
        }
        if let Some(path) = &args.plot {
            wgtrain::train::plot::plot_history(&history, path)?;
        }
        let test = model.evaluate(&self.x_test, &self.y_test, 256)?;
        let epochs = history.epochs.len();
        let trained = (self.x_train.rows() as f64 * (1.0 - args.validation_split as f64)).round()
            * epochs as f64;

        let mut report = json!({
            "backend": kind,
            "adapter": adapter,
            "data": self.source,
            "loss_function": model.loss().name(),
            "epochs": model.epochs_done(),
            "epochs_run": epochs,
            "train_loss": history.last("loss"),
            "test_loss": test.loss,
            "samples_per_sec": trained / fit_seconds,
            "train_seconds": fit_seconds,
            "seconds": self.started.elapsed().as_secs_f64(),
        });
        if let Some(v) = history.last("val_loss") {
            report["val_loss"] = json!(v);
        }
        for (name, value) in &test.metrics {
            report[format!("test_{name}")] = json!(value);
        }
        if let Some(reason) = &history.stopped_early {
            report["stopped_early"] = json!(reason);
        }
        if args.common.json {
            outln!("{report}");
        } else {
            let metrics: Vec<String> = test
                .metrics
                .iter()
                .map(|(n, v)| format!("{n} {v:.4}"))
                .collect();
            outln!(
                "test: loss {:.4}, {} ({} samples) after {} epochs, {:.0} samples/s, {:.1}s in all",
                test.loss,
                metrics.join(", "),
                self.x_test.rows(),
                model.epochs_done(),
                trained / fit_seconds,
                self.started.elapsed().as_secs_f64()
            );
        }
        if history
            .stopped_early
            .as_deref()
            .is_some_and(|r| r.starts_with("TerminateOnNaN"))
        {
            return Err(Error::Config("training diverged (see above)".into()));
        }
        Ok(())
    }
}
