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

use super::{
    check, Activation, Backend, Guard, Loss, Optimizer, PointError, Tensor, ROC_HISTOGRAM_SLOTS,
};
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
    /// Dispatches recorded.
    pub dispatches: u64,
    /// Queue submissions.
    pub submits: u64,
    /// Matmul shape classes this backend autotuned.
    pub tunings: u64,
}

struct Dispatch {
    label: &'static str,
    pipeline: wgpu::ComputePipeline,
    bind_group: wgpu::BindGroup,
    params_offset: u32,
    groups: [u32; 3],
}

/// Timed runs of each candidate when autotuning a matmul.
const TUNE_ROUNDS: usize = 3;

/// Dispatches the arena holds before a flush is forced (one under wgpu's 4096 queries per
/// query set, so the profiler can time every one).
const ARENA_DISPATCHES: usize = 4095;

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

/// A matmul's shape class for autotuning: each dimension rounded up to a power of two, and the
/// transposes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct TuneKey([usize; 3], bool, bool);

impl std::fmt::Display for TuneKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let [m, n, k] = self.0;
        let t = |x: bool| if x { "ᵀ" } else { "" };
        write!(f, "{m}×{n}×{k} A{}·B{}", t(self.1), t(self.2))
    }
}

impl TuneKey {
    /// `"m n k ta tb"`, the disk cache's form.
    fn encode(&self) -> String {
        let [m, n, k] = self.0;
        format!("{m} {n} {k} {} {}", self.1 as u8, self.2 as u8)
    }

    fn decode(s: &str) -> Option<TuneKey> {
        let v: Vec<usize> = s
            .split(' ')
            .map(|x| x.parse().ok())
            .collect::<Option<_>>()?;
        match v[..] {
            [m, n, k, ta, tb] if ta < 2 && tb < 2 => Some(TuneKey([m, n, k], ta == 1, tb == 1)),
            _ => None,
        }
    }

    fn new(m: usize, n: usize, k: usize, ta: bool, tb: bool) -> TuneKey {
        TuneKey(
            [
                m.next_power_of_two(),
                n.next_power_of_two(),
                k.next_power_of_two(),
            ],
            ta,
            tb,
        )
    }
}

