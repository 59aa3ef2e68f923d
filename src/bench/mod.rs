//! The benchmark workloads of `BENCHMARKS.md`, run the way it prescribes: warm up, time
//! several repetitions after the queue has drained, report the median, and check every result
//! (matmuls against the reference, training runs by a falling loss).

mod matmul;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Instant;

use serde::Serialize;

use crate::backend::gpu::GpuBackend;
use crate::backend::{Activation, Backend, Optimizer};
use crate::data::{synthetic, Matrix};
use crate::error::{Error, Result};
use crate::nn::{Dense, LossFn, Sequential};
use crate::train::{Callback, Compile, FitConfig, Logs, Model, ModelControl};

/// A workload from `BENCHMARKS.md`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    /// f32 matmul 128³: launch and overhead bound.
    MmS,
    /// 1024³: the middle.
    MmM,
    /// 4096³: compute bound (real GPUs only).
    MmL,
    /// The three products of one MLP-A layer step: X·W, dY·Wᵀ, Xᵀ·dY.
    MmMlp,
    /// 784 → 512 → 512 → 10, batch 128, Adam: the throughput figure.
    MlpA,
    /// MLP-A with BatchNormalization and Dropout(0.2) after each hidden layer: what the two
    /// layers cost against MLP-A.
    MlpABnDrop,
    /// 784 → 128 → 10, batch 64: per-step overhead dominates.
    MlpB,
    /// MLP-A's network on MNIST until 98% test accuracy (at most 10 epochs): the time to it
    /// from process start.
    MnistE2e,
    /// The synthetic rows as 28×28×1 images through conv 32 → pool → conv 64 → pool → 128 →
    /// 10, batch 128, Adam: the convolution throughput figure.
    CnnA,
}

impl Workload {
    /// Every workload, in `BENCHMARKS.md`'s order.
    pub const ALL: [Workload; 9] = [
        Workload::MmS,
        Workload::MmM,
        Workload::MmL,
        Workload::MmMlp,
        Workload::MlpA,
        Workload::MlpABnDrop,
        Workload::MlpB,
        Workload::MnistE2e,
        Workload::CnnA,
    ];

    /// Its name in `BENCHMARKS.md`.
    pub fn name(self) -> &'static str {
        match self {
            Workload::MmS => "MM-S",
            Workload::MmM => "MM-M",
            Workload::MmL => "MM-L",
            Workload::MmMlp => "MM-MLP",
            Workload::MlpA => "MLP-A",
            Workload::MlpABnDrop => "MLP-A-BN-DROP",
            Workload::MlpB => "MLP-B",
            Workload::MnistE2e => "MNIST-E2E",
            Workload::CnnA => "CNN-A",
        }
    }

    /// Parses a name (case-insensitive).
    pub fn from_name(name: &str) -> Result<Workload> {
        Workload::ALL
            .into_iter()
            .find(|w| w.name().eq_ignore_ascii_case(name))
            .ok_or_else(|| {
                Error::Config(format!(
                    "unknown workload `{name}`; valid: {}",
                    Workload::ALL.map(|w| w.name()).join(", ")
                ))
            })
    }

    /// Small enough for the CPU reference to run in seconds.
    pub fn fits_the_reference(self) -> bool {
        matches!(self, Workload::MmS | Workload::MmMlp)
    }

    /// Meant for real GPUs only (minutes on a software adapter): run there only when named.
    /// CNN-A takes minutes an epoch on lavapipe (its three convolution products each a
    /// tenth of a second per step there).
    pub fn real_gpu_only(self) -> bool {
        matches!(self, Workload::MmL | Workload::CnnA)
    }
}

