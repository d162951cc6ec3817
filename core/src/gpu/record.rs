//! Turning each op into a dispatch: which kernel variant, its uniform parameters, its bindings
//! and its workgroup grid. Each kernel's parameters are a `kernel_params!` struct, whose WGSL
//! declaration the shader gets in its prelude (see `params.rs`).

use super::GpuStorage;
use super::params::kernel_params;
use super::run::Run;
use super::shaders::{Elem, Kernel, MatmulIo, NormVariant, Quant};
use crate::dtype::DType;
use crate::graph::Step;
use crate::layout::Layout;
use crate::ops::{Activation, BinaryOp, GateAct, NormKind, Op, UnaryOp};
use crate::tensor::Tensor;
use crate::{Error, Result};

#[path = "record_quant.rs"]
pub(crate) mod quant;
#[path = "record_vision.rs"]
pub(crate) mod vision;

/// attention.wgsl's `window` when every key is in range: wider than any sequence a binding
/// holds, and small enough that the shader's i32 position arithmetic cannot overflow.
const NO_WINDOW: usize = 1 << 30;

kernel_params! {
    /// quantize.wgsl: `blocks` blocks of 32 dense values from `src_off`.
    pub struct QuantizeParams {
        src_off: usize,
        blocks: usize,
    }
}

kernel_params! {
    /// copy.wgsl: `numel` values of a view from `src_off`, written densely from `dst_off` (a KV
    /// cache append writes at a row offset).
    pub struct CopyParams {
        numel: usize,
        src_off: usize,
        dst_off: usize,
        dims0: [u32; 4],
        dims1: [u32; 4],
        strides0: [u32; 4],
        strides1: [u32; 4],
    }

    /// gather.wgsl: `vocab` rows of this part of the table, the id of its first row, and
    /// whether it is the last part.
    pub struct GatherParams {
        rows: usize,
        h: usize,
        vocab: usize,
        table_off: usize,
        first: usize,
        is_last: bool,
    }

    /// elementwise.wgsl: `op` is a unary or binary code; a binary op reads each side through its
    /// strides over the output's dims.
    pub struct ElementwiseParams {
        numel: usize,
        op: u32,
        a_off: usize,
        b_off: usize,
        dims0: [u32; 4],
        dims1: [u32; 4],
        a_strides0: [u32; 4],
        a_strides1: [u32; 4],
        b_strides0: [u32; 4],
        b_strides1: [u32; 4],
    }

    /// matmul.wgsl: A and B by offset and (batch, row, k) / (batch, k, n) strides. `ldc` is C's
    /// row stride and `col0` the first column this dispatch writes (a weight split into parts of
    /// rows computes its columns part by part); `g_delta`: where the gate is, relative to A;
    /// `eps`: a folded RMSNorm's (NORM).
    pub struct MatmulParams {
        m: usize,
        n: usize,
        k: usize,
        act: u32,
        a_off: usize,
        a_sb: usize,
        a_sm: usize,
        a_sk: usize,
        b_off: usize,
        b_sb: usize,
        b_sk: usize,
        b_sn: usize,
        ldc: usize,
        col0: usize,
        g_delta: usize,
        eps: f32,
    }

    /// norm.wgsl.
    pub struct NormParams {
        rows: usize,
        h: usize,
        eps: f32,
    }

    /// softmax.wgsl: the mask (MASK) is a view of x's dims.
    pub struct SoftmaxParams {
        rows: usize,
        n: usize,
        scale: f32,
        mask_off: usize,
        dims0: [u32; 4],
        dims1: [u32; 4],
        mask_strides0: [u32; 4],
        mask_strides1: [u32; 4],
    }

    /// attention.wgsl: q, k and v by offset, token stride and head stride.
    pub struct AttentionParams {
        tokens: usize,
        hq: usize,
        hkv: usize,
        d: usize,
        q_off: usize,
        q_st: usize,
        q_sh: usize,
        k_off: usize,
        k_st: usize,
        k_sh: usize,
        v_off: usize,
        v_st: usize,
        v_sh: usize,
        seqs: usize,
        scale: f32,
        causal: bool,
        window: usize,
        /// BIAS: the distance table's center c (its rows are 2c + 1 wide) and offset.
        bias_c: usize,
        bias_off: usize,
        /// ROPE: rotated pairs per query head (len(inv_freq)).
        half: usize,
    }

    /// pool.wgsl (segment pooling and unpacking).
    pub struct PoolParams {
        h: usize,
        seqs: usize,
        max_len: usize,
        numel: usize,
    }

    /// rope.wgsl.
    pub struct RopeParams {
        tokens: usize,
        heads: usize,
        d: usize,
        half: usize,
        x_off: usize,
        x_st: usize,
        x_sh: usize,
        rotated: usize,
        /// Where the output starts (a KV cache row, `write_rows_rope`).
        dst_off: usize,
    }

    /// argmax.wgsl.
    pub struct ArgmaxParams {
        rows: usize,
        n: usize,
    }

    /// take_along.wgsl.
    pub struct TakeAlongParams {
        numel: usize,
        r: usize,
        n: usize,
        m: usize,
    }
}

