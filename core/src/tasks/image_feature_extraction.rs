//! image-feature-extraction: an image, or an array of images, to a vision model's features as
//! one tensor for the call, as transformers.js 4.3.1 returns them: the whole
//! `last_hidden_state` ([N, tokens, dim]; a CNN's [N, C, h, w]) by default, or with `pool: true`
//! the pooled output [N, dim] (ViT's pooler, DINOv2's class token, ConvNeXt's normed average,
//! CLIP's and SigLIP's image embeddings). Any architecture with a `vision` entry serves.

use serde_json::Value;

use super::image_model::{ImageModelTask, MAX_BATCH};
use super::{Input, InputKind, LoadOptions, LocalFuture, Output, Pipeline, TaskInfo};
use crate::files::ModelFiles;
use crate::models::VisionHead;
use crate::{Device, Error, Result};

pub static TASK: TaskInfo = TaskInfo {
    name: "image-feature-extraction",
    aliases: &[],
    default_model: "Xenova/vit-base-patch16-224-in21k",
    input: InputKind::Image,
    required_files: &["config.json", "preprocessor_config.json"],
    optional_files: &[],
    load: |files, device, options| Ok(Box::new(ImageFeatureExtraction::load(files, device, options)?)),
};

#[derive(Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Options {
    /// true: the pooled output; else (false, null, absent) the last hidden state.
    #[serde(default)]
    pool: Option<bool>,
}

pub struct ImageFeatureExtraction {
    base: ImageModelTask,
}

impl ImageFeatureExtraction {
    pub fn load(files: &dyn ModelFiles, device: &Device, options: &LoadOptions) -> Result<ImageFeatureExtraction> {
        Ok(ImageFeatureExtraction { base: ImageModelTask::load(files, device, options, VisionHead::None)? })
    }
}

impl Pipeline for ImageFeatureExtraction {
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
            let pool = options.pool == Some(true);
            let (images, _) = input.images(TASK.name)?;
            let mut dims: Vec<usize> = Vec::new();
            let mut data = Vec::new();
            for chunk in images.chunks(MAX_BATCH) {
                let out = self.base.forward(chunk)?;
                let features = if pool {
                    out.pooled.ok_or_else(|| {
                        Error::Input(format!(
                            "{} returns no pooled output: `pool: true` needs a model with a pooler",
                            self.base.config.name
                        ))
                    })?
                } else {
                    out.last_hidden_state.ok_or_else(|| Error::Unsupported("the model computed no hidden states".into()))?
                };
                data.extend(features.to_vec_f32().await?);
                // Every chunk has the same per-image dims (the processor gives one size).
                match dims.first_mut() {
                    Some(n) => *n += features.dims()[0],
                    None => dims = features.dims().to_vec(),
                }
            }
            Ok(Output::Tensor { dims, data })
        })
    }

    fn info(&self) -> Value {
        serde_json::json!({ "model_type": self.base.config.model_type })
    }
}
