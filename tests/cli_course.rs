//! The command line reaches what the library has: metrics with arguments, the decision
//! threshold, early stopping with the best weights restored, the output activation, the
//! kernel initializer, and the diagnosis after every fit, each in `--json`.

mod common;

use std::time::Duration;

use common::cli::{args, run_in, Scratch};

/// `wgtrain train` on the reference, quietly, with `fixed` then `extra` flags.
fn command(fixed: &[&str], extra: &[&str]) -> Vec<String> {
    let mut a = args(&["train", "--backend", "cpu", "--verbose", "0"]);
    a.extend(fixed.iter().chain(extra).map(|s| s.to_string()));
    a
}

fn train(dir: &Scratch, extra: &[&str]) -> (serde_json::Value, String) {
    let a = command(&["--json", "--layers", "16"], extra);
    let out = run_in(&dir.0, &a, Duration::from_secs(300));
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{a:?}: {stderr}");
    (serde_json::from_slice(&out.stdout).unwrap(), stderr)
}

/// `wgtrain predict` on the reference with `model` and `data`, then `extra` flags.
fn predict(dir: &Scratch, model: &str, data: &str, extra: &[&str]) -> std::process::Output {
    let fixed = [
        "predict",
        "--backend",
        "cpu",
        "--model",
        model,
        "--data",
        data,
    ];
    run_in(
        &dir.0,
        &args(&[&fixed[..], extra].concat()),
        Duration::from_secs(120),
    )
}

fn fails(dir: &Scratch, extra: &[&str], says: &str) {
    let a = command(&["--epochs", "1"], extra);
    let out = run_in(&dir.0, &a, Duration::from_secs(120));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{a:?} succeeded");
    assert!(stderr.contains(says), "{a:?}: {stderr}");
}

#[test]
fn metrics_with_arguments_have_keras_keys() {
    let dir = Scratch::new("course-metrics");
    let (r, _) = train(
        &dir,
        &[
            "--epochs",
            "3",
            "--metrics",
            "accuracy,sparse_top_k_categorical_accuracy:2,f1_score,sparse_categorical_crossentropy",
        ],
    );
    for key in [
        "test_accuracy",
        "test_sparse_top_k_categorical_accuracy",
        "test_f1_score",
        "test_sparse_categorical_crossentropy",
    ] {
        assert!(r[key].is_number(), "{key}: {r}");
    }
    // The cross-entropy metric is the loss itself, computed apart.
    let (ce, loss) = (
        r["test_sparse_categorical_crossentropy"].as_f64().unwrap(),
        r["test_loss"].as_f64().unwrap(),
    );
    assert!((ce - loss).abs() < 1e-4 * loss.max(1.0), "{ce} vs {loss}");
    let top2 = r["test_sparse_top_k_categorical_accuracy"]
        .as_f64()
        .unwrap();
    assert!(top2 >= r["test_accuracy"].as_f64().unwrap(), "{r}");
}

/// A yes/no CSV: the label is whether x0 + x1 > 1.
fn yes_no_csv(dir: &Scratch) -> String {
    let mut csv = String::from("x0,x1,label\n");
    for i in 0..200 {
        let (a, b) = ((i * 37 % 100) as f32 / 100.0, (i * 61 % 100) as f32 / 100.0);
        csv += &format!("{a},{b},{}\n", (a + b > 1.0) as u8);
    }
    dir.write("yes_no.csv", csv.as_bytes())
}

#[test]
fn the_threshold_moves_the_binary_counts() {
    let dir = Scratch::new("course-threshold");
    let data = yes_no_csv(&dir);
    let metrics = "true_positives,false_positives,precision_at_recall:0.5";
    let common = [
        "--data",
        &data,
        "--loss",
        "binary_crossentropy",
        "--epochs",
        "5",
        "--metrics",
        metrics,
    ];
    let (low, _) = train(&dir, &[&common[..], &["--threshold", "0.05"]].concat());
    let (high, _) = train(&dir, &[&common[..], &["--threshold", "0.95"]].concat());
    let tp = |r: &serde_json::Value| r["test_true_positives"].as_f64().unwrap();
    let fp = |r: &serde_json::Value| r["test_false_positives"].as_f64().unwrap();
    // A lower threshold says yes more often: at least as many true and false positives.
    assert!(
        tp(&low) >= tp(&high) && fp(&low) >= fp(&high),
        "{low}\n{high}"
    );
    assert!(tp(&low) + fp(&low) > tp(&high) + fp(&high), "{low}\n{high}");
    assert!(high["test_precision_at_recall"].is_number());
    fails(
        &dir,
        &["--data", &data, "--threshold", "1.5"],
        "--threshold",
    );
    fails(
        &dir,
        &["--metrics", "precision_at_recall"],
        "needs the recall",
    );
    fails(
        &dir,
        &["--metrics", "top_k_categorical_accuracy"],
        "sparse_top_k_categorical_accuracy",
    );
    let twice = [
        "--data",
        &data,
        "--loss",
        "binary_crossentropy",
        "--metrics",
        "recall,recall:0.3",
    ];
    fails(&dir, &twice, "asked for twice");
}

