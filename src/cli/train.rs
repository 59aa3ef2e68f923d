//! `wgtrain train`, before any training: every flag checked, every output checked, the data
//! read and its labels checked (each bad row named by file and line), the loss chosen (and
//! why), a resume checked against the run it continues, and the model described. Nothing is
//! written and no weights are made until all of that holds.

use std::path::{Path, PathBuf};
use std::time::Instant;

use wgtrain::backend::Activation;
use wgtrain::checkpoint::{Checkpoint, DataRecord, RunRecord};
use wgtrain::data::{self, Matrix};
use wgtrain::fs::{check_outputs, Input, Output};
use wgtrain::nn::layers::spec::{parse_layers, LayerDefaults};
use wgtrain::nn::{Dense, Initializer, LossFn, Regularizer, Sequential, Task};
use wgtrain::train::metrics::DEFAULT_THRESHOLD;
use wgtrain::train::targets::targets_for;
use wgtrain::train::{Compile, Metric};
use wgtrain::{Error, Result};

use super::args::{about, flag_error, hidden_activation, optimizer, output_activation, TrainArgs};
use super::data::{
    builtin_digits, choose_loss, default_batch_size, input_files, load_labelled, outputs_for,
    unseen_label, Labelled,
};

/// A training job, ready to run on a backend (see `train_run.rs`).
pub(crate) struct Train<'a> {
    pub(crate) args: &'a TrainArgs,
    pub(crate) model: Sequential,
    pub(crate) compile: Compile,
    pub(crate) resume: Option<Checkpoint>,
    pub(crate) x_train: Matrix,
    pub(crate) y_train: Matrix,
    pub(crate) x_test: Matrix,
    pub(crate) y_test: Matrix,
    /// The rows of --validation-data, if given, as fit takes them.
    pub(crate) validation: Option<(Matrix, Matrix)>,
    /// What the data is, for reports.
    pub(crate) source: String,
    /// Why the loss is the one it is.
    pub(crate) loss_reason: String,
    /// The seeded test split made here, and the data it split (for the checkpoint's record).
    pub(crate) data_split: Option<(f32, DataRecord)>,
    pub(crate) batch_size: usize,
    /// Where the last good weights go if the run diverges (beside `--save`).
    pub(crate) last_good: Option<PathBuf>,
    /// Said on stderr before training.
    pub(crate) warnings: Vec<String>,
    pub(crate) started: Instant,
    /// The data-parallel job this process is a rank of, if any: rank 0 alone writes.
    pub(crate) ranks: super::ranks::Ranks,
    /// `--bucket-mb` in bytes: the gradient buckets of the data-parallel exchange.
    pub(crate) bucket_bytes: Option<usize>,
}

/// `model.safetensors` → `model.last-good.safetensors`: where a diverged run keeps its last
/// good weights, beside the `--save` file it leaves as it was.
pub(crate) fn last_good_path(save: &Path) -> PathBuf {
    let stem = save
        .file_stem()
        .map_or("model".into(), |s| s.to_string_lossy());
    let name = match save.extension() {
        Some(ext) => format!("{stem}.last-good.{}", ext.to_string_lossy()),
        None => format!("{stem}.last-good"),
    };
    save.with_file_name(name)
}

/// The flag of the last-good copy, in messages.
const LAST_GOOD: &str = "--save (its .last-good copy)";

/// Every output checked before anything is read: see `wgtrain::fs::check_outputs`.
/// A rank other than 0 of a data-parallel job writes nothing (`writes` false): its outputs
/// are not checked (they may name folders of rank 0's machine).
fn check_train_outputs(args: &TrainArgs, last_good: Option<&Path>, writes: bool) -> Result<()> {
    let mut read: Vec<(&str, PathBuf, &[&str])> = Vec::new();
    for (flag, path) in [
        ("--data", &args.data),
        ("--test-data", &args.test_data),
        ("--validation-data", &args.validation_data),
    ] {
        for file in path.iter().flat_map(|p| input_files(p)) {
            read.push((flag, file, &[]));
        }
    }
    if let Some(r) = &args.resume {
        read.push(("--resume", r.clone(), &["--save", LAST_GOOD]));
    }
    let inputs: Vec<Input> = read
        .iter()
        .map(|(flag, path, replaced_by)| Input {
            flag,
            path,
            replaced_by,
        })
        .collect();
    let mut outputs = Vec::new();
    let any: &[&str] = &[];
    for (flag, path, extensions) in [
        ("--save", args.save.as_deref(), any),
        (LAST_GOOD, last_good, any),
        ("--history", args.history.as_deref(), &["csv", "json"][..]),
        ("--plot", args.plot.as_deref(), &["png", "svg"][..]),
    ] {
        if let (Some(path), true) = (path, writes) {
            outputs.push(Output {
                flag,
                path,
                extensions,
                stdout: false,
            });
        }
    }
    check_outputs(&outputs, &inputs)
}

