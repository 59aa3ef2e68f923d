//! Data-parallel training on ranks of one process ([`ThreadGroup`]): N ranks with global
//! batch B end every epoch with the weights and logs of one process with batch B (within
//! 1e-6 relative on the CPU backends, the parity tolerance on the GPU), on every backend, with
//! uneven slices and ranks given no rows; every rank holds the same weights; a rank given
//! other data fails on every rank; a rank that fails makes the others stop; rank 0 alone
//! writes checkpoints, and a run of 2 ranks resumes in one process.

mod common;

use wgtrain::backend::{reference::ReferenceBackend, Activation, Backend, Optimizer};
use wgtrain::checkpoint::Checkpoint;
use wgtrain::data::{self, Matrix};
use wgtrain::dist::{Communicator, ThreadGroup};
use wgtrain::error::{Error, Result};
use wgtrain::nn::{Dense, Dropout, LossFn, Sequential};
use wgtrain::train::callbacks::{Callback, ModelControl};
use wgtrain::train::{Compile, FitConfig, History, Logs, Metric, Model, ModelCheckpoint};

fn digits(n: usize) -> (Matrix, Matrix) {
    let (x, y) = data::digits();
    (x.head(n), y.head(n))
}

fn model<B: Backend>(b: B) -> Model<B> {
    Sequential::new()
        .add(Dense::new(24, Activation::Relu))
        .add(Dense::new(10, Activation::Softmax))
        .compile(
            b,
            Compile::new(
                LossFn::SparseCategoricalCrossentropy { from_logits: false },
                Optimizer::adam(0.01),
            )
            .metrics(&[Metric::Accuracy])
            .seed(3),
        )
        .unwrap()
}

/// 150 rows in batches of 32 (the last of the training rows short), a fifth held out.
fn config(epochs: usize, batch: usize) -> FitConfig {
    FitConfig::epochs(epochs)
        .batch_size(batch)
        .validation_split(0.2)
        .verbose(0)
}

fn flat<B: Backend>(m: &mut Model<B>) -> Vec<Vec<f32>> {
    m.weights()
        .unwrap()
        .into_iter()
        .flat_map(|w| w.params.into_iter().chain(w.state))
        .map(|t| t.values)
        .collect()
}

/// The largest difference of a tensor's values over its largest value, worst tensor.
fn relative_gap(a: &[Vec<f32>], b: &[Vec<f32>]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(a, b)| {
            let scale = b.iter().fold(0.0f64, |m, v| m.max(v.abs() as f64));
            let gap = a
                .iter()
                .zip(b)
                .fold(0.0f64, |m, (x, y)| m.max((*x as f64 - *y as f64).abs()));
            gap / scale.max(f64::MIN_POSITIVE)
        })
        .fold(0.0, f64::max)
}

/// The weights and history of `ranks` ranks training `epochs` epochs of global batch
/// `batch`, by rank.
fn run_ranks<B, F>(
    make: F,
    ranks: usize,
    epochs: usize,
    batch: usize,
    buckets: Option<usize>,
) -> Vec<(Vec<Vec<f32>>, History)>
where
    B: Backend,
    F: Fn() -> B + Sync,
{
    let (x, y) = digits(150);
    ThreadGroup::run(ranks, |comm| {
        let mut m = model(make());
        m.set_communicator(comm);
        m.set_gradient_buckets(buckets).unwrap();
        let h = m.fit(&x, &y, config(epochs, batch)).unwrap();
        (flat(&mut m), h)
    })
}

