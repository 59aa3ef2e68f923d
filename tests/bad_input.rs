//! The README's promise, held for every bad input we know of: the CLI fails with a message
//! that names the flag or the file (and says what is wrong), exits non-zero without a panic
//! (101) or a signal, keeps its message short, and creates, changes or removes no file.
//!
//! Every case runs in one folder of fixtures that holds, besides the inputs, outputs from an
//! earlier run (`existing.*`) that cases point their outputs at; the whole folder is compared
//! byte for byte before and after each case.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::cli::run_in;

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

/// A folder of fixtures, removed at the end.
struct Fixtures(PathBuf);

impl Drop for Fixtures {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.0).ok();
    }
}

impl Fixtures {
    fn path(&self, name: &str) -> String {
        self.0.join(name).to_str().unwrap().to_string()
    }

    fn write(&self, name: &str, bytes: &[u8]) -> String {
        let p = self.0.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, bytes).unwrap();
        self.path(name)
    }

    fn csv(&self, name: &str, header: &str, rows: impl IntoIterator<Item = String>) -> String {
        let mut text = format!("{header}\n");
        for r in rows {
            text += &r;
            text += "\n";
        }
        self.write(name, text.as_bytes())
    }
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
fn mnist(f: &Fixtures, name: &str, train_images: Vec<u8>, train_labels: Vec<u8>) -> String {
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

/// One bad input: the arguments, and what the message must contain (the flag or the file,
/// and the problem).
struct Case {
    args: Vec<String>,
    wants: Vec<String>,
}

fn case(args: &[&str], wants: &[&str]) -> Case {
    Case {
        args: args.iter().map(|s| s.to_string()).collect(),
        wants: wants.iter().map(|s| s.to_string()).collect(),
    }
}

/// The fixtures and every case.
fn cases(f: &Fixtures) -> Vec<Case> {
    let digits = std::fs::read_to_string("data/digits.csv").unwrap();
    let d = f.write("d.csv", digits.as_bytes());
    let model = f.path("model.safetensors");
    let trained = run_in(
        &f.0,
        &[
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
            &model,
        ]
        .map(String::from),
        Duration::from_secs(120),
    );
    assert!(
        trained.status.success(),
        "{}",
        String::from_utf8_lossy(&trained.stderr)
    );
    let model_csv = f.path("model-csv.safetensors");
    let o = run_in(
        &f.0,
        &[
            "train",
            "--data",
            &d,
            "--epochs",
            "1",
            "--layers",
            "8",
            "--backend",
            "cpu",
            "--verbose",
            "0",
            "--save",
            &model_csv,
        ]
        .map(String::from),
        Duration::from_secs(120),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let bytes = std::fs::read(&model).unwrap();
    // Outputs from an earlier run, which a failed run must leave as they are.
    let existing = f.write("existing.safetensors", &bytes);
    let existing_csv = f.write("existing.csv", b"epoch,loss\n1,0.5\n");
    let existing_png = f.write("existing.png", b"\x89PNG not really");
    let existing_json = f.write("existing.json", b"{}");
    let ro = f.write("readonly.safetensors", &bytes);
    let mut perms = std::fs::metadata(&ro).unwrap().permissions();
    perms.set_readonly(true);
    std::fs::set_permissions(&ro, perms).unwrap();
    std::fs::create_dir_all(f.0.join("folder")).unwrap();
    let folder = f.path("folder");

    let cut = f.write("cut.safetensors", &bytes[..bytes.len() / 2]);
    let mut flipped = bytes.clone();
    flipped[20] ^= 0x5a;
    let flipped = f.write("flipped.safetensors", &flipped);
    let zero_units = f.write(
        "zero-units.safetensors",
        &with_config(&bytes, |c| c["layers"][0]["units"] = 0.into()),
    );
    let no_layers = f.write(
        "no-layers.safetensors",
        &with_config(&bytes, |c| c["layers"] = serde_json::json!([])),
    );
    let softmax_logits = f.write(
        "softmax-logits.safetensors",
        &with_config(&bytes, |c| {
            let last = c["layers"].as_array().unwrap().len() - 1;
            c["layers"][last]["activation"] = serde_json::json!("softmax");
        }),
    );

    let empty = f.write("empty.csv", b"");
    let ragged = f.write("ragged.csv", b"a,b,label\n1,2,0\n3,4\n");
    let text = f.write("text.csv", b"a,b,label\n1,2,0\n3,four,1\n");
    let nan = f.write("nan.csv", b"a,b,label\n1,2,0\n3,nan,1\n");
    let inf = f.write("inf.csv", b"a,b,label\n1,2,0\n3,-inf,1\n");
    let e39 = f.write("e39.csv", b"a,b,label\n1,2,0\n1e39,4,1\n");
    let dup = f.write("dup.csv", b"a,a,label\n1,2,0\n3,4,1\n");
    // Label 1.5 at line 39 of a 49-row file, after a blank line, which the count keeps.
    let fractional = f.csv(
        "fractional.csv",
        "a,b,label",
        (0..49).map(|i| match i {
            20 => String::new(),
            37 => "5,6,1.5".to_string(),
            _ => format!("{i},{},{}", i * 2, i % 3),
        }),
    );
    let wide = f.write("wide.csv", b"a,b,c,label\n1,2,3,0\n");
    let tiny = f.write("tiny.csv", b"a,label\n1,0\n2,1\n3,0\n4,1\n5,0\n6,1\n");
    let header: Vec<String> = (0..64).map(|i| format!("p{i}")).collect();
    let labels12 = f.write(
        "labels12.csv",
        format!(
            "{},label\n{},12\n",
            header.join(","),
            vec!["0"; 64].join(",")
        )
        .as_bytes(),
    );
    let d63: String = digits
        .lines()
        .map(|l| l.split_once(',').unwrap().1.to_string() + "\n")
        .collect();
    let d63 = f.write("d63.csv", d63.as_bytes());
    let narrow_test = f.write("narrow-test.csv", b"a,b,label\n1,2,0\n");
    let prices = f.csv(
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
    let huge_labels = f.csv(
        "huge-labels.csv",
        "a,label",
        (0..50).map(|i| format!("{i},{}", if i % 2 == 1 { "1e30" } else { "0" })),
    );
    let billions = f.csv(
        "billions.csv",
        "a,b,label",
        (0..50).map(|i| format!("{i},{},{}", i * 3, 3_000_000_000u64 + i % 3)),
    );
    let zeros = f.csv("zeros.csv", "a,label", (0..50).map(|i| format!("{i},0")));
    let long_cell = f.write(
        "long-cell.csv",
        format!("a,label\n{},1\n", "x".repeat(1_000_000)).as_bytes(),
    );
    let one_line = f.write("one-line.csv", "y".repeat(3_000_000).as_bytes());
    let gz_binary = f.write("binary.csv", &[0xff, 0xfe, 0x00, 0x41, 0x0a, 0xc3, 0x28]);
    let fifo = f.path("fifo.csv");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());

    let good_labels = idx([0, 0, 8, 1], &[2], &[0, 1]);
    let bad_magic = mnist(
        f,
        "magic",
        idx([0, 0, 9, 3], &[2, 2, 2], &[0; 8]),
        good_labels.clone(),
    );
    let truncated = mnist(
        f,
        "truncated",
        idx([0, 0, 8, 3], &[2, 2, 2], &[0; 5]),
        good_labels.clone(),
    );
    let disagree = mnist(
        f,
        "disagree",
        idx([0, 0, 8, 3], &[3, 2, 2], &[0; 12]),
        good_labels.clone(),
    );
    // A few hundred bytes of gzip that claim 1.5 GB (60,000 images of 160×160): refused
    // without taking the memory.
    let claims = gzip(&idx([0, 0, 8, 3], &[60_000, 160, 160], &[0; 1000]));
    let bomb = mnist(f, "bomb", claims, good_labels.clone());
    let huge_dims = mnist(
        f,
        "huge-dims",
        gzip(&idx([0, 0, 8, 3], &[60_000_000, 28, 28], &[])),
        good_labels,
    );
    let not_mnist = f.write("not-mnist/readme.txt", b"nothing here");
    let not_mnist = Path::new(&not_mnist)
        .parent()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let mnist_dir = "../shared/data/mnist";
    let mnist_dir = std::fs::canonicalize(mnist_dir)
        .map(|p| p.to_str().unwrap().to_string())
        .unwrap_or(bad_magic.clone());

    // `train` on the reference, quietly, 1 epoch of a small model unless the case says.
    fn t<'a>(extra: &[&'a str]) -> Vec<&'a str> {
        let mut a = vec!["train", "--backend", "cpu"];
        a.extend_from_slice(extra);
        for (flag, default) in [("--epochs", "1"), ("--layers", "8"), ("--verbose", "0")] {
            if !extra.iter().any(|e| e.starts_with(flag)) {
                a.extend([flag, default]);
            }
        }
        a
    }
    let mut cases = vec![
        // Data that cannot be read.
        case(
            &t(&["--data", "/no/such/file.csv"]),
            &["/no/such/file.csv", "No such file"],
        ),
        case(&t(&["--data", &empty]), &["empty.csv", "empty"]),
        case(
            &t(&["--data", &ragged]),
            &["ragged.csv", "line 3 has 2 cells"],
        ),
        case(
            &t(&["--data", &text]),
            &["text.csv", "line 3, column 2 (`b`): `four` is not a number"],
        ),
        case(
            &t(&["--data", &nan]),
            &["nan.csv", "line 3", "not a finite number"],
        ),
        case(
            &t(&["--data", &inf]),
            &["inf.csv", "line 3", "not a finite number"],
        ),
        case(
            &t(&["--data", &e39]),
            &["e39.csv", "line 3", "beyond the range of 32-bit floats"],
        ),
        case(
            &t(&["--data", &dup]),
            &["dup.csv", "line 1", "both named `a`"],
        ),
        case(&t(&["--data", &gz_binary]), &["binary.csv", "not UTF-8"]),
        case(
            &t(&["--data", "/dev/zero"]),
            &["/dev/zero", "character device"],
        ),
        case(&t(&["--data", &fifo]), &["fifo.csv", "named pipe"]),
        case(
            &t(&["--data", &long_cell]),
            &["long-cell.csv", "(1000000 characters)"],
        ),
        case(
            &t(&["--data", &one_line]),
            &["one-line.csv", "(3000000 characters)"],
        ),
        case(&t(&["--data", &bad_magic]), &["magic", "IDX type 0x09"]),
        case(&t(&["--data", &truncated]), &["truncated", "truncated"]),
        case(
            &t(&["--data", &disagree]),
            &["disagree", "3 images but 2 labels"],
        ),
        case(&t(&["--data", &bomb]), &["bomb", "truncated"]),
        case(&t(&["--data", &huge_dims]), &["huge-dims", "too large"]),
        case(
            &t(&["--data", &not_mnist]),
            &["not-mnist", "train-images-idx3-ubyte"],
        ),
        case(
            &t(&["--data", &d, "--label-column", "nope"]),
            &["d.csv", "no column named `nope`"],
        ),
        case(
            &t(&["--data", &d, "--label-column", "99"]),
            &["d.csv", "index 99 is out of range"],
        ),
        case(
            &t(&["--data", &mnist_dir, "--label-column", "x"]),
            &["--label-column x", "MNIST folder"],
        ),
        // Labels, and what --loss auto makes of them (each bad row by its file and line).
        case(
            &t(&[
                "--data",
                &fractional,
                "--loss",
                "sparse_categorical_crossentropy",
            ]),
            &["fractional.csv", "line 39: label 1.5"],
        ),
        case(
            &t(&["--data", &prices]),
            &["prices.csv", "--loss mse", "250000"],
        ),
        case(
            &t(&["--data", &huge_labels]),
            &["huge-labels.csv", "--loss mse"],
        ),
        case(
            &t(&["--data", &zeros]),
            &["zeros.csv", "every label is 0", "--label-column"],
        ),
        case(
            &t(&[
                "--data",
                &billions,
                "--loss",
                "sparse_categorical_crossentropy",
            ]),
            &["billions.csv", "line 2", "too large for a class index"],
        ),
        case(
            &t(&["--data", &d, "--test-data", &narrow_test]),
            &["narrow-test.csv", "--data", "64"],
        ),
        // Flags, each refused before anything is read.
        case(&t(&["--batch-size", "0"]), &["--batch-size 0"]),
        case(&["train", "--epochs", "0"], &["--epochs 0"]),
        case(
            &t(&["--activation", "swish2"]),
            &["--activation swish2", "valid: linear, relu"],
        ),
        case(
            &t(&["--activation", "softmax"]),
            &["--activation softmax", "output layer"],
        ),
        case(&t(&["--loss", "kl"]), &["--loss kl", "valid: mse"]),
        case(
            &t(&["--optimizer", "rmsprop"]),
            &["--optimizer rmsprop", "valid: adam"],
        ),
        case(
            &t(&["--metrics", "f1"]),
            &["--metrics f1", "unknown metric"],
        ),
        case(
            &t(&["--metrics", "accuracy,acc"]),
            &["--metrics", "accuracy is asked for twice"],
        ),
        case(
            &t(&["--metrics", "mse"]),
            &["--metrics", "mean_squared_error"],
        ),
        case(&t(&["--lr", "-1"]), &["--lr -1", "above 0"]),
        case(&t(&["--lr=-1"]), &["--lr -1", "above 0"]),
        case(&t(&["--lr", "0"]), &["--lr 0", "above 0"]),
        case(
            &t(&["--lr", "1e39"]),
            &["--lr", "1e39", "beyond the range of 32-bit floats"],
        ),
        case(&t(&["--lr", "nan"]), &["--lr", "NaN"]),
        case(&t(&["--verbose", "9"]), &["--verbose", "9"]),
        case(
            &t(&["--validation-split", "1"]),
            &["--validation-split 1", "[0, 1)"],
        ),
        case(
            &t(&["--test-split", "1.5"]),
            &["--test-split 1.5", "[0, 1)"],
        ),
        case(
            &t(&["--test-split", "0"]),
            &["--test-split 0", "--test-data"],
        ),
        case(
            &t(&["--data", &tiny, "--validation-split", "0.99"]),
            &["--validation-split 0.99", "to train on"],
        ),
        case(&t(&["--layers", "0"]), &["--layers 0", "width 0"]),
        case(
            &t(&["--monitor", "val_accuracy"]),
            &["--monitor val_accuracy", "--save-mode best"],
        ),
        case(&t(&["--save-mode", "best"]), &["--save-mode", "--save"]),
        case(
            &t(&[
                "--save-mode",
                "best",
                "--save",
                &existing,
                "--monitor",
                "nope",
            ]),
            &["--monitor nope", "val_loss"],
        ),
        case(&["bench", "--repeats", "0"], &["--repeats", "0"]),
        case(
            &["bench", "--workload", "MM-XL"],
            &["unknown workload `MM-XL`", "MLP-A"],
        ),
        // Sizes nothing could hold, refused before anything is allocated.
        case(
            &t(&["--layers", "100000000"]),
            &["--layers 100000000", "more than"],
        ),
        // Outputs, checked before any work: the existing ones are left as they were.
        case(
            &t(&["--save", &existing, "--plot", &f.path("p.jpg")]),
            &["--plot", "p.jpg", ".png or .svg"],
        ),
        case(
            &t(&["--save", &existing, "--history", &folder]),
            &["--history", "folder", "is a folder"],
        ),
        case(
            &t(&["--save", &existing, "--history", &f.path("h.txt")]),
            &["--history", "h.txt", ".csv or .json"],
        ),
        case(
            &t(&["--save", &existing, "--plot", &f.path("missing/p.png")]),
            &["--plot", "missing/p.png", "does not exist"],
        ),
        case(
            &t(&["--save", "/proc/model.safetensors"]),
            &["--save /proc/model.safetensors", "cannot create files"],
        ),
        case(
            &t(&["--save", &ro]),
            &["--save", "readonly.safetensors", "read-only"],
        ),
        case(
            &t(&["--data", &d, "--save", &d]),
            &["--save", "same file as --data"],
        ),
        case(
            &t(&["--save", &existing_csv, "--history", &existing_csv]),
            &["--history", "same file as --save"],
        ),
        case(
            &t(&[
                "--history",
                &existing_json,
                "--plot",
                &existing_png,
                "--data",
                &d,
                "--test-data",
                &existing_csv,
            ]),
            &["existing.csv"],
        ),
        case(
            &[
                "predict",
                "--model",
                &model,
                "--data",
                &d,
                "--out",
                &d,
                "--backend",
                "cpu",
            ],
            &["--out", "same file as --data"],
        ),
        case(
            &[
                "predict",
                "--model",
                &model,
                "--data",
                &d,
                "--out",
                &model,
                "--backend",
                "cpu",
            ],
            &["--out", "same file as --model"],
        ),
        case(
            &[
                "predict",
                "--model",
                &model,
                "--data",
                &d,
                "--out",
                "-",
                "--json",
                "--backend",
                "cpu",
            ],
            &["--out -", "--json"],
        ),
        case(
            &[
                "predict",
                "--model",
                &model,
                "--data",
                &d,
                "--out",
                &folder,
                "--backend",
                "cpu",
            ],
            &["--out", "is a folder"],
        ),
        // Resuming a run with other flags or data, each named with both values.
        case(
            &t(&["--resume", &model, "--epochs", "3", "--seed", "7"]),
            &["--seed was 42 and is now 7"],
        ),
        case(
            &t(&["--resume", &model, "--epochs", "3", "--test-split", "0.3"]),
            &["--test-split was 0.2 and is now 0.3"],
        ),
        case(
            &t(&[
                "--resume",
                &model,
                "--epochs",
                "3",
                "--validation-split",
                "0.2",
            ]),
            &["--validation-split was 0.1 and is now 0.2"],
        ),
        case(
            &t(&["--resume", &model, "--epochs", "3", "--batch-size", "64"]),
            &["--batch-size was 32 and is now 64"],
        ),
        case(
            &t(&["--resume", &model, "--epochs", "3", "--data", &d63]),
            &["--resume", "--data was"],
        ),
        case(
            &t(&["--resume", &model, "--epochs", "3", "--layers", "16"]),
            &["--resume", "architecture mismatch"],
        ),
        case(
            &t(&["--resume", &d, "--epochs", "3"]),
            &["d.csv", "not a readable safetensors"],
        ),
        case(
            &t(&["--resume", &model, "--epochs", "1"]),
            &["--epochs 1", "trained 1 epochs already"],
        ),
        case(
            &t(&["--resume", &model, "--epochs", "3", "--activation", "tanh"]),
            &["--resume", "layer 0", "relu", "tanh"],
        ),
        case(
            &t(&[
                "--resume",
                &model_csv,
                "--epochs",
                "3",
                "--data",
                &d,
                "--standardize",
            ]),
            &["--resume", "without standardization", "drop --standardize"],
        ),
        // Models that are not models, and data that does not fit the model.
        case(
            &["evaluate", "--model", &model, "--data", &wide],
            &["wide.csv", "3 feature columns", "--model"],
        ),
        case(
            &["evaluate", "--model", &model, "--data", &labels12],
            &["labels12.csv", "line 2: label 12"],
        ),
        case(
            &["evaluate", "--model", &cut, "--data", &d],
            &["cut.safetensors", "truncated or corrupted"],
        ),
        case(
            &["evaluate", "--model", &flipped, "--data", &d],
            &["flipped.safetensors"],
        ),
        case(
            &["evaluate", "--model", &zero_units, "--data", &d],
            &["zero-units.safetensors", "0 units"],
        ),
        case(
            &["evaluate", "--model", &no_layers, "--data", &d],
            &["no-layers.safetensors", "no layers"],
        ),
        case(
            &["evaluate", "--model", &softmax_logits, "--data", &d],
            &["softmax-logits.safetensors", "cannot train its last layer"],
        ),
        case(
            &[
                "evaluate",
                "--model",
                &model,
                "--data",
                &d,
                "--batch-size",
                "0",
            ],
            &["--batch-size 0"],
        ),
        case(
            &["evaluate", "--model", &d, "--data", &d],
            &["d.csv", "not a readable safetensors"],
        ),
        case(
            &[
                "predict",
                "--model",
                &model,
                "--data",
                &wide,
                "--out",
                &existing_csv,
            ],
            &["wide.csv", "4 feature columns", "--model"],
        ),
        case(
            &[
                "predict",
                "--model",
                &cut,
                "--data",
                &d,
                "--out",
                &existing_csv,
            ],
            &["cut.safetensors", "truncated"],
        ),
        case(
            &[
                "predict",
                "--model",
                &model,
                "--data",
                &d,
                "--label-column",
                "nope",
                "--out",
                &existing_csv,
            ],
            &["--label-column nope"],
        ),
    ];
    for c in &mut cases {
        if c.args[0] != "bench" && !c.args.iter().any(|a| a == "--backend") {
            c.args.extend(["--backend".to_string(), "cpu".to_string()]);
        }
    }
    // A model too large for the adapter's buffers, on the GPU when there is one.
    if common::gpu().is_some() {
        cases.push(case(
            &[
                "train",
                "--backend",
                "gpu",
                "--layers",
                "50000000",
                "--verbose",
                "0",
                "--save",
                &existing,
            ],
            &["--layers 50000000", "dense_0.weight"],
        ));
    }
    cases
}

/// Every case: a non-zero exit that is neither a panic nor a signal, a short message that
/// names what it should, and the fixtures exactly as they were.
#[test]
fn every_bad_input_is_a_clear_error_and_changes_no_file() {
    let dir = std::env::temp_dir().join(format!("wgtrain-bad-input-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = Fixtures(dir);
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
