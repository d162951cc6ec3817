//! Image processors: preprocessor_config.json read as transformers' Pillow-based processors read
//! it (class defaults, `size` as an int or a dict, legacy `max_size`), and `pixel_values` made by
//! the same steps in the same arithmetic: convert to RGB, resize with Pillow's filters on 8-bit
//! data, center crop, rescale (in f64, then f32), normalize (in f32), pad (DETR).

use serde_json::Value;

use super::{RawImage, Resample};
use crate::{Error, Result};

/// The processor classes understood (their `...Fast` and `...FeatureExtractor` names too).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProcessorKind {
    /// ViTImageProcessor (and DeiT-less plain resizing to `height` x `width`).
    Vit,
    /// CLIPImageProcessor: shortest-edge resize, center crop.
    Clip,
    /// BitImageProcessor (DINOv2): as CLIP.
    Bit,
    /// SiglipImageProcessor: plain resize.
    Siglip,
    /// ConvNextImageProcessor: `crop_pct` resize then crop below 384, else plain resize.
    ConvNext,
    /// DetrImageProcessor: aspect-preserving resize, pad to the batch's largest with a mask.
    Detr,
}

impl ProcessorKind {
    const NAMES: &[(&str, ProcessorKind)] = &[
        ("ViT", ProcessorKind::Vit),
        ("CLIP", ProcessorKind::Clip),
        ("Bit", ProcessorKind::Bit),
        ("Siglip", ProcessorKind::Siglip),
        ("ConvNext", ProcessorKind::ConvNext),
        ("Detr", ProcessorKind::Detr),
    ];

    /// The kind of a class name: `ViTImageProcessor`, `ViTImageProcessorFast`,
    /// `ViTFeatureExtractor`.
    pub fn from_class(class: &str) -> Result<ProcessorKind> {
        let base = class
            .strip_suffix("ImageProcessorFast")
            .or_else(|| class.strip_suffix("ImageProcessorPil"))
            .or_else(|| class.strip_suffix("ImageProcessor"))
            .or_else(|| class.strip_suffix("FeatureExtractor"))
            .unwrap_or(class);
        Self::NAMES.iter().find(|(n, _)| *n == base).map(|&(_, k)| k).ok_or_else(|| {
            let known: Vec<String> = Self::NAMES.iter().map(|(n, _)| format!("{n}ImageProcessor")).collect();
            Error::Unsupported(format!("image processor `{class}`; the known ones are {}", known.join(", ")))
        })
    }

    /// An int `size` means a square for ViT (transformers' `default_to_square`), a shortest edge
    /// for the others.
    fn default_to_square(self) -> bool {
        matches!(self, ProcessorKind::Vit)
    }
}

/// transformers' size dict: which keys are set decides how an image is resized.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SizeSpec {
    pub height: Option<usize>,
    pub width: Option<usize>,
    pub shortest_edge: Option<usize>,
    pub longest_edge: Option<usize>,
    pub max_height: Option<usize>,
    pub max_width: Option<usize>,
}

impl SizeSpec {
    fn square(n: usize) -> SizeSpec {
        SizeSpec { height: Some(n), width: Some(n), ..Default::default() }
    }

