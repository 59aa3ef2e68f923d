//! The convolutional ops (2-D convolution, its input and kernel gradients, max and average
//! pooling): worked values, every op on every backend against the reference functions on the
//! named awkward windows, and every backward of the reference against finite differences of
//! its forward.

// Finite differences index the analytic gradient and the input alike.
#![allow(clippy::needless_range_loop)]

mod common;

use common::{assert_close, rng, uniform, upload};
use rand::seq::SliceRandom;
use rand::Rng;
use wgtrain::backend::gpu::ConvVariant;
use wgtrain::backend::{reference, Activation, Backend, Padding, Window};
use wgtrain::tolerance::Tolerance;

/// f32 sums of up to a few hundred products against the reference's f64.
const SUMS: Tolerance = Tolerance::new(1e-5, 1e-4);

/// A window over `(h, w, c)` images: kernel, strides, padding, filters and batch, and why
/// the case is hard.
struct Case {
    input: [usize; 3],
    kernel: [usize; 2],
    strides: [usize; 2],
    padding: Padding,
    filters: usize,
    rows: usize,
    why: &'static str,
}

const fn case(
    input: [usize; 3],
    kernel: [usize; 2],
    strides: [usize; 2],
    padding: Padding,
    filters: usize,
    rows: usize,
    why: &'static str,
) -> Case {
    Case {
        input,
        kernel,
        strides,
        padding,
        filters,
        rows,
        why,
    }
}

use Padding::{Same, Valid};

/// Windows that break the index arithmetic.
const CASES: &[Case] = &[
    case(
        [5, 5, 3],
        [1, 1],
        [1, 1],
        Valid,
        4,
        2,
        "1×1 kernel: a product per pixel, no neighbours",
    ),
    case(
        [7, 7, 3],
        [3, 3],
        [2, 2],
        Valid,
        5,
        2,
        "stride 2 over an odd size: the last row and column are never read",
    ),
    case(
        [7, 6, 2],
        [3, 3],
        [2, 2],
        Same,
        3,
        2,
        "'same' with stride 2: padding on one side only for the even width",
    ),
    case(
        [6, 5, 1],
        [4, 4],
        [1, 1],
        Same,
        2,
        2,
        "'same' with an even kernel: more padding after than before",
    ),
    case(
        [4, 4, 17],
        [3, 3],
        [1, 1],
        Same,
        3,
        3,
        "17 channels: no multiple of 4 or 8; 'same' pads all four sides",
    ),
    case(
        [9, 9, 1],
        [3, 3],
        [1, 1],
        Valid,
        8,
        1,
        "a batch of one, one channel (MNIST's first layer)",
    ),
    case(
        [6, 8, 2],
        [2, 3],
        [1, 2],
        Valid,
        3,
        2,
        "a rectangular kernel and strides that differ by axis",
    ),
    case(
        [3, 3, 2],
        [3, 3],
        [1, 1],
        Valid,
        4,
        3,
        "the window is the whole image: one output per filter",
    ),
    case(
        [5, 7, 3],
        [2, 2],
        [3, 3],
        Valid,
        2,
        2,
        "stride larger than the kernel: inputs no window reads",
    ),
    case(
        [11, 13, 3],
        [3, 3],
        [1, 1],
        Valid,
        17,
        2,
        "odd image sizes and 17 filters",
    ),
    case(
        [5, 5, 64],
        [3, 3],
        [1, 1],
        Valid,
        64,
        11,
        "576 taps × 64 filters over 11 images: implicit GEMM's kernel gradient in uneven slices",
    ),
    case(
        [10, 10, 3],
        [3, 3],
        [1, 1],
        Same,
        33,
        9,
        "900 output rows and 33 filters: more than one block each way, partial blocks",
    ),
];

impl Case {
    fn window(&self) -> Window {
        Window {
            input: self.input,
            kernel: self.kernel,
            strides: self.strides,
            padding: self.padding,
        }
    }

