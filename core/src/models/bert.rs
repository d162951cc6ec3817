//! BERT (and RoBERTa / XLM-RoBERTa, which differ only in position ids and weight prefix), as in
//! transformers' modeling_bert.py: embeddings, then layers of self-attention and a feed-forward
//! block, each followed by a residual LayerNorm. Runs on packed sequences: [T, H] for the T
//! tokens of the whole batch, with per-sequence offsets for attention.

use serde::Deserialize;

use super::heads::{self, HeadKind, HeadStep, TextHead};
use super::{EncoderModel, ModelConfig};
use crate::nn::{self, LayerNorm, Linear};
use crate::ops::{Activation, PoolMode, UnaryOp};
use crate::tokenizer::Batch;
use crate::weights::Weights;
use crate::{Device, Error, Result, Tensor};

#[derive(Clone, Debug, Deserialize)]
pub struct BertConfig {
    pub model_type: String,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    #[serde(default = "default_act")]
    pub hidden_act: String,
    pub max_position_embeddings: usize,
    #[serde(default = "default_type_vocab")]
    pub type_vocab_size: usize,
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    #[serde(default)]
    pub pad_token_id: Option<u32>,
    #[serde(default)]
    pub position_embedding_type: Option<String>,
}

fn default_act() -> String {
    "gelu".into()
}
fn default_type_vocab() -> usize {
    2
}
fn default_eps() -> f64 {
    1e-12
}

impl BertConfig {
    /// RoBERTa numbers positions from padding_idx + 1.
    fn position_offset(&self) -> usize {
        match self.model_type.as_str() {
            "roberta" | "xlm-roberta" => self.pad_token_id.unwrap_or(1) as usize + 1,
            _ => 0,
        }
    }

    fn activation(&self) -> Result<Activation> {
        nn::activation(&self.hidden_act)
    }
}

pub(super) struct Embeddings {
    pub(super) word: Tensor,     // [vocab, H]
    pub(super) position: Tensor, // [max_positions, H]
    /// [type_vocab, H]; DistilBERT has none.
    pub(super) token_type: Option<Tensor>,
    pub(super) norm: LayerNorm,
}

pub(super) struct Layer {
    pub(super) qkv: Linear,      // [3H, H]: query, key, value stacked
    pub(super) attn_out: Linear, // [H, H]
    pub(super) attn_norm: LayerNorm,
    pub(super) intermediate: Linear, // [I, H]
    pub(super) output: Linear,       // [H, I]
    pub(super) output_norm: LayerNorm,
}

pub struct Bert {
    config: BertConfig,
    act: Activation,
    device: Device,
    embeddings: Embeddings,
    layers: Vec<Layer>,
}

impl Bert {
    /// An encoder of BERT's structure built by another architecture's loader (DistilBERT).
    pub(super) fn from_parts(config: BertConfig, device: Device, embeddings: Embeddings, layers: Vec<Layer>) -> Result<Bert> {
        Ok(Bert { act: config.activation()?, device, config, embeddings, layers })
    }

