//! The integer path for matmuls with Q8_0, Q4_0 and Q4_1 weights: the activations are quantized
//! once per call, row by row, into 32-value blocks of i8 with an f32 scale (`ActBlock`), and each
//! weight block is dotted with the activation block beside it in integers; the two scales are
//! applied per block in f32. This is llama.cpp's scheme (its `q8_0`/`q8_1` activation blocks);
//! the code is written for this crate.
//!
//! Per weight block b and activation block a (32 values each):
//!   w . x ~= d_w d_a sum(q_w q_a) + c_w s_a,   s_a = d_a sum(q_a)
//! with q_w the weight's stored integers (Q8_0: i8; Q4_0 and Q4_1: the nibbles 0..15) and c_w
//! the offset that the nibbles leave out (Q4_0: -8 d_w; Q4_1: m; Q8_0: none). The integers are
//! exact; what differs from the f32 path is the activations' rounding to 8 bits (a relative error
//! of about 0.4% per value), so results are no longer PyTorch's to 1e-3. Weights quantized at
//! load (dtype 'q8' / 'q4') take it by default, GGUF weights do not (see `DEFAULT_ON`);
//! `set_int8_matmul(on)` or WEBFORMERS_INT8=0/1 decides for every weight.
//!
//! One kernel over a small `I8` vocabulary per instruction set: x86 with AVX-512 VNNI
//! (`vpdpbusd` on 256-bit registers) or AVX2 (`vpmaddubsw` + `vpmaddwd`), wasm simd128 (i16
//! widening and `i32x4.dot_i16x8_s`), NEON (widening `vmull_s8` + pairwise adds: `vdotq_s32` is
//! still unstable in Rust), and a scalar fallback. Threads split the weight rows; a task takes a
//! run of weight rows and walks the activation rows four at a time, so each weight block is
//! decoded once per four rows and each activation block is read from L1. Prefill (more than four
//! rows) on AVX-512 VNNI, AVX2 and relaxed-simd runs a GEMM over the weight repacked into panels
//! of rows (`PackedWeight`), packed on first use and kept with the weight.
//! `core/src/reference.rs`'s `linear_int8` is the plain version the kernels are tested against.

#![allow(unsafe_op_in_unsafe_fn)]

use std::sync::atomic::{AtomicU8, Ordering};

use super::matmul::{Epilogue, Shape, add_residual, uninit_output};
use super::parallel::{self, SharedOut};
#[cfg(any(target_arch = "x86_64", all(target_arch = "wasm32", target_feature = "simd128", feature = "relaxed-simd")))]
use super::simd::{Simd, dispatch};
use super::{DECODE_ROWS_AHEAD, Input};
use crate::quant::{BlockQ4_0, BlockQ4_1, BlockQ8_0, F16Bytes, QuantBlock, blocks};
use crate::{DType, Error, Result};

/// 0: not decided yet (WEBFORMERS_INT8 is read on first use), 1: off, 2: on, 3: neither said
/// (each weight's own default, see `int8_for`).
static INT8: AtomicU8 = AtomicU8::new(0);

/// Whether quantized weights from a file (GGUF) take the integer path when nothing says
/// otherwise. Off: the bar for on was SmolLM2-135M-Instruct Q4_1's greedy chat replies identical
/// to PyTorch's on 4 of 5 prompts, and the int8 path gives 3 of 8 (tests/smollm2.rs: each reply
/// parts where PyTorch's own top-two margin is under 0.2 logits). Weights quantized at load
/// (dtype 'q8' / 'q4': the user chose speed over the last digits) take it by default.
const DEFAULT_ON: bool = false;

/// Turns the int8 path for Q8_0 / Q4_0 / Q4_1 weights on or off for the whole process, for
/// every weight (it overrides WEBFORMERS_INT8=0/1 and the per-weight defaults). Off, such
/// weights are dequantized to f32 block by block and the activations stay f32.
pub fn set_int8_matmul(on: bool) {
    INT8.store(if on { 2 } else { 1 }, Ordering::Relaxed);
}

/// The process-wide choice: Some(on) when `set_int8_matmul` or WEBFORMERS_INT8 said.
fn forced() -> Option<bool> {
    if INT8.load(Ordering::Relaxed) == 0 {
        let v = match std::env::var("WEBFORMERS_INT8").as_deref() {
            Ok("0") => 1,
            Ok("1") => 2,
            _ => 3,
        };
        // A concurrent `set_int8_matmul` wins over the environment.
        let _ = INT8.compare_exchange(0, v, Ordering::Relaxed, Ordering::Relaxed);
    }
    match INT8.load(Ordering::Relaxed) {
        1 => Some(false),
        2 => Some(true),
        _ => None,
    }
}

/// Whether weights from a file (GGUF) take the int8 path (see `set_int8_matmul`).
pub fn int8_matmul() -> bool {
    forced().unwrap_or(DEFAULT_ON)
}

/// Whether a weight takes the int8 path: the process-wide choice, else the weight's own default
/// (`quantized_at_load`: on for weights quantized at load, `DEFAULT_ON` for the others).
pub(super) fn int8_for(quantized_at_load: bool) -> bool {
    forced().unwrap_or(quantized_at_load || DEFAULT_ON)
}

/// Whether `dtype` has an integer kernel.
pub(super) fn handles(dtype: DType) -> bool {
    matches!(dtype, DType::Q8_0 | DType::Q4_0 | DType::Q4_1)
}

/// 32 activations: value i is `d * qs[i]`; `s = d * sum(qs)`.
#[derive(Clone, Copy, Debug, Default)]
#[repr(C)]
pub(crate) struct ActBlock {
    pub qs: [i8; 32],
    pub d: f32,
    pub s: f32,
}

/// Quantizes 32 values: the largest magnitude maps to 127, the rest round to nearest (ties to
/// even, as SIMD conversions do).
/// reference.rs's `quantize_act` is the same arithmetic.
#[inline(always)]
pub(crate) fn quantize_block(x: &[f32]) -> ActBlock {
    let amax = x[..32].iter().fold(0f32, |m, v| m.max(v.abs()));
    let d = amax / 127.0;
    let id = if d > 0.0 { 1.0 / d } else { 0.0 };
    let mut b = ActBlock { d, ..Default::default() };
    let mut sum = 0i32;
    for (q, &v) in b.qs.iter_mut().zip(x) {
        *q = (v * id).round_ties_even() as i8;
        sum += *q as i32;
    }
    b.s = d * sum as f32;
    b
}

/// Quantizes a row of K values (a multiple of 32) into K / 32 blocks.
fn quantize_row(x: &[f32], out: &mut [ActBlock]) {
    #[cfg(target_arch = "x86_64")]
    if int_isa() != IntIsa::Scalar {
        // SAFETY: the CPU has AVX2 (int_isa); x has 32 values per block of out.
        return unsafe { quantize_row_avx2(x, out) };
    }
    for (blk, xs) in out.iter_mut().zip(x.chunks_exact(32)) {
        *blk = quantize_block(xs);
    }
}