pub(crate) fn prepare_training(
    args: &TrainArgs,
    started: Instant,
    ranks: super::ranks::Ranks,
) -> Result<Train<'_>> {
    args.check()?;
    let bucket_bytes = super::args::bucket_bytes(args.bucket_mb, &ranks)?;
    let hidden = hidden_activation(&args.activation)?;
    let init = Initializer::from_name(&args.kernel_initializer)
        .map_err(|e| flag_error("--kernel-initializer", &args.kernel_initializer, &e))?;
    let regularizer = match (args.l1, args.l2) {
        (None, None) => None,
        (l1, l2) => Some(Regularizer::l1_l2(l1.unwrap_or(0.0), l2.unwrap_or(0.0))),
    };
    let defaults = LayerDefaults {
        activation: hidden,
        kernel_initializer: init.clone(),
        kernel_regularizer: regularizer,
    };
    let hidden_layers = parse_layers(&args.layers, &defaults)
        .map_err(|e| flag_error("--layers", args.layers.join(","), &e))?;
    let opt = optimizer(&args.optimizer, args.lr())?;
    let last_good = args.save.as_deref().map(last_good_path);
    let writes = super::ranks::rank(&ranks) == 0;
    check_train_outputs(args, last_good.as_deref(), writes)?;
    let resume = match &args.resume {
        Some(p) => Some(Checkpoint::load(p).map_err(|e| about("--resume", p, e))?),
        None => None,
    };

    let mut data = match &args.data {
        None => builtin_digits(),
        Some(path) => load_labelled("--data", path, &args.label_column)?,
    };
    let data_name = args
        .data
        .as_ref()
        .map_or("the built-in digits".to_string(), |p| {
            format!("--data {}", p.display())
        });
    // The test rows: a file of their own, the source's own split, or a seeded split here.
    let test = match &args.test_data {
        Some(path) => {
            let t = load_labelled("--test-data", path, &args.label_column)?;
            Some(match t.test {
                Some(own) => own,
                None => (t.x, t.y, t.origin),
            })
        }
        None => data.test.take(),
    };

    // The validation rows of --validation-data: a CSV with the columns of --data.
    let validation = match &args.validation_data {
        Some(path) if path.is_dir() => {
            return Err(flag_error(
                "--validation-data",
                path.display(),
                "is a folder; give a CSV with the same columns as --data",
            ))
        }
        Some(path) => {
            let v = load_labelled("--validation-data", path, &args.label_column)?;
            Some((v.x, v.y, v.origin))
        }
        None => None,
    };
    for (what, set) in [("test", &test), ("validation", &validation)] {
        if let Some((x, _, origin)) = set.as_ref().filter(|(x, _, _)| x.cols() != data.x.cols()) {
            return Err(Error::Data {
                source_name: origin.source.clone(),
                detail: format!(
                    "the {what} rows have {} feature columns, but {data_name} has {}; both need the same columns",
                    x.cols(),
                    data.x.cols()
                ),
            });
        }
    }
    let (loss, loss_reason) = choose_loss(&args.loss, &data)?;
    let output_act = output_activation(&args.output_activation)?;
    let loss = reads_probabilities(loss, output_act);
    let mut sets = vec![(&data.y, &data.origin)];
    for (_, yt, origin) in test.iter().chain(&validation) {
        sets.push((yt, origin));
    }
    let outputs = outputs_for(loss, &sets)?;
    let mut warnings = Vec::new();
    let classifier = matches!(loss.task(), Task::SparseCategorical | Task::Categorical);

    let image = input_shape(args, &data)?;
    let Labelled {
        x,
        y,
        origin,
        source,
        ..
    } = data;
    let (x_train, y_train, x_test, y_test, data_split) = match test {
        Some((xt, yt, test_origin)) => {
            if classifier {
                warnings.extend(unseen_label(&y, &yt, &test_origin));
            }
            (x, y, xt, yt, None)
        }
        None => {
            let (train, test) = data::split_indices(x.rows(), args.test_split, args.seed)?;
            if test.is_empty() || train.is_empty() {
                return Err(flag_error(
                    "--test-split",
                    args.test_split,
                    &format!(
                        "of {} rows leaves {} to test on and {} to train on; both need at least one (or give --test-data FILE)",
                        x.rows(),
                        test.len(),
                        train.len()
                    ),
                ));
            }
            let (yt, yv) = (y.gather(&train), y.gather(&test));
            if classifier {
                warnings.extend(unseen_label(&yt, &yv, &origin.gather(&test)));
            }
            let record = DataRecord::of(&x, &y, &origin.source);
            (
                x.gather(&train),
                yt,
                x.gather(&test),
                yv,
                Some((args.test_split, record)),
            )
        }
    };
    let n_val = (x_train.rows() as f64 * args.validation_split() as f64).round() as usize;
    if args.validation_split() > 0.0 && (n_val == 0 || n_val == x_train.rows()) {
        return Err(flag_error(
            "--validation-split",
            args.validation_split,
            &format!(
                "of {} training rows leaves {n_val} to validate on and {} to train on; both need at least one (0 turns validation off)",
                x_train.rows(),
                x_train.rows() - n_val
            ),
        ));
    }
    let batch_size = args
        .batch_size
        .unwrap_or(default_batch_size(x_train.rows()));
    if let Some(ckpt) = &resume {
        check_resume(
            args,
            ckpt,
            &x_train,
            &y_train,
            &data_split,
            batch_size,
            &mut warnings,
        )?;
    }
    let (y_train, y_test) = (
        targets_for(loss, y_train, outputs),
        targets_for(loss, y_test, outputs),
    );
    let validation = validation.map(|(x, y, _)| (x, targets_for(loss, y, outputs)));
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
        .map(|m| Metric::from_name(m).map_err(|e| flag_error("--metrics", m, &e.to_string())))
        .collect::<Result<Vec<_>>>()?;
    check_monitor(args, &metrics)?;
    let mut output = Dense::new(outputs, output_act).kernel_initializer(init);
    output.kernel_regularizer = regularizer;
    // The input is images only for a stack that reads them (a Dense-only model on MNIST
    // stays a model of 784 features).
    let start = match image {
        Some(shape) if hidden_layers.iter().any(|l| l.reads_images()) => {
            Sequential::new().input_shape(shape)
        }
        _ => Sequential::new(),
    };
    let model = hidden_layers
        .into_iter()
        .fold(start, Sequential::add)
        .add(output);
    model
        .validate()
        .map_err(|e| flag_error("--layers", args.layers.join(","), &e.to_string()))?;
    // A pairing that cannot train (softmax with binary outputs, one softmax output) is an
    // error naming the flag, before any data reaches a device.
    loss.head(output_act, outputs).map_err(|e| {
        flag_error(
            "--output-activation",
            &args.output_activation,
            &e.to_string(),
        )
    })?;
    let threshold = args.threshold.unwrap_or(DEFAULT_THRESHOLD);
    let compile = Compile::new(loss, opt)
        .metrics(&metrics)
        .seed(args.seed)
        .threshold(threshold);
    // A metric that does not fit the loss is refused here, not after the data is on a device.
    wgtrain::train::metrics::MetricPlan::new(&metrics, loss.task(), threshold, outputs)
        .map_err(|e| Error::Config(format!("--metrics: {e}")))?;
    Ok(Train {
        args,
        model,
        compile,
        resume,
        x_train,
        y_train,
        x_test,
        y_test,
        validation,
        source,
        loss_reason,
        data_split,
        batch_size,
        last_good,
        warnings,
        started,
        ranks,
        bucket_bytes,
    })
}

