//! object-detection: an image (or an array of images) to the objects a detector (DETR) finds,
//! `[{score, label, box: {xmin, ymin, xmax, ymax}}]` per image, post-processed exactly as
//! transformers.js 4.3.1's ObjectDetectionPipeline and `post_process_object_detection` do:
//!
//! - each query's best class over all logits, the no-object class included; a query whose best
//!   is no-object is dropped, and so is one whose best class has a softmax probability below
//!   `threshold` (default 0.9). Python's pipeline takes the best real class instead and keeps it
//!   when above the threshold: the two agree for thresholds of 0.5 and more;
//! - boxes from (center, size) in [0, 1] to corners, in pixels of the original image truncated
//!   to integers, or as fractions of the image with `percentage: true` (transformers.js only);
//! - detections in query order, unsorted.
//!
//! Images are run one at a time, as Python's pipeline does (a batch padded to its largest image
//! would give boxes relative to the padded size), except that images of one size share a forward
//! pass. transformers.js refuses arrays of more than one image; here any number runs.

use serde_json::{Value, json};

use super::{Input, InputKind, LoadOptions, LocalFuture, Output, Pipeline, TaskInfo};
use crate::files::ModelFiles;
use crate::image::{ImageProcessor, RawImage};
use crate::models::auto::{AutoModel, LoadedModel};
use crate::models::{self, ModelConfig, VisionHead, VisionModel};
use crate::weights::Weights;
use crate::{Device, Error, HostData, Result, Tensor};

pub static TASK: TaskInfo = TaskInfo {
    name: "object-detection",
    aliases: &[],
    default_model: "Xenova/detr-resnet-50",
    input: InputKind::Image,
    required_files: &["config.json", "preprocessor_config.json"],
    optional_files: &[],
    load: |files, device, options| Ok(Box::new(ObjectDetection::load(files, device, options)?)),
};

/// Images per forward pass at most (activation memory).
const MAX_BATCH: usize = 8;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Options {
    threshold: f64,
    percentage: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options { threshold: 0.9, percentage: false }
    }
}

pub struct ObjectDetection {
    /// Shared with the task's `AutoModel` view (`auto_model`).
    model: std::rc::Rc<dyn VisionModel>,
    processor: ImageProcessor,
    config: ModelConfig,
    device: Device,
}

/// One kept query.
struct Detection {
    score: f64,
    label: usize,
    /// xmin, ymin, xmax, ymax as fractions of the image.
    corners: [f64; 4],
}

impl ObjectDetection {
    pub fn load(files: &dyn ModelFiles, device: &Device, options: &LoadOptions) -> Result<ObjectDetection> {
        let json = files.json("config.json")?.ok_or_else(|| Error::file(files.name(), "is not a model: it has no config.json"))?;
        let config = ModelConfig::from_json(files.name(), json)?;
        models::architecture(&config, "vision model", |a| a.vision.is_some())?;
        let processor_json =
            files.json("preprocessor_config.json")?.ok_or_else(|| Error::file(files.name(), "has no preprocessor_config.json"))?;
        let processor = ImageProcessor::from_json(&processor_json)?;
        let vb = Weights::new(files.weights(device)?, device, options.dtype);
        let model = models::load_vision_model(&config, &vb, VisionHead::ObjectDetection)?.into();
        Ok(ObjectDetection { model, processor, config, device: device.clone() })
    }