    pub fn load(config: BertConfig, vb: &Weights) -> Result<Bert> {
        if config.position_embedding_type.as_deref().is_some_and(|t| t != "absolute") {
            return Err(Error::Unsupported(format!("position_embedding_type {:?}", config.position_embedding_type)));
        }
        let (h, heads) = (config.hidden_size, config.num_attention_heads);
        if heads == 0 || h % heads != 0 {
            return Err(Error::Config(format!("hidden_size {h} is not a multiple of num_attention_heads {heads}")));
        }
        let vb = encoder_weights(vb);
        let eps = config.layer_norm_eps as f32;
        let e = vb.pp("embeddings");
        let embeddings = Embeddings {
            word: e.get("word_embeddings.weight", &[config.vocab_size, h])?,
            position: e.get("position_embeddings.weight", &[config.max_position_embeddings, h])?,
            token_type: Some(e.get("token_type_embeddings.weight", &[config.type_vocab_size, h])?),
            norm: LayerNorm::load(&e.pp("LayerNorm"), h, eps)?,
        };
        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        for i in 0..config.num_hidden_layers {
            let l = vb.pp(format!("encoder.layer.{i}"));
            let a = l.pp("attention");
            let sa = a.pp("self");
            layers.push(Layer {
                qkv: Linear::load_fused(&[sa.pp("query"), sa.pp("key"), sa.pp("value")], h, &[h, h, h], true)?,
                attn_out: Linear::load(&a.pp("output.dense"), h, h, true)?,
                attn_norm: LayerNorm::load(&a.pp("output.LayerNorm"), h, eps)?,
                intermediate: Linear::load(&l.pp("intermediate.dense"), h, config.intermediate_size, true)?,
                output: Linear::load(&l.pp("output.dense"), config.intermediate_size, h, true)?,
                output_norm: LayerNorm::load(&l.pp("output.LayerNorm"), h, eps)?,
            });
        }
        Ok(Bert { act: config.activation()?, device: vb.device().clone(), config, embeddings, layers })
    }

    /// Token ids, position ids and token-type ids of the packed batch, checked against the tables.
    fn inputs(&self, batch: &Batch) -> Result<(Tensor, Tensor, Tensor, Tensor)> {
        let offset = self.config.position_offset();
        let mut ids = Vec::with_capacity(batch.total_tokens());
        let mut positions = Vec::with_capacity(ids.capacity());
        let mut types = Vec::with_capacity(ids.capacity());
        for (seq, seq_types) in batch.ids.iter().zip(&batch.type_ids) {
            if seq.len() + offset > self.config.max_position_embeddings {
                return Err(Error::Input(format!(
                    "a sequence of {} tokens is longer than the model's {} positions",
                    seq.len(),
                    self.config.max_position_embeddings - offset
                )));
            }
            ids.extend_from_slice(seq);
            positions.extend((0..seq.len()).map(|p| (p + offset) as u32));
            types.extend_from_slice(seq_types);
        }
        if let Some(bad) = ids.iter().find(|&&i| i as usize >= self.config.vocab_size) {
            return Err(Error::Input(format!("token id {bad} is outside the vocabulary of {}", self.config.vocab_size)));
        }
        // A model without token types (DistilBERT) reads pairs without them, as Python does.
        if self.embeddings.token_type.is_none() {
            types.iter_mut().for_each(|t| *t = 0);
        }
        if let Some(bad) = types.iter().find(|&&t| t as usize >= self.config.type_vocab_size) {
            return Err(Error::Input(format!("token type {bad} is outside the {} token types", self.config.type_vocab_size)));
        }
        let t = ids.len();
        let d = &self.device;
        let offsets = batch.offsets();
        Ok((
            Tensor::from_u32(&ids, &[t], d)?,
            Tensor::from_u32(&positions, &[t], d)?,
            Tensor::from_u32(&types, &[t], d)?,
            Tensor::from_u32(&offsets, &[offsets.len()], d)?,
        ))
    }
}

impl EncoderModel for Bert {
    fn forward(&self, batch: &Batch) -> Result<Tensor> {
        if batch.total_tokens() == 0 {
            return Err(Error::Input("nothing to encode: every sequence is empty".into()));
        }
        let (ids, positions, types, offsets) = self.inputs(batch)?;
        let (h, heads) = (self.config.hidden_size, self.config.num_attention_heads);
        let (t, d) = (batch.total_tokens(), h / heads);
        let scale = 1.0 / (d as f32).sqrt();

        let e = &self.embeddings;
        let mut x = e.word.gather_rows(&ids)?.add(&e.position.gather_rows(&positions)?)?;
        if let Some(token_type) = &e.token_type {
            x = x.add(&token_type.gather_rows(&types)?)?;
        }
        let mut x = e.norm.forward(&x)?; // [T, H]

        for layer in &self.layers {
            let qkv = layer.qkv.forward(&x)?; // [T, 3H]
            let q = qkv.narrow(1, 0, h)?.reshape(&[t, heads, d])?;
            let k = qkv.narrow(1, h, h)?.reshape(&[t, heads, d])?;
            let v = qkv.narrow(1, 2 * h, h)?.reshape(&[t, heads, d])?;
            let context = q.attention(&k, &v, &offsets, scale, false)?.reshape(&[t, h])?;
            let attended = layer.attn_norm.forward_residual(&layer.attn_out.forward(&context)?, &x)?;
            let hidden = layer.intermediate.forward_act(&attended, self.act)?; // [T, I]
            x = layer.output_norm.forward_residual(&layer.output.forward(&hidden)?, &attended)?;
        }
        Ok(x)
    }

