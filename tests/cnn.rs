//! Convolutional networks: a CNN learns the digits on every backend, the backends agree on
//! its training, its summary counts as Keras', shapes that do not fit are errors naming the
//! layer and both shapes when the model is built, checkpoints carry Keras' kernel layout,
//! resume is bit-exact, and the whole stack's backward is the gradient of its loss.

mod common;

use wgtrain::backend::{reference::ReferenceBackend, Activation, Backend, Optimizer, Padding};
use wgtrain::checkpoint::Checkpoint;
use wgtrain::data::{self, Matrix};
use wgtrain::nn::{
    AveragePooling2D, Conv2D, Dense, Flatten, GlobalAveragePooling2D, LayerWeights, LossFn,
    MaxPooling2D, Sequential, Summary,
};
use wgtrain::tolerance::Tolerance;
use wgtrain::train::{Compile, FitConfig, Metric, Model};

fn sparse_logits() -> LossFn {
    LossFn::SparseCategoricalCrossentropy { from_logits: true }
}

/// The digits as 8×8×1 images: conv 3×3 'same' (16 filters, relu), 2×2 max pooling,
/// flatten, 10 logits.
fn digits_cnn() -> Sequential {
    Sequential::new()
        .input_shape([8, 8, 1])
        .add(Conv2D::new(16, 3, Activation::Relu).padding(Padding::Same))
        .add(MaxPooling2D::new(2))
        .add(Flatten::new())
        .add(Dense::new(10, Activation::Linear))
}

fn compile<B: Backend>(spec: Sequential, b: B, lr: f32) -> Model<B> {
    spec.compile(
        b,
        Compile::new(sparse_logits(), Optimizer::adam(lr))
            .metrics(&[Metric::Accuracy])
            .seed(4),
    )
    .unwrap()
}

fn fit(epochs: usize) -> FitConfig {
    FitConfig::epochs(epochs)
        .batch_size(32)
        .shuffle(true)
        .verbose(0)
}

/// Trained on a seeded 80% of the digits for 15 epochs, the CNN classifies the other 20% at
/// over 95% (96.7% on the CPU backend when this was written; a 64-unit MLP gets 96.4%).
fn check_a_cnn_learns_the_digits<B: Backend>(backend: impl Fn() -> B) {
    let (x, y) = data::digits();
    let (xt, yt, xv, yv) = data::train_test_split(&x, &y, 0.2, 0).unwrap();
    let mut m = compile(digits_cnn(), backend(), 3e-3);
    let h = m.fit(&xt, &yt, fit(15)).unwrap();
    let loss = h.get("loss").unwrap();
    assert!(loss.last() < loss.first(), "{loss:?}");
    let acc = m.evaluate(&xv, &yv, 100).unwrap().get("accuracy").unwrap();
    assert!(acc > 0.95, "test accuracy {acc}");
}
model_test!(a_cnn_learns_the_digits, check_a_cnn_learns_the_digits);

/// Two epochs of a CNN with both poolings and 'same' padding give the reference's weights on
/// every backend, within the parity tolerance of a few hundred steps.
fn check_backends_agree_on_cnn_training<B: Backend>(backend: impl Fn() -> B) {
    let spec = || {
        Sequential::new()
            .input_shape([8, 8, 1])
            .add(Conv2D::new(6, 3, Activation::Tanh).padding(Padding::Same))
            .add(AveragePooling2D::new(2))
            .add(Conv2D::new(5, 2, Activation::Relu).strides(2))
            .add(MaxPooling2D::new(2).padding(Padding::Same))
            .add(Flatten::new())
            .add(Dense::new(10, Activation::Linear))
    };
    let (x, y) = data::digits();
    let (x, y) = (x.head(320), y.head(320));
    let mut want = compile(spec(), ReferenceBackend::new(), 3e-3);
    want.fit(&x, &y, fit(2)).unwrap();
    let mut got = compile(spec(), backend(), 3e-3);
    got.fit(&x, &y, fit(2)).unwrap();
    let tol = Tolerance::new(2e-4, 2e-3);
    for (a, b) in got.weights().unwrap().iter().zip(want.weights().unwrap()) {
        for (p, q) in a.params.iter().zip(&b.params) {
            common::assert_close("CNN weights after 2 epochs", tol, &p.values, &q.values);
        }
    }
}
model_test!(
    backends_agree_on_cnn_training,
    check_backends_agree_on_cnn_training
);