/// `quantize_block` with AVX2, bit for bit (a libm `round` per value made quantizing a sixth of
/// a MiniLM matmul).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn quantize_row_avx2(x: &[f32], out: &mut [ActBlock]) {
    use std::arch::x86_64::*;
    for (blk, xs) in out.iter_mut().zip(x.chunks_exact(32)) {
        let p = xs.as_ptr();
        let v: [__m256; 4] = std::array::from_fn(|i| _mm256_loadu_ps(p.add(8 * i)));
        let sign = _mm256_set1_ps(-0.0);
        let a: [__m256; 4] = std::array::from_fn(|i| _mm256_andnot_ps(sign, v[i]));
        let m = _mm256_max_ps(_mm256_max_ps(a[0], a[1]), _mm256_max_ps(a[2], a[3]));
        let m = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        let m = _mm_max_ps(m, _mm_movehl_ps(m, m));
        let amax = _mm_cvtss_f32(_mm_max_ss(m, _mm_shuffle_ps(m, m, 1)));
        let d = amax / 127.0;
        let id = _mm256_set1_ps(if d > 0.0 { 1.0 / d } else { 0.0 });
        // Rounds to nearest even (the default rounding mode), like `round_ties_even`.
        let q: [__m256i; 4] = std::array::from_fn(|i| _mm256_cvtps_epi32(_mm256_mul_ps(v[i], id)));
        // Packing works within 128-bit lanes: dwords come out as q0[0..4] q1[0..4] q2[0..4]
        // q3[0..4] q0[4..8] .. q3[4..8]; the permute puts them back in order.
        let packed = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
        let packed = _mm256_permutevar8x32_epi32(packed, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256(blk.qs.as_mut_ptr() as *mut __m256i, packed);
        let sum = _mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3]));
        let sum = _mm_add_epi32(_mm256_castsi256_si128(sum), _mm256_extracti128_si256(sum, 1));
        let sum = _mm_add_epi32(sum, _mm_shuffle_epi32(sum, 0b01_00_11_10));
        let sum = _mm_cvtsi128_si32(_mm_add_epi32(sum, _mm_shuffle_epi32(sum, 0b00_00_00_01)));
        blk.d = d;
        blk.s = d * sum as f32;
    }
}

/// A weight block type with an integer kernel.
pub(crate) trait IntBlock: QuantBlock {
    /// The stored integers are i8 (Q8_0), not nibbles 0..15 with an offset.
    const SIGNED: bool;
    /// The offset `c_w`: none, -8 d (Q4_0) or the block's min (Q4_1).
    const OFFSET: Offset;
    /// The stored integers: 32 bytes of i8, or 16 bytes of nibbles (low ones are values 0..16).
    fn qs(&self) -> &[u8];
    fn d(&self) -> F16Bytes;
    /// Q4_1's min (zero for the others).
    fn m(&self) -> F16Bytes {
        F16Bytes([0, 0])
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Offset {
    None,
    MinusEight,
    Min,
}

impl IntBlock for BlockQ8_0 {
    const SIGNED: bool = true;
    const OFFSET: Offset = Offset::None;
    #[inline(always)]
    fn qs(&self) -> &[u8] {
        bytemuck::cast_slice(&self.qs)
    }
    #[inline(always)]
    fn d(&self) -> F16Bytes {
        self.d
    }
}

impl IntBlock for BlockQ4_0 {
    const SIGNED: bool = false;
    const OFFSET: Offset = Offset::MinusEight;
    #[inline(always)]
    fn qs(&self) -> &[u8] {
        &self.qs
    }
    #[inline(always)]
    fn d(&self) -> F16Bytes {
        self.d
    }
}

impl IntBlock for BlockQ4_1 {
    const SIGNED: bool = false;
    const OFFSET: Offset = Offset::Min;
    #[inline(always)]
    fn qs(&self) -> &[u8] {
        &self.qs
    }
    #[inline(always)]
    fn d(&self) -> F16Bytes {
        self.d
    }
    #[inline(always)]
    fn m(&self) -> F16Bytes {
        self.m
    }
}

/// What the kernel needs of an instruction set.
trait I8: Copy {
    /// A weight block's 32 integers in registers.
    type W: Copy;
    /// Integer partial sums of one block's dot product.
    type D: Copy;
    /// f32 partial sums.
    type F: Copy;
    unsafe fn weights<B: IntBlock>(b: &B) -> Self::W;
    /// An f16 scale as f32 (`half`'s conversion checks the CPU on every call).
    #[inline(always)]
    unsafe fn f16(x: F16Bytes) -> f32 {
        x.get()
    }
    /// Partial sums of q_w . q_a; `signed` is `B::SIGNED` of the block `w` came from.
    unsafe fn dot(w: Self::W, a: &[i8; 32], signed: bool) -> Self::D;
    unsafe fn fzero() -> Self::F;
    /// acc + scale * d
    unsafe fn fmadd(d: Self::D, scale: f32, acc: Self::F) -> Self::F;
    unsafe fn fadd(a: Self::F, b: Self::F) -> Self::F;
    unsafe fn fsum(acc: Self::F) -> f32;
}

/// The 32 integers of a 4-bit block: low nibbles, then high ones.
#[inline(always)]
fn nibbles(qs: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    for i in 0..16 {
        out[i] = qs[i] & 0xF;
        out[i + 16] = qs[i] >> 4;
    }
    out
}

#[derive(Clone, Copy)]
struct Scalar;

impl I8 for Scalar {
    type W = [u8; 32];
    type D = i32;
    type F = f32;
    #[inline(always)]
    unsafe fn weights<B: IntBlock>(b: &B) -> [u8; 32] {
        if B::SIGNED { b.qs()[..32].try_into().unwrap() } else { nibbles(b.qs()) }
    }
    #[inline(always)]
    unsafe fn dot(w: [u8; 32], a: &[i8; 32], signed: bool) -> i32 {
        let wv = |v: u8| if signed { v as i8 as i32 } else { v as i32 };
        w.iter().zip(a).map(|(&w, &a)| wv(w) * a as i32).sum()
    }
    #[inline(always)]
    unsafe fn fzero() -> f32 {
        0.0
    }
    #[inline(always)]
    unsafe fn fmadd(d: i32, scale: f32, acc: f32) -> f32 {
        acc + scale * d as f32
    }
    #[inline(always)]
    unsafe fn fadd(a: f32, b: f32) -> f32 {
        a + b
    }
    #[inline(always)]
    unsafe fn fsum(acc: f32) -> f32 {
        acc
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::{F16Bytes, I8, IntBlock};

    /// AVX2, with `vpdpbusd` (AVX-512 VNNI on 256-bit registers) when `VNNI`.
    #[derive(Clone, Copy)]
    pub(super) struct X86<const VNNI: bool>;

    impl<const VNNI: bool> I8 for X86<VNNI> {
        type W = __m256i;
        type D = __m256i;
        type F = __m256;
        #[inline(always)]
        unsafe fn f16(x: F16Bytes) -> f32 {
            _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(u16::from_le_bytes(x.0) as i32)))
        }
        #[inline(always)]
        unsafe fn weights<B: IntBlock>(b: &B) -> __m256i {
            let qs = b.qs().as_ptr();
            if B::SIGNED {
                _mm256_loadu_si256(qs as *const __m256i)
            } else {
                let q = _mm_loadu_si128(qs as *const __m128i);
                let m = _mm_set1_epi8(0xF);
                _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(q, 4), m), _mm_and_si128(q, m))
            }
        }
        #[inline(always)]
        unsafe fn dot(w: __m256i, a: &[i8; 32], signed: bool) -> __m256i {
            let a = _mm256_loadu_si256(a.as_ptr() as *const __m256i);
            // The unsigned operand must be the weights: signed ones give their sign to the
            // activations (|w| * sign(w) a = w a).
            let (u, s) = if signed { (_mm256_sign_epi8(w, w), _mm256_sign_epi8(a, w)) } else { (w, a) };
            if VNNI {
                _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s)
            } else {
                // |w| <= 128 and |a| <= 127: the i16 pair sums cannot saturate.
                _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1))
            }
        }
        #[inline(always)]
        unsafe fn fzero() -> __m256 {
            _mm256_setzero_ps()
        }
        #[inline(always)]
        unsafe fn fmadd(d: __m256i, scale: f32, acc: __m256) -> __m256 {
            _mm256_fmadd_ps(_mm256_cvtepi32_ps(d), _mm256_set1_ps(scale), acc)
        }
        #[inline(always)]
        unsafe fn fadd(a: __m256, b: __m256) -> __m256 {
            _mm256_add_ps(a, b)
        }
        #[inline(always)]
        unsafe fn fsum(v: __m256) -> f32 {
            let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
            let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
            let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
            _mm_cvtss_f32(s)
        }
    }
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod wasm {
    use std::arch::wasm32::*;

    use super::{I8, IntBlock};

    #[derive(Clone, Copy)]
    pub(super) struct Simd128;

    impl I8 for Simd128 {
        /// Two i8x16 halves (nibbles 0..15 are valid i8 as they are).
        type W = (v128, v128);
        type D = v128;
        type F = v128;
        #[inline(always)]
        unsafe fn weights<B: IntBlock>(b: &B) -> (v128, v128) {
            let qs = b.qs().as_ptr();
            if B::SIGNED {
                (v128_load(qs as *const v128), v128_load(qs.add(16) as *const v128))
            } else {
                let q = v128_load(qs as *const v128);
                let m = u8x16_splat(0xF);
                (v128_and(q, m), u8x16_shr(q, 4))
            }
        }
        #[inline(always)]
        unsafe fn dot(w: (v128, v128), a: &[i8; 32], _signed: bool) -> v128 {
            let p = a.as_ptr();
            let (a0, a1) = (v128_load(p as *const v128), v128_load(p.add(16) as *const v128));
            // i8 -> i16 halves, then pairwise i16 products summed into i32 lanes.
            let d0 = i32x4_add(
                i32x4_dot_i16x8(i16x8_extend_low_i8x16(w.0), i16x8_extend_low_i8x16(a0)),
                i32x4_dot_i16x8(i16x8_extend_high_i8x16(w.0), i16x8_extend_high_i8x16(a0)),
            );
            let d1 = i32x4_add(
                i32x4_dot_i16x8(i16x8_extend_low_i8x16(w.1), i16x8_extend_low_i8x16(a1)),
                i32x4_dot_i16x8(i16x8_extend_high_i8x16(w.1), i16x8_extend_high_i8x16(a1)),
            );
            i32x4_add(d0, d1)
        }
        #[inline(always)]
        unsafe fn fzero() -> v128 {
            f32x4_splat(0.0)
        }
        #[inline(always)]
        unsafe fn fmadd(d: v128, scale: f32, acc: v128) -> v128 {
            f32x4_add(acc, f32x4_mul(f32x4_convert_i32x4(d), f32x4_splat(scale)))
        }
        #[inline(always)]
        unsafe fn fadd(a: v128, b: v128) -> v128 {
            f32x4_add(a, b)
        }
        #[inline(always)]
        unsafe fn fsum(v: v128) -> f32 {
            f32x4_extract_lane::<0>(v) + f32x4_extract_lane::<1>(v) + f32x4_extract_lane::<2>(v) + f32x4_extract_lane::<3>(v)
        }
    }

    /// simd128 with relaxed-simd's `i32x4.relaxed_dot_i8x16_i7x16_add_s`: 16 products summed
    /// into 4 lanes in one instruction, where simd128 widens to i16 first (4 extends, 2 dots).
    /// Its second operand must be 7-bit (0..=127; a set top bit is implementation-defined), so
    /// 4-bit nibbles go there as they are, and Q8_0 passes |w| with w's sign moved onto the
    /// activations (|a| <= 127, so negating is exact). A Q8_0 weight of -128, which no quantizer
    /// writes, would be read as 128 or -128 depending on the CPU.
    #[cfg(feature = "relaxed-simd")]
    #[derive(Clone, Copy)]
    pub(super) struct Relaxed;

    #[cfg(feature = "relaxed-simd")]
    impl I8 for Relaxed {
        type W = (v128, v128);
        type D = v128;
        type F = v128;
        #[inline(always)]
        unsafe fn weights<B: IntBlock>(b: &B) -> (v128, v128) {
            Simd128::weights(b)
        }
        #[inline(always)]
        unsafe fn dot(w: (v128, v128), a: &[i8; 32], signed: bool) -> v128 {
            let p = a.as_ptr();
            let (mut a0, mut a1) = (v128_load(p as *const v128), v128_load(p.add(16) as *const v128));
            let (mut w0, mut w1) = w;
            if signed {
                // a * w = (a * sign(w)) * |w|: sign(w) as 0 / -1 masks, a negated as (a ^ m) - m.
                let (m0, m1) = (i8x16_shr(w0, 7), i8x16_shr(w1, 7));
                a0 = i8x16_sub(v128_xor(a0, m0), m0);
                a1 = i8x16_sub(v128_xor(a1, m1), m1);
                w0 = i8x16_abs(w0);
                w1 = i8x16_abs(w1);
            }
            i32x4_relaxed_dot_i8x16_i7x16_add(a1, w1, i32x4_relaxed_dot_i8x16_i7x16_add(a0, w0, i32x4_splat(0)))
        }
        #[inline(always)]
        unsafe fn fzero() -> v128 {
            f32x4_splat(0.0)
        }
        #[inline(always)]
        unsafe fn fmadd(d: v128, scale: f32, acc: v128) -> v128 {
            f32x4_relaxed_madd(f32x4_convert_i32x4(d), f32x4_splat(scale), acc)
        }
        #[inline(always)]
        unsafe fn fadd(a: v128, b: v128) -> v128 {
            f32x4_add(a, b)
        }
        #[inline(always)]
        unsafe fn fsum(v: v128) -> f32 {
            Simd128::fsum(v)
        }
    }
}

