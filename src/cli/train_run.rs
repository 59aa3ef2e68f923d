//! `wgtrain train` on a backend: the weights made (after their memory is checked), restored
//! or scaled, the fit, and then the outputs. A run that diverged leaves `--save` as it was and
//! keeps its last good weights beside it; the history and the plot are written either way.

use std::time::Instant;

use serde_json::json;
use wgtrain::backend::Backend;
use wgtrain::data::{self, Standardizer};
use wgtrain::fs::write_atomic;
use wgtrain::train::{EarlyStopping, FitConfig, ModelCheckpoint};
use wgtrain::{Error, Result};

use super::args::SaveMode;
use super::train::Train;
use super::Job;

impl Job for Train<'_> {
    fn run<B: Backend>(self, backend: B, chosen: &super::Chosen) -> Result<()> {
        let args = self.args;
        let adapter = backend.describe();
        let mut model = self.model.compile(backend, self.compile)?;
        // In a data-parallel job every rank trains; rank 0 alone reports and writes.
        let rank = super::ranks::rank(&self.ranks);
        if let Some(ranks) = &self.ranks {
            model.set_communicator(ranks.clone());
            model.set_gradient_buckets(self.bucket_bytes)?;
        }
        let speaks = rank == 0;
        for w in model.warnings().iter().chain(&self.warnings) {
            if speaks {
                wgtrain::stderr_line!("warning: {w}");
            }
        }
        let layers = &args.layers;
        // A batch is at most the whole training set.
        let batch = self.batch_size.min(self.x_train.rows());
        model
            .check_memory(self.x_train.cols(), batch)
            .map_err(|e| {
                Error::Config(format!(
                    "--layers {} (batches of {batch}): {e}",
                    layers.join(",")
                ))
            })?;
        let mut initial_epoch = 0;
        if let Some(ckpt) = &self.resume {
            model.restore(ckpt).map_err(|e| {
                let path = args.resume.as_ref().expect("a resume has a path").display();
                Error::Config(format!("--resume {path}: cannot continue from it: {e}"))
            })?;
            initial_epoch = ckpt.epoch;
        } else if args.standardize {
            // Fitted on the rows that train, not on those fit() holds out for validation.
            let n_val =
                (self.x_train.rows() as f64 * args.validation_split() as f64).round() as usize;
            model.set_standardizer(Some(Standardizer::fit(
                &self.x_train.head(self.x_train.rows() - n_val),
            )));
        } else if args.data.is_none() {
            model.set_standardizer(Some(Standardizer::scale(
                self.x_train.cols(),
                data::DIGITS_MAX,
            )));
        }
        if let Some((split, source)) = &self.data_split {
            model.set_data_split(*split, source.clone());
        }
        if !args.common.json && args.verbose > 0 && speaks {
            let ranks = match model.ranks() {
                1 => String::new(),
                n => format!(
                    " and {} more ranks (a global batch of {}, each rank its slice)",
                    n - 1,
                    self.batch_size
                ),
            };
            wgtrain::stderr_line!(
                "training on {adapter}{ranks}\ndata: {} ({} train, {} test samples, {} features){}\nloss: {} ({})",
                self.source,
                self.x_train.rows(),
                self.x_test.rows(),
                self.x_train.cols(),
                if initial_epoch > 0 {
                    format!("; resuming after epoch {initial_epoch}")
                } else {
                    String::new()
                },
                model.loss().name(),
                self.loss_reason
            );
        }
        let mut config = FitConfig {
            epochs: args.epochs,
            batch_size: self.batch_size,
            validation_split: args.validation_split(),
            validation_data: self.validation.clone(),
            verbose: args.verbose,
            initial_epoch,
            ..FitConfig::default()
        };
        match (&args.save, args.save_mode) {
            (Some(path), SaveMode::Epoch) => config
                .callbacks
                .push(Box::new(ModelCheckpoint::every_epoch(path))),
            (Some(path), SaveMode::Best) => config.callbacks.push(Box::new(
                ModelCheckpoint::best_only(path, &super::train::monitor(args)),
            )),
            _ => {}
        }
        if let Some(patience) = args.early_stopping {
            config.callbacks.push(Box::new(
                EarlyStopping::new(&super::train::monitor(args), patience)
                    .restore_best_weights(args.restore_best),
            ));
        }
        let fit_start = Instant::now();
        let history = model.fit(&self.x_train, &self.y_train, config)?;
        let fit_seconds = fit_start.elapsed().as_secs_f64();
        if !speaks {
            // Its weights are rank 0's, which reports on them.
            return Ok(());
        }
        if let Some(reason) = &history.stopped_early {
            wgtrain::stderr_line!("{reason}");
        }
        let test = model.evaluate(&self.x_test, &self.y_test, 256)?;

        // The curves first: a failure to write them leaves the model file as it was.
        if let Some(path) = &args.history {
            let text = match path.extension().and_then(|e| e.to_str()) {
                Some(e) if e.eq_ignore_ascii_case("json") => history.to_json(),
                _ => history.to_csv(),
            };
            write_atomic(path, text.as_bytes())?;
        }
        if let Some(path) = &args.plot {
            wgtrain::train::plot::plot_history(&history, path)?;
        }

        // The model file: never replaced by weights that diverged or that test to NaN.
        let mut kept = None;
        let diverged = history.diverged.is_some() || !test.loss.is_finite();
        if let (Some(save), true) = (&args.save, diverged) {
            let before = match args.save_mode {
                SaveMode::End => "was not written (it is as it was)",
                _ => {
                    "was not written after the divergence (it holds what it held before that epoch)"
                }
            };
            match (&history.diverged, &self.last_good) {
                (Some(d), Some(last_good)) => {
                    model.save(last_good)?;
                    let which = match d.step {
                        0 => "the weights it started from".to_string(),
                        s => format!("the weights after step {s} (the last whose loss was finite)"),
                    };
                    wgtrain::stderr_line!(
                        "{} {before}; {which} are in {}",
                        save.display(),
                        last_good.display()
                    );
                    kept = Some(last_good.display().to_string());
                }
                _ => wgtrain::stderr_line!(
                    "the trained model's test loss is {}: its outputs are not finite. {} {before}",
                    test.loss,
                    save.display()
                ),
            }
        } else if let (Some(path), SaveMode::End) = (&args.save, args.save_mode) {
            model.save(path)?;
        }
        let epochs = history.epochs.len();
        let trained = (self.x_train.rows() as f64 * (1.0 - args.validation_split() as f64)).round()
            * epochs as f64;
        let mut report = json!({
            "backend": chosen.kind,
            "backend_reason": chosen.why,
            "adapter": adapter,
            "data": self.source,
            "loss_function": model.loss().name(),
            "loss_reason": self.loss_reason,
            "epochs": model.epochs_done(),
            "epochs_run": epochs,
            "train_loss": history.last("loss"),
            "test_loss": test.loss,
            "samples_per_sec": trained / fit_seconds,
            "ranks": model.ranks(),
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
        let diagnosis = history.diagnose();
        report["diagnosis"] = json!({
            "verdict": diagnosis.verdict.name(),
            "generalization_gap": diagnosis.generalization_gap,
            "final_gap": diagnosis.final_gap,
            "best_epoch": diagnosis.best_epoch,
            "reason": diagnosis.reason,
        });
        if let Some(d) = &history.diverged {
            report["diverged"] =
                json!({ "epoch": d.epoch, "step": d.step, "cause": d.cause, "last_good": kept });
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
            let gap = diagnosis.generalization_gap.map_or(String::new(), |g| {
                format!(
                    ", generalization gap {g:.4} at epoch {}",
                    diagnosis.best_epoch
                )
            });
            outln!(
                "diagnosis: {}{gap}: {}",
                diagnosis.verdict.name().replace('_', " "),
                diagnosis.reason
            );
        }
        if diverged {
            return Err(Error::Config(match history.diverged {
                Some(_) => "training diverged (see above)".into(),
                None => "the trained model's outputs are not finite (see above)".into(),
            }));
        }
        Ok(())
    }
}
