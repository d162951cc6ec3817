//! ggml's quantized block formats, as GGUF files store them: one `#[repr(C)]` struct per block
//! type (sizes asserted against `DType`), a plain dequantization of each, and quantizers for the
//! 32-value types (used by tests to make quantized weights).
//!
//! Every struct field is a byte array (f16 scales included), so blocks have alignment 1 and a
//! tensor's bytes can be viewed as a slice of blocks wherever they sit. The dequantizations follow
//! ggml's reference code operation by operation (same products, same order), so they match the
//! `gguf` Python package exactly; tests/fixtures/quant-reference.json checks that. The CPU kernels
//! call the same `dequantize` methods (they are simple loops the compiler vectorizes), and the
//! WGSL decoders in shaders/quant.wgsl are tested against them.

use bytemuck::{Pod, Zeroable};
use half::f16;

use crate::dtype::{self, DType};
use crate::{Error, Result};

/// An f16 stored as its two little-endian bytes (alignment 1, unlike `half::f16`).
#[repr(transparent)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct F16Bytes(pub [u8; 2]);

impl F16Bytes {
    #[inline(always)]
    pub fn get(self) -> f32 {
        f16::from_le_bytes(self.0).to_f32()
    }
    pub fn new(v: f32) -> F16Bytes {
        F16Bytes(f16::from_f32(v).to_le_bytes())
    }
}

/// 32 values: `d * qs[i]`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct BlockQ8_0 {
    pub d: F16Bytes,
    pub qs: [i8; 32],
}

/// 32 values: `d * (q - 8)`, q the low nibbles of `qs` (values 0..16) then the high ones (16..32).
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct BlockQ4_0 {
    pub d: F16Bytes,
    pub qs: [u8; 16],
}

/// 32 values: `d * q + m`, nibbles as in Q4_0.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct BlockQ4_1 {
    pub d: F16Bytes,
    pub m: F16Bytes,
    pub qs: [u8; 16],
}

/// 256 values in 8 sub-blocks of 32: `d * sc[j] * q - dmin * m[j]`, with 6-bit scales and mins
/// packed in `scales` (see `scale_min_k4`). Sub-blocks 2i and 2i+1 are the low and high nibbles
/// of `qs[32 i .. 32 i + 32]`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct BlockQ4K {
    pub d: F16Bytes,
    pub dmin: F16Bytes,
    pub scales: [u8; 12],
    pub qs: [u8; 128],
}

/// Q4_K plus a fifth bit: bit j of `qh[l]` is the high bit of value l of sub-block j.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct BlockQ5K {
    pub d: F16Bytes,
    pub dmin: F16Bytes,
    pub scales: [u8; 12],
    pub qh: [u8; 32],
    pub qs: [u8; 128],
}

/// 256 values: `d * scales[v / 16] * (q - 32)` with 6-bit q: 4 bits from `ql`, 2 from `qh`.
/// Value v = 128 n + 32 s + l (n < 2, s < 4, l < 32) takes nibble s / 2 of `ql[64 n + 32 (s % 2) + l]`
/// and bits 2s, 2s+1 of `qh[32 n + l]`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct BlockQ6K {
    pub ql: [u8; 128],
    pub qh: [u8; 64],
    pub scales: [i8; 16],
    pub d: F16Bytes,
}

const _: () = assert!(std::mem::size_of::<BlockQ8_0>() == dtype::Q8_0_BLOCK.1);
const _: () = assert!(std::mem::size_of::<BlockQ4_0>() == dtype::Q4_0_BLOCK.1);
const _: () = assert!(std::mem::size_of::<BlockQ4_1>() == dtype::Q4_1_BLOCK.1);
const _: () = assert!(std::mem::size_of::<BlockQ4K>() == dtype::Q4K_BLOCK.1);
const _: () = assert!(std::mem::size_of::<BlockQ5K>() == dtype::Q5K_BLOCK.1);
const _: () = assert!(std::mem::size_of::<BlockQ6K>() == dtype::Q6K_BLOCK.1);
const _: () = assert!(std::mem::align_of::<BlockQ6K>() == 1 && std::mem::align_of::<BlockQ4_0>() == 1);

/// A ggml block type.
pub trait QuantBlock: Pod + Send + Sync {
    const DTYPE: DType;
    /// Values per block.
    const LEN: usize;
    /// Writes the block's `LEN` values to `out[..LEN]`.
    fn dequantize(&self, out: &mut [f32]);
}

