//! Matrix multiply on the CPU.
//!
//! Most calls are activations [M, K] times a weight stored [N, K] (Hugging Face's `[out, in]`).
//! For M > 2 the weight is packed once into panels of NR columns ([K][NR] each, cached on the
//! weight's storage) and a register-blocked kernel computes MR x NR tiles of C with broadcast
//! FMAs, blocked over K so a panel slice stays in L1 while the A block stays in L2. For M <= 2
//! (decoding one token) packing would cost more than it saves: rows are dot products instead.

use std::sync::Arc;

use half::f16;

use super::Input;
use super::kernels::{apply_unary, unary_in_place};
use super::parallel::{self, SharedOut};
use super::simd::{Simd, dispatch};
use crate::dtype::DType;
use crate::layout::Layout;
use crate::ops::{Activation, UnaryOp};
use crate::{Error, Result};

#[derive(Clone, Copy, Debug)]
pub(crate) struct Shape {
    pub batch: usize,
    pub m: usize,
    pub n: usize,
    pub k: usize,
}

/// Rows of C per task and K per pass: sized for ~1 MiB L2 and ~48 KiB L1.
const MC: usize = 96;
const KC: usize = 256;
const PANELS_PER_TASK: usize = 4;

/// Register tile of the packed kernel for a vector width: MR rows x (NV vectors = NR columns).
pub(super) const fn tile_for(lanes: usize) -> (usize, usize) {
    if lanes >= 16 {
        (12, 2)
    } else if cfg!(target_arch = "wasm32") {
        // Engines map v128 onto x86's 16 XMM registers, one kept as scratch, and without FMA each
        // product needs a temporary: 6x8's 12 accumulators spill, 4x8's 8 do not (1.6x in V8).
        (4, 2)
    } else {
        (6, 2)
    }
}

/// (batch, row, k) strides of a [batch, rows, K]- or [rows, K]-shaped view.
pub(super) fn strides3(layout: &Layout) -> (usize, usize, usize) {
    let s = layout.strides();
    match s.len() {
        2 => (0, s[0], s[1]),
        _ => (s[0], s[1], s[2]),
    }
}

