//! The `wgtrain` command line: a thin layer over the library.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde_json::json;
use wgtrain::backend::cpu::CpuBackend;
use wgtrain::backend::gpu::GpuBackend;
use wgtrain::backend::{Activation, Backend, Optimizer};
use wgtrain::checkpoint::Checkpoint;
use wgtrain::data::{self, csv::LabelColumn, idx, Matrix, Standardizer};
use wgtrain::fs::write_atomic;
use wgtrain::nn::{Dense, LossFn, Sequential, Task};
use wgtrain::train::{Compile, FitConfig, Metric, Model, ModelCheckpoint};
use wgtrain::{Error, Result};

#[derive(Parser)]
#[command(
    name = "wgtrain",
    version,
    about = "Train neural networks on any GPU wgpu reaches"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train an MLP (by default on the built-in digits set) and report test accuracy.
    Train(Box<TrainArgs>),
    /// Loss and metrics of a saved model on labelled data.
    Evaluate(EvaluateArgs),
    /// A saved model's outputs (probabilities for a classifier) for each row of the data.
    Predict(PredictArgs),
    /// Run the BENCHMARKS.md workloads on the adapter (and the small ones on the CPU
    /// reference, side by side) and print the measurements.
    Bench(BenchArgs),
}

#[derive(Args, Debug)]
struct BenchArgs {
    /// Workloads to run (repeatable): MM-S, MM-M, MM-L, MM-MLP, MLP-A, MLP-B, MNIST-E2E.
    /// Default: all (MM-L only on a real GPU, MNIST-E2E only where its folder is).
    #[arg(long = "workload")]
    workloads: Vec<String>,
    /// Timed repetitions of each; the median is reported.
    #[arg(long, default_value_t = 3)]
    repeats: usize,
    /// Skip the CPU reference rows.
    #[arg(long)]
    no_reference: bool,
    /// The MNIST folder for MNIST-E2E (skipped when it is missing and no workload was named).
    #[arg(long, default_value = "../shared/data/mnist")]
    mnist: PathBuf,
    /// For the MLP workloads on a GPU, also time every kernel with timestamp queries in one
    /// extra epoch and show each one's GPU time per step (the rest of `ms/step` is host and
    /// driver overhead).
    #[arg(long)]
    profile: bool,
    #[command(flatten)]
    common: Common,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum BackendChoice {
    /// The best GPU adapter, or the CPU reference (with a warning) if there is none.
    Auto,
    /// The best GPU adapter; an error if there is none.
    Gpu,
    /// The CPU reference.
    Cpu,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum SaveMode {
    /// When training ends.
    End,
    /// After every epoch (and so also at the end).
    Epoch,
    /// After each epoch in which `--monitor` reaches a new best.
    Best,
}

#[derive(Args, Debug)]
struct Common {
    /// Where to run.
    #[arg(long, value_enum, default_value = "auto")]
    backend: BackendChoice,
    /// Print one JSON object with the results on stdout (progress stays on stderr).
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
struct TrainArgs {
    /// A CSV file with a header row, or a folder of MNIST IDX files; without it, the
    /// built-in digits set.
    #[arg(long)]
    data: Option<PathBuf>,
    /// The label column of a CSV, by name or 0-based index (default: the last).
    #[arg(long)]
    label_column: Option<String>,
    /// A separate CSV to test on (instead of holding out --test-split of --data).
    #[arg(long)]
    test_data: Option<PathBuf>,
    /// Standardize each feature with the mean and deviation of the training rows; saved with
    /// the model and applied by evaluate and predict.
    #[arg(long)]
    standardize: bool,
    /// Hidden layer widths, comma separated.
    #[arg(long, default_value = "128,64", value_delimiter = ',')]
    layers: Vec<usize>,
    /// Hidden activation: linear, relu, leaky_relu, elu, sigmoid, tanh, softplus, gelu, gelu_tanh, silu.
    #[arg(long, default_value = "relu")]
    activation: String,
    /// Loss: sparse_categorical_crossentropy, categorical_crossentropy, binary_crossentropy, mse,
    /// mae, huber; `auto` picks sparse categorical cross-entropy for integer labels, else mse.
    #[arg(long, default_value = "auto")]
    loss: String,
    /// Optimizer: adam, adamw, sgd, momentum, nesterov.
    #[arg(long, default_value = "adam")]
    optimizer: String,
    /// Learning rate.
    #[arg(long, default_value_t = 1e-3)]
    lr: f32,
    /// Epochs in all (a resumed run continues from its checkpoint's epoch up to this).
    #[arg(long, default_value_t = 30)]
    epochs: usize,
    /// Samples per step (default: 32, or 128 for a training set of 10,000 samples or more,
    /// as BENCHMARKS.md's MNIST workload).
    #[arg(long)]
    batch_size: Option<usize>,
    /// Fraction of the training data held out (its last rows) to validate after each epoch.
    #[arg(long, default_value_t = 0.1)]
    validation_split: f32,
    /// Fraction of the data held out, after a seeded shuffle, for the final test.
    #[arg(long, default_value_t = 0.2)]
    test_split: f32,
    /// Metrics besides the loss, comma separated (default: accuracy for classification, mae
    /// for regression).
    #[arg(long, value_delimiter = ',')]
    metrics: Vec<String>,
    /// Seeds the split, the initial weights and the shuffles.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// 0: silent, 1: progress bars, 2: one line per epoch.
    #[arg(long, default_value_t = 1)]
    verbose: u8,
    /// Save a checkpoint (safetensors) here; written atomically.
    #[arg(long)]
    save: Option<PathBuf>,
    /// When to save.
    #[arg(long, value_enum, default_value = "end")]
    save_mode: SaveMode,
    /// What `--save-mode best` watches.
    #[arg(long, default_value = "val_loss")]
    monitor: String,
    /// Continue training from this checkpoint (same flags and seed as the run that wrote it);
    /// its weights, optimizer state, learning rate, epoch count and input scaling are used.
    #[arg(long)]
    resume: Option<PathBuf>,
    /// Write the learning curves per epoch here (.csv or .json).
    #[arg(long)]
    history: Option<PathBuf>,
    /// Draw the learning curves (loss and the main metric, training and validation) here
    /// (.png or .svg).
    #[arg(long)]
    plot: Option<PathBuf>,
    #[command(flatten)]
    common: Common,
}

/// A saved model and the data to run it on.
#[derive(Args, Debug)]
struct ModelInput {
    /// A checkpoint written by `wgtrain train --save`.
    #[arg(long)]
    model: PathBuf,
    /// A CSV file, or an MNIST folder (its t10k split is used). For predict, a CSV may have a
    /// label column or not.
    #[arg(long)]
    data: PathBuf,
    /// The label column of a CSV, by name or 0-based index (default: the last; predict drops
    /// it when the file has one column more than the model takes).
    #[arg(long)]
    label_column: Option<String>,
    /// Samples per batch.
    #[arg(long, default_value_t = 256)]
    batch_size: usize,
}

#[derive(Args, Debug)]
struct EvaluateArgs {
    #[command(flatten)]
    input: ModelInput,
    #[command(flatten)]
    common: Common,
}

#[derive(Args, Debug)]
struct PredictArgs {
    #[command(flatten)]
    input: ModelInput,
    /// Write the predictions here as CSV (atomically); without it they go to stdout.
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    common: Common,
}

fn main() -> ExitCode {
    quiet_mesa();
    let started = Instant::now();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Train(args) => {
            prepare_training(&args, started).and_then(|job| dispatch(args.common.backend, job))
        }
        Command::Evaluate(args) => dispatch(args.common.backend, Evaluate(&args)),
        Command::Predict(args) => dispatch(args.common.backend, Predict(&args)),
        Command::Bench(args) => bench(&args, started),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Mesa's software Vulkan prints "XDG_RUNTIME_DIR is invalid" at every start when the
/// variable is unset: harmless, but it reads like a failure. Give it a private folder.
fn quiet_mesa() {
    #[cfg(unix)]
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        use std::os::unix::fs::DirBuilderExt;
        let dir = std::env::temp_dir().join(format!("wgtrain-runtime-{}", std::process::id()));
        if std::fs::DirBuilder::new().mode(0o700).create(&dir).is_ok() {
            // Called first thing in main, before any other thread exists.
            std::env::set_var("XDG_RUNTIME_DIR", &dir);
        }
    }
}

/// Writes results to stdout. A reader that goes away early (`wgtrain predict ... | head`) is
/// not an error: whatever it wanted, it has; the rest is dropped rather than panicking.
fn emit(text: &str) -> Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(Error::Io {
            path: "standard output".into(),
            source: e,
        }),
        _ => Ok(()),
    }
}

/// `println!` through [`emit`].
macro_rules! outln {
    ($($arg:tt)*) => {
        emit(&format!("{}\n", format!($($arg)*)))?
    };
}

/// A subcommand that runs on whichever backend `--backend` picks.
trait Job {
    fn run<B: Backend>(self, backend: B, kind: &str) -> Result<()>;
}

fn dispatch(choice: BackendChoice, job: impl Job) -> Result<()> {
    match choice {
        BackendChoice::Cpu => job.run(CpuBackend::new(), "cpu"),
        BackendChoice::Gpu => job.run(GpuBackend::new()?, "gpu"),
        BackendChoice::Auto => match GpuBackend::new() {
            Ok(g) => job.run(g, "gpu"),
            Err(e) => {
                eprintln!("warning: no GPU ({e}); running on the CPU reference, which is slow");
                job.run(CpuBackend::new(), "cpu")
            }
        },
    }
}

/// Labelled data as a source gives it.
struct Labelled {
    x: Matrix,
    y: Matrix,
    /// The source's own test split (MNIST's t10k), if it has one.
    test: Option<(Matrix, Matrix)>,
    /// What it is, for reports.
    source: String,
}

/// Labelled data from a path: an MNIST folder gives its train and t10k splits; a CSV file
/// gives one table.
fn load_labelled(path: &Path, label: &Option<String>) -> Result<Labelled> {
    if path.is_dir() {
        let (x, y, xt, yt) = idx::load_mnist_dir(path)?;
        let source = format!("{} (IDX, pixels scaled to [0, 1])", path.display());
        return Ok(Labelled {
            x,
            y,
            test: Some((xt, yt)),
            source,
        });
    }
    let label = label
        .as_deref()
        .map_or(LabelColumn::Last, LabelColumn::parse);
    let d = data::csv::load(path, &label)?;
    Ok(Labelled {
        x: d.x,
        y: d.y,
        test: None,
        source: path.display().to_string(),
    })
}

/// The loss for these labels: `auto` means sparse categorical cross-entropy when every label
/// is a non-negative integer, mean squared error otherwise. Cross-entropies train from logits.
fn choose_loss(name: &str, y: &Matrix) -> Result<LossFn> {
    if name != "auto" {
        return LossFn::from_name(name, true);
    }
    let integers = y.data().iter().all(|&v| v >= 0.0 && v.fract() == 0.0);
    Ok(if integers && y.data().iter().any(|&v| v >= 1.0) {
        LossFn::SparseCategoricalCrossentropy { from_logits: true }
    } else {
        LossFn::MeanSquaredError
    })
}

fn optimizer(name: &str, lr: f32) -> Result<Optimizer> {
    Ok(match name {
        "sgd" => Optimizer::Sgd { lr },
        "momentum" => Optimizer::Momentum {
            lr,
            momentum: 0.9,
            nesterov: false,
        },
        "nesterov" => Optimizer::Momentum {
            lr,
            momentum: 0.9,
            nesterov: true,
        },
        "adam" => Optimizer::adam(lr),
        // Keras' AdamW default weight decay.
        "adamw" => Optimizer::Adam {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-7,
            weight_decay: 0.004,
        },
        _ => {
            return Err(Error::Config(format!(
                "unknown optimizer `{name}`; valid: adam, adamw, sgd, momentum, nesterov"
            )))
        }
    })
}

/// The batch size when none is given: Keras' 32 for small data; 128 from 10,000 samples on,
/// where larger batches train as well (MNIST: 98.0% at 128 against 97.7% at 32, both 5
/// epochs) and run faster.
fn default_batch_size(samples: usize) -> usize {
    if samples >= 10_000 {
        128
    } else {
        32
    }
}

/// Number of classes in integer labels, with a clear error for labels that are not.
fn classes(y: &Matrix) -> Result<usize> {
    if let Some(r) = (0..y.rows()).find(|&r| y.row(r)[0] < 0.0 || y.row(r)[0].fract() != 0.0) {
        return Err(Error::Data {
            source_name: "labels".into(),
            detail: format!(
                "row {r} has label {}; classification needs integer labels 0, 1, 2, ... (use --loss mse for regression)",
                y.row(r)[0]
            ),
        });
    }
    let max = y.data().iter().fold(0.0f32, |m, &v| m.max(v));
    Ok((max as usize + 1).max(2))
}

/// Targets as the loss wants them: one-hot rows of `outputs` for categorical cross-entropy
/// (labels past the last class are left for the model's own check to report).
fn targets_for(loss: LossFn, y: Matrix, outputs: usize) -> Matrix {
    if loss.task() != Task::Categorical || y.cols() != 1 {
        return y;
    }
    let mut data = vec![0.0; y.rows() * outputs];
    for r in 0..y.rows() {
        let c = y.row(r)[0] as usize;
        if c < outputs {
            data[r * outputs + c] = 1.0;
        }
    }
    Matrix::new(y.rows(), outputs, data).expect("sized above")
}

struct Train<'a> {
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

fn prepare_training(args: &TrainArgs, started: Instant) -> Result<Train<'_>> {
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
            eprintln!("warning: {w}");
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
            eprintln!(
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
            eprintln!("{reason}");
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

struct Evaluate<'a>(&'a EvaluateArgs);

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

/// A value for a CSV cell: plain decimals in the usual range, exponent notation for tiny or
/// huge magnitudes (a probability of 6e-42 would otherwise take 45 characters). Round-trips.
fn csv_number(v: f32) -> String {
    if v == 0.0 || (1e-4..1e7).contains(&v.abs()) {
        v.to_string()
    } else {
        format!("{v:e}")
    }
}

struct Predict<'a>(&'a PredictArgs);

