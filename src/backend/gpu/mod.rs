//! The wgpu backend. Ops record dispatches; [`GpuBackend::flush`] replays them into one
//! command encoder and one compute pass and submits once; [`Backend::read`] is the only call
//! that waits.
//!
//! What makes a step cheap after the first:
//! - pipelines are built once per (kernel, override constants) in the shared [`GpuContext`];
//! - each dispatch's `Params` go into one host-side arena, copied in once per submit from a
//!   staging belt (as every write is: no staging buffer made per copy) and bound with a
//!   dynamic offset, so no uniform buffer is ever created per op;
//! - bind groups are cached by (layout, buffers), so a loop that reuses its tensors creates
//!   none after its first iteration;
//! - readback goes through staging buffers that only grow, every tensor of a read in one
//!   copy and submit, waited for at once or started and ended apart (readback.rs);
//! - a step recorded once as a plan ([`GpuPlan`], `plan.rs`) is replayed with all of that
//!   resolved: a few patched parameters, one copy, one pass, one submit;
//! - at most two submissions are in flight: the host waits for the oldest before a third.
//!
//! [`GpuStats`] counts buffers, bind groups, dispatches, submits, replays and bytes sent, so
//! tests can prove it (the staging belt's chunks are wgpu's and not counted).

mod context;
mod conv;
mod conv_gemm;
pub(crate) mod kernels;
mod layers;
mod ops;
mod optim;
mod plan;
mod products;
mod profile;
mod readback;
mod reduce;
#[cfg(test)]
mod spirv;
mod tiles;
mod tune;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

pub use context::{AdapterDescription, GpuContext};
use conv_gemm::ConvKey;
pub use conv_gemm::ConvVariant;
use kernels::{Access, Constants, Kernel, MAX_BINDINGS, PARAMS_SIZE};
pub use kernels::{MatmulTiles, MatmulVariant};
pub use plan::GpuPlan;
pub use profile::KernelTime;
use profile::Profiler;
pub(crate) use tune::TuneKey;

use super::{check, Backend, Tensor};
use crate::error::{Error, Result};

/// A tensor in a GPU storage buffer: a whole buffer, or one part of a group's buffer
/// ([`Backend::zeros_group`]).
#[derive(Debug)]
pub struct GpuTensor {
    buffer: wgpu::Buffer,
    /// Where the tensor starts in `buffer`, in bytes (0 unless it is part of a group).
    offset: u64,
    id: u64,
    rows: usize,
    cols: usize,
    group: Option<Group>,
}

/// A tensor's place in a group made by one `zeros_group` call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Group {
    /// The id the whole buffer is bound under.
    id: u64,
    /// This tensor's position in the group.
    index: usize,
    /// Tensors in the group.
    count: usize,
    /// The whole buffer's length in f32, a multiple of 4.
    len: usize,
}

impl GpuTensor {
    /// A second handle on the same tensor (same id, so the same cached bind groups).
    fn handle(&self) -> GpuTensor {
        GpuTensor {
            buffer: self.buffer.clone(),
            ..*self
        }
    }

    fn bytes(&self) -> u64 {
        self.len() as u64 * 4
    }

