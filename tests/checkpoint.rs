//! Checkpoints: round trips, exact resume, mismatches, damaged files, and writes that survive
//! being killed.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use wgtrain::backend::{reference::ReferenceBackend, Activation, Backend, Optimizer};
use wgtrain::checkpoint::{Checkpoint, DataRecord};
use wgtrain::data::{self, Matrix, Standardizer};
use wgtrain::nn::{Dense, LossFn, Sequential};
use wgtrain::tolerance::Tolerance;
use wgtrain::train::{Compile, FitConfig, Metric, Model, ModelCheckpoint};

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wgtrain-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn data() -> (Matrix, Matrix) {
    let (x, y) = data::digits();
    (x.head(256), y.head(256))
}

/// A digits classifier with these hidden relu layers, trained from logits, seed 9.
fn classifier<B: Backend>(b: B, hidden: &[usize], opt: Optimizer) -> Model<B> {
    let mut spec = Sequential::new();
    for &units in hidden {
        spec = spec.add(Dense::new(units, Activation::Relu));
    }
    spec.add(Dense::new(10, Activation::Linear))
        .compile(
            b,
            Compile::new(
                LossFn::SparseCategoricalCrossentropy { from_logits: true },
                opt,
            )
            .metrics(&[Metric::Accuracy])
            .seed(9),
        )
        .unwrap()
}

fn model<B: Backend>(b: B, opt: Optimizer) -> Model<B> {
    classifier(b, &[24], opt)
}

fn fit(epochs: usize, initial: usize) -> FitConfig {
    FitConfig::epochs(epochs)
        .batch_size(20)
        .validation_split(0.2)
        .verbose(0)
        .initial_epoch(initial)
}

/// Saving and loading keeps every weight, the optimizer state, the step and the epoch, and the
/// loaded model predicts exactly what the saved one did.
fn check_round_trip<B: Backend>(backend: impl Fn() -> B) {
    let dir = temp_dir("roundtrip");
    let path = dir.join("model.safetensors");
    let (x, y) = data();
    let mut m = model(backend(), Optimizer::adam(1e-2));
    m.set_standardizer(Some(Standardizer::fit(&x)));
    m.fit(&x, &y, fit(2, 0)).unwrap();
    m.save(&path).unwrap();
    let saved = m.checkpoint().unwrap();
    let mut loaded = Model::load(&path, backend()).unwrap();
    assert_eq!(loaded.checkpoint().unwrap(), saved);
    assert_eq!((loaded.epochs_done(), loaded.steps()), (2, m.steps()));
    assert_eq!(loaded.predict(&x, 64).unwrap(), m.predict(&x, 64).unwrap());
    std::fs::remove_dir_all(dir).ok();
}
model_test!(round_trip, check_round_trip);

