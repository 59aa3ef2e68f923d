//! Every metric of Keras' list against values worked out by hand (or, for the logarithms, from
//! Keras' formula in numpy) on small fixed inputs, on every backend, with the edges: no
//! positives, a single class, ties in the scores. Each fixture is recorded in two batches, so
//! that the sums are also checked to accumulate.

mod common;

use wgtrain::backend::{Activation, Backend};
use wgtrain::nn::Task;
use wgtrain::train::metrics::{MetricPlan, Outputs};
use wgtrain::train::Metric;

/// A batch of predictions and targets `[rows, target_cols]`.
struct Fixture<'a> {
    task: Task,
    cols: usize,
    probs: &'a [f32],
    /// Logits behind `probs`, and the activation that made them.
    logits: Option<(&'a [f32], Activation)>,
    targets: &'a [f32],
    target_cols: usize,
}

/// The metrics' values on `f`, recorded in two batches.
fn values<B: Backend>(
    b: &mut B,
    f: &Fixture,
    threshold: f32,
    specs: &[&str],
) -> Vec<(String, f64)> {
    let metrics: Vec<Metric> = specs
        .iter()
        .map(|s| Metric::from_name(s).unwrap())
        .collect();
    let plan = MetricPlan::new(&metrics, f.task, threshold, f.cols).unwrap();
    let mut acc = b.zeros(1, plan.slots()).unwrap();
    let rows = f.probs.len() / f.cols;
    let split = rows.div_ceil(2);
    for (start, end) in [(0, split), (split, rows)] {
        if start == end {
            continue;
        }
        let n = end - start;
        let part = |d: &[f32], w: usize| d[start * w..end * w].to_vec();
        let probs = b.upload(n, f.cols, &part(f.probs, f.cols)).unwrap();
        let y = b
            .upload(n, f.target_cols, &part(f.targets, f.target_cols))
            .unwrap();
        let logits = f
            .logits
            .map(|(z, act)| (b.upload(n, f.cols, &part(z, f.cols)).unwrap(), act));
        let outputs = Outputs {
            output: logits.as_ref().map_or(&probs, |(z, _)| z),
            probs: &probs,
            logits: logits.as_ref().map(|(z, act)| (z, *act)),
        };
        plan.record(b, outputs, &y, &mut acc).unwrap();
    }
    let acc = b.read(&acc).unwrap();
    plan.finish(&acc, rows)
        .into_iter()
        .map(|(n, v)| (n.to_string(), v))
        .collect()
}

fn check(what: &str, got: &[(String, f64)], want: &[(&str, f64)]) {
    assert_eq!(got.len(), want.len(), "{what}: {got:?}");
    for ((name, value), (want_name, want_value)) in got.iter().zip(want) {
        assert_eq!(name, want_name, "{what}");
        assert!(
            (value - want_value).abs() <= 1e-5 * (1.0 + want_value.abs()),
            "{what}: {name} = {value}, want {want_value}"
        );
    }
}

/// One sigmoid output, four samples: scores 0.1, 0.4 (negatives) and 0.35, 0.8 (positives).
const SCORES: [f32; 4] = [0.1, 0.4, 0.35, 0.8];
const TRUTH: [f32; 4] = [0.0, 0.0, 1.0, 1.0];

fn binary<'a>(probs: &'a [f32], targets: &'a [f32]) -> Fixture<'a> {
    Fixture {
        task: Task::Binary,
        cols: 1,
        probs,
        logits: None,
        targets,
        target_cols: 1,
    }
}

