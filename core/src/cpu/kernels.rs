//! CPU kernels for every op but matmul. Hot loops are generic over `Simd` or written so the
//! compiler vectorizes them, and run through `dispatch!` so they are built for the CPU's ISA.

use half::{bf16, f16};

use super::math;
use super::parallel::{self, SharedOut};
use super::simd::{Simd, dispatch};
use super::{CpuStorage, Input};
use crate::dtype::DType;
use crate::ops::{BinaryOp, NormKind, PoolMode, UnaryOp};
use crate::{Error, Result};

/// Any view of f32/f16/bf16/u32 values, copied densely (and converted) to `out_dtype`.
pub(super) fn copy(src: &Input<'_>, out_dtype: DType) -> Result<CpuStorage> {
    let layout = src.layout;
    let bytes = src.storage.bytes();
    macro_rules! gather_as {
        ($elem:ty, $convert:expr) => {{
            let all: &[$elem] = bytemuck::cast_slice(&bytes[..bytes.len() / std::mem::size_of::<$elem>() * std::mem::size_of::<$elem>()]);
            layout.storage_indices().map(|i| $convert(all[i])).collect::<Vec<_>>()
        }};
    }
    Ok(match (src.dtype, out_dtype) {
        (DType::F32, DType::F32) => CpuStorage::from_f32(gather_as!(f32, |x| x)),
        (DType::F16, DType::F32) => CpuStorage::from_f32(gather_as!(f16, f16::to_f32)),
        (DType::BF16, DType::F32) => CpuStorage::from_f32(gather_as!(bf16, bf16::to_f32)),
        (DType::U32 | DType::I32, DType::U32 | DType::I32) => CpuStorage::from_u32(gather_as!(u32, |x| x)),
        (DType::F32, DType::F16) => CpuStorage::from_bytes(bytemuck::cast_slice(&gather_as!(f32, f16::from_f32))),
        (DType::F16, DType::F16) => CpuStorage::from_bytes(bytemuck::cast_slice(&gather_as!(f16, |x| x))),
        (DType::BF16, DType::F16) => CpuStorage::from_bytes(bytemuck::cast_slice(&gather_as!(bf16, |x: bf16| f16::from_f32(x.to_f32())))),
        (DType::F32 | DType::F16 | DType::BF16, to) if crate::quant::QUANTIZABLE.contains(&to) => {
            let values: Vec<f32> = match src.dtype {
                DType::F32 => gather_as!(f32, |x| x),
                DType::F16 => gather_as!(f16, f16::to_f32),
                _ => gather_as!(bf16, bf16::to_f32),
            };
            // Only weights are quantized, at load (`Weights::get_linear`).
            let storage = CpuStorage::from_bytes(&crate::quant::quantize_at_load(to, &values)?);
            storage.mark_quantized_at_load();
            storage
        }
        (from, to) => return Err(Error::dtype("copy", format!("{from} to {to} on the CPU"))),
    })
}

pub(super) fn gather(table: &Input<'_>, ids: &Input<'_>) -> Result<CpuStorage> {
    let (vocab, h) = (table.layout.dims()[0], table.layout.dims()[1]);
    let ids = ids.u32s();
    if let Some(bad) = ids.iter().find(|&&id| id as usize >= vocab) {
        return Err(Error::Input(format!("token id {bad} is outside the embedding table of {vocab} rows")));
    }
    let mut out = vec![0f32; ids.len() * h];
    let off = table.layout.offset();
    match table.dtype {
        DType::F32 => {
            let t = &table.storage.f32s()[off..];
            for (row, &id) in out.chunks_mut(h).zip(ids) {
                row.copy_from_slice(&t[id as usize * h..][..h]);
            }
        }
        DType::F16 => {
            let t = &table.storage.f16s()[off..];
            for (row, &id) in out.chunks_mut(h).zip(ids) {
                for (o, v) in row.iter_mut().zip(&t[id as usize * h..][..h]) {
                    *o = v.to_f32();
                }
            }
        }
        other => return Err(Error::dtype("gather", format!("table of {other} on the CPU"))),
    }
    Ok(CpuStorage::from_f32(out))
}

