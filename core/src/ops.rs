//! The op set. Each `Tensor` method checks shapes and dtypes, then records one `Op` node; the
//! backends implement `Op` in `cpu/` and `gpu/`, and `reference.rs` gives the plain version tests
//! compare both against. ARCHITECTURE.md ("Adding an op") lists the places an op touches.

use std::sync::Arc;

use crate::dtype::DType;
use crate::layout::broadcast_dims;
use crate::tensor::Tensor;
use crate::{Error, Result};

mod vision;
pub use vision::Conv2dParams;
pub(crate) use vision::Window2d;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UnaryOp {
    /// The exact (erf) GELU of BERT: x/2 * (1 + erf(x/sqrt 2)).
    Gelu,
    /// GPT-2's tanh approximation.
    GeluTanh,
    Silu,
    Relu,
    Neg,
    Exp,
    Tanh,
    /// 1 / (1 + e^-x)
    Sigmoid,
    /// x * sigmoid(1.702 x): CLIP's `quick_gelu`.
    QuickGelu,
    /// 1 / sqrt(x) (batch norm folded into a convolution at load).
    Rsqrt,
}

impl UnaryOp {
    /// Every op in declaration order: `op as u32` is its code in the GPU kernels, whose WGSL
    /// constants (`OP_GELU_TANH`, ..) every shader's prelude declares from this list.
    pub const ALL: [UnaryOp; 10] = [
        UnaryOp::Gelu,
        UnaryOp::GeluTanh,
        UnaryOp::Silu,
        UnaryOp::Relu,
        UnaryOp::Neg,
        UnaryOp::Exp,
        UnaryOp::Tanh,
        UnaryOp::Sigmoid,
        UnaryOp::QuickGelu,
        UnaryOp::Rsqrt,
    ];
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
    /// silu(lhs) * rhs: the gate of a SwiGLU feed-forward block.
    SiluMul,
}

/// The activation on the gate of a gated feed-forward block, act(gate) * up, applied as a
/// matmul reads its left operand.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GateAct {
    /// silu(gate) * up: SwiGLU (Llama).
    Silu,
    /// gelu_new(gate) * up, GPT-2's tanh GELU: T5 v1.1 / Flan-T5 / mT5's gated-GELU.
    GeluTanh,
}

