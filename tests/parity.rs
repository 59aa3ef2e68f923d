//! The parity suite: one body per op, run on the CPU reference and on the GPU, each compared
//! with the reference functions of `wgtrain::backend::reference` on seeded random inputs and on the
//! named shapes that break tiling (tests/common). On the CPU backend this checks the trait's
//! plumbing around the reference; the reference itself is proven in tests/gradcheck.rs and
//! tests/reference.rs.

mod common;

use common::{assert_close, rng, uniform, upload, MATMUL_SHAPES, ROW_SHAPES, SUM_SHAPES};
use rand::Rng;
use wgtrain::backend::{
    reference, Activation, Backend, Loss, Optimizer, PointError, ROC_HISTOGRAM_SLOTS,
};
use wgtrain::tolerance::Tolerance;

/// f32 accumulation over K against the reference's f64: the error grows like √K.
fn matmul_tolerance(k: usize) -> Tolerance {
    Tolerance::new(2e-6 * (k as f32).sqrt() + 1e-6, 1e-5)
}

/// Element-wise transcendental math: GPU `exp`/`log` are allowed a few ulp.
const ELEMENTWISE: Tolerance = Tolerance::new(2e-6, 2e-5);

fn check_matmul<B: Backend>(b: &mut B) {
    let mut r = rng(1);
    for &(m, n, k, why) in MATMUL_SHAPES {
        for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
            let a_data = uniform(&mut r, m * k, -1.0, 1.0);
            let b_data = uniform(&mut r, k * n, -1.0, 1.0);
            let (ar, ac) = if ta { (k, m) } else { (m, k) };
            let (br, bc) = if tb { (n, k) } else { (k, n) };
            let a = upload(b, ar, ac, &a_data);
            let bt = upload(b, br, bc, &b_data);
            let mut c = b.zeros(m, n).unwrap();
            b.matmul(&a, ta, &bt, tb, &mut c).unwrap();
            let mut want = vec![0.0; m * n];
            reference::matmul_forward(&a_data, ta, &b_data, tb, &mut want, m, n, k);
            let got = b.read(&c).unwrap();
            assert_close(
                &format!("matmul M={m} N={n} K={k} ta={ta} tb={tb} ({why})"),
                matmul_tolerance(k),
                &got,
                &want,
            );
        }
    }
}
backend_test!(matmul, check_matmul);

/// The dense forward `z = x·w + bias; a = act(z)` (fused into the matmul's epilogue on the GPU
/// where it can be) against the reference's matmul, bias and activation in turn, for every
/// activation on the matmul shapes (softmax runs unfused).
fn check_dense_forward<B: Backend>(b: &mut B) {
    let mut r = rng(11);
    for act in Activation::ALL {
        for &(m, n, k, why) in MATMUL_SHAPES {
            let x_data = uniform(&mut r, m * k, -1.0, 1.0);
            let w_data = uniform(&mut r, k * n, -1.0, 1.0);
            let bias_data = uniform(&mut r, n, -1.0, 1.0);
            let (x, w, bias) = (
                upload(b, m, k, &x_data),
                upload(b, k, n, &w_data),
                upload(b, 1, n, &bias_data),
            );
            let (mut z, mut a) = (b.zeros(m, n).unwrap(), b.zeros(m, n).unwrap());
            b.dense_forward(&x, &w, &bias, act, &mut z, &mut a).unwrap();
            let mut want_z = vec![0.0; m * n];
            reference::matmul_forward(&x_data, false, &w_data, false, &mut want_z, m, n, k);
            reference::bias_forward(&mut want_z, &bias_data, n);
            let mut want_a = vec![0.0; m * n];
            reference::activation_forward(act, &want_z, &mut want_a, n);
            let what = format!("{} dense forward M={m} N={n} K={k} ({why})", act.name());
            let tol = matmul_tolerance(k);
            assert_close(&format!("{what}: z"), tol, &b.read(&z).unwrap(), &want_z);
            let tol = Tolerance::new(tol.abs + ELEMENTWISE.abs, ELEMENTWISE.rel);
            assert_close(&format!("{what}: a"), tol, &b.read(&a).unwrap(), &want_a);
        }
    }
}
backend_test!(dense_forward, check_dense_forward);

