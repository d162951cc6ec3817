//! CLIP, as in transformers' modeling_clip.py: a vision tower (patches plus a class token,
//! pre-layernorm, pre-norm transformer layers, the class token post-layernormed and projected)
//! and a text tower (causal transformer, the EOS token's state projected), compared by cosine
//! similarity times `logit_scale.exp()`. Loads `CLIPModel`, `CLIPVisionModel(WithProjection)`
//! and `CLIPTextModel(WithProjection)` checkpoints: whichever towers the file has.
//!
//! The transformer layers (`Encoder`) and the patch embedding are shared with SigLIP, whose
//! layers have the same structure and weight names.

use serde::Deserialize;

use super::{ImageTextModel, ModelConfig, TextPadding, VisionHead, VisionModel, VisionOutput};
use crate::nn::{self, LayerNorm, Linear};
use crate::ops::{Activation, PoolMode};
use crate::tokenizer::Batch;
use crate::weights::Weights;
use crate::{Device, Error, Result, Tensor};

/// What CLIP's and SigLIP's text and vision configs share.
#[derive(Clone, Debug, Deserialize)]
pub struct TowerConfig {
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    #[serde(default = "default_act")]
    pub hidden_act: String,
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    // Vision.
    #[serde(default)]
    pub image_size: usize,
    #[serde(default)]
    pub patch_size: usize,
    #[serde(default = "default_channels")]
    pub num_channels: usize,
    // Text.
    #[serde(default)]
    pub vocab_size: usize,
    #[serde(default)]
    pub max_position_embeddings: usize,
    #[serde(default)]
    pub eos_token_id: Option<u32>,
    /// SigLIP's text head size (defaults to hidden_size).
    #[serde(default)]
    pub projection_size: Option<usize>,
    /// SigLIP's vision attention-pooling head.
    #[serde(default = "default_true")]
    pub vision_use_head: bool,
    /// A single tower's config (`CLIPVisionModelWithProjection`) carries the projection size.
    #[serde(default)]
    pub projection_dim: Option<usize>,
}

fn default_act() -> String {
    "quick_gelu".into()
}
fn default_eps() -> f64 {
    1e-5
}
fn default_channels() -> usize {
    3
}
fn default_true() -> bool {
    true
}

/// A dual encoder's config.json: `text_config` and `vision_config` (CLIPModel, SiglipModel), or
/// one tower's fields at the top (`clip_vision_model`, `siglip_text_model`, ...).
pub(super) struct DualConfig {
    pub text: Option<TowerConfig>,
    pub vision: Option<TowerConfig>,
    /// CLIP's projection size.
    pub projection_dim: Option<usize>,
}

impl DualConfig {
    pub(super) fn parse(config: &ModelConfig, family: &str) -> Result<DualConfig> {
        let json = &config.json;
        let tower = |v: &serde_json::Value, what: &str| -> Result<TowerConfig> {
            serde_json::from_value(v.clone()).map_err(|e| Error::Config(format!("{}/config.json {what}: {e}", config.name)))
        };
        let t = config.model_type.as_str();
        Ok(if t == family {
            DualConfig {
                text: Some(tower(&json["text_config"], "text_config")?),
                vision: Some(tower(&json["vision_config"], "vision_config")?),
                projection_dim: json["projection_dim"].as_u64().map(|p| p as usize),
            }
        } else if t.ends_with("_vision_model") {
            let v = tower(json, "")?;
            DualConfig { projection_dim: v.projection_dim, vision: Some(v), text: None }
        } else {
            let text = tower(json, "")?;
            DualConfig { projection_dim: text.projection_dim, text: Some(text), vision: None }
        })
    }
}

/// CLIP's activation names, with quick-GELU, which the op set lacks: x * sigmoid(1.702 x).
#[derive(Clone, Copy)]
pub(super) enum Act {
    Op(Activation),
    QuickGelu,
}

