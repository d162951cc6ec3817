//! zero-shot-image-classification: a dual encoder (CLIP, SigLIP) embeds the image and each
//! candidate label put into a sentence ("This is a photo of {}"), and scores their cosine
//! similarity times `logit_scale.exp()` (+ `logit_bias`): softmaxed over the labels for CLIP,
//! each through a sigmoid for SigLIP. As transformers.js 4.3.1's pipeline computes it (which
//! differs from Python's in its default template, without the final period, and in SigLIP's
//! texts: padded to max_length and fed without an attention mask, as its ONNX export takes none).
//!
//! Also the text side of these models for feature-extraction (`text_embeddings`): the projected
//! text embedding [n, D], so that a page can embed images once and search them by text.

use std::rc::Rc;

use serde_json::Value;

use super::text_encoder::{MAX_BATCH, max_sequence_length, ranked, sigmoid, softmax};
use super::{Input, InputKind, LoadOptions, LocalFuture, OneOrMany, Output, Pipeline, TaskInfo, score};
use crate::files::ModelFiles;
use crate::image::ImageProcessor;
use crate::models::auto::{AutoModel, LoadedModel, ModelClass};
use crate::models::{self, ImageTextModel, ModelConfig, TextPadding};
use crate::tokenizer::{Batch, Tokenizer};
use crate::weights::Weights;
use crate::{Device, Error, Result, Tensor};

pub static TASK: TaskInfo = TaskInfo {
    name: "zero-shot-image-classification",
    aliases: &[],
    default_model: "Xenova/clip-vit-base-patch32",
    input: InputKind::ImageWithLabels,
    required_files: &["config.json", "preprocessor_config.json", "tokenizer.json"],
    optional_files: &["tokenizer_config.json", "special_tokens_map.json"],
    load: |files, device, options| Ok(Box::new(ZeroShotImageClassification::load(files, device, options)?)),
};

/// transformers.js's default (Python's has a final period).
const DEFAULT_TEMPLATE: &str = "This is a photo of {}";

#[derive(Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Options {
    candidate_labels: Option<Vec<String>>,
    hypothesis_template: Option<String>,
}

/// A dual encoder with its tokenizer: what both tasks over CLIP and SigLIP load.
struct DualEncoder {
    /// Shared with the task's `AutoModel` view (`auto_model`).
    model: Rc<dyn ImageTextModel>,
    tokenizer: Tokenizer,
    /// (length, pad id) when texts are padded to a fixed length (SigLIP).
    pad_to: Option<(usize, u32)>,
    device: Device,
}

impl DualEncoder {
    fn load(files: &dyn ModelFiles, device: &Device, options: &LoadOptions, config: &ModelConfig) -> Result<DualEncoder> {
        let vb = Weights::new(files.weights(device)?, device, options.dtype);
        let model: Rc<dyn ImageTextModel> = models::load_image_text_model(config, &vb)?.into();
        let tokenizer_config = files.json("tokenizer_config.json")?.unwrap_or_default();
        let positions = model.max_text_positions();
        let (max_len, pad_to) = match model.text_padding() {
            TextPadding::None => (max_sequence_length(files, positions, false)?, None),
            TextPadding::MaxLength => {
                // transformers.js pads to the tokenizer's model_max_length (64 for SigLIP, the
                // length Python's pipeline pads to, which is its fallback here).
                let len =
                    if has_model_max_length(&tokenizer_config) { max_sequence_length(files, positions, false)? } else { 64.min(positions) };
                (len, Some(len))
            }
        };
        let tokenizer = Tokenizer::from_files(files, max_len)?;
        let pad_to = match pad_to {
            None => None,
            Some(len) => {
                let pad = match special_token(&tokenizer_config, "pad_token") {
                    Some(p) => Some(p),
                    None => special_token(&files.json("special_tokens_map.json")?.unwrap_or_default(), "pad_token"),
                };
                let id = pad
                    .as_deref()
                    .and_then(|t| tokenizer.token_to_id(t))
                    .or_else(|| config.json["text_config"]["pad_token_id"].as_u64().map(|i| i as u32));
                let id = id.ok_or_else(|| {
                    Error::file(
                        files.name(),
                        "names no pad token (tokenizer_config.json `pad_token`), which this model's texts are padded with",
                    )
                })?;
                Some((len, id))
            }
        };
        Ok(DualEncoder { model, tokenizer, pad_to, device: device.clone() })
    }

