//! DeBERTa-v2 and v3 (`model_type` "deberta-v2"), the encoder of transformers'
//! modeling_deberta_v2.py: embeddings (absolute positions and token types optional, an
//! `embed_proj` when embedding_size != hidden_size), then layers of disentangled self-attention
//! (content-to-content plus content-to-position "c2p" and position-to-content "p2c" terms over
//! log-bucketed relative positions) and a feed-forward block, each followed by a residual
//! LayerNorm; deberta-v2-xlarge's ConvLayer after the first layer.
//!
//! The batch comes packed ([T, H], no padding) and the linear layers run on it packed. Attention
//! pads it to [B, S] (the `unpack` op), because the relative-position terms are [S, S] tables
//! picked from [S, 2 span] products (`take_along_last`): the index table is then one [S, S]
//! shared by every sequence and head, and the scores are batched matmuls [heads * B, S, S]. The
//! cost is attention over B * S rows instead of T (padded keys are masked, padded queries dropped
//! when the rows are gathered back), and score tensors of heads * B * S * S floats: fine for
//! batches of similar lengths, wasteful for one long sequence among short ones.

use serde::Deserialize;

use super::heads::{self, HeadKind, HeadStep, TextHead};
use super::{EncoderModel, ModelConfig};
use crate::nn::{self, LayerNorm, Linear};
use crate::ops::{Activation, PoolMode};
use crate::tokenizer::Batch;
use crate::weights::Weights;
use crate::{Device, Error, Result, Tensor};

#[derive(Clone, Debug, Deserialize)]
pub struct DebertaV2Config {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    #[serde(default = "default_act")]
    pub hidden_act: String,
    #[serde(default = "default_max_positions")]
    pub max_position_embeddings: usize,
    #[serde(default)]
    pub type_vocab_size: usize,
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    /// Width of the embedding tables (hidden_size when absent; else `embed_proj` maps it).
    #[serde(default)]
    pub embedding_size: Option<usize>,
    /// Per-head width when it is not hidden_size / heads.
    #[serde(default)]
    pub attention_head_size: Option<usize>,
    #[serde(default = "default_true")]
    pub position_biased_input: bool,
    #[serde(default)]
    pub relative_attention: bool,
    /// < 1: max_position_embeddings.
    #[serde(default = "minus_one")]
    pub max_relative_positions: i64,
    /// > 0: relative positions are log-bucketed into this many buckets each way.
    #[serde(default = "minus_one")]
    pub position_buckets: i64,
    /// A list (["p2c", "c2p"]) or the older "p2c|c2p" string.
    #[serde(default)]
    pub pos_att_type: Option<PosAttType>,
    #[serde(default)]
    pub share_att_key: bool,
    /// "layer_norm" (possibly among others joined by `|`): the relative embeddings are normalized.
    #[serde(default = "default_norm_rel_ebd")]
    pub norm_rel_ebd: String,
    /// > 0: the ConvLayer of deberta-v2-xlarge after the first layer.
    #[serde(default)]
    pub conv_kernel_size: i64,
    #[serde(default = "one")]
    pub conv_groups: usize,
    #[serde(default = "default_conv_act")]
    pub conv_act: String,
    /// The sequence-classification pooler (ContextPooler): its width and activation.
    #[serde(default)]
    pub pooler_hidden_size: Option<usize>,
    #[serde(default = "default_act")]
    pub pooler_hidden_act: String,
    /// The masked-LM head: `cls.predictions` (true) or `lm_predictions.lm_head`.
    #[serde(default = "default_true")]
    pub legacy: bool,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum PosAttType {
    List(Vec<String>),
    Joined(String),
}

fn default_act() -> String {
    "gelu".into()
}
fn default_max_positions() -> usize {
    512
}
fn default_eps() -> f64 {
    1e-7
}
fn default_true() -> bool {
    true
}
fn minus_one() -> i64 {
    -1
}
fn one() -> usize {
    1
}
fn default_norm_rel_ebd() -> String {
    "none".into()
}
fn default_conv_act() -> String {
    "tanh".into()
}

/// An activation by its transformers name, the config field named in the error.
fn activation(name: &str, field: &str) -> Result<Activation> {
    nn::activation(name).map_err(|e| Error::Unsupported(format!("{field}: {e}")))
}

impl DebertaV2Config {
    /// Which relative terms attention adds: (c2p, p2c). Python tests membership only, so
    /// other entries (v1's "p2p") are ignored as there.
    fn att_types(&self) -> (bool, bool) {
        let types: Vec<String> = match &self.pos_att_type {
            None => Vec::new(),
            Some(PosAttType::List(v)) => v.clone(),
            Some(PosAttType::Joined(s)) => s.to_lowercase().split('|').map(|x| x.trim().to_string()).collect(),
        };
        (types.iter().any(|t| t == "c2p"), types.iter().any(|t| t == "p2c"))
    }