fn check_bias<B: Backend>(b: &mut B) {
    let mut r = rng(2);
    for &(rows, cols, why) in ROW_SHAPES {
        let z_data = uniform(&mut r, rows * cols, -2.0, 2.0);
        let bias_data = uniform(&mut r, cols, -2.0, 2.0);
        let mut z = upload(b, rows, cols, &z_data);
        let bias = upload(b, 1, cols, &bias_data);
        b.bias_add(&mut z, &bias).unwrap();
        let mut want = z_data.clone();
        reference::bias_forward(&mut want, &bias_data, cols);
        assert_close(
            &format!("bias_add {rows}×{cols} ({why})"),
            Tolerance::EXACT,
            &b.read(&z).unwrap(),
            &want,
        );

        let mut db = b.zeros(1, cols).unwrap();
        b.bias_grad(&z, &mut db).unwrap();
        let mut want_db = vec![0.0; cols];
        reference::bias_backward(&want, &mut want_db, cols);
        let tol = Tolerance::new(1e-6 * rows as f32, 1e-5);
        assert_close(
            &format!("bias_grad {rows}×{cols} ({why})"),
            tol,
            &b.read(&db).unwrap(),
            &want_db,
        );
    }
}
reduction_test!(bias, check_bias);

/// Pre-activations: random values plus the awkward ones (0, the kinks, large magnitudes).
fn activation_inputs(r: &mut rand::rngs::StdRng, n: usize) -> Vec<f32> {
    const SPECIAL: [f32; 11] = [
        0.0, -0.0, 1e-7, -1e-7, 1.0, -1.0, 20.0, -20.0, 88.0, -1e4, 1e4,
    ];
    (0..n)
        .map(|i| {
            if i % 5 == 0 {
                SPECIAL[(i / 5) % SPECIAL.len()]
            } else {
                r.random_range(-6.0..6.0)
            }
        })
        .collect()
}

fn check_activations<B: Backend>(b: &mut B) {
    let mut r = rng(3);
    for act in Activation::ALL {
        for &(rows, cols, why) in ROW_SHAPES {
            let n = rows * cols;
            let mut z_data = activation_inputs(&mut r, n);
            if act.is_row_wise() {
                // Softmax: also rows of huge logits, which must not overflow.
                z_data.iter_mut().for_each(|v| *v = v.clamp(-1e4, 1e4));
            }
            let da_data = uniform(&mut r, n, -1.0, 1.0);
            let z = upload(b, rows, cols, &z_data);
            let mut a = b.zeros(rows, cols).unwrap();
            b.activation(act, &z, &mut a).unwrap();
            let mut want_a = vec![0.0; n];
            reference::activation_forward(act, &z_data, &mut want_a, cols);
            let got_a = b.read(&a).unwrap();
            let what = format!("{} forward {rows}×{cols} ({why})", act.name());
            assert_close(&what, ELEMENTWISE, &got_a, &want_a);

            // Backward from the reference's saved output, so only backward is compared.
            let a_ref = upload(b, rows, cols, &want_a);
            let da = upload(b, rows, cols, &da_data);
            let mut dz = b.zeros(rows, cols).unwrap();
            b.activation_backward(act, &z, &a_ref, &da, &mut dz)
                .unwrap();
            let mut want_dz = vec![0.0; n];
            reference::activation_backward(act, &z_data, &want_a, &da_data, &mut want_dz, cols);
            let what = format!("{} backward {rows}×{cols} ({why})", act.name());
            assert_close(&what, ELEMENTWISE, &b.read(&dz).unwrap(), &want_dz);
        }
    }
}
reduction_test!(activations, check_activations);

