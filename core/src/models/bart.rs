//! The BART family of text encoder-decoders, as modeling_bart.py and modeling_marian.py have
//! them: BART (`BartForConditionalGeneration`) here, Marian (`MarianMTModel`) in marian.rs.
//! They share everything but the embeddings:
//!
//! - embeddings: token rows (times sqrt(d_model) with `scale_embedding`) plus positions, a
//!   table read at `position + offset` (BART: learned, offset 2; Marian: sinusoids computed at
//!   load, offset 0), then BART's `layernorm_embedding`;
//! - post-LayerNorm layers: x = LN(x + attention(x)), x = LN(x + fc2(act(fc1(x)))), with
//!   cross-attention between them in the decoder over keys and values computed once from the
//!   encoder's output (`EncoderDecoderCache`); every projection has a bias;
//! - the output: `lm_head` (the decoder's token embedding when tied) plus `final_logits_bias`.
//!
//! Weights may be f32 or f16; every shape comes from config.json.

use serde::Deserialize;

use super::{EncoderDecoderCache, EncoderDecoderModel, KvCache, TextSeq2SeqModel};
use crate::nn::{LayerNorm, Linear};
use crate::ops::Activation;
use crate::weights::Weights;
use crate::{DType, Device, Error, Result, Tensor};

/// nn.LayerNorm's default, which both keep.
const LN_EPS: f32 = 1e-5;

/// config.json of BART and Marian (the same names; Marian adds its decoder vocabulary).
#[derive(Clone, Debug, Deserialize)]
pub struct BartConfig {
    pub vocab_size: usize,
    pub d_model: usize,
    pub encoder_layers: usize,
    pub decoder_layers: usize,
    pub encoder_attention_heads: usize,
    pub decoder_attention_heads: usize,
    pub encoder_ffn_dim: usize,
    pub decoder_ffn_dim: usize,
    pub max_position_embeddings: usize,
    #[serde(default = "default_act")]
    pub activation_function: String,
    #[serde(default)]
    pub scale_embedding: bool,
    pub decoder_start_token_id: Option<u32>,
    pub pad_token_id: Option<u32>,
    #[serde(default = "yes")]
    pub tie_word_embeddings: bool,
    /// Marian: the target vocabulary when it is not the source's.
    pub decoder_vocab_size: Option<usize>,
    /// Marian: false gives separate encoder and decoder token embeddings.
    #[serde(default = "yes")]
    pub share_encoder_decoder_embeddings: bool,
}

fn default_act() -> String {
    "gelu".into()
}
fn yes() -> bool {
    true
}

impl BartConfig {
    fn check(&self, family: &str) -> Result<()> {
        let heads = [("encoder", self.encoder_attention_heads), ("decoder", self.decoder_attention_heads)];
        for (what, h) in heads {
            if h == 0 || !self.d_model.is_multiple_of(h) {
                return Err(Error::Config(format!("{family}: d_model {} is not split by {h} {what} attention heads", self.d_model)));
            }
        }
        if self.vocab_size == 0 || self.max_position_embeddings == 0 || self.decoder_vocab() == 0 {
            return Err(Error::Config(format!("{family}: vocab_size and max_position_embeddings must be positive")));
        }
        Ok(())
    }

    /// The decoder's (target) vocabulary: Marian's `decoder_vocab_size` when its embeddings are
    /// not shared, else `vocab_size`.
    pub fn decoder_vocab(&self) -> usize {
        match self.decoder_vocab_size {
            Some(v) if !self.share_encoder_decoder_embeddings => v,
            _ => self.vocab_size,
        }
    }
}

/// How a checkpoint's position embeddings come.
pub enum Positions {
    /// Stored as `embed_positions.weight` [max positions + offset, d] (BART: offset 2).
    Learned { offset: usize },
    /// A fixed table [max positions, d], made at load (Marian's sinusoids).
    Fixed(Vec<f32>),
}

/// Token plus position embeddings of one side (encoder or decoder).
struct Embeddings {
    tokens: Tensor, // [V, d]; the decoder's is also the output projection when tied
    /// sqrt(d_model) as a [1] tensor, with `scale_embedding`.
    scale: Option<Tensor>,
    positions: Tensor, // [max positions + offset, d] f32
    offset: usize,
    max_positions: usize,
    /// BART's `layernorm_embedding`.
    norm: Option<LayerNorm>,
}