    fn max_relative_positions(&self) -> usize {
        if self.max_relative_positions < 1 { self.max_position_embeddings } else { self.max_relative_positions as usize }
    }
}

/// `make_log_bucket_position` of transformers for one relative position, with its float32
/// arithmetic: positions within bucket_size / 2 stay as they are, farther ones are bucketed
/// logarithmically up to max_position (and beyond it, unclamped; callers clamp the index).
pub fn log_bucket_position(relative: i64, bucket_size: usize, max_position: usize) -> i64 {
    let mid = (bucket_size / 2) as i64;
    let abs = if relative < mid && relative > -mid { mid - 1 } else { relative.abs() };
    if abs <= mid {
        return relative;
    }
    // torch: abs_pos / mid and log in float32; (max_position - 1) / mid is a Python float made
    // a float32 tensor.
    let ratio = ((max_position as f64 - 1.0) / mid as f64) as f32;
    let log_pos = ((abs as f32 / mid as f32).ln() / ratio.ln() * (mid - 1) as f32).ceil() + mid as f32;
    log_pos as i64 * relative.signum()
}

/// How attention turns a query-key distance into a row of the relative embedding table.
#[derive(Clone, Copy, Debug)]
struct RelativePositions {
    /// Rows each way: the table has 2 * span.
    span: usize,
    /// (bucket_size, max_position) when positions are log-bucketed.
    buckets: Option<(usize, usize)>,
}

impl RelativePositions {
    /// build_relative_position: query i, key j → i - j, bucketed.
    fn relative(&self, i: usize, j: usize) -> i64 {
        let r = i as i64 - j as i64;
        match self.buckets {
            Some((b, m)) => log_bucket_position(r, b, m),
            None => r,
        }
    }