/// Targets that make sense for each loss, for a `[rows, cols]` prediction.
fn loss_inputs(
    loss: Loss,
    r: &mut rand::rngs::StdRng,
    rows: usize,
    cols: usize,
) -> (Vec<f32>, Vec<f32>) {
    let n = rows * cols;
    match loss {
        Loss::SparseSoftmaxCrossEntropy => {
            let pred = uniform(r, n, -8.0, 8.0);
            let labels = (0..rows).map(|_| r.random_range(0..cols) as f32).collect();
            (pred, labels)
        }
        Loss::SoftmaxCrossEntropy => {
            let pred = uniform(r, n, -8.0, 8.0);
            let mut t = uniform(r, n, 0.0, 1.0);
            for row in t.chunks_mut(cols) {
                let s: f32 = row.iter().sum();
                row.iter_mut().for_each(|v| *v /= s);
            }
            (pred, t)
        }
        Loss::BinaryCrossEntropyFromLogits => {
            let pred = uniform(r, n, -30.0, 30.0);
            let t = (0..n)
                .map(|i| {
                    if i % 3 == 0 {
                        r.random_range(0.0..1.0)
                    } else {
                        (i % 2) as f32
                    }
                })
                .collect();
            (pred, t)
        }
        Loss::BinaryCrossEntropy => {
            // Probabilities, some past the clip at both ends (gradient 0 there).
            let pred = (0..n)
                .map(|i| match i % 7 {
                    0 => 0.0,
                    1 => 1.0,
                    2 => 1e-9,
                    _ => r.random_range(0.001..0.999),
                })
                .collect();
            let t = (0..n).map(|i| (i % 2) as f32).collect();
            (pred, t)
        }
        _ => {
            let pred = uniform(r, n, -3.0, 3.0);
            // Every fourth target equals the prediction: MAE's derivative at 0.
            let t = pred
                .iter()
                .enumerate()
                .map(|(i, &p)| {
                    if i % 4 == 0 {
                        p
                    } else {
                        r.random_range(-3.0..3.0)
                    }
                })
                .collect();
            (pred, t)
        }
    }
}

fn check_losses<B: Backend>(b: &mut B) {
    let mut r = rng(4);
    for loss in Loss::ALL.into_iter().chain([Loss::Huber { delta: 0.5 }]) {
        for &(rows, cols, why) in ROW_SHAPES {
            let (p_data, t_data) = loss_inputs(loss, &mut r, rows, cols);
            let tc = loss.target_cols(cols);
            let pred = upload(b, rows, cols, &p_data);
            let target = upload(b, rows, tc, &t_data);
            let mut grad = b.zeros(rows, cols).unwrap();
            let mut row_loss = b.zeros(rows, 1).unwrap();
            b.loss(loss, &pred, &target, &mut grad, &mut row_loss)
                .unwrap();
            let mut want_g = vec![0.0; rows * cols];
            let mut want_l = vec![0.0; rows];
            reference::loss_forward_backward(
                loss,
                &p_data,
                &t_data,
                &mut want_g,
                &mut want_l,
                cols,
            );
            let what = format!("{} {rows}×{cols} ({why})", loss.name());
            let tol = Tolerance::new(1e-5, 1e-4);
            assert_close(
                &format!("{what}: row loss"),
                tol,
                &b.read(&row_loss).unwrap(),
                &want_l,
            );
            assert_close(
                &format!("{what}: gradient"),
                Tolerance::new(1e-7, 1e-4),
                &b.read(&grad).unwrap(),
                &want_g,
            );
        }
    }
}
reduction_test!(losses, check_losses);

