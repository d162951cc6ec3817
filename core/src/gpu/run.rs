//! One realization on the GPU: dispatches are recorded while the graph is walked, then encoded
//! into one command buffer with one uniform buffer for all their parameters, submitted once, and
//! the requested results mapped back asynchronously (the only way that also works in wasm).

use rustc_hash::FxHashMap as HashMap;
use std::sync::Arc;

use super::params::KernelParams;
use super::shaders::Kernel;
use super::{GpuContext, GpuStorage};
use crate::device::Storage;
use crate::graph::Step;
use crate::tensor::{HostData, Tensor};
use crate::{DType, Error, Result};

struct Dispatch {
    pipeline: Arc<wgpu::ComputePipeline>,
    layout: Arc<wgpu::BindGroupLayout>,
    buffers: Vec<GpuStorage>,
    params_at: u64,
    params_len: u64,
    groups: [u32; 3],
}

pub(crate) struct Run {
    pub(crate) gpu: Arc<GpuContext>,
    dispatches: Vec<Dispatch>,
    params: Vec<u8>,
}

impl Run {
    pub(crate) fn new(gpu: Arc<GpuContext>) -> Run {
        Run { gpu, dispatches: Vec::new(), params: Vec::new() }
    }

    pub(crate) fn record(&mut self, step: Step<'_>) -> Result<Storage> {
        super::record::record(self, step).map(Storage::Gpu)
    }

    /// Adds one dispatch of `kernel` with its typed parameters: `inputs` bind in order after the
    /// uniform, `output` last.
    pub(crate) fn push<P: KernelParams>(
        &mut self,
        kernel: Kernel,
        params: &P,
        inputs: Vec<GpuStorage>,
        output: &GpuStorage,
        groups: [u32; 3],
    ) -> Result<()> {
        if kernel.params() != P::DEF {
            return Err(Error::Gpu(format!("{kernel:?} dispatched with {} parameters (engine bug)", P::DEF.name)));
        }
        let params = params.bytes();
        if inputs.len() != kernel.inputs() {
            return Err(Error::Gpu(format!("{kernel:?} takes {} inputs, got {} (engine bug)", kernel.inputs(), inputs.len())));
        }
        let max = self.gpu.limits.max_compute_workgroups_per_dimension;
        if groups.iter().any(|&g| g > max) {
            return Err(Error::OverLimit {
                what: format!("{kernel:?} dispatch of {groups:?} workgroups"),
                needed: *groups.iter().max().unwrap_or(&0) as u64,
                limit: max as u64,
            });
        }
        if groups.contains(&0) {
            return Ok(());
        }
        let (pipeline, layout) = self.gpu.pipeline(kernel)?;
        let align = self.gpu.limits.min_uniform_buffer_offset_alignment.max(16) as usize;
        let params_at = self.params.len().div_ceil(align) * align;
        self.params.resize(params_at, 0);
        self.params.extend_from_slice(&params);
        let params_len = (params.len().div_ceil(16) * 16).max(16) as u64;
        self.params.resize(params_at + params_len as usize, 0);
        let mut buffers = inputs;
        buffers.push(output.clone());
        self.dispatches.push(Dispatch { pipeline, layout, buffers, params_at: params_at as u64, params_len, groups });
        Ok(())
    }

    /// Submits everything recorded and reads back `reads` (dense f32 or u32 views).
    pub(crate) async fn submit(self, reads: &[&Tensor]) -> Result<Vec<HostData>> {
        let gpu = self.gpu.clone();
        let device = &gpu.device;
        if self.dispatches.is_empty() && reads.is_empty() {
            return Ok(Vec::new());
        }
        gpu.alive()?;
        let validation = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let memory = device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);

