//! ModernBERT, as in transformers' modeling_modernbert.py: token embeddings and a LayerNorm, then
//! pre-norm layers of rotary self-attention and a GeGLU feed-forward block, then a final norm.
//! Attention alternates: every `global_attn_every_n_layers`-th layer (0, n, 2n, ...) sees the
//! whole sequence; the others see a sliding window of `local_attention / 2` tokens on each
//! side, with their own rope theta. Runs on packed sequences like BERT: [T, H] for the T tokens
//! of the whole batch, with per-sequence offsets for attention (ModernBERT itself unpads).

use std::collections::HashMap;

use serde::Deserialize;

use super::heads::{self, HeadKind, HeadStep, TextHead};
use super::{EncoderModel, ModelConfig};
use crate::nn::{self, LayerNorm, Linear};
use crate::ops::{Activation, PoolMode};
use crate::tokenizer::Batch;
use crate::weights::Weights;
use crate::{Device, Error, Result, Tensor};

#[derive(Clone, Debug, Deserialize)]
pub struct ModernBertConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    #[serde(default = "default_act")]
    pub hidden_activation: String,
    #[serde(default = "default_max_positions")]
    pub max_position_embeddings: usize,
    #[serde(default = "default_eps")]
    pub norm_eps: f64,
    #[serde(default)]
    pub norm_bias: bool,
    #[serde(default)]
    pub attention_bias: bool,
    #[serde(default)]
    pub mlp_bias: bool,
    /// transformers 5 writes this; older configs (the Hub's) have `global_attn_every_n_layers`.
    #[serde(default)]
    pub layer_types: Option<Vec<String>>,
    #[serde(default = "default_global_every")]
    pub global_attn_every_n_layers: usize,
    /// The whole window of a local layer: a token sees `local_attention / 2` on each side.
    #[serde(default = "default_local_attention")]
    pub local_attention: usize,
    /// transformers 5: {"full_attention": {"rope_theta", "rope_type"}, "sliding_attention": ..}.
    #[serde(default)]
    pub rope_parameters: Option<HashMap<String, RopeParameters>>,
    #[serde(default = "default_global_theta")]
    pub global_rope_theta: f64,
    #[serde(default = "default_local_theta")]
    pub local_rope_theta: f64,
    #[serde(default)]
    pub rope_scaling: Option<serde_json::Value>,
    #[serde(default = "default_pooling")]
    pub classifier_pooling: String,
    #[serde(default = "default_act")]
    pub classifier_activation: String,
    #[serde(default)]
    pub classifier_bias: bool,
    #[serde(default = "default_true")]
    pub decoder_bias: bool,
}

#[derive(Clone, Debug, Deserialize)]
pub struct RopeParameters {
    #[serde(default)]
    pub rope_theta: Option<f64>,
    #[serde(default)]
    pub rope_type: Option<String>,
}

fn default_act() -> String {
    "gelu".into()
}
fn default_max_positions() -> usize {
    8192
}
fn default_eps() -> f64 {
    1e-5
}
fn default_global_every() -> usize {
    3
}
fn default_local_attention() -> usize {
    128
}
fn default_global_theta() -> f64 {
    160_000.0
}
fn default_local_theta() -> f64 {
    10_000.0
}
fn default_pooling() -> String {
    "cls".into()
}
fn default_true() -> bool {
    true
}

impl ModernBertConfig {
    /// Per layer: whether it attends globally (else through the sliding window).
    fn global_layers(&self) -> Result<Vec<bool>> {
        let n = self.num_hidden_layers;
        match &self.layer_types {
            Some(types) => {
                if types.len() != n {
                    return Err(Error::Config(format!("{} layer_types for {n} layers", types.len())));
                }
                types
                    .iter()
                    .map(|t| match t.as_str() {
                        "full_attention" => Ok(true),
                        "sliding_attention" => Ok(false),
                        other => Err(Error::Unsupported(format!("ModernBERT layer type `{other}`"))),
                    })
                    .collect()
            }
            None => match self.global_attn_every_n_layers {
                0 => Err(Error::Config("global_attn_every_n_layers is 0".into())),
                every => Ok((0..n).map(|l| l % every == 0).collect()),
            },
        }
    }

