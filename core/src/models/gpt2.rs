//! GPT-2, as in transformers' modeling_gpt2.py: learned positions, pre-norm blocks of causal
//! attention and a tanh-GELU MLP. Its Conv1D weights are stored [in, out] (transposed relative to
//! nn.Linear), so they multiply as stored.

use serde::Deserialize;

use super::{DecoderModel, KvCache};
use crate::nn::LayerNorm;
use crate::ops::{Activation, UnaryOp};
use crate::weights::Weights;
use crate::{DType, Device, Error, Result, Tensor};

#[derive(Clone, Debug, Deserialize)]
pub struct Gpt2Config {
    pub vocab_size: usize,
    pub n_embd: usize,
    pub n_layer: usize,
    pub n_head: usize,
    pub n_positions: usize,
    #[serde(default)]
    pub n_inner: Option<usize>,
    #[serde(default = "default_eps")]
    pub layer_norm_epsilon: f64,
    #[serde(default = "default_act")]
    pub activation_function: String,
}

fn default_eps() -> f64 {
    1e-5
}
fn default_act() -> String {
    "gelu_new".into()
}

/// A Conv1D: x [T, in] times weight [in, out] plus bias.
struct Conv1D {
    weight: Tensor,
    bias: Tensor,
}

impl Conv1D {
    fn load(vb: &Weights, n_in: usize, n_out: usize) -> Result<Conv1D> {
        Ok(Conv1D { weight: vb.get_linear_transposed("weight", &[n_in, n_out])?, bias: vb.get_f32("bias", &[n_out])? })
    }
    fn forward(&self, x: &Tensor, act: Activation) -> Result<Tensor> {
        x.matmul_ext(&self.weight, Some(&self.bias), act)
    }
    /// `residual` + this layer of `x`, in one op.
    fn forward_add(&self, x: &Tensor, residual: &Tensor) -> Result<Tensor> {
        x.matmul_add(&self.weight, Some(&self.bias), residual)
    }
}

struct Block {
    ln_1: LayerNorm,
    c_attn: Conv1D, // [H, 3H]
    attn_proj: Conv1D,
    ln_2: LayerNorm,
    c_fc: Conv1D, // [H, I]
    mlp_proj: Conv1D,
}

pub struct Gpt2 {
    config: Gpt2Config,
    device: Device,
    wte: Tensor, // [V, H], also the output projection
    wpe: Tensor, // [P, H]
    blocks: Vec<Block>,
    ln_f: LayerNorm,
    act: Activation,
    /// The KV cache's dtype (`Weights::kv_cache_dtype`).
    kv_dtype: DType,
}

impl Gpt2 {
    pub fn load(config: Gpt2Config, vb: &Weights) -> Result<Gpt2> {
        let act = match config.activation_function.as_str() {
            "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Activation::Unary(UnaryOp::GeluTanh),
            "gelu" => Activation::Unary(UnaryOp::Gelu),
            "relu" => Activation::Unary(UnaryOp::Relu),
            other => return Err(Error::Unsupported(format!("GPT-2 activation `{other}`"))),
        };
        let (h, eps) = (config.n_embd, config.layer_norm_epsilon as f32);
        if config.n_head == 0 || h % config.n_head != 0 {
            return Err(Error::Config(format!("n_embd {h} is not a multiple of n_head {}", config.n_head)));
        }
        let inner = config.n_inner.unwrap_or(4 * h);
        // GPT2LMHeadModel prefixes the body with `transformer.`; GPT2Model does not.
        let vb = if vb.contains("transformer.wte.weight") { vb.pp("transformer") } else { vb.clone() };
        let mut blocks = Vec::with_capacity(config.n_layer);
        for l in 0..config.n_layer {
            let b = vb.pp(format!("h.{l}"));
            blocks.push(Block {
                ln_1: LayerNorm::load(&b.pp("ln_1"), h, eps)?,
                c_attn: Conv1D::load(&b.pp("attn.c_attn"), h, 3 * h)?,
                attn_proj: Conv1D::load(&b.pp("attn.c_proj"), h, h)?,
                ln_2: LayerNorm::load(&b.pp("ln_2"), h, eps)?,
                c_fc: Conv1D::load(&b.pp("mlp.c_fc"), h, inner)?,
                mlp_proj: Conv1D::load(&b.pp("mlp.c_proj"), inner, h)?,
            });
        }
        Ok(Gpt2 {
            kv_dtype: vb.kv_cache_dtype(),
            wte: vb.get("wte.weight", &[config.vocab_size, h])?,
            wpe: vb.get("wpe.weight", &[config.n_positions, h])?,
            ln_f: LayerNorm::load(&vb.pp("ln_f"), h, eps)?,
            device: vb.device().clone(),
            config,
            blocks,
            act,
        })
    }
}

impl DecoderModel for Gpt2 {
    fn vocab_size(&self) -> usize {
        self.config.vocab_size
    }

    fn max_context(&self) -> usize {
        self.config.n_positions
    }

    fn new_cache(&self, max_len: usize) -> Result<KvCache> {
        let heads = self.config.n_head;
        KvCache::new(self.config.n_layer, &[max_len, heads, self.config.n_embd / heads], self.kv_dtype, &self.device)
    }

    fn forward(&self, tokens: &[u32], cache: &mut KvCache, all_logits: bool) -> Result<Tensor> {
        let c = &self.config;
        let (t, pos) = (tokens.len(), cache.len());
        let (h, heads) = (c.n_embd, c.n_head);
        let d = h / heads;
        cache.check_room(t)?;
        if pos + t > c.n_positions {
            return Err(Error::Input(format!("{} tokens exceed GPT-2's {} positions", pos + t, c.n_positions)));
        }
        if let Some(bad) = tokens.iter().find(|&&id| id as usize >= c.vocab_size) {
            return Err(Error::Input(format!("token id {bad} is outside the vocabulary of {}", c.vocab_size)));
        }
        let dev = &self.device;
        let ids = Tensor::from_u32(tokens, &[t], dev)?;
        let positions: Vec<u32> = (pos..pos + t).map(|p| p as u32).collect();
        let positions = Tensor::from_u32(&positions, &[t], dev)?;
        let q_offsets = Tensor::from_u32(&[0, t as u32], &[2], dev)?;
        let kv_offsets = Tensor::from_u32(&[0, (pos + t) as u32], &[2], dev)?;
        let scale = 1.0 / (d as f32).sqrt();

        let mut x = self.wte.gather_rows(&ids)?.add(&self.wpe.gather_rows(&positions)?)?; // [T, H]
        for (l, b) in self.blocks.iter().enumerate() {
            let qkv = b.c_attn.forward(&b.ln_1.forward(&x)?, Activation::None)?; // [T, 3H]
            let q = qkv.narrow(1, 0, h)?.reshape(&[t, heads, d])?;
            // k then v: adjacent, as the cache stores them.
            let (keys, values) = cache.append(l, &qkv.narrow(1, h, 2 * h)?.reshape(&[t, 2 * heads, d])?)?;
            let attended = q.attention_kv(&keys, &values, &q_offsets, &kv_offsets, scale, true)?.reshape(&[t, h])?;
            x = b.attn_proj.forward_add(&attended, &x)?;
            let hidden = b.c_fc.forward(&b.ln_2.forward(&x)?, self.act)?;
            x = b.mlp_proj.forward_add(&hidden, &x)?;
        }
        cache.advance(t);
        let x = if all_logits { x } else { x.narrow(0, t - 1, 1)? };
        self.ln_f.forward(&x)?.linear(&self.wte, None, Activation::None)
    }
}
