//! Step plans: a training (or evaluation) step recorded once, with its pipelines, bind groups
//! and parameters resolved, and replayed every step after (see [`Backend::begin_plan`](crate::backend::Backend::begin_plan)).
//!
//! A plan is the recorded step's dispatches. Their `Params` live in the plan region of the
//! backend's params buffer, written once when the plan is made, so the bind groups the
//! recording made (which bind that buffer with a dynamic offset) serve the replays too. The
//! few dispatches whose parameters change from step to step (the optimizer's `t`, learning
//! rate and bias corrections, the moving averages' `t`, the dropout and RReLU draws' step, the
//! batch's offset into the epoch's order) carry a [`Patch`]; their parameters are placed first
//! in the plan's slots, so that a replay rewrites them with one copy from a staging belt in
//! the replay's own command encoder. A replay is then: patch a few structs, one copy, one
//! compute pass of the recorded dispatches, one submit.
//!
//! At most [`MAX_IN_FLIGHT`] submissions are in flight: before a submit, the host waits for
//! the oldest while that many are, so it never runs further ahead of the device.

use std::time::Instant;

use super::kernels::{self, Constants, GatherParams, LayerParams, OptimParams};
use super::{u32_dim, Dispatch, GpuBackend, GpuTensor};
use crate::backend::{check, Backend, Optimizer, StepValues, Tensor};
use crate::error::{Error, Result};

/// Submissions the host lets the device have queued before it waits for the oldest.
pub(super) const MAX_IN_FLIGHT: usize = 2;

/// Params slots in the plan region of the params buffer, shared by a backend's plans. When
/// they run out, every plan is dropped (its replay says so) and recorded again.
pub(super) const PLAN_SLOTS: usize = 8192;

/// What a replay rewrites in one dispatch's parameters.
#[derive(Clone, Copy, Debug)]
pub(super) enum Patch {
    /// An optimizer update ([`OptimParams`]): `t`, the learning rate, and Adam's bias
    /// corrections at `t`.
    Optimizer(Optimizer),
    /// A moving average ([`OptimParams`]): `t`.
    Moving,
    /// A dropout or RReLU draw ([`LayerParams`]): the step.
    Draw,
    /// The batch gather ([`GatherParams`]): the offset into the order.
    Gather,
}

impl Patch {
    /// Rewrites `bytes` (one dispatch's parameters) for step `v`, as the op would have
    /// written them had it been called at that step.
    fn apply(self, bytes: &mut [u8], v: StepValues) -> Result<()> {
        let t = u32::try_from(v.t).unwrap_or(u32::MAX);
        match self {
            Patch::Optimizer(opt) => {
                let mut p = read::<OptimParams>(bytes);
                p.t = t;
                p.lr = v.lr;
                if let Optimizer::Adam { beta1, beta2, .. } = opt {
                    let (bc1, bc2) = Optimizer::adam_bias_corrections(beta1, beta2, v.t);
                    p.bias_correction1 = bc1;
                    p.bias_correction2 = bc2;
                }
                write(bytes, p);
            }
            Patch::Moving => {
                let mut p = read::<OptimParams>(bytes);
                p.t = t;
                write(bytes, p);
            }
            Patch::Draw => {
                let mut p = read::<LayerParams>(bytes);
                p.step = v.t as u32;
                write(bytes, p);
            }
            Patch::Gather => {
                let mut p = read::<GatherParams>(bytes);
                p.offset = u32_dim("gather_rows", v.offset)?;
                write(bytes, p);
            }
        }
        Ok(())
    }
}

/// Whether a gather from `src` into `dst` can move vec4: rows of whole vec4, both tensors
/// starting on one.
fn vec4_rows(src: &GpuTensor, dst: &GpuTensor) -> bool {
    dst.cols % 4 == 0 && src.offset % 16 == 0 && dst.offset % 16 == 0
}

fn read<P: bytemuck::Pod>(bytes: &[u8]) -> P {
    bytemuck::pod_read_unaligned(&bytes[..std::mem::size_of::<P>()])
}

