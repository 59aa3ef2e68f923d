//! The layer stack in models: the loss pairing whatever the top layer is, every kind in one
//! model at the runtime's promises (one submission per step, nothing allocated after warm-up,
//! one optimizer dispatch), exact resume with dropout and batch normalization on both
//! backends, dropout and L2 against overfitting, checkpoints of every kind and of format 1,
//! and bad layer configs.

mod common;

use std::path::PathBuf;

use wgtrain::backend::{reference::ReferenceBackend, Activation, Backend, Optimizer};
use wgtrain::checkpoint::Checkpoint;
use wgtrain::data::{self, Matrix};
use wgtrain::nn::{
    ActivationLayer, BatchNormalization, Dense, Dropout, Layer, LayerWeights, LossFn, Maxout,
    PRelu, RRelu, Regularizer, Sequential, Summary,
};
use wgtrain::train::{Compile, FitConfig, Metric, Model};

fn digits(n: usize) -> (Matrix, Matrix) {
    let (x, y) = data::digits();
    (x.head(n), y.head(n))
}

/// A fresh folder for one test: each call its own, since a check's reference, cpu and gpu
/// variants run at once in threads of one process (sharing one, two saves to a path collided
/// on its temporary file, and one variant's clean-up removed another's checkpoint).
fn temp_dir(name: &str) -> PathBuf {
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!(
        "wgtrain-layers-{name}-{}-{call}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn compile<B: Backend>(spec: Sequential, b: B, loss: LossFn, seed: u64) -> Model<B> {
    spec.compile(
        b,
        Compile::new(loss, Optimizer::adam(3e-3))
            .metrics(&[Metric::Accuracy])
            .seed(seed),
    )
    .unwrap()
}

/// Every value of every layer, trainable and state, as bits.
fn bits<B: Backend>(m: &mut Model<B>) -> Vec<u32> {
    m.weights()
        .unwrap()
        .iter()
        .flat_map(|w| w.values().map(|v| v.to_bits()).collect::<Vec<_>>())
        .collect()
}

/// A model with every kind of layer.
fn every_kind() -> Sequential {
    Sequential::new()
        .add(Dense::new(24, Activation::Linear).kernel_regularizer(Regularizer::l2(1e-3)))
        .add(PRelu::new())
        .add(Dropout::new(0.2))
        .add(BatchNormalization::new())
        .add(Maxout::new(16, 2).kernel_regularizer(Regularizer::l1(1e-4)))
        .add(RRelu::new())
        .add(Dense::new(12, Activation::Selu))
        .add(Dense::new(10, Activation::Linear))
}

fn sparse_logits() -> LossFn {
    LossFn::SparseCategoricalCrossentropy { from_logits: true }
}

/// A softmax folded into the loss gives the same training whether the top Dense layer applies
/// it or an Activation layer on top does; a Dropout of rate 0 below the output changes
/// nothing either. Bit for bit: the same kernels run on the same values.
fn check_the_loss_pairs_whatever_the_top<B: Backend>(backend: impl Fn() -> B) {
    let (x, y) = digits(200);
    let probs = LossFn::SparseCategoricalCrossentropy { from_logits: false };
    let config = || {
        FitConfig::epochs(2)
            .batch_size(32)
            .validation_split(0.2)
            .verbose(0)
    };
    let hidden = || Sequential::new().add(Dense::new(16, Activation::Tanh));
    let specs = [
        hidden().add(Dense::new(10, Activation::Softmax)),
        hidden()
            .add(Dense::new(10, Activation::Linear))
            .add(ActivationLayer::new(Activation::Softmax)),
        hidden()
            .add(Dropout::new(0.0))
            .add(Dense::new(10, Activation::Softmax)),
    ];
    let mut runs = Vec::new();
    for spec in specs {
        let mut m = compile(spec, backend(), probs, 5);
        assert!(m.head().on_logits, "the softmax is folded into the loss");
        let h = m.fit(&x, &y, config()).unwrap();
        let p = m.predict(&x.head(8), 8).unwrap();
        let w: Vec<u32> = m
            .weights()
            .unwrap()
            .iter()
            .flat_map(|w| w.values().map(|v| v.to_bits()).collect::<Vec<_>>())
            .collect();
        runs.push((h.get("val_loss").unwrap().to_vec(), p, w));
    }
    for (i, r) in runs.iter().enumerate().skip(1) {
        assert_eq!(r.0, runs[0].0, "model {i}: validation losses");
        assert_eq!(r.1, runs[0].1, "model {i}: predictions");
        assert_eq!(r.2, runs[0].2, "model {i}: weights");
    }
}
model_test!(
    the_loss_pairs_whatever_the_top,
    check_the_loss_pairs_whatever_the_top
);

/// Every kind in one model trains: the loss falls and stays finite, validation and predict
/// run the inference forms (no dropout: predict is deterministic).
fn check_every_kind_trains<B: Backend>(backend: impl Fn() -> B) {
    let (x, y) = digits(400);
    let mut m = compile(every_kind(), backend(), sparse_logits(), 2);
    let h = m
        .fit(
            &x,
            &y,
            FitConfig::epochs(6)
                .batch_size(32)
                .validation_split(0.25)
                .verbose(0),
        )
        .unwrap();
    let loss = h.get("loss").unwrap();
    assert!(loss.iter().all(|v| v.is_finite()), "{loss:?}");
    assert!(loss[5] < 0.7 * loss[0], "the loss should fall: {loss:?}");
    let acc = h.get("val_accuracy").unwrap();
    // The moving statistics (momentum 0.99) are still settling after 60 steps; the validation
    // accuracy, which uses them, rises all the same.
    assert!(acc[5] > acc[0] + 0.3, "validation accuracy {acc:?}");
    assert_eq!(m.predict(&x, 50).unwrap(), m.predict(&x, 50).unwrap());
}
model_test!(every_kind_trains, check_every_kind_trains);

#[test]
fn every_kind_is_one_submit_per_step_one_optimizer_dispatch_and_no_allocation() {
    let Some(g) = common::gpu() else { return };
    let (x, y) = digits(200);
    let (xv, yv) = (x.head(48), y.head(48));
    let config = || {
        FitConfig::epochs(2)
            .batch_size(32)
            .validation_data(xv.clone(), yv.clone())
            .verbose(0)
    };
    let mut m = compile(every_kind(), g, sparse_logits(), 1);
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
    let (steps, val_steps) = (7, 2);
    assert_eq!(
        after.submits - warm.submits,
        2 * (steps + 1 + val_steps + 1)
    );
    // The profile names each dispatch: one optimizer dispatch per step over every parameter
    // (where the adapter can time dispatches; lavapipe may not).
    let mut b = common::gpu().unwrap();
    if b.enable_profiling().is_err() {
        eprintln!("no timestamp queries on this adapter: the dispatch count is not checked");
        return;
    }
    let mut m = compile(every_kind(), b, sparse_logits(), 1);
    m.fit(
        &x.head(64),
        &y.head(64),
        FitConfig::epochs(1).batch_size(32).verbose(0),
    )
    .unwrap();
    let times = m.backend().kernel_times();
    let updates: u64 = times
        .iter()
        .filter(|t| t.kernel.starts_with("opt_"))
        .map(|t| t.dispatches)
        .sum();
    assert_eq!(updates, 2, "one optimizer dispatch per step: {times:?}");
}

/// Training 2 epochs, saving, loading and training 2 more gives, bit for bit, the weights and
/// moving statistics of 4 epochs in one go: dropout masks come from (seed, layer, step), the
/// moving statistics are saved, and the kernels run in a fixed order on both backends.
fn check_resume_with_dropout_and_batchnorm<B: Backend>(backend: impl Fn() -> B) {
    let dir = temp_dir("resume");
    let path = dir.join("epoch2.safetensors");
    let (x, y) = digits(240);
    let fit = |epochs, initial| {
        FitConfig::epochs(epochs)
            .batch_size(20)
            .validation_split(0.2)
            .verbose(0)
            .initial_epoch(initial)
    };
    let mut straight = compile(every_kind(), backend(), sparse_logits(), 4);
    straight.fit(&x, &y, fit(4, 0)).unwrap();
    let mut first = compile(every_kind(), backend(), sparse_logits(), 4);
    first.fit(&x, &y, fit(2, 0)).unwrap();
    first.save(&path).unwrap();
    drop(first);
    let mut resumed = Model::load(&path, backend()).unwrap();
    resumed.fit(&x, &y, fit(4, 2)).unwrap();
    assert_eq!(resumed.steps(), straight.steps());
    assert_eq!(bits(&mut resumed), bits(&mut straight), "not bit-exact");
    std::fs::remove_dir_all(dir).ok();
}
model_test!(
    resume_with_dropout_and_batchnorm_is_bit_exact,
    check_resume_with_dropout_and_batchnorm
);

/// On 150 training digits a wide network overfits; Dropout, and separately an L2 penalty,
/// leave a smaller final generalization gap (validation loss minus training loss, both with
/// the penalty as Keras reports them), on average over three seeds (one seed's curves are
/// noisy enough to cross).
fn check_dropout_and_l2_shrink_the_gap<B: Backend>(backend: impl Fn() -> B) {
    let (x, y) = data::digits();
    let (x_train, y_train) = (x.head(150), y.head(150));
    let (x_val, y_val) = (x.split_at(1000).1.head(400), y.split_at(1000).1.head(400));
    let gap = |extra: Option<Layer>, reg: Option<Regularizer>| {
        let mut total = 0.0;
        for seed in [11, 12, 13] {
            let mut d = Dense::new(512, Activation::Relu);
            d.kernel_regularizer = reg;
            let mut spec = Sequential::new().add(d);
            if let Some(l) = extra.clone() {
                spec = spec.add(l);
            }
            let spec = spec.add(Dense::new(10, Activation::Linear));
            let mut m = compile(spec, backend(), sparse_logits(), seed);
            let h = m
                .fit(
                    &x_train,
                    &y_train,
                    FitConfig::epochs(60)
                        .batch_size(32)
                        .validation_data(x_val.clone(), y_val.clone())
                        .verbose(0),
                )
                .unwrap();
            let last = |name: &str| *h.get(name).unwrap().last().unwrap();
            total += last("val_loss") - last("loss");
        }
        total / 3.0
    };
    let plain = gap(None, None);
    let dropout = gap(Some(Layer::Dropout(Dropout::new(0.8))), None);
    let l2 = gap(None, Some(Regularizer::l2(1e-2)));
    assert!(plain > 0.2, "the plain network should overfit: gap {plain}");
    assert!(dropout < plain, "dropout: gap {dropout} against {plain}");
    assert!(l2 < plain, "L2: gap {l2} against {plain}");
}
model_test!(
    dropout_and_l2_shrink_the_gap,
    check_dropout_and_l2_shrink_the_gap
);

#[test]
fn a_training_batch_of_one_through_batchnorm_stays_finite() {
    let (x, y) = digits(20);
    let spec = Sequential::new()
        .add(Dense::new(8, Activation::Relu))
        .add(BatchNormalization::new())
        .add(Dense::new(10, Activation::Linear));
    let mut m = compile(spec, ReferenceBackend::new(), sparse_logits(), 3);
    let h = m
        .fit(&x, &y, FitConfig::epochs(2).batch_size(1).verbose(0))
        .unwrap();
    assert!(h.get("loss").unwrap().iter().all(|v| v.is_finite()));
    assert!(m
        .predict(&x, 4)
        .unwrap()
        .data()
        .iter()
        .all(|v| v.is_finite()));
}

#[test]
fn checkpoints_name_tensors_per_kind_and_keep_the_moving_statistics() {
    let dir = temp_dir("names");
    let path = dir.join("m.safetensors");
    let (x, y) = digits(100);
    let mut m = compile(every_kind(), ReferenceBackend::new(), sparse_logits(), 6);
    m.fit(&x, &y, FitConfig::epochs(1).batch_size(25).verbose(0))
        .unwrap();
    m.save(&path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut names: Vec<&str> = st
        .names()
        .into_iter()
        .filter(|n| !n.starts_with("optimizer."))
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "batchnorm_0.beta",
            "batchnorm_0.gamma",
            "batchnorm_0.moving_mean",
            "batchnorm_0.moving_variance",
            "dense_0.bias",
            "dense_0.weight",
            "dense_1.bias",
            "dense_1.weight",
            "dense_2.bias",
            "dense_2.weight",
            "maxout_0.bias",
            "maxout_0.weight",
            "prelu_0.alpha",
        ]
    );
    assert_eq!(st.tensor("maxout_0.weight").unwrap().shape(), [24, 32]);
    // The moving statistics moved (from 0 and 1), and the loaded model predicts the same.
    let w = m.weights().unwrap();
    assert!(w[3].state[0].values.iter().any(|&v| v != 0.0));
    let mut loaded = Model::load(&path, ReferenceBackend::new()).unwrap();
    assert_eq!(loaded.predict(&x, 30).unwrap(), m.predict(&x, 30).unwrap());
    assert_eq!(bits(&mut loaded), bits(&mut m));
    std::fs::remove_dir_all(dir).ok();
}