/// Logits of ±1e4 give finite cross-entropies and gradients (log-sum-exp with the max taken
/// out), and they match the reference.
fn check_cross_entropy_extreme_logits<B: Backend>(b: &mut B) {
    let p_data = [1e4, -1e4, 0.0, -1e4, 1e4, 1e4, 0.0, 0.0, -1e4];
    let cases = [
        (Loss::SparseSoftmaxCrossEntropy, vec![0.0, 0.0, 2.0]),
        (
            Loss::SoftmaxCrossEntropy,
            vec![0.0, 1.0, 0.0, 0.0, 0.5, 0.5, 0.0, 0.0, 1.0],
        ),
        (
            Loss::BinaryCrossEntropyFromLogits,
            vec![1.0, 0.0, 1.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0],
        ),
    ];
    for (loss, t_data) in cases {
        let pred = upload(b, 3, 3, &p_data);
        let target = upload(b, 3, loss.target_cols(3), &t_data);
        let mut grad = b.zeros(3, 3).unwrap();
        let mut row_loss = b.zeros(3, 1).unwrap();
        b.loss(loss, &pred, &target, &mut grad, &mut row_loss)
            .unwrap();
        let (l, g) = (b.read(&row_loss).unwrap(), b.read(&grad).unwrap());
        assert!(
            l.iter().chain(&g).all(|v| v.is_finite()),
            "{}: {l:?} {g:?}",
            loss.name()
        );
        let mut want_g = vec![0.0; 9];
        let mut want_l = vec![0.0; 3];
        reference::loss_forward_backward(loss, &p_data, &t_data, &mut want_g, &mut want_l, 3);
        assert_close(loss.name(), Tolerance::new(1e-3, 1e-6), &l, &want_l);
        assert_close(loss.name(), Tolerance::new(1e-7, 1e-5), &g, &want_g);
    }
}
backend_test!(
    cross_entropy_extreme_logits,
    check_cross_entropy_extreme_logits
);

/// A sparse label outside [0, C) or not an integer poisons its row with NaN on both backends,
/// and leaves the other rows alone: in narrow rows (a thread per row) and wide ones (a
/// workgroup per row).
fn check_bad_labels_give_nan<B: Backend>(b: &mut B) {
    for cols in [3, 200] {
        let pred = upload(b, 4, cols, &vec![0.5; 4 * cols]);
        let labels = upload(b, 4, 1, &[1.0, cols as f32, -1.0, 0.5]);
        let mut grad = b.zeros(4, cols).unwrap();
        let mut row_loss = b.zeros(4, 1).unwrap();
        b.loss(
            Loss::SparseSoftmaxCrossEntropy,
            &pred,
            &labels,
            &mut grad,
            &mut row_loss,
        )
        .unwrap();
        let l = b.read(&row_loss).unwrap();
        assert!((l[0] - (cols as f32).ln()).abs() < 1e-5, "{cols}: {l:?}");
        assert!(l[1..].iter().all(|v| v.is_nan()), "{cols}: {l:?}");
        let g = b.read(&grad).unwrap();
        assert!(g[..cols].iter().all(|v| v.is_finite()), "{cols}: row 0");
        assert!(g[cols..].iter().all(|v| v.is_nan()), "{cols}: bad rows");
    }
}
reduction_test!(bad_labels_give_nan, check_bad_labels_give_nan);

fn check_reductions<B: Backend>(b: &mut B) {
    let mut r = rng(5);
    for &(rows, cols, why) in ROW_SHAPES {
        let n = rows * cols;
        let mut acc = b.zeros(1, 4).unwrap();
        b.fill(&mut acc, 0.5).unwrap();

        let x_data = uniform(&mut r, n, -1.0, 1.0);
        let x = upload(b, rows, cols, &x_data);
        b.sum_into(&x, &mut acc, 1).unwrap();
        b.sum_into(&x, &mut acc, 1).unwrap();
        let sum: f64 = x_data.iter().map(|&v| v as f64).sum();

        // Small integers, so that rows have ties (argmax takes the first).
        let p_data: Vec<f32> = (0..n).map(|_| r.random_range(0..4) as f32).collect();
        let labels: Vec<f32> = (0..rows).map(|_| r.random_range(0..cols) as f32).collect();
        let pred = upload(b, rows, cols, &p_data);
        let label_t = upload(b, rows, 1, &labels);
        b.argmax_correct_into(&pred, &label_t, &mut acc, 2).unwrap();
        let onehot_data: Vec<f32> = (0..n).map(|_| r.random_range(0..2) as f32).collect();
        let onehot = upload(b, rows, cols, &onehot_data);
        b.argmax_correct_into(&pred, &onehot, &mut acc, 2).unwrap();
        let want_argmax = reference::argmax_correct(&p_data, &labels, cols, 1)
            + reference::argmax_correct(&p_data, &onehot_data, cols, cols);

        let probs = uniform(&mut r, n, 0.0, 1.0);
        let probs_t = upload(b, rows, cols, &probs);
        b.threshold_correct_into(&probs_t, &onehot, 0.5, &mut acc, 3)
            .unwrap();
        let want_thr = reference::threshold_correct(&probs, &onehot_data, 0.5);

        let got = b.read(&acc).unwrap();
        let want = [
            0.5,
            (0.5 + 2.0 * sum) as f32,
            0.5 + want_argmax as f32,
            0.5 + want_thr as f32,
        ];
        assert_close(
            &format!("reductions {rows}×{cols} ({why})"),
            Tolerance::new(1e-5, 1e-5),
            &got,
            &want,
        );
    }
}
backend_test!(reductions, check_reductions);