/// values[i] = op(values[i]).
#[inline(always)]
pub(super) fn unary_in_place<S: Simd>(values: &mut [f32], op: UnaryOp) {
    let f: fn(f32) -> f32 = match op {
        UnaryOp::Gelu => math::gelu,
        UnaryOp::GeluTanh => math::gelu_tanh,
        UnaryOp::Silu => math::silu,
        UnaryOp::Relu => |v| v.max(0.0),
        UnaryOp::Neg => |v| -v,
        UnaryOp::Exp => math::exp,
        UnaryOp::Tanh => math::tanh,
        UnaryOp::Sigmoid => math::sigmoid,
        UnaryOp::QuickGelu => math::quick_gelu,
        UnaryOp::Rsqrt => |v| 1.0 / v.sqrt(),
    };
    // Separate monomorphic loops so each vectorizes (a call through `f` would not).
    macro_rules! each {
        ($g:expr) => {
            for v in values.iter_mut() {
                *v = $g(*v);
            }
        };
    }
    match op {
        UnaryOp::Gelu => each!(math::gelu),
        UnaryOp::GeluTanh => each!(math::gelu_tanh),
        UnaryOp::Silu => each!(math::silu),
        UnaryOp::Exp => each!(math::exp),
        UnaryOp::Tanh => each!(math::tanh),
        UnaryOp::Sigmoid => each!(math::sigmoid),
        UnaryOp::QuickGelu => each!(math::quick_gelu),
        _ => each!(f),
    }
}

pub(crate) fn apply_unary(values: &mut [f32], op: UnaryOp) {
    parallel::for_each_chunk(values, 1 << 14, |_, chunk| dispatch!(unary_in_place(chunk, op)));
}

pub(super) fn unary(x: &[f32], op: UnaryOp) -> Vec<f32> {
    let mut out = x.to_vec();
    apply_unary(&mut out, op);
    out
}

pub(super) fn binary(lhs: &Input<'_>, rhs: &Input<'_>, op: BinaryOp, numel: usize) -> Vec<f32> {
    let f = |a: f32, b: f32| match op {
        BinaryOp::Add => a + b,
        BinaryOp::Sub => a - b,
        BinaryOp::Mul => a * b,
        BinaryOp::Div => a / b,
        BinaryOp::SiluMul => math::silu(a) * b,
    };
    if lhs.layout.is_contiguous() && rhs.layout.is_contiguous() {
        return lhs.f32s().iter().zip(rhs.f32s()).map(|(&a, &b)| f(a, b)).collect();
    }
    // Broadcast views: the common case is a row vector (stride 0 rows) added to a matrix.
    let (a, b) = (lhs.storage.f32s(), rhs.storage.f32s());
    let mut out = Vec::with_capacity(numel);
    out.extend(lhs.layout.storage_indices().zip(rhs.layout.storage_indices()).map(|(i, j)| f(a[i], b[j])));
    out
}

/// Sum of (x - center)^2 in vectors: an iterator's `sum` stays one serial chain of scalar adds
/// (float addition does not reassociate), a quarter of a layer norm's time.
#[inline(always)]
fn sum_squares<S: Simd>(x: &[f32], center: f32) -> f32 {
    unsafe {
        let (mut acc, c) = (S::zero(), S::splat(-center));
        let mut i = 0;
        while i + S::LANES <= x.len() {
            let d = S::add(S::load(x.as_ptr().add(i)), c);
            acc = S::fma(d, d, acc);
            i += S::LANES;
        }
        S::reduce_sum(acc) + x[i..].iter().map(|&v| (v - center) * (v - center)).sum::<f32>()
    }
}

#[inline(always)]
fn sum<S: Simd>(x: &[f32]) -> f32 {
    unsafe {
        let mut acc = S::zero();
        let mut i = 0;
        while i + S::LANES <= x.len() {
            acc = S::add(acc, S::load(x.as_ptr().add(i)));
            i += S::LANES;
        }
        S::reduce_sum(acc) + x[i..].iter().sum::<f32>()
    }
}