/// A checkpoint of format 1 (before the layer stack: Dense layers without a kind) loads as
/// Dense layers and predicts what its weights say.
#[test]
fn a_format_1_checkpoint_still_loads() {
    let (x, y) = digits(60);
    let spec = Sequential::new()
        .add(Dense::new(8, Activation::Relu))
        .add(Dense::new(10, Activation::Linear));
    let mut m = compile(spec, ReferenceBackend::new(), sparse_logits(), 8);
    m.fit(&x, &y, FitConfig::epochs(1).batch_size(20).verbose(0))
        .unwrap();
    let ckpt = m.checkpoint().unwrap();
    let bytes = ckpt.to_bytes().unwrap();
    // Rewrite the config as format 1 wrote it.
    let (n, header) = {
        let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        let h: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
        (n, h)
    };
    let mut header = header;
    let config = header["__metadata__"]["wgtrain.config"]
        .as_str()
        .unwrap()
        .to_string();
    let mut config: serde_json::Value = serde_json::from_str(&config).unwrap();
    config["format"] = "wgtrain-checkpoint-1".into();
    for l in config["layers"].as_array_mut().unwrap() {
        l.as_object_mut().unwrap().remove("kind");
    }
    header["__metadata__"]["wgtrain.config"] = config.to_string().into();
    let mut text = header.to_string();
    while (8 + text.len()) % 8 != 0 {
        text.push(' ');
    }
    let mut old = (text.len() as u64).to_le_bytes().to_vec();
    old.extend_from_slice(text.as_bytes());
    old.extend_from_slice(&bytes[8 + n..]);
    let loaded = Checkpoint::from_bytes(&old, "format-1 file").unwrap();
    assert!(matches!(loaded.config.layers[0], Layer::Dense(_)));
    let mut back = Model::from_checkpoint(ReferenceBackend::new(), &loaded).unwrap();
    assert_eq!(back.predict(&x, 20).unwrap(), m.predict(&x, 20).unwrap());
}