/// Sums past one workgroup's share, into a slot that already holds a value, twice.
fn check_large_sums<B: Backend>(b: &mut B) {
    let mut r = rng(51);
    for &(rows, cols, why) in SUM_SHAPES {
        let x_data = uniform(&mut r, rows * cols, -1.0, 1.0);
        let x = upload(b, rows, cols, &x_data);
        let mut acc = b.zeros(1, 3).unwrap();
        b.fill(&mut acc, 0.25).unwrap();
        b.sum_into(&x, &mut acc, 1).unwrap();
        b.sum_into(&x, &mut acc, 1).unwrap();
        let sum: f64 = x_data.iter().map(|&v| v as f64).sum();
        // f32 partial sums against the reference's f64: the error grows like √n.
        let tol = Tolerance::new(2e-6 * ((rows * cols) as f32).sqrt(), 1e-5);
        assert_close(
            &format!("sum_into {rows}×{cols} ({why})"),
            tol,
            &b.read(&acc).unwrap(),
            &[0.25, (0.25 + 2.0 * sum) as f32, 0.25],
        );
    }
}
backend_test!(large_sums, check_large_sums);

fn check_metric_reductions<B: Backend>(b: &mut B) {
    let mut r = rng(7);
    for &(rows, cols, why) in ROW_SHAPES {
        let n = rows * cols;
        let what = |m: &str| format!("{m} {rows}×{cols} ({why})");
        // Scores on a coarse grid, so that top-k has ties; probabilities with exact 0, 0.5, 1
        // and values past both ends, which sit on the histogram's edges.
        let scores: Vec<f32> = (0..n).map(|_| r.random_range(0..5) as f32).collect();
        let probs: Vec<f32> = (0..n)
            .map(|i| match i % 9 {
                0 => 0.0,
                1 => 1.0,
                2 => 0.5,
                3 => -0.25,
                4 => 1.5,
                5 => (r.random_range(0..200) as f32) / 199.0,
                _ => r.random_range(0.0..1.0),
            })
            .collect();
        let yes_no: Vec<f32> = (0..n).map(|_| r.random_range(0..2) as f32).collect();
        let labels: Vec<f32> = (0..rows).map(|_| r.random_range(0..cols) as f32).collect();
        let targets: Vec<f32> = (0..n).map(|_| r.random_range(0.0..3.0)).collect();

        let slots = 1 + 1 + 4 + ROC_HISTOGRAM_SLOTS + PointError::ALL.len();
        let mut acc = b.zeros(1, slots).unwrap();
        let (score_t, label_t) = (upload(b, rows, cols, &scores), upload(b, rows, 1, &labels));
        let (prob_t, yes_no_t) = (
            upload(b, rows, cols, &probs),
            upload(b, rows, cols, &yes_no),
        );
        let k = 1 + cols / 3;
        b.topk_correct_into(&score_t, &label_t, k, &mut acc, 0)
            .unwrap();
        b.topk_correct_into(&score_t, &yes_no_t, 2, &mut acc, 1)
            .unwrap();
        b.confusion_into(&prob_t, &yes_no_t, 0.5, &mut acc, 2)
            .unwrap();
        b.roc_histogram_into(&prob_t, &yes_no_t, &mut acc, 6)
            .unwrap();
        let target_t = upload(b, rows, cols, &targets);
        // Poisson takes the log of the prediction: non-negative ones, with the exact 0s.
        let positive: Vec<f32> = probs.iter().map(|p| p.abs()).collect();
        let positive_t = upload(b, rows, cols, &positive);
        for (i, kind) in PointError::ALL.into_iter().enumerate() {
            b.error_sum_into(
                kind,
                &positive_t,
                &target_t,
                &mut acc,
                6 + ROC_HISTOGRAM_SLOTS + i,
            )
            .unwrap();
        }
        let got = b.read(&acc).unwrap();

        let counts = |v: Vec<usize>| v.into_iter().map(|c| c as f32).collect::<Vec<_>>();
        assert_close(
            &what("top-k correct"),
            Tolerance::EXACT,
            &got[0..2],
            &[
                reference::topk_correct(&scores, &labels, cols, 1, k) as f32,
                reference::topk_correct(&scores, &yes_no, cols, cols, 2) as f32,
            ],
        );
        assert_close(
            &what("confusion"),
            Tolerance::EXACT,
            &got[2..6],
            &counts(reference::confusion(&probs, &yes_no, 0.5).to_vec()),
        );
        assert_close(
            &what("roc histogram"),
            Tolerance::EXACT,
            &got[6..6 + ROC_HISTOGRAM_SLOTS],
            &counts(reference::roc_histogram(&probs, &yes_no)),
        );
        let want: Vec<f32> = PointError::ALL
            .into_iter()
            .map(|kind| {
                positive
                    .iter()
                    .zip(&targets)
                    .map(|(&p, &y)| reference::point_error_f64(kind, p as f64, y as f64))
                    .sum::<f64>() as f32
            })
            .collect();
        assert_close(
            &what("error sums"),
            Tolerance::new(1e-4, 1e-5),
            &got[6 + ROC_HISTOGRAM_SLOTS..],
            &want,
        );
    }
}
backend_test!(metric_reductions, check_metric_reductions);