// Not compiled in this repository's CI (no aarch64 target installed there): keep it simple.
#[cfg(target_arch = "aarch64")]
mod neon {
    use std::arch::aarch64::*;

    use super::{I8, IntBlock};

    #[derive(Clone, Copy)]
    pub(super) struct Neon;

    impl I8 for Neon {
        type W = (int8x16_t, int8x16_t);
        type D = int32x4_t;
        type F = float32x4_t;
        #[inline(always)]
        unsafe fn weights<B: IntBlock>(b: &B) -> (int8x16_t, int8x16_t) {
            let qs = b.qs().as_ptr();
            if B::SIGNED {
                (vld1q_s8(qs as *const i8), vld1q_s8(qs.add(16) as *const i8))
            } else {
                let q = vld1q_u8(qs);
                (vreinterpretq_s8_u8(vandq_u8(q, vdupq_n_u8(0xF))), vreinterpretq_s8_u8(vshrq_n_u8::<4>(q)))
            }
        }
        #[inline(always)]
        unsafe fn dot(w: (int8x16_t, int8x16_t), a: &[i8; 32], _signed: bool) -> int32x4_t {
            let p = a.as_ptr();
            let (a0, a1) = (vld1q_s8(p), vld1q_s8(p.add(16)));
            // i8 x i8 -> i16 products (at most 128 * 127, no overflow), pairwise into i32 lanes.
            let mut acc = vdupq_n_s32(0);
            acc = vpadalq_s16(acc, vmull_s8(vget_low_s8(w.0), vget_low_s8(a0)));
            acc = vpadalq_s16(acc, vmull_high_s8(w.0, a0));
            acc = vpadalq_s16(acc, vmull_s8(vget_low_s8(w.1), vget_low_s8(a1)));
            vpadalq_s16(acc, vmull_high_s8(w.1, a1))
        }
        #[inline(always)]
        unsafe fn fzero() -> float32x4_t {
            vdupq_n_f32(0.0)
        }
        #[inline(always)]
        unsafe fn fmadd(d: int32x4_t, scale: f32, acc: float32x4_t) -> float32x4_t {
            vfmaq_f32(acc, vcvtq_f32_s32(d), vdupq_n_f32(scale))
        }
        #[inline(always)]
        unsafe fn fadd(a: float32x4_t, b: float32x4_t) -> float32x4_t {
            vaddq_f32(a, b)
        }
        #[inline(always)]
        unsafe fn fsum(v: float32x4_t) -> f32 {
            vaddvq_f32(v)
        }
    }
}