#[test]
fn the_summary_counts_as_keras() {
    // Keras: Dense(24) on 64 inputs 1,560; PReLU 24; Dropout 0; BatchNormalization 96 (48 of
    // them not trained); Maxout 2 × (24·16 + 16) = 800; RReLU 0; Dense(12) 204; Dense(10) 130.
    let s = Summary::of(&every_kind(), 64);
    let params: Vec<usize> = s.layers.iter().map(|r| r.params).collect();
    assert_eq!(params, [1560, 24, 0, 96, 800, 0, 204, 130]);
    assert_eq!(
        (s.total_params, s.trainable_params, s.non_trainable_params),
        (2814, 2766, 48)
    );
    let names: Vec<&str> = s.layers.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "dense_0",
            "prelu_0",
            "dropout_0",
            "batchnorm_0",
            "maxout_0",
            "rrelu_0",
            "dense_1",
            "dense_2"
        ]
    );
    let text = s.to_string();
    assert!(text.contains("batchnorm_0 (BatchNormalization)"), "{text}");
    assert!(text.contains("Non-trainable params: 48"), "{text}");
    // The model agrees once built.
    let mut m = compile(every_kind(), ReferenceBackend::new(), sparse_logits(), 0);
    m.build(64).unwrap();
    assert_eq!(m.parameter_count(), Some(2766));
    assert_eq!(m.summary().unwrap(), s);
}

