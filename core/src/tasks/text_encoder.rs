//! What every task over a text encoder shares: loading the tokenizer, the encoder and the head
//! the task needs from a model's files, and running them over packed batches.

use std::rc::Rc;

use crate::files::ModelFiles;
use crate::models::auto::{AutoModel, LoadedModel};
use crate::models::{self, HeadKind, ModelConfig, TextModel};
use crate::tokenizer::{Batch, Encoded, Tokenizer};
use crate::weights::Weights;
use crate::{Device, Error, Result, Tensor};

use super::LoadOptions;

/// Sequences per forward pass. Bounds activation memory; packing means no padding is computed.
pub const MAX_BATCH: usize = 32;

pub struct TextEncoderTask {
    pub tokenizer: Tokenizer,
    /// Shared with the task's `AutoModel` view (`auto_model`).
    pub model: Rc<TextModel>,
    pub config: ModelConfig,
    pub device: Device,
    /// tokenizer_config.json, for the special tokens and decoding settings Python reads there.
    pub tokenizer_config: serde_json::Value,
    /// Whether the model is given the tokenizer's token types (else zeros), as Python passes
    /// `token_type_ids` only when the tokenizer lists it among its `model_input_names`.
    pub token_types: bool,
}

impl TextEncoderTask {
    /// The model of `files` with the head `head` (None: the encoder alone).
    pub fn load(files: &dyn ModelFiles, device: &Device, options: &LoadOptions, head: Option<HeadKind>) -> Result<TextEncoderTask> {
        let json = files.json("config.json")?.ok_or_else(|| Error::file(files.name(), "is not a model: it has no config.json"))?;
        let config = ModelConfig::from_json(files.name(), json)?;
        // The architecture is checked before the weights are opened, so a wrong model fails fast.
        models::architecture(&config, "text encoder", |a| a.text_encoder.is_some())?;
        let vb = Weights::new(files.weights(device)?, device, options.dtype);
        let model = Rc::new(models::load_text_model(&config, &vb, head)?);
        // sentence-transformers' limit is the embedding model's (feature-extraction); Python's
        // head pipelines read only the tokenizer's, and their tasks do not fetch that file.
        let max_len = max_sequence_length(files, model.encoder.max_positions(), head.is_none())?;
        let tokenizer = Tokenizer::from_files(files, max_len)?;
        let tokenizer_config = files.json("tokenizer_config.json")?.unwrap_or_default();
        let token_types = reads_token_types(&tokenizer_config);
        Ok(TextEncoderTask { tokenizer, model, config, device: device.clone(), tokenizer_config, token_types })
    }

    /// The encoder and head as an `AutoModel` over the same weights (`Pipeline::auto_model`).
    pub fn auto_model(&self) -> Result<AutoModel> {
        Ok(AutoModel::sharing(LoadedModel::text(self.model.clone(), &self.config)?, self.config.clone(), &self.device))
    }

    /// A special token's text as tokenizer_config.json names it (`mask_token`: "[MASK]").
    pub fn special_token(&self, key: &str) -> Option<String> {
        match &self.tokenizer_config[key] {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Object(o) => o.get("content").and_then(|c| c.as_str()).map(str::to_string),
            _ => None,
        }
    }

    /// Token ids to text as Python's `tokenizer.decode` gives it, including its
    /// `clean_up_tokenization_spaces` step (" ." → ".", " n't" → "n't") when the tokenizer's
    /// config asks for it.
    pub fn decode(&self, ids: &[u32], skip_special_tokens: bool) -> Result<String> {
        let text = self.tokenizer.decode(ids, skip_special_tokens)?;
        if self.tokenizer_config["clean_up_tokenization_spaces"].as_bool() != Some(true) {
            return Ok(text);
        }
        Ok(clean_up_tokenization_spaces(text))
    }

    /// The head's outputs for each encoding: one row of `outputs()` values per sequence
    /// (sequence classification), or per token (`len * outputs()` values).
    pub async fn head_outputs(&self, encodings: &[Encoded]) -> Result<Vec<Vec<f32>>> {
        let head = self.head()?;
        let width = head.outputs();
        let mut out = Vec::with_capacity(encodings.len());
        for chunk in encodings.chunks(MAX_BATCH) {
            let batch = self.batch(chunk);
            let hidden = self.model.encoder.forward(&batch)?;
            let logits = head.forward(&hidden, &self.offsets(&batch)?, None)?.to_vec_f32().await?;
            let mut rest = &logits[..];
            for e in chunk {
                let n = if head.kind == HeadKind::SequenceClassification { width } else { e.len() * width };
                let (this, tail) = rest.split_at(n);
                out.push(this.to_vec());
                rest = tail;
            }
        }
        Ok(out)
    }

