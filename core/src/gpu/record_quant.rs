//! Dispatches of the quantized kernels: matvec_quant.wgsl for a few activation rows (decoding;
//! also over f32 / f16 weights whose rows are whole 32-value units), matmul_quant.wgsl for many
//! (prefill), gather_quant.wgsl for embedding lookups. Views are in elements; the kernels address
//! W by bytes, so offsets and strides are converted here (ops.rs only records quantized operands
//! whose rows are whole blocks).

use super::{OP_NONE, grid_1d, row_parts, strides3, unary_code};
use crate::gpu::GpuStorage;
use crate::gpu::params::kernel_params;
use crate::gpu::run::Run;
use crate::gpu::shaders::{Elem, Kernel, MatmulIo, Quant};
use crate::ops::Activation;
use crate::tensor::Tensor;
use crate::{Error, Result};

kernel_params! {
    /// matvec_quant.wgsl and matmul_quant.wgsl (the same fields; only the decode kernel uses
    /// `tpr`, its threads per weight row). W's offset and strides are in bytes; `ldc` is C's row
    /// stride and `col0` the first column this dispatch writes (weights split into parts of
    /// rows); `g_delta`: where the gate is, relative to A; `eps`: a folded RMSNorm's (NORM, the
    /// decode kernel only).
    pub struct QuantMatmulParams {
        m: usize,
        n: usize,
        k: usize,
        act: u32,
        a_off: usize,
        a_sb: usize,
        a_sm: usize,
        tpr: usize,
        b_off: usize,
        b_sb: usize,
        b_sn: usize,
        ldc: usize,
        col0: usize,
        g_delta: usize,
        eps: f32,
    }

    /// gather_quant.wgsl: the table's row 0 and rows in bytes; the id of this part's first row,
    /// and whether it is the last part.
    pub struct QuantGatherParams {
        rows: usize,
        h: usize,
        vocab: usize,
        table_off: usize,
        row_bytes: usize,
        first: usize,
        is_last: bool,
    }
}

/// Up to this many activation rows use the decode kernel.
const MATVEC_MAX_M: usize = 8;
/// `ROWS` of matvec_quant.wgsl: weight rows per group of invocations.
const MATVEC_ROWS: usize = 4;

fn quant_of(t: &Tensor) -> Result<Quant> {
    Quant::of(t.dtype()).ok_or_else(|| Error::Unsupported(format!("{} in a quantized kernel", t.dtype())))
}

/// Bytes of `elems` values of `t`'s block type (a whole number of blocks, or an error).
fn bytes(t: &Tensor, elems: usize) -> Result<usize> {
    let (len, size) = (t.dtype().block_len(), t.dtype().block_bytes());
    if elems % len != 0 {
        return Err(Error::shape("matmul", format!("{elems} {} values are not whole blocks (engine bug)", t.dtype())));
    }
    let b = elems / len * size;
    u32::try_from(b).map_err(|_| Error::OverLimit {
        what: "a quantized weight offset".into(),
        needed: b as u64,
        limit: u32::MAX as u64,
    })?;
    Ok(b)
}

/// Invocations per team of the decode kernel (a team computes 4 rows): about one per 32-value
/// unit of a row (K / 32), so each takes about 4 groups of 8 weights per row; at least 32 (a
/// subgroup on most GPUs, for the subgroup reduction) and at most the workgroup.
fn threads_per_row(units: usize) -> usize {
    static FORCED: std::sync::OnceLock<Option<usize>> = std::sync::OnceLock::new();
    // WEBFORMERS_QMV_TPR=32|64|128|256 overrides the choice (for tuning on new hardware).
    let forced = *FORCED.get_or_init(|| {
        std::env::var("WEBFORMERS_QMV_TPR")
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
            .filter(|v| v.is_power_of_two() && (32..=256).contains(v))
    });
    forced.unwrap_or_else(|| units.next_power_of_two().clamp(32, 256))
}

/// Whether a matmul over f32 / f16 weights runs as the decode kernel: few rows of A, W read as
/// [N, K] rows of whole 32-value units with unit K strides, f16 rows starting at word boundaries,
/// and one z slice per row within the grid's limit. Otherwise the tiled kernel computes it.
pub(super) fn dense_matvec_fits(a: &Tensor, b: &Tensor, (batch, m, k): (usize, usize, usize), max_groups: u32) -> bool {
    let (_, _, a_sk) = strides3(a.layout());
    let (b_sb, b_sk, b_sn) = strides3(b.layout());
    let words = match b.dtype() {
        crate::DType::F32 => true,
        crate::DType::F16 => [b.layout().offset(), b_sb, b_sn].iter().all(|v| v % 2 == 0),
        _ => false,
    };
    words && m <= MATVEC_MAX_M && k % 32 == 0 && k > 0 && a_sk == 1 && b_sk == 1 && batch * m <= max_groups as usize
}

