//! Layers shared by the model files. Each holds its weights (already on the device) and has a
//! `forward`; a linear layer dispatches on its weight's dtype inside the matmul op, so model code
//! never changes for f16 (or, later, quantized) weights.

use crate::ops::{Activation, Conv2dParams, UnaryOp};
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
        "sigmoid" => UnaryOp::Sigmoid,
        "quick_gelu" => UnaryOp::QuickGelu,
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
        let weight = vb.get_linear("weight", &[out_dim, in_dim])?;
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

    /// This layer of RMSNorm(`x`) with `norm_weight`: one op when decoding on the GPU (the
    /// matmul computes the norm's scale itself; `Tensor::rms_norm_linear`).
    pub fn forward_rms_normed(&self, x: &Tensor, norm_weight: &Tensor, eps: f32) -> Result<Tensor> {
        x.rms_norm_linear(norm_weight, eps, &self.weight, self.bias.as_ref())
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

/// PyTorch's `nn.Conv2d`: weight [Cout, Cin/groups, KH, KW] (f32 or f16 as the dtype policy
/// says), bias [Cout] f32.
pub struct Conv2d {
    pub weight: Tensor,
    pub bias: Option<Tensor>,
    pub params: Conv2dParams,
}

impl Conv2d {
    /// `{prefix}.weight` (its stored shape, which must be 4-D) and `{prefix}.bias` if the
    /// checkpoint has it.
    pub fn load(vb: &Weights, params: Conv2dParams) -> Result<Conv2d> {
        let dims = vb.dims("weight").unwrap_or_default();
        if dims.len() != 4 {
            // `get` names the tensor and says what is wrong (missing, or its shape).
            return Err(vb.get("weight", &[0, 0, 0, 0]).err().unwrap_or_else(|| Error::weight(vb.full_name("weight"), "is not 4-D")));
        }
        let weight = vb.get("weight", &dims)?;
        let bias = vb.get_opt_f32("bias", &[dims[0]])?;
        Ok(Conv2d { weight, bias, params })
    }

    /// The convolution at `conv` followed by the frozen batch norm at `bn` (ResNet's, DETR's),
    /// folded into one convolution.
    pub fn load_with_batch_norm(conv: &Weights, bn: &Weights, params: Conv2dParams, eps: f32) -> Result<Conv2d> {
        let c = Conv2d::load(conv, params)?;
        let norm = BatchNorm2d::load(bn, c.weight.dims()[0], eps)?;
        c.fold_batch_norm(&norm)
    }

    /// This convolution followed by `bn` as one convolution: with s = gamma / sqrt(var + eps),
    /// weight * s (per output channel) and (bias - mean) * s + beta. Computed on the device,
    /// lazily: the folded tensors are made by the first forward pass that reads them and kept.
    pub fn fold_batch_norm(self, bn: &BatchNorm2d) -> Result<Conv2d> {
        let cout = self.weight.dims()[0];
        if bn.weight.dims() != [cout] {
            return Err(Error::shape(
                "fold_batch_norm",
                format!("batch norm of {:?} after a convolution to {cout} channels", bn.weight.dims()),
            ));
        }
        let (scale, shift) = bn.scale_shift()?;
        let dtype = self.weight.dtype();
        let weight = self.weight.to_dtype(crate::DType::F32)?.mul(&scale.reshape(&[cout, 1, 1, 1])?)?.to_dtype(dtype)?;
        let bias = match &self.bias {
            Some(b) => b.mul(&scale)?.add(&shift)?,
            None => shift,
        };
        Ok(Conv2d { weight, bias: Some(bias), params: self.params })
    }

    /// [N, Cin, H, W] to [N, Cout, Ho, Wo] (see `Tensor::conv2d` for the result's strides).
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.conv2d(&self.weight, self.bias.as_ref(), self.params)
    }

    /// `forward` then `act`, fused where the kernel allows it.
    pub fn forward_act(&self, x: &Tensor, act: Activation) -> Result<Tensor> {
        x.conv2d_act(&self.weight, self.bias.as_ref(), self.params, act)
    }
}

/// A batch norm with frozen statistics (inference): (x - running_mean) / sqrt(running_var + eps)
/// * weight + bias per channel of [N, C, H, W].
pub struct BatchNorm2d {
    pub weight: Tensor,
    pub bias: Tensor,
    pub running_mean: Tensor,
    pub running_var: Tensor,
    pub eps: f32,
}

impl BatchNorm2d {
    /// `{prefix}.weight`, `.bias`, `.running_mean`, `.running_var`, each [channels].
    pub fn load(vb: &Weights, channels: usize, eps: f32) -> Result<BatchNorm2d> {
        let get = |name| vb.get_f32(name, &[channels]);
        Ok(BatchNorm2d {
            weight: get("weight")?,
            bias: get("bias")?,
            running_mean: get("running_mean")?,
            running_var: get("running_var")?,
            eps,
        })
    }

    /// (s, t) with s = weight / sqrt(running_var + eps) and t = bias - running_mean * s, so the
    /// norm is x * s + t.
    pub fn scale_shift(&self) -> Result<(Tensor, Tensor)> {
        let eps = Tensor::from_f32(&[self.eps], &[1], self.weight.device())?;
        let scale = self.running_var.add(&eps)?.unary(UnaryOp::Rsqrt)?.mul(&self.weight)?;
        let shift = self.bias.binary(&self.running_mean.mul(&scale)?, crate::BinaryOp::Sub)?;
        Ok((scale, shift))
    }

    /// The norm on its own (when no convolution precedes it): x * s + t per channel.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let c = self.weight.numel();
        let (scale, shift) = self.scale_shift()?;
        x.mul(&scale.reshape(&[c, 1, 1])?)?.add(&shift.reshape(&[c, 1, 1])?)
    }
}
