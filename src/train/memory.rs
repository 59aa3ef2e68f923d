//! What a model takes in memory, estimated before anything is allocated: a model too large for
//! the machine is an error that says so at once, not an abort (or the kernel's OOM killer)
//! minutes into building it.

use super::model::Model;
use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::host::{available_memory, format_bytes};

/// A model's memory, estimated from its layers, its optimizer and a batch size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemoryNeed {
    /// Trainable values.
    pub parameters: u64,
    /// Bytes on the backend: the parameters, their gradients and the optimizer's state, the
    /// spare set of parameters and state a guarded update writes, and one batch's inputs,
    /// activations and their gradients.
    pub backend_bytes: u64,
    /// Bytes of host memory while the weights are made: their initial values, and on a GPU
    /// the upload of the largest.
    pub host_bytes: u64,
    /// The largest tensor: its name (`dense_0.weight`), shape and bytes.
    pub largest: (String, [usize; 2], u64),
}

impl MemoryNeed {
    /// What it takes of the host's memory on a backend whose tensors are (or are not) there.
    pub fn of_host(&self, backend_in_host_memory: bool) -> u64 {
        let backend = if backend_in_host_memory {
            self.backend_bytes
        } else {
            0
        };
        self.host_bytes.saturating_add(backend)
    }
}

fn too_large() -> Error {
    Error::Config("the model's size overflows 64 bits; use smaller layers".into())
}

impl<B: Backend> Model<B> {
    /// The memory this model needs for inputs of `input_dim` features in batches of
    /// `batch_size` (0 for the weights alone).
    pub fn memory_needed(&self, input_dim: usize, batch_size: usize) -> Result<MemoryNeed> {
        let (mut parameters, mut moving): (u128, u128) = (0, 0);
        let mut activations: u128 = 2 * input_dim as u128; // the input and its gradient
        let mut largest = (String::new(), [0, 0], 0u128);
        let mut counts = std::collections::HashMap::<&str, usize>::new();
        let mut fan_in = input_dim;
        for l in self.spec.layers() {
            let k = counts.entry(l.kind()).or_default();
            let prefix = format!("{}_{k}", l.kind());
            *k += 1;
            for p in l.params(fan_in) {
                let values = p.shape[0] as u128 * p.shape[1] as u128;
                parameters += values;
                if values * 4 > largest.2 {
                    largest = (format!("{prefix}.{}", p.name), p.shape, values * 4);
                }
            }
            for s in l.state(fan_in) {
                moving += s.shape[0] as u128 * s.shape[1] as u128;
            }
            let width = l.width(fan_in);
            // Its output and gradient, and its scratch (a Dense layer's z and dz).
            activations += 2 * width as u128;
            activations += l.scratch(fan_in).iter().map(|&w| w as u128).sum::<u128>();
            fan_in = width;
        }
        activations += 2 * fan_in as u128 + 1; // targets, probabilities, the loss per row
        let state = self.optimizer.state_tensors() as u128;
        // Parameters, gradients, state, the layers' state, and the spare parameters and
        // states; per batch size, the activations and the batch's statistics.
        let backend =
            4 * (parameters * (3 + 2 * state) + 3 * moving + batch_size as u128 * activations);
        let upload = if self.backend.memory_limits().in_host_memory {
            0
        } else {
            largest.2
        };
        let host = 4 * parameters + upload;
        let fit = |v: u128| u64::try_from(v).map_err(|_| too_large());
        Ok(MemoryNeed {
            parameters: fit(parameters)?,
            backend_bytes: fit(backend)?,
            host_bytes: fit(host)?,
            largest: (largest.0, largest.1, fit(largest.2)?),
        })
    }

    /// Refuses, before anything is allocated, a model that cannot fit: a tensor over the
    /// backend's largest, or more memory than the host has left (see [`MemoryNeed`]).
    pub fn check_memory(&self, input_dim: usize, batch_size: usize) -> Result<()> {
        let need = self.memory_needed(input_dim, batch_size)?;
        let limits = self.backend.memory_limits();
        let (name, [rows, cols], bytes) = &need.largest;
        if let Some(max) = limits.max_tensor_bytes.filter(|&m| *bytes > m) {
            return Err(Error::Config(format!(
                "{name} [{rows}, {cols}] needs {}, more than this adapter's {} ({}): use smaller layers",
                format_bytes(*bytes),
                limits.max_tensor_limit,
                format_bytes(max)
            )));
        }
        let host = need.of_host(limits.in_host_memory);
        if let Some(free) = available_memory().filter(|&f| host > f) {
            let batch = if batch_size > 0 {
                format!(" and batches of {batch_size}")
            } else {
                String::new()
            };
            return Err(Error::Config(format!(
                "the model needs {} of memory for its {} parameters (with their gradients and optimizer state){batch}, \
                 more than the {} this machine has available; its largest tensor is {name} [{rows}, {cols}]. Use smaller layers",
                format_bytes(host),
                need.parameters,
                format_bytes(free)
            )));
        }
        Ok(())
    }
}