/// An activation applied in a matmul's epilogue, saving a pass over the output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Activation {
    None,
    Unary(UnaryOp),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NormKind {
    /// (x - mean) / sqrt(var + eps) * weight + bias
    LayerNorm,
    /// x / sqrt(mean(x^2) + eps) * weight
    RmsNorm,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PoolMode {
    Mean,
    /// The first row of each sequence (BERT's [CLS] token).
    Cls,
}

pub(crate) enum Op {
    /// A contiguous copy of any view, converting the dtype (f32, f16, bf16 sources; f32 or f16 out).
    Copy {
        src: Tensor,
    },
    /// Rows of `table` [V, H] chosen by `ids` [N] (u32): [N, H] f32.
    Gather {
        table: Tensor,
        ids: Tensor,
    },
    Unary {
        src: Tensor,
        op: UnaryOp,
    },
    /// Both inputs are already broadcast views of the output's dims.
    Binary {
        lhs: Tensor,
        rhs: Tensor,
        op: BinaryOp,
    },
    /// a [batch, M, K] x b [batch, K, N] (+ bias [N]), then `act`, then + residual (dense, the
    /// output's dims: a residual block's skip connection, added in the epilogue instead of by a
    /// pass of its own). `b` may be any strided view, so an HF weight `w` [N, K] is used as
    /// `w.t()` without a copy; batch dims are flattened. With `gate` (offset, act), the left
    /// operand is act(g) * a, where g is the view with a's dims and strides at element `offset`
    /// of a's own storage (the gate half of a fused gate/up projection, read in place: SwiGLU and
    /// gated-GELU cost no pass). With `norm` (weight [K], eps), the left operand is RMSNorm(a)
    /// with that weight, each row's scale computed by the matmul itself (GPU decoding only, see
    /// `rms_norm_linear`: a norm folded into the projection after it costs no dispatch).
    Matmul {
        a: Tensor,
        b: Tensor,
        bias: Option<Tensor>,
        residual: Option<Tensor>,
        gate: Option<(usize, GateAct)>,
        norm: Option<(Tensor, f32)>,
        act: Activation,
        batch: usize,
        m: usize,
        n: usize,
        k: usize,
    },
    /// Normalizes the last dim of x (+ residual).
    Norm {
        x: Tensor,
        residual: Option<Tensor>,
        weight: Tensor,
        bias: Option<Tensor>,
        eps: f32,
        kind: NormKind,
    },
    /// softmax(x * scale + mask) over the last dim; `mask` (additive) is a broadcast view of x's dims.
    Softmax {
        x: Tensor,
        mask: Option<Tensor>,
        scale: f32,
    },
    /// Attention over packed sequences: q [Tq, Hq, D], k and v [Tk, Hkv, D] (views with unit
    /// stride on D); sequence s owns query rows q_offsets[s]..q_offsets[s+1] and key rows
    /// kv_offsets[s]..kv_offsets[s+1]. With `causal`, the queries are the last of their sequence
    /// (bottom-right alignment, as with a KV cache): query i of Lq sees keys j <= Lk - Lq + i.
    /// With `window` w, query i (at key position p = Lk - Lq + i) sees only keys with
    /// |p - j| <= w: a sliding window on both sides (ModernBERT's local layers), or behind it
    /// only when causal. With `bias` [Hq, 2c + 1] (dense f32), a bias by distance is added to
    /// each score: bias[h, c + clamp(j - p, -c, c)] (T5's relative position buckets, which
    /// saturate at a maximum distance, so a table of 2c + 1 distances covers any length).
    /// Output [Tq, Hq, D].
    Attention {
        q: Tensor,
        k: Tensor,
        v: Tensor,
        q_offsets: Tensor,
        kv_offsets: Tensor,
        scale: f32,
        causal: bool,
        window: Option<usize>,
        bias: Option<Tensor>,
        /// The queries rotated as they are read (`rope_attention_kv_window`; never with a bias).
        rope: Option<Rotary>,
        /// A KV cache [rows, 2 Hkv, D] (keys' heads, then values') that holds the keys and values
        /// before the new ones: `k` and `v` are then the new token's, unrotated (rotated by
        /// `rope` too), and the op writes them into the cache's row at the query's position
        /// (`attention_append_rope`: a decode step, one query row).
        append: Option<Tensor>,
    },
    /// Rotary position embedding of x [T, H, D] (unit stride on D) at `positions` [T] u32 with
    /// `inv_freq` [R/2] f32 (scaling variants are folded into it by the model); the first R dims
    /// rotate. `interleaved`: pairs (2i, 2i+1) as GGUF orders Llama weights; else (i, i + R/2) as
    /// Hugging Face does. Heads from `rotated` on are copied unchanged (values riding along
    /// with queries and keys, so keys and values come out adjacent). Output contiguous [T, H, D].
    Rope {
        x: Tensor,
        positions: Tensor,
        inv_freq: Tensor,
        interleaved: bool,
        rotated: usize,
    },
    /// Writes `src` into the rows of `dst` starting at `row`, in place, and gives `dst` back:
    /// the KV cache append. `dst` is a `Tensor::cache` tensor and keeps living on the device.
    WriteRows {
        dst: Tensor,
        src: Tensor,
        row: usize,
        /// `src` [n, H, D] rotated as it is written (`write_rows_rope`: keys into a KV cache).
        rope: Option<Rotary>,
    },
    /// Index of the largest value of each row of x [R, N] (first on ties): u32 [R].
    Argmax {
        x: Tensor,
    },
    /// Pools the rows [T, H] of each sequence (`seq_offsets` [B + 1]) into [B, H].
    SegmentPool {
        x: Tensor,
        seq_offsets: Tensor,
        mode: PoolMode,
    },
    /// Scatters packed rows [T, H] into a zero-padded batch [B, S, H].
    Unpack {
        x: Tensor,
        seq_offsets: Tensor,
        max_len: usize,
    },
    /// out[.., r, m] = x[.., r, index[r, m]]: x [.., R, N] f32, index [R, M] u32 shared by every
    /// leading batch entry (DeBERTa's relative-position lookup, torch.gather along the last dim
    /// with an index broadcast over the batch). An index past N - 1 reads column N - 1: kernels
    /// never read out of bounds.
    TakeAlongLast {
        x: Tensor,
        index: Tensor,
    },
    /// x / max(||x||, eps) over the last dim.
    L2Normalize {
        x: Tensor,
        eps: f32,
    },
    /// The patches of x [N, C, H, W] (any view) that output rows `window.row0..` of a convolution
    /// read, as columns: [N, C*KH*KW, rows*Wo] with rows (c, kh, kw) and columns (oy, ox); taps
    /// in the padding are 0. A dense convolution is then one matmul with the weight [Cout, C*KH*KW].
    Im2col {
        x: Tensor,
        window: Window2d,
    },
    /// A grouped convolution computed directly (depthwise ones): x [N, Cin, H, W] (any view),
    /// weight [Cout, Cin/groups, KH, KW] dense f32 or f16, bias [Cout] f32: [N, Cout, Ho, Wo].
    GroupedConv2d {
        x: Tensor,
        weight: Tensor,
        bias: Option<Tensor>,
        window: Window2d,
        groups: usize,
    },
    /// The parts (any views, same dims but along `dim`, 4-byte dtypes) one after another along `dim`.
    Concat {
        parts: Vec<Tensor>,
        dim: usize,
    },
    /// Bicubic resampling of x [N, C, H, W] (any view) to the output's [Ho, Wo], as PyTorch's
    /// `interpolate(mode="bicubic")`: without antialias a = -0.75 and clamped borders; with it,
    /// PIL's a = -0.5 filter widened by the scale when downsampling, normalized over the taps
    /// inside the image.
    Bicubic {
        x: Tensor,
        size: [usize; 2],
        align_corners: bool,
        antialias: bool,
    },
    /// Max over each window of x [N, C, H, W] (any view); padding never wins (-inf).
    MaxPool2d {
        x: Tensor,
        window: Window2d,
    },
}

/// A rotary embedding applied by an op as it reads a tensor [T, H, D] (see `Op::Rope`): positions
/// [T] u32, inv_freq [R/2] f32 (both dense), the pairing, and how many heads rotate.
pub(crate) struct Rotary {
    pub positions: Tensor,
    pub inv_freq: Tensor,
    pub interleaved: bool,
    pub rotated: usize,
}

impl Op {
    pub(crate) fn inputs(&self) -> Vec<&Tensor> {
        match self {
            Op::Copy { src } | Op::Unary { src, .. } => vec![src],
            Op::Gather { table, ids } => vec![table, ids],
            Op::Binary { lhs, rhs, .. } => vec![lhs, rhs],
            Op::Matmul { a, b, bias, residual, norm, .. } => {
                [Some(a), Some(b), bias.as_ref(), residual.as_ref(), norm.as_ref().map(|(w, _)| w)].into_iter().flatten().collect()
            }
            Op::Norm { x, residual, weight, bias, .. } => {
                [Some(x), residual.as_ref(), Some(weight), bias.as_ref()].into_iter().flatten().collect()
            }
            Op::Softmax { x, mask, .. } => [Some(x), mask.as_ref()].into_iter().flatten().collect(),
            Op::Attention { q, k, v, q_offsets, kv_offsets, bias, rope, append, .. } => {
                let rope = rope.iter().flat_map(|r| [&r.positions, &r.inv_freq]);
                [q, k, v, q_offsets, kv_offsets].into_iter().chain(bias).chain(rope).chain(append).collect()
            }
            Op::Rope { x, positions, inv_freq, .. } => vec![x, positions, inv_freq],
            Op::WriteRows { dst, src, rope, .. } => {
                [dst, src].into_iter().chain(rope.iter().flat_map(|r| [&r.positions, &r.inv_freq])).collect()
            }
            Op::Argmax { x } => vec![x],
            Op::SegmentPool { x, seq_offsets, .. } | Op::Unpack { x, seq_offsets, .. } => vec![x, seq_offsets],
            Op::TakeAlongLast { x, index } => vec![x, index],
            Op::L2Normalize { x, .. } => vec![x],
            Op::Im2col { x, .. } | Op::Bicubic { x, .. } | Op::MaxPool2d { x, .. } => vec![x],
            Op::GroupedConv2d { x, weight, bias, .. } => [Some(x), Some(weight), bias.as_ref()].into_iter().flatten().collect(),
            Op::Concat { parts, .. } => parts.iter().collect(),
        }
    }

    pub(crate) fn name(&self) -> &'static str {
        match self {
            Op::Copy { .. } => "copy",
            Op::Gather { .. } => "gather",
            Op::Unary { .. } => "unary",
            Op::Binary { .. } => "binary",
            Op::Matmul { .. } => "matmul",
            Op::Norm { .. } => "norm",
            Op::Softmax { .. } => "softmax",
            Op::Attention { .. } => "attention",
            Op::Rope { .. } => "rope",
            Op::WriteRows { .. } => "write_rows",
            Op::Argmax { .. } => "argmax",
            Op::SegmentPool { .. } => "segment_pool",
            Op::Unpack { .. } => "unpack",
            Op::TakeAlongLast { .. } => "take_along_last",
            Op::L2Normalize { .. } => "l2_normalize",
            Op::Im2col { .. } => "im2col",
            Op::GroupedConv2d { .. } => "grouped_conv2d",
            Op::Concat { .. } => "concat",
            Op::Bicubic { .. } => "bicubic",
            Op::MaxPool2d { .. } => "max_pool2d",
        }
    }
}

