//! Layers shared by the model files. Each holds its weights (already on the device) and has a
//! `forward`; a linear layer dispatches on its weight's dtype inside the matmul op, so model code
//! never changes for f16 (or, later, quantized) weights.

use crate::ops::{Activation, UnaryOp};
use crate::weights::Weights;
use crate::{Error, Result, Tensor};

/// An activation by its transformers name (`hidden_act`, `pooler_hidden_act`, ...).
pub fn activation(name: &str) -> Result<Activation> {
    Ok(Activation::Unary(match name {
        "gelu" => UnaryOp::Gelu,
        "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => UnaryOp::GeluTanh,
        "relu" => UnaryOp::Relu,
        "silu" | "swish" => UnaryOp::Silu,
        "tanh" => UnaryOp::Tanh,
        "linear" | "identity" => return Ok(Activation::None),
        other => return Err(Error::Unsupported(format!("activation `{other}`"))),
    }))
}

pub struct Linear {
    /// [out, in], as Hugging Face stores it.
    pub weight: Tensor,
    pub bias: Option<Tensor>,
}

impl Linear {
    /// `{prefix}.weight` [out, in] and, when `bias`, `{prefix}.bias` [out].
    pub fn load(vb: &Weights, in_dim: usize, out_dim: usize, bias: bool) -> Result<Linear> {
        let weight = vb.get("weight", &[out_dim, in_dim])?;
        let bias = if bias { Some(vb.get_f32("bias", &[out_dim])?) } else { None };
        Ok(Linear { weight, bias })
    }

    /// Several projections of the same input fused into one (q, k and v): one matmul instead of
    /// three. Their outputs are consecutive column ranges of the result.
    pub fn load_fused(vbs: &[Weights], in_dim: usize, out_dims: &[usize], bias: bool) -> Result<Linear> {
        let names: Vec<String> = vbs.iter().map(|vb| vb.full_name("weight")).collect();
        let bias_names: Vec<String> = vbs.iter().map(|vb| vb.full_name("bias")).collect();
        let root = vbs[0].pp_root();
        let weight_dims: Vec<Vec<usize>> = out_dims.iter().map(|&o| vec![o, in_dim]).collect();
        let bias_dims: Vec<Vec<usize>> = out_dims.iter().map(|&o| vec![o]).collect();
        fn as_refs(v: &[String]) -> Vec<&str> {
            v.iter().map(String::as_str).collect()
        }
        fn dims_refs(v: &[Vec<usize>]) -> Vec<&[usize]> {
            v.iter().map(Vec::as_slice).collect()
        }
        let weight = root.get_concat(&as_refs(&names), &dims_refs(&weight_dims), false)?;
        let bias = if bias { Some(root.get_concat(&as_refs(&bias_names), &dims_refs(&bias_dims), true)?) } else { None };
        Ok(Linear { weight, bias })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.linear(&self.weight, self.bias.as_ref(), Activation::None)
    }

    /// `residual` + this layer of `x`, in one op (a residual block's output projection).
    pub fn forward_add(&self, x: &Tensor, residual: &Tensor) -> Result<Tensor> {
        x.linear_add(&self.weight, self.bias.as_ref(), residual)
    }

    /// `residual` + this layer of silu(`gate`) * `up`: a SwiGLU block's down projection, one op
    /// when gate and up are halves of one fused projection's output.
    pub fn forward_silu_mul_add(&self, gate: &Tensor, up: &Tensor, residual: &Tensor) -> Result<Tensor> {
        gate.silu_mul_linear(up, &self.weight, self.bias.as_ref(), Some(residual))
    }

    pub fn forward_act(&self, x: &Tensor, act: Activation) -> Result<Tensor> {
        x.linear(&self.weight, self.bias.as_ref(), act)
    }
}

pub struct LayerNorm {
    pub weight: Tensor,
    pub bias: Option<Tensor>,
    pub eps: f32,
}

impl LayerNorm {
    /// `{prefix}.weight` and `{prefix}.bias`; old checkpoints name them `gamma` and `beta`.
    pub fn load(vb: &Weights, dim: usize, eps: f32) -> Result<LayerNorm> {
        let (w, b) = if vb.contains("gamma") { ("gamma", "beta") } else { ("weight", "bias") };
        Ok(LayerNorm { weight: vb.get_f32(w, &[dim])?, bias: vb.get_opt_f32(b, &[dim])?, eps })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.layer_norm(None, &self.weight, self.bias.as_ref(), self.eps)
    }

    /// LayerNorm(x + residual), fused.
    pub fn forward_residual(&self, x: &Tensor, residual: &Tensor) -> Result<Tensor> {
        x.layer_norm(Some(residual), &self.weight, self.bias.as_ref(), self.eps)
    }
}
