//! Gemma 3's text decoder (`gemma3_text`, `Gemma3ForCausalLM`), as in transformers'
//! modeling_gemma3.py: embeddings scaled by sqrt(hidden), RMS norms that scale by (1 + weight),
//! per-head q/k norms, a norm before and after both the attention and the feed-forward block,
//! a tanh-GELU gated feed-forward (GeGLU), sliding-window layers interleaved with global ones,
//! each kind with its own RoPE base, queries scaled by `query_pre_attn_scalar`^-1/2, and the
//! final logits soft-capped when configured. The LM head is the embedding.

use serde::Deserialize;

use super::llama::{RopeScaling, attention_window, norm_qk_heads, rope_inv_freq};
use super::{DecoderModel, KvCache};
use crate::nn::Linear;
use crate::ops::{BinaryOp, GateAct, UnaryOp};
use crate::weights::Weights;
use crate::{DType, Device, Error, Result, Tensor};

#[derive(Clone, Debug, Deserialize)]
pub struct Gemma3Config {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    #[serde(default)]
    pub num_key_value_heads: Option<usize>,
    #[serde(default = "default_head_dim")]
    pub head_dim: usize,
    #[serde(default = "default_eps")]
    pub rms_norm_eps: f64,
    #[serde(default)]
    pub hidden_activation: Option<String>,
    pub max_position_embeddings: usize,
    #[serde(default = "default_query_scalar")]
    pub query_pre_attn_scalar: f64,
    #[serde(default = "default_sliding_window")]
    pub sliding_window: Option<usize>,
    /// "sliding_attention" or "full_attention" per layer; without it, every
    /// `sliding_window_pattern`-th layer is global (transformers' default: 6).
    #[serde(default)]
    pub layer_types: Option<Vec<String>>,
    #[serde(default)]
    pub sliding_window_pattern: Option<usize>,
    /// The global layers' RoPE base and scaling (Hub configs of transformers 4).
    #[serde(default)]
    pub rope_theta: Option<f64>,
    #[serde(default)]
    pub rope_scaling: Option<RopeScaling>,
    /// The sliding layers' RoPE base (Hub configs of transformers 4).
    #[serde(default)]
    pub rope_local_base_freq: Option<f64>,
    /// transformers 5: one set of RoPE parameters per layer type.
    #[serde(default)]
    pub rope_parameters: Option<RopeByLayerType>,
    #[serde(default)]
    pub final_logit_softcapping: Option<f64>,
    #[serde(default)]
    pub attn_logit_softcapping: Option<f64>,
    #[serde(default)]
    pub use_bidirectional_attention: Option<bool>,
    #[serde(default)]
    pub attention_bias: bool,
    #[serde(default = "default_true")]
    pub tie_word_embeddings: bool,
    /// GGUF files store the norms' weights with the 1 already added (llama.cpp's converter).
    #[serde(skip)]
    pub norms_include_one: bool,
}

#[derive(Clone, Debug, Deserialize)]
pub struct RopeByLayerType {
    #[serde(default)]
    pub full_attention: Option<RopeScaling>,
    #[serde(default)]
    pub sliding_attention: Option<RopeScaling>,
}

fn default_head_dim() -> usize {
    256
}
fn default_eps() -> f64 {
    1e-6
}
fn default_query_scalar() -> f64 {
    256.0
}
fn default_sliding_window() -> Option<usize> {
    Some(4096)
}
fn default_true() -> bool {
    true
}

impl Gemma3Config {
    fn kv_heads(&self) -> usize {
        self.num_key_value_heads.unwrap_or(self.num_attention_heads)
    }

    /// Each layer's kind, as transformers' config fills it in.
    fn layer_types(&self) -> Vec<String> {
        match &self.layer_types {
            Some(types) => types.clone(),
            None => {
                let pattern = self.sliding_window_pattern.unwrap_or(6).max(1);
                (0..self.num_hidden_layers)
                    .map(|i| if (i + 1) % pattern != 0 { "sliding_attention" } else { "full_attention" }.to_string())
                    .collect()
            }
        }
    }

    /// The rotary frequencies of (global, sliding) layers, from whichever spelling the config
    /// uses (transformers' `convert_rope_params_to_dict`): scaling applies to global layers only.
    fn inv_freqs(&self) -> Result<(Vec<f32>, Vec<f32>)> {
        let per_type = self.rope_parameters.as_ref();
        let global = per_type.and_then(|p| p.full_attention.as_ref()).or(self.rope_scaling.as_ref());
        let local = per_type.and_then(|p| p.sliding_attention.as_ref());
        let global_theta = global.and_then(|g| g.rope_theta).or(self.rope_theta).unwrap_or(1_000_000.0);
        let local_theta = local.and_then(|l| l.rope_theta).or(self.rope_local_base_freq).unwrap_or(10_000.0);
        Ok((rope_inv_freq(self.head_dim, global_theta, None, global)?, rope_inv_freq(self.head_dim, local_theta, None, local)?))
    }
}