pub(crate) fn same_device(op: &'static str, tensors: &[&Tensor]) -> Result<()> {
    match tensors.split_first() {
        Some((first, rest)) if rest.iter().any(|t| !t.device().same(first.device())) => Err(Error::DeviceMismatch(op)),
        _ => Ok(()),
    }
}

pub(crate) fn expect_dtype(op: &'static str, what: &str, t: &Tensor, allowed: &[DType]) -> Result<()> {
    if allowed.contains(&t.dtype()) {
        Ok(())
    } else {
        Err(Error::dtype(op, format!("{what} is {}, expected one of {allowed:?}", t.dtype())))
    }
}

pub(crate) fn expect_rank(op: &'static str, what: &str, t: &Tensor, rank: usize) -> Result<()> {
    if t.rank() == rank { Ok(()) } else { Err(Error::shape(op, format!("{what} must have rank {rank}, got {:?}", t.dims()))) }
}

/// Float types an op's weights may have (activations are f32).
pub(crate) const WEIGHT_TYPES: &[DType] = &[DType::F32, DType::F16];
/// Up to this many rows `rms_norm_linear` is one op on the GPU: the rows of a decode step, which
/// the quantized weights' decode kernel serves (its `MATVEC_MAX_M`).
pub(crate) const NORM_FUSED_MAX_ROWS: usize = 8;

impl Tensor {
    pub(crate) fn record(op: Op, dtype: DType, dims: &[usize], from: &Tensor) -> Tensor {
        Tensor::new_pending(op, dtype, dims, from.device().clone())
    }

    fn contiguous_if(&self, needed: bool) -> Result<Tensor> {
        if needed && !self.is_contiguous() { self.contiguous() } else { Ok(self.clone()) }
    }

    /// A dense row-major copy of this view (no-op when it already is one).
    pub fn contiguous(&self) -> Result<Tensor> {
        if self.is_contiguous() {
            return Ok(self.clone());
        }
        self.copy_as(self.dtype())
    }

    /// Contiguous and starting at element 0 of its storage, as kernels that index their inputs
    /// from 0 need (a view past the start, such as the last row, is copied).
    pub fn dense(&self) -> Result<Tensor> {
        if self.is_contiguous() && self.layout().offset() == 0 {
            return Ok(self.clone());
        }
        self.copy_as(self.dtype())
    }

    /// Converts to f32 or f16 (from f32, f16 or bf16).
    pub fn to_dtype(&self, dtype: DType) -> Result<Tensor> {
        if dtype == self.dtype() {
            return Ok(self.clone());
        }
        self.copy_as(dtype)
    }

    fn copy_as(&self, dtype: DType) -> Result<Tensor> {
        let convertible = [DType::F32, DType::F16, DType::BF16];
        let plain = !self.dtype().is_quantized() && !dtype.is_quantized();
        let ok = (self.dtype() == dtype && plain) || (convertible.contains(&self.dtype()) && matches!(dtype, DType::F32 | DType::F16));
        // Quantizing (at load): rows of whole 32-value blocks into a block type with a quantizer.
        let quantizes = convertible.contains(&self.dtype())
            && crate::quant::QUANTIZABLE.contains(&dtype)
            && self.dims().last().is_some_and(|&k| k % 32 == 0);
        if quantizes {
            // The GPU kernel reads dense rows.
            let src = self.contiguous()?;
            return Ok(Tensor::record(Op::Copy { src }, dtype, self.dims(), self));
        }
        if !ok {
            return Err(Error::dtype("copy", format!("cannot convert {} to {dtype}", self.dtype())));
        }
        Ok(Tensor::record(Op::Copy { src: self.clone() }, dtype, self.dims(), self))
    }

    /// Embedding lookup: `self` is the table [V, H], `ids` [N] u32; gives [N, H] f32.
    pub fn gather_rows(&self, ids: &Tensor) -> Result<Tensor> {
        const OP: &str = "gather";
        same_device(OP, &[self, ids])?;
        expect_rank(OP, "table", self, 2)?;
        expect_rank(OP, "ids", ids, 1)?;
        if self.dtype().is_quantized() {
            check_quantized_table(self)?;
        } else {
            expect_dtype(OP, "table", self, WEIGHT_TYPES)?;
        }
        expect_dtype(OP, "ids", ids, &[DType::U32])?;
        let (table, ids) = (self.dense()?, ids.dense()?);
        let dims = [ids.dims()[0], table.dims()[1]];
        Ok(Tensor::record(Op::Gather { table, ids }, DType::F32, &dims, self))
    }

