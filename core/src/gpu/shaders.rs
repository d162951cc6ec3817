//! WGSL sources (the `.wgsl` files under `shaders/`, embedded at build time), the typed key that
//! names each kernel variant, and the small preprocessor that turns a key into WGSL text.
//!
//! Preprocessor: `#include "file.wgsl"` (each file once), `#if EXPR` / `#elif EXPR` / `#else` /
//! `#endif` where EXPR is flags joined by `&&` or `||` (`!FLAG` negates). A prelude with the
//! `enable` directives and constants of the variant is prepended.

use crate::gpu::params::{KernelParams, ParamsDef};
use crate::ops::{GateAct, PoolMode, UnaryOp};
use crate::{Error, Result};

/// The files kernels `#include`; each kernel's own file comes with its `KernelSpec`.
const INCLUDES: &[(&str, &str)] = &[
    ("common.wgsl", include_str!("../../../shaders/common.wgsl")),
    ("reduce.wgsl", include_str!("../../../shaders/reduce.wgsl")),
    ("tile.wgsl", include_str!("../../../shaders/tile.wgsl")),
    ("matmul_io.wgsl", include_str!("../../../shaders/matmul_io.wgsl")),
    ("quant.wgsl", include_str!("../../../shaders/quant.wgsl")),
    ("rotary.wgsl", include_str!("../../../shaders/rotary.wgsl")),
];

/// A kernel's file under `shaders/`, by name and text.
macro_rules! wgsl {
    ($file:literal) => {
        ($file, include_str!(concat!("../../../shaders/", $file)))
    };
}

/// How a storage buffer's elements are stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Elem {
    F32,
    /// f16 read as `array<f16>` (needs shader-f16) or as `array<u32>` words holding two values.
    F16,
    /// bf16, two per u32 word; only read, by the copy kernel that converts weights.
    BF16,
    U32,
}

/// ggml block types, as the quantized kernels (quant.wgsl) read them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Quant {
    Q8_0,
    Q4_0,
    Q4_1,
    Q4K,
    Q5K,
    Q6K,
}

impl Quant {
    pub const ALL: [Quant; 6] = [Quant::Q8_0, Quant::Q4_0, Quant::Q4_1, Quant::Q4K, Quant::Q5K, Quant::Q6K];
    /// What quantize.wgsl makes (as `quant::QUANTIZABLE` on the CPU).
    pub const QUANTIZABLE: [Quant; 3] = [Quant::Q8_0, Quant::Q4_0, Quant::Q4_1];

    pub fn of(dtype: crate::DType) -> Option<Quant> {
        use crate::DType as D;
        Some(match dtype {
            D::Q8_0 => Quant::Q8_0,
            D::Q4_0 => Quant::Q4_0,
            D::Q4_1 => Quant::Q4_1,
            D::Q4K => Quant::Q4K,
            D::Q5K => Quant::Q5K,
            D::Q6K => Quant::Q6K,
            _ => return None,
        })
    }

