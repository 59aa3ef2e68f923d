//! Steps recorded once and replayed, and the data kept on the device: a replayed run is the
//! recorded run bit for bit (dropout, RReLU, batch normalization, Adam's bias corrections, a
//! learning rate changed between epochs, the guard's alternating flags, shuffled batches, a
//! last short batch); after warm-up a step sends no data and every step replays; the batch
//! gather matches the reference on awkward shapes and refuses bad orders; data kept in host
//! memory (the path of a dataset too large for the device) trains as data on the device does.

mod common;

use wgtrain::backend::{reference, reference::ReferenceBackend, Activation, Backend, Optimizer};
use wgtrain::data::{self, Matrix};
use wgtrain::error::Result;
use wgtrain::nn::{BatchNormalization, Dense, Dropout, Maxout, PRelu, RRelu, Sequential};
use wgtrain::tolerance::Tolerance;
use wgtrain::train::callbacks::{Callback, ModelControl};
use wgtrain::train::{Compile, FitConfig, Logs, Metric, Model};

fn digits(n: usize) -> (Matrix, Matrix) {
    let (x, y) = data::digits();
    (x.head(n), y.head(n))
}

/// Every layer kind whose ops a replay patches or must leave alone.
fn stack() -> Sequential {
    Sequential::new()
        .add(Dense::new(24, Activation::Linear))
        .add(PRelu::new())
        .add(Dropout::new(0.25))
        .add(BatchNormalization::new())
        .add(Maxout::new(16, 2))
        .add(RRelu::new())
        .add(Dense::new(10, Activation::Softmax))
}

fn model<B: Backend>(b: B, opt: Optimizer) -> Model<B> {
    stack()
        .compile(
            b,
            Compile::new(
                wgtrain::nn::LossFn::SparseCategoricalCrossentropy { from_logits: false },
                opt,
            )
            .metrics(&[Metric::Accuracy])
            .seed(11),
        )
        .unwrap()
}

/// Halves the learning rate after every epoch: the replays must use the new one.
struct Halve;
impl Callback for Halve {
    fn on_epoch_end(&mut self, _: usize, _: &Logs, m: &mut dyn ModelControl) -> Result<()> {
        m.set_learning_rate(m.learning_rate() / 2.0);
        Ok(())
    }
}

fn bits<B: Backend>(m: &mut Model<B>) -> Vec<u32> {
    m.weights()
        .unwrap()
        .iter()
        .flat_map(|w| w.values().map(|v| v.to_bits()).collect::<Vec<_>>())
        .collect()
}

/// Plans on and plans off give the same weights, history and predictions, bit for bit.
fn check_replays_are_the_recorded_steps<B: Backend>(backend: impl Fn() -> B) {
    // 150 rows in batches of 32: four full batches and one of 22; validation 40 = 32 + 8.
    let (x, y) = digits(190);
    let (xt, xv) = x.split_at(150);
    let (yt, yv) = y.split_at(150);
    for (opt, guard) in [
        (Optimizer::adam(3e-3), true),
        (Optimizer::adam(3e-3), false),
        (
            Optimizer::Momentum {
                lr: 0.05,
                momentum: 0.9,
                nesterov: true,
            },
            true,
        ),
    ] {
        let run = |plans: bool| {
            let mut m = model(backend(), opt);
            m.set_step_plans(plans);
            let config = FitConfig::epochs(3)
                .batch_size(32)
                .validation_data(xv.clone(), yv.clone())
                .callback(Halve)
                .verbose(0);
            let mut config = config;
            config.terminate_on_nan = guard;
            let h = m.fit(&xt, &yt, config).unwrap();
            let p = m.predict(&xv, 16).unwrap();
            let e = m.evaluate(&xv, &yv, 16).unwrap();
            (
                bits(&mut m),
                format!("{:?}", (h.series, h.learning_rate)),
                p,
                e,
            )
        };
        let (planned, recorded) = (run(true), run(false));
        assert!(
            planned.0 == recorded.0,
            "{opt:?}, guard {guard}: weights differ"
        );
        assert_eq!(planned.1, recorded.1, "{opt:?}, guard {guard}: history");
        assert_eq!(planned.2, recorded.2, "{opt:?}, guard {guard}: predictions");
        assert_eq!(planned.3, recorded.3, "{opt:?}, guard {guard}: evaluation");
    }
}
model_test!(
    replays_are_the_recorded_steps,
    check_replays_are_the_recorded_steps
);