    pub fn unary(&self, op: UnaryOp) -> Result<Tensor> {
        expect_dtype("unary", "input", self, &[DType::F32])?;
        let src = self.dense()?;
        Ok(Tensor::record(Op::Unary { src, op }, DType::F32, self.dims(), self))
    }
    pub fn gelu(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Gelu)
    }
    pub fn silu(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Silu)
    }
    pub fn sigmoid(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Sigmoid)
    }
    /// x * sigmoid(1.702 x), CLIP's activation.
    pub fn quick_gelu(&self) -> Result<Tensor> {
        self.unary(UnaryOp::QuickGelu)
    }

    /// Elementwise with numpy broadcasting; either side may be a strided view.
    pub fn binary(&self, rhs: &Tensor, op: BinaryOp) -> Result<Tensor> {
        const OP: &str = "binary";
        same_device(OP, &[self, rhs])?;
        expect_dtype(OP, "lhs", self, &[DType::F32])?;
        expect_dtype(OP, "rhs", rhs, &[DType::F32])?;
        let dims = broadcast_dims(self.dims(), rhs.dims())?;
        let (lhs, rhs) = (self.broadcast_to(&dims)?, rhs.broadcast_to(&dims)?);
        Ok(Tensor::record(Op::Binary { lhs, rhs, op }, DType::F32, &dims, self))
    }
    pub fn add(&self, rhs: &Tensor) -> Result<Tensor> {
        self.binary(rhs, BinaryOp::Add)
    }
    pub fn mul(&self, rhs: &Tensor) -> Result<Tensor> {
        self.binary(rhs, BinaryOp::Mul)
    }

    /// Batched matmul: self [.., M, K] x rhs [.., K, N]. Batch dims broadcast like numpy's.
    pub fn matmul(&self, rhs: &Tensor) -> Result<Tensor> {
        self.matmul_ext(rhs, None, Activation::None)
    }

    /// `self` [.., K] x `weight`^T where `weight` is [N, K] as Hugging Face stores it, + bias [N].
    pub fn linear(&self, weight: &Tensor, bias: Option<&Tensor>, act: Activation) -> Result<Tensor> {
        expect_rank("linear", "weight", weight, 2)?;
        self.matmul_ext(&weight.t()?, bias, act)
    }

    pub fn matmul_ext(&self, rhs: &Tensor, bias: Option<&Tensor>, act: Activation) -> Result<Tensor> {
        self.matmul_op(rhs, bias, act, None, None, None)
    }

    /// (silu(`self`) * `up`) x `weight`^T (+ bias) (+ residual): a SwiGLU block's down
    /// projection. When gate and up are two halves of one [.., 2I] tensor (`narrow`s of a fused
    /// gate/up projection) the product is formed as the matmul reads its operand; otherwise it is
    /// a `SiluMul` first.
    pub fn silu_mul_linear(&self, up: &Tensor, weight: &Tensor, bias: Option<&Tensor>, residual: Option<&Tensor>) -> Result<Tensor> {
        self.gated_linear(GateAct::Silu, up, weight, bias, residual)
    }

    /// (act(`self`) * `up`) x `weight`^T (+ bias) (+ residual): a gated feed-forward block's
    /// down projection (SwiGLU with `GateAct::Silu`, T5's gated-GELU with `GateAct::GeluTanh`);
    /// fused as `silu_mul_linear` says.
    pub fn gated_linear(
        &self,
        gate_act: GateAct,
        up: &Tensor,
        weight: &Tensor,
        bias: Option<&Tensor>,
        residual: Option<&Tensor>,
    ) -> Result<Tensor> {
        expect_rank("linear", "weight", weight, 2)?;
        let (g, u) = (self.layout(), up.layout());
        let fusable = Arc::ptr_eq(&self.node, &up.node)
            && self.rank() == 2
            && g.dims() == u.dims()
            && g.strides() == u.strides()
            && g.strides()[1] == 1
            && self.dtype() == DType::F32
            && up.dtype() == DType::F32;
        if !fusable {
            let gated = match gate_act {
                GateAct::Silu => self.binary(up, BinaryOp::SiluMul)?,
                GateAct::GeluTanh => self.unary(UnaryOp::GeluTanh)?.mul(up)?,
            };
            return gated.matmul_op(&weight.t()?, bias, Activation::None, residual, None, None);
        }
        up.matmul_op(&weight.t()?, bias, Activation::None, residual, Some((self, gate_act)), None)
    }

    /// `residual` + `self` [.., K] x `weight`^T (+ bias): a residual block's output projection and
    /// skip connection in one op. `residual` has the output's dims [.., N].
    pub fn linear_add(&self, weight: &Tensor, bias: Option<&Tensor>, residual: &Tensor) -> Result<Tensor> {
        expect_rank("linear", "weight", weight, 2)?;
        self.matmul_op(&weight.t()?, bias, Activation::None, Some(residual), None, None)
    }

    /// `residual` + `self` x `rhs` (+ bias), as `linear_add` for a weight stored [K, N].
    pub fn matmul_add(&self, rhs: &Tensor, bias: Option<&Tensor>, residual: &Tensor) -> Result<Tensor> {
        self.matmul_op(rhs, bias, Activation::None, Some(residual), None, None)
    }

    /// RMSNorm(`self` [M, K]) with `norm_weight` [K] x `weight`^T (+ bias). On the GPU, for at
    /// most `NORM_FUSED_MAX_ROWS` rows (a decode step), one op: the matmul computes each row's
    /// inverse RMS itself (it reads the whole row anyway), so the norm costs no dispatch. Else
    /// (prefill, the CPU) the norm and the matmul as they are, unchanged.
    pub fn rms_norm_linear(&self, norm_weight: &Tensor, eps: f32, weight: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
        let k = self.dim(-1)?;
        let fused = matches!(self.device(), crate::Device::Gpu(_))
            && self.rank() == 2
            && self.dims()[0] <= NORM_FUSED_MAX_ROWS
            && self.layout().strides()[1] == 1
            && norm_weight.dims() == [k]
            && norm_weight.dtype() == DType::F32;
        if !fused {
            return self.rms_norm(norm_weight, eps)?.linear(weight, bias, Activation::None);
        }
        expect_rank("linear", "weight", weight, 2)?;
        same_device("matmul", &[self, norm_weight])?;
        self.matmul_op(&weight.t()?, bias, Activation::None, None, None, Some((norm_weight, eps)))
    }

    /// `gate`: a view of self's node with self's dims and strides (see `Op::Matmul`); `norm`:
    /// only from `rms_norm_linear`, which checked it.
    fn matmul_op(
        &self,
        rhs: &Tensor,
        bias: Option<&Tensor>,
        act: Activation,
        residual: Option<&Tensor>,
        gate: Option<(&Tensor, GateAct)>,
        norm: Option<(&Tensor, f32)>,
    ) -> Result<Tensor> {
        const OP: &str = "matmul";
        let mut all = vec![self, rhs];
        all.extend(bias);
        all.extend(residual);
        same_device(OP, &all)?;
        expect_dtype(OP, "lhs", self, &[DType::F32])?;
        if self.rank() < 2 || rhs.rank() < 2 {
            return Err(Error::shape(OP, format!("{:?} x {:?}: both need rank 2 or more", self.dims(), rhs.dims())));
        }
        if rhs.dtype().is_quantized() {
            check_quantized_rhs(rhs)?;
            // Quantized kernels read activation rows with unit stride along K.
            if self.layout().strides()[self.rank() - 1] != 1 && self.dims()[self.rank() - 1] > 1 {
                if gate.is_some() {
                    return Err(Error::shape(OP, "a gated operand needs unit K stride (engine bug)".to_string()));
                }
                return self.contiguous()?.matmul_op(rhs, bias, act, residual, None, None);
            }
        } else {
            expect_dtype(OP, "rhs", rhs, WEIGHT_TYPES)?;
        }
        let (m, k) = (self.dims()[self.rank() - 2], self.dims()[self.rank() - 1]);
        let (k2, n) = (rhs.dims()[rhs.rank() - 2], rhs.dims()[rhs.rank() - 1]);
        if k != k2 {
            return Err(Error::shape(OP, format!("{:?} x {:?}: inner dims differ", self.dims(), rhs.dims())));
        }
        if let Some(bias) = bias {
            expect_dtype(OP, "bias", bias, &[DType::F32])?;
            if bias.dims() != [n] {
                return Err(Error::shape(OP, format!("bias {:?} for {n} outputs", bias.dims())));
            }
        }
        let batch_dims = broadcast_dims(&self.dims()[..self.rank() - 2], &rhs.dims()[..rhs.rank() - 2])?;
        let batch: usize = batch_dims.iter().product();
        let mut out_dims = batch_dims.clone();
        out_dims.extend([m, n]);
        if let Some(r) = residual {
            expect_dtype(OP, "residual", r, &[DType::F32])?;
            if r.dims() != out_dims {
                return Err(Error::shape(OP, format!("residual {:?} for output {out_dims:?}", r.dims())));
            }
        }

        // A 2-D weight under a batched contiguous input is one big [batch*M, K] x [K, N]; under a
        // 2-D input, any view, it stays as it is (a split weight is read only in 2-D).
        let (a, b, batch, m) = if rhs.rank() == 2 && self.rank() == 2 {
            (self.clone(), rhs.clone(), 1, m)
        } else if rhs.rank() == 2 && self.is_contiguous() {
            (self.reshape(&[batch * m, k])?, rhs.clone(), 1, batch * m)
        } else {
            let mut a_dims = batch_dims.clone();
            a_dims.extend([m, k]);
            let mut b_dims = batch_dims.clone();
            b_dims.extend([k, n]);
            let a = collapse_batch(&self.broadcast_to(&a_dims)?)?;
            let b = collapse_batch(&rhs.broadcast_to(&b_dims)?)?;
            (a, b, batch, m)
        };
        let bias = bias.map(Tensor::dense).transpose()?;
        let residual = residual.map(Tensor::dense).transpose()?;
        // The gate is read at its offset with a's strides: a must still be a view of the node.
        let gate = match gate {
            Some((g, act)) if Arc::ptr_eq(&a.node, &g.node) && a.layout().offset() == self.layout().offset() => {
                Some((g.layout().offset(), act))
            }
            Some(_) => return Err(Error::shape(OP, "a gated operand was copied (engine bug)".to_string())),
            None => None,
        };
        let norm = match norm {
            Some((w, eps)) => Some((w.dense()?, eps)),
            None => None,
        };
        let op = Op::Matmul { a, b, bias, residual, gate, norm, act, batch, m, n, k };
        Ok(Tensor::record(op, DType::F32, &out_dims, self))
    }

    /// Layer norm over the last dim of (self + residual).
    pub fn layer_norm(&self, residual: Option<&Tensor>, weight: &Tensor, bias: Option<&Tensor>, eps: f32) -> Result<Tensor> {
        self.norm(residual, weight, bias, eps, NormKind::LayerNorm)
    }

    pub fn rms_norm(&self, weight: &Tensor, eps: f32) -> Result<Tensor> {
        self.norm(None, weight, None, eps, NormKind::RmsNorm)
    }

    fn norm(&self, residual: Option<&Tensor>, weight: &Tensor, bias: Option<&Tensor>, eps: f32, kind: NormKind) -> Result<Tensor> {
        const OP: &str = "norm";
        let mut all = vec![self, weight];
        all.extend(residual);
        all.extend(bias);
        same_device(OP, &all)?;
        let h = self.dim(-1)?;
        for (what, t) in [("input", Some(self)), ("residual", residual), ("weight", Some(weight)), ("bias", bias)] {
            if let Some(t) = t {
                expect_dtype(OP, what, t, &[DType::F32])?;
            }
        }
        if let Some(r) = residual {
            if r.dims() != self.dims() {
                return Err(Error::shape(OP, format!("residual {:?} for input {:?}", r.dims(), self.dims())));
            }
        }
        for (what, t) in [("weight", Some(weight)), ("bias", bias)] {
            if let Some(t) = t {
                if t.dims() != [h] {
                    return Err(Error::shape(OP, format!("{what} {:?} for hidden size {h}", t.dims())));
                }
            }
        }
        let op = Op::Norm {
            x: self.dense()?,
            residual: residual.map(Tensor::dense).transpose()?,
            weight: weight.dense()?,
            bias: bias.map(Tensor::dense).transpose()?,
            eps,
            kind,
        };
        Ok(Tensor::record(op, DType::F32, self.dims(), self))
    }

    /// softmax(self * scale + mask) over the last dim; `mask` is additive and broadcasts to self.
    pub fn softmax(&self, mask: Option<&Tensor>, scale: f32) -> Result<Tensor> {
        const OP: &str = "softmax";
        expect_dtype(OP, "input", self, &[DType::F32])?;
        self.dim(-1)?;
        let mask = match mask {
            Some(m) => {
                same_device(OP, &[self, m])?;
                expect_dtype(OP, "mask", m, &[DType::F32])?;
                Some(m.broadcast_to(self.dims())?)
            }
            None => None,
        };
        let op = Op::Softmax { x: self.dense()?, mask, scale };
        Ok(Tensor::record(op, DType::F32, self.dims(), self))
    }

    /// Fused multi-head attention over packed sequences (see `Op::Attention`), queries and keys
    /// from the same tokens. `self` is q.
    pub fn attention(&self, k: &Tensor, v: &Tensor, seq_offsets: &Tensor, scale: f32, causal: bool) -> Result<Tensor> {
        self.attention_op(k, v, (seq_offsets, seq_offsets), scale, causal, None, None, None, None)
    }

    /// `attention` where each query sees only the keys at most `window` positions away from it,
    /// on both sides (or behind it, with `causal`): |i - j| <= window. `None` is `attention`.
    pub fn attention_window(
        &self,
        k: &Tensor,
        v: &Tensor,
        seq_offsets: &Tensor,
        scale: f32,
        causal: bool,
        window: Option<usize>,
    ) -> Result<Tensor> {
        self.attention_op(k, v, (seq_offsets, seq_offsets), scale, causal, window, None, None, None)
    }

    /// Attention where keys and values have their own rows (a KV cache holds the past too).
    pub fn attention_kv(
        &self,
        k: &Tensor,
        v: &Tensor,
        q_offsets: &Tensor,
        kv_offsets: &Tensor,
        scale: f32,
        causal: bool,
    ) -> Result<Tensor> {
        self.attention_op(k, v, (q_offsets, kv_offsets), scale, causal, None, None, None, None)
    }

    /// `attention_kv` where each query sees only the keys at most `window` positions away from
    /// it (behind it, with `causal`): a decoder's sliding-window layers (Gemma 3, Qwen3 and
    /// Mistral configs that set one). `None` is `attention_kv`.
    #[allow(clippy::too_many_arguments)]
    pub fn attention_kv_window(
        &self,
        k: &Tensor,
        v: &Tensor,
        q_offsets: &Tensor,
        kv_offsets: &Tensor,
        scale: f32,
        causal: bool,
        window: Option<usize>,
    ) -> Result<Tensor> {
        self.attention_op(k, v, (q_offsets, kv_offsets), scale, causal, window, None, None, None)
    }

    /// `attention_kv_window` of these queries rotated first (`rope(positions, inv_freq,
    /// interleaved)`). On the GPU the attention kernel rotates each query row as it loads it,
    /// with rope.wgsl's arithmetic, so a decoder's queries cost no dispatch of their own.
    #[allow(clippy::too_many_arguments)]
    pub fn rope_attention_kv_window(
        &self,
        (positions, inv_freq, interleaved): (&Tensor, &Tensor, bool),
        k: &Tensor,
        v: &Tensor,
        q_offsets: &Tensor,
        kv_offsets: &Tensor,
        scale: f32,
        causal: bool,
        window: Option<usize>,
    ) -> Result<Tensor> {
        if !matches!(self.device(), crate::Device::Gpu(_)) {
            let rotated = self.rope(positions, inv_freq, interleaved)?;
            return rotated.attention_kv_window(k, v, q_offsets, kv_offsets, scale, causal, window);
        }
        let rope = self.rotary(positions, inv_freq, interleaved, self.dim(1)?)?;
        self.attention_op(k, v, (q_offsets, kv_offsets), scale, causal, window, None, Some(rope), None)
    }

    /// A decode step's causal attention that extends the KV cache itself: `self` [1, Hq, D] the
    /// new token's queries and `kv` [1, 2 Hkv, D] its keys' then values' heads, both unrotated;
    /// `cache` [rows, 2 Hkv, D] (a whole `Tensor::cache`) holds `row` tokens before it, and the
    /// offsets are [0, T] and [0, row + T]. The keys are rotated and written with the values at
    /// row `row`, the queries rotated, and attention runs over rows 0..=row. On the GPU (an f32 cache) one dispatch, which writes the cache row
    /// as a side effect: as with `write_rows`, whatever was recorded on the cache before must have
    /// been realized, and later steps read the row through the cache tensor itself. Elsewhere
    /// `write_rows_rope` then `rope_attention_kv_window`.
    #[allow(clippy::too_many_arguments)]
    pub fn attention_append_rope(
        &self,
        kv: &Tensor,
        cache: &Tensor,
        (q_offsets, kv_offsets): (&Tensor, &Tensor),
        row: usize,
        rope: (&Tensor, &Tensor, bool),
        scale: f32,
        window: Option<usize>,
    ) -> Result<Tensor> {
        const OP: &str = "attention";
        expect_rank(OP, "kv", kv, 3)?;
        expect_rank(OP, "cache", cache, 3)?;
        let hkv = cache.dims()[1] / 2;
        if kv.dims()[1..] != cache.dims()[1..] || self.rank() != 3 || self.dims()[0] != kv.dims()[0] {
            return Err(Error::shape(OP, format!("q {:?}, new keys and values {:?}, cache {:?}", self.dims(), kv.dims(), cache.dims())));
        }
        let t = kv.dims()[0];
        if !matches!(self.device(), crate::Device::Gpu(_)) || !stored_in_place(cache) || t != 1 {
            let all = cache.write_rows_rope(kv, row, rope, hkv)?.narrow(0, 0, row + t)?;
            let (keys, values) = (all.narrow(1, 0, hkv)?, all.narrow(1, hkv, hkv)?);
            return self.rope_attention_kv_window(rope, &keys, &values, q_offsets, kv_offsets, scale, true, window);
        }
        same_device(OP, &[self, kv, cache])?;
        if !cache.is_cache() || !cache.is_contiguous() || cache.layout().offset() != 0 || row + t > cache.dims()[0] {
            return Err(Error::Input(format!("attention_append_rope: rows {row}..{} of a whole cache tensor {:?}", row + t, cache.dims())));
        }
        let (positions, inv_freq, interleaved) = rope;
        // The new keys rotate with the queries' positions and frequencies.
        kv.rotary(positions, inv_freq, interleaved, hkv)?;
        let rope = self.rotary(positions, inv_freq, interleaved, self.dim(1)?)?;
        let (k, v) = (kv.narrow(1, 0, hkv)?, kv.narrow(1, hkv, hkv)?);
        self.attention_op(&k, &v, (q_offsets, kv_offsets), scale, true, window, None, Some(rope), Some(cache.clone()))
    }

    /// `attention_kv` with a bias by key-query distance added to every score (see
    /// `Op::Attention`): `bias` [Hq, 2c + 1], entry c + (j - p) for key j of a query at key
    /// position p, distances beyond ±c reading the table's ends. This is T5's relative position
    /// bias, whose buckets stop changing past `relative_attention_max_distance`: chosen over a
    /// [heads, q, k] bias (or scores, bias and softmax as separate ops) because the table costs
    /// no memory per token, is made once at load, and serves a KV cache as it is (a query row
    /// sits at p = its position, so the decoder's step reads the current position's row).
    #[allow(clippy::too_many_arguments)]
    pub fn attention_kv_bias(
        &self,
        k: &Tensor,
        v: &Tensor,
        q_offsets: &Tensor,
        kv_offsets: &Tensor,
        bias: &Tensor,
        scale: f32,
        causal: bool,
    ) -> Result<Tensor> {
        self.attention_op(k, v, (q_offsets, kv_offsets), scale, causal, None, Some(bias), None, None)
    }

    #[allow(clippy::too_many_arguments)]
    fn attention_op(
        &self,
        k: &Tensor,
        v: &Tensor,
        (q_offsets, kv_offsets): (&Tensor, &Tensor),
        scale: f32,
        causal: bool,
        window: Option<usize>,
        bias: Option<&Tensor>,
        rope: Option<Rotary>,
        append: Option<Tensor>,
    ) -> Result<Tensor> {
        const OP: &str = "attention";
        same_device(OP, &[self, k, v, q_offsets, kv_offsets])?;
        if let Some(b) = bias {
            same_device(OP, &[self, b])?;
            expect_dtype(OP, "bias", b, &[DType::F32])?;
            expect_rank(OP, "bias", b, 2)?;
            if b.dims()[0] != self.dims()[1] || b.dims()[1] % 2 != 1 || b.dims()[1] >= MAX_BIAS_DISTANCES {
                return Err(Error::shape(
                    OP,
                    format!("bias {:?} for {} query heads: it must be [heads, 2c + 1] (c < 2^29)", b.dims(), self.dims()[1]),
                ));
            }
        }
        expect_rank(OP, "q", self, 3)?;
        expect_dtype(OP, "q", self, &[DType::F32])?;
        for (what, t) in [("k", k), ("v", v)] {
            expect_rank(OP, what, t, 3)?;
            expect_dtype(OP, what, t, &[DType::F32, DType::F16])?;
        }
        if k.dtype() != v.dtype() || (k.dtype() == DType::F16 && !stored_in_place(k)) {
            // An f16 cache read where the kernel cannot read f16 (the CPU, an adapter without
            // shader-f16): attended as f32 copies.
            let (k, v) = (k.to_dtype(DType::F32)?, v.to_dtype(DType::F32)?);
            return self.attention_op(&k, &v, (q_offsets, kv_offsets), scale, causal, window, bias, rope, append);
        }
        for (what, t) in [("q_offsets", q_offsets), ("kv_offsets", kv_offsets)] {
            expect_dtype(OP, what, t, &[DType::U32])?;
            expect_rank(OP, what, t, 1)?;
        }
        if q_offsets.dims() != kv_offsets.dims() || q_offsets.dims()[0] < 2 {
            return Err(Error::shape(
                OP,
                format!("offsets {:?} and {:?} must describe the same sequences", q_offsets.dims(), kv_offsets.dims()),
            ));
        }
        let [t, hq, d] = [self.dims()[0], self.dims()[1], self.dims()[2]];
        let [_, hkv, dk] = [k.dims()[0], k.dims()[1], k.dims()[2]];
        if k.dims() != v.dims() || dk != d || hkv == 0 || hq % hkv != 0 {
            return Err(Error::shape(OP, format!("q {:?}, k {:?}, v {:?}", self.dims(), k.dims(), v.dims())));
        }
        if d > MAX_HEAD_DIM {
            return Err(Error::Unsupported(format!("attention head size {d} (at most {MAX_HEAD_DIM})")));
        }
        let op = Op::Attention {
            q: unit_last(self)?,
            k: unit_last(k)?,
            v: unit_last(v)?,
            q_offsets: q_offsets.dense()?,
            kv_offsets: kv_offsets.dense()?,
            scale,
            causal,
            window,
            bias: bias.map(Tensor::dense).transpose()?,
            rope,
            append,
        };
        Ok(Tensor::record(op, DType::F32, &[t, hq, d], self))
    }

    /// Rotary position embedding (see `Op::Rope`) of `self` [T, H, D].
    pub fn rope(&self, positions: &Tensor, inv_freq: &Tensor, interleaved: bool) -> Result<Tensor> {
        self.rope_heads(positions, inv_freq, interleaved, self.dim(1)?)
    }

    /// `rope` of heads 0..rotated; the others are copied as they are.
    pub fn rope_heads(&self, positions: &Tensor, inv_freq: &Tensor, interleaved: bool, rotated: usize) -> Result<Tensor> {
        let r = self.rotary(positions, inv_freq, interleaved, rotated)?;
        let op = Op::Rope { x: unit_last(self)?, positions: r.positions, inv_freq: r.inv_freq, interleaved, rotated };
        Ok(Tensor::record(op, DType::F32, self.dims(), self))
    }

    /// Checks a rotation of `self` [T, H, D] (see `rope_heads`) and gives it as ops take it.
    fn rotary(&self, positions: &Tensor, inv_freq: &Tensor, interleaved: bool, rotated: usize) -> Result<Rotary> {
        const OP: &str = "rope";
        same_device(OP, &[self, positions, inv_freq])?;
        expect_rank(OP, "input", self, 3)?;
        expect_dtype(OP, "input", self, &[DType::F32])?;
        expect_dtype(OP, "positions", positions, &[DType::U32])?;
        expect_dtype(OP, "inv_freq", inv_freq, &[DType::F32])?;
        let (t, d) = (self.dims()[0], self.dims()[2]);
        let half = inv_freq.numel();
        if positions.dims() != [t] || half == 0 || 2 * half > d {
            return Err(Error::shape(OP, format!("x {:?}, positions {:?}, inv_freq {:?}", self.dims(), positions.dims(), inv_freq.dims())));
        }
        if rotated > self.dims()[1] {
            return Err(Error::shape(OP, format!("{rotated} rotated heads of {:?}", self.dims())));
        }
        Ok(Rotary { positions: positions.dense()?, inv_freq: inv_freq.dense()?, interleaved, rotated })
    }

    /// Writes `src` [n, ..] into rows `row..row + n` of this cache tensor (see `Tensor::cache`, or
    /// an earlier `write_rows` result) and returns the cache, updated, for ops that read it
    /// afterwards (and for writes that must follow this one).
    pub fn write_rows(&self, src: &Tensor, row: usize) -> Result<Tensor> {
        self.write_rows_op(&src.contiguous()?, row, None)
    }

    /// `write_rows` of `src` [n, H, D] with its first `rotated` heads rotated (`rope_heads`): on
    /// the GPU one dispatch rotates a decoder's new keys and writes them and the values into its
    /// KV cache (an f32 cache, or f16 with shader-f16; else, and on the CPU, the rotation and the
    /// write as two ops).
    pub fn write_rows_rope(
        &self,
        src: &Tensor,
        row: usize,
        (positions, inv_freq, interleaved): (&Tensor, &Tensor, bool),
        rotated: usize,
    ) -> Result<Tensor> {
        if !matches!(self.device(), crate::Device::Gpu(_)) || !stored_in_place(self) {
            let rotated = src.rope_heads(positions, inv_freq, interleaved, rotated)?;
            return self.write_rows(&rotated, row);
        }
        let rope = src.rotary(positions, inv_freq, interleaved, rotated)?;
        self.write_rows_op(&unit_last(src)?, row, Some(rope))
    }

    fn write_rows_op(&self, src: &Tensor, row: usize, rope: Option<Rotary>) -> Result<Tensor> {
        const OP: &str = "write_rows";
        same_device(OP, &[self, src])?;
        if !self.is_cache() || !self.is_contiguous() || self.layout().offset() != 0 {
            return Err(Error::Input("write_rows writes only into a whole cache tensor (Tensor::cache)".into()));
        }
        // f32 rows written into an f16 cache are converted by the write itself (on the GPU the
        // copy and rope kernels store f16), so callers never convert first.
        let converts = src.dtype() == DType::F32 && self.dtype() == DType::F16;
        if (src.dtype() != self.dtype() && !converts)
            || src.rank() != self.rank()
            || src.dims()[1..] != self.dims()[1..]
            || row + src.dims()[0] > self.dims()[0]
        {
            return Err(Error::shape(
                OP,
                format!("rows {row}.. of {:?} ({}) from {:?} ({})", self.dims(), self.dtype(), src.dims(), src.dtype()),
            ));
        }
        let op = Op::WriteRows { dst: self.clone(), src: src.clone(), row, rope };
        // The result is the cache itself (the same storage), so a later write may target it.
        Ok(Tensor::new_pending_cache(op, self.dtype(), self.dims(), self.device().clone()))
    }

    /// Index of each row's largest value: x [R, N] f32 → [R] u32.
    pub fn argmax(&self) -> Result<Tensor> {
        expect_rank("argmax", "input", self, 2)?;
        expect_dtype("argmax", "input", self, &[DType::F32])?;
        let op = Op::Argmax { x: self.dense()? };
        Ok(Tensor::record(op, DType::U32, &[self.dims()[0]], self))
    }

    /// Mean or first-row pooling of each packed sequence: [T, H] → [B, H].
    pub fn segment_pool(&self, seq_offsets: &Tensor, mode: PoolMode) -> Result<Tensor> {
        const OP: &str = "segment_pool";
        same_device(OP, &[self, seq_offsets])?;
        expect_rank(OP, "input", self, 2)?;
        expect_dtype(OP, "input", self, &[DType::F32])?;
        expect_dtype(OP, "seq_offsets", seq_offsets, &[DType::U32])?;
        let b = seq_offsets.dims().first().copied().unwrap_or(0).saturating_sub(1);
        let dims = [b, self.dims()[1]];
        let op = Op::SegmentPool { x: self.dense()?, seq_offsets: seq_offsets.dense()?, mode };
        Ok(Tensor::record(op, DType::F32, &dims, self))
    }

    /// Packed rows [T, H] to a zero-padded batch [B, max_len, H].
    pub fn unpack(&self, seq_offsets: &Tensor, max_len: usize) -> Result<Tensor> {
        const OP: &str = "unpack";
        same_device(OP, &[self, seq_offsets])?;
        expect_rank(OP, "input", self, 2)?;
        expect_dtype(OP, "input", self, &[DType::F32])?;
        expect_dtype(OP, "seq_offsets", seq_offsets, &[DType::U32])?;
        let b = seq_offsets.dims().first().copied().unwrap_or(0).saturating_sub(1);
        let dims = [b, max_len, self.dims()[1]];
        let op = Op::Unpack { x: self.dense()?, seq_offsets: seq_offsets.dense()?, max_len };
        Ok(Tensor::record(op, DType::F32, &dims, self))
    }

    /// Picks columns of each row of `self` [.., R, N] by `index` [R, M] (u32), the same index
    /// for every leading batch entry: [.., R, M] (see `Op::TakeAlongLast`).
    pub fn take_along_last(&self, index: &Tensor) -> Result<Tensor> {
        const OP: &str = "take_along_last";
        same_device(OP, &[self, index])?;
        expect_dtype(OP, "input", self, &[DType::F32])?;
        expect_dtype(OP, "index", index, &[DType::U32])?;
        expect_rank(OP, "index", index, 2)?;
        let rank = self.rank();
        if rank < 2 {
            return Err(Error::shape(OP, format!("input {:?} needs rank 2 or more", self.dims())));
        }
        let (r, n) = (self.dims()[rank - 2], self.dims()[rank - 1]);
        let (ri, m) = (index.dims()[0], index.dims()[1]);
        let mut dims = self.dims()[..rank - 1].to_vec();
        dims.push(m);
        if ri != r || (n == 0 && dims.iter().product::<usize>() > 0) {
            return Err(Error::shape(OP, format!("input {:?} with index {:?}", self.dims(), index.dims())));
        }
        let op = Op::TakeAlongLast { x: self.dense()?, index: index.dense()? };
        Ok(Tensor::record(op, DType::F32, &dims, self))
    }

    pub fn l2_normalize(&self, eps: f32) -> Result<Tensor> {
        expect_dtype("l2_normalize", "input", self, &[DType::F32])?;
        self.dim(-1)?;
        let op = Op::L2Normalize { x: self.dense()?, eps };
        Ok(Tensor::record(op, DType::F32, self.dims(), self))
    }
}

