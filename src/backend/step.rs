//! What a step plan's replays are given, and where the host's time goes while the device
//! works (see `Backend::replay`, `Backend::device_time`).

/// Where the host's time went besides its own work: see [`Backend::device_time`](super::Backend::device_time).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeviceTime {
    /// Nanoseconds blocked waiting for the device (read-backs, the bound on submissions in
    /// flight).
    pub waiting_ns: u64,
    /// Nanoseconds inside the queue's submit call. On a real GPU that is host work (wgpu's
    /// validation, the driver's submit); on lavapipe, whose submit runs the shaders before
    /// returning, it is mostly the device's.
    pub submitting_ns: u64,
}

/// What changes from one replay of a step plan to the next ([`Backend::replay`](super::Backend::replay)).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepValues {
    /// The optimizer step (1 for the first): the update's `t`, the moving averages' `t`,
    /// and the step the dropout and RReLU draws belong to.
    pub t: u64,
    /// The optimizer's learning rate.
    pub lr: f32,
    /// Where the batch starts in the order its rows are gathered by.
    pub offset: usize,
}