    /// Table rows of c2p (query i, key j: row of distance i - j) and p2c (key j, query i: row
    /// of the opposite distance), both [S, S] row-major, as `torch.clamp(+-rel + span, 0,
    /// 2 span - 1)`.
    fn indices(&self, s: usize) -> (Vec<usize>, Vec<usize>) {
        let top = 2 * self.span as i64 - 1;
        let row = |r: i64| (r + self.span as i64).clamp(0, top) as usize;
        let mut c2p = Vec::with_capacity(s * s);
        let mut p2c = Vec::with_capacity(s * s);
        for a in 0..s {
            for b in 0..s {
                // c2p[i = a, j = b]; p2c[j = a, i = b] reads relative_pos[j, i] = rel(a, b).
                c2p.push(row(self.relative(a, b)));
                p2c.push(row(-self.relative(a, b)));
            }
        }
        (c2p, p2c)
    }
}

struct Embeddings {
    word: Tensor, // [vocab, E]
    /// [max_positions, E], only when position_biased_input.
    position: Option<Tensor>,
    /// [type_vocab, E], only when type_vocab_size > 0.
    token_type: Option<Tensor>,
    /// [H, E], only when E != H.
    proj: Option<Linear>,
    norm: LayerNorm,
}

/// The relative embedding table and what reads it.
struct Relative {
    table: Tensor, // [2 span, H]
    norm: Option<LayerNorm>,
    positions: RelativePositions,
}

/// deberta-v2-xlarge's ConvLayer: Conv1d over each sequence's embedding output (zero padding
/// (k - 1) / 2 on each side), its activation, then LayerNorm with the first layer's output.
struct ConvLayer {
    /// The Conv1d weight [H, H, k] laid out as a linear weight [H, k * H] (tap-major input).
    weight: Tensor,
    bias: Tensor, // [H]
    norm: LayerNorm,
    kernel: usize,
    act: Activation,
}

struct Layer {
    qkv: Linear,               // [3A, H]: query_proj, key_proj, value_proj stacked (A = heads * d)
    pos_key: Option<Linear>,   // [A, H] pos_key_proj (c2p without share_att_key)
    pos_query: Option<Linear>, // [A, H] pos_query_proj (p2c without share_att_key)
    attn_out: Linear,          // [H, A]
    attn_norm: LayerNorm,
    intermediate: Linear, // [I, H]
    output: Linear,       // [H, I]
    output_norm: LayerNorm,
}

pub struct DebertaV2 {
    config: DebertaV2Config,
    act: Activation,
    device: Device,
    heads: usize,
    head_dim: usize,
    c2p: bool,
    p2c: bool,
    /// 1 / sqrt(head_dim * (1 + number of relative terms)), as Python scales every term.
    scale: f32,
    embeddings: Embeddings,
    relative: Option<Relative>,
    conv: Option<ConvLayer>,
    layers: Vec<Layer>,
}

/// Per-forward tensors every layer shares.
struct Padding {
    b: usize,
    s: usize,
    offsets: Tensor, // [B + 1] u32
    /// Row b * S + p of the padded batch for each packed token: [T] u32.
    rows: Tensor,
    /// 0 for real keys, -inf for padding: [B, 1, S]; None when no sequence is padded.
    mask: Option<Tensor>,
}

/// The relative-position inputs of one forward.
struct RelativeInputs {
    /// The rows of the (normalized) relative table the batch can reach: [R, H].
    table: Tensor,
    c2p: Tensor, // [S, S] u32 indices into table
    p2c: Tensor, // [S, S] u32
}

impl DebertaV2 {
    pub fn load(config: DebertaV2Config, vb: &Weights) -> Result<DebertaV2> {
        let (h, heads) = (config.hidden_size, config.num_attention_heads);
        if heads == 0 || h % heads != 0 {
            return Err(Error::Config(format!("hidden_size {h} is not a multiple of num_attention_heads {heads}")));
        }
        let d = config.attention_head_size.unwrap_or(h / heads);
        let e = config.embedding_size.unwrap_or(h);
        if d == 0 || e == 0 || config.vocab_size == 0 {
            return Err(Error::Config(format!("attention_head_size {d}, embedding_size {e}, vocab_size {}", config.vocab_size)));
        }
        let a = heads * d;
        let (mut c2p, mut p2c) = config.att_types();
        let eps = config.layer_norm_eps as f32;
        let act = activation(&config.hidden_act, "hidden_act")?;
        // Scaled by every term named in pos_att_type, even without relative attention.
        let scale = 1.0 / ((d * (1 + c2p as usize + p2c as usize)) as f32).sqrt();
        if !config.relative_attention {
            (c2p, p2c) = (false, false);
        }

        let vb = encoder_weights(vb);
        let em = vb.pp("embeddings");
        let embeddings = Embeddings {
            word: em.get("word_embeddings.weight", &[config.vocab_size, e])?,
            position: match config.position_biased_input {
                true => Some(em.get("position_embeddings.weight", &[config.max_position_embeddings, e])?),
                false => None,
            },
            token_type: match config.type_vocab_size {
                0 => None,
                n => Some(em.get("token_type_embeddings.weight", &[n, e])?),
            },
            proj: if e != h { Some(Linear::load(&em.pp("embed_proj"), e, h, false)?) } else { None },
            norm: LayerNorm::load(&em.pp("LayerNorm"), h, eps)?,
        };

        let enc = vb.pp("encoder");
        let relative = if c2p || p2c {
            let max_rel = config.max_relative_positions();
            let buckets = usize::try_from(config.position_buckets).ok().filter(|&b| b > 0);
            let span = buckets.unwrap_or(max_rel);
            if span == 0 {
                return Err(Error::Config("relative attention with max_relative_positions and max_position_embeddings < 1".into()));
            }
            if let Some(b) = buckets {
                // The log-bucket formula divides by bucket_size / 2 and by log((max - 1) / (b / 2)).
                let ratio = (max_rel as f64 - 1.0) / (b / 2) as f64;
                if b < 2 || ratio <= 0.0 || ratio == 1.0 {
                    return Err(Error::Config(format!(
                        "position_buckets {b} with max_relative_positions {max_rel}: log buckets are undefined"
                    )));
                }
            }
            let norm_rel = config.norm_rel_ebd.to_lowercase().split('|').any(|x| x.trim() == "layer_norm");
            Some(Relative {
                table: enc.get_f32("rel_embeddings.weight", &[2 * span, h])?,
                norm: if norm_rel { Some(LayerNorm::load(&enc.pp("LayerNorm"), h, eps)?) } else { None },
                positions: RelativePositions { span, buckets: buckets.map(|b| (b, max_rel)) },
            })
        } else {
            None
        };

        let conv = match config.conv_kernel_size {
            k if k <= 0 => None,
            k => {
                let k = k as usize;
                if config.conv_groups != 1 {
                    return Err(Error::Unsupported(format!("conv_groups {} (only 1)", config.conv_groups)));
                }
                if k.is_multiple_of(2) {
                    return Err(Error::Config(format!("conv_kernel_size {k}: an even kernel changes the sequence length")));
                }
                let c = enc.pp("conv");
                let weight = c.get("conv.weight", &[h, h, k])?.permute(&[0, 2, 1])?.contiguous()?.reshape(&[h, k * h])?;
                Some(ConvLayer {
                    weight,
                    bias: c.get_f32("conv.bias", &[h])?,
                    norm: LayerNorm::load(&c.pp("LayerNorm"), h, eps)?,
                    kernel: k,
                    act: activation(&config.conv_act, "conv_act")?,
                })
            }
        };

        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        for i in 0..config.num_hidden_layers {
            let l = enc.pp(format!("layer.{i}"));
            let at = l.pp("attention");
            let sa = at.pp("self");
            let own = |want: bool, name: &str| -> Result<Option<Linear>> {
                if want && !config.share_att_key { Linear::load(&sa.pp(name), h, a, true).map(Some) } else { Ok(None) }
            };
            layers.push(Layer {
                qkv: Linear::load_fused(&[sa.pp("query_proj"), sa.pp("key_proj"), sa.pp("value_proj")], h, &[a, a, a], true)?,
                pos_key: own(c2p, "pos_key_proj")?,
                pos_query: own(p2c, "pos_query_proj")?,
                attn_out: Linear::load(&at.pp("output.dense"), a, h, true)?,
                attn_norm: LayerNorm::load(&at.pp("output.LayerNorm"), h, eps)?,
                intermediate: Linear::load(&l.pp("intermediate.dense"), h, config.intermediate_size, true)?,
                output: Linear::load(&l.pp("output.dense"), config.intermediate_size, h, true)?,
                output_norm: LayerNorm::load(&l.pp("output.LayerNorm"), h, eps)?,
            });
        }
        Ok(DebertaV2 { act, device: vb.device().clone(), heads, head_dim: d, c2p, p2c, scale, embeddings, relative, conv, layers, config })
    }

