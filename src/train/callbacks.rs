//! Callbacks run at the start and end of every epoch: early stopping, learning-rate reduction
//! on a plateau, checkpoints, and user closures. (Stopping on a NaN loss is built into `fit`, on by default.)

use std::path::PathBuf;

use super::history::Logs;
use crate::error::{Error, Result};
use crate::nn::LayerWeights;

/// What a callback may do to the model it watches.
pub trait ModelControl {
    /// Ends training after this epoch.
    fn stop_training(&mut self, reason: String);
    /// The optimizer's learning rate.
    fn learning_rate(&self) -> f32;
    /// Changes the learning rate from the next step on.
    fn set_learning_rate(&mut self, lr: f32);
    /// A copy of every layer's weights.
    fn get_weights(&mut self) -> Result<Vec<LayerWeights>>;
    /// Replaces every layer's weights.
    fn set_weights(&mut self, weights: &[LayerWeights]) -> Result<()>;
    /// Keeps a copy of the weights and the layers' state (batch normalization's moving
    /// statistics) where they are, on the device: what [`ModelControl::restore_kept_weights`]
    /// goes back to.
    fn keep_weights(&mut self) -> Result<()>;
    /// Goes back to the weights and layer state last kept; false if none were.
    fn restore_kept_weights(&mut self) -> Result<bool>;
    /// Saves a full checkpoint (weights, optimizer state, epoch) to `path`, atomically; in a
    /// data-parallel run, on rank 0 alone.
    fn save_checkpoint(&mut self, path: &std::path::Path) -> Result<()>;
}

/// Runs at the start of each epoch, at its end with its logs, and at the end of training.
pub trait Callback {
    /// Before epoch `epoch` (from 1) does anything: its shuffle, its steps.
    fn on_epoch_begin(&mut self, _epoch: usize, _model: &mut dyn ModelControl) -> Result<()> {
        Ok(())
    }
    /// After epoch `epoch` (from 1), with its logs.
    fn on_epoch_end(
        &mut self,
        epoch: usize,
        logs: &Logs,
        model: &mut dyn ModelControl,
    ) -> Result<()>;
    /// After the last epoch.
    fn on_train_end(&mut self, _model: &mut dyn ModelControl) -> Result<()> {
        Ok(())
    }
}

/// Whether a monitored quantity improves upwards (accuracy, AUC) or downwards (losses, errors).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Lower is better.
    Min,
    /// Higher is better.
    Max,
    /// From the name: accuracies, precision, recall and AUC go up; everything else down.
    Auto,
}

impl Mode {
    fn resolve(self, monitor: &str) -> Mode {
        match self {
            Mode::Auto => {
                // A metric by its name: higher is better for accuracies, rates, AUC, F1 and
                // the true counts; lower for the loss and everything else.
                let name = monitor.strip_prefix("val_").unwrap_or(monitor);
                match crate::metrics::higher_is_better(name) {
                    Some(true) => Mode::Max,
                    _ => Mode::Min,
                }
            }
            m => m,
        }
    }

    fn improved(self, value: f64, best: f64, min_delta: f64) -> bool {
        match self {
            Mode::Max => value > best + min_delta,
            _ => value < best - min_delta,
        }
    }
}

/// The best value so far of a monitored quantity, for the callbacks that act on improvement.
#[derive(Debug, Default)]
struct Best(Option<f64>);

impl Best {
    /// Reads `monitor` from `logs` and remembers it if it beats the best so far by more than
    /// `min_delta` (the first value always does). Returns whether it did, and the value.
    fn update(
        &mut self,
        monitor: &str,
        mode: Mode,
        min_delta: f64,
        logs: &Logs,
        who: &str,
    ) -> Result<(bool, f64)> {
        let value = monitored(monitor, logs, who)?;
        let mode = mode.resolve(monitor);
        let improved = self
            .0
            .is_none_or(|best| mode.improved(value, best, min_delta));
        if improved {
            self.0 = Some(value);
        }
        Ok((improved, value))
    }
}