fn check_binary_counts_and_rates<B: Backend>(b: &mut B) {
    let f = binary(&SCORES, &TRUTH);
    // At 0.5 only 0.8 is a yes: TP 1, FP 0, TN 2, FN 1 (0.35).
    check(
        "at 0.5",
        &values(
            b,
            &f,
            0.5,
            &[
                "accuracy",
                "binary_accuracy",
                "true_positives",
                "false_positives",
                "true_negatives",
                "false_negatives",
                "precision",
                "recall",
                "f1_score",
            ],
        ),
        &[
            ("accuracy", 0.75),
            ("binary_accuracy", 0.75),
            ("true_positives", 1.0),
            ("false_positives", 0.0),
            ("true_negatives", 2.0),
            ("false_negatives", 1.0),
            ("precision", 1.0),
            ("recall", 0.5),
            ("f1_score", 2.0 / 3.0),
        ],
    );
    // At 0.3, by the model's threshold or the metric's own: 0.4, 0.35, 0.8 are yeses.
    let at_03 = [
        ("accuracy", 0.75),
        ("true_positives", 2.0),
        ("false_positives", 1.0),
        ("true_negatives", 1.0),
        ("false_negatives", 0.0),
        ("precision", 2.0 / 3.0),
        ("recall", 1.0),
        ("f1_score", 0.8),
    ];
    let names = at_03.map(|(n, _)| n);
    check("model threshold 0.3", &values(b, &f, 0.3, &names), &at_03);
    let own: Vec<String> = names[1..].iter().map(|n| format!("{n}:0.3")).collect();
    let own: Vec<&str> = own.iter().map(String::as_str).collect();
    check("own threshold 0.3", &values(b, &f, 0.5, &own), &at_03[1..]);
}
backend_test!(binary_counts_and_rates, check_binary_counts_and_rates);

fn check_binary_curves_and_probabilistic<B: Backend>(b: &mut B) {
    let f = binary(&SCORES, &TRUTH);
    // The scores sit more than 1/199 apart, so every threshold between two of them exists.
    check(
        "curves",
        &values(
            b,
            &f,
            0.5,
            &[
                "auc",
                "precision_at_recall:1",
                "sensitivity_at_specificity:1",
                "specificity_at_sensitivity:1",
            ],
        ),
        // AUC: 3 of 4 (positive, negative) pairs ranked right. Recall 1 needs a threshold
        // below 0.35, where 0.4 is a false positive: precision 2/3. Specificity 1 needs one at
        // or above 0.4: only 0.8 found. Sensitivity 1: 0.4 above, 0.1 below.
        &[
            ("auc", 0.75),
            ("precision_at_recall", 2.0 / 3.0),
            ("sensitivity_at_specificity", 0.5),
            ("specificity_at_sensitivity", 0.5),
        ],
    );
    check(
        "curves at 0.5",
        &values(
            b,
            &f,
            0.5,
            &[
                "precision_at_recall:0.5",
                "sensitivity_at_specificity:0.5",
                "specificity_at_sensitivity:0.5",
            ],
        ),
        &[
            ("precision_at_recall", 1.0),
            ("sensitivity_at_specificity", 1.0),
            ("specificity_at_sensitivity", 1.0),
        ],
    );
    check(
        "probabilistic",
        &values(
            b,
            &f,
            0.5,
            &["binary_crossentropy", "poisson", "kl_divergence"],
        ),
        &[
            ("binary_crossentropy", 0.472_287_953_809_176),
            ("poisson", 0.730_741_316_274_662),
            ("kl_divergence", 0.318_240_693_520_335),
        ],
    );
    // From logits, the same cross-entropy: z = logit(p).
    let z: Vec<f32> = SCORES.iter().map(|&p| (p / (1.0 - p)).ln()).collect();
    let with_logits = Fixture {
        logits: Some((&z, Activation::Sigmoid)),
        ..binary(&SCORES, &TRUTH)
    };
    check(
        "binary cross-entropy from logits",
        &values(b, &with_logits, 0.5, &["binary_crossentropy"]),
        &[("binary_crossentropy", 0.472_287_953_809_176)],
    );
}
backend_test!(
    binary_curves_and_probabilistic,
    check_binary_curves_and_probabilistic
);

