//! DistilBERT, as in transformers' modeling_distilbert.py: BERT's post-norm encoder without token
//! types or pooler, with its own weight names. It loads into `Bert`, which runs it.

use serde::Deserialize;

use super::bert::{Bert, BertConfig, Embeddings, Layer};
use crate::nn::{LayerNorm, Linear};
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
