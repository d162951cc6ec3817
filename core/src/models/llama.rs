//! The Llama family (Llama 2/3, SmolLM2, Mistral, Qwen2 with its q/k/v bias, Qwen3 with its
//! per-head q/k RMSNorm, SmolLM3 with its layers without RoPE, Phi-3 with its fused projections,
//! partial rotary and LongRoPE), as in transformers' modeling_llama.py: RMSNorm, rotary attention
//! with grouped KV heads over an on-device KV cache, and a SwiGLU feed-forward block, pre-norm with
//! residuals. Weights are looked up by Hugging Face names; GGUF files are mapped to those names by
//! the GGUF source.

use serde::Deserialize;

use super::{DecoderModel, KvCache};
use crate::nn::Linear;
use crate::weights::Weights;
use crate::{DType, Device, Error, Result, Tensor};

#[derive(Clone, Debug, Deserialize)]
pub struct LlamaConfig {
    #[serde(default)]
    pub model_type: String,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    #[serde(default)]
    pub num_key_value_heads: Option<usize>,
    #[serde(default)]
    pub head_dim: Option<usize>,
    #[serde(default = "default_eps")]
    pub rms_norm_eps: f64,
    #[serde(default = "default_theta")]
    pub rope_theta: f64,
    #[serde(default)]
    pub rope_scaling: Option<RopeScaling>,
    /// transformers 5 writes theta and scaling together here.
    #[serde(default)]
    pub rope_parameters: Option<RopeScaling>,
    pub max_position_embeddings: usize,
    #[serde(default)]
    pub tie_word_embeddings: bool,
    #[serde(default)]
    pub attention_bias: bool,
    #[serde(default)]
    pub hidden_act: Option<String>,
    /// transformers 5's per-layer attention kinds: "full_attention" or "sliding_attention"
    /// (Qwen2/Qwen3 with `use_sliding_window`).
    #[serde(default)]
    pub layer_types: Option<Vec<String>>,
    /// Keys a sliding layer's query sees, itself included.
    #[serde(default)]
    pub sliding_window: Option<usize>,
    /// SmolLM3: per layer, 1 where the layer rotates its queries and keys, 0 where it uses no
    /// position embedding at all (NoPE).
    #[serde(default)]
    pub no_rope_layers: Option<Vec<u8>>,
    /// SmolLM3 without `no_rope_layers`: every this-many-th layer is a NoPE layer.
    #[serde(default)]
    pub no_rope_layer_interval: Option<usize>,
    /// Phi-3: the fraction of each head that rotates (the first dims); the rest pass unrotated.
    #[serde(default)]
    pub partial_rotary_factor: Option<f64>,
    /// Phi-3: the pretraining context, past which LongRoPE switches to its long factors.
    #[serde(default)]
    pub original_max_position_embeddings: Option<usize>,
    /// Per-pair divisors of the rotary frequencies (GGUF's `rope_freqs.weight`).
    #[serde(skip)]
    pub rope_freq_factors: Option<Vec<f64>>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct RopeScaling {
    #[serde(alias = "type", default = "default_rope_type")]
    pub rope_type: String,
    #[serde(default)]
    pub rope_theta: Option<f64>,
    #[serde(default)]
    pub factor: Option<f64>,
    #[serde(default)]
    pub low_freq_factor: Option<f64>,
    #[serde(default)]
    pub high_freq_factor: Option<f64>,
    #[serde(default)]
    pub original_max_position_embeddings: Option<usize>,
    /// LongRoPE's per-pair divisors of the frequencies, up to and past the pretraining context.
    #[serde(default)]
    pub short_factor: Option<Vec<f64>>,
    #[serde(default)]
    pub long_factor: Option<Vec<f64>>,
    /// LongRoPE's multiplier of cos and sin (transformers derives it from `factor` when absent).
    #[serde(default)]
    pub attention_factor: Option<f64>,
    /// transformers 5 keeps Phi-3's `partial_rotary_factor` here.
    #[serde(default)]
    pub partial_rotary_factor: Option<f64>,
}

/// LongRoPE (Phi-3's `longrope`, formerly `su`) as transformers' `_compute_longrope_parameters`
/// and `longrope_frequency_update` apply it: a sequence longer than `original` rotates every
/// position with the long factors, a shorter one with the short factors (`Llama::inv_freq`), and
/// both scale cos and sin by the attention factor (`Llama::rope_scale`).
struct LongRope {
    original: usize,
    long: Tensor, // [R/2]
}

fn default_rope_type() -> String {
    "default".into()
}

fn default_eps() -> f64 {
    1e-6
}
fn default_theta() -> f64 {
    10000.0
}

impl LlamaConfig {
    pub fn head_dim(&self) -> usize {
        self.head_dim.unwrap_or(self.hidden_size / self.num_attention_heads.max(1))
    }
    pub fn kv_heads(&self) -> usize {
        self.num_key_value_heads.unwrap_or(self.num_attention_heads)
    }
    /// Qwen2 has biases on q, k and v (and only there).
    fn qkv_bias(&self) -> bool {
        self.attention_bias || self.model_type == "qwen2"
    }
    /// Qwen3 RMS-normalizes each query and key head before the rotation.
    fn qk_norm(&self) -> bool {
        self.model_type == "qwen3"
    }

