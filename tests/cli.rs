//! The `wgtrain` binary: the main job on the built-in data, its JSON, its files (bad input is
//! in tests/bad_input.rs, outputs under faults in tests/cli_safety.rs).

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

struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("wgtrain-cli-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn path(&self, file: &str) -> String {
        self.0.join(file).to_str().unwrap().to_string()
    }

    fn write(&self, file: &str, bytes: &[u8]) -> String {
        std::fs::write(self.0.join(file), bytes).unwrap();
        self.path(file)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.0).ok();
    }
}

fn json(o: &Output) -> serde_json::Value {
    assert!(o.status.success(), "{}", stderr(o));
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stdout)))
}

const QUICK: &[&str] = &[
    "--layers",
    "32",
    "--backend",
    "cpu",
    "--verbose",
    "0",
    "--json",
];

#[test]
fn save_evaluate_predict_and_resume() {
    let dir = TempDir::new("flow");
    let model = dir.path("m.safetensors");
    let history = dir.path("h.json");
    let train = |epochs: &str, extra: &[&str]| {
        let mut args = vec!["train", "--epochs", epochs];
        args.extend_from_slice(QUICK);
        args.extend_from_slice(extra);
        json(&wgtrain(&args))
    };
    let two = train("2", &["--save", &model, "--history", &history]);
    assert_eq!(two["epochs"], 2);
    let h: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&history).unwrap()).unwrap();
    assert_eq!(h["series"]["loss"].as_array().unwrap().len(), 2);

    // Resuming to 4 epochs gives exactly what 4 epochs in one go give, on the reference.
    let resumed = train("4", &["--resume", &model]);
    let straight = train("4", &[]);
    assert_eq!(
        (resumed["epochs"].clone(), resumed["epochs_run"].clone()),
        (4.into(), 2.into())
    );
    assert_eq!(
        resumed["test_loss"], straight["test_loss"],
        "{resumed} vs {straight}"
    );

    let eval = json(&wgtrain(&[
        "evaluate",
        "--model",
        &model,
        "--data",
        "data/digits.csv",
        "--backend",
        "cpu",
        "--json",
    ]));
    assert_eq!(eval["samples"], 1797);
    assert!(
        eval["loss"].as_f64().unwrap() > 0.0 && eval["accuracy"].as_f64().unwrap() > 0.5,
        "{eval}"
    );

    let out = dir.path("p.csv");
    let pred = json(&wgtrain(&[
        "predict",
        "--model",
        &model,
        "--data",
        "data/digits.csv",
        "--out",
        &out,
        "--backend",
        "cpu",
        "--json",
    ]));
    assert_eq!(pred["rows"], 1797);
    let text = std::fs::read_to_string(&out).unwrap();
    let mut lines = text.lines();
    assert!(lines.next().unwrap().starts_with("class,p_0,p_1"));
    assert_eq!(lines.count(), 1797);

    // Features without a label column predict too.
    let features: String = std::fs::read_to_string("data/digits.csv")
        .unwrap()
        .lines()
        .take(4)
        .map(|l| l.rsplit_once(',').unwrap().0.to_string() + "\n")
        .collect();
    let f = dir.write("features.csv", features.as_bytes());
    let p = json(&wgtrain(&[
        "predict",
        "--model",
        &model,
        "--data",
        &f,
        "--backend",
        "cpu",
        "--json",
    ]));
    assert_eq!(p["predictions"].as_array().unwrap().len(), 3);
}

/// `wgtrain predict ... | head -1`: the reader closing the pipe early is not a panic.
#[test]
fn a_closed_output_pipe_is_not_a_panic() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let dir = TempDir::new("pipe");
    let model = dir.path("m.safetensors");
    assert!(wgtrain(&[
        "train",
        "--epochs",
        "1",
        "--layers",
        "8",
        "--backend",
        "cpu",
        "--verbose",
        "0",
        "--save",
        &model
    ])
    .status
    .success());
    let mut child = Command::new(env!("CARGO_BIN_EXE_wgtrain"))
        .args([
            "predict",
            "--model",
            &model,
            "--data",
            "data/digits.csv",
            "--backend",
            "cpu",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.starts_with("class,p_0"), "{first}");
    // The reader (and so the pipe) is gone now.
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert!(out.status.success(), "{err}");
}