#[inline(always)]
fn norm_rows<S: Simd>(
    x: &[f32],
    residual: Option<&[f32]>,
    weight: &[f32],
    bias: Option<&[f32]>,
    h: usize,
    eps: f32,
    kind: NormKind,
    out: &mut [f32],
    first_row: usize,
) {
    let mut row = vec![0f32; h];
    for (r, o) in out.chunks_mut(h).enumerate() {
        let src = &x[(first_row + r) * h..][..h];
        match residual {
            Some(res) => {
                for ((d, &a), &b) in row.iter_mut().zip(src).zip(&res[(first_row + r) * h..][..h]) {
                    *d = a + b;
                }
            }
            None => row.copy_from_slice(src),
        }
        let (mean, inv) = match kind {
            NormKind::LayerNorm => {
                let mean = sum::<S>(&row) / h as f32;
                // Two passes, like PyTorch: the variance of centred values.
                let var = sum_squares::<S>(&row, mean) / h as f32;
                (mean, 1.0 / (var + eps).sqrt())
            }
            NormKind::RmsNorm => {
                // Summed in order, not in vectors as layer norm's variance is: the int8 decode
                // path's replies are checked against PyTorch's at near ties (tests/smollm2.rs),
                // and the vector sum's other rounding moves one reply's step 43 past that bar.
                let ms = row.iter().map(|&v| v * v).sum::<f32>() / h as f32;
                (0.0, 1.0 / (ms + eps).sqrt())
            }
        };
        match bias {
            Some(b) => {
                for i in 0..h {
                    o[i] = (row[i] - mean) * inv * weight[i] + b[i];
                }
            }
            None => {
                for i in 0..h {
                    o[i] = (row[i] - mean) * inv * weight[i];
                }
            }
        }
    }
}

pub(super) fn norm(
    x: &[f32],
    residual: Option<&[f32]>,
    weight: &[f32],
    bias: Option<&[f32]>,
    h: usize,
    eps: f32,
    kind: NormKind,
) -> Vec<f32> {
    let mut out = vec![0f32; x.len()];
    let rows_per_task = (4096 / h.max(1)).max(1);
    parallel::for_each_chunk(&mut out, rows_per_task * h, |i, chunk| {
        dispatch!(norm_rows(x, residual, weight, bias, h, eps, kind, chunk, i * rows_per_task))
    });
    out
}

/// In place: row = softmax(row); returns nothing. Rows of length `n`.
#[inline(always)]
fn softmax_row<S: Simd>(row: &mut [f32]) {
    // Lane-wise maxima in a form that vectorizes (`f32::max`'s NaN rule kept the fold scalar);
    // NaNs are passed over either way.
    let mut lanes = [f32::NEG_INFINITY; 16];
    let mut chunks = row.chunks_exact(16);
    for chunk in &mut chunks {
        for (m, &v) in lanes.iter_mut().zip(chunk) {
            *m = if v > *m { v } else { *m };
        }
    }
    let max = chunks.remainder().iter().chain(&lanes).fold(f32::NEG_INFINITY, |m, &v| if v > m { v } else { m });
    if max == f32::NEG_INFINITY {
        // Everything masked: a defined result (zeros) rather than NaN.
        row.fill(0.0);
        return;
    }
    for v in row.iter_mut() {
        *v = math::exp(*v - max);
    }
    let inv = 1.0 / sum::<S>(row);
    for v in row.iter_mut() {
        *v *= inv;
    }
}

#[inline(always)]
fn softmax_rows<S: Simd>(rows: &mut [f32], n: usize) {
    for row in rows.chunks_mut(n) {
        softmax_row::<S>(row);
    }
}

pub(super) fn softmax(x: &Input<'_>, mask: Option<&Input<'_>>, scale: f32) -> Vec<f32> {
    let n = x.layout.dims()[x.layout.rank() - 1];
    let mut out: Vec<f32> = x.f32s().iter().map(|&v| v * scale).collect();
    if let Some(mask) = mask {
        let m = mask.storage.f32s();
        for (o, i) in out.iter_mut().zip(mask.layout.storage_indices()) {
            *o += m[i];
        }
    }
    let rows_per_task = (4096 / n.max(1)).max(1);
    parallel::for_each_chunk(&mut out, rows_per_task * n, |_, chunk| dispatch!(softmax_rows(chunk, n)));
    out
}

/// Validates packed-sequence offsets against the number of rows.
fn check_offsets(offsets: &[u32], rows: usize) -> Result<()> {
    let ok = offsets.first() == Some(&0) && offsets.windows(2).all(|w| w[0] <= w[1]) && offsets.last().map(|&l| l as usize) == Some(rows);
    if ok { Ok(()) } else { Err(Error::Input(format!("sequence offsets {offsets:?} do not partition {rows} rows"))) }
}

