//! WGSL sources (the `.wgsl` files under `shaders/`, embedded at build time), the typed key that
//! names each kernel variant, and the small preprocessor that turns a key into WGSL text.
//!
//! Preprocessor: `#include "file.wgsl"` (each file once), `#if EXPR` / `#elif EXPR` / `#else` /
//! `#endif` where EXPR is flags joined by `&&` or `||` (`!FLAG` negates). A prelude with the
//! `enable` directives and constants of the variant is prepended.

use crate::gpu::params::{KernelParams, ParamsDef};
use crate::ops::PoolMode;
use crate::{Error, Result};

const SOURCES: &[(&str, &str)] = &[
    ("common.wgsl", include_str!("../../../shaders/common.wgsl")),
    ("reduce.wgsl", include_str!("../../../shaders/reduce.wgsl")),
    ("copy.wgsl", include_str!("../../../shaders/copy.wgsl")),
    ("gather.wgsl", include_str!("../../../shaders/gather.wgsl")),
    ("elementwise.wgsl", include_str!("../../../shaders/elementwise.wgsl")),
    ("matmul.wgsl", include_str!("../../../shaders/matmul.wgsl")),
    ("tile.wgsl", include_str!("../../../shaders/tile.wgsl")),
    ("matmul_io.wgsl", include_str!("../../../shaders/matmul_io.wgsl")),
    ("norm.wgsl", include_str!("../../../shaders/norm.wgsl")),
    ("softmax.wgsl", include_str!("../../../shaders/softmax.wgsl")),
    ("attention.wgsl", include_str!("../../../shaders/attention.wgsl")),
    ("pool.wgsl", include_str!("../../../shaders/pool.wgsl")),
    ("rope.wgsl", include_str!("../../../shaders/rope.wgsl")),
    ("argmax.wgsl", include_str!("../../../shaders/argmax.wgsl")),
    ("quant.wgsl", include_str!("../../../shaders/quant.wgsl")),
    ("matvec_quant.wgsl", include_str!("../../../shaders/matvec_quant.wgsl")),
    ("matmul_quant.wgsl", include_str!("../../../shaders/matmul_quant.wgsl")),
    ("gather_quant.wgsl", include_str!("../../../shaders/gather_quant.wgsl")),
    ("take_along.wgsl", include_str!("../../../shaders/take_along.wgsl")),
    ("im2col.wgsl", include_str!("../../../shaders/im2col.wgsl")),
    ("grouped_conv.wgsl", include_str!("../../../shaders/grouped_conv.wgsl")),
    ("concat.wgsl", include_str!("../../../shaders/concat.wgsl")),
    ("bicubic.wgsl", include_str!("../../../shaders/bicubic.wgsl")),
    ("max_pool.wgsl", include_str!("../../../shaders/max_pool.wgsl")),
];

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
    Attention,
    Pool(PoolMode),
    Unpack,
    Rope {
        interleaved: bool,
    },
    Argmax,
    /// Columns picked per row by a shared index: take_along.wgsl.
    TakeAlongLast,
    /// Quantized weights, few activation rows (decoding): matvec_quant.wgsl.
    QuantMatvec {
        q: Quant,
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
/// `residual` of the output's shape added in the epilogue; `gated`, A read as silu(gate) * A from
/// two views of one buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct MatmulIo {
    pub bias: bool,
    pub residual: bool,
    pub gated: bool,
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
    pub fn file(&self) -> &'static str {
        match self {
            Kernel::Copy { .. } => "copy.wgsl",
            Kernel::Gather { .. } => "gather.wgsl",
            Kernel::Unary | Kernel::Binary => "elementwise.wgsl",
            Kernel::Matmul { .. } => "matmul.wgsl",
            Kernel::Norm { .. } => "norm.wgsl",
            Kernel::Softmax { .. } => "softmax.wgsl",
            Kernel::Attention => "attention.wgsl",
            Kernel::Pool(_) | Kernel::Unpack => "pool.wgsl",
            Kernel::Rope { .. } => "rope.wgsl",
            Kernel::Argmax => "argmax.wgsl",
            Kernel::TakeAlongLast => "take_along.wgsl",
            Kernel::QuantMatvec { .. } => "matvec_quant.wgsl",
            Kernel::QuantMatmul { .. } => "matmul_quant.wgsl",
            Kernel::QuantGather { .. } => "gather_quant.wgsl",
            Kernel::Im2col => "im2col.wgsl",
            Kernel::GroupedConv { .. } => "grouped_conv.wgsl",
            Kernel::Concat => "concat.wgsl",
            Kernel::Bicubic { .. } => "bicubic.wgsl",
            Kernel::MaxPool => "max_pool.wgsl",
        }
    }

    /// Read-only storage bindings (after the uniform at 0, before the output).
    pub fn inputs(&self) -> usize {
        match self {
            Kernel::Copy { .. } | Kernel::Unary | Kernel::Argmax => 1,
            Kernel::Gather { .. } | Kernel::Binary | Kernel::Pool(_) | Kernel::Unpack | Kernel::TakeAlongLast => 2,
            Kernel::Matmul { io, .. } | Kernel::QuantMatvec { io, .. } | Kernel::QuantMatmul { io, .. } => {
                2 + io.bias as usize + io.residual as usize
            }
            Kernel::Norm { kind: NormVariant::L2, .. } => 1,
            Kernel::Norm { residual, bias, .. } => 2 + *residual as usize + *bias as usize,
            Kernel::Softmax { mask } => 1 + *mask as usize,
            Kernel::Attention => 5,
            Kernel::Rope { .. } => 3,
            Kernel::QuantGather { .. } => 2,
            Kernel::Im2col | Kernel::Concat | Kernel::Bicubic { .. } | Kernel::MaxPool => 1,
            Kernel::GroupedConv { bias, .. } => 2 + *bias as usize,
        }
    }

    pub fn workgroup_size(&self) -> u32 {
        match self {
            Kernel::Attention => ATTENTION_WG,
            _ => WG,
        }
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
            Kernel::Attention => {}
            Kernel::Pool(PoolMode::Mean) => flags.push("MEAN"),
            Kernel::Pool(PoolMode::Cls) => flags.push("CLS"),
            Kernel::Unpack => flags.push("UNPACK"),
            Kernel::Rope { interleaved } => {
                if interleaved {
                    flags.push("INTERLEAVED");
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
            Kernel::QuantGather { q } => flags.push(q.flag()),
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

    /// The kernel's uniform parameters, whose WGSL declaration the prelude carries (kernels
    /// without one still declare their own `Params`).
    pub fn params(&self) -> Option<ParamsDef> {
        use crate::gpu::record::vision::*;
        Some(match self {
            Kernel::Im2col => Im2colParams::DEF,
            Kernel::GroupedConv { .. } => GroupedConvParams::DEF,
            Kernel::Concat => ConcatParams::DEF,
            Kernel::Bicubic { .. } => BicubicParams::DEF,
            Kernel::MaxPool => MaxPoolParams::DEF,
            _ => return None,
        })
    }

    fn uses_f16(&self, features: ShaderFeatures) -> bool {
        // The quantized decode kernel computes in f16 pairs; prefill and lookups stay f32.
        match self {
            Kernel::Matmul { b: Elem::F16, .. } => features.f16,
            Kernel::QuantMatvec { .. } => features.f16 && features.f16_math,
            _ => false,
        }
    }

    /// Every variant, for validation without a GPU.
    pub fn all() -> Vec<Kernel> {
        let mut all = vec![Kernel::Unary, Kernel::Binary, Kernel::Attention, Kernel::Unpack, Kernel::Argmax, Kernel::TakeAlongLast];
        all.extend([Kernel::Rope { interleaved: false }, Kernel::Rope { interleaved: true }]);
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
            all.extend(MatmulIo::all().map(|io| Kernel::Matmul { b, io }));
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
            for io in MatmulIo::all() {
                all.push(Kernel::QuantMatvec { q, io });
                all.push(Kernel::QuantMatmul { q, io });
            }
            all.push(Kernel::QuantGather { q });
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

impl MatmulIo {
    fn all() -> impl Iterator<Item = MatmulIo> {
        (0..8).map(|i| MatmulIo { bias: i & 1 != 0, residual: i & 2 != 0, gated: i & 4 != 0 })
    }

    /// The flags of matmul_io.wgsl.
    fn flags(self, flags: &mut Vec<&'static str>) {
        for (on, flag) in [(self.bias, "HAS_BIAS"), (self.residual, "HAS_RESIDUAL"), (self.gated, "GATED")] {
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
        if let Some(params) = self.kernel.params() {
            out.push_str(&params.wgsl());
        }
        let flags = self.kernel.flags(self.features);
        let mut included = Vec::new();
        expand(self.kernel.file(), &flags, &mut included, &mut out)?;
        Ok(out)
    }
}

fn source(name: &str) -> Result<&'static str> {
    SOURCES.iter().find(|(n, _)| *n == name).map(|(_, s)| *s).ok_or_else(|| Error::Gpu(format!("shader `{name}` is not embedded")))
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

fn expand(file: &str, flags: &[&str], included: &mut Vec<String>, out: &mut String) -> Result<()> {
    if included.iter().any(|f| f == file) {
        return Ok(());
    }
    included.push(file.to_string());
    let mut stack: Vec<Cond> = Vec::new();
    let live = |stack: &[Cond]| stack.last().is_none_or(|c| c.live);
    for (n, line) in source(file)?.lines().enumerate() {
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
                expand(rest.trim().trim_matches('"'), flags, included, out)?;
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