#[test]
fn early_stopping_restores_the_best_epoch_and_the_diagnosis_is_reported() {
    let dir = Scratch::new("course-early");
    let (r, stderr) = train(
        &dir,
        &[
            "--epochs",
            "300",
            "--lr",
            "0.01",
            "--early-stopping",
            "2",
            "--restore-best",
            "--monitor",
            "val_loss",
        ],
    );
    assert!(r["epochs_run"].as_u64().unwrap() < 300, "{r}");
    assert!(
        r["stopped_early"]
            .as_str()
            .unwrap()
            .contains("did not improve"),
        "{r}"
    );
    assert!(stderr.is_empty() || !stderr.contains("error"), "{stderr}");
    let d = &r["diagnosis"];
    let verdicts = ["underfitting", "overfitting", "good_fit", "too_few_epochs"];
    assert!(verdicts.contains(&d["verdict"].as_str().unwrap()), "{d}");
    assert!(
        d["generalization_gap"].is_number() && d["reason"].is_string(),
        "{d}"
    );
    // Early stopping waited `patience` epochs past the best one.
    assert_eq!(
        d["best_epoch"].as_u64().unwrap() + 2,
        r["epochs_run"].as_u64().unwrap(),
        "{r}"
    );
    fails(&dir, &["--restore-best"], "--early-stopping");
    fails(&dir, &["--monitor", "val_loss"], "--early-stopping");
}

