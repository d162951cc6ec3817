//! The WebGPU backend (wgpu 30): device set-up, storage, the pipeline cache, and `Run`, which
//! records a realization's dispatches and submits them at once.

use rustc_hash::FxHashMap as HashMap;
use std::sync::{Arc, Mutex};

pub mod params;
mod pool;
mod record;
mod run;
pub mod shaders;

pub(crate) use pool::GpuBuffer;
pub use pool::live_buffers;
use pool::{BufferPool, Memory};
pub(crate) use run::Run;
use shaders::{Flavor, Kernel, PipelineKey, ShaderFeatures};

use crate::{Error, Result};

/// Kernel dispatches submitted by every context in this process: benchmarks divide it by tokens
/// to see how much of a decode step is per-dispatch overhead rather than weight reading.
pub(crate) static DISPATCHES_SUBMITTED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// See [`DISPATCHES_SUBMITTED`].
pub fn dispatches_submitted() -> u64 {
    DISPATCHES_SUBMITTED.load(std::sync::atomic::Ordering::Relaxed)
}

/// Bind groups made by every context in this process. A decode step's dispatches bind the same
/// buffers step after step, so after the first step this should barely move (run.rs caches them).
pub(crate) static BIND_GROUPS_CREATED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// See [`BIND_GROUPS_CREATED`].
pub fn bind_groups_created() -> u64 {
    BIND_GROUPS_CREATED.load(std::sync::atomic::Ordering::Relaxed)
}

/// Uploads up to this size (a step's token ids, positions, offsets) take pooled buffers: a fresh
/// buffer per step would be destroyed after it, and each destroyed buffer empties the bind-group
/// cache. Larger ones (weights) get exact-size buffers of their own.
const POOLED_UPLOAD_BYTES: u64 = 64 << 10;

/// Device storage: a buffer shared by views (or a matrix's row parts).
#[derive(Clone)]
pub(crate) struct GpuStorage {
    pub(crate) buffer: Arc<GpuBuffer>,
    /// A matrix larger than one binding may hold, kept as parts of whole rows, each its own
    /// buffer (`buffer` is then the first part's). Only matmul weights and embedding tables may
    /// be split; the kernels that read them run once per part.
    pub(crate) parts: Option<Arc<[RowPart]>>,
}

/// Rows [first_row, first_row + rows) of a split matrix.
#[derive(Clone)]
pub(crate) struct RowPart {
    pub(crate) storage: GpuStorage,
    pub(crate) first_row: usize,
    pub(crate) rows: usize,
}

impl GpuStorage {
    pub(crate) fn whole(buffer: Arc<GpuBuffer>) -> GpuStorage {
        GpuStorage { buffer, parts: None }
    }