/// The row-wise cross-entropy sums (from logits and from probabilities, with labels and with
/// target rows) and the per-class confusion counts (by threshold and by argmax).
fn check_class_metric_reductions<B: Backend>(b: &mut B) {
    let mut r = rng(11);
    for &(rows, cols, why) in ROW_SHAPES {
        let n = rows * cols;
        let what = |m: &str| format!("{m} {rows}×{cols} ({why})");
        // Logits up to ±30: exp overflows without the max taken out.
        let logits = uniform(&mut r, n, -30.0, 30.0);
        // Probabilities on a coarse grid, so that rows tie for the argmax; some exact 0s.
        let probs: Vec<f32> = (0..n).map(|_| r.random_range(0..5) as f32 / 4.0).collect();
        let labels: Vec<f32> = (0..rows).map(|_| r.random_range(0..cols) as f32).collect();
        let soft: Vec<f32> = (0..n).map(|_| r.random_range(0.0..1.0)).collect();
        let yes_no: Vec<f32> = (0..n).map(|_| r.random_range(0..2) as f32).collect();
        let [logit_t, prob_t] = [&logits, &probs].map(|d| upload(b, rows, cols, d));
        let [soft_t, yes_no_t] = [&soft, &yes_no].map(|d| upload(b, rows, cols, d));
        let label_t = upload(b, rows, 1, &labels);

        let mut acc = b.zeros(1, 4 + 3 * 3 * cols).unwrap();
        let targets = [(&label_t, &labels), (&soft_t, &soft)];
        for (i, (from_logits, pred)) in [(true, &logit_t), (false, &prob_t)].into_iter().enumerate()
        {
            for (j, (t, _)) in targets.iter().enumerate() {
                b.crossentropy_sum_into(from_logits, pred, t, &mut acc, 2 * i + j)
                    .unwrap();
            }
        }
        let confusions = [(&label_t, None), (&yes_no_t, None), (&yes_no_t, Some(0.5))];
        for (i, &(t, threshold)) in confusions.iter().enumerate() {
            b.class_confusion_into(&prob_t, t, threshold, &mut acc, 4 + 3 * cols * i)
                .unwrap();
        }
        let got = b.read(&acc).unwrap();

        let f64s = |v: &[f32]| v.iter().map(|&x| x as f64).collect::<Vec<_>>();
        let mut want = Vec::new();
        for (from_logits, pred) in [(true, &logits), (false, &probs)] {
            for (_, t) in targets {
                let tc = t.len() / rows;
                let sum: f64 = pred
                    .chunks(cols)
                    .zip(t.chunks(tc))
                    .map(|(p, y)| reference::crossentropy_row_f64(from_logits, &f64s(p), &f64s(y)))
                    .sum();
                want.push(sum as f32);
            }
        }
        assert_close(
            &what("cross-entropy sums"),
            Tolerance::new(1e-4, 1e-4),
            &got[..4],
            &want,
        );
        let want: Vec<f32> = [
            (&labels, 1, None),
            (&yes_no, cols, None),
            (&yes_no, cols, Some(0.5)),
        ]
        .into_iter()
        .flat_map(|(t, tc, th)| reference::class_confusion(&probs, t, cols, tc, th))
        .map(|c| c as f32)
        .collect();
        assert_close(&what("class confusion"), Tolerance::EXACT, &got[4..], &want);
    }
}
backend_test!(class_metric_reductions, check_class_metric_reductions);