    /// Phi-3 fuses q/k/v into `qkv_proj` and gate/up into `gate_up_proj`, and applies its
    /// `sliding_window` to every layer.
    fn phi3(&self) -> bool {
        self.model_type == "phi3"
    }

    fn scaling(&self) -> Option<&RopeScaling> {
        self.rope_scaling.as_ref().or(self.rope_parameters.as_ref())
    }

    fn is_longrope(&self) -> bool {
        self.scaling().is_some_and(|s| matches!(s.rope_type.as_str(), "longrope" | "su"))
    }

    /// The rotated dims of a head: `partial_rotary_factor` of it (transformers rounds down).
    pub fn rotary_dim(&self) -> Result<usize> {
        let factor = self.scaling().and_then(|s| s.partial_rotary_factor).or(self.partial_rotary_factor).unwrap_or(1.0);
        let r = (self.head_dim() as f64 * factor) as usize;
        if !(factor > 0.0 && factor <= 1.0) || r < 2 || r % 2 != 0 {
            return Err(Error::Config(format!("partial_rotary_factor {factor} of head size {} rotates {r} dims", self.head_dim())));
        }
        Ok(r)
    }

    /// LongRoPE's pretraining context, long frequencies and cos/sin scale, None for other RoPE.
    fn longrope(&self) -> Result<Option<(usize, Vec<f32>, f64)>> {
        let Some(s) = self.scaling().filter(|_| self.is_longrope()) else { return Ok(None) };
        // transformers prefers Phi-3's top-level value to the one in the rope parameters.
        let original = self
            .original_max_position_embeddings
            .or(s.original_max_position_embeddings)
            .ok_or_else(|| Error::Config("longrope rope_scaling without original_max_position_embeddings".into()))?;
        // Phi-3 raises max_position_embeddings and leaves `factor` out: their ratio is the factor.
        let factor = s.factor.unwrap_or(self.max_position_embeddings as f64 / original as f64);
        let attention_factor =
            s.attention_factor.unwrap_or(if factor <= 1.0 { 1.0 } else { (1.0 + factor.ln() / (original as f64).ln()).sqrt() });
        let theta = s.rope_theta.unwrap_or(self.rope_theta);
        let long = s.long_factor.as_deref().ok_or_else(|| Error::Config("longrope rope_scaling without long_factor".into()))?;
        let long = rope_inv_freq(self.rotary_dim()?, theta, Some(long), None)?;
        Ok(Some((original, long, attention_factor)))
    }

    /// Whether layer `l` rotates its queries and keys: all do except SmolLM3's NoPE layers,
    /// which transformers' SmolLM3Config marks with 0 in `no_rope_layers` (by default every
    /// fourth layer).
    fn uses_rope(&self, l: usize) -> Result<bool> {
        if self.model_type != "smollm3" {
            return Ok(true);
        }
        match &self.no_rope_layers {
            Some(flags) => match flags.get(l) {
                Some(&flag) => Ok(flag != 0),
                None => Err(Error::Config(format!("no_rope_layers has {} entries for {} layers", flags.len(), self.num_hidden_layers))),
            },
            None => Ok((l + 1) % self.no_rope_layer_interval.unwrap_or(4).max(1) != 0),
        }
    }

