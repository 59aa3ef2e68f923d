//! The wgpu backend. Ops record dispatches; [`GpuBackend::flush`] replays them into one
//! command encoder and one compute pass and submits once; [`Backend::read`] is the only call
//! that waits.
//!
//! What makes a step cheap after the first:
//! - pipelines are built once per (kernel, override constants) in the shared [`GpuContext`];
//! - each dispatch's `Params` go into one host-side arena, uploaded with a single
//!   `write_buffer` per submit and bound with a dynamic offset, so no uniform buffer is ever
//!   created per op;
//! - bind groups are cached by (layout, buffers), so a loop that reuses its tensors creates
//!   none after its first iteration;
//! - readback goes through one staging buffer that only grows.
//!
//! [`GpuStats`] counts buffers, bind groups, dispatches and submits, so tests can prove it.

mod context;
pub(crate) mod kernels;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

pub use context::{AdapterDescription, GpuContext};
use kernels::{Access, Constants, Kernel, MAX_BINDINGS, PARAMS_SIZE};
pub use kernels::{MatmulTiles, MatmulVariant};

use super::{check, Activation, Backend, Loss, Optimizer, PointError, Tensor, ROC_HISTOGRAM_SLOTS};
use crate::error::{Error, Result};

/// A tensor in a GPU storage buffer.
#[derive(Debug)]
pub struct GpuTensor {
    buffer: wgpu::Buffer,
    id: u64,
    rows: usize,
    cols: usize,
}

impl Tensor for GpuTensor {
    fn rows(&self) -> usize {
        self.rows
    }
    fn cols(&self) -> usize {
        self.cols
    }
}

static NEXT_TENSOR_ID: AtomicU64 = AtomicU64::new(1);

/// Counters of the work and the allocations a backend has made.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GpuStats {
    /// Storage, staging and uniform buffers created.
    pub buffers_created: u64,
    /// Bind groups created (a cache miss each).
    pub bind_groups_created: u64,
    /// Dispatches recorded.
    pub dispatches: u64,
    /// Queue submissions.
    pub submits: u64,
}

struct Dispatch {
    pipeline: wgpu::ComputePipeline,
    bind_group: wgpu::BindGroup,
    params_offset: u32,
    groups: [u32; 3],
}

/// Dispatches the arena holds before a flush is forced.
const ARENA_DISPATCHES: usize = 4096;
/// Bind groups cached before the cache is cleared (it holds dropped tensors' buffers alive).
const BIND_GROUP_CACHE_MAX: usize = 4096;

/// The wgpu implementation of [`Backend`].
pub struct GpuBackend {
    ctx: Arc<GpuContext>,
    recorded: Vec<Dispatch>,
    /// Params of the recorded dispatches, each at a multiple of `params_stride`.
    arena: Vec<u8>,
    arena_buffer: wgpu::Buffer,
    params_stride: usize,
    /// Keyed by layout and the bound tensors' ids (0 for unused slots; ids start at 1).
    bind_groups: HashMap<(&'static [Access], [u64; MAX_BINDINGS]), wgpu::BindGroup>,
    staging: Option<wgpu::Buffer>,
    stats: GpuStats,
    last_op: &'static str,
    matmul_tiles: MatmulTiles,
    /// A `[1, 1]` zero bound as the guard of unguarded optimizer steps.
    finite_guard: GpuTensor,
}

impl std::fmt::Debug for GpuBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuBackend")
            .field("adapter", self.ctx.adapter())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

/// Workgroups for `n` items with `per_group` threads each: a 2-D grid when one dimension's
/// 65535-workgroup limit is not enough (the kernels fold it back with `flat_index`).
fn grid(n: usize, per_group: usize, max_per_dim: u32) -> Result<[u32; 3]> {
    let groups = n.div_ceil(per_group);
    let max = max_per_dim as usize;
    let x = groups.min(max);
    let y = groups.div_ceil(x);
    if y > max {
        return Err(Error::Invalid {
            op: "dispatch",
            detail: format!(
                "{n} items need {groups} workgroups, more than this adapter dispatches"
            ),
        });
    }
    Ok([x as u32, y as u32, 1])
}

const WG_1D: usize = 256;
const WG_ROWS: usize = 64;

fn u32_dim(op: &'static str, v: usize) -> Result<u32> {
    u32::try_from(v).map_err(|_| Error::Invalid {
        op,
        detail: format!("dimension {v} exceeds u32"),
    })
}

impl GpuBackend {
    /// A backend on the process-wide context ([`GpuContext::shared`]).
    pub fn new() -> Result<Self> {
        Ok(Self::with_context(GpuContext::shared()?))
    }

