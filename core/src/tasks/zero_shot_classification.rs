//! zero-shot-classification: a natural-language-inference model scores how well each candidate
//! label, put into a hypothesis ("This example is {}."), follows from the text. As Python
//! transformers computes it: the entailment logit softmaxed over the labels, or (`multi_label`,
//! or a single label) entailment against contradiction for each label on its own.

use serde_json::Value;

use super::text_encoder::{TextEncoderTask, ranked, softmax};
use super::{Input, InputKind, LoadOptions, LocalFuture, OneOrMany, Output, Pipeline, TaskInfo, score};
use crate::files::ModelFiles;
use crate::models::HeadKind;
use crate::{Device, Error, Result};

pub static TASK: TaskInfo = TaskInfo {
    name: "zero-shot-classification",
    aliases: &[],
    default_model: "Xenova/distilbert-base-uncased-mnli",
    input: InputKind::TextWithLabels,
    required_files: &["config.json", "tokenizer.json"],
    optional_files: &["tokenizer_config.json"],
    load: |files, device, options| Ok(Box::new(ZeroShotClassification::load(files, device, options)?)),
};

#[derive(serde::Deserialize)]
#[serde(untagged)]
enum Labels {
    /// Comma-separated, as Python accepts them.
    Joined(String),
    List(Vec<String>),
}

#[derive(Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Options {
    candidate_labels: Option<Labels>,
    hypothesis_template: Option<String>,
    #[serde(default)]
    multi_label: bool,
}

pub struct ZeroShotClassification {
    base: TextEncoderTask,
    /// The label whose name starts with "entail" (any case); Python's -1 (the last) when none does.
    entailment: usize,
    /// What Python takes as contradiction: the first label, or the last when entailment is first.
    contradiction: usize,
}

impl ZeroShotClassification {
    pub fn load(files: &dyn ModelFiles, device: &Device, options: &LoadOptions) -> Result<ZeroShotClassification> {
        let base = TextEncoderTask::load(files, device, options, Some(HeadKind::SequenceClassification))?;
        let labels = &base.config.id2label;
        if labels.len() < 2 {
            return Err(Error::Unsupported(format!(
                "{} has {} label(s): zero-shot classification needs an NLI model (entailment, contradiction, ...)",
                base.config.name,
                labels.len()
            )));
        }
        let last = labels.len() - 1;
        let entailment = labels.iter().position(|l| l.to_lowercase().starts_with("entail")).unwrap_or(last);
        let contradiction = if entailment == 0 { last } else { 0 };
        Ok(ZeroShotClassification { base, entailment, contradiction })
    }

    /// `{sequence, labels, scores}` for one text, labels from the most likely down.
    async fn classify(&self, text: &str, labels: &[String], template: &str, multi_label: bool) -> Result<Value> {
        let encodings = labels
            .iter()
            .map(|label| self.base.tokenizer.encode_full(text, Some(&template.replacen("{}", label, 1))))
            .collect::<Result<Vec<_>>>()?;
        let logits = self.base.head_outputs(&encodings).await?;
        let scores: Vec<f64> = if multi_label || labels.len() == 1 {
            logits.iter().map(|l| softmax(&[l[self.contradiction], l[self.entailment]])[1]).collect()
        } else {
            softmax(&logits.iter().map(|l| l[self.entailment]).collect::<Vec<_>>())
        };
        let order = ranked(&scores);
        Ok(serde_json::json!({
            "sequence": text,
            "labels": order.iter().map(|&i| labels[i].clone()).collect::<Vec<_>>(),
            "scores": order.iter().map(|&i| score(scores[i] as f32)).collect::<Vec<_>>(),
        }))
    }
}

impl Pipeline for ZeroShotClassification {
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
            let labels: Vec<String> = match options.candidate_labels {
                None => return Err(Error::Input("zero-shot-classification needs `candidate_labels` (a list of labels)".into())),
                Some(Labels::Joined(s)) => s.split(',').map(str::trim).filter(|l| !l.is_empty()).map(str::to_string).collect(),
                Some(Labels::List(list)) => list,
            };
            let template = options.hypothesis_template.as_deref().unwrap_or("This example is {}.");
            if labels.is_empty() || texts.items().is_empty() {
                return Err(Error::Input("zero-shot-classification needs at least one label and at least one text".into()));
            }
            if !template.contains("{}") {
                return Err(Error::Input(format!(
                    "the hypothesis_template {template:?} has no `{{}}` where the label goes (\"This example is {{}}.\")"
                )));
            }
            let mut results = Vec::new();
            for text in texts.items() {
                results.push(self.classify(text, &labels, template, options.multi_label).await?);
            }
            Ok(Output::Json(if texts.is_many() { Value::Array(results) } else { results.remove(0) }))
        })
    }

    fn info(&self) -> Value {
        serde_json::json!({ "labels": self.base.config.id2label })
    }
}