impl Act {
    fn parse(name: &str) -> Result<Act> {
        if name == "quick_gelu" { Ok(Act::QuickGelu) } else { Ok(Act::Op(nn::activation(name)?)) }
    }
}

/// One pre-norm transformer layer (CLIPEncoderLayer, SiglipEncoderLayer):
/// x + attn(layer_norm1(x)), then x + mlp(layer_norm2(x)).
struct Layer {
    qkv: Linear, // [3H, H]: self_attn.q_proj, k_proj, v_proj stacked
    out: Linear, // [H, H] self_attn.out_proj
    norm1: LayerNorm,
    fc1: Linear, // [I, H] mlp.fc1
    fc2: Linear, // [H, I] mlp.fc2
    norm2: LayerNorm,
}

/// `encoder.layers.{i}` of a CLIP or SigLIP tower, over packed sequences.
pub(super) struct Encoder {
    layers: Vec<Layer>,
    heads: usize,
    hidden: usize,
    act: Act,
    /// [1]: constants of quick-GELU (0.851 = 1.702 / 2, 1, 0.5) when the tower uses it.
    quick_gelu: Option<[Tensor; 3]>,
}

impl Encoder {
    pub(super) fn load(vb: &Weights, c: &TowerConfig) -> Result<Encoder> {
        let (h, heads, i) = (c.hidden_size, c.num_attention_heads, c.intermediate_size);
        if heads == 0 || h % heads != 0 {
            return Err(Error::Config(format!("hidden_size {h} is not a multiple of num_attention_heads {heads}")));
        }
        let eps = c.layer_norm_eps as f32;
        let mut layers = Vec::with_capacity(c.num_hidden_layers);
        for n in 0..c.num_hidden_layers {
            let l = vb.pp(format!("encoder.layers.{n}"));
            let a = l.pp("self_attn");
            layers.push(Layer {
                qkv: Linear::load_fused(&[a.pp("q_proj"), a.pp("k_proj"), a.pp("v_proj")], h, &[h, h, h], true)?,
                out: Linear::load(&a.pp("out_proj"), h, h, true)?,
                norm1: LayerNorm::load(&l.pp("layer_norm1"), h, eps)?,
                fc1: Linear::load(&l.pp("mlp.fc1"), h, i, true)?,
                fc2: Linear::load(&l.pp("mlp.fc2"), i, h, true)?,
                norm2: LayerNorm::load(&l.pp("layer_norm2"), h, eps)?,
            });
        }
        let act = Act::parse(&c.hidden_act)?;
        let d = vb.device();
        let quick_gelu = match act {
            Act::QuickGelu => Some([scalar(0.851, d)?, scalar(1.0, d)?, scalar(0.5, d)?]),
            Act::Op(_) => None,
        };
        Ok(Encoder { layers, heads, hidden: h, act, quick_gelu })
    }

    /// `x` [T, H] packed by `offsets` (each sequence attends within itself; `causal` for CLIP's
    /// text tower) → [T, H].
    pub(super) fn forward(&self, mut x: Tensor, offsets: &Tensor, causal: bool) -> Result<Tensor> {
        let (h, heads) = (self.hidden, self.heads);
        let (t, d) = (x.dims()[0], h / heads);
        let scale = 1.0 / (d as f32).sqrt();
        for layer in &self.layers {
            let qkv = layer.qkv.forward(&layer.norm1.forward(&x)?)?; // [T, 3H]
            let q = qkv.narrow(1, 0, h)?.reshape(&[t, heads, d])?;
            let k = qkv.narrow(1, h, h)?.reshape(&[t, heads, d])?;
            let v = qkv.narrow(1, 2 * h, h)?.reshape(&[t, heads, d])?;
            let context = q.attention(&k, &v, offsets, scale, causal)?.reshape(&[t, h])?;
            x = layer.out.forward_add(&context, &x)?;
            let hidden = self.mlp_in(&layer.fc1, &layer.norm2.forward(&x)?)?; // [T, I]
            x = layer.fc2.forward_add(&hidden, &x)?;
        }
        Ok(x)
    }

