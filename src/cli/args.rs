//! The command line's flags, subcommand by subcommand (clap derive), and the checks of each
//! flag's value on its own, made before anything is read or written.

use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use wgtrain::backend::{Activation, Optimizer};
use wgtrain::error::quote;
use wgtrain::nn::{Initializer, LossFn};
use wgtrain::train::Metric;
use wgtrain::{Error, Result};

#[derive(Args, Debug)]
pub(crate) struct BenchArgs {
    /// Workloads to run (repeatable): MM-S, MM-M, MM-L, MM-MLP, MLP-A, MLP-A-BN-DROP, MLP-B,
    /// CNN-A, MNIST-E2E.
    /// Default: all (MM-L and CNN-A on the GPU backend only on a real GPU, MNIST-E2E only
    /// where its folder is).
    #[arg(long = "workload")]
    pub(crate) workloads: Vec<String>,
    /// Timed repetitions of each (at least 1); the median is reported.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) repeats: u32,
    /// Skip the CPU reference rows.
    #[arg(long)]
    pub(crate) no_reference: bool,
    /// The MNIST folder for MNIST-E2E (skipped when it is missing and no workload was named).
    #[arg(long, default_value = "../shared/data/mnist")]
    pub(crate) mnist: PathBuf,
    /// For the MLP workloads on a GPU, also time every kernel with timestamp queries in one
    /// extra epoch and show each one's GPU time per step (the rest of `ms/step` is host and
    /// driver overhead).
    #[arg(long)]
    pub(crate) profile: bool,
    /// Under mpirun: exchange the gradients of each step in buckets of at least MB megabytes
    /// (1e6 bytes), from the top layer down, each allreduced while the device runs the
    /// backward pass of the layers below it; 0 makes every layer with weights a bucket of its
    /// own. Default: the whole gradient at once, after the backward pass. The weights are the
    /// same either way; which is faster depends on the machine (docs/SCALING.md).
    #[arg(long, value_name = "MB", value_parser = bucket_mb)]
    pub(crate) bucket_mb: Option<f64>,
    #[command(flatten)]
    pub(crate) common: Common,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum BackendChoice {
    /// A real GPU (discrete, integrated or virtual) if there is one, else the fast CPU
    /// backend (a software adapter such as lavapipe is slower than it); says which and why.
    Auto,
    /// The best GPU adapter, software ones included; an error if there is none.
    Gpu,
    /// The fast CPU backend, on every core (or `WGTRAIN_THREADS`).
    Cpu,
    /// The CPU reference: the specification, written to be read, not to be fast.
    Reference,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum SaveMode {
    /// When training ends.
    End,
    /// After every epoch (and so also at the end).
    Epoch,
    /// After each epoch in which `--monitor` reaches a new best.
    Best,
}

#[derive(Args, Debug)]
pub(crate) struct Common {
    /// Where to run.
    #[arg(long, value_enum, default_value = "auto")]
    pub(crate) backend: BackendChoice,
    /// Print one JSON object with the results on stdout (progress stays on stderr).
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Args, Debug)]
pub(crate) struct TrainArgs {
    /// A CSV file with a header row, or a folder of MNIST IDX files; without it, the
    /// built-in digits set.
    #[arg(long)]
    pub(crate) data: Option<PathBuf>,
    /// The label column of a CSV, by name or 0-based index (default: the last). Several,
    /// comma separated (`a,b,c`), are one target each: 0/1 columns train a multi-label model
    /// (binary cross-entropy per output), numbers a multi-output regression.
    #[arg(long)]
    pub(crate) label_column: Option<String>,
    /// A separate CSV to test on (instead of holding out --test-split of --data).
    #[arg(long)]
    pub(crate) test_data: Option<PathBuf>,
    /// Standardize each feature with the mean and deviation of the training rows; saved with
    /// the model and applied by evaluate and predict.
    #[arg(long)]
    pub(crate) standardize: bool,
    /// The hidden layers, comma separated: N (Dense, the --activation), N:ACT, N:prelu
    /// (Dense then PReLU), N:rrelu, dropout:RATE, batchnorm, maxout:N:PIECES, activation:ACT,
    /// prelu, rrelu; for images conv:FILTERS:K[:sS][:same|valid][:ACT] (K or KHxKW; the
    /// --activation unless ACT), maxpool:P[:sS][:same|valid], avgpool:P[...], globalavgpool,
    /// flatten (e.g. conv:32:3:relu,maxpool:2,flatten,128).
    /// The output layer is added after them.
    #[arg(long, default_value = "128,64", value_delimiter = ',')]
    pub(crate) layers: Vec<String>,
    /// The shape of each row as an image, HEIGHT,WIDTH,CHANNELS (channels last), for
    /// convolution and pooling layers. IDX files (MNIST: 28,28,1) and the built-in digits
    /// (8,8,1) carry theirs; a CSV needs it.
    #[arg(long, value_name = "H,W,C")]
    pub(crate) input_shape: Option<String>,
    /// An L1 penalty `F · Σ |w|` on the kernel of every Dense and Maxout layer.
    #[arg(long, value_name = "F")]
    pub(crate) l1: Option<f32>,
    /// An L2 penalty `F · Σ w²` on the kernel of every Dense and Maxout layer.
    #[arg(long, value_name = "F")]
    pub(crate) l2: Option<f32>,
    /// Hidden activation (of the `N` items of --layers): linear, relu, leaky_relu, elu, sigmoid,
    /// tanh, softplus, gelu, gelu_tanh, silu, binary_step, selu, gaussian, soboleva_tanh.
    #[arg(long, default_value = "relu")]
    pub(crate) activation: String,
    /// The output layer's activation (default linear: the loss applies softmax or sigmoid to
    /// the logits itself). `sigmoid` or `softmax` make the layer apply it, and the
    /// cross-entropy then reads probabilities (Keras' from_logits=False; computed from the
    /// logits all the same); `softplus` or `relu` give a regression positive outputs.
    #[arg(long, default_value = "linear")]
    pub(crate) output_activation: String,
    /// How every layer's weights start (biases start at 0): glorot_uniform (the default, as
    /// Keras), glorot_normal, he_uniform, he_normal, lecun_uniform, lecun_normal, zeros, ones,
    /// constant:VALUE, random_normal[:STDDEV | :MEAN,STDDEV] (`random_normal:0.01` is the
    /// course's small random start), random_uniform[:LIMIT | :MIN,MAX].
    #[arg(long, default_value = "glorot_uniform")]
    pub(crate) kernel_initializer: String,
    /// Loss: sparse_categorical_crossentropy, categorical_crossentropy, binary_crossentropy, mse,
    /// mae, huber; `auto` picks sparse categorical cross-entropy for integer labels, else mse.
    #[arg(long, default_value = "auto")]
    pub(crate) loss: String,
    /// Optimizer: adam, adamw, sgd, momentum, nesterov.
    #[arg(long, default_value = "adam")]
    pub(crate) optimizer: String,
    /// Learning rate (default 1e-3; a resumed run continues with its checkpoint's).
    #[arg(long, value_parser = f32_value)]
    pub(crate) lr: Option<f32>,
    /// Epochs in all (a resumed run continues from its checkpoint's epoch up to this).
    #[arg(long, default_value_t = 30)]
    pub(crate) epochs: usize,
    /// Samples per step (default: 32, or 128 for a training set of 10,000 samples or more,
    /// as BENCHMARKS.md's MNIST workload).
    #[arg(long)]
    pub(crate) batch_size: Option<usize>,
    /// Under mpirun: exchange the gradients of each step in buckets of at least MB megabytes
    /// (1e6 bytes), from the top layer down, each allreduced while the device runs the
    /// backward pass of the layers below it; 0 makes every layer with weights a bucket of its
    /// own. Default: the whole gradient at once, after the backward pass. The weights are the
    /// same either way; which is faster depends on the machine (docs/SCALING.md).
    #[arg(long, value_name = "MB", value_parser = bucket_mb)]
    pub(crate) bucket_mb: Option<f64>,
    /// Fraction of the training data held out (its last rows) to validate after each epoch;
    /// unused with --validation-data.
    #[arg(long, default_value_t = 0.1, value_parser = f32_value)]
    pub(crate) validation_split: f32,
    /// A CSV to validate on after each epoch (same columns and label column as --data),
    /// instead of holding out --validation-split of the training rows.
    #[arg(long)]
    pub(crate) validation_data: Option<PathBuf>,
    /// Fraction of the data held out, after a seeded shuffle, for the final test.
    #[arg(long, default_value_t = 0.2, value_parser = f32_value)]
    pub(crate) test_split: f32,
    /// Metrics besides the loss, comma separated, each `name` or `name:value` (default:
    /// accuracy for classification, mae for regression). The value is a threshold
    /// (`precision:0.3`, `true_positives:0.7`), k (`top_k_categorical_accuracy:3`) or the rate
    /// to reach (`precision_at_recall:0.9`). Names are Keras': accuracy, binary_accuracy,
    /// categorical_accuracy, sparse_categorical_accuracy, top_k_categorical_accuracy,
    /// sparse_top_k_categorical_accuracy, precision, recall, true_positives, true_negatives,
    /// false_positives, false_negatives, f1_score, auc, precision_at_recall,
    /// sensitivity_at_specificity, specificity_at_sensitivity, mse, rmse, mae, mape, msle,
    /// kl_divergence, poisson, binary_crossentropy, categorical_crossentropy,
    /// sparse_categorical_crossentropy.
    #[arg(long, value_delimiter = ',')]
    pub(crate) metrics: Vec<String>,
    /// The decision threshold of yes/no outputs, in [0, 1]: accuracy, binary_accuracy,
    /// precision, recall, the confusion counts and f1_score count a probability above it as a
    /// yes, unless a metric names its own (`precision:0.3`). Default 0.5.
    #[arg(long, value_parser = f32_value)]
    pub(crate) threshold: Option<f32>,
    /// Seeds the split, the initial weights and the shuffles.
    #[arg(long, default_value_t = 42)]
    pub(crate) seed: u64,
    /// 0: silent, 1: progress bars, 2: one line per epoch.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(0..=2))]
    pub(crate) verbose: u8,
    /// Save a checkpoint (safetensors) here; written atomically.
    #[arg(long)]
    pub(crate) save: Option<PathBuf>,
    /// When to save.
    #[arg(long, value_enum, default_value = "end")]
    pub(crate) save_mode: SaveMode,
    /// What `--save-mode best` and `--early-stopping` watch: the loss or a metric, `val_` for
    /// its validation value (default: val_loss, or loss without validation). Lower is better
    /// for losses, errors and false counts; higher for the rest.
    #[arg(long)]
    pub(crate) monitor: Option<String>,
    /// Stop when `--monitor` has not improved for this many epochs (Keras' EarlyStopping).
    #[arg(long, value_name = "PATIENCE")]
    pub(crate) early_stopping: Option<usize>,
    /// With --early-stopping: end with the weights of the best epoch, not the last.
    #[arg(long)]
    pub(crate) restore_best: bool,
    /// Continue training from this checkpoint (same flags and seed as the run that wrote it);
    /// its weights, optimizer state, learning rate, epoch count and input scaling are used.
    #[arg(long)]
    pub(crate) resume: Option<PathBuf>,
    /// Write the learning curves per epoch here (.csv or .json).
    #[arg(long)]
    pub(crate) history: Option<PathBuf>,
    /// Draw the learning curves (loss and the main metric, training and validation) here
    /// (.png or .svg).
    #[arg(long)]
    pub(crate) plot: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) common: Common,
}

