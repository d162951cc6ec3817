//! T5 (`T5ForConditionalGeneration`: T5 v1.0, T5 v1.1, Flan-T5) and mT5
//! (`MT5ForConditionalGeneration`), as modeling_t5.py has them:
//!
//! - one token table, `shared`, for both sides (no scaling, no position embeddings);
//! - pre-norm layers with T5LayerNorm (an RMS norm: no mean subtracted, no bias):
//!   x = x + o(attention(norm(x))), x = x + ff(norm(x)), cross-attention between them in the
//!   decoder, a final norm after each stack; no projection has a bias;
//! - attention without the 1/sqrt(d) scale, plus a relative position bias: a learned table of
//!   `relative_attention_num_buckets` per head, read at the bucket of each key's distance from
//!   the query (bidirectional in the encoder, looking back only in the decoder), stored in the
//!   first layer of each stack and shared by all its layers; cross-attention has none;
//! - the feed-forward block `DenseReluDense` (v1.0: wo(relu(wi x))) or `DenseGatedActDense`
//!   (v1.1 / Flan-T5 / mT5, "gated-gelu": wo(gelu_new(wi_0 x) * wi_1 x), fused into one matmul);
//! - the output: `lm_head`, or with `tie_word_embeddings` the token table, after scaling the
//!   decoder output by d_model^-0.5.
//!
//! Buckets stop changing past `relative_attention_max_distance`, so the bias of every distance
//! is one table per stack [heads, 2c + 1] (distances -c..=c, the ends standing for anything
//! farther), gathered on the device from the bucket weights at the first forward pass and kept;
//! the attention op adds it by distance (`Tensor::attention_kv_bias`), so it costs no memory per
//! token and serves the decoder's KV cache as it is.

use serde::Deserialize;

use super::{EncoderDecoderCache, EncoderDecoderModel, KvCache, TextSeq2SeqModel};
use crate::nn::Linear;
use crate::ops::{Activation, GateAct};
use crate::weights::Weights;
use crate::{DType, Device, Error, Result, Tensor};

/// T5 has no position table: any length works (its buckets saturate). This bound on source and
/// target positions only keeps a KV cache sized from it allocatable and the kernels' i32
/// positions in range; it is far past the 512 tokens T5 was trained on, and the tokenizer's
/// `model_max_length` (512 for T5's) is what truncates inputs.
const MAX_POSITIONS: usize = 1 << 16;

/// config.json of T5 and mT5.
#[derive(Clone, Debug, Deserialize)]
pub struct T5Config {
    pub vocab_size: usize,
    pub d_model: usize,
    /// Each head's width: heads * d_kv need not be d_model.
    pub d_kv: usize,
    pub d_ff: usize,
    pub num_layers: usize,
    /// The decoder's layers (`num_layers` when absent).
    pub num_decoder_layers: Option<usize>,
    pub num_heads: usize,
    #[serde(default = "default_buckets")]
    pub relative_attention_num_buckets: usize,
    #[serde(default = "default_max_distance")]
    pub relative_attention_max_distance: usize,
    #[serde(default = "default_eps")]
    pub layer_norm_epsilon: f32,
    #[serde(default = "default_ff")]
    pub feed_forward_proj: String,
    #[serde(default = "yes")]
    pub tie_word_embeddings: bool,
    pub decoder_start_token_id: Option<u32>,
    pub pad_token_id: Option<u32>,
}

fn default_buckets() -> usize {
    32
}
fn default_max_distance() -> usize {
    128
}
fn default_eps() -> f32 {
    1e-6
}
fn default_ff() -> String {
    "relu".into()
}
fn yes() -> bool {
    true
}

/// The feed-forward block, from `feed_forward_proj` as T5Config parses it: "ACT" or "gated-ACT",
/// "gated-gelu" meaning gelu_new.
#[derive(Clone, Copy, Debug)]
enum FeedForward {
    Dense(Activation),
    Gated(GateAct),
}

impl FeedForward {
    fn parse(proj: &str) -> Result<FeedForward> {
        let bad = || Error::Config(format!("T5: feed_forward_proj `{proj}` is not `ACT` or `gated-ACT`"));
        match proj.split('-').collect::<Vec<_>>().as_slice() {
            [act] => Ok(FeedForward::Dense(crate::nn::activation(act)?)),
            ["gated", act] => match *act {
                "gelu" | "gelu_new" | "gelu_pytorch_tanh" => Ok(FeedForward::Gated(GateAct::GeluTanh)),
                "silu" | "swish" => Ok(FeedForward::Gated(GateAct::Silu)),
                other => Err(Error::Unsupported(format!("T5: a gated feed-forward with `{other}` (gated-gelu and gated-silu are)"))),
            },
            _ => Err(bad()),
        }
    }
}

