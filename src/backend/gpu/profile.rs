//! The timestamp profiler: a query around every dispatch of a submit, read back after it and
//! summed per kernel.

use super::{GpuBackend, ARENA_DISPATCHES};
use crate::backend::Backend;
use crate::error::{Error, Result};

/// GPU time spent in one kernel, summed over its dispatches, from timestamp queries.
#[derive(Clone, Debug, PartialEq)]
pub struct KernelTime {
    /// The kernel (matmuls with their transposes, e.g. `matmul_vec4 A·Bᵀ`).
    pub kernel: &'static str,
    /// Dispatches timed.
    pub dispatches: u64,
    /// Total GPU time, nanoseconds.
    pub nanos: f64,
}

/// Timestamp queries around every dispatch of a submit, read back after it.
pub(super) struct Profiler {
    pub(super) queries: wgpu::QuerySet,
    pub(super) resolve: wgpu::Buffer,
    pub(super) readback: wgpu::Buffer,
    pub(super) period_ns: f64,
    /// Labels of the dispatches in the submitted, not yet read, encoder.
    pub(super) pending: Vec<&'static str>,
    pub(super) totals: Vec<KernelTime>,
}

impl GpuBackend {
    /// Times every dispatch from now on with timestamp queries, summed per kernel in
    /// [`GpuBackend::kernel_times`]. Each submit then waits for its timestamps, so profile to
    /// see where GPU time goes, and time throughput without it. An error where the adapter has
    /// no timestamp queries inside passes.
    pub fn enable_profiling(&mut self) -> Result<()> {
        if !self.ctx.has_timestamps() {
            return Err(Error::Invalid {
                op: "enable_profiling",
                detail: format!(
                    "{} has no timestamp queries inside compute passes",
                    self.ctx.adapter().name
                ),
            });
        }
        self.flush()?;
        let queries = (ARENA_DISPATCHES + 1) as u32;
        let bytes = 8 * queries as u64;
        let device = &self.ctx.device;
        self.profiler = Some(Profiler {
            queries: device.create_query_set(&wgpu::QuerySetDescriptor {
                label: Some("wgtrain profiler"),
                ty: wgpu::QueryType::Timestamp,
                count: queries,
            }),
            resolve: device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("wgtrain profiler resolve"),
                size: bytes,
                usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            }),
            readback: device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("wgtrain profiler readback"),
                size: bytes,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            }),
            period_ns: self.ctx.queue.get_timestamp_period() as f64,
            pending: Vec::new(),
            totals: Vec::new(),
        });
        self.stats.buffers_created += 2;
        Ok(())
    }

    /// GPU time per kernel since profiling was enabled (or last reset), longest first. Empty
    /// when profiling is off.
    pub fn kernel_times(&self) -> Vec<KernelTime> {
        let mut t = self
            .profiler
            .as_ref()
            .map(|p| p.totals.clone())
            .unwrap_or_default();
        t.sort_by(|a, b| b.nanos.total_cmp(&a.nanos));
        t
    }

    /// Clears the per-kernel totals (after a warm-up, say).
    pub fn reset_kernel_times(&mut self) {
        if let Some(p) = &mut self.profiler {
            p.totals.clear();
        }
    }

    /// Reads the timestamps of the last submit, if it was profiled, and adds them up. Waits.
    pub(super) fn collect_profile(&mut self) -> Result<()> {
        let Some(p) = self.profiler.as_mut() else {
            return Ok(());
        };
        if p.pending.is_empty() {
            return Ok(());
        }
        let bytes = 8 * (p.pending.len() as u64 + 1);
        let (tx, rx) = std::sync::mpsc::channel();
        p.readback
            .slice(0..bytes)
            .map_async(wgpu::MapMode::Read, move |r| {
                let _ = tx.send(r);
            });
        let polled = self.ctx.device.poll(wgpu::PollType::wait_indefinitely());
        polled.map_err(|e| Error::DeviceLost(e.to_string()))?;
        let p = self.profiler.as_mut().expect("checked above");
        rx.recv()
            .map_err(|_| Error::DeviceLost("the profiler callback never ran".into()))?
            .map_err(|e| Error::DeviceLost(format!("mapping the profiler buffer failed: {e}")))?;
        {
            let view = p.readback.slice(0..bytes).get_mapped_range().map_err(|e| {
                Error::DeviceLost(format!("reading the profiler buffer failed: {e}"))
            })?;
            let stamps: &[u64] = bytemuck::cast_slice(&view);
            for (i, label) in p.pending.iter().enumerate() {
                let nanos = stamps[i + 1].saturating_sub(stamps[i]) as f64 * p.period_ns;
                match p.totals.iter_mut().find(|t| t.kernel == *label) {
                    Some(t) => {
                        t.dispatches += 1;
                        t.nanos += nanos;
                    }
                    None => p.totals.push(KernelTime {
                        kernel: label,
                        dispatches: 1,
                        nanos,
                    }),
                }
            }
        }
        p.readback.unmap();
        p.pending.clear();
        Ok(())
    }
}