/// Keras' classic MNIST CNN: Conv2D(32, 3) 320, MaxPooling2D, Conv2D(64, 3) 18,496,
/// MaxPooling2D, Flatten (1,600), Dense(128) 204,928, Dense(10) 1,290: 225,034 in all.
#[test]
fn the_summary_counts_as_keras() {
    let spec = Sequential::new()
        .input_shape([28, 28, 1])
        .add(Conv2D::new(32, 3, Activation::Relu))
        .add(MaxPooling2D::new(2))
        .add(Conv2D::new(64, 3, Activation::Relu))
        .add(MaxPooling2D::new(2))
        .add(Flatten::new())
        .add(Dense::new(128, Activation::Relu))
        .add(Dense::new(10, Activation::Linear));
    let s = Summary::of(&spec, 784);
    let params: Vec<usize> = s.layers.iter().map(|r| r.params).collect();
    assert_eq!(params, [320, 0, 18496, 0, 0, 204928, 1290]);
    assert_eq!(s.total_params, 225_034);
    let text = s.to_string();
    for shape in [
        "(None, 26, 26, 32)",
        "(None, 13, 13, 32)",
        "(None, 11, 11, 64)",
        "(None, 5, 5, 64)",
        "(None, 1600)",
        "conv2d_1 (Conv2D)",
        "max_pooling2d_0 (MaxPooling2D)",
        "flatten_0 (Flatten)",
    ] {
        assert!(text.contains(shape), "{shape} in\n{text}");
    }
    // Global average pooling: 64 channels to 64 features.
    let gap = Sequential::new()
        .input_shape([6, 6, 3])
        .add(Conv2D::new(64, 3, Activation::Relu))
        .add(GlobalAveragePooling2D::new())
        .add(Dense::new(10, Activation::Linear));
    let s = Summary::of(&gap, 108);
    let widths: Vec<usize> = s.layers.iter().map(|r| r.output_width).collect();
    assert_eq!(widths, [4 * 4 * 64, 64, 10]);
}

/// A layer whose input does not fit is an error naming the layer and both shapes, when the
/// model is compiled; a convolution without an input shape says where one comes from; data
/// of the wrong width says both widths when the model is built.
#[test]
fn shapes_that_do_not_fit_are_errors_naming_the_layer() {
    let err = |spec: Sequential| {
        let compiled = spec.compile(
            ReferenceBackend::new(),
            Compile::new(sparse_logits(), Optimizer::adam(1e-3)),
        );
        match compiled {
            Ok(_) => panic!("the stack compiled"),
            Err(e) => e.to_string(),
        }
    };
    let e = err(Sequential::new()
        .input_shape([4, 4, 1])
        .add(Conv2D::new(4, 3, Activation::Relu))
        .add(Conv2D::new(4, 3, Activation::Relu))
        .add(Flatten::new())
        .add(Dense::new(2, Activation::Linear)));
    assert!(
        e.contains("layer 1 (conv2d_1)") && e.contains("3×3") && e.contains("2×2"),
        "{e}"
    );
    let e = err(Sequential::new()
        .input_shape([3, 3, 2])
        .add(MaxPooling2D::new(4))
        .add(Flatten::new())
        .add(Dense::new(2, Activation::Linear)));
    assert!(
        e.contains("max_pooling2d_0") && e.contains("4×4") && e.contains("3×3"),
        "{e}"
    );
    let e = err(Sequential::new()
        .add(Conv2D::new(4, 3, Activation::Relu))
        .add(Flatten::new())
        .add(Dense::new(2, Activation::Linear)));
    assert!(e.contains("conv2d_0") && e.contains("input shape"), "{e}");
    let e = err(Sequential::new()
        .input_shape([8, 8, 1])
        .add(Flatten::new())
        .add(MaxPooling2D::new(2))
        .add(Dense::new(2, Activation::Linear)));
    assert!(e.contains("max_pooling2d_0") && e.contains("flat"), "{e}");
    let e = err(Sequential::new()
        .input_shape([8, 8, 1])
        .add(Conv2D::new(4, 3, Activation::Softmax))
        .add(Flatten::new())
        .add(Dense::new(2, Activation::Linear)));
    assert!(e.contains("softmax"), "{e}");

    let mut m = compile(digits_cnn(), ReferenceBackend::new(), 1e-3);
    let x = Matrix::new(2, 49, vec![0.0; 98]).unwrap();
    let y = Matrix::new(2, 1, vec![0.0, 1.0]).unwrap();
    let e = m.fit(&x, &y, fit(1)).unwrap_err().to_string();
    assert!(
        e.contains("8×8×1") && e.contains("64") && e.contains("49"),
        "{e}"
    );
}