fn check_binary_edges<B: Backend>(b: &mut B) {
    // No positives at all: every rate with a 0 denominator is 0, and so is the AUC (Keras).
    let f = binary(&[0.2, 0.7], &[0.0, 0.0]);
    check(
        "no positives",
        &values(
            b,
            &f,
            0.5,
            &[
                "precision",
                "recall",
                "f1_score",
                "auc",
                "true_positives",
                "false_positives",
                "precision_at_recall:0.5",
                "sensitivity_at_specificity:0.5",
                "specificity_at_sensitivity:0",
            ],
        ),
        &[
            ("precision", 0.0),
            ("recall", 0.0),
            ("f1_score", 0.0),
            ("auc", 0.0),
            ("true_positives", 0.0),
            ("false_positives", 1.0),
            ("precision_at_recall", 0.0),
            ("sensitivity_at_specificity", 0.0),
            // Sensitivity 0 is reached everywhere; above 0.7 no negative is a yes.
            ("specificity_at_sensitivity", 1.0),
        ],
    );
    // Ties: every score the same. The ROC curve is the diagonal; at 0.5 all are no's.
    let f = binary(&[0.5; 4], &TRUTH);
    check(
        "tied scores",
        &values(
            b,
            &f,
            0.5,
            &["auc", "binary_accuracy", "recall", "precision_at_recall:1"],
        ),
        &[
            ("auc", 0.5),
            ("binary_accuracy", 0.5),
            ("recall", 0.0),
            ("precision_at_recall", 0.5),
        ],
    );
    // A score exactly at the threshold is a no (`p > threshold`, as Keras).
    let f = binary(&[0.3, 0.3], &[1.0, 0.0]);
    check(
        "on the threshold",
        &values(b, &f, 0.3, &["true_positives", "true_negatives"]),
        &[("true_positives", 0.0), ("true_negatives", 1.0)],
    );
}
backend_test!(binary_edges, check_binary_edges);

/// Three classes, four rows of logits; row 2 ties all three classes (argmax takes the first).
const LOGITS: [f32; 12] = [2.0, 1.0, 0.0, 0.0, 3.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.0, 5.0];
const LABELS: [f32; 4] = [0.0, 2.0, 1.0, 2.0];

fn softmax(z: &[f32]) -> Vec<f32> {
    z.chunks(3)
        .flat_map(|r| {
            let m = r.iter().cloned().fold(f32::MIN, f32::max);
            let e: Vec<f64> = r.iter().map(|&v| ((v - m) as f64).exp()).collect();
            let s: f64 = e.iter().sum();
            e.into_iter().map(move |v| (v / s) as f32)
        })
        .collect()
}

fn one_hot(labels: &[f32]) -> Vec<f32> {
    labels
        .iter()
        .flat_map(|&l| (0..3).map(move |c| (c as f32 == l) as u8 as f32))
        .collect()
}

