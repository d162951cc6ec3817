//! M2M100 and NLLB-200 (transformers' `M2M100ForConditionalGeneration`; NLLB checkpoints are
//! `model_type: m2m_100` too), as modeling_m2m_100.py has them. The layers are the BART
//! family's (bart.rs loads and runs them: `encoder_stack` / `decoder_stack`, here in
//! pre-LayerNorm order), but:
//!
//! - pre-LayerNorm: x = x + attention(LN(x)), x = x + fc2(act(fc1(LN(x)))), cross-attention
//!   between them in the decoder, and one more LayerNorm (`layer_norm`) after the last layer of
//!   the encoder and of the decoder;
//! - embeddings: one token table (`model.shared`) times sqrt(d_model) with `scale_embedding`,
//!   plus sinusoids computed at load (`M2M100SinusoidalPositionalEmbedding`: sines in the first
//!   half of a row, cosines in the second, the padding row zero), read at positions counted
//!   from `pad_token_id`: a token's position is pad + 1 + its index, a pad token's is pad;
//! - the head: `lm_head` without bias (the shared table when tied).
//!
//! Weights may be f32 or f16; every shape comes from config.json.

use serde::Deserialize;

use super::bart::{DecoderLayer, EncoderLayer, NormOrder, decoder_stack, encoder_decoder_cache, encoder_stack, head_dims};
use super::{EncoderDecoderCache, EncoderDecoderModel, TextSeq2SeqModel};
use crate::nn::LayerNorm;
use crate::ops::Activation;
use crate::weights::Weights;
use crate::{DType, Device, Error, Result, Tensor};

/// config.json of M2M100 / NLLB, with M2M100Config's defaults.
#[derive(Clone, Debug, Deserialize)]
pub struct M2M100Config {
    pub vocab_size: usize,
    pub d_model: usize,
    pub encoder_layers: usize,
    pub decoder_layers: usize,
    pub encoder_attention_heads: usize,
    pub decoder_attention_heads: usize,
    pub encoder_ffn_dim: usize,
    pub decoder_ffn_dim: usize,
    pub max_position_embeddings: usize,
    #[serde(default = "relu")]
    pub activation_function: String,
    #[serde(default = "yes")]
    pub scale_embedding: bool,
    #[serde(default = "two")]
    pub decoder_start_token_id: u32,
    /// Also the positions' padding index.
    #[serde(default = "one")]
    pub pad_token_id: u32,
    #[serde(default = "yes")]
    pub tie_word_embeddings: bool,
}

fn relu() -> String {
    "relu".into()
}
fn yes() -> bool {
    true
}
fn one() -> u32 {
    1
}
fn two() -> u32 {
    2
}

/// M2M100SinusoidalPositionalEmbedding.get_embedding's table [rows, dim], row-major: row p is
/// [sin(p f_0) .. sin(p f_{h-1}), cos(p f_0) .. cos(p f_{h-1})] with h = dim / 2 and
/// f_i = exp(-i ln(10000) / (h - 1)), a zero column more when dim is odd, and the `padding`
/// row zero. In f32, as torch computes it.
pub fn sinusoidal_positions(rows: usize, dim: usize, padding: usize) -> Vec<f32> {
    let half = dim / 2;
    let step = (10000f64.ln() / (half as f64 - 1.0)) as f32;
    let freqs: Vec<f32> = (0..half).map(|i| (i as f32 * -step).exp()).collect();
    let mut table = vec![0f32; rows * dim];
    for p in (0..rows).filter(|&p| p != padding) {
        let row = &mut table[p * dim..(p + 1) * dim];
        for (i, f) in freqs.iter().enumerate() {
            let angle = p as f32 * f;
            row[i] = angle.sin();
            row[half + i] = angle.cos();
        }
    }
    table
}

/// create_position_ids_from_input_ids: the table rows of `ids` that follow `past` tokens.
/// Pad tokens get the padding row; the others count the non-pad tokens of this call.
fn position_ids(ids: &[u32], pad: u32, past: usize) -> Vec<u32> {
    let mut seen = 0;
    ids.iter()
        .map(|&id| {
            if id == pad {
                return pad;
            }
            seen += 1;
            (seen + past) as u32 + pad
        })
        .collect()
}

