//! The data a model trains and evaluates on, kept on its backend, and the steps over it run
//! as plans.
//!
//! A dataset is uploaded once (where it fits the backend's largest tensor) together with an
//! order tensor: the epoch's shuffled row indices, written once per epoch. Each batch is then
//! gathered on the device by [`Backend::gather_rows_pair`] from its offset in the order, so a step
//! sends no data. A dataset is known by its matrices' ids ([`Matrix::id`]): fitting,
//! validating or predicting on the same matrices again uploads nothing.
//!
//! Each step is recorded once per (kind, batch size, guard, weight set) as a plan and
//! replayed after ([`Backend::begin_plan`]); what changes per step (its count, the learning
//! rate, the batch's offset) is given to the replay as [`StepValues`].

use std::borrow::Cow;

use super::model::Model;
use crate::backend::{reference, Backend, StepValues, Tensor};
use crate::data::Matrix;
use crate::error::Result;

/// What a step does, and so which data and which plan it uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum StepKind {
    /// Forward, loss, metrics, backward and update, into the training accumulator.
    Train = 0,
    /// Forward, loss and metrics into the evaluation accumulator (validation too).
    Evaluate = 1,
    /// Forward and the output activation.
    Predict = 2,
}

/// Which recorded plan a step replays.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct PlanKey {
    kind: StepKind,
    /// The batch buffers' index (one per batch size).
    batch: usize,
    guard: bool,
    /// Which of the network's two weight sets is in use (they swap after a guarded update).
    odd_set: bool,
}

/// Plans recorded for a key before the model stops trying (each failure is a step that did
/// something a plan cannot replay, such as autotuning a new product shape).
const PLAN_ATTEMPTS: u8 = 3;

/// A dataset on the backend: features, targets, and the order batches are gathered by.
#[derive(Debug)]
pub(crate) struct Resident<T> {
    /// The ids of the matrices it was uploaded from (as given, before standardizing).
    x_id: u64,
    y_id: Option<u64>,
    x: T,
    y: Option<T>,
    order: T,
    /// The order written last, so that an unshuffled epoch writes nothing.
    written: Vec<usize>,
}

/// The plans of a model and the data they run on.
#[derive(Debug)]
pub(crate) struct Plans<B: Backend> {
    /// Whether steps are recorded and replayed (see [`Model::set_step_plans`]).
    pub(crate) enabled: bool,
    /// Whether datasets are kept on the backend (see [`Model::set_resident_data`]).
    keep_data: bool,
    recorded: std::collections::HashMap<PlanKey, B::Plan>,
    failures: std::collections::HashMap<PlanKey, u8>,
    resident: [Option<Resident<B::Tensor>>; 3],
    /// Steps run, the host's nanoseconds in them less its time in the device's hands, and
    /// its nanoseconds inside submits.
    host_steps: u64,
    host_ns: u64,
    submit_ns: u64,
}

impl<B: Backend> Default for Plans<B> {
    fn default() -> Self {
        Plans {
            enabled: true,
            keep_data: true,
            recorded: Default::default(),
            failures: Default::default(),
            resident: [None, None, None],
            host_steps: 0,
            host_ns: 0,
            submit_ns: 0,
        }
    }
}

/// Where a step's batch comes from: the dataset on the device, or (where it does not fit)
/// rows gathered on the host.
pub(crate) enum Source<'a> {
    Resident,
    /// Features, targets, and the rows of this batch.
    Host(&'a Matrix, Option<&'a Matrix>, &'a [usize]),
}

impl<B: Backend> Model<B> {
    /// Steps are recorded once and replayed (on backends that keep plans) unless this is
    /// off; the results are the same bit for bit (tested). For debugging and tests.
    pub fn set_step_plans(&mut self, on: bool) {
        self.plans.enabled = on;
        self.plans.recorded.clear();
        self.plans.failures.clear();
    }

    /// Datasets are kept on the backend and each batch gathered there (the default, where a
    /// dataset fits the backend's largest tensor), or, off, kept in host memory only, each
    /// batch gathered on the host and written to the device (as a dataset too large to keep
    /// is): the results are the same bit for bit (tested); off saves the device memory of a
    /// copy of the data and costs a write per step.
    pub fn set_resident_data(&mut self, on: bool) {
        self.plans.keep_data = on;
        self.drop_resident();
    }