    /// A matrix made of `parts` (at least one), in row order.
    pub(crate) fn split(parts: Vec<RowPart>) -> GpuStorage {
        let first = parts[0].storage.buffer.clone();
        GpuStorage { buffer: first, parts: Some(parts.into()) }
    }
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// What to ask of the adapter.
#[derive(Clone, Debug, Default)]
pub struct GpuOptions {
    /// Use shader-f16 when the adapter has it (default true; `WEBFORMERS_NO_F16=1` turns it off).
    pub disable_f16: bool,
    /// Use subgroup operations when the adapter has them (`WEBFORMERS_NO_SUBGROUPS=1` turns them off).
    pub disable_subgroups: bool,
    /// Compute in f16 where a kernel offers it (quantized decoding), when the adapter has
    /// shader-f16. Off by default: f16 sums move SmolLM2's logits by ~0.04 and can flip greedy
    /// choices that PyTorch makes by a smaller margin, while decoding is bound by memory, not
    /// arithmetic. `WEBFORMERS_F16_MATH=1` turns it on.
    pub f16_math: bool,
    /// Treat bindings as at most this many bytes, below the adapter's limit: to test how large
    /// weights are split, as on adapters with WebGPU's default 128 MiB.
    pub max_binding_bytes: Option<u64>,
    /// Refuse storage buffers beyond this many bytes in all (an `OutOfMemory` error naming the
    /// buffer): to test what a load does on a device with little memory, or to keep a model
    /// within a share of one. `WEBFORMERS_GPU_MEMORY_BUDGET=<bytes>` sets it.
    pub memory_budget: Option<u64>,
}

impl GpuOptions {
    pub fn from_env() -> GpuOptions {
        let set = |name: &str| std::env::var(name).is_ok_and(|v| v == "1");
        GpuOptions {
            disable_f16: set("WEBFORMERS_NO_F16"),
            disable_subgroups: set("WEBFORMERS_NO_SUBGROUPS"),
            f16_math: set("WEBFORMERS_F16_MATH"),
            max_binding_bytes: None,
            memory_budget: std::env::var("WEBFORMERS_GPU_MEMORY_BUDGET").ok().and_then(|v| match v.parse() {
                Ok(bytes) => Some(bytes),
                Err(_) => {
                    log::warn!("WEBFORMERS_GPU_MEMORY_BUDGET={v} is not a number of bytes: no budget");
                    None
                }
            }),
        }
    }
}

pub struct GpuContext {
    pub(crate) device: wgpu::Device,
    pub(crate) queue: wgpu::Queue,
    pub(crate) limits: wgpu::Limits,
    pub(crate) features: ShaderFeatures,
    binding_cap: Option<u64>,
    info: wgpu::AdapterInfo,
    pool: Arc<BufferPool>,
    pipelines: Mutex<HashMap<PipelineKey, Arc<wgpu::ComputePipeline>>>,
    /// By (read bindings, whether the last of them is also written).
    layouts: Mutex<HashMap<(usize, bool), Arc<wgpu::BindGroupLayout>>>,
    /// Errors wgpu reported outside an error scope; surfaced by the next submission.
    uncaptured: Arc<Mutex<Vec<String>>>,
    memory: Arc<Memory>,
    /// Why the device was lost, once it is (wgpu's device-lost callback, or `destroy`).
    lost: Arc<Mutex<Option<String>>>,
    /// The uniform buffer and the bind groups runs reuse; locked from a run's parameter write to
    /// its submission (see run.rs).
    pub(crate) bindings: Mutex<run::Bindings>,
}

impl GpuContext {
    /// Opens the best adapter (high-performance preferred). Errors when none exists.
    pub async fn new(options: GpuOptions) -> Result<Arc<GpuContext>> {
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        let adapter = instance
            .request_adapter(&wgpu::RequestAdapterOptions {
                power_preference: wgpu::PowerPreference::HighPerformance,
                force_fallback_adapter: false,
                compatible_surface: None,
                apply_limit_buckets: false,
            })
            .await
            .map_err(|e| Error::NoAdapter(e.to_string()))?;
        let available = adapter.features();
        let mut wanted = wgpu::Features::empty();
        if available.contains(wgpu::Features::SHADER_F16) && !options.disable_f16 {
            wanted |= wgpu::Features::SHADER_F16;
        }
        // wgpu's browser backend cannot request subgroups, so only native builds use them.
        if available.contains(wgpu::Features::SUBGROUP) && !options.disable_subgroups && !cfg!(target_arch = "wasm32") {
            wanted |= wgpu::Features::SUBGROUP;
        }
        // Kernels fit the defaults; the adapter's larger limits (bigger bindings) are used when granted.
        let limits = adapter.limits();
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("webformers"),
                required_features: wanted,
                required_limits: limits.clone(),
                experimental_features: wgpu::ExperimentalFeatures::disabled(),
                memory_hints: wgpu::MemoryHints::Performance,
                trace: wgpu::Trace::Off,
            })
            .await
            .map_err(|e| Error::Gpu(format!("could not open the device: {e}")))?;
        let uncaptured = Arc::new(Mutex::new(Vec::new()));
        let sink = uncaptured.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            sink.lock().unwrap_or_else(|p| p.into_inner()).push(e.to_string());
        }));
        let lost = Arc::new(Mutex::new(None));
        let on_lost = lost.clone();
        device.set_device_lost_callback(move |reason, message| {
            let why = match reason {
                wgpu::DeviceLostReason::Destroyed => "it was destroyed".to_string(),
                wgpu::DeviceLostReason::Unknown if message.is_empty() => "the driver gave no reason".to_string(),
                wgpu::DeviceLostReason::Unknown => message,
            };
            on_lost.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(why);
        });
        let memory = Memory::new(options.memory_budget);
        let features = ShaderFeatures {
            f16: wanted.contains(wgpu::Features::SHADER_F16),
            subgroups: wanted.contains(wgpu::Features::SUBGROUP),
            f16_math: options.f16_math && wanted.contains(wgpu::Features::SHADER_F16),
        };
        Ok(Arc::new(GpuContext {
            pool: BufferPool::new(device.clone(), memory.clone()),
            device,
            queue,
            limits,
            features,
            binding_cap: options.max_binding_bytes,
            info: adapter.get_info(),
            pipelines: Mutex::new(HashMap::default()),
            layouts: Mutex::new(HashMap::default()),
            uncaptured,
            memory,
            lost,
            bindings: Mutex::new(run::Bindings::default()),
        }))
    }

    /// Whether the adapter is a software rasterizer (llvmpipe, lavapipe, SwiftShader: wgpu's
    /// `DeviceType::Cpu`), which runs compute shaders many times slower than the CPU backend.
    pub fn is_software(&self) -> bool {
        self.info.device_type == wgpu::DeviceType::Cpu
    }

    pub fn describe(&self) -> String {
        let mut extras = Vec::new();
        if self.features.f16 {
            extras.push("f16");
        }
        if self.features.subgroups {
            extras.push("subgroups");
        }
        format!("{}, {:?}{}{}", self.info.name, self.info.backend, if extras.is_empty() { "" } else { ", " }, extras.join("+"))
    }

    pub fn adapter_name(&self) -> &str {
        &self.info.name
    }

    pub fn features(&self) -> ShaderFeatures {
        self.features
    }

    /// The largest buffer one binding can see.
    pub fn max_binding_bytes(&self) -> u64 {
        let adapter = (self.limits.max_storage_buffer_binding_size as u64).min(self.limits.max_buffer_size);
        self.binding_cap.map_or(adapter, |cap| cap.min(adapter))
    }

    /// Bytes held by idle pooled buffers.
    pub fn pooled_idle_bytes(&self) -> u64 {
        self.pool.idle_bytes()
    }

    pub fn trim_pool(&self) {
        self.pool.trim()
    }

    /// Destroys the device now, as a driver reset or the browser's `GPUDevice.destroy()` would:
    /// every later use of it, by any pipeline, is a `DeviceLost` error. Frees its memory at once.
    pub fn destroy(&self) {
        self.lost.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert_with(|| "it was destroyed".to_string());
        self.device.destroy();
    }

    /// Why the device was lost, if it was.
    pub fn lost(&self) -> Option<String> {
        self.lost.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// `DeviceLost` once the device is gone: checked before each allocation and submission, since
    /// wgpu itself makes invalid objects on a lost device without an error.
    pub(crate) fn alive(&self) -> Result<()> {
        match self.lost() {
            Some(why) => Err(Error::DeviceLost(why)),
            None => Ok(()),
        }
    }

    /// Bytes of storage buffers this context holds (weights, caches, pooled activations, idle or not).
    pub fn memory_used(&self) -> u64 {
        self.memory.used()
    }

    fn check_size(&self, bytes: u64, what: &str) -> Result<()> {
        self.alive()?;
        let limit = self.max_binding_bytes();
        if bytes > limit {
            return Err(Error::OverLimit { what: what.to_string(), needed: bytes, limit });
        }
        Ok(())
    }

    /// Copies host bytes into a device buffer (padded to 4 bytes, as WebGPU requires): a pooled
    /// one up to `POOLED_UPLOAD_BYTES`, else a new one of the exact size.
    pub(crate) fn upload(&self, bytes: &[u8], what: &str) -> Result<GpuStorage> {
        let size = (bytes.len() as u64).div_ceil(4).max(1) * 4;
        self.check_size(size, what)?;
        if size <= POOLED_UPLOAD_BYTES {
            // The queue orders the write after every run already submitted with this buffer.
            let buffer = self.pool.take(size, what)?;
            self.write_padded(buffer.raw(), 0, bytes);
            return Ok(GpuStorage::whole(buffer));
        }
        // In the browser a mapped range is a second copy in the wasm heap (wgpu's temporary
        // mapping); a queue write hands the bytes over from where they are.
        #[cfg(target_arch = "wasm32")]
        {
            let buffer = self.weight_buffer(bytes.len() as u64, what)?;
            self.write_padded(buffer.raw(), 0, bytes);
            return Ok(GpuStorage::whole(Arc::new(buffer)));
        }
        #[cfg(not(target_arch = "wasm32"))]
        self.upload_mapped(bytes, size, what)
    }

    /// A new buffer for `bytes` bytes of weights, filled by `write_padded` (padded to 4 bytes).
    #[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
    pub(crate) fn weight_buffer(&self, bytes: u64, what: &str) -> Result<GpuBuffer> {
        let size = bytes.div_ceil(4).max(1) * 4;
        self.check_size(size, what)?;
        self.unpooled(size, false, "webformers weight", what)
    }

    /// A buffer of its own, outside the pool, counted against the memory budget until dropped
    /// (idle pooled buffers are freed first when they stand in the way).
    fn unpooled(&self, size: u64, mapped: bool, label: &'static str, what: &str) -> Result<GpuBuffer> {
        let buffer = match pool::create(&self.device, &self.memory, size, mapped, label, what) {
            Err(Error::OutOfMemory { .. }) if self.pool.idle_bytes() > 0 => {
                self.pool.trim();
                pool::create(&self.device, &self.memory, size, mapped, label, what)?
            }
            done => done?,
        };
        Ok(GpuBuffer::unpooled(buffer, self.memory.clone()))
    }

    /// Writes `bytes` at `offset` (a multiple of 4) through the queue; a tail that is not a
    /// multiple of 4 is padded with zeros (so only the last piece of a buffer may have one).
    pub(crate) fn write_padded(&self, buffer: &wgpu::Buffer, offset: u64, bytes: &[u8]) {
        let whole = bytes.len() & !3;
        if whole > 0 {
            self.queue.write_buffer(buffer, offset, &bytes[..whole]);
        }
        if whole < bytes.len() {
            let mut tail = [0u8; 4];
            tail[..bytes.len() - whole].copy_from_slice(&bytes[whole..]);
            self.queue.write_buffer(buffer, offset + whole as u64, &tail);
        }
    }

    #[cfg(not(target_arch = "wasm32"))]
    fn upload_mapped(&self, bytes: &[u8], size: u64, what: &str) -> Result<GpuStorage> {
        let buffer = self.unpooled(size, true, "webformers upload", what)?;
        {
            let mut view = buffer.raw().slice(..).get_mapped_range_mut().map_err(|e| self.mapping_error("mapping an upload buffer", e))?;
            view.slice(..bytes.len()).copy_from_slice(bytes);
        }
        buffer.raw().unmap();
        Ok(GpuStorage::whole(Arc::new(buffer)))
    }

    /// A failed map or poll: `DeviceLost` when that is why.
    pub(crate) fn mapping_error(&self, doing: &str, e: impl std::fmt::Display) -> Error {
        match self.lost() {
            Some(why) => Error::DeviceLost(why),
            None => Error::Gpu(format!("{doing}: {e}")),
        }
    }

    /// A matrix of `rows` rows: one buffer when it fits a binding, else parts of whole rows that
    /// each do (so a 128 MiB binding limit does not cap a model's embedding table).
    pub(crate) fn upload_rows(&self, bytes: &[u8], rows: usize, what: &str) -> Result<GpuStorage> {
        let Some(split) = self.row_split(bytes.len(), rows, what)? else { return self.upload(bytes, what) };
        let row_bytes = bytes.len() / rows;
        let mut parts = Vec::new();
        for (first_row, n) in split {
            let storage = self.upload(&bytes[first_row * row_bytes..(first_row + n) * row_bytes], what)?;
            parts.push(RowPart { storage, first_row, rows: n });
        }
        Ok(GpuStorage::split(parts))
    }

    /// How a matrix of `rows` rows in `bytes` bytes is split so that each part fits one binding:
    /// `None` when it needs no split (or is not whole rows), else `(first_row, rows)` per part.
    /// Every part but the last holds a multiple of 4 bytes, so that a weight streamed into its
    /// parts piece by piece (`TensorWriter`) writes each at 4-byte offsets, as queue writes need.
    pub(crate) fn row_split(&self, bytes: usize, rows: usize, what: &str) -> Result<Option<Vec<(usize, usize)>>> {
        let limit = self.max_binding_bytes() as usize;
        if bytes <= limit || rows <= 1 || bytes % rows != 0 {
            return Ok(None);
        }
        let row_bytes = bytes / rows;
        // Rows per 4-byte multiple: 1, 2 or 4.
        let align = 4 / gcd(row_bytes, 4);
        let per_part = limit / row_bytes / align * align;
        if per_part == 0 {
            let what = if align == 1 { format!("one row of {what}") } else { format!("{align} rows of {what}") };
            return Err(Error::OverLimit { what, needed: (row_bytes * align) as u64, limit: limit as u64 });
        }
        Ok(Some((0..rows).step_by(per_part).map(|first_row| (first_row, per_part.min(rows - first_row))).collect()))
    }

    /// One buffer holding `parts` (storage, bytes used) back to back, copied on the device: weights
    /// stacked at load time. Copies need 4-byte multiples, which every part but the last must be.
    pub(crate) fn concat(&self, parts: &[(&GpuStorage, u64)]) -> Result<GpuStorage> {
        let total: u64 = parts.iter().map(|(_, n)| n).sum();
        if parts.iter().rev().skip(1).any(|(_, n)| n % 4 != 0) {
            return Err(Error::Unsupported("stacking weights whose byte sizes are not multiples of 4 on the GPU".into()));
        }
        let size = total.div_ceil(4).max(1) * 4;
        self.check_size(size, "stacked weights")?;
        let buffer = self.unpooled(size, false, "webformers stacked weights", "stacked weights")?;
        let mut encoder = self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("stack weights") });
        let mut at = 0;
        for (part, n) in parts {
            // The last part's tail rounds up into the buffers' padding.
            encoder.copy_buffer_to_buffer(part.buffer.raw(), 0, buffer.raw(), at, n.div_ceil(4) * 4);
            at += n;
        }
        // Later submissions on this queue see the copy; nothing waits for it here.
        self.queue.submit([encoder.finish()]);
        Ok(GpuStorage::whole(Arc::new(buffer)))
    }

    /// A zero-filled buffer of its own (WebGPU zero-initializes new buffers), outside the pool.
    pub(crate) fn zeroed(&self, bytes: u64, what: &str) -> Result<GpuStorage> {
        let size = bytes.div_ceil(4).max(1) * 4;
        self.check_size(size, what)?;
        Ok(GpuStorage::whole(Arc::new(self.unpooled(size, false, "webformers zeroed", what)?)))
    }

    pub(crate) fn alloc(&self, bytes: u64, what: &str) -> Result<GpuStorage> {
        self.check_size(bytes, what)?;
        Ok(GpuStorage::whole(self.pool.take(bytes.max(4), what)?))
    }

    pub(crate) fn begin_run(self: &Arc<Self>) -> Run {
        Run::new(self.clone())
    }

    fn layout(&self, inputs: usize, writes_last_input: bool) -> Arc<wgpu::BindGroupLayout> {
        let mut layouts = self.layouts.lock().unwrap_or_else(|e| e.into_inner());
        layouts
            .entry((inputs, writes_last_input))
            .or_insert_with(|| {
                let storage = |binding: u32, read_only: bool| wgpu::BindGroupLayoutEntry {
                    binding,
                    visibility: wgpu::ShaderStages::COMPUTE,
                    ty: wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Storage { read_only },
                        has_dynamic_offset: false,
                        min_binding_size: None,
                    },
                    count: None,
                };
                let mut entries = vec![wgpu::BindGroupLayoutEntry {
                    binding: 0,
                    visibility: wgpu::ShaderStages::COMPUTE,
                    ty: wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Uniform,
                        // Every run's parameters share one buffer, at an offset given per dispatch,
                        // so a bind group serves every run that binds the same buffers.
                        has_dynamic_offset: true,
                        min_binding_size: None,
                    },
                    count: None,
                }];
                entries.extend((0..inputs).map(|i| storage(1 + i as u32, !(writes_last_input && i + 1 == inputs))));
                entries.push(storage(1 + inputs as u32, false));
                Arc::new(
                    self.device
                        .create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor { label: Some("webformers kernel"), entries: &entries }),
                )
            })
            .clone()
    }

    pub(crate) fn pipeline(&self, kernel: Kernel) -> Result<(Arc<wgpu::ComputePipeline>, Arc<wgpu::BindGroupLayout>)> {
        let key = PipelineKey { kernel, features: self.features };
        let layout = self.layout(kernel.inputs(), kernel.writes_last_input());
        if let Some(p) = self.pipelines.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
            return Ok((p.clone(), layout));
        }
        let source = key.source(Flavor::current())?;
        let module = self.device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(kernel.file()),
            source: wgpu::ShaderSource::Wgsl(source.into()),
        });
        let pipeline_layout = self.device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some(kernel.file()),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let pipeline = Arc::new(self.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(kernel.file()),
            layout: Some(&pipeline_layout),
            module: &module,
            entry_point: Some("main"),
            compilation_options: Default::default(),
            cache: None,
        }));
        self.pipelines.lock().unwrap_or_else(|e| e.into_inner()).insert(key, pipeline.clone());
        Ok((pipeline, layout))
    }

    pub(crate) fn take_uncaptured_errors(&self) -> Vec<String> {
        std::mem::take(&mut *self.uncaptured.lock().unwrap_or_else(|e| e.into_inner()))
    }
}