impl Job for Predict<'_> {
    fn run<B: Backend>(self, backend: B, kind: &str) -> Result<()> {
        let args = self.0;
        let adapter = backend.describe();
        let mut model = Model::load(&args.input.model, backend)?;
        let inputs = model.input_dim().expect("a loaded model is built");
        let (x, source) = if args.input.data.is_dir() {
            let (_, _, xt, _) = idx::load_mnist_dir(&args.input.data)?;
            (xt, format!("{} (t10k images)", args.input.data.display()))
        } else {
            // A file with one column more than the model takes has a label column to drop.
            let all = data::csv::load(&args.input.data, &LabelColumn::None)?;
            let x = if all.x.cols() == inputs + 1 || args.input.label_column.is_some() {
                let label = args
                    .input
                    .label_column
                    .as_deref()
                    .map_or(LabelColumn::Last, LabelColumn::parse);
                data::csv::load(&args.input.data, &label)?.x
            } else {
                all.x
            };
            (x, args.input.data.display().to_string())
        };
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
                csv += &format!("{},", wgtrain::backend::cpu::argmax(p.row(r)));
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
            let mut report = json!({ "backend": kind, "adapter": adapter, "data": source, "rows": p.rows(), "outputs": p.cols() });
            match &args.out {
                Some(path) => report["out"] = json!(path.display().to_string()),
                None => {
                    report["predictions"] =
                        json!((0..p.rows()).map(|r| p.row(r).to_vec()).collect::<Vec<_>>());
                }
            }
            outln!("{report}");
        } else if let Some(path) = &args.out {
            eprintln!(
                "wrote {} predictions for {source} to {}",
                p.rows(),
                path.display()
            );
        }
        Ok(())
    }
}