    /// Keeps `x` (and `y`) on the backend for steps of `kind`, uploading them unless the
    /// same matrices are there already; with `standardize`, `x` as the model's standardizer
    /// makes it ([`Model::prepare`]). `false` where they do not fit the backend's largest
    /// tensor: then the steps gather their rows on the host ([`Source::Host`]).
    pub(crate) fn make_resident(
        &mut self,
        kind: StepKind,
        x: &Matrix,
        y: Option<&Matrix>,
        standardize: bool,
    ) -> Result<bool> {
        let slot = kind as usize;
        if let Some(r) = &self.plans.resident[slot] {
            if r.x_id == x.id() && r.y_id == y.map(Matrix::id) {
                return Ok(true);
            }
        }
        let limit = self.backend.memory_limits().max_tensor_bytes;
        let too_big = |m: &Matrix| limit.is_some_and(|l| m.data().len() as u64 * 4 > l);
        // Plans of this kind hold the old dataset's buffers.
        self.plans.recorded.retain(|k, _| k.kind != kind);
        self.plans.resident[slot] = None;
        if !self.plans.keep_data || too_big(x) || y.is_some_and(too_big) {
            return Ok(false);
        }
        let prepared = if standardize {
            self.prepare(x)?
        } else {
            Cow::Borrowed(x)
        };
        let n = x.rows();
        let order: Vec<usize> = (0..n).collect();
        let b = &mut self.backend;
        let resident = Resident {
            x_id: x.id(),
            y_id: y.map(Matrix::id),
            x: b.upload(n, prepared.cols(), prepared.data())?,
            y: match y {
                Some(y) => Some(b.upload(y.rows(), y.cols(), y.data())?),
                None => None,
            },
            order: b.upload(1, n, &reference::order_values(&order)?)?,
            written: order,
        };
        self.plans.resident[slot] = Some(resident);
        Ok(true)
    }

    /// Sets the order the next steps of `kind` gather their rows by (a write only when it
    /// changed).
    pub(crate) fn set_order(&mut self, kind: StepKind, order: &[usize]) -> Result<()> {
        let Some(r) = self.plans.resident[kind as usize].as_mut() else {
            return Ok(());
        };
        if r.written != order {
            self.backend
                .write(&mut r.order, &reference::order_values(order)?)?;
            r.written.clear();
            r.written.extend_from_slice(order);
        }
        Ok(())
    }

    /// The host's microseconds per step since the last [`Model::reset_host_time`]: the time
    /// in each training, evaluation or prediction step (recording or replaying it, and its
    /// checks) less the time spent waiting for the device and inside the queue's submit
    /// ([`Model::submit_us_per_step`]). `None` before any step, and on a backend whose ops
    /// run as they are called (the reference), where the whole step is the host's.
    pub fn host_us_per_step(&self) -> Option<f64> {
        self.per_step(self.plans.host_ns)
    }

    /// The microseconds per step spent inside the queue's submit since the last
    /// [`Model::reset_host_time`]: host work on a real GPU, mostly the shaders' on lavapipe
    /// (its submit runs them). `None` as for [`Model::host_us_per_step`].
    pub fn submit_us_per_step(&self) -> Option<f64> {
        self.per_step(self.plans.submit_ns)
    }

    fn per_step(&self, ns: u64) -> Option<f64> {
        let steps = self.plans.host_steps;
        (steps > 0 && self.backend.device_time().is_some()).then(|| ns as f64 / steps as f64 / 1e3)
    }

    /// Starts counting [`Model::host_us_per_step`] again (after a warm-up, say).
    /// Also starts counting [`Model::exchange_us_per_step`] again.
    pub fn reset_host_time(&mut self) {
        if let Some(d) = self.dist.as_mut() {
            d.reset_counts();
        }
        self.plans.host_steps = 0;
        self.plans.host_ns = 0;
        self.plans.submit_ns = 0;
    }

    /// One step of `kind` over `rows` rows from `offset` in the order: replayed where its plan
    /// is recorded, else run (and recorded, where the backend keeps plans). Returns the batch
    /// buffers' index.
    pub(crate) fn run_step(
        &mut self,
        kind: StepKind,
        source: Source<'_>,
        offset: usize,
        rows: usize,
        acc: Option<&mut B::Tensor>,
        guard: bool,
    ) -> Result<usize> {
        let started = std::time::Instant::now();
        let before = self.backend.device_time().unwrap_or_default();
        let i = self.run_step_timed(kind, source, offset, rows, acc, guard)?;
        let after = self.backend.device_time().unwrap_or_default();
        let submitting = after.submitting_ns - before.submitting_ns;
        let away = after.waiting_ns - before.waiting_ns + submitting;
        let p = &mut self.plans;
        p.host_steps += 1;
        p.host_ns += (started.elapsed().as_nanos() as u64).saturating_sub(away);
        p.submit_ns += submitting;
        Ok(i)
    }