    /// act(fc1(x)).
    fn mlp_in(&self, fc1: &Linear, x: &Tensor) -> Result<Tensor> {
        match (self.act, &self.quick_gelu) {
            (Act::Op(act), _) => fc1.forward_act(x, act),
            (Act::QuickGelu, Some([half_k, one, half])) => {
                // x * sigmoid(1.702 x) = x * (1 + tanh(0.851 x)) / 2.
                let y = fc1.forward(x)?;
                let s = y.mul(half_k)?.unary(crate::ops::UnaryOp::Tanh)?.add(one)?.mul(half)?;
                y.mul(&s)
            }
            (Act::QuickGelu, None) => unreachable!("constants made at load"),
        }
    }
}

fn scalar(x: f32, device: &Device) -> Result<Tensor> {
    Tensor::from_f32(&[x], &[1], device)
}

/// Equal-length sequence offsets: [0, len, 2 len, .., n len].
pub(super) fn even_offsets(n: usize, len: usize, device: &Device) -> Result<Tensor> {
    let offsets: Vec<u32> = (0..=n).map(|i| (i * len) as u32).collect();
    Tensor::from_u32(&offsets, &[n + 1], device)
}

/// A convolution with stride = kernel = `patch` (`embeddings.patch_embedding`) as one matmul over
/// the image cut into patches: [N, C, H, W] → [N * patches, hidden], patches in row-major order
/// (as the convolution's output flattened).
pub(super) struct PatchEmbedding {
    weight: Tensor, // [hidden, C * p * p] (the conv's [hidden, C, p, p])
    bias: Option<Tensor>,
    patch: usize,
    channels: usize,
    image_size: usize,
}

impl PatchEmbedding {
    pub(super) fn load(vb: &Weights, c: &TowerConfig, bias: bool) -> Result<PatchEmbedding> {
        let (h, p, ch) = (c.hidden_size, c.patch_size, c.num_channels);
        if p == 0 || c.image_size == 0 || c.image_size % p != 0 {
            return Err(Error::Config(format!("image_size {} is not a multiple of patch_size {p}", c.image_size)));
        }
        let weight = vb.get("weight", &[h, ch, p, p])?.reshape(&[h, ch * p * p])?;
        let bias = if bias { Some(vb.get_f32("bias", &[h])?) } else { None };
        Ok(PatchEmbedding { weight, bias, patch: p, channels: ch, image_size: c.image_size })
    }

    pub(super) fn patches(&self) -> usize {
        (self.image_size / self.patch).pow(2)
    }

    /// `pixel_values` [N, C, S, S] (S = image_size: the position embeddings are not
    /// interpolated) → [N * patches, hidden].
    pub(super) fn forward(&self, pixel_values: &Tensor) -> Result<Tensor> {
        let (p, s, c) = (self.patch, self.image_size, self.channels);
        let dims = pixel_values.dims();
        if dims.len() != 4 || dims[1] != c || dims[2] != s || dims[3] != s {
            return Err(Error::Input(format!("this model takes pixel_values [N, {c}, {s}, {s}], not {dims:?}")));
        }
        let (n, g) = (dims[0], s / p);
        let patches = pixel_values
            .reshape(&[n, c, g, p, g, p])?
            .permute(&[0, 2, 4, 1, 3, 5])? // [N, gy, gx, C, py, px]
            .contiguous()?
            .reshape(&[n * g * g, c * p * p])?;
        patches.linear(&self.weight, self.bias.as_ref(), Activation::None)
    }
}

/// A tensor as `[rows, cols]` f32 on `device`.
fn host_matrix(values: &[f32], rows: usize, cols: usize, device: &Device) -> Result<Tensor> {
    Tensor::from_f32(values, &[rows, cols], device)
}