    fn what(&self) -> String {
        let [h, w, c] = self.input;
        let [kh, kw] = self.kernel;
        let [sh, sw] = self.strides;
        format!(
            "{h}×{w}×{c}, {kh}×{kw}/{sh}×{sw} {}, {} filters, batch {} ({})",
            self.padding.name(),
            self.filters,
            self.rows,
            self.why
        )
    }
}

fn check_conv2d<B: Backend>(b: &mut B) {
    let mut r = rng(60);
    for case in CASES {
        let (w, f, n, what) = (case.window(), case.filters, case.rows, case.what());
        let (len, out) = (w.input_len(), w.positions() * f);
        let taps = w.kernel[0] * w.kernel[1] * w.input[2];
        let x_data = uniform(&mut r, n * len, -1.0, 1.0);
        let k_data = uniform(&mut r, taps * f, -1.0, 1.0);
        let b_data = uniform(&mut r, f, -1.0, 1.0);
        let dz_data = uniform(&mut r, n * out, -1.0, 1.0);
        let (x, k, bias) = (
            upload(b, n, len, &x_data),
            upload(b, taps, f, &k_data),
            upload(b, 1, f, &b_data),
        );
        let dz = upload(b, n, out, &dz_data);
        for with_bias in [true, false] {
            let mut z = b.zeros(n, out).unwrap();
            b.conv2d(&x, &k, with_bias.then_some(&bias), &w, &mut z)
                .unwrap();
            let mut want = vec![0.0; n * out];
            let bias_data = with_bias.then_some(b_data.as_slice());
            reference::conv2d_forward(&x_data, &k_data, bias_data, &w, f, &mut want);
            let got = b.read(&z).unwrap();
            assert_close(
                &format!("conv2d bias {with_bias}, {what}"),
                SUMS,
                &got,
                &want,
            );
        }
        // With the activation, fused into the product's epilogue where a backend can.
        let act = Activation::LeakyRelu { alpha: 0.1 };
        for with_bias in [true, false] {
            let (mut z, mut a) = (b.zeros(n, out).unwrap(), b.zeros(n, out).unwrap());
            let bias_t = with_bias.then_some(&bias);
            b.conv2d_forward(&x, &k, bias_t, &w, act, &mut z, &mut a)
                .unwrap();
            let mut want = vec![0.0; n * out];
            let bias_data = with_bias.then_some(b_data.as_slice());
            reference::conv2d_forward(&x_data, &k_data, bias_data, &w, f, &mut want);
            let mut want_a = vec![0.0; n * out];
            reference::activation_forward(act, &want, &mut want_a, out);
            let what = format!("conv2d_forward leaky relu, bias {with_bias}, {what}");
            assert_close(&format!("z of {what}"), SUMS, &b.read(&z).unwrap(), &want);
            assert_close(&format!("a of {what}"), SUMS, &b.read(&a).unwrap(), &want_a);
        }
        let mut dx = b.zeros(n, len).unwrap();
        b.conv2d_backward_input(&dz, &k, &w, &mut dx).unwrap();
        let mut want = vec![0.0; n * len];
        reference::conv2d_backward_input(&dz_data, &k_data, &w, f, &mut want);
        assert_close(
            &format!("conv2d dx, {what}"),
            SUMS,
            &b.read(&dx).unwrap(),
            &want,
        );

        let (mut dk, mut db) = (b.zeros(taps, f).unwrap(), b.zeros(1, f).unwrap());
        b.conv2d_backward_kernel(&x, &dz, &w, &mut dk, Some(&mut db))
            .unwrap();
        let (mut want_k, mut want_b) = (vec![0.0; taps * f], vec![0.0; f]);
        reference::conv2d_backward_kernel(&x_data, &dz_data, &w, f, &mut want_k, Some(&mut want_b));
        assert_close(
            &format!("conv2d dkernel, {what}"),
            SUMS,
            &b.read(&dk).unwrap(),
            &want_k,
        );
        assert_close(
            &format!("conv2d dbias, {what}"),
            SUMS,
            &b.read(&db).unwrap(),
            &want_b,
        );
    }
}
backend_test!(conv2d, check_conv2d);

