//! [`HostTensor`]: a tensor in host memory, the tensor of both CPU backends (the fast
//! [`CpuBackend`](super::cpu::CpuBackend) and the [`ReferenceBackend`](super::reference::ReferenceBackend)).

use super::{check, Tensor};
use crate::error::Result;

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