/// The instruction set of the integer kernels, chosen once per process from `simd::isa()`
/// (so WEBFORMERS_ISA=avx2|scalar narrows it too).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum IntIsa {
    Scalar,
    #[cfg(target_arch = "x86_64")]
    Avx2,
    #[cfg(target_arch = "x86_64")]
    Vnni,
    #[cfg(target_arch = "aarch64")]
    Neon,
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    Simd128,
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128", feature = "relaxed-simd"))]
    Relaxed,
}

fn int_isa() -> IntIsa {
    use super::simd::{Isa, isa};
    static ISA: std::sync::OnceLock<IntIsa> = std::sync::OnceLock::new();
    *ISA.get_or_init(|| match isa() {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 if is_x86_feature_detected!("avx512vnni") && is_x86_feature_detected!("avx512vl") => IntIsa::Vnni,
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 | Isa::Avx2 => IntIsa::Avx2,
        #[cfg(target_arch = "aarch64")]
        Isa::Neon => IntIsa::Neon,
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        Isa::Simd128 => IntIsa::Simd128,
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128", feature = "relaxed-simd"))]
        Isa::Relaxed => IntIsa::Relaxed,
        Isa::Scalar => IntIsa::Scalar,
    })
}

/// The integer kernels' instruction set, for benchmarks and test logs.
pub fn int8_isa_name() -> &'static str {
    match int_isa() {
        IntIsa::Scalar => "scalar",
        #[cfg(target_arch = "x86_64")]
        IntIsa::Avx2 => "avx2",
        #[cfg(target_arch = "x86_64")]
        IntIsa::Vnni => "avx512-vnni",
        #[cfg(target_arch = "aarch64")]
        IntIsa::Neon => "neon",
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        IntIsa::Simd128 => "simd128",
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128", feature = "relaxed-simd"))]
        IntIsa::Relaxed => "relaxed-simd",
    }
}

/// Activation rows per pass over a weight row.
const ROWS: usize = 4;

/// One matmul's operands: the quantized activations [batch][M][K / 32] and the weight blocks.
struct Job<'a, B> {
    acts: &'a [ActBlock],
    w: &'a [B],
    /// Block index of weight row 0 of batch 0, and block strides.
    w_first: usize,
    w_batch: usize,
    w_row: usize,
    /// Blocks per row (K / 32).
    kb: usize,
    bias: Option<&'a [f32]>,
    /// Applied by the panel GEMMs' tasks to their own columns of C.
    epilogue: Epilogue<'a>,
    s: Shape,
    out: SharedOut,
    rows_per_task: usize,
}

/// C = act(A B + bias) + residual (`residual`: C's shape, dense).
pub(super) fn matmul(a: &Input<'_>, b: &Input<'_>, bias: Option<&Input<'_>>, epilogue: Epilogue<'_>, s: Shape) -> Result<Vec<f32>> {
    match b.dtype {
        DType::Q8_0 => matmul_typed::<BlockQ8_0>(a, b, bias, epilogue, s),
        DType::Q4_0 => matmul_typed::<BlockQ4_0>(a, b, bias, epilogue, s),
        DType::Q4_1 => matmul_typed::<BlockQ4_1>(a, b, bias, epilogue, s),
        d => Err(Error::dtype("matmul", format!("{d} has no int8 kernel"))),
    }
}

fn matmul_typed<B: IntBlock>(a: &Input<'_>, b: &Input<'_>, bias: Option<&Input<'_>>, epilogue: Epilogue<'_>, s: Shape) -> Result<Vec<f32>> {
    let (sa_b, sa_m, sa_k) = super::matmul::strides3(a.layout);
    let (sb_b, sb_k, sb_n) = super::matmul::strides3(b.layout);
    let aligned = [b.layout.offset(), sb_b, if s.n > 1 { sb_n } else { 0 }, s.k].iter().all(|v| v % 32 == 0);
    if (s.k > 1 && (sb_k != 1 || sa_k != 1)) || !aligned {
        return Err(Error::shape(
            "matmul",
            format!("{} weights need the transpose of a [N, K] weight with whole blocks per row", B::DTYPE),
        ));
    }
    if s.m * s.n * s.k == 0 {
        let mut c = vec![0f32; s.batch * s.m * s.n];
        add_residual(&mut c, epilogue.residual);
        return Ok(c);
    }
    // Every element is written: by the panel GEMM's tiles or by a task of the row kernel.
    let mut c = uninit_output(s.batch * s.m * s.n);
    // The activations, quantized once: [batch * M] rows of K / 32 blocks.
    let kb = s.k / 32;
    let a_all = a.storage.f32s();
    let a0 = a.layout.offset();
    let mut acts = vec![ActBlock::default(); s.batch * s.m * kb];
    parallel::for_each_chunk(&mut acts, kb * 16, |ci, chunk| {
        for (r, row) in chunk.chunks_mut(kb).enumerate() {
            let gr = ci * 16 + r;
            let x = &a_all[a0 + (gr / s.m) * sa_b + (gr % s.m) * sa_m..][..s.k];
            quantize_row(x, row);
        }
    });
    let job = Job {
        acts: &acts,
        w: blocks::<B>(b.storage.bytes())?,
        w_first: b.layout.offset() / 32,
        w_batch: sb_b / 32,
        w_row: sb_n / 32,
        kb,
        bias: bias.map(|t| t.f32s()),
        epilogue,
        s,
        out: SharedOut(c.as_mut_ptr()),
        // Enough tasks to balance threads, each a run of weight rows long enough to stream.
        rows_per_task: (s.n / (parallel::threads() * 8)).clamp(4, 64),
    };
    // Prefill (more than ROWS rows): the ISA's packed-panel GEMM where it has one; otherwise
    // tasks of weight rows on the row kernel.
    let ran = prefill_on_panels(&job, b.storage);
    if ran == Prefill::NoPanels {
        let tasks = s.n.div_ceil(job.rows_per_task);
        parallel::for_each(s.batch * tasks, |t| run(&job, t / tasks, t % tasks));
    }
    if ran != Prefill::PanelsWithEpilogue {
        job.epilogue.apply_all(&mut c);
    }
    Ok(c)
}

/// What `prefill_on_panels` did.
#[derive(Clone, Copy, PartialEq, Eq)]
#[cfg_attr(
    not(any(target_arch = "x86_64", all(target_arch = "wasm32", target_feature = "simd128", feature = "relaxed-simd"))),
    allow(dead_code)
)]
enum Prefill {
    /// Nothing: the job is for the row kernel.
    NoPanels,
    /// The panel GEMM, and each of its tasks applied the epilogue to its own columns.
    PanelsWithEpilogue,
    /// The panel GEMM; the epilogue is left to the caller (panels narrower than 16 columns,
    /// which `Epilogue::apply_narrow` would walk a few scalars at a time).
    Panels,
}

