//! Ranks of an MPI job (the `mpi` feature): one process per rank, started by `mpirun`, on one
//! machine or several, through rsmpi.
//!
//! What MPI does when a rank fails: by default a communicator's errors are fatal
//! (`MPI_ERRORS_ARE_FATAL`), and Open MPI's `mpirun` ends the whole job as soon as one rank
//! exits with a non-zero status or is killed, naming it ("mpirun noticed that process rank 1
//! with PID ... exited on signal 9"). So a rank that errs (its error printed) or dies stops the
//! others. What MPI does not catch is a rank that is alive but never reaches a collective (a
//! hung device, a deadlock): the others would wait in it for ever. Every collective here
//! therefore waits at most a timeout ([`Mpi::TIMEOUT`], or `WGTRAIN_MPI_TIMEOUT` seconds), and
//! a rank that waits longer says so on stderr, removes its unfinished temporary files and
//! aborts the job (`MPI_Abort`), which ends every rank.

use std::cell::RefCell;
use std::time::{Duration, Instant};

use ::mpi::collective::{CommunicatorCollectives, Root, SystemOperation};
use ::mpi::environment::Universe;
use ::mpi::request::{Request, Scope};
use ::mpi::topology::{Communicator as _, SimpleCommunicator};

use super::Communicator;
use crate::error::{Error, Result};

/// The exit code of a rank that aborts the job after a collective's timeout (EX_SOFTWARE).
const ABORT_CODE: i32 = 70;

/// This process's rank in the MPI job it was started in: see the module's documentation.
/// MPI is finalized when it is dropped.
pub struct Mpi {
    world: SimpleCommunicator,
    rank: usize,
    size: usize,
    timeout: Duration,
    /// What a sum sends (MPI's reductions read one buffer and write another).
    send_f32: RefCell<Vec<f32>>,
    send_f64: RefCell<Vec<f64>>,
    /// Dropped last: finalizes MPI.
    _universe: Universe,
}

impl std::fmt::Debug for Mpi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mpi")
            .field("rank", &self.rank)
            .field("size", &self.size)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Mpi {
    /// How long a collective waits for the other ranks unless `WGTRAIN_MPI_TIMEOUT` says: long
    /// enough for a rank that loads its data or tunes its kernels more slowly than the others.
    pub const TIMEOUT: Duration = Duration::from_secs(600);

    /// Whether this process was started by an MPI launcher (Open MPI's `mpirun`, or a PMI
    /// one such as MPICH's or Slurm's), from its environment.
    pub fn launched() -> bool {
        ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"]
            .iter()
            .any(|v| std::env::var_os(v).is_some())
    }

    /// Joins the job: initializes MPI (once per process) on its world communicator.
    pub fn init() -> Result<Mpi> {
        let timeout = match std::env::var("WGTRAIN_MPI_TIMEOUT") {
            Ok(s) => match s.trim().parse::<f64>() {
                Ok(t) if t > 0.0 && t.is_finite() => Duration::from_secs_f64(t),
                _ => {
                    return Err(Error::Config(format!(
                        "WGTRAIN_MPI_TIMEOUT={s}: give the seconds a collective may wait, a number above 0"
                    )))
                }
            },
            Err(_) => Self::TIMEOUT,
        };
        let universe = ::mpi::initialize().ok_or_else(|| {
            Error::Config("MPI is initialized already in this process: join it once".into())
        })?;
        let world = universe.world();
        Ok(Mpi {
            rank: world.rank() as usize,
            size: world.size() as usize,
            world,
            timeout,
            send_f32: RefCell::new(Vec::new()),
            send_f64: RefCell::new(Vec::new()),
            _universe: universe,
        })
    }

    /// Waits for `request` up to the timeout, then aborts the job (see the module's
    /// documentation): a collective cannot be cancelled, and its buffers must outlive it.
    fn wait<'a, D: ?Sized, S: Scope<'a>>(&self, what: &str, request: Request<'a, D, S>) {
        let started = Instant::now();
        let mut request = request;
        loop {
            match request.test() {
                Ok(_) => return,
                Err(pending) => request = pending,
            }
            if started.elapsed() > self.timeout {
                crate::stderr_line!(
                    "error: rank {} of {}: the other ranks did not reach {what} within {:?}: one is stuck or far slower \
                     (a rank that died is named by mpirun). Stopping the job; set WGTRAIN_MPI_TIMEOUT (seconds) to wait longer",
                    self.rank,
                    self.size,
                    self.timeout
                );
                crate::fs::remove_unfinished();
                self.world.abort(ABORT_CODE);
            }
            std::thread::yield_now();
        }
    }
}

impl Communicator for Mpi {
    fn rank(&self) -> usize {
        self.rank
    }

    fn size(&self) -> usize {
        self.size
    }

    fn all_reduce_sum(&self, values: &mut [f32]) -> Result<()> {
        let mut send = self.send_f32.borrow_mut();
        send.clear();
        send.extend_from_slice(values);
        ::mpi::request::scope(|scope| {
            let r = self.world.immediate_all_reduce_into(
                scope,
                &send[..],
                values,
                SystemOperation::sum(),
            );
            self.wait("an allreduce", r);
        });
        Ok(())
    }

    fn all_reduce_sum_f64(&self, values: &mut [f64]) -> Result<()> {
        let mut send = self.send_f64.borrow_mut();
        send.clear();
        send.extend_from_slice(values);
        ::mpi::request::scope(|scope| {
            let r = self.world.immediate_all_reduce_into(
                scope,
                &send[..],
                values,
                SystemOperation::sum(),
            );
            self.wait("an allreduce of sums", r);
        });
        Ok(())
    }

    fn broadcast(&self, values: &mut [u8]) -> Result<()> {
        // Every rank learns the length first: a broadcast of another length is undefined.
        let mut len = [values.len() as u64];
        ::mpi::request::scope(|scope| {
            let root = self.world.process_at_rank(0);
            let r = root.immediate_broadcast_into(scope, &mut len[..]);
            self.wait("a broadcast", r);
        });
        // Every rank learns whether any expected another length, and then all of them fail.
        let mut differ = [f64::from(u8::from(len[0] != values.len() as u64))];
        self.all_reduce_sum_f64(&mut differ)?;
        if differ[0] > 0.0 {
            return Err(Error::Config(format!(
                "rank {} of {}: rank 0 broadcast {} bytes where this rank expected {} ({} ranks differ): \
                 the ranks are not running the same step",
                self.rank,
                self.size,
                len[0],
                values.len(),
                differ[0]
            )));
        }
        ::mpi::request::scope(|scope| {
            let root = self.world.process_at_rank(0);
            let r = root.immediate_broadcast_into(scope, values);
            self.wait("a broadcast", r);
        });
        Ok(())
    }
}