/// The windows of [`CASES`] as pooling windows (the filters are the input's channels).
fn check_pooling<B: Backend>(b: &mut B) {
    let mut r = rng(61);
    for case in CASES {
        let (w, n, what) = (case.window(), case.rows, case.what());
        let (len, out) = (w.input_len(), w.positions() * w.input[2]);
        let mut x_data = uniform(&mut r, n * len, -1.0, 1.0);
        // A tie inside the first window: the first position wins.
        x_data[w.input[2]] = x_data[0];
        let dy_data = uniform(&mut r, n * out, -1.0, 1.0);
        let (x, dy) = (upload(b, n, len, &x_data), upload(b, n, out, &dy_data));

        let (mut y, mut winners) = (b.zeros(n, out).unwrap(), b.zeros(n, out).unwrap());
        b.max_pool_forward(&x, &w, &mut y, &mut winners).unwrap();
        let (mut want_y, mut want_w) = (vec![0.0; n * out], vec![0.0; n * out]);
        reference::max_pool_forward(&x_data, &w, &mut want_y, &mut want_w);
        assert_eq!(b.read(&y).unwrap(), want_y, "max pool, {what}");
        assert_eq!(
            b.read(&winners).unwrap(),
            want_w,
            "max pool winners, {what}"
        );
        let mut dx = b.zeros(n, len).unwrap();
        b.max_pool_backward(&dy, &winners, &w, &mut dx).unwrap();
        let mut want = vec![0.0; n * len];
        reference::max_pool_backward(&dy_data, &want_w, &w, &mut want);
        assert_close(
            &format!("max pool dx, {what}"),
            SUMS,
            &b.read(&dx).unwrap(),
            &want,
        );

        let mut y = b.zeros(n, out).unwrap();
        b.avg_pool_forward(&x, &w, &mut y).unwrap();
        let mut want = vec![0.0; n * out];
        reference::avg_pool_forward(&x_data, &w, &mut want);
        assert_close(
            &format!("avg pool, {what}"),
            SUMS,
            &b.read(&y).unwrap(),
            &want,
        );
        let mut dx = b.zeros(n, len).unwrap();
        b.avg_pool_backward(&dy, &w, &mut dx).unwrap();
        let mut want = vec![0.0; n * len];
        reference::avg_pool_backward(&dy_data, &w, &mut want);
        assert_close(
            &format!("avg pool dx, {what}"),
            SUMS,
            &b.read(&dx).unwrap(),
            &want,
        );
    }
}
backend_test!(pooling, check_pooling);

