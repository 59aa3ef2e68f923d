//! The README's promise, held for every bad input we know of: the CLI fails with a message
//! that names the flag or the file (and says what is wrong), exits non-zero without a panic
//! (101) or a signal, keeps its message short, and creates, changes or removes no file.
//!
//! Every case runs in one folder of fixtures that holds, besides the inputs, outputs from an
//! earlier run (`existing.*`) that cases point their outputs at; the whole folder is compared
//! byte for byte before and after each case.

#![cfg(unix)]

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::cli::{run_in, train_small, Scratch};

/// Every file below `dir` with a hash of its contents (special files by their kind alone:
/// reading a FIFO would block).
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let path = e.path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let what = if meta.is_dir() {
                stack.push(path.clone());
                "dir".to_string()
            } else if meta.is_file() {
                let bytes = std::fs::read(&path).unwrap();
                format!("{} bytes, crc {:08x}", bytes.len(), crc32fast::hash(&bytes))
            } else if meta.file_type().is_symlink() {
                format!("link to {:?}", std::fs::read_link(&path).unwrap())
            } else {
                "special".to_string()
            };
            out.insert(path.strip_prefix(dir).unwrap().to_path_buf(), what);
        }
    }
    out
}

/// Writes a CSV file of `header` and `rows` into `f`; returns its path.
fn csv(f: &Scratch, name: &str, header: &str, rows: impl IntoIterator<Item = String>) -> String {
    let mut text = format!("{header}\n");
    for r in rows {
        text += &r;
        text += "\n";
    }
    f.write(name, text.as_bytes())
}