    /// Embedding output [T, H] of the packed batch, its ids checked against the tables.
    fn embed(&self, batch: &Batch) -> Result<Tensor> {
        let c = &self.config;
        let mut ids = Vec::with_capacity(batch.total_tokens());
        let mut positions = Vec::with_capacity(ids.capacity());
        let mut types = Vec::with_capacity(ids.capacity());
        for (s, seq) in batch.ids.iter().enumerate() {
            if c.position_biased_input && seq.len() > c.max_position_embeddings {
                return Err(Error::Input(format!(
                    "a sequence of {} tokens is longer than the model's {} positions",
                    seq.len(),
                    c.max_position_embeddings
                )));
            }
            ids.extend_from_slice(seq);
            positions.extend(0..seq.len() as u32);
            if c.type_vocab_size > 0 {
                match batch.type_ids.get(s) {
                    Some(t) if t.len() == seq.len() => types.extend_from_slice(t),
                    _ => return Err(Error::Input(format!("sequence {s} has {} tokens but no token type for each", seq.len()))),
                }
            }
        }
        if let Some(bad) = ids.iter().find(|&&i| i as usize >= c.vocab_size) {
            return Err(Error::Input(format!("token id {bad} is outside the vocabulary of {}", c.vocab_size)));
        }
        if let Some(bad) = types.iter().find(|&&t| t as usize >= c.type_vocab_size) {
            return Err(Error::Input(format!("token type {bad} is outside the {} token types", c.type_vocab_size)));
        }
        let (t, dev, e) = (ids.len(), &self.device, &self.embeddings);
        let mut x = e.word.gather_rows(&Tensor::from_u32(&ids, &[t], dev)?)?; // [T, E]
        if let Some(position) = &e.position {
            x = x.add(&position.gather_rows(&Tensor::from_u32(&positions, &[t], dev)?)?)?;
        }
        if let Some(token_type) = &e.token_type {
            x = x.add(&token_type.gather_rows(&Tensor::from_u32(&types, &[t], dev)?)?)?;
        }
        if let Some(proj) = &e.proj {
            x = proj.forward(&x)?; // [T, H]
        }
        e.norm.forward(&x)
    }

