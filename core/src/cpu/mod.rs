//! The CPU backend: host storage and one `execute` per op, with kernels written over the `Simd`
//! trait (AVX-512 / AVX2+FMA, NEON, wasm simd128, scalar) and split over threads natively.

use std::ops::Range;
use std::sync::Arc;

use crate::device::Storage;
use crate::dtype::DType;
use crate::graph::Step;
use crate::layout::Layout;
use crate::ops::{GateAct, Op};
use crate::tensor::{HostData, Tensor};
use crate::{Error, Result};

mod int8;
mod kernels;
pub(crate) mod math;
mod matmul;
pub(crate) mod parallel;
mod quant;
mod vision;
pub use int8::{int8_isa_name, int8_matmul, set_int8_matmul};
pub use parallel::set_threads;
#[cfg(all(target_arch = "wasm32", target_feature = "atomics"))]
pub use parallel::wasm_pool;
pub(crate) mod simd;

/// A hint to bring `p`'s cache line into L2; nothing where the target has no such instruction.
#[inline(always)]
pub(crate) fn prefetch_l2<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch never faults, whatever the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T1 }>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// A hint to bring every cache line of `values` into L1 (see `prefetch_l2`).
#[inline(always)]
pub(crate) fn prefetch_all<T>(values: &[T]) {
    #[cfg(target_arch = "x86_64")]
    for line in (0..std::mem::size_of_val(values)).step_by(64) {
        // SAFETY: as prefetch_l2.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(values.as_ptr().cast::<i8>().wrapping_add(line));
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = values;
}

/// How many weight rows ahead a decode step's row-at-a-time kernels (quant.rs `matvec_rows`,
/// int8.rs `task_rows`) prefetch: a step reads each weight once, row after row, and without it
/// the first use of each block's bytes waited on memory. (8 beat 4 and 16 on SmolLM2.)
pub(crate) const DECODE_ROWS_AHEAD: usize = 8;

/// Host bytes, 4-byte aligned. Cloning shares them.
#[derive(Clone)]
pub(crate) struct CpuStorage(Arc<Inner>);

pub(crate) struct Inner {
    bytes: Bytes,
    /// A matmul-ready copy of a weight, made on its first use as a matmul operand: the f32
    /// GEMM's panels (`matmul::PackedB`) or the int8 GEMM's (`int8::PackedWeight`).
    packed: std::sync::Mutex<Option<Arc<dyn std::any::Any + Send + Sync>>>,
    /// Quantized from floats when the weights loaded (dtype 'q8' / 'q4'), not read quantized
    /// from a file: such weights take the int8 path by default (int8.rs).
    quantized_at_load: std::sync::atomic::AtomicBool,
}

impl Inner {
    fn new(bytes: Bytes) -> Arc<Inner> {
        Arc::new(Inner { bytes, packed: std::sync::Mutex::new(None), quantized_at_load: Default::default() })
    }
}

/// A matmul-ready form of a weight view, tagged with the view (and panel shape) it was made for.
pub(crate) trait PackedForm: Send + Sync + 'static {
    type Key: PartialEq;
    fn key(&self) -> &Self::Key;
}

enum Bytes {
    Owned {
        words: Vec<u32>,
        len: usize,
    },
    /// A range of a memory-mapped (or otherwise shared) file, used without a copy.
    Shared {
        source: Arc<dyn AsRef<[u8]> + Send + Sync>,
        range: Range<usize>,
    },
    /// Written in place by `write_rows` (a KV cache).
    Writable {
        words: std::cell::UnsafeCell<Vec<u32>>,
        len: usize,
    },
}

// SAFETY: `Writable` bytes change only in `write_at`, called by the graph runner for a WriteRows
// op; a realization runs ops one after another, and the ops that read the cache come after the
// write in that order, so no read overlaps a write.
unsafe impl Sync for Bytes {}

impl CpuStorage {
    pub(crate) fn from_bytes(bytes: &[u8]) -> Self {
        let mut words = vec![0u32; bytes.len().div_ceil(4)];
        bytemuck::cast_slice_mut::<u32, u8>(&mut words)[..bytes.len()].copy_from_slice(bytes);
        CpuStorage(Inner::new(Bytes::Owned { words, len: bytes.len() }))
    }

    /// The packed form `P` of this weight for `key`: made by `make` on first use and kept with
    /// the weight, so that a matmul repacks nothing on later calls. One form is kept: a use with
    /// another key or form replaces it.
    pub(crate) fn packed<P: PackedForm>(&self, key: &P::Key, make: impl FnOnce() -> P) -> Arc<P> {
        let slot = || self.0.packed.lock().unwrap_or_else(|e| e.into_inner());
        let cached = slot().clone().and_then(|p| p.downcast::<P>().ok());
        if let Some(p) = cached.filter(|p| p.key() == key) {
            return p;
        }
        let packed = Arc::new(make());
        *slot() = Some(packed.clone());
        packed
    }