/// CLIPVisionTransformer, with `visual_projection` when the checkpoint has it.
pub struct ClipVision {
    patch_embedding: PatchEmbedding,
    /// [1 + P, H]: position embeddings with the class embedding added to row 0.
    token_bias: Tensor,
    /// [1 + P, P]: puts patch i at row i + 1 and leaves row 0 (the class token) zero.
    shift: Tensor,
    pre_layrnorm: LayerNorm,
    encoder: Encoder,
    post_layernorm: LayerNorm,
    projection: Option<Linear>, // [D, H], no bias
    hidden: usize,
    device: Device,
}

impl ClipVision {
    /// `vb`: the root (CLIPModel's `vision_model.*` and `visual_projection`).
    pub fn load(vb: &Weights, c: &TowerConfig, projection_dim: Option<usize>) -> Result<ClipVision> {
        let h = c.hidden_size;
        let eps = c.layer_norm_eps as f32;
        let v = vb.pp("vision_model");
        let e = v.pp("embeddings");
        let patch_embedding = PatchEmbedding::load(&e.pp("patch_embedding"), c, false)?;
        let p = patch_embedding.patches();
        let device = vb.device().clone();
        // Concatenating the class token in front of the patches is a matmul with a shifted
        // identity (no concat op), and adding it one with a one-hot column.
        let mut shift = vec![0f32; (p + 1) * p];
        (0..p).for_each(|i| shift[(i + 1) * p + i] = 1.0);
        let mut first = vec![0f32; p + 1];
        first[0] = 1.0;
        let class = e.get_f32("class_embedding", &[h])?.reshape(&[1, h])?;
        let position = e.get_f32("position_embedding.weight", &[p + 1, h])?;
        let token_bias = host_matrix(&first, p + 1, 1, &device)?.matmul(&class)?.add(&position)?;
        let projection = match projection_dim {
            Some(d) if vb.contains("visual_projection.weight") => Some(Linear::load(&vb.pp("visual_projection"), h, d, false)?),
            _ => None,
        };
        Ok(ClipVision {
            patch_embedding,
            token_bias,
            shift: host_matrix(&shift, p + 1, p, &device)?,
            pre_layrnorm: LayerNorm::load(&v.pp("pre_layrnorm"), h, eps)?,
            encoder: Encoder::load(&v, c)?,
            post_layernorm: LayerNorm::load(&v.pp("post_layernorm"), h, eps)?,
            projection,
            hidden: h,
            device,
        })
    }

    /// (last_hidden_state [N, 1 + P, H], the pooled class token [N, H] (post-layernormed, then
    /// projected when the checkpoint has the projection)).
    pub fn forward(&self, pixel_values: &Tensor) -> Result<(Tensor, Tensor)> {
        let n = pixel_values.dims().first().copied().unwrap_or(0);
        if n == 0 {
            return Err(Error::Input("no images".into()));
        }
        let (h, p) = (self.hidden, self.patch_embedding.patches());
        let patches = self.patch_embedding.forward(pixel_values)?.reshape(&[n, p, h])?;
        let x = self.shift.matmul(&patches)?.add(&self.token_bias)?.reshape(&[n * (p + 1), h])?;
        let x = self.pre_layrnorm.forward(&x)?;
        let offsets = even_offsets(n, p + 1, &self.device)?;
        let x = self.encoder.forward(x, &offsets, false)?;
        let pooled = self.post_layernorm.forward(&x.segment_pool(&offsets, PoolMode::Cls)?)?;
        let pooled = match &self.projection {
            Some(proj) => proj.forward(&pooled)?,
            None => pooled,
        };
        Ok((x.reshape(&[n, p + 1, h])?, pooled))
    }
}

/// CLIPTextTransformer and `text_projection`.
pub struct ClipText {
    token_embedding: Tensor,    // [V, H]
    position_embedding: Tensor, // [max_positions, H]
    encoder: Encoder,
    final_layer_norm: LayerNorm,
    projection: Option<Linear>, // [D, H], no bias
    eos_token_id: Option<u32>,
    vocab_size: usize,
    max_positions: usize,
    device: Device,
}