/// Runs `job` on the ISA's packed-panel GEMM, NR weight rows a panel, when it has one and the
/// job is a prefill (more than ROWS rows).
#[cfg(any(target_arch = "x86_64", all(target_arch = "wasm32", target_feature = "simd128", feature = "relaxed-simd")))]
fn prefill_on_panels<B: IntBlock>(job: &Job<'_, B>, storage: &super::CpuStorage) -> Prefill {
    type PanelFn<B> = unsafe fn(&Job<'_, B>, Panel<'_>, usize, usize);
    let s = job.s;
    let gemm: Option<(usize, u32, PanelFn<B>)> = match int_isa() {
        #[cfg(target_arch = "x86_64")]
        IntIsa::Vnni if s.m > ROWS => Some((vnni_gemm::NR, vnni_gemm::SIGNED_XOR, vnni_gemm::panel::<B>)),
        #[cfg(target_arch = "x86_64")]
        IntIsa::Avx2 if s.m > ROWS => Some((avx2_gemm::NR, 0, avx2_gemm::panel::<B>)),
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128", feature = "relaxed-simd"))]
        IntIsa::Relaxed if s.m > ROWS => Some((relaxed_gemm::NR, 0, relaxed_gemm::panel::<B>)),
        _ => None,
    };
    let Some((nr, signed_xor, panel)) = gemm else { return Prefill::NoPanels };
    let finish = nr == Epilogue::NARROW;
    let panels = s.n.div_ceil(nr);
    let key = PanelKey { dtype: B::DTYPE, first: job.w_first, row_stride: job.w_row, kb: job.kb, n: s.n, nr, signed_xor };
    // SAFETY (both loops): int_isa found the panel's ISA on this CPU (or validated this build with
    // it); each task writes its own columns of C.
    if s.batch == 1 || job.w_batch == 0 {
        // One weight matrix for every batch: packed once, kept with the weight.
        let w = storage.packed(&key, || PackedWeight::new(job, 0, key));
        parallel::for_each(s.batch * panels, |t| unsafe {
            panel(job, w.panel(t % panels), t / panels, t % panels);
            if finish {
                finish_panel(job, nr, t / panels, t % panels);
            }
        });
    } else {
        for batch in 0..s.batch {
            let w = PackedWeight::new(job, batch, key);
            parallel::for_each(panels, |p| unsafe {
                panel(job, w.panel(p), batch, p);
                if finish {
                    finish_panel(job, nr, batch, p);
                }
            });
        }
    }
    if finish { Prefill::PanelsWithEpilogue } else { Prefill::Panels }
}

/// The epilogue on the columns of C that panel `p` of batch `batch` just wrote, while they are
/// in cache (a pass over C each for the activation and the residual, otherwise).
///
/// SAFETY: the caller's task owns those columns and has written them.
#[cfg(any(target_arch = "x86_64", all(target_arch = "wasm32", target_feature = "simd128", feature = "relaxed-simd")))]
unsafe fn finish_panel<B>(job: &Job<'_, B>, nr: usize, batch: usize, p: usize) {
    let s = job.s;
    let (rows, cols) = ((batch * s.m, (batch + 1) * s.m), (p * nr, ((p + 1) * nr).min(s.n)));
    let epilogue = job.epilogue;
    // SAFETY: the caller's.
    dispatch!(apply_epilogue(epilogue, job.out, s.n, rows, cols));
}

#[cfg(any(target_arch = "x86_64", all(target_arch = "wasm32", target_feature = "simd128", feature = "relaxed-simd")))]
#[inline(always)]
fn apply_epilogue<S: Simd>(epilogue: Epilogue<'_>, out: SharedOut, n: usize, rows: (usize, usize), cols: (usize, usize)) {
    // SAFETY: `finish_panel`'s caller owns the block.
    unsafe { epilogue.apply_narrow::<S>(out, n, rows, cols) }
}

/// No packed-panel GEMM in this build: every job takes the row kernel.
#[cfg(not(any(target_arch = "x86_64", all(target_arch = "wasm32", target_feature = "simd128", feature = "relaxed-simd"))))]
fn prefill_on_panels<B: IntBlock>(_: &Job<'_, B>, _: &super::CpuStorage) -> Prefill {
    Prefill::NoPanels
}

fn run<B: IntBlock>(job: &Job<'_, B>, batch: usize, task: usize) {
    match int_isa() {
        #[cfg(target_arch = "x86_64")]
        IntIsa::Vnni => {
            #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512vl,avx512vnni")]
            unsafe fn entry<B: IntBlock>(job: &Job<'_, B>, batch: usize, task: usize) {
                task_rows::<x86::X86<true>, B>(job, batch, task)
            }
            unsafe { entry(job, batch, task) }
        }
        #[cfg(target_arch = "x86_64")]
        IntIsa::Avx2 => {
            #[target_feature(enable = "avx2,fma,f16c")]
            unsafe fn entry<B: IntBlock>(job: &Job<'_, B>, batch: usize, task: usize) {
                task_rows::<x86::X86<false>, B>(job, batch, task)
            }
            unsafe { entry(job, batch, task) }
        }
        #[cfg(target_arch = "aarch64")]
        IntIsa::Neon => task_rows::<neon::Neon, B>(job, batch, task),
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        IntIsa::Simd128 => task_rows::<wasm::Simd128, B>(job, batch, task),
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128", feature = "relaxed-simd"))]
        IntIsa::Relaxed => {
            #[target_feature(enable = "simd128,relaxed-simd")]
            unsafe fn entry<B: IntBlock>(job: &Job<'_, B>, batch: usize, task: usize) {
                task_rows::<wasm::Relaxed, B>(job, batch, task)
            }
            unsafe { entry(job, batch, task) }
        }
        IntIsa::Scalar => task_rows::<Scalar, B>(job, batch, task),
    }
}

/// C[batch][i][j] for every row i and the task's weight rows j.
#[inline(always)]
fn task_rows<X: I8, B: IntBlock>(job: &Job<'_, B>, batch: usize, task: usize) {
    let s = job.s;
    let js = task * job.rows_per_task..((task + 1) * job.rows_per_task).min(s.n);
    let acts = &job.acts[batch * s.m * job.kb..][..s.m * job.kb];
    for i0 in (0..s.m).step_by(ROWS) {
        let rows = ROWS.min(s.m - i0);
        let act_row = |r: usize| &acts[(i0 + r.min(rows - 1)) * job.kb..][..job.kb];
        let a: [&[ActBlock]; ROWS] = std::array::from_fn(act_row);
        for j in js.clone() {
            if j + DECODE_ROWS_AHEAD < s.n {
                super::prefetch_all(&job.w[job.w_first + batch * job.w_batch + (j + DECODE_ROWS_AHEAD) * job.w_row..][..job.kb]);
            }
            let w = &job.w[job.w_first + batch * job.w_batch + j * job.w_row..][..job.kb];
            let v = match rows {
                4 => row_dots::<X, B, 4>(w, &a),
                3 => pad(row_dots::<X, B, 3>(w, &[a[0], a[1], a[2]])),
                2 => pad(row_dots::<X, B, 2>(w, &[a[0], a[1]])),
                _ => pad(row_dots::<X, B, 1>(w, &[a[0]])),
            };
            let bias = job.bias.map_or(0.0, |b| b[j]);
            for (r, v) in v.iter().enumerate().take(rows) {
                // SAFETY: each task writes its own columns j of C.
                unsafe { *job.out.at((batch * s.m + i0 + r) * s.n + j) = v + bias };
            }
        }
    }
}