/// `--data DIR` with MNIST-style IDX files (some gzipped) trains on the train split, reports
/// accuracy on t10k, and `predict` reads the folder too.
#[test]
fn an_idx_folder_trains_and_tests_on_its_own_splits() {
    use std::io::Write;
    let dir = TempDir::new("idx");
    // 4×4 "images" whose label is the brightest quadrant: learnable in a few epochs.
    let make = |n: usize, seed: u64| {
        let mut images = vec![0, 0, 8, 3];
        [n as u32, 4, 4]
            .iter()
            .for_each(|d| images.extend_from_slice(&d.to_be_bytes()));
        let mut labels = vec![0, 0, 8, 1];
        labels.extend_from_slice(&(n as u32).to_be_bytes());
        let mut state = seed;
        for _ in 0..n {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let label = (state >> 33) % 4;
            for r in 0..4 {
                for c in 0..4 {
                    let quadrant = (r / 2) * 2 + c / 2;
                    images.push(if quadrant == label as usize { 200 } else { 30 });
                }
            }
            labels.push(label as u8);
        }
        (images, labels)
    };
    let gz = |bytes: &[u8]| {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    };
    let (train_images, train_labels) = make(400, 1);
    let (test_images, test_labels) = make(100, 2);
    dir.write("train-images-idx3-ubyte.gz", &gz(&train_images));
    dir.write("train-labels-idx1-ubyte", &train_labels);
    dir.write("t10k-images-idx3-ubyte", &test_images);
    dir.write("t10k-labels-idx1-ubyte.gz", &gz(&test_labels));
    let folder = dir.0.to_str().unwrap().to_string();
    let model = dir.path("m.safetensors");
    let report = json(&wgtrain(&[
        "train",
        "--data",
        &folder,
        "--layers",
        "16",
        "--epochs",
        "10",
        "--lr",
        "0.01",
        "--backend",
        "cpu",
        "--verbose",
        "0",
        "--json",
        "--save",
        &model,
    ]));
    assert!(report["test_accuracy"].as_f64().unwrap() > 0.9, "{report}");
    let eval = json(&wgtrain(&[
        "evaluate",
        "--model",
        &model,
        "--data",
        &folder,
        "--backend",
        "cpu",
        "--json",
    ]));
    assert_eq!(eval["samples"], 100);
    assert_eq!(eval["accuracy"], report["test_accuracy"]);
    let pred = json(&wgtrain(&[
        "predict",
        "--model",
        &model,
        "--data",
        &folder,
        "--backend",
        "cpu",
        "--json",
    ]));
    assert_eq!(pred["rows"], 100);
}

/// `wgtrain bench --json`: the adapter and one validated measurement per workload.
#[test]
fn bench_reports_the_adapter_and_each_workload() {
    let gpu = common::gpu().is_some();
    let backend = if gpu { "gpu" } else { "cpu" };
    let out = json(&wgtrain(&[
        "bench",
        "--workload",
        "MM-S",
        "--repeats",
        "1",
        "--backend",
        backend,
        "--json",
    ]));
    let results = out["results"].as_array().unwrap();
    assert_eq!(results.len(), if gpu { 2 } else { 1 }, "{out}");
    for r in results {
        assert_eq!(r["workload"], "MM-S");
        assert!(
            r["gflops"].as_f64().unwrap() > 0.0 && r["ms_per_step"].as_f64().unwrap() > 0.0,
            "{r}"
        );
        assert_eq!(r["flops_per_step"], 2.0 * 128f64.powi(3));
    }
    if gpu {
        for key in ["name", "backend", "device_type", "driver"] {
            assert!(
                out["adapter"][key].is_string(),
                "adapter.{key} missing: {out}"
            );
        }
    }
    let err = stderr(&wgtrain(&["bench", "--workload", "MM-XL"]));
    assert!(
        err.contains("unknown workload `MM-XL`") && err.contains("MLP-A"),
        "{err}"
    );
}