/// Data kept in host memory (each batch gathered there and written, the path of a dataset too
/// large for the device) trains, validates, predicts and evaluates as data on the device does,
/// bit for bit.
fn check_host_data_is_the_device_data<B: Backend>(backend: impl Fn() -> B) {
    let (x, y) = digits(190);
    let (xt, xv) = x.split_at(150);
    let (yt, yv) = y.split_at(150);
    let run = |resident: bool| {
        let mut m = model(backend(), Optimizer::adam(3e-3));
        m.set_resident_data(resident);
        let config = FitConfig::epochs(2)
            .batch_size(32)
            .validation_data(xv.clone(), yv.clone())
            .verbose(0);
        let h = m.fit(&xt, &yt, config).unwrap();
        let p = m.predict(&xv, 16).unwrap();
        let e = m.evaluate(&xv, &yv, 16).unwrap();
        (bits(&mut m), format!("{:?}", h.series), p, e)
    };
    let (device, host) = (run(true), run(false));
    assert!(device.0 == host.0, "weights differ");
    assert_eq!(device.1, host.1, "history");
    assert_eq!(device.2, host.2, "predictions");
    assert_eq!(device.3, host.3, "evaluation");
}
model_test!(
    host_data_is_the_device_data,
    check_host_data_is_the_device_data
);

#[test]
fn host_data_sends_its_batches() {
    let Some(g) = common::gpu() else { return };
    let (x, y) = digits(200);
    let mut m = model(g, Optimizer::adam(1e-3));
    m.set_resident_data(false);
    let config = || {
        FitConfig::epochs(1)
            .batch_size(50)
            .shuffle(false)
            .verbose(0)
    };
    m.fit(&x, &y, config()).unwrap();
    let warm = m.backend().stats();
    m.fit(&x, &y, config()).unwrap();
    let after = m.backend().stats();
    // 4 batches of 50 rows: 64 features and 1 label each, 4 bytes a value.
    assert_eq!(
        after.data_bytes_written - warm.data_bytes_written,
        200 * 65 * 4
    );
    assert_eq!(
        after.replays, warm.replays,
        "steps that write cannot be replayed"
    );
}

#[test]
fn after_warm_up_steps_replay_and_send_no_data() {
    let Some(g) = common::gpu() else { return };
    let (x, y) = digits(200);
    let (xv, yv) = (x.head(48), y.head(48));
    let config = |shuffle: bool| {
        FitConfig::epochs(2)
            .batch_size(32)
            .shuffle(shuffle)
            .validation_data(xv.clone(), yv.clone())
            .verbose(0)
    };
    let mut m = model(g, Optimizer::adam(1e-3));
    // The warm-up: a step that autotunes a new product shape cannot be kept as a plan, so
    // some steps are recorded at their second sight.
    m.fit(&x, &y, config(false)).unwrap();
    m.fit(&x, &y, config(false)).unwrap();
    // 200 rows: 6 batches of 32 and one of 8; validation: 32 and 16.
    let (steps, val_steps) = (7, 2);
    let warm = m.backend().stats();
    m.fit(&x, &y, config(false)).unwrap();
    let after = m.backend().stats();
    assert_eq!(
        after.data_bytes_written, warm.data_bytes_written,
        "data sent by unshuffled epochs on data kept on the device"
    );
    assert_eq!(after.replays - warm.replays, 2 * (steps + val_steps));
    assert_eq!(after.buffers_created, warm.buffers_created);
    assert_eq!(after.bind_groups_created, warm.bind_groups_created);
    // Shuffled epochs send their order, 4 bytes a row, and nothing per step.
    let warm = after;
    m.fit(&x, &y, config(true)).unwrap();
    let after = m.backend().stats();
    assert_eq!(
        after.data_bytes_written - warm.data_bytes_written,
        2 * 200 * 4
    );
    assert_eq!(after.replays - warm.replays, 2 * (steps + val_steps));
    // The host ran one step ahead of the device at most: two submissions in flight.
    assert_eq!(after.max_in_flight, 2, "{after:?}");
    // A replay's parameters are a few patched structs, not the step's every dispatch.
    let per_replay = (after.params_bytes_written - warm.params_bytes_written) / (2 * 9);
    assert!(
        per_replay <= 8 * 256,
        "{per_replay} bytes of parameters per step"
    );
}