impl Embeddings {
    fn load(vb: &Weights, tokens: Tensor, config: &BartConfig, positions: &Positions, norm: bool) -> Result<Embeddings> {
        let (d, n) = (config.d_model, config.max_position_embeddings);
        let (table, offset) = match positions {
            Positions::Learned { offset } => (vb.get_f32("embed_positions.weight", &[n + offset, d])?, *offset),
            Positions::Fixed(values) => (Tensor::from_f32(values, &[n, d], vb.device())?, 0),
        };
        let scale = match config.scale_embedding {
            true => Some(Tensor::from_f32(&[(d as f32).sqrt()], &[1], vb.device())?),
            false => None,
        };
        let norm = if norm { Some(LayerNorm::load(&vb.pp("layernorm_embedding"), d, LN_EPS)?) } else { None };
        Ok(Embeddings { tokens, scale, positions: table, offset, max_positions: n, norm })
    }

    /// `ids` at positions `start..`: [T, d].
    fn forward(&self, ids: &[u32], start: usize, what: &str) -> Result<Tensor> {
        let vocab = self.tokens.dims()[0];
        if let Some(bad) = ids.iter().find(|&&id| id as usize >= vocab) {
            return Err(Error::Input(format!("token id {bad} is outside the {what} vocabulary of {vocab}")));
        }
        if start + ids.len() > self.max_positions {
            return Err(Error::Input(format!(
                "{} {what} positions exceed the model's {} (max_position_embeddings)",
                start + ids.len(),
                self.max_positions
            )));
        }
        let dev = self.tokens.device();
        let mut x = self.tokens.gather_rows(&Tensor::from_u32(ids, &[ids.len()], dev)?)?;
        if let Some(scale) = &self.scale {
            x = x.mul(scale)?;
        }
        let positions: Vec<u32> = (start..start + ids.len()).map(|p| (p + self.offset) as u32).collect();
        let x = x.add(&self.positions.gather_rows(&Tensor::from_u32(&positions, &[ids.len()], dev)?)?)?;
        match &self.norm {
            Some(norm) => norm.forward(&x),
            None => Ok(x),
        }
    }
}

/// One encoder layer's weights, by their Hugging Face names (the BART family's and the
/// pre-LayerNorm mBART / M2M100's are the same; only the order of the norms differs).
pub(super) struct EncoderLayer {
    pub qkv: Linear, // [3 d, d]
    pub out: Linear,
    pub attn_norm: LayerNorm,
    pub fc1: Linear,
    pub fc2: Linear,
    pub final_norm: LayerNorm,
}

/// One decoder layer's weights: self-attention, cross-attention, feed-forward.
pub(super) struct DecoderLayer {
    pub self_qkv: Linear, // [3 d, d]
    pub self_out: Linear,
    pub self_norm: LayerNorm,
    pub cross_q: Linear,
    pub cross_k: Linear,
    pub cross_v: Linear,
    pub cross_out: Linear,
    pub cross_norm: LayerNorm,
    pub fc1: Linear,
    pub fc2: Linear,
    pub final_norm: LayerNorm,
}

/// q, k and v projections of one attention block as one [3 d, d] matrix.
fn fused_qkv(vb: &Weights, d: usize) -> Result<Linear> {
    Linear::load_fused(&[vb.pp("q_proj"), vb.pp("k_proj"), vb.pp("v_proj")], d, &[d, d, d], true)
}

impl EncoderLayer {
    /// `encoder.layers.{l}` of width `d` and feed-forward width `ffn`.
    pub(super) fn load(lb: &Weights, d: usize, ffn: usize) -> Result<EncoderLayer> {
        Ok(EncoderLayer {
            qkv: fused_qkv(&lb.pp("self_attn"), d)?,
            out: Linear::load(&lb.pp("self_attn.out_proj"), d, d, true)?,
            attn_norm: LayerNorm::load(&lb.pp("self_attn_layer_norm"), d, LN_EPS)?,
            fc1: Linear::load(&lb.pp("fc1"), d, ffn, true)?,
            fc2: Linear::load(&lb.pp("fc2"), ffn, d, true)?,
            final_norm: LayerNorm::load(&lb.pp("final_layer_norm"), d, LN_EPS)?,
        })
    }
}