    fn binding(&self) -> wgpu::BindingResource<'_> {
        wgpu::BindingResource::Buffer(wgpu::BufferBinding {
            buffer: &self.buffer,
            offset: self.offset,
            size: wgpu::BufferSize::new(self.bytes()),
        })
    }

    /// The whole buffer of the group that `parts` are, in order, exactly the members of: one
    /// tensor to bind for an op over all of them. `None` if they are not such a group.
    fn whole_group<'a>(parts: impl ExactSizeIterator<Item = &'a GpuTensor>) -> Option<GpuTensor> {
        let count = parts.len();
        let mut whole = None;
        for (i, t) in parts.enumerate() {
            let g = t.group?;
            if g.index != i
                || g.count != count
                || whole.as_ref().is_some_and(|w: &GpuTensor| w.id != g.id)
            {
                return None;
            }
            whole.get_or_insert_with(|| GpuTensor {
                buffer: t.buffer.clone(),
                offset: 0,
                id: g.id,
                rows: 1,
                cols: g.len,
                group: None,
            });
        }
        whole
    }
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
    /// Dispatches run: recorded, and replayed in plans.
    pub dispatches: u64,
    /// Queue submissions.
    pub submits: u64,
    /// Step plans replayed ([`Backend::replay`]).
    pub replays: u64,
    /// The most submissions that were in flight at once (not yet known to be done); the
    /// host waits for the oldest before it would exceed 2.
    pub max_in_flight: u64,
    /// Matmul shape classes this backend autotuned.
    pub tunings: u64,
    /// Bytes of tensor data sent from the host: [`Backend::write`] and [`Backend::upload`]
    /// (a dataset kept on the device, an epoch's order). A training step after the first
    /// sends none.
    pub data_bytes_written: u64,
    /// Bytes of dispatch parameters sent: each recording's, each plan's once, and each
    /// replay's patched ones.
    pub params_bytes_written: u64,
    /// Nanoseconds the host spent blocked on the device: read-backs, the in-flight bound,
    /// profiling.
    pub wait_ns: u64,
    /// Nanoseconds spent inside `queue.submit`: wgpu's checks and the driver's submit on a
    /// real GPU; on lavapipe, whose submit runs the shaders before it returns, mostly the
    /// device's work.
    pub submit_ns: u64,
}

#[derive(Debug)]
struct Dispatch {
    label: &'static str,
    pipeline: wgpu::ComputePipeline,
    bind_group: wgpu::BindGroup,
    params_offset: u32,
    groups: [u32; 3],
}

/// Dispatches the arena holds before a flush is forced (one under wgpu's 4096 queries per
/// query set, so the profiler can time every one).
const ARENA_DISPATCHES: usize = 4095;

/// Bind groups cached before the cache is cleared (it holds dropped tensors' buffers alive).
const BIND_GROUP_CACHE_MAX: usize = 4096;

static NEXT_BACKEND_ID: AtomicU64 = AtomicU64::new(1);

