//! What every backend's tensors are ([`Tensor`], and the [`MemoryLimits`] they live within),
//! and [`HostTensor`]: a tensor in host memory, the tensor of both CPU backends (the fast
//! [`CpuBackend`](super::cpu::CpuBackend) and the [`ReferenceBackend`](super::reference::ReferenceBackend)).

use super::check;
use crate::error::Result;

/// A 2-D f32 tensor living on some backend.
pub trait Tensor {
    /// Number of rows.
    fn rows(&self) -> usize;
    /// Number of columns.
    fn cols(&self) -> usize;
    /// `[rows, cols]`.
    fn shape(&self) -> [usize; 2] {
        [self.rows(), self.cols()]
    }
    /// Number of elements.
    fn len(&self) -> usize {
        self.rows() * self.cols()
    }
    /// True if the tensor has no elements (never, for tensors a backend made).
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What a backend can hold, for estimating before allocating: see
/// [`Backend::memory_limits`](super::Backend::memory_limits).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemoryLimits {
    /// The largest tensor, in bytes, if there is a limit (a GPU's buffer and binding limits).
    pub max_tensor_bytes: Option<u64>,
    /// The name of that limit, for messages.
    pub max_tensor_limit: &'static str,
    /// Whether the backend's tensors live in host memory (the CPU backends, and software
    /// GPU adapters such as lavapipe), so that they count against what the host has left.
    pub in_host_memory: bool,
}

/// A tensor in host memory: `rows · cols` f32 values, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct HostTensor {
    pub(crate) rows: usize,
    pub(crate) cols: usize,
    pub(crate) data: Vec<f32>,
}

impl HostTensor {
    /// The values, row-major.
    pub fn data(&self) -> &[f32] {
        &self.data
    }

    /// A new `[rows, cols]` tensor of zeros; running out of memory is an error, not an abort.
    pub(crate) fn zeros(rows: usize, cols: usize) -> Result<HostTensor> {
        check::new_tensor(rows, cols, None)?;
        let len = rows.saturating_mul(cols);
        let mut data = Vec::new();
        data.try_reserve_exact(len)
            .map_err(|_| crate::Error::Invalid {
                op: "tensor",
                detail: format!("out of memory for a [{rows}, {cols}] tensor"),
            })?;
        data.resize(len, 0.0);
        Ok(HostTensor { rows, cols, data })
    }

    /// A new `[rows, cols]` tensor holding `data`.
    pub(crate) fn upload(rows: usize, cols: usize, data: &[f32]) -> Result<HostTensor> {
        check::new_tensor(rows, cols, Some(data))?;
        let mut t = HostTensor::zeros(rows, cols)?;
        t.data.copy_from_slice(data);
        Ok(t)
    }
}

impl Tensor for HostTensor {
    fn rows(&self) -> usize {
        self.rows
    }
    fn cols(&self) -> usize {
        self.cols
    }
}

/// A read-back under way ([`Backend::read_start`](super::Backend::read_start)), ended by
/// [`Backend::read_finish`](super::Backend::read_finish) on the backend that started it.
#[derive(Debug, PartialEq, Eq)]
#[must_use = "a read started is ended by read_finish, which gives its values"]
pub struct ReadTicket(Option<usize>);

impl ReadTicket {
    /// A read whose values are given already (a host backend's, or one of no tensors).
    pub fn done() -> ReadTicket {
        ReadTicket(None)
    }

    /// A read under way on a device, in the backend's slot `slot`.
    pub fn on_device(slot: usize) -> ReadTicket {
        ReadTicket(Some(slot))
    }

    /// The backend's slot for a read under way; `None` for one done already.
    pub fn slot(&self) -> Option<usize> {
        self.0
    }
}