fn monitored(monitor: &str, logs: &Logs, who: &str) -> Result<f64> {
    logs.get(monitor).ok_or_else(|| {
        Error::Config(format!(
            "{who} monitors `{monitor}`, which is not logged (logged: {}); monitor `loss`, or give validation data \
             for `val_` quantities",
            logs.names()
        ))
    })
}

/// Stops training when a monitored quantity stops improving (Keras' `EarlyStopping`).
#[derive(Debug)]
pub struct EarlyStopping {
    /// What to watch, e.g. `val_loss` (the default).
    pub monitor: String,
    /// Smallest change that counts as an improvement.
    pub min_delta: f64,
    /// Epochs without improvement before stopping.
    pub patience: usize,
    /// Direction of improvement.
    pub mode: Mode,
    /// At the end, put back the weights of the best epoch.
    pub restore_best_weights: bool,
    best: Best,
    wait: usize,
    best_epoch: usize,
    /// Whether the best weights are kept (on the device, by the model).
    kept: bool,
}

impl EarlyStopping {
    /// Watches `monitor` with the given patience, `min_delta = 0`, mode from the name.
    pub fn new(monitor: &str, patience: usize) -> EarlyStopping {
        EarlyStopping {
            monitor: monitor.to_string(),
            min_delta: 0.0,
            patience,
            mode: Mode::Auto,
            restore_best_weights: false,
            best: Best::default(),
            wait: 0,
            best_epoch: 0,
            kept: false,
        }
    }

    /// The same, restoring the best epoch's weights at the end.
    pub fn restore_best_weights(mut self, yes: bool) -> EarlyStopping {
        self.restore_best_weights = yes;
        self
    }

    /// The same with a minimum improvement.
    pub fn min_delta(mut self, min_delta: f64) -> EarlyStopping {
        self.min_delta = min_delta.abs();
        self
    }

    /// The epoch (from 1) with the best monitored value so far.
    pub fn best_epoch(&self) -> usize {
        self.best_epoch
    }
}

impl Callback for EarlyStopping {
    fn on_epoch_end(
        &mut self,
        epoch: usize,
        logs: &Logs,
        model: &mut dyn ModelControl,
    ) -> Result<()> {
        let (improved, value) = self.best.update(
            &self.monitor,
            self.mode,
            self.min_delta,
            logs,
            "EarlyStopping",
        )?;
        if improved {
            self.best_epoch = epoch;
            self.wait = 0;
            if self.restore_best_weights {
                model.keep_weights()?;
                self.kept = true;
            }
        } else {
            self.wait += 1;
            if self.wait >= self.patience {
                model.stop_training(format!(
                    "EarlyStopping: {} did not improve for {} epochs (best {:.6} at epoch {})",
                    self.monitor,
                    self.patience,
                    self.best.0.unwrap_or(value),
                    self.best_epoch
                ));
            }
        }
        Ok(())
    }

    fn on_train_end(&mut self, model: &mut dyn ModelControl) -> Result<()> {
        if std::mem::take(&mut self.kept) {
            model.restore_kept_weights()?;
        }
        Ok(())
    }
}

/// Multiplies the learning rate by `factor` when a monitored quantity stops improving
/// (Keras' `ReduceLROnPlateau`).
#[derive(Debug)]
pub struct ReduceLrOnPlateau {
    /// What to watch (default `val_loss`).
    pub monitor: String,
    /// The multiplier, in (0, 1) (default 0.1).
    pub factor: f32,
    /// Epochs without improvement before reducing (default 10).
    pub patience: usize,
    /// Smallest change that counts as an improvement (default 1e-4).
    pub min_delta: f64,
    /// Epochs to wait after a reduction before counting again (default 0).
    pub cooldown: usize,
    /// The learning rate never goes below this (default 0).
    pub min_lr: f32,
    /// Direction of improvement.
    pub mode: Mode,
    best: Best,
    wait: usize,
    cooldown_left: usize,
}