impl ClipText {
    pub fn load(vb: &Weights, c: &TowerConfig, projection_dim: Option<usize>) -> Result<ClipText> {
        let h = c.hidden_size;
        let t = vb.pp("text_model");
        let e = t.pp("embeddings");
        let projection = match projection_dim {
            Some(d) if vb.contains("text_projection.weight") => Some(Linear::load(&vb.pp("text_projection"), h, d, false)?),
            _ => None,
        };
        Ok(ClipText {
            token_embedding: e.get("token_embedding.weight", &[c.vocab_size, h])?,
            position_embedding: e.get("position_embedding.weight", &[c.max_position_embeddings, h])?,
            encoder: Encoder::load(&t, c)?,
            final_layer_norm: LayerNorm::load(&t.pp("final_layer_norm"), h, c.layer_norm_eps as f32)?,
            projection,
            eos_token_id: c.eos_token_id,
            vocab_size: c.vocab_size,
            max_positions: c.max_position_embeddings,
            device: vb.device().clone(),
        })
    }

    /// The pooled (EOS) state of each sequence, projected when the checkpoint has the
    /// projection: [B, D].
    pub fn forward(&self, batch: &Batch) -> Result<Tensor> {
        let (ids, positions, offsets) = text_inputs(batch, self.vocab_size, self.max_positions)?;
        let d = &self.device;
        // transformers' rule: configs from before the fix of eos_token_id (which say 2) pool at
        // the largest id (the EOS token ends CLIP's vocabulary); others at the first EOS.
        let mut pooled = Vec::with_capacity(batch.len());
        for (seq, &start) in batch.ids.iter().zip(&offsets) {
            let at = match self.eos_token_id {
                Some(eos) if eos != 2 => seq.iter().position(|&i| i == eos).unwrap_or(0),
                // The first largest id, as torch's argmax takes it.
                _ => seq.iter().enumerate().fold(0, |best, (i, &id)| if id > seq[best] { i } else { best }),
            };
            pooled.push(start + at as u32);
        }
        let x = self.token_embedding.gather_rows(&Tensor::from_u32(&ids, &[ids.len()], d)?)?;
        let x = x.add(&self.position_embedding.gather_rows(&Tensor::from_u32(&positions, &[positions.len()], d)?)?)?;
        let offsets = Tensor::from_u32(&offsets, &[offsets.len()], d)?;
        let x = self.encoder.forward(x, &offsets, true)?;
        // The final norm is per token: only the pooled ones need it.
        let x = self.final_layer_norm.forward(&x.gather_rows(&Tensor::from_u32(&pooled, &[pooled.len()], d)?)?)?;
        match &self.projection {
            Some(proj) => proj.forward(&x),
            None => Ok(x),
        }
    }
}

/// Packed token ids, their positions (0.. in each sequence) and the sequence offsets, checked
/// against the vocabulary and the position table.
pub(super) fn text_inputs(batch: &Batch, vocab_size: usize, max_positions: usize) -> Result<(Vec<u32>, Vec<u32>, Vec<u32>)> {
    if batch.is_empty() || batch.ids.iter().any(Vec::is_empty) {
        return Err(Error::Input("nothing to encode: a text has no tokens".into()));
    }
    let mut ids = Vec::with_capacity(batch.total_tokens());
    let mut positions = Vec::with_capacity(ids.capacity());
    for seq in &batch.ids {
        if seq.len() > max_positions {
            return Err(Error::Input(format!("a text of {} tokens is longer than the model's {max_positions} positions", seq.len())));
        }
        ids.extend_from_slice(seq);
        positions.extend(0..seq.len() as u32);
    }
    if let Some(bad) = ids.iter().find(|&&i| i as usize >= vocab_size) {
        return Err(Error::Input(format!("token id {bad} is outside the vocabulary of {vocab_size}")));
    }
    Ok((ids, positions, batch.offsets()))
}