    /// Text embeddings [texts, D], computed in chunks of `MAX_BATCH` texts.
    async fn text_embeddings(&self, texts: &[&str]) -> Result<Vec<f32>> {
        let mut out = Vec::new();
        for chunk in texts.chunks(MAX_BATCH) {
            let mut batch = self.tokenizer.encode_batch(chunk)?;
            if let Some((len, pad)) = self.pad_to {
                batch.ids.iter_mut().for_each(|ids| ids.resize(len.max(ids.len()), pad));
                batch.type_ids.iter_mut().for_each(|t| t.resize(len.max(t.len()), 0));
            }
            out.extend(self.model.text_embeds(&Batch { ids: batch.ids, type_ids: batch.type_ids })?.to_vec_f32().await?);
        }
        Ok(out)
    }
}

/// Whether tokenizer_config.json sets a real `model_max_length` (not the 1e30 sentinel).
fn has_model_max_length(tokenizer_config: &Value) -> bool {
    tokenizer_config["model_max_length"].as_f64().is_some_and(|n| n < 1e6)
}

/// A special token's text from tokenizer_config.json or special_tokens_map.json (a string, or
/// an `{content}` object).
fn special_token(json: &Value, key: &str) -> Option<String> {
    match &json[key] {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o.get("content").and_then(|c| c.as_str()).map(str::to_string),
        _ => None,
    }
}

fn read_config(files: &dyn ModelFiles) -> Result<ModelConfig> {
    let json = files.json("config.json")?.ok_or_else(|| Error::file(files.name(), "is not a model: it has no config.json"))?;
    ModelConfig::from_json(files.name(), json)
}

/// Rows of `data` ([rows, width]) scaled to unit L2 norm, in place (as torch's
/// `x / x.norm(dim=-1, keepdim=True)`).
pub(crate) fn normalize_rows(data: &mut [f32], width: usize) {
    for row in data.chunks_mut(width.max(1)) {
        let norm = row.iter().map(|&x| x * x).sum::<f32>().sqrt();
        row.iter_mut().for_each(|x| *x /= norm);
    }
}

/// [images, texts]: each normalized image row's cosine similarity (f32, as the model computes
/// it) with each normalized text row, times `scale`, plus `bias`.
pub(crate) fn logits_per_image(text: &[f32], image: &[f32], dim: usize, scale: f32, bias: f32) -> Vec<f32> {
    image.chunks(dim).flat_map(|i| text.chunks(dim).map(move |t| i.iter().zip(t).map(|(a, b)| a * b).sum::<f32>() * scale + bias)).collect()
}

pub struct ZeroShotImageClassification {
    dual: DualEncoder,
    processor: ImageProcessor,
    config: ModelConfig,
}

impl ZeroShotImageClassification {
    pub fn load(files: &dyn ModelFiles, device: &Device, options: &LoadOptions) -> Result<ZeroShotImageClassification> {
        let config = read_config(files)?;
        // The architecture is checked before the weights are opened, so a wrong model fails fast.
        models::architecture(&config, "image-text dual encoder (CLIP, SigLIP)", |a| a.image_text.is_some())?;
        let preprocessor =
            files.json("preprocessor_config.json")?.ok_or_else(|| Error::file(files.name(), "has no preprocessor_config.json"))?;
        let processor = ImageProcessor::from_json(&preprocessor)?;
        let dual = DualEncoder::load(files, device, options, &config)?;
        if dual.model.has_towers() != (true, true) {
            return Err(Error::Unsupported(format!(
                "{} holds one tower of a dual encoder (`{}`): zero-shot image classification needs both (a CLIPModel or SiglipModel)",
                config.name,
                config.architecture.as_deref().unwrap_or(&config.model_type)
            )));
        }
        if dual.model.logit_scale().is_none() {
            return Err(Error::weight("logit_scale", format!("not found in {}", config.name)));
        }
        Ok(ZeroShotImageClassification { dual, processor, config })
    }

    /// Per image, `[{score, label}]` from the most likely label down.
    async fn classify(&self, images: &[crate::image::RawImage], labels: &[String], template: &str) -> Result<Vec<Value>> {
        let model = &self.dual.model;
        let texts: Vec<String> = labels.iter().map(|l| template.replacen("{}", l, 1)).collect();
        let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
        let mut text = self.dual.text_embeddings(&texts).await?;
        let dim = text.len() / labels.len();
        normalize_rows(&mut text, dim);
        let scale = model.logit_scale().expect("checked at load").to_vec_f32().await?[0].exp();
        let bias = match model.logit_bias() {
            Some(b) => b.to_vec_f32().await?[0],
            None => 0.0,
        };
        let mut results = Vec::with_capacity(images.len());
        for chunk in images.chunks(MAX_BATCH) {
            let processed = self.processor.process(chunk)?;
            let pixels = Tensor::from_f32(&processed.pixel_values, &processed.dims, &self.dual.device)?;
            let mut image = model.image_embeds(&pixels)?.to_vec_f32().await?;
            if image.len() != chunk.len() * dim {
                return Err(Error::Config(format!(
                    "image embeddings of {} values and text embeddings of {dim}",
                    image.len() / chunk.len()
                )));
            }
            normalize_rows(&mut image, dim);
            for logits in logits_per_image(&text, &image, dim, scale, bias).chunks(labels.len()) {
                let scores: Vec<f64> = if model.sigmoid_scores() { logits.iter().map(|&l| sigmoid(l)).collect() } else { softmax(logits) };
                let ranked: Vec<Value> = ranked(&scores)
                    .into_iter()
                    .map(|i| serde_json::json!({ "score": score(scores[i] as f32), "label": labels[i] }))
                    .collect();
                results.push(Value::Array(ranked));
            }
        }
        Ok(results)
    }
}