    /// transformers' `get_size_dict`: an int (a square, or a shortest edge with `max_size` as
    /// the longest), `[height, width]`, or a dict.
    fn parse(v: &Value, default_to_square: bool, max_size: Option<usize>, name: &str) -> Result<SizeSpec> {
        let int = |v: &Value, key: &str| -> Result<Option<usize>> {
            match v {
                Value::Null => Ok(None),
                v => v
                    .as_u64()
                    .filter(|&n| n > 0 && n <= 1 << 15)
                    .map(|n| Some(n as usize))
                    .ok_or_else(|| Error::Config(format!("preprocessor `{name}.{key}` must be a positive integer, not {v}"))),
            }
        };
        match v {
            Value::Number(_) => {
                let n = int(v, "")?.unwrap_or(0);
                Ok(if default_to_square {
                    SizeSpec::square(n)
                } else {
                    SizeSpec { shortest_edge: Some(n), longest_edge: max_size, ..Default::default() }
                })
            }
            Value::Array(a) if a.len() == 2 => Ok(SizeSpec { height: int(&a[0], "0")?, width: int(&a[1], "1")?, ..Default::default() }),
            Value::Object(o) => {
                let get = |k: &str| int(o.get(k).unwrap_or(&Value::Null), k);
                let s = SizeSpec {
                    height: get("height")?,
                    width: get("width")?,
                    shortest_edge: get("shortest_edge")?,
                    longest_edge: get("longest_edge")?,
                    max_height: get("max_height")?,
                    max_width: get("max_width")?,
                };
                if s == SizeSpec::default() {
                    return Err(Error::Config(format!("preprocessor `{name}` has no size: {v}")));
                }
                Ok(s)
            }
            _ => Err(Error::Config(format!("preprocessor `{name}` must be an int, [h, w] or a dict, not {v}"))),
        }
    }

    /// The (height, width) an image of (`h`, `w`) is resized to, as transformers' resize picks it.
    pub fn output_size(&self, h: usize, w: usize) -> Result<(usize, usize)> {
        let out = if let (Some(s), Some(l)) = (self.shortest_edge, self.longest_edge) {
            size_with_aspect_ratio(h, w, s, Some(l))
        } else if let Some(s) = self.shortest_edge {
            shortest_edge_size(h, w, s)
        } else if let (Some(mh), Some(mw)) = (self.max_height, self.max_width) {
            // transformers' get_image_size_for_max_height_width: scale to fit, at least 1.
            let scale = (mh as f64 / h as f64).min(mw as f64 / w as f64);
            (((h as f64 * scale) as usize).max(1), ((w as f64 * scale) as usize).max(1))
        } else if let (Some(hh), Some(ww)) = (self.height, self.width) {
            (hh, ww)
        } else {
            return Err(Error::Config(format!("image size {self:?} has neither height and width nor shortest_edge")));
        };
        if out.0 == 0 || out.1 == 0 {
            return Err(Error::Input(format!("a {w}x{h} image would be resized to nothing ({}x{})", out.1, out.0)));
        }
        Ok(out)
    }
}

/// transformers' `get_resize_output_image_size` without `max_size`: the shorter side becomes
/// `size`, the longer `int(size * long / short)`.
fn shortest_edge_size(h: usize, w: usize, size: usize) -> (usize, usize) {
    let (short, long) = if w <= h { (w, h) } else { (h, w) };
    let new_long = (size as f64 * long as f64 / short as f64) as usize;
    if w <= h { (new_long, size) } else { (size, new_long) }
}

/// transformers' `get_size_with_aspect_ratio` (DETR): the shorter side `size` unless the longer
/// would pass `max_size`, then the longer side `max_size`.
fn size_with_aspect_ratio(h: usize, w: usize, size: usize, max_size: Option<usize>) -> (usize, usize) {
    let mut size = size;
    let mut raw_size = None;
    if let Some(max_size) = max_size {
        let (min_o, max_o) = (h.min(w) as f64, h.max(w) as f64);
        if max_o / min_o * size as f64 > max_size as f64 {
            let raw = max_size as f64 * min_o / max_o;
            raw_size = Some(raw);
            // Python's round() rounds half to even.
            size = raw.round_ties_even() as usize;
        }
    }
    if (h <= w && h == size) || (w <= h && w == size) {
        (h, w)
    } else if w < h {
        let oh = match raw_size {
            Some(r) => (r * h as f64 / w as f64) as usize,
            None => (size as f64 * h as f64 / w as f64) as usize,
        };
        (oh, size)
    } else {
        let ow = match raw_size {
            Some(r) => (r * w as f64 / h as f64) as usize,
            None => (size as f64 * w as f64 / h as f64) as usize,
        };
        (size, ow)
    }
}

