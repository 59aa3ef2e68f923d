//! The GPU context, built once per process: adapter choice, device, queue, and the caches of
//! shader modules, layouts and pipelines that every [`super::GpuBackend`] shares.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};

use super::kernels::{Access, Constants, Kernel, Module, PARAMS_SIZE};
use crate::error::{Error, Result};
use std::path::PathBuf;

/// Where the work runs: printed by every test, log and benchmark.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdapterDescription {
    /// e.g. "llvmpipe (LLVM 15.0.6, 256 bits)" or "NVIDIA H100 80GB HBM3".
    pub name: String,
    /// "Vulkan", "Metal", "Dx12", "Gl".
    pub backend: String,
    /// "DiscreteGpu", "IntegratedGpu", "VirtualGpu", "Cpu", "Other".
    pub device_type: String,
    /// Driver name, e.g. "llvmpipe" or "NVIDIA".
    pub driver: String,
    /// Driver version information.
    pub driver_info: String,
    /// Subgroup width range `(min, max)` where the device has subgroup operations.
    pub subgroup_sizes: Option<(u32, u32)>,
}

impl AdapterDescription {
    fn from_info(info: &wgpu::AdapterInfo) -> Self {
        AdapterDescription {
            name: info.name.clone(),
            backend: format!("{:?}", info.backend),
            device_type: format!("{:?}", info.device_type),
            driver: info.driver.clone(),
            driver_info: info.driver_info.clone(),
            subgroup_sizes: None,
        }
    }
}

impl fmt::Display for AdapterDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}, {}, driver {} {})",
            self.name, self.backend, self.device_type, self.driver, self.driver_info
        )
    }
}

/// Preference order: discrete > integrated > virtual > software (lavapipe) > other; then the
/// native APIs before GL, which is a downlevel adapter.
fn rank(info: &wgpu::AdapterInfo) -> (u8, u8) {
    let device = match info.device_type {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Cpu => 3,
        wgpu::DeviceType::Other => 4,
    };
    let api = match info.backend {
        wgpu::Backend::Vulkan | wgpu::Backend::Metal | wgpu::Backend::Dx12 => 0,
        _ => 1,
    };
    (device, api)
}

/// Device, queue and the caches built on them. Shared through an `Arc` by every backend.
pub struct GpuContext {
    pub(crate) device: wgpu::Device,
    pub(crate) queue: wgpu::Queue,
    adapter: AdapterDescription,
    limits: wgpu::Limits,
    modules: Mutex<HashMap<Module, wgpu::ShaderModule>>,
    layouts: Mutex<HashMap<&'static [Access], (wgpu::BindGroupLayout, wgpu::PipelineLayout)>>,
    pipelines: Mutex<HashMap<(Kernel, Constants), wgpu::ComputePipeline>>,
    /// Uncaptured wgpu errors, taken by the next flush or read.
    errors: Arc<Mutex<Vec<String>>>,
    /// Set by the device-lost callback.
    lost: Arc<Mutex<Option<String>>>,
    /// Whether the subgroup matmuls gave the reference's products here (checked once, on first use).
    pub(crate) subgroup_matmul_ok: std::sync::OnceLock<bool>,
    /// Autotuned matmul tilings by shape class, shared by every backend on this context.
    pub(crate) tuned: Mutex<HashMap<super::TuneKey, super::MatmulTiles>>,
    /// `WGTRAIN_TUNE_CACHE`: a file that keeps `tuned` across processes.
    tune_cache: Option<PathBuf>,
}

impl fmt::Debug for GpuContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GpuContext")
            .field("adapter", &self.adapter)
            .finish_non_exhaustive()
    }
}

static SHARED: OnceLock<std::result::Result<Arc<GpuContext>, String>> = OnceLock::new();

impl GpuContext {
    /// The process-wide context on the best adapter (see [`GpuContext::new`]), created on
    /// first use, so that pipelines compile once per process.
    pub fn shared() -> Result<Arc<GpuContext>> {
        SHARED
            .get_or_init(|| GpuContext::new().map(Arc::new).map_err(|e| e.to_string()))
            .clone()
            .map_err(Error::GpuUnavailable)
    }

