//! [`ThreadGroup`]: ranks on threads of one process, exchanging through shared memory.

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use super::Communicator;
use crate::error::{Error, Result};

/// What one rank brings to a collective.
#[derive(Clone, Debug)]
enum Payload {
    F32(Vec<f32>),
    F64(Vec<f64>),
    Bytes(Vec<u8>),
}

impl Payload {
    fn len(&self) -> usize {
        match self {
            Payload::F32(v) => v.len(),
            Payload::F64(v) => v.len(),
            Payload::Bytes(v) => v.len(),
        }
    }

    /// "3 f32 values", for errors.
    fn describe(&self) -> String {
        let kind = match self {
            Payload::F32(_) => "f32 values",
            Payload::F64(_) => "f64 values",
            Payload::Bytes(_) => "bytes",
        };
        format!("{} {kind}", self.len())
    }
}

#[derive(Debug, Default)]
struct State {
    /// Each rank's payload for the collective under way.
    slots: Vec<Option<Payload>>,
    arrived: usize,
    /// Collectives completed; a rank waits for this to move on.
    generation: u64,
    /// The payloads of the last completed collective, by rank.
    done: Arc<Vec<Payload>>,
    /// Ranks that have left the run (returned or panicked).
    gone: Vec<usize>,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    wake: Condvar,
    timeout: Duration,
}

/// Ranks on threads of one process: [`ThreadGroup::run`] calls a function once per rank, each
/// on its own thread with its own [`Communicator`] (which it may keep, in a model say, until
/// it returns), and returns their results by rank. A rank
/// that returns or panics while the others wait in a collective makes theirs fail with an
/// error naming it, as does a collective that waits longer than the timeout; none hangs.
#[derive(Debug)]
pub struct ThreadGroup {
    rank: usize,
    size: usize,
    shared: Arc<Shared>,
}

impl ThreadGroup {
    /// How long a collective waits for the other ranks in [`ThreadGroup::run`].
    pub const TIMEOUT: Duration = Duration::from_secs(120);

    /// Runs `f` on `size` ranks at once (one thread each) and returns what each returned, by
    /// rank. A rank's panic is raised again here once every rank has ended.
    pub fn run<R, F>(size: usize, f: F) -> Vec<R>
    where
        R: Send,
        F: Fn(ThreadGroup) -> R + Sync,
    {
        Self::run_with_timeout(size, Self::TIMEOUT, f)
    }

    /// [`ThreadGroup::run`] with collectives that wait at most `timeout` for the others.
    pub fn run_with_timeout<R, F>(size: usize, timeout: Duration, f: F) -> Vec<R>
    where
        R: Send,
        F: Fn(ThreadGroup) -> R + Sync,
    {
        assert!(size > 0, "a group needs at least one rank");
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                slots: vec![None; size],
                ..State::default()
            }),
            wake: Condvar::new(),
            timeout,
        });
        let f = &f;
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..size)
                .map(|rank| {
                    let member = ThreadGroup {
                        rank,
                        size,
                        shared: Arc::clone(&shared),
                    };
                    scope.spawn(move || f(member))
                })
                .collect();
            let joined: Vec<_> = handles.into_iter().map(|h| h.join()).collect();
            joined
                .into_iter()
                .map(|r| r.unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
                .collect()
        })
    }

    /// Gives `payload` to the collective under way and returns every rank's, by rank, once
    /// all have given theirs.
    fn exchange(&self, payload: Payload) -> Result<Arc<Vec<Payload>>> {
        let lost =
            |what: String| Error::Config(format!("rank {} of {}: {what}", self.rank, self.size));
        let shared = &self.shared;
        let mut state = shared
            .state
            .lock()
            .map_err(|_| lost("a rank panicked".into()))?;
        if let Some(gone) = gone(&state) {
            return Err(lost(format!(
                "{gone} left the run; this collective cannot complete"
            )));
        }
        state.slots[self.rank] = Some(payload);
        state.arrived += 1;
        let generation = state.generation;
        if state.arrived == self.size {
            let all: Vec<Payload> = state
                .slots
                .iter_mut()
                .map(|s| s.take().expect("arrived"))
                .collect();
            state.done = Arc::new(all);
            state.arrived = 0;
            state.generation += 1;
            shared.wake.notify_all();
        }
        let (state, waited) = shared
            .wake
            .wait_timeout_while(state, shared.timeout, |s| {
                s.generation == generation && s.gone.is_empty()
            })
            .map_err(|_| lost("a rank panicked".into()))?;
        if state.generation != generation {
            return Ok(Arc::clone(&state.done));
        }
        if let Some(gone) = gone(&state) {
            return Err(lost(format!("{gone} left the run during a collective")));
        }
        debug_assert!(waited.timed_out());
        Err(lost(format!(
            "the other ranks did not reach this collective within {:?}",
            shared.timeout
        )))
    }

    /// Every rank's payload, checked to have one length and one kind.
    fn gather(&self, payload: Payload) -> Result<Arc<Vec<Payload>>> {
        let (len, kind, mine) = (
            payload.len(),
            std::mem::discriminant(&payload),
            payload.describe(),
        );
        let all = self.exchange(payload)?;
        let differs = |p: &Payload| p.len() != len || std::mem::discriminant(p) != kind;
        if let Some((r, p)) = all.iter().enumerate().find(|(_, p)| differs(p)) {
            return Err(Error::Config(format!(
                "rank {} gave a collective {mine} and rank {r} gave {}: the ranks are not running the same step",
                self.rank,
                p.describe()
            )));
        }
        Ok(all)
    }
}

