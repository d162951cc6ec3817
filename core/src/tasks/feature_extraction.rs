//! feature-extraction: texts to embeddings, pooled (`none`, `mean`, `cls`) and optionally
//! L2-normalized, as transformers.js's pipeline and sentence-transformers' `encode` give them.

use serde_json::Value;

use super::text_encoder::{MAX_BATCH, TextEncoderTask};
use super::{Input, InputKind, LoadOptions, LocalFuture, OneOrMany, Output, Pipeline, TaskInfo};
use crate::files::ModelFiles;
use crate::tokenizer::{Batch, Tokenizer};
use crate::{Device, Error, PoolMode, Result, Tensor};

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

pub static TASK: TaskInfo = TaskInfo {
    name: "feature-extraction",
    aliases: &["embeddings"],
    default_model: "sentence-transformers/all-MiniLM-L6-v2",
    input: InputKind::Text,
    required_files: &["config.json", "tokenizer.json"],
    optional_files: &["tokenizer_config.json", "sentence_bert_config.json"],
    // A dual encoder (CLIP, SigLIP) gives its projected text embeddings.
    load: |files, device, options| match super::zero_shot_image_classification::text_embeddings(files, device, options)? {
        Some(pipeline) => Ok(pipeline),
        None => Ok(Box::new(FeatureExtraction::load(files, device, options)?)),
    },
};

/// The call's options, as transformers.js names them.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Options {
    #[serde(default)]
    pooling: Option<String>,
    #[serde(default)]
    normalize: bool,
}

pub struct FeatureExtraction {
    base: TextEncoderTask,
}

impl FeatureExtraction {
    pub fn load(files: &dyn ModelFiles, device: &Device, options: &LoadOptions) -> Result<FeatureExtraction> {
        Ok(FeatureExtraction { base: TextEncoderTask::load(files, device, options, None)? })
    }

    pub fn device(&self) -> &Device {
        &self.base.device
    }

    pub fn tokenizer(&self) -> &Tokenizer {
        &self.base.tokenizer
    }

    pub fn hidden_size(&self) -> usize {
        self.base.model.encoder.hidden_size()
    }

    /// Embeds `texts`. An empty string is a valid input ([CLS] [SEP] only), as in Python.
    pub async fn run(&self, texts: &[&str], pooling: Pooling, normalize: bool) -> Result<Embeddings> {
        if texts.is_empty() {
            return Err(Error::Input("feature-extraction needs at least one text".into()));
        }
        let batch = self.base.tokenizer.encode_batch(texts)?;
        let h = self.hidden_size();
        let tokens = if pooling == Pooling::None { batch.max_len() } else { 1 };
        let mut data = Vec::with_capacity(texts.len() * tokens * h);
        for start in (0..texts.len()).step_by(MAX_BATCH) {
            let end = (start + MAX_BATCH).min(texts.len());
            let chunk = Batch { ids: batch.ids[start..end].to_vec(), type_ids: batch.type_ids[start..end].to_vec() };
            let out = self.forward(&chunk, pooling, normalize, tokens)?;
            data.extend(out.to_vec_f32().await?);
        }
        let dims = if pooling == Pooling::None { vec![texts.len(), tokens, h] } else { vec![texts.len(), h] };
        Ok(Embeddings { dims, data })
    }

    /// Records the model and pooling for one chunk; nothing runs until the result is read.
    fn forward(&self, batch: &Batch, pooling: Pooling, normalize: bool, tokens: usize) -> Result<Tensor> {
        let hidden = self.base.model.encoder.forward(batch)?; // [T, H]
        let offsets = batch.offsets();
        let offsets = Tensor::from_u32(&offsets, &[offsets.len()], &self.base.device)?;
        let out = match pooling {
            Pooling::Mean => hidden.segment_pool(&offsets, PoolMode::Mean)?,
            Pooling::Cls => hidden.segment_pool(&offsets, PoolMode::Cls)?,
            Pooling::None => hidden.unpack(&offsets, tokens)?,
        };
        if normalize { out.l2_normalize(1e-12) } else { Ok(out) }
    }
}

impl Pipeline for FeatureExtraction {
    fn auto_model(&self) -> Result<crate::models::auto::AutoModel> {
        self.base.auto_model()
    }
    fn task(&self) -> &'static TaskInfo {
        &TASK
    }

    fn device(&self) -> &Device {
        &self.base.device
    }

    fn run<'a>(&'a self, input: Input<'a>, options: &'a Value, _: &'a mut dyn FnMut(super::Event<'_>)) -> LocalFuture<'a, Result<Output>> {
        let input = input.value;
        Box::pin(async move {
            let texts: OneOrMany<String> = TASK.input(input, "a string or an array of strings")?;
            let options: Options = TASK.options(options)?;
            let pooling = match options.pooling.as_deref() {
                None => Pooling::None,
                // transformers.js's name for the first token.
                Some("first_token") => Pooling::Cls,
                Some(name) => name.parse()?,
            };
            let texts: Vec<&str> = texts.items().into_iter().map(String::as_str).collect();
            let out = FeatureExtraction::run(self, &texts, pooling, options.normalize).await?;
            Ok(Output::Tensor { dims: out.dims, data: out.data })
        })
    }

    fn info(&self) -> Value {
        serde_json::json!({ "hidden_size": self.hidden_size() })
    }
}
