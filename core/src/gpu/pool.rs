//! Reusing device buffers. Buffers for op outputs come from size buckets and go back to their
//! bucket when their storage is dropped, so a forward pass after the first allocates nothing.
//! Weights over `POOLED_UPLOAD_BYTES` (64 KiB) get exact-size buffers outside the pool; smaller
//! uploads, a step's inputs and small weights alike, come from it (see `GpuContext::upload`).

use rustc_hash::FxHashMap as HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use crate::{Error, Result};

/// Device buffers this process holds through the engine (in use or idle in a pool), and their
/// bytes: what a long-running page or server watches for leaks (bench/soak.sh).
static LIVE_BUFFERS: AtomicU64 = AtomicU64::new(0);
static LIVE_BYTES: AtomicU64 = AtomicU64::new(0);

/// (buffers, bytes) of device memory the engine holds now, over every device of the process:
/// weights, activations in use and pooled ones waiting for reuse (not per-call uniforms and
/// readback staging, which live only during a call).
pub fn live_buffers() -> (u64, u64) {
    (LIVE_BUFFERS.load(Ordering::Relaxed), LIVE_BYTES.load(Ordering::Relaxed))
}

/// Storage buffers destroyed so far (any context): a bind group cached before a destruction may
/// name a destroyed buffer, so the cache (run.rs) starts over when this moves.
pub(crate) static BUFFERS_FREED: AtomicU64 = AtomicU64::new(0);

fn count_created(buffer: &wgpu::Buffer) {
    LIVE_BUFFERS.fetch_add(1, Ordering::Relaxed);
    LIVE_BYTES.fetch_add(buffer.size(), Ordering::Relaxed);
}

/// Frees a buffer nothing will use again. Dropping a `wgpu::Buffer` is not enough in the browser:
/// wgpu's WebGPU backend leaves the GPUBuffer to the JS garbage collector, which does not see GPU
/// memory, so a disposed pipeline's weights would stay on the GPU for an unbounded time (the soak
/// counted every buffer of every pipeline still alive). Work already submitted with the buffer
/// completes first (WebGPU and wgpu defer the free); every command that uses a buffer holds it
/// (`Run`'s dispatches) until it is submitted, so none is still being recorded.
/// Its bytes go back to `memory`, the budget of the context that made it.
fn free(buffer: wgpu::Buffer, memory: &Memory) {
    BUFFERS_FREED.fetch_add(1, Ordering::Relaxed);
    memory.release(buffer.size());
    LIVE_BUFFERS.fetch_sub(1, Ordering::Relaxed);
    LIVE_BYTES.fetch_sub(buffer.size(), Ordering::Relaxed);
    buffer.destroy();
}

pub(crate) const STORAGE_USAGE: wgpu::BufferUsages =
    wgpu::BufferUsages::STORAGE.union(wgpu::BufferUsages::COPY_SRC).union(wgpu::BufferUsages::COPY_DST);

/// Bucket sizes: powers of two split in 4 steps, so no buffer is more than 25% larger than asked.
pub(crate) fn bucket_size(bytes: u64) -> u64 {
    let bytes = bytes.max(256);
    let pow = bytes.next_power_of_two();
    let step = (pow / 8).max(4);
    bytes.div_ceil(step) * step
}

/// Device memory held by one context's storage buffers, against an optional budget
/// (`GpuOptions::memory_budget`): a buffer over it is an `OutOfMemory` error before wgpu is asked.
pub(crate) struct Memory {
    used: AtomicU64,
    budget: Option<u64>,
}

impl Memory {
    pub(crate) fn new(budget: Option<u64>) -> Arc<Memory> {
        Arc::new(Memory { used: AtomicU64::new(0), budget })
    }

    pub(crate) fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    pub(crate) fn reserve(&self, bytes: u64, what: &str) -> Result<()> {
        let Some(budget) = self.budget else {
            self.used.fetch_add(bytes, Ordering::Relaxed);
            return Ok(());
        };
        self.used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| used.checked_add(bytes).filter(|&total| total <= budget))
            .map(|_| ())
            .map_err(|used| Error::OutOfMemory {
                what: what.to_string(),
                needed: bytes,
                why: format!("{used} of the GPU's {budget}-byte memory budget are in use"),
            })
    }

    pub(crate) fn release(&self, bytes: u64) {
        self.used.fetch_sub(bytes, Ordering::Relaxed);
    }
}

/// Creates a storage buffer of `size` bytes counted in `memory`. Natively, wgpu's refusal (out of
/// memory) is caught with an error scope and returned; in the browser the scope's answer is a
/// promise, so a refusal there reaches the uncaptured-error handler and the next submission.
pub(crate) fn create(
    device: &wgpu::Device,
    memory: &Memory,
    size: u64,
    mapped: bool,
    label: &'static str,
    what: &str,
) -> Result<wgpu::Buffer> {
    memory.reserve(size, what)?;
    #[cfg(not(target_arch = "wasm32"))]
    let scope = device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
    let buffer =
        device.create_buffer(&wgpu::BufferDescriptor { label: Some(label), size, usage: STORAGE_USAGE, mapped_at_creation: mapped });
    #[cfg(not(target_arch = "wasm32"))]
    if let Some(e) = ready(scope.pop()).flatten() {
        memory.release(size);
        return Err(Error::OutOfMemory { what: what.to_string(), needed: size, why: format!("the GPU device refused it: {e}") });
    }
    count_created(&buffer);
    Ok(buffer)
}