/// Quantized weights are read block by block as stored, so a quantized right operand must be the
/// transpose of a [N, K] weight (`x.linear(&w, ..)`) whose rows are whole blocks.
fn check_quantized_rhs(rhs: &Tensor) -> Result<()> {
    let (dtype, r) = (rhs.dtype(), rhs.rank());
    let block = dtype.block_len();
    let (dims, strides) = (rhs.dims(), rhs.layout().strides());
    let (k, n, sk, sn) = (dims[r - 2], dims[r - 1], strides[r - 2], strides[r - 1]);
    if sk != 1 && k > 1 {
        return Err(Error::shape(
            "matmul",
            format!("a {dtype} right operand {dims:?} must be the transpose of a [N, K] weight (use `x.linear(&w, ..)`)"),
        ));
    }
    let whole = k % block == 0
        && rhs.layout().offset() % block == 0
        && (n == 1 || sn % block == 0)
        && strides[..r - 2].iter().zip(&dims[..r - 2]).all(|(&s, &d)| d == 1 || s % block == 0);
    if !whole {
        return Err(Error::shape(
            "matmul",
            format!("K = {k} (in {dims:?}) is not a whole number of {dtype} blocks of {block} per weight row"),
        ));
    }
    Ok(())
}

/// A quantized embedding table [V, H] needs rows of whole blocks.
fn check_quantized_table(table: &Tensor) -> Result<()> {
    let (dtype, h) = (table.dtype(), table.dims()[1]);
    let block = dtype.block_len();
    if h % block != 0 || table.layout().offset() % block != 0 || (!table.is_contiguous() && table.dims()[0] > 1) {
        return Err(Error::shape("gather", format!("a {dtype} table {:?} needs contiguous rows of whole blocks of {block}", table.dims())));
    }
    Ok(())
}