#[test]
fn bad_layer_configs_are_errors_naming_the_layer() {
    let cases: Vec<(Sequential, &str)> = vec![
        (
            Sequential::new()
                .add(Dropout::new(1.0))
                .add(Dense::new(2, Activation::Linear)),
            "layer 0 (dropout): a dropout rate must be in [0, 1)",
        ),
        (
            Sequential::new()
                .add(Dropout::new(-0.1))
                .add(Dense::new(2, Activation::Linear)),
            "layer 0 (dropout)",
        ),
        (
            Sequential::new()
                .add(Maxout::new(4, 1))
                .add(Dense::new(2, Activation::Linear)),
            "layer 0 (maxout): maxout needs at least 2 pieces",
        ),
        (
            Sequential::new()
                .add(Dense::new(4, Activation::Relu).kernel_regularizer(Regularizer::l2(-1.0)))
                .add(Dense::new(2, Activation::Linear)),
            "layer 0 (dense): a regularizer's factors must be finite and ≥ 0",
        ),
        (
            Sequential::new().add(BatchNormalization::new()),
            "no Dense or Maxout layer",
        ),
    ];
    for (spec, want) in cases {
        let err = spec
            .compile(
                ReferenceBackend::new(),
                Compile::new(sparse_logits(), Optimizer::adam(1e-3)),
            )
            .unwrap_err()
            .to_string();
        assert!(err.contains(want), "`{err}` does not say `{want}`");
    }
    // Weights of the wrong shape for a layer name it.
    let mut m = compile(every_kind(), ReferenceBackend::new(), sparse_logits(), 0);
    m.build(64).unwrap();
    let mut w = m.weights().unwrap();
    w[3] = LayerWeights::default();
    let err = m.set_weights(&w).unwrap_err().to_string();
    assert!(err.contains("layer 3 (batchnorm)"), "{err}");
}