/// Training 2 epochs, saving, loading and training 2 more gives the weights of 4 epochs in one
/// go, bit for bit on both backends (the GPU runs the same kernels in the same order).
fn check_resume<B: Backend>(name: &str, backend: impl Fn() -> B, tol: Tolerance) {
    let dir = temp_dir(&format!("resume-{name}"));
    let path = dir.join("epoch2.safetensors");
    let (x, y) = data();
    for opt in [
        Optimizer::adam(1e-2),
        Optimizer::Momentum {
            lr: 0.05,
            momentum: 0.9,
            nesterov: true,
        },
    ] {
        let mut straight = model(backend(), opt);
        straight.fit(&x, &y, fit(4, 0)).unwrap();

        let mut first = model(backend(), opt);
        first.fit(&x, &y, fit(2, 0)).unwrap();
        first.save(&path).unwrap();
        drop(first);
        let mut resumed = Model::load(&path, backend()).unwrap();
        let done = resumed.epochs_done();
        resumed.fit(&x, &y, fit(4, done)).unwrap();

        assert_eq!(resumed.steps(), straight.steps());
        for (a, b) in resumed
            .weights()
            .unwrap()
            .iter()
            .zip(straight.weights().unwrap())
        {
            common::assert_close(&format!("{opt:?} weights"), tol, a.weight(), b.weight());
            common::assert_close(&format!("{opt:?} biases"), tol, a.bias(), b.bias());
        }
    }
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn resume_is_bit_exact_on_the_reference() {
    check_resume("reference", ReferenceBackend::new, Tolerance::EXACT);
}

/// The fast CPU backend too: its products and updates give the same bits on every call.
#[test]
fn resume_is_bit_exact_on_the_cpu_backend() {
    check_resume("cpu", common::cpu, Tolerance::EXACT);
}

#[test]
fn resume_is_bit_exact_on_the_gpu() {
    if common::gpu().is_some() {
        check_resume("gpu", || common::gpu().unwrap(), Tolerance::EXACT);
    }
}

/// A run's data record hashes the little-endian bytes of every feature, then every target, as
/// one CRC-32 (checkpoints written before it was computed a block at a time must still match):
/// over 1,024 values, so that the blocks' edges are crossed.
#[test]
fn the_data_record_is_the_crc_of_the_values_bytes() {
    let values = |n: usize, k: f32| (0..n).map(|i| (i as f32 * k).sin()).collect::<Vec<_>>();
    let x = Matrix::new(3, 1001, values(3003, 0.37)).unwrap();
    let y = Matrix::new(3, 2, values(6, 1.1)).unwrap();
    let bytes: Vec<u8> = x
        .data()
        .iter()
        .chain(y.data())
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let record = DataRecord::of(&x, &y, "test");
    assert_eq!(record.crc32, crc32fast::hash(&bytes));
    assert_eq!((record.rows, record.features), (3, 1001));
}

#[test]
fn loading_into_another_architecture_names_the_tensor_and_both_shapes() {
    let dir = temp_dir("mismatch");
    let path = dir.join("m.safetensors");
    let (x, y) = data();
    let mut m = model(ReferenceBackend::new(), Optimizer::adam(1e-3));
    m.fit(&x, &y, fit(1, 0)).unwrap();
    m.save(&path).unwrap();
    let ckpt = Checkpoint::load(&path).unwrap();
    let mut other = classifier(ReferenceBackend::new(), &[32], Optimizer::adam(1e-3));
    let err = other.restore(&ckpt).unwrap_err().to_string();
    assert!(
        err.contains("dense_0.weight") && err.contains("[64, 24]") && err.contains("[64, 32]"),
        "{err}"
    );
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn truncated_or_corrupted_files_are_clear_errors() {
    let dir = temp_dir("damaged");
    let path = dir.join("m.safetensors");
    let (x, y) = data();
    let mut m = model(ReferenceBackend::new(), Optimizer::adam(1e-3));
    m.fit(&x, &y, fit(1, 0)).unwrap();
    m.save(&path).unwrap();
    let bytes = std::fs::read(&path).unwrap();

    for cut in [0, 7, 100, bytes.len() / 2, bytes.len() - 1] {
        let err = Checkpoint::from_bytes(&bytes[..cut], "cut.safetensors")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("cut.safetensors") && err.contains("truncated or corrupted"),
            "cut at {cut}: {err}"
        );
    }
    // A flipped byte in the JSON header.
    let mut bad = bytes.clone();
    let brace = bad.iter().position(|&b| b == b'{').unwrap();
    bad[brace] = b'!';
    assert!(Checkpoint::from_bytes(&bad, "flipped").is_err());
    // A NaN written into the first weight.
    let mut nan = bytes.clone();
    let header = u64::from_le_bytes(nan[..8].try_into().unwrap()) as usize;
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let (start, _) = safetensors::SafeTensors::read_metadata(&bytes)
        .unwrap()
        .1
        .info("dense_0.weight")
        .unwrap()
        .data_offsets;
    drop(st);
    nan[8 + header + start..8 + header + start + 4].copy_from_slice(&f32::NAN.to_le_bytes());
    let err = Checkpoint::from_bytes(&nan, "nan").unwrap_err().to_string();
    assert!(err.contains("non-finite"), "{err}");
    // Not a checkpoint at all.
    let err = Checkpoint::from_bytes(b"label,x\n1,2\n", "data.csv")
        .unwrap_err()
        .to_string();
    assert!(err.contains("data.csv"), "{err}");
    let missing = Checkpoint::load(Path::new("/no/such/model.safetensors"))
        .unwrap_err()
        .to_string();
    assert!(missing.contains("/no/such/model.safetensors"), "{missing}");
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn model_checkpoint_saves_each_epoch_or_the_best() {
    let dir = temp_dir("modelcheckpoint");
    let (every, best) = (dir.join("every.safetensors"), dir.join("best.safetensors"));
    let (x, y) = data();
    let mut m = model(ReferenceBackend::new(), Optimizer::adam(1e-2));
    let config = fit(3, 0)
        .callback(ModelCheckpoint::every_epoch(&every))
        .callback(ModelCheckpoint::best_only(&best, "val_loss"));
    let history = m.fit(&x, &y, config).unwrap();
    assert_eq!(Checkpoint::load(&every).unwrap().epoch, 3);
    let val = history.get("val_loss").unwrap();
    let best_epoch = 1
        + (0..val.len())
            .min_by(|&a, &b| val[a].total_cmp(&val[b]))
            .unwrap();
    assert_eq!(Checkpoint::load(&best).unwrap().epoch, best_epoch);
    std::fs::remove_dir_all(dir).ok();
}

/// Two checkpoints that differ everywhere; the writer alternates between them. (Compared
/// parsed: safetensors writes the metadata map in a per-process order.)
fn variants() -> [Vec<u8>; 2] {
    let (x, y) = data();
    let mut m = classifier(ReferenceBackend::new(), &[512, 512], Optimizer::adam(1e-3));
    m.build(x.cols()).unwrap();
    let a = m.checkpoint().unwrap().to_bytes().unwrap();
    m.fit(
        &x.head(20),
        &y.head(20),
        FitConfig::epochs(1).batch_size(20).verbose(0),
    )
    .unwrap();
    let b = m.checkpoint().unwrap().to_bytes().unwrap();
    [a, b]
}

/// Run by `a_killed_writer_never_leaves_a_torn_file` in a child process: rewrites the file
/// in a loop until killed.
#[test]
#[ignore = "a helper: run as a child process by a_killed_writer_never_leaves_a_torn_file"]
fn writer_loop() {
    let Ok(path) = std::env::var("WGTRAIN_WRITER_PATH") else {
        return;
    };
    let v = variants();
    for i in 0.. {
        wgtrain::fs::write_atomic(Path::new(&path), &v[i % 2]).unwrap();
    }
}

#[test]
fn a_killed_writer_never_leaves_a_torn_file() {
    let dir = temp_dir("killed");
    let path = dir.join("model.safetensors");
    let want = variants().map(|b| Checkpoint::from_bytes(&b, "variant").unwrap());
    for round in 0..8 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--ignored", "--exact", "writer_loop", "--test-threads", "1"])
            .env("WGTRAIN_WRITER_PATH", &path)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(150 + 97 * round));
        child.kill().unwrap();
        child.wait().unwrap();
        if let Ok(bytes) = std::fs::read(&path) {
            let got = Checkpoint::from_bytes(&bytes, "after kill")
                .unwrap_or_else(|e| panic!("round {round}: torn file: {e}"));
            assert!(
                got == want[0] || got == want[1],
                "round {round}: the file is neither the old nor the new checkpoint"
            );
        }
    }
    assert!(
        path.exists(),
        "the writer never finished a single write in 8 rounds"
    );
    // Each leftover temporary file is a write the kill interrupted half-way.
    let interrupted = std::fs::read_dir(&dir).unwrap().count() - 1;
    eprintln!("{interrupted} of 8 kills interrupted a write in progress");
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn resuming_with_another_loss_or_optimizer_is_an_error() {
    let (x, y) = data();
    let mut m = model(ReferenceBackend::new(), Optimizer::adam(1e-3));
    m.fit(&x, &y, fit(1, 0)).unwrap();
    let ckpt = m.checkpoint().unwrap();
    let mut sgd = model(ReferenceBackend::new(), Optimizer::Sgd { lr: 0.1 });
    let err = sgd.restore(&ckpt).unwrap_err().to_string();
    assert!(err.contains("same optimizer"), "{err}");
    let mut other_loss = Sequential::new()
        .add(Dense::new(24, Activation::Relu))
        .add(Dense::new(10, Activation::Linear))
        .compile(
            ReferenceBackend::new(),
            Compile::new(LossFn::MeanSquaredError, Optimizer::adam(1e-3)),
        )
        .unwrap();
    let err = other_loss.restore(&ckpt).unwrap_err().to_string();
    assert!(err.contains("same loss"), "{err}");
}