/// Timestamp queries around every dispatch of a submit, read back after it.
struct Profiler {
    queries: wgpu::QuerySet,
    resolve: wgpu::Buffer,
    readback: wgpu::Buffer,
    period_ns: f64,
    /// Labels of the dispatches in the submitted, not yet read, encoder.
    pending: Vec<&'static str>,
    totals: Vec<KernelTime>,
}
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
        let unguarded = std::array::from_fn(|_| storage_tensor(&ctx.device, 1, 4, false));
        let ctx_device_type = ctx.adapter().device_type.clone();
        let mut backend = GpuBackend {
            ctx,
            recorded: Vec::new(),
            arena: Vec::new(),
            arena_buffer,
            params_stride,
            bind_groups: HashMap::new(),
            staging: None,
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
        };
        if backend.matmul_tiles == MatmulTiles::VEC4 && backend.subgroup_matmul_works() {
            backend.matmul_tiles = MatmulTiles::SUBGROUP16;
        }
        backend
    }

    /// Whether the subgroup matmuls (v4, v5) can run here and give the reference's products:
    /// subgroups exactly 8 wide, and v5's products checked against `cpu::matmul_forward`.
    /// Checked once per context.
    fn subgroup_matmul_works(&mut self) -> bool {
        if self.ctx.adapter().subgroup_sizes != Some((8, 8)) {
            return false;
        }
        if let Some(&ok) = self.ctx.subgroup_matmul_ok.get() {
            return ok;
        }
        let saved = (self.matmul_tiles, self.autotune);
        (self.matmul_tiles, self.autotune) = (MatmulTiles::SUBGROUP16, false);
        let ok = self.check_matmul_against_reference().unwrap_or(false);
        (self.matmul_tiles, self.autotune) = saved;
        self.resolved_tiles.clear();
        // A failed build leaves its error in the sink; it is not the caller's.
        let _ = self.ctx.check_errors("matmul v5 check");
        *self.ctx.subgroup_matmul_ok.get_or_init(|| ok)
    }

    /// Runs products of an awkward shape with the current tiling and compares them with the
    /// reference: A plain and transposed, the two ways the subgroup kernels share A's loads
    /// (B's transpose is read per invocation, as in v3). The pipelines it builds are the
    /// first autotuning candidates', so on a software adapter's first step (where lavapipe
    /// compiles each pipeline at its first dispatch, ~0.2 s apiece) the check costs little.
    fn check_matmul_against_reference(&mut self) -> Result<bool> {
        let (m, n, k) = (76, 72, 20);
        let a: Vec<f32> = (0..m * k)
            .map(|i| ((i * 7919) % 61) as f32 / 61.0 - 0.5)
            .collect();
        let b: Vec<f32> = (0..k * n)
            .map(|i| ((i * 104_729) % 53) as f32 / 53.0 - 0.5)
            .collect();
        for (ta, tb) in [(false, false), (true, false)] {
            let at = if ta {
                self.upload(k, m, &a)?
            } else {
                self.upload(m, k, &a)?
            };
            let bt = if tb {
                self.upload(n, k, &b)?
            } else {
                self.upload(k, n, &b)?
            };
            let mut ct = self.zeros(m, n)?;
            self.matmul(&at, ta, &bt, tb, &mut ct)?;
            let got = self.read(&ct)?;
            let mut want = vec![0.0; m * n];
            super::cpu::matmul_forward(&a, ta, &b, tb, &mut want, m, n, k);
            if got.iter().zip(&want).any(|(g, w)| (g - w).abs() > 1e-4) {
                return Ok(false);
            }
        }
        Ok(true)
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
        } else if tiles.variant.needs_subgroups()
            && self.ctx.adapter().subgroup_sizes != Some((8, 8))
        {
            Some(format!(
                "v4 and v5 need subgroups of exactly 8 invocations; this adapter has {}",
                match self.ctx.adapter().subgroup_sizes {
                    Some((lo, hi)) => format!("{lo} to {hi}"),
                    None => "no subgroup operations".into(),
                }
            ))
        } else if tiles.variant.needs_subgroups() && tiles.wg_x != 8 {
            Some("the wg_x of v4 and v5 is the subgroup width and must be 8".into())
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
                self.autotune = false;
                self.resolved_tiles.clear();
                Ok(())
            }
        }
    }

    /// Turns per-shape autotuning of the matmul tiling on or off (on by default; off after
    /// [`GpuBackend::set_matmul_tiles`]). Off, every product uses the current tiling.
    pub fn set_autotune(&mut self, on: bool) {
        self.autotune = on;
        self.resolved_tiles.clear();
    }

    /// Counters of allocations and work so far.
    pub fn stats(&self) -> GpuStats {
        self.stats
    }

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
    fn collect_profile(&mut self) -> Result<()> {
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

impl Backend for GpuBackend {
    type Tensor = GpuTensor;

    fn describe(&self) -> String {
        self.ctx.adapter().to_string()
    }

    fn memory_limits(&self) -> super::MemoryLimits {
        let l = self.ctx.limits();
        let (limit, name) = if l.max_storage_buffer_binding_size <= l.max_buffer_size {
            (
                l.max_storage_buffer_binding_size,
                "max_storage_buffer_binding_size",
            )
        } else {
            (l.max_buffer_size, "max_buffer_size")
        };
        super::MemoryLimits {
            max_tensor_bytes: Some(limit),
            max_tensor_limit: name,
            // A software adapter's buffers are host memory.
            in_host_memory: self.ctx.adapter().device_type == "Cpu",
        }
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
            .write_buffer(&t.buffer, t.offset, bytemuck::cast_slice(data));
        Ok(())
    }

    fn read(&mut self, t: &GpuTensor) -> Result<Vec<f32>> {
        let bytes = t.bytes();
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
        encoder.copy_buffer_to_buffer(&t.buffer, t.offset, &staging, 0, Some(bytes));
        self.ctx.queue.submit([encoder.finish()]);
        self.stats.submits += 1;

        let (tx, rx) = std::sync::mpsc::channel();
        staging.map_async(wgpu::MapMode::Read, 0..bytes, move |r| {
            let _ = tx.send(r);
        });
        self.wait()?;
        self.collect_profile()?;
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
        self.ctx.check_errors(self.last_op)?;
        self.collect_profile()
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
        let tiles = self.tiles_for(m, n, k, ta, tb)?;
        self.record_matmul(tiles, a, ta, b, tb, c)
    }

    fn dense_forward(
        &mut self,
        x: &GpuTensor,
        w: &GpuTensor,
        bias: &GpuTensor,
        act: Activation,
        z: &mut GpuTensor,
        a: &mut GpuTensor,
    ) -> Result<()> {
        let (m, n, k) = check::matmul(x, false, w, false, z)?;
        check::row_vector("dense_forward", z, bias)?;
        check::same("dense_forward", &[("z", &*z), ("a", &*a)])?;
        let tiles = self.tiles_for(m, n, k, false, false)?;
        if act.is_row_wise() {
            // Softmax needs whole rows: its own kernel after the product.
            self.record_matmul(tiles, x, false, w, false, z)?;
            self.bias_add(z, bias)?;
            return self.activation(act, z, a);
        }
        let params = kernels::MatmulParams {
            m: u32_dim("matmul", m)?,
            n: u32_dim("matmul", n)?,
            k: u32_dim("matmul", k)?,
            alpha: act.alpha(),
        };
        let groups = self.matmul_grid(tiles, m, n)?;
        self.record_labeled(
            tiles.variant.bias_act_kernel(),
            tiles.variant.bias_act_label(),
            tiles.bias_act_constants(act.code()),
            params,
            &[z, x, w, bias, a],
            groups,
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

    fn zeros_group(&mut self, shapes: &[[usize; 2]]) -> Result<Vec<GpuTensor>> {
        // Each part starts at the storage-offset alignment (and on a vec4), so each can be
        // bound on its own; the gaps stay zero.
        let align = (self.ctx.limits().min_storage_buffer_offset_alignment as usize).max(16) / 4;
        let mut starts = Vec::with_capacity(shapes.len());
        let mut end = 0usize;
        for &[rows, cols] in shapes {
            check::new_tensor(rows, cols, None)?;
            let start = end.next_multiple_of(align);
            starts.push(start);
            end = start + rows * cols;
        }
        if shapes.is_empty() {
            return Ok(Vec::new());
        }
        let len = end.next_multiple_of(4);
        let limits = self.ctx.limits();
        let bind_limit = limits
            .max_storage_buffer_binding_size
            .min(limits.max_buffer_size);
        if 4 * len as u64 > bind_limit {
            // Too big to bind as one buffer: separate tensors, stepped one by one.
            return shapes.iter().map(|&[r, c]| self.zeros(r, c)).collect();
        }
        let whole = self.new_tensor(1, len, None)?;
        Ok(shapes
            .iter()
            .zip(starts)
            .enumerate()
            .map(|(index, (&[rows, cols], start))| GpuTensor {
                buffer: whole.buffer.clone(),
                offset: start as u64 * 4,
                id: NEXT_TENSOR_ID.fetch_add(1, Ordering::Relaxed),
                rows,
                cols,
                group: Some(Group {
                    id: whole.id,
                    index,
                    count: shapes.len(),
                    len,
                }),
            })
            .collect())
    }

    fn optimizer_step_all(
        &mut self,
        opt: Optimizer,
        t: u64,
        params: &mut [GpuTensor],
        grads: &[GpuTensor],
        state: &mut [Vec<GpuTensor>],
        mut guard: Option<Guard<'_, GpuTensor>>,
    ) -> Result<()> {
        check::optimizer_all(params.len(), grads.len(), state.len(), guard.as_ref())?;
        for (j, ((p, g), s)) in params.iter().zip(grads).zip(state.iter()).enumerate() {
            let part = guard.as_mut().map(|g| g.part(j));
            check::optimizer(opt, t, p, g, s, part.as_ref())?;
        }
        // One dispatch over the whole buffers when params, grads, each kind of state (and
        // each kind of output) are whole groups with the same layout; otherwise one step per
        // tensor.
        let kinds = opt.state_tensors();
        let whole = GpuTensor::whole_group(params.iter()).and_then(|p| {
            let g = GpuTensor::whole_group(grads.iter())?;
            let s = (0..kinds)
                .map(|k| GpuTensor::whole_group(state.iter().map(|s| &s[k])))
                .collect::<Option<Vec<_>>>()?;
            let b = match &guard {
                Some(guard) => {
                    let mut outs = vec![GpuTensor::whole_group(guard.params_out.iter())?];
                    for k in 0..kinds {
                        outs.push(GpuTensor::whole_group(
                            guard.state_out.iter().map(|s| &s[k]),
                        )?);
                    }
                    Some(outs)
                }
                None => None,
            };
            let lens = std::iter::once(g.len())
                .chain(s.iter().map(Tensor::len))
                .chain(b.iter().flatten().map(Tensor::len));
            let same = lens.into_iter().all(|l| l == p.len());
            same.then_some((p, g, s, b))
        });
        match whole {
            Some((mut p, g, mut s, b)) => {
                let guard = guard.map(|guard| (guard.acc, guard.slots));
                let whole_guard = guard.zip(b.as_deref());
                self.optimizer_dispatch(opt, t, &mut p, &g, &mut s, whole_guard, true)
            }
            None => {
                for (j, ((p, g), s)) in params.iter_mut().zip(grads).zip(state).enumerate() {
                    let part = guard.as_mut().map(|g| g.part(j));
                    self.optimizer_step(opt, t, p, g, s, part)?;
                }
                Ok(())
            }
        }
    }

    fn optimizer_step(
        &mut self,
        opt: Optimizer,
        t: u64,
        param: &mut GpuTensor,
        grad: &GpuTensor,
        state: &mut [GpuTensor],
        guard: Option<Guard<'_, GpuTensor>>,
    ) -> Result<()> {
        check::optimizer(opt, t, param, grad, state, guard.as_ref())?;
        let outs: Option<Vec<GpuTensor>> = guard.as_ref().map(|g| {
            std::iter::once(&g.params_out[0])
                .chain(&g.state_out[0])
                .map(GpuTensor::handle)
                .collect()
        });
        let guard = guard.map(|g| (g.acc, g.slots)).zip(outs.as_deref());
        self.optimizer_dispatch(opt, t, param, grad, state, guard, false)
    }
}

impl GpuBackend {
    /// The tiling for a product of this shape: the one `set_matmul_tiles` fixed, or, with
    /// autotuning on (the default), the fastest candidate for its shape class, measured on
    /// first use and cached for the process. Shapes the chosen variant cannot run go to v2.
    /// Resolved once per exact shape, so a training step's products cost one lookup each.
    fn tiles_for(
        &mut self,
        m: usize,
        n: usize,
        k: usize,
        ta: bool,
        tb: bool,
    ) -> Result<MatmulTiles> {
        let shape = (m, n, k, ta, tb);
        if let Some(&t) = self.resolved_tiles.get(&shape) {
            return Ok(t);
        }
        let t = self.resolve_tiles(m, n, k, ta, tb)?;
        self.resolved_tiles.insert(shape, t);
        Ok(t)
    }

    fn resolve_tiles(
        &mut self,
        m: usize,
        n: usize,
        k: usize,
        ta: bool,
        tb: bool,
    ) -> Result<MatmulTiles> {
        let fixed = self.matmul_tiles;
        let fallback = |t: MatmulTiles| {
            if t.runs(m, n, k, ta, tb) {
                t
            } else {
                MatmulTiles::DIRECT
            }
        };
        if !self.autotune {
            return Ok(fallback(fixed));
        }
        let candidates: Vec<MatmulTiles> = self
            .tune_candidates()
            .into_iter()
            .filter(|t| t.runs(m, n, k, ta, tb))
            .collect();
        if candidates.len() < 2 {
            return Ok(candidates
                .first()
                .copied()
                .unwrap_or_else(|| fallback(fixed)));
        }
        let key = TuneKey::new(m, n, k, ta, tb);
        let known = self
            .ctx
            .tuned
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
            .copied();
        // A tiling from the disk cache counts only if it is still a candidate here.
        if let Some(t) = known.filter(|t| candidates.contains(t)) {
            return Ok(t);
        }
        let best = self.tune(m, n, k, ta, tb, &candidates)?;
        self.ctx
            .tuned
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, best);
        self.ctx.save_tuning();
        self.stats.tunings += 1;
        Ok(best)
    }

    /// The tilings worth timing here, the default first.
    fn tune_candidates(&self) -> Vec<MatmulTiles> {
        let base = self.matmul_tiles;
        let with = |wg_x, wg_y, bk| MatmulTiles {
            wg_x,
            wg_y,
            bk,
            ..base
        };
        match base.variant {
            // v5 beat v4 on every MLP shape timed (docs/PERFORMANCE.md); what remains to
            // choose is how many subgroups share a workgroup.
            MatmulVariant::Subgroup | MatmulVariant::Subgroup16 => vec![
                MatmulTiles::SUBGROUP16,
                MatmulTiles {
                    wg_y: 1,
                    ..MatmulTiles::SUBGROUP16
                },
            ],
            MatmulVariant::Vec4 | MatmulVariant::Direct => {
                vec![base, with(8, 2, 1), with(4, 4, 1)]
            }
            MatmulVariant::Tiled => vec![base, with(16, 16, 8), with(8, 8, 16), MatmulTiles::VEC4],
        }
    }

    /// Times each candidate on scratch operands of this shape and returns the fastest.
    fn tune(
        &mut self,
        m: usize,
        n: usize,
        k: usize,
        ta: bool,
        tb: bool,
        candidates: &[MatmulTiles],
    ) -> Result<MatmulTiles> {
        self.flush()?;
        let a = if ta {
            self.zeros(k, m)?
        } else {
            self.zeros(m, k)?
        };
        let b = if tb {
            self.zeros(n, k)?
        } else {
            self.zeros(k, n)?
        };
        let mut c = self.zeros(m, n)?;
        // One untimed run each (builds the pipelines), then rounds that time one run of each
        // in turn; a candidate's time is its fastest run, so a burst of load on a shared
        // machine during one run cannot pick the loser.
        for &tiles in candidates {
            self.record_matmul(tiles, &a, ta, &b, tb, &mut c)?;
            self.finish()?;
        }
        let mut fastest = vec![f64::INFINITY; candidates.len()];
        for _ in 0..TUNE_ROUNDS {
            for (&tiles, best) in candidates.iter().zip(&mut fastest) {
                let start = std::time::Instant::now();
                self.record_matmul(tiles, &a, ta, &b, tb, &mut c)?;
                self.finish()?;
                *best = best.min(start.elapsed().as_secs_f64());
            }
        }
        let best = fastest
            .iter()
            .zip(candidates)
            .min_by(|x, y| x.0.total_cmp(y.0))
            .map(|(&t, &tiles)| (t, tiles))
            .expect("at least two candidates");
        Ok(best.1)
    }

    /// Records `c = op(a)·op(b)` with `tiles` (which must run this shape).
    fn record_matmul(
        &mut self,
        tiles: MatmulTiles,
        a: &GpuTensor,
        ta: bool,
        b: &GpuTensor,
        tb: bool,
        c: &mut GpuTensor,
    ) -> Result<()> {
        let (m, n) = (c.rows, c.cols);
        let k = if ta { a.rows } else { a.cols };
        let groups = self.matmul_grid(tiles, m, n)?;
        let params = kernels::MatmulParams {
            m: u32_dim("matmul", m)?,
            n: u32_dim("matmul", n)?,
            k: u32_dim("matmul", k)?,
            alpha: 0.0,
        };
        self.record_labeled(
            tiles.variant.kernel(),
            tiles.variant.label(ta, tb),
            tiles.constants(ta, tb),
            params,
            &[c, a, b],
            groups,
        )
    }

    /// Workgroups for an `[m, n]` product with `tiles`.
    fn matmul_grid(&self, tiles: MatmulTiles, m: usize, n: usize) -> Result<[u32; 3]> {
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
        Ok([groups[0] as u32, groups[1] as u32, 1])
    }
}

impl GpuBackend {
    /// One optimizer dispatch over `param` (checked by the caller): one thread per element,
    /// or with `vec4` (whole groups, whose lengths are multiples of 4) per four. A guard is the
    /// accumulator with its slots, and where the new parameter and each new state tensor go.
    #[allow(clippy::too_many_arguments)]
    fn optimizer_dispatch(
        &mut self,
        opt: Optimizer,
        t: u64,
        param: &mut GpuTensor,
        grad: &GpuTensor,
        state: &mut [GpuTensor],
        guard: Option<((&mut GpuTensor, super::GuardSlots), &[GpuTensor])>,
        vec4: bool,
    ) -> Result<()> {
        let lanes = if vec4 { 4 } else { 1 };
        let kernel = match (opt, vec4) {
            (Optimizer::Sgd { .. }, false) => kernels::OPT_SGD,
            (Optimizer::Sgd { .. }, true) => kernels::OPT_SGD4,
            (Optimizer::Momentum { .. }, false) => kernels::OPT_MOMENTUM,
            (Optimizer::Momentum { .. }, true) => kernels::OPT_MOMENTUM4,
            (Optimizer::Adam { .. }, false) => kernels::OPT_ADAM,
            (Optimizer::Adam { .. }, true) => kernels::OPT_ADAM4,
        };
        let mut params = kernels::OptimParams {
            len: u32_dim("optimizer_step", param.len() / lanes)?,
            lr: opt.lr(),
            beta1: 0.0,
            beta2: 0.0,
            eps: 0.0,
            weight_decay: 0.0,
            bias_correction1: 1.0,
            bias_correction2: 1.0,
            loss_slot: 0,
            flag_slot: 0,
            step_slot: 0,
            t: u32::try_from(t).unwrap_or(u32::MAX),
        };
        let mut nesterov = false;
        match opt {
            Optimizer::Sgd { .. } => {}
            Optimizer::Momentum {
                momentum,
                nesterov: n,
                ..
            } => {
                params.beta1 = momentum;
                nesterov = n;
            }
            Optimizer::Adam {
                beta1,
                beta2,
                eps,
                weight_decay,
                ..
            } => {
                let (bc1, bc2) = Optimizer::adam_bias_corrections(beta1, beta2, t);
                params.beta1 = beta1;
                params.beta2 = beta2;
                params.eps = eps;
                params.weight_decay = weight_decay;
                params.bias_correction1 = bc1;
                params.bias_correction2 = bc2;
            }
        }
        let constants = Constants::new(&[
            ("NESTEROV", nesterov as u8 as f64),
            ("GUARDED", guard.is_some() as u8 as f64),
        ]);
        let unused: Vec<GpuTensor> = self.unguarded.iter().map(GpuTensor::handle).collect();
        let (acc, outs): (&GpuTensor, Vec<&GpuTensor>) = match &guard {
            Some(((acc, slots), outs)) => {
                params.loss_slot = u32_dim("optimizer_step", slots.loss)?;
                params.flag_slot = u32_dim("optimizer_step", slots.flags)?;
                params.step_slot = u32_dim("optimizer_step", slots.step)?;
                (&**acc, outs.iter().collect())
            }
            None => (&unused[0], unused[1..].iter().collect()),
        };
        // param, acc, grad, new param, then each state tensor and its new values.
        let mut bindings: Vec<&GpuTensor> = vec![param, acc, grad, outs[0]];
        for (k, s) in state.iter().enumerate() {
            bindings.push(s);
            bindings.push(outs[k + 1]);
        }
        let groups = self.grid_1d(param.len() / lanes)?;
        self.record(kernel, constants, params, &bindings, groups)
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
            if let Some(p) = &mut self.profiler {
                pass.write_timestamp(&p.queries, 0);
                p.pending.clear();
            }
            for d in self.recorded.drain(..) {
                pass.set_pipeline(&d.pipeline);
                pass.set_bind_group(0, &d.bind_group, &[d.params_offset]);
                pass.dispatch_workgroups(d.groups[0], d.groups[1], d.groups[2]);
                if let Some(p) = &mut self.profiler {
                    p.pending.push(d.label);
                    pass.write_timestamp(&p.queries, p.pending.len() as u32);
                }
            }
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