    /// The head's outputs at chosen tokens only: `rows[i]` lists token positions of
    /// `encodings[i]`; returns `outputs()` values per listed position, in order.
    pub async fn head_outputs_at(&self, encodings: &[Encoded], rows: &[Vec<usize>]) -> Result<Vec<Vec<Vec<f32>>>> {
        let head = self.head()?;
        let width = head.outputs();
        let mut out = Vec::with_capacity(encodings.len());
        for (chunk, chunk_rows) in encodings.chunks(MAX_BATCH).zip(rows.chunks(MAX_BATCH)) {
            let batch = self.batch(chunk);
            let starts = batch.offsets();
            let packed: Vec<u32> =
                chunk_rows.iter().zip(&starts).flat_map(|(rows, &start)| rows.iter().map(move |&r| start + r as u32)).collect();
            if packed.is_empty() {
                out.extend(chunk_rows.iter().map(|_| Vec::new()));
                continue;
            }
            let hidden = self.model.encoder.forward(&batch)?;
            let rows_tensor = Tensor::from_u32(&packed, &[packed.len()], &self.device)?;
            let logits = head.forward(&hidden, &self.offsets(&batch)?, Some(&rows_tensor))?.to_vec_f32().await?;
            let mut rows_out = logits.chunks(width).map(<[f32]>::to_vec);
            for rows in chunk_rows {
                out.push(rows_out.by_ref().take(rows.len()).collect());
            }
        }
        Ok(out)
    }

    /// The model's input for these encodings: their ids, and their token types when it reads them.
    fn batch(&self, encodings: &[Encoded]) -> Batch {
        let mut batch = Batch::of(encodings);
        if !self.token_types {
            batch.type_ids.iter_mut().flatten().for_each(|t| *t = 0);
        }
        batch
    }

    fn head(&self) -> Result<&models::TextHead> {
        self.model.head.as_ref().ok_or_else(|| Error::Input("this model was loaded without a task head".into()))
    }

    fn offsets(&self, batch: &Batch) -> Result<Tensor> {
        let offsets = batch.offsets();
        Tensor::from_u32(&offsets, &[offsets.len()], &self.device)
    }

    /// `id2label[i]`.
    pub fn label(&self, i: usize) -> String {
        self.config.id2label.get(i).cloned().unwrap_or_else(|| format!("LABEL_{i}"))
    }
}

/// Whether `token_type_ids` is among the tokenizer's `model_input_names`: tokenizer_config.json's
/// list, else its class's (transformers' default lists it; these tokenizer classes leave it out).
fn reads_token_types(tokenizer_config: &serde_json::Value) -> bool {
    if let Some(names) = tokenizer_config["model_input_names"].as_array() {
        return names.iter().any(|n| n == "token_type_ids");
    }
    const WITHOUT: [&str; 8] = ["DistilBert", "Roberta", "XLMRoberta", "Camembert", "MPNet", "Longformer", "BigBird", "Bart"];
    let class = tokenizer_config["tokenizer_class"].as_str().unwrap_or("");
    let family = class.trim_end_matches("Fast").trim_end_matches("Tokenizer");
    !WITHOUT.contains(&family)
}

/// The longest input the Python reference feeds this model: sentence-transformers'
/// `max_seq_length` (when `sentence_transformers`: an embedding model's task), else the
/// tokenizer's `model_max_length`, capped by the position embeddings.
pub fn max_sequence_length(files: &dyn ModelFiles, max_positions: usize, sentence_transformers: bool) -> Result<usize> {
    let from = |file: &str, key: &str| -> Result<Option<usize>> {
        Ok(files.json(file)?.and_then(|v| v.get(key).and_then(|x| x.as_u64())).map(|x| x as usize))
    };
    let sentence_limit = if sentence_transformers { from("sentence_bert_config.json", "max_seq_length")? } else { None };
    let declared = match sentence_limit {
        Some(n) => Some(n),
        // Tokenizer configs without a limit store a huge sentinel (1e30).
        None => from("tokenizer_config.json", "model_max_length")?.filter(|&n| n < 1_000_000),
    };
    Ok(declared.unwrap_or(max_positions).min(max_positions))
}

/// softmax of one row, in f64 (what Python computes in numpy on the f32 logits).
pub fn softmax(logits: &[f32]) -> Vec<f64> {
    let max = logits.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x)) as f64;
    let exps: Vec<f64> = logits.iter().map(|&x| (x as f64 - max).exp()).collect();
    let sum: f64 = exps.iter().sum();
    exps.into_iter().map(|e| e / sum).collect()
}

pub fn sigmoid(x: f32) -> f64 {
    1.0 / (1.0 + (-(x as f64)).exp())
}

/// Indices of `scores` from the largest down (stable: ties keep index order, as numpy's
/// argsort of the negated scores does not guarantee, but ties are never tested).
pub fn ranked(scores: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    order
}

/// Python tokenizers' `clean_up_tokenization_spaces` step: " ." → ".", " n't" → "n't", ...
pub fn clean_up_tokenization_spaces(text: String) -> String {
    const SPACED: [(&str, &str); 10] = [
        (" .", "."),
        (" ?", "?"),
        (" !", "!"),
        (" ,", ","),
        (" ' ", "'"),
        (" n't", "n't"),
        (" 'm", "'m"),
        (" 's", "'s"),
        (" 've", "'ve"),
        (" 're", "'re"),
    ];
    SPACED.iter().fold(text, |t, (from, to)| t.replace(from, to))
}
