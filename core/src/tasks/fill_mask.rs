//! fill-mask: the most likely tokens for each mask token in a text, as Python transformers'
//! pipeline gives them: `top_k` candidates (5 by default), optionally among `targets` only, each
//! with the text the candidate makes. A text with several masks gets a list per mask.

use serde_json::Value;

use super::text_encoder::{TextEncoderTask, ranked, softmax};
use super::{Input, InputKind, LoadOptions, LocalFuture, OneOrMany, Output, Pipeline, TaskInfo, score};
use crate::files::ModelFiles;
use crate::models::HeadKind;
use crate::{Device, Error, Result};

pub static TASK: TaskInfo = TaskInfo {
    name: "fill-mask",
    aliases: &[],
    default_model: "Xenova/bert-base-uncased",
    input: InputKind::Text,
    required_files: &["config.json", "tokenizer.json"],
    optional_files: &["tokenizer_config.json"],
    load: |files, device, options| Ok(Box::new(FillMask::load(files, device, options)?)),
};

#[derive(serde::Deserialize)]
#[serde(untagged)]
enum Targets {
    One(String),
    Many(Vec<String>),
}

#[derive(Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Options {
    top_k: Option<usize>,
    targets: Option<Targets>,
}

pub struct FillMask {
    base: TextEncoderTask,
    mask: String,
    mask_id: u32,
    pad_id: Option<u32>,
}

impl FillMask {
    pub fn load(files: &dyn ModelFiles, device: &Device, options: &LoadOptions) -> Result<FillMask> {
        let base = TextEncoderTask::load(files, device, options, Some(HeadKind::MaskedLm))?;
        let mask = base
            .special_token("mask_token")
            .or_else(|| ["[MASK]", "<mask>"].into_iter().find(|m| base.tokenizer.token_to_id(m).is_some()).map(str::to_string))
            .ok_or_else(|| Error::file(files.name(), "has no mask token (tokenizer_config.json's `mask_token`)"))?;
        let mask_id = base
            .tokenizer
            .token_to_id(&mask)
            .ok_or_else(|| Error::Tokenizer(format!("the mask token {mask:?} is not in the vocabulary")))?;
        let pad_id = base.special_token("pad_token").and_then(|p| base.tokenizer.token_to_id(&p));
        Ok(FillMask { base, mask, mask_id, pad_id })
    }

    /// The vocabulary ids `targets` name: a token itself, else the first token of its text (as
    /// Python does); duplicates once.
    fn target_ids(&self, targets: &Targets) -> Result<Vec<u32>> {
        let list = match targets {
            Targets::One(t) => std::slice::from_ref(t),
            Targets::Many(v) => v.as_slice(),
        };
        let mut ids = Vec::new();
        for target in list {
            let id = match self.base.tokenizer.token_to_id(target) {
                Some(id) => Some(id),
                None => self.base.tokenizer.encode(target, false)?.first().copied(),
            };
            if let Some(id) = id
                && !ids.contains(&id)
            {
                ids.push(id);
            }
        }
        if ids.is_empty() {
            return Err(Error::Input("fill-mask: none of the `targets` is in the vocabulary".into()));
        }
        Ok(ids)
    }

    async fn fill(&self, texts: &[&String], top_k: usize, targets: Option<&[u32]>) -> Result<Vec<Value>> {
        let encodings = texts.iter().map(|t| self.base.tokenizer.encode_full(t, None)).collect::<Result<Vec<_>>>()?;
        let masks: Vec<Vec<usize>> =
            encodings.iter().map(|e| e.ids.iter().enumerate().filter(|(_, id)| **id == self.mask_id).map(|(i, _)| i).collect()).collect();
        if let Some(i) = masks.iter().position(Vec::is_empty) {
            return Err(Error::Input(format!("fill-mask: no mask token ({}) in {:?}", self.mask, texts[i])));
        }
        let logits = self.base.head_outputs_at(&encodings, &masks).await?;
        let mut results = Vec::with_capacity(texts.len());
        for ((encoding, positions), per_mask) in encodings.iter().zip(&masks).zip(&logits) {
            let single = positions.len() == 1;
            let mut lists = Vec::with_capacity(positions.len());
            for (&position, row) in positions.iter().zip(per_mask) {
                let probs = softmax(row);
                let (candidates, probs): (Vec<u32>, Vec<f64>) = match targets {
                    Some(ids) => (ids.to_vec(), ids.iter().map(|&id| probs.get(id as usize).copied().unwrap_or(0.0)).collect()),
                    None => ((0..probs.len() as u32).collect(), probs),
                };
                let mut list = Vec::new();
                for i in ranked(&probs).into_iter().take(top_k) {
                    let token = candidates[i];
                    let mut ids = encoding.ids.clone();
                    ids[position] = token;
                    ids.retain(|&id| Some(id) != self.pad_id);
                    list.push(serde_json::json!({
                        "score": score(probs[i] as f32),
                        "token": token,
                        "token_str": self.base.decode(&[token], false)?,
                        // With several masks the others stay visible, special tokens with them.
                        "sequence": self.base.decode(&ids, single)?,
                    }));
                }
                lists.push(Value::Array(list));
            }
            results.push(if single { lists.remove(0) } else { Value::Array(lists) });
        }
        Ok(results)
    }
}

impl Pipeline for FillMask {
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
            let targets = options.targets.as_ref().map(|t| self.target_ids(t)).transpose()?;
            let top_k = options.top_k.unwrap_or(5).min(targets.as_ref().map_or(usize::MAX, Vec::len));
            if top_k == 0 {
                return Err(Error::Input("fill-mask: top_k must be at least 1".into()));
            }
            let items = texts.items();
            if items.is_empty() {
                return Err(Error::Input("fill-mask needs at least one text".into()));
            }
            let mut results = self.fill(&items, top_k, targets.as_deref()).await?;
            Ok(Output::Json(if texts.is_many() { Value::Array(results) } else { results.remove(0) }))
        })
    }

    fn info(&self) -> Value {
        serde_json::json!({ "mask_token": self.mask })
    }
}