impl DecoderLayer {
    /// `decoder.layers.{l}` of width `d` and feed-forward width `ffn`.
    pub(super) fn load(lb: &Weights, d: usize, ffn: usize) -> Result<DecoderLayer> {
        let x = lb.pp("encoder_attn");
        Ok(DecoderLayer {
            self_qkv: fused_qkv(&lb.pp("self_attn"), d)?,
            self_out: Linear::load(&lb.pp("self_attn.out_proj"), d, d, true)?,
            self_norm: LayerNorm::load(&lb.pp("self_attn_layer_norm"), d, LN_EPS)?,
            cross_q: Linear::load(&x.pp("q_proj"), d, d, true)?,
            cross_k: Linear::load(&x.pp("k_proj"), d, d, true)?,
            cross_v: Linear::load(&x.pp("v_proj"), d, d, true)?,
            cross_out: Linear::load(&x.pp("out_proj"), d, d, true)?,
            cross_norm: LayerNorm::load(&lb.pp("encoder_attn_layer_norm"), d, LN_EPS)?,
            fc1: Linear::load(&lb.pp("fc1"), d, ffn, true)?,
            fc2: Linear::load(&lb.pp("fc2"), ffn, d, true)?,
            final_norm: LayerNorm::load(&lb.pp("final_layer_norm"), d, LN_EPS)?,
        })
    }
}

/// The decoder's cache for one encoder output: every layer's cross-attention keys and values
/// (computed once), and an empty self-attention cache of `max_len` positions.
pub(super) fn encoder_decoder_cache(
    layers: &[DecoderLayer],
    encoder_hidden: &Tensor,
    (d, h, hd): (usize, usize, usize),
    max_len: usize,
    max_positions: usize,
    family: &str,
    kv_dtype: DType,
) -> Result<EncoderDecoderCache> {
    if encoder_hidden.rank() != 2 || encoder_hidden.dims()[1] != d || encoder_hidden.dims()[0] == 0 {
        return Err(Error::Input(format!("encoder output {:?} is not [positions, {d}]", encoder_hidden.dims())));
    }
    if max_len == 0 || max_len > max_positions {
        return Err(Error::Input(format!("a decoder cache of {max_len} tokens ({family} decodes 1..={max_positions})")));
    }
    let s = encoder_hidden.dims()[0];
    let cross = layers
        .iter()
        .map(|layer| {
            Ok((layer.cross_k.forward(encoder_hidden)?.reshape(&[s, h, hd])?, layer.cross_v.forward(encoder_hidden)?.reshape(&[s, h, hd])?))
        })
        .collect::<Result<Vec<_>>>()?;
    let self_attention = KvCache::new(layers.len(), &[max_len, h, hd], kv_dtype, encoder_hidden.device())?;
    Ok(EncoderDecoderCache { self_attention, cross, encoder_len: s })
}

/// Where a layer's LayerNorms sit: after each residual add (BART, Marian), or before each block
/// (M2M100, NLLB, mBART; their stacks end with a LayerNorm of their own).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum NormOrder {
    /// x = LN(x + block(x))
    Post,
    /// x = x + block(LN(x))
    Pre,
}

/// One residual block around `norm` in `order`: `block(input, residual)` returns
/// residual + f(input) (fused into the block's last projection).
fn residual_block(
    x: &Tensor,
    norm: &LayerNorm,
    order: NormOrder,
    block: impl FnOnce(&Tensor, &Tensor) -> Result<Tensor>,
) -> Result<Tensor> {
    match order {
        NormOrder::Post => norm.forward(&block(x, x)?),
        NormOrder::Pre => block(&norm.forward(x)?, x),
    }
}

/// Heads, head width and attention scale (1 / sqrt(head width)) of `heads` heads over width `d`.
pub(super) fn head_dims(d: usize, heads: usize) -> (usize, usize, f32) {
    let hd = d / heads;
    (heads, hd, 1.0 / (hd as f32).sqrt())
}

/// The attention kernels' [start, end) of one sequence of `len` positions.
fn offsets(len: usize, device: &Device) -> Result<Tensor> {
    Tensor::from_u32(&[0, len as u32], &[2], device)
}

/// The encoder's layers over embedded input `x` [S, d] (a final LayerNorm, where the model has
/// one, is the caller's).
pub(super) fn encoder_stack(layers: &[EncoderLayer], mut x: Tensor, heads: usize, act: Activation, order: NormOrder) -> Result<Tensor> {
    let (s, d) = (x.dims()[0], x.dims()[1]);
    let (h, hd, scale) = head_dims(d, heads);
    let offsets = offsets(s, x.device())?;
    for layer in layers {
        x = residual_block(&x, &layer.attn_norm, order, |input, residual| {
            let qkv = layer.qkv.forward(input)?.reshape(&[s, 3 * h, hd])?;
            let (q, k, v) = (qkv.narrow(1, 0, h)?, qkv.narrow(1, h, h)?, qkv.narrow(1, 2 * h, h)?);
            let attended = q.attention(&k, &v, &offsets, scale, false)?.reshape(&[s, d])?;
            layer.out.forward_add(&attended, residual)
        })?;
        x = residual_block(&x, &layer.final_norm, order, |input, residual| {
            layer.fc2.forward_add(&layer.fc1.forward_act(input, act)?, residual)
        })?;
    }
    Ok(x)
}

