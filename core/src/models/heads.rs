//! Task heads over a text encoder's hidden states, as transformers' `*For{Task}` classes put them
//! on top of the encoder. Every architecture's head is the same short pipeline with its own
//! weight names: pool (sequence classification only), a few transform steps (dense layers with an
//! activation, norms), then one output projection. So one struct runs them all and each
//! architecture's file only says which weights fill it (`load_head`).

use crate::nn::{LayerNorm, Linear};
use crate::ops::{Activation, PoolMode};
use crate::weights::Weights;
use crate::{Error, Result, Tensor};

use super::ModelConfig;

/// Which `*For{Task}` head a task needs, named after transformers' model class suffixes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HeadKind {
    /// `*ForSequenceClassification`: one vector of label logits per sequence.
    SequenceClassification,
    /// `*ForTokenClassification`: label logits per token.
    TokenClassification,
    /// `*ForQuestionAnswering`: start and end logits per token.
    QuestionAnswering,
    /// `*ForMaskedLM`: vocabulary logits per token.
    MaskedLm,
}

impl HeadKind {
    pub const ALL: [HeadKind; 4] =
        [HeadKind::SequenceClassification, HeadKind::TokenClassification, HeadKind::QuestionAnswering, HeadKind::MaskedLm];

    /// The class-name suffix transformers gives this head (`BertForMaskedLM`).
    pub fn class_suffix(self) -> &'static str {
        match self {
            HeadKind::SequenceClassification => "ForSequenceClassification",
            HeadKind::TokenClassification => "ForTokenClassification",
            HeadKind::QuestionAnswering => "ForQuestionAnswering",
            HeadKind::MaskedLm => "ForMaskedLM",
        }
    }

    /// The head an `architectures` entry names, if any (`BertModel` names none).
    pub fn of_architecture(architecture: &str) -> Option<HeadKind> {
        HeadKind::ALL.into_iter().find(|k| architecture.ends_with(k.class_suffix()))
    }
}

/// One step between the encoder and the output projection.
pub enum HeadStep {
    Dense(Linear, Activation),
    Norm(LayerNorm),
}

pub struct TextHead {
    pub kind: HeadKind,
    /// Sequence classification: how a sequence's tokens become one vector (BERT's first token,
    /// ModernBERT's optional mean).
    pub pooling: PoolMode,
    pub transform: Vec<HeadStep>,
    /// [outputs, H]: the classifier, `qa_outputs` or the vocabulary decoder (with its bias).
    pub output: Linear,
}

impl TextHead {
    /// A head of `kind` that is the output projection alone (most token classifiers).
    pub fn linear(kind: HeadKind, output: Linear) -> TextHead {
        TextHead { kind, pooling: PoolMode::Cls, transform: Vec::new(), output }
    }

    /// Logits from `hidden` [T, H] of a packed batch with sequence offsets `offsets` [B + 1]:
    /// sequence classification [B, outputs]; otherwise [T, outputs], or [R, outputs] for the
    /// packed rows `rows` [R] only (fill-mask needs the vocabulary at the masks alone).
    pub fn forward(&self, hidden: &Tensor, offsets: &Tensor, rows: Option<&Tensor>) -> Result<Tensor> {
        let mut x = match (self.kind, rows) {
            (HeadKind::SequenceClassification, _) => hidden.segment_pool(offsets, self.pooling)?,
            (_, Some(rows)) => hidden.gather_rows(rows)?,
            (_, None) => hidden.clone(),
        };
        for step in &self.transform {
            x = match step {
                HeadStep::Dense(linear, act) => linear.forward_act(&x, *act)?,
                HeadStep::Norm(norm) => norm.forward(&x)?,
            };
        }
        self.output.forward(&x)
    }

    pub fn outputs(&self) -> usize {
        self.output.weight.dims()[0]
    }
}

/// The label count a classification head must have: `id2label`'s.
pub fn num_labels(config: &ModelConfig) -> usize {
    config.id2label.len()
}

/// The vocabulary decoder of a masked-LM head: `{decoder}.weight` when the checkpoint stores it,
/// else the word embeddings it is tied to (safetensors drops tied copies), and the bias.
pub fn tied_decoder(vb: &Weights, decoder: &str, embeddings: &str, bias: &str, vocab: usize, hidden: usize) -> Result<Linear> {
    let name = format!("{decoder}.weight");
    let weight = if vb.contains(&name) {
        vb.get(&name, &[vocab, hidden])?
    } else if vb.contains(embeddings) {
        vb.get(embeddings, &[vocab, hidden])?
    } else {
        return Err(Error::Weight {
            name: vb.full_name(&name),
            msg: format!("missing, and so is the tied `{}`", vb.full_name(embeddings)),
        });
    };
    let bias = if vb.contains(bias) { Some(vb.get_f32(bias, &[vocab])?) } else { None };
    Ok(Linear { weight, bias })
}