    /// A new context on the best adapter: discrete > integrated > virtual > software. Set
    /// `WGTRAIN_ADAPTER` to part of an adapter's name to pick that one instead, and wgpu's
    /// `WGPU_BACKEND` (e.g. `vulkan`, `gl`) to restrict the APIs searched. A rank of an MPI job
    /// ([`crate::dist::local_rank`]) takes the best kind's adapters in turn: local rank `r` of
    /// a machine with `n` of them opens adapter `r mod n`.
    pub fn new() -> Result<GpuContext> {
        let filter = std::env::var("WGTRAIN_ADAPTER")
            .ok()
            .filter(|s| !s.is_empty());
        Self::with_adapter(filter.as_deref())
    }

    /// The adapter [`GpuContext::new`] would open, described, without opening it (no device
    /// is created): what `--backend auto` looks at before choosing.
    pub fn best_adapter() -> Result<AdapterDescription> {
        let filter = std::env::var("WGTRAIN_ADAPTER")
            .ok()
            .filter(|s| !s.is_empty());
        let adapter = Self::pick(filter.as_deref())?;
        Ok(AdapterDescription::from_info(&adapter.get_info()))
    }

    /// The best adapter whose name contains `filter` (case-insensitive): discrete >
    /// integrated > virtual > software.
    fn pick(filter: Option<&str>) -> Result<wgpu::Adapter> {
        let instance =
            wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        let adapters = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()));
        let found = if adapters.is_empty() {
            "none".to_string()
        } else {
            adapters
                .iter()
                .map(|a| AdapterDescription::from_info(&a.get_info()).to_string())
                .collect::<Vec<_>>()
                .join("; ")
        };
        let mut candidates: Vec<_> = adapters
            .into_iter()
            .filter(|a| match filter {
                Some(f) => a.get_info().name.to_lowercase().contains(&f.to_lowercase()),
                None => true,
            })
            .collect();
        candidates.sort_by_key(|a| rank(&a.get_info()));
        // One rank per GPU: the ranks of a data-parallel job on this machine take the best
        // kind's adapters in turn, by their local rank (unless WGTRAIN_ADAPTER picks one).
        let best = candidates.first().map(|a| rank(&a.get_info()));
        let peers = candidates
            .iter()
            .take_while(|a| Some(rank(&a.get_info())) == best)
            .count();
        let turn = match (filter, crate::dist::local_rank()) {
            (None, Some(local)) if peers > 0 => local % peers,
            _ => 0,
        };
        candidates
            .into_iter()
            .nth(turn)
            .ok_or_else(|| Error::NoAdapter {
                wanted: filter
                    .map(|f| format!(" matching WGTRAIN_ADAPTER={f}"))
                    .unwrap_or_default(),
                found,
            })
    }

    /// A new context on the best adapter whose name contains `filter` (case-insensitive).
    pub fn with_adapter(filter: Option<&str>) -> Result<GpuContext> {
        let adapter = Self::pick(filter)?;
        let mut info = AdapterDescription::from_info(&adapter.get_info());

        // Ask for what the adapter has, not the WebGPU defaults: larger bindings and workgroups.
        let limits = adapter.limits();
        // Timestamps inside a pass time each dispatch (GpuBackend::enable_profiling); asked
        // for only where the adapter has them.
        // Subgroups let matmul v4 share loads (GpuBackend picks it where they are 8 wide).
        let features = adapter.features()
            & (wgpu::Features::TIMESTAMP_QUERY
                | wgpu::Features::TIMESTAMP_QUERY_INSIDE_PASSES
                | wgpu::Features::SUBGROUP);
        if features.contains(wgpu::Features::SUBGROUP) {
            let raw = adapter.get_info();
            info.subgroup_sizes = Some((raw.subgroup_min_size, raw.subgroup_max_size));
        }
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("wgtrain"),
            required_features: features,
            required_limits: limits.clone(),
            experimental_features: wgpu::ExperimentalFeatures::disabled(),
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        }))
        .map_err(|e| Error::RequestDevice {
            adapter: info.to_string(),
            reason: e.to_string(),
        })?;

        let errors = Arc::new(Mutex::new(Vec::new()));
        let sink = errors.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            sink.lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(e.to_string());
        }));
        let lost = Arc::new(Mutex::new(None));
        let lost_sink = lost.clone();
        device.set_device_lost_callback(move |reason, message| {
            *lost_sink.lock().unwrap_or_else(|p| p.into_inner()) =
                Some(format!("{reason:?}: {message}"));
        });

        let ctx = GpuContext {
            device,
            queue,
            adapter: info,
            limits,
            modules: Mutex::default(),
            layouts: Mutex::default(),
            pipelines: Mutex::default(),
            errors,
            lost,
            subgroup_matmul_ok: std::sync::OnceLock::new(),
            tuned: Mutex::default(),
            tune_cache: std::env::var_os("WGTRAIN_TUNE_CACHE")
                .filter(|p| !p.is_empty())
                .map(PathBuf::from),
        };
        ctx.load_tuning();
        Ok(ctx)
    }

    /// This adapter's key in the autotune cache file.
    fn cache_id(&self) -> String {
        let a = &self.adapter;
        format!("{} | {} | {}", a.name, a.backend, a.driver_info).replace(['\t', '\n'], " ")
    }

    /// Reads this adapter's tilings from `WGTRAIN_TUNE_CACHE`, if set. A missing file is an
    /// empty cache; lines that do not parse are skipped (they are retuned and rewritten).
    fn load_tuning(&self) {
        let Some(path) = &self.tune_cache else { return };
        // Through read_input: a cache path naming a FIFO or /dev/zero is skipped, not read
        // forever.
        let Ok(bytes) = crate::fs::read_input(path) else {
            return;
        };
        let text = String::from_utf8_lossy(&bytes);
        let id = self.cache_id();
        let mut tuned = self.tuned.lock().unwrap_or_else(|p| p.into_inner());
        for line in text.lines() {
            let mut f = line.split('\t');
            let (Some(who), Some(key), Some(tiles)) = (f.next(), f.next(), f.next()) else {
                continue;
            };
            if who != id {
                continue;
            }
            if let (Some(k), Some(t)) = (
                super::TuneKey::decode(key),
                super::MatmulTiles::decode(tiles),
            ) {
                tuned.insert(k, t);
            }
        }
    }

    /// Writes this adapter's tilings to `WGTRAIN_TUNE_CACHE` (atomically, keeping other
    /// adapters' lines). A cache that cannot be written is reported once on stderr and
    /// otherwise ignored: it only saves time.
    pub(crate) fn save_tuning(&self) {
        let Some(path) = &self.tune_cache else { return };
        let id = self.cache_id();
        let old = crate::fs::read_input(path)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        let mut lines: Vec<String> = old
            .lines()
            .filter(|l| l.split('\t').next() != Some(id.as_str()))
            .map(str::to_string)
            .collect();
        for (k, t) in self.tuned.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            lines.push(format!("{id}\t{}\t{}", k.encode(), t.encode()));
        }
        lines.sort();
        let text = lines.join("\n") + "\n";
        if let Err(e) = crate::fs::write_atomic(path, text.as_bytes()) {
            static WARNED: std::sync::Once = std::sync::Once::new();
            WARNED.call_once(|| {
                crate::stderr_line!(
                    "warning: could not write the autotune cache {} ({e}); tuning again next time",
                    path.display()
                )
            });
        }
    }

    /// The adapter this context runs on.
    pub fn adapter(&self) -> &AdapterDescription {
        &self.adapter
    }

    /// The matmul tilings autotuned so far: each shape class (`M×N×K` rounded up to powers of
    /// two, and the transposes) with the tiling measured fastest.
    pub fn tuned_tilings(&self) -> Vec<(String, super::MatmulTiles)> {
        let mut v: Vec<_> = self
            .tuned
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(k, t)| (k.to_string(), *t))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// Whether dispatches can be timed on the device (timestamp queries inside passes).
    pub fn has_timestamps(&self) -> bool {
        self.device.features().contains(
            wgpu::Features::TIMESTAMP_QUERY | wgpu::Features::TIMESTAMP_QUERY_INSIDE_PASSES,
        )
    }

    /// The limits the device was created with (the adapter's own).
    pub fn limits(&self) -> &wgpu::Limits {
        &self.limits
    }

    /// Compiles every kernel's pipeline with default constants, so that start-up cost is paid
    /// up front and any shader error shows at once.
    pub fn precompile_all(&self) -> Result<()> {
        for kernel in super::kernels::ALL
            .into_iter()
            .chain(super::kernels::conv::ALL)
        {
            self.pipeline(kernel, Constants::default())?;
        }
        self.check_errors("precompile")
    }

    /// Takes any error wgpu reported since the last check.
    pub(crate) fn check_errors(&self, op: &str) -> Result<()> {
        if let Some(reason) = self.lost.lock().unwrap_or_else(|p| p.into_inner()).clone() {
            return Err(Error::DeviceLost(reason));
        }
        let mut errors = self.errors.lock().unwrap_or_else(|p| p.into_inner());
        if errors.is_empty() {
            return Ok(());
        }
        let message = errors.join("\n");
        errors.clear();
        Err(Error::Gpu {
            op: op.to_string(),
            message,
        })
    }

    fn module(&self, module: Module) -> wgpu::ShaderModule {
        let mut modules = self.modules.lock().unwrap_or_else(|p| p.into_inner());
        modules
            .entry(module)
            .or_insert_with(|| {
                let desc = wgpu::ShaderModuleDescriptor {
                    label: Some(module.file()),
                    source: wgpu::ShaderSource::Wgsl(module.source().into()),
                };
                if module.unchecked() {
                    // SAFETY: only v6's whole-block pipelines are built from this module
                    // (MatmulVariant::kernel_for), and for those shapes every index the
                    // kernel forms is inside its binding and its workgroup arrays, and every
                    // loop runs a count read from its uniform: the argument is in
                    // shaders/matmul_tiled8.wgsl's header, and parity tests run it.
                    unsafe {
                        self.device.create_shader_module_trusted(
                            desc,
                            wgpu::ShaderRuntimeChecks::unchecked(),
                        )
                    }
                } else {
                    self.device.create_shader_module(desc)
                }
            })
            .clone()
    }

    /// The bind-group layout for a kernel: explicit, because wgpu's automatic layout drops
    /// bindings an entry point does not use and bind-group creation then fails.
    pub(crate) fn layout(
        &self,
        bindings: &'static [Access],
    ) -> (wgpu::BindGroupLayout, wgpu::PipelineLayout) {
        let mut layouts = self.layouts.lock().unwrap_or_else(|p| p.into_inner());
        layouts
            .entry(bindings)
            .or_insert_with(|| {
                let mut entries = vec![wgpu::BindGroupLayoutEntry {
                    binding: 0,
                    visibility: wgpu::ShaderStages::COMPUTE,
                    ty: wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Uniform,
                        has_dynamic_offset: true,
                        min_binding_size: wgpu::BufferSize::new(PARAMS_SIZE as u64),
                    },
                    count: None,
                }];
                for (i, access) in bindings.iter().enumerate() {
                    entries.push(wgpu::BindGroupLayoutEntry {
                        binding: i as u32 + 1,
                        visibility: wgpu::ShaderStages::COMPUTE,
                        ty: wgpu::BindingType::Buffer {
                            ty: wgpu::BufferBindingType::Storage {
                                read_only: *access == Access::Read,
                            },
                            has_dynamic_offset: false,
                            min_binding_size: None,
                        },
                        count: None,
                    });
                }
                let bgl = self
                    .device
                    .create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                        label: None,
                        entries: &entries,
                    });
                let pl = self
                    .device
                    .create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                        label: None,
                        bind_group_layouts: &[Some(&bgl)],
                        immediate_size: 0,
                    });
                (bgl, pl)
            })
            .clone()
    }

    /// The pipeline for `kernel` specialised with WGSL `override` constants, built once per
    /// (kernel, constants) and cached.
    pub(crate) fn pipeline(
        &self,
        kernel: Kernel,
        constants: Constants,
    ) -> Result<wgpu::ComputePipeline> {
        let key = (kernel, constants);
        if let Some(p) = self
            .pipelines
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            return Ok(p.clone());
        }
        let module = self.module(kernel.module);
        let (_, layout) = self.layout(kernel.bindings);
        let pipeline = self
            .device
            .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(kernel.entry),
                layout: Some(&layout),
                module: &module,
                entry_point: Some(kernel.entry),
                compilation_options: wgpu::PipelineCompilationOptions {
                    constants: &constants.to_wgpu(),
                    // Every kernel writes its workgroup memory before reading it.
                    zero_initialize_workgroup_memory: false,
                },
                cache: None,
            });
        self.check_errors(&format!(
            "building pipeline {}::{}",
            kernel.module.file(),
            kernel.entry
        ))?;
        self.pipelines
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, pipeline.clone());
        Ok(pipeline)
    }
}
