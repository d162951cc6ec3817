//! Reusing device buffers. Buffers for op outputs come from size buckets and go back to their
//! bucket when their storage is dropped, so a forward pass after the first allocates nothing.
//! Weights get exact-size buffers outside the pool.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

pub(crate) const STORAGE_USAGE: wgpu::BufferUsages =
    wgpu::BufferUsages::STORAGE.union(wgpu::BufferUsages::COPY_SRC).union(wgpu::BufferUsages::COPY_DST);

/// Bucket sizes: powers of two split in 4 steps, so no buffer is more than 25% larger than asked.
pub(crate) fn bucket_size(bytes: u64) -> u64 {
    let bytes = bytes.max(256);
    let pow = bytes.next_power_of_two();
    let step = (pow / 8).max(4);
    bytes.div_ceil(step) * step
}

pub(crate) struct BufferPool {
    device: wgpu::Device,
    free: Mutex<HashMap<u64, Vec<wgpu::Buffer>>>,
}

/// A device buffer that returns to its pool (if it came from one) when dropped.
pub(crate) struct GpuBuffer {
    buffer: Option<wgpu::Buffer>,
    pool: Option<Weak<BufferPool>>,
}

impl GpuBuffer {
    pub(crate) fn raw(&self) -> &wgpu::Buffer {
        // Only `Drop` takes the buffer out.
        self.buffer.as_ref().expect("buffer present until drop")
    }

    /// A buffer outside the pool (weights, uploads).
    pub(crate) fn unpooled(buffer: wgpu::Buffer) -> GpuBuffer {
        GpuBuffer { buffer: Some(buffer), pool: None }
    }
}

impl Drop for GpuBuffer {
    fn drop(&mut self) {
        let (Some(buffer), Some(pool)) = (self.buffer.take(), self.pool.as_ref().and_then(Weak::upgrade)) else {
            return;
        };
        pool.free.lock().unwrap_or_else(|e| e.into_inner()).entry(buffer.size()).or_default().push(buffer);
    }
}

impl BufferPool {
    pub(crate) fn new(device: wgpu::Device) -> Arc<BufferPool> {
        Arc::new(BufferPool { device, free: Mutex::new(HashMap::new()) })
    }

    /// A storage buffer of at least `bytes`, reused when one of its bucket is free.
    pub(crate) fn take(self: &Arc<Self>, bytes: u64) -> Arc<GpuBuffer> {
        let size = bucket_size(bytes);
        let reused = self.free.lock().unwrap_or_else(|e| e.into_inner()).get_mut(&size).and_then(Vec::pop);
        let buffer = reused.unwrap_or_else(|| {
            self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("webformers pooled"),
                size,
                usage: STORAGE_USAGE,
                mapped_at_creation: false,
            })
        });
        Arc::new(GpuBuffer { buffer: Some(buffer), pool: Some(Arc::downgrade(self)) })
    }

    /// Bytes held by free buffers (for benchmarks' memory figures).
    pub(crate) fn idle_bytes(&self) -> u64 {
        self.free.lock().unwrap_or_else(|e| e.into_inner()).iter().map(|(size, v)| size * v.len() as u64).sum()
    }

    /// Frees every idle buffer.
    pub(crate) fn trim(&self) {
        self.free.lock().unwrap_or_else(|e| e.into_inner()).clear();
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
