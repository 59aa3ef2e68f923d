//! The layer stack from the command line: the model trains on the digits to 95%,
//! saves, reloads with `evaluate` to the same accuracy, and `wgtrain summary` counts its
//! parameters as Keras does.

mod common;

use std::time::Duration;

use common::cli::{args, run_in, Scratch};

const LAYERS: &str = "64:prelu,dropout:0.2,batchnorm,maxout:32:2,32:selu";

fn json(out: &std::process::Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{e}: {text}"))
}

fn backend() -> &'static str {
    if common::gpu().is_some() {
        "gpu"
    } else {
        "cpu"
    }
}

#[test]
fn the_layer_stack_trains_saves_reloads_and_summarises() {
    let dir = Scratch::new("cli-layers");
    let limit = Duration::from_secs(600);
    // The built-in digits.
    let model = dir.path("builtin.safetensors");
    let report = json(&run_in(
        &dir.0,
        &args(&[
            "train",
            "--layers",
            LAYERS,
            "--l2",
            "1e-4",
            "--json",
            "--verbose",
            "0",
            "--backend",
            backend(),
            "--save",
            &model,
        ]),
        limit,
    ));
    let acc = report["test_accuracy"].as_f64().unwrap();
    assert!(acc >= 0.95, "test accuracy {acc}: {report}");
    // Keras' counts: Dense(64) 4,160; PReLU 64; Dropout 0; BatchNormalization 256 (128 not
    // trained); Maxout(32, 2) 2 × (64·32 + 32) = 4,160; Dense(32) 1,056; Dense(10) 330.
    let summary = json(&run_in(
        &dir.0,
        &args(&["summary", "--model", &model, "--json"]),
        limit,
    ));
    assert_eq!(summary["total_params"], 10026, "{summary}");
    assert_eq!(summary["trainable_params"], 9898);
    assert_eq!(summary["non_trainable_params"], 128);
    let per_layer: Vec<u64> = summary["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["params"].as_u64().unwrap())
        .collect();
    assert_eq!(per_layer, [4160, 64, 0, 256, 4160, 1056, 330]);
    let text = run_in(&dir.0, &args(&["summary", "--model", &model]), limit);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("maxout_0 (Maxout)") && text.contains("Total params: 10,026"),
        "{text}"
    );

    // The same digits split into files, so that evaluate sees the test rows train saw.
    let csv = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/digits.csv"),
    )
    .expect("../shared/data/digits.csv");
    let mut lines = csv.lines();
    let header = lines.next().unwrap();
    let rows: Vec<&str> = lines.collect();
    let (train_rows, test_rows) = rows.split_at(1437);
    let write = |name: &str, rows: &[&str]| {
        dir.write(name, format!("{header}\n{}\n", rows.join("\n")).as_bytes())
    };
    let (train, test) = (write("train.csv", train_rows), write("test.csv", test_rows));
    let model = dir.path("csv.safetensors");
    let report = json(&run_in(
        &dir.0,
        &args(&[
            "train",
            "--data",
            &train,
            "--test-data",
            &test,
            "--layers",
            LAYERS,
            "--l2",
            "1e-4",
            "--json",
            "--verbose",
            "0",
            "--backend",
            backend(),
            "--save",
            &model,
        ]),
        limit,
    ));
    let eval = json(&run_in(
        &dir.0,
        &args(&[
            "evaluate",
            "--model",
            &model,
            "--data",
            &test,
            "--json",
            "--backend",
            backend(),
        ]),
        limit,
    ));
    assert_eq!(eval["samples"], 360);
    assert_eq!(
        eval["accuracy"], report["test_accuracy"],
        "{eval} vs {report}"
    );
    assert!(report["test_accuracy"].as_f64().unwrap() >= 0.9, "{report}");
}