/// A weight packed in NR-column panels, [panels][K][NR], zero-padded at the right edge.
pub(crate) struct PackedB {
    key: PackKey,
    data: Vec<f32>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct PackKey {
    offset: usize,
    sk: usize,
    sn: usize,
    k: usize,
    n: usize,
    nr: usize,
}

fn load_b(b: &Input<'_>, idx: usize) -> f32 {
    match b.dtype {
        DType::F16 => b.storage.f16s()[idx].to_f32(),
        _ => b.storage.f32s()[idx],
    }
}

fn pack_b(b: &Input<'_>, key: PackKey) -> Vec<f32> {
    let panels = key.n.div_ceil(key.nr);
    let mut data = vec![0f32; panels * key.k * key.nr];
    parallel::for_each_chunk(&mut data, key.k * key.nr, |p, panel| {
        for jj in 0..key.nr.min(key.n - p * key.nr) {
            let col = key.offset + (p * key.nr + jj) * key.sn;
            match (b.dtype, key.sk) {
                (DType::F32, 1) => {
                    let src = &b.storage.f32s()[col..col + key.k];
                    for (kk, &v) in src.iter().enumerate() {
                        panel[kk * key.nr + jj] = v;
                    }
                }
                _ => {
                    for kk in 0..key.k {
                        panel[kk * key.nr + jj] = load_b(b, col + kk * key.sk);
                    }
                }
            }
        }
    });
    data
}

impl super::PackedForm for PackedB {
    type Key = PackKey;
    fn key(&self) -> &PackKey {
        &self.key
    }
}

/// C = act(A B + bias) + residual; `residual` is C's shape, dense.
pub(super) fn matmul(
    a: &Input<'_>,
    b: &Input<'_>,
    bias: Option<&Input<'_>>,
    act: Activation,
    residual: Option<&[f32]>,
    s: Shape,
) -> Result<Vec<f32>> {
    if !matches!(b.dtype, DType::F32 | DType::F16) {
        return Err(Error::dtype("matmul", format!("{} weights on the CPU", b.dtype)));
    }
    let (sa_b, sa_m, sa_k) = strides3(a.layout);
    let (sb_b, sb_k, sb_n) = strides3(b.layout);
    // A with unit K stride; copy the rare views that lack it.
    let a_owned;
    let (a_data, a_off, sa_b, sa_m) = if sa_k == 1 || s.k == 1 {
        (a.storage.f32s(), a.layout.offset(), sa_b, sa_m)
    } else {
        let all = a.storage.f32s();
        a_owned = a.layout.storage_indices().map(|i| all[i]).collect::<Vec<f32>>();
        (&a_owned[..], 0, s.m * s.k, s.k)
    };
    let bias = bias.map(|t| t.f32s());
    if s.m * s.n * s.k == 0 {
        let mut c = vec![0f32; s.batch * s.m * s.n];
        add_residual(&mut c, residual);
        return Ok(c);
    }
    let epilogue = Epilogue::new(act, residual);
    let mut c = uninit_output(s.batch * s.m * s.n);
    let (mr, nv) = dispatch!(lanes_tile());
    let lanes = dispatch!(lanes());
    let nr = nv * lanes;
    for bi in 0..s.batch {
        let a_base = &a_data[a_off + bi * sa_b..];
        let c_batch = &mut c[bi * s.m * s.n..][..s.m * s.n];
        let residual = residual.map(|r| &r[bi * s.m * s.n..][..s.m * s.n]);
        let epilogue = Epilogue { residual, ..epilogue };
        let b_off = b.layout.offset() + bi * sb_b;
        if s.m <= 2 {
            matvec(a_base, sa_m, b, b_off, sb_k, sb_n, bias, s, c_batch);
            epilogue.apply_all(c_batch);
        } else {
            let key = PackKey { offset: b_off, sk: sb_k, sn: sb_n, k: s.k, n: s.n, nr };
            // Weights (one matrix for every batch) are cached; per-batch operands are packed each time.
            let make = || PackedB { key, data: pack_b(b, key) };
            let packed = if s.batch == 1 || sb_b == 0 { b.storage.packed(&key, make) } else { Arc::new(make()) };
            gemm_packed(a_base, sa_m, &packed.data, bias, epilogue, s, nr, mr, c_batch);
        }
    }
    Ok(c)
}

/// c += residual, elementwise, in place on C while it is hot.
pub(super) fn add_residual(c: &mut [f32], residual: Option<&[f32]>) {
    if let Some(r) = residual {
        c.iter_mut().zip(r).for_each(|(c, r)| *c += r);
    }
}

/// A buffer every element of which the caller writes before it is read: zeroing C first was a
/// pass over memory as long as the GEMM's own stores (3% of a passage's time).
pub(super) fn uninit_output(len: usize) -> Vec<f32> {
    let mut c: Vec<std::mem::MaybeUninit<f32>> = Vec::with_capacity(len);
    // SAFETY: MaybeUninit needs no initialisation; the caller writes all `len` values (the GEMM's
    // tiles and matvec's dot products cover every element of C) before any is read.
    unsafe {
        c.set_len(len);
        let mut c = std::mem::ManuallyDrop::new(c);
        Vec::from_raw_parts(c.as_mut_ptr().cast::<f32>(), len, c.capacity())
    }
}

/// What a task applies to its block of C once the last K slice is stored, while the block is
/// still in cache: the activation, then the residual (a pass over C each, otherwise).
#[derive(Clone, Copy)]
pub(super) struct Epilogue<'a> {
    pub act: Option<UnaryOp>,
    /// C's shape, rows aligned with C's.
    pub residual: Option<&'a [f32]>,
}

impl<'a> Epilogue<'a> {
    pub fn new(act: Activation, residual: Option<&'a [f32]>) -> Self {
        let act = match act {
            Activation::Unary(op) => Some(op),
            Activation::None => None,
        };
        Epilogue { act, residual }
    }

    fn is_empty(&self) -> bool {
        self.act.is_none() && self.residual.is_none()
    }

    /// Applies itself to the whole of C (`c`, which `residual` is aligned with), in one pass:
    /// for the kernels whose tasks do not.
    pub fn apply_all(&self, c: &mut [f32]) {
        if let Some(op) = self.act {
            apply_unary(c, op);
        }
        add_residual(c, self.residual);
    }