#[inline(always)]
fn pad<const R: usize>(v: [f32; R]) -> [f32; ROWS] {
    std::array::from_fn(|i| if i < R { v[i] } else { 0.0 })
}

/// One weight row dotted with R activation rows.
#[inline(always)]
fn row_dots<X: I8, B: IntBlock, const R: usize>(w: &[B], a: &[&[ActBlock]; R]) -> [f32; R] {
    // SAFETY: the intrinsics' features are enabled by `run`'s entry; every block is whole.
    unsafe {
        // Two accumulators per row (even and odd blocks) hide the FMA latency.
        let mut acc = [[X::fzero(); 2]; R];
        let mut off = [0f32; R];
        for (bi, blk) in w.iter().enumerate() {
            let wv = X::weights(blk);
            let d = X::f16(blk.d());
            let c = match B::OFFSET {
                Offset::None => 0.0,
                Offset::MinusEight => -8.0 * d,
                Offset::Min => X::f16(blk.m()),
            };
            for r in 0..R {
                let ab = &a[r][bi];
                let dot = X::dot(wv, &ab.qs, B::SIGNED);
                acc[r][bi & 1] = X::fmadd(dot, d * ab.d, acc[r][bi & 1]);
                if B::OFFSET != Offset::None {
                    off[r] += c * ab.s;
                }
            }
        }
        std::array::from_fn(|r| X::fsum(X::fadd(acc[r][0], acc[r][1])) + off[r])
    }
}

/// One panel of NR weight rows repacked for the prefill GEMMs (`vnni_gemm`, `avx2_gemm`,
/// `relaxed_gemm`): per block, 8 groups of [NR rows][4 bytes] (`q`, so that one register holds 4
/// integers of every row), then the NR weight scales (`d`) and, for Q4_1, mins (`m`); rows past N
/// are zero.
#[cfg(any(target_arch = "x86_64", all(target_arch = "wasm32", target_feature = "simd128", feature = "relaxed-simd")))]
#[derive(Clone, Copy)]
struct Panel<'a> {
    q: &'a [u8],
    d: &'a [f32],
    m: &'a [f32],
}

/// What a weight view was packed for: its rows, the panel width and the integers' transform.
#[cfg(any(target_arch = "x86_64", all(target_arch = "wasm32", target_feature = "simd128", feature = "relaxed-simd")))]
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct PanelKey {
    dtype: DType,
    first: usize,
    row_stride: usize,
    kb: usize,
    n: usize,
    nr: usize,
    signed_xor: u32,
}

/// Bytes of one packed 32-value block of a panel of `nr` rows: 8 groups of [nr rows][4 bytes].
/// The layout `PackedWeight` writes and every panel GEMM reads.
#[cfg(any(target_arch = "x86_64", all(target_arch = "wasm32", target_feature = "simd128", feature = "relaxed-simd")))]
const fn packed_block_bytes(nr: usize) -> usize {
    32 * nr
}

/// Every panel of one weight matrix, packed once and kept with the weight (`CpuStorage::packed`):
/// repacking per call took 82% of a short sentence's q8 time. Panel p is `panel_words` words
/// from p * panel_words: q, then d, then m (Q4_1), as `Panel` describes. About 36 bytes per 32
/// weights (Q8_0 keeps 34).
#[cfg(any(target_arch = "x86_64", all(target_arch = "wasm32", target_feature = "simd128", feature = "relaxed-simd")))]
struct PackedWeight {
    key: PanelKey,
    words: Vec<u32>,
    panel_words: usize,
}

#[cfg(any(target_arch = "x86_64", all(target_arch = "wasm32", target_feature = "simd128", feature = "relaxed-simd")))]
impl super::PackedForm for PackedWeight {
    type Key = PanelKey;
    fn key(&self) -> &PanelKey {
        &self.key
    }
}

#[cfg(any(target_arch = "x86_64", all(target_arch = "wasm32", target_feature = "simd128", feature = "relaxed-simd")))]
impl PackedWeight {
    /// The weight rows of batch `batch` in panels of `nr`; Q8_0's integers XORed with
    /// `signed_xor` (4 bytes at a time), nibbles widened to bytes.
    fn new<B: IntBlock>(job: &Job<'_, B>, batch: usize, key: PanelKey) -> PackedWeight {
        let (kb, nr) = (key.kb, key.nr);
        let has_min = B::OFFSET == Offset::Min;
        let q_words = kb * packed_block_bytes(nr) / 4;
        let panel_words = q_words + kb * nr * if has_min { 2 } else { 1 };
        let mut words = vec![0u32; key.n.div_ceil(nr) * panel_words];
        parallel::for_each_chunk(&mut words, panel_words, |p, chunk| {
            let (q, scales) = chunk.split_at_mut(q_words);
            let (d, m) = scales.split_at_mut(kb * nr);
            let (q, d, m): (&mut [u8], &mut [f32], &mut [f32]) =
                (bytemuck::cast_slice_mut(q), bytemuck::cast_slice_mut(d), bytemuck::cast_slice_mut(m));
            for r in 0..nr.min(key.n - p * nr) {
                let row = &job.w[job.w_first + batch * job.w_batch + (p * nr + r) * job.w_row..][..kb];
                for (b, blk) in row.iter().enumerate() {
                    let ints: [u32; 8] = if B::SIGNED {
                        std::array::from_fn(|g| u32::from_le_bytes(blk.qs()[4 * g..4 * g + 4].try_into().unwrap()) ^ key.signed_xor)
                    } else {
                        bytemuck::cast(nibbles(blk.qs()))
                    };
                    let dst = &mut q[b * packed_block_bytes(nr)..];
                    for (g, x) in ints.iter().enumerate() {
                        dst[g * nr * 4 + r * 4..][..4].copy_from_slice(&x.to_le_bytes());
                    }
                    d[b * nr + r] = blk.d().get();
                    if has_min {
                        m[b * nr + r] = blk.m().get();
                    }
                }
            }
        });
        PackedWeight { key, words, panel_words }
    }

    fn panel(&self, p: usize) -> Panel<'_> {
        let (kb, nr) = (self.key.kb, self.key.nr);
        let (q, scales) = self.words[p * self.panel_words..][..self.panel_words].split_at(kb * packed_block_bytes(nr) / 4);
        let (d, m) = scales.split_at(kb * nr);
        Panel { q: bytemuck::cast_slice(q), d: bytemuck::cast_slice(d), m: bytemuck::cast_slice(m) }
    }
}

#[cfg(any(target_arch = "x86_64", all(target_arch = "wasm32", target_feature = "simd128", feature = "relaxed-simd")))]
impl Panel<'_> {
    /// The bias of columns col0 .. col0 + cols, zero past them (for a full-width load).
    fn bias<B, const NR: usize>(job: &Job<'_, B>, col0: usize, cols: usize) -> [f32; NR] {
        let mut bias = [0f32; NR];
        if let Some(b) = job.bias {
            bias[..cols].copy_from_slice(&b[col0..col0 + cols]);
        }
        bias
    }

    /// The first blocks of activation rows i0 .. i0 + MR of `acts` (rows of `kb` blocks); rows
    /// past the `rows` that exist repeat the last one (their results are not stored).
    #[inline(always)]
    fn tile_rows<const MR: usize>(acts: &[ActBlock], i0: usize, rows: usize, kb: usize) -> [*const ActBlock; MR] {
        std::array::from_fn(|i| acts[(i0 + i.min(rows - 1)) * kb..].as_ptr())
    }
}