    /// Layer `l`'s attention window in `Tensor::attention_kv_window`'s terms, None for full
    /// attention.
    fn window(&self, l: usize) -> Result<Option<usize>> {
        if self.phi3() {
            // transformers' Phi3Model masks every layer with the window when one is configured.
            return match self.sliding_window {
                Some(0) => Err(Error::Config("sliding_window is 0".into())),
                w => Ok(w.map(|w| w - 1)),
            };
        }
        attention_window(self.layer_types.as_deref(), self.sliding_window, l)
    }

    /// Rotary frequencies with the configured scaling folded in, as transformers computes them.
    pub fn inv_freq(&self) -> Result<Vec<f32>> {
        let theta = self.rope_parameters.as_ref().and_then(|p| p.rope_theta).unwrap_or(self.rope_theta);
        let scaling = self.scaling();
        if self.is_longrope() {
            // The short factors, transformers' inv_freq at load; `longrope()` has the long ones.
            let short = scaling.and_then(|s| s.short_factor.as_deref());
            let short = short.ok_or_else(|| Error::Config("longrope rope_scaling without short_factor".into()))?;
            return rope_inv_freq(self.rotary_dim()?, theta, Some(short), None);
        }
        rope_inv_freq(self.rotary_dim()?, theta, self.rope_freq_factors.as_deref(), scaling)
    }
}

/// Rotary frequencies of a head of size `d` with base `theta`, divided per pair by `factors`
/// (GGUF's `rope_freqs.weight`) and scaled as `scaling` says, as transformers computes them.
pub(crate) fn rope_inv_freq(d: usize, theta: f64, factors: Option<&[f64]>, scaling: Option<&RopeScaling>) -> Result<Vec<f32>> {
    let mut base: Vec<f64> = (0..d / 2).map(|i| 1.0 / theta.powf(2.0 * i as f64 / d as f64)).collect();
    if let Some(factors) = factors {
        if factors.len() != base.len() {
            return Err(Error::Config(format!("{} rope frequency factors for head size {d}", factors.len())));
        }
        base.iter_mut().zip(factors).for_each(|(f, k)| *f /= k);
    }
    let Some(scaling) = scaling else {
        return Ok(base.iter().map(|&f| f as f32).collect());
    };
    let factor = scaling.factor.unwrap_or(1.0);
    let scaled: Vec<f64> = match scaling.rope_type.as_str() {
        "default" => base,
        "linear" => base.iter().map(|f| f / factor).collect(),
        "llama3" => {
            let low = scaling.low_freq_factor.unwrap_or(1.0);
            let high = scaling.high_freq_factor.unwrap_or(4.0);
            let old = scaling.original_max_position_embeddings.unwrap_or(8192) as f64;
            let (low_wavelen, high_wavelen) = (old / low, old / high);
            base.iter()
                .map(|&f| {
                    let wavelen = 2.0 * std::f64::consts::PI / f;
                    if wavelen < high_wavelen {
                        f
                    } else if wavelen > low_wavelen {
                        f / factor
                    } else {
                        let smooth = (old / wavelen - low) / (high - low);
                        (1.0 - smooth) * f / factor + smooth * f
                    }
                })
                .collect()
        }
        other => return Err(Error::Unsupported(format!("rope_scaling type `{other}`"))),
    };
    Ok(scaled.iter().map(|&f| f as f32).collect())
}

/// Layer `l`'s window from transformers 5's `layer_types` and `sliding_window`: a sliding layer's
/// query at p sees keys j with p - j < sliding_window (masking_utils' sliding_window_overlay),
/// i.e. a window of sliding_window - 1 behind it.
pub(crate) fn attention_window(layer_types: Option<&[String]>, sliding_window: Option<usize>, l: usize) -> Result<Option<usize>> {
    match layer_types.and_then(|types| types.get(l)).map(String::as_str) {
        None | Some("full_attention") => Ok(None),
        Some("sliding_attention") => match sliding_window {
            Some(w) if w > 0 => Ok(Some(w - 1)),
            _ => Err(Error::Config(format!("layer {l} is a sliding_attention layer, but sliding_window is {sliding_window:?}"))),
        },
        Some(other) => Err(Error::Unsupported(format!("layer type `{other}` (layer {l})"))),
    }
}

/// Per-head RMS norms of the query and key heads of `heads` [T, Hq + 2 Hkv, D] (Qwen3, Gemma 3),
/// each with its own weight [D]; the value heads pass unchanged. Same layout out.
pub(crate) fn norm_qk_heads(heads: &Tensor, hq: usize, hkv: usize, q_norm: &Tensor, k_norm: &Tensor, eps: f32) -> Result<Tensor> {
    let q = heads.narrow(1, 0, hq)?.rms_norm(q_norm, eps)?;
    let k = heads.narrow(1, hq, hkv)?.rms_norm(k_norm, eps)?;
    Tensor::concat(&[&q, &k, &heads.narrow(1, hq + hkv, hkv)?], 1)
}

struct Layer {
    input_norm: Tensor,                // [H]
    qkv: Linear,                       // [(Hq + 2 Hkv) D, H]
    qk_norm: Option<(Tensor, Tensor)>, // [D] each (Qwen3)
    rope: bool,                        // false: SmolLM3's NoPE layers
    window: Option<usize>,
    o: Linear,         // [H, Hq D]
    post_norm: Tensor, // [H]
    gate_up: Linear,   // [2 I, H]: gate then up
    down: Linear,      // [H, I]
}

pub struct Llama {
    config: LlamaConfig,
    device: Device,
    embed: Tensor, // [V, H]
    layers: Vec<Layer>,
    norm: Tensor,
    lm_head: Tensor,  // [V, H]; the embedding itself when tied
    inv_freq: Tensor, // [R/2]
    longrope: Option<LongRope>,
    /// [Hq + 2 Hkv, D]: LongRoPE's attention factor on the rotated dims of the q and k heads, 1
    /// elsewhere (transformers scales cos and sin by it); None when the factor is 1.
    rope_scale: Option<Tensor>,
    /// GGUF stores Llama's q/k rows permuted for pairwise rotation; HF uses half rotation.
    interleaved_rope: bool,
    /// The KV cache's dtype (`Weights::kv_cache_dtype`).
    kv_dtype: DType,
}

impl Llama {
    /// `interleaved_rope`: the weights come from a GGUF llama file (see `Llama::interleaved_rope`).
    pub fn load(config: LlamaConfig, vb: &Weights, interleaved_rope: bool) -> Result<Llama> {
        if config.hidden_act.as_deref().is_some_and(|a| a != "silu") {
            return Err(Error::Unsupported(format!("hidden_act {:?} in a Llama-family model", config.hidden_act)));
        }
        let (h, d, hq, hkv) = (config.hidden_size, config.head_dim(), config.num_attention_heads, config.kv_heads());
        if hq == 0 || hkv == 0 || hq % hkv != 0 {
            return Err(Error::Config(format!("{hq} attention heads cannot share {hkv} KV heads")));
        }
        let i = config.intermediate_size;
        let m = vb.pp("model");
        let embed = m.get("embed_tokens.weight", &[config.vocab_size, h])?;
        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        for l in 0..config.num_hidden_layers {
            let lb = m.pp(format!("layers.{l}"));
            let sa = lb.pp("self_attn");
            let mlp = lb.pp("mlp");
            layers.push(Layer {
                input_norm: lb.get_f32("input_layernorm.weight", &[h])?,
                qkv: match config.phi3() {
                    true => Linear::load(&sa.pp("qkv_proj"), h, (hq + 2 * hkv) * d, false)?,
                    false => Linear::load_fused(
                        &[sa.pp("q_proj"), sa.pp("k_proj"), sa.pp("v_proj")],
                        h,
                        &[hq * d, hkv * d, hkv * d],
                        config.qkv_bias(),
                    )?,
                },
                qk_norm: match config.qk_norm() {
                    true => Some((sa.get_f32("q_norm.weight", &[d])?, sa.get_f32("k_norm.weight", &[d])?)),
                    false => None,
                },
                rope: config.uses_rope(l)?,
                window: config.window(l)?,
                o: Linear::load(&sa.pp("o_proj"), hq * d, h, false)?,
                post_norm: lb.get_f32("post_attention_layernorm.weight", &[h])?,
                gate_up: match config.phi3() {
                    true => Linear::load(&mlp.pp("gate_up_proj"), h, 2 * i, false)?,
                    false => Linear::load_fused(&[mlp.pp("gate_proj"), mlp.pp("up_proj")], h, &[i, i], false)?,
                },
                down: Linear::load(&mlp.pp("down_proj"), i, h, false)?,
            });
        }
        let norm = m.get_f32("norm.weight", &[h])?;
        // Tied checkpoints may omit lm_head, or carry a copy of the embedding.
        let lm_head = if config.tie_word_embeddings || !vb.contains("lm_head.weight") {
            embed.clone()
        } else {
            vb.get("lm_head.weight", &[config.vocab_size, h])?
        };
        let freqs = config.inv_freq()?;
        let dev = vb.device();
        let inv_freq = Tensor::from_f32(&freqs, &[freqs.len()], dev)?;
        let (mut longrope, mut rope_scale) = (None, None);
        if let Some((original, long, attention_factor)) = config.longrope()? {
            let factor = attention_factor as f32;
            if factor != 1.0 {
                let r = config.rotary_dim()?;
                let scale: Vec<f32> = (0..(hq + 2 * hkv) * d).map(|k| if k / d < hq + hkv && k % d < r { factor } else { 1.0 }).collect();
                rope_scale = Some(Tensor::from_f32(&scale, &[hq + 2 * hkv, d], dev)?);
            }
            longrope = Some(LongRope { original, long: Tensor::from_f32(&long, &[long.len()], dev)? });
        }
        let kv_dtype = vb.kv_cache_dtype();
        Ok(Llama { device: dev.clone(), config, embed, layers, norm, lm_head, inv_freq, longrope, rope_scale, interleaved_rope, kv_dtype })
    }
}

impl DecoderModel for Llama {
    fn vocab_size(&self) -> usize {
        self.config.vocab_size
    }