/// T5's `_relative_position_bucket`: the bucket of a key at `distance` (key position minus
/// query position), computed as torch does it, in f32 for the logarithmic half.
pub fn relative_position_bucket(distance: i64, bidirectional: bool, num_buckets: usize, max_distance: usize) -> u32 {
    let mut buckets = num_buckets as i64;
    let mut bucket = 0;
    let mut distance = distance;
    if bidirectional {
        buckets /= 2;
        if distance > 0 {
            bucket += buckets;
        }
        distance = distance.abs();
    } else {
        distance = -distance.min(0);
    }
    // half of the buckets are exact distances, the other half logarithmic up to max_distance
    let max_exact = buckets / 2;
    if distance < max_exact {
        return (bucket + distance) as u32;
    }
    let log_ratio = (max_distance as f64 / max_exact as f64).ln() as f32;
    let large = max_exact + ((distance as f32 / max_exact as f32).ln() / log_ratio * (buckets - max_exact) as f32) as i64;
    (bucket + large.min(buckets - 1)) as u32
}

/// One stack's attention bias by distance: [heads, 2c + 1] with entry c + (key - query).
struct PositionBias {
    table: Tensor,
}

impl PositionBias {
    /// From `relative_attention_bias.weight` [buckets, heads]: the bucket of every distance in
    /// -c..=c, gathered on the device (the first forward pass makes it; later ones read it).
    fn load(vb: &Weights, config: &T5Config, bidirectional: bool) -> Result<PositionBias> {
        let (buckets, max_distance, heads) =
            (config.relative_attention_num_buckets, config.relative_attention_max_distance, config.num_heads);
        let weights = vb.get("relative_attention_bias.weight", &[buckets, heads])?;
        // Past max_distance (and past the exact buckets) every distance has the last bucket.
        let c = max_distance.max(buckets) as i64;
        let ids: Vec<u32> = (-c..=c).map(|d| relative_position_bucket(d, bidirectional, buckets, max_distance)).collect();
        let rows = weights.gather_rows(&Tensor::from_u32(&ids, &[ids.len()], vb.device())?)?; // [2c + 1, heads]
        Ok(PositionBias { table: rows.t()?.contiguous()? })
    }
}

struct Attention {
    qkv: Linear, // [3 inner, d]
    o: Linear,   // [d, inner]
}

struct CrossAttention {
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
}

enum Ff {
    Dense {
        wi: Linear,
        wo: Linear,
        act: Activation,
    },
    /// wi_0 and wi_1 fused: [2 d_ff, d], gate first.
    Gated {
        wi: Linear,
        wo: Linear,
        act: GateAct,
    },
}

impl Ff {
    fn load(vb: &Weights, config: &T5Config, kind: FeedForward) -> Result<Ff> {
        let (d, ff) = (config.d_model, config.d_ff);
        let wo = Linear::load(&vb.pp("wo"), ff, d, false)?;
        Ok(match kind {
            FeedForward::Dense(act) => Ff::Dense { wi: Linear::load(&vb.pp("wi"), d, ff, false)?, wo, act },
            FeedForward::Gated(act) => Ff::Gated { wi: Linear::load_fused(&[vb.pp("wi_0"), vb.pp("wi_1")], d, &[ff, ff], false)?, wo, act },
        })
    }

    /// x + ff(normed)
    fn forward_add(&self, normed: &Tensor, x: &Tensor) -> Result<Tensor> {
        match self {
            Ff::Dense { wi, wo, act } => wo.forward_add(&wi.forward_act(normed, *act)?, x),
            Ff::Gated { wi, wo, act } => {
                let h = wi.forward(normed)?; // [T, 2 d_ff]
                let ff = h.dims()[1] / 2;
                h.narrow(1, 0, ff)?.gated_linear(*act, &h.narrow(1, ff, ff)?, &wo.weight, None, Some(x))
            }
        }
    }
}

struct EncoderLayer {
    attn_norm: Tensor,
    attn: Attention,
    ff_norm: Tensor,
    ff: Ff,
}