/// A model's image preprocessing, read from its preprocessor_config.json.
#[derive(Clone, Debug, PartialEq)]
pub struct ImageProcessor {
    pub kind: ProcessorKind,
    pub do_resize: bool,
    pub size: SizeSpec,
    pub resample: Resample,
    pub do_center_crop: bool,
    /// (height, width).
    pub crop_size: Option<(usize, usize)>,
    /// ConvNeXt: below a 384 shortest edge, resize to `shortest_edge / crop_pct` then crop.
    pub crop_pct: f64,
    pub do_rescale: bool,
    pub rescale_factor: f64,
    pub do_normalize: bool,
    pub image_mean: [f32; 3],
    pub image_std: [f32; 3],
    pub do_convert_rgb: bool,
    pub do_pad: bool,
}

/// What a processor makes of a batch of images.
#[derive(Clone, Debug, PartialEq)]
pub struct ProcessedImages {
    /// [N, 3, H, W].
    pub pixel_values: Vec<f32>,
    pub dims: [usize; 4],
    /// Each input image's (height, width).
    pub original_sizes: Vec<(usize, usize)>,
    /// Each image's (height, width) after resizing and cropping, before padding.
    pub reshaped_sizes: Vec<(usize, usize)>,
    /// [N, H, W]: 1 where a pixel is the image's, 0 where it is padding (DETR).
    pub pixel_mask: Option<Vec<f32>>,
}

const IMAGENET_STANDARD: [f32; 3] = [0.5, 0.5, 0.5];
const IMAGENET_DEFAULT_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
const IMAGENET_DEFAULT_STD: [f32; 3] = [0.229, 0.224, 0.225];
const CLIP_MEAN: [f32; 3] = [0.481_454_66, 0.457_827_5, 0.408_210_73];
const CLIP_STD: [f32; 3] = [0.268_629_54, 0.261_302_58, 0.275_777_11];

impl ImageProcessor {
    /// A processor class's defaults, as transformers' class attributes set them.
    pub fn defaults(kind: ProcessorKind) -> ImageProcessor {
        use ProcessorKind::*;
        let base = ImageProcessor {
            kind,
            do_resize: true,
            size: SizeSpec::square(224),
            resample: Resample::Bicubic,
            do_center_crop: false,
            crop_size: None,
            crop_pct: 224.0 / 256.0,
            do_rescale: true,
            rescale_factor: 1.0 / 255.0,
            do_normalize: true,
            image_mean: IMAGENET_STANDARD,
            image_std: IMAGENET_STANDARD,
            do_convert_rgb: true,
            do_pad: false,
        };
        let shortest = |n| SizeSpec { shortest_edge: Some(n), ..Default::default() };
        match kind {
            Vit => ImageProcessor { resample: Resample::Bilinear, ..base },
            Siglip => base,
            Clip | Bit => ImageProcessor {
                size: shortest(224),
                do_center_crop: true,
                crop_size: Some((224, 224)),
                image_mean: CLIP_MEAN,
                image_std: CLIP_STD,
                ..base
            },
            ConvNext => ImageProcessor { size: shortest(384), ..base },
            Detr => ImageProcessor {
                size: SizeSpec { shortest_edge: Some(800), longest_edge: Some(1333), ..Default::default() },
                resample: Resample::Bilinear,
                image_mean: IMAGENET_DEFAULT_MEAN,
                image_std: IMAGENET_DEFAULT_STD,
                do_pad: true,
                ..base
            },
        }
    }

