//! DistilBERT, as in transformers' modeling_distilbert.py: BERT's post-norm encoder without token
//! types or pooler, with its own weight names. It loads into `Bert`, which runs it.

use serde::Deserialize;

use super::ModelConfig;
use super::bert::{Bert, BertConfig, Embeddings, Layer};
use super::heads::{self, HeadKind, HeadStep, TextHead};
use crate::nn::{self, LayerNorm, Linear};
use crate::ops::{Activation, PoolMode, UnaryOp};
use crate::weights::Weights;
use crate::{Error, Result};

#[derive(Clone, Debug, Deserialize)]
pub struct DistilBertConfig {
    pub vocab_size: usize,
    pub dim: usize,
    pub n_layers: usize,
    pub n_heads: usize,
    pub hidden_dim: usize,
    pub max_position_embeddings: usize,
    #[serde(default = "default_act")]
    pub activation: String,
    #[serde(default)]
    pub pad_token_id: Option<u32>,
    #[serde(default)]
    pub sinusoidal_pos_embds: bool,
}

fn default_act() -> String {
    "gelu".into()
}

/// transformers hard-codes DistilBERT's LayerNorm epsilon.
const EPS: f32 = 1e-12;

pub fn load(config: DistilBertConfig, vb: &Weights) -> Result<Bert> {
    let (h, heads) = (config.dim, config.n_heads);
    if heads == 0 || h % heads != 0 {
        return Err(Error::Config(format!("dim {h} is not a multiple of n_heads {heads}")));
    }
    // Checkpoints of task models prefix the encoder with `distilbert.`.
    let vb = if vb.contains("distilbert.embeddings.word_embeddings.weight") { vb.pp("distilbert") } else { vb.clone() };
    let e = vb.pp("embeddings");
    let embeddings = Embeddings {
        word: e.get("word_embeddings.weight", &[config.vocab_size, h])?,
        // Sinusoidal checkpoints store the table too (transformers fills it at init and saves it).
        position: e.get("position_embeddings.weight", &[config.max_position_embeddings, h])?,
        token_type: None,
        norm: LayerNorm::load(&e.pp("LayerNorm"), h, EPS)?,
    };
    let mut layers = Vec::with_capacity(config.n_layers);
    for i in 0..config.n_layers {
        let l = vb.pp(format!("transformer.layer.{i}"));
        let a = l.pp("attention");
        layers.push(Layer {
            qkv: Linear::load_fused(&[a.pp("q_lin"), a.pp("k_lin"), a.pp("v_lin")], h, &[h, h, h], true)?,
            attn_out: Linear::load(&a.pp("out_lin"), h, h, true)?,
            attn_norm: LayerNorm::load(&l.pp("sa_layer_norm"), h, EPS)?,
            intermediate: Linear::load(&l.pp("ffn.lin1"), h, config.hidden_dim, true)?,
            output: Linear::load(&l.pp("ffn.lin2"), config.hidden_dim, h, true)?,
            output_norm: LayerNorm::load(&l.pp("output_layer_norm"), h, EPS)?,
        });
    }
    let bert_config = BertConfig {
        model_type: "distilbert".into(),
        vocab_size: config.vocab_size,
        hidden_size: h,
        num_hidden_layers: config.n_layers,
        num_attention_heads: heads,
        intermediate_size: config.hidden_dim,
        hidden_act: config.activation.clone(),
        max_position_embeddings: config.max_position_embeddings,
        // No token-type table: every token is type 0.
        type_vocab_size: 1,
        layer_norm_eps: EPS as f64,
        pad_token_id: config.pad_token_id,
        position_embedding_type: None,
    };
    Bert::from_parts(bert_config, vb.device().clone(), embeddings, layers)
}

/// The heads of `DistilBertFor*`, by their transformers names.
pub fn load_head(kind: HeadKind, config: &ModelConfig, vb: &Weights) -> Result<TextHead> {
    let c: DistilBertConfig = super::parse(&config.json)?;
    let h = c.dim;
    let labels = heads::num_labels(config);
    Ok(match kind {
        HeadKind::SequenceClassification => TextHead {
            kind,
            pooling: PoolMode::Cls,
            transform: vec![HeadStep::Dense(Linear::load(&vb.pp("pre_classifier"), h, h, true)?, Activation::Unary(UnaryOp::Relu))],
            output: Linear::load(&vb.pp("classifier"), h, labels, true)?,
        },
        HeadKind::TokenClassification => TextHead::linear(kind, Linear::load(&vb.pp("classifier"), h, labels, true)?),
        HeadKind::QuestionAnswering => TextHead::linear(kind, Linear::load(&vb.pp("qa_outputs"), h, 2, true)?),
        HeadKind::MaskedLm => TextHead {
            kind,
            pooling: PoolMode::Cls,
            transform: vec![
                HeadStep::Dense(Linear::load(&vb.pp("vocab_transform"), h, h, true)?, nn::activation(&c.activation)?),
                HeadStep::Norm(LayerNorm::load(&vb.pp("vocab_layer_norm"), h, EPS)?),
            ],
            output: heads::tied_decoder(
                vb,
                "vocab_projector",
                "distilbert.embeddings.word_embeddings.weight",
                "vocab_projector.bias",
                c.vocab_size,
                h,
            )?,
        },
    })
}
