//! Matmul and embedding lookup with ggml-quantized weights on the CPU, reading the blocks as
//! stored: a weight is never expanded beyond one small buffer per thread.
//!
//! Blocks are dequantized with the block types' own `dequantize` (quant.rs): plain loops that the
//! compiler vectorizes here, since these kernels are instantiated inside `dispatch!`'s
//! target-feature functions. Two paths:
//! - decode (M <= MATVEC_MAX_M activation rows): each weight row is dequantized 256 values at a
//!   time into a stack buffer and dotted with every activation row with SIMD FMAs; threads split
//!   the weight rows. The buffer stays in L1, so the weight bytes are read once, streaming.
//! - prefill: per KC slice of K, NR weight rows are dequantized into the f32 GEMM's packed panel
//!   layout ([KC][NR], in L1) and the GEMM's register-blocked micro-kernel runs over all M rows,
//!   so the dequantization is amortized over M.
//!
//! Decode on one core is compute-bound (about 6 GB/s of weights read, a quarter of what a core can
//! stream), so it scales with threads. Q8_0, Q4_0 and Q4_1 weights quantized at load (dtype 'q8' /
//! 'q4'), or any with `set_int8_matmul(true)` / WEBFORMERS_INT8=1, take the integer path of
//! int8.rs instead (activations quantized to 8 bits, as llama.cpp does: 1.4x to 2.7x faster, no
//! longer PyTorch's f32 logits); GGUF weights stay here by default, and the k-quants (Q4_K, Q5_K,
//! Q6_K) always take these f32 paths.
//! `cargo run --release -p webformers-core --example quant_bench -- cpu` measures both.

use super::matmul::{Epilogue, Shape, add_residual, load_partial, store_partial, strides3, tile, tile_for};
use super::parallel::{self, SharedOut};
use super::simd::{Simd, dispatch};
use super::{CpuStorage, DECODE_ROWS_AHEAD, Input};
use crate::ops::Activation;
use crate::quant::{QuantBlock, blocks, with_block};
use crate::{Error, Result};

/// Up to this many activation rows use the decode path.
const MATVEC_MAX_M: usize = 4;
/// Values dequantized at a time on the decode path: one k-quant super-block or 8 small blocks.
const CHUNK: usize = 256;
/// K per pass of the prefill path (a multiple of every block length).
const KC: usize = 256;

/// C = act(A B + bias) + residual (`residual`: C's shape, dense).
pub(super) fn matmul(
    a: &Input<'_>,
    b: &Input<'_>,
    bias: Option<&Input<'_>>,
    act: Activation,
    residual: Option<&[f32]>,
    s: Shape,
) -> Result<Vec<f32>> {
    let epilogue = Epilogue::new(act, residual);
    if super::int8::handles(b.dtype) && super::int8::int8_for(b.storage.quantized_at_load()) {
        return super::int8::matmul(a, b, bias, epilogue, s);
    }
    with_block!(b.dtype, matmul_typed(a, b, bias, epilogue, s), Err(Error::dtype("matmul", format!("{} is not a quantized type", b.dtype))))
}

/// Where a quantized weight's rows are: block index of row 0 (batch 0), and block strides.
struct WeightView<'a, B> {
    blocks: &'a [B],
    first: usize,
    batch_stride: usize,
    row_stride: usize,
    /// Blocks per row (K / block length).
    row_blocks: usize,
}

impl<B: QuantBlock> WeightView<'_, B> {
    #[inline(always)]
    fn row(&self, batch: usize, j: usize) -> &[B] {
        &self.blocks[self.first + batch * self.batch_stride + j * self.row_stride..][..self.row_blocks]
    }
}

fn matmul_typed<B: QuantBlock>(
    a: &Input<'_>,
    b: &Input<'_>,
    bias: Option<&Input<'_>>,
    epilogue: Epilogue<'_>,
    s: Shape,
) -> Result<Vec<f32>> {
    let (sa_b, sa_m, sa_k) = strides3(a.layout);
    let (sb_b, sb_k, sb_n) = strides3(b.layout);
    let len = B::LEN;
    // ops.rs only records quantized matmuls of this shape; checked again since a wrong stride
    // here would read the wrong blocks.
    let aligned = [b.layout.offset(), sb_b, if s.n > 1 { sb_n } else { 0 }, s.k].iter().all(|v| v % len == 0);
    if (sb_k != 1 && s.k > 1) || (sa_k != 1 && s.k > 1) || !aligned {
        return Err(Error::shape(
            "matmul",
            format!("{} weights need the transpose of a [N, K] weight with whole blocks per row", B::DTYPE),
        ));
    }
    let w = WeightView {
        blocks: blocks::<B>(b.storage.bytes())?,
        first: b.layout.offset() / len,
        batch_stride: sb_b / len,
        row_stride: sb_n / len,
        row_blocks: s.k / len,
    };
    let a_all = a.storage.f32s();
    let bias = bias.map(|t| t.f32s());
    let mut c = vec![0f32; s.batch * s.m * s.n];
    if s.m * s.n * s.k == 0 {
        add_residual(&mut c, epilogue.residual);
        return Ok(c);
    }
    for bi in 0..s.batch {
        let a_base = &a_all[a.layout.offset() + bi * sa_b..];
        let c_batch = &mut c[bi * s.m * s.n..][..s.m * s.n];
        let residual = epilogue.residual.map(|r| &r[bi * s.m * s.n..][..s.m * s.n]);
        if s.m <= MATVEC_MAX_M {
            matvec(a_base, sa_m, &w, bi, bias, s, c_batch);
        } else {
            gemm(a_base, sa_m, &w, bi, bias, s, c_batch);
        }
        Epilogue { residual, ..epilogue }.apply_all(c_batch);
    }
    Ok(c)
}

