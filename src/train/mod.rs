//! Training: [`Model`] (a compiled network) with `fit`, `evaluate` and `predict`, its
//! metrics, callbacks, learning curves and progress.
//!
//! The fit loop uploads each batch, records the whole step (forward, loss, metrics, backward,
//! update) and moves on: on the GPU the upload of the next batch submits the step just
//! recorded, so each step is one submission, and the loss and metric sums stay on the device
//! until the epoch ends (or the progress bar asks, twice a second).

pub mod callbacks;
pub mod diagnosis;
mod distributed;
pub mod history;
mod memory;
/// The metrics, defined beside the models they are compiled into (see [`crate::metrics`]).
pub use crate::metrics;
mod model;
mod persist;
pub mod plot;
mod progress;
mod resident;
mod step;
pub mod targets;

pub use callbacks::{
    Callback, EarlyStopping, LambdaCallback, Mode, ModelCheckpoint, ModelControl, ReduceLrOnPlateau,
};
pub use diagnosis::{Diagnosis, Verdict};
pub use history::{Divergence, History, Logs};
pub use memory::MemoryNeed;
pub use metrics::Metric;
use model::Phase;
pub use model::{Compile, Evaluation, Model};

use std::borrow::Cow;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

use crate::backend::Backend;
use crate::data::Matrix;
use crate::error::{Error, Result};
use progress::Progress;
use resident::{Source, StepKind};

/// How `fit` runs. Defaults as Keras: 1 epoch, batches of 32, shuffled, no validation,
/// verbosity 1, and training stops on a NaN or infinite loss.
pub struct FitConfig {
    /// Passes over the training data (≥ 1).
    pub epochs: usize,
    /// Samples per step (≥ 1); the last batch of an epoch may be smaller.
    pub batch_size: usize,
    /// Reshuffle the training data every epoch (seeded by the model's seed).
    pub shuffle: bool,
    /// Hold out this last fraction of the data (before shuffling, as Keras) for validation.
    pub validation_split: f32,
    /// Explicit validation data; takes precedence over `validation_split`.
    pub validation_data: Option<(Matrix, Matrix)>,
    /// 0: silent; 1: a progress bar and a line per epoch; 2: a line per epoch.
    pub verbose: u8,
    /// Run at the end of each epoch.
    pub callbacks: Vec<Box<dyn Callback>>,
    /// Epochs already done: training runs epochs `initial_epoch + 1 ..= epochs` (Keras'
    /// meaning; 0 by default), e.g. `epochs_done()` of a model restored from a checkpoint.
    pub initial_epoch: usize,
    /// Stop when the loss, an update's result or the validation loss is NaN or infinite, and
    /// go back to the weights of the last step whose loss was finite. Each update is guarded
    /// on the device (see [`crate::backend::Backend::optimizer_step`]): from the first
    /// non-finite loss or update on, no update runs, and the one before is undone at the end
    /// of the epoch from the backup the updates keep. [`History::diverged`] says what
    /// happened and which step's weights the model holds.
    pub terminate_on_nan: bool,
}

impl Default for FitConfig {
    fn default() -> Self {
        FitConfig {
            epochs: 1,
            batch_size: 32,
            shuffle: true,
            validation_split: 0.0,
            validation_data: None,
            verbose: 1,
            callbacks: Vec::new(),
            initial_epoch: 0,
            terminate_on_nan: true,
        }
    }
}

impl FitConfig {
    /// The defaults with `epochs` epochs.
    pub fn epochs(epochs: usize) -> FitConfig {
        FitConfig {
            epochs,
            ..FitConfig::default()
        }
    }

    /// The same with this batch size.
    pub fn batch_size(mut self, batch_size: usize) -> FitConfig {
        self.batch_size = batch_size;
        self
    }

    /// The same with this verbosity.
    pub fn verbose(mut self, verbose: u8) -> FitConfig {
        self.verbose = verbose;
        self
    }