impl ReduceLrOnPlateau {
    /// Watches `monitor`, Keras' defaults otherwise.
    pub fn new(monitor: &str, factor: f32, patience: usize) -> ReduceLrOnPlateau {
        ReduceLrOnPlateau {
            monitor: monitor.to_string(),
            factor,
            patience,
            min_delta: 1e-4,
            cooldown: 0,
            min_lr: 0.0,
            mode: Mode::Auto,
            best: Best::default(),
            wait: 0,
            cooldown_left: 0,
        }
    }
}

impl Callback for ReduceLrOnPlateau {
    fn on_epoch_end(
        &mut self,
        _epoch: usize,
        logs: &Logs,
        model: &mut dyn ModelControl,
    ) -> Result<()> {
        if !(self.factor > 0.0 && self.factor < 1.0) {
            return Err(Error::Config(format!(
                "ReduceLROnPlateau's factor must be in (0, 1), got {}",
                self.factor
            )));
        }
        if self.cooldown_left > 0 {
            self.cooldown_left -= 1;
            self.wait = 0;
        }
        let (improved, _) = self.best.update(
            &self.monitor,
            self.mode,
            self.min_delta,
            logs,
            "ReduceLROnPlateau",
        )?;
        if improved {
            self.wait = 0;
        } else if self.cooldown_left == 0 {
            self.wait += 1;
            if self.wait >= self.patience {
                let lr = model.learning_rate();
                let new_lr = (lr * self.factor).max(self.min_lr);
                if new_lr < lr {
                    model.set_learning_rate(new_lr);
                }
                self.cooldown_left = self.cooldown;
                self.wait = 0;
            }
        }
        Ok(())
    }
}

/// A closure run at the end of each epoch with the epoch and its logs.
pub struct LambdaCallback<F>(pub F);

impl<F: FnMut(usize, &Logs) -> Result<()>> Callback for LambdaCallback<F> {
    fn on_epoch_end(
        &mut self,
        epoch: usize,
        logs: &Logs,
        _model: &mut dyn ModelControl,
    ) -> Result<()> {
        (self.0)(epoch, logs)
    }
}

/// Saves a checkpoint after every epoch, or only when a monitored quantity improves (Keras'
/// `ModelCheckpoint`). Writes are atomic: the file is always a whole checkpoint.
#[derive(Debug)]
pub struct ModelCheckpoint {
    /// Where to write.
    pub path: PathBuf,
    /// With `Some(name)`, save only when `name` improves (best-only).
    pub monitor: Option<String>,
    /// Direction of improvement for `monitor`.
    pub mode: Mode,
    best: Best,
}

impl ModelCheckpoint {
    /// Saves after every epoch.
    pub fn every_epoch(path: impl Into<PathBuf>) -> ModelCheckpoint {
        ModelCheckpoint {
            path: path.into(),
            monitor: None,
            mode: Mode::Auto,
            best: Best::default(),
        }
    }

    /// Saves when `monitor` reaches a new best.
    pub fn best_only(path: impl Into<PathBuf>, monitor: &str) -> ModelCheckpoint {
        ModelCheckpoint {
            path: path.into(),
            monitor: Some(monitor.to_string()),
            mode: Mode::Auto,
            best: Best::default(),
        }
    }
}

impl Callback for ModelCheckpoint {
    fn on_epoch_end(
        &mut self,
        _epoch: usize,
        logs: &Logs,
        model: &mut dyn ModelControl,
    ) -> Result<()> {
        if let Some(monitor) = &self.monitor {
            let (improved, _) =
                self.best
                    .update(monitor, self.mode, 0.0, logs, "ModelCheckpoint")?;
            if !improved {
                return Ok(());
            }
        }
        model.save_checkpoint(&self.path)
    }
}