/// A saved model and the data to run it on.
#[derive(Args, Debug)]
pub(crate) struct ModelInput {
    /// A checkpoint written by `wgtrain train --save`.
    #[arg(long)]
    pub(crate) model: PathBuf,
    /// A CSV file, or an MNIST folder (its t10k split is used). For predict, a CSV may have a
    /// label column or not.
    #[arg(long)]
    pub(crate) data: PathBuf,
    /// The label column of a CSV, by name or 0-based index, or several comma separated
    /// (default: the last; predict drops it when the file has one column more than the model
    /// takes).
    #[arg(long)]
    pub(crate) label_column: Option<String>,
    /// Samples per batch.
    #[arg(long, default_value_t = 256)]
    pub(crate) batch_size: usize,
}

#[derive(Args, Debug)]
pub(crate) struct EvaluateArgs {
    #[command(flatten)]
    pub(crate) input: ModelInput,
    #[command(flatten)]
    pub(crate) common: Common,
}

#[derive(Args, Debug)]
pub(crate) struct PredictArgs {
    #[command(flatten)]
    pub(crate) input: ModelInput,
    /// Write the predictions here as CSV (atomically; `-` for stdout); without it they go to
    /// stdout.
    #[arg(long)]
    pub(crate) out: Option<PathBuf>,
    /// For a PyTorch state_dict given as --model (an nn.Sequential of nn.Linear saved with
    /// safetensors.torch): the activation between its Linear layers (default relu). A wgtrain
    /// checkpoint records its own.
    #[arg(long)]
    pub(crate) activation: Option<String>,
    /// For a PyTorch state_dict: the activation after its last Linear (default linear, the
    /// raw outputs; softmax or sigmoid for probabilities).
    #[arg(long)]
    pub(crate) output_activation: Option<String>,
    #[command(flatten)]
    pub(crate) common: Common,
}