    /// The same, shuffling or not.
    pub fn shuffle(mut self, shuffle: bool) -> FitConfig {
        self.shuffle = shuffle;
        self
    }

    /// The same with a validation split.
    pub fn validation_split(mut self, fraction: f32) -> FitConfig {
        self.validation_split = fraction;
        self
    }

    /// The same with explicit validation data.
    pub fn validation_data(mut self, x: Matrix, y: Matrix) -> FitConfig {
        self.validation_data = Some((x, y));
        self
    }

    /// The same, starting after `initial_epoch` epochs (for resuming).
    pub fn initial_epoch(mut self, initial_epoch: usize) -> FitConfig {
        self.initial_epoch = initial_epoch;
        self
    }

    /// The same with one more callback.
    pub fn callback(mut self, c: impl Callback + 'static) -> FitConfig {
        self.callbacks.push(Box::new(c));
        self
    }
}

/// The order of the training rows in epoch `epoch` (from 1): a shuffle drawn from a generator
/// seeded by (seed, epoch) alone, so that a run resumed at any epoch sees the same batches as
/// one that never stopped.
fn epoch_order(order: &mut [usize], seed: u64, epoch: usize) {
    for (i, o) in order.iter_mut().enumerate() {
        *o = i;
    }
    let mix = seed
        ^ (epoch as u64)
            .wrapping_add(1)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15);
    order.shuffle(&mut StdRng::seed_from_u64(mix));
}

impl<B: Backend> Model<B> {
    /// Records what decides this run's batches (saved in its checkpoints); a `fit` that
    /// continues a restored checkpoint (`initial_epoch` > 0) must decide them the same way.
    fn record_run(&mut self, x: &Matrix, y: &Matrix, config: &FitConfig) -> Result<()> {
        let validation_split = if config.validation_data.is_some() {
            0.0
        } else {
            config.validation_split
        };
        let record = crate::checkpoint::RunRecord::new(
            self.seed,
            config.batch_size,
            validation_split,
            config.shuffle,
            x,
            y,
            self.data_split.as_ref(),
        );
        if let (true, Some(then)) = (config.initial_epoch > 0, &self.resumed) {
            let differences = then.differences(&record);
            if !differences.is_empty() {
                let list: Vec<String> = differences
                    .iter()
                    .map(|(field, a, b)| format!("{field} was {a}, now {b}"))
                    .collect();
                return Err(Error::Config(format!(
                    "this fit continues a checkpoint's run (initial_epoch {}), but {}: its batches would not be that run's. \
                     Continue with what the run had, or train from the start",
                    config.initial_epoch,
                    list.join("; ")
                )));
            }
        }
        self.run = Some(record);
        Ok(())
    }

    /// After a divergence in `epoch`: back to the last good weights, and the reason in
    /// `history`. The epoch does not count as done.
    fn record_divergence(&mut self, epoch: usize, cause: String, history: &mut History) {
        let step = self.roll_back();
        let kept = if step == 0 {
            "the ones it started from (its first step already diverged)".to_string()
        } else {
            format!("those after step {step}, the last whose loss was finite")
        };
        history.stopped_early = Some(format!(
            "TerminateOnNaN: {cause} during epoch {epoch}; training stopped. The weights are {kept}. Lower the \
             learning rate, scale the inputs, or check the data for extreme values"
        ));
        history.diverged = Some(Divergence { epoch, cause, step });
    }
}

pub(crate) fn check_batch_size(batch_size: usize) -> Result<()> {
    if batch_size == 0 {
        return Err(Error::Config("the batch size must be at least 1".into()));
    }
    Ok(())
}

