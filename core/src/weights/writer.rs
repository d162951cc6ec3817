//! A weight filled piece by piece as its bytes arrive (a tensor streamed from the Hub that spans
//! several reads), without a second whole copy where that copy would cost the most:
//!
//! - CPU: straight into the tensor's own storage;
//! - GPU in the browser: straight into its device buffer through the queue, so the wasm heap
//!   never holds the tensor (its peak stays near one network read, not the largest tensor); a
//!   matrix larger than one binding goes into row parts as `Tensor::from_bytes` would split it;
//! - GPU natively: staged on the host and uploaded once whole (and split there). (A queue write
//!   is kept in wgpu's staging memory until the next submission, so writing every piece would
//!   hold the whole model there; one mapped upload per tensor holds one tensor.)

#[cfg(any(target_arch = "wasm32", test))]
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
    /// Device buffers written through the queue: one, or the row parts of a split matrix.
    #[cfg(any(target_arch = "wasm32", test))]
    Gpu { gpu: Arc<crate::GpuContext>, parts: Vec<GpuPart>, split: bool },
    #[cfg(not(target_arch = "wasm32"))]
    Staged(Vec<u8>),
}

/// One device buffer of a tensor: its bytes `start..end`, rows `first_row..first_row + rows`.
#[cfg(any(target_arch = "wasm32", test))]
struct GpuPart {
    buffer: crate::gpu::GpuBuffer,
    start: usize,
    end: usize,
    first_row: usize,
    rows: usize,
}

impl Dest {
    /// Buffers for a weight on `gpu`, split by rows where `Tensor::from_bytes` would split it.
    #[cfg(any(target_arch = "wasm32", test))]
    fn gpu(gpu: &Arc<crate::GpuContext>, name: &str, dims: &[usize], len: usize) -> Result<Dest> {
        let what = format!("weight `{name}`");
        let split = match dims {
            [rows, _] => gpu.row_split(len, *rows, &what)?,
            _ => None,
        };
        let parts = match &split {
            None => vec![GpuPart { buffer: gpu.weight_buffer(len as u64, &what)?, start: 0, end: len, first_row: 0, rows: 0 }],
            Some(split) => {
                let row_bytes = len / dims[0];
                let mut parts = Vec::with_capacity(split.len());
                for &(first_row, rows) in split {
                    let (start, end) = (first_row * row_bytes, (first_row + rows) * row_bytes);
                    parts.push(GpuPart { buffer: gpu.weight_buffer((end - start) as u64, &what)?, start, end, first_row, rows });
                }
                parts
            }
        };
        Ok(Dest::Gpu { gpu: Arc::clone(gpu), parts, split: split.is_some() })
    }

    /// Bytes `at..at + bytes.len()`, in order; `at` and the length are multiples of 4 (but for
    /// the tensor's last bytes).
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
            #[cfg(any(target_arch = "wasm32", test))]
            Dest::Gpu { gpu, parts, .. } => {
                let end = at + bytes.len();
                // Parts start at multiples of 4 (`row_split`), so every offset within one is too.
                for part in parts.iter().filter(|p| p.start < end && at < p.end) {
                    let (from, to) = (at.max(part.start), end.min(part.end));
                    gpu.write_padded(part.buffer.raw(), (from - part.start) as u64, &bytes[from - at..to - at]);
                }
            }
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
    v.try_reserve_exact(n).map_err(|e| Error::OutOfMemory {
        what: format!("weight `{name}`"),
        needed: (n * std::mem::size_of::<T>()) as u64,
        why: format!("the host could not allocate it ({e})"),
    })?;
    Ok(v)
}

/// The most a wasm32 instance's memory can grow to (the npm builds set no lower maximum).
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
const WASM_MEMORY_MAX: u64 = 4 << 30;

/// Whether `needed` more bytes fit in wasm32 memory, `in_use` bytes of which are taken (the
/// memory's size: space freed inside it is not counted, so this errs on the side of refusing).
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
pub(crate) fn wasm_room(what: &str, needed: u64, in_use: u64) -> Result<()> {
    let left = WASM_MEMORY_MAX.saturating_sub(in_use);
    if needed > left {
        return Err(Error::OutOfMemory {
            what: what.to_string(),
            needed,
            why: format!("WebAssembly memory ends at 4 GiB and {in_use} bytes of it are in use, so {left} are left"),
        });
    }
    Ok(())
}

/// Weights of `needed` bytes about to be loaded onto `device`: in wasm32 on the CPU they live in
/// the instance's memory, so weights that cannot fit under its 4 GiB are an error before the
/// first is read, rather than a trap ("unreachable") part of the way through that kills the instance.
pub(crate) fn check_weights_fit(device: &Device, needed: u64, what: &str) -> Result<()> {
    #[cfg(target_arch = "wasm32")]
    if matches!(device, Device::Cpu) {
        return wasm_room(what, needed, core::arch::wasm32::memory_size(0) as u64 * 65536);
    }
    let _ = (device, needed, what);
    Ok(())
}

impl TensorWriter {
    pub(crate) fn new(name: &str, dtype: DType, dims: &[usize], device: &Device) -> Result<TensorWriter> {
        let len = Self::bytes(name, dtype, dims)?;
        let dest = match device {
            Device::Cpu => Dest::Cpu(room::<u32>(name, len.div_ceil(4))?),
            #[cfg(target_arch = "wasm32")]
            Device::Gpu(gpu) => Dest::gpu(gpu, name, dims, len)?,
            #[cfg(not(target_arch = "wasm32"))]
            Device::Gpu(_) => Dest::Staged(room::<u8>(name, len)?),
        };
        Ok(TensorWriter { dtype, dims: dims.to_vec(), device: device.clone(), len, written: 0, carry: [0; 4], carry_len: 0, dest })
    }

