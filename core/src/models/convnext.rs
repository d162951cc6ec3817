//! ConvNeXt, as in transformers' modeling_convnext.py: a 4x4 patchify stem with a channels-first
//! LayerNorm, then stages (each after the first opens with LayerNorm + a 2x2 stride-2
//! convolution) of blocks: depthwise 7x7 convolution, LayerNorm, pointwise expansion, GELU,
//! pointwise projection, LayerScale, residual. `ConvNextModel` returns the last stage [N, C, h, w]
//! and the LayerNorm of its global average; `ConvNextForImageClassification` classifies that.
//!
//! The feature maps are kept channels last ([N, h, w, C]) between the depthwise convolutions: a
//! channels-first LayerNorm is then a LayerNorm over the last dim, and the pointwise
//! convolutions are plain linear layers, as transformers computes them after its permute.

use serde::Deserialize;

use super::vit::{PatchConv, backbone_weights, check_head, dims4, uniform_offsets};
use super::{ModelConfig, VisionHead, VisionModel, VisionOutput};
use crate::nn::{self, LayerNorm, Linear};
use crate::ops::{Activation, Conv2dParams, PoolMode};
use crate::weights::Weights;
use crate::{Error, Result, Tensor};

#[derive(Clone, Debug, Deserialize)]
pub struct ConvNextConfig {
    #[serde(default = "default_channels")]
    pub num_channels: usize,
    #[serde(default = "default_patch")]
    pub patch_size: usize,
    pub hidden_sizes: Vec<usize>,
    pub depths: Vec<usize>,
    #[serde(default = "default_act")]
    pub hidden_act: String,
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
}

fn default_channels() -> usize {
    3
}
fn default_patch() -> usize {
    4
}
fn default_act() -> String {
    "gelu".into()
}
fn default_eps() -> f64 {
    1e-12
}

/// The LayerNorms inside the network use 1e-6 whatever the config says (only the final one
/// reads `layer_norm_eps`).
const INNER_EPS: f32 = 1e-6;

struct Block {
    dwconv_weight: Tensor, // [C, 1, 7, 7]
    dwconv_bias: Tensor,   // [C]
    layernorm: LayerNorm,
    pwconv1: Linear, // [4C, C]
    pwconv2: Linear, // [C, 4C]
    /// [C]; absent when layer_scale_init_value was 0.
    layer_scale: Option<Tensor>,
}

struct Stage {
    /// LayerNorm (channels first) + 2x2 stride-2 convolution; the first stage has none.
    downsampling: Option<(LayerNorm, PatchConv)>,
    blocks: Vec<Block>,
}

pub struct ConvNext {
    act: Activation,
    stem: PatchConv,
    stem_norm: LayerNorm,
    stages: Vec<Stage>,
    layernorm: LayerNorm,
    classifier: Option<Linear>,
}