    fn run_step_timed(
        &mut self,
        kind: StepKind,
        source: Source<'_>,
        offset: usize,
        rows: usize,
        acc: Option<&mut B::Tensor>,
        guard: bool,
    ) -> Result<usize> {
        let y_cols = match (&source, kind) {
            (_, StepKind::Predict) => 1,
            (Source::Host(_, y, _), _) => y.map_or(1, |y| y.cols()),
            (Source::Resident, _) => self.plans.resident[kind as usize]
                .as_ref()
                .and_then(|r| r.y.as_ref())
                .map_or(1, |y| y.cols()),
        };
        let i = self.batch_index(rows, y_cols)?;
        let resident = matches!(source, Source::Resident);
        let key = PlanKey {
            kind,
            batch: i,
            guard,
            odd_set: self.net.as_ref().is_some_and(|n| n.swaps() % 2 == 1),
        };
        let values = StepValues {
            t: self.step + 1,
            lr: self.optimizer.lr(),
            offset,
        };
        // A distributed training step exchanges its gradients between its backward pass and
        // its update, on the host: it runs unrecorded.
        let plans = self.plans.enabled && !(kind == StepKind::Train && self.is_distributed());
        if resident && plans {
            if let Some(plan) = self.plans.recorded.get_mut(&key) {
                if self.backend.replay(plan, values)? {
                    self.after_replay(kind, guard);
                    return Ok(i);
                }
                self.plans.recorded.remove(&key);
            }
        }
        let attempts = self.plans.failures.get(&key).copied().unwrap_or(0);
        let recording =
            resident && plans && attempts < PLAN_ATTEMPTS && self.backend.begin_plan()?;
        let ran = self.record_step(kind, source, i, offset, rows, acc, guard);
        if recording {
            // Ended even when the step failed, so that the next one can record.
            let plan = self.backend.end_plan()?;
            ran?;
            match plan {
                Some(p) => {
                    self.plans.recorded.insert(key, p);
                }
                None => {
                    self.plans.failures.insert(key, attempts + 1);
                }
            }
        } else {
            ran?;
        }
        self.backend.flush()?;
        Ok(i)
    }

    /// The step's ops: the batch gathered (or written from the host), then the step.
    #[allow(clippy::too_many_arguments)]
    fn record_step(
        &mut self,
        kind: StepKind,
        source: Source<'_>,
        i: usize,
        offset: usize,
        rows: usize,
        acc: Option<&mut B::Tensor>,
        guard: bool,
    ) -> Result<()> {
        match source {
            Source::Resident => {
                let r = self.plans.resident[kind as usize]
                    .as_ref()
                    .expect("make_resident kept the data");
                let batch = &mut self.batches[i];
                debug_assert_eq!(batch.x.rows(), rows);
                let b = &mut self.backend;
                match (&r.y, kind) {
                    (Some(y), StepKind::Train | StepKind::Evaluate) => {
                        b.gather_rows_pair(&r.x, y, &r.order, offset, &mut batch.x, &mut batch.y)?
                    }
                    _ => b.gather_rows(&r.x, &r.order, offset, &mut batch.x)?,
                }
            }
            Source::Host(x, y, idx) => {
                debug_assert_eq!(idx.len(), rows);
                self.load_batch(x, y, idx)?;
            }
        }
        match (kind, acc) {
            (StepKind::Predict, _) => self.predict_batch(i),
            (_, Some(acc)) => self.step_batch(i, acc, kind == StepKind::Train, guard),
            (_, None) => unreachable!("training and evaluation steps have an accumulator"),
        }
    }

    /// What a training step does on the host besides its ops, for a replayed one.
    fn after_replay(&mut self, kind: StepKind, guard: bool) {
        if kind != StepKind::Train {
            return;
        }
        self.step += 1;
        if guard {
            if let Some(net) = self.net.as_mut() {
                net.swap_sets();
            }
        } else {
            self.mark_good();
        }
    }

    /// Forgets the datasets kept on the backend (and the plans that read them): the next
    /// step uploads its data again. For a new standardizer.
    pub(crate) fn drop_resident(&mut self) {
        self.plans.recorded.clear();
        self.plans.resident = [None, None, None];
    }
}