/// The loss for an output layer that applies `act`: a cross-entropy reads probabilities
/// (`from_logits: false`) after a sigmoid or softmax layer, logits otherwise.
fn reads_probabilities(loss: LossFn, act: Activation) -> LossFn {
    let from_logits = !matches!(act, Activation::Sigmoid | Activation::Softmax);
    match loss {
        LossFn::BinaryCrossentropy { .. } => LossFn::BinaryCrossentropy { from_logits },
        LossFn::CategoricalCrossentropy { .. } => LossFn::CategoricalCrossentropy { from_logits },
        LossFn::SparseCategoricalCrossentropy { .. } => {
            LossFn::SparseCategoricalCrossentropy { from_logits }
        }
        other => other,
    }
}

/// What `--save-mode best` and `--early-stopping` watch: `--monitor`, else `val_loss` (`loss`
/// without validation).
pub(crate) fn monitor(args: &TrainArgs) -> String {
    match &args.monitor {
        Some(m) => m.clone(),
        None if args.validates() => "val_loss".into(),
        None => "loss".into(),
    }
}

/// `--monitor` must be something the run logs: the loss or a metric, with `val_` where there
/// is validation.
fn check_monitor(args: &TrainArgs, metrics: &[Metric]) -> Result<()> {
    let Some(m) = &args.monitor else {
        return Ok(());
    };
    let mut logged: Vec<String> = std::iter::once("loss")
        .chain(metrics.iter().map(|m| m.name()))
        .map(str::to_string)
        .collect();
    if args.validates() {
        let val: Vec<String> = logged.iter().map(|n| format!("val_{n}")).collect();
        logged.extend(val);
    }
    if logged.contains(m) {
        return Ok(());
    }
    Err(flag_error(
        "--monitor",
        m,
        &format!("is not logged by this run; it logs {}", logged.join(", ")),
    ))
}