    /// Reads preprocessor_config.json: the class from `image_processor_type` (or the legacy
    /// `feature_extractor_type`), its defaults overridden by the keys present.
    pub fn from_json(config: &Value) -> Result<ImageProcessor> {
        let o = config.as_object().ok_or_else(|| Error::Config("preprocessor_config.json is not a JSON object".into()))?;
        let class = o
            .get("image_processor_type")
            .or_else(|| o.get("feature_extractor_type"))
            .and_then(Value::as_str)
            .ok_or_else(|| Error::Config("preprocessor_config.json names no image_processor_type".into()))?;
        let kind = ProcessorKind::from_class(class)?;
        let mut p = ImageProcessor::defaults(kind);
        let present = |k: &str| o.get(k).filter(|v| !v.is_null());
        let flag = |k: &str, default: bool| -> Result<bool> {
            match present(k) {
                None => Ok(default),
                Some(v) => v.as_bool().ok_or_else(|| Error::Config(format!("preprocessor `{k}` must be true or false, not {v}"))),
            }
        };
        let number = |k: &str, default: f64| -> Result<f64> {
            match present(k) {
                None => Ok(default),
                Some(v) => v.as_f64().ok_or_else(|| Error::Config(format!("preprocessor `{k}` must be a number, not {v}"))),
            }
        };
        let triple = |k: &str, default: [f32; 3]| -> Result<[f32; 3]> {
            let bad = |v: &Value| Error::Config(format!("preprocessor `{k}` must be a number or 3 numbers, not {v}"));
            match present(k) {
                None => Ok(default),
                Some(v @ Value::Number(_)) => Ok([v.as_f64().ok_or_else(|| bad(v))? as f32; 3]),
                Some(v @ Value::Array(a)) if a.len() == 3 => {
                    let mut out = [0f32; 3];
                    for (o, x) in out.iter_mut().zip(a) {
                        *o = x.as_f64().ok_or_else(|| bad(v))? as f32;
                    }
                    Ok(out)
                }
                Some(v) => Err(bad(v)),
            }
        };
        p.do_resize = flag("do_resize", p.do_resize)?;
        p.do_center_crop = flag("do_center_crop", p.do_center_crop)?;
        p.do_rescale = flag("do_rescale", p.do_rescale)?;
        p.do_normalize = flag("do_normalize", p.do_normalize)?;
        p.do_convert_rgb = flag("do_convert_rgb", p.do_convert_rgb)?;
        // DETR's legacy name for do_pad.
        p.do_pad = flag("do_pad", flag("pad_and_return_pixel_mask", p.do_pad)?)?;
        p.rescale_factor = number("rescale_factor", p.rescale_factor)?;
        p.crop_pct = number("crop_pct", p.crop_pct)?;
        if !(p.crop_pct > 0.0 && p.crop_pct <= 1.0) {
            return Err(Error::Config(format!("preprocessor `crop_pct` must be in (0, 1], not {}", p.crop_pct)));
        }
        p.image_mean = triple("image_mean", p.image_mean)?;
        p.image_std = triple("image_std", p.image_std)?;
        if p.image_std.contains(&0.0) {
            return Err(Error::Config("preprocessor `image_std` has a zero".into()));
        }
        if let Some(v) = present("resample") {
            let n = v.as_u64().ok_or_else(|| Error::Config(format!("preprocessor `resample` must be 0 to 5, not {v}")))?;
            p.resample = Resample::from_pil(n).map_err(|e| Error::Config(e.to_string()))?;
        }
        if let Some(v) = present("size") {
            let max_size = match (kind, present("max_size")) {
                (ProcessorKind::Detr, None) => Some(1333),
                (_, Some(m)) => Some(
                    m.as_u64()
                        .filter(|&m| m > 0)
                        .ok_or_else(|| Error::Config(format!("preprocessor `max_size` must be a positive integer, not {m}")))?
                        as usize,
                ),
                _ => None,
            };
            p.size = SizeSpec::parse(v, kind.default_to_square(), max_size, "size")?;
        }
        if let Some(v) = present("crop_size") {
            let c = SizeSpec::parse(v, true, None, "crop_size")?;
            match (c.height, c.width) {
                (Some(h), Some(w)) => p.crop_size = Some((h, w)),
                _ => return Err(Error::Config(format!("preprocessor `crop_size` needs height and width: {v}"))),
            }
        }
        if p.do_center_crop && p.crop_size.is_none() {
            return Err(Error::Config("preprocessor has do_center_crop but no crop_size".into()));
        }
        if kind == ProcessorKind::ConvNext && p.do_resize && p.size.shortest_edge.is_none() {
            return Err(Error::Config("ConvNextImageProcessor's `size` needs shortest_edge".into()));
        }
        Ok(p)
    }