    /// A backend on a given context.
    pub fn with_context(ctx: Arc<GpuContext>) -> Self {
        let align = ctx.limits().min_uniform_buffer_offset_alignment as usize;
        let params_stride = PARAMS_SIZE.div_ceil(align) * align;
        let arena_buffer = ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("wgtrain params arena"),
            size: (params_stride * ARENA_DISPATCHES) as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let finite_guard = storage_tensor(&ctx.device, 1, 1, false);
        let ctx_device_type = ctx.adapter().device_type.clone();
        GpuBackend {
            ctx,
            recorded: Vec::new(),
            arena: Vec::new(),
            arena_buffer,
            params_stride,
            bind_groups: HashMap::new(),
            staging: None,
            stats: GpuStats {
                buffers_created: 2,
                ..GpuStats::default()
            },
            last_op: "none",
            matmul_tiles: MatmulTiles::for_device_type(&ctx_device_type),
            finite_guard,
        }
    }

    /// The shared context (adapter, limits).
    pub fn context(&self) -> &Arc<GpuContext> {
        &self.ctx
    }

    /// The matmul tiling in use.
    pub fn matmul_tiles(&self) -> MatmulTiles {
        self.matmul_tiles
    }

    /// Uses another matmul tiling from now on (the pipeline is built on first use). Rejected
    /// when the adapter cannot run it: too many threads per workgroup, a workgroup dimension
    /// or workgroup memory over its limits, or a zero size.
    pub fn set_matmul_tiles(&mut self, tiles: MatmulTiles) -> Result<()> {
        let l = self.ctx.limits();
        let threads = tiles.wg_x as u64 * tiles.wg_y as u64;
        let shared_bytes = tiles.workgroup_bytes();
        let problem = if tiles.wg_x == 0 || tiles.wg_y == 0 || tiles.bk == 0 {
            Some("every size must be at least 1".to_string())
        } else if threads > l.max_compute_invocations_per_workgroup as u64 {
            Some(format!(
                "{threads} threads per workgroup, over max_compute_invocations_per_workgroup = {}",
                l.max_compute_invocations_per_workgroup
            ))
        } else if tiles.wg_x > l.max_compute_workgroup_size_x
            || tiles.wg_y > l.max_compute_workgroup_size_y
        {
            Some(format!(
                "workgroup {}×{} over max_compute_workgroup_size_x/y = {}×{}",
                tiles.wg_x,
                tiles.wg_y,
                l.max_compute_workgroup_size_x,
                l.max_compute_workgroup_size_y
            ))
        } else if shared_bytes > l.max_compute_workgroup_storage_size as u64 {
            Some(format!(
                "{shared_bytes} bytes of workgroup memory, over max_compute_workgroup_storage_size = {}",
                l.max_compute_workgroup_storage_size
            ))
        } else {
            None
        };
        match problem {
            Some(detail) => Err(Error::Invalid {
                op: "set_matmul_tiles",
                detail: format!("{tiles:?} does not fit this adapter: {detail}"),
            }),
            None => {
                self.matmul_tiles = tiles;
                Ok(())
            }
        }
    }

    /// Counters of allocations and work so far.
    pub fn stats(&self) -> GpuStats {
        self.stats
    }

