//! Known values: the reference against numbers worked out by hand or published by Keras and
//! the Adam paper, so that forward results (which finite differences cannot prove) are right.

use approx::assert_relative_eq;
use wgtrain::backend::{reference, Activation, Loss, Optimizer};

fn act(a: Activation, z: f64) -> f64 {
    reference::activation_f64(a, z)
}

#[test]
fn activations_at_known_points() {
    assert_eq!(act(Activation::Relu, -2.0), 0.0);
    assert_relative_eq!(
        act(Activation::LeakyRelu { alpha: 0.2 }, -2.0),
        -0.4,
        epsilon = 1e-7
    );
    assert_relative_eq!(
        act(Activation::Elu { alpha: 1.0 }, -1.0),
        (-1f64).exp() - 1.0
    );
    assert_eq!(act(Activation::Sigmoid, 0.0), 0.5);
    assert_relative_eq!(act(Activation::Sigmoid, -800.0), 0.0);
    assert_eq!(act(Activation::Sigmoid, 800.0), 1.0);
    assert_relative_eq!(act(Activation::Softplus, 0.0), 2f64.ln());
    assert_eq!(act(Activation::Softplus, 1e4), 1e4);
    // Keras: gelu(1.0) = 0.8413447 (exact), 0.8411920 (tanh approximation).
    assert_relative_eq!(act(Activation::Gelu, 1.0), 0.841_344_746, epsilon = 1e-9);
    assert_relative_eq!(
        act(Activation::GeluTanh, 1.0),
        0.841_191_990,
        epsilon = 1e-8
    );
    assert_relative_eq!(act(Activation::Silu, 1.0), 1.0 / (1.0 + (-1f64).exp()));
}

#[test]
fn softmax_of_a_known_row_and_of_huge_logits() {
    let s = reference::softmax_row_f64(&[1.0, 2.0, 3.0]);
    for (got, want) in s.iter().zip([0.090_030_573, 0.244_728_471, 0.665_240_956]) {
        assert_relative_eq!(*got, want, epsilon = 1e-9);
    }
    let s = reference::softmax_row_f64(&[1e4, -1e4, 1e4]);
    assert_eq!(s, vec![0.5, 0.0, 0.5]);
}

#[test]
fn losses_at_known_points() {
    // Cross-entropy of uniform logits over C classes is ln C.
    assert_relative_eq!(
        reference::loss_row_f64(Loss::SparseSoftmaxCrossEntropy, &[0.0; 10], &[3.0]),
        10f64.ln()
    );
    // Same with a one-hot target.
    let mut onehot = [0.0; 4];
    onehot[2] = 1.0;
    assert_relative_eq!(
        reference::loss_row_f64(Loss::SoftmaxCrossEntropy, &[0.0; 4], &onehot),
        4f64.ln()
    );
    // BCE from logits at 0 is ln 2 whatever the target; from probability 0.5 too.
    assert_relative_eq!(
        reference::loss_row_f64(Loss::BinaryCrossEntropyFromLogits, &[0.0], &[1.0]),
        2f64.ln()
    );
    assert_relative_eq!(
        reference::loss_row_f64(Loss::BinaryCrossEntropy, &[0.5], &[0.0]),
        2f64.ln()
    );
    // A probability of exactly 0 for a positive target is clipped at ε = 1e-7: −ln(1e-7).
    assert_relative_eq!(
        reference::loss_row_f64(Loss::BinaryCrossEntropy, &[0.0], &[1.0]),
        -(1e-7f32 as f64).ln(),
        epsilon = 1e-9
    );
    // MSE, MAE: means over the outputs.
    assert_eq!(
        reference::loss_row_f64(Loss::MeanSquaredError, &[1.0, 3.0], &[0.0, 0.0]),
        5.0
    );
    assert_eq!(
        reference::loss_row_f64(Loss::MeanAbsoluteError, &[1.0, -3.0], &[0.0, 0.0]),
        2.0
    );
    // Huber δ = 1: 0.5·0.5² for |e| = 0.5, 1·(3 − 0.5) for |e| = 3; mean = (0.125 + 2.5) / 2.
    assert_eq!(
        reference::loss_row_f64(Loss::Huber { delta: 1.0 }, &[0.5, 3.0], &[0.0, 0.0]),
        1.3125
    );
}