/// `restore_best_weights` goes back, on the device, to the weights and the moving statistics
/// of the best epoch: those `ModelCheckpoint::best_only` saved at that epoch, bit for bit.
fn check_restore_best_keeps_the_layer_state<B: Backend>(backend: impl Fn() -> B) {
    use wgtrain::train::{EarlyStopping, ModelCheckpoint};
    let dir = temp_dir("best");
    let path = dir.join("best.safetensors");
    // 60 training rows and many epochs: the validation loss turns up, so the best epoch is
    // not the last.
    let (x, y) = digits(100);
    // Moving statistics that follow the batches quickly (momentum 0.5), so that they do not
    // hold the validation loss down on their own.
    let mut m = Sequential::new()
        .add(Dense::new(64, Activation::Relu))
        .add(BatchNormalization {
            momentum: 0.5,
            epsilon: 1e-3,
        })
        .add(Dropout::new(0.3))
        .add(Dense::new(10, Activation::Linear))
        .compile(
            backend(),
            Compile::new(sparse_logits(), Optimizer::adam(0.01)).seed(12),
        )
        .unwrap();
    let h = m
        .fit(
            &x,
            &y,
            FitConfig::epochs(30)
                .batch_size(20)
                .validation_split(0.4)
                .verbose(0)
                .callback(EarlyStopping::new("val_loss", 20).restore_best_weights(true))
                .callback(ModelCheckpoint::best_only(&path, "val_loss")),
        )
        .unwrap();
    // The restore changes something.
    let val = h.get("val_loss").unwrap();
    let best = (0..val.len())
        .min_by(|&a, &b| val[a].total_cmp(&val[b]))
        .unwrap();
    assert!(best + 1 < val.len(), "the last epoch was the best: {val:?}");
    let mut best = Model::load(&path, backend()).unwrap();
    assert_eq!(
        bits(&mut m),
        bits(&mut best),
        "not the best epoch's weights and state"
    );
    std::fs::remove_dir_all(dir).ok();
}
model_test!(
    restore_best_keeps_the_layer_state,
    check_restore_best_keeps_the_layer_state
);

