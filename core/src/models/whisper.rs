//! Whisper (transformers' `WhisperForConditionalGeneration`): a speech encoder over log-mel
//! features and a text decoder with cross-attention, as in modeling_whisper.py.
//!
//! Encoder: two 1-D convolutions with GELU (the second of stride 2: 3000 frames become 1500
//! positions), run as 2-D convolutions over [1, mels, 1, frames], plus the stored position
//! embeddings (sinusoids in the checkpoint), then pre-LayerNorm layers and a final LayerNorm.
//! Decoder: token plus learned position embeddings, pre-LayerNorm layers of causal
//! self-attention over a `KvCache`, cross-attention over keys and values computed once from the
//! encoder's output (`EncoderDecoderCache`), a GELU feed-forward block; the output projection is
//! the token embedding (tied). k_proj has no bias: the fused q/k/v projection gets zeros there.
//! Weights may be f32 or f16 (the matmuls read either); every shape comes from config.json, so
//! tiny to large-v3 (128 mel bins) and distil-whisper's 2-layer decoder load alike.

use serde::Deserialize;

use super::{EncoderDecoderCache, EncoderDecoderModel, KvCache, SpeechSeq2SeqModel};
use crate::nn::{LayerNorm, Linear};
use crate::ops::{Activation, Conv2dParams, UnaryOp};
use crate::weights::Weights;
use crate::{DType, Device, Error, Result, Tensor};

/// nn.LayerNorm's default, which Whisper keeps.
const LN_EPS: f32 = 1e-5;

#[derive(Clone, Debug, Deserialize)]
pub struct WhisperConfig {
    pub vocab_size: usize,
    #[serde(default = "default_mels")]
    pub num_mel_bins: usize,
    pub d_model: usize,
    pub encoder_layers: usize,
    pub decoder_layers: usize,
    pub encoder_attention_heads: usize,
    pub decoder_attention_heads: usize,
    pub encoder_ffn_dim: usize,
    pub decoder_ffn_dim: usize,
    #[serde(default = "default_source")]
    pub max_source_positions: usize,
    #[serde(default = "default_target")]
    pub max_target_positions: usize,
    #[serde(default = "default_act")]
    pub activation_function: String,
}

fn default_mels() -> usize {
    80
}
fn default_source() -> usize {
    1500
}
fn default_target() -> usize {
    448
}
fn default_act() -> String {
    "gelu".into()
}

impl WhisperConfig {
    fn check(&self) -> Result<()> {
        let heads = [("encoder", self.encoder_attention_heads), ("decoder", self.decoder_attention_heads)];
        for (what, h) in heads {
            if h == 0 || !self.d_model.is_multiple_of(h) {
                return Err(Error::Config(format!("whisper: d_model {} is not split by {h} {what} attention heads", self.d_model)));
            }
        }
        if self.num_mel_bins == 0 || self.max_source_positions == 0 || self.max_target_positions == 0 || self.vocab_size == 0 {
            return Err(Error::Config("whisper: num_mel_bins, max_*_positions and vocab_size must be positive".into()));
        }
        Ok(())
    }

    /// The log-mel frames the encoder takes (the two convolutions halve them once).
    pub fn num_frames(&self) -> usize {
        2 * self.max_source_positions
    }
}

/// q, k and v of one input as one projection; k_proj has no bias, so the fused bias has zeros
/// in k's place.
fn fused_qkv(vb: &Weights, d: usize) -> Result<Linear> {
    let mut l = Linear::load_fused(&[vb.pp("q_proj"), vb.pp("k_proj"), vb.pp("v_proj")], d, &[d, d, d], false)?;
    let q = vb.get_f32("q_proj.bias", &[d])?;
    let v = vb.get_f32("v_proj.bias", &[d])?;
    let zeros = Tensor::from_f32(&vec![0.0; d], &[d], vb.device())?;
    // Made on the device by the first pass that reads it, then kept (this layer holds it).
    l.bias = Some(Tensor::concat(&[&q, &zeros, &v], 0)?);
    Ok(l)
}

struct EncoderLayer {
    attn_norm: LayerNorm,
    qkv: Linear, // [3 d, d]
    out: Linear,
    ffn_norm: LayerNorm,
    fc1: Linear,
    fc2: Linear,
}

struct DecoderLayer {
    self_norm: LayerNorm,
    self_qkv: Linear, // [3 d, d]
    self_out: Linear,
    cross_norm: LayerNorm,
    cross_q: Linear,
    cross_k: Linear, // no bias
    cross_v: Linear,
    cross_out: Linear,
    ffn_norm: LayerNorm,
    fc1: Linear,
    fc2: Linear,
}