#[test]
fn matmul_of_a_known_product() {
    // [[1,2,3],[4,5,6]] · [[1,0],[0,1],[1,1]] = [[4,5],[10,11]]
    let a = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
    let b = [1.0, 0.0, 0.0, 1.0, 1.0, 1.0];
    let mut c = [0.0; 4];
    reference::matmul_forward(&a, false, &b, false, &mut c, 2, 2, 3);
    assert_eq!(c, [4.0, 5.0, 10.0, 11.0]);
    // Aᵀ stored [3, 2] gives the same product.
    let at = [1.0, 4.0, 2.0, 5.0, 3.0, 6.0];
    reference::matmul_forward(&at, true, &b, false, &mut c, 2, 2, 3);
    assert_eq!(c, [4.0, 5.0, 10.0, 11.0]);
}

/// Adam's first step moves each weight by almost exactly lr · sign(g) (m̂ = g, v̂ = g²), and
/// its second step follows Algorithm 1 of Kingma & Ba, worked here by hand.
#[test]
fn adam_steps_by_the_paper() {
    let opt = Optimizer::Adam {
        lr: 0.1,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        weight_decay: 0.0,
    };
    let mut p = [1.0f32, -2.0];
    let mut m = [0.0f32; 2];
    let mut v = [0.0f32; 2];
    reference::optimizer_step(opt, 1, &mut p, &[0.5, -3.0], &mut [&mut m, &mut v]);
    assert_relative_eq!(p[0], 0.9, epsilon = 1e-6);
    assert_relative_eq!(p[1], -1.9, epsilon = 1e-6);
    reference::optimizer_step(opt, 2, &mut p, &[0.25, 1.0], &mut [&mut m, &mut v]);
    // Step 2 for the first weight: m = 0.9·0.05 + 0.1·0.25 = 0.07; v = 0.999·0.00025 + 0.001·0.0625
    // = 0.00031225; m̂ = 0.07 / 0.19; v̂ = 0.00031225 / 0.001999; p = 0.9 − 0.1·m̂ / (√v̂ + 1e-8).
    let m_hat = 0.07 / 0.19;
    let v_hat: f64 = 0.000_312_25 / (1.0 - 0.999f64.powi(2));
    assert_relative_eq!(
        p[0] as f64,
        0.9 - 0.1 * m_hat / (v_hat.sqrt() + 1e-8),
        epsilon = 1e-6
    );
}

/// Keras' momentum form, worked by hand: v = μv − lr·g, p += v (Nesterov: p += μv − lr·g).
#[test]
fn momentum_and_nesterov_by_hand() {
    for (nesterov, want) in [
        (false, [1.0 - 0.1, 1.0 - 0.1 - 0.19]),
        (true, [1.0 - 0.19, 1.0 - 0.19 - 0.271]),
    ] {
        let opt = Optimizer::Momentum {
            lr: 0.1,
            momentum: 0.9,
            nesterov,
        };
        let mut p = [1.0f32];
        let mut v = [0.0f32];
        reference::optimizer_step(opt, 1, &mut p, &[1.0], &mut [&mut v]);
        assert_relative_eq!(p[0], want[0] as f32, epsilon = 1e-6);
        reference::optimizer_step(opt, 2, &mut p, &[1.0], &mut [&mut v]);
        assert_relative_eq!(p[0], want[1] as f32, epsilon = 1e-6);
    }
}

#[test]
fn decoupled_weight_decay_shrinks_weights_with_zero_gradient() {
    let opt = Optimizer::Adam {
        lr: 0.1,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        weight_decay: 0.5,
    };
    let mut p = [2.0f32];
    let (mut m, mut v) = ([0.0f32], [0.0f32]);
    reference::optimizer_step(opt, 1, &mut p, &[0.0], &mut [&mut m, &mut v]);
    assert_relative_eq!(p[0], 2.0 * (1.0 - 0.1 * 0.5));
}

#[test]
fn bad_hyper_parameters_are_errors() {
    assert!(Optimizer::adam(1e-3).validate(0).is_err());
    assert!(Optimizer::Sgd { lr: f32::NAN }.validate(1).is_err());
    assert!(Optimizer::Momentum {
        lr: 0.1,
        momentum: 1.0,
        nesterov: false
    }
    .validate(1)
    .is_err());
}