    /// Resizes (and crops) one RGB image as the processor class does, in 8 bits.
    pub fn resize_and_crop(&self, image: &RawImage) -> Result<RawImage> {
        let mut img = image.clone();
        if self.do_resize {
            img = if self.kind == ProcessorKind::ConvNext {
                let edge = self.size.shortest_edge.unwrap_or(384);
                if edge < 384 {
                    let resize_edge = (edge as f64 / self.crop_pct) as usize;
                    let (h, w) = shortest_edge_size(img.height, img.width, resize_edge);
                    img.resize(w, h, self.resample)?.center_crop(edge, edge)?
                } else {
                    img.resize(edge, edge, self.resample)?
                }
            } else {
                let (h, w) = self.size.output_size(img.height, img.width)?;
                img.resize(w, h, self.resample)?
            };
        }
        if self.do_center_crop {
            if let Some((h, w)) = self.crop_size {
                img = img.center_crop(w, h)?;
            }
        }
        Ok(img)
    }

    /// `pixel_values` for a batch: each image converted to RGB, resized, cropped, rescaled and
    /// normalized; DETR pads every image to the batch's largest (bottom and right, zeros after
    /// normalization) and returns the pixel mask. Images of different sizes without padding are
    /// an error.
    pub fn process(&self, images: &[RawImage]) -> Result<ProcessedImages> {
        if images.is_empty() {
            return Err(Error::Input("no images to process".into()));
        }
        let mut resized = Vec::with_capacity(images.len());
        for image in images {
            // Processors that do not convert still need 3 channels to normalize; transformers'
            // pipelines convert every image to RGB when loading it.
            resized.push(self.resize_and_crop(&image.rgb())?);
        }
        let reshaped_sizes: Vec<(usize, usize)> = resized.iter().map(|i| (i.height, i.width)).collect();
        let (h, w) = if self.do_pad {
            (reshaped_sizes.iter().map(|s| s.0).max().unwrap_or(0), reshaped_sizes.iter().map(|s| s.1).max().unwrap_or(0))
        } else {
            let first = reshaped_sizes[0];
            if let Some(other) = reshaped_sizes.iter().find(|&&s| s != first) {
                return Err(Error::Input(format!(
                    "the images are {}x{} and {}x{} after resizing; a batch needs one size (this processor does not pad)",
                    first.1, first.0, other.1, other.0
                )));
            }
            first
        };
        let n = images.len();
        let mut pixel_values = vec![0f32; n * 3 * h * w];
        let mut mask = if self.do_pad { Some(vec![0f32; n * h * w]) } else { None };
        // Per channel value table: every u8 maps to one f32, computed in transformers' order.
        let table: Vec<[f32; 256]> = (0..3)
            .map(|c| {
                let mut t = [0f32; 256];
                for (v, t) in t.iter_mut().enumerate() {
                    let mut x = if self.do_rescale { (v as f64 * self.rescale_factor) as f32 } else { v as f32 };
                    if self.do_normalize {
                        x = (x - self.image_mean[c]) / self.image_std[c];
                    }
                    *t = x;
                }
                t
            })
            .collect();
        for (i, img) in resized.iter().enumerate() {
            let plane = h * w;
            for c in 0..3 {
                let out = &mut pixel_values[(i * 3 + c) * plane..(i * 3 + c + 1) * plane];
                for y in 0..img.height {
                    for x in 0..img.width {
                        out[y * w + x] = table[c][img.data[(y * img.width + x) * 3 + c] as usize];
                    }
                }
            }
            if let Some(mask) = mask.as_mut() {
                for y in 0..img.height {
                    mask[i * plane + y * w..i * plane + y * w + img.width].fill(1.0);
                }
            }
        }
        Ok(ProcessedImages {
            pixel_values,
            dims: [n, 3, h, w],
            original_sizes: images.iter().map(|i| (i.height, i.width)).collect(),
            reshaped_sizes,
            pixel_mask: mask,
        })
    }
}