    fn max_context(&self) -> usize {
        self.config.max_position_embeddings
    }

    fn new_cache(&self, max_len: usize) -> Result<KvCache> {
        let shape = [max_len, self.config.kv_heads(), self.config.head_dim()];
        KvCache::new(self.config.num_hidden_layers, &shape, self.kv_dtype, &self.device)
    }

    fn reusable_prefix(&self, cache: &KvCache, common: usize) -> usize {
        match &self.longrope {
            // Rows rotated with the long factors (the cache outgrew `original`) are not what a
            // fresh run over a prefix of at most `original` tokens computes: it rotates short.
            Some(lr) if cache.len() > lr.original && common <= lr.original => 0,
            _ => common,
        }
    }

    fn forward(&self, tokens: &[u32], cache: &mut KvCache, all_logits: bool) -> Result<Tensor> {
        let c = &self.config;
        let (t, pos) = (tokens.len(), cache.len());
        let (d, hq, hkv) = (c.head_dim(), c.num_attention_heads, c.kv_heads());
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
        let scale = 1.0 / (d as f32).sqrt();
        let eps = c.rms_norm_eps as f32;

        // LongRoPE: once the sequence is longer than the pretraining context, every position
        // rotates with the long factors. When it first grows past it, the cache (rotated short,
        // and every later layer's keys and values computed from that) is recomputed from the
        // tokens, as Phi3ForCausalLM.prepare_inputs_for_generation does.
        let mut inv_freq = &self.inv_freq;
        if let Some(lr) = self.longrope.as_ref().filter(|lr| pos + t > lr.original) {
            inv_freq = &lr.long;
            if pos > 0 && pos <= lr.original {
                let mut all = cache.tokens().to_vec();
                if all.len() != pos {
                    return Err(Error::Input("this KV cache was filled without its token ids; LongRoPE cannot recompute it".into()));
                }
                all.extend_from_slice(tokens);
                cache.reset();
                let logits = self.forward(&all, cache, all_logits)?;
                return if all_logits { logits.narrow(0, pos, t) } else { Ok(logits) };
            }
        }

        let mut x = self.embed.gather_rows(&ids)?; // [T, H]
        for (l, layer) in self.layers.iter().enumerate() {
            let qkv = layer.qkv.forward_rms_normed(&x, &layer.input_norm, eps)?; // [T, (Hq + 2 Hkv) D]
            let mut heads = qkv.reshape(&[t, hq + 2 * hkv, d])?;
            if let Some((q_norm, k_norm)) = &layer.qk_norm {
                heads = norm_qk_heads(&heads, hq, hkv, q_norm, k_norm, eps)?;
            }
            let attended = if layer.rope && self.rope_scale.is_none() {
                // The rotations and the cache write folded into attention (a decode step on the
                // GPU: one dispatch), or into the cache write and attention (prefill: two).
                let rope = (&positions, inv_freq, self.interleaved_rope);
                let (q, kv) = (heads.narrow(1, 0, hq)?, heads.narrow(1, hq, 2 * hkv)?);
                q.attention_append_rope(&kv, cache.layer(l), (&q_offsets, &kv_offsets), pos, rope, scale, layer.window)?
            } else {
                self.attend_rotated(l, heads, (&positions, inv_freq), cache, (&q_offsets, &kv_offsets), layer.window)?
            };
            let attended = attended.reshape(&[t, hq * d])?;
            x = layer.o.forward_add(&attended, &x)?;
            let gate_up = layer.gate_up.forward_rms_normed(&x, &layer.post_norm, eps)?; // [T, 2 I]
            let i = c.intermediate_size;
            x = layer.down.forward_silu_mul_add(&gate_up.narrow(1, 0, i)?, &gate_up.narrow(1, i, i)?, &x)?;
        }
        cache.advance(t);
        if self.longrope.is_some() {
            cache.record_tokens(tokens);
        }
        let x = if all_logits { x } else { x.narrow(0, t - 1, 1)? };
        // The final norm keeps its dispatch: folded into the LM head, every one of its many
        // workgroups would repeat the norm's reduction (on lavapipe that made decode 35% slower).
        x.rms_norm(&self.norm, eps)?.linear(&self.lm_head, None, crate::Activation::None) // [T or 1, V]
    }
}

impl Llama {
    /// Attention of one layer whose heads [T, Hq + 2 Hkv, D] are rotated first as a tensor of
    /// their own (LongRoPE's factor scales them after the rotation) or not at all (NoPE layers).
    fn attend_rotated(
        &self,
        l: usize,
        mut heads: Tensor,
        (positions, inv_freq): (&Tensor, &Tensor),
        cache: &KvCache,
        (q_offsets, kv_offsets): (&Tensor, &Tensor),
        window: Option<usize>,
    ) -> Result<Tensor> {
        let c = &self.config;
        let (d, hq, hkv) = (c.head_dim(), c.num_attention_heads, c.kv_heads());
        let layer = &self.layers[l];
        // One rotation for q and k; v is copied along, so k and v leave it adjacent, as the
        // cache stores them (one write for both).
        if layer.rope {
            heads = heads.rope_heads(positions, inv_freq, self.interleaved_rope, hq + hkv)?;
            if let Some(scale) = &self.rope_scale {
                heads = heads.mul(scale)?;
            }
        }
        let q = heads.narrow(1, 0, hq)?;
        let (keys, values) = cache.append(l, &heads.narrow(1, hq, 2 * hkv)?)?; // [pos + T, Hkv, D] each
        q.attention_kv_window(&keys, &values, q_offsets, kv_offsets, 1.0 / (d as f32).sqrt(), true, window)
    }
}