    fn flag(self) -> &'static str {
        match self {
            Quant::Q8_0 => "Q8_0",
            Quant::Q4_0 => "Q4_0",
            Quant::Q4_1 => "Q4_1",
            Quant::Q4K => "Q4_K",
            Quant::Q5K => "Q5_K",
            Quant::Q6K => "Q6_K",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NormVariant {
    LayerNorm,
    RmsNorm,
    L2,
}

/// Every kernel variant. Runtime values (sizes, strides, op codes) go through uniforms instead,
/// so the number of pipelines stays small.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kernel {
    Copy {
        src: Elem,
        dst: Elem,
    },
    Gather {
        table: Elem,
    },
    Unary,
    Binary,
    Matmul {
        b: Elem,
        io: MatmulIo,
    },
    Norm {
        kind: NormVariant,
        residual: bool,
        bias: bool,
    },
    Softmax {
        mask: bool,
    },
    /// `bias`: a distance bias table (T5's relative positions) at binding 6. `rope`:
    /// Some(interleaved), queries rotated as they are loaded (positions and inv_freq at bindings
    /// 6 and 7; never with a bias). `append` (with `rope`): a decode step's attention that reads
    /// the new key and value from the projection and extends the KV cache (binding 8, written)
    /// by their row itself. `kv_f16`: the stored keys and values (k and v, or with `append` the
    /// cache) are f16 (a half-size KV cache; needs shader-f16), read into f32 arithmetic.
    Attention {
        bias: bool,
        rope: Option<bool>,
        append: bool,
        kv_f16: bool,
    },
    Pool(PoolMode),
    Unpack,
    /// `dst_f16`: written as f16 (into an f16 KV cache, `write_rows_rope`; needs shader-f16).
    Rope {
        interleaved: bool,
        dst_f16: bool,
    },
    Argmax,
    /// Columns picked per row by a shared index: take_along.wgsl.
    TakeAlongLast,
    /// Quantized weights, few activation rows (decoding): matvec_quant.wgsl.
    QuantMatvec {
        q: Quant,
        io: MatmulIo,
    },
    /// f32 or f16 weights [N, K] with K a multiple of 32, few activation rows (decoding): the
    /// quantized decode kernel reading plain rows (matvec_quant.wgsl with DENSE_F32 / DENSE_F16).
    DenseMatvec {
        b: Elem,
        io: MatmulIo,
    },
    /// Quantized weights, many activation rows (prefill): matmul_quant.wgsl.
    QuantMatmul {
        q: Quant,
        io: MatmulIo,
    },
    /// Embedding lookup from a quantized table: gather_quant.wgsl.
    QuantGather {
        q: Quant,
    },
    /// Dense float rows into ggml blocks (quantize-at-load): quantize.wgsl.
    Quantize {
        src: Elem,
        q: Quant,
    },
    /// A convolution's patches as matmul columns.
    Im2col,
    /// A grouped (depthwise) convolution with `weight` f32 or f16 (read as u32 pairs).
    GroupedConv {
        weight: Elem,
        bias: bool,
    },
    /// One part of a concatenation (4-byte values).
    Concat,
    Bicubic {
        antialias: bool,
    },
    MaxPool,
}

/// The operands around a matmul kernel's product (matmul_io.wgsl): `bias` [N] and a dense
/// `residual` of the output's shape added in the epilogue; `gate`, A read as act(gate) * A from
/// two views of one buffer; `norm`, A read as RMSNorm(A) with a weight [K] bound after them (the
/// kernel computes each row's scale; the decode kernels only, without residual or gate).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct MatmulIo {
    pub bias: bool,
    pub residual: bool,
    pub gate: Option<GateAct>,
    pub norm: bool,
}

/// Adapter capabilities a variant may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct ShaderFeatures {
    /// shader-f16: f16 values can be loaded natively (exact).
    pub f16: bool,
    pub subgroups: bool,
    /// Kernels that offer it compute in f16 (lossy; see `GpuOptions::f16_math`).
    pub f16_math: bool,
}

/// Browsers require `enable subgroups;` where naga (wgpu 30) rejects it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    Native,
    Browser,
}