/// One measured workload.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BenchResult {
    /// The workload's name.
    pub workload: String,
    /// Where it ran.
    pub backend: String,
    /// Matmul throughput (matmul workloads), median.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gflops: Option<f64>,
    /// Training throughput (MLP workloads), median over the timed epochs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub samples_per_sec: Option<f64>,
    /// Wall time per step (or per product), median.
    pub ms_per_step: f64,
    /// The host's microseconds per training step, apart from the time it waits for the
    /// device: recording or replaying the step and submitting it (MLP workloads on a GPU
    /// backend; [`crate::train::Model::host_us_per_step`]), over the timed epochs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_us_per_step: Option<f64>,
    /// Microseconds per training step inside the queue's submit (with `host_us_per_step`):
    /// host work on a real GPU, the shaders' own time on lavapipe, whose submit runs them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub submit_us_per_step: Option<f64>,
    /// Mean loss of the 10 warm-up steps, which start near ln 10 (MLP workloads).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_loss: Option<f64>,
    /// Mean loss of the last timed epoch (MLP workloads): must be below `first_loss` and ln 10.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub final_loss: Option<f64>,
    /// Seconds from `started` (process start for the first workload of a run) to the end of
    /// the first training step: device, pipelines, autotuning and buffers included.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub startup_s: Option<f64>,
    /// Test accuracy after each epoch (MNIST-E2E).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub test_accuracy: Vec<f64>,
    /// Seconds from `started` to the end of the first epoch whose test accuracy is ≥ 98%
    /// (MNIST-E2E; absent if none reached it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seconds_to_98: Option<f64>,
    /// Seconds from `started` to the end of the workload (MNIST-E2E).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wall_s: Option<f64>,
    /// FLOPs counted per step: every matmul, forward and backward (2·M·N·K each);
    /// element-wise work is not counted.
    pub flops_per_step: f64,
    /// GPU time per step by kernel, from timestamp queries (`wgtrain bench --profile`, MLP
    /// workloads on a GPU adapter that has them), measured in a separate epoch after the timed
    /// ones because profiling waits for every submit.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub kernels: Vec<KernelShare>,
    /// The ranks that trained it data-parallel ([`run_data_parallel`]); `samples_per_sec` is
    /// then all of theirs together, and each rank's is that over `ranks`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ranks: Option<usize>,
    /// Microseconds per step rank 0 spent exchanging gradients (read-back, allreduce, upload)
    /// in a data-parallel run: [`crate::train::Model::exchange_us_per_step`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exchange_us_per_step: Option<f64>,
    /// Of `exchange_us_per_step`, the microseconds in the allreduce itself (transfer, sum, and
    /// the wait for the slowest rank): [`crate::train::Model::allreduce_us_per_step`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allreduce_us_per_step: Option<f64>,
    /// The median microseconds of an allreduce of the same buffer with no training around it
    /// (the ranks start it together): the transport's own time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allreduce_alone_us: Option<f64>,
    /// The bytes each rank gives each step's allreduce (the flat gradient buffer).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allreduce_bytes: Option<usize>,
    /// The least bytes of a gradient bucket, when the exchange ran bucket by bucket
    /// ([`crate::train::Model::set_gradient_buckets`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bucket_bytes: Option<usize>,
    /// The buckets each step's exchange ran in (1 for the whole gradient at once).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub buckets: Option<usize>,
}

/// One kernel's share of a training step, from [`GpuBackend::kernel_times`].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct KernelShare {
    /// The kernel (matmuls with their transposes).
    pub kernel: String,
    /// Dispatches per step.
    pub dispatches_per_step: f64,
    /// GPU milliseconds per step.
    pub gpu_ms_per_step: f64,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Where a run finds what it needs beyond the synthetic data.
#[derive(Clone, Debug)]
pub struct BenchInputs {
    /// When the clock for start-up and wall times started: process start for the first
    /// workload of a run.
    pub started: Instant,
    /// The MNIST folder for MNIST-E2E.
    pub mnist: std::path::PathBuf,
}