impl QuantBlock for BlockQ8_0 {
    const DTYPE: DType = DType::Q8_0;
    const LEN: usize = 32;
    #[inline(always)]
    fn dequantize(&self, out: &mut [f32]) {
        let d = self.d.get();
        for (o, &q) in out[..32].iter_mut().zip(&self.qs) {
            *o = q as f32 * d;
        }
    }
}

impl QuantBlock for BlockQ4_0 {
    const DTYPE: DType = DType::Q4_0;
    const LEN: usize = 32;
    #[inline(always)]
    fn dequantize(&self, out: &mut [f32]) {
        let d = self.d.get();
        let (lo, hi) = out[..32].split_at_mut(16);
        for i in 0..16 {
            lo[i] = d * ((self.qs[i] & 0xF) as i32 - 8) as f32;
            hi[i] = d * ((self.qs[i] >> 4) as i32 - 8) as f32;
        }
    }
}

impl QuantBlock for BlockQ4_1 {
    const DTYPE: DType = DType::Q4_1;
    const LEN: usize = 32;
    #[inline(always)]
    fn dequantize(&self, out: &mut [f32]) {
        let (d, m) = (self.d.get(), self.m.get());
        let (lo, hi) = out[..32].split_at_mut(16);
        for i in 0..16 {
            lo[i] = d * (self.qs[i] & 0xF) as f32 + m;
            hi[i] = d * (self.qs[i] >> 4) as f32 + m;
        }
    }
}

/// Scale and min of sub-block `j` (0..8) of a Q4_K / Q5_K block: 6 bits each. Sub-blocks 0..4
/// keep theirs in the low 6 bits of bytes j and j + 4; sub-blocks 4..8 split theirs between a
/// nibble of byte j + 4 and the top 2 bits of bytes j - 4 (scale) and j (min).
#[inline(always)]
pub fn scale_min_k4(j: usize, q: &[u8; 12]) -> (u8, u8) {
    if j < 4 { (q[j] & 63, q[j + 4] & 63) } else { ((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4), (q[j + 4] >> 4) | ((q[j] >> 6) << 4)) }
}

impl QuantBlock for BlockQ4K {
    const DTYPE: DType = DType::Q4K;
    const LEN: usize = 256;
    #[inline(always)]
    fn dequantize(&self, out: &mut [f32]) {
        let (d, dmin) = (self.d.get(), self.dmin.get());
        for j in 0..8 {
            let (sc, m) = scale_min_k4(j, &self.scales);
            let (scale, min) = (d * sc as f32, dmin * m as f32);
            let qs = &self.qs[32 * (j / 2)..][..32];
            let shift = 4 * (j % 2);
            for (o, &q) in out[32 * j..][..32].iter_mut().zip(qs) {
                *o = scale * ((q >> shift) & 0xF) as f32 - min;
            }
        }
    }
}

impl QuantBlock for BlockQ5K {
    const DTYPE: DType = DType::Q5K;
    const LEN: usize = 256;
    #[inline(always)]
    fn dequantize(&self, out: &mut [f32]) {
        let (d, dmin) = (self.d.get(), self.dmin.get());
        for j in 0..8 {
            let (sc, m) = scale_min_k4(j, &self.scales);
            let (scale, min) = (d * sc as f32, dmin * m as f32);
            let qs = &self.qs[32 * (j / 2)..][..32];
            let shift = 4 * (j % 2);
            for ((o, &q), &h) in out[32 * j..][..32].iter_mut().zip(qs).zip(&self.qh) {
                let v = ((q >> shift) & 0xF) | (((h >> j) & 1) << 4);
                *o = scale * v as f32 - min;
            }
        }
    }
}

impl QuantBlock for BlockQ6K {
    const DTYPE: DType = DType::Q6K;
    const LEN: usize = 256;
    #[inline(always)]
    fn dequantize(&self, out: &mut [f32]) {
        let d = self.d.get();
        for n in 0..2 {
            for s in 0..4 {
                let ql = &self.ql[64 * n + 32 * (s % 2)..][..32];
                let qh = &self.qh[32 * n..][..32];
                let base = 128 * n + 32 * s;
                for l in 0..32 {
                    let q = ((ql[l] >> (4 * (s / 2))) & 0xF) | (((qh[l] >> (2 * s)) & 3) << 4);
                    let scale = d * self.scales[base / 16 + l / 16] as f32;
                    out[base + l] = scale * (q as i32 - 32) as f32;
                }
            }
        }
    }
}