/// A number for a float flag: refuses what f32 cannot hold (`1e39` would be infinity) with
/// that said, rather than as `inf`.
fn f32_value(s: &str) -> std::result::Result<f32, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("`{}` is not a number", quote(s)))?;
    if v.is_nan() {
        return Err("NaN is not a number this takes".into());
    }
    let f = v as f32;
    if v.is_finite() && !f.is_finite() {
        return Err(format!(
            "{s} is beyond the range of 32-bit floats (±3.4e38)"
        ));
    }
    Ok(f)
}

/// `--bucket-mb`: a finite number of megabytes, 0 or more.
fn bucket_mb(s: &str) -> std::result::Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("`{}` is not a number of megabytes", quote(s)))?;
    if v.is_finite() && v >= 0.0 && v * 1e6 < usize::MAX as f64 {
        Ok(v)
    } else {
        Err(format!(
            "{s} is not a bucket size: give the megabytes of gradients per bucket, 0 or more (such as 25); 0 makes each layer its own bucket"
        ))
    }
}

/// The bytes of `--bucket-mb` (rounded), refused outside a data-parallel job, where there is
/// no exchange to split.
pub(crate) fn bucket_bytes(mb: Option<f64>, ranks: &super::ranks::Ranks) -> Result<Option<usize>> {
    match (mb, ranks) {
        (None, _) => Ok(None),
        (Some(mb), Some(_)) => Ok(Some((mb * 1e6).round() as usize)),
        (Some(mb), None) => Err(flag_error(
            "--bucket-mb",
            mb,
            "gradient buckets split the exchange between the ranks of a data-parallel job: run under `mpirun -np N` (N of 2 or more, a build with --features mpi), or leave the flag out",
        )),
    }
}