/// The gather on awkward shapes: one column, an odd width, a repeated row, an offset into a
/// longer order, a batch of one.
fn check_gather_rows_matches_the_reference<B: Backend>(b: &mut B) {
    let mut r = common::rng(5);
    for (rows, cols, order, offset, take) in [
        (7, 1, vec![6, 0, 3, 3, 5], 1, 3),
        (9, 13, vec![8, 1, 1, 0, 7, 2, 4], 0, 7),
        (5, 784, vec![4, 2, 0, 1, 3], 4, 1),
    ] {
        let src = common::uniform(&mut r, rows * cols, -1.0, 1.0);
        let o = reference::order_values(&order).unwrap();
        let mut want = vec![0.0; take * cols];
        reference::gather_rows(&src, cols, &o, offset, &mut want).unwrap();
        for (i, row) in want.chunks(cols).enumerate() {
            let from = order[offset + i];
            assert_eq!(row, &src[from * cols..(from + 1) * cols]);
        }
        let s = common::upload(b, rows, cols, &src);
        let ot = common::upload(b, 1, order.len(), &o);
        let mut d = b.zeros(take, cols).unwrap();
        b.gather_rows(&s, &ot, offset, &mut d).unwrap();
        common::assert_close("gather_rows", Tolerance::EXACT, &b.read(&d).unwrap(), &want);
    }
}
backend_test!(
    gather_rows_matches_the_reference,
    check_gather_rows_matches_the_reference
);

/// Features and targets gathered together: in one pass where the features' rows are whole
/// vec4 (784 and 12 columns), one gather each where not (13), with one- and three-column
/// targets; the same rows as two gathers on the reference.
fn check_gather_rows_pair_matches_the_reference<B: Backend>(b: &mut B) {
    let mut r = common::rng(6);
    for (rows, cols, y_cols, order, offset, take) in [
        (6, 784, 1, vec![5, 0, 2, 2, 4, 1], 2, 4),
        (9, 12, 3, vec![8, 1, 1, 0, 7, 2, 4], 0, 7),
        (9, 13, 1, vec![3, 3, 8], 1, 2),
    ] {
        let x = common::uniform(&mut r, rows * cols, -1.0, 1.0);
        let y = common::uniform(&mut r, rows * y_cols, 0.0, 9.0);
        let o = reference::order_values(&order).unwrap();
        let (mut want_x, mut want_y) = (vec![0.0; take * cols], vec![0.0; take * y_cols]);
        reference::gather_rows(&x, cols, &o, offset, &mut want_x).unwrap();
        reference::gather_rows(&y, y_cols, &o, offset, &mut want_y).unwrap();
        let (xs, ys) = (
            common::upload(b, rows, cols, &x),
            common::upload(b, rows, y_cols, &y),
        );
        let ot = common::upload(b, 1, order.len(), &o);
        let (mut xd, mut yd) = (b.zeros(take, cols).unwrap(), b.zeros(take, y_cols).unwrap());
        b.gather_rows_pair(&xs, &ys, &ot, offset, &mut xd, &mut yd)
            .unwrap();
        assert_eq!(b.read(&xd).unwrap(), want_x, "features, {cols} columns");
        assert_eq!(b.read(&yd).unwrap(), want_y, "targets, {y_cols} columns");
    }
}
backend_test!(
    gather_rows_pair_matches_the_reference,
    check_gather_rows_pair_matches_the_reference
);

#[test]
fn a_bad_order_is_an_error() {
    let mut b = ReferenceBackend::new();
    let src = b.upload(3, 2, &[0.0; 6]).unwrap();
    let order = b
        .upload(1, 2, &reference::order_values(&[0, 3]).unwrap())
        .unwrap();
    let mut dst = b.zeros(2, 2).unwrap();
    let e = b.gather_rows(&src, &order, 0, &mut dst).unwrap_err();
    assert!(e.to_string().contains("order[1] = 3"), "{e}");
    let e = b.gather_rows(&src, &order, 1, &mut dst).unwrap_err();
    assert!(e.to_string().contains("offset + rows"), "{e}");
    let mut wide = b.zeros(2, 3).unwrap();
    let e = b.gather_rows(&src, &order, 0, &mut wide).unwrap_err();
    assert!(e.to_string().contains("columns"), "{e}");
}