/// Operands that do not fit the window are errors naming the op and the shapes, on every
/// backend, before anything runs.
fn check_bad_operands<B: Backend>(b: &mut B) {
    let w = CASES[1].window(); // 7×7×3, 3×3 / 2, valid: 3×3 outputs
    let x = b.zeros(2, 7 * 7 * 3).unwrap();
    let k = b.zeros(27, 5).unwrap();
    let mut z = b.zeros(2, 9 * 5).unwrap();
    let short = b.zeros(2, 7 * 7 * 2).unwrap();
    let e = b
        .conv2d(&short, &k, None, &w, &mut z)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("conv2d") && e.contains("7×7×3") && e.contains("[2, 98]"),
        "{e}"
    );
    let wrong_k = b.zeros(26, 5).unwrap();
    let e = b
        .conv2d(&x, &wrong_k, None, &w, &mut z)
        .unwrap_err()
        .to_string();
    assert!(e.contains("3×3 kernel") && e.contains("[26, 5]"), "{e}");
    let mut wrong_z = b.zeros(2, 10 * 5).unwrap();
    let e = b
        .conv2d(&x, &k, None, &w, &mut wrong_z)
        .unwrap_err()
        .to_string();
    assert!(e.contains("3×3×5") && e.contains("[2, 50]"), "{e}");
    let big = Window {
        input: [2, 2, 1],
        kernel: [3, 3],
        strides: [1, 1],
        padding: Padding::Valid,
    };
    let (x, mut y, mut win) = (
        b.zeros(1, 4).unwrap(),
        b.zeros(1, 1).unwrap(),
        b.zeros(1, 1).unwrap(),
    );
    let e = b
        .max_pool_forward(&x, &big, &mut y, &mut win)
        .unwrap_err()
        .to_string();
    assert!(e.contains("3×3") && e.contains("2×2"), "{e}");
    let (x, mut z, mut a) = (
        b.zeros(2, 147).unwrap(),
        b.zeros(2, 45).unwrap(),
        b.zeros(2, 45).unwrap(),
    );
    let softmax = Activation::Softmax;
    let e = b
        .conv2d_forward(&x, &k, None, &w, softmax, &mut z, &mut a)
        .unwrap_err()
        .to_string();
    assert!(e.contains("softmax") && e.contains("Flatten"), "{e}");
}
backend_test!(bad_operands, check_bad_operands);

#[test]
fn a_convolution_worked_by_hand() {
    // One 3×3 image, one channel; a 2×2 kernel of ones and a bias of 10: each output is the
    // sum of a 2×2 block plus 10.
    let x: Vec<f32> = (1..=9).map(|v| v as f32).collect();
    let w = Window {
        input: [3, 3, 1],
        kernel: [2, 2],
        strides: [1, 1],
        padding: Padding::Valid,
    };
    let mut z = vec![0.0; 4];
    reference::conv2d_forward(&x, &[1.0; 4], Some(&[10.0]), &w, 1, &mut z);
    assert_eq!(z, [22.0, 26.0, 34.0, 38.0]);
    // 'same': the 3×3 output's last row and column read zeros after the image.
    let same = Window {
        padding: Padding::Same,
        ..w
    };
    let mut z = vec![0.0; 9];
    reference::conv2d_forward(&x, &[1.0; 4], None, &same, 1, &mut z);
    assert_eq!(z, [12.0, 16.0, 9.0, 24.0, 28.0, 15.0, 15.0, 17.0, 9.0]);
    // Average pooling with 'same' divides by the taps inside the image only.
    let mut y = vec![0.0; 9];
    reference::avg_pool_forward(&x, &same, &mut y);
    assert_eq!(y, [3.0, 4.0, 4.5, 6.0, 7.0, 7.5, 7.5, 8.5, 9.0]);
}

// ---------------------------------------------------------------------------------------
// the reference's backwards against finite differences of its forwards

use common::finite::{assert_grad, fd, weighted, H};

/// Cases small enough to difference every input: the stride-2, 'same' even-kernel,
/// rectangular and whole-image windows.
fn gradcheck_cases() -> impl Iterator<Item = &'static Case> {
    [1, 2, 3, 6, 7].into_iter().map(|i| &CASES[i])
}