    /// Marks blocks quantized at load (see `Inner::quantized_at_load`).
    pub(crate) fn mark_quantized_at_load(&self) {
        self.0.quantized_at_load.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    pub(crate) fn quantized_at_load(&self) -> bool {
        self.0.quantized_at_load.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Words already filled (a weight streamed straight into its storage): no copy.
    pub(crate) fn from_words(words: Vec<u32>, len: usize) -> Self {
        CpuStorage(Inner::new(Bytes::Owned { words, len }))
    }

    /// Zero-copy when the range is 4-byte aligned in memory, else one copy.
    pub(crate) fn from_shared(source: Arc<dyn AsRef<[u8]> + Send + Sync>, range: Range<usize>) -> Self {
        let slice = &(*source).as_ref()[range.clone()];
        if (slice.as_ptr() as usize) % 4 == 0 {
            CpuStorage(Inner::new(Bytes::Shared { source, range }))
        } else {
            CpuStorage::from_bytes(slice)
        }
    }

    pub(crate) fn writable(len: usize) -> Self {
        CpuStorage(Inner::new(Bytes::Writable { words: std::cell::UnsafeCell::new(vec![0u32; len.div_ceil(4)]), len }))
    }

    /// Copies `bytes` in at `at` (writable storage only; see the `Sync` note on `Bytes`).
    pub(crate) fn write_at(&self, at: usize, bytes: &[u8]) -> Result<()> {
        match &self.0.bytes {
            Bytes::Writable { words, len } if at + bytes.len() <= *len => {
                // SAFETY: see the `Sync` note on `Bytes`: no reader runs while an op writes.
                let words = unsafe { &mut *words.get() };
                bytemuck::cast_slice_mut::<u32, u8>(words)[at..at + bytes.len()].copy_from_slice(bytes);
                Ok(())
            }
            _ => Err(Error::Input("write into storage that is not a cache (engine bug)".into())),
        }
    }

    pub(crate) fn from_f32(values: Vec<f32>) -> Self {
        let len = values.len() * 4;
        let words = bytemuck::allocation::cast_vec::<f32, u32>(values);
        CpuStorage(Inner::new(Bytes::Owned { words, len }))
    }

    pub(crate) fn from_u32(words: Vec<u32>) -> Self {
        let len = words.len() * 4;
        CpuStorage(Inner::new(Bytes::Owned { words, len }))
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        match &self.0.bytes {
            Bytes::Owned { words, len } => &bytemuck::cast_slice(words)[..*len],
            Bytes::Shared { source, range } => &(**source).as_ref()[range.clone()],
            // SAFETY: see the `Sync` note on `Bytes`.
            Bytes::Writable { words, len } => &bytemuck::cast_slice(unsafe { &*words.get() })[..*len],
        }
    }

    pub(crate) fn f32s(&self) -> &[f32] {
        let b = self.bytes();
        bytemuck::cast_slice(&b[..b.len() / 4 * 4])
    }
    pub(crate) fn u32s(&self) -> &[u32] {
        let b = self.bytes();
        bytemuck::cast_slice(&b[..b.len() / 4 * 4])
    }
    pub(crate) fn f16s(&self) -> &[half::f16] {
        let b = self.bytes();
        bytemuck::cast_slice(&b[..b.len() / 2 * 2])
    }
}

/// Threads the CPU kernels split their work over.
pub fn threads() -> usize {
    parallel::threads()
}

pub(crate) fn describe() -> String {
    format!("{}, {} threads", simd::isa().name(), parallel::threads())
}

/// Input `i` of a step as its storage and view.
pub(crate) struct Input<'a> {
    pub storage: &'a CpuStorage,
    pub layout: &'a Layout,
    pub dtype: DType,
}

impl<'a> Input<'a> {
    /// The f32 values of a contiguous view.
    pub fn f32s(&self) -> &'a [f32] {
        let n = self.layout.numel();
        &self.storage.f32s()[self.layout.offset()..self.layout.offset() + n]
    }
    pub fn u32s(&self) -> &'a [u32] {
        let n = self.layout.numel();
        &self.storage.u32s()[self.layout.offset()..self.layout.offset() + n]
    }
}

fn input<'a>(step: &'a Step<'_>, t: &'a Tensor, i: usize) -> Input<'a> {
    Input { storage: step.inputs[i].cpu(), layout: t.layout(), dtype: t.dtype() }
}