struct Layer {
    input_norm: Tensor,     // [H]
    qkv: Linear,            // [(Hq + 2 Hkv) D, H]
    q_norm: Tensor,         // [D]
    k_norm: Tensor,         // [D]
    o: Linear,              // [H, Hq D]
    post_attn_norm: Tensor, // [H]
    pre_ff_norm: Tensor,    // [H]
    gate_up: Linear,        // [2 I, H]: gate then up
    down: Linear,           // [H, I]
    post_ff_norm: Tensor,   // [H]
    /// `Some` on sliding layers (`attention_kv_window`'s window).
    window: Option<usize>,
}

pub struct Gemma3 {
    config: Gemma3Config,
    device: Device,
    /// The KV cache's dtype (`Weights::kv_cache_dtype`).
    kv_dtype: DType,
    embed: Tensor,       // [V, H], also the LM head
    embed_scale: Tensor, // [1]: sqrt(H) in f32, as transformers rounds it
    layers: Vec<Layer>,
    norm: Tensor,            // [H]
    global_freq: Tensor,     // [D/2]
    local_freq: Tensor,      // [D/2]
    softcap: Option<Tensor>, // [1]
}

impl Gemma3 {
    pub fn load(config: Gemma3Config, vb: &Weights) -> Result<Gemma3> {
        let act = config.hidden_activation.as_deref().unwrap_or("gelu_pytorch_tanh");
        if !matches!(act, "gelu_pytorch_tanh" | "gelu_new" | "gelu_fast") {
            return Err(Error::Unsupported(format!("hidden_activation `{act}` in a Gemma 3 model (tanh GELU is)")));
        }
        if config.attn_logit_softcapping.is_some() {
            return Err(Error::Unsupported("attn_logit_softcapping in a Gemma 3 model".into()));
        }
        if config.use_bidirectional_attention == Some(true) {
            return Err(Error::Unsupported("use_bidirectional_attention in a Gemma 3 model (a text decoder is causal)".into()));
        }
        let (h, d, hq, hkv, i) =
            (config.hidden_size, config.head_dim, config.num_attention_heads, config.kv_heads(), config.intermediate_size);
        if hq == 0 || hkv == 0 || hq % hkv != 0 {
            return Err(Error::Config(format!("{hq} attention heads cannot share {hkv} KV heads")));
        }
        let types = config.layer_types();
        if types.len() < config.num_hidden_layers {
            return Err(Error::Config(format!("{} layer_types for {} layers", types.len(), config.num_hidden_layers)));
        }
        let dev = vb.device().clone();
        // Gemma's norms scale by (1 + weight); GGUF files already hold 1 + weight.
        let one = Tensor::from_f32(&[1.0], &[1], &dev)?;
        let norm = |w: &Weights, name: &str, dim: usize| -> Result<Tensor> {
            let weight = w.get_f32(name, &[dim])?;
            if config.norms_include_one { Ok(weight) } else { weight.add(&one) }
        };
        let m = vb.pp("model");
        let embed = m.get("embed_tokens.weight", &[config.vocab_size, h])?;
        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        for l in 0..config.num_hidden_layers {
            let lb = m.pp(format!("layers.{l}"));
            let sa = lb.pp("self_attn");
            let mlp = lb.pp("mlp");
            let bias = config.attention_bias;
            layers.push(Layer {
                input_norm: norm(&lb, "input_layernorm.weight", h)?,
                qkv: Linear::load_fused(&[sa.pp("q_proj"), sa.pp("k_proj"), sa.pp("v_proj")], h, &[hq * d, hkv * d, hkv * d], bias)?,
                q_norm: norm(&sa, "q_norm.weight", d)?,
                k_norm: norm(&sa, "k_norm.weight", d)?,
                o: Linear::load(&sa.pp("o_proj"), hq * d, h, bias)?,
                post_attn_norm: norm(&lb, "post_attention_layernorm.weight", h)?,
                pre_ff_norm: norm(&lb, "pre_feedforward_layernorm.weight", h)?,
                gate_up: Linear::load_fused(&[mlp.pp("gate_proj"), mlp.pp("up_proj")], h, &[i, i], false)?,
                down: Linear::load(&mlp.pp("down_proj"), i, h, false)?,
                post_ff_norm: norm(&lb, "post_feedforward_layernorm.weight", h)?,
                window: attention_window(Some(&types[..]), config.sliding_window, l)?,
            });
        }
        let final_norm = norm(&m, "norm.weight", h)?;
        if !config.tie_word_embeddings && vb.contains("lm_head.weight") {
            return Err(Error::Unsupported("an untied LM head in a Gemma 3 model".into()));
        }
        let (global, local) = config.inv_freqs()?;
        let softcap = config.final_logit_softcapping.map(|c| Tensor::from_f32(&[c as f32], &[1], &dev)).transpose()?;
        Ok(Gemma3 {
            kv_dtype: vb.kv_cache_dtype(),
            embed,
            embed_scale: Tensor::from_f32(&[(h as f64).sqrt() as f32], &[1], &dev)?,
            layers,
            norm: final_norm,
            global_freq: Tensor::from_f32(&global, &[global.len()], &dev)?,
            local_freq: Tensor::from_f32(&local, &[local.len()], &dev)?,
            softcap,
            device: dev,
            config,
        })
    }
}