    fn hidden_size(&self) -> usize {
        self.config.hidden_size
    }

    fn max_positions(&self) -> usize {
        self.config.max_position_embeddings - self.config.position_offset()
    }
}

/// Checkpoints saved from a task model (BertForMaskedLM, ...) prefix the encoder's weights.
fn encoder_weights(vb: &Weights) -> Weights {
    ["bert", "roberta", "model"]
        .iter()
        .map(|p| vb.pp(p))
        .find(|v| v.contains("embeddings.word_embeddings.weight"))
        .unwrap_or_else(|| vb.clone())
}

/// The heads of `BertFor*`, `RobertaFor*` and `XLMRobertaFor*`, by their transformers names.
pub fn load_head(kind: HeadKind, config: &ModelConfig, vb: &Weights) -> Result<TextHead> {
    let c: BertConfig = super::parse(&config.json)?;
    let h = c.hidden_size;
    let roberta = c.model_type != "bert";
    let labels = heads::num_labels(config);
    Ok(match kind {
        // RoBERTa has no pooler: its classifier carries the dense + tanh on <s>.
        HeadKind::SequenceClassification if roberta => TextHead {
            kind,
            pooling: PoolMode::Cls,
            transform: vec![HeadStep::Dense(Linear::load(&vb.pp("classifier.dense"), h, h, true)?, Activation::Unary(UnaryOp::Tanh))],
            output: Linear::load(&vb.pp("classifier.out_proj"), h, labels, true)?,
        },
        HeadKind::SequenceClassification => TextHead {
            kind,
            pooling: PoolMode::Cls,
            transform: vec![HeadStep::Dense(
                Linear::load(&encoder_weights(vb).pp("pooler.dense"), h, h, true)?,
                Activation::Unary(UnaryOp::Tanh),
            )],
            output: Linear::load(&vb.pp("classifier"), h, labels, true)?,
        },
        HeadKind::TokenClassification => TextHead::linear(kind, Linear::load(&vb.pp("classifier"), h, labels, true)?),
        HeadKind::QuestionAnswering => TextHead::linear(kind, Linear::load(&vb.pp("qa_outputs"), h, 2, true)?),
        HeadKind::MaskedLm => {
            let eps = c.layer_norm_eps as f32;
            let embeddings = encoder_weights(vb).full_name("embeddings.word_embeddings.weight");
            let root = vb.pp_root();
            // RoBERTa's LM head always uses the exact GELU; BERT's uses hidden_act.
            let (p, dense, norm, act) = if roberta {
                (vb.pp("lm_head"), "dense", "layer_norm", Activation::Unary(UnaryOp::Gelu))
            } else {
                (vb.pp("cls.predictions"), "transform.dense", "transform.LayerNorm", c.activation()?)
            };
            let bias = if p.contains("bias") { p.full_name("bias") } else { p.full_name("decoder.bias") };
            TextHead {
                kind,
                pooling: PoolMode::Cls,
                transform: vec![
                    HeadStep::Dense(Linear::load(&p.pp(dense), h, h, true)?, act),
                    HeadStep::Norm(LayerNorm::load(&p.pp(norm), h, eps)?),
                ],
                output: heads::tied_decoder(&root, &p.full_name("decoder"), &embeddings, &bias, c.vocab_size, h)?,
            }
        }
    })
}