    /// Rope theta of global (`full_attention`) or local (`sliding_attention`) layers.
    fn rope_theta(&self, global: bool) -> Result<f64> {
        if self.rope_scaling.as_ref().is_some_and(|s| !s.is_null()) {
            return Err(Error::Unsupported("rope_scaling in a ModernBERT model".into()));
        }
        let (key, fallback) =
            if global { ("full_attention", self.global_rope_theta) } else { ("sliding_attention", self.local_rope_theta) };
        let params = self.rope_parameters.as_ref().and_then(|p| p.get(key));
        if let Some(kind) = params.and_then(|p| p.rope_type.as_deref()).filter(|&k| k != "default") {
            return Err(Error::Unsupported(format!("rope_type `{kind}` in a ModernBERT model")));
        }
        let theta = params.and_then(|p| p.rope_theta).unwrap_or(fallback);
        if !(theta.is_finite() && theta > 0.0) {
            return Err(Error::Config(format!("rope theta {theta} of {key} layers")));
        }
        Ok(theta)
    }

    fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads.max(1)
    }

    /// 1 / theta^(2i / d), as transformers' default rope computes it.
    fn inv_freq(&self, global: bool, device: &Device) -> Result<Tensor> {
        let (theta, d) = (self.rope_theta(global)?, self.head_dim());
        let freqs: Vec<f32> = (0..d / 2).map(|i| (1.0 / theta.powf(2.0 * i as f64 / d as f64)) as f32).collect();
        Tensor::from_f32(&freqs, &[d / 2], device)
    }
}

/// Checkpoints saved from a task model (ModernBertForMaskedLM, ...) prefix the encoder with `model.`.
fn encoder_weights(vb: &Weights) -> Weights {
    if vb.contains("model.embeddings.tok_embeddings.weight") { vb.pp("model") } else { vb.clone() }
}

/// LayerNorm with a bias only when `norm_bias` says so (then it must be there).
fn layer_norm(vb: &Weights, h: usize, eps: f32, bias: bool) -> Result<LayerNorm> {
    let weight = vb.get_f32("weight", &[h])?;
    let bias = if bias { Some(vb.get_f32("bias", &[h])?) } else { None };
    Ok(LayerNorm { weight, bias, eps })
}

struct Layer {
    /// None on layer 0, whose input is the embeddings' norm already.
    attn_norm: Option<LayerNorm>,
    qkv: Linear, // Wqkv [3H, H]: query, key, value stacked
    out: Linear, // Wo [H, H]
    mlp_norm: LayerNorm,
    /// Wi [2I, H] split in its halves: act(input) * gate.
    input: Linear, // [I, H]
    gate: Linear, // [I, H]
    down: Linear, // mlp.Wo [H, I]
    /// Keys at most this far from the query (local layers), or all of them (global).
    window: Option<usize>,
    global: bool,
}

pub struct ModernBert {
    config: ModernBertConfig,
    act: Activation,
    device: Device,
    embeddings: Tensor, // tok_embeddings [V, H]
    embed_norm: LayerNorm,
    layers: Vec<Layer>,
    final_norm: LayerNorm,
    global_inv_freq: Tensor, // [D/2]
    local_inv_freq: Tensor,  // [D/2]
}