        let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("webformers run") });
        // This run's own buffers (readback staging): freed when it ends, after its submission,
        // rather than left to the browser's garbage collector (see pool::free).
        let mut transient = Transient(Vec::new());
        // Held until the submission: another run writing its parameters into the shared uniform
        // buffer in between would be read by this one's dispatches.
        let mut bindings = gpu.bindings.lock().unwrap_or_else(|e| e.into_inner());
        if !self.dispatches.is_empty() {
            super::DISPATCHES_SUBMITTED.fetch_add(self.dispatches.len() as u64, std::sync::atomic::Ordering::Relaxed);
            bindings.forget_stale();
            let uniform = bindings.uniform_for(device, &self.params);
            gpu.queue.write_buffer(&uniform, 0, &self.params);
            let bind_groups: Vec<wgpu::BindGroup> = self.dispatches.iter().map(|d| bindings.bind_group(device, &uniform, d)).collect();
            let mut pass =
                encoder.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("webformers ops"), timestamp_writes: None });
            for (d, bg) in self.dispatches.iter().zip(&bind_groups) {
                pass.set_pipeline(&d.pipeline);
                pass.set_bind_group(0, bg, &[d.params_at as u32]);
                pass.dispatch_workgroups(d.groups[0], d.groups[1], d.groups[2]);
            }
            drop(pass);
        }

        let mut staging = Vec::new();
        for t in reads {
            let storage = t.node.storage().ok_or_else(|| Error::Gpu("read of an unrealized tensor (engine bug)".into()))?;
            if storage.gpu().parts.is_some() {
                // Its first buffer holds only the first rows: copying the whole would overrun it.
                return Err(Error::Unsupported(
                    "reading back a tensor larger than one GPU binding (it is split by rows; a matmul or a row lookup reads it)".into(),
                ));
            }
            let at = t.layout().offset() as u64 * 4;
            let size = (t.numel() as u64 * 4).max(4);
            let buffer = device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("webformers readback"),
                size,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            if t.numel() > 0 {
                encoder.copy_buffer_to_buffer(storage.gpu().buffer.raw(), at, &buffer, 0, size);
            }
            staging.push((buffer.clone(), t.dtype(), t.numel()));
            transient.0.push(buffer);
        }
        gpu.queue.submit([encoder.finish()]);
        drop(bindings);

        // Both scopes are popped before either is awaited: a scope is popped when `pop` is called,
        // and the browser's scopes are one stack per device, so another call's run pushing its own
        // while this one awaited would break the stack's order (wgpu panics on that).
        let (oom, invalid) = (memory.pop(), validation.pop());
        let (oom, invalid) = (oom.await, invalid.await);
        // A shader that failed to compile reports itself outside any scope, and the scope sees
        // only "invalid pipeline": drain those first so the real cause is what the caller reads,
        // and so it does not leak into the next run.
        let earlier = gpu.take_uncaptured_errors();
        // A device lost during the submission makes everything above fail for that reason alone.
        gpu.alive()?;
        if let Some(e) = oom {
            // Storage buffers were checked when made; what this submission made is its uniforms
            // and readbacks.
            let needed = self.params.len() as u64 + staging.iter().map(|(b, _, _)| b.size()).sum::<u64>();
            let what = "a forward pass's parameters and readbacks".to_string();
            return Err(Error::OutOfMemory { what, needed, why: format!("the GPU device refused them: {e}") });
        }
        if let Some(e) = invalid {
            let cause = earlier.first().map(|c| format!("{c}; then: ")).unwrap_or_default();
            return Err(Error::Gpu(format!("validation failed (engine bug): {cause}{e}")));
        }
        if let Some(e) = earlier.into_iter().next() {
            return Err(Error::Gpu(e));
        }

        let mut pending = Vec::new();
        for (buffer, _, _) in &staging {
            let (tx, rx) = futures_channel::oneshot::channel();
            buffer.slice(..).map_async(wgpu::MapMode::Read, move |r| {
                let _ = tx.send(r);
            });
            pending.push(rx);
        }
        #[cfg(not(target_arch = "wasm32"))]
        if !pending.is_empty() {
            device.poll(wgpu::PollType::wait_indefinitely()).map_err(|e| gpu.mapping_error("waiting for the GPU", e))?;
        }
        let mut out = Vec::with_capacity(staging.len());
        for ((buffer, dtype, numel), rx) in staging.iter().zip(pending) {
            rx.await
                .map_err(|_| Error::DeviceLost(gpu.lost().unwrap_or_else(|| "it dropped a pending read".into())))?
                .map_err(|e| gpu.mapping_error("reading results", e))?;
            let bytes = buffer.slice(..).get_mapped_range().map_err(|e| gpu.mapping_error("reading results", e))?;
            let words: &[u32] = bytemuck::cast_slice(&bytes[..numel * 4]);
            out.push(match dtype {
                DType::F32 => HostData::F32(words.iter().map(|&w| f32::from_bits(w)).collect()),
                _ => HostData::U32(words.to_vec()),
            });
            drop(bytes);
            buffer.unmap();
        }
        Ok(out)
    }
}