/// Runs one workload on `b` with `repeats` (at least 1) timed repetitions.
pub fn run<B: Backend>(
    b: B,
    w: Workload,
    repeats: usize,
    inputs: &BenchInputs,
) -> Result<BenchResult> {
    if repeats == 0 {
        return Err(crate::Error::Config(
            "a benchmark needs at least 1 timed repetition".into(),
        ));
    }
    match w {
        Workload::MlpA | Workload::MlpABnDrop | Workload::MlpB | Workload::CnnA => {
            run_mlp(b, w, repeats, inputs.started, None)
        }
        Workload::MnistE2e => run_mnist(b, inputs),
        _ => matmul::run_matmul(b, w, repeats),
    }
}

fn empty_result(w: Workload, backend: String) -> BenchResult {
    BenchResult {
        workload: w.name().into(),
        backend,
        gflops: None,
        samples_per_sec: None,
        ms_per_step: 0.0,
        host_us_per_step: None,
        submit_us_per_step: None,
        first_loss: None,
        final_loss: None,
        startup_s: None,
        test_accuracy: Vec::new(),
        seconds_to_98: None,
        wall_s: None,
        flops_per_step: 0.0,
        kernels: Vec::new(),
        ranks: None,
        exchange_us_per_step: None,
        allreduce_us_per_step: None,
        allreduce_alone_us: None,
        allreduce_bytes: None,
        bucket_bytes: None,
        buckets: None,
    }
}

/// The most epochs MNIST-E2E trains (BENCHMARKS.md).
pub const MNIST_EPOCHS: usize = 10;

/// MNIST-E2E: MLP-A's network and optimizer on MNIST (pixels in [0, 1]), batch 128 with
/// shuffling, one epoch at a time until the first whose test accuracy is at least 98% (at
/// most [`MNIST_EPOCHS`]): the accuracy after each, and the time from process start to it.
fn run_mnist<B: Backend>(b: B, inputs: &BenchInputs) -> Result<BenchResult> {
    let backend = b.describe();
    let (x, y, xt, yt) = crate::data::idx::load_mnist_dir(&inputs.mnist)?;
    let mut run = MlpRun::with_data(b, Workload::MlpA, x, y, &[crate::train::Metric::Accuracy])?;
    let mut accuracy = Vec::new();
    let mut seconds_to_98 = None;
    let mut train_s = 0.0;
    for epoch in 0..MNIST_EPOCHS {
        let config = FitConfig::epochs(epoch + 1)
            .initial_epoch(epoch)
            .batch_size(run.batch)
            .verbose(0);
        let t = Instant::now();
        run.model.fit(&run.x, &run.y, config)?;
        train_s += t.elapsed().as_secs_f64();
        let acc = run
            .model
            .evaluate(&xt, &yt, 1000)?
            .get("accuracy")
            .unwrap_or(f64::NAN);
        accuracy.push(acc);
        if acc >= 0.98 {
            seconds_to_98 = Some(inputs.started.elapsed().as_secs_f64());
            break;
        }
    }
    let epochs = accuracy.len();
    Ok(BenchResult {
        samples_per_sec: Some((epochs * run.x.rows()) as f64 / train_s),
        ms_per_step: 1e3 * train_s / (epochs * run.steps()) as f64,
        test_accuracy: accuracy,
        seconds_to_98,
        wall_s: Some(inputs.started.elapsed().as_secs_f64()),
        ..empty_result(Workload::MnistE2e, backend)
    })
}

/// The optimizer of the MLP workloads: Adam(lr 1e-3, β1 0.9, β2 0.999, ε 1e-8).
pub const ADAM: Optimizer = Optimizer::Adam {
    lr: 1e-3,
    beta1: 0.9,
    beta2: 0.999,
    eps: 1e-8,
    weight_decay: 0.0,
};

/// A training workload's hidden Dense widths and batch size.
fn mlp_shape(w: Workload) -> Result<(&'static [usize], usize)> {
    match w {
        Workload::MlpA | Workload::MlpABnDrop | Workload::MnistE2e => Ok((&[512, 512], 128)),
        Workload::MlpB => Ok((&[128], 64)),
        Workload::CnnA => Ok((&[128], 128)),
        _ => Err(Error::Config(format!(
            "{} is not a training workload",
            w.name()
        ))),
    }
}

