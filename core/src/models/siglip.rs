//! SigLIP, as in transformers' modeling_siglip.py: CLIP's layers (`clip::Encoder`), but a vision
//! tower without a class token, post-layernormed, pooled by an attention-pooling head (a learned
//! probe attending over the patches, then a residual MLP), and a bidirectional text tower pooled
//! at its last token (padding included: SigLIP's texts are padded to max_length) through `head`.
//! Image-text logits are cosine similarity * logit_scale.exp() + logit_bias, scored by sigmoid.

use super::clip::{DualConfig, Encoder, PatchEmbedding, TowerConfig, even_offsets, missing, scalar_weight, text_inputs};
use super::{ImageTextModel, ModelConfig, TextPadding, VisionHead, VisionModel, VisionOutput};
use crate::nn::{self, LayerNorm, Linear};
use crate::ops::Activation;
use crate::tokenizer::Batch;
use crate::weights::Weights;
use crate::{Device, Error, Result, Tensor};

/// SiglipMultiheadAttentionPoolingHead: torch's MultiheadAttention of the probe over the
/// patches, then probe + mlp(layernorm(probe)).
struct PoolingHead {
    /// probe [1, H] through the query projection: the same query for every image.
    query: Tensor,
    kv: Linear,  // [2H, H]: in_proj_weight's key and value rows
    out: Linear, // [H, H] attention.out_proj
    norm: LayerNorm,
    fc1: Linear, // [I, H]
    fc2: Linear, // [H, I]
    act: Activation,
    heads: usize,
}

impl PoolingHead {
    fn load(vb: &Weights, c: &TowerConfig) -> Result<PoolingHead> {
        let (h, i) = (c.hidden_size, c.intermediate_size);
        let a = vb.pp("attention");
        let in_w = a.get("in_proj_weight", &[3 * h, h])?; // q, k, v rows
        let in_b = a.get_f32("in_proj_bias", &[3 * h])?;
        let probe = vb.get_f32("probe", &[1, 1, h])?.reshape(&[1, h])?;
        let query = probe.linear(&in_w.narrow(0, 0, h)?, Some(&in_b.narrow(0, 0, h)?.contiguous()?), Activation::None)?;
        Ok(PoolingHead {
            query,
            kv: Linear { weight: in_w.narrow(0, h, 2 * h)?, bias: Some(in_b.narrow(0, h, 2 * h)?.contiguous()?) },
            out: Linear::load(&a.pp("out_proj"), h, h, true)?,
            norm: LayerNorm::load(&vb.pp("layernorm"), h, c.layer_norm_eps as f32)?,
            fc1: Linear::load(&vb.pp("mlp.fc1"), h, i, true)?,
            fc2: Linear::load(&vb.pp("mlp.fc2"), i, h, true)?,
            act: nn::activation(&c.hidden_act)?,
            heads: c.num_attention_heads,
        })
    }

    /// `x` [N * P, H] (N images of P patches) → [N, H].
    fn forward(&self, x: &Tensor, n: usize, p: usize) -> Result<Tensor> {
        let h = x.dims()[1];
        let (heads, d) = (self.heads, h / self.heads);
        let device = x.device();
        let kv = self.kv.forward(x)?; // [N P, 2H]
        let k = kv.narrow(1, 0, h)?.reshape(&[n * p, heads, d])?;
        let v = kv.narrow(1, h, h)?.reshape(&[n * p, heads, d])?;
        let q = self.query.broadcast_to(&[n, h])?.contiguous()?.reshape(&[n, heads, d])?;
        let context = q
            .attention_kv(&k, &v, &even_offsets(n, 1, device)?, &even_offsets(n, p, device)?, 1.0 / (d as f32).sqrt(), false)?
            .reshape(&[n, h])?;
        let attended = self.out.forward(&context)?;
        let hidden = self.fc1.forward_act(&self.norm.forward(&attended)?, self.act)?;
        self.fc2.forward_add(&hidden, &attended)
    }
}

/// SiglipVisionTransformer.
pub struct SiglipVision {
    patch_embedding: PatchEmbedding,
    position_embedding: Tensor, // [P, H]
    encoder: Encoder,
    post_layernorm: LayerNorm,
    head: Option<PoolingHead>,
    hidden: usize,
    device: Device,
}

impl SiglipVision {
    pub fn load(vb: &Weights, c: &TowerConfig) -> Result<SiglipVision> {
        let h = c.hidden_size;
        let v = vb.pp("vision_model");
        let e = v.pp("embeddings");
        let patch_embedding = PatchEmbedding::load(&e.pp("patch_embedding"), c, true)?;
        let p = patch_embedding.patches();
        Ok(SiglipVision {
            position_embedding: e.get_f32("position_embedding.weight", &[p, h])?,
            patch_embedding,
            encoder: Encoder::load(&v, c)?,
            post_layernorm: LayerNorm::load(&v.pp("post_layernorm"), h, c.layer_norm_eps as f32)?,
            head: if c.vision_use_head { Some(PoolingHead::load(&v.pp("head"), c)?) } else { None },
            hidden: h,
            device: vb.device().clone(),
        })
    }

    /// (last_hidden_state [N, P, H] (post-layernormed), the pooling head's output [N, H]).
    pub fn forward(&self, pixel_values: &Tensor) -> Result<(Tensor, Option<Tensor>)> {
        let n = pixel_values.dims().first().copied().unwrap_or(0);
        if n == 0 {
            return Err(Error::Input("no images".into()));
        }
        let (h, p) = (self.hidden, self.patch_embedding.patches());
        let x = self.patch_embedding.forward(pixel_values)?.reshape(&[n, p, h])?.add(&self.position_embedding)?.reshape(&[n * p, h])?;
        let x = self.encoder.forward(x, &even_offsets(n, p, &self.device)?, false)?;
        let x = self.post_layernorm.forward(&x)?;
        let pooled = self.head.as_ref().map(|head| head.forward(&x, n, p)).transpose()?;
        Ok((x.reshape(&[n, p, h])?, pooled))
    }
}