/// A resume keeps its checkpoint's input scaling: `--standardize` must say what the run did
/// (the built-in digits are always scaled, so this holds for `--data` alone).
fn check_standardize(args: &TrainArgs, ckpt: &Checkpoint) -> Result<()> {
    let had = ckpt.standardizer.is_some();
    if args.data.is_none() || args.standardize == had {
        return Ok(());
    }
    let (was, now) = if had {
        ("with", "add")
    } else {
        ("without", "drop")
    };
    Err(Error::Config(format!(
        "--resume {}: the run it continues was trained {was} standardization; {now} --standardize",
        args.resume
            .as_deref()
            .expect("a resume has a path")
            .display()
    )))
}

/// The flag behind a field of a checkpoint's [`RunRecord`].
fn flag_of(field: &str) -> &'static str {
    match field {
        "seed" => "--seed",
        "test_split" => "--test-split",
        "validation_split" => "--validation-split",
        "batch_size" => "--batch-size",
        "shuffle" => "(shuffling)",
        _ => "--data",
    }
}

/// A resume must continue the run it names: the same seed, splits, batch size and data, or
/// the rows it tested on would be trained on and its batches would differ. Each difference is
/// named by its flag with both values. The loss must match too (the architecture is checked
/// tensor by tensor when the weights are restored).
fn check_resume(
    args: &TrainArgs,
    ckpt: &Checkpoint,
    x_train: &Matrix,
    y_train: &Matrix,
    data_split: &Option<(f32, DataRecord)>,
    batch_size: usize,
    warnings: &mut Vec<String>,
) -> Result<()> {
    let path = args
        .resume
        .as_deref()
        .expect("a resume has a path")
        .display();
    if args.epochs <= ckpt.epoch {
        return Err(flag_error(
            "--epochs",
            args.epochs,
            &format!(
                "--resume {path} has trained {} epochs already; --epochs counts them all, so ask for more to continue",
                ckpt.epoch
            ),
        ));
    }
    if let Some(lr) = args.lr.filter(|&lr| lr != ckpt.config.optimizer.lr()) {
        warnings.push(format!(
            "--lr {lr} is not used: a resumed run continues with its checkpoint's learning rate ({})",
            ckpt.config.optimizer.lr()
        ));
    }
    let Some(then) = &ckpt.run else {
        warnings.push(format!(
            "--resume {path} does not record the split and batch order of its run (written by an older wgtrain); \
             make sure --seed, --test-split, --validation-split, --batch-size and the data are the same as then"
        ));
        return check_standardize(args, ckpt);
    };
    // What fit will record (the command line always shuffles).
    let now = RunRecord::new(
        args.seed,
        batch_size,
        args.validation_split(),
        true,
        x_train,
        y_train,
        data_split.as_ref(),
    );
    let differences = then.differences(&now);
    if differences.is_empty() {
        return check_standardize(args, ckpt);
    }
    let list: Vec<String> = differences
        .iter()
        .map(|(field, was, is)| format!("{} was {was} and is now {is}", flag_of(field)))
        .collect();
    let seed_note = if differences
        .iter()
        .any(|(f, ..)| *f == "seed" || *f == "test_split" || *f == "data")
    {
        " A different split would put rows the model trained on among its test rows."
    } else {
        ""
    };
    Err(Error::Config(format!(
        "--resume {path}: this run does not continue that one: {}.{seed_note} Resume with the same flags and data, \
         or train from the start without --resume",
        list.join("; ")
    )))
}

/// The images each row is: `--input-shape H,W,C`, else what the source says (IDX files, the
/// built-in digits), else none; it must account for every feature column.
fn input_shape(args: &TrainArgs, data: &Labelled) -> Result<Option<[usize; 3]>> {
    let Some(text) = &args.input_shape else {
        return Ok(data.image);
    };
    let dims: Vec<usize> = text
        .split(',')
        .map(|d| d.trim().parse::<usize>().ok().filter(|&v| v > 0))
        .collect::<Option<_>>()
        .filter(|d: &Vec<usize>| d.len() == 3)
        .ok_or_else(|| {
            flag_error(
                "--input-shape",
                text,
                "is HEIGHT,WIDTH,CHANNELS: three whole numbers of at least 1 (e.g. 28,28,1)",
            )
        })?;
    let shape = [dims[0], dims[1], dims[2]];
    if shape.iter().product::<usize>() != data.x.cols() {
        return Err(flag_error(
            "--input-shape",
            text,
            &format!(
                "is {} values a row, but the data has {} feature columns",
                shape.iter().product::<usize>(),
                data.x.cols()
            ),
        ));
    }
    Ok(Some(shape))
}