    /// Applies itself to rows `rows` x columns `cols` of `out`, a row-major C of `n` columns, in
    /// place: for a task's own block of C once it is written.
    ///
    /// SAFETY: the caller owns that block of `out` and has written all of it.
    #[inline(always)]
    pub unsafe fn apply<S: Simd>(&self, out: SharedOut, n: usize, rows: (usize, usize), cols: (usize, usize)) {
        if self.is_empty() {
            return;
        }
        for r in rows.0..rows.1 {
            let at = r * n + cols.0;
            // SAFETY: the caller's.
            let c_row = unsafe { std::slice::from_raw_parts_mut(out.at(at), cols.1 - cols.0) };
            if let Some(op) = self.act {
                unary_in_place::<S>(c_row, op);
            }
            add_residual(c_row, self.residual.map(|res| &res[at..]));
        }
    }

    /// The block width `apply_narrow` is fast for.
    #[cfg(any(target_arch = "x86_64", all(target_arch = "wasm32", target_feature = "simd128", feature = "relaxed-simd")))]
    pub const NARROW: usize = 16;

    /// `apply` for blocks of NARROW = 16 columns (the AVX2 and VNNI int8 GEMMs' full panels), row
    /// by row as 16-value arrays, whose constant length lets the loops vectorize whole (on a
    /// 16-value slice, the vectorized loop, unrolled past 16, never ran: 8% of a q8 passage).
    /// Other widths: `apply`.
    ///
    /// SAFETY: as `apply`'s.
    #[cfg(any(target_arch = "x86_64", all(target_arch = "wasm32", target_feature = "simd128", feature = "relaxed-simd")))]
    #[inline(always)]
    pub unsafe fn apply_narrow<S: Simd>(&self, out: SharedOut, n: usize, rows: (usize, usize), cols: (usize, usize)) {
        const W: usize = Epilogue::NARROW;
        if cols.1 - cols.0 != W {
            // SAFETY: the caller's.
            return unsafe { self.apply::<S>(out, n, rows, cols) };
        }
        if self.is_empty() {
            return;
        }
        for r in rows.0..rows.1 {
            let at = r * n + cols.0;
            // SAFETY: the caller's.
            let row = unsafe { &mut *out.at(at).cast::<[f32; W]>() };
            if let Some(op) = self.act {
                unary_in_place::<S>(row, op);
            }
            if let Some(res) = self.residual {
                row.iter_mut().zip(&res[at..at + W]).for_each(|(c, r)| *c += r);
            }
        }
    }
}

#[inline(always)]
fn lanes_tile<S: Simd>() -> (usize, usize) {
    tile_for(S::LANES)
}
#[inline(always)]
fn lanes<S: Simd>() -> usize {
    S::LANES
}

#[allow(clippy::too_many_arguments)]
fn gemm_packed(
    a: &[f32],
    sa_m: usize,
    packed: &[f32],
    bias: Option<&[f32]>,
    epilogue: Epilogue<'_>,
    s: Shape,
    nr: usize,
    mr: usize,
    c: &mut [f32],
) {
    let panels = s.n.div_ceil(nr);
    let m_blocks = s.m.div_ceil(MC);
    // Short inputs (one sentence: M = 16) have one block of rows: fewer panels per task then, so
    // that a thread that wakes late still finds work (at least 4 tasks per thread where N allows).
    let per_task = (m_blocks * panels / (4 * parallel::threads())).clamp(1, PANELS_PER_TASK);
    let n_blocks = panels.div_ceil(per_task);
    let out = SharedOut(c.as_mut_ptr());
    let zeros = vec![0f32; s.k];
    let mut bias_padded = vec![0f32; panels * nr];
    if let Some(bias) = bias {
        bias_padded[..s.n].copy_from_slice(bias);
    }
    let task = |t: usize| {
        let (mb, nb) = (t / n_blocks, t % n_blocks);
        let rows = (mb * MC, ((mb + 1) * MC).min(s.m));
        let panel_range = (nb * per_task, ((nb + 1) * per_task).min(panels));
        let block = Block { a, sa_m, zeros: &zeros, packed, bias: &bias_padded, epilogue, s, rows, panels: panel_range, out };
        match mr {
            12 => dispatch!(block_kernel::<12>(&block)),
            4 => dispatch!(block_kernel::<4>(&block)),
            _ => dispatch!(block_kernel::<6>(&block)),
        }
    };
    parallel::for_each(m_blocks * n_blocks, task);
}

struct Block<'a> {
    a: &'a [f32],
    sa_m: usize,
    /// Stands in for missing rows at the bottom edge, so the kernel always has MR rows.
    zeros: &'a [f32],
    packed: &'a [f32],
    bias: &'a [f32],
    epilogue: Epilogue<'a>,
    s: Shape,
    rows: (usize, usize),
    panels: (usize, usize),
    out: SharedOut,
}

