//! The symmetry problem, as the course teaches it: when every weight of a layer starts equal,
//! every hidden unit computes the same output and gets the same gradient, so the units stay
//! identical however long the network trains; a random start breaks the symmetry.

mod common;

use wgtrain::backend::{Activation, Backend, Optimizer};
use wgtrain::data::Matrix;
use wgtrain::nn::{Dense, Initializer, LayerWeights, LossFn, Sequential};
use wgtrain::train::{Compile, FitConfig};

const HIDDEN: usize = 4;

/// XOR, trained 100 epochs of 4 steps with the hidden layer started from `init`.
fn trained<B: Backend>(backend: B, init: Initializer) -> Vec<LayerWeights> {
    let x = Matrix::new(4, 2, vec![0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0]).unwrap();
    let y = Matrix::new(4, 1, vec![0.0, 1.0, 1.0, 0.0]).unwrap();
    let mut model = Sequential::new()
        .add(Dense::new(HIDDEN, Activation::Tanh).kernel_initializer(init))
        .add(Dense::new(1, Activation::Sigmoid).kernel_initializer(Initializer::Constant(0.5)))
        .compile(
            backend,
            Compile::new(
                LossFn::BinaryCrossentropy { from_logits: false },
                Optimizer::adam(0.05),
            )
            .seed(5),
        )
        .unwrap();
    model
        .fit(&x, &y, FitConfig::epochs(100).batch_size(1).verbose(0))
        .unwrap();
    assert_eq!(model.steps(), 400);
    model.weights().unwrap()
}

/// The largest difference between hidden unit 0 and any other: its incoming weights, its bias
/// and its outgoing weight.
fn spread(w: &[LayerWeights]) -> f32 {
    let (hidden, out) = (&w[0], &w[1]);
    let unit = |j: usize| {
        let mut v: Vec<f32> = (0..hidden.params[0].shape[0])
            .map(|i| hidden.weight()[i * HIDDEN + j])
            .collect();
        v.push(hidden.bias()[j]);
        v.push(out.weight()[j]);
        v
    };
    (1..HIDDEN)
        .flat_map(|j| unit(0).into_iter().zip(unit(j)).map(|(a, b)| (a - b).abs()))
        .fold(0.0, f32::max)
}

fn check_equal_weights_stay_equal<B: Backend>(backend: impl Fn() -> B) {
    let w = trained(backend(), Initializer::Constant(0.5));
    // They moved, all together: the same numbers computed in the same order.
    assert!(w[0].weight()[0] != 0.5, "the hidden layer did not train");
    assert_eq!(spread(&w), 0.0, "hidden units drifted apart: {:?}", w[0]);

    let w = trained(
        backend(),
        Initializer::RandomNormal {
            mean: 0.0,
            stddev: 0.5,
        },
    );
    assert!(
        spread(&w) > 0.1,
        "a random start stayed symmetric: {:?}",
        w[0]
    );
}
model_test!(equal_weights_stay_equal, check_equal_weights_stay_equal);
