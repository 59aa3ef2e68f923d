//! Data loaders: IDX (MNIST) and CSV, and every bad file they must refuse clearly.

use std::io::Write;

use wgtrain::data::csv::{self, LabelColumn};
use wgtrain::data::{idx, Matrix, Standardizer};

fn idx_bytes(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut b = vec![0, 0, 0x08, dims.len() as u8];
    for d in dims {
        b.extend_from_slice(&d.to_be_bytes());
    }
    b.extend_from_slice(data);
    b
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

#[test]
fn idx_reads_raw_and_gzip_alike() {
    let raw = idx_bytes(&[2, 2, 2], &[0, 255, 51, 102, 1, 2, 3, 4]);
    for bytes in [raw.clone(), gzip(&raw)] {
        let a = idx::parse(&bytes, "t").unwrap();
        assert_eq!(a.dims, vec![2, 2, 2]);
        assert_eq!(a.data, vec![0, 255, 51, 102, 1, 2, 3, 4]);
    }
    let images = idx::parse(&raw, "i").unwrap();
    let labels = idx::parse(&idx_bytes(&[2], &[7, 3]), "l").unwrap();
    let (x, y) = idx::images_and_labels(&images, &labels, "pair").unwrap();
    assert_eq!(x.row(0), &[0.0, 1.0, 0.2, 0.4]);
    assert_eq!(y.data(), &[7.0, 3.0]);
}

#[test]
fn bad_idx_files_are_clear_errors() {
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (vec![], "too short"),
        (b"P5\n28 28".to_vec(), "magic number"),
        (vec![0, 0, 0x0d, 1, 0, 0, 0, 1, 0, 0, 0, 0], "type 0x0d"),
        (vec![0, 0, 8, 3, 0, 0], "truncated"),
        (idx_bytes(&[10, 28, 28], &[0; 100]), "need 7840 bytes"),
        (idx_bytes(&[2], &[1, 2, 3]), "1 bytes of data follow"),
        (gzip(&idx_bytes(&[4], &[1, 2, 3, 4]))[..12].to_vec(), "gzip"),
    ];
    for (bytes, want) in cases {
        let err = idx::parse(&bytes, "f.idx").unwrap_err().to_string();
        assert!(
            err.contains("f.idx") && err.contains(want),
            "want `{want}`: {err}"
        );
    }
    let images = idx::parse(&idx_bytes(&[3, 2], &[0; 6]), "i").unwrap();
    let labels = idx::parse(&idx_bytes(&[2], &[0; 2]), "l").unwrap();
    let err = idx::images_and_labels(&images, &labels, "pair")
        .unwrap_err()
        .to_string();
    assert!(err.contains("3 images but 2 labels"), "{err}");
}

/// The real MNIST files, when ../shared/data is there: counts and the first labels as its
/// README documents them.
#[test]
fn mnist_from_the_shared_data_folder() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/mnist");
    if !dir.is_dir() {
        eprintln!("skipped: {} is not there", dir.display());
        return;
    }
    let (x, y, xt, yt) = idx::load_mnist_dir(&dir).unwrap();
    assert_eq!((x.rows(), x.cols(), xt.rows()), (60000, 784, 10000));
    assert_eq!(
        &y.data()[..10],
        &[5.0, 0.0, 4.0, 1.0, 9.0, 2.0, 1.0, 3.0, 1.0, 4.0]
    );
    let mean = x.data().iter().map(|&v| v as f64).sum::<f64>() / x.data().len() as f64;
    assert!((mean - 0.1307).abs() < 1e-3, "{mean}");
    assert!(yt.rows() == 10000 && xt.data().iter().all(|&v| (0.0..=1.0).contains(&v)));
}

#[test]
fn mnist_folder_errors_say_what_is_missing() {
    let err = idx::load_mnist_dir(std::path::Path::new("/tmp"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("train-images-idx3-ubyte"), "{err}");
}

#[test]
fn bad_csv_files_are_errors_naming_line_and_column() {
    let cases: &[(&str, &str)] = &[
        ("", "empty"),
        ("a,b,label\n", "no data rows"),
        ("a,b,label\n1,2,0\n3,4\n", "line 3 has 2 cells"),
        (
            "a,b,label\n1,2,0\n3,x,1\n",
            "line 3, column 2 (`b`): `x` is not a number",
        ),
        (
            "a,b,label\n1,NaN,0\n",
            "line 2, column 2 (`b`): `NaN` is not a finite number",
        ),
        ("a,b,label\n1,inf,0\n", "not a finite number"),
        ("label\n1\n", "only one column"),
    ];
    for (text, want) in cases {
        let err = csv::parse(text.as_bytes(), "f.csv", &LabelColumn::Last)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("f.csv") && err.contains(want),
            "want `{want}`: {err}"
        );
    }
    let ok = "a,label,b\n1,0,2\n3,1,4\n";
    let d = csv::parse(ok.as_bytes(), "f.csv", &LabelColumn::Name("label".into())).unwrap();
    assert_eq!(
        (d.x.data(), d.y.data()),
        (&[1.0, 2.0, 3.0, 4.0][..], &[0.0, 1.0][..])
    );
    let d = csv::parse(ok.as_bytes(), "f.csv", &LabelColumn::Index(0)).unwrap();
    assert_eq!(d.label_name, "a");
    let err = csv::parse(ok.as_bytes(), "f.csv", &LabelColumn::Index(5))
        .unwrap_err()
        .to_string();
    assert!(err.contains("index 5 is out of range"), "{err}");
}

#[test]
fn standardization_is_fitted_on_one_split_and_applied_to_others() {
    let train = Matrix::new(3, 2, vec![1.0, 5.0, 2.0, 5.0, 3.0, 5.0]).unwrap();
    let s = Standardizer::fit(&train);
    assert_eq!(s.mean, vec![2.0, 5.0]);
    assert_eq!(s.std[1], 1.0, "a constant column is only centred");
    let z = s.apply(&train).unwrap();
    assert!((z.row(0)[0] + 1.2247449).abs() < 1e-6 && z.row(1) == [0.0, 0.0]);
    let other = Matrix::new(1, 2, vec![2.0, 6.0]).unwrap();
    assert_eq!(s.apply(&other).unwrap().data(), &[0.0, 1.0]);
    assert!(s.apply(&Matrix::new(1, 3, vec![0.0; 3]).unwrap()).is_err());
}