/// One task: rows [rows.0, rows.1) x panels [panels.0, panels.1) of C, all of K.
#[inline(always)]
fn block_kernel<S: Simd, const MR: usize>(blk: &Block<'_>) {
    let nr = 2 * S::LANES;
    let s = blk.s;
    // Full MR-row tiles, then the rest in 4-row tiles: a 16-token sentence would otherwise pay
    // for 24 rows with MR = 12.
    let full_end = blk.rows.0 + (blk.rows.1 - blk.rows.0) / MR * MR;
    for pc in (0..s.k).step_by(KC) {
        let kc = KC.min(s.k - pc);
        for p in blk.panels.0..blk.panels.1 {
            let panel = &blk.packed[p * s.k * nr + pc * nr..];
            // The next panel's slice, fetched into L2 while this one is computed: with few rows
            // (one sentence) a panel's compute is about as long as its load from memory, and the
            // two then overlap instead of adding up. Past the task's panels too: the next task
            // (this thread's or another's) reads them.
            let next =
                ((p + 1) * s.k * nr + pc * nr + kc * nr <= blk.packed.len()).then(|| blk.packed[(p + 1) * s.k * nr + pc * nr..].as_ptr());
            let mut ahead = next;
            for r0 in (blk.rows.0..full_end).step_by(MR) {
                row_tile::<S, MR>(blk, r0, MR, p, pc, kc, panel, ahead.take());
            }
            for r0 in (full_end..blk.rows.1).step_by(4) {
                row_tile::<S, 4>(blk, r0, 4.min(blk.rows.1 - r0), p, pc, kc, panel, ahead.take());
            }
        }
    }
    let cols = (blk.panels.0 * nr, (blk.panels.1 * nr).min(s.n));
    // SAFETY: this task owns C's rows `rows` x columns `cols`, all written above.
    unsafe { blk.epilogue.apply::<S>(blk.out, s.n, blk.rows, cols) };
}

/// Rows [r0, r0 + valid) x panel p of C, over K slice [pc, pc + kc): starts from the bias (first
/// slice) or from C, and stores back.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn row_tile<S: Simd, const MR: usize>(
    blk: &Block<'_>,
    r0: usize,
    valid: usize,
    p: usize,
    pc: usize,
    kc: usize,
    panel: &[f32],
    prefetch: Option<*const f32>,
) {
    const NV: usize = 2;
    let s = blk.s;
    let nr = NV * S::LANES;
    let col0 = p * nr;
    let cols = nr.min(s.n - col0);
    let a_rows: [*const f32; MR] =
        std::array::from_fn(|i| if i < valid { blk.a[(r0 + i) * blk.sa_m + pc..].as_ptr() } else { blk.zeros.as_ptr() });
    // SAFETY: a_rows have kc values, the panel has kc * nr, and each task owns its C tile.
    unsafe {
        let mut acc = [[S::zero(); NV]; MR];
        for (i, row) in acc.iter_mut().enumerate().take(valid) {
            let c_row = blk.out.at((r0 + i) * s.n + col0);
            for (v, reg) in row.iter_mut().enumerate() {
                *reg = if pc > 0 {
                    load_partial::<S>(c_row.add(v * S::LANES), cols.saturating_sub(v * S::LANES))
                } else {
                    S::load(blk.bias.as_ptr().add(col0 + v * S::LANES))
                };
            }
        }
        match prefetch {
            Some(next) => tile::<S, MR, NV, true>(&a_rows, panel.as_ptr(), kc, nr, next, &mut acc),
            None => tile::<S, MR, NV, false>(&a_rows, panel.as_ptr(), kc, nr, std::ptr::null(), &mut acc),
        }
        for (i, row) in acc.iter().enumerate().take(valid) {
            let c_row = blk.out.at((r0 + i) * s.n + col0);
            for (v, reg) in row.iter().enumerate() {
                store_partial::<S>(c_row.add(v * S::LANES), *reg, cols.saturating_sub(v * S::LANES));
            }
        }
    }
}