/// `bytes` as blocks of `B`; an error unless they are a whole number of blocks.
pub fn blocks<B: QuantBlock>(bytes: &[u8]) -> Result<&[B]> {
    bytemuck::try_cast_slice(bytes).map_err(|_| {
        Error::dtype(
            "dequantize",
            format!("{} bytes are not a whole number of {} blocks of {} bytes", bytes.len(), B::DTYPE, B::DTYPE.block_bytes()),
        )
    })
}

fn dequantize_as<B: QuantBlock>(bytes: &[u8]) -> Result<Vec<f32>> {
    let blocks = blocks::<B>(bytes)?;
    let mut out = vec![0f32; blocks.len() * B::LEN];
    for (b, o) in blocks.iter().zip(out.chunks_exact_mut(B::LEN)) {
        b.dequantize(o);
    }
    Ok(out)
}

/// Calls `$f::<BlockType>($args)` for a quantized `$dtype`, or evaluates `$other` for plain types.
macro_rules! with_block {
    ($dtype:expr, $f:ident ( $($arg:expr),* ), $other:expr) => {
        match $dtype {
            $crate::dtype::DType::Q8_0 => $f::<$crate::quant::BlockQ8_0>($($arg),*),
            $crate::dtype::DType::Q4_0 => $f::<$crate::quant::BlockQ4_0>($($arg),*),
            $crate::dtype::DType::Q4_1 => $f::<$crate::quant::BlockQ4_1>($($arg),*),
            $crate::dtype::DType::Q4K => $f::<$crate::quant::BlockQ4K>($($arg),*),
            $crate::dtype::DType::Q5K => $f::<$crate::quant::BlockQ5K>($($arg),*),
            $crate::dtype::DType::Q6K => $f::<$crate::quant::BlockQ6K>($($arg),*),
            _ => $other,
        }
    };
}
pub(crate) use with_block;

/// The values of `bytes` holding `dtype` data (quantized blocks, or f32 / f16 / bf16).
pub fn dequantize(dtype: DType, bytes: &[u8]) -> Result<Vec<f32>> {
    with_block!(dtype, dequantize_as(bytes), {
        let size = dtype.block_bytes();
        if bytes.len() % size != 0 {
            return Err(Error::dtype("dequantize", format!("{} bytes of {dtype}", bytes.len())));
        }
        let c = bytes.chunks_exact(size);
        match dtype {
            DType::F32 => Ok(c.map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()),
            DType::F16 => Ok(c.map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32()).collect()),
            DType::BF16 => Ok(c.map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32()).collect()),
            other => Err(Error::dtype("dequantize", format!("{other} is not a float type"))),
        }
    })
}

/// ggml's Q5_0 block, a storage format only: 32 values `d * (q - 16)`, q the 4 low bits from
/// `qs` (nibbles as in Q4_0) and the fifth from bit i of `qh` (little-endian u32).
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct BlockQ5_0 {
    pub d: F16Bytes,
    pub qh: [u8; 4],
    pub qs: [u8; 16],
}
const _: () = assert!(std::mem::size_of::<BlockQ5_0>() == 22);

/// Q5_0 blocks rewritten as Q8_0 blocks of the same values, exactly: both are a shared f16
/// scale times 32 small integers, and Q5_0's (-16..16) fit Q8_0's i8. No kernel reads Q5_0;
/// GGUF files that mix it in (Gemma 3's Q4_K_M) load it this way, at 34 bytes a block for 22.
pub fn q5_0_to_q8_0(bytes: &[u8]) -> Result<Vec<u8>> {
    let blocks: &[BlockQ5_0] = bytemuck::try_cast_slice(bytes)
        .map_err(|_| Error::dtype("q5_0_to_q8_0", format!("{} bytes are not a whole number of q5_0 blocks of 22 bytes", bytes.len())))?;
    let mut out = Vec::with_capacity(blocks.len() * Q8_0_BYTES);
    for b in blocks {
        let qh = u32::from_le_bytes(b.qh);
        let mut q8 = BlockQ8_0 { d: b.d, qs: [0; 32] };
        for j in 0..16 {
            let lo = (b.qs[j] & 0x0F) | ((((qh >> j) << 4) & 0x10) as u8);
            let hi = (b.qs[j] >> 4) | (((qh >> (j + 12)) & 0x10) as u8);
            q8.qs[j] = lo as i8 - 16;
            q8.qs[j + 16] = hi as i8 - 16;
        }
        out.extend_from_slice(bytemuck::bytes_of(&q8));
    }
    Ok(out)
}
const Q8_0_BYTES: usize = dtype::Q8_0_BLOCK.1;

