//! The ranks of `mpirun -np N wgtrain train ...` (and `bench`): the MPI job this process was
//! started in, joined before anything else (the `mpi` feature), and what rank 0 alone does.

use std::rc::Rc;

use wgtrain::dist::Communicator;
use wgtrain::{Error, Result};

/// This process's job, if it was started in one of more than one rank; shared by `main`
/// (which finalizes MPI when the last holder drops it) and the model that trains.
pub(crate) type Ranks = Option<Rc<dyn Communicator>>;

/// Joins the MPI job this process was started in, if it was.
#[cfg(feature = "mpi")]
pub(crate) fn join() -> Result<Ranks> {
    use wgtrain::dist::Mpi;
    if !Mpi::launched() {
        return Ok(None);
    }
    let mpi = Mpi::init()?;
    Ok((mpi.size() > 1).then(|| Rc::new(mpi) as Rc<dyn Communicator>))
}

/// Without the `mpi` feature: a process started by `mpirun -np N` with N > 1 would train
/// alone, N times over the same outputs, so it is refused.
#[cfg(not(feature = "mpi"))]
pub(crate) fn join() -> Result<Ranks> {
    let size = ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE"]
        .iter()
        .find_map(|v| std::env::var(v).ok()?.trim().parse::<usize>().ok());
    match size {
        Some(n) if n > 1 => Err(Error::Config(format!(
            "this process is one of {n} started by an MPI launcher, but this wgtrain was built without MPI: \
             build it with `cargo build --release --features mpi` (and Debian's libopenmpi-dev) to train data-parallel"
        ))),
        _ => Ok(None),
    }
}

/// This process's rank (0 without a job).
pub(crate) fn rank(ranks: &Ranks) -> usize {
    ranks.as_ref().map_or(0, |r| r.rank())
}

/// "rank 1 of 4: " for the messages of a rank other than 0, else nothing.
pub(crate) fn prefix(ranks: &Ranks) -> String {
    match ranks {
        Some(r) if r.rank() > 0 => format!("rank {} of {}: ", r.rank(), r.size()),
        _ => String::new(),
    }
}

/// Refuses what a job of several ranks cannot do with this subcommand.
pub(crate) fn refuse(ranks: &Ranks, what: &str) -> Result<()> {
    match ranks {
        Some(r) => Err(Error::Config(format!(
            "{what} does not run data-parallel: run it in one process, not under mpirun -np {}",
            r.size()
        ))),
        None => Ok(()),
    }
}