    /// Records one dispatch of `kernel` over `buffers` (in the kernel's binding order).
    fn record<P: bytemuck::Pod>(
        &mut self,
        kernel: Kernel,
        constants: Constants,
        params: P,
        buffers: &[&GpuTensor],
        groups: [u32; 3],
    ) -> Result<()> {
        debug_assert_eq!(buffers.len(), kernel.bindings.len());
        if self.recorded.len() == ARENA_DISPATCHES {
            self.flush()?;
        }
        let pipeline = self.ctx.pipeline(kernel, constants)?;

        let mut ids = [0u64; MAX_BINDINGS];
        for (slot, t) in ids.iter_mut().zip(buffers) {
            *slot = t.id;
        }
        let key = (kernel.bindings, ids);
        if self.bind_groups.len() >= BIND_GROUP_CACHE_MAX && !self.bind_groups.contains_key(&key) {
            self.bind_groups.clear();
        }
        let bind_group = match self.bind_groups.entry(key) {
            std::collections::hash_map::Entry::Occupied(e) => e.get().clone(),
            std::collections::hash_map::Entry::Vacant(e) => {
                let (layout, _) = self.ctx.layout(kernel.bindings);
                let mut entries = vec![wgpu::BindGroupEntry {
                    binding: 0,
                    resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                        buffer: &self.arena_buffer,
                        offset: 0,
                        size: wgpu::BufferSize::new(PARAMS_SIZE as u64),
                    }),
                }];
                for (i, t) in buffers.iter().enumerate() {
                    entries.push(wgpu::BindGroupEntry {
                        binding: i as u32 + 1,
                        resource: t.buffer.as_entire_binding(),
                    });
                }
                let bg = self
                    .ctx
                    .device
                    .create_bind_group(&wgpu::BindGroupDescriptor {
                        label: Some(kernel.entry),
                        layout: &layout,
                        entries: &entries,
                    });
                self.stats.bind_groups_created += 1;
                e.insert(bg).clone()
            }
        };

        let offset = self.recorded.len() * self.params_stride;
        self.arena.resize(offset + self.params_stride, 0);
        let bytes = bytemuck::bytes_of(&params);
        debug_assert!(bytes.len() <= PARAMS_SIZE);
        self.arena[offset..offset + bytes.len()].copy_from_slice(bytes);

        self.recorded.push(Dispatch {
            pipeline,
            bind_group,
            params_offset: offset as u32,
            groups,
        });
        self.stats.dispatches += 1;
        self.last_op = kernel.entry;
        Ok(())
    }

    fn grid_1d(&self, n: usize) -> Result<[u32; 3]> {
        grid(
            n,
            WG_1D,
            self.ctx.limits().max_compute_workgroups_per_dimension,
        )
    }

    fn grid_rows(&self, rows: usize) -> Result<[u32; 3]> {
        grid(
            rows,
            WG_ROWS,
            self.ctx.limits().max_compute_workgroups_per_dimension,
        )
    }

    fn new_tensor(&mut self, rows: usize, cols: usize, data: Option<&[f32]>) -> Result<GpuTensor> {
        check::new_tensor(rows, cols, data)?;
        let bytes = (rows as u64) * (cols as u64) * 4;
        let limits = self.ctx.limits();
        for (limit_name, limit) in [
            (
                "max_storage_buffer_binding_size",
                limits.max_storage_buffer_binding_size,
            ),
            ("max_buffer_size", limits.max_buffer_size),
        ] {
            if bytes > limit {
                return Err(Error::TensorTooLarge {
                    tensor: format!("[{rows}, {cols}] f32"),
                    bytes,
                    limit_name,
                    limit,
                });
            }
        }
        let tensor = storage_tensor(&self.ctx.device, rows, cols, data.is_some());
        if let Some(d) = data {
            tensor
                .buffer
                .slice(..)
                .get_mapped_range_mut()
                .map_err(|e| Error::DeviceLost(format!("mapping a new buffer failed: {e}")))?
                .copy_from_slice(bytemuck::cast_slice(d));
            tensor.buffer.unmap();
        }
        self.stats.buffers_created += 1;
        Ok(tensor)
    }
}

/// A new zero-filled (or mapped, to be filled) storage buffer for a `[rows, cols]` tensor.
fn storage_tensor(device: &wgpu::Device, rows: usize, cols: usize, mapped: bool) -> GpuTensor {
    let buffer = device.create_buffer(&wgpu::BufferDescriptor {
        label: None,
        size: (rows * cols * 4) as u64,
        usage: wgpu::BufferUsages::STORAGE
            | wgpu::BufferUsages::COPY_SRC
            | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: mapped,
    });
    GpuTensor {
        buffer,
        id: NEXT_TENSOR_ID.fetch_add(1, Ordering::Relaxed),
        rows,
        cols,
    }
}