/// `wgtrain bench --backend cpu` on a training workload: the machine's SGEMM rate beside the
/// rows, and the timed epochs (two, of one `fit`) with a loss that fell.
#[test]
fn bench_on_the_cpu_backend_trains_and_rates_the_machine() {
    let out = json(&wgtrain(&[
        "bench",
        "--backend",
        "cpu",
        "--workload",
        "MLP-B",
        "--repeats",
        "2",
        "--no-reference",
        "--json",
    ]));
    assert!(out["sgemm"]["gflops"].as_f64().unwrap() > 0.0, "{out}");
    let results = out["results"].as_array().unwrap();
    assert_eq!(results.len(), 1, "{out}");
    let r = &results[0];
    assert_eq!(r["workload"], "MLP-B");
    assert!(r["backend"].as_str().unwrap().starts_with("cpu"), "{r}");
    let (first, last) = (
        r["first_loss"].as_f64().unwrap(),
        r["final_loss"].as_f64().unwrap(),
    );
    assert!(last < first && last < 10f64.ln(), "{r}");
    assert!(r["samples_per_sec"].as_f64().unwrap() > 0.0, "{r}");
}

/// With `WGTRAIN_TUNE_CACHE` set, the matmul tilings autotuned in one process are written to
/// that file (one line per shape class, for this adapter) and read by the next, which then
/// tunes nothing and leaves the file as it was; lines that do not parse are retuned, not
/// errors.
#[test]
fn the_autotune_cache_file_carries_tunings_across_processes() {
    if common::gpu().is_none() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("wgtrain-tune-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cache = dir.join("tune.tsv");
    let run = || {
        let out = Command::new(env!("CARGO_BIN_EXE_wgtrain"))
            .args(["bench", "--workload", "MM-S", "--repeats", "1"])
            .args(["--backend", "gpu", "--no-reference", "--json"])
            .env("WGTRAIN_TUNE_CACHE", &cache)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
    };
    run();
    let first = std::fs::read_to_string(&cache).expect("the cache was written");
    let lines: Vec<&str> = first.lines().collect();
    assert_eq!(lines.len(), 1, "one shape class (128×128×128): {first}");
    assert_eq!(lines[0].split('\t').count(), 3, "{first}");
    assert!(lines[0].contains("128 128 128 0 0"), "{first}");
    let modified = std::fs::metadata(&cache).unwrap().modified().unwrap();
    run();
    assert_eq!(std::fs::read_to_string(&cache).unwrap(), first);
    assert_eq!(
        std::fs::metadata(&cache).unwrap().modified().unwrap(),
        modified,
        "a second process found the tiling and rewrote nothing"
    );
    std::fs::write(&cache, "garbage\nmore\tgarbage\n").unwrap();
    run();
    let rewritten = std::fs::read_to_string(&cache).unwrap();
    assert!(rewritten.contains("128 128 128 0 0"), "{rewritten}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `--backend auto` with the adapters narrowed by `WGTRAIN_ADAPTER`: the choice and its reason
/// in `--json` and on stderr.
fn auto_with_adapter(filter: &str) -> (serde_json::Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_wgtrain"))
        .args(["train", "--json", "--verbose", "0", "--epochs", "2"])
        .env("WGTRAIN_ADAPTER", filter)
        .output()
        .expect("the binary runs");
    (json(&out), stderr(&out))
}

#[test]
fn auto_picks_the_cpu_backend_where_no_adapter_matches() {
    let (report, err) = auto_with_adapter("no adapter is called this");
    assert_eq!(report["backend"], "cpu", "{report}");
    let why = report["backend_reason"].as_str().unwrap();
    assert!(why.contains("no GPU adapter"), "{why}");
    assert!(
        report["adapter"].as_str().unwrap().starts_with("cpu ("),
        "{report}"
    );
    assert!(err.contains("backend: cpu (--backend auto)"), "{err}");
}

#[test]
fn auto_prefers_the_cpu_backend_to_a_software_adapter() {
    // lavapipe is the adapter of this suite's GPU tests where there is no GPU; where there
    // is a real one, narrowing to lavapipe finds nothing unless Mesa is installed too.
    let Some(g) = common::gpu() else { return };
    let software = g.context().adapter().device_type == "Cpu";
    let name = g.context().adapter().name.clone();
    if !software {
        return;
    }
    let (report, err) = auto_with_adapter(&name);
    assert_eq!(report["backend"], "cpu", "{report}");
    let why = report["backend_reason"].as_str().unwrap();
    assert!(why.contains("software") && why.contains(&name), "{why}");
    assert!(
        err.contains("backend: cpu (--backend auto): the only GPU adapter is a software one"),
        "{err}"
    );
}