/// SiglipTextTransformer: bidirectional, pooled at each sequence's last token, then `head`.
pub struct SiglipText {
    token_embedding: Tensor,    // [V, H]
    position_embedding: Tensor, // [max_positions, H]
    encoder: Encoder,
    final_layer_norm: LayerNorm,
    head: Linear, // [projection_size, H]
    vocab_size: usize,
    max_positions: usize,
    device: Device,
}

impl SiglipText {
    pub fn load(vb: &Weights, c: &TowerConfig) -> Result<SiglipText> {
        let h = c.hidden_size;
        let t = vb.pp("text_model");
        let e = t.pp("embeddings");
        Ok(SiglipText {
            token_embedding: e.get("token_embedding.weight", &[c.vocab_size, h])?,
            position_embedding: e.get("position_embedding.weight", &[c.max_position_embeddings, h])?,
            encoder: Encoder::load(&t, c)?,
            final_layer_norm: LayerNorm::load(&t.pp("final_layer_norm"), h, c.layer_norm_eps as f32)?,
            head: Linear::load(&t.pp("head"), h, c.projection_size.unwrap_or(h), true)?,
            vocab_size: c.vocab_size,
            max_positions: c.max_position_embeddings,
            device: vb.device().clone(),
        })
    }

    /// [B, projection_size]. Every token is attended to: the sequences come padded as the model
    /// was trained (`TextPadding::MaxLength`), without a mask.
    pub fn forward(&self, batch: &Batch) -> Result<Tensor> {
        let (ids, positions, offsets) = text_inputs(batch, self.vocab_size, self.max_positions)?;
        let d = &self.device;
        let last: Vec<u32> = offsets[1..].iter().map(|&end| end - 1).collect();
        let x = self.token_embedding.gather_rows(&Tensor::from_u32(&ids, &[ids.len()], d)?)?;
        let x = x.add(&self.position_embedding.gather_rows(&Tensor::from_u32(&positions, &[positions.len()], d)?)?)?;
        let x = self.encoder.forward(x, &Tensor::from_u32(&offsets, &[offsets.len()], d)?, false)?;
        let x = self.final_layer_norm.forward(&x.gather_rows(&Tensor::from_u32(&last, &[last.len()], d)?)?)?;
        self.head.forward(&x)
    }
}

/// SigLIP's towers, whichever the checkpoint has.
pub struct Siglip {
    name: String,
    vision: Option<SiglipVision>,
    text: Option<SiglipText>,
    logit_scale: Option<Tensor>,
    logit_bias: Option<Tensor>,
    max_positions: usize,
}

impl Siglip {
    pub fn load(config: &ModelConfig, vb: &Weights) -> Result<Siglip> {
        let c = DualConfig::parse(config, "siglip")?;
        let vision = match &c.vision {
            Some(v) if vb.contains("vision_model.embeddings.patch_embedding.weight") => Some(SiglipVision::load(vb, v)?),
            _ => None,
        };
        let text = match &c.text {
            Some(t) if vb.contains("text_model.embeddings.token_embedding.weight") => Some(SiglipText::load(vb, t)?),
            _ => None,
        };
        if vision.is_none() && text.is_none() {
            return Err(Error::weight("vision_model / text_model", format!("{} has neither SigLIP tower", config.name)));
        }
        Ok(Siglip {
            name: config.name.clone(),
            vision,
            text,
            logit_scale: scalar_weight(vb, "logit_scale")?,
            logit_bias: scalar_weight(vb, "logit_bias")?,
            max_positions: c.text.map(|t| t.max_position_embeddings).unwrap_or(0),
        })
    }
}

impl ImageTextModel for Siglip {
    fn image_embeds(&self, pixel_values: &Tensor) -> Result<Tensor> {
        let vision = self.vision.as_ref().ok_or_else(|| missing(&self.name, "vision tower"))?;
        vision.forward(pixel_values)?.1.ok_or_else(|| missing(&self.name, "vision pooling head (vision_use_head is false)"))
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
        self.logit_bias.as_ref()
    }
    fn text_padding(&self) -> TextPadding {
        TextPadding::MaxLength
    }
    fn max_text_positions(&self) -> usize {
        self.max_positions
    }
    fn sigmoid_scores(&self) -> bool {
        true
    }
}

struct SiglipVisionModel(SiglipVision);

impl VisionModel for SiglipVisionModel {
    fn forward(&self, pixel_values: &Tensor, _: Option<&Tensor>) -> Result<VisionOutput> {
        let (last_hidden_state, pooled) = self.0.forward(pixel_values)?;
        Ok(VisionOutput { last_hidden_state: Some(last_hidden_state), pooled, ..Default::default() })
    }
}

/// The vision tower for image-feature-extraction: post-layernormed hidden states, and the
/// attention-pooling head's output (SigLIP's image embedding) as the pooled output.
pub fn load_vision(config: &ModelConfig, vb: &Weights, head: VisionHead) -> Result<Box<dyn VisionModel>> {
    if head != VisionHead::None {
        return Err(Error::Unsupported(format!("{} is a SigLIP model: it has no {head:?} head here", config.name)));
    }
    let c = DualConfig::parse(config, "siglip")?;
    let v = c.vision.ok_or_else(|| missing(&config.name, "vision tower"))?;
    Ok(Box::new(SiglipVisionModel(SiglipVision::load(vb, &v)?)))
}