/// A training workload's model as BENCHMARKS.md defines it (ReLU hidden layers, with batch
/// normalization and dropout after each for MLP-A-BN-DROP, CNN-A's convolutions and pooling
/// below its Dense layers, 10 logits, sparse softmax cross-entropy from logits, Adam 1e-3 /
/// 0.9 / 0.999 / 1e-8) on `b`, with `metrics`, and its batch size. MNIST-E2E uses MLP-A's.
pub fn mlp_model<B: Backend>(
    b: B,
    w: Workload,
    metrics: &[crate::train::Metric],
) -> Result<(Model<B>, usize)> {
    let (hidden, batch) = mlp_shape(w)?;
    let mut spec = Sequential::new();
    if w == Workload::CnnA {
        use crate::nn::{Conv2D, Flatten, MaxPooling2D};
        spec = spec
            .input_shape([28, 28, 1])
            .add(Conv2D::new(32, 3, Activation::Relu))
            .add(MaxPooling2D::new(2))
            .add(Conv2D::new(64, 3, Activation::Relu))
            .add(MaxPooling2D::new(2))
            .add(Flatten::new());
    }
    for &h in hidden {
        spec = spec.add(Dense::new(h, Activation::Relu));
        if w == Workload::MlpABnDrop {
            spec = spec
                .add(crate::nn::BatchNormalization::new())
                .add(crate::nn::Dropout::new(0.2));
        }
    }
    let spec = spec.add(Dense::new(synthetic::CLASSES, Activation::Linear));
    let loss = LossFn::SparseCategoricalCrossentropy { from_logits: true };
    let model = spec.compile(b, Compile::new(loss, ADAM).metrics(metrics))?;
    Ok((model, batch))
}

/// The FLOPs of one training step of `layers` on `batch` rows of `input` features, as
/// BENCHMARKS.md counts them: 2 per multiply-add of every product, forward (Dense `x·W`, a
/// convolution's windows times its kernel), the weight gradient of each, and the input
/// gradient of each above the first; element-wise work not counted.
pub fn step_flops(layers: &[crate::nn::Layer], input: usize, batch: usize) -> f64 {
    let mut fan_in = input;
    let mut flops = 0.0;
    let mut first = true;
    for l in layers {
        let per_sample = match l {
            crate::nn::Layer::Dense(d) => Some(fan_in * d.units),
            crate::nn::Layer::Conv2D(c) => c
                .window()
                .map(|w| w.positions() * w.kernel[0] * w.kernel[1] * w.input[2] * c.filters),
            _ => None,
        };
        if let Some(macs) = per_sample {
            let products = if first { 2.0 } else { 3.0 };
            flops += products * 2.0 * (batch * macs) as f64;
            first = false;
        }
        fan_in = l.width(fan_in);
    }
    flops
}

/// Times each epoch of a `fit`, from its start to its end.
struct EpochClock {
    begun: Option<Instant>,
    times: Rc<RefCell<Vec<f64>>>,
}

impl Callback for EpochClock {
    fn on_epoch_begin(&mut self, _epoch: usize, _model: &mut dyn ModelControl) -> Result<()> {
        self.begun = Some(Instant::now());
        Ok(())
    }

    fn on_epoch_end(&mut self, _: usize, _: &Logs, _: &mut dyn ModelControl) -> Result<()> {
        if let Some(t) = self.begun.take() {
            self.times.borrow_mut().push(t.elapsed().as_secs_f64());
        }
        Ok(())
    }
}

/// An MLP workload's model, data and per-epoch fit configuration.
struct MlpRun<B: Backend> {
    workload: Workload,
    model: Model<B>,
    x: Matrix,
    y: Matrix,
    batch: usize,
}

impl<B: Backend> MlpRun<B> {
    /// The workload on its synthetic data.
    fn new(b: B, w: Workload) -> Result<MlpRun<B>> {
        let (x, y) = synthetic::benchmark_data(synthetic::SAMPLES);
        MlpRun::with_data(b, w, x, y, &[])
    }