struct HeadView<'a> {
    data: &'a [f32],
    offset: usize,
    row_stride: usize,
    head_stride: usize,
}

impl HeadView<'_> {
    fn new<'a>(x: &'a Input<'_>) -> HeadView<'a> {
        let s = x.layout.strides();
        HeadView { data: x.storage.f32s(), offset: x.layout.offset(), row_stride: s[0], head_stride: s[1] }
    }
    #[inline(always)]
    fn row(&self, t: usize, h: usize, d: usize) -> &[f32] {
        &self.data[self.offset + t * self.row_stride + h * self.head_stride..][..d]
    }
}

/// Which keys a query sees: `causal` and `window` as `Op::Attention` says.
#[derive(Clone, Copy)]
pub(super) struct KeyMask {
    pub(super) causal: bool,
    pub(super) window: Option<usize>,
}

impl KeyMask {
    /// The range of keys (of k_len) that query i of q_len sees; the queries are the last q_len
    /// positions of the sequence (bottom-right alignment), so query i sits at key position p.
    #[inline(always)]
    fn visible(self, i: usize, q_len: usize, k_len: usize) -> std::ops::Range<usize> {
        let p = k_len as i64 - q_len as i64 + i as i64;
        let (mut start, mut end) = (0i64, k_len as i64);
        if self.causal {
            end = end.min(p + 1);
        }
        if let Some(w) = self.window {
            let w = i64::try_from(w).unwrap_or(i64::MAX);
            start = start.max(p.saturating_sub(w));
            end = end.min(p.saturating_add(w).saturating_add(1));
        }
        let end = end.clamp(0, k_len as i64) as usize;
        (start.clamp(0, k_len as i64) as usize).min(end)..end
    }
}

/// Query rows per attention tile: every key and value vector loaded serves this many rows, and
/// the rows' accumulators are independent, so the FMAs do not wait on each other. 8 rows x 2
/// vectors of accumulators fit 32 registers (AVX-512), 4 x 2 fit 16 (AVX2, NEON's 32 but narrow
/// vectors, wasm's XMM); a head of 32 dims (MiniLM) gives each key vector only d FMAs to share.
const ATTN_ROWS: usize = 8;

#[inline(always)]
fn attn_rows<S: Simd>() -> usize {
    if S::LANES >= 16 { ATTN_ROWS } else { 4 }
}

/// One (sequence, head) of `attention`: its operands and where its rows go.
struct HeadJob<'a> {
    q: &'a HeadView<'a>,
    v: &'a HeadView<'a>,
    q_start: usize,
    q_len: usize,
    k_start: usize,
    k_len: usize,
    h: usize,
    kv_h: usize,
    d: usize,
    hq: usize,
    scale: f32,
    mask: KeyMask,
    bias: Option<&'a [f32]>,
    out: SharedOut,
    /// K of this head transposed to [d, k_pad], zero-padded to whole vectors.
    kt: &'a [f32],
    k_pad: usize,
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn attention_head<S: Simd>(
    q: &HeadView<'_>,
    k: &HeadView<'_>,
    v: &HeadView<'_>,
    (q_start, q_len): (usize, usize),
    (k_start, k_len): (usize, usize),
    (h, kv_h, d): (usize, usize, usize),
    hq: usize,
    scale: f32,
    mask: KeyMask,
    bias: Option<&[f32]>,
    out: SharedOut,
) {
    if q_len == 0 {
        return;
    }
    // K transposed so that scores for a vector of keys accumulate as full vectors with no
    // scalar tail.
    let k_pad = k_len.div_ceil(S::LANES) * S::LANES;
    let mut kt = vec![0f32; d * k_pad];
    // Eight keys at a time, so that the stores run along kt's rows instead of down its columns.
    for j0 in (0..k_len).step_by(8) {
        let keys: [&[f32]; 8] = std::array::from_fn(|jj| k.row(k_start + (j0 + jj).min(k_len - 1), kv_h, d));
        let n = 8.min(k_len - j0);
        for c in 0..d {
            for (jj, key) in keys.iter().enumerate().take(n) {
                kt[c * k_pad + j0 + jj] = key[c];
            }
        }
    }
    if k_len > 0 {
        // Every value row the tiles read through raw pointers lies inside v's data.
        let _ = v.row(k_start + k_len - 1, kv_h, d);
    }
    let job = HeadJob { q, v, q_start, q_len, k_start, k_len, h, kv_h, d, hq, scale, mask, bias, out, kt: &kt, k_pad };
    let mut scratch = TileScratch { scores: vec![0f32; ATTN_ROWS * k_pad], q: vec![0f32; ATTN_ROWS * d], out: vec![0f32; ATTN_ROWS * d] };
    let wide = attn_rows::<S>();
    let mut i0 = 0;
    while i0 < q_len {
        i0 += match q_len - i0 {
            1 => attention_tile::<S, 1>(&job, i0, &mut scratch),
            2 => attention_tile::<S, 2>(&job, i0, &mut scratch),
            3 => attention_tile::<S, 3>(&job, i0, &mut scratch),
            left if left >= ATTN_ROWS && wide == ATTN_ROWS => attention_tile::<S, ATTN_ROWS>(&job, i0, &mut scratch),
            _ => attention_tile::<S, 4>(&job, i0, &mut scratch),
        };
    }
}