impl Backend for GpuBackend {
    type Tensor = GpuTensor;

    fn describe(&self) -> String {
        self.ctx.adapter().to_string()
    }

    fn zeros(&mut self, rows: usize, cols: usize) -> Result<GpuTensor> {
        // wgpu zero-initialises new buffers.
        self.new_tensor(rows, cols, None)
    }

    fn upload(&mut self, rows: usize, cols: usize, data: &[f32]) -> Result<GpuTensor> {
        self.new_tensor(rows, cols, Some(data))
    }

    fn write(&mut self, t: &mut GpuTensor, data: &[f32]) -> Result<()> {
        check::write(t, data)?;
        // `write_buffer` lands before the *next* submit's work, so work already recorded
        // against `t` must be submitted first to see the old contents.
        if !self.recorded.is_empty() {
            self.flush()?;
        }
        self.ctx
            .queue
            .write_buffer(&t.buffer, 0, bytemuck::cast_slice(data));
        Ok(())
    }

    fn read(&mut self, t: &GpuTensor) -> Result<Vec<f32>> {
        let bytes = t.buffer.size();
        if self.staging.as_ref().is_none_or(|s| s.size() < bytes) {
            self.staging = Some(self.ctx.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("wgtrain readback"),
                size: bytes,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            }));
            self.stats.buffers_created += 1;
        }
        let mut encoder = self.encode_recorded();
        let staging = self
            .staging
            .clone()
            .expect("staging buffer was just created");
        encoder.copy_buffer_to_buffer(&t.buffer, 0, &staging, 0, Some(bytes));
        self.ctx.queue.submit([encoder.finish()]);
        self.stats.submits += 1;

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
        let out = bytemuck::cast_slice::<u8, f32>(&view).to_vec();
        drop(view);
        staging.unmap();
        Ok(out)
    }

    fn flush(&mut self) -> Result<()> {
        if self.recorded.is_empty() {
            return Ok(());
        }
        let encoder = self.encode_recorded();
        self.ctx.queue.submit([encoder.finish()]);
        self.stats.submits += 1;
        self.ctx.check_errors(self.last_op)
    }

    fn finish(&mut self) -> Result<()> {
        self.flush()?;
        self.wait()
    }

    fn fill(&mut self, t: &mut GpuTensor, value: f32) -> Result<()> {
        let params = kernels::FillParams {
            len: u32_dim("fill", t.len())?,
            value,
            _pad: [0; 2],
        };
        let groups = self.grid_1d(t.len())?;
        self.record(kernels::FILL, Constants::default(), params, &[t], groups)
    }

    fn matmul(
        &mut self,
        a: &GpuTensor,
        ta: bool,
        b: &GpuTensor,
        tb: bool,
        c: &mut GpuTensor,
    ) -> Result<()> {
        let (m, n, k) = check::matmul(a, ta, b, tb, c)?;
        let tiles = self.matmul_tiles;
        let max = self.ctx.limits().max_compute_workgroups_per_dimension as usize;
        let groups = [
            n.div_ceil(tiles.block_n() as usize),
            m.div_ceil(tiles.block_m() as usize),
        ];
        if groups.iter().any(|&g| g > max) {
            return Err(Error::Invalid {
                op: "matmul",
                detail: format!(
                    "a [{m}, {n}] output needs {groups:?} workgroups; this adapter allows {max} per dimension"
                ),
            });
        }
        let params = kernels::MatmulParams {
            m: u32_dim("matmul", m)?,
            n: u32_dim("matmul", n)?,
            k: u32_dim("matmul", k)?,
            _pad: 0,
        };
        self.record(
            tiles.variant.kernel(),
            tiles.constants(ta, tb),
            params,
            &[c, a, b],
            [groups[0] as u32, groups[1] as u32, 1],
        )
    }

    fn bias_add(&mut self, z: &mut GpuTensor, bias: &GpuTensor) -> Result<()> {
        check::row_vector("bias_add", z, bias)?;
        let params = kernels::BiasParams {
            rows: u32_dim("bias_add", z.rows)?,
            cols: u32_dim("bias_add", z.cols)?,
            _pad: [0; 2],
        };
        let groups = self.grid_1d(z.len())?;
        self.record(
            kernels::BIAS_ADD,
            Constants::default(),
            params,
            &[z, bias],
            groups,
        )
    }

    fn bias_grad(&mut self, dy: &GpuTensor, db: &mut GpuTensor) -> Result<()> {
        check::row_vector("bias_grad", dy, db)?;
        let params = kernels::BiasParams {
            rows: u32_dim("bias_grad", dy.rows)?,
            cols: u32_dim("bias_grad", dy.cols)?,
            _pad: [0; 2],
        };
        let groups = self.grid_1d(dy.cols)?;
        self.record(
            kernels::BIAS_GRAD,
            Constants::default(),
            params,
            &[db, dy],
            groups,
        )
    }

    fn activation(&mut self, act: Activation, z: &GpuTensor, a: &mut GpuTensor) -> Result<()> {
        check::same("activation", &[("z", z), ("a", &*a)])?;
        let params = act_params(act, z)?;
        let constants = Constants::new(&[("ACT", act.code() as f64)]);
        if act.is_row_wise() {
            let groups = self.grid_rows(z.rows)?;
            self.record(
                kernels::SOFTMAX_FORWARD,
                Constants::default(),
                params,
                &[a, z],
                groups,
            )
        } else {
            let groups = self.grid_1d(z.len())?;
            self.record(kernels::ACT_FORWARD, constants, params, &[a, z], groups)
        }
    }

    fn activation_backward(
        &mut self,
        act: Activation,
        z: &GpuTensor,
        a: &GpuTensor,
        da: &GpuTensor,
        dz: &mut GpuTensor,
    ) -> Result<()> {
        check::same(
            "activation_backward",
            &[("z", z), ("a", a), ("da", da), ("dz", &*dz)],
        )?;
        let params = act_params(act, z)?;
        let constants = Constants::new(&[("ACT", act.code() as f64)]);
        if act.is_row_wise() {
            let groups = self.grid_rows(z.rows)?;
            self.record(
                kernels::SOFTMAX_BACKWARD,
                Constants::default(),
                params,
                &[dz, z, a, da],
                groups,
            )
        } else {
            let groups = self.grid_1d(z.len())?;
            self.record(
                kernels::ACT_BACKWARD,
                constants,
                params,
                &[dz, z, a, da],
                groups,
            )
        }
    }

    fn loss(
        &mut self,
        loss: Loss,
        pred: &GpuTensor,
        target: &GpuTensor,
        grad: &mut GpuTensor,
        row_loss: &mut GpuTensor,
    ) -> Result<()> {
        check::loss(loss, pred, target, grad, row_loss)?;
        let params = kernels::LossParams {
            rows: u32_dim("loss", pred.rows)?,
            cols: u32_dim("loss", pred.cols)?,
            delta: loss.delta(),
            inv_rows: (1.0 / pred.rows as f64) as f32,
        };
        let groups = self.grid_rows(pred.rows)?;
        self.record(
            kernels::LOSS,
            Constants::new(&[("LOSS", loss.code() as f64)]),
            params,
            &[grad, row_loss, pred, target],
            groups,
        )
    }

    fn sum_into(&mut self, x: &GpuTensor, acc: &mut GpuTensor, slot: usize) -> Result<()> {
        check::slot("sum_into", acc, slot)?;
        let params = reduce_params(x, x.cols, slot, 0.0)?;
        self.record(
            kernels::SUM_INTO,
            Constants::default(),
            params,
            &[acc, x],
            [1, 1, 1],
        )
    }

    fn argmax_correct_into(
        &mut self,
        pred: &GpuTensor,
        target: &GpuTensor,
        acc: &mut GpuTensor,
        slot: usize,
    ) -> Result<()> {
        check::argmax("argmax_correct_into", pred, target)?;
        check::slot("argmax_correct_into", acc, slot)?;
        let params = reduce_params(pred, target.cols, slot, 0.0)?;
        self.reduce(
            kernels::ARGMAX_CORRECT,
            Constants::default(),
            params,
            acc,
            pred,
            target,
        )
    }

    fn threshold_correct_into(
        &mut self,
        pred: &GpuTensor,
        target: &GpuTensor,
        threshold: f32,
        acc: &mut GpuTensor,
        slot: usize,
    ) -> Result<()> {
        check::same(
            "threshold_correct_into",
            &[("pred", pred), ("target", target)],
        )?;
        check::slot("threshold_correct_into", acc, slot)?;
        let params = reduce_params(pred, target.cols, slot, threshold)?;
        self.reduce(
            kernels::THRESHOLD_CORRECT,
            Constants::default(),
            params,
            acc,
            pred,
            target,
        )
    }

    fn topk_correct_into(
        &mut self,
        pred: &GpuTensor,
        target: &GpuTensor,
        k: usize,
        acc: &mut GpuTensor,
        slot: usize,
    ) -> Result<()> {
        check::argmax("topk_correct_into", pred, target)?;
        check::slot("topk_correct_into", acc, slot)?;
        let mut params = reduce_params(pred, target.cols, slot, 0.0)?;
        params.k = u32::try_from(k).unwrap_or(u32::MAX);
        self.reduce(
            kernels::TOPK_CORRECT,
            Constants::default(),
            params,
            acc,
            pred,
            target,
        )
    }

    fn confusion_into(
        &mut self,
        pred: &GpuTensor,
        target: &GpuTensor,
        threshold: f32,
        acc: &mut GpuTensor,
        slot: usize,
    ) -> Result<()> {
        check::same("confusion_into", &[("pred", pred), ("target", target)])?;
        check::slots("confusion_into", acc, slot, 4)?;
        let params = reduce_params(pred, target.cols, slot, threshold)?;
        self.reduce(
            kernels::CONFUSION,
            Constants::default(),
            params,
            acc,
            pred,
            target,
        )
    }

    fn roc_histogram_into(
        &mut self,
        pred: &GpuTensor,
        target: &GpuTensor,
        acc: &mut GpuTensor,
        slot: usize,
    ) -> Result<()> {
        check::same("roc_histogram_into", &[("pred", pred), ("target", target)])?;
        check::slots("roc_histogram_into", acc, slot, ROC_HISTOGRAM_SLOTS)?;
        let params = reduce_params(pred, target.cols, slot, 0.0)?;
        self.reduce(
            kernels::ROC_HISTOGRAM,
            Constants::default(),
            params,
            acc,
            pred,
            target,
        )
    }

    fn error_sum_into(
        &mut self,
        kind: PointError,
        pred: &GpuTensor,
        target: &GpuTensor,
        acc: &mut GpuTensor,
        slot: usize,
    ) -> Result<()> {
        check::same("error_sum_into", &[("pred", pred), ("target", target)])?;
        check::slot("error_sum_into", acc, slot)?;
        let params = reduce_params(pred, target.cols, slot, 0.0)?;
        let constants = Constants::new(&[("ERR", kind.code() as f64)]);
        self.reduce(kernels::ERROR_SUM, constants, params, acc, pred, target)
    }

    fn optimizer_step(
        &mut self,
        opt: Optimizer,
        t: u64,
        param: &mut GpuTensor,
        grad: &GpuTensor,
        state: &mut [GpuTensor],
        guard: Option<(&GpuTensor, usize)>,
    ) -> Result<()> {
        check::optimizer(opt, t, param, grad, state, guard)?;
        // A second handle on the same buffer (same id, so the same cached bind group).
        let fallback = GpuTensor {
            buffer: self.finite_guard.buffer.clone(),
            ..self.finite_guard
        };
        let (guard, guard_slot) = guard.unwrap_or((&fallback, 0));
        let mut params = kernels::OptimParams {
            len: u32_dim("optimizer_step", param.len())?,
            lr: opt.lr(),
            beta1: 0.0,
            beta2: 0.0,
            eps: 0.0,
            weight_decay: 0.0,
            bias_correction1: 1.0,
            bias_correction2: 1.0,
            guard_slot: u32_dim("optimizer_step", guard_slot)?,
        };
        let groups = self.grid_1d(param.len())?;
        match (opt, state) {
            (Optimizer::Sgd { .. }, []) => self.record(
                kernels::OPT_SGD,
                Constants::default(),
                params,
                &[param, guard, grad],
                groups,
            ),
            (
                Optimizer::Momentum {
                    momentum, nesterov, ..
                },
                [v],
            ) => {
                params.beta1 = momentum;
                let constants = Constants::new(&[("NESTEROV", nesterov as u8 as f64)]);
                self.record(
                    kernels::OPT_MOMENTUM,
                    constants,
                    params,
                    &[param, guard, grad, v],
                    groups,
                )
            }
            (
                Optimizer::Adam {
                    beta1,
                    beta2,
                    eps,
                    weight_decay,
                    ..
                },
                [m, v],
            ) => {
                let (bc1, bc2) = Optimizer::adam_bias_corrections(beta1, beta2, t);
                params.beta1 = beta1;
                params.beta2 = beta2;
                params.eps = eps;
                params.weight_decay = weight_decay;
                params.bias_correction1 = bc1;
                params.bias_correction2 = bc2;
                self.record(
                    kernels::OPT_ADAM,
                    Constants::default(),
                    params,
                    &[param, guard, grad, m, v],
                    groups,
                )
            }
            _ => unreachable!("check::optimizer verified the state count"),
        }
    }
}