/// A logit_scale or logit_bias: a scalar (CLIP stores [], SigLIP [1]) as [1].
pub(super) fn scalar_weight(vb: &Weights, name: &str) -> Result<Option<Tensor>> {
    if !vb.contains(name) {
        return Ok(None);
    }
    let t = vb.get_f32(name, &[]).or_else(|_| vb.get_f32(name, &[1]))?;
    Ok(Some(t.reshape(&[1])?))
}

/// CLIP's towers, whichever the checkpoint has.
pub struct Clip {
    name: String,
    vision: Option<ClipVision>,
    text: Option<ClipText>,
    logit_scale: Option<Tensor>,
}

impl Clip {
    pub fn load(config: &ModelConfig, vb: &Weights) -> Result<Clip> {
        let c = DualConfig::parse(config, "clip")?;
        let vision = match &c.vision {
            Some(v) if vb.contains("vision_model.embeddings.class_embedding") => Some(ClipVision::load(vb, v, c.projection_dim)?),
            _ => None,
        };
        let text = match &c.text {
            Some(t) if vb.contains("text_model.embeddings.token_embedding.weight") => Some(ClipText::load(vb, t, c.projection_dim)?),
            _ => None,
        };
        if vision.is_none() && text.is_none() {
            return Err(Error::weight("vision_model / text_model", format!("{} has neither CLIP tower", config.name)));
        }
        Ok(Clip { name: config.name.clone(), vision, text, logit_scale: scalar_weight(vb, "logit_scale")? })
    }
}

pub(super) fn missing(name: &str, what: &str) -> Error {
    Error::Unsupported(format!("{name} has no {what} (the checkpoint holds the other tower only)"))
}

impl ImageTextModel for Clip {
    fn image_embeds(&self, pixel_values: &Tensor) -> Result<Tensor> {
        Ok(self.vision.as_ref().ok_or_else(|| missing(&self.name, "vision tower"))?.forward(pixel_values)?.1)
    }
    fn text_embeds(&self, batch: &Batch) -> Result<Tensor> {
        self.text.as_ref().ok_or_else(|| missing(&self.name, "text tower"))?.forward(batch)
    }
    fn has_towers(&self) -> (bool, bool) {
        (self.vision.is_some(), self.text.is_some())
    }
    fn logit_scale(&self) -> Option<&Tensor> {
        self.logit_scale.as_ref()
    }
    fn logit_bias(&self) -> Option<&Tensor> {
        None
    }
    fn text_padding(&self) -> TextPadding {
        TextPadding::None
    }
    fn max_text_positions(&self) -> usize {
        self.text.as_ref().map_or(0, |t| t.max_positions)
    }
    fn sigmoid_scores(&self) -> bool {
        false
    }
}

struct ClipVisionModel(ClipVision);

impl VisionModel for ClipVisionModel {
    fn forward(&self, pixel_values: &Tensor, _: Option<&Tensor>) -> Result<VisionOutput> {
        let (last_hidden_state, pooled) = self.0.forward(pixel_values)?;
        Ok(VisionOutput { last_hidden_state: Some(last_hidden_state), pooled: Some(pooled), ..Default::default() })
    }
}

/// The vision tower for image-feature-extraction: hidden states, and the pooled embedding
/// (projected when the checkpoint has `visual_projection`).
pub fn load_vision(config: &ModelConfig, vb: &Weights, head: VisionHead) -> Result<Box<dyn VisionModel>> {
    if head != VisionHead::None {
        return Err(Error::Unsupported(format!("{} is a CLIP model: it has no {head:?} head here", config.name)));
    }
    let c = DualConfig::parse(config, "clip")?;
    let v = c.vision.ok_or_else(|| missing(&config.name, "vision tower"))?;
    Ok(Box::new(ClipVisionModel(ClipVision::load(vb, &v, c.projection_dim)?)))
}