/// A tile's working rows: R rows of scores (k_pad each), scaled queries and outputs (d each).
struct TileScratch {
    scores: Vec<f32>,
    q: Vec<f32>,
    out: Vec<f32>,
}

/// out[r][x] = sum over s in `steps` of a[r][s] b[s][x], for R rows and x across `cols` in whole
/// vectors (two at a time, then one): the small product both halves of an attention tile are
/// (scores: queries times K transposed; outputs: probabilities times V). Operands are (pointer,
/// row stride). Returns where the whole vectors stopped (the rest of `cols` is left to the caller).
///
/// SAFETY: a has R rows covering `steps`, b's rows `steps` cover the vectors of `cols`, out has R
/// rows covering them.
#[inline(always)]
unsafe fn rows_times<S: Simd, const R: usize>(
    a: (*const f32, usize),
    steps: std::ops::Range<usize>,
    b: (*const f32, usize),
    cols: std::ops::Range<usize>,
    out: (*mut f32, usize),
) -> usize {
    let mut x = cols.start;
    // SAFETY: the caller's (above), for every vector of `cols` taken.
    unsafe {
        while x + 2 * S::LANES <= cols.end {
            rows_times_block::<S, R, 2>(a, steps.clone(), b, x, out);
            x += 2 * S::LANES;
        }
        if x + S::LANES <= cols.end {
            rows_times_block::<S, R, 1>(a, steps, b, x, out);
            x += S::LANES;
        }
    }
    x
}

/// `rows_times` for NV vectors at column x: R x NV accumulators, so that each vector of b loaded
/// serves R rows and no FMA waits on the previous one.
#[inline(always)]
unsafe fn rows_times_block<S: Simd, const R: usize, const NV: usize>(
    (a, a_stride): (*const f32, usize),
    steps: std::ops::Range<usize>,
    (b, b_stride): (*const f32, usize),
    x: usize,
    (out, out_stride): (*mut f32, usize),
) {
    // SAFETY: `rows_times`'s.
    unsafe {
        let mut acc = [[S::zero(); NV]; R];
        for s in steps {
            let bv: [S::V; NV] = std::array::from_fn(|v| S::load(b.add(s * b_stride + x + v * S::LANES)));
            for (r, acc) in acc.iter_mut().enumerate() {
                let av = S::splat(*a.add(r * a_stride + s));
                for (acc, &bv) in acc.iter_mut().zip(&bv) {
                    *acc = S::fma(av, bv, *acc);
                }
            }
        }
        for (r, acc) in acc.iter().enumerate() {
            for (v, &acc) in acc.iter().enumerate() {
                S::store(out.add(r * out_stride + x + v * S::LANES), acc);
            }
        }
    }
}