/// The device copy, over a whole group in one pass and tensor by tensor.
fn check_copy<B: Backend>(b: &mut B) {
    let shapes = [[3, 5], [1, 5], [17, 2]];
    let mut r = common::rng(60);
    let values: Vec<Vec<f32>> = shapes
        .iter()
        .map(|s| common::uniform(&mut r, s[0] * s[1], -1.0, 1.0))
        .collect();
    let mut src = b.zeros_group(&shapes).unwrap();
    for (t, v) in src.iter_mut().zip(&values) {
        b.write(t, v).unwrap();
    }
    let mut grouped = b.zeros_group(&shapes).unwrap();
    b.copy_all(&src, &mut grouped).unwrap();
    let mut loose: Vec<B::Tensor> = shapes
        .iter()
        .map(|s| b.zeros(s[0], s[1]).unwrap())
        .collect();
    b.copy_all(&src, &mut loose).unwrap();
    for j in 0..shapes.len() {
        assert_eq!(b.read(&grouped[j]).unwrap(), values[j]);
        assert_eq!(b.read(&loose[j]).unwrap(), values[j]);
    }
    assert!(b.copy(&src[0], &mut loose[1]).is_err(), "shapes differ");
}
backend_test!(copy, check_copy);

/// The backward pass of a whole stack with every kind of layer, in training (the batch's
/// statistics, this step's dropout mask and RReLU slopes), against central differences of
/// the training loss: the gradient that one SGD step with learning rate 1 applies, against
/// the loss of fresh models at step 1 with one weight moved. Biases start away from 0 and
/// PReLU's slopes at 0.3, so that no kink (a row dropped whole, a maxout tie at 0) sits
/// where the differences are taken.
#[test]
fn a_whole_stack_backward_is_the_gradient_of_its_training_loss() {
    use wgtrain::nn::Initializer;
    let bias = Initializer::RandomUniform {
        minval: -0.5,
        maxval: 0.5,
    };
    let spec = || {
        let mut maxout = Maxout::new(3, 2);
        maxout.bias_initializer = bias.clone();
        Sequential::new()
            .add(Dense::new(5, Activation::Tanh).bias_initializer(bias.clone()))
            .add(BatchNormalization::new())
            .add(Dropout::new(0.4))
            .add(maxout)
            .add(PRelu::new())
            .add(RRelu::new())
            .add(Dense::new(4, Activation::Selu).bias_initializer(bias.clone()))
            .add(
                Dense::new(3, Activation::Linear)
                    .kernel_regularizer(Regularizer::l1_l2(0.01, 0.02)),
            )
    };
    let model = |lr: f32| {
        spec()
            .compile(
                ReferenceBackend::new(),
                Compile::new(sparse_logits(), Optimizer::Sgd { lr }).seed(3),
            )
            .unwrap()
    };
    let mut r = common::rng(61);
    let x = Matrix::new(8, 4, common::uniform(&mut r, 32, -1.0, 1.0)).unwrap();
    let y = Matrix::new(8, 1, (0..8).map(|i| (i % 3) as f32).collect()).unwrap();
    let config = || FitConfig::epochs(1).batch_size(8).shuffle(false).verbose(0);
    let mut m = model(1.0);
    m.build(4).unwrap();
    let mut w0 = m.weights().unwrap();
    w0[4].params[0].values.fill(0.3);
    m.set_weights(&w0).unwrap();
    m.fit(&x, &y, config()).unwrap();
    let w1 = m.weights().unwrap();
    let loss_at = |w: &[LayerWeights]| {
        let mut m = model(0.0);
        m.build(4).unwrap();
        m.set_weights(w).unwrap();
        m.fit(&x, &y, config()).unwrap().get("loss").unwrap()[0]
    };
    let h = 1e-3;
    for l in 0..w0.len() {
        for p in 0..w0[l].params.len() {
            for i in 0..w0[l].params[p].values.len() {
                let analytic = (w0[l].params[p].values[i] - w1[l].params[p].values[i]) as f64;
                let (mut plus, mut minus) = (w0.clone(), w0.clone());
                plus[l].params[p].values[i] += h;
                minus[l].params[p].values[i] -= h;
                let numeric = (loss_at(&plus) - loss_at(&minus)) / (2.0 * h as f64);
                assert!(
                    (analytic - numeric).abs() <= 5e-4 + 1e-2 * numeric.abs(),
                    "layer {l} tensor {p} [{i}]: backward {analytic}, finite difference {numeric}"
                );
            }
        }
    }
}