#[test]
fn the_output_activation_and_the_kernel_initializer() {
    let dir = Scratch::new("course-layers");
    let save = dir.path("m.safetensors");
    let (r, _) = train(
        &dir,
        &[
            "--epochs",
            "10",
            "--lr",
            "0.01",
            "--output-activation",
            "softmax",
            "--kernel-initializer",
            "he_normal",
            "--save",
            &save,
        ],
    );
    assert!(r["test_accuracy"].as_f64().unwrap() > 0.5, "{r}");
    // The saved model predicts: one value per class for each row.
    let digits = yes_no_free_digits(&dir);
    let out = predict(&dir, &save, &digits, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let first = String::from_utf8_lossy(&out.stdout)
        .lines()
        .nth(1)
        .unwrap()
        .to_string();
    let probs: Vec<f64> = first.split(',').filter_map(|v| v.parse().ok()).collect();
    assert!(probs.len() >= 10, "{first}");
    // A wgtrain checkpoint records its activations: predict's PyTorch flags do not apply.
    let out = predict(&dir, &save, &digits, &["--activation", "tanh"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("applies to a PyTorch state_dict"),
        "{stderr}"
    );
    // A tiny start learns too: the course's ×0.01.
    train(
        &dir,
        &[
            "--epochs",
            "1",
            "--kernel-initializer",
            "random_normal:0.01",
        ],
    );
    fails(
        &dir,
        &["--output-activation", "sigmoid"],
        "--output-activation sigmoid",
    );
    fails(&dir, &["--output-activation", "nope"], "unknown activation");
    fails(
        &dir,
        &["--kernel-initializer", "random_uniform:1,0"],
        "minval < maxval",
    );
}

/// A few digits as a CSV of features only, to predict on.
fn yes_no_free_digits(dir: &Scratch) -> String {
    let (x, _) = wgtrain::data::digits_unscaled();
    let mut csv = (0..64)
        .map(|i| format!("p{i}"))
        .collect::<Vec<_>>()
        .join(",")
        + "\n";
    for r in 0..5 {
        csv += &x
            .row(r)
            .iter()
            .map(|v| v.to_string())
            .collect::<Vec<_>>()
            .join(",");
        csv += "\n";
    }
    dir.write("digits.csv", csv.as_bytes())
}

/// Digits rows `rows` as a labelled CSV named `name`.
fn digits_csv(dir: &Scratch, name: &str, rows: std::ops::Range<usize>, features: usize) -> String {
    let (x, y) = wgtrain::data::digits_unscaled();
    let mut csv = (0..features)
        .map(|i| format!("p{i}"))
        .collect::<Vec<_>>()
        .join(",")
        + ",label\n";
    for r in rows {
        let row: Vec<String> = x.row(r)[..features].iter().map(|v| v.to_string()).collect();
        csv += &format!("{},{}\n", row.join(","), y.data()[r]);
    }
    dir.write(name, csv.as_bytes())
}

#[test]
fn validation_data_replaces_the_validation_split() {
    let dir = Scratch::new("course-validation");
    let train_csv = digits_csv(&dir, "train.csv", 0..1000, 64);
    let val_csv = digits_csv(&dir, "val.csv", 1000..1300, 64);
    let (r, _) = train(
        &dir,
        &[
            "--data",
            &train_csv,
            "--validation-data",
            &val_csv,
            "--epochs",
            "4",
            "--standardize",
        ],
    );
    assert!(r["val_loss"].is_number(), "{r}");
    assert!(r["diagnosis"]["generalization_gap"].is_number(), "{r}");
    // Every one of the 800 training rows (1000 less the 20% test split) trains: none is held out.
    let per_epoch =
        r["samples_per_sec"].as_f64().unwrap() * r["train_seconds"].as_f64().unwrap() / 4.0;
    assert!((per_epoch - 800.0).abs() < 1.0, "{per_epoch}");
    let narrow = digits_csv(&dir, "narrow.csv", 1000..1100, 60);
    fails(
        &dir,
        &["--data", &train_csv, "--validation-data", &narrow],
        "feature columns",
    );
    fails(
        &dir,
        &[
            "--data",
            &train_csv,
            "--validation-data",
            dir.0.to_str().unwrap(),
        ],
        "is a folder",
    );
}

#[test]
fn several_label_columns_train_a_multi_label_model() {
    let dir = Scratch::new("course-multilabel");
    // Three yes/no labels of two features: x0 > 0.5, x1 > 0.5, x0 + x1 > 1.
    let mut csv = String::from("x0,a,x1,b,c\n");
    for i in 0..300 {
        let (x0, x1) = ((i * 37 % 100) as f32 / 100.0, (i * 61 % 100) as f32 / 100.0);
        let (a, b, c) = ((x0 > 0.5) as u8, (x1 > 0.5) as u8, (x0 + x1 > 1.0) as u8);
        csv += &format!("{x0},{a},{x1},{b},{c}\n");
    }
    let data = dir.write("multi.csv", csv.as_bytes());
    let save = dir.path("m.safetensors");
    let (r, _) = train(
        &dir,
        &[
            "--data",
            &data,
            "--label-column",
            "a,b,c",
            "--epochs",
            "40",
            "--lr",
            "0.01",
            "--metrics",
            "binary_accuracy,f1_score",
            "--save",
            &save,
        ],
    );
    assert_eq!(r["loss_function"], "binary_crossentropy", "{r}");
    assert!(
        r["loss_reason"].as_str().unwrap().contains("multi-label"),
        "{r}"
    );
    assert!(r["test_binary_accuracy"].as_f64().unwrap() > 0.85, "{r}");
    // Predict drops the three label columns and gives three probabilities per row.
    let out = predict(&dir, &save, &data, &["--label-column", "a,b,c"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let row: Vec<f64> = text
        .lines()
        .nth(1)
        .unwrap()
        .split(',')
        .filter_map(|v| v.parse().ok())
        .collect();
    assert!(
        row.len() >= 3 && row.iter().all(|p| (0.0..=1.0).contains(p)),
        "{text}"
    );
    fails(
        &dir,
        &["--data", &data, "--label-column", "a,a"],
        "named twice",
    );
    fails(
        &dir,
        &["--data", &data, "--label-column", "a,zz"],
        "no column named `zz`",
    );
    fails(
        &dir,
        &[
            "--data",
            &data,
            "--label-column",
            "a,b",
            "--loss",
            "sparse_categorical_crossentropy",
        ],
        "binary_crossentropy",
    );
}