impl GpuBackend {
    /// Records a reduction: one workgroup over `pred` and `target`, adding into `acc`.
    fn reduce(
        &mut self,
        kernel: Kernel,
        constants: Constants,
        params: kernels::ReduceParams,
        acc: &mut GpuTensor,
        pred: &GpuTensor,
        target: &GpuTensor,
    ) -> Result<()> {
        self.record(kernel, constants, params, &[acc, pred, target], [1, 1, 1])
    }

    /// Blocks until the device has finished everything submitted, then reports any error
    /// wgpu raised for it.
    fn wait(&mut self) -> Result<()> {
        let polled = self.ctx.device.poll(wgpu::PollType::wait_indefinitely());
        self.ctx.check_errors(self.last_op)?;
        polled
            .map(|_| ())
            .map_err(|e| Error::DeviceLost(e.to_string()))
    }

    /// One encoder holding every recorded dispatch in one compute pass, with the params arena
    /// uploaded ahead of it. Leaves the recording empty.
    fn encode_recorded(&mut self) -> wgpu::CommandEncoder {
        if !self.arena.is_empty() {
            self.ctx
                .queue
                .write_buffer(&self.arena_buffer, 0, &self.arena);
            self.arena.clear();
        }
        let mut encoder = self
            .ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("wgtrain step"),
            });
        if !self.recorded.is_empty() {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("wgtrain"),
                timestamp_writes: None,
            });
            for d in self.recorded.drain(..) {
                pass.set_pipeline(&d.pipeline);
                pass.set_bind_group(0, &d.bind_group, &[d.params_offset]);
                pass.dispatch_workgroups(d.groups[0], d.groups[1], d.groups[2]);
            }
        }
        encoder
    }
}

fn act_params(act: Activation, z: &GpuTensor) -> Result<kernels::ActParams> {
    Ok(kernels::ActParams {
        rows: u32_dim("activation", z.rows)?,
        cols: u32_dim("activation", z.cols)?,
        alpha: act.alpha(),
        _pad: 0,
    })
}

fn reduce_params(
    x: &GpuTensor,
    target_cols: usize,
    slot: usize,
    threshold: f32,
) -> Result<kernels::ReduceParams> {
    Ok(kernels::ReduceParams {
        rows: u32_dim("reduce", x.rows)?,
        cols: u32_dim("reduce", x.cols)?,
        slot: u32_dim("reduce", slot)?,
        target_cols: u32_dim("reduce", target_cols)?,
        threshold,
        k: 0,
        _pad: [0; 2],
    })
}