impl<B: Backend> Model<B> {
    /// Trains on `(x, y)`: `x` is `[N, features]`; `y` is `[N, 1]` integer labels for sparse
    /// categorical cross-entropy, else `[N, outputs]`. Returns the learning curves.
    pub fn fit(&mut self, x: &Matrix, y: &Matrix, mut config: FitConfig) -> Result<History> {
        if config.epochs == 0 {
            return Err(Error::Config("epochs must be at least 1".into()));
        }
        if config.epochs <= config.initial_epoch {
            return Err(Error::Config(format!(
                "{} epochs are done already and {} were asked for in all: ask for more epochs to continue",
                config.initial_epoch, config.epochs
            )));
        }
        check_batch_size(config.batch_size)?;
        if !(0.0..1.0).contains(&config.validation_split) {
            return Err(Error::Config(format!(
                "validation_split must be in [0, 1), got {}",
                config.validation_split
            )));
        }
        self.check_data(x, Some(y), "training data")?;
        self.check_memory(x.cols(), config.batch_size.min(x.rows()))?;
        self.record_run(x, y, &config)?;
        self.start_distributed(x, y, &config)?;

        // Keras holds out the *last* fraction, before any shuffling.
        let (x_train, y_train, validation) = match config.validation_data.take() {
            Some((vx, vy)) => {
                self.check_data(&vx, Some(&vy), "validation data")?;
                (Cow::Borrowed(x), Cow::Borrowed(y), Some((vx, vy)))
            }
            None if config.validation_split > 0.0 => {
                let n_val = (x.rows() as f64 * config.validation_split as f64).round() as usize;
                if n_val == 0 || n_val == x.rows() {
                    return Err(Error::Config(format!(
                        "validation_split {} of {} samples leaves {} for validation and {} for training; both need at least one",
                        config.validation_split,
                        x.rows(),
                        n_val,
                        x.rows() - n_val
                    )));
                }
                let (xt, xv) = x.split_at(x.rows() - n_val);
                let (yt, yv) = y.split_at(y.rows() - n_val);
                (Cow::Owned(xt), Cow::Owned(yt), Some((xv, yv)))
            }
            None => (Cow::Borrowed(x), Cow::Borrowed(y), None),
        };
        // Standardize the training rows here; validation rows are raw, and evaluate prepares
        // them itself. Without a standardizer the rows are used as they are, not copied.
        let x_train: Cow<Matrix> = match self.prepare(&x_train)? {
            Cow::Owned(standardized) => Cow::Owned(standardized),
            Cow::Borrowed(_) => x_train,
        };

        let n = x_train.rows();
        let steps = n.div_ceil(config.batch_size);
        let mut history = History::default();
        let mut acc = self.take_accumulator(Phase::Train)?;
        self.stop_reason = None;
        let result = self.run_epochs(
            &x_train,
            &y_train,
            validation.as_ref(),
            &mut config,
            steps,
            &mut acc,
            &mut history,
        );
        self.put_accumulator(Phase::Train, acc);
        result?;
        for c in &mut config.callbacks {
            c.on_train_end(self)?;
        }
        Ok(history)
    }