fn idx(magic: [u8; 4], dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut b = magic.to_vec();
    dims.iter()
        .for_each(|d| b.extend_from_slice(&d.to_be_bytes()));
    b.extend_from_slice(data);
    b
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// A copy of a safetensors file with its `wgtrain.config` metadata edited by `edit`.
fn with_config(bytes: &[u8], edit: impl Fn(&mut serde_json::Value)) -> Vec<u8> {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let meta = &mut header["__metadata__"];
    let mut config: serde_json::Value =
        serde_json::from_str(meta["wgtrain.config"].as_str().unwrap()).unwrap();
    edit(&mut config);
    meta["wgtrain.config"] = serde_json::Value::String(config.to_string());
    let mut text = header.to_string().into_bytes();
    while (8 + text.len()) % 8 != 0 {
        text.push(b' ');
    }
    let mut out = (text.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&text);
    out.extend_from_slice(&bytes[8 + n..]);
    out
}

/// An MNIST-style folder with these training files and a valid 1-image test split.
fn mnist(f: &Scratch, name: &str, train_images: Vec<u8>, train_labels: Vec<u8>) -> String {
    f.write(&format!("{name}/train-images-idx3-ubyte"), &train_images);
    f.write(&format!("{name}/train-labels-idx1-ubyte"), &train_labels);
    f.write(
        &format!("{name}/t10k-images-idx3-ubyte"),
        &idx([0, 0, 8, 3], &[1, 2, 2], &[0; 4]),
    );
    f.write(
        &format!("{name}/t10k-labels-idx1-ubyte"),
        &idx([0, 0, 8, 1], &[1], &[0]),
    );
    f.path(name)
}

/// Trains a small model into `path` (in `f`), with `extra` flags.
fn train_model(f: &Scratch, path: &str, extra: &[&str]) {
    let o = train_small(&f.0, &f.path(path), extra);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// Every fixture the cases name (as `@name`).
fn make_fixtures(f: &Scratch) {
    let digits = std::fs::read_to_string("data/digits.csv").unwrap();
    f.write("d.csv", digits.as_bytes());
    train_model(f, "model.safetensors", &[]);
    train_model(f, "model-csv.safetensors", &["--data", &f.path("d.csv")]);
    let bytes = std::fs::read(f.0.join("model.safetensors")).unwrap();
    // Outputs from an earlier run, which a failed run must leave as they are.
    f.write("existing.safetensors", &bytes);
    f.write("existing.csv", b"epoch,loss\n1,0.5\n");
    f.write("existing.png", b"\x89PNG not really");
    f.write("existing.json", b"{}");
    let ro = f.write("readonly.safetensors", &bytes);
    let mut perms = std::fs::metadata(&ro).unwrap().permissions();
    perms.set_readonly(true);
    std::fs::set_permissions(&ro, perms).unwrap();
    std::fs::create_dir_all(f.0.join("folder")).unwrap();

    // Checkpoints that are not (or no longer) what wgtrain writes.
    f.write("cut.safetensors", &bytes[..bytes.len() / 2]);
    let mut flipped = bytes.clone();
    flipped[20] ^= 0x5a;
    f.write("flipped.safetensors", &flipped);
    f.write(
        "zero-units.safetensors",
        &with_config(&bytes, |c| c["layers"][0]["units"] = 0.into()),
    );
    f.write(
        "no-layers.safetensors",
        &with_config(&bytes, |c| c["layers"] = serde_json::json!([])),
    );
    f.write(
        "softmax-logits.safetensors",
        &with_config(&bytes, |c| {
            let last = c["layers"].as_array().unwrap().len() - 1;
            c["layers"][last]["activation"] = serde_json::json!("softmax");
        }),
    );

    // CSV files, each wrong in one way.
    f.write("empty.csv", b"");
    f.write("ragged.csv", b"a,b,label\n1,2,0\n3,4\n");
    f.write("text.csv", b"a,b,label\n1,2,0\n3,four,1\n");
    f.write("nan.csv", b"a,b,label\n1,2,0\n3,nan,1\n");
    f.write("inf.csv", b"a,b,label\n1,2,0\n3,-inf,1\n");
    f.write("e39.csv", b"a,b,label\n1,2,0\n1e39,4,1\n");
    f.write("dup.csv", b"a,a,label\n1,2,0\n3,4,1\n");
    // Label 1.5 at line 39 of a 49-row file, after a blank line, which the count keeps.
    csv(
        f,
        "fractional.csv",
        "a,b,label",
        (0..49).map(|i| match i {
            20 => String::new(),
            37 => "5,6,1.5".to_string(),
            _ => format!("{i},{},{}", i * 2, i % 3),
        }),
    );
    f.write("wide.csv", b"a,b,c,label\n1,2,3,0\n");
    f.write("tiny.csv", b"a,label\n1,0\n2,1\n3,0\n4,1\n5,0\n6,1\n");
    let header: Vec<String> = (0..64).map(|i| format!("p{i}")).collect();
    let row = vec!["0"; 64].join(",");
    f.write(
        "labels12.csv",
        format!("{},label\n{row},12\n", header.join(",")).as_bytes(),
    );
    let d63: String = digits
        .lines()
        .map(|l| l.split_once(',').unwrap().1.to_string() + "\n")
        .collect();
    f.write("d63.csv", d63.as_bytes());
    f.write("narrow-test.csv", b"a,b,label\n1,2,0\n");
    csv(
        f,
        "prices.csv",
        "sqft,rooms,price",
        (0..200).map(|i| {
            format!(
                "{},{},{}",
                1000 + i * 7,
                i % 5,
                250_000 + (i * 997) % 100_000
            )
        }),
    );
    csv(
        f,
        "huge-labels.csv",
        "a,label",
        (0..50).map(|i| format!("{i},{}", if i % 2 == 1 { "1e30" } else { "0" })),
    );
    csv(
        f,
        "billions.csv",
        "a,b,label",
        (0..50).map(|i| format!("{i},{},{}", i * 3, 3_000_000_000u64 + i % 3)),
    );
    csv(f, "zeros.csv", "a,label", (0..50).map(|i| format!("{i},0")));
    f.write(
        "long-cell.csv",
        format!("a,label\n{},1\n", "x".repeat(1_000_000)).as_bytes(),
    );
    f.write("one-line.csv", "y".repeat(3_000_000).as_bytes());
    f.write("binary.csv", &[0xff, 0xfe, 0x00, 0x41, 0x0a, 0xc3, 0x28]);
    let fifo = f.path("fifo.csv");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());

    // MNIST-style folders, each wrong in one way.
    let labels = idx([0, 0, 8, 1], &[2], &[0, 1]);
    mnist(
        f,
        "magic",
        idx([0, 0, 9, 3], &[2, 2, 2], &[0; 8]),
        labels.clone(),
    );
    mnist(
        f,
        "truncated",
        idx([0, 0, 8, 3], &[2, 2, 2], &[0; 5]),
        labels.clone(),
    );
    mnist(
        f,
        "disagree",
        idx([0, 0, 8, 3], &[3, 2, 2], &[0; 12]),
        labels.clone(),
    );
    // A few hundred bytes of gzip that claim 1.5 GB (60,000 images of 160×160): refused
    // without taking the memory.
    let claims = gzip(&idx([0, 0, 8, 3], &[60_000, 160, 160], &[0; 1000]));
    mnist(f, "bomb", claims, labels.clone());
    let huge = gzip(&idx([0, 0, 8, 3], &[60_000_000, 28, 28], &[]));
    mnist(f, "huge-dims", huge, labels);
    f.write("not-mnist/readme.txt", b"nothing here");
}

/// Every case: the arguments (`@name` is that fixture's path; `train` gets `--epochs 1
/// --layers 8 --verbose 0` unless it names them, and every command `--backend cpu` unless it
/// names one) and what the message must contain: the flag or the file, and the problem.
#[rustfmt::skip]
const CASES: &[(&[&str], &[&str])] = &[
    // Data that cannot be read.
    (&["train", "--data", "/no/such/file.csv"], &["/no/such/file.csv", "No such file"]),
    (&["train", "--data", "@empty.csv"], &["empty.csv", "empty"]),
    (&["train", "--data", "@ragged.csv"], &["ragged.csv", "line 3 has 2 cells"]),
    (&["train", "--data", "@text.csv"], &["text.csv", "line 3, column 2 (`b`): `four` is not a number"]),
    (&["train", "--data", "@nan.csv"], &["nan.csv", "line 3", "not a finite number"]),
    (&["train", "--data", "@inf.csv"], &["inf.csv", "line 3", "not a finite number"]),
    (&["train", "--data", "@e39.csv"], &["e39.csv", "line 3", "beyond the range of 32-bit floats"]),
    (&["train", "--data", "@dup.csv"], &["dup.csv", "line 1", "both named `a`"]),
    (&["train", "--data", "@binary.csv"], &["binary.csv", "not UTF-8"]),
    (&["train", "--data", "/dev/zero"], &["/dev/zero", "character device"]),
    (&["train", "--data", "@fifo.csv"], &["fifo.csv", "named pipe"]),
    (&["train", "--test-data", "/dev/zero"], &["/dev/zero", "character device"]),
    (&["train", "--resume", "@fifo.csv", "--epochs", "3"], &["fifo.csv", "named pipe"]),
    (&["evaluate", "--model", "@fifo.csv", "--data", "@d.csv"], &["fifo.csv", "named pipe"]),
    (&["train", "--data", "@long-cell.csv"], &["long-cell.csv", "(1000000 characters)"]),
    (&["train", "--data", "@one-line.csv"], &["one-line.csv", "(3000000 characters)"]),
    (&["train", "--data", "@magic"], &["magic", "IDX type 0x09"]),
    (&["train", "--data", "@truncated"], &["truncated", "truncated"]),
    (&["train", "--data", "@disagree"], &["disagree", "3 images but 2 labels"]),
    (&["train", "--data", "@bomb"], &["bomb", "truncated"]),
    (&["train", "--data", "@huge-dims"], &["huge-dims", "too large"]),
    (&["train", "--data", "@not-mnist"], &["not-mnist", "train-images-idx3-ubyte"]),
    (&["train", "--data", "@d.csv", "--label-column", "nope"], &["d.csv", "no column named `nope`"]),
    (&["train", "--data", "@d.csv", "--label-column", "99"], &["d.csv", "index 99 is out of range"]),
    (&["train", "--data", "@magic", "--label-column", "x"], &["--label-column x", "MNIST folder"]),
    (&["train", "--label-column", "x"], &["--label-column x", "--data FILE.csv, which is missing"]),
    // Labels, and what --loss auto makes of them (each bad row by its file and line).
    (&["train", "--data", "@fractional.csv", "--loss", "sparse_categorical_crossentropy"], &["fractional.csv", "line 39: label 1.5"]),
    (&["train", "--data", "@prices.csv"], &["prices.csv", "--loss mse", "250000"]),
    (&["train", "--data", "@huge-labels.csv"], &["huge-labels.csv", "--loss mse"]),
    (&["train", "--data", "@zeros.csv"], &["zeros.csv", "every label is 0", "--label-column"]),
    (&["train", "--data", "@billions.csv", "--loss", "sparse_categorical_crossentropy"], &["billions.csv", "line 2", "too large for a class index"]),
    (&["train", "--data", "@d.csv", "--test-data", "@narrow-test.csv"], &["narrow-test.csv", "--data", "64"]),
    // Flags, each refused before anything is read.
    (&["train", "--batch-size", "0"], &["--batch-size 0"]),
    (&["train", "--epochs", "0"], &["--epochs 0"]),
    (&["train", "--activation", "swish2"], &["--activation swish2", "valid: linear, relu"]),
    (&["train", "--activation", "softmax"], &["--activation softmax", "output layer"]),
    (&["train", "--loss", "kl"], &["--loss kl", "valid: mse"]),
    (&["train", "--optimizer", "rmsprop"], &["--optimizer rmsprop", "valid: adam"]),
    (&["train", "--metrics", "f1"], &["--metrics f1", "unknown metric"]),
    (&["train", "--metrics", "accuracy,acc"], &["--metrics", "accuracy is asked for twice"]),
    (&["train", "--metrics", "mse"], &["--metrics", "mean_squared_error"]),
    (&["train", "--lr", "-1"], &["--lr -1", "above 0"]),
    (&["train", "--lr=-1"], &["--lr -1", "above 0"]),
    (&["train", "--lr", "0"], &["--lr 0", "above 0"]),
    (&["train", "--lr", "1e39"], &["--lr", "1e39", "beyond the range of 32-bit floats"]),
    (&["train", "--lr", "nan"], &["--lr", "NaN"]),
    (&["train", "--verbose", "9"], &["--verbose", "9"]),
    (&["train", "--validation-split", "1"], &["--validation-split 1", "[0, 1)"]),
    (&["train", "--test-split", "1.5"], &["--test-split 1.5", "[0, 1)"]),
    (&["train", "--test-split", "0"], &["--test-split 0", "--test-data"]),
    (&["train", "--data", "@tiny.csv", "--validation-split", "0.99"], &["--validation-split 0.99", "to train on"]),
    (&["train", "--layers", "0"], &["--layers 0", "width 0"]),
    (&["train", "--layers", "16,dropout:1"], &["--layers 16,dropout:1", "item 2 `dropout:1`", "[0, 1)", "valid forms"]),
    (&["train", "--layers", "dropout:-0.5,16"], &["item 1 `dropout:-0.5`", "[0, 1)"]),
    (&["train", "--layers", "dropout:half"], &["item 1 `dropout:half`", "must be a number"]),
    (&["train", "--layers", "maxout:8:1"], &["item 1 `maxout:8:1`", "at least 2 pieces"]),
    (&["train", "--layers", "maxout:8"], &["item 1 `maxout:8`", "maxout:N:PIECES"]),
    (&["train", "--layers", "16,dropot:0.2"], &["item 2 `dropot:0.2`", "unknown layer kind `dropot`", "dropout:RATE", "batchnorm"]),
    (&["train", "--layers", "16:swish2"], &["item 1 `16:swish2`", "unknown activation `swish2`", "selu"]),
    (&["train", "--layers", "16:softmax,8"], &["--layers", "hidden softmax"]),
    (&["train", "--l2", "-0.001"], &["--l2 -0.001", "≥ 0"]),
    (&["train", "--l1", "nan"], &["--l1 NaN", "≥ 0"]),
    (&["train", "--monitor", "val_accuracy"], &["--monitor val_accuracy", "--save-mode best"]),
    (&["train", "--save-mode", "best"], &["--save-mode", "--save"]),
    (&["train", "--save-mode", "best", "--save", "@existing.safetensors", "--monitor", "nope"], &["--monitor nope", "val_loss"]),
    (&["bench", "--repeats", "0"], &["--repeats", "0"]),
    (&["bench", "--workload", "MM-XL"], &["unknown workload `MM-XL`", "MLP-A"]),
    // Sizes nothing could hold, refused before anything is allocated.
    (&["train", "--layers", "100000000"], &["--layers 100000000", "more than"]),
    // Outputs, checked before any work: the existing ones are left as they were.
    (&["train", "--save", "@existing.safetensors", "--plot", "@p.jpg"], &["--plot", "p.jpg", ".png or .svg"]),
    (&["train", "--save", "@existing.safetensors", "--history", "@folder"], &["--history", "folder", "is a folder"]),
    (&["train", "--save", "@existing.safetensors", "--history", "@h.txt"], &["--history", "h.txt", ".csv or .json"]),
    (&["train", "--save", "@existing.safetensors", "--plot", "@missing/p.png"], &["--plot", "missing/p.png", "does not exist"]),
    (&["train", "--save", "/proc/model.safetensors"], &["--save /proc/model.safetensors", "cannot create files"]),
    (&["train", "--save", "@readonly.safetensors"], &["--save", "readonly.safetensors", "read-only"]),
    (&["train", "--data", "@d.csv", "--save", "@d.csv"], &["--save", "same file as --data"]),
    (&["train", "--save", "@existing.csv", "--history", "@existing.csv"], &["--history", "same file as --save"]),
    (&["train", "--history", "@existing.json", "--plot", "@existing.png", "--data", "@d.csv", "--test-data", "@existing.csv"], &["existing.csv"]),
    (&["predict", "--model", "@model.safetensors", "--data", "@d.csv", "--out", "@d.csv"], &["--out", "same file as --data"]),
    (&["predict", "--model", "@model.safetensors", "--data", "@d.csv", "--out", "@model.safetensors"], &["--out", "same file as --model"]),
    (&["predict", "--model", "@model.safetensors", "--data", "@d.csv", "--out", "-", "--json"], &["--out -", "--json"]),
    (&["predict", "--model", "@model.safetensors", "--data", "@d.csv", "--out", "@folder"], &["--out", "is a folder"]),
    // A special file that fails when written (a full disk): the error names it.
    (&["predict", "--model", "@model.safetensors", "--data", "@d.csv", "--out", "/dev/full"], &["/dev/full", "No space left"]),
    // A named pipe nothing reads: an error, not a process blocked until a reader comes.
    (&["predict", "--model", "@model.safetensors", "--data", "@d.csv", "--out", "@fifo.csv"], &["fifo.csv", "nothing reading it"]),
    // Resuming a run with other flags or data, each named with both values.
    (&["train", "--resume", "@model.safetensors", "--epochs", "3", "--seed", "7"], &["--seed was 42 and is now 7"]),
    (&["train", "--resume", "@model.safetensors", "--epochs", "3", "--test-split", "0.3"], &["--test-split was 0.2 and is now 0.3"]),
    (&["train", "--resume", "@model.safetensors", "--epochs", "3", "--validation-split", "0.2"], &["--validation-split was 0.1 and is now 0.2"]),
    (&["train", "--resume", "@model.safetensors", "--epochs", "3", "--batch-size", "64"], &["--batch-size was 32 and is now 64"]),
    (&["train", "--resume", "@model.safetensors", "--epochs", "3", "--data", "@d63.csv"], &["--resume", "--data was"]),
    (&["train", "--resume", "@model.safetensors", "--epochs", "3", "--layers", "16"], &["--resume", "architecture mismatch"]),
    (&["train", "--resume", "@model.safetensors", "--epochs", "3", "--activation", "tanh"], &["--resume", "layer 0", "relu", "tanh"]),
    (&["train", "--resume", "@model-csv.safetensors", "--epochs", "3", "--data", "@d.csv", "--standardize"], &["--resume", "without standardization", "drop --standardize"]),
    (&["train", "--resume", "@model.safetensors", "--epochs", "1"], &["--epochs 1", "trained 1 epochs already"]),
    (&["train", "--resume", "@d.csv", "--epochs", "3"], &["d.csv", "not a readable safetensors"]),
    // Models that are not models, and data that does not fit the model.
    (&["evaluate", "--model", "@model.safetensors", "--data", "@wide.csv"], &["wide.csv", "3 feature columns", "--model"]),
    (&["evaluate", "--model", "@model.safetensors", "--data", "@labels12.csv"], &["labels12.csv", "line 2: label 12"]),
    (&["evaluate", "--model", "@cut.safetensors", "--data", "@d.csv"], &["cut.safetensors", "truncated or corrupted"]),
    (&["evaluate", "--model", "@flipped.safetensors", "--data", "@d.csv"], &["flipped.safetensors"]),
    (&["evaluate", "--model", "@zero-units.safetensors", "--data", "@d.csv"], &["zero-units.safetensors", "0 units"]),
    (&["evaluate", "--model", "@no-layers.safetensors", "--data", "@d.csv"], &["no-layers.safetensors", "no layers"]),
    (&["evaluate", "--model", "@softmax-logits.safetensors", "--data", "@d.csv"], &["softmax-logits.safetensors", "cannot train its last layer"]),
    (&["evaluate", "--model", "@model.safetensors", "--data", "@d.csv", "--batch-size", "0"], &["--batch-size 0"]),
    (&["evaluate", "--model", "@d.csv", "--data", "@d.csv"], &["d.csv", "not a readable safetensors"]),
    (&["predict", "--model", "@model.safetensors", "--data", "@wide.csv", "--out", "@existing.csv"], &["wide.csv", "4 feature columns", "--model"]),
    (&["predict", "--model", "@cut.safetensors", "--data", "@d.csv", "--out", "@existing.csv"], &["cut.safetensors", "truncated"]),
    (&["predict", "--model", "@model.safetensors", "--data", "@d.csv", "--label-column", "nope", "--out", "@existing.csv"], &["--label-column nope"]),
];

/// A case's arguments, ready to run in `f`: see [`CASES`].
fn expand(f: &Scratch, args: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = args
        .iter()
        .map(|a| match a.strip_prefix('@') {
            Some(name) => f.path(name),
            None => a.to_string(),
        })
        .collect();
    let named = |flag: &str| args.iter().any(|a| a.starts_with(flag));
    if args[0] == "train" {
        for (flag, default) in [("--epochs", "1"), ("--layers", "8"), ("--verbose", "0")] {
            if !named(flag) {
                out.extend([flag.to_string(), default.to_string()]);
            }
        }
    }
    if !named("--backend") {
        out.extend(["--backend".to_string(), "cpu".to_string()]);
    }
    out
}

/// Every case, and on the GPU (when there is one) a model too large for its buffers.
fn cases(f: &Scratch) -> Vec<Case> {
    let mut cases: Vec<Case> = CASES
        .iter()
        .map(|(args, wants)| Case {
            args: expand(f, args),
            wants: wants.iter().map(|s| s.to_string()).collect(),
        })
        .collect();
    if common::gpu().is_some() {
        let args = [
            "train",
            "--backend",
            "gpu",
            "--layers",
            "50000000",
            "--save",
            "@existing.safetensors",
        ];
        cases.push(Case {
            args: expand(f, &args),
            wants: vec!["--layers 50000000".into(), "dense_0.weight".into()],
        });
    }
    cases
}

/// One bad input: the arguments, and what the message must contain.
struct Case {
    args: Vec<String>,
    wants: Vec<String>,
}

/// Every case: a non-zero exit that is neither a panic nor a signal, a short message that
/// names what it should, and the fixtures exactly as they were.
#[test]
fn every_bad_input_is_a_clear_error_and_changes_no_file() {
    let f = Scratch::new("bad-input");
    make_fixtures(&f);
    let cases = cases(&f);
    let mut failures = Vec::new();
    for c in &cases {
        let before = snapshot(&f.0);
        let o = run_in(&f.0, &c.args, Duration::from_secs(60));
        let after = snapshot(&f.0);
        let err = String::from_utf8_lossy(&o.stderr);
        let mut problems = Vec::new();
        match o.status.code() {
            None => problems.push(format!("killed by a signal ({:?})", o.status)),
            Some(0) => problems.push("exit 0".into()),
            Some(101) => problems.push("exit 101 (a panic)".into()),
            Some(_) => {}
        }
        if err.contains("panicked") {
            problems.push("a panic message".into());
        }
        for want in &c.wants {
            if !err.contains(want.as_str()) {
                problems.push(format!("no `{want}` in the message"));
            }
        }
        if err.len() > 1500 {
            problems.push(format!("a {}-byte message", err.len()));
        }
        if before != after {
            let changed: Vec<String> = before
                .keys()
                .chain(after.keys())
                .filter(|k| before.get(*k) != after.get(*k))
                .map(|k| {
                    format!(
                        "{} ({:?} -> {:?})",
                        k.display(),
                        before.get(k),
                        after.get(k)
                    )
                })
                .collect();
            problems.push(format!("files changed: {}", changed.join(", ")));
        }
        if !problems.is_empty() {
            failures.push(format!(
                "{:?}\n  {}\n  stderr: {err}",
                c.args,
                problems.join("; ")
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
