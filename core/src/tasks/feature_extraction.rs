//! feature-extraction: texts to embeddings, pooled (`none`, `mean`, `cls`) and optionally
//! L2-normalized, as transformers.js's pipeline and sentence-transformers' `encode` give them.

use crate::files::ModelFiles;
use crate::models::{self, EncoderModel};
use crate::tokenizer::{Batch, Tokenizer};
use crate::weights::Weights;
use crate::{Device, Error, PoolMode, Result, Tensor};

use super::LoadOptions;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Pooling {
    /// Every token's hidden state: [B, S, H], zero past each text's end.
    #[default]
    None,
    Mean,
    Cls,
}

impl std::str::FromStr for Pooling {
    type Err = Error;
    fn from_str(s: &str) -> Result<Pooling> {
        match s {
            "none" => Ok(Pooling::None),
            "mean" => Ok(Pooling::Mean),
            "cls" => Ok(Pooling::Cls),
            other => Err(Error::Input(format!("unknown pooling `{other}`; use none, mean or cls"))),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Embeddings {
    /// [texts, hidden] pooled, or [texts, tokens, hidden] with pooling `none`.
    pub dims: Vec<usize>,
    pub data: Vec<f32>,
}

impl Embeddings {
    /// Row `i` (one text's vector when pooled).
    pub fn row(&self, i: usize) -> &[f32] {
        let width: usize = self.dims[1..].iter().product();
        &self.data[i * width..(i + 1) * width]
    }
}

pub struct FeatureExtraction {
    tokenizer: Tokenizer,
    model: Box<dyn EncoderModel>,
    device: Device,
}

/// Texts per forward pass. Bounds activation memory; packing means no padding is computed.
const MAX_BATCH_TEXTS: usize = 32;

impl FeatureExtraction {
    pub fn load(files: &dyn ModelFiles, device: &Device, options: &LoadOptions) -> Result<FeatureExtraction> {
        let config = files.json("config.json")?.ok_or_else(|| Error::file(files.name(), "is not a model: it has no config.json"))?;
        let vb = Weights::new(files.weights(device)?, device, options.dtype);
        let model = models::load_encoder(files, &config, &vb)?;
        let tokenizer_json = files.require("tokenizer.json")?;
        let max_len = max_sequence_length(files, model.max_positions())?;
        let tokenizer = Tokenizer::from_bytes((*tokenizer_json).as_ref(), max_len)?;
        Ok(FeatureExtraction { tokenizer, model, device: device.clone() })
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    pub fn hidden_size(&self) -> usize {
        self.model.hidden_size()
    }

    /// Embeds `texts`. An empty string is a valid input ([CLS] [SEP] only), as in Python.
    pub async fn run(&self, texts: &[&str], pooling: Pooling, normalize: bool) -> Result<Embeddings> {
        if texts.is_empty() {
            return Err(Error::Input("feature-extraction needs at least one text".into()));
        }
        let batch = self.tokenizer.encode_batch(texts)?;
        let h = self.model.hidden_size();
        let tokens = if pooling == Pooling::None { batch.max_len() } else { 1 };
        let mut data = Vec::with_capacity(texts.len() * tokens * h);
        for start in (0..texts.len()).step_by(MAX_BATCH_TEXTS) {
            let end = (start + MAX_BATCH_TEXTS).min(texts.len());
            let chunk = Batch { ids: batch.ids[start..end].to_vec(), type_ids: batch.type_ids[start..end].to_vec() };
            let out = self.forward(&chunk, pooling, normalize, tokens)?;
            data.extend(out.to_vec_f32().await?);
        }
        let dims = if pooling == Pooling::None { vec![texts.len(), tokens, h] } else { vec![texts.len(), h] };
        Ok(Embeddings { dims, data })
    }

    /// Records the model and pooling for one chunk; nothing runs until the result is read.
    fn forward(&self, batch: &Batch, pooling: Pooling, normalize: bool, tokens: usize) -> Result<Tensor> {
        let hidden = self.model.forward(batch)?; // [T, H]
        let offsets = batch.offsets();
        let offsets = Tensor::from_u32(&offsets, &[offsets.len()], &self.device)?;
        let out = match pooling {
            Pooling::Mean => hidden.segment_pool(&offsets, PoolMode::Mean)?,
            Pooling::Cls => hidden.segment_pool(&offsets, PoolMode::Cls)?,
            Pooling::None => hidden.unpack(&offsets, tokens)?,
        };
        if normalize { out.l2_normalize(1e-12) } else { Ok(out) }
    }
}

/// The longest input the Python reference feeds this model: sentence-transformers'
/// `max_seq_length`, else the tokenizer's `model_max_length`, capped by the position embeddings.
fn max_sequence_length(files: &dyn ModelFiles, max_positions: usize) -> Result<usize> {
    let from = |file: &str, key: &str| -> Result<Option<usize>> {
        Ok(files.json(file)?.and_then(|v| v.get(key).and_then(|x| x.as_u64())).map(|x| x as usize))
    };
    let declared = match from("sentence_bert_config.json", "max_seq_length")? {
        Some(n) => Some(n),
        // Tokenizer configs without a limit store a huge sentinel (1e30).
        None => from("tokenizer_config.json", "model_max_length")?.filter(|&n| n < 1_000_000),
    };
    Ok(declared.unwrap_or(max_positions).min(max_positions))
}