pub struct Whisper {
    config: WhisperConfig,
    device: Device,
    /// The decoder's self-attention KV cache dtype (`Weights::kv_cache_dtype`).
    kv_dtype: DType,
    act: Activation,
    conv1_w: Tensor, // [d, mels, 1, 3]
    conv1_b: Tensor,
    conv2_w: Tensor, // [d, d, 1, 3]
    conv2_b: Tensor,
    encoder_positions: Tensor, // [max_source, d] f32
    encoder_layers: Vec<EncoderLayer>,
    encoder_norm: LayerNorm,
    embed_tokens: Tensor,      // [V, d]; also the output projection
    decoder_positions: Tensor, // [max_target, d]
    decoder_layers: Vec<DecoderLayer>,
    decoder_norm: LayerNorm,
}

impl Whisper {
    /// From a `WhisperForConditionalGeneration` (or `WhisperModel`) checkpoint: weights under
    /// `model.` (or none).
    pub fn load(config: WhisperConfig, vb: &Weights) -> Result<Whisper> {
        config.check()?;
        let m = if vb.contains("model.encoder.conv1.weight") { vb.pp("model") } else { vb.clone() };
        let (d, mels) = (config.d_model, config.num_mel_bins);
        let act = crate::nn::activation(&config.activation_function)?;
        let e = m.pp("encoder");
        let conv1_w = e.get("conv1.weight", &[d, mels, 3])?.reshape(&[d, mels, 1, 3])?;
        let conv2_w = e.get("conv2.weight", &[d, d, 3])?.reshape(&[d, d, 1, 3])?;
        let encoder_layers = (0..config.encoder_layers)
            .map(|l| {
                let lb = e.pp(format!("layers.{l}"));
                Ok(EncoderLayer {
                    attn_norm: LayerNorm::load(&lb.pp("self_attn_layer_norm"), d, LN_EPS)?,
                    qkv: fused_qkv(&lb.pp("self_attn"), d)?,
                    out: Linear::load(&lb.pp("self_attn.out_proj"), d, d, true)?,
                    ffn_norm: LayerNorm::load(&lb.pp("final_layer_norm"), d, LN_EPS)?,
                    fc1: Linear::load(&lb.pp("fc1"), d, config.encoder_ffn_dim, true)?,
                    fc2: Linear::load(&lb.pp("fc2"), config.encoder_ffn_dim, d, true)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let dec = m.pp("decoder");
        let decoder_layers = (0..config.decoder_layers)
            .map(|l| {
                let lb = dec.pp(format!("layers.{l}"));
                let x = lb.pp("encoder_attn");
                Ok(DecoderLayer {
                    self_norm: LayerNorm::load(&lb.pp("self_attn_layer_norm"), d, LN_EPS)?,
                    self_qkv: fused_qkv(&lb.pp("self_attn"), d)?,
                    self_out: Linear::load(&lb.pp("self_attn.out_proj"), d, d, true)?,
                    cross_norm: LayerNorm::load(&lb.pp("encoder_attn_layer_norm"), d, LN_EPS)?,
                    cross_q: Linear::load(&x.pp("q_proj"), d, d, true)?,
                    cross_k: Linear::load(&x.pp("k_proj"), d, d, false)?,
                    cross_v: Linear::load(&x.pp("v_proj"), d, d, true)?,
                    cross_out: Linear::load(&x.pp("out_proj"), d, d, true)?,
                    ffn_norm: LayerNorm::load(&lb.pp("final_layer_norm"), d, LN_EPS)?,
                    fc1: Linear::load(&lb.pp("fc1"), d, config.decoder_ffn_dim, true)?,
                    fc2: Linear::load(&lb.pp("fc2"), config.decoder_ffn_dim, d, true)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Whisper {
            kv_dtype: vb.kv_cache_dtype(),
            device: vb.device().clone(),
            act,
            conv1_b: e.get_f32("conv1.bias", &[d])?,
            conv2_b: e.get_f32("conv2.bias", &[d])?,
            conv1_w,
            conv2_w,
            encoder_positions: e.get_f32("embed_positions.weight", &[config.max_source_positions, d])?,
            encoder_layers,
            encoder_norm: LayerNorm::load(&e.pp("layer_norm"), d, LN_EPS)?,
            embed_tokens: dec.get("embed_tokens.weight", &[config.vocab_size, d])?,
            decoder_positions: dec.get("embed_positions.weight", &[config.max_target_positions, d])?,
            decoder_layers,
            decoder_norm: LayerNorm::load(&dec.pp("layer_norm"), d, LN_EPS)?,
            config,
        })
    }

    pub fn config(&self) -> &WhisperConfig {
        &self.config
    }

    fn offsets(&self, len: usize) -> Result<Tensor> {
        Tensor::from_u32(&[0, len as u32], &[2], &self.device)
    }

    /// The decoder over `tokens` appended to `cache`; with `heads`, also the cross-attention
    /// probabilities of those (layer, head) pairs, [heads, T, S].
    fn run_decoder(
        &self,
        tokens: &[u32],
        cache: &mut EncoderDecoderCache,
        all_logits: bool,
        heads: &[(usize, usize)],
    ) -> Result<(Tensor, Option<Tensor>)> {
        let c = &self.config;
        let (t, pos, s) = (tokens.len(), cache.self_attention.len(), cache.encoder_len);
        let (d, h) = (c.d_model, c.decoder_attention_heads);
        let hd = d / h;
        cache.self_attention.check_room(t)?;
        if pos + t > c.max_target_positions {
            return Err(Error::Input(format!(
                "{} decoder positions exceed Whisper's {} (max_target_positions)",
                pos + t,
                c.max_target_positions
            )));
        }
        if cache.cross.len() != self.decoder_layers.len() {
            return Err(Error::Input(format!(
                "an encoder-decoder cache of {} layers for a decoder of {}",
                cache.cross.len(),
                self.decoder_layers.len()
            )));
        }
        if let Some(bad) = tokens.iter().find(|&&id| id as usize >= c.vocab_size) {
            return Err(Error::Input(format!("token id {bad} is outside Whisper's vocabulary of {}", c.vocab_size)));
        }
        for &(l, hh) in heads {
            if l >= self.decoder_layers.len() || hh >= h {
                return Err(Error::Input(format!(
                    "alignment head ({l}, {hh}) is outside the decoder's {} layers of {h} heads",
                    self.decoder_layers.len()
                )));
            }
        }
        let dev = &self.device;
        let ids = Tensor::from_u32(tokens, &[t], dev)?;
        let positions: Vec<u32> = (pos..pos + t).map(|p| p as u32).collect();
        let positions = Tensor::from_u32(&positions, &[t], dev)?;
        let q_offsets = self.offsets(t)?;
        let self_offsets = self.offsets(pos + t)?;
        let cross_offsets = self.offsets(s)?;
        let scale = 1.0 / (hd as f32).sqrt();

        let mut x = self.embed_tokens.gather_rows(&ids)?.add(&self.decoder_positions.gather_rows(&positions)?)?; // [T, d]
        let mut probs = vec![None; heads.len()];
        for (l, layer) in self.decoder_layers.iter().enumerate() {
            let normed = layer.self_norm.forward(&x)?;
            let qkv = layer.self_qkv.forward(&normed)?.reshape(&[t, 3 * h, hd])?;
            let (keys, values) = cache.self_attention.append(l, &qkv.narrow(1, h, 2 * h)?)?;
            let attended = qkv.narrow(1, 0, h)?.attention_kv(&keys, &values, &q_offsets, &self_offsets, scale, true)?;
            x = layer.self_out.forward_add(&attended.reshape(&[t, d])?, &x)?;

            let normed = layer.cross_norm.forward(&x)?;
            let q = layer.cross_q.forward(&normed)?.reshape(&[t, h, hd])?;
            let (k, v) = &cache.cross[l];
            for (i, &(_, head)) in heads.iter().enumerate().filter(|(_, (hl, _))| *hl == l) {
                // softmax(q k^T * scale) of this head alone: [T, S].
                let qh = q.narrow(1, head, 1)?.reshape(&[t, hd])?;
                let kh = k.narrow(1, head, 1)?.reshape(&[s, hd])?;
                let scores = qh.linear(&kh, None, Activation::None)?;
                probs[i] = Some(scores.softmax(None, scale)?.reshape(&[1, t, s])?);
            }
            let attended = q.attention_kv(k, v, &q_offsets, &cross_offsets, scale, false)?;
            x = layer.cross_out.forward_add(&attended.reshape(&[t, d])?, &x)?;

            let normed = layer.ffn_norm.forward(&x)?;
            let hidden = layer.fc1.forward_act(&normed, self.act)?;
            x = layer.fc2.forward_add(&hidden, &x)?;
        }
        cache.self_attention.advance(t);
        let x = if all_logits { x } else { x.narrow(0, t - 1, 1)? };
        let logits = self.decoder_norm.forward(&x)?.linear(&self.embed_tokens, None, Activation::None)?;
        let probs = if heads.is_empty() {
            None
        } else {
            let parts: Vec<Tensor> = probs.into_iter().map(|p| p.expect("every head is in a layer")).collect();
            Some(Tensor::concat(&parts.iter().collect::<Vec<_>>(), 0)?)
        };
        Ok((logits, probs))
    }
}

impl EncoderDecoderModel for Whisper {
    fn vocab_size(&self) -> usize {
        self.config.vocab_size
    }

    fn max_target_positions(&self) -> usize {
        self.config.max_target_positions
    }

    fn new_cache(&self, encoder_hidden: &Tensor, max_len: usize) -> Result<EncoderDecoderCache> {
        let c = &self.config;
        let (d, h) = (c.d_model, c.decoder_attention_heads);
        if encoder_hidden.rank() != 2 || encoder_hidden.dims()[1] != d || encoder_hidden.dims()[0] == 0 {
            return Err(Error::Input(format!("encoder output {:?} is not [positions, {d}]", encoder_hidden.dims())));
        }
        if max_len == 0 || max_len > c.max_target_positions {
            return Err(Error::Input(format!("a decoder cache of {max_len} tokens (Whisper decodes 1..={})", c.max_target_positions)));
        }
        let s = encoder_hidden.dims()[0];
        let cross = self
            .decoder_layers
            .iter()
            .map(|layer| {
                let k = layer.cross_k.forward(encoder_hidden)?.reshape(&[s, h, d / h])?;
                let v = layer.cross_v.forward(encoder_hidden)?.reshape(&[s, h, d / h])?;
                Ok((k, v))
            })
            .collect::<Result<Vec<_>>>()?;
        let self_attention = KvCache::new(self.decoder_layers.len(), &[max_len, h, d / h], self.kv_dtype, &self.device)?;
        Ok(EncoderDecoderCache { self_attention, cross, encoder_len: s })
    }

    fn decode(&self, tokens: &[u32], cache: &mut EncoderDecoderCache, all_logits: bool) -> Result<Tensor> {
        Ok(self.run_decoder(tokens, cache, all_logits, &[])?.0)
    }

    fn decode_with_cross_attentions(
        &self,
        tokens: &[u32],
        cache: &mut EncoderDecoderCache,
        heads: &[(usize, usize)],
    ) -> Result<(Tensor, Tensor)> {
        if heads.is_empty() {
            return Err(Error::Input("no cross-attention heads asked for".into()));
        }
        let (logits, probs) = self.run_decoder(tokens, cache, false, heads)?;
        Ok((logits, probs.expect("heads is not empty")))
    }
}

impl SpeechSeq2SeqModel for Whisper {
    fn num_mel_bins(&self) -> usize {
        self.config.num_mel_bins
    }

    fn num_frames(&self) -> usize {
        self.config.num_frames()
    }

    fn hidden_size(&self) -> usize {
        self.config.d_model
    }

    fn encode(&self, features: &[f32]) -> Result<Tensor> {
        let c = &self.config;
        let (mels, frames, d) = (c.num_mel_bins, c.num_frames(), c.d_model);
        if features.len() != mels * frames {
            return Err(Error::Input(format!(
                "Whisper takes {mels} mel bins x {frames} frames of features ({} values), got {}",
                mels * frames,
                features.len()
            )));
        }
        if let Some(bad) = features.iter().find(|v| !v.is_finite()) {
            return Err(Error::Input(format!("the log-mel features hold a non-finite value ({bad})")));
        }
        let x = Tensor::from_f32(features, &[1, mels, 1, frames], &self.device)?;
        let gelu = Activation::Unary(UnaryOp::Gelu);
        let conv1 = Conv2dParams { padding: [0, 1], ..Default::default() };
        let conv2 = Conv2dParams { padding: [0, 1], stride: [1, 2], ..Default::default() };
        // [1, d, 1, L] views over [L, d] memory (channels last), so no copy between them.
        let x = x.conv2d_act(&self.conv1_w, Some(&self.conv1_b), conv1, gelu)?;
        let x = x.conv2d_act(&self.conv2_w, Some(&self.conv2_b), conv2, gelu)?;
        let s = x.dims()[3];
        if s != c.max_source_positions {
            return Err(Error::shape(
                "whisper encoder",
                format!("{s} positions after the convolutions, expected {}", c.max_source_positions),
            ));
        }
        let mut x = x.permute(&[0, 2, 3, 1])?.reshape(&[s, d])?.add(&self.encoder_positions)?;
        let (h, hd) = (c.encoder_attention_heads, d / c.encoder_attention_heads);
        let offsets = self.offsets(s)?;
        let scale = 1.0 / (hd as f32).sqrt();
        for layer in &self.encoder_layers {
            let normed = layer.attn_norm.forward(&x)?;
            let qkv = layer.qkv.forward(&normed)?.reshape(&[s, 3 * h, hd])?;
            let (q, k, v) = (qkv.narrow(1, 0, h)?, qkv.narrow(1, h, h)?, qkv.narrow(1, 2 * h, h)?);
            let attended = q.attention(&k, &v, &offsets, scale, false)?.reshape(&[s, d])?;
            x = layer.out.forward_add(&attended, &x)?;
            let normed = layer.ffn_norm.forward(&x)?;
            let hidden = layer.fc1.forward_act(&normed, self.act)?;
            x = layer.fc2.forward_add(&hidden, &x)?;
        }
        self.encoder_norm.forward(&x)
    }
}