    /// The detections of each image, in the images' order.
    async fn detect(&self, images: &[RawImage], threshold: f64) -> Result<Vec<Vec<Detection>>> {
        let processed = images.iter().map(|image| self.processor.process(std::slice::from_ref(image))).collect::<Result<Vec<_>>>()?;
        let mut results: Vec<Option<Vec<Detection>>> = (0..images.len()).map(|_| None).collect();
        // Images of one processed size run together; any other runs on its own.
        let mut pending: Vec<usize> = (0..images.len()).collect();
        while let Some(&first) = pending.first() {
            let group: Vec<usize> =
                pending.iter().copied().filter(|&i| processed[i].dims == processed[first].dims).take(MAX_BATCH).collect();
            pending.retain(|i| !group.contains(i));
            let [_, c, h, w] = processed[first].dims;
            let pixels: Vec<f32> = group.iter().flat_map(|&i| processed[i].pixel_values.iter().copied()).collect();
            let pixel_values = Tensor::from_f32(&pixels, &[group.len(), c, h, w], &self.device)?;
            let out = self.model.forward(&pixel_values, None)?;
            let (logits, boxes) = match (out.logits, out.pred_boxes) {
                (Some(l), Some(b)) => (l, b),
                _ => return Err(Error::Unsupported(format!("{} gives no logits and boxes", self.config.name))),
            };
            let [queries, classes] = [logits.dims()[1], logits.dims()[2]];
            let (logits, boxes) = match <[HostData; 2]>::try_from(Tensor::read_all(&[&logits, &boxes]).await?) {
                Ok([HostData::F32(l), HostData::F32(b)]) => (l, b),
                _ => return Err(Error::dtype("object-detection", "the model's logits and boxes are not f32")),
            };
            for (b, &i) in group.iter().enumerate() {
                let per_image = (0..queries)
                    .filter_map(|q| {
                        let at = (b * queries + q) * classes;
                        let boxed = &boxes[(b * queries + q) * 4..][..4];
                        keep(&logits[at..at + classes], boxed, threshold)
                    })
                    .collect();
                results[i] = Some(per_image);
            }
        }
        Ok(results.into_iter().map(|r| r.unwrap_or_default()).collect())
    }
}

/// transformers.js's rule for one query: its logits (labels + no-object) and box (cx, cy, w, h).
fn keep(logits: &[f32], bbox: &[f32], threshold: f64) -> Option<Detection> {
    // The first of equal maxima, as transformers.js's `max` gives it.
    let best = (1..logits.len()).fold(0, |b, i| if logits[i] > logits[b] { i } else { b });
    if best == logits.len() - 1 {
        return None; // no object
    }
    let max = logits[best] as f64;
    let sum: f64 = logits.iter().map(|&x| (x as f64 - max).exp()).sum();
    let score = 1.0 / sum;
    if score < threshold {
        return None;
    }
    let [cx, cy, w, h] = [bbox[0] as f64, bbox[1] as f64, bbox[2] as f64, bbox[3] as f64];
    Some(Detection { score, label: best, corners: [cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0] })
}

impl Pipeline for ObjectDetection {
    fn auto_model(&self) -> Result<AutoModel> {
        let loaded = LoadedModel::Vision { model: self.model.clone(), head: VisionHead::ObjectDetection };
        Ok(AutoModel::sharing(loaded, self.config.clone(), &self.device))
    }
    fn task(&self) -> &'static TaskInfo {
        &TASK
    }

    fn device(&self) -> &Device {
        &self.device
    }

    fn run<'a>(&'a self, input: Input<'a>, options: &'a Value, _: &'a mut dyn FnMut(super::Event<'_>)) -> LocalFuture<'a, Result<Output>> {
        Box::pin(async move {
            let options: Options = TASK.options(options)?;
            let (images, is_array) = input.images(TASK.name)?;
            let detections = self.detect(&images, options.threshold).await?;
            let results: Vec<Value> = detections
                .iter()
                .zip(&images)
                .map(|(found, image)| {
                    let (width, height) = (image.width as f64, image.height as f64);
                    Value::Array(
                        found
                            .iter()
                            .map(|d| {
                                let [x0, y0, x1, y1] = d.corners;
                                let corners = if options.percentage {
                                    json!({ "xmin": x0, "ymin": y0, "xmax": x1, "ymax": y1 })
                                } else {
                                    // Pixels truncated toward zero, as transformers.js's `x | 0`.
                                    let px = |v: f64, size: f64| (v * size).trunc() as i64;
                                    json!({ "xmin": px(x0, width), "ymin": px(y0, height), "xmax": px(x1, width), "ymax": px(y1, height) })
                                };
                                json!({ "score": d.score, "label": self.config.id2label.get(d.label), "box": corners })
                            })
                            .collect(),
                    )
                })
                .collect();
            Ok(Output::Json(if is_array { Value::Array(results) } else { results.into_iter().next().unwrap_or(Value::Null) }))
        })
    }

    fn info(&self) -> Value {
        json!({ "labels": self.config.id2label })
    }
}