/// `wgtrain bench`: each workload on the chosen backend, then the small ones on the reference.
fn bench(args: &BenchArgs, process_start: Instant) -> Result<()> {
    use wgtrain::bench::{profile, run, BenchInputs, Workload};
    let explicit = !args.workloads.is_empty();
    let workloads: Vec<Workload> = if explicit {
        args.workloads
            .iter()
            .map(|w| Workload::from_name(w))
            .collect::<Result<_>>()?
    } else {
        Workload::ALL
            .into_iter()
            .filter(|w| {
                let skip = *w == Workload::MnistE2e && !args.mnist.is_dir();
                if skip {
                    eprintln!(
                        "note: MNIST-E2E skipped: no MNIST folder at {} (--mnist DIR)",
                        args.mnist.display()
                    );
                }
                !skip
            })
            .collect()
    };
    let gpu = match args.common.backend {
        BackendChoice::Cpu => None,
        BackendChoice::Gpu => Some(GpuBackend::new()?),
        BackendChoice::Auto => GpuBackend::new()
            .map_err(|e| eprintln!("warning: no GPU ({e}); benchmarking the CPU reference only"))
            .ok(),
    };
    let adapter = gpu.as_ref().map(|g| g.context().adapter().clone());
    let software = adapter.as_ref().is_some_and(|a| a.device_type == "Cpu");
    if let Some(a) = &adapter {
        eprintln!("adapter: {a}");
    }
    let mut results = Vec::new();
    // Start-up of the first workload counts from process start; later ones from their own
    // start, with the device already open.
    let mut inputs = BenchInputs {
        started: process_start,
        mnist: args.mnist.clone(),
    };
    for w in workloads {
        if gpu.is_some() && !(w.real_gpu_only() && software && !explicit) {
            eprintln!("running {} on the GPU backend...", w.name());
            let mut r = run(GpuBackend::new()?, w, args.repeats, &inputs)?;
            if args.profile && matches!(w, Workload::MlpA | Workload::MlpB) {
                eprintln!("profiling {} with timestamp queries...", w.name());
                r.kernels = profile(GpuBackend::new()?, w)?;
            }
            results.push(r);
            inputs.started = Instant::now();
        }
        let reference_row = gpu.is_none() || (!args.no_reference && w.fits_the_reference());
        if reference_row && (w.fits_the_reference() || explicit) {
            eprintln!("running {} on the CPU reference...", w.name());
            results.push(run(CpuBackend::new(), w, args.repeats, &inputs)?);
            inputs.started = Instant::now();
        }
    }
    if args.common.json {
        let adapter = adapter.map(|a| {
            json!({ "name": a.name, "backend": a.backend, "device_type": a.device_type, "driver": a.driver, "driver_info": a.driver_info })
        });
        outln!("{}", json!({ "adapter": adapter, "results": results }));
    } else {
        outln!(
            "{:<9} {:>9} {:>10} {:>10} {:>8} {:>9}  backend",
            "workload",
            "GFLOP/s",
            "samples/s",
            "ms/step",
            "loss",
            "start s"
        );
        let opt = |v: Option<f64>, p: usize| v.map_or("-".to_string(), |v| format!("{v:.p$}"));
        for r in &results {
            outln!(
                "{:<9} {:>9} {:>10} {:>10.3} {:>8} {:>9}  {}",
                r.workload,
                opt(r.gflops, 2),
                opt(r.samples_per_sec, 0),
                r.ms_per_step,
                opt(r.final_loss, 4),
                opt(r.startup_s, 2),
                r.backend
            );
        }
        for r in results.iter().filter(|r| !r.test_accuracy.is_empty()) {
            let acc: Vec<String> = r.test_accuracy.iter().map(|a| format!("{a:.4}")).collect();
            outln!(
                "\n{}: test accuracy by epoch {}; ≥ 98% after {} s; {} s from process start",
                r.workload,
                acc.join(", "),
                opt(r.seconds_to_98, 1),
                opt(r.wall_s, 1)
            );
        }
        for r in results.iter().filter(|r| !r.kernels.is_empty()) {
            let gpu: f64 = r.kernels.iter().map(|k| k.gpu_ms_per_step).sum();
            outln!(
                "\n{}: GPU time per step by kernel (timestamp queries); {:.3} of {:.3} ms/step",
                r.workload,
                gpu,
                r.ms_per_step
            );
            for k in &r.kernels {
                outln!(
                    "  {:<24} {:>6.1} dispatches {:>9.3} ms {:>5.1}%",
                    k.kernel,
                    k.dispatches_per_step,
                    k.gpu_ms_per_step,
                    100.0 * k.gpu_ms_per_step / r.ms_per_step
                );
            }
        }
    }
    Ok(())
}