    /// The browser's way natively, for tests: pieces go straight into device buffers.
    #[cfg(all(test, not(target_arch = "wasm32")))]
    fn direct(name: &str, dtype: DType, dims: &[usize], gpu: &Arc<crate::GpuContext>) -> Result<TensorWriter> {
        let len = Self::bytes(name, dtype, dims)?;
        let dest = Dest::gpu(gpu, name, dims, len)?;
        let device = Device::Gpu(Arc::clone(gpu));
        Ok(TensorWriter { dtype, dims: dims.to_vec(), device, len, written: 0, carry: [0; 4], carry_len: 0, dest })
    }

    fn bytes(name: &str, dtype: DType, dims: &[usize]) -> Result<usize> {
        dtype.bytes_for(dims.iter().product()).map_err(|e| Error::weight(name, e))
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
            #[cfg(any(target_arch = "wasm32", test))]
            Dest::Gpu { parts, split, .. } => {
                use crate::gpu::{GpuStorage, RowPart};
                let whole = |buffer| GpuStorage::whole(Arc::new(buffer));
                if split {
                    let parts = parts.into_iter().map(|p| RowPart { storage: whole(p.buffer), first_row: p.first_row, rows: p.rows });
                    Storage::Gpu(GpuStorage::split(parts.collect()))
                } else {
                    match parts.into_iter().next() {
                        Some(p) => Storage::Gpu(whole(p.buffer)),
                        None => return Err(Error::Gpu("a weight without a buffer".into())),
                    }
                }
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
    fn weights_over_what_wasm_memory_has_left_are_an_out_of_memory_error() {
        let gib = 1u64 << 30;
        assert!(wasm_room("loading m", 3 * gib, gib).is_ok());
        match wasm_room("loading m", 3 * gib + 1, gib) {
            Err(Error::OutOfMemory { what, needed, why }) => {
                assert_eq!((what.as_str(), needed), ("loading m", 3 * gib + 1));
                assert_eq!(why, "WebAssembly memory ends at 4 GiB and 1073741824 bytes of it are in use, so 3221225472 are left");
            }
            other => panic!("expected OutOfMemory, got {other:?}"),
        }
        // A tensor no host can hold is the same kind of error, not an abort.
        match room::<u32>("huge", usize::MAX / 8) {
            Err(Error::OutOfMemory { what, .. }) => assert_eq!(what, "weight `huge`"),
            other => panic!("expected OutOfMemory, got {:?}", other.map(|v| v.len())),
        }
    }

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

    /// The browser's GPU path (pieces written straight into device buffers), natively, on an
    /// adapter told that a binding holds 96 KiB: matrices over it land in row parts (whose rows
    /// are 400 and 34 bytes, the latter not a multiple of 4) and read back as the CPU reads them.
    #[test]
    fn pieces_go_straight_into_device_buffers_split_by_rows_when_large() {
        let options = crate::GpuOptions { max_binding_bytes: Some(96 * 1024), ..Default::default() };
        let gpu = match pollster::block_on(crate::GpuContext::new(options)) {
            Ok(gpu) => gpu,
            Err(e) => {
                assert!(std::env::var("WEBFORMERS_REQUIRE_GPU").as_deref() != Ok("1"), "WEBFORMERS_REQUIRE_GPU=1 but no GPU adapter: {e}");
                eprintln!("SKIPPING: no GPU adapter ({e})");
                return;
            }
        };
        let dev = Device::Gpu(Arc::clone(&gpu));
        let values: Vec<f32> = (0..3000 * 32).map(|i| ((i * 37 % 1001) as f32 - 500.0) / 250.0).collect();
        let cases = [
            ("f32 [300, 100]: 120 KB", DType::F32, vec![300, 100], bytemuck::cast_slice(&values[..300 * 100]).to_vec()),
            ("q8_0 [3000, 32]: 102 KB", DType::Q8_0, vec![3000, 32], crate::quant::quantize(DType::Q8_0, &values).unwrap()),
            ("f16 [37]: whole", DType::F16, vec![37], values[..37].iter().flat_map(|v| half::f16::from_f32(*v).to_le_bytes()).collect()),
        ];
        for (what, dtype, dims, bytes) in &cases {
            let on_cpu = Tensor::from_bytes(bytes, *dtype, dims, &Device::Cpu).unwrap();
            for step in [7, 4096, 70001] {
                let mut w = TensorWriter::direct("t", *dtype, dims, &gpu).unwrap();
                for piece in bytes.chunks(step) {
                    w.write(piece).unwrap();
                }
                let t = w.finish().unwrap();
                let (got, want) = if dims.len() == 2 {
                    // A split matrix is read as a table (row lookups), as models read one; read
                    // back whole, it is a clear error.
                    if *dtype == DType::F32 {
                        let err = t.to_vec_f32_blocking().unwrap_err().to_string();
                        assert!(err.contains("split by rows"), "{what}: {err}");
                    }
                    // 200 rows at a time (within the output's binding), across the parts' seams.
                    let ids: Vec<u32> = (0..dims[0] as u32).collect();
                    let gather = |t: &Tensor, d: &Device| -> Vec<f32> {
                        let rows = |ids: &[u32]| t.gather_rows(&Tensor::from_u32(ids, &[ids.len()], d).unwrap()).unwrap();
                        ids.chunks(200).flat_map(|ids| rows(ids).to_vec_f32_blocking().unwrap()).collect()
                    };
                    (gather(&t, &dev), gather(&on_cpu, &Device::Cpu))
                } else {
                    (t.to_vec_f32_blocking().unwrap(), on_cpu.to_vec_f32_blocking().unwrap())
                };
                assert_eq!(got, want, "{what}, pieces of {step} bytes");
            }
        }
    }
}