    fn padding(&self, batch: &Batch) -> Result<Padding> {
        let (b, s, dev) = (batch.len(), batch.max_len(), &self.device);
        let offsets = batch.offsets();
        let rows: Vec<u32> = batch.ids.iter().enumerate().flat_map(|(i, seq)| (0..seq.len()).map(move |p| (i * s + p) as u32)).collect();
        let mask = if batch.ids.iter().any(|seq| seq.len() != s) {
            let m: Vec<f32> =
                batch.ids.iter().flat_map(|seq| (0..s).map(move |j| if j < seq.len() { 0.0 } else { f32::NEG_INFINITY })).collect();
            Some(Tensor::from_f32(&m, &[b, 1, s], dev)?)
        } else {
            None
        };
        Ok(Padding {
            b,
            s,
            offsets: Tensor::from_u32(&offsets, &[offsets.len()], dev)?,
            rows: Tensor::from_u32(&rows, &[rows.len()], dev)?,
            mask,
        })
    }

    /// Index tables for sequences padded to `s`, and the window of table rows they reach (for
    /// short inputs far fewer than 2 span: only those rows are normalized and projected).
    fn relative_inputs(&self, s: usize) -> Result<Option<RelativeInputs>> {
        let Some(rel) = &self.relative else { return Ok(None) };
        let (c2p, p2c) = rel.positions.indices(s);
        let lo = c2p.iter().chain(&p2c).copied().min().unwrap_or(0);
        let hi = c2p.iter().chain(&p2c).copied().max().unwrap_or(0);
        let shift = |v: Vec<usize>| -> Vec<u32> { v.into_iter().map(|i| (i - lo) as u32).collect() };
        let table = rel.table.narrow(0, lo, hi - lo + 1)?; // [R, H]
        let table = match &rel.norm {
            Some(norm) => norm.forward(&table)?,
            None => table,
        };
        Ok(Some(RelativeInputs {
            table,
            c2p: Tensor::from_u32(&shift(c2p), &[s, s], &self.device)?,
            p2c: Tensor::from_u32(&shift(p2c), &[s, s], &self.device)?,
        }))
    }