impl Flavor {
    pub fn current() -> Flavor {
        if cfg!(target_arch = "wasm32") { Flavor::Browser } else { Flavor::Native }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PipelineKey {
    pub kernel: Kernel,
    pub features: ShaderFeatures,
}

/// Invocations per workgroup of the kernels that take `WG` from the prelude. Reductions use 256
/// so that any subgroup size (up to 128) divides it; 256 is WebGPU's default maximum.
const WG: u32 = 256;
/// Attention walks keys in tiles of this many invocations.
const ATTENTION_WG: u32 = 64;

impl Kernel {
    /// What a dispatch of this kernel needs besides its variant flags: one entry per kernel.
    pub fn spec(&self) -> KernelSpec {
        use super::record::quant::{QuantGatherParams, QuantMatmulParams};
        use super::record::vision::*;
        use super::record::*;
        let spec = |(file, source), inputs: usize, params| KernelSpec { file, source, inputs, workgroup: WG, params };
        match *self {
            Kernel::Copy { .. } => spec(wgsl!("copy.wgsl"), 1, CopyParams::DEF),
            Kernel::Gather { .. } => spec(wgsl!("gather.wgsl"), 2, GatherParams::DEF),
            Kernel::Unary => spec(wgsl!("elementwise.wgsl"), 1, ElementwiseParams::DEF),
            Kernel::Binary => spec(wgsl!("elementwise.wgsl"), 2, ElementwiseParams::DEF),
            Kernel::Matmul { io, .. } => spec(wgsl!("matmul.wgsl"), io.inputs(), MatmulParams::DEF),
            Kernel::Norm { kind: NormVariant::L2, .. } => spec(wgsl!("norm.wgsl"), 1, NormParams::DEF),
            Kernel::Norm { residual, bias, .. } => spec(wgsl!("norm.wgsl"), 2 + residual as usize + bias as usize, NormParams::DEF),
            Kernel::Softmax { mask } => spec(wgsl!("softmax.wgsl"), 1 + mask as usize, SoftmaxParams::DEF),
            Kernel::Attention { bias, rope, append, .. } => {
                let inputs = 5 + bias as usize + 2 * rope.is_some() as usize + append as usize;
                KernelSpec { workgroup: ATTENTION_WG, ..spec(wgsl!("attention.wgsl"), inputs, AttentionParams::DEF) }
            }
            Kernel::Pool(_) | Kernel::Unpack => spec(wgsl!("pool.wgsl"), 2, PoolParams::DEF),
            Kernel::Rope { .. } => spec(wgsl!("rope.wgsl"), 3, RopeParams::DEF),
            Kernel::Argmax => spec(wgsl!("argmax.wgsl"), 1, ArgmaxParams::DEF),
            Kernel::TakeAlongLast => spec(wgsl!("take_along.wgsl"), 2, TakeAlongParams::DEF),
            Kernel::QuantMatvec { io, .. } | Kernel::DenseMatvec { io, .. } => {
                spec(wgsl!("matvec_quant.wgsl"), io.inputs(), QuantMatmulParams::DEF)
            }
            Kernel::QuantMatmul { io, .. } => spec(wgsl!("matmul_quant.wgsl"), io.inputs(), QuantMatmulParams::DEF),
            Kernel::QuantGather { .. } => spec(wgsl!("gather_quant.wgsl"), 2, QuantGatherParams::DEF),
            Kernel::Quantize { .. } => spec(wgsl!("quantize.wgsl"), 1, QuantizeParams::DEF),
            Kernel::Im2col => spec(wgsl!("im2col.wgsl"), 1, Im2colParams::DEF),
            Kernel::GroupedConv { bias, .. } => spec(wgsl!("grouped_conv.wgsl"), 2 + bias as usize, GroupedConvParams::DEF),
            Kernel::Concat => spec(wgsl!("concat.wgsl"), 1, ConcatParams::DEF),
            Kernel::Bicubic { .. } => spec(wgsl!("bicubic.wgsl"), 1, BicubicParams::DEF),
            Kernel::MaxPool => spec(wgsl!("max_pool.wgsl"), 1, MaxPoolParams::DEF),
        }
    }

    pub fn file(&self) -> &'static str {
        self.spec().file
    }

    /// Storage bindings read (after the uniform at 0, before the output).
    pub fn inputs(&self) -> usize {
        self.spec().inputs
    }

    /// Whether the last of `inputs` is written too (a KV cache the kernel extends), so bound
    /// read-write.
    pub fn writes_last_input(&self) -> bool {
        matches!(self, Kernel::Attention { append: true, .. })
    }

    pub fn workgroup_size(&self) -> u32 {
        self.spec().workgroup
    }

    /// The kernel's uniform parameters, whose WGSL declaration its prelude carries.
    pub fn params(&self) -> ParamsDef {
        self.spec().params
    }

    fn flags(&self, features: ShaderFeatures) -> Vec<&'static str> {
        let mut flags = Vec::new();
        if features.subgroups {
            flags.push("SUBGROUPS");
        }
        let elem_flag = |prefix: &str, e: Elem| -> &'static str {
            match (prefix, e) {
                ("SRC", Elem::F32) => "SRC_F32",
                ("SRC", Elem::F16) => "SRC_F16",
                ("SRC", Elem::BF16) => "SRC_BF16",
                ("SRC", Elem::U32) => "SRC_U32",
                ("DST", Elem::F32) => "DST_F32",
                ("DST", _) => "DST_PACKED",
                _ => "",
            }
        };
        match *self {
            Kernel::Copy { src, dst } => flags.extend([elem_flag("SRC", src), elem_flag("DST", dst)]),
            Kernel::Gather { table } => flags.push(if table == Elem::F32 { "TABLE_F32" } else { "TABLE_F16" }),
            Kernel::Unary => {}
            Kernel::Binary => flags.push("BINARY"),
            Kernel::Matmul { b, io } => {
                flags.push(match b {
                    Elem::F32 => "B_F32",
                    Elem::F16 if features.f16 => "B_F16_NATIVE",
                    _ => "B_F16_PACKED",
                });
                io.flags(&mut flags);
            }
            Kernel::Norm { kind, residual, bias } => {
                flags.push(match kind {
                    NormVariant::LayerNorm => "LAYER_NORM",
                    NormVariant::RmsNorm => "RMS_NORM",
                    NormVariant::L2 => "L2",
                });
                if residual && kind != NormVariant::L2 {
                    flags.push("RESIDUAL");
                }
                if bias && kind == NormVariant::LayerNorm {
                    flags.push("HAS_BIAS");
                }
            }
            Kernel::Softmax { mask } => {
                if mask {
                    flags.push("MASK");
                }
            }
            Kernel::Attention { bias, rope, append, kv_f16 } => {
                if kv_f16 {
                    flags.push("KV_F16");
                }
                if bias {
                    flags.push("BIAS");
                }
                if append {
                    flags.push("APPEND");
                }
                if let Some(interleaved) = rope {
                    flags.push("ROPE");
                    if interleaved {
                        flags.push("INTERLEAVED");
                    }
                }
            }
            Kernel::Pool(PoolMode::Mean) => flags.push("MEAN"),
            Kernel::Pool(PoolMode::Cls) => flags.push("CLS"),
            Kernel::Unpack => flags.push("UNPACK"),
            Kernel::Rope { interleaved, dst_f16 } => {
                if interleaved {
                    flags.push("INTERLEAVED");
                }
                if dst_f16 {
                    flags.push("DST_F16");
                }
            }
            Kernel::Argmax | Kernel::TakeAlongLast => {}
            Kernel::QuantMatvec { q, io } | Kernel::QuantMatmul { q, io } => {
                flags.push(q.flag());
                io.flags(&mut flags);
                if self.uses_f16(features) {
                    flags.push("F16");
                }
            }
            Kernel::DenseMatvec { b, io } => {
                // Computed in f32 (no F16 flag): these weights are not rounded to begin with.
                flags.push(if b == Elem::F32 { "DENSE_F32" } else { "DENSE_F16" });
                io.flags(&mut flags);
            }
            Kernel::QuantGather { q } => flags.push(q.flag()),
            Kernel::Quantize { src, q } => flags.extend([elem_flag("SRC", src), q.flag()]),
            Kernel::GroupedConv { weight, bias } => {
                flags.push(if weight == Elem::F32 { "W_F32" } else { "W_F16" });
                if bias {
                    flags.push("HAS_BIAS");
                }
            }
            Kernel::Bicubic { antialias } => {
                if antialias {
                    flags.push("ANTIALIAS");
                }
            }
            Kernel::Im2col | Kernel::Concat | Kernel::MaxPool => {}
        }
        flags
    }

    fn uses_f16(&self, features: ShaderFeatures) -> bool {
        // The quantized decode kernel computes in f16 pairs; prefill and lookups stay f32.
        match self {
            Kernel::Matmul { b: Elem::F16, .. } => features.f16,
            Kernel::QuantMatvec { .. } => features.f16 && features.f16_math,
            // These variants exist only where the adapter has shader-f16 (record.rs checks).
            Kernel::Attention { kv_f16, .. } => *kv_f16,
            Kernel::Rope { dst_f16, .. } => *dst_f16,
            _ => false,
        }
    }

    /// Every variant, for validation without a GPU.
    pub fn all() -> Vec<Kernel> {
        let mut all = vec![Kernel::Unary, Kernel::Binary, Kernel::Unpack, Kernel::Argmax, Kernel::TakeAlongLast];
        for kv_f16 in [false, true] {
            all.extend([None, Some(false), Some(true)].map(|rope| Kernel::Attention { bias: false, rope, append: false, kv_f16 }));
            all.extend([false, true].map(|interleaved| Kernel::Attention { bias: false, rope: Some(interleaved), append: true, kv_f16 }));
            all.push(Kernel::Attention { bias: true, rope: None, append: false, kv_f16 });
            all.extend([false, true].map(|interleaved| Kernel::Rope { interleaved, dst_f16: kv_f16 }));
        }
        for src in [Elem::F32, Elem::F16, Elem::BF16] {
            for dst in [Elem::F32, Elem::F16] {
                all.push(Kernel::Copy { src, dst });
            }
        }
        all.push(Kernel::Copy { src: Elem::U32, dst: Elem::U32 });
        for table in [Elem::F32, Elem::F16] {
            all.push(Kernel::Gather { table });
        }
        for b in [Elem::F32, Elem::F16] {
            all.extend(MatmulIo::all_decode().map(|io| Kernel::Matmul { b, io }));
            all.extend(MatmulIo::all_decode().map(|io| Kernel::DenseMatvec { b, io }));
        }
        for residual in [false, true] {
            for bias in [false, true] {
                all.push(Kernel::Norm { kind: NormVariant::LayerNorm, residual, bias });
            }
            all.push(Kernel::Norm { kind: NormVariant::RmsNorm, residual, bias: false });
        }
        all.push(Kernel::Norm { kind: NormVariant::L2, residual: false, bias: false });
        for mask in [false, true] {
            all.push(Kernel::Softmax { mask });
        }
        all.extend([Kernel::Pool(PoolMode::Mean), Kernel::Pool(PoolMode::Cls)]);
        for q in Quant::ALL {
            all.extend(MatmulIo::all_decode().map(|io| Kernel::QuantMatvec { q, io }));
            all.extend(MatmulIo::all().map(|io| Kernel::QuantMatmul { q, io }));
            all.push(Kernel::QuantGather { q });
        }
        for src in [Elem::F32, Elem::F16, Elem::BF16] {
            for q in Quant::QUANTIZABLE {
                all.push(Kernel::Quantize { src, q });
            }
        }
        all.extend([
            Kernel::Im2col,
            Kernel::Concat,
            Kernel::MaxPool,
            Kernel::Bicubic { antialias: false },
            Kernel::Bicubic { antialias: true },
        ]);
        for weight in [Elem::F32, Elem::F16] {
            for bias in [false, true] {
                all.push(Kernel::GroupedConv { weight, bias });
            }
        }
        all
    }
}

