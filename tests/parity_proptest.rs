//! Property-based shapes: random M, N, K and transposes, random row counts and widths, random
//! convolution windows, the GPU (and for convolutions the fast CPU backend) held to the
//! reference. Few cases each, so the suite stays fast on a software adapter.

mod common;

use proptest::prelude::*;
use wgtrain::backend::gpu::ConvVariant;
use wgtrain::backend::{reference, Activation, Backend, DropoutMask, Loss, Padding, Window};
use wgtrain::tolerance::Tolerance;

fn cfg() -> ProptestConfig {
    ProptestConfig {
        cases: 24,
        ..ProptestConfig::default()
    }
}

/// A convolution's three products on `b` against the reference, for `rows` images through
/// `w` with `f` filters.
fn conv_products<B: Backend>(
    b: &mut B,
    w: &Window,
    f: usize,
    rows: usize,
    seed: u64,
) -> Result<(), String> {
    let mut r = common::rng(seed);
    let (len, out) = (w.input_len(), w.positions() * f);
    let taps = w.kernel[0] * w.kernel[1] * w.input[2];
    let xd = common::uniform(&mut r, rows * len, -1.0, 1.0);
    let kd = common::uniform(&mut r, taps * f, -1.0, 1.0);
    let bd = common::uniform(&mut r, f, -1.0, 1.0);
    let dzd = common::uniform(&mut r, rows * out, -1.0, 1.0);
    let up =
        |b: &mut B, r: usize, c: usize, d: &[f32]| b.upload(r, c, d).map_err(|e| e.to_string());
    let (x, k, bias, dz) = (
        up(b, rows, len, &xd)?,
        up(b, taps, f, &kd)?,
        up(b, 1, f, &bd)?,
        up(b, rows, out, &dzd)?,
    );
    let tol = Tolerance::new(1e-5, 1e-4);
    let (mut z, mut a) = (b.zeros(rows, out).unwrap(), b.zeros(rows, out).unwrap());
    b.conv2d_forward(&x, &k, Some(&bias), w, Activation::Tanh, &mut z, &mut a)
        .map_err(|e| e.to_string())?;
    let mut want = vec![0.0; rows * out];
    reference::conv2d_forward(&xd, &kd, Some(&bd), w, f, &mut want);
    tol.compare(&b.read(&z).unwrap(), &want)
        .map_err(|e| format!("forward: {e}"))?;
    let mut dx = b.zeros(rows, len).unwrap();
    b.conv2d_backward_input(&dz, &k, w, &mut dx)
        .map_err(|e| e.to_string())?;
    let mut want = vec![0.0; rows * len];
    reference::conv2d_backward_input(&dzd, &kd, w, f, &mut want);
    tol.compare(&b.read(&dx).unwrap(), &want)
        .map_err(|e| format!("input grad: {e}"))?;
    let (mut dk, mut db) = (b.zeros(taps, f).unwrap(), b.zeros(1, f).unwrap());
    b.conv2d_backward_kernel(&x, &dz, w, &mut dk, Some(&mut db))
        .map_err(|e| e.to_string())?;
    let (mut want, mut want_b) = (vec![0.0; taps * f], vec![0.0; f]);
    reference::conv2d_backward_kernel(&xd, &dzd, w, f, &mut want, Some(&mut want_b));
    tol.compare(&b.read(&dk).unwrap(), &want)
        .map_err(|e| format!("kernel grad: {e}"))?;
    tol.compare(&b.read(&db).unwrap(), &want_b)
        .map_err(|e| format!("bias grad: {e}"))
}

