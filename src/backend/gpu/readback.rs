//! Reading tensors back: every tensor of a read copied into one staging buffer in one encoder,
//! one submit and one wait, however many tensors there are. A read waits at once
//! ([`GpuBackend::read_back`]) or is started and ended apart
//! ([`GpuBackend::read_back_start`]), so that the host can work, or the device can run later
//! submissions, in between: the data-parallel exchange reads a bucket of gradients while the
//! backward pass of the layers below it runs.

use std::sync::mpsc;

use super::{GpuBackend, GpuTensor};
use crate::backend::ReadTicket;
use crate::error::{Error, Result};

/// The staging buffers of read-backs, each of which only grows.
#[derive(Default)]
pub(super) struct Readbacks {
    /// For reads that wait at once.
    now: Option<wgpu::Buffer>,
    /// For reads started and ended apart: a buffer per read under way, kept for the next.
    started: Vec<Started>,
}

struct Started {
    buffer: wgpu::Buffer,
    pending: Option<Pending>,
}

struct Pending {
    bytes: u64,
    submission: Option<wgpu::SubmissionIndex>,
    mapped: mpsc::Receiver<std::result::Result<(), wgpu::BufferAsyncError>>,
}

impl GpuBackend {
    /// Appends the values of every tensor of `ts` to `out`, in order, after the work recorded
    /// so far: the one point in the backend that waits for the device.
    pub(super) fn read_back(&mut self, ts: &[&GpuTensor], out: &mut Vec<f32>) -> Result<()> {
        let bytes: u64 = ts.iter().map(|t| t.bytes()).sum();
        if bytes == 0 {
            return Ok(());
        }
        if self.readbacks.now.as_ref().is_none_or(|s| s.size() < bytes) {
            self.readbacks.now = Some(self.staging_buffer(bytes));
        }
        let staging = self.readbacks.now.clone().expect("made above");
        let mapped = self.copy_out(ts, &staging, bytes)?;
        self.wait()?;
        finish_map(&staging, bytes, &mapped, out)
    }

    /// Submits the work recorded so far and the copies of every tensor of `ts` after it, and
    /// returns without waiting: [`GpuBackend::read_back_finish`] waits for those copies alone
    /// (later submissions may still run) and gives the values.
    pub(super) fn read_back_start(&mut self, ts: &[&GpuTensor]) -> Result<ReadTicket> {
        let bytes: u64 = ts.iter().map(|t| t.bytes()).sum();
        if bytes == 0 {
            return Ok(ReadTicket::done());
        }
        let free = |s: &Started| s.pending.is_none();
        let slot = match self
            .readbacks
            .started
            .iter()
            .position(|s| free(s) && s.buffer.size() >= bytes)
        {
            Some(i) => i,
            None => {
                let buffer = self.staging_buffer(bytes);
                let fresh = Started {
                    buffer,
                    pending: None,
                };
                match self.readbacks.started.iter().position(free) {
                    Some(i) => {
                        self.readbacks.started[i] = fresh;
                        i
                    }
                    None => {
                        self.readbacks.started.push(fresh);
                        self.readbacks.started.len() - 1
                    }
                }
            }
        };
        let staging = self.readbacks.started[slot].buffer.clone();
        let mapped = self.copy_out(ts, &staging, bytes)?;
        let submission = self.in_flight.back().cloned();
        self.readbacks.started[slot].pending = Some(Pending {
            bytes,
            submission,
            mapped,
        });
        Ok(ReadTicket::on_device(slot))
    }

    /// Waits for the read `ticket` stands for and appends its values to `out`.
    pub(super) fn read_back_finish(
        &mut self,
        ticket: ReadTicket,
        out: &mut Vec<f32>,
    ) -> Result<()> {
        let Some(slot) = ticket.slot() else {
            return Ok(());
        };
        let pending = self
            .readbacks
            .started
            .get_mut(slot)
            .and_then(|s| s.pending.take())
            .ok_or_else(|| {
                Error::Config(format!(
                    "read ticket {slot} is not a read under way on this GPU backend"
                ))
            })?;
        let started = std::time::Instant::now();
        let polled = self.ctx.device.poll(wgpu::PollType::Wait {
            submission_index: pending.submission,
            timeout: None,
        });
        self.stats.wait_ns += started.elapsed().as_nanos() as u64;
        polled.map_err(|e| Error::DeviceLost(e.to_string()))?;
        self.ctx.check_errors(self.last_op)?;
        let staging = &self.readbacks.started[slot].buffer;
        finish_map(staging, pending.bytes, &pending.mapped, out)
    }

    fn staging_buffer(&mut self, bytes: u64) -> wgpu::Buffer {
        self.stats.buffers_created += 1;
        self.ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("wgtrain readback"),
            size: bytes,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        })
    }

    /// Submits the recorded work, then the copies of `ts` into `staging`, and asks for the
    /// mapping; the receiver hears when it is done.
    fn copy_out(
        &mut self,
        ts: &[&GpuTensor],
        staging: &wgpu::Buffer,
        bytes: u64,
    ) -> Result<mpsc::Receiver<std::result::Result<(), wgpu::BufferAsyncError>>> {
        let mut encoder = self.encode(None);
        self.break_capture("a read-back inside the step");
        let mut at = 0;
        for t in ts {
            // Tensors hold f32s, so every size and offset is a multiple of the 4 bytes a copy
            // must be aligned to.
            encoder.copy_buffer_to_buffer(&t.buffer, t.offset, staging, at, Some(t.bytes()));
            at += t.bytes();
        }
        self.submit(encoder)?;
        let (tx, rx) = mpsc::channel();
        staging.map_async(wgpu::MapMode::Read, 0..bytes, move |r| {
            let _ = tx.send(r);
        });
        Ok(rx)
    }
}

/// After the device has done a read's copies (its submission waited for): the values out of
/// the mapped staging buffer, which is unmapped again.
fn finish_map(
    staging: &wgpu::Buffer,
    bytes: u64,
    mapped: &mpsc::Receiver<std::result::Result<(), wgpu::BufferAsyncError>>,
    out: &mut Vec<f32>,
) -> Result<()> {
    mapped
        .recv()
        .map_err(|_| Error::DeviceLost("the readback callback never ran".into()))?
        .map_err(|e| Error::DeviceLost(format!("mapping the readback buffer failed: {e}")))?;
    let view = staging
        .slice(0..bytes)
        .get_mapped_range()
        .map_err(|e| Error::DeviceLost(format!("reading the readback buffer failed: {e}")))?;
    out.extend_from_slice(bytemuck::cast_slice::<u8, f32>(&view));
    drop(view);
    staging.unmap();
    Ok(())
}
