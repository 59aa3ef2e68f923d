//! The training runtime against the course's worked examples, on both backends.

mod common;

use approx::assert_abs_diff_eq;
use wgtrain::backend::{Activation, Backend, Optimizer};
use wgtrain::data::Matrix;
use wgtrain::nn::{Dense, Initializer, LayerWeights, LossFn, Sequential};
use wgtrain::train::{Compile, FitConfig, Metric};

fn m(rows: usize, cols: usize, data: &[f32]) -> Matrix {
    Matrix::new(rows, cols, data.to_vec()).unwrap()
}

/// One full-batch epoch without shuffling or progress: a plain gradient-descent step.
fn one_step() -> FitConfig {
    FitConfig::epochs(1).shuffle(false).verbose(0)
}

/// The worked backpropagation example: a 3-2-1 sigmoid network, input (1, 0, 1), target 1,
/// one gradient step on ½(T − O)² with learning rate 0.9.
///
/// The runtime's MSE for one sample and one output is (T − O)², whose gradient is twice that
/// of ½(T − O)²; so SGD on MSE with learning rate 0.45 takes exactly the same step.
fn check_worked_backprop_example<B: Backend>(backend: impl Fn() -> B) {
    let hidden = LayerWeights::dense(3, 2, vec![0.2, -0.3, 0.4, 0.1, -0.5, 0.2], vec![-0.4, 0.2]);
    let output = LayerWeights::dense(2, 1, vec![-0.3, -0.2], vec![0.1]);
    let x = m(1, 3, &[1.0, 0.0, 1.0]);
    let y = m(1, 1, &[1.0]);

    // O4, O5: the hidden layer alone.
    let mut h = Sequential::new()
        .add(Dense::new(2, Activation::Sigmoid))
        .compile(
            backend(),
            Compile::new(LossFn::MeanSquaredError, Optimizer::Sgd { lr: 0.45 }),
        )
        .unwrap();
    h.set_weights(std::slice::from_ref(&hidden)).unwrap();
    let o45 = h.predict(&x, 1).unwrap();
    assert_abs_diff_eq!(o45.data()[0], 0.332, epsilon = 5e-4);
    assert_abs_diff_eq!(o45.data()[1], 0.525, epsilon = 5e-4);

    let mut net = Sequential::new()
        .add(Dense::new(2, Activation::Sigmoid))
        .add(Dense::new(1, Activation::Sigmoid))
        .compile(
            backend(),
            Compile::new(LossFn::MeanSquaredError, Optimizer::Sgd { lr: 0.45 }),
        )
        .unwrap();
    net.set_weights(&[hidden, output]).unwrap();
    assert_abs_diff_eq!(net.predict(&x, 1).unwrap().data()[0], 0.474, epsilon = 5e-4);

    net.fit(&x, &y, one_step().batch_size(1)).unwrap();
    let w = net.weights().unwrap();
    let want_hidden = [0.192, -0.306, 0.4, 0.1, -0.508, 0.194];
    for (got, want) in w[0].weight().iter().zip(want_hidden) {
        assert_abs_diff_eq!(*got, want, epsilon = 5e-4);
    }
    assert_abs_diff_eq!(w[0].bias()[0], -0.408, epsilon = 5e-4); // θ4
    assert_abs_diff_eq!(w[0].bias()[1], 0.194, epsilon = 5e-4); // θ5
    assert_abs_diff_eq!(w[1].weight()[0], -0.261, epsilon = 5e-4); // w46
    assert_abs_diff_eq!(w[1].weight()[1], -0.138, epsilon = 5e-4); // w56
    assert_abs_diff_eq!(w[1].bias()[0], 0.218, epsilon = 5e-4); // θ6
}

/// One sigmoid neuron by full-batch gradient descent: X = [0.5, 2.5], Y = [0.2, 0.9],
/// w = b = −2, loss ½Σ(f(x) − y)² summed over the two points, η = 1.
///
/// The runtime's MSE over the batch of two is (1/2)Σ(f − y)²: the same function, so plain SGD
/// with learning rate 1 on it is exactly the course's update, and its loss is the course's.
fn check_sigmoid_neuron_gradient_descent<B: Backend>(backend: impl Fn() -> B) {
    let x = m(2, 1, &[0.5, 2.5]);
    let y = m(2, 1, &[0.2, 0.9]);
    let mut model = Sequential::new()
        .add(
            Dense::new(1, Activation::Sigmoid)
                .kernel_initializer(Initializer::Constant(-2.0))
                .bias_initializer(Initializer::Constant(-2.0)),
        )
        .compile(
            backend(),
            Compile::new(LossFn::MeanSquaredError, Optimizer::Sgd { lr: 1.0 }),
        )
        .unwrap();
    model.fit(&x, &y, one_step().batch_size(2)).unwrap();
    let w = model.weights().unwrap();
    assert_abs_diff_eq!(w[0].weight()[0], -1.99451, epsilon = 2e-5);
    assert_abs_diff_eq!(w[0].bias()[0], -1.99229, epsilon = 2e-5);

    let history = model
        .fit(
            &x,
            &y,
            FitConfig::epochs(999)
                .batch_size(2)
                .shuffle(false)
                .verbose(0),
        )
        .unwrap();
    let w = model.weights().unwrap();
    assert_abs_diff_eq!(w[0].weight()[0], 1.7917, epsilon = 2e-3);
    assert_abs_diff_eq!(w[0].bias()[0], -2.2821, epsilon = 2e-3);
    let loss = history.get("loss").unwrap();
    assert!(
        *loss.last().unwrap() < 1e-6,
        "final loss {}",
        loss.last().unwrap()
    );
    for (e, pair) in loss.windows(2).enumerate() {
        assert!(
            pair[1] <= pair[0] * (1.0 + 1e-5) + 1e-9,
            "loss rose at epoch {}: {} -> {}",
            e + 2,
            pair[0],
            pair[1]
        );
    }
}

