//! The `wgtrain` binary: the main job on the built-in data, its JSON, and bad input.

mod common;

use std::process::{Command, Output};

fn wgtrain(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wgtrain"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `wgtrain train` with no data arguments trains the default MLP on the built-in digits and
/// reaches at least 95% test accuracy, on the GPU when there is one.
#[test]
fn the_main_job_reaches_95_percent_on_digits() {
    let gpu = common::gpu().is_some();
    let backend = if gpu { "gpu" } else { "cpu" };
    let out = wgtrain(&["train", "--json", "--verbose", "0", "--backend", backend]);
    assert!(out.status.success(), "{}", stderr(&out));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let report: serde_json::Value =
        serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    for key in [
        "backend",
        "adapter",
        "epochs",
        "train_loss",
        "val_loss",
        "test_accuracy",
        "samples_per_sec",
        "seconds",
    ] {
        assert!(report.get(key).is_some(), "missing `{key}` in {report}");
    }
    assert_eq!(report["backend"], backend);
    assert_eq!(report["epochs"], 30);
    let acc = report["test_accuracy"].as_f64().unwrap();
    assert!(acc >= 0.95, "test accuracy {acc}: {report}");
    assert!(report["samples_per_sec"].as_f64().unwrap() > 0.0);
}

#[test]
fn a_csv_regression_job_reports_its_test_metric() {
    let dir = std::env::temp_dir().join(format!("wgtrain-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("line.csv");
    let mut text = String::from("x,noise,y\n");
    for i in 0..200 {
        let x = i as f32 / 200.0;
        text += &format!("{x},{},{}\n", (i % 7) as f32 / 7.0, 3.0 * x - 1.0);
    }
    std::fs::write(&path, text).unwrap();
    let out = wgtrain(&[
        "train",
        "--data",
        path.to_str().unwrap(),
        "--label-column",
        "y",
        "--layers",
        "8",
        "--epochs",
        "30",
        "--lr",
        "0.01",
        "--backend",
        "cpu",
        "--json",
        "--verbose",
        "0",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["loss_function"], "mean_squared_error");
    assert!(
        report["test_mean_absolute_error"].as_f64().unwrap() < 0.3,
        "{report}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bad_arguments_fail_with_a_message_and_no_panic() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["train", "--data", "/no/such/file.csv"],
            "/no/such/file.csv",
        ),
        (&["train", "--activation", "relu6"], "valid: linear, relu"),
        (&["train", "--loss", "cross"], "valid: mse"),
        (&["train", "--optimizer", "adagrad"], "valid: adam"),
        (
            &["train", "--batch-size", "0", "--backend", "cpu"],
            "batch size",
        ),
        (&["train", "--epochs", "0", "--backend", "cpu"], "epochs"),
        (
            &["train", "--metrics", "f1", "--backend", "cpu"],
            "unknown metric `f1`",
        ),
        (
            &[
                "train",
                "--label-column",
                "nope",
                "--data",
                "data/digits.csv",
            ],
            "no column named `nope`",
        ),
    ];
    for (args, want) in cases {
        let out = wgtrain(args);
        let err = stderr(&out);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(err.contains(want), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}