/// The block types `quantize` makes (and `Tensor::to_dtype` converts floats into).
pub const QUANTIZABLE: &[DType] = &[DType::Q8_0, DType::Q4_0, DType::Q4_1];

/// Quantizes `values` (a whole number of 32-value blocks) to Q8_0, Q4_0 or Q4_1 the way ggml's
/// reference quantizers do. The k-quant types have no quantizer here.
pub fn quantize(dtype: DType, values: &[f32]) -> Result<Vec<u8>> {
    if !QUANTIZABLE.contains(&dtype) {
        return Err(Error::Unsupported(format!("quantizing to {dtype}")));
    }
    if values.len() % 32 != 0 {
        return Err(Error::dtype("quantize", format!("{} values are not a whole number of {dtype} blocks of 32", values.len())));
    }
    let mut out = Vec::with_capacity(dtype.bytes_for(values.len())?);
    for x in values.chunks_exact(32) {
        match dtype {
            DType::Q8_0 => {
                let amax = x.iter().fold(0f32, |m, v| m.max(v.abs()));
                let d = amax / 127.0;
                let id = if d == 0.0 { 0.0 } else { 1.0 / d };
                let mut b = BlockQ8_0 { d: F16Bytes::new(d), qs: [0; 32] };
                for (q, &v) in b.qs.iter_mut().zip(x) {
                    *q = (v * id).round() as i8;
                }
                out.extend_from_slice(bytemuck::bytes_of(&b));
            }
            DType::Q4_0 => {
                // The value of largest magnitude, sign kept, maps to -8.
                let max = x.iter().fold(0f32, |m, &v| if v.abs() > m.abs() { v } else { m });
                let d = max / -8.0;
                let id = if d == 0.0 { 0.0 } else { 1.0 / d };
                let q = |v: f32| ((v * id + 8.5) as u8).min(15);
                let mut b = BlockQ4_0 { d: F16Bytes::new(d), qs: [0; 16] };
                for i in 0..16 {
                    b.qs[i] = q(x[i]) | (q(x[16 + i]) << 4);
                }
                out.extend_from_slice(bytemuck::bytes_of(&b));
            }
            _ => {
                let min = x.iter().copied().fold(f32::INFINITY, f32::min);
                let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let d = (max - min) / 15.0;
                let id = if d == 0.0 { 0.0 } else { 1.0 / d };
                let q = |v: f32| (((v - min) * id + 0.5) as u8).min(15);
                let mut b = BlockQ4_1 { d: F16Bytes::new(d), m: F16Bytes::new(min), qs: [0; 16] };
                for i in 0..16 {
                    b.qs[i] = q(x[i]) | (q(x[16 + i]) << 4);
                }
                out.extend_from_slice(bytemuck::bytes_of(&b));
            }
        }
    }
    Ok(out)
}

/// Quantizes weights at load (dtype 'q4' / 'q8'): as `quantize`, except that Q4_1 blocks take
/// the scale and minimum of least squared error (`q4_1_searched`) instead of min..max. The GPU's
/// quantize.wgsl makes the same choice with the same arithmetic.
pub fn quantize_at_load(dtype: DType, values: &[f32]) -> Result<Vec<u8>> {
    if dtype != DType::Q4_1 {
        return quantize(dtype, values);
    }
    if values.len() % 32 != 0 {
        return Err(Error::dtype("quantize", format!("{} values are not a whole number of {dtype} blocks of 32", values.len())));
    }
    // The search costs about 50 ns a weight on one thread: spread it over the CPU threads.
    let mut blocks = vec![BlockQ4_1 { d: F16Bytes::default(), m: F16Bytes::default(), qs: [0; 16] }; values.len() / 32];
    const CHUNK: usize = 1024;
    crate::cpu::parallel::for_each_chunk(&mut blocks, CHUNK, |i, out| {
        for (b, x) in out.iter_mut().zip(values[i * CHUNK * 32..].chunks_exact(32)) {
            *b = q4_1_searched(x.try_into().expect("32 values"));
        }
    });
    Ok(bytemuck::cast_slice(&blocks).to_vec())
}