/// XOR is not linearly separable: without a hidden layer no line gets more than 3 of the 4
/// points right; one small hidden layer learns all four.
fn check_xor<B: Backend>(backend: impl Fn() -> B) {
    let x = m(4, 2, &[0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0]);
    let y = m(4, 1, &[0.0, 1.0, 1.0, 0.0]);
    let compile = Compile::new(
        LossFn::BinaryCrossentropy { from_logits: false },
        Optimizer::adam(0.05),
    )
    .metrics(&[Metric::Accuracy])
    .seed(7);
    let config = || FitConfig::epochs(400).batch_size(4).verbose(0);

    let mut linear = Sequential::new()
        .add(Dense::new(1, Activation::Sigmoid))
        .compile(backend(), compile.clone())
        .unwrap();
    let h = linear.fit(&x, &y, config()).unwrap();
    assert!(
        h.get("accuracy").unwrap().iter().all(|&a| a <= 0.75),
        "{:?}",
        h.get("accuracy")
    );

    let mut hidden = Sequential::new()
        .add(Dense::new(4, Activation::Tanh))
        .add(Dense::new(1, Activation::Sigmoid))
        .compile(backend(), compile)
        .unwrap();
    hidden.fit(&x, &y, config()).unwrap();
    assert_eq!(hidden.predict_classes(&x, 4).unwrap(), vec![0, 1, 1, 0]);
    assert_eq!(
        hidden.evaluate(&x, &y, 4).unwrap().get("accuracy"),
        Some(1.0)
    );
}

/// Adam by the numbers: two steps on a fixed 3 → 2 linear layer under MSE, against Kingma &
/// Ba's update rule worked out here in f64, with gradients derived by hand.
fn check_adam_by_the_numbers<B: Backend>(backend: impl Fn() -> B) {
    let x = [[1.0f64, -2.0, 0.5], [0.0, 1.0, 3.0]];
    let y = [[1.0f64, 0.0], [-1.0, 2.0]];
    let w0 = [0.1f64, -0.2, 0.3, 0.4, -0.5, 0.6];
    let (lr, b1, b2, eps) = (0.1f64, 0.9f64, 0.999f64, 1e-7f64);

    // The reference: p = [W (row-major 3×2), b (2)]; MSE = mean over 2 rows and 2 outputs.
    let mut p: Vec<f64> = w0.iter().copied().chain([0.0, 0.0]).collect();
    let (mut mo, mut v) = (vec![0.0; 8], vec![0.0; 8]);
    for t in 1..=2 {
        let mut g = [0.0; 8];
        for (r, xr) in x.iter().enumerate() {
            for c in 0..2 {
                let z: f64 = (0..3).map(|k| xr[k] * p[k * 2 + c]).sum::<f64>() + p[6 + c];
                let dz = 2.0 * (z - y[r][c]) / 4.0;
                for k in 0..3 {
                    g[k * 2 + c] += xr[k] * dz;
                }
                g[6 + c] += dz;
            }
        }
        for i in 0..8 {
            mo[i] = b1 * mo[i] + (1.0 - b1) * g[i];
            v[i] = b2 * v[i] + (1.0 - b2) * g[i] * g[i];
            let m_hat = mo[i] / (1.0 - b1.powi(t));
            let v_hat = v[i] / (1.0 - b2.powi(t));
            p[i] -= lr * m_hat / (v_hat.sqrt() + eps);
        }
    }

    let opt = Optimizer::Adam {
        lr: lr as f32,
        beta1: b1 as f32,
        beta2: b2 as f32,
        eps: eps as f32,
        weight_decay: 0.0,
    };
    let mut model = Sequential::new()
        .add(
            Dense::new(2, Activation::Linear)
                .kernel_initializer(Initializer::Values(w0.iter().map(|&v| v as f32).collect())),
        )
        .compile(backend(), Compile::new(LossFn::MeanSquaredError, opt))
        .unwrap();
    let xm = m(
        2,
        3,
        &x.concat().iter().map(|&v| v as f32).collect::<Vec<_>>(),
    );
    let ym = m(
        2,
        2,
        &y.concat().iter().map(|&v| v as f32).collect::<Vec<_>>(),
    );
    model
        .fit(
            &xm,
            &ym,
            FitConfig::epochs(2).batch_size(2).shuffle(false).verbose(0),
        )
        .unwrap();
    let w = model.weights().unwrap();
    let got: Vec<f32> = w[0].weight().iter().chain(w[0].bias()).copied().collect();
    for (g, want) in got.iter().zip(&p) {
        assert_abs_diff_eq!(*g as f64, *want, epsilon = 1e-6);
    }
}

model_test!(worked_backprop_example, check_worked_backprop_example);
model_test!(
    sigmoid_neuron_gradient_descent,
    check_sigmoid_neuron_gradient_descent
);
model_test!(xor, check_xor);
model_test!(adam_by_the_numbers, check_adam_by_the_numbers);