/// A view of rank <= 8 as the shaders' `strided_offset` takes it: left-padded with 1s.
#[derive(Default)]
struct Strided8 {
    dims: [[u32; 4]; 2],
    strides: [[u32; 4]; 2],
}

fn strided8(layout: &Layout) -> Result<Strided8> {
    let r = layout.rank();
    if r > 8 {
        return Err(Error::Unsupported(format!("views of rank {r} on the GPU (at most 8)")));
    }
    let mut dims = [1u32; 8];
    let mut strides = [0u32; 8];
    for i in 0..r {
        dims[8 - r + i] = checked_u32(layout.dims()[i])?;
        strides[8 - r + i] = checked_u32(layout.strides()[i])?;
    }
    let split = |a: [u32; 8]| [[a[0], a[1], a[2], a[3]], [a[4], a[5], a[6], a[7]]];
    Ok(Strided8 { dims: split(dims), strides: split(strides) })
}

fn checked_u32(v: usize) -> Result<u32> {
    u32::try_from(v).map_err(|_| Error::OverLimit { what: "an index".into(), needed: v as u64, limit: u32::MAX as u64 })
}

/// (batch, row, k) strides of a [batch, R, C] or [R, C] view.
fn strides3(layout: &Layout) -> (usize, usize, usize) {
    let s = layout.strides();
    if s.len() == 2 { (0, s[0], s[1]) } else { (s[0], s[1], s[2]) }
}

/// A grid of `n` workgroups, folded into two dims past the per-dimension limit.
fn grid_1d(n: usize, max: u32) -> [u32; 3] {
    let max = max as usize;
    if n <= max { [n as u32, 1, 1] } else { [max as u32, n.div_ceil(max) as u32, 1] }
}

/// The code of `op` in the kernels (`OP_*`, declared in every shader's prelude).
fn unary_code(op: UnaryOp) -> u32 {
    op as u32
}
/// The epilogue code of no activation.
const OP_NONE: u32 = UnaryOp::ALL.len() as u32;

fn elem(dtype: DType) -> Result<Elem> {
    match dtype {
        DType::F32 => Ok(Elem::F32),
        DType::F16 => Ok(Elem::F16),
        DType::BF16 => Ok(Elem::BF16),
        DType::U32 | DType::I32 => Ok(Elem::U32),
        q => Err(Error::Unsupported(format!("{q} tensors in this GPU kernel"))),
    }
}

/// The pieces a weight is read in: the whole storage, or the row parts of a split one, as
/// (storage, first row, rows).
pub(super) fn row_parts(storage: &GpuStorage, rows: usize) -> Vec<(GpuStorage, usize, usize)> {
    match &storage.parts {
        Some(parts) => parts.iter().map(|p| (p.storage.clone(), p.first_row, p.rows)).collect(),
        None => vec![(storage.clone(), 0, rows)],
    }
}

/// Split matrices are read only as matmul weights (operand 1, the transpose of a whole [N, K]
/// matrix) and embedding tables (operand 0, whole): the kernels that loop over parts.
fn check_split_inputs(step: &Step<'_>) -> Result<()> {
    for (i, (storage, t)) in step.inputs.iter().zip(step.op.inputs()).enumerate() {
        if storage.gpu().parts.is_none() {
            continue;
        }
        let whole = t.layout().offset() == 0;
        let ok = match step.op {
            Op::Matmul { batch, .. } => i == 1 && whole && *batch == 1 && t.rank() == 2 && t.layout().strides()[0] == 1,
            Op::Gather { .. } => i == 0 && whole,
            _ => false,
        };
        if !ok {
            return Err(Error::Unsupported(format!(
                "{}: a tensor larger than one GPU binding is split by rows, and can only be read whole as a matmul weight or an embedding table",
                step.op.name()
            )));
        }
    }
    Ok(())
}

