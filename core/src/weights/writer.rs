//! A weight filled piece by piece as its bytes arrive (a tensor streamed from the Hub that spans
//! several reads), without a second whole copy where that copy would cost the most:
//!
//! - CPU: straight into the tensor's own storage;
//! - GPU in the browser: straight into its device buffer through the queue, so the wasm heap
//!   never holds the tensor (its peak stays near one network read, not the largest tensor);
//! - GPU natively: staged on the host and uploaded once whole. (A queue write is kept in wgpu's
//!   staging memory until the next submission, so writing every piece would hold the whole
//!   model there; one mapped upload per tensor holds one tensor.)

#[cfg(target_arch = "wasm32")]
use std::sync::Arc;

use crate::cpu::CpuStorage;
use crate::device::Storage;
use crate::{DType, Device, Error, Result, Tensor};

pub(crate) struct TensorWriter {
    dtype: DType,
    dims: Vec<usize>,
    device: Device,
    len: usize,
    written: usize,
    /// Words go out whole (CPU words, queue writes in multiples of 4 bytes): the unaligned end of
    /// the last piece waits here.
    carry: [u8; 4],
    carry_len: usize,
    dest: Dest,
}

enum Dest {
    /// Reserved whole, grown piece by piece: never zeroed whole first.
    Cpu(Vec<u32>),
    #[cfg(target_arch = "wasm32")]
    Gpu { gpu: Arc<crate::GpuContext>, buffer: wgpu::Buffer },
    #[cfg(not(target_arch = "wasm32"))]
    Staged(Vec<u8>),
}

impl Dest {
    /// Bytes `at..at + bytes.len()`; `at` and the length are multiples of 4 (but for the last
    /// piece, padded).
    fn put(&mut self, at: usize, bytes: &[u8]) {
        match self {
            Dest::Cpu(words) => {
                debug_assert_eq!(at, words.len() * 4, "pieces arrive in order");
                // Grown by this piece only (the zeroing then touches memory the copy is about to
                // fill, still in cache), and filled by one memcpy.
                let start = words.len();
                words.resize(start + bytes.len().div_ceil(4), 0);
                bytemuck::cast_slice_mut::<u32, u8>(&mut words[start..])[..bytes.len()].copy_from_slice(bytes);
            }
            #[cfg(target_arch = "wasm32")]
            Dest::Gpu { gpu, buffer } => gpu.write_padded(buffer, at as u64, bytes),
            #[cfg(not(target_arch = "wasm32"))]
            Dest::Staged(v) => {
                debug_assert_eq!(at, v.len(), "pieces arrive in order");
                v.extend_from_slice(bytes)
            }
        }
    }
}

/// An allocation that fails is an error naming the tensor, never an abort.
fn room<T>(name: &str, n: usize) -> Result<Vec<T>> {
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(|e| Error::weight(name, format!("{} bytes: {e}", n * std::mem::size_of::<T>())))?;
    Ok(v)
}

impl TensorWriter {
    pub(crate) fn new(name: &str, dtype: DType, dims: &[usize], device: &Device) -> Result<TensorWriter> {
        let len = dtype.bytes_for(dims.iter().product()).map_err(|e| Error::weight(name, e))?;
        let dest = match device {
            Device::Cpu => Dest::Cpu(room::<u32>(name, len.div_ceil(4))?),
            #[cfg(target_arch = "wasm32")]
            Device::Gpu(gpu) => {
                let buffer = gpu.weight_buffer(len as u64, &format!("weight `{name}`"))?;
                Dest::Gpu { gpu: Arc::clone(gpu), buffer }
            }
            #[cfg(not(target_arch = "wasm32"))]
            Device::Gpu(_) => Dest::Staged(room::<u8>(name, len)?),
        };
        Ok(TensorWriter { dtype, dims: dims.to_vec(), device: device.clone(), len, written: 0, carry: [0; 4], carry_len: 0, dest })
    }

    /// Bytes written so far.
    pub(crate) fn written(&self) -> usize {
        self.written
    }