/// Every AUC threshold, and the f32 values just below and above it, land in the same bucket on
/// both backends (random inputs almost never hit an edge exactly).
fn check_roc_histogram_edges<B: Backend>(b: &mut B) {
    let mut edges = vec![-1e-7f32, 1.0 + 1e-7, f32::NAN, -1.0, 2.0];
    for j in 0..wgtrain::backend::AUC_THRESHOLDS {
        let t = j as f32 / (wgtrain::backend::AUC_THRESHOLDS - 1) as f32;
        edges.extend([
            t,
            f32::from_bits(t.to_bits() + 1),
            f32::from_bits(t.to_bits().max(1) - 1),
        ]);
    }
    let n = edges.len();
    let positives = vec![1.0; n];
    let pred = upload(b, n, 1, &edges);
    let target = upload(b, n, 1, &positives);
    let mut acc = b.zeros(1, ROC_HISTOGRAM_SLOTS).unwrap();
    b.roc_histogram_into(&pred, &target, &mut acc, 0).unwrap();
    let want: Vec<f32> = reference::roc_histogram(&edges, &positives)
        .into_iter()
        .map(|c| c as f32)
        .collect();
    assert_close(
        "roc histogram at the thresholds",
        Tolerance::EXACT,
        &b.read(&acc).unwrap(),
        &want,
    );
}
backend_test!(roc_histogram_edges, check_roc_histogram_edges);

/// Bad calls are errors that name the op and the shapes, on every backend.
fn check_shape_errors<B: Backend>(b: &mut B) {
    let a = b.zeros(2, 3).unwrap();
    let w = b.zeros(4, 5).unwrap();
    let mut c = b.zeros(2, 5).unwrap();
    let err = b
        .matmul(&a, false, &w, false, &mut c)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("matmul") && err.contains("[2, 3]") && err.contains("[4, 5]"),
        "{err}"
    );

    let bias = b.zeros(1, 4).unwrap();
    let mut z = b.zeros(2, 3).unwrap();
    let err = b.bias_add(&mut z, &bias).unwrap_err().to_string();
    assert!(err.contains("[1, 3]") && err.contains("[1, 4]"), "{err}");

    let err = b.zeros(0, 3).unwrap_err().to_string();
    assert!(err.contains("[0, 3]"), "{err}");
    let err = b.upload(2, 2, &[1.0; 3]).unwrap_err().to_string();
    assert!(err.contains("4 values, got 3"), "{err}");

    let mut p = b.zeros(2, 3).unwrap();
    let g = b.zeros(2, 3).unwrap();
    let err = b
        .optimizer_step(Optimizer::adam(1e-3), 1, &mut p, &g, &mut [], None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("2 state tensors, got 0"), "{err}");
}
backend_test!(shape_errors, check_shape_errors);