    /// The workload's network and optimizer on other data, with these metrics.
    fn with_data(
        b: B,
        w: Workload,
        x: Matrix,
        y: Matrix,
        metrics: &[crate::train::Metric],
    ) -> Result<MlpRun<B>> {
        let (model, batch) = mlp_model(b, w, metrics)?;
        Ok(MlpRun {
            workload: w,
            model,
            x,
            y,
            batch,
        })
    }

    fn config(&self) -> FitConfig {
        // A fresh one per fit (a FitConfig owns its callbacks, so it is not Clone).
        FitConfig::epochs(1)
            .batch_size(self.batch)
            .shuffle(false)
            .verbose(0)
    }

    /// The 10 warm-up steps (pipelines built, autotuning, buffers made), the first on its own:
    /// their mean loss and the time from `started` to the end of the first.
    fn warm_up(&mut self, started: Instant) -> Result<(f64, f64)> {
        let rows = 10 * self.batch;
        let (wx, wy) = (self.x.head(rows), self.y.head(rows));
        let (first_x, rest_x) = wx.split_at(self.batch);
        let (first_y, rest_y) = wy.split_at(self.batch);
        let first = self.model.fit(&first_x, &first_y, self.config())?;
        let startup = started.elapsed().as_secs_f64();
        let rest = self.model.fit(&rest_x, &rest_y, self.config())?;
        let mean = |h: &crate::train::History| h.last("loss").unwrap_or(f64::NAN);
        Ok(((mean(&first) + 9.0 * mean(&rest)) / 10.0, startup))
    }

    /// `epochs` epochs over all samples in one `fit`, as a user trains: the seconds of each
    /// (from its start to its end, its read-back included) and the mean loss of the last.
    /// `fit`'s own work before the first epoch (checking the data, recording it for
    /// checkpoints, placing it on the device) is outside every epoch's time.
    fn epochs(&mut self, epochs: usize) -> Result<(Vec<f64>, f64)> {
        let times = Rc::new(RefCell::new(Vec::new()));
        let clock = EpochClock {
            begun: None,
            times: times.clone(),
        };
        let initial = self.model.epochs_done();
        let config = FitConfig::epochs(initial + epochs)
            .initial_epoch(initial)
            .batch_size(self.batch)
            .shuffle(false)
            .verbose(0)
            .callback(clock);
        let history = self.model.fit(&self.x, &self.y, config)?;
        let times = times.take();
        if times.len() != epochs {
            // fit stopped early: a divergence, which its history names.
            let why = match (&history.diverged, &history.stopped_early) {
                (Some(d), _) => format!("in epoch {}, {}", d.epoch, d.cause),
                (None, Some(reason)) => reason.clone(),
                (None, None) => "fit returned early".to_string(),
            };
            return Err(Error::Config(format!(
                "{}: {} of {epochs} timed epochs ran: {why}",
                self.workload.name(),
                times.len()
            )));
        }
        Ok((times, history.last("loss").unwrap_or(f64::NAN)))
    }

    fn steps(&self) -> usize {
        self.x.rows().div_ceil(self.batch)
    }
}

/// GPU time per kernel for one epoch of an MLP workload, after the warm-up: where a step's
/// time goes on the device. An error where the adapter has no timestamp queries.
pub fn profile(mut b: GpuBackend, w: Workload) -> Result<Vec<KernelShare>> {
    b.enable_profiling()?;
    let mut run = MlpRun::new(b, w)?;
    run.warm_up(Instant::now())?;
    run.model.backend_mut().reset_kernel_times();
    run.epochs(1)?;
    let steps = run.steps() as f64;
    Ok(run
        .model
        .backend()
        .kernel_times()
        .into_iter()
        .map(|t| KernelShare {
            kernel: t.kernel.to_string(),
            dispatches_per_step: t.dispatches as f64 / steps,
            gpu_ms_per_step: t.nanos / 1e6 / steps,
        })
        .collect())
}