fn write<P: bytemuck::Pod>(bytes: &mut [u8], p: P) {
    bytes[..std::mem::size_of::<P>()].copy_from_slice(bytemuck::bytes_of(&p));
}

/// A plan being recorded: the dispatches from `start` in the backend's recording.
#[derive(Debug)]
pub(super) struct Capture {
    start: usize,
    /// Dispatch (counted from `start`) and what a replay rewrites in it.
    patches: Vec<(usize, Patch)>,
    /// Why the step cannot be kept as a plan, once something it did cannot be replayed.
    broken: Option<&'static str>,
}

/// A step recorded by [`GpuBackend`], to replay ([`Backend::replay`](crate::backend::Backend::replay)).
pub struct GpuPlan {
    dispatches: Vec<Dispatch>,
    /// The patched dispatches' parameters, one slot each, in the order of `patches`; the
    /// first of the plan's slots in the params buffer.
    patched: Vec<u8>,
    /// Where `patched` is in the params buffer, in bytes.
    patched_offset: u64,
    /// Byte offset in `patched` and the patch.
    patches: Vec<(usize, Patch)>,
    /// The backend and the plan-region generation the plan was made in.
    owner: u64,
    generation: u64,
}

impl std::fmt::Debug for GpuPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuPlan")
            .field("dispatches", &self.dispatches.len())
            .field("patched", &self.patches.len())
            .finish_non_exhaustive()
    }
}

impl GpuPlan {
    /// Dispatches a replay runs.
    pub fn dispatches(&self) -> usize {
        self.dispatches.len()
    }

    pub(super) fn dispatches_slice(&self) -> &[Dispatch] {
        &self.dispatches
    }
}

impl GpuBackend {
    pub(super) fn begin_plan_impl(&mut self) -> Result<bool> {
        if self.capture.is_some() {
            return Err(Error::Invalid {
                op: "begin_plan",
                detail: "a plan is already being recorded".into(),
            });
        }
        self.capture = Some(Capture {
            start: self.recorded.len(),
            patches: Vec::new(),
            broken: None,
        });
        Ok(true)
    }

    pub(super) fn end_plan_impl(&mut self) -> Result<Option<GpuPlan>> {
        let Some(cap) = self.capture.take() else {
            return Err(Error::Invalid {
                op: "end_plan",
                detail: "no plan is being recorded".into(),
            });
        };
        let n = self.recorded.len().saturating_sub(cap.start);
        if cap.broken.is_some() || n == 0 || n > PLAN_SLOTS {
            return Ok(None);
        }
        if self.plan_next_slot + n > PLAN_SLOTS {
            // Every plan made so far gives its slots back: their replays say they are stale.
            self.plan_generation += 1;
            self.plan_next_slot = 0;
        }
        let stride = self.params_stride;
        let first = self.plan_next_slot;
        self.plan_next_slot += n;
        // The patched dispatches take the first slots, the others follow in order.
        let mut slot_of = vec![usize::MAX; n];
        for (k, &(j, _)) in cap.patches.iter().enumerate() {
            slot_of[j] = k;
        }
        let unpatched = slot_of.iter_mut().filter(|s| **s == usize::MAX);
        for (slot, s) in (cap.patches.len()..).zip(unpatched) {
            *s = slot;
        }
        let mut params = vec![0u8; n * stride];
        let mut dispatches = Vec::with_capacity(n);
        let region = self.plan_region_offset() + (first * stride) as u64;
        for (j, d) in self.recorded[cap.start..].iter().enumerate() {
            let from = d.params_offset as usize;
            let to = slot_of[j] * stride;
            params[to..to + stride].copy_from_slice(&self.arena[from..from + stride]);
            dispatches.push(Dispatch {
                label: d.label,
                pipeline: d.pipeline.clone(),
                bind_group: d.bind_group.clone(),
                params_offset: u32::try_from(region + to as u64).map_err(|_| Error::Invalid {
                    op: "end_plan",
                    detail: "the params buffer is past 4 GiB".into(),
                })?,
                groups: d.groups,
            });
        }
        self.ctx
            .queue
            .write_buffer(&self.arena_buffer, region, &params);
        self.stats.params_bytes_written += params.len() as u64;
        let k = cap.patches.len();
        params.truncate(k * stride);
        Ok(Some(GpuPlan {
            dispatches,
            patched: params,
            patched_offset: region,
            patches: cap
                .patches
                .iter()
                .enumerate()
                .map(|(slot, &(_, p))| (slot * stride, p))
                .collect(),
            owner: self.id,
            generation: self.plan_generation,
        }))
    }