/// The f16 variants of a kernel declare `enable f16;`, which only an adapter with shader-f16
/// compiles (the ops pick them only there; this names the cause if one reaches another adapter).
fn needs_f16(gpu: &super::GpuContext, wanted: bool, what: &str) -> Result<()> {
    if wanted && !gpu.features().f16 {
        return Err(Error::Unsupported(format!("{what} on a GPU without shader-f16")));
    }
    Ok(())
}

fn out_bytes(dtype: DType, numel: usize) -> Result<u64> {
    Ok(dtype.bytes_for(numel)?.div_ceil(4) as u64 * 4)
}

pub(super) fn record(run: &mut Run, step: Step<'_>) -> Result<GpuStorage> {
    check_split_inputs(&step)?;
    let gpu = run.gpu.clone();
    let node = step.node;
    // An in-place write lands in its destination; every other op gets a fresh pooled buffer.
    let output = match step.op {
        Op::WriteRows { .. } => step.inputs[0].gpu().clone(),
        _ => gpu.alloc(out_bytes(node.dtype, node.numel)?, step.op.name())?,
    };
    let input = |i: usize| step.inputs[i].gpu().clone();
    let max_groups = gpu.limits.max_compute_workgroups_per_dimension;
    let wg = |k: Kernel| k.workgroup_size() as usize;
    let inputs_of = |n: usize| (0..n).map(input).collect::<Vec<_>>();

    match step.op {
        // Quantized weights, and f32 / f16 ones under few rows: the decode kernel streams W once
        // where the tiled one would compute a 64-row tile for each row.
        Op::Matmul { a, b, bias, residual, gate, norm, act, batch, m, n, k }
            if b.dtype().is_quantized() || quant::dense_matvec_fits(a, b, (*batch, *m, *k), max_groups) =>
        {
            let io = matmul_io(bias, residual, gate, norm);
            let eps = norm.as_ref().map_or(0.0, |(_, eps)| *eps);
            quant::matmul(run, (a, b, io, g_delta(a, *gate), *act, eps), (*batch, *m, *n, *k), inputs_of(step.inputs.len()), &output)?
        }
        Op::Gather { table, ids } if table.dtype().is_quantized() => quant::gather(run, table, ids, inputs_of(2), &output)?,
        Op::Copy { src } if node.dtype.is_quantized() => {
            let q = Quant::of(node.dtype).filter(|q| Quant::QUANTIZABLE.contains(q));
            let Some(q) = q.filter(|_| src.is_contiguous()) else {
                return Err(Error::Unsupported(format!("quantizing a {} view to {} on the GPU", src.dtype(), node.dtype)));
            };
            let kernel = Kernel::Quantize { src: elem(src.dtype())?, q };
            let blocks = node.numel / 32;
            let units = if q == Quant::Q4_1 { blocks } else { blocks.div_ceil(2) };
            let params = QuantizeParams { src_off: src.layout().offset(), blocks };
            run.push(kernel, &params, inputs_of(1), &output, grid_1d(units.div_ceil(wg(kernel)), max_groups))?;
        }
        Op::Copy { src } => {
            let kernel = Kernel::Copy { src: elem(src.dtype())?, dst: elem(node.dtype)? };
            let v = strided8(src.layout())?;
            let params = copy_params(node.numel, src.layout().offset(), 0, &v);
            let per_invocation = if matches!(node.dtype, DType::F16) { 2 } else { 1 };
            let groups = grid_1d(node.numel.div_ceil(per_invocation).div_ceil(wg(kernel)), max_groups);
            run.push(kernel, &params, inputs_of(1), &output, groups)?;
        }
        Op::Gather { table, ids } => {
            let kernel = Kernel::Gather { table: elem(table.dtype())? };
            let (vocab, h) = (table.dims()[0], table.dims()[1]);
            let rows = ids.numel();
            let parts = row_parts(&input(0), vocab);
            let last = parts.len() - 1;
            for (i, (part, first, part_rows)) in parts.into_iter().enumerate() {
                let offset = if i == 0 && last == 0 { table.layout().offset() } else { 0 };
                let params = GatherParams { rows, h, vocab: part_rows, table_off: offset, first, is_last: i == last };
                run.push(kernel, &params, vec![part, input(1)], &output, grid_1d((rows * h).div_ceil(wg(kernel)), max_groups))?;
            }
        }
        Op::Unary { src, op } => {
            let kernel = Kernel::Unary;
            // A unary op reads its dense input directly: the view fields are unused.
            let params = ElementwiseParams { numel: node.numel, op: unary_code(*op), a_off: src.layout().offset(), ..Default::default() };
            run.push(kernel, &params, inputs_of(1), &output, grid_1d(node.numel.div_ceil(wg(kernel)), max_groups))?;
        }
        Op::Binary { lhs, rhs, op } => {
            let kernel = Kernel::Binary;
            let code = match op {
                BinaryOp::Add => 0,
                BinaryOp::Sub => 1,
                BinaryOp::Mul => 2,
                BinaryOp::Div => 3,
                BinaryOp::SiluMul => 4,
            };
            let (a, b) = (strided8(lhs.layout())?, strided8(rhs.layout())?);
            let params = ElementwiseParams {
                numel: node.numel,
                op: code,
                a_off: lhs.layout().offset(),
                b_off: rhs.layout().offset(),
                dims0: a.dims[0],
                dims1: a.dims[1],
                a_strides0: a.strides[0],
                a_strides1: a.strides[1],
                b_strides0: b.strides[0],
                b_strides1: b.strides[1],
            };
            run.push(kernel, &params, inputs_of(2), &output, grid_1d(node.numel.div_ceil(wg(kernel)), max_groups))?;
        }
        Op::Matmul { a, b, bias, residual, gate, norm, act, batch, m, n, k } => {
            let kernel = Kernel::Matmul { b: elem(b.dtype())?, io: matmul_io(bias, residual, gate, norm) };
            let (a_sb, a_sm, a_sk) = strides3(a.layout());
            let (b_sb, b_sk, b_sn) = strides3(b.layout());
            let act = match act {
                Activation::None => OP_NONE,
                Activation::Unary(op) => unary_code(*op),
            };
            // A weight split by rows (too large for one binding) computes its columns part by part.
            for (part, col0, cols) in row_parts(&input(1), *n) {
                let b_off = if part.parts.is_none() && cols == *n { b.layout().offset() } else { 0 };
                let params = MatmulParams {
                    m: *m,
                    n: cols,
                    k: *k,
                    act,
                    a_off: a.layout().offset(),
                    a_sb,
                    a_sm,
                    a_sk,
                    b_off,
                    b_sb,
                    b_sk,
                    b_sn,
                    ldc: *n,
                    col0,
                    g_delta: g_delta(a, *gate),
                    eps: norm.as_ref().map_or(0.0, |(_, eps)| *eps),
                };
                // Bias, residual and the norm's weight bind after the weight, as the op lists them.
                let mut inputs = vec![input(0), part];
                inputs.extend((2..step.inputs.len()).map(input));
                let groups = [cols.div_ceil(64) as u32, m.div_ceil(64) as u32, *batch as u32];
                run.push(kernel, &params, inputs, &output, groups)?;
            }
        }
        Op::Norm { x, residual, bias, eps, kind, .. } => {
            let kind = match kind {
                NormKind::LayerNorm => NormVariant::LayerNorm,
                NormKind::RmsNorm => NormVariant::RmsNorm,
            };
            let kernel = Kernel::Norm { kind, residual: residual.is_some(), bias: bias.is_some() };
            record_rows(run, kernel, x, *eps, &output, inputs_of(step.inputs.len()))?;
        }
        Op::L2Normalize { x, eps } => {
            let kernel = Kernel::Norm { kind: NormVariant::L2, residual: false, bias: false };
            record_rows(run, kernel, x, *eps, &output, inputs_of(1))?;
        }
        Op::Softmax { x, mask, scale } => {
            let kernel = Kernel::Softmax { mask: mask.is_some() };
            let n = x.dims()[x.rank() - 1];
            let rows = x.numel() / n.max(1);
            let (mask_off, view) = match mask {
                Some(m) => (m.layout().offset(), strided8(m.layout())?),
                None => (0, strided8(x.layout())?),
            };
            let params = SoftmaxParams {
                rows,
                n,
                scale: *scale,
                mask_off,
                dims0: view.dims[0],
                dims1: view.dims[1],
                mask_strides0: view.strides[0],
                mask_strides1: view.strides[1],
            };
            run.push(kernel, &params, inputs_of(1 + mask.is_some() as usize), &output, grid_1d(rows, max_groups))?;
        }
        Op::Attention { q, k, v, q_offsets, scale, causal, window, bias, rope, append, .. } => {
            // The stored keys and values: the cache with `append`, else k and v (same dtype).
            let kv_f16 = append.as_ref().unwrap_or(k).dtype() == DType::F16;
            needs_f16(&gpu, kv_f16, "an f16 KV cache")?;
            let kernel =
                Kernel::Attention { bias: bias.is_some(), rope: rope.as_ref().map(|r| r.interleaved), append: append.is_some(), kv_f16 };
            let [t, hq, d] = [q.dims()[0], q.dims()[1], q.dims()[2]];
            let hkv = k.dims()[1];
            let st = |x: &Tensor| (x.layout().offset(), x.layout().strides()[0], x.layout().strides()[1]);
            let ((qo, qt, qh), (ko, kt, kh), (vo, vt, vh)) = (st(q), st(k), st(v));
            let params = AttentionParams {
                tokens: t,
                hq,
                hkv,
                d,
                q_off: qo,
                q_st: qt,
                q_sh: qh,
                k_off: ko,
                k_st: kt,
                k_sh: kh,
                v_off: vo,
                v_st: vt,
                v_sh: vh,
                seqs: q_offsets.numel().saturating_sub(1),
                scale: *scale,
                causal: *causal,
                window: window.map_or(NO_WINDOW, |w| w.min(NO_WINDOW)),
                bias_c: bias.as_ref().map_or(0, |b| b.dims()[1] / 2),
                bias_off: bias.as_ref().map_or(0, |b| b.layout().offset()),
                half: rope.as_ref().map_or(0, |r| r.inv_freq.numel()),
            };
            run.push(kernel, &params, inputs_of(step.inputs.len()), &output, [t as u32, hq as u32, 1])?;
        }
        Op::Rope { x, interleaved, inv_freq, rotated, .. } => {
            let kernel = Kernel::Rope { interleaved: *interleaved, dst_f16: false };
            let [t, heads, d] = [x.dims()[0], x.dims()[1], x.dims()[2]];
            let half = inv_freq.numel();
            let (st, sh) = (x.layout().strides()[0], x.layout().strides()[1]);
            let params =
                RopeParams { tokens: t, heads, d, half, x_off: x.layout().offset(), x_st: st, x_sh: sh, rotated: *rotated, dst_off: 0 };
            let invocations = t * heads * (d - half);
            run.push(kernel, &params, inputs_of(3), &output, grid_1d(invocations.div_ceil(wg(kernel)), max_groups))?;
        }
        Op::WriteRows { dst, src, row, rope: Some(rope) } => {
            // Rotated (the first `rotated` heads) straight into the cache rows: rope.wgsl with
            // the cache as its output.
            let dst_f16 = dst.dtype() == DType::F16;
            needs_f16(&gpu, dst_f16, "an f16 KV cache")?;
            let kernel = Kernel::Rope { interleaved: rope.interleaved, dst_f16 };
            let [t, heads, d] = [src.dims()[0], src.dims()[1], src.dims()[2]];
            let half = rope.inv_freq.numel();
            let (st, sh) = (src.layout().strides()[0], src.layout().strides()[1]);
            let dst_off = row * dst.dims()[1..].iter().product::<usize>();
            let params =
                RopeParams { tokens: t, heads, d, half, x_off: src.layout().offset(), x_st: st, x_sh: sh, rotated: rope.rotated, dst_off };
            let invocations = t * heads * (d - half);
            run.push(kernel, &params, vec![input(1), input(2), input(3)], &output, grid_1d(invocations.div_ceil(wg(kernel)), max_groups))?;
        }
        Op::WriteRows { dst, src, row, rope: None } => {
            let kernel = Kernel::Copy { src: elem(src.dtype())?, dst: elem(dst.dtype())? };
            let row_len: usize = dst.dims()[1..].iter().product();
            let dst_off = row * row_len;
            if dst.dtype() == DType::F16 && dst_off % 2 == 1 {
                return Err(Error::Unsupported("f16 cache rows of odd length on the GPU".into()));
            }
            let v = strided8(src.layout())?;
            let n = src.numel();
            let params = copy_params(n, src.layout().offset(), dst_off, &v);
            let per_invocation = if dst.dtype() == DType::F16 { 2 } else { 1 };
            let groups = grid_1d(n.div_ceil(per_invocation).div_ceil(wg(kernel)), max_groups);
            // Only the source binds as input; the destination is this op's output (the cache).
            run.push(kernel, &params, vec![input(1)], &output, groups)?;
        }
        Op::Argmax { x } => {
            let kernel = Kernel::Argmax;
            let (rows, n) = (x.dims()[0], x.dims()[1]);
            let params = ArgmaxParams { rows, n };
            run.push(kernel, &params, inputs_of(1), &output, grid_1d(rows, max_groups))?;
        }
        Op::SegmentPool { x, mode, .. } => {
            let kernel = Kernel::Pool(*mode);
            let h = x.dims()[1];
            let seqs = node.numel / h.max(1);
            let params = PoolParams { h, seqs, max_len: 0, numel: node.numel };
            run.push(kernel, &params, inputs_of(2), &output, grid_1d(node.numel.div_ceil(wg(kernel)), max_groups))?;
        }
        Op::TakeAlongLast { x, index } => {
            let kernel = Kernel::TakeAlongLast;
            let (r, n, m) = (index.dims()[0], x.dims()[x.rank() - 1], index.dims()[1]);
            let params = TakeAlongParams { numel: node.numel, r, n, m };
            run.push(kernel, &params, inputs_of(2), &output, grid_1d(node.numel.div_ceil(wg(kernel)), max_groups))?;
        }
        Op::Unpack { x, seq_offsets, max_len } => {
            let kernel = Kernel::Unpack;
            let h = x.dims()[1];
            let params = PoolParams { h, seqs: seq_offsets.numel().saturating_sub(1), max_len: *max_len, numel: node.numel };
            run.push(kernel, &params, inputs_of(2), &output, grid_1d(node.numel.div_ceil(wg(kernel)), max_groups))?;
        }
        Op::Im2col { x, window } => vision::im2col(run, x, window, input(0), &output)?,
        Op::GroupedConv2d { x, weight, window, groups, .. } => {
            vision::grouped_conv(run, (x, weight, window, *groups), inputs_of(step.inputs.len()), &output)?
        }
        Op::Concat { parts, dim } => vision::concat(run, parts, *dim, inputs_of(parts.len()), &output)?,
        Op::Bicubic { x, size, align_corners, antialias } => {
            vision::bicubic(run, x, *size, (*align_corners, *antialias), input(0), &output)?
        }
        Op::MaxPool2d { x, window } => vision::max_pool(run, x, window, input(0), &output)?,
    }
    Ok(output)
}