/// Query rows i0 .. i0 + R of one head: scores for the keys any of them sees, each row's
/// softmax over its own visible keys (zero elsewhere), then the probabilities times V. Returns
/// R, the rows it did.
#[inline(always)]
fn attention_tile<S: Simd, const R: usize>(job: &HeadJob<'_>, i0: usize, scratch: &mut TileScratch) -> usize {
    let (l, d, k_pad) = (S::LANES, job.d, job.k_pad);
    let visible: [std::ops::Range<usize>; R] = std::array::from_fn(|r| job.mask.visible(i0 + r, job.q_len, job.k_len));
    let lo = visible.iter().filter(|k| !k.is_empty()).map(|k| k.start).min().unwrap_or(0);
    let hi = visible.iter().map(|k| k.end).max().unwrap_or(0).max(lo);
    for r in 0..R {
        for (dst, &x) in scratch.q[r * d..][..d].iter_mut().zip(job.q.row(job.q_start + i0 + r, job.h, d)) {
            *dst = x * job.scale;
        }
    }
    // Whole vectors of keys around the visible ones.
    let (first, span) = (lo / l * l, hi.div_ceil(l) * l);
    // scores[r][j] = q_r . k_j, vectors of keys from K transposed.
    // SAFETY: kt rows hold k_pad >= span values, each scores row k_pad, q R rows of d.
    unsafe {
        let q = scratch.q.as_ptr();
        rows_times::<S, R>((q, d), 0..d, (job.kt.as_ptr(), k_pad), first..span, (scratch.scores.as_mut_ptr(), k_pad));
    }
    for (r, keys) in visible.iter().enumerate() {
        let row = &mut scratch.scores[r * k_pad..][..k_pad];
        if let Some(table) = job.bias {
            // This head's distance table [2c + 1]: entry c + (j - p), clamped to its ends.
            let c = (table.len() / 2) as i64;
            let p = job.k_len as i64 - job.q_len as i64 + (i0 + r) as i64;
            for j in keys.clone() {
                row[j] += table[(c + (j as i64 - p).clamp(-c, c)) as usize];
            }
        }
        softmax_row::<S>(&mut row[keys.clone()]);
        // Keys this row does not see weigh nothing in the tile's shared pass over V.
        let (start, end) = if keys.is_empty() { (lo, lo) } else { (keys.start, keys.end) };
        row[lo..start].fill(0.0);
        row[end..hi].fill(0.0);
    }
    let v = job.v;
    let v_base = v.data.as_ptr().wrapping_add(v.offset + job.k_start * v.row_stride + job.kv_h * v.head_stride);
    let (probs, outs) = (scratch.scores.as_ptr(), scratch.out.as_mut_ptr());
    // SAFETY: value rows lo..hi < k_len lie inside v's data (checked by attention_head); each
    // row holds d values; probs and outs as above.
    unsafe {
        // out[r] = sum_j p_rj v_j over whole vectors of d, then the last few dims one by one.
        let d0 = rows_times::<S, R>((probs, k_pad), lo..hi, (v_base, v.row_stride), 0..d, (outs, d));
        for c in d0..d {
            for r in 0..R {
                *outs.add(r * d + c) = (lo..hi).map(|j| *probs.add(r * k_pad + j) * *v_base.add(j * v.row_stride + c)).sum();
            }
        }
    }
    for r in 0..R {
        // SAFETY: each (token, head) row of the output is written by exactly one task.
        let dst = unsafe { std::slice::from_raw_parts_mut(job.out.at(((job.q_start + i0 + r) * job.hq + job.h) * d), d) };
        dst.copy_from_slice(&scratch.out[r * d..][..d]);
    }
    R
}

pub(super) fn attention(
    q: &Input<'_>,
    k: &Input<'_>,
    v: &Input<'_>,
    (q_offsets, kv_offsets): (&[u32], &[u32]),
    scale: f32,
    mask: KeyMask,
    bias: Option<(&[f32], usize)>,
) -> Result<Vec<f32>> {
    let [t, hq, d] = [q.layout.dims()[0], q.layout.dims()[1], q.layout.dims()[2]];
    let hkv = k.layout.dims()[1];
    check_offsets(q_offsets, t)?;
    check_offsets(kv_offsets, k.layout.dims()[0])?;
    let (qv, kv, vv) = (HeadView::new(q), HeadView::new(k), HeadView::new(v));
    let mut out = vec![0f32; t * hq * d];
    let shared = SharedOut(out.as_mut_ptr());
    let seqs = q_offsets.len() - 1;
    parallel::for_each(seqs * hq, |task| {
        let (s, h) = (task / hq, task % hq);
        let qr = (q_offsets[s] as usize, (q_offsets[s + 1] - q_offsets[s]) as usize);
        let kr = (kv_offsets[s] as usize, (kv_offsets[s + 1] - kv_offsets[s]) as usize);
        let heads = (h, h / (hq / hkv), d);
        let bias = bias.map(|(table, width)| &table[h * width..(h + 1) * width]);
        dispatch!(attention_head(&qv, &kv, &vv, qr, kr, heads, hq, scale, mask, bias, shared))
    });
    Ok(out)
}