    pub(super) fn replay_impl(&mut self, plan: &mut GpuPlan, v: StepValues) -> Result<bool> {
        if plan.owner != self.id || plan.generation != self.plan_generation {
            return Ok(false);
        }
        if let Some(cap) = &mut self.capture {
            cap.broken = Some("a replay inside the step");
        }
        // A profiled pass times each dispatch in one query set: submit what is recorded first
        // where the two would not fit it together.
        if self.profiler.is_some()
            && self.recorded.len() + plan.dispatches.len() > super::ARENA_DISPATCHES
        {
            self.flush()?;
        }
        let stride = self.params_stride;
        for &(at, patch) in &plan.patches {
            patch.apply(&mut plan.patched[at..at + stride], v)?;
        }
        let encoder = self.encode(Some(plan));
        self.stats.dispatches += plan.dispatches.len() as u64;
        self.stats.replays += 1;
        self.submit(encoder)?;
        self.last_op = "a step plan";
        Ok(true)
    }

    /// Byte offset of the plan region in the params buffer (after the recording's slots).
    pub(super) fn plan_region_offset(&self) -> u64 {
        (super::ARENA_DISPATCHES * self.params_stride) as u64
    }

    /// The patched parameters of `plan` copied into place at the head of `encoder`, through
    /// the staging belt.
    pub(super) fn encode_patches(&mut self, encoder: &mut wgpu::CommandEncoder, plan: &GpuPlan) {
        let Some(size) = wgpu::BufferSize::new(plan.patched.len() as u64) else {
            return;
        };
        self.belt
            .write_buffer(encoder, &self.arena_buffer, plan.patched_offset, size)
            .copy_from_slice(&plan.patched);
        self.stats.params_bytes_written += plan.patched.len() as u64;
    }