/// An MLP workload trained data-parallel on the ranks of `comm`, each on its slice of every
/// batch (the workload's batch is the global one): as [`run`], with the ranks, the time spent
/// exchanging gradients, and the bytes exchanged per step; with `bucket_bytes`, exchanged in
/// buckets of at least that many bytes. Every rank must call it alike.
pub fn run_data_parallel<B: Backend>(
    b: B,
    w: Workload,
    repeats: usize,
    started: Instant,
    comm: std::rc::Rc<dyn crate::dist::Communicator>,
    bucket_bytes: Option<usize>,
) -> Result<BenchResult> {
    if !matches!(w, Workload::MlpA | Workload::MlpB | Workload::CnnA) {
        return Err(Error::Config(format!(
            "{} does not run data-parallel: under mpirun, bench MLP-A, MLP-B or CNN-A",
            w.name()
        )));
    }
    let ranks = comm.size();
    let mut r = run_mlp(b, w, repeats, started, Some((comm.clone(), bucket_bytes)))?;
    r.ranks = Some(ranks);
    r.bucket_bytes = bucket_bytes;
    if let Some(bytes) = r.allreduce_bytes {
        r.allreduce_alone_us = Some(allreduce_alone_us(comm.as_ref(), bytes / 4 + 1)?);
    }
    Ok(r)
}

/// The median microseconds of an allreduce of `len` floats over the ranks of `comm`, each
/// started together (after a one-float allreduce that lines the ranks up), after two warm-ups.
fn allreduce_alone_us(comm: &dyn crate::dist::Communicator, len: usize) -> Result<f64> {
    const TIMED: usize = 20;
    let mut values = vec![1.0f32; len];
    let mut times = Vec::with_capacity(TIMED);
    for i in 0..TIMED + 2 {
        comm.all_reduce_sum(&mut [0.0])?;
        let t = Instant::now();
        comm.all_reduce_sum(&mut values)?;
        if i >= 2 {
            times.push(t.elapsed().as_secs_f64() * 1e6);
        }
    }
    Ok(median(times))
}

fn run_mlp<B: Backend>(
    b: B,
    w: Workload,
    repeats: usize,
    started: Instant,
    ranks: Option<(std::rc::Rc<dyn crate::dist::Communicator>, Option<usize>)>,
) -> Result<BenchResult> {
    let backend = b.describe();
    let mut run = MlpRun::new(b, w)?;
    if let Some((comm, bucket_bytes)) = ranks {
        run.model.set_communicator(comm);
        run.model.set_gradient_buckets(bucket_bytes)?;
    }
    let (warmup, startup) = run.warm_up(started)?;
    run.model.reset_host_time();
    let (times, last) = run.epochs(repeats)?;
    let first = warmup;
    let fell = last < first && last < 10f64.ln(); // false for NaN too
    if !fell {
        return Err(Error::Config(format!(
            "{}: the loss did not fall ({first} -> {last}); a number without a falling loss is not a training number",
            w.name()
        )));
    }
    let (steps, batch) = (run.steps(), run.batch);
    let t = median(times);
    let flops = step_flops(run.model.layers(), synthetic::FEATURES, batch);
    Ok(BenchResult {
        gflops: Some(flops * steps as f64 / t / 1e9),
        samples_per_sec: Some(synthetic::SAMPLES as f64 / t),
        ms_per_step: t * 1e3 / steps as f64,
        host_us_per_step: run.model.host_us_per_step(),
        submit_us_per_step: run.model.submit_us_per_step(),
        first_loss: Some(first),
        final_loss: Some(last),
        startup_s: Some(startup),
        flops_per_step: flops,
        exchange_us_per_step: run.model.exchange_us_per_step(),
        allreduce_us_per_step: run.model.allreduce_us_per_step(),
        buckets: (run.model.ranks() > 1).then(|| run.model.gradient_buckets()),
        allreduce_bytes: (run.model.ranks() > 1)
            .then(|| run.model.parameter_count().unwrap_or(0) * 4),
        ..empty_result(w, backend)
    })
}