fn matches_one_batch<B: Backend, F: Fn() -> B + Sync>(make: F, tolerance: f64) {
    let (x, y) = digits(150);
    for batch in [32, 1] {
        // Batches of one leave every rank but one without rows in each step.
        let epochs = if batch == 1 { 1 } else { 3 };
        let mut one = model(make());
        let h1 = one.fit(&x, &y, config(epochs, batch)).unwrap();
        let w1 = flat(&mut one);
        // Whole, one bucket per layer with parameters, and buckets of at least 16 KB.
        for (ranks, buckets) in [(2, None), (3, None), (2, Some(0)), (3, Some(16_384))] {
            let results = run_ranks(&make, ranks, epochs, batch, buckets);
            for (rank, (w, h)) in results.iter().enumerate() {
                assert_eq!(
                    w, &results[0].0,
                    "rank {rank} of {ranks} holds other weights"
                );
                let gap = relative_gap(w, &w1);
                assert!(
                    gap <= tolerance,
                    "{ranks} ranks, buckets {buckets:?}, batch {batch}: weights {gap:e} from one process's"
                );
                for name in ["loss", "accuracy", "val_loss", "val_accuracy"] {
                    let (a, b) = (h.get(name).unwrap(), h1.get(name).unwrap());
                    for (e, (a, b)) in a.iter().zip(b).enumerate() {
                        let gap = (a - b).abs() / b.abs().max(1e-3);
                        assert!(
                            gap <= 1e-5 + tolerance,
                            "{ranks} ranks, batch {batch}: {name} of epoch {} is {a}, one process's {b}",
                            e + 1
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn ranks_match_one_batch_reference() {
    matches_one_batch(ReferenceBackend::new, 1e-6);
}

#[test]
fn ranks_match_one_batch_cpu() {
    matches_one_batch(common::cpu, 1e-6);
}

#[test]
fn ranks_match_one_batch_gpu() {
    if common::gpu().is_some() {
        matches_one_batch(|| common::gpu().expect("the adapter"), 1e-4);
    }
}

#[test]
fn a_rank_given_other_data_fails_on_every_rank() {
    let (x, y) = digits(150);
    let (x2, y2) = digits(149);
    let results = ThreadGroup::run(2, |comm| {
        let rank = comm.rank();
        let mut m = model(ReferenceBackend::new());
        m.set_communicator(comm);
        let (x, y) = if rank == 1 { (&x2, &y2) } else { (&x, &y) };
        m.fit(x, y, config(1, 32)).map(|_| ())
    });
    for r in results {
        let message = r.unwrap_err().to_string();
        assert!(message.contains("rank 1 differs from rank 0"), "{message}");
    }
}

#[test]
fn layers_that_see_the_whole_batch_are_refused() {
    let (x, y) = digits(40);
    let results = ThreadGroup::run(2, |comm| {
        let mut m = Sequential::new()
            .add(Dense::new(16, Activation::Relu))
            .add(Dropout::new(0.5))
            .add(Dense::new(10, Activation::Softmax))
            .compile(
                ReferenceBackend::new(),
                Compile::new(
                    LossFn::SparseCategoricalCrossentropy { from_logits: false },
                    Optimizer::adam(0.01),
                ),
            )
            .unwrap();
        m.set_communicator(comm);
        m.fit(&x, &y, config(1, 8)).map(|_| ())
    });
    for r in results {
        let message = r.unwrap_err().to_string();
        assert!(
            message.contains("dropout layer cannot train data-parallel"),
            "{message}"
        );
    }
}

/// Fails at the end of epoch `at`.
struct FailAt(usize);
impl Callback for FailAt {
    fn on_epoch_end(&mut self, epoch: usize, _: &Logs, _: &mut dyn ModelControl) -> Result<()> {
        if epoch == self.0 {
            return Err(Error::Config("this rank gave up".into()));
        }
        Ok(())
    }
}

#[test]
fn a_rank_that_fails_stops_the_others() {
    let (x, y) = digits(150);
    let results = ThreadGroup::run(3, |comm| {
        let rank = comm.rank();
        let mut m = model(ReferenceBackend::new());
        m.set_communicator(comm);
        let mut c = config(4, 32);
        if rank == 2 {
            c = c.callback(FailAt(1));
        }
        m.fit(&x, &y, c).map(|_| ())
    });
    assert!(results[2]
        .as_ref()
        .unwrap_err()
        .to_string()
        .contains("gave up"));
    for r in &results[..2] {
        // Rank 2 left first; the other waiting rank may have failed and left too by the time
        // this one looks, so the list names rank 2 and perhaps that one.
        let message = r.as_ref().unwrap_err().to_string();
        let who = message
            .split(": ")
            .nth(1)
            .and_then(|m| m.split(" left the run").next());
        let named = who.is_some_and(|w| w.split([' ', ',']).any(|r| r == "2"));
        assert!(named && message.contains("left the run"), "{message}");
    }
}

#[test]
fn two_ranks_checkpoint_once_and_resume_in_one_process() {
    let dir = std::env::temp_dir().join(format!("wgtrain-dist-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (x, y) = digits(150);
    // Rank 1 is given a path of its own: it must write nothing there.
    let results = ThreadGroup::run(2, |comm| {
        let rank = comm.rank();
        let mut m = model(ReferenceBackend::new());
        m.set_communicator(comm);
        let path = dir.join(format!("rank{rank}.safetensors"));
        m.fit(
            &x,
            &y,
            config(2, 32).callback(ModelCheckpoint::every_epoch(path)),
        )
        .unwrap();
        flat(&mut m)
    });
    assert!(
        !dir.join("rank1.safetensors").exists(),
        "rank 1 wrote a checkpoint"
    );
    let ckpt = Checkpoint::load(&dir.join("rank0.safetensors")).unwrap();
    assert_eq!(ckpt.epoch, 2);
    let mut resumed = Model::from_checkpoint(ReferenceBackend::new(), &ckpt).unwrap();
    assert_eq!(flat(&mut resumed), results[0]);
    resumed.fit(&x, &y, config(3, 32).initial_epoch(2)).unwrap();
    let mut straight = model(ReferenceBackend::new());
    straight.fit(&x, &y, config(3, 32)).unwrap();
    let gap = relative_gap(&flat(&mut resumed), &flat(&mut straight));
    assert!(
        gap <= 1e-6,
        "resumed in one process: {gap:e} from an unbroken run"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
