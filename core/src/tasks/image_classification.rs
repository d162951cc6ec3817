//! image-classification: an image, or an array of images, to the `top_k` most likely labels of a
//! `*ForImageClassification` model, as transformers.js 4.3.1 returns them: `[{label, score}]`
//! for one image, an array of those for an array. Scores are the softmax of the logits, or, as
//! Python's pipeline computes them, sigmoids for a multi-label model (`problem_type`
//! `multi_label_classification`) or a single logit (transformers.js always takes the softmax).

use serde_json::Value;

use super::image_model::{ImageModelTask, MAX_BATCH};
use super::text_classification::present;
use super::text_encoder::{ranked, sigmoid, softmax};
use super::{Input, InputKind, LoadOptions, LocalFuture, Output, Pipeline, TaskInfo, score};
use crate::files::ModelFiles;
use crate::models::VisionHead;
use crate::{Device, Error, Result};

pub static TASK: TaskInfo = TaskInfo {
    name: "image-classification",
    aliases: &[],
    default_model: "Xenova/vit-base-patch16-224",
    input: InputKind::Image,
    required_files: &["config.json", "preprocessor_config.json"],
    optional_files: &[],
    load: |files, device, options| Ok(Box::new(ImageClassification::load(files, device, options)?)),
};

#[derive(Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Options {
    /// Absent: 5; a number: that many (at most every label); null: every label.
    #[serde(default, deserialize_with = "present")]
    top_k: Option<Option<usize>>,
}

pub struct ImageClassification {
    base: ImageModelTask,
}

impl ImageClassification {
    pub fn load(files: &dyn ModelFiles, device: &Device, options: &LoadOptions) -> Result<ImageClassification> {
        Ok(ImageClassification { base: ImageModelTask::load(files, device, options, VisionHead::ImageClassification)? })
    }

    fn multi_label(&self) -> bool {
        let c = &self.base.config;
        c.problem_type.as_deref() == Some("multi_label_classification") || c.id2label.len() == 1
    }
}

impl Pipeline for ImageClassification {
    fn auto_model(&self) -> Result<crate::models::auto::AutoModel> {
        Ok(self.base.auto_model())
    }
    fn task(&self) -> &'static TaskInfo {
        &TASK
    }

    fn device(&self) -> &Device {
        &self.base.device
    }

    fn run<'a>(&'a self, input: Input<'a>, options: &'a Value, _: &'a mut dyn FnMut(super::Event<'_>)) -> LocalFuture<'a, Result<Output>> {
        Box::pin(async move {
            let options: Options = TASK.options(options)?;
            let (images, is_array) = input.images(TASK.name)?;
            let labels = &self.base.config.id2label;
            let k = match options.top_k {
                None => 5,
                Some(k) => k.unwrap_or(labels.len()),
            }
            .min(labels.len());
            let mut results = Vec::with_capacity(images.len());
            for chunk in images.chunks(MAX_BATCH) {
                let logits = self.base.forward(chunk)?.logits.ok_or_else(|| Error::Unsupported("the model computed no logits".into()))?;
                let values = logits.to_vec_f32().await?;
                let width = logits.dims()[1];
                if width != labels.len() {
                    return Err(Error::Config(format!("the classifier has {width} outputs for {} labels", labels.len())));
                }
                for row in values.chunks(width) {
                    let scores = if self.multi_label() { row.iter().map(|&x| sigmoid(x)).collect() } else { softmax(row) };
                    let top = ranked(&scores)[..k]
                        .iter()
                        .map(|&i| serde_json::json!({ "label": labels[i], "score": score(scores[i] as f32) }))
                        .collect();
                    results.push(Value::Array(top));
                }
            }
            Ok(Output::Json(if is_array { Value::Array(results) } else { results.pop().unwrap_or(Value::Null) }))
        })
    }

    fn info(&self) -> Value {
        serde_json::json!({ "labels": self.base.config.id2label })
    }
}