/// Candidate level spacings tried by `q4_1_searched`: (range) / (14 + 0.1 i), i = 0..=20
/// (quantize.wgsl has the same constant).
const Q4_1_SEARCH_STEPS: u32 = 20;

/// A Q4_1 block whose (scale, min) minimize the block's squared error, as llama.cpp's
/// make_qkx2_quants does: round-to-nearest over min..max is one candidate; each other spacing
/// assigns levels, then the least-squares line through (level, value) gives its scale and min.
/// The lowest error with the f16-rounded scale and min wins (the first on ties). On
/// all-MiniLM-L6-v2 this lowers the weights' relative RMS error from 0.081 to 0.072 and raises
/// the embeddings' lowest / median cosine to PyTorch from 0.903 / 0.962 to 0.935 / 0.975
/// (BENCHMARKS.md, "Precision"). Sums run in 8 lanes (`lane_sum`), which vectorizes here and which
/// the GPU's copy (quantize.wgsl) follows step by step.
pub fn q4_1_searched(x: &[f32; 32]) -> BlockQ4_1 {
    let min = x.iter().copied().fold(f32::INFINITY, f32::min);
    let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let range = max - min;
    // Levels 0..=15 of every value for a level spacing 1 / `scale` from `min` (values >= min, so
    // the truncation rounds to nearest).
    let levels_at = |scale: f32| -> [f32; 32] { std::array::from_fn(|j| (((x[j] - min) * scale + 0.5) as i32).min(15) as f32) };
    // Round-to-nearest over min..max, as `quantize`.
    let d = range / 15.0;
    let id = if d == 0.0 { 0.0 } else { 1.0 / d };
    let mut best = (F16Bytes::new(d), F16Bytes::new(min), id);
    if range > 0.0 {
        let error = |d: f32, m: f32, l: &[f32; 32]| {
            lane_sum(|j| {
                let diff = d * l[j] + m - x[j];
                diff * diff
            })
        };
        let mut best_err = error(best.0.get(), best.1.get(), &levels_at(id));
        let sx = lane_sum(|j| x[j]);
        for i in 0..=Q4_1_SEARCH_STEPS {
            let iscale = (14.0 + 0.1 * i as f32) / range;
            let l = levels_at(iscale);
            let sl = lane_sum(|j| l[j]);
            let sl2 = lane_sum(|j| l[j] * l[j]);
            let sxl = lane_sum(|j| x[j] * l[j]);
            let det = 32.0 * sl2 - sl * sl;
            if det <= 0.0 {
                continue;
            }
            let scale = (32.0 * sxl - sx * sl) / det;
            let offset = (sl2 * sx - sl * sxl) / det;
            if scale <= 0.0 {
                continue;
            }
            let (ds, ms) = (F16Bytes::new(scale), F16Bytes::new(offset));
            let err = error(ds.get(), ms.get(), &l);
            if err < best_err {
                best_err = err;
                best = (ds, ms, iscale);
            }
        }
    }
    let (d, m, level_scale) = best;
    let levels = levels_at(level_scale);
    let mut b = BlockQ4_1 { d, m, qs: [0; 16] };
    for i in 0..16 {
        b.qs[i] = levels[i] as u8 | ((levels[16 + i] as u8) << 4);
    }
    b
}

