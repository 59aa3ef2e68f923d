//! The books of a guarded optimizer update: where it keeps them in the training loop's
//! accumulator, and what it writes besides the parameters (see `Backend::optimizer_step`).

/// Where a guarded optimizer update keeps its books in the training loop's accumulator
/// `[1, S]`: see [`Backend::optimizer_step`](super::Backend::optimizer_step).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GuardSlots {
    /// The running loss sum: no update once it is NaN or infinite.
    pub loss: usize,
    /// Two flags, `flags` and `flags + 1`: step `t` raises `flags + t % 2` and reads
    /// `flags + (t + 1) % 2`. Alternating keeps what one update raises from deciding, part-way
    /// through that same update, what the rest of it does.
    pub flags: usize,
    /// The last step `t` that updated.
    pub step: usize,
}

impl GuardSlots {
    /// The slots after `first`: flags at `first` and `first + 1`, the step at `first + 2`,
    /// after a loss at `loss`.
    pub fn after(loss: usize, first: usize) -> GuardSlots {
        GuardSlots {
            loss,
            flags: first,
            step: first + 2,
        }
    }

    /// The slots they take past `flags`: 3.
    pub const COUNT: usize = 3;

    /// Whether a guarded step found a non-finite result or a non-finite loss, from the
    /// accumulator read back.
    pub fn tripped(&self, acc: &[f32]) -> bool {
        acc[self.flags].to_bits() != 0 || acc[self.flags + 1].to_bits() != 0
    }

    /// The last step that updated since the accumulator was zeroed, if one did.
    pub fn last_step(&self, acc: &[f32]) -> Option<u64> {
        Some(acc[self.step].to_bits() as u64).filter(|&t| t > 0)
    }
}

/// What a guarded optimizer update reads and writes besides the parameters: see
/// [`Backend::optimizer_step`](super::Backend::optimizer_step).
#[derive(Debug)]
pub struct Guard<'a, T> {
    /// The accumulator `[1, S]` the training loop sums its loss into.
    pub acc: &'a mut T,
    /// Its slots.
    pub slots: GuardSlots,
    /// Where the new parameters go, one per parameter, each shaped like it.
    pub params_out: &'a mut [T],
    /// Where the new state goes, laid out as the state.
    pub state_out: &'a mut [Vec<T>],
}

impl<T> Guard<'_, T> {
    /// The guard of parameter `j` alone.
    pub fn part(&mut self, j: usize) -> Guard<'_, T> {
        Guard {
            acc: &mut *self.acc,
            slots: self.slots,
            params_out: &mut self.params_out[j..j + 1],
            state_out: &mut self.state_out[j..j + 1],
        }
    }
}