    /// Host bytes held besides the tensor's own storage (the native GPU path's staging).
    pub(crate) fn staged_bytes(&self) -> usize {
        match &self.dest {
            #[cfg(not(target_arch = "wasm32"))]
            Dest::Staged(v) => v.capacity(),
            _ => 0,
        }
    }

    /// The next bytes of the tensor.
    pub(crate) fn write(&mut self, bytes: &[u8]) -> Result<()> {
        if self.written + bytes.len() > self.len {
            return Err(Error::Input(format!("{} bytes written into a tensor of {}", self.written + bytes.len(), self.len)));
        }
        // Where the carried bytes start: always a multiple of 4.
        let mut at = self.written - self.carry_len;
        let mut rest = bytes;
        if self.carry_len > 0 {
            let n = (4 - self.carry_len).min(rest.len());
            self.carry[self.carry_len..self.carry_len + n].copy_from_slice(&rest[..n]);
            self.carry_len += n;
            rest = &rest[n..];
            if self.carry_len == 4 {
                self.dest.put(at, &self.carry);
                self.carry_len = 0;
                at += 4;
            }
        }
        let whole = rest.len() & !3;
        if whole > 0 {
            self.dest.put(at, &rest[..whole]);
        }
        let tail = &rest[whole..];
        self.carry[self.carry_len..self.carry_len + tail.len()].copy_from_slice(tail);
        self.carry_len += tail.len();
        self.written += bytes.len();
        Ok(())
    }

    /// The tensor, once every byte is written.
    pub(crate) fn finish(mut self) -> Result<Tensor> {
        if self.written != self.len {
            return Err(Error::Input(format!("a tensor of {} bytes finished after {}", self.len, self.written)));
        }
        if self.carry_len > 0 {
            let carry = self.carry;
            self.dest.put(self.len - self.carry_len, &carry[..self.carry_len]);
        }
        let storage = match self.dest {
            Dest::Cpu(words) => Storage::Cpu(CpuStorage::from_words(words, self.len)),
            #[cfg(target_arch = "wasm32")]
            Dest::Gpu { buffer, .. } => {
                Storage::Gpu(crate::gpu::GpuStorage { buffer: Arc::new(crate::gpu::GpuBuffer::unpooled(buffer)), bytes: self.len as u64 })
            }
            #[cfg(not(target_arch = "wasm32"))]
            Dest::Staged(bytes) => return Tensor::from_bytes(&bytes, self.dtype, &self.dims, &self.device),
        };
        Ok(Tensor::new_ready(storage, self.dtype, &self.dims, self.device))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_of_any_size_make_the_tensor() {
        let values: Vec<f32> = (0..37).map(|i| i as f32 * 0.5 - 3.0).collect();
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        for step in [1, 3, 4, 5, 64, 1000] {
            let mut w = TensorWriter::new("t", DType::F32, &[37], &Device::Cpu).unwrap();
            for piece in bytes.chunks(step) {
                w.write(piece).unwrap();
            }
            assert_eq!(w.written(), bytes.len());
            assert_eq!(w.finish().unwrap().to_vec_f32_blocking().unwrap(), values, "step {step}");
        }
        // 6 bytes: the last word is half a word, written at finish.
        let halves = [1.0f32, -2.5, 0.5];
        let bytes: Vec<u8> = halves.iter().flat_map(|v| half::f16::from_f32(*v).to_le_bytes()).collect();
        for step in [1, 4, 5, 6] {
            let mut w = TensorWriter::new("t", DType::F16, &[3], &Device::Cpu).unwrap();
            for piece in bytes.chunks(step) {
                w.write(piece).unwrap();
            }
            assert_eq!(w.finish().unwrap().to_vec_f32_blocking().unwrap(), halves, "f16, step {step}");
        }
        let mut w = TensorWriter::new("t", DType::F32, &[2], &Device::Cpu).unwrap();
        assert!(w.write(&[0; 9]).is_err(), "more bytes than the tensor has");
        w.write(&[0; 4]).unwrap();
        assert!(w.finish().is_err(), "fewer bytes than the tensor has");
    }
}