/// The decoder's layers over embedded tokens `x` [T, d] that follow the cache's positions:
/// causal self-attention appended to the cache, cross-attention over its encoder keys and
/// values, feed-forward. Advances the cache by T.
pub(super) fn decoder_stack(
    layers: &[DecoderLayer],
    mut x: Tensor,
    cache: &mut EncoderDecoderCache,
    heads: usize,
    act: Activation,
    order: NormOrder,
) -> Result<Tensor> {
    let (t, d) = (x.dims()[0], x.dims()[1]);
    let (pos, s) = (cache.self_attention.len(), cache.encoder_len);
    let (h, hd, scale) = head_dims(d, heads);
    cache.self_attention.check_room(t)?;
    if cache.cross.len() != layers.len() {
        return Err(Error::Input(format!("an encoder-decoder cache of {} layers for a decoder of {}", cache.cross.len(), layers.len())));
    }
    let device = x.device().clone();
    let q_offsets = offsets(t, &device)?;
    let self_offsets = offsets(pos + t, &device)?;
    let cross_offsets = offsets(s, &device)?;
    for (l, layer) in layers.iter().enumerate() {
        x = residual_block(&x, &layer.self_norm, order, |input, residual| {
            let qkv = layer.self_qkv.forward(input)?.reshape(&[t, 3 * h, hd])?;
            let (keys, values) = cache.self_attention.append(l, &qkv.narrow(1, h, 2 * h)?)?;
            let attended = qkv.narrow(1, 0, h)?.attention_kv(&keys, &values, &q_offsets, &self_offsets, scale, true)?;
            layer.self_out.forward_add(&attended.reshape(&[t, d])?, residual)
        })?;
        x = residual_block(&x, &layer.cross_norm, order, |input, residual| {
            let q = layer.cross_q.forward(input)?.reshape(&[t, h, hd])?;
            let (k, v) = &cache.cross[l];
            let attended = q.attention_kv(k, v, &q_offsets, &cross_offsets, scale, false)?;
            layer.cross_out.forward_add(&attended.reshape(&[t, d])?, residual)
        })?;
        x = residual_block(&x, &layer.final_norm, order, |input, residual| {
            layer.fc2.forward_add(&layer.fc1.forward_act(input, act)?, residual)
        })?;
    }
    cache.self_attention.advance(t);
    Ok(x)
}

/// A BART-family encoder-decoder with its language-model head.
pub struct Bart {
    config: BartConfig,
    /// "BART" or "Marian", for messages.
    family: &'static str,
    act: Activation,
    encoder_embeddings: Embeddings,
    encoder_layers: Vec<EncoderLayer>,
    decoder_embeddings: Embeddings,
    decoder_layers: Vec<DecoderLayer>,
    lm_head: Tensor,                   // [V, d]
    final_logits_bias: Option<Tensor>, // [V]
    decoder_start: u32,
    /// The decoder's self-attention KV cache dtype (`Weights::kv_cache_dtype`).
    kv_dtype: DType,
}

