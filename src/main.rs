//! The `wgtrain` command line: a thin layer over the library.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde_json::json;
use wgtrain::backend::cpu::CpuBackend;
use wgtrain::backend::gpu::GpuBackend;
use wgtrain::backend::{Activation, Backend, Optimizer};
use wgtrain::data::{self, csv::LabelColumn, Matrix};
use wgtrain::nn::{Dense, LossFn, Sequential, Task};
use wgtrain::train::{Compile, FitConfig, Metric};
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
    Train(TrainArgs),
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

#[derive(Args, Debug)]
struct TrainArgs {
    /// A CSV file with a header row; without it, the built-in digits set.
    #[arg(long)]
    data: Option<PathBuf>,
    /// The label column of the CSV, by name or 0-based index (default: the last).
    #[arg(long)]
    label_column: Option<String>,
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
    /// Passes over the training data.
    #[arg(long, default_value_t = 30)]
    epochs: usize,
    /// Samples per step.
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
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
    /// Where to train.
    #[arg(long, value_enum, default_value = "auto")]
    backend: BackendChoice,
    /// Seeds the split, the initial weights and the shuffles.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// 0: silent, 1: progress bars, 2: one line per epoch.
    #[arg(long, default_value_t = 1)]
    verbose: u8,
    /// Print one JSON object with the results on stdout (progress stays on stderr).
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    quiet_mesa();
    let started = Instant::now();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Train(args) => train(&args, started),
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

/// The data, split: (x_train, y_train, x_test, y_test, where it came from).
fn load(args: &TrainArgs) -> Result<(Matrix, Matrix, Matrix, Matrix, String)> {
    let (x, y, name) = match &args.data {
        None => {
            let (x, y) = data::digits();
            (x, y, "built-in digits (8×8, scaled to [0, 1])".to_string())
        }
        Some(path) => {
            let label = args
                .label_column
                .as_deref()
                .map_or(LabelColumn::Last, LabelColumn::parse);
            let d = data::csv::load(path, &label)?;
            (d.x, d.y, path.display().to_string())
        }
    };
    let (xt, yt, xs, ys) = data::train_test_split(&x, &y, args.test_split, args.seed)?;
    if xs.rows() == 0 {
        return Err(Error::Config(format!(
            "--test-split {} of {} rows leaves no test rows",
            args.test_split,
            x.rows()
        )));
    }
    Ok((xt, yt, xs, ys, name))
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

/// Number of classes in integer labels, with a clear error for labels that are not.
fn classes(y: &Matrix) -> Result<usize> {
    let max = y.data().iter().fold(0.0f32, |m, &v| m.max(v));
    if let Some(r) = (0..y.rows()).find(|&r| y.row(r)[0] < 0.0 || y.row(r)[0].fract() != 0.0) {
        return Err(Error::Data {
            source_name: "labels".into(),
            detail: format!(
                "row {r} has label {}; classification needs integer labels 0, 1, 2, ... (use --loss mse for regression)",
                y.row(r)[0]
            ),
        });
    }
    Ok((max as usize + 1).max(2))
}

fn one_hot(y: &Matrix, classes: usize) -> Matrix {
    let mut data = vec![0.0; y.rows() * classes];
    for r in 0..y.rows() {
        data[r * classes + y.row(r)[0] as usize] = 1.0;
    }
    Matrix::new(y.rows(), classes, data).expect("sized above")
}

fn train(args: &TrainArgs, started: Instant) -> Result<()> {
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
    let (x_train, y_train, x_test, y_test, source) = load(args)?;
    let loss = choose_loss(&args.loss, &y_train)?;
    let (outputs, y_train, y_test) = match loss.task() {
        Task::SparseCategorical => (classes(&y_train)?.max(classes(&y_test)?), y_train, y_test),
        Task::Categorical => {
            let k = classes(&y_train)?.max(classes(&y_test)?);
            (k, one_hot(&y_train, k), one_hot(&y_test, k))
        }
        Task::Binary | Task::Regression => (y_train.cols(), y_train, y_test),
    };
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
    let job = Job {
        args,
        model,
        compile,
        x_train,
        y_train,
        x_test,
        y_test,
        source,
        started,
    };

    match args.backend {
        BackendChoice::Cpu => job.run(CpuBackend::new(), "cpu"),
        BackendChoice::Gpu => job.run(GpuBackend::new()?, "gpu"),
        BackendChoice::Auto => match GpuBackend::new() {
            Ok(g) => job.run(g, "gpu"),
            Err(e) => {
                eprintln!("warning: no GPU ({e}); training on the CPU reference, which is slow");
                job.run(CpuBackend::new(), "cpu")
            }
        },
    }
}

struct Job<'a> {
    args: &'a TrainArgs,
    model: Sequential,
    compile: Compile,
    x_train: Matrix,
    y_train: Matrix,
    x_test: Matrix,
    y_test: Matrix,
    source: String,
    started: Instant,
}

impl Job<'_> {
    fn run<B: Backend>(self, backend: B, kind: &str) -> Result<()> {
        let args = self.args;
        let adapter = backend.describe();
        let mut model = self.model.compile(backend, self.compile)?;
        for w in model.warnings() {
            eprintln!("warning: {w}");
        }
        if args.verbose > 0 {
            eprintln!(
                "training on {adapter}\ndata: {} ({} train, {} test samples, {} features)",
                self.source,
                self.x_train.rows(),
                self.x_test.rows(),
                self.x_train.cols()
            );
        }
        let config = FitConfig {
            epochs: args.epochs,
            batch_size: args.batch_size,
            validation_split: args.validation_split,
            verbose: args.verbose,
            ..FitConfig::default()
        };
        let fit_start = Instant::now();
        let history = model.fit(&self.x_train, &self.y_train, config)?;
        let fit_seconds = fit_start.elapsed().as_secs_f64();
        if let Some(reason) = &history.stopped_early {
            eprintln!("{reason}");
        }
        let test = model.evaluate(&self.x_test, &self.y_test, args.batch_size.max(256))?;
        let epochs = history.epochs.len();
        let trained = (self.x_train.rows() as f64 * (1.0 - args.validation_split as f64)).round()
            * epochs as f64;

        let mut report = json!({
            "backend": kind,
            "adapter": adapter,
            "data": self.source,
            "loss_function": model.loss().name(),
            "epochs": epochs,
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
        for (name, values) in &history.series {
            if name != "loss" && name != "val_loss" {
                report[format!("final_{name}")] = json!(values.last());
            }
        }
        if let Some(reason) = &history.stopped_early {
            report["stopped_early"] = json!(reason);
        }
        if args.json {
            println!("{report}");
        } else {
            let metrics: Vec<String> = test
                .metrics
                .iter()
                .map(|(n, v)| format!("{n} {v:.4}"))
                .collect();
            println!(
                "test: loss {:.4}, {} ({} samples) after {epochs} epochs, {:.0} samples/s, {:.1}s in all",
                test.loss,
                metrics.join(", "),
                self.x_test.rows(),
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
