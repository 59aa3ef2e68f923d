//! Random combinations of flags and small files, good and bad: whatever the CLI makes of
//! them, it ends with an exit code (0 or an error), never a panic (101), a signal or a hang.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::cli::{run_in, train_small};
use proptest::prelude::*;
use proptest::sample::Index;

/// Files shared by every case: inputs of every kind, made once.
struct Pool {
    dir: PathBuf,
    inputs: Vec<String>,
}

fn make_pool() -> Pool {
    {
        let dir = std::env::temp_dir().join(format!("wgtrain-proptest-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("folder")).unwrap();
        let write = |name: &str, bytes: &[u8]| {
            std::fs::write(dir.join(name), bytes).unwrap();
            dir.join(name).to_str().unwrap().to_string()
        };
        let digits =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/data/digits.csv"))
                .unwrap();
        let small: String = digits.lines().take(101).map(|l| format!("{l}\n")).collect();
        let features: String = small
            .lines()
            .map(|l| l.rsplit_once(',').unwrap().0.to_string() + "\n")
            .collect();
        let mut inputs = vec![
            write("small.csv", small.as_bytes()),
            write("features.csv", features.as_bytes()),
            write("ragged.csv", b"a,b,label\n1,2,0\n3\n"),
            write("empty.csv", b""),
            write("binary.csv", &[0, 159, 146, 150, 255, 10]),
            write(
                "regression.csv",
                b"x,y\n0,0.5\n1,1.5\n2,2.5\n3,3.5\n4,4.5\n5,5.5\n",
            ),
            write("labels.csv", b"a,label\n1,0\n2,1\n3,0\n4,1\n5,2\n6,7\n"),
            dir.join("folder").to_str().unwrap().to_string(),
            "/no/such/file.csv".to_string(),
            "/dev/null".to_string(),
        ];
        let model = dir.join("model.safetensors").to_str().unwrap().to_string();
        let o = train_small(&dir, &model, &[]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let bytes = std::fs::read(&model).unwrap();
        inputs.push(write("cut.safetensors", &bytes[..bytes.len() / 3]));
        inputs.push(model);
        Pool { dir, inputs }
    }
}

/// A flag and the values it is tried with (`@in`: an input file; `@out`: an output name).
const FLAGS: &[(&str, &[&str])] = &[
    ("--data", &["@in"]),
    ("--test-data", &["@in"]),
    ("--model", &["@in"]),
    ("--resume", &["@in"]),
    (
        "--label-column",
        &["label", "0", "99", "nope", "pixel_0_0", "-1"],
    ),
    (
        "--layers",
        &["8", "0", "4,4", "", "1", "100000000", "-1", "x"],
    ),
    ("--activation", &["relu", "softmax", "tanh", "nope"]),
    (
        "--loss",
        &[
            "auto",
            "mse",
            "sparse_categorical_crossentropy",
            "categorical_crossentropy",
            "binary_crossentropy",
            "huber",
            "nope",
        ],
    ),
    ("--optimizer", &["adam", "sgd", "momentum", "adamw", "nope"]),
    (
        "--lr",
        &["0.01", "0", "-1", "1e30", "1e39", "nan", "inf", "x"],
    ),
    ("--epochs", &["0", "1", "2", "-1", "x"]),
    ("--batch-size", &["0", "1", "7", "100000", "-1"]),
    (
        "--validation-split",
        &["0", "0.5", "0.99", "1", "-0.1", "nan"],
    ),
    ("--test-split", &["0", "0.5", "0.99", "1", "2"]),
    (
        "--metrics",
        &[
            "accuracy",
            "mse",
            "auc",
            "precision,recall",
            "nope",
            "top_k_categorical_accuracy",
            "sparse_top_k_categorical_accuracy:3",
            "precision_at_recall:0.9",
            "precision_at_recall",
            "true_positives:2",
            "f1_score:0.3,kl_divergence",
        ],
    ),
    ("--threshold", &["0.3", "1", "-0.5", "x"]),
    ("--early-stopping", &["0", "2", "-1"]),
    ("--restore-best", &[]),
    (
        "--output-activation",
        &["linear", "softmax", "sigmoid", "relu", "x"],
    ),
    (
        "--kernel-initializer",
        &[
            "he_normal",
            "random_normal:0.01",
            "random_uniform:1,0",
            "constant",
            "x",
        ],
    ),
    ("--seed", &["0", "1", "-1", "18446744073709551615"]),
    ("--verbose", &["0", "1", "2", "9"]),
    ("--save", &["@out"]),
    ("--save-mode", &["end", "epoch", "best", "x"]),
    ("--monitor", &["loss", "val_loss", "nope"]),
    ("--history", &["@out"]),
    ("--plot", &["@out"]),
    ("--out", &["@out", "-"]),
    ("--standardize", &[]),
    ("--json", &[]),
];

/// Output names, in the case's own folder, or an input's path.
const OUTPUTS: &[&str] = &[
    "m.safetensors",
    "h.csv",
    "h.json",
    "p.png",
    "p.svg",
    "p.jpg",
    "x",
    "folder/",
    "@in",
];

fn command(pool: &Pool, sub: usize, flags: &[(usize, Index)], out_dir: &str) -> Vec<String> {
    let mut args = vec![
        ["train", "evaluate", "predict"][sub].to_string(),
        "--backend".into(),
        "cpu".into(),
    ];
    if sub == 0 {
        // Short runs: one small epoch unless a flag says otherwise.
        let given = |f: &str| flags.iter().any(|(i, _)| FLAGS[*i].0 == f);
        if !given("--epochs") {
            args.extend(["--epochs".into(), "1".into()]);
        }
        if !given("--layers") {
            args.extend(["--layers".into(), "8".into()]);
        }
    }
    for (i, pick) in flags {
        let (flag, values) = FLAGS[*i];
        args.push(flag.to_string());
        if values.is_empty() {
            continue;
        }
        let value = match *pick.get(values) {
            "@in" => pick.get(&pool.inputs).clone(),
            "@out" => match *pick.get(OUTPUTS) {
                "@in" => pick.get(&pool.inputs).clone(),
                name => format!("{out_dir}/{name}"),
            },
            v => v.to_string(),
        };
        args.push(value);
    }
    args
}

/// 256 random commands; the fixtures are removed at the end, whatever happened.
#[test]
fn random_flags_and_files_never_panic() {
    use proptest::test_runner::{Config, TestRunner};
    let pool = make_pool();
    let mut runner = TestRunner::new(Config {
        cases: 256,
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = (
        0..3usize,
        prop::collection::vec((0..FLAGS.len(), any::<Index>()), 0..7),
        any::<u64>(),
    );
    let (ok, failed) = (std::cell::Cell::new(0), std::cell::Cell::new(0));
    let result = runner.run(&strategy, |(sub, flags, case)| {
        let out_dir = pool.dir.join(format!("case-{case:016x}"));
        std::fs::create_dir_all(out_dir.join("folder")).unwrap();
        let args = command(&pool, sub, &flags, out_dir.to_str().unwrap());
        let o = run_in(&pool.dir, &args, Duration::from_secs(60));
        let err = String::from_utf8_lossy(&o.stderr);
        std::fs::remove_dir_all(&out_dir).ok();
        let count = if o.status.success() { &ok } else { &failed };
        count.set(count.get() + 1);
        prop_assert!(
            o.status.code().is_some(),
            "{args:?} died by a signal: {err}"
        );
        prop_assert_ne!(o.status.code(), Some(101), "{:?} panicked: {}", args, err);
        prop_assert!(!err.contains("panicked"), "{args:?}: {err}");
        Ok(())
    });
    std::fs::remove_dir_all(&pool.dir).ok();
    result.unwrap();
    // Not a test of the generator, but a note in the log of how much of it ran a job.
    eprintln!(
        "random commands: {} succeeded, {} failed cleanly",
        ok.get(),
        failed.get()
    );
}