/// A kernel's file (name and text), its read-only storage bindings (after the uniform at 0,
/// before the output), its workgroup size and its uniform parameters.
#[derive(Clone, Copy, Debug)]
pub struct KernelSpec {
    pub file: &'static str,
    pub source: &'static str,
    pub inputs: usize,
    pub workgroup: u32,
    pub params: ParamsDef,
}

impl MatmulIo {
    /// A, B, then bias, residual and the norm's weight when present (the gate is a view of A's
    /// buffer).
    fn inputs(self) -> usize {
        2 + self.bias as usize + self.residual as usize + self.norm as usize
    }

    /// The variants of the tiled kernels (no norm).
    fn all() -> impl Iterator<Item = MatmulIo> {
        let gates = [None, Some(GateAct::Silu), Some(GateAct::GeluTanh)];
        (0..12).map(move |i| MatmulIo { bias: i & 1 != 0, residual: i & 2 != 0, gate: gates[i / 4], norm: false })
    }

    /// Those of the decode kernels: the tiled ones' and a folded norm, with or without bias.
    fn all_decode() -> impl Iterator<Item = MatmulIo> {
        MatmulIo::all().chain([false, true].map(|bias| MatmulIo { bias, norm: true, ..Default::default() }))
    }

    /// The flags of matmul_io.wgsl.
    fn flags(self, flags: &mut Vec<&'static str>) {
        let gate = [(self.gate.is_some(), "GATED"), (self.gate == Some(GateAct::GeluTanh), "GATE_GELU")];
        for (on, flag) in [(self.bias, "HAS_BIAS"), (self.residual, "HAS_RESIDUAL"), (self.norm, "NORM")].into_iter().chain(gate) {
            if on {
                flags.push(flag);
            }
        }
    }
}