proptest! {
    #![proptest_config(cfg())]

    #[test]
    fn conv2d_random_windows(h in 1usize..12, wd in 1usize..12, c in 1usize..6, kh in 1usize..5,
                             kw in 1usize..5, sh in 1usize..4, sw in 1usize..4, same in any::<bool>(),
                             f in 1usize..7, rows in 1usize..4, seed in any::<u64>()) {
        let padding = if same { Padding::Same } else { Padding::Valid };
        let w = Window { input: [h, wd, c], kernel: [kh, kw], strides: [sh, sw], padding };
        // A window larger than a 'valid' image has no output: an error, checked elsewhere.
        prop_assume!(w.validate().is_ok());
        let what = format!("{h}×{wd}×{c}, {kh}×{kw}/{sh}×{sw} {}, {f} filters, batch {rows}", padding.name());
        conv_products(&mut common::cpu(), &w, f, rows, seed)
            .map_err(|e| TestCaseError::fail(format!("cpu, {what}: {e}")))?;
        if let Some(mut g) = common::gpu() {
            for v in [ConvVariant::Im2col, ConvVariant::Implicit, ConvVariant::ImplicitTiled] {
                g.set_conv_variant(Some(v));
                conv_products(&mut g, &w, f, rows, seed)
                    .map_err(|e| TestCaseError::fail(format!("gpu {}, {what}: {e}", v.name())))?;
            }
        }
    }

    #[test]
    fn matmul_random_shapes(m in 1usize..150, n in 1usize..150, k in 1usize..300,
                            ta in any::<bool>(), tb in any::<bool>(), seed in any::<u64>()) {
        let Some(mut g) = common::gpu() else { return Ok(()) };
        let mut r = common::rng(seed);
        let a_data = common::uniform(&mut r, m * k, -1.0, 1.0);
        let b_data = common::uniform(&mut r, k * n, -1.0, 1.0);
        let a = if ta { g.upload(k, m, &a_data) } else { g.upload(m, k, &a_data) }.unwrap();
        let b = if tb { g.upload(n, k, &b_data) } else { g.upload(k, n, &b_data) }.unwrap();
        let mut c = g.zeros(m, n).unwrap();
        g.matmul(&a, ta, &b, tb, &mut c).unwrap();
        let mut want = vec![0.0; m * n];
        reference::matmul_forward(&a_data, ta, &b_data, tb, &mut want, m, n, k);
        let tol = Tolerance::new(2e-6 * (k as f32).sqrt() + 1e-6, 1e-5);
        if let Err(e) = tol.compare(&g.read(&c).unwrap(), &want) {
            return Err(TestCaseError::fail(format!("M={m} N={n} K={k} ta={ta} tb={tb}: {e}")));
        }
    }

    #[test]
    fn softmax_cross_entropy_random_shapes(rows in 1usize..300, cols in 1usize..70, seed in any::<u64>()) {
        let Some(mut g) = common::gpu() else { return Ok(()) };
        let mut r = common::rng(seed);
        let z_data = common::uniform(&mut r, rows * cols, -20.0, 20.0);
        let labels: Vec<f32> = (0..rows).map(|i| (i * 7 % cols) as f32).collect();
        let z = g.upload(rows, cols, &z_data).unwrap();
        let y = g.upload(rows, 1, &labels).unwrap();
        let mut grad = g.zeros(rows, cols).unwrap();
        let mut row_loss = g.zeros(rows, 1).unwrap();
        g.loss(Loss::SparseSoftmaxCrossEntropy, &z, &y, &mut grad, &mut row_loss).unwrap();
        let mut a = g.zeros(rows, cols).unwrap();
        g.activation(Activation::Softmax, &z, &mut a).unwrap();

        let mut want_g = vec![0.0; rows * cols];
        let mut want_l = vec![0.0; rows];
        reference::loss_forward_backward(Loss::SparseSoftmaxCrossEntropy, &z_data, &labels, &mut want_g, &mut want_l, cols);
        let mut want_a = vec![0.0; rows * cols];
        reference::activation_forward(Activation::Softmax, &z_data, &mut want_a, cols);
        for (what, tol, got, want) in [
            ("row loss", Tolerance::new(1e-5, 1e-5), g.read(&row_loss).unwrap(), want_l),
            ("gradient", Tolerance::new(1e-7, 1e-4), g.read(&grad).unwrap(), want_g),
            ("softmax", Tolerance::new(1e-7, 1e-4), g.read(&a).unwrap(), want_a),
        ] {
            if let Err(e) = tol.compare(&got, &want) {
                return Err(TestCaseError::fail(format!("{what} {rows}×{cols}: {e}")));
            }
        }
    }

    /// The layer ops on random shapes: dropout exactly (the same masks), batch normalization
    /// forward and backward, maxout exactly.
    #[test]
    fn layer_ops_random_shapes(rows in 1usize..200, units in 1usize..80, pieces in 2usize..5,
                               rate in 0.0f32..0.95, step in any::<u64>(), seed in any::<u64>()) {
        let Some(mut g) = common::gpu() else { return Ok(()) };
        let mut r = common::rng(seed);
        let x_data = common::uniform(&mut r, rows * units, -2.0, 2.0);
        let x = g.upload(rows, units, &x_data).unwrap();
        let mask = DropoutMask { seed, layer: (seed % 7) as u32, step, rate };
        let (mut y, mut keep) = (g.zeros(rows, units).unwrap(), g.zeros(rows, units).unwrap());
        g.dropout(&x, mask, &mut y, &mut keep).unwrap();
        let (mut want, mut want_keep) = (vec![0.0; rows * units], vec![0.0; rows * units]);
        reference::dropout_forward(&x_data, &mut want, &mut want_keep, mask);
        prop_assert_eq!(g.read(&keep).unwrap(), want_keep, "dropout mask {}×{}", rows, units);
        prop_assert_eq!(g.read(&y).unwrap(), want, "dropout {}×{} rate {}", rows, units, rate);

        let ones = vec![1.0; units];
        let (gamma, beta) = (g.upload(1, units, &ones).unwrap(), g.zeros(1, units).unwrap());
        let (mut mean, mut var) = (g.zeros(1, units).unwrap(), g.zeros(1, units).unwrap());
        g.batchnorm_stats(&x, &mut mean, &mut var).unwrap();
        g.batchnorm_forward(&x, [&mean, &var], [&gamma, &beta], 1e-3, &mut y).unwrap();
        let (mut wm, mut wv) = (vec![0.0; units], vec![0.0; units]);
        reference::batchnorm_stats(&x_data, &mut wm, &mut wv, units);
        let mut want = vec![0.0; rows * units];
        reference::batchnorm_forward(&x_data, &wm, &wv, &ones, &vec![0.0; units], 1e-3, &mut want, units);
        if let Err(e) = Tolerance::new(1e-4, 1e-3).compare(&g.read(&y).unwrap(), &want) {
            return Err(TestCaseError::fail(format!("batchnorm {rows}×{units}: {e}")));
        }

        let z_data = common::uniform(&mut r, rows * units * pieces, -2.0, 2.0);
        let z = g.upload(rows, units * pieces, &z_data).unwrap();
        g.maxout_forward(&z, pieces, &mut y).unwrap();
        let mut want = vec![0.0; rows * units];
        reference::maxout_forward(&z_data, &mut want, units, pieces);
        prop_assert_eq!(g.read(&y).unwrap(), want, "maxout {}×{}×{}", rows, units, pieces);
    }
}
