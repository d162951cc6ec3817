//! ViT, as in transformers' modeling_vit.py: the image cut into patches (a convolution whose
//! stride is its kernel), a class token in front, learned position embeddings, then pre-norm
//! transformer layers and a final LayerNorm; `ViTModel` may end in a pooler (dense + tanh on the
//! class token), `ViTForImageClassification` in a classifier on the class token. The images of a
//! batch run packed, one sequence each (`seq_offsets`), like the text encoders' sequences.
//!
//! The pieces DINOv2 and ConvNeXt share with it (patch embedding, the check that a checkpoint has
//! the head a task asks for) live here too.

use serde::Deserialize;

use super::{ModelConfig, VisionHead, VisionModel, VisionOutput};
use crate::nn::{self, LayerNorm, Linear};
use crate::ops::Activation;
use crate::weights::Weights;
use crate::{Device, Error, Result, Tensor};

/// `image_size` / `patch_size`: one number, or [height, width].
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(untagged)]
pub enum Size2 {
    Square(usize),
    Pair([usize; 2]),
}

impl Size2 {
    pub fn hw(self) -> [usize; 2] {
        match self {
            Size2::Square(s) => [s, s],
            Size2::Pair(p) => p,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
pub struct VitConfig {
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
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
    pub pooler_output_size: Option<usize>,
    #[serde(default = "default_pooler_act")]
    pub pooler_act: String,
}

fn default_act() -> String {
    "gelu".into()
}
fn default_pooler_act() -> String {
    "tanh".into()
}
fn default_eps() -> f64 {
    1e-12
}
fn default_channels() -> usize {
    3
}
fn yes() -> bool {
    true
}

/// Refuses a checkpoint saved from a class without the head `head` (a `ViTModel` has no
/// classifier), naming both classes. The backbone alone can be read from any checkpoint.
pub(super) fn check_head(config: &ModelConfig, head: VisionHead, family: &str) -> Result<()> {
    let suffix = match head {
        VisionHead::None => return Ok(()),
        VisionHead::ImageClassification => "ForImageClassification",
        VisionHead::ObjectDetection => "ForObjectDetection",
    };
    let wanted = format!("{family}{suffix}");
    match &config.architecture {
        Some(class) if class.ends_with(suffix) => Ok(()),
        Some(class) => Err(Error::Unsupported(format!(
            "{} is a `{class}`, which has no {} head (this task needs a `{wanted}`)",
            config.name,
            suffix.trim_start_matches("For")
        ))),
        None if head == VisionHead::ImageClassification => Ok(()),
        None => Err(Error::Unsupported(format!("{} has no {} head here (this task needs a `{wanted}`)", config.name, suffix))),
    }
}

/// The weights under the first of `prefixes` that holds `probe` (a task model's checkpoint
/// prefixes the backbone: `vit.`, `dinov2.`), else the root.
pub(super) fn backbone_weights(vb: &Weights, prefixes: &[&str], probe: &str) -> Weights {
    prefixes.iter().map(|p| vb.pp(p)).find(|v| v.contains(probe)).unwrap_or_else(|| vb.clone())
}

/// A convolution whose stride equals its kernel (ViT's and ConvNeXt's patch embeddings,
/// ConvNeXt's downsampling): every output pixel reads its own patch, so it is one matmul of the
/// patches, each flattened in the weight's (channel, row, column) order, with the weight
/// [out, in, kh, kw] seen as [out, in * kh * kw].
pub(super) struct PatchConv {
    weight: Tensor, // [out, in * kh * kw]
    bias: Option<Tensor>,
    pub(super) kernel: [usize; 2],
    pub(super) in_channels: usize,
    pub(super) out_channels: usize,
}

impl PatchConv {
    /// `{prefix}.weight` [out, in, kh, kw] and `{prefix}.bias` [out].
    pub(super) fn load(vb: &Weights, in_channels: usize, out_channels: usize, kernel: [usize; 2]) -> Result<PatchConv> {
        let [kh, kw] = kernel;
        let weight = vb.get("weight", &[out_channels, in_channels, kh, kw])?.reshape(&[out_channels, in_channels * kh * kw])?;
        let bias = vb.get_opt_f32("bias", &[out_channels])?;
        Ok(PatchConv { weight, bias, kernel, in_channels, out_channels })
    }

    /// `x` [N, C, H, W] (channels first) to [N, H / kh, W / kw, out]: channels last, rows of
    /// patches in raster order. Pixels past the last whole patch are dropped, as the convolution
    /// does.
    pub(super) fn forward_nchw(&self, x: &Tensor) -> Result<Tensor> {
        let [n, c, h, w] = dims4(x, "pixel_values")?;
        if c != self.in_channels {
            return Err(Error::Input(format!("the images have {c} channels; the model takes {}", self.in_channels)));
        }
        let [kh, kw] = self.kernel;
        let (gh, gw) = (h / kh, w / kw);
        if gh == 0 || gw == 0 {
            return Err(Error::Input(format!("a {h}x{w} image is smaller than one {kh}x{kw} patch")));
        }
        let x = x.narrow(2, 0, gh * kh)?.narrow(3, 0, gw * kw)?;
        // [N, C, gh, kh, gw, kw] -> [N, gh, gw, C, kh, kw]
        let patches = x.contiguous()?.reshape(&[n, c, gh, kh, gw, kw])?.permute(&[0, 2, 4, 1, 3, 5])?.contiguous()?;
        let patches = patches.reshape(&[n * gh * gw, c * kh * kw])?;
        patches.linear(&self.weight, self.bias.as_ref(), Activation::None)?.reshape(&[n, gh, gw, self.out_channels])
    }

    /// `x` [N, H, W, C] (channels last) to [N, H / kh, W / kw, out].
    pub(super) fn forward_nhwc(&self, x: &Tensor) -> Result<Tensor> {
        let [n, h, w, c] = dims4(x, "hidden states")?;
        let [kh, kw] = self.kernel;
        let (gh, gw) = (h / kh, w / kw);
        if gh == 0 || gw == 0 {
            return Err(Error::Input(format!("a {h}x{w} feature map is smaller than one {kh}x{kw} patch")));
        }
        let x = x.narrow(1, 0, gh * kh)?.narrow(2, 0, gw * kw)?;
        // [N, gh, kh, gw, kw, C] -> [N, gh, gw, C, kh, kw]
        let patches = x.contiguous()?.reshape(&[n, gh, kh, gw, kw, c])?.permute(&[0, 1, 3, 5, 2, 4])?.contiguous()?;
        let patches = patches.reshape(&[n * gh * gw, c * kh * kw])?;
        patches.linear(&self.weight, self.bias.as_ref(), Activation::None)?.reshape(&[n, gh, gw, self.out_channels])
    }
}

pub(super) fn dims4(x: &Tensor, what: &str) -> Result<[usize; 4]> {
    match x.dims() {
        &[a, b, c, d] => Ok([a, b, c, d]),
        other => Err(Error::Input(format!("{what} must be [N, C, H, W], got {other:?}"))),
    }
}

/// Sequence offsets of `n` sequences of `len` tokens each, on `device`.
pub(super) fn uniform_offsets(n: usize, len: usize, device: &Device) -> Result<Tensor> {
    let offsets: Vec<u32> = (0..=n).map(|i| (i * len) as u32).collect();
    Tensor::from_u32(&offsets, &[n + 1], device)
}

/// Multi-head self-attention over packed sequences as ViT and DINOv2 have it
/// (`attention.attention.{query,key,value}`, `attention.output.dense`).
pub(super) struct SelfAttention {
    qkv: Linear,               // [3H, H]
    pub(super) output: Linear, // [H, H]
    heads: usize,
}

impl SelfAttention {
    pub(super) fn load(vb: &Weights, h: usize, heads: usize, qkv_bias: bool) -> Result<SelfAttention> {
        if heads == 0 || h % heads != 0 {
            return Err(Error::Config(format!("hidden_size {h} is not a multiple of num_attention_heads {heads}")));
        }
        let sa = vb.pp("attention");
        Ok(SelfAttention {
            qkv: Linear::load_fused(&[sa.pp("query"), sa.pp("key"), sa.pp("value")], h, &[h, h, h], qkv_bias)?,
            output: Linear::load(&vb.pp("output.dense"), h, h, true)?,
            heads,
        })
    }

    /// The attended context before the output projection: `x` [T, H] to [T, H].
    pub(super) fn context(&self, x: &Tensor, offsets: &Tensor) -> Result<Tensor> {
        let [t, h] = [x.dims()[0], x.dims()[1]];
        let d = h / self.heads;
        let qkv = self.qkv.forward(x)?; // [T, 3H]
        let q = qkv.narrow(1, 0, h)?.reshape(&[t, self.heads, d])?;
        let k = qkv.narrow(1, h, h)?.reshape(&[t, self.heads, d])?;
        let v = qkv.narrow(1, 2 * h, h)?.reshape(&[t, self.heads, d])?;
        q.attention(&k, &v, offsets, 1.0 / (d as f32).sqrt(), false)?.reshape(&[t, h])
    }
}

struct Layer {
    layernorm_before: LayerNorm,
    attention: SelfAttention,
    layernorm_after: LayerNorm,
    intermediate: Linear, // [I, H]
    output: Linear,       // [H, I]
}

pub struct Vit {
    config: VitConfig,
    act: Activation,
    patch_embeddings: PatchConv,
    cls_token: Tensor,           // [1, H]
    position_embeddings: Tensor, // [1 + patches, H]
    layers: Vec<Layer>,
    layernorm: LayerNorm,
    /// `ViTModel`'s pooler (dense + `pooler_act` on the class token), when the checkpoint has it.
    pooler: Option<(Linear, Activation)>,
    /// `ViTForImageClassification`'s classifier on the class token.
    classifier: Option<Linear>,
}

impl Vit {
    pub fn load(model: &ModelConfig, vb: &Weights, head: VisionHead) -> Result<Vit> {
        check_head(model, head, "ViT")?;
        if head == VisionHead::ObjectDetection {
            return Err(Error::Unsupported("ViT has no object-detection head".into()));
        }
        let config: VitConfig = super::parse(&model.json)?;
        let (h, eps) = (config.hidden_size, config.layer_norm_eps as f32);
        let root = vb;
        let vb = backbone_weights(vb, &["vit"], "embeddings.cls_token");
        let [ih, iw] = config.image_size.hw();
        let [ph, pw] = config.patch_size.hw();
        if ph == 0 || pw == 0 {
            return Err(Error::Config(format!("patch_size {:?}", config.patch_size)));
        }
        let patches = (ih / ph) * (iw / pw);
        let e = vb.pp("embeddings");
        let patch_embeddings = PatchConv::load(&e.pp("patch_embeddings.projection"), config.num_channels, h, [ph, pw])?;
        let cls_token = e.get_f32("cls_token", &[1, 1, h])?.reshape(&[1, h])?;
        let position_embeddings = e.get_f32("position_embeddings", &[1, 1 + patches, h])?.reshape(&[1 + patches, h])?;
        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        for i in 0..config.num_hidden_layers {
            let l = vb.pp(format!("encoder.layer.{i}"));
            layers.push(Layer {
                layernorm_before: LayerNorm::load(&l.pp("layernorm_before"), h, eps)?,
                attention: SelfAttention::load(&l.pp("attention"), h, config.num_attention_heads, config.qkv_bias)?,
                layernorm_after: LayerNorm::load(&l.pp("layernorm_after"), h, eps)?,
                intermediate: Linear::load(&l.pp("intermediate.dense"), h, config.intermediate_size, true)?,
                output: Linear::load(&l.pp("output.dense"), config.intermediate_size, h, true)?,
            });
        }
        let layernorm = LayerNorm::load(&vb.pp("layernorm"), h, eps)?;
        // A checkpoint saved with add_pooling_layer=False (and every ViTForImageClassification)
        // has no pooler: it is read only when its weights are there.
        let pooler = if head == VisionHead::None && vb.contains("pooler.dense.weight") {
            let size = config.pooler_output_size.unwrap_or(h);
            Some((Linear::load(&vb.pp("pooler.dense"), h, size, true)?, nn::activation(&config.pooler_act)?))
        } else {
            None
        };
        let classifier = match head {
            VisionHead::ImageClassification => Some(Linear::load(&root.pp("classifier"), h, model.id2label.len(), true)?),
            _ => None,
        };
        Ok(Vit {
            act: nn::activation(&config.hidden_act)?,
            config,
            patch_embeddings,
            cls_token,
            position_embeddings,
            layers,
            layernorm,
            pooler,
            classifier,
        })
    }
}

impl VisionModel for Vit {
    fn forward(&self, pixel_values: &Tensor, _pixel_mask: Option<&Tensor>) -> Result<VisionOutput> {
        let [n, _, height, width] = dims4(pixel_values, "pixel_values")?;
        let [ih, iw] = self.config.image_size.hw();
        // Python refuses other sizes unless asked to interpolate the positions; so does this.
        if (height, width) != (ih, iw) {
            return Err(Error::Input(format!("Input image size ({height}*{width}) doesn't match model ({ih}*{iw})")));
        }
        let h = self.config.hidden_size;
        let patches = self.patch_embeddings.forward_nchw(pixel_values)?; // [N, gh, gw, H]
        let p = patches.dims()[1] * patches.dims()[2];
        let tokens = 1 + p;
        let cls = self.cls_token.reshape(&[1, 1, h])?.broadcast_to(&[n, 1, h])?;
        let x = Tensor::concat(&[&cls, &patches.reshape(&[n, p, h])?], 1)?; // [N, 1 + P, H]
        let x = x.add(&self.position_embeddings.reshape(&[1, tokens, h])?)?;
        let mut x = x.reshape(&[n * tokens, h])?;
        let offsets = uniform_offsets(n, tokens, pixel_values.device())?;
        for layer in &self.layers {
            let context = layer.attention.context(&layer.layernorm_before.forward(&x)?, &offsets)?;
            let attended = layer.attention.output.forward_add(&context, &x)?;
            let hidden = layer.intermediate.forward_act(&layer.layernorm_after.forward(&attended)?, self.act)?;
            x = layer.output.forward_add(&hidden, &attended)?;
        }
        let x = self.layernorm.forward(&x)?.reshape(&[n, tokens, h])?;
        let cls = x.narrow(1, 0, 1)?.reshape(&[n, h])?; // [N, H]
        let pooled = match &self.pooler {
            Some((dense, act)) => Some(dense.forward_act(&cls, *act)?),
            None => None,
        };
        let logits = match &self.classifier {
            Some(c) => Some(c.forward(&cls)?),
            None => None,
        };
        Ok(VisionOutput { last_hidden_state: Some(x), pooled, logits, pred_boxes: None })
    }
}