    /// The epochs of `fit`, accumulating into `acc`.
    #[allow(clippy::too_many_arguments)]
    fn run_epochs(
        &mut self,
        x_train: &Matrix,
        y_train: &Matrix,
        validation: Option<&(Matrix, Matrix)>,
        config: &mut FitConfig,
        steps: usize,
        acc: &mut B::Tensor,
        history: &mut History,
    ) -> Result<()> {
        let n = x_train.rows();
        let mut order: Vec<usize> = (0..n).collect();
        // In a data-parallel run rank 0 alone reports.
        let verbose = if self.rank() == 0 { config.verbose } else { 0 };
        let mut progress = Progress::new(verbose);
        let kind = StepKind::Train;
        // The rows are prepared already (fit standardized them).
        let resident = self.make_resident(kind, x_train, Some(y_train), false)?;
        for epoch in config.initial_epoch + 1..=config.epochs {
            for c in &mut config.callbacks {
                c.on_epoch_begin(epoch, self)?;
            }
            // Shuffled by the model's own epoch count, which a checkpoint carries: a resumed
            // run sees the batches an uninterrupted one would.
            if config.shuffle {
                epoch_order(&mut order, self.seed, self.epochs_done + 1);
            }
            // Before the accumulator's fill is recorded: a write submits what is recorded.
            self.set_order(kind, &order)?;
            self.backend.fill(acc, 0.0)?;
            let steps_before = self.step;
            let swaps_before = self.net.as_ref().map_or(0, |n| n.swaps());
            progress.begin_epoch(epoch, config.epochs, steps);
            let lr = self.optimizer.lr();
            // The rows this rank has trained on this epoch (all of them without a run).
            let mut seen = 0;
            for (s, idx) in order.chunks(config.batch_size).enumerate() {
                // This rank's slice of the global batch (the whole batch without a run).
                let mine = self.take_slice(idx.len());
                let guard = config.terminate_on_nan;
                if mine.is_empty() {
                    self.empty_step(acc, guard)?;
                } else {
                    let source = if resident {
                        Source::Resident
                    } else {
                        Source::Host(x_train, Some(y_train), &idx[mine.clone()])
                    };
                    let offset = s * config.batch_size + mine.start;
                    self.run_step(kind, source, offset, mine.len(), Some(&mut *acc), guard)?;
                }
                seen += mine.len();
                // The bar's running loss and metrics: the sums so far, read twice a second
                // (this rank's alone in a data-parallel run: the ranks read at other times).
                let running = if progress.wants_refresh() {
                    let sums = self.backend.read(acc)?;
                    let mut logs = Logs::default();
                    self.finish_logs(&sums, seen, "", &mut logs);
                    Some(logs)
                } else {
                    None
                };
                progress.step(s + 1, running.as_ref());
            }
            // The one read-back of the epoch, summed over the ranks of a data-parallel run.
            let mut sums = self.backend.read(acc)?;
            self.reduce_sums(&mut sums)?;
            let mut logs = Logs::default();
            self.finish_logs(&sums, n, "", &mut logs);
            let slots = self.guard_slots();
            if let Some(t) = slots.last_step(&sums) {
                // Step t read the set in use after `swaps_before` + (t - steps_before - 1)
                // swaps (each step of this epoch swapped once): it holds step t - 1's weights.
                self.last_good = model::LastGood {
                    step: t - 1,
                    swaps: swaps_before + (t - steps_before - 1),
                };
            }
            let loss = logs.get("loss").unwrap_or(f64::NAN);
            let diverged = if !loss.is_finite() {
                Some(format!("the loss became {loss}"))
            } else if slots.tripped(&sums) {
                Some("an update made the weights NaN or infinite".to_string())
            } else {
                None
            };
            if let (true, Some(cause)) = (config.terminate_on_nan, diverged) {
                progress.end_epoch(epoch, config.epochs, steps, &logs);
                history.push(epoch, &logs, lr);
                self.record_divergence(epoch, cause, history);
                break;
            }
            self.epochs_done += 1;
            if let Some((vx, vy)) = validation {
                self.evaluate_into(vx, vy, config.batch_size, "val_", &mut logs)?;
                let val_loss = logs.get("val_loss").unwrap_or(f64::NAN);
                if config.terminate_on_nan && !val_loss.is_finite() {
                    // The last update made weights whose outputs are not finite: undo it.
                    self.epochs_done -= 1;
                    progress.end_epoch(epoch, config.epochs, steps, &logs);
                    history.push(epoch, &logs, lr);
                    let cause = format!("the validation loss became {val_loss}");
                    self.record_divergence(epoch, cause, history);
                    break;
                }
            }
            for c in &mut config.callbacks {
                c.on_epoch_end(epoch, &logs, self)?;
            }
            progress.end_epoch(epoch, config.epochs, steps, &logs);
            history.push(epoch, &logs, lr);
            if let Some(reason) = self.stop_reason.take() {
                history.stopped_early = Some(reason);
                break;
            }
        }
        Ok(())
    }
}