pub(crate) fn execute(step: Step<'_>) -> Result<Storage> {
    let out_numel = step.node.numel;
    let out = match step.op {
        Op::Copy { src } => kernels::copy(&input(&step, src, 0), step.node.dtype)?,
        Op::Gather { table, ids } if table.dtype().is_quantized() => quant::gather(&input(&step, table, 0), &input(&step, ids, 1))?,
        Op::Gather { table, ids } => kernels::gather(&input(&step, table, 0), &input(&step, ids, 1))?,
        Op::Unary { src, op } => CpuStorage::from_f32(kernels::unary(input(&step, src, 0).f32s(), *op)),
        Op::Binary { lhs, rhs, op } => CpuStorage::from_f32(kernels::binary(&input(&step, lhs, 0), &input(&step, rhs, 1), *op, out_numel)),
        Op::Matmul { norm: Some(_), .. } => {
            // `rms_norm_linear` records the norm as an op of its own on the CPU.
            return Err(Error::Unsupported("a norm folded into a matmul on the CPU (engine bug)".into()));
        }
        Op::Matmul { a, b, bias, residual, gate, act, batch, m, n, k, norm: None } => {
            // Inputs are in the op's order: a, b, bias?, residual?.
            let r_at = 2 + bias.is_some() as usize;
            let bias = bias.as_ref().map(|t| input(&step, t, 2));
            let shape = matmul::Shape { batch: *batch, m: *m, n: *n, k: *k };
            let a_in = input(&step, a, 0);
            // The gated operand once, as a dense [batch, M, K], for kernels that read A many times.
            let gated = gate.map(|g| (CpuStorage::from_f32(gate_mul(&a_in, g)), Layout::contiguous(&[*batch, *m, *k])));
            let a_in = match &gated {
                Some((storage, layout)) => Input { storage, layout, dtype: DType::F32 },
                None => a_in,
            };
            let residual = residual.as_ref().map(|r| input(&step, r, r_at));
            let residual = residual.as_ref().map(|r| r.f32s());
            let c = if b.dtype().is_quantized() {
                quant::matmul(&a_in, &input(&step, b, 1), bias.as_ref(), *act, residual, shape)?
            } else {
                matmul::matmul(&a_in, &input(&step, b, 1), bias.as_ref(), *act, residual, shape)?
            };
            CpuStorage::from_f32(c)
        }
        Op::Norm { x, residual, weight, bias, eps, kind } => {
            // Inputs are in the op's order: x, residual?, weight, bias?.
            let r = residual.is_some() as usize;
            let xi = input(&step, x, 0);
            let residual = residual.as_ref().map(|t| input(&step, t, 1));
            let weight = input(&step, weight, 1 + r);
            let bias = bias.as_ref().map(|t| input(&step, t, 2 + r));
            let h = xi.layout.dims()[xi.layout.rank() - 1];
            CpuStorage::from_f32(kernels::norm(
                xi.f32s(),
                residual.as_ref().map(|r| r.f32s()),
                weight.f32s(),
                bias.as_ref().map(|b| b.f32s()),
                h,
                *eps,
                *kind,
            ))
        }
        Op::Softmax { x, mask, scale } => {
            let mask = mask.as_ref().map(|m| input(&step, m, 1));
            CpuStorage::from_f32(kernels::softmax(&input(&step, x, 0), mask.as_ref(), *scale))
        }
        Op::Attention { rope: Some(_), .. } | Op::Attention { append: Some(_), .. } | Op::WriteRows { rope: Some(_), .. } => {
            // `rope_attention_kv_window` and `write_rows_rope` record the rotation as an op of
            // its own on the CPU.
            return Err(Error::Unsupported("a rotary embedding folded into another op on the CPU (engine bug)".into()));
        }
        Op::Attention { q, k, v, q_offsets, kv_offsets, scale, causal, window, bias, rope: None, append: None } => {
            let bias = bias.as_ref().map(|b| input(&step, b, 5));
            CpuStorage::from_f32(kernels::attention(
                &input(&step, q, 0),
                &input(&step, k, 1),
                &input(&step, v, 2),
                (input(&step, q_offsets, 3).u32s(), input(&step, kv_offsets, 4).u32s()),
                *scale,
                kernels::KeyMask { causal: *causal, window: *window },
                bias.as_ref().map(|b| (b.f32s(), b.layout.dims()[1])),
            )?)
        }
        Op::Rope { x, positions, inv_freq, interleaved, rotated } => CpuStorage::from_f32(kernels::rope(
            &input(&step, x, 0),
            input(&step, positions, 1).u32s(),
            input(&step, inv_freq, 2).f32s(),
            *interleaved,
            *rotated,
        )),
        Op::WriteRows { dst, src, row, rope: None } => {
            let storage = step.inputs[0].cpu().clone();
            let row_bytes = dst.dtype().bytes_for(dst.dims()[1..].iter().product())?;
            let src = input(&step, src, 1);
            if src.dtype == dst.dtype() {
                let start = src.layout.offset() * src.dtype.block_bytes();
                let bytes = &src.storage.bytes()[start..start + src.dtype.bytes_for(src.layout.numel())?];
                storage.write_at(row * row_bytes, bytes)?;
            } else {
                // f32 rows into an f16 cache (the only conversion write_rows accepts): the copy
                // op's conversion.
                storage.write_at(row * row_bytes, kernels::copy(&src, dst.dtype())?.bytes())?;
            }
            storage
        }
        Op::Argmax { x } => {
            let x = input(&step, x, 0);
            let n = x.layout.dims()[1];
            CpuStorage::from_u32(x.f32s().chunks(n.max(1)).map(kernels::argmax).collect())
        }
        Op::SegmentPool { x, seq_offsets, mode } => {
            let x = input(&step, x, 0);
            let h = x.layout.dims()[1];
            CpuStorage::from_f32(kernels::segment_pool(x.f32s(), h, input(&step, seq_offsets, 1).u32s(), *mode)?)
        }
        Op::Unpack { x, seq_offsets, max_len } => {
            let x = input(&step, x, 0);
            let h = x.layout.dims()[1];
            CpuStorage::from_f32(kernels::unpack(x.f32s(), h, input(&step, seq_offsets, 1).u32s(), *max_len)?)
        }
        Op::TakeAlongLast { x, index } => {
            let (x, index) = (input(&step, x, 0), input(&step, index, 1));
            let n = x.layout.dims()[x.layout.rank() - 1];
            let m = index.layout.dims()[1];
            CpuStorage::from_f32(kernels::take_along_last(x.f32s(), index.u32s(), n, m))
        }
        Op::L2Normalize { x, eps } => {
            let x = input(&step, x, 0);
            let h = x.layout.dims()[x.layout.rank() - 1];
            CpuStorage::from_f32(kernels::l2_normalize(x.f32s(), h, *eps))
        }
        Op::Im2col { x, window } => CpuStorage::from_f32(vision::im2col(&input(&step, x, 0), window)),
        Op::GroupedConv2d { x, weight, bias, window, groups } => {
            let bias = bias.as_ref().map(|b| input(&step, b, 2));
            CpuStorage::from_f32(vision::grouped_conv2d(&input(&step, x, 0), &input(&step, weight, 1), bias.as_ref(), window, *groups))
        }
        Op::Concat { parts, dim } => {
            let parts: Vec<Input<'_>> = parts.iter().enumerate().map(|(i, t)| input(&step, t, i)).collect();
            CpuStorage::from_u32(vision::concat(&parts, *dim, out_numel))
        }
        Op::Bicubic { x, size, align_corners, antialias } => {
            CpuStorage::from_f32(vision::bicubic(&input(&step, x, 0), *size, *align_corners, *antialias))
        }
        Op::MaxPool2d { x, window } => CpuStorage::from_f32(vision::max_pool2d(&input(&step, x, 0), window)),
    };
    Ok(Storage::Cpu(out))
}

/// act(g) * a over the rows of a [batch, M, K] view, g being the same view at offset `gate`.
fn gate_mul(a: &Input<'_>, (gate, act): (usize, GateAct)) -> Vec<f32> {
    let all = a.storage.f32s();
    let base = a.layout.offset();
    let act = match act {
        GateAct::Silu => math::silu,
        GateAct::GeluTanh => math::gelu_tanh,
    };
    a.layout.storage_indices().map(|i| act(all[i - base + gate]) * all[i]).collect()
}

/// Values of a realized, contiguous f32 or u32 tensor.
pub(crate) fn read(t: &Tensor) -> Result<HostData> {
    let storage = t.node.storage().ok_or_else(|| Error::Input("read of an unrealized tensor (engine bug)".into()))?;
    let range = t.layout().offset()..t.layout().offset() + t.numel();
    match t.dtype() {
        DType::F32 => Ok(HostData::F32(storage.cpu().f32s()[range].to_vec())),
        DType::U32 | DType::I32 => Ok(HostData::U32(storage.cpu().u32s()[range].to_vec())),
        other => Err(Error::dtype("read", format!("cannot read {other} directly"))),
    }
}