impl ModernBert {
    pub fn load(config: ModernBertConfig, vb: &Weights) -> Result<ModernBert> {
        let (h, heads, i) = (config.hidden_size, config.num_attention_heads, config.intermediate_size);
        if heads == 0 || h % heads != 0 {
            return Err(Error::Config(format!("hidden_size {h} is not a multiple of num_attention_heads {heads}")));
        }
        if !config.head_dim().is_multiple_of(2) {
            return Err(Error::Config(format!("head size {} is odd: rotary embeddings need pairs", config.head_dim())));
        }
        // transformers' ACT2FN: "gelu" is the exact (erf) GELU.
        let act = nn::activation(&config.hidden_activation)?;
        let global_layers = config.global_layers()?;
        let vb = encoder_weights(vb);
        let (eps, nb) = (config.norm_eps as f32, config.norm_bias);
        let e = vb.pp("embeddings");
        let embeddings = e.get("tok_embeddings.weight", &[config.vocab_size, h])?;
        let embed_norm = layer_norm(&e.pp("norm"), h, eps, nb)?;
        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        for (l, &global) in global_layers.iter().enumerate() {
            let lb = vb.pp(format!("layers.{l}"));
            let mlp = lb.pp("mlp");
            let wi = mlp.get("Wi.weight", &[2 * i, h])?;
            let wi_bias = if config.mlp_bias { Some(mlp.get_f32("Wi.bias", &[2 * i])?) } else { None };
            // The gate's bias is copied once (on first use) to start at element 0, as ops need.
            let half = |start: usize| -> Result<Linear> {
                let bias = wi_bias.as_ref().map(|b| b.narrow(0, start, i)?.dense()).transpose()?;
                Ok(Linear { weight: wi.narrow(0, start, i)?, bias })
            };
            layers.push(Layer {
                attn_norm: if l == 0 { None } else { Some(layer_norm(&lb.pp("attn_norm"), h, eps, nb)?) },
                qkv: Linear::load(&lb.pp("attn.Wqkv"), h, 3 * h, config.attention_bias)?,
                out: Linear::load(&lb.pp("attn.Wo"), h, h, config.attention_bias)?,
                mlp_norm: layer_norm(&lb.pp("mlp_norm"), h, eps, nb)?,
                input: half(0)?,
                gate: half(i)?,
                down: Linear::load(&mlp.pp("Wo"), i, h, config.mlp_bias)?,
                window: if global { None } else { Some(config.local_attention / 2) },
                global,
            });
        }
        let final_norm = layer_norm(&vb.pp("final_norm"), h, eps, nb)?;
        let device = vb.device().clone();
        Ok(ModernBert {
            global_inv_freq: config.inv_freq(true, &device)?,
            local_inv_freq: config.inv_freq(false, &device)?,
            act,
            device,
            embeddings,
            embed_norm,
            layers,
            final_norm,
            config,
        })
    }

    pub fn config(&self) -> &ModernBertConfig {
        &self.config
    }

    /// Token ids, positions (from 0 in each sequence) and sequence offsets of the packed batch.
    fn inputs(&self, batch: &Batch) -> Result<(Tensor, Tensor, Tensor)> {
        let mut ids = Vec::with_capacity(batch.total_tokens());
        let mut positions = Vec::with_capacity(ids.capacity());
        for seq in &batch.ids {
            if let Some(bad) = seq.iter().find(|&&id| id as usize >= self.config.vocab_size) {
                return Err(Error::Input(format!("token id {bad} is outside the vocabulary of {}", self.config.vocab_size)));
            }
            ids.extend_from_slice(seq);
            positions.extend((0..seq.len()).map(|p| p as u32));
        }
        let (t, d) = (ids.len(), &self.device);
        let offsets = batch.offsets();
        Ok((Tensor::from_u32(&ids, &[t], d)?, Tensor::from_u32(&positions, &[t], d)?, Tensor::from_u32(&offsets, &[offsets.len()], d)?))
    }
}