/// `--flag value: what is wrong`.
pub(crate) fn flag_error(flag: &str, value: impl std::fmt::Display, detail: &str) -> Error {
    Error::Config(format!("{flag} {}: {detail}", quote(&value.to_string())))
}

/// `flag path: error`, for an error that does not name the file itself.
pub(crate) fn about(flag: &str, path: &Path, e: Error) -> Error {
    let named = path.display().to_string();
    let text = e.to_string();
    if text.contains(&named) {
        e
    } else {
        Error::Config(format!("{flag} {named}: {text}"))
    }
}

/// The activations a hidden layer may have (softmax needs whole rows: output layers only).
pub(crate) fn hidden_activation(name: &str) -> Result<Activation> {
    let hidden: Vec<&str> = Activation::ALL
        .iter()
        .filter(|a| !a.is_row_wise())
        .map(|a| a.name())
        .collect();
    match Activation::from_name(name) {
        Ok(a) if !a.is_row_wise() => Ok(a),
        Ok(_) => Err(flag_error(
            "--activation",
            name,
            &format!(
                "softmax is for the output layer, which the loss picks; hidden layers take one of {}",
                hidden.join(", ")
            ),
        )),
        Err(_) => Err(flag_error(
            "--activation",
            name,
            &format!("unknown activation; valid: {}", hidden.join(", ")),
        )),
    }
}

/// The output layer's activation `--output-activation` names (any, softmax included).
pub(crate) fn output_activation(name: &str) -> Result<Activation> {
    Activation::from_name(name).map_err(|_| {
        flag_error(
            "--output-activation",
            name,
            &format!(
                "unknown activation; valid: {}",
                Activation::ALL.map(|a| a.name()).join(", ")
            ),
        )
    })
}

/// The optimizer `--optimizer` names, at `--lr`.
pub(crate) fn optimizer(name: &str, lr: f32) -> Result<Optimizer> {
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
            return Err(flag_error(
                "--optimizer",
                name,
                "unknown optimizer; valid: adam, adamw, sgd, momentum, nesterov",
            ))
        }
    })
}