#[test]
fn conv2d_backwards_are_the_gradients_of_its_forward() {
    let mut r = rng(62);
    for case in gradcheck_cases() {
        let (w, f, n, what) = (case.window(), case.filters, case.rows, case.what());
        let (len, out) = (w.input_len(), w.positions() * f);
        let taps = w.kernel[0] * w.kernel[1] * w.input[2];
        let x = uniform(&mut r, n * len, -1.0, 1.0);
        let k = uniform(&mut r, taps * f, -1.0, 1.0);
        let bias = uniform(&mut r, f, -1.0, 1.0);
        let g: Vec<f64> = (0..n * out).map(|_| r.random_range(-1.0..1.0)).collect();
        // L = Σ g ⊙ conv(x, k) + b
        let loss = |x: &[f32], k: &[f32], bias: &[f32]| {
            let mut z = vec![0.0; n * out];
            reference::conv2d_forward(x, k, Some(bias), &w, f, &mut z);
            weighted(&z, &g)
        };
        let dz: Vec<f32> = g.iter().map(|&v| v as f32).collect();
        let mut dx = vec![0.0; n * len];
        reference::conv2d_backward_input(&dz, &k, &w, f, &mut dx);
        let (mut dk, mut db) = (vec![0.0; taps * f], vec![0.0; f]);
        reference::conv2d_backward_kernel(&x, &dz, &w, f, &mut dk, Some(&mut db));
        for i in 0..x.len() {
            let numeric = fd(&x, i, |x| loss(x, &k, &bias));
            assert_grad(&format!("dx[{i}], {what}"), dx[i], numeric);
        }
        for i in 0..k.len() {
            let numeric = fd(&k, i, |k| loss(&x, k, &bias));
            assert_grad(&format!("dkernel[{i}], {what}"), dk[i], numeric);
        }
        for i in 0..f {
            let numeric = fd(&bias, i, |b| loss(&x, &k, b));
            assert_grad(&format!("dbias[{i}], {what}"), db[i], numeric);
        }
    }
}

#[test]
fn pooling_backwards_are_the_gradients_of_their_forwards() {
    let mut r = rng(63);
    for case in gradcheck_cases() {
        let (w, n, what) = (case.window(), case.rows, case.what());
        let (len, out) = (w.input_len(), w.positions() * w.input[2]);
        // Distinct inputs at least 4 steps apart, so that no window's winner changes within
        // a finite-difference step.
        let mut order: Vec<usize> = (0..n * len).collect();
        order.shuffle(&mut r);
        let x: Vec<f32> = order.iter().map(|&i| i as f32 * 4.0 * H).collect();
        let g: Vec<f64> = (0..n * out).map(|_| r.random_range(-1.0..1.0)).collect();
        let dy: Vec<f32> = g.iter().map(|&v| v as f32).collect();

        let max_loss = |x: &[f32]| {
            let (mut y, mut win) = (vec![0.0; n * out], vec![0.0; n * out]);
            reference::max_pool_forward(x, &w, &mut y, &mut win);
            weighted(&y, &g)
        };
        let (mut y, mut win) = (vec![0.0; n * out], vec![0.0; n * out]);
        reference::max_pool_forward(&x, &w, &mut y, &mut win);
        let mut dx = vec![0.0; n * len];
        reference::max_pool_backward(&dy, &win, &w, &mut dx);
        for i in 0..x.len() {
            assert_grad(
                &format!("max pool dx[{i}], {what}"),
                dx[i],
                fd(&x, i, max_loss),
            );
        }

        let avg_loss = |x: &[f32]| {
            let mut y = vec![0.0; n * out];
            reference::avg_pool_forward(x, &w, &mut y);
            weighted(&y, &g)
        };
        let mut dx = vec![0.0; n * len];
        reference::avg_pool_backward(&dy, &w, &mut dx);
        for i in 0..x.len() {
            assert_grad(
                &format!("avg pool dx[{i}], {what}"),
                dx[i],
                fd(&x, i, avg_loss),
            );
        }
    }
}

/// Each of the GPU's convolution variants fixed in turn against the reference (the default,
/// autotuned per shape, runs in `conv2d::gpu`): v1 direct, v2 im2col and the
/// matmul kernels, v3 and v4 implicit GEMM.
#[test]
fn every_gpu_conv_variant() {
    if let Some(mut b) = common::gpu() {
        for v in ConvVariant::ALL {
            b.set_conv_variant(Some(v));
            eprintln!("{}", v.name());
            check_conv2d(&mut b);
        }
    }
}