/// Rotary embedding of x [T, H, D] (unit stride on D); see `Op::Rope`.
pub(super) fn rope(x: &Input<'_>, positions: &[u32], inv_freq: &[f32], interleaved: bool, rotated: usize) -> Vec<f32> {
    let [t, heads, d] = [x.layout.dims()[0], x.layout.dims()[1], x.layout.dims()[2]];
    let view = HeadView::new(x);
    let half = inv_freq.len();
    let mut out = vec![0f32; t * heads * d];
    for (r, &pos) in positions.iter().enumerate() {
        let angles: Vec<(f32, f32)> = inv_freq.iter().map(|&f| (pos as f32 * f).sin_cos()).collect();
        for h in 0..heads {
            let src = view.row(r, h, d);
            let dst = &mut out[(r * heads + h) * d..][..d];
            dst.copy_from_slice(src);
            if h >= rotated {
                continue;
            }
            for (i, &(sin, cos)) in angles.iter().enumerate() {
                let (a, b) = if interleaved { (2 * i, 2 * i + 1) } else { (i, i + half) };
                dst[a] = src[a] * cos - src[b] * sin;
                dst[b] = src[b] * cos + src[a] * sin;
            }
        }
    }
    out
}

/// Index of the largest value (the first on ties; NaN never wins).
pub(super) fn argmax(row: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        if v > row[best] || row[best].is_nan() {
            best = i;
        }
    }
    best as u32
}

pub(super) fn segment_pool(x: &[f32], h: usize, offsets: &[u32], mode: PoolMode) -> Result<Vec<f32>> {
    check_offsets(offsets, x.len() / h.max(1))?;
    let mut out = vec![0f32; (offsets.len() - 1) * h];
    for (b, o) in out.chunks_mut(h).enumerate() {
        let (start, end) = (offsets[b] as usize, offsets[b + 1] as usize);
        if start == end {
            continue;
        }
        match mode {
            PoolMode::Cls => o.copy_from_slice(&x[start * h..][..h]),
            PoolMode::Mean => {
                for row in x[start * h..end * h].chunks(h) {
                    for (a, &v) in o.iter_mut().zip(row) {
                        *a += v;
                    }
                }
                let inv = 1.0 / (end - start) as f32;
                o.iter_mut().for_each(|a| *a *= inv);
            }
        }
    }
    Ok(out)
}

pub(super) fn unpack(x: &[f32], h: usize, offsets: &[u32], max_len: usize) -> Result<Vec<f32>> {
    check_offsets(offsets, x.len() / h.max(1))?;
    let mut out = vec![0f32; (offsets.len() - 1) * max_len * h];
    for (b, o) in out.chunks_mut(max_len * h).enumerate() {
        let (start, end) = (offsets[b] as usize, offsets[b + 1] as usize);
        let n = (end - start).min(max_len);
        o[..n * h].copy_from_slice(&x[start * h..(start + n) * h]);
    }
    Ok(out)
}

/// out[row, m] = x[row, min(index[row % R, m], N - 1)] for rows of `n` in x and index [R, m].
pub(super) fn take_along_last(x: &[f32], index: &[u32], n: usize, m: usize) -> Vec<f32> {
    let rows = x.len().checked_div(n).unwrap_or(0);
    let r = index.len().checked_div(m).unwrap_or(0);
    let mut out = vec![0f32; rows * m];
    if out.is_empty() || r == 0 {
        return out;
    }
    parallel::for_each_chunk(&mut out, m, |row, o| {
        let src = &x[row * n..][..n];
        for (o, &i) in o.iter_mut().zip(&index[(row % r) * m..][..m]) {
            *o = src[(i as usize).min(n - 1)];
        }
    });
    out
}

pub(super) fn l2_normalize(x: &[f32], h: usize, eps: f32) -> Vec<f32> {
    let mut out = x.to_vec();
    for row in out.chunks_mut(h) {
        let norm = row.iter().map(|&v| v * v).sum::<f32>().sqrt();
        let inv = 1.0 / norm.max(eps);
        row.iter_mut().for_each(|v| *v *= inv);
    }
    out
}