#[test]
fn summary_of_a_missing_or_foreign_file_is_a_clear_error() {
    let dir = Scratch::new("cli-summary");
    let out = run_in(
        &dir.0,
        &args(&["summary", "--model", "nope.safetensors"]),
        Duration::from_secs(60),
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("nope.safetensors"), "{err}");
    let junk = dir.write("junk.safetensors", b"not a checkpoint");
    let out = run_in(
        &dir.0,
        &args(&["summary", "--model", &junk]),
        Duration::from_secs(60),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("junk.safetensors"),
        "{err}"
    );
}

/// A CNN from the command line on the built-in digits (8×8×1, which they carry): trains,
/// saves, and `wgtrain summary` shows Keras' image shapes and counts; on a CSV it needs
/// `--input-shape`.
#[test]
fn a_cnn_trains_from_the_command_line_and_summarises() {
    let dir = Scratch::new("cli-cnn");
    let limit = Duration::from_secs(600);
    let model = dir.path("cnn.safetensors");
    let layers = "conv:16:3:same:relu,maxpool:2,conv:8:2:s2,flatten,32";
    let report = json(&run_in(
        &dir.0,
        &args(&[
            "train",
            "--layers",
            layers,
            "--epochs",
            "12",
            "--json",
            "--verbose",
            "0",
            "--backend",
            backend(),
            "--save",
            &model,
        ]),
        limit,
    ));
    let acc = report["test_accuracy"].as_f64().unwrap();
    assert!(acc >= 0.9, "test accuracy {acc}: {report}");
    // Conv2D(16, 3×3) on 1 channel: 160; MaxPooling2D: 0; Conv2D(8, 2×2) on 16: 520;
    // Flatten 2×2×8 = 32; Dense(32) 1,056; Dense(10) 330.
    let summary = json(&run_in(
        &dir.0,
        &args(&["summary", "--model", &model, "--json"]),
        limit,
    ));
    let per_layer: Vec<u64> = summary["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["params"].as_u64().unwrap())
        .collect();
    assert_eq!(per_layer, [160, 0, 520, 0, 1056, 330], "{summary}");
    let text = run_in(&dir.0, &args(&["summary", "--model", &model]), limit);
    let text = String::from_utf8_lossy(&text.stdout);
    for shape in [
        "(None, 8, 8, 16)",
        "(None, 4, 4, 16)",
        "(None, 2, 2, 8)",
        "(None, 32)",
    ] {
        assert!(text.contains(shape), "{shape} in\n{text}");
    }

    // Bad items and shapes are errors naming the flag and what to do.
    let rows: String = (0..20).map(|i| format!("{i},1,2,3,{}\n", i % 2)).collect();
    let csv = dir.write("t.csv", format!("a,b,c,d,label\n{rows}").as_bytes());
    let err = |extra: &[&str]| {
        let mut a = args(&["train", "--epochs", "1", "--backend", "reference"]);
        a.extend(args(&["--validation-split", "0"]));
        a.extend(extra.iter().map(|s| s.to_string()));
        let out = run_in(&dir.0, &a, limit);
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).to_string()
    };
    let e = err(&["--data", &csv, "--layers", "conv:2:1,flatten"]);
    assert!(e.contains("--input-shape"), "{e}");
    let e = err(&[
        "--data",
        &csv,
        "--layers",
        "conv:2:1,flatten",
        "--input-shape",
        "2,3,1",
    ]);
    assert!(
        e.contains("--input-shape") && e.contains("6 values") && e.contains("4"),
        "{e}"
    );
    let e = err(&[
        "--data",
        &csv,
        "--layers",
        "conv:2:3,flatten",
        "--input-shape",
        "2,2,1",
    ]);
    assert!(
        e.contains("conv2d_0") && e.contains("3×3") && e.contains("2×2"),
        "{e}"
    );
    let e = err(&["--layers", "conv:2:0"]);
    assert!(e.contains("kernel size") && e.contains("KHxKW"), "{e}");
    let e = err(&["--layers", "maxpool:2:relu,flatten"]);
    assert!(e.contains("pooling") && e.contains("relu"), "{e}");
    let e = err(&["--layers", "conv:4:3:s0"]);
    assert!(e.contains("stride"), "{e}");
}