/// acc[i][v] += sum over kk of a[i][kk] * panel[kk][v*LANES..]; with PREFETCH, `next`'s first
/// `kc * nr` values are fetched into L2 as it goes (a cache line per 16 values, spread over the K
/// loop so that the loads stay in flight beside the FMAs).
#[inline(always)]
pub(super) unsafe fn tile<S: Simd, const MR: usize, const NV: usize, const PREFETCH: bool>(
    a: &[*const f32; MR],
    panel: *const f32,
    kc: usize,
    nr: usize,
    next: *const f32,
    acc: &mut [[S::V; NV]; MR],
) {
    unsafe {
        for kk in 0..kc {
            if PREFETCH {
                for line in (0..nr).step_by(16) {
                    super::prefetch_l2(next.wrapping_add(kk * nr + line));
                }
            }
            let b: [S::V; NV] = std::array::from_fn(|v| S::load(panel.add(kk * nr + v * S::LANES)));
            for i in 0..MR {
                let ai = S::splat(*a[i].add(kk));
                for v in 0..NV {
                    acc[i][v] = S::fma(ai, b[v], acc[i][v]);
                }
            }
        }
    }
}

#[inline(always)]
pub(super) unsafe fn load_partial<S: Simd>(p: *const f32, valid: usize) -> S::V {
    unsafe {
        if valid >= S::LANES {
            return S::load(p);
        }
        let mut tmp = [0f32; 16];
        std::ptr::copy_nonoverlapping(p, tmp.as_mut_ptr(), valid);
        S::load(tmp.as_ptr())
    }
}

#[inline(always)]
pub(super) unsafe fn store_partial<S: Simd>(p: *mut f32, v: S::V, valid: usize) {
    unsafe {
        if valid >= S::LANES {
            return S::store(p, v);
        }
        let mut tmp = [0f32; 16];
        S::store(tmp.as_mut_ptr(), v);
        std::ptr::copy_nonoverlapping(tmp.as_ptr(), p, valid);
    }
}

/// M <= 2: each output is a dot product of an A row with a B column (contiguous when sk == 1).
#[allow(clippy::too_many_arguments)]
fn matvec(a: &[f32], sa_m: usize, b: &Input<'_>, b_off: usize, sk: usize, sn: usize, bias: Option<&[f32]>, s: Shape, c: &mut [f32]) {
    let cols_per_task = 64;
    let out = SharedOut(c.as_mut_ptr());
    let tasks = s.n.div_ceil(cols_per_task);
    parallel::for_each(tasks, |t| {
        let cols = (t * cols_per_task, ((t + 1) * cols_per_task).min(s.n));
        for i in 0..s.m {
            let row = &a[i * sa_m..][..s.k];
            for j in cols.0..cols.1 {
                let col = b_off + j * sn;
                let v = match (b.dtype, sk) {
                    (DType::F32, 1) => dispatch!(dot_f32(row, &b.storage.f32s()[col..col + s.k])),
                    (DType::F16, 1) => dispatch!(dot_f16(row, &b.storage.f16s()[col..col + s.k])),
                    _ => (0..s.k).map(|kk| row[kk] * load_b(b, col + kk * sk)).sum(),
                };
                // SAFETY: each task writes its own columns.
                unsafe { *out.at(i * s.n + j) = v + bias.map_or(0.0, |bias| bias[j]) };
            }
        }
    });
}

#[inline(always)]
pub(crate) fn dot_f32<S: Simd>(x: &[f32], y: &[f32]) -> f32 {
    unsafe {
        let (mut a0, mut a1) = (S::zero(), S::zero());
        let mut i = 0;
        while i + 2 * S::LANES <= x.len() {
            a0 = S::fma(S::load(x.as_ptr().add(i)), S::load(y.as_ptr().add(i)), a0);
            a1 = S::fma(S::load(x.as_ptr().add(i + S::LANES)), S::load(y.as_ptr().add(i + S::LANES)), a1);
            i += 2 * S::LANES;
        }
        let mut sum = S::reduce_sum(S::add(a0, a1));
        for j in i..x.len() {
            sum += x[j] * y[j];
        }
        sum
    }
}

#[inline(always)]
pub(crate) fn dot_f16<S: Simd>(x: &[f32], y: &[f16]) -> f32 {
    unsafe {
        let mut acc = S::zero();
        let mut i = 0;
        while i + S::LANES <= x.len() {
            acc = S::fma(S::load(x.as_ptr().add(i)), S::load_f16(y.as_ptr().add(i)), acc);
            i += S::LANES;
        }
        let mut sum = S::reduce_sum(acc);
        for j in i..x.len() {
            sum += x[j] * y[j].to_f32();
        }
        sum
    }
}
