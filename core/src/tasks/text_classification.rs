//! text-classification (sentiment-analysis): a text, or a pair of texts (what cross-encoders and
//! NLI models read), to labels with scores, as Python transformers' pipeline computes them:
//! softmax for single-label models, sigmoid for multi-label ones (or one label), or the raw
//! logits; the best label, the `top_k` best, or all (`top_k: null`).

use serde_json::Value;

use super::text_encoder::{TextEncoderTask, ranked, sigmoid, softmax};
use super::{Input, InputKind, LoadOptions, LocalFuture, OneOrMany, Output, Pipeline, TaskInfo, score};
use crate::files::ModelFiles;
use crate::models::HeadKind;
use crate::{Device, Error, Result};

pub static TASK: TaskInfo = TaskInfo {
    name: "text-classification",
    aliases: &["sentiment-analysis"],
    default_model: "Xenova/distilbert-base-uncased-finetuned-sst-2-english",
    input: InputKind::TextOrPair,
    required_files: &["config.json", "tokenizer.json"],
    optional_files: &["tokenizer_config.json"],
    load: |files, device, options| Ok(Box::new(TextClassification::load(files, device, options)?)),
};

const INPUT_KINDS: &str = "a string, {text, text_pair}, or an array of those";

#[derive(serde::Deserialize)]
#[serde(untagged)]
enum TextInput {
    Text(String),
    Pair { text: String, text_pair: String },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScoreFunction {
    Softmax,
    Sigmoid,
    None,
}

#[derive(Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Options {
    /// Absent: the best label (Python's legacy shape: one object per text); a number: the n
    /// best; null: every label.
    #[serde(default, deserialize_with = "present")]
    top_k: Option<Option<usize>>,
    function_to_apply: Option<ScoreFunction>,
}

/// Tells an option given as null (Some(None)) from one not given (None).
pub(crate) fn present<'de, D: serde::Deserializer<'de>, T: serde::Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

pub struct TextClassification {
    base: TextEncoderTask,
}

impl TextClassification {
    pub fn load(files: &dyn ModelFiles, device: &Device, options: &LoadOptions) -> Result<TextClassification> {
        Ok(TextClassification { base: TextEncoderTask::load(files, device, options, Some(HeadKind::SequenceClassification))? })
    }

    /// The function Python applies by default: sigmoid for multi-label problems and single-logit
    /// regressors, else softmax.
    fn default_function(&self) -> ScoreFunction {
        let c = &self.base.config;
        if c.problem_type.as_deref() == Some("multi_label_classification") || c.id2label.len() == 1 {
            ScoreFunction::Sigmoid
        } else {
            ScoreFunction::Softmax
        }
    }

    /// Every label's score for each input, in label order.
    async fn scores(&self, inputs: &[&TextInput], function: ScoreFunction) -> Result<Vec<Vec<f64>>> {
        let encodings = inputs
            .iter()
            .map(|input| match input {
                TextInput::Text(t) => self.base.tokenizer.encode_full(t, None),
                TextInput::Pair { text, text_pair } => self.base.tokenizer.encode_full(text, Some(text_pair)),
            })
            .collect::<Result<Vec<_>>>()?;
        let logits = self.base.head_outputs(&encodings).await?;
        Ok(logits
            .iter()
            .map(|row| match function {
                ScoreFunction::Softmax => softmax(row),
                ScoreFunction::Sigmoid => row.iter().map(|&x| sigmoid(x)).collect(),
                ScoreFunction::None => row.iter().map(|&x| x as f64).collect(),
            })
            .collect())
    }
}

impl Pipeline for TextClassification {
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
            let inputs: OneOrMany<TextInput> = TASK.input(input, INPUT_KINDS)?;
            let options: Options = TASK.options(options)?;
            let items = inputs.items();
            if items.is_empty() {
                return Err(Error::Input("text-classification needs at least one text".into()));
            }
            let function = options.function_to_apply.unwrap_or_else(|| self.default_function());
            let all = self.scores(&items, function).await?;
            let label = |i: usize, s: f64| serde_json::json!({ "label": self.base.label(i), "score": score(s as f32) });
            let results: Vec<Value> = all
                .iter()
                .map(|scores| {
                    let order = ranked(scores);
                    match options.top_k {
                        // Python's default: the best label as one object.
                        None => label(order[0], scores[order[0]]),
                        Some(k) => {
                            let k = k.unwrap_or(scores.len()).min(scores.len());
                            Value::Array(order[..k].iter().map(|&i| label(i, scores[i])).collect())
                        }
                    }
                })
                .collect();
            let single_text = matches!(inputs, OneOrMany::One(TextInput::Text(_)));
            Ok(Output::Json(match (inputs.is_many(), options.top_k) {
                // One text: always a list (of one object by default), as both libraries return.
                (false, None) if single_text => Value::Array(results),
                (false, _) => results.into_iter().next().unwrap_or(Value::Null),
                // Several texts with top_k 1: one object each, flat, as transformers.js returns.
                (true, Some(Some(1))) => {
                    Value::Array(results.into_iter().flat_map(|r| r.as_array().cloned().unwrap_or_default()).collect())
                }
                (true, _) => Value::Array(results),
            }))
        })
    }

    fn info(&self) -> Value {
        serde_json::json!({ "labels": self.base.config.id2label })
    }
}
