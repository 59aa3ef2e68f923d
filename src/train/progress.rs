//! Progress: a Keras-like bar per epoch at verbosity 1 (steps, ETA, time per step, running
//! loss), one summary line per epoch at 1 and 2, nothing at 0. Written to stderr, so that
//! stdout stays free for results (`--json`).

use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::history::Logs;

/// How often the running loss is read back for the bar: each read waits for the device.
const REFRESH: Duration = Duration::from_millis(500);

pub(crate) struct Progress {
    verbose: u8,
    bar: Option<ProgressBar>,
    epoch_start: Instant,
    last_refresh: Instant,
}

impl Progress {
    pub(crate) fn new(verbose: u8) -> Progress {
        Progress {
            verbose,
            bar: None,
            epoch_start: Instant::now(),
            last_refresh: Instant::now(),
        }
    }

    pub(crate) fn begin_epoch(&mut self, epoch: usize, epochs: usize, steps: usize) {
        self.epoch_start = Instant::now();
        self.last_refresh = Instant::now();
        if self.verbose == 1 {
            let bar =
                ProgressBar::with_draw_target(Some(steps as u64), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(
                    "Epoch {prefix} {pos}/{len} [{bar:30}] ETA {eta} {msg}",
                )
                .expect("the template is valid")
                .progress_chars("=> "),
            );
            bar.set_prefix(format!("{epoch}/{epochs}"));
            self.bar = Some(bar);
        }
    }

    /// Whether the bar is drawn and wants a fresh running loss now.
    pub(crate) fn wants_refresh(&self) -> bool {
        self.bar.as_ref().is_some_and(|b| !b.is_hidden()) && self.last_refresh.elapsed() >= REFRESH
    }

    pub(crate) fn step(&mut self, done: usize, running: Option<&Logs>) {
        if let Some(bar) = &self.bar {
            bar.set_position(done as u64);
            if let Some(logs) = running {
                let per_step = self.epoch_start.elapsed().as_secs_f64() / done.max(1) as f64;
                let mut msg = format!("{:.0}ms/step", per_step * 1e3);
                for (name, value) in logs.iter() {
                    msg += &format!(" - {name}: {value:.4}");
                }
                bar.set_message(msg);
                self.last_refresh = Instant::now();
            }
        }
    }

    pub(crate) fn end_epoch(&mut self, epoch: usize, epochs: usize, steps: usize, logs: &Logs) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        if self.verbose == 0 {
            return;
        }
        let secs = self.epoch_start.elapsed().as_secs_f64();
        let mut line = format!(
            "Epoch {epoch}/{epochs} - {steps} steps - {secs:.1}s {:.1}ms/step",
            secs * 1e3 / steps.max(1) as f64
        );
        for (name, value) in logs.iter() {
            line += &format!(" - {name}: {value:.4}");
        }
        crate::stderr_line!("{line}");
    }
}