    /// One layer's self-attention block: LayerNorm(x + dense(attention(x))), [T, H] → [T, H].
    fn attention(&self, layer: &Layer, x: &Tensor, pad: &Padding, rel: Option<&RelativeInputs>) -> Result<Tensor> {
        let (b, s, heads, d) = (pad.b, pad.s, self.heads, self.head_dim);
        let a = heads * d;
        let qkv = layer.qkv.forward(x)?; // [T, 3A]
        let padded = qkv.unpack(&pad.offsets, s)?; // [B, S, 3A], zero rows past each sequence
        // [heads, B * S, d], dense: q and k are read as [heads * B, S, d] and [heads, B * S, d].
        let heads_first = |i: usize| padded.narrow(2, i * a, a)?.reshape(&[b * s, heads, d])?.permute(&[1, 0, 2])?.contiguous();
        let (q, k) = (heads_first(0)?, heads_first(1)?);
        let v = padded.narrow(2, 2 * a, a)?.reshape(&[b, s, heads, d])?.permute(&[2, 0, 1, 3])?; // [heads, B, S, d]
        let qb = q.reshape(&[heads * b, s, d])?;
        let kt = k.reshape(&[heads * b, s, d])?.transpose(1, 2)?; // [heads * B, d, S]

        // The relative table projected by the layer's own key or query weights, or by the shared
        // ones (one fused projection for both), as matmul operands [heads, d, R].
        let shared = match rel {
            Some(rel) if self.config.share_att_key => Some(layer.qkv.forward(&rel.table)?), // [R, 3A]
            _ => None,
        };
        let rel_proj = |rel: &RelativeInputs, own: &Option<Linear>, shared_at: usize| -> Result<Tensor> {
            let p = match (own, &shared) {
                (Some(lin), _) => lin.forward(&rel.table)?,
                (None, Some(all)) => all.narrow(1, shared_at * a, a)?,
                (None, None) => return Err(Error::Config("relative attention without its projection (engine bug)".into())),
            }; // [R, A]
            let r = p.dims()[0];
            p.reshape(&[r, heads, d])?.permute(&[1, 2, 0])
        };

        let mut scores = match rel {
            Some(rel) if self.c2p => {
                let pos_k = rel_proj(rel, &layer.pos_key, 1)?; // [heads, d, R]
                let r = pos_k.dims()[2];
                // c2p[h, i, j] = q_i . pos_k[row(i - j)]
                let c2p = q.matmul(&pos_k)?.reshape(&[heads * b, s, r])?.take_along_last(&rel.c2p)?; // [heads * B, S, S]
                qb.matmul_add(&kt, None, &c2p)?
            }
            _ => qb.matmul(&kt)?, // [heads * B, S, S]
        };
        if let (Some(rel), true) = (rel, self.p2c) {
            let pos_q = rel_proj(rel, &layer.pos_query, 0)?; // [heads, d, R]
            let r = pos_q.dims()[2];
            // p2c[h, j, i] = k_j . pos_q[row(-(j - i))], added transposed: [h, i, j].
            let p2c = k.matmul(&pos_q)?.reshape(&[heads * b, s, r])?.take_along_last(&rel.p2c)?; // [heads * B, S(key), S(query)]
            scores = scores.add(&p2c.transpose(1, 2)?)?;
        }
        let probs = scores.reshape(&[heads, b, s, s])?.softmax(pad.mask.as_ref(), self.scale)?; // [heads, B, S, S]
        let context = probs.matmul(&v)?; // [heads, B, S, d]
        let context = context.permute(&[1, 2, 0, 3])?.contiguous()?.reshape(&[b * s, a])?; // [B * S, A]
        let context = context.gather_rows(&pad.rows)?; // [T, A]: the real rows, packed again
        layer.attn_norm.forward_residual(&layer.attn_out.forward(&context)?, x)
    }
}

/// Checkpoints saved from a task model (DebertaV2ForSequenceClassification, ...) prefix the
/// encoder's weights with `deberta.`.
fn encoder_weights(vb: &Weights) -> Weights {
    Some(vb.pp("deberta")).filter(|v| v.contains("embeddings.word_embeddings.weight")).unwrap_or_else(|| vb.clone())
}

/// The heads of `DebertaV2For*`, by their transformers names.
pub fn load_head(kind: HeadKind, config: &ModelConfig, vb: &Weights) -> Result<TextHead> {
    let c: DebertaV2Config = super::parse(&config.json)?;
    let (h, eps) = (c.hidden_size, c.layer_norm_eps as f32);
    let labels = heads::num_labels(config);
    Ok(match kind {
        // ContextPooler: dense + pooler_hidden_act on the first token, then the classifier.
        HeadKind::SequenceClassification => {
            // The pooler maps pooler_hidden_size to itself and the classifier reads hidden_size.
            if c.pooler_hidden_size.is_some_and(|p| p != h) {
                return Err(Error::Config(format!("pooler_hidden_size {:?} differs from hidden_size {h}", c.pooler_hidden_size)));
            }
            TextHead {
                kind,
                pooling: PoolMode::Cls,
                transform: vec![HeadStep::Dense(
                    Linear::load(&vb.pp("pooler.dense"), h, h, true)?,
                    activation(&c.pooler_hidden_act, "pooler_hidden_act")?,
                )],
                output: Linear::load(&vb.pp("classifier"), h, labels, true)?,
            }
        }
        HeadKind::TokenClassification => TextHead::linear(kind, Linear::load(&vb.pp("classifier"), h, labels, true)?),
        HeadKind::QuestionAnswering => TextHead::linear(kind, Linear::load(&vb.pp("qa_outputs"), h, 2, true)?),
        HeadKind::MaskedLm => {
            let embeddings = encoder_weights(vb).full_name("embeddings.word_embeddings.weight");
            let act = activation(&c.hidden_act, "hidden_act")?;
            // Legacy (LegacyDebertaV2LMPredictionHead): dense H -> E, act, LayerNorm(E), then
            // the decoder tied to the word embeddings [V, E] with `cls.predictions.bias`. Else
            // (DebertaV2LMPredictionHead): dense H -> H, act, LayerNorm(H), word embeddings + bias.
            let (p, e, dense, norm, bias) = if c.legacy {
                (vb.pp("cls.predictions"), c.embedding_size.unwrap_or(h), "transform.dense", "transform.LayerNorm", "bias")
            } else {
                (vb.pp("lm_predictions.lm_head"), h, "dense", "LayerNorm", "bias")
            };
            let bias = if p.contains(bias) { p.full_name(bias) } else { p.full_name("decoder.bias") };
            TextHead {
                kind,
                pooling: PoolMode::Cls,
                transform: vec![
                    HeadStep::Dense(Linear::load(&p.pp(dense), h, e, true)?, act),
                    HeadStep::Norm(LayerNorm::load(&p.pp(norm), e, eps)?),
                ],
                output: heads::tied_decoder(&vb.pp_root(), &p.full_name("decoder"), &embeddings, &bias, c.vocab_size, e)?,
            }
        }
    })
}

impl ConvLayer {
    /// LayerNorm(residual + act(conv(x))) for the packed embedding output x [T, H]: each token
    /// reads its k neighbours in its own sequence (zeros past either end) as one row [k * H].
    fn forward(&self, x: &Tensor, residual: &Tensor, batch: &Batch) -> Result<Tensor> {
        let (t, h, k) = (x.dims()[0], x.dims()[1], self.kernel);
        let dev = x.device();
        let pad = (k - 1) / 2;
        let mut ids = Vec::with_capacity(t * k);
        let mut start = 0;
        for seq in &batch.ids {
            for p in 0..seq.len() {
                // Row t of the extended x is zeros.
                ids.extend((0..k).map(|tap| (p + tap).checked_sub(pad).filter(|&src| src < seq.len()).map_or(t, |src| start + src) as u32));
            }
            start += seq.len();
        }
        let whole = Tensor::from_u32(&[0, t as u32], &[2], dev)?;
        let extended = x.unpack(&whole, t + 1)?.reshape(&[t + 1, h])?; // [T + 1, H]: x, then a zero row
        let taps = extended.gather_rows(&Tensor::from_u32(&ids, &[t * k], dev)?)?.reshape(&[t, k * h])?; // [T, k * H]
        let out = taps.linear(&self.weight, Some(&self.bias), self.act)?; // [T, H]
        self.norm.forward_residual(&out, residual)
    }
}

impl EncoderModel for DebertaV2 {
    fn forward(&self, batch: &Batch) -> Result<Tensor> {
        if batch.total_tokens() == 0 {
            return Err(Error::Input("nothing to encode: every sequence is empty".into()));
        }
        let embedded = self.embed(batch)?; // [T, H]
        let pad = self.padding(batch)?;
        let rel = self.relative_inputs(pad.s)?;
        let mut x = embedded.clone();
        for (i, layer) in self.layers.iter().enumerate() {
            let attended = self.attention(layer, &x, &pad, rel.as_ref())?;
            let hidden = layer.intermediate.forward_act(&attended, self.act)?; // [T, I]
            x = layer.output_norm.forward_residual(&layer.output.forward(&hidden)?, &attended)?;
            if let (0, Some(conv)) = (i, &self.conv) {
                x = conv.forward(&embedded, &x, batch)?;
            }
        }
        Ok(x)
    }

    fn hidden_size(&self) -> usize {
        self.config.hidden_size
    }

    fn max_positions(&self) -> usize {
        self.config.max_position_embeddings
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_buckets_keep_near_positions_and_are_odd() {
        for r in -4..=4 {
            assert_eq!(log_bucket_position(r, 8, 16), r);
        }
        for r in 0..2000 {
            assert_eq!(log_bucket_position(-r, 256, 512), -log_bucket_position(r, 256, 512));
        }
        assert_eq!(log_bucket_position(511, 256, 512), 255);
    }
}