/// A distance bias table's width bound: attention.wgsl computes distances in i32 (positions < 2^30).
const MAX_BIAS_DISTANCES: usize = 1 << 30;

/// Attention kernels keep one query head in registers and workgroup memory.
pub const MAX_HEAD_DIM: usize = 256;

/// Whether the kernels read and write this KV tensor as it is stored: f32 anywhere, f16 on a GPU
/// with shader-f16 (a half-size cache). Elsewhere an f16 cache is attended through f32 copies.
fn stored_in_place(t: &Tensor) -> bool {
    match t.dtype() {
        DType::F32 => true,
        DType::F16 => t.device().has_shader_f16(),
        _ => false,
    }
}

/// A copy unless the last dim already has unit stride (kernels index it directly).
fn unit_last(x: &Tensor) -> Result<Tensor> {
    let r = x.rank();
    x.contiguous_if(x.layout().strides()[r - 1] != 1 && x.dims()[r - 1] > 1)
}

/// Views [..batch, R, C] as [batch, R, C], copying only when the batch dims cannot share one stride.
fn collapse_batch(t: &Tensor) -> Result<Tensor> {
    let r = t.rank();
    let (dims, strides) = (t.dims(), t.layout().strides());
    let batch: usize = dims[..r - 2].iter().product();
    let mut stride = None;
    let mut ok = true;
    // Walk batch dims from the innermost; each must step by the product of those inside it.
    let mut expected: Option<usize> = None;
    for i in (0..r - 2).rev() {
        if dims[i] == 1 {
            continue;
        }
        match expected {
            None => {
                stride = Some(strides[i]);
                expected = Some(strides[i] * dims[i]);
            }
            Some(e) => {
                if strides[i] != e {
                    ok = false;
                }
                expected = Some(e * dims[i]);
            }
        }
    }
    if !ok {
        return collapse_batch(&t.contiguous()?);
    }
    let batch_stride = stride.unwrap_or(0);
    Ok(t.with_batch_view(batch, batch_stride))
}

impl Tensor {
    /// The same storage as [batch, R, C] with one batch stride (`collapse_batch` checked it is valid).
    fn with_batch_view(&self, batch: usize, batch_stride: usize) -> Tensor {
        let r = self.rank();
        let (dims, strides) = (self.dims(), self.layout().strides());
        let layout = crate::layout::Layout::from_raw(
            vec![batch, dims[r - 2], dims[r - 1]],
            vec![batch_stride, strides[r - 2], strides[r - 1]],
            self.layout().offset(),
        );
        Tensor::from_parts(self.node.clone(), layout)
    }
}
