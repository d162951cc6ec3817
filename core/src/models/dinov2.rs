//! DINOv2, as in transformers' modeling_dinov2.py (and modeling_dinov2_with_registers.py): ViT's
//! structure with LayerScale on both residual branches, position embeddings interpolated
//! bicubically to the image's patch grid (the checkpoints are trained at 518 px and run at 224),
//! and, with registers, learned register tokens between the class token and the patches.
//! `Dinov2ForImageClassification` classifies [class token ; mean of the patch tokens].

use serde::Deserialize;

use super::vit::{PatchConv, SelfAttention, Size2, backbone_weights, check_head, dims4, uniform_offsets};
use super::{ModelConfig, VisionHead, VisionModel, VisionOutput};
use crate::nn::{self, LayerNorm, Linear};
use crate::ops::{Activation, PoolMode};
use crate::weights::Weights;
use crate::{Error, Result, Tensor};

#[derive(Clone, Debug, Deserialize)]
pub struct Dinov2Config {
    pub model_type: String,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    #[serde(default = "default_mlp_ratio")]
    pub mlp_ratio: f64,
    #[serde(default = "default_act")]
    pub hidden_act: String,
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    pub image_size: Size2,
    pub patch_size: Size2,
    #[serde(default = "default_channels")]
    pub num_channels: usize,
    #[serde(default = "yes")]
    pub qkv_bias: bool,
    #[serde(default)]
    pub use_swiglu_ffn: bool,
    /// Only in dinov2_with_registers.
    #[serde(default)]
    pub num_register_tokens: usize,
}

fn default_mlp_ratio() -> f64 {
    4.0
}
fn default_act() -> String {
    "gelu".into()
}
fn default_eps() -> f64 {
    1e-6
}
fn default_channels() -> usize {
    3
}
fn yes() -> bool {
    true
}

struct Layer {
    norm1: LayerNorm,
    attention: SelfAttention,
    layer_scale1: Tensor, // [H]
    norm2: LayerNorm,
    fc1: Linear,          // [H * mlp_ratio, H]
    fc2: Linear,          // [H, H * mlp_ratio]
    layer_scale2: Tensor, // [H]
}

pub struct Dinov2 {
    config: Dinov2Config,
    act: Activation,
    patch_embeddings: PatchConv,
    cls_token: Tensor,               // [1, H]
    register_tokens: Option<Tensor>, // [R, H]
    position_embeddings: Tensor,     // [1 + side * side, H]
    /// The trained patch grid is side x side.
    side: usize,
    layers: Vec<Layer>,
    layernorm: LayerNorm,
    /// [labels, 2H]: over [class token ; mean of the patch tokens].
    classifier: Option<Linear>,
}

impl Dinov2 {
    pub fn load(model: &ModelConfig, vb: &Weights, head: VisionHead) -> Result<Dinov2> {
        let registers = model.model_type == "dinov2_with_registers";
        check_head(model, head, if registers { "Dinov2WithRegisters" } else { "Dinov2" })?;
        if head == VisionHead::ObjectDetection {
            return Err(Error::Unsupported("DINOv2 has no object-detection head".into()));
        }
        let config: Dinov2Config = super::parse(&model.json)?;
        if config.use_swiglu_ffn {
            return Err(Error::Unsupported(format!("{}: DINOv2 with a SwiGLU feed-forward (use_swiglu_ffn)", model.name)));
        }
        let (h, eps) = (config.hidden_size, config.layer_norm_eps as f32);
        let root = vb;
        let vb = backbone_weights(vb, &["dinov2", "dinov2_with_registers"], "embeddings.cls_token");
        let [ih, iw] = config.image_size.hw();
        let [ph, pw] = config.patch_size.hw();
        if ph == 0 || pw == 0 || ih / ph != iw / pw {
            return Err(Error::Config(format!(
                "{}: image_size {:?} / patch_size {:?}: DINOv2's grid is square",
                model.name, config.image_size, config.patch_size
            )));
        }
        let side = ih / ph;
        let e = vb.pp("embeddings");
        let patch_embeddings = PatchConv::load(&e.pp("patch_embeddings.projection"), config.num_channels, h, [ph, pw])?;
        let cls_token = e.get_f32("cls_token", &[1, 1, h])?.reshape(&[1, h])?;
        let register_tokens = if registers && config.num_register_tokens > 0 {
            let r = config.num_register_tokens;
            Some(e.get_f32("register_tokens", &[1, r, h])?.reshape(&[r, h])?)
        } else {
            None
        };
        let position_embeddings = e.get_f32("position_embeddings", &[1, 1 + side * side, h])?.reshape(&[1 + side * side, h])?;
        let inner = (h as f64 * config.mlp_ratio) as usize;
        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        for i in 0..config.num_hidden_layers {
            let l = vb.pp(format!("encoder.layer.{i}"));
            layers.push(Layer {
                norm1: LayerNorm::load(&l.pp("norm1"), h, eps)?,
                attention: SelfAttention::load(&l.pp("attention"), h, config.num_attention_heads, config.qkv_bias)?,
                layer_scale1: l.get_f32("layer_scale1.lambda1", &[h])?,
                norm2: LayerNorm::load(&l.pp("norm2"), h, eps)?,
                fc1: Linear::load(&l.pp("mlp.fc1"), h, inner, true)?,
                fc2: Linear::load(&l.pp("mlp.fc2"), inner, h, true)?,
                layer_scale2: l.get_f32("layer_scale2.lambda1", &[h])?,
            });
        }
        let layernorm = LayerNorm::load(&vb.pp("layernorm"), h, eps)?;
        let classifier = match head {
            VisionHead::ImageClassification => Some(Linear::load(&root.pp("classifier"), 2 * h, model.id2label.len(), true)?),
            _ => None,
        };
        Ok(Dinov2 {
            act: nn::activation(&config.hidden_act)?,
            config,
            patch_embeddings,
            cls_token,
            register_tokens,
            position_embeddings,
            side,
            layers,
            layernorm,
            classifier,
        })
    }