/// A checkpoint names a convolution's tensors `conv2d_{i}.kernel` `[kh, kw, C, F]` and
/// `conv2d_{i}.bias` `[F]`; loading it restores the layers' image shapes, and training on from
/// it gives the weights of a run that never stopped, bit for bit.
#[test]
fn checkpoints_keep_the_kernel_layout_and_resume_exactly() {
    let dir = std::env::temp_dir().join(format!("wgtrain-cnn-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("cnn.safetensors");
    let (x, y) = data::digits();
    let (x, y) = (x.head(256), y.head(256));
    let mut straight = compile(digits_cnn(), ReferenceBackend::new(), 3e-3);
    straight.fit(&x, &y, fit(3)).unwrap();
    let mut first = compile(digits_cnn(), ReferenceBackend::new(), 3e-3);
    first.fit(&x, &y, fit(1)).unwrap();
    first.save(&path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let shape = |name: &str| st.tensor(name).unwrap().shape().to_vec();
    assert_eq!(shape("conv2d_0.kernel"), [3, 3, 1, 16]);
    assert_eq!(shape("conv2d_0.bias"), [16]);
    assert!(Checkpoint::load(&path).is_ok());
    let mut resumed = Model::load(&path, ReferenceBackend::new()).unwrap();
    let done = resumed.epochs_done();
    resumed.fit(&x, &y, fit(3).initial_epoch(done)).unwrap();
    let bits = |m: &mut Model<ReferenceBackend>| -> Vec<u32> {
        m.weights()
            .unwrap()
            .iter()
            .flat_map(|w: &LayerWeights| w.values().map(|v| v.to_bits()).collect::<Vec<_>>())
            .collect()
    };
    assert_eq!(bits(&mut resumed), bits(&mut straight));
    std::fs::remove_dir_all(dir).ok();
}

/// One SGD step of lr 1 moves every weight of a CNN (convolutions with and without bias,
/// 'same' padding, stride 2, both poolings) by its gradient: held to central differences of
/// the training loss, on the reference.
#[test]
fn a_cnn_backward_is_the_gradient_of_its_training_loss() {
    use wgtrain::nn::Initializer;
    let spec = || {
        let mut first = Conv2D::new(3, 3, Activation::Tanh).padding(Padding::Same);
        first.bias_initializer = Initializer::RandomUniform {
            minval: -0.5,
            maxval: 0.5,
        };
        Sequential::new()
            .input_shape([6, 5, 2])
            .add(first)
            .add(MaxPooling2D::new(2).padding(Padding::Same))
            .add(Conv2D::new(4, 2, Activation::Sigmoid).use_bias(false))
            .add(AveragePooling2D::new(2).strides(1))
            .add(Flatten::new())
            .add(Dense::new(3, Activation::Linear))
    };
    let model = |lr: f32| {
        spec()
            .compile(
                ReferenceBackend::new(),
                Compile::new(sparse_logits(), Optimizer::Sgd { lr }).seed(3),
            )
            .unwrap()
    };
    let mut r = common::rng(64);
    let x = Matrix::new(4, 60, common::uniform(&mut r, 240, -1.0, 1.0)).unwrap();
    let y = Matrix::new(4, 1, vec![0.0, 1.0, 2.0, 1.0]).unwrap();
    let config = || FitConfig::epochs(1).batch_size(4).shuffle(false).verbose(0);
    let mut m = model(1.0);
    m.build(60).unwrap();
    let w0 = m.weights().unwrap();
    m.fit(&x, &y, config()).unwrap();
    let w1 = m.weights().unwrap();
    let loss_at = |w: &[LayerWeights]| {
        let mut m = model(0.0);
        m.build(60).unwrap();
        m.set_weights(w).unwrap();
        m.fit(&x, &y, config()).unwrap().get("loss").unwrap()[0]
    };
    let h = 1e-3;
    let l0 = loss_at(&w0);
    for l in 0..w0.len() {
        for p in 0..w0[l].params.len() {
            for i in 0..w0[l].params[p].values.len() {
                let analytic = (w0[l].params[p].values[i] - w1[l].params[p].values[i]) as f64;
                let (mut plus, mut minus) = (w0.clone(), w0.clone());
                plus[l].params[p].values[i] += h;
                minus[l].params[p].values[i] -= h;
                let (up, down) = (loss_at(&plus), loss_at(&minus));
                let close = |n: f64| (analytic - n).abs() <= 5e-4 + 1e-2 * n.abs();
                let numeric = (up - down) / (2.0 * h as f64);
                // Where a step of h moves a max pool's winner (two values of a window within
                // h of each other) the loss has a kink: the backward is then the derivative
                // on one side of it.
                let one_sided = [(up - l0) / h as f64, (l0 - down) / h as f64];
                assert!(
                    close(numeric) || one_sided.into_iter().any(close),
                    "layer {l} tensor {p} [{i}]: backward {analytic}, finite differences {numeric} (one-sided {one_sided:?})"
                );
            }
        }
    }
}

/// CNN-A's FLOPs as BENCHMARKS.md counts them: 15,396,864 a sample, 1,970,798,592 a step of
/// 128; MLP-A's 410,779,648 a step by the same rule (products only).
#[test]
fn cnn_a_counts_the_flops_benchmarks_md_gives() {
    use wgtrain::bench::{mlp_model, step_flops, Workload};
    let (m, batch) = mlp_model(ReferenceBackend::new(), Workload::CnnA, &[]).unwrap();
    assert_eq!(batch, 128);
    assert_eq!(step_flops(m.layers(), 784, batch), 1_970_798_592.0);
    let (m, batch) = mlp_model(ReferenceBackend::new(), Workload::MlpA, &[]).unwrap();
    assert_eq!(step_flops(m.layers(), 784, batch), 410_779_648.0);
}

/// On the GPU a CNN's step is one submission, and a second fit creates no buffer and no bind
/// group: the windows' buffers (one per shape) and everything else are made while warming up.
#[test]
fn a_cnn_is_one_submit_per_step_and_allocates_nothing_after_warm_up() {
    let Some(g) = common::gpu() else { return };
    let (x, y) = data::digits();
    let (x, y) = (x.head(200), y.head(200));
    let (xv, yv) = (x.head(48), y.head(48));
    let config = || {
        FitConfig::epochs(2)
            .batch_size(32)
            .validation_data(xv.clone(), yv.clone())
            .verbose(0)
    };
    let mut m = compile(digits_cnn(), g, 3e-3);
    m.fit(&x, &y, config()).unwrap();
    let warm = m.backend().stats();
    m.fit(&x, &y, config()).unwrap();
    let after = m.backend().stats();
    assert_eq!(
        after.buffers_created, warm.buffers_created,
        "buffers after warm-up"
    );
    assert_eq!(
        after.bind_groups_created, warm.bind_groups_created,
        "bind groups after warm-up"
    );
    // The count tests/layers.rs holds the MLP layer stack to: 7 training and 2 validation
    // steps an epoch, one submission each, and one more after each set.
    let (steps, val_steps) = (7, 2);
    assert_eq!(
        after.submits - warm.submits,
        2 * (steps + 1 + val_steps + 1)
    );
}