/// `values` = the element-wise sum of `parts`, added in the order given (rank order).
fn sum_in_rank_order<'a, T>(values: &mut [T], parts: impl Iterator<Item = &'a [T]>)
where
    T: Copy + Default + std::ops::AddAssign + 'a,
{
    values.fill(T::default());
    for part in parts {
        values.iter_mut().zip(part).for_each(|(a, &b)| *a += b);
    }
}

/// "rank 2" or "ranks 1, 3": the ranks that have left, if any.
fn gone(state: &State) -> Option<String> {
    let mut ranks = state.gone.clone();
    ranks.sort_unstable();
    let list: Vec<String> = ranks.iter().map(usize::to_string).collect();
    match list.len() {
        0 => None,
        1 => Some(format!("rank {}", list[0])),
        _ => Some(format!("ranks {}", list.join(", "))),
    }
}

impl Drop for ThreadGroup {
    /// A rank that ends (returns or unwinds) leaves the run: the others stop waiting for it.
    fn drop(&mut self) {
        let mut state = match self.shared.state.lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        state.gone.push(self.rank);
        self.shared.wake.notify_all();
    }
}

impl Communicator for ThreadGroup {
    fn rank(&self) -> usize {
        self.rank
    }

    fn size(&self) -> usize {
        self.size
    }

    /// Sums in rank order, in `f32`, so that every rank gets the same bits.
    fn all_reduce_sum(&self, values: &mut [f32]) -> Result<()> {
        let all = self.gather(Payload::F32(values.to_vec()))?;
        sum_in_rank_order(
            values,
            all.iter().map(|p| match p {
                Payload::F32(v) => &v[..],
                _ => unreachable!("gather checked every rank gave f32"),
            }),
        );
        Ok(())
    }

    fn all_reduce_sum_f64(&self, values: &mut [f64]) -> Result<()> {
        let all = self.gather(Payload::F64(values.to_vec()))?;
        sum_in_rank_order(
            values,
            all.iter().map(|p| match p {
                Payload::F64(v) => &v[..],
                _ => unreachable!("gather checked every rank gave f64"),
            }),
        );
        Ok(())
    }

    fn broadcast(&self, values: &mut [u8]) -> Result<()> {
        let all = self.gather(Payload::Bytes(values.to_vec()))?;
        match &all[0] {
            Payload::Bytes(root) => values.copy_from_slice(root),
            _ => unreachable!("gather checked every rank gave bytes"),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rank_that_leaves_stops_the_others() {
        let results = ThreadGroup::run(3, |comm| -> Result<()> {
            if comm.rank() == 1 {
                return Ok(()); // leaves before the collective
            }
            let mut v = vec![1.0f32];
            comm.all_reduce_sum(&mut v)
        });
        assert!(results[1].is_ok());
        for r in [&results[0], &results[2]] {
            let message = r.as_ref().unwrap_err().to_string();
            // Rank 1 left first; the other waiting rank may have failed and left too by the
            // time this one looks, so the list names rank 1 and perhaps that one.
            let who = message
                .split(": ")
                .nth(1)
                .and_then(|m| m.split(" left the run").next());
            let named = who.is_some_and(|w| w.split([' ', ',']).any(|r| r == "1"));
            assert!(named && message.contains("left the run"), "{message}");
        }
    }

    #[test]
    fn a_collective_that_waits_too_long_fails() {
        let results = ThreadGroup::run_with_timeout(2, Duration::from_millis(50), |comm| {
            if comm.rank() == 1 {
                std::thread::sleep(Duration::from_millis(500));
                return Ok(());
            }
            let mut v = vec![1.0f64];
            comm.all_reduce_sum_f64(&mut v)
        });
        let message = results[0].as_ref().unwrap_err().to_string();
        assert!(
            message.contains("did not reach this collective"),
            "{message}"
        );
    }

    #[test]
    fn mismatched_lengths_are_an_error_on_every_rank() {
        let results = ThreadGroup::run(2, |comm| {
            let mut v = vec![0.0f32; 2 + comm.rank()];
            comm.all_reduce_sum(&mut v)
        });
        for r in results {
            let message = r.unwrap_err().to_string();
            assert!(message.contains("not running the same step"), "{message}");
        }
    }
}