fn matvec<B: QuantBlock>(a: &[f32], sa_m: usize, w: &WeightView<'_, B>, batch: usize, bias: Option<&[f32]>, s: Shape, c: &mut [f32]) {
    let rows: Vec<&[f32]> = (0..s.m).map(|i| &a[i * sa_m..][..s.k]).collect();
    // Enough tasks to balance threads, each a run of rows long enough to stream.
    let rows_per_task = (s.n / (parallel::threads() * 8)).clamp(4, 64);
    let out = SharedOut(c.as_mut_ptr());
    parallel::for_each(s.n.div_ceil(rows_per_task), |t| {
        let js = t * rows_per_task..((t + 1) * rows_per_task).min(s.n);
        dispatch!(matvec_rows::<B>(&rows, w, batch, js, bias, s.n, out))
    });
}

/// out[i][j] = x_i . W_j (+ bias[j]) for the weight rows `js`.
#[inline(always)]
fn matvec_rows<S: Simd, B: QuantBlock>(
    x: &[&[f32]],
    w: &WeightView<'_, B>,
    batch: usize,
    js: std::ops::Range<usize>,
    bias: Option<&[f32]>,
    n: usize,
    out: SharedOut,
) {
    let mut buf = [0f32; CHUNK];
    let per_chunk = (CHUNK / B::LEN).max(1);
    for j in js {
        if j + DECODE_ROWS_AHEAD < n {
            super::prefetch_all(w.row(batch, j + DECODE_ROWS_AHEAD));
        }
        // Four accumulators per activation row hide the FMA latency.
        let mut acc = [[unsafe { S::zero() }; 4]; MATVEC_MAX_M];
        for (ci, chunk) in w.row(batch, j).chunks(per_chunk).enumerate() {
            for (bi, blk) in chunk.iter().enumerate() {
                blk.dequantize(&mut buf[bi * B::LEN..]);
            }
            let len = chunk.len() * B::LEN;
            let k0 = ci * per_chunk * B::LEN;
            for (xi, acc) in x.iter().zip(acc.iter_mut()) {
                let xs = &xi[k0..k0 + len];
                // SAFETY: `len` values exist in both; len is a multiple of 32 and of LANES.
                unsafe {
                    let (wp, xp) = (buf.as_ptr(), xs.as_ptr());
                    let mut i = 0;
                    while i + 4 * S::LANES <= len {
                        for u in 0..4 {
                            let o = i + u * S::LANES;
                            acc[u] = S::fma(S::load(wp.add(o)), S::load(xp.add(o)), acc[u]);
                        }
                        i += 4 * S::LANES;
                    }
                    while i < len {
                        acc[0] = S::fma(S::load(wp.add(i)), S::load(xp.add(i)), acc[0]);
                        i += S::LANES;
                    }
                }
            }
        }
        for (i, acc) in acc.iter().enumerate().take(x.len()) {
            // SAFETY: reductions of the accumulators; each task writes its own columns j.
            unsafe {
                let v = S::reduce_sum(S::add(S::add(acc[0], acc[1]), S::add(acc[2], acc[3])));
                *out.at(i * n + j) = v + bias.map_or(0.0, |b| b[j]);
            }
        }
    }
}

fn gemm<B: QuantBlock>(a: &[f32], sa_m: usize, w: &WeightView<'_, B>, batch: usize, bias: Option<&[f32]>, s: Shape, c: &mut [f32]) {
    let lanes = dispatch!(lanes());
    let (mr, nv) = tile_for(lanes);
    let nr = nv * lanes;
    let panels = s.n.div_ceil(nr);
    let mut bias_padded = vec![0f32; panels * nr];
    if let Some(bias) = bias {
        bias_padded[..s.n].copy_from_slice(bias);
    }
    let zeros = vec![0f32; KC];
    let out = SharedOut(c.as_mut_ptr());
    let job = GemmJob { a, sa_m, w, batch, bias: &bias_padded, zeros: &zeros, s, out };
    // One panel of NR weight rows per task: all M rows reuse its dequantized slices.
    parallel::for_each(panels, |p| match mr {
        12 => dispatch!(gemm_panel::<B, 12>(&job, p)),
        _ => dispatch!(gemm_panel::<B, 6>(&job, p)),
    });
}