/// The sum of `term(j)` over j < 32 in 8 lanes (lane l adds j = l, l + 8, l + 16, l + 24 in
/// turn), the lanes then added pairwise: an order a vector unit keeps and a shader can repeat.
#[inline(always)]
fn lane_sum(term: impl Fn(usize) -> f32) -> f32 {
    let mut acc = [0f32; 8];
    for c in 0..4 {
        for (l, a) in acc.iter_mut().enumerate() {
            *a += term(8 * c + l);
        }
    }
    ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q5_0_becomes_the_same_values_in_q8_0() {
        // Two blocks of arbitrary bits: value i is (its nibble | bit i of qh << 4) - 16, times d.
        let mut bytes = Vec::new();
        for (k, d) in [(3u32, 0.125f32), (11, -2.5)] {
            let qh = 0x9E37_79B9u32.wrapping_mul(k + 1);
            let qs: [u8; 16] = std::array::from_fn(|i| (i as u8).wrapping_mul(37).wrapping_add(k as u8 * 91));
            bytes.extend_from_slice(bytemuck::bytes_of(&BlockQ5_0 { d: F16Bytes::new(d), qh: qh.to_le_bytes(), qs }));
        }
        let got = dequantize(DType::Q8_0, &q5_0_to_q8_0(&bytes).unwrap()).unwrap();
        for (b, block) in bytes.chunks(22).enumerate() {
            let d = F16Bytes([block[0], block[1]]).get();
            let qh = u32::from_le_bytes([block[2], block[3], block[4], block[5]]);
            for i in 0..32 {
                let nibble = if i < 16 { block[6 + i] & 0xF } else { block[6 + i - 16] >> 4 };
                let q = (nibble as u32 | ((qh >> i) & 1) << 4) as f32 - 16.0;
                assert_eq!(got[32 * b + i], d * q, "block {b} value {i}");
            }
        }
        assert!(q5_0_to_q8_0(&bytes[..21]).is_err());
    }

    #[test]
    fn q4_1_search_is_never_worse_than_round_to_nearest() {
        // Weight-like blocks (a bell curve, some with an outlier): the searched block's squared
        // error is at most round-to-nearest's in every block, and clearly lower in sum.
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut uniform = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 24) as f32
        };
        let values: Vec<f32> = (0..32 * 500)
            .map(|i| {
                let bell = (0..4).map(|_| uniform()).sum::<f32>() - 2.0;
                if i % 97 == 0 { bell * 8.0 } else { bell * 0.05 }
            })
            .collect();
        let rtn = dequantize(DType::Q4_1, &quantize(DType::Q4_1, &values).unwrap()).unwrap();
        let searched = dequantize(DType::Q4_1, &quantize_at_load(DType::Q4_1, &values).unwrap()).unwrap();
        let sq_err = |got: &[f32], want: &[f32]| got.iter().zip(want).map(|(g, w)| (g - w).powi(2)).sum::<f32>();
        let (mut total_rtn, mut total_searched) = (0.0, 0.0);
        for ((x, r), s) in values.chunks(32).zip(rtn.chunks(32)).zip(searched.chunks(32)) {
            let (er, es) = (sq_err(r, x), sq_err(s, x));
            // (The search sums in another order than this check: allow a rounding's worth.)
            assert!(es <= er * (1.0 + 1e-5), "searched block error {es} above round-to-nearest's {er}");
            total_rtn += er;
            total_searched += es;
        }
        assert!(total_searched < 0.85 * total_rtn, "searched {total_searched} vs round-to-nearest {total_rtn}");
        // A constant block and an all-zero block survive exactly.
        let flat = dequantize(DType::Q4_1, &quantize_at_load(DType::Q4_1, &[[0.25f32; 32], [0.0; 32]].concat()).unwrap()).unwrap();
        assert!(flat[..32].iter().all(|&v| v == 0.25) && flat[32..].iter().all(|&v| v == 0.0), "{flat:?}");
        // Q8_0 and Q4_0 at load are the reference quantizers' bytes.
        for dtype in [DType::Q8_0, DType::Q4_0] {
            assert_eq!(quantize_at_load(dtype, &values).unwrap(), quantize(dtype, &values).unwrap());
        }
    }

    #[test]
    fn quantize_round_trips_within_a_step() {
        let values: Vec<f32> = (0..96).map(|i| ((i * 37 % 101) as f32 - 50.0) / 17.0).collect();
        // Q4_0 spans [-8, 7] steps of max/8: the side opposite the largest value clips by a step.
        for (dtype, steps, clip) in [(DType::Q8_0, 254.0, 0.5), (DType::Q4_0, 16.0, 1.0), (DType::Q4_1, 15.0, 0.5)] {
            let back = dequantize(dtype, &quantize(dtype, &values).unwrap()).unwrap();
            for (block, got) in values.chunks(32).zip(back.chunks(32)) {
                let range = block.iter().fold(0f32, |m, v| m.max(v.abs())) * 2.0;
                let step = range / steps;
                for (w, g) in block.iter().zip(got) {
                    // f16 scales add a little to the half step.
                    assert!((w - g).abs() <= step * clip + range * 2e-3, "{dtype}: {w} -> {g}");
                }
            }
        }
        assert!(quantize(DType::Q4K, &values[..256.min(values.len())]).is_err());
        assert!(dequantize(DType::Q4_0, &[0u8; 17]).is_err());
    }
}