impl Pipeline for ZeroShotImageClassification {
    /// The dual encoder as `AutoModel` loads it (both towers), over the pipeline's weights.
    fn auto_model(&self) -> Result<AutoModel> {
        let loaded = LoadedModel::ImageText { model: self.dual.model.clone(), class: ModelClass::Base };
        Ok(AutoModel::sharing(loaded, self.config.clone(), &self.dual.device))
    }

    fn task(&self) -> &'static TaskInfo {
        &TASK
    }

    fn device(&self) -> &Device {
        &self.dual.device
    }

    fn run<'a>(&'a self, input: Input<'a>, options: &'a Value, _: &'a mut dyn FnMut(super::Event<'_>)) -> LocalFuture<'a, Result<Output>> {
        Box::pin(async move {
            let options: Options = TASK.options(options)?;
            let labels = options.candidate_labels.unwrap_or_default();
            if labels.is_empty() {
                return Err(Error::Input("zero-shot-image-classification needs `candidate_labels` (a non-empty list of labels)".into()));
            }
            let template = options.hypothesis_template.as_deref().unwrap_or(DEFAULT_TEMPLATE);
            let (images, is_array) = input.images(TASK.name)?;
            let mut results = self.classify(&images, &labels, template).await?;
            Ok(Output::Json(if is_array { Value::Array(results) } else { results.remove(0) }))
        })
    }
}

/// feature-extraction's options, as transformers.js names them.
#[derive(Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TextOptions {
    pooling: Option<String>,
    #[serde(default)]
    normalize: bool,
}

/// feature-extraction on a dual encoder: the projected text embeddings [n, D].
pub struct TextEmbeddings {
    dual: DualEncoder,
}

/// feature-extraction's pipeline for a model whose architecture is a dual encoder with a text
/// tower; `None` for any other model (feature-extraction's own path).
pub fn text_embeddings(files: &dyn ModelFiles, device: &Device, options: &LoadOptions) -> Result<Option<Box<dyn Pipeline>>> {
    let config = read_config(files)?;
    if models::architecture(&config, "", |a| a.image_text.is_some() && a.text_encoder.is_none()).is_err() {
        return Ok(None);
    }
    let dual = DualEncoder::load(files, device, options, &config)?;
    if !dual.model.has_towers().1 {
        return Err(Error::Unsupported(format!("{} has no text tower: feature-extraction embeds texts", config.name)));
    }
    Ok(Some(Box::new(TextEmbeddings { dual })))
}

impl Pipeline for TextEmbeddings {
    fn task(&self) -> &'static TaskInfo {
        &super::feature_extraction::TASK
    }

    fn device(&self) -> &Device {
        &self.dual.device
    }

    fn run<'a>(&'a self, input: Input<'a>, options: &'a Value, _: &'a mut dyn FnMut(super::Event<'_>)) -> LocalFuture<'a, Result<Output>> {
        let task = self.task();
        Box::pin(async move {
            let texts: OneOrMany<String> = task.input(input.value, "a string or an array of strings")?;
            let options: TextOptions = task.options(options)?;
            if let Some(p) = options.pooling.as_deref().filter(|&p| p != "none") {
                return Err(Error::Input(format!(
                    "pooling `{p}`: this model's text embedding is already one vector per text (its projected pooled output); leave pooling out"
                )));
            }
            let texts: Vec<&str> = texts.items().into_iter().map(String::as_str).collect();
            if texts.is_empty() {
                return Err(Error::Input("feature-extraction needs at least one text".into()));
            }
            let mut data = self.dual.text_embeddings(&texts).await?;
            let dim = data.len() / texts.len();
            if options.normalize {
                normalize_rows(&mut data, dim);
            }
            Ok(Output::Tensor { dims: vec![texts.len(), dim], data })
        })
    }
}