fn matmul_io(bias: &Option<Tensor>, residual: &Option<Tensor>, gate: &Option<(usize, GateAct)>, norm: &Option<(Tensor, f32)>) -> MatmulIo {
    MatmulIo { bias: bias.is_some(), residual: residual.is_some(), gate: gate.map(|(_, act)| act), norm: norm.is_some() }
}

/// The gate's offset from A's, in elements, as the u32 the kernels add with wrapping.
fn g_delta(a: &Tensor, gate: Option<(usize, GateAct)>) -> usize {
    gate.map_or(0, |(g, _)| g.wrapping_sub(a.layout().offset()) as u32 as usize)
}

/// Row-wise normalizations: one workgroup per row of the last dim. `inputs` are bound in the
/// op's order (x, residual, weight, bias), which is the shader's.
fn record_rows(run: &mut Run, kernel: Kernel, x: &Tensor, eps: f32, output: &GpuStorage, inputs: Vec<GpuStorage>) -> Result<()> {
    let h = x.dims()[x.rank() - 1];
    let rows = x.numel() / h.max(1);
    let params = NormParams { rows, h, eps };
    let groups = grid_1d(rows, run.gpu.limits.max_compute_workgroups_per_dimension);
    run.push(kernel, &params, inputs, output, groups)
}

fn copy_params(numel: usize, src_off: usize, dst_off: usize, v: &Strided8) -> CopyParams {
    CopyParams { numel, src_off, dst_off, dims0: v.dims[0], dims1: v.dims[1], strides0: v.strides[0], strides1: v.strides[1] }
}