/// A text encoder-decoder of the M2M100 / NLLB kind with its language-model head.
pub struct M2M100 {
    config: M2M100Config,
    device: Device,
    /// The decoder's self-attention KV cache dtype (`Weights::kv_cache_dtype`).
    kv_dtype: DType,
    act: Activation,
    shared: Tensor, // [V, d]
    /// sqrt(d_model) as a [1] tensor, with `scale_embedding`.
    embed_scale: Option<Tensor>,
    positions: Tensor, // [pad + 1 + max positions, d] f32
    encoder_layers: Vec<EncoderLayer>,
    encoder_norm: LayerNorm,
    decoder_layers: Vec<DecoderLayer>,
    decoder_norm: LayerNorm,
    lm_head: Tensor, // [V, d]
}

impl M2M100 {
    /// An `M2M100ForConditionalGeneration` checkpoint (weights under `model.`, the head at the
    /// root), or a bare `M2M100Model` (no prefix; the head tied).
    pub fn load(config: M2M100Config, vb: &Weights) -> Result<M2M100> {
        let d = config.d_model;
        let heads = [("encoder", config.encoder_attention_heads), ("decoder", config.decoder_attention_heads)];
        for (what, h) in heads {
            if h == 0 || !d.is_multiple_of(h) {
                return Err(Error::Config(format!("M2M100: d_model {d} is not split by {h} {what} attention heads")));
            }
        }
        if config.vocab_size == 0 || config.max_position_embeddings == 0 {
            return Err(Error::Config("M2M100: vocab_size and max_position_embeddings must be positive".into()));
        }
        if d < 4 {
            return Err(Error::Config(format!("M2M100: d_model {d} is too narrow for its sinusoids (4 or more)")));
        }
        let prefixed = vb.contains("model.shared.weight") || vb.contains("model.encoder.embed_tokens.weight");
        let m = if prefixed { vb.pp("model") } else { vb.clone() };
        let shape = [config.vocab_size, d];
        // The tied table is stored once, under `shared` or one of the embed_tokens names.
        let shared = match ["shared.weight", "encoder.embed_tokens.weight", "decoder.embed_tokens.weight"].iter().find(|n| m.contains(n)) {
            Some(name) => m.get(name, &shape)?,
            None => m.get("shared.weight", &shape)?, // the missing-tensor error
        };
        let embed_scale = match config.scale_embedding {
            true => Some(Tensor::from_f32(&[(d as f32).sqrt()], &[1], vb.device())?),
            false => None,
        };
        // Rows up to pad + max positions: the last position of the longest sequence.
        let rows = config.pad_token_id as usize + 1 + config.max_position_embeddings;
        let table = sinusoidal_positions(rows, d, config.pad_token_id as usize);
        let positions = Tensor::from_f32(&table, &[rows, d], vb.device())?;
        let (e, dec) = (m.pp("encoder"), m.pp("decoder"));
        let encoder_layers = (0..config.encoder_layers)
            .map(|l| EncoderLayer::load(&e.pp(format!("layers.{l}")), d, config.encoder_ffn_dim))
            .collect::<Result<Vec<_>>>()?;
        let decoder_layers = (0..config.decoder_layers)
            .map(|l| DecoderLayer::load(&dec.pp(format!("layers.{l}")), d, config.decoder_ffn_dim))
            .collect::<Result<Vec<_>>>()?;
        let lm_head = match config.tie_word_embeddings {
            true => shared.clone(),
            false => vb.get("lm_head.weight", &shape)?,
        };
        Ok(M2M100 {
            kv_dtype: vb.kv_cache_dtype(),
            device: vb.device().clone(),
            act: crate::nn::activation(&config.activation_function)?,
            shared,
            embed_scale,
            positions,
            encoder_layers,
            encoder_norm: LayerNorm::load(&e.pp("layer_norm"), d, 1e-5)?,
            decoder_layers,
            decoder_norm: LayerNorm::load(&dec.pp("layer_norm"), d, 1e-5)?,
            lm_head,
            config,
        })
    }