/// Prefill (M > 4 rows) with AVX-512 VNNI: the weights are repacked per panel of NR = 16 rows so
/// that one `vpdpbusd` multiplies 4 bytes of one activation row (broadcast) with 4 bytes of each
/// of the 16 weight rows: every 32-bit lane sums one output column, so no horizontal sums are
/// needed, and a tile of MR activation rows reuses each weight load MR times. The weights are the
/// unsigned operand: Q8_0's integers shifted by +128 (the shift is removed with the activation
/// block's sum), nibbles as they are.
#[cfg(target_arch = "x86_64")]
mod vnni_gemm {
    use std::arch::x86_64::*;

    use super::{ActBlock, IntBlock, Job, Offset, Panel};

    /// Weight rows per panel: the 16 lanes of a 512-bit register.
    pub(super) const NR: usize = 16;
    /// Q8_0's integers shifted to unsigned when packed (+128: each byte's top bit flipped).
    pub(super) const SIGNED_XOR: u32 = 0x8080_8080;
    /// Activation rows per tile.
    const MR: usize = 8;
    const PACKED: usize = super::packed_block_bytes(NR);

    /// Columns [p NR, (p + 1) NR) of C[batch] for all M rows.
    #[target_feature(enable = "avx512f,avx512vnni,avx2,fma,f16c")]
    pub(super) unsafe fn panel<B: IntBlock>(job: &Job<'_, B>, panel: Panel<'_>, batch: usize, p: usize) {
        let s = job.s;
        let kb = job.kb;
        let col0 = p * NR;
        let cols = NR.min(s.n - col0);
        let Panel { q, d, m } = panel;
        // What the unsigned integers add per unit of activation sum: d (ad dot - c s).
        let c = match B::OFFSET {
            Offset::None => 128.0,
            Offset::MinusEight => 8.0,
            Offset::Min => 0.0,
        };
        let mask: __mmask16 = if cols == NR { 0xFFFF } else { (1u16 << cols) - 1 };
        let bias = match job.bias {
            Some(b) => _mm512_maskz_loadu_ps(mask, b.as_ptr().add(col0)),
            None => _mm512_setzero_ps(),
        };
        let acts = &job.acts[batch * s.m * kb..][..s.m * kb];
        for i0 in (0..s.m).step_by(MR) {
            let rows = MR.min(s.m - i0);
            let a: [*const ActBlock; MR] = Panel::tile_rows(acts, i0, rows, kb);
            let mut acc = [_mm512_setzero_ps(); MR];
            for b in 0..kb {
                let mut dot = [_mm512_setzero_si512(); MR];
                let wq = q.as_ptr().add(b * PACKED);
                for g in 0..8 {
                    let w = _mm512_loadu_si512(wq.add(g * NR * 4) as *const __m512i);
                    for i in 0..MR {
                        let x = ((*a[i].add(b)).qs.as_ptr().add(4 * g) as *const i32).read_unaligned();
                        dot[i] = _mm512_dpbusd_epi32(dot[i], w, _mm512_set1_epi32(x));
                    }
                }
                let wd = _mm512_loadu_ps(d.as_ptr().add(b * NR));
                for i in 0..MR {
                    let ab = &*a[i].add(b);
                    let x = _mm512_cvtepi32_ps(dot[i]);
                    if B::OFFSET == Offset::Min {
                        acc[i] = _mm512_fmadd_ps(wd, _mm512_mul_ps(x, _mm512_set1_ps(ab.d)), acc[i]);
                        acc[i] = _mm512_fmadd_ps(_mm512_loadu_ps(m.as_ptr().add(b * NR)), _mm512_set1_ps(ab.s), acc[i]);
                    } else {
                        let t = _mm512_fmsub_ps(x, _mm512_set1_ps(ab.d), _mm512_set1_ps(c * ab.s));
                        acc[i] = _mm512_fmadd_ps(wd, t, acc[i]);
                    }
                }
            }
            for (i, acc) in acc.iter().enumerate().take(rows) {
                let out = job.out.at((batch * s.m + i0 + i) * s.n + col0);
                _mm512_mask_storeu_ps(out, mask, _mm512_add_ps(*acc, bias));
            }
        }
    }
}

/// Prefill (M > 4 rows) with AVX2 alone (no VNNI): `vnni_gemm`'s panel layout (NR = 16 weight
/// rows, 4 bytes each, in two 256-bit registers; one activation row's 4 bytes broadcast and used
/// for both), with `vpmaddubsw` + `vpmaddwd` in place of `vpdpbusd`. `vpmaddubsw` sums pairs in
/// saturating i16, so the operands keep their pair sums under 2^15: Q8_0's weights go in as
/// |w| with their sign moved onto the activations (|w| <= 128, |a| <= 127), and nibbles (<= 15)
/// against activations sum a whole block in i16 (8 groups of pairs: at most 30480) before one
/// `vpmaddwd`. Without this, the row-at-a-time kernel ran slower than the f32 matmul. Each
/// broadcast serves two registers: with one (8-row panels) the broadcasts were a fifth of the
/// vector instructions, and Q8_0 ran 10% slower on Zen 3.
#[cfg(target_arch = "x86_64")]
mod avx2_gemm {
    use std::arch::x86_64::*;

    use super::{ActBlock, IntBlock, Job, Offset, Panel};

    /// Weight rows per panel: two registers of 8 lanes.
    pub(super) const NR: usize = 16;
    /// 256-bit registers per panel.
    const NV: usize = 2;
    /// Activation rows per tile (the 2 MR integer sums and the operands take 11 of the 16
    /// registers; the f32 sums, touched once per block, spill).
    const MR: usize = 4;
    const PACKED: usize = super::packed_block_bytes(NR);

