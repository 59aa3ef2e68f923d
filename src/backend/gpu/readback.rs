//! Reading tensors back: every tensor of a read copied into one staging buffer (which only
//! grows) in one encoder, one submit and one wait, however many tensors there are.

use super::{GpuBackend, GpuTensor};
use crate::error::{Error, Result};

impl GpuBackend {
    /// Appends the values of every tensor of `ts` to `out`, in order, after the work recorded
    /// so far: the one point in the backend that waits for the device.
    pub(super) fn read_back(&mut self, ts: &[&GpuTensor], out: &mut Vec<f32>) -> Result<()> {
        let bytes: u64 = ts.iter().map(|t| t.bytes()).sum();
        if bytes == 0 {
            return Ok(());
        }
        if self.staging.as_ref().is_none_or(|s| s.size() < bytes) {
            self.staging = Some(self.ctx.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("wgtrain readback"),
                size: bytes,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            }));
            self.stats.buffers_created += 1;
        }
        let mut encoder = self.encode(None);
        self.break_capture("a read-back inside the step");
        let staging = self
            .staging
            .clone()
            .expect("staging buffer was just created");
        let mut at = 0;
        for t in ts {
            // Tensors hold f32s, so every size and offset is a multiple of the 4 bytes a copy
            // must be aligned to.
            encoder.copy_buffer_to_buffer(&t.buffer, t.offset, &staging, at, Some(t.bytes()));
            at += t.bytes();
        }
        self.submit(encoder)?;

        let (tx, rx) = std::sync::mpsc::channel();
        staging.map_async(wgpu::MapMode::Read, 0..bytes, move |r| {
            let _ = tx.send(r);
        });
        self.wait()?;
        rx.recv()
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
}