impl Bart {
    /// A `*ForConditionalGeneration` / `MarianMTModel` checkpoint (weights under `model.`, the
    /// head at the root), or a bare `*Model` (no prefix; the head tied).
    pub fn load(config: BartConfig, vb: &Weights, family: &'static str, positions: Positions, layernorm_embedding: bool) -> Result<Bart> {
        config.check(family)?;
        let decoder_start = config
            .decoder_start_token_id
            .ok_or_else(|| Error::Config(format!("{family}: config.json names no decoder_start_token_id (the decoder's first token)")))?;
        let prefixed = vb.contains("model.shared.weight") || vb.contains("model.encoder.embed_tokens.weight");
        let m = if prefixed { vb.pp("model") } else { vb.clone() };
        let (d, act) = (config.d_model, crate::nn::activation(&config.activation_function)?);
        let (vocab, decoder_vocab) = (config.vocab_size, config.decoder_vocab());
        // Tied tables are stored once: under `shared` or under one of the embed_tokens names.
        let table = |side: &str, rows: usize| -> Result<Tensor> {
            let own = format!("{side}.embed_tokens.weight");
            if m.contains(&own) || !config.share_encoder_decoder_embeddings {
                m.get(&own, &[rows, d])
            } else {
                m.get("shared.weight", &[rows, d])
            }
        };
        let (e, dec) = (m.pp("encoder"), m.pp("decoder"));
        let encoder_embeddings = Embeddings::load(&e, table("encoder", vocab)?, &config, &positions, layernorm_embedding)?;
        let decoder_embeddings = Embeddings::load(&dec, table("decoder", decoder_vocab)?, &config, &positions, layernorm_embedding)?;
        let encoder_layers = (0..config.encoder_layers)
            .map(|l| EncoderLayer::load(&e.pp(format!("layers.{l}")), d, config.encoder_ffn_dim))
            .collect::<Result<Vec<_>>>()?;
        let decoder_layers = (0..config.decoder_layers)
            .map(|l| DecoderLayer::load(&dec.pp(format!("layers.{l}")), d, config.decoder_ffn_dim))
            .collect::<Result<Vec<_>>>()?;
        let lm_head = match config.tie_word_embeddings {
            true => decoder_embeddings.tokens.clone(),
            false => vb.get("lm_head.weight", &[decoder_vocab, d])?,
        };
        // Not in every checkpoint (transformers then makes it zeros).
        let final_logits_bias = match vb.contains("final_logits_bias") {
            true => Some(vb.get_f32("final_logits_bias", &[1, decoder_vocab])?.reshape(&[decoder_vocab])?),
            false => None,
        };
        Ok(Bart {
            kv_dtype: vb.kv_cache_dtype(),
            family,
            act,
            encoder_embeddings,
            encoder_layers,
            decoder_embeddings,
            decoder_layers,
            lm_head,
            final_logits_bias,
            decoder_start,
            config,
        })
    }

    pub fn config(&self) -> &BartConfig {
        &self.config
    }
}

impl EncoderDecoderModel for Bart {
    fn vocab_size(&self) -> usize {
        self.config.decoder_vocab()
    }

    fn max_target_positions(&self) -> usize {
        self.config.max_position_embeddings
    }

    fn new_cache(&self, encoder_hidden: &Tensor, max_len: usize) -> Result<EncoderDecoderCache> {
        let (h, hd, _) = head_dims(self.config.d_model, self.config.decoder_attention_heads);
        let shape = (self.config.d_model, h, hd);
        let max_positions = self.config.max_position_embeddings;
        encoder_decoder_cache(&self.decoder_layers, encoder_hidden, shape, max_len, max_positions, self.family, self.kv_dtype)
    }

    fn decode(&self, tokens: &[u32], cache: &mut EncoderDecoderCache, all_logits: bool) -> Result<Tensor> {
        let x = self.decoder_embeddings.forward(tokens, cache.self_attention.len(), "decoder")?; // [T, d]
        let x = decoder_stack(&self.decoder_layers, x, cache, self.config.decoder_attention_heads, self.act, NormOrder::Post)?;
        let x = if all_logits { x } else { x.narrow(0, tokens.len() - 1, 1)? };
        x.linear(&self.lm_head, self.final_logits_bias.as_ref(), Activation::None)
    }

    fn decode_with_cross_attentions(
        &self,
        _tokens: &[u32],
        _cache: &mut EncoderDecoderCache,
        _heads: &[(usize, usize)],
    ) -> Result<(Tensor, Tensor)> {
        Err(Error::Unsupported(format!(
            "{} has no alignment heads: cross-attention probabilities are Whisper's (word timestamps)",
            self.family
        )))
    }
}

impl TextSeq2SeqModel for Bart {
    fn encode(&self, input_ids: &[u32]) -> Result<Tensor> {
        if input_ids.is_empty() {
            return Err(Error::Input("no input tokens to encode".into()));
        }
        let x = self.encoder_embeddings.forward(input_ids, 0, "encoder")?; // [S, d]
        encoder_stack(&self.encoder_layers, x, self.config.encoder_attention_heads, self.act, NormOrder::Post)
    }

    fn decoder_start_token_id(&self) -> u32 {
        self.decoder_start
    }

    fn max_source_positions(&self) -> usize {
        self.config.max_position_embeddings
    }
}

/// BART (`BartForConditionalGeneration`, DistilBART): learned positions at offset 2 and
/// `layernorm_embedding`.
pub fn load(config: BartConfig, vb: &Weights) -> Result<Bart> {
    Bart::load(config, vb, "BART", Positions::Learned { offset: 2 }, true)
}