impl EncoderModel for ModernBert {
    fn forward(&self, batch: &Batch) -> Result<Tensor> {
        if batch.total_tokens() == 0 {
            return Err(Error::Input("nothing to encode: every sequence is empty".into()));
        }
        let (ids, positions, offsets) = self.inputs(batch)?;
        let (h, heads) = (self.config.hidden_size, self.config.num_attention_heads);
        let (t, d) = (batch.total_tokens(), self.config.head_dim());
        let scale = 1.0 / (d as f32).sqrt();

        let mut x = self.embed_norm.forward(&self.embeddings.gather_rows(&ids)?)?; // [T, H]
        for layer in &self.layers {
            let normed = match &layer.attn_norm {
                Some(norm) => norm.forward(&x)?,
                None => x.clone(),
            };
            let inv_freq = if layer.global { &self.global_inv_freq } else { &self.local_inv_freq };
            // q and k rotated in one op, v copied along: [T, 3 heads, D].
            let qkv = layer.qkv.forward(&normed)?.reshape(&[t, 3 * heads, d])?.rope_heads(&positions, inv_freq, false, 2 * heads)?;
            let q = qkv.narrow(1, 0, heads)?;
            let k = qkv.narrow(1, heads, heads)?;
            let v = qkv.narrow(1, 2 * heads, heads)?;
            let context = q.attention_window(&k, &v, &offsets, scale, false, layer.window)?.reshape(&[t, h])?;
            x = layer.out.forward_add(&context, &x)?; // x + Wo(attention)

            let normed = layer.mlp_norm.forward(&x)?;
            let input = layer.input.forward_act(&normed, self.act)?; // [T, I]
            let gate = layer.gate.forward(&normed)?; // [T, I]
            x = layer.down.forward_add(&input.mul(&gate)?, &x)?; // x + Wo(act(input) * gate)
        }
        self.final_norm.forward(&x)
    }

    fn hidden_size(&self) -> usize {
        self.config.hidden_size
    }

    fn max_positions(&self) -> usize {
        self.config.max_position_embeddings
    }
}

/// The heads of `ModernBertFor*`, by their transformers names. Each runs the prediction head
/// (`head.dense`, `classifier_activation`, `head.norm`) on the encoder's output, pooled first
/// for sequence classification, then `classifier` (question answering: start and end logits),
/// or for masked LM `decoder`, tied to the token embeddings.
pub fn load_head(kind: HeadKind, config: &ModelConfig, vb: &Weights) -> Result<TextHead> {
    let c: ModernBertConfig = super::parse(&config.json)?;
    let h = c.hidden_size;
    let pooling = match c.classifier_pooling.as_str() {
        "cls" => PoolMode::Cls,
        "mean" => PoolMode::Mean,
        other => return Err(Error::Unsupported(format!("classifier_pooling `{other}` (ModernBERT has cls and mean)"))),
    };
    let head = vb.pp("head");
    let transform = vec![
        HeadStep::Dense(Linear::load(&head.pp("dense"), h, h, c.classifier_bias)?, nn::activation(&c.classifier_activation)?),
        HeadStep::Norm(layer_norm(&head.pp("norm"), h, c.norm_eps as f32, c.norm_bias)?),
    ];
    let output = match kind {
        HeadKind::SequenceClassification | HeadKind::TokenClassification => {
            Linear::load(&vb.pp("classifier"), h, heads::num_labels(config), true)?
        }
        // Its classifier's two outputs are split into start and end logits.
        HeadKind::QuestionAnswering => Linear::load(&vb.pp("classifier"), h, 2, true)?,
        HeadKind::MaskedLm => {
            if c.decoder_bias && !vb.contains("decoder.bias") {
                return Err(Error::Weight { name: vb.full_name("decoder.bias"), msg: "missing (config.json has decoder_bias)".into() });
            }
            let embeddings = encoder_weights(vb).full_name("embeddings.tok_embeddings.weight");
            let bias = vb.full_name("decoder.bias");
            heads::tied_decoder(&vb.pp_root(), &vb.full_name("decoder"), &embeddings, &bias, c.vocab_size, h)?
        }
    };
    Ok(TextHead { kind, pooling, transform, output })
}