impl PipelineKey {
    /// The WGSL text of this variant.
    pub fn source(&self, flavor: Flavor) -> Result<String> {
        let mut out = String::new();
        if self.kernel.uses_f16(self.features) {
            out.push_str("enable f16;\n");
        }
        if self.features.subgroups && flavor == Flavor::Browser {
            out.push_str("enable subgroups;\n");
        }
        out.push_str(&format!("const WG: u32 = {}u;\n", self.kernel.workgroup_size()));
        for op in UnaryOp::ALL {
            out.push_str(&format!("const OP_{}: u32 = {}u;\n", screaming_snake(&format!("{op:?}")), op as u32));
        }
        out.push_str(&format!("const OP_NONE: u32 = {}u;\n", UnaryOp::ALL.len()));
        out.push_str(&self.kernel.params().wgsl());
        let flags = self.kernel.flags(self.features);
        let spec = self.kernel.spec();
        let mut included = Vec::new();
        expand((spec.file, spec.source), &flags, &mut included, &mut out)?;
        Ok(out)
    }
}

fn include(name: &str) -> Result<(&'static str, &'static str)> {
    INCLUDES.iter().find(|(n, _)| *n == name).copied().ok_or_else(|| Error::Gpu(format!("shader `{name}` is not in INCLUDES")))
}