#[inline(always)]
fn lanes<S: Simd>() -> usize {
    S::LANES
}

struct GemmJob<'a, 'w, B> {
    a: &'a [f32],
    sa_m: usize,
    w: &'a WeightView<'w, B>,
    batch: usize,
    bias: &'a [f32],
    /// Stands in for activation rows past M, so the micro-kernel always has MR rows.
    zeros: &'a [f32],
    s: Shape,
    out: SharedOut,
}

/// Columns [p NR, (p + 1) NR) of C for all M rows: per KC slice, the panel's weight rows are
/// dequantized into [kc][NR] and the f32 micro-kernel accumulates MR x NR tiles.
#[inline(always)]
fn gemm_panel<S: Simd, B: QuantBlock, const MR: usize>(job: &GemmJob<'_, '_, B>, p: usize) {
    const NV: usize = 2;
    let nr = NV * S::LANES;
    let s = job.s;
    let col0 = p * nr;
    let cols = nr.min(s.n - col0);
    let mut panel = vec![0f32; KC * nr];
    let mut row = [0f32; KC];
    for pc in (0..s.k).step_by(KC) {
        let kc = KC.min(s.k - pc);
        for jj in 0..cols {
            let blocks = &job.w.row(job.batch, col0 + jj)[pc / B::LEN..(pc + kc) / B::LEN];
            for (bi, blk) in blocks.iter().enumerate() {
                blk.dequantize(&mut row[bi * B::LEN..]);
            }
            for (kk, &v) in row[..kc].iter().enumerate() {
                panel[kk * nr + jj] = v;
            }
        }
        // Columns past N stay zero from the allocation.
        for r0 in (0..s.m).step_by(MR) {
            let valid = MR.min(s.m - r0);
            let a_rows: [*const f32; MR] =
                std::array::from_fn(|i| if i < valid { job.a[(r0 + i) * job.sa_m + pc..].as_ptr() } else { job.zeros.as_ptr() });
            // SAFETY: a_rows have kc values, the panel kc * nr, and each task owns its columns of C.
            unsafe {
                let mut acc = [[S::zero(); NV]; MR];
                for (i, regs) in acc.iter_mut().enumerate().take(valid) {
                    let c_row = job.out.at((r0 + i) * s.n + col0);
                    for (v, reg) in regs.iter_mut().enumerate() {
                        *reg = if pc > 0 {
                            load_partial::<S>(c_row.add(v * S::LANES), cols.saturating_sub(v * S::LANES))
                        } else {
                            S::load(job.bias.as_ptr().add(col0 + v * S::LANES))
                        };
                    }
                }
                tile::<S, MR, NV, false>(&a_rows, panel.as_ptr(), kc, nr, std::ptr::null(), &mut acc);
                for (i, regs) in acc.iter().enumerate().take(valid) {
                    let c_row = job.out.at((r0 + i) * s.n + col0);
                    for (v, reg) in regs.iter().enumerate() {
                        store_partial::<S>(c_row.add(v * S::LANES), *reg, cols.saturating_sub(v * S::LANES));
                    }
                }
            }
        }
    }
}

/// Embedding lookup from a quantized table [V, H] (H whole blocks): the chosen rows, dequantized.
pub(super) fn gather(table: &Input<'_>, ids: &Input<'_>) -> Result<CpuStorage> {
    with_block!(table.dtype, gather_typed(table, ids), Err(Error::dtype("gather", format!("{} is not a quantized type", table.dtype))))
}

fn gather_typed<B: QuantBlock>(table: &Input<'_>, ids: &Input<'_>) -> Result<CpuStorage> {
    let (vocab, h) = (table.layout.dims()[0], table.layout.dims()[1]);
    if h % B::LEN != 0 || table.layout.offset() % B::LEN != 0 {
        return Err(Error::shape("gather", format!("rows of {h} values are not whole {} blocks", B::DTYPE)));
    }
    let ids = ids.u32s();
    if let Some(bad) = ids.iter().find(|&&id| id as usize >= vocab) {
        return Err(Error::Input(format!("token id {bad} is outside the embedding table of {vocab} rows")));
    }
    let all = blocks::<B>(table.storage.bytes())?;
    let (first, per_row) = (table.layout.offset() / B::LEN, h / B::LEN);
    let mut out = vec![0f32; ids.len() * h];
    for (row, &id) in out.chunks_mut(h.max(1)).zip(ids) {
        for (blk, o) in all[first + id as usize * per_row..][..per_row].iter().zip(row.chunks_mut(B::LEN)) {
            blk.dequantize(o);
        }
    }
    Ok(CpuStorage::from_f32(out))
}