impl DecoderModel for Gemma3 {
    fn vocab_size(&self) -> usize {
        self.config.vocab_size
    }

    fn max_context(&self) -> usize {
        self.config.max_position_embeddings
    }

    fn new_cache(&self, max_len: usize) -> Result<KvCache> {
        let shape = [max_len, self.config.kv_heads(), self.config.head_dim];
        KvCache::new(self.config.num_hidden_layers, &shape, self.kv_dtype, &self.device)
    }

    fn forward(&self, tokens: &[u32], cache: &mut KvCache, all_logits: bool) -> Result<Tensor> {
        let c = &self.config;
        let (t, pos) = (tokens.len(), cache.len());
        let (d, hq, hkv, i) = (c.head_dim, c.num_attention_heads, c.kv_heads(), c.intermediate_size);
        cache.check_room(t)?;
        if let Some(bad) = tokens.iter().find(|&&id| id as usize >= c.vocab_size) {
            return Err(Error::Input(format!("token id {bad} is outside the vocabulary of {}", c.vocab_size)));
        }
        let dev = &self.device;
        let ids = Tensor::from_u32(tokens, &[t], dev)?;
        let positions: Vec<u32> = (pos..pos + t).map(|p| p as u32).collect();
        let positions = Tensor::from_u32(&positions, &[t], dev)?;
        let q_offsets = Tensor::from_u32(&[0, t as u32], &[2], dev)?;
        let kv_offsets = Tensor::from_u32(&[0, (pos + t) as u32], &[2], dev)?;
        let scale = c.query_pre_attn_scalar.powf(-0.5) as f32;
        let eps = c.rms_norm_eps as f32;

        let mut x = self.embed.gather_rows(&ids)?.mul(&self.embed_scale)?; // [T, H]
        for (l, layer) in self.layers.iter().enumerate() {
            let normed = x.rms_norm(&layer.input_norm, eps)?;
            let heads = layer.qkv.forward(&normed)?.reshape(&[t, hq + 2 * hkv, d])?;
            let heads = norm_qk_heads(&heads, hq, hkv, &layer.q_norm, &layer.k_norm, eps)?;
            let freq = if layer.window.is_some() { &self.local_freq } else { &self.global_freq };
            let heads = heads.rope_heads(&positions, freq, false, hq + hkv)?;
            let q = heads.narrow(1, 0, hq)?;
            let (keys, values) = cache.append(l, &heads.narrow(1, hq, 2 * hkv)?)?; // [pos + T, Hkv, D] each
            let attended =
                q.attention_kv_window(&keys, &values, &q_offsets, &kv_offsets, scale, true, layer.window)?.reshape(&[t, hq * d])?;
            x = x.add(&layer.o.forward(&attended)?.rms_norm(&layer.post_attn_norm, eps)?)?;
            let normed = x.rms_norm(&layer.pre_ff_norm, eps)?;
            let gate_up = layer.gate_up.forward(&normed)?; // [T, 2 I]
            let ff = gate_up.narrow(1, 0, i)?.gated_linear(GateAct::GeluTanh, &gate_up.narrow(1, i, i)?, &layer.down.weight, None, None)?;
            x = x.add(&ff.rms_norm(&layer.post_ff_norm, eps)?)?;
        }
        cache.advance(t);
        let x = if all_logits { x } else { x.narrow(0, t - 1, 1)? };
        let x = x.rms_norm(&self.norm, eps)?;
        let logits = x.linear(&self.embed, None, crate::Activation::None)?; // [T or 1, V]
        match &self.softcap {
            // cap * tanh(logits / cap)
            Some(cap) => logits.binary(cap, BinaryOp::Div)?.unary(UnaryOp::Tanh)?.mul(cap),
            None => Ok(logits),
        }
    }
}