/// `GeluTanh` to `GELU_TANH`.
fn screaming_snake(name: &str) -> String {
    let mut out = String::new();
    for (i, ch) in name.chars().enumerate() {
        if ch.is_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(ch.to_ascii_uppercase());
    }
    out
}

fn eval(expr: &str, flags: &[&str]) -> bool {
    expr.split("||").any(|conj| {
        conj.split("&&").all(|term| {
            let term = term.trim();
            match term.strip_prefix('!') {
                Some(name) => !flags.contains(&name.trim()),
                None => flags.contains(&term),
            }
        })
    })
}

/// One open `#if`: whether its enclosing block is live, whether a branch was taken, whether the
/// current branch is live.
struct Cond {
    parent_live: bool,
    taken: bool,
    live: bool,
}

fn expand((file, text): (&str, &'static str), flags: &[&str], included: &mut Vec<String>, out: &mut String) -> Result<()> {
    if included.iter().any(|f| f == file) {
        return Ok(());
    }
    included.push(file.to_string());
    let mut stack: Vec<Cond> = Vec::new();
    let live = |stack: &[Cond]| stack.last().is_none_or(|c| c.live);
    for (n, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        let bad = |what: &str| Error::Gpu(format!("{file}:{}: {what}", n + 1));
        if let Some(expr) = trimmed.strip_prefix("#if ") {
            let parent_live = live(&stack);
            let value = parent_live && eval(expr, flags);
            stack.push(Cond { parent_live, taken: value, live: value });
        } else if let Some(expr) = trimmed.strip_prefix("#elif ") {
            let c = stack.last_mut().ok_or_else(|| bad("#elif without #if"))?;
            let value = c.parent_live && !c.taken && eval(expr, flags);
            c.taken |= value;
            c.live = value;
        } else if trimmed.starts_with("#else") {
            let c = stack.last_mut().ok_or_else(|| bad("#else without #if"))?;
            c.live = c.parent_live && !c.taken;
            c.taken = true;
        } else if trimmed.starts_with("#endif") {
            stack.pop().ok_or_else(|| bad("#endif without #if"))?;
        } else if let Some(rest) = trimmed.strip_prefix("#include ") {
            if live(&stack) {
                expand(include(rest.trim().trim_matches('"'))?, flags, included, out)?;
            }
        } else if trimmed.starts_with('#') {
            return Err(bad("unknown directive"));
        } else if live(&stack) {
            out.push_str(line);
            out.push('\n');
        }
    }
    if !stack.is_empty() {
        return Err(Error::Gpu(format!("{file}: unterminated #if")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditionals_nest_and_choose_one_branch() {
        let flags = ["A", "C"];
        assert!(eval("A", &flags) && eval("!B", &flags) && eval("A && C", &flags) && eval("B || C", &flags));
        assert!(!eval("A && B", &flags) && !eval("!A || B", &flags));
    }
}
