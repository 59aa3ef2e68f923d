//! Data-parallel training's groundwork: the ranks of a run and what they exchange.
//!
//! A data-parallel run has `size` ranks, each with its own backend and a whole copy of the
//! model. Every rank shuffles with the same seed, so all of them see the same global batches;
//! each takes its [`slice()`] of every global batch, computes the gradient of its slice's mean
//! loss, and the ranks average those gradients weighted by their slices' sizes ([`weight`]):
//! the result is the gradient of the global batch's mean loss, so every rank applies the same
//! update as one process given the whole batch would (up to the order of the sums).
//!
//! What the ranks exchange goes through a [`Communicator`]: [`Single`] for one process,
//! [`ThreadGroup`] for ranks on threads of one process (tests, and machines with several
//! adapters and no MPI), and, with the `mpi` feature, `Mpi` for the processes of an MPI job.
//! Before a run starts the ranks check that they agree on what decides
//! it ([`agree`]), so that a rank given other flags, data or model fails at once, on every
//! rank, rather than training something else.

#[cfg(feature = "mpi")]
mod mpi;
mod threads;

use std::ops::Range;

#[cfg(feature = "mpi")]
pub use self::mpi::Mpi;
pub use threads::ThreadGroup;

use crate::error::{Error, Result};

/// The ranks of a run, and the collective operations the training needs of them. Every rank
/// calls each operation in the same order with buffers of the same length; the calls return
/// once every rank has made them.
pub trait Communicator {
    /// This rank, from 0.
    fn rank(&self) -> usize;

    /// How many ranks there are (≥ 1).
    fn size(&self) -> usize;

    /// Replaces `values` on every rank by their element-wise sum over the ranks.
    fn all_reduce_sum(&self, values: &mut [f32]) -> Result<()>;

    /// The same in `f64`, for the loss and metric sums (which are counted in `f64`).
    fn all_reduce_sum_f64(&self, values: &mut [f64]) -> Result<()>;

    /// Replaces `values` on every rank by rank 0's.
    fn broadcast(&self, values: &mut [u8]) -> Result<()>;
}

/// A communicator behind a pointer is one too (a model may own one, or share it).
macro_rules! through_pointer {
    ($($pointer:ident)::+) => {
        impl<C: Communicator + ?Sized> Communicator for $($pointer)::+<C> {
            fn rank(&self) -> usize {
                (**self).rank()
            }

            fn size(&self) -> usize {
                (**self).size()
            }

            fn all_reduce_sum(&self, values: &mut [f32]) -> Result<()> {
                (**self).all_reduce_sum(values)
            }

            fn all_reduce_sum_f64(&self, values: &mut [f64]) -> Result<()> {
                (**self).all_reduce_sum_f64(values)
            }

            fn broadcast(&self, values: &mut [u8]) -> Result<()> {
                (**self).broadcast(values)
            }
        }
    };
}

through_pointer!(Box);
through_pointer!(std::rc::Rc);

/// This process's rank among those of its machine, where its launcher says (Open MPI's
/// `OMPI_COMM_WORLD_LOCAL_RANK`, MPICH's `MPI_LOCALRANKID`, Slurm's `SLURM_LOCALID`): it
/// picks which of the machine's GPUs the rank opens (see
/// [`crate::backend::gpu::GpuContext::new`]).
pub fn local_rank() -> Option<usize> {
    [
        "OMPI_COMM_WORLD_LOCAL_RANK",
        "MPI_LOCALRANKID",
        "SLURM_LOCALID",
    ]
    .iter()
    .find_map(|v| std::env::var(v).ok()?.trim().parse().ok())
}

/// How many ranks of this process's job run on its machine, where its launcher says (Open
/// MPI's `OMPI_COMM_WORLD_LOCAL_SIZE`, MPICH's `MPI_LOCALNRANKS`): they share its cores.
pub fn local_ranks() -> Option<usize> {
    ["OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS"]
        .iter()
        .find_map(|v| std::env::var(v).ok()?.trim().parse().ok())
        .filter(|&n: &usize| n > 0)
}

/// One process, one rank: every collective is the identity.
#[derive(Clone, Copy, Debug, Default)]
pub struct Single;

impl Communicator for Single {
    fn rank(&self) -> usize {
        0
    }

    fn size(&self) -> usize {
        1
    }

    fn all_reduce_sum(&self, _values: &mut [f32]) -> Result<()> {
        Ok(())
    }