fn check_categorical<B: Backend>(b: &mut B) {
    let probs = softmax(&LOGITS);
    let onehot = one_hot(&LABELS);
    // Argmax [0, 1, 0, 2] against [0, 2, 1, 2]: rows 0 and 3 right. The true class is the
    // highest in rows 0, 2 (tied: in) and 3, second in row 1.
    // F1 by argmax: class 0 TP 1 FP 1 → 2/3; class 1 TP 0 → 0; class 2 TP 1 FN 1 → 2/3.
    let shared = [("f1_score", 4.0 / 9.0), ("accuracy", 0.5)];
    for from_logits in [true, false] {
        let logits = from_logits.then_some((&LOGITS[..], Activation::Softmax));
        let sparse = Fixture {
            task: Task::SparseCategorical,
            cols: 3,
            probs: &probs,
            logits,
            targets: &LABELS,
            target_cols: 1,
        };
        let mut want = vec![
            ("sparse_categorical_accuracy", 0.5),
            ("sparse_top_k_categorical_accuracy", 0.75),
            ("sparse_categorical_crossentropy", 1.153_631_777_813_725),
        ];
        want.extend(shared);
        check(
            &format!("sparse, from logits {from_logits}"),
            &values(
                b,
                &sparse,
                0.5,
                &[
                    "sparse_categorical_accuracy",
                    "sparse_top_k_categorical_accuracy:1",
                    "sparse_categorical_crossentropy",
                    "f1_score",
                    "accuracy",
                ],
            ),
            &want,
        );
        let dense = Fixture {
            task: Task::Categorical,
            targets: &onehot,
            target_cols: 3,
            ..sparse
        };
        let mut want = vec![
            ("categorical_accuracy", 0.5),
            ("top_k_categorical_accuracy", 1.0),
            ("categorical_crossentropy", 1.153_631_777_813_725),
            ("kl_divergence", 1.153_629_034_920_95),
        ];
        want.extend(shared);
        check(
            &format!("one-hot, from logits {from_logits}"),
            &values(
                b,
                &dense,
                0.5,
                &[
                    "categorical_accuracy",
                    "top_k_categorical_accuracy:2",
                    "categorical_crossentropy",
                    "kl_divergence",
                    "f1_score",
                    "accuracy",
                ],
            ),
            &want,
        );
    }
    // A single class present: classes 1 and 2 have no support and are never predicted, so
    // each scores 0 and the macro F1 is class 0's over 3.
    let zeros = [0.0f32; 4];
    let single = Fixture {
        task: Task::SparseCategorical,
        cols: 3,
        probs: &probs,
        logits: None,
        targets: &zeros,
        target_cols: 1,
    };
    // Argmax [0, 1, 0, 2]: class 0 TP 2, FN 2 → 2·2 / (4 + 2) = 2/3.
    check(
        "a single class",
        &values(b, &single, 0.5, &["f1_score"]),
        &[("f1_score", 2.0 / 9.0)],
    );
    // By a threshold instead: 0.665 (row 0), 0.909 (row 1), 0.987 (row 3) are yeses, each of
    // its own class; class 0: TP 1, FN 3 → 2/5.
    check(
        "a single class, by threshold",
        &values(b, &single, 0.5, &["f1_score:0.5"]),
        &[("f1_score", 0.4 / 3.0)],
    );
}
backend_test!(categorical, check_categorical);

#[test]
fn names_arguments_and_errors() {
    for spec in [
        "precision:0.3",
        "top_k_categorical_accuracy:3",
        "sparse_top_k_categorical_accuracy:5",
        "precision_at_recall:0.9",
        "sensitivity_at_specificity:0.25",
        "specificity_at_sensitivity:1",
        "true_negatives:0.7",
        "f1_score",
        "kl_divergence",
    ] {
        let m = Metric::from_name(spec).unwrap();
        assert_eq!(m.spec(), spec, "spec round trip");
        assert_eq!(Metric::from_name(&m.spec()).unwrap(), m);
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(serde_json::from_str::<Metric>(&json).unwrap(), m);
    }
    assert_eq!(Metric::from_name("kld").unwrap(), Metric::KlDivergence);
    // The map the first checkpoints wrote for top-k still reads.
    let legacy: Metric = serde_json::from_str(r#"{"top_k_categorical_accuracy":{"k":4}}"#).unwrap();
    assert_eq!(legacy, Metric::TopKCategoricalAccuracy { k: 4 });
    for (spec, says) in [
        ("precision_at_recall", "needs the recall"),
        ("precision:1.5", "not a number in [0, 1]"),
        ("top_k_categorical_accuracy:0", "k must be a whole number"),
        ("auc:3", "takes no argument"),
        ("f2_score", "unknown metric"),
    ] {
        let err = Metric::from_name(spec).unwrap_err().to_string();
        assert!(err.contains(says), "{spec}: {err}");
    }
    // The target form is checked: top-k over one-hot targets has the sparse name for labels.
    let err = MetricPlan::new(
        &[Metric::TopKCategoricalAccuracy { k: 5 }],
        Task::SparseCategorical,
        0.5,
        3,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("sparse_top_k_categorical_accuracy:5"), "{err}");
}