#[allow(clippy::too_many_arguments)]
pub(super) fn matmul(
    run: &mut Run,
    (a, b, io, g_delta, act, eps): (&Tensor, &Tensor, MatmulIo, usize, Activation, f32),
    (batch, m, n, k): (usize, usize, usize, usize),
    inputs: Vec<GpuStorage>,
    output: &GpuStorage,
) -> Result<()> {
    // Quantized weights, or f32 / f16 ones that dense_matvec_fits.
    let matvec = m <= MATVEC_MAX_M;
    let kernel = match (b.dtype(), matvec) {
        (crate::DType::F32, true) => Kernel::DenseMatvec { b: Elem::F32, io },
        (crate::DType::F16, true) => Kernel::DenseMatvec { b: Elem::F16, io },
        (_, true) => Kernel::QuantMatvec { q: quant_of(b)?, io },
        (_, false) => Kernel::QuantMatmul { q: quant_of(b)?, io },
    };
    let (a_sb, a_sm, a_sk) = strides3(a.layout());
    let (b_sb, b_sk, b_sn) = strides3(b.layout());
    if (a_sk != 1 || b_sk != 1) && k > 1 {
        return Err(Error::shape("matmul", format!("{} weights need unit K strides (engine bug)", b.dtype())));
    }
    let act = match act {
        Activation::None => OP_NONE,
        Activation::Unary(op) => unary_code(op),
    };
    let b_sb = bytes(b, b_sb)?;
    let b_sn = if n > 1 { bytes(b, b_sn)? } else { 0 };
    let max = run.gpu.limits.max_compute_workgroups_per_dimension;
    // A weight split by rows (too large for one binding) computes its columns part by part.
    for (part, col0, cols) in row_parts(&inputs[1], n) {
        let b_off = if part.parts.is_none() && cols == n { bytes(b, b.layout().offset())? } else { 0 };
        // Bias and residual bind after the weight, as the op lists them.
        let mut part_inputs = vec![inputs[0].clone(), part];
        part_inputs.extend(inputs[2..].iter().cloned());
        // The two kernels take the same parameters; only the decode one uses threads per row.
        if io.norm && !matvec {
            return Err(Error::Gpu(format!("a norm folded into a matmul of {m} rows (engine bug)")));
        }
        let tpr = if matvec { threads_per_row(k / 32) } else { 0 };
        let params = QuantMatmulParams {
            m,
            n: cols,
            k,
            act,
            a_off: a.layout().offset(),
            a_sb,
            a_sm,
            tpr,
            b_off,
            b_sb,
            b_sn,
            ldc: n,
            col0,
            g_delta,
            eps,
        };
        if matvec {
            let rows_per_group = 256 / tpr * MATVEC_ROWS;
            // One z slice per activation row: W is read again per row, mostly from cache.
            let mut groups = grid_1d(cols.div_ceil(rows_per_group), max);
            groups[2] = (batch * m) as u32;
            run.push(kernel, &params, part_inputs, output, groups)?;
        } else {
            let groups = [cols.div_ceil(64) as u32, m.div_ceil(64) as u32, batch as u32];
            run.push(kernel, &params, part_inputs, output, groups)?;
        }
    }
    Ok(())
}

pub(super) fn gather(run: &mut Run, table: &Tensor, ids: &Tensor, inputs: Vec<GpuStorage>, output: &GpuStorage) -> Result<()> {
    let q = quant_of(table)?;
    let (vocab, h) = (table.dims()[0], table.dims()[1]);
    let rows = ids.numel();
    let row_bytes = bytes(table, h)?;
    let groups = grid_1d((rows * (h / 32)).div_ceil(256), run.gpu.limits.max_compute_workgroups_per_dimension);
    // A table split by rows (too large for one binding) is looked up part by part.
    let parts = row_parts(&inputs[0], vocab);
    let last = parts.len() - 1;
    for (i, (part, first, part_rows)) in parts.into_iter().enumerate() {
        let offset = if last == 0 { bytes(table, table.layout().offset())? } else { 0 };
        let params = QuantGatherParams { rows, h, vocab: part_rows, table_off: offset, row_bytes, first, is_last: i == last };
        run.push(Kernel::QuantGather { q }, &params, vec![part, inputs[1].clone()], output, groups)?;
    }
    Ok(())
}