/// A split fraction in [0, 1).
fn fraction(flag: &str, v: f32) -> Result<()> {
    if (0.0..1.0).contains(&v) {
        Ok(())
    } else {
        Err(flag_error(
            flag,
            v,
            "must be a fraction in [0, 1), such as 0.2",
        ))
    }
}

impl TrainArgs {
    /// The fraction of the training rows held out to validate: 0 with --validation-data.
    pub(crate) fn validation_split(&self) -> f32 {
        if self.validation_data.is_some() {
            0.0
        } else {
            self.validation_split
        }
    }

    /// Whether the run validates after each epoch.
    pub(crate) fn validates(&self) -> bool {
        self.validation_data.is_some() || self.validation_split > 0.0
    }

    /// `--lr`, or its default.
    pub(crate) fn lr(&self) -> f32 {
        self.lr.unwrap_or(1e-3)
    }

    /// Each flag's value on its own, and the flags that need another: before anything is
    /// read, so that a typo costs nothing. Every error names its flag.
    pub(crate) fn check(&self) -> Result<()> {
        if !(self.lr().is_finite() && self.lr() > 0.0) {
            return Err(flag_error(
                "--lr",
                self.lr(),
                "the learning rate must be a finite number above 0 (1e-3 is usual for adam, 1e-2 for sgd)",
            ));
        }
        if self.epochs == 0 {
            return Err(flag_error("--epochs", 0, "epochs must be at least 1"));
        }
        if self.batch_size == Some(0) {
            return Err(flag_error(
                "--batch-size",
                0,
                "the batch size must be at least 1",
            ));
        }
        fraction("--validation-split", self.validation_split)?;
        fraction("--test-split", self.test_split)?;
        for (flag, value) in [("--l1", self.l1), ("--l2", self.l2)] {
            if let Some(v) = value.filter(|v| !(v.is_finite() && *v >= 0.0)) {
                return Err(flag_error(
                    flag,
                    v,
                    "a penalty factor must be finite and ≥ 0 (0 is no penalty)",
                ));
            }
        }
        hidden_activation(&self.activation)?;
        if self.loss != "auto" {
            LossFn::from_name(&self.loss, true)
                .map_err(|e| flag_error("--loss", &self.loss, &format!("{e}, or auto")))?;
        }
        optimizer(&self.optimizer, self.lr())?
            .validate(1)
            .map_err(|e| flag_error("--lr", self.lr(), &e.to_string()))?;
        for m in &self.metrics {
            Metric::from_name(m).map_err(|e| flag_error("--metrics", m, &e.to_string()))?;
        }
        if let (Some(l), None) = (&self.label_column, &self.data) {
            return Err(flag_error(
                "--label-column",
                l,
                "names a column of --data FILE.csv, which is missing; the built-in digits have their label",
            ));
        }
        if let Some(t) = self.threshold.filter(|t| !(0.0..=1.0).contains(t)) {
            return Err(flag_error(
                "--threshold",
                t,
                "the decision threshold is a probability in [0, 1], such as 0.5",
            ));
        }
        if self.save.is_none() && self.save_mode != SaveMode::End {
            return Err(Error::Config(
                "--save-mode epoch and best write to --save PATH, which is missing".into(),
            ));
        }
        let watched = self.save_mode == SaveMode::Best || self.early_stopping.is_some();
        if let (Some(monitor), false) = (&self.monitor, watched) {
            return Err(flag_error(
                "--monitor",
                monitor,
                "is what --save-mode best and --early-stopping watch; add one of them, or drop --monitor",
            ));
        }
        if self.restore_best && self.early_stopping.is_none() {
            return Err(Error::Config(
                "--restore-best puts back the best epoch's weights when --early-stopping PATIENCE stops the run, \
                 which is missing"
                    .into(),
            ));
        }
        output_activation(&self.output_activation)?;
        Initializer::from_name(&self.kernel_initializer)
            .map_err(|e| flag_error("--kernel-initializer", &self.kernel_initializer, &e))?;
        Ok(())
    }
}

impl ModelInput {
    /// Each flag's value on its own.
    pub(crate) fn check(&self) -> Result<()> {
        if self.batch_size == 0 {
            return Err(flag_error(
                "--batch-size",
                0,
                "the batch size must be at least 1",
            ));
        }
        Ok(())
    }
}