    /// Columns [p NR, (p + 1) NR) of C[batch] for all M rows.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn panel<B: IntBlock>(job: &Job<'_, B>, panel: Panel<'_>, batch: usize, p: usize) {
        let s = job.s;
        let kb = job.kb;
        let col0 = p * NR;
        let cols = NR.min(s.n - col0);
        // Q8_0's integers as stored (signed).
        let Panel { q, d, m } = panel;
        let bias: [f32; NR] = Panel::bias(job, col0, cols);
        let bias: [__m256; NV] = std::array::from_fn(|v| _mm256_loadu_ps(bias.as_ptr().add(8 * v)));
        let ones = _mm256_set1_epi16(1);
        let acts = &job.acts[batch * s.m * kb..][..s.m * kb];
        for i0 in (0..s.m).step_by(MR) {
            let rows = MR.min(s.m - i0);
            let a: [*const ActBlock; MR] = Panel::tile_rows(acts, i0, rows, kb);
            let mut acc = [[_mm256_setzero_ps(); NV]; MR];
            for b in 0..kb {
                let wq = q.as_ptr().add(b * PACKED);
                let act = |i: usize, g: usize| _mm256_set1_epi32(((*a[i].add(b)).qs.as_ptr().add(4 * g) as *const i32).read_unaligned());
                let load = |g: usize| -> [__m256i; NV] {
                    std::array::from_fn(|v| _mm256_loadu_si256(wq.add(g * NR * 4 + v * 32) as *const __m256i))
                };
                let mut dot = [[_mm256_setzero_si256(); NV]; MR];
                if B::SIGNED {
                    for g in 0..8 {
                        let w = load(g);
                        // |w| as unsigned bytes (-128 stays 0x80: 128), its sign on the activation.
                        let w_abs = w.map(|w| _mm256_sign_epi8(w, w));
                        for (i, dot) in dot.iter_mut().enumerate() {
                            let x = act(i, g);
                            for v in 0..NV {
                                let pairs = _mm256_maddubs_epi16(w_abs[v], _mm256_sign_epi8(x, w[v]));
                                dot[v] = _mm256_add_epi32(dot[v], _mm256_madd_epi16(pairs, ones));
                            }
                        }
                    }
                } else {
                    let mut pairs = [[_mm256_setzero_si256(); NV]; MR];
                    for g in 0..8 {
                        let w = load(g);
                        for (i, pairs) in pairs.iter_mut().enumerate() {
                            let x = act(i, g);
                            for v in 0..NV {
                                pairs[v] = _mm256_add_epi16(pairs[v], _mm256_maddubs_epi16(w[v], x));
                            }
                        }
                    }
                    for (dot, pairs) in dot.iter_mut().zip(pairs) {
                        *dot = pairs.map(|p| _mm256_madd_epi16(p, ones));
                    }
                }
                let wd: [__m256; NV] = std::array::from_fn(|v| _mm256_loadu_ps(d.as_ptr().add(b * NR + 8 * v)));
                for i in 0..MR {
                    let ab = &*a[i].add(b);
                    let da = _mm256_set1_ps(ab.d);
                    for v in 0..NV {
                        let x = _mm256_cvtepi32_ps(dot[i][v]);
                        // The other kernels' arithmetic, in their order: d_w (d_a dot - c s_a).
                        acc[i][v] = match B::OFFSET {
                            Offset::None => _mm256_fmadd_ps(wd[v], _mm256_mul_ps(x, da), acc[i][v]),
                            // Q4_0: the nibbles' offset, -8 per unit of activation sum.
                            Offset::MinusEight => _mm256_fmadd_ps(wd[v], _mm256_fmsub_ps(x, da, _mm256_set1_ps(8.0 * ab.s)), acc[i][v]),
                            Offset::Min => {
                                let t = _mm256_fmadd_ps(wd[v], _mm256_mul_ps(x, da), acc[i][v]);
                                _mm256_fmadd_ps(_mm256_loadu_ps(m.as_ptr().add(b * NR + 8 * v)), _mm256_set1_ps(ab.s), t)
                            }
                        };
                    }
                }
            }
            for (i, acc) in acc.iter().enumerate().take(rows) {
                // SAFETY (caller): each task writes its own columns of C.
                let out = job.out.at((batch * s.m + i0 + i) * s.n + col0);
                if cols == NR {
                    for v in 0..NV {
                        _mm256_storeu_ps(out.add(8 * v), _mm256_add_ps(acc[v], bias[v]));
                    }
                } else {
                    let mut row = [0f32; NR];
                    for v in 0..NV {
                        _mm256_storeu_ps(row.as_mut_ptr().add(8 * v), _mm256_add_ps(acc[v], bias[v]));
                    }
                    std::ptr::copy_nonoverlapping(row.as_ptr(), out, cols);
                }
            }
        }
    }
}

/// Prefill (M > 4 rows) in the relaxed-simd wasm build: `avx2_gemm`'s panel layout on 128-bit
/// vectors (NR = 4 weight rows, 4 bytes each per vector, one activation row's 4 bytes splatted),
/// `i32x4.relaxed_dot_i8x16_i7x16_add` summing each row's 4 products into its own lane: no
/// horizontal sums, and each weight vector serves MR activation rows. The 7-bit operand holds
/// nibbles as they are, or Q8_0's |w| with the sign moved onto the activations (as in
/// `wasm::Relaxed`). The row-at-a-time kernel reloaded every activation block per weight row,
/// which left q8 slower than the f32 GEMM in the browser.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128", feature = "relaxed-simd"))]
mod relaxed_gemm {
    use std::arch::wasm32::*;

    use super::{ActBlock, IntBlock, Job, Offset, Panel};

    /// Weight rows per panel: the 4 lanes of a vector.
    pub(super) const NR: usize = 4;
    /// Activation rows per tile (MR integer and MR f32 sums stay in x86's 16 vector registers).
    const MR: usize = 4;
    const PACKED: usize = super::packed_block_bytes(NR);

    /// Columns [p NR, (p + 1) NR) of C[batch] for all M rows.
    #[target_feature(enable = "simd128,relaxed-simd")]
    pub(super) unsafe fn panel<B: IntBlock>(job: &Job<'_, B>, panel: Panel<'_>, batch: usize, p: usize) {
        let s = job.s;
        let kb = job.kb;
        let col0 = p * NR;
        let cols = NR.min(s.n - col0);
        // Q8_0's integers as stored (signed).
        let Panel { q, d, m } = panel;
        // What the nibbles' offset takes per unit of activation sum: d (ad dot - c s).
        let c = if B::OFFSET == Offset::MinusEight { 8.0 } else { 0.0 };
        let bias: [f32; NR] = Panel::bias(job, col0, cols);
        let bias = v128_load(bias.as_ptr() as *const v128);
        let acts = &job.acts[batch * s.m * kb..][..s.m * kb];
        for i0 in (0..s.m).step_by(MR) {
            let rows = MR.min(s.m - i0);
            let a: [*const ActBlock; MR] = Panel::tile_rows(acts, i0, rows, kb);
            let mut acc = [f32x4_splat(0.0); MR];
            for b in 0..kb {
                let wq = q.as_ptr().add(b * PACKED);
                let act = |i: usize, g: usize| v128_load32_splat((*a[i].add(b)).qs.as_ptr().add(4 * g) as *const u32);
                let mut dot = [i32x4_splat(0); MR];
                for g in 0..8 {
                    let w = v128_load(wq.add(g * NR * 4) as *const v128);
                    if B::SIGNED {
                        // |w| as the 7-bit operand; sign(w) as 0 / -1 masks negating the activations.
                        let (sign, w_abs) = (i8x16_shr(w, 7), i8x16_abs(w));
                        for (i, dot) in dot.iter_mut().enumerate() {
                            let x = i8x16_sub(v128_xor(act(i, g), sign), sign);
                            *dot = i32x4_relaxed_dot_i8x16_i7x16_add(x, w_abs, *dot);
                        }
                    } else {
                        for (i, dot) in dot.iter_mut().enumerate() {
                            *dot = i32x4_relaxed_dot_i8x16_i7x16_add(act(i, g), w, *dot);
                        }
                    }
                }
                let wd = v128_load(d.as_ptr().add(b * NR) as *const v128);
                for i in 0..MR {
                    let ab = &*a[i].add(b);
                    let x = f32x4_convert_i32x4(dot[i]);
                    if B::OFFSET == Offset::Min {
                        acc[i] = f32x4_relaxed_madd(wd, f32x4_mul(x, f32x4_splat(ab.d)), acc[i]);
                        acc[i] = f32x4_relaxed_madd(v128_load(m.as_ptr().add(b * NR) as *const v128), f32x4_splat(ab.s), acc[i]);
                    } else {
                        let t = f32x4_sub(f32x4_mul(x, f32x4_splat(ab.d)), f32x4_splat(c * ab.s));
                        acc[i] = f32x4_relaxed_madd(wd, t, acc[i]);
                    }
                }
            }
            for (i, acc) in acc.iter().enumerate().take(rows) {
                // SAFETY (caller): each task writes its own columns of C.
                let out = job.out.at((batch * s.m + i0 + i) * s.n + col0);
                let mut row = [0f32; NR];
                v128_store(row.as_mut_ptr() as *mut v128, f32x4_add(*acc, bias));
                std::ptr::copy_nonoverlapping(row.as_ptr(), out, cols);
            }
        }
    }
}