    /// Copies `bytes` into `t` from the staging belt, in the uploads encoder that the next
    /// submit runs first: no staging buffer made per write (a chunk of the belt is reused
    /// once the device is done with it; at most two submissions are in flight).
    pub(super) fn stage_write(&mut self, t: &GpuTensor, bytes: &[u8]) {
        let Some(size) = wgpu::BufferSize::new(bytes.len() as u64) else {
            return;
        };
        let device = &self.ctx.device;
        let uploads = self.uploads.get_or_insert_with(|| {
            device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("wgtrain uploads"),
            })
        });
        self.belt
            .write_buffer(uploads, &t.buffer, t.offset, size)
            .copy_from_slice(bytes);
    }

    /// Marks the dispatch just recorded as one a replay rewrites (while a plan is recorded).
    pub(super) fn patch_last(&mut self, patch: Patch) {
        if let Some(cap) = &mut self.capture {
            // The recording went on from its start unless something submitted it (then the
            // capture is broken already).
            match (self.recorded.len()).checked_sub(cap.start + 1) {
                Some(j) if cap.broken.is_none() => cap.patches.push((j, patch)),
                _ => {
                    cap.broken.get_or_insert("a submit inside the step");
                }
            }
        }
    }

    /// Marks the plan being recorded, if any, as one that cannot be kept.
    pub(super) fn break_capture(&mut self, why: &'static str) {
        if let Some(cap) = &mut self.capture {
            cap.broken.get_or_insert(why);
        }
    }

    /// Submits `encoder`, first waiting while [`MAX_IN_FLIGHT`] submissions are queued.
    pub(super) fn submit(&mut self, encoder: wgpu::CommandEncoder) -> Result<()> {
        while self.in_flight.len() >= MAX_IN_FLIGHT {
            let oldest = self.in_flight.pop_front().expect("not empty");
            let started = Instant::now();
            let polled = self.ctx.device.poll(wgpu::PollType::Wait {
                submission_index: Some(oldest),
                timeout: None,
            });
            self.stats.wait_ns += started.elapsed().as_nanos() as u64;
            polled.map_err(|e| Error::DeviceLost(e.to_string()))?;
        }
        self.belt.finish();
        // Finishing the encoder is wgpu's host work (it encodes the passes then); the submit
        // alone is timed apart, because lavapipe runs the shaders inside it.
        let mut commands = Vec::with_capacity(2);
        if let Some(uploads) = self.uploads.take() {
            commands.push(uploads.finish());
        }
        commands.push(encoder.finish());
        let started = Instant::now();
        let index = self.ctx.queue.submit(commands);
        self.stats.submit_ns += started.elapsed().as_nanos() as u64;
        self.belt.recall();
        self.in_flight.push_back(index);
        self.stats.max_in_flight = self.stats.max_in_flight.max(self.in_flight.len() as u64);
        self.stats.submits += 1;
        self.ctx.check_errors(self.last_op)?;
        self.collect_profile()
    }

    /// A batch's features and targets in one dispatch where the features' rows are whole
    /// vec4 (else one gather each).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn record_gather_pair(
        &mut self,
        x_src: &GpuTensor,
        y_src: &GpuTensor,
        order: &GpuTensor,
        offset: usize,
        x_dst: &mut GpuTensor,
        y_dst: &mut GpuTensor,
    ) -> Result<()> {
        check::gather_rows(x_src, order, offset, x_dst)?;
        check::gather_rows(y_src, order, offset, y_dst)?;
        if !vec4_rows(x_src, x_dst) || x_dst.rows != y_dst.rows || x_src.rows != y_src.rows {
            self.record_gather(x_src, order, offset, x_dst)?;
            return self.record_gather(y_src, order, offset, y_dst);
        }
        let params = GatherParams {
            len: u32_dim("gather_rows", x_dst.len() / 4)?,
            cols: u32_dim("gather_rows", x_dst.cols / 4)?,
            offset: u32_dim("gather_rows", offset)?,
            src_rows: u32_dim("gather_rows", x_src.rows)?,
            y_cols: u32_dim("gather_rows", y_dst.cols)?,
            y_len: u32_dim("gather_rows", y_dst.len())?,
            _pad: [0; 2],
        };
        let groups = self.grid_1d(x_dst.len() / 4 + y_dst.len())?;
        self.record(
            kernels::GATHER_PAIR4,
            Constants::default(),
            params,
            &[x_dst, x_src, order, y_dst, y_src],
            groups,
        )?;
        self.patch_last(Patch::Gather);
        Ok(())
    }

    pub(super) fn record_gather(
        &mut self,
        src: &GpuTensor,
        order: &GpuTensor,
        offset: usize,
        dst: &mut GpuTensor,
    ) -> Result<()> {
        check::gather_rows(src, order, offset, dst)?;
        // A vec4 per invocation where rows are whole vec4.
        let lanes = if vec4_rows(src, dst) { 4 } else { 1 };
        let params = GatherParams {
            len: u32_dim("gather_rows", dst.len() / lanes)?,
            cols: u32_dim("gather_rows", dst.cols / lanes)?,
            offset: u32_dim("gather_rows", offset)?,
            src_rows: u32_dim("gather_rows", src.rows)?,
            y_cols: 0,
            y_len: 0,
            _pad: [0; 2],
        };
        let groups = self.grid_1d(dst.len() / lanes)?;
        let kernel = if lanes == 4 {
            kernels::GATHER_ROWS4
        } else {
            kernels::GATHER_ROWS
        };
        self.record(
            kernel,
            Constants::default(),
            params,
            &[dst, src, order],
            groups,
        )?;
        self.patch_last(Patch::Gather);
        Ok(())
    }
}