/// A future's output when it is ready on its first poll: natively, wgpu answers error scopes
/// at once.
#[cfg(not(target_arch = "wasm32"))]
fn ready<F: std::future::Future>(future: F) -> Option<F::Output> {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match std::pin::pin!(future).poll(&mut cx) {
        std::task::Poll::Ready(out) => Some(out),
        std::task::Poll::Pending => None,
    }
}

pub(crate) struct BufferPool {
    device: wgpu::Device,
    memory: Arc<Memory>,
    free: Mutex<HashMap<u64, Vec<wgpu::Buffer>>>,
}

/// A device buffer that returns to its pool (if it came from one) when dropped, else gives its
/// bytes back to the context's memory count.
pub(crate) struct GpuBuffer {
    buffer: Option<wgpu::Buffer>,
    pool: Option<Weak<BufferPool>>,
    memory: Arc<Memory>,
}

impl GpuBuffer {
    pub(crate) fn raw(&self) -> &wgpu::Buffer {
        // Only `Drop` takes the buffer out.
        self.buffer.as_ref().expect("buffer present until drop")
    }

    /// A buffer outside the pool (weights, uploads), made by `create` with `memory`.
    pub(crate) fn unpooled(buffer: wgpu::Buffer, memory: Arc<Memory>) -> GpuBuffer {
        GpuBuffer { buffer: Some(buffer), pool: None, memory }
    }
}

impl Drop for GpuBuffer {
    fn drop(&mut self) {
        let Some(buffer) = self.buffer.take() else { return };
        match self.pool.as_ref().and_then(Weak::upgrade) {
            Some(pool) => pool.free.lock().unwrap_or_else(|e| e.into_inner()).entry(buffer.size()).or_default().push(buffer),
            None => free(buffer, &self.memory),
        }
    }
}

impl BufferPool {
    pub(crate) fn new(device: wgpu::Device, memory: Arc<Memory>) -> Arc<BufferPool> {
        Arc::new(BufferPool { device, memory, free: Mutex::new(HashMap::default()) })
    }

    /// A storage buffer of at least `bytes`, reused when one of its bucket is free. Over the
    /// memory budget, idle buffers of other sizes are freed first.
    pub(crate) fn take(self: &Arc<Self>, bytes: u64, what: &str) -> Result<Arc<GpuBuffer>> {
        let size = bucket_size(bytes);
        // The lowest buffer (wgpu's handle order) rather than the last freed: steps that take and
        // free in the same order then get the same buffers every time, so the bind groups made
        // for the first step serve the next ones (run.rs), instead of a shuffled set each step.
        let reused = self.free.lock().unwrap_or_else(|e| e.into_inner()).get_mut(&size).and_then(|idle| {
            let lowest = idle.iter().enumerate().min_by(|a, b| a.1.cmp(b.1)).map(|(i, _)| i)?;
            Some(idle.swap_remove(lowest))
        });
        let buffer = match reused {
            Some(b) => b,
            None => match create(&self.device, &self.memory, size, false, "webformers pooled", what) {
                Ok(b) => b,
                Err(_) if self.idle_bytes() > 0 => {
                    self.trim();
                    create(&self.device, &self.memory, size, false, "webformers pooled", what)?
                }
                Err(e) => return Err(e),
            },
        };
        Ok(Arc::new(GpuBuffer { buffer: Some(buffer), pool: Some(Arc::downgrade(self)), memory: self.memory.clone() }))
    }

    /// Bytes held by free buffers (for benchmarks' memory figures).
    pub(crate) fn idle_bytes(&self) -> u64 {
        self.free.lock().unwrap_or_else(|e| e.into_inner()).iter().map(|(size, v)| size * v.len() as u64).sum()
    }

    /// Frees every idle buffer.
    pub(crate) fn trim(&self) {
        let idle = std::mem::take(&mut *self.free.lock().unwrap_or_else(|e| e.into_inner()));
        idle.into_values().flatten().for_each(|buffer| free(buffer, &self.memory));
    }
}

impl Drop for BufferPool {
    fn drop(&mut self) {
        self.trim();
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn buckets_waste_at_most_a_quarter() {
        for bytes in [1u64, 255, 256, 257, 1000, 4096, 5000, 123_456_789] {
            let b = super::bucket_size(bytes);
            assert!(b >= bytes && b % 4 == 0, "{bytes} -> {b}");
            assert!(bytes < 256 || b as f64 <= bytes as f64 * 1.25 + 4.0, "{bytes} -> {b}");
        }
    }
}
