//! What the tasks over a vision model share: loading config.json, preprocessor_config.json and
//! the model with the head a task needs, and running it on a call's images: the image processor
//! makes `pixel_values` on the host, which go to the device as one tensor per batch.

use std::rc::Rc;

use crate::files::ModelFiles;
use crate::image::{ImageProcessor, RawImage};
use crate::models::auto::{AutoModel, LoadedModel};
use crate::models::{self, ModelConfig, VisionHead, VisionModel, VisionOutput};
use crate::weights::Weights;
use crate::{Device, Error, Result, Tensor};

use super::LoadOptions;

/// Images per forward pass: bounds activation memory on a long array of images.
pub const MAX_BATCH: usize = 16;

pub struct ImageModelTask {
    pub config: ModelConfig,
    pub processor: ImageProcessor,
    /// Shared with the task's `AutoModel` view (`auto_model`).
    pub model: Rc<dyn VisionModel>,
    pub head: VisionHead,
    pub device: Device,
}

impl ImageModelTask {
    pub fn load(files: &dyn ModelFiles, device: &Device, options: &LoadOptions, head: VisionHead) -> Result<ImageModelTask> {
        let json = files.json("config.json")?.ok_or_else(|| Error::file(files.name(), "is not a model: it has no config.json"))?;
        let config = ModelConfig::from_json(files.name(), json)?;
        // The architecture is checked before the weights are opened, so a wrong model fails fast.
        models::architecture(&config, "vision model", |a| a.vision.is_some())?;
        let processor_json = files
            .json("preprocessor_config.json")?
            .ok_or_else(|| Error::file(files.name(), "has no preprocessor_config.json, which an image task needs"))?;
        let processor = ImageProcessor::from_json(&processor_json)?;
        let vb = Weights::new(files.weights(device)?, device, options.dtype);
        let model = models::load_vision_model(&config, &vb, head)?.into();
        Ok(ImageModelTask { config, processor, model, head, device: device.clone() })
    }

    /// The model as an `AutoModel` over the same weights (`Pipeline::auto_model`).
    pub fn auto_model(&self) -> AutoModel {
        AutoModel::sharing(LoadedModel::Vision { model: self.model.clone(), head: self.head }, self.config.clone(), &self.device)
    }

    /// The model's outputs on `images` (at most `MAX_BATCH`), processed as the model's image
    /// processor says. Nothing runs until an output is read.
    pub fn forward(&self, images: &[RawImage]) -> Result<VisionOutput> {
        let processed = self.processor.process(images)?;
        let pixel_values = Tensor::from_f32(&processed.pixel_values, &processed.dims, &self.device)?;
        let [n, _, h, w] = processed.dims;
        let mask = match &processed.pixel_mask {
            Some(m) => Some(Tensor::from_f32(m, &[n, h, w], &self.device)?),
            None => None,
        };
        self.model.forward(&pixel_values, mask.as_ref())
    }
}