/// The wgpu implementation of [`Backend`].
pub struct GpuBackend {
    ctx: Arc<GpuContext>,
    recorded: Vec<Dispatch>,
    /// Params of the recorded dispatches, each at a multiple of `params_stride`.
    arena: Vec<u8>,
    /// The recording's slots, then [`plan::PLAN_SLOTS`] for plans.
    arena_buffer: wgpu::Buffer,
    /// Which backend made a plan.
    id: u64,
    /// The plan being recorded.
    capture: Option<plan::Capture>,
    /// The plan region's next free slot, and how many times it was reclaimed.
    plan_next_slot: usize,
    plan_generation: u64,
    /// Staging for the patched parameters of replays and for every write.
    belt: wgpu::util::StagingBelt,
    /// The copies of writes since the last submit, which runs them first.
    uploads: Option<wgpu::CommandEncoder>,
    /// Submissions not yet known to be done, oldest first.
    in_flight: VecDeque<wgpu::SubmissionIndex>,
    params_stride: usize,
    /// Keyed by layout and the bound tensors' ids (0 for unused slots; ids start at 1).
    bind_groups: HashMap<(&'static [Access], [u64; MAX_BINDINGS]), wgpu::BindGroup>,
    readbacks: readback::Readbacks,
    stats: GpuStats,
    last_op: &'static str,
    matmul_tiles: MatmulTiles,
    /// Whether matmul tilings are measured per shape class (off once `set_matmul_tiles` fixes
    /// one).
    autotune: bool,
    /// The tiling each product shape (M, N, K, transposes) resolved to; cleared when the
    /// tiling or autotuning is changed.
    resolved_tiles: HashMap<(usize, usize, usize, bool, bool), MatmulTiles>,
    /// `[1, 4]` buffers bound, unused, as the accumulator and the outputs of an unguarded
    /// optimizer step (one layout serves both kinds).
    unguarded: [GpuTensor; 4],
    profiler: Option<Profiler>,
    /// Split-K's slices of a product (grown to the largest asked for).
    split_scratch: Option<GpuTensor>,
    /// The convolutions' scratch buffers by use and shape: v2's windows as rows
    /// `[N·Ho·Wo, kh·kw·C]`, v3 and v4's split parts of a kernel gradient.
    conv_scratch: HashMap<(&'static str, usize, usize), GpuTensor>,
    /// The convolution variant fixed by [`GpuBackend::set_conv_variant`] (`None`: autotuned).
    conv_variant: Option<ConvVariant>,
    /// The variant each convolution product's shape resolved to.
    conv_tuned: HashMap<ConvKey, ConvVariant>,
    /// The partial sums of two-pass reductions.
    partials: Option<GpuTensor>,
    /// Whether reductions over a batch's rows take many threads with barriers (see
    /// [`GpuBackend::set_parallel_reductions`]).
    parallel_reductions: bool,
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

/// Columns from which a row-wise kernel (softmax, the losses) takes a workgroup per row: one
/// thread looping over that many is slower than the workgroup's tree; below it, most of the
/// workgroup would idle.
const ROW_WIDE: usize = 128;

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
            size: (params_stride * (ARENA_DISPATCHES + plan::PLAN_SLOTS)) as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let unguarded = std::array::from_fn(|_| storage_tensor(&ctx.device, 1, 4, false));
        let ctx_device_type = ctx.adapter().device_type.clone();
        // One chunk holds a replay's patched parameters many times over.
        let belt = wgpu::util::StagingBelt::new(ctx.device.clone(), 64 * params_stride as u64);
        let mut backend = GpuBackend {
            ctx,
            recorded: Vec::new(),
            arena: Vec::new(),
            arena_buffer,
            id: NEXT_BACKEND_ID.fetch_add(1, Ordering::Relaxed),
            capture: None,
            plan_next_slot: 0,
            plan_generation: 0,
            belt,
            uploads: None,
            in_flight: VecDeque::new(),
            params_stride,
            bind_groups: HashMap::new(),
            readbacks: readback::Readbacks::default(),
            stats: GpuStats {
                buffers_created: 5,
                ..GpuStats::default()
            },
            last_op: "none",
            matmul_tiles: MatmulTiles::for_device_type(&ctx_device_type),
            autotune: true,
            resolved_tiles: HashMap::new(),
            unguarded,
            profiler: None,
            split_scratch: None,
            conv_scratch: HashMap::new(),
            conv_variant: None,
            conv_tuned: HashMap::new(),
            partials: None,
            parallel_reductions: ctx_device_type != "Cpu",
        };
        if backend.matmul_tiles == MatmulTiles::VEC4 && backend.subgroup_matmul_works() {
            backend.matmul_tiles = MatmulTiles::SUBGROUP16;
        }
        backend
    }

    /// The shared context (adapter, limits).
    pub fn context(&self) -> &Arc<GpuContext> {
        &self.ctx
    }

    /// The matmul tiling in use.
    pub fn matmul_tiles(&self) -> MatmulTiles {
        self.matmul_tiles
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
        self.record_labeled(kernel, kernel.entry, constants, params, buffers, groups)
    }

    /// [`GpuBackend::record`] under another name in the profile.
    fn record_labeled<P: bytemuck::Pod>(
        &mut self,
        kernel: Kernel,
        label: &'static str,
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
                        resource: t.binding(),
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
            label,
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

    /// One workgroup per item (a class, a column).
    fn grid_each(&self, n: usize) -> Result<[u32; 3]> {
        grid(n, 1, self.ctx.limits().max_compute_workgroups_per_dimension)
    }

    /// Chooses how reductions over a batch's rows run: the bias gradient as a column
    /// reduction over blocks of rows, and softmax and the losses with a workgroup per row from
    /// 128 columns (on: the default on real GPUs, where one thread per column or row
    /// leaves most of the device idle), or a thread per column or row with no barrier (off:
    /// the default on software adapters such as lavapipe, where each barrier costs a context
    /// switch and the threaded version is slower). The results agree within rounding.
    pub fn set_parallel_reductions(&mut self, on: bool) {
        self.parallel_reductions = on;
        // Plans keep the kernels they were recorded with.
        self.plan_generation += 1;
    }

    /// A row-wise kernel for `x`'s rows: one thread per row (`narrow`), or past
    /// [`ROW_WIDE`] columns a workgroup per row (`wide`, with parallel reductions on), and
    /// its grid.
    fn row_kernel(
        &self,
        x: &GpuTensor,
        narrow: Kernel,
        wide: Kernel,
    ) -> Result<(Kernel, [u32; 3])> {
        if self.parallel_reductions && x.cols >= ROW_WIDE {
            Ok((wide, self.grid_each(x.rows)?))
        } else {
            Ok((narrow, self.grid_rows(x.rows)?))
        }
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
        offset: 0,
        id: NEXT_TENSOR_ID.fetch_add(1, Ordering::Relaxed),
        rows,
        cols,
        group: None,
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
        let started = std::time::Instant::now();
        let polled = self.ctx.device.poll(wgpu::PollType::wait_indefinitely());
        self.stats.wait_ns += started.elapsed().as_nanos() as u64;
        self.in_flight.clear();
        self.ctx.check_errors(self.last_op)?;
        polled
            .map(|_| ())
            .map_err(|e| Error::DeviceLost(e.to_string()))
    }

    /// One encoder holding every recorded dispatch, then those of `plan` (its patched
    /// parameters copied in first), in one compute pass, with the params arena uploaded ahead
    /// of it. Leaves the recording empty; a plan being recorded cannot be kept after it.
    fn encode(&mut self, plan: Option<&GpuPlan>) -> wgpu::CommandEncoder {
        if !self.recorded.is_empty() {
            self.break_capture("a submit inside the step");
        }
        let mut encoder = self
            .ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("wgtrain step"),
            });
        if let Some(size) = wgpu::BufferSize::new(self.arena.len() as u64) {
            // Through the staging belt, at the head of this encoder: no staging buffer made
            // per submit.
            self.belt
                .write_buffer(&mut encoder, &self.arena_buffer, 0, size)
                .copy_from_slice(&self.arena);
            self.stats.params_bytes_written += self.arena.len() as u64;
            self.arena.clear();
        }
        if let Some(plan) = plan {
            self.encode_patches(&mut encoder, plan);
        }
        let planned = plan.map_or(&[][..], |p| p.dispatches_slice());
        if !self.recorded.is_empty() || !planned.is_empty() {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("wgtrain"),
                timestamp_writes: None,
            });
            if let Some(p) = &mut self.profiler {
                pass.write_timestamp(&p.queries, 0);
                p.pending.clear();
            }
            let recorded = std::mem::take(&mut self.recorded);
            for d in recorded.iter().chain(planned) {
                pass.set_pipeline(&d.pipeline);
                pass.set_bind_group(0, &d.bind_group, &[d.params_offset]);
                pass.dispatch_workgroups(d.groups[0], d.groups[1], d.groups[2]);
                if let Some(p) = &mut self.profiler {
                    p.pending.push(d.label);
                    pass.write_timestamp(&p.queries, p.pending.len() as u32);
                }
            }
            // The recording's vector is kept, for its capacity.
            self.recorded = recorded;
            self.recorded.clear();
        }
        if let Some(p) = &self.profiler {
            if !p.pending.is_empty() {
                let n = p.pending.len() as u32 + 1;
                encoder.resolve_query_set(&p.queries, 0..n, &p.resolve, 0);
                encoder.copy_buffer_to_buffer(&p.resolve, 0, &p.readback, 0, Some(8 * n as u64));
            }
        }
        encoder
    }
}