    /// The patches' position embeddings for a gh x gw grid: the trained ones when the grid is
    /// theirs and the image square, else resized by bicubic interpolation as
    /// `interpolate_pos_encoding` does it (in transformers, with antialiasing only in the
    /// registers variant): [gh * gw, H].
    fn patch_positions(&self, gh: usize, gw: usize, height: usize, width: usize) -> Result<Tensor> {
        let (h, side) = (self.config.hidden_size, self.side);
        let trained = self.position_embeddings.narrow(0, 1, side * side)?;
        if gh * gw == side * side && height == width {
            return Ok(trained);
        }
        let grid = trained.reshape(&[1, side, side, h])?.permute(&[0, 3, 1, 2])?.contiguous()?; // [1, H, side, side]
        let antialias = self.register_tokens.is_some() || self.config.model_type == "dinov2_with_registers";
        let resized = grid.interpolate_bicubic([gh, gw], false, antialias)?; // [1, H, gh, gw]
        resized.permute(&[0, 2, 3, 1])?.contiguous()?.reshape(&[gh * gw, h])
    }
}

impl VisionModel for Dinov2 {
    fn forward(&self, pixel_values: &Tensor, _pixel_mask: Option<&Tensor>) -> Result<VisionOutput> {
        let [n, _, height, width] = dims4(pixel_values, "pixel_values")?;
        let h = self.config.hidden_size;
        let patches = self.patch_embeddings.forward_nchw(pixel_values)?; // [N, gh, gw, H]
        let (gh, gw) = (patches.dims()[1], patches.dims()[2]);
        let p = gh * gw;
        let positions = self.patch_positions(gh, gw, height, width)?;
        // The class token and the patches get their positions; registers (after the class
        // token) have none.
        let cls = self.cls_token.add(&self.position_embeddings.narrow(0, 0, 1)?)?.reshape(&[1, 1, h])?.broadcast_to(&[n, 1, h])?;
        let patches = patches.reshape(&[n, p, h])?.add(&positions.reshape(&[1, p, h])?)?;
        let registers = match &self.register_tokens {
            Some(r) => Some(r.reshape(&[1, r.dims()[0], h])?.broadcast_to(&[n, r.dims()[0], h])?),
            None => None,
        };
        let parts: Vec<&Tensor> = [Some(&cls), registers.as_ref(), Some(&patches)].into_iter().flatten().collect();
        let x = Tensor::concat(&parts, 1)?; // [N, 1 + R + P, H]
        let tokens = x.dims()[1];
        let first_patch = tokens - p;
        let mut x = x.reshape(&[n * tokens, h])?;
        let offsets = uniform_offsets(n, tokens, pixel_values.device())?;
        for layer in &self.layers {
            let context = layer.attention.context(&layer.norm1.forward(&x)?, &offsets)?;
            let attended = layer.attention.output.forward(&context)?.mul(&layer.layer_scale1)?.add(&x)?;
            let hidden = layer.fc1.forward_act(&layer.norm2.forward(&attended)?, self.act)?;
            x = layer.fc2.forward(&hidden)?.mul(&layer.layer_scale2)?.add(&attended)?;
        }
        let x = self.layernorm.forward(&x)?; // [N * tokens, H]
        let x3 = x.reshape(&[n, tokens, h])?;
        // pooler_output: the normed class token.
        let cls = x3.narrow(1, 0, 1)?.reshape(&[n, h])?;
        let logits = match &self.classifier {
            Some(c) => {
                let patch_tokens = x3.narrow(1, first_patch, p)?.contiguous()?.reshape(&[n * p, h])?;
                let mean = patch_tokens.segment_pool(&uniform_offsets(n, p, pixel_values.device())?, PoolMode::Mean)?; // [N, H]
                Some(c.forward(&Tensor::concat(&[&cls, &mean], 1)?)?)
            }
            None => None,
        };
        Ok(VisionOutput { last_hidden_state: Some(x3), pooled: Some(cls), logits, pred_boxes: None })
    }
}