/// What runs share: one uniform buffer for their parameters (each run writes its own through the
/// queue, which orders the write after the runs already submitted) and the bind groups made for
/// it. A bind group is made once per (kernel layout, parameter size, buffers) and reused by every
/// later dispatch binding the same buffers (a decode step binds the same ones step after step);
/// the cache starts over when a storage buffer is destroyed or the uniform buffer grows.
#[derive(Default)]
pub(crate) struct Bindings {
    uniform: Option<wgpu::Buffer>,
    groups: HashMap<BindKey, wgpu::BindGroup>,
    /// `pool::BUFFERS_FREED` when `groups` was last known to name no destroyed buffer.
    freed_seen: u64,
}

#[derive(PartialEq, Eq, Hash)]
struct BindKey {
    layout: wgpu::BindGroupLayout,
    params_len: u64,
    buffers: Vec<wgpu::Buffer>,
}

/// Past this many, the cache starts over (shapes that keep changing, as in batched encoders,
/// would otherwise grow it without bound).
const MAX_CACHED_BIND_GROUPS: usize = 4096;

impl Bindings {
    /// Empties the cache when a storage buffer was destroyed since it was last checked (a cached
    /// group may name it) or when it has grown past `MAX_CACHED_BIND_GROUPS`.
    fn forget_stale(&mut self) {
        let freed = super::pool::BUFFERS_FREED.load(std::sync::atomic::Ordering::Relaxed);
        if freed != self.freed_seen || self.groups.len() > MAX_CACHED_BIND_GROUPS {
            self.groups.clear();
            self.freed_seen = freed;
        }
    }

    /// The uniform buffer, grown (and the cache emptied: its groups bind the old one) when
    /// `params` do not fit.
    fn uniform_for(&mut self, device: &wgpu::Device, params: &[u8]) -> wgpu::Buffer {
        match &self.uniform {
            Some(u) if u.size() >= params.len() as u64 => u.clone(),
            _ => {
                if let Some(old) = self.uniform.take() {
                    old.destroy(); // the queue keeps it for the runs already submitted
                }
                self.groups.clear();
                let size = (params.len() as u64).next_power_of_two().max(64 << 10);
                let u = device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("webformers params"),
                    size,
                    usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                });
                self.uniform = Some(u.clone());
                u
            }
        }
    }

    fn bind_group(&mut self, device: &wgpu::Device, uniform: &wgpu::Buffer, d: &Dispatch) -> wgpu::BindGroup {
        let key = BindKey {
            layout: (*d.layout).clone(),
            params_len: d.params_len,
            buffers: d.buffers.iter().map(|s| s.buffer.raw().clone()).collect(),
        };
        if let Some(bg) = self.groups.get(&key) {
            return bg.clone();
        }
        let mut entries = vec![wgpu::BindGroupEntry {
            binding: 0,
            resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                buffer: uniform,
                offset: 0,
                size: wgpu::BufferSize::new(d.params_len),
            }),
        }];
        entries.extend(
            key.buffers.iter().enumerate().map(|(i, b)| wgpu::BindGroupEntry { binding: 1 + i as u32, resource: b.as_entire_binding() }),
        );
        let bg = device.create_bind_group(&wgpu::BindGroupDescriptor { label: None, layout: &d.layout, entries: &entries });
        super::BIND_GROUPS_CREATED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.groups.insert(key, bg.clone());
        bg
    }
}

/// Buffers destroyed when dropped (a run's readback staging: see `Run::submit`).
struct Transient(Vec<wgpu::Buffer>);

impl Drop for Transient {
    fn drop(&mut self) {
        self.0.iter().for_each(wgpu::Buffer::destroy);
    }
}
