//! PyTorch state_dicts read as wgtrain models (src/torch.rs): the mapping, and every way such
//! a file can be wrong, each a clear error. The round trip with torch itself is in
//! scripts/interop.py (tests/interop.rs).

use safetensors::tensor::{Dtype, TensorView};
use wgtrain::backend::reference::ReferenceBackend;
use wgtrain::backend::Activation;
use wgtrain::checkpoint::Checkpoint;
use wgtrain::data::Matrix;
use wgtrain::torch::TorchLayout;
use wgtrain::train::Model;

/// A tensor: its name, shape and values.
type Named = (String, Vec<usize>, Vec<f32>);

fn state_dict(tensors: &[(&str, Vec<usize>, Vec<f32>)], dtype: Dtype) -> Vec<u8> {
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|(n, s, v)| {
            let b = match dtype {
                Dtype::F16 => v.iter().flat_map(|_| [0u8, 0]).collect(),
                _ => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            };
            (n.to_string(), s.clone(), b)
        })
        .collect();
    let views: Vec<(String, TensorView)> = bytes
        .iter()
        .map(|(n, s, b)| (n.clone(), TensorView::new(dtype, s.clone(), b).unwrap()))
        .collect();
    let meta = std::collections::HashMap::from([("format".to_string(), "pt".to_string())]);
    safetensors::serialize(views, Some(meta)).unwrap()
}

fn load(bytes: &[u8], layout: Option<TorchLayout>) -> wgtrain::Result<Checkpoint> {
    let path = std::env::temp_dir().join(format!(
        "wgtrain-torch-{}-{}.safetensors",
        std::process::id(),
        bytes.len()
    ));
    std::fs::write(&path, bytes).unwrap();
    let r = Checkpoint::load_with(&path, layout);
    std::fs::remove_file(&path).ok();
    r
}

const RELU_SOFTMAX: TorchLayout = TorchLayout {
    hidden: Activation::Relu,
    output: Activation::Softmax,
};

#[test]
fn a_linear_stack_maps_to_dense_layers_with_transposed_weights() {
    // nn.Sequential(Linear(2, 3), ReLU(), Linear(3, 2)): module indices 0 and 2.
    let w0 = vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]; // [3, 2]
    let w2 = vec![1.0, 0.0, -1.0, 0.5, 0.5, 0.5]; // [2, 3]
    let bytes = state_dict(
        &[
            ("0.weight", vec![3, 2], w0),
            ("0.bias", vec![3], vec![0.1, 0.2, 0.3]),
            ("2.weight", vec![2, 3], w2),
            ("2.bias", vec![2], vec![0.0, 1.0]),
        ],
        Dtype::F32,
    );
    let ckpt = load(&bytes, Some(RELU_SOFTMAX)).unwrap();
    assert_eq!(ckpt.config.input_dim, 2);
    assert_eq!(ckpt.weights[0].weight(), [1.0, 3.0, 5.0, 2.0, 4.0, 6.0]);
    assert_eq!(
        ckpt.config.layers[1].output_activation(),
        Some(Activation::Softmax)
    );
    // The forward pass by hand: x = (1, -1).
    let h: Vec<f64> = [(1.0 - 2.0) + 0.1, (3.0 - 4.0) + 0.2, (5.0 - 6.0) + 0.3]
        .iter()
        .map(|&v: &f64| v.max(0.0))
        .collect();
    let z = [h[0] - h[2], 0.5 * (h[0] + h[1] + h[2]) + 1.0];
    let e = [z[0].exp(), z[1].exp()];
    let mut model = Model::from_checkpoint(ReferenceBackend::new(), &ckpt).unwrap();
    let p = model
        .predict(&Matrix::new(1, 2, vec![1.0, -1.0]).unwrap(), 1)
        .unwrap();
    for (got, want) in p.data().iter().zip(e.map(|v| v / (e[0] + e[1]))) {
        assert!((*got as f64 - want).abs() < 1e-6, "{:?}", p.data());
    }
}

#[test]
fn bad_state_dicts_are_errors_that_say_why() {
    let w = |n: &str, s: Vec<usize>| -> Named {
        (n.to_string(), s.clone(), vec![0.5f32; s.iter().product()])
    };
    let cases: Vec<(Vec<Named>, Dtype, &str)> = vec![
        (
            vec![w("0.weight", vec![3, 2]), w("2.weight", vec![2, 4])],
            Dtype::F32,
            "do not chain",
        ),
        (
            vec![w("0.bias", vec![3])],
            Dtype::F32,
            "is not an nn.Linear",
        ),
        (
            vec![w("0.weight", vec![3, 2, 1])],
            Dtype::F32,
            "[out_features, in_features]",
        ),
        (
            vec![w("0.weight", vec![3, 2]), w("0.bias", vec![4])],
            Dtype::F32,
            "expected [3]",
        ),
        (vec![w("0.weight", vec![3, 2])], Dtype::F16, "float32"),
        // One softmax output cannot be a classifier.
        (
            vec![w("0.weight", vec![1, 2])],
            Dtype::F32,
            "--output-activation softmax",
        ),
    ];
    for (tensors, dtype, says) in cases {
        let t: Vec<(&str, Vec<usize>, Vec<f32>)> = tensors
            .iter()
            .map(|(n, s, v)| (n.as_str(), s.clone(), v.clone()))
            .collect();
        let err = load(&state_dict(&t, dtype), Some(RELU_SOFTMAX))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(says) && err.contains("PyTorch state_dict"),
            "{says}: {err}"
        );
    }
    // Without the activations, a state_dict is refused with the command that reads it.
    let ok = state_dict(&[("0.weight", vec![3, 2], vec![0.0; 6])], Dtype::F32);
    let err = load(&ok, None).unwrap_err().to_string();
    assert!(err.contains("--output-activation"), "{err}");
}