impl ConvNext {
    pub fn load(model: &ModelConfig, vb: &Weights, head: VisionHead) -> Result<ConvNext> {
        check_head(model, head, "ConvNext")?;
        if head == VisionHead::ObjectDetection {
            return Err(Error::Unsupported("ConvNeXt has no object-detection head".into()));
        }
        let config: ConvNextConfig = super::parse(&model.json)?;
        if config.hidden_sizes.is_empty() || config.hidden_sizes.len() != config.depths.len() {
            return Err(Error::Config(format!(
                "{}: {} hidden_sizes for {} depths",
                model.name,
                config.hidden_sizes.len(),
                config.depths.len()
            )));
        }
        let root = vb;
        let vb = backbone_weights(vb, &["convnext"], "embeddings.patch_embeddings.weight");
        let c0 = config.hidden_sizes[0];
        let p = config.patch_size;
        let e = vb.pp("embeddings");
        let stem = PatchConv::load(&e.pp("patch_embeddings"), config.num_channels, c0, [p, p])?;
        let stem_norm = LayerNorm::load(&e.pp("layernorm"), c0, INNER_EPS)?;
        let mut stages = Vec::with_capacity(config.depths.len());
        let mut prev = c0;
        for (i, (&c, &depth)) in config.hidden_sizes.iter().zip(&config.depths).enumerate() {
            let s = vb.pp(format!("encoder.stages.{i}"));
            let downsampling = if prev != c || i > 0 {
                let d = s.pp("downsampling_layer");
                Some((LayerNorm::load(&d.pp("0"), prev, INNER_EPS)?, PatchConv::load(&d.pp("1"), prev, c, [2, 2])?))
            } else {
                None
            };
            let mut blocks = Vec::with_capacity(depth);
            for j in 0..depth {
                let l = s.pp(format!("layers.{j}"));
                blocks.push(Block {
                    dwconv_weight: l.get("dwconv.weight", &[c, 1, 7, 7])?,
                    dwconv_bias: l.get_f32("dwconv.bias", &[c])?,
                    layernorm: LayerNorm::load(&l.pp("layernorm"), c, INNER_EPS)?,
                    pwconv1: Linear::load(&l.pp("pwconv1"), c, 4 * c, true)?,
                    pwconv2: Linear::load(&l.pp("pwconv2"), 4 * c, c, true)?,
                    layer_scale: l.get_opt_f32("layer_scale_parameter", &[c])?,
                });
            }
            stages.push(Stage { downsampling, blocks });
            prev = c;
        }
        let layernorm = LayerNorm::load(&vb.pp("layernorm"), prev, config.layer_norm_eps as f32)?;
        let classifier = match head {
            VisionHead::ImageClassification => Some(Linear::load(&root.pp("classifier"), prev, model.id2label.len(), true)?),
            _ => None,
        };
        Ok(ConvNext { act: nn::activation(&config.hidden_act)?, stem, stem_norm, stages, layernorm, classifier })
    }
}

impl Block {
    /// `x` [N, h, w, C] to the same.
    fn forward(&self, x: &Tensor, act: Activation) -> Result<Tensor> {
        let c = x.dims()[3];
        let params = Conv2dParams { padding: [3, 3], groups: c, ..Conv2dParams::default() };
        let y = x.permute(&[0, 3, 1, 2])?.conv2d(&self.dwconv_weight, Some(&self.dwconv_bias), params)?; // [N, C, h, w]
        let y = self.layernorm.forward(&y.permute(&[0, 2, 3, 1])?.contiguous()?)?; // [N, h, w, C]
        let y = self.pwconv2.forward(&self.pwconv1.forward_act(&y, act)?)?;
        let y = match &self.layer_scale {
            Some(gamma) => y.mul(gamma)?,
            None => y,
        };
        y.add(x)
    }
}

impl VisionModel for ConvNext {
    fn forward(&self, pixel_values: &Tensor, _pixel_mask: Option<&Tensor>) -> Result<VisionOutput> {
        let n = dims4(pixel_values, "pixel_values")?[0];
        let mut x = self.stem_norm.forward(&self.stem.forward_nchw(pixel_values)?)?; // [N, h, w, C0]
        for stage in &self.stages {
            if let Some((norm, conv)) = &stage.downsampling {
                x = conv.forward_nhwc(&norm.forward(&x)?)?;
            }
            for block in &stage.blocks {
                x = block.forward(&x, self.act)?;
            }
        }
        let [_, h, w, c] = dims4(&x, "hidden states")?;
        let last_hidden_state = x.permute(&[0, 3, 1, 2])?.contiguous()?; // [N, C, h, w]
        // The global average over h and w, then the final LayerNorm.
        let mean = x.reshape(&[n * h * w, c])?.segment_pool(&uniform_offsets(n, h * w, pixel_values.device())?, PoolMode::Mean)?;
        let pooled = self.layernorm.forward(&mean)?; // [N, C]
        let logits = match &self.classifier {
            Some(classifier) => Some(classifier.forward(&pooled)?),
            None => None,
        };
        Ok(VisionOutput { last_hidden_state: Some(last_hidden_state), pooled: Some(pooled), logits, pred_boxes: None })
    }
}