struct DecoderLayer {
    self_norm: Tensor,
    self_attn: Attention,
    cross_norm: Tensor,
    cross: CrossAttention,
    ff_norm: Tensor,
    ff: Ff,
}

/// A T5 or mT5 encoder-decoder with its language-model head.
pub struct T5 {
    config: T5Config,
    device: Device,
    /// The decoder's self-attention KV cache dtype (`Weights::kv_cache_dtype`).
    kv_dtype: DType,
    shared: Tensor, // [V, d]
    encoder_layers: Vec<EncoderLayer>,
    encoder_bias: PositionBias,
    encoder_norm: Tensor,
    decoder_layers: Vec<DecoderLayer>,
    decoder_bias: PositionBias,
    decoder_norm: Tensor,
    lm_head: Tensor, // [V, d]
    /// d_model^-0.5 as a [1] tensor, when the head is the token table.
    output_scale: Option<Tensor>,
    decoder_start: u32,
}

impl T5 {
    /// A `T5ForConditionalGeneration` / `MT5ForConditionalGeneration` checkpoint.
    pub fn load(config: T5Config, vb: &Weights) -> Result<T5> {
        let (d, heads, d_kv) = (config.d_model, config.num_heads, config.d_kv);
        if d == 0 || heads == 0 || d_kv == 0 || config.vocab_size == 0 || config.d_ff == 0 {
            return Err(Error::Config("T5: d_model, num_heads, d_kv, d_ff and vocab_size must be positive".into()));
        }
        let (buckets, max_distance) = (config.relative_attention_num_buckets, config.relative_attention_max_distance);
        // The logarithmic buckets need max_distance past the exact ones (the decoder's are half
        // the buckets), else transformers' formula gives buckets out of range.
        if buckets < 4 || max_distance <= buckets / 2 {
            return Err(Error::Config(format!(
                "T5: relative_attention_num_buckets {buckets} with relative_attention_max_distance {max_distance}: \
                 buckets must be 4 or more and max_distance past half of them"
            )));
        }
        let ff_kind = FeedForward::parse(&config.feed_forward_proj)?;
        let inner = heads * d_kv;
        let vocab = config.vocab_size;
        // The token table: `shared`, or (in some exports) only under the stacks' embed_tokens.
        let shared = if vb.contains("shared.weight") {
            vb.get("shared.weight", &[vocab, d])?
        } else {
            vb.get("encoder.embed_tokens.weight", &[vocab, d])?
        };
        let norm = |vb: &Weights| vb.get_f32("layer_norm.weight", &[d]);
        let attention = |vb: &Weights| -> Result<Attention> {
            Ok(Attention {
                qkv: Linear::load_fused(&[vb.pp("q"), vb.pp("k"), vb.pp("v")], d, &[inner, inner, inner], false)?,
                o: Linear::load(&vb.pp("o"), inner, d, false)?,
            })
        };
        let (e, dec) = (vb.pp("encoder"), vb.pp("decoder"));
        let encoder_layers = (0..config.num_layers)
            .map(|l| {
                let lb = e.pp(format!("block.{l}.layer"));
                Ok(EncoderLayer {
                    attn_norm: norm(&lb.pp("0"))?,
                    attn: attention(&lb.pp("0.SelfAttention"))?,
                    ff_norm: norm(&lb.pp("1"))?,
                    ff: Ff::load(&lb.pp("1.DenseReluDense"), &config, ff_kind)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let decoder_layers = (0..config.num_decoder_layers.unwrap_or(config.num_layers))
            .map(|l| {
                let lb = dec.pp(format!("block.{l}.layer"));
                let x = lb.pp("1.EncDecAttention");
                Ok(DecoderLayer {
                    self_norm: norm(&lb.pp("0"))?,
                    self_attn: attention(&lb.pp("0.SelfAttention"))?,
                    cross_norm: norm(&lb.pp("1"))?,
                    cross: CrossAttention {
                        q: Linear::load(&x.pp("q"), d, inner, false)?,
                        k: Linear::load(&x.pp("k"), d, inner, false)?,
                        v: Linear::load(&x.pp("v"), d, inner, false)?,
                        o: Linear::load(&x.pp("o"), inner, d, false)?,
                    },
                    ff_norm: norm(&lb.pp("2"))?,
                    ff: Ff::load(&lb.pp("2.DenseReluDense"), &config, ff_kind)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        if encoder_layers.is_empty() || decoder_layers.is_empty() {
            return Err(Error::Config("T5: num_layers and num_decoder_layers must be positive".into()));
        }
        // The first layer of each stack holds its bucket weights.
        let encoder_bias = PositionBias::load(&e.pp("block.0.layer.0.SelfAttention"), &config, true)?;
        let decoder_bias = PositionBias::load(&dec.pp("block.0.layer.0.SelfAttention"), &config, false)?;
        let (lm_head, output_scale) = match config.tie_word_embeddings {
            true => (shared.clone(), Some(Tensor::from_f32(&[(d as f32).powf(-0.5)], &[1], vb.device())?)),
            false => (vb.get("lm_head.weight", &[vocab, d])?, None),
        };
        let decoder_start = config.decoder_start_token_id.or(config.pad_token_id).unwrap_or(0);
        Ok(T5 {
            kv_dtype: vb.kv_cache_dtype(),
            device: vb.device().clone(),
            shared,
            encoder_layers,
            encoder_bias,
            encoder_norm: e.get_f32("final_layer_norm.weight", &[d])?,
            decoder_layers,
            decoder_bias,
            decoder_norm: dec.get_f32("final_layer_norm.weight", &[d])?,
            lm_head,
            output_scale,
            decoder_start,
            config,
        })
    }

    fn offsets(&self, len: usize) -> Result<Tensor> {
        Tensor::from_u32(&[0, len as u32], &[2], &self.device)
    }

    fn embed(&self, ids: &[u32], what: &str) -> Result<Tensor> {
        let vocab = self.config.vocab_size;
        if let Some(bad) = ids.iter().find(|&&id| id as usize >= vocab) {
            return Err(Error::Input(format!("token id {bad} is outside the {what} vocabulary of {vocab}")));
        }
        self.shared.gather_rows(&Tensor::from_u32(ids, &[ids.len()], &self.device)?)
    }

    fn rms_norm(&self, x: &Tensor, weight: &Tensor) -> Result<Tensor> {
        x.rms_norm(weight, self.config.layer_norm_epsilon)
    }
}

/// T5 scores are q . k without the 1/sqrt(d) scale (folded into its weights in training).
const SCALE: f32 = 1.0;

impl EncoderDecoderModel for T5 {
    fn vocab_size(&self) -> usize {
        self.config.vocab_size
    }

    /// No learned positions: see `MAX_POSITIONS`.
    fn max_target_positions(&self) -> usize {
        MAX_POSITIONS
    }

    fn new_cache(&self, encoder_hidden: &Tensor, max_len: usize) -> Result<EncoderDecoderCache> {
        let (d, h, hd) = (self.config.d_model, self.config.num_heads, self.config.d_kv);
        if encoder_hidden.rank() != 2 || encoder_hidden.dims()[1] != d || encoder_hidden.dims()[0] == 0 {
            return Err(Error::Input(format!("encoder output {:?} is not [positions, {d}]", encoder_hidden.dims())));
        }
        if max_len == 0 || max_len > MAX_POSITIONS {
            return Err(Error::Input(format!("a decoder cache of {max_len} tokens (T5 decodes 1..={MAX_POSITIONS} here)")));
        }
        let s = encoder_hidden.dims()[0];
        let cross = self
            .decoder_layers
            .iter()
            .map(|layer| {
                Ok((
                    layer.cross.k.forward(encoder_hidden)?.reshape(&[s, h, hd])?,
                    layer.cross.v.forward(encoder_hidden)?.reshape(&[s, h, hd])?,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        let self_attention = KvCache::new(self.decoder_layers.len(), &[max_len, h, hd], self.kv_dtype, &self.device)?;
        Ok(EncoderDecoderCache { self_attention, cross, encoder_len: s })
    }

    fn decode(&self, tokens: &[u32], cache: &mut EncoderDecoderCache, all_logits: bool) -> Result<Tensor> {
        let (t, pos, s) = (tokens.len(), cache.self_attention.len(), cache.encoder_len);
        let (h, hd) = (self.config.num_heads, self.config.d_kv);
        let inner = h * hd;
        cache.self_attention.check_room(t)?;
        if cache.cross.len() != self.decoder_layers.len() {
            return Err(Error::Input(format!(
                "an encoder-decoder cache of {} layers for a decoder of {}",
                cache.cross.len(),
                self.decoder_layers.len()
            )));
        }
        let mut x = self.embed(tokens, "decoder")?; // [T, d]
        let q_offsets = self.offsets(t)?;
        let self_offsets = self.offsets(pos + t)?;
        let cross_offsets = self.offsets(s)?;
        for (l, layer) in self.decoder_layers.iter().enumerate() {
            let qkv = layer.self_attn.qkv.forward(&self.rms_norm(&x, &layer.self_norm)?)?.reshape(&[t, 3 * h, hd])?;
            let (keys, values) = cache.self_attention.append(l, &qkv.narrow(1, h, 2 * h)?)?;
            // The new queries sit at positions pos.., bottom-right aligned over the cached keys.
            let attended =
                qkv.narrow(1, 0, h)?.attention_kv_bias(&keys, &values, &q_offsets, &self_offsets, &self.decoder_bias.table, SCALE, true)?;
            x = layer.self_attn.o.forward_add(&attended.reshape(&[t, inner])?, &x)?;

            let q = layer.cross.q.forward(&self.rms_norm(&x, &layer.cross_norm)?)?.reshape(&[t, h, hd])?;
            let (k, v) = &cache.cross[l];
            let attended = q.attention_kv(k, v, &q_offsets, &cross_offsets, SCALE, false)?;
            x = layer.cross.o.forward_add(&attended.reshape(&[t, inner])?, &x)?;

            x = layer.ff.forward_add(&self.rms_norm(&x, &layer.ff_norm)?, &x)?;
        }
        cache.self_attention.advance(t);
        let x = if all_logits { x } else { x.narrow(0, t - 1, 1)? };
        let mut x = self.rms_norm(&x, &self.decoder_norm)?;
        if let Some(scale) = &self.output_scale {
            // tied to the token table: the decoder output scaled by d_model^-0.5 first
            x = x.mul(scale)?;
        }
        x.linear(&self.lm_head, None, Activation::None)
    }

    fn decode_with_cross_attentions(
        &self,
        _tokens: &[u32],
        _cache: &mut EncoderDecoderCache,
        _heads: &[(usize, usize)],
    ) -> Result<(Tensor, Tensor)> {
        Err(Error::Unsupported("T5 has no alignment heads: cross-attention probabilities are Whisper's (word timestamps)".into()))
    }
}

impl TextSeq2SeqModel for T5 {
    fn encode(&self, input_ids: &[u32]) -> Result<Tensor> {
        if input_ids.is_empty() {
            return Err(Error::Input("no input tokens to encode".into()));
        }
        if input_ids.len() > MAX_POSITIONS {
            return Err(Error::Input(format!("{} input tokens (T5 encodes at most {MAX_POSITIONS} here)", input_ids.len())));
        }
        let s = input_ids.len();
        let (h, hd) = (self.config.num_heads, self.config.d_kv);
        let offsets = self.offsets(s)?;
        let mut x = self.embed(input_ids, "encoder")?; // [S, d]
        for layer in &self.encoder_layers {
            let qkv = layer.attn.qkv.forward(&self.rms_norm(&x, &layer.attn_norm)?)?.reshape(&[s, 3 * h, hd])?;
            let (q, k, v) = (qkv.narrow(1, 0, h)?, qkv.narrow(1, h, h)?, qkv.narrow(1, 2 * h, h)?);
            let attended = q.attention_kv_bias(&k, &v, &offsets, &offsets, &self.encoder_bias.table, SCALE, false)?;
            x = layer.attn.o.forward_add(&attended.reshape(&[s, h * hd])?, &x)?;
            x = layer.ff.forward_add(&self.rms_norm(&x, &layer.ff_norm)?, &x)?;
        }
        self.rms_norm(&x, &self.encoder_norm)
    }

    /// config.json's `decoder_start_token_id`: the pad token (0) in every T5 checkpoint.
    fn decoder_start_token_id(&self) -> u32 {
        self.decoder_start
    }

    /// No learned positions: see `MAX_POSITIONS` (the tokenizer's model_max_length truncates).
    fn max_source_positions(&self) -> usize {
        MAX_POSITIONS
    }
}

#[cfg(test)]
mod tests {
    use super::{FeedForward, relative_position_bucket};
    use crate::ops::{Activation, GateAct, UnaryOp};

    #[test]
    fn feed_forward_proj_as_t5config_parses_it() {
        assert!(matches!(FeedForward::parse("relu").unwrap(), FeedForward::Dense(Activation::Unary(UnaryOp::Relu))));
        assert!(matches!(FeedForward::parse("gelu").unwrap(), FeedForward::Dense(Activation::Unary(UnaryOp::Gelu))));
        // "gated-gelu" is gelu_new (T5Config special-cases it), as Flan-T5 and mT5 use it
        assert!(matches!(FeedForward::parse("gated-gelu").unwrap(), FeedForward::Gated(GateAct::GeluTanh)));
        assert!(matches!(FeedForward::parse("gated-silu").unwrap(), FeedForward::Gated(GateAct::Silu)));
        for bad in ["gated-relu", "gated-gelu-x", "fast-gelu", "nope"] {
            assert!(FeedForward::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn every_bucket_from_minus_300_to_300_as_transformers() {
        // transformers' buckets of torch.arange(-300, 301) at (32, 128) and (8, 20), both ways
        let want: serde_json::Value = serde_json::from_str(BUCKETS).unwrap();
        for (key, bidirectional, buckets, max_distance) in
            [("b", true, 32, 128), ("c", false, 32, 128), ("b8", true, 8, 20), ("c8", false, 8, 20)]
        {
            let got: Vec<u32> = (-300..=300).map(|d| relative_position_bucket(d, bidirectional, buckets, max_distance)).collect();
            let want: Vec<u32> = want[key].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
            assert_eq!(got, want, "{key}");
        }
    }

    #[test]
    fn buckets_as_transformers_computes_them() {
        // T5Attention._relative_position_bucket(torch.arange(-200, 201)) at t5-small's 32 buckets
        // and max distance 128, at the distances where buckets change or the log lands on whole numbers
        let distances =
            [-200, -128, -127, -64, -63, -32, -31, -16, -15, -9, -8, -7, -1, 0, 1, 7, 8, 9, 15, 16, 31, 32, 63, 64, 127, 128, 200];
        let bidirectional = [15, 15, 15, 14, 13, 12, 11, 10, 9, 8, 8, 7, 1, 0, 17, 23, 24, 24, 25, 26, 27, 28, 29, 30, 31, 31, 31];
        let causal = [31, 31, 31, 26, 26, 21, 21, 16, 15, 9, 8, 7, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        for (i, &d) in distances.iter().enumerate() {
            assert_eq!(relative_position_bucket(d, true, 32, 128), bidirectional[i], "bidirectional {d}");
            assert_eq!(relative_position_bucket(d, false, 32, 128), causal[i], "causal {d}");
        }
    }

    const BUCKETS: &str = r#"{"b":[15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,15,14,14,14,14,14,14,14,14,14,14,14,14,14,14,14,14,14,14,14,14,14,14,14,14,14,14,14,13,13,13,13,13,13,13,13,13,13,13,13,13,13,13,13,13,13,12,12,12,12,12,12,12,12,12,12,12,12,12,12,11,11,11,11,11,11,11,11,11,10,10,10,10,10,10,10,9,9,9,9,8,8,8,8,7,6,5,4,3,2,1,0,17,18,19,20,21,22,23,24,24,24,24,25,25,25,25,26,26,26,26,26,26,26,27,27,27,27,27,27,27,27,27,28,28,28,28,28,28,28,28,28,28,28,28,28,28,29,29,29,29,29,29,29,29,29,29,29,29,29,29,29,29,29,29,30,30,30,30,30,30,30,30,30,30,30,30,30,30,30,30,30,30,30,30,30,30,30,30,30,30,30,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31],"c":[31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,30,30,30,30,30,30,30,30,30,30,30,30,30,30,29,29,29,29,29,29,29,29,29,29,29,29,28,28,28,28,28,28,28,28,28,28,27,27,27,27,27,27,27,27,27,27,26,26,26,26,26,26,26,26,25,25,25,25,25,25,25,24,24,24,24,24,24,23,23,23,23,23,23,22,22,22,22,22,21,21,21,21,20,20,20,20,19,19,19,18,18,18,17,17,16,16,16,15,14,13,12,11,10,9,8,7,6,5,4,3,2,1,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0],"b8":[3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,2,2,2,2,2,1,0,5,6,6,6,6,6,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7],"c8":[7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,6,6,6,6,6,5,5,5,4,4,3,2,1,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]}"#;
}