    fn all_reduce_sum_f64(&self, _values: &mut [f64]) -> Result<()> {
        Ok(())
    }

    fn broadcast(&self, _values: &mut [u8]) -> Result<()> {
        Ok(())
    }
}

/// The rows of a batch of `len` rows that rank `rank` of `size` takes: consecutive, and as
/// even as can be (the first `len % size` ranks take one row more). A rank may take none when
/// the batch has fewer rows than there are ranks.
pub fn slice(len: usize, rank: usize, size: usize) -> Range<usize> {
    assert!(size > 0 && rank < size, "rank {rank} of {size}");
    let (base, extra) = (len / size, len % size);
    let start = rank * base + rank.min(extra);
    let rows = base + usize::from(rank < extra);
    start..start + rows
}

/// The weight of rank `rank`'s slice of a batch of `len` rows in the batch's mean: its share
/// of the rows. The weighted sum of the slices' mean gradients is the batch's mean gradient.
pub fn weight(len: usize, rank: usize, size: usize) -> f32 {
    if len == 0 {
        return 0.0;
    }
    slice(len, rank, size).len() as f32 / len as f32
}

/// A 64-bit FNV-1a digest of `bytes`: stable across machines, builds and runs (unlike
/// `std`'s hasher), for comparing what ranks were given.
pub fn digest(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Checks that every rank holds the same `value` for `what` (a digest of its flags, data or
/// model): an error on every rank, naming the ranks that differ from rank 0, when any does.
pub fn agree(comm: &dyn Communicator, what: &str, value: u64) -> Result<()> {
    let mut root = value.to_le_bytes();
    comm.broadcast(&mut root)?;
    let root = u64::from_le_bytes(root);
    // Each rank marks its own slot when it differs from rank 0; the sum tells every rank.
    let mut differs = vec![0.0f64; comm.size()];
    differs[comm.rank()] = f64::from(u8::from(value != root));
    comm.all_reduce_sum_f64(&mut differs)?;
    let ranks: Vec<String> = differs
        .iter()
        .enumerate()
        .filter(|(_, &d)| d != 0.0)
        .map(|(r, _)| r.to_string())
        .collect();
    if ranks.is_empty() {
        return Ok(());
    }
    Err(Error::Config(format!(
        "the ranks of this run disagree on {what}: rank{} {} differ{} from rank 0 ({root:016x}). \
         Start every rank with the same command, data and model",
        if ranks.len() == 1 { "" } else { "s" },
        ranks.join(", "),
        if ranks.len() == 1 { "s" } else { "" },
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The slices cover the batch, in order, with no row twice, and differ by at most one
        /// row; their weights sum to one.
        #[test]
        fn slices_partition_the_batch(len in 0usize..500, size in 1usize..17) {
            let mut next = 0;
            let mut rows = Vec::new();
            for rank in 0..size {
                let s = slice(len, rank, size);
                prop_assert_eq!(s.start, next);
                next = s.end;
                rows.push(s.len());
            }
            prop_assert_eq!(next, len);
            let (lo, hi) = (rows.iter().min().unwrap(), rows.iter().max().unwrap());
            prop_assert!(hi - lo <= 1);
            if len > 0 {
                let total: f32 = (0..size).map(|r| weight(len, r, size)).sum();
                prop_assert!((total - 1.0).abs() < 1e-5);
            }
        }
    }

    #[test]
    fn uneven_slices_go_to_the_first_ranks() {
        let s: Vec<_> = (0..3).map(|r| slice(10, r, 3)).collect();
        assert_eq!(s, vec![0..4, 4..7, 7..10]);
        assert_eq!(weight(10, 0, 3), 0.4);
        assert_eq!(slice(1, 1, 2), 1..1);
        assert_eq!(weight(0, 0, 2), 0.0);
    }

    #[test]
    fn digest_is_fnv1a() {
        // The published FNV-1a 64 test vectors.
        assert_eq!(digest(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(digest(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(digest(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn one_rank_agrees_with_itself() {
        agree(&Single, "the flags", 7).unwrap();
    }

    #[test]
    fn a_rank_that_differs_fails_on_every_rank() {
        let results = ThreadGroup::run(3, |comm| {
            let value = if comm.rank() == 2 { 9 } else { 7 };
            agree(&comm, "the training data", value)
        });
        for r in results {
            let message = r.unwrap_err().to_string();
            assert!(message.contains("rank 2 differs from rank 0"), "{message}");
            assert!(message.contains("the training data"), "{message}");
        }
        let same = ThreadGroup::run(3, |comm| agree(&comm, "the model", 5));
        assert!(same.into_iter().all(|r| r.is_ok()));
    }

    /// This rank's slice of the `len` rows of `x` (3 features) and `labels`, through a small
    /// MLP on the reference backend with weights drawn from seed 3: its gradient, averaged
    /// over the ranks.
    fn slice_grads(
        comm: &dyn Communicator,
        x: &[f32],
        labels: &[f32],
        len: usize,
    ) -> Result<Vec<f32>> {
        use crate::backend::reference::ReferenceBackend;
        use crate::backend::{Activation, Backend, Loss, Optimizer};
        use crate::nn::{Dense, Mode, Network, Sequential};
        use rand::SeedableRng;
        let (features, opt) = (3, Optimizer::Sgd { lr: 0.1 });
        let spec = Sequential::new()
            .add(Dense::new(5, Activation::Tanh))
            .add(Dense::new(4, Activation::Linear));
        let mut b = ReferenceBackend::new();
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let mut net = Network::build(&mut b, &spec, features, opt, &mut rng)?;
        let rows = slice(len, comm.rank(), comm.size());
        let n = rows.len();
        let xs = b.upload(n, features, &x[rows.start * features..rows.end * features])?;
        let ys = b.upload(n, 1, &labels[rows.clone()])?;
        let mut acts = net.activations(&mut b, n)?;
        let mode = Mode::Train { seed: 0, step: 1 };
        net.forward(&mut b, &xs, &mut acts, mode)?;
        let site = net.loss_site(true);
        let mut row_loss = b.zeros(n, 1)?;
        let (pred, grad) = net.loss_io(&xs, &mut acts, site, mode);
        b.loss(
            Loss::SparseSoftmaxCrossEntropy,
            pred,
            &ys,
            grad,
            &mut row_loss,
        )?;
        net.backward(&mut b, &xs, &mut acts, site, mode)?;
        let mut flat = Vec::new();
        let w = weight(len, comm.rank(), comm.size());
        net.average_grads(&mut b, comm, Some(w), &mut [], &mut flat)?;
        Ok(flat)
    }

    /// Slices of 7 rows on 1, 2 and 3 ranks (uneven), their gradients averaged by weight:
    /// the gradient of the whole batch's mean loss, up to the order of the sums.
    #[test]
    fn averaged_slice_gradients_are_the_batch_gradient() {
        let len = 7;
        let x: Vec<f32> = (0..len * 3)
            .map(|i| ((i * 37 % 11) as f32 - 5.0) / 4.0)
            .collect();
        let labels: Vec<f32> = (0..len).map(|i| (i % 4) as f32).collect();
        let whole = slice_grads(&Single, &x, &labels, len).unwrap();
        assert!(whole.iter().any(|&g| g.abs() > 1e-3));
        for size in [2, 3] {
            let ranks = ThreadGroup::run(size, |comm| slice_grads(&comm, &x, &labels, len));
            for r in ranks {
                let g = r.unwrap();
                assert_eq!(g.len(), whole.len());
                for (a, b) in g.iter().zip(&whole) {
                    assert!(
                        (a - b).abs() <= 1e-6 * (1.0 + b.abs()),
                        "{size} ranks: {a} vs {b}"
                    );
                }
            }
        }
    }

    #[test]
    fn thread_ranks_sum_and_broadcast() {
        let results = ThreadGroup::run(4, |comm| -> Result<(Vec<f32>, Vec<f64>, Vec<u8>)> {
            let r = comm.rank();
            let mut a = vec![r as f32, 1.0, -(r as f32)];
            comm.all_reduce_sum(&mut a)?;
            let mut d = vec![0.5 * r as f64];
            comm.all_reduce_sum_f64(&mut d)?;
            let mut bytes = vec![r as u8; 3];
            comm.broadcast(&mut bytes)?;
            Ok((a, d, bytes))
        });
        for r in results {
            let (a, d, bytes) = r.unwrap();
            assert_eq!(a, vec![6.0, 4.0, -6.0]);
            assert_eq!(d, vec![3.0]);
            assert_eq!(bytes, vec![0, 0, 0]);
        }
    }
}