    /// Token plus position embeddings of `ids` after `past` tokens: [T, d].
    fn embed(&self, ids: &[u32], past: usize, what: &str) -> Result<Tensor> {
        let (vocab, max) = (self.config.vocab_size, self.config.max_position_embeddings);
        if let Some(bad) = ids.iter().find(|&&id| id as usize >= vocab) {
            return Err(Error::Input(format!("token id {bad} is outside the vocabulary of {vocab}")));
        }
        if past + ids.len() > max {
            return Err(Error::Input(format!("{} {what} positions exceed the model's {max} (max_position_embeddings)", past + ids.len())));
        }
        let t = ids.len();
        let mut x = self.shared.gather_rows(&Tensor::from_u32(ids, &[t], &self.device)?)?;
        if let Some(scale) = &self.embed_scale {
            x = x.mul(scale)?;
        }
        let rows = position_ids(ids, self.config.pad_token_id, past);
        x.add(&self.positions.gather_rows(&Tensor::from_u32(&rows, &[t], &self.device)?)?)
    }
}

impl EncoderDecoderModel for M2M100 {
    fn vocab_size(&self) -> usize {
        self.config.vocab_size
    }

    fn max_target_positions(&self) -> usize {
        self.config.max_position_embeddings
    }

    fn new_cache(&self, encoder_hidden: &Tensor, max_len: usize) -> Result<EncoderDecoderCache> {
        let (h, hd, _) = head_dims(self.config.d_model, self.config.decoder_attention_heads);
        let shape = (self.config.d_model, h, hd);
        let max_positions = self.config.max_position_embeddings;
        encoder_decoder_cache(&self.decoder_layers, encoder_hidden, shape, max_len, max_positions, "M2M100", self.kv_dtype)
    }

    fn decode(&self, tokens: &[u32], cache: &mut EncoderDecoderCache, all_logits: bool) -> Result<Tensor> {
        let x = self.embed(tokens, cache.self_attention.len(), "decoder")?; // [T, d]
        let x = decoder_stack(&self.decoder_layers, x, cache, self.config.decoder_attention_heads, self.act, NormOrder::Pre)?;
        let x = if all_logits { x } else { x.narrow(0, tokens.len() - 1, 1)? };
        self.decoder_norm.forward(&x)?.linear(&self.lm_head, None, Activation::None)
    }

    fn decode_with_cross_attentions(
        &self,
        _tokens: &[u32],
        _cache: &mut EncoderDecoderCache,
        _heads: &[(usize, usize)],
    ) -> Result<(Tensor, Tensor)> {
        Err(Error::Unsupported("M2M100 has no alignment heads: cross-attention probabilities are Whisper's (word timestamps)".into()))
    }
}

impl TextSeq2SeqModel for M2M100 {
    fn encode(&self, input_ids: &[u32]) -> Result<Tensor> {
        if input_ids.is_empty() {
            return Err(Error::Input("no input tokens to encode".into()));
        }
        let x = self.embed(input_ids, 0, "encoder")?; // [S, d]
        self.encoder_norm.forward(&encoder_stack(&self.encoder_layers, x, self.config.encoder_attention_heads, self.act, NormOrder::Pre)?)
    }

    fn decoder_start_token_id(&self) -> u32 {
        self.config.decoder_start_token_id
    }

    fn max_source_positions(&self) -> usize {
        self.config.max_position_embeddings
    }
}

#[cfg(test)]
mod tests {
    use super::{position_ids, sinusoidal_positions};

    #[test]
    fn sinusoids_as_transformers_makes_them() {
        // M2M100SinusoidalPositionalEmbedding.get_embedding(4, 6, padding_idx=1) of transformers
        let want: [[f32; 6]; 4] = [
            [0.0, 0.0, 0.0, 1.0, 1.0, 1.0],
            [0.0; 6],
            [0.909_297_4, 0.019_998_667, 0.000_2, -0.416_146_84, 0.999_8, 1.0],
            [0.141_12, 0.029_995_5, 0.000_3, -0.989_992_5, 0.999_55, 1.0],
        ];
        let got = sinusoidal_positions(4, 6, 1);
        for (g, w) in got.iter().zip(want.iter().flatten()) {
            assert!((g - w).abs() < 1e-6, "{got:?}");
        }
        // odd width: a zero column at the end
        let got = sinusoidal_positions(3, 5, 1);
        assert_eq!(got[2 * 5 + 4], 0.0);
    }

    #[test]
    fn positions_count_from_the_padding_index() {
        assert_eq!(position_ids(&[5, 6, 7], 1, 0), [2, 3, 4]);
        // a pad token gets the padding row and is not counted
        assert_eq!(position_ids(&[5, 1, 7], 1, 0), [2, 1, 3]);
        // after a cache of 3
        assert_eq!(position_ids(&[9], 1, 3), [5]);
    }
}
