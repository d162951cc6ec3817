//! DETR (DetrForObjectDetection), as in transformers' modeling_detr.py: a ResNet backbone
//! (`resnet.rs`, either weight layout), a 1x1 input projection, sine position embeddings of the
//! feature map, a post-norm transformer encoder (position embeddings added to queries and keys
//! only) and decoder (learned object queries: self-attention, then cross-attention to the
//! encoder's output, then the feed-forward block, each followed by a LayerNorm; a final
//! LayerNorm), and the heads: class logits (labels + no-object) and a 3-layer box MLP with a
//! sigmoid.
//!
//! Encoder tokens ([N * h * w, d]) and decoder queries ([N * Q, d]) are packed rows of the batch,
//! attention reading per-image offsets, as the text encoders do.

use serde::Deserialize;

use super::resnet::{self, ResNet};
use super::{ModelConfig, VisionHead, VisionModel, VisionOutput};
use crate::nn::{self, Conv2d, LayerNorm, Linear};
use crate::ops::{Activation, Conv2dParams, UnaryOp};
use crate::weights::Weights;
use crate::{Device, Error, Result, Tensor};

#[derive(Clone, Debug, Deserialize)]
pub struct DetrConfig {
    pub d_model: usize,
    pub encoder_layers: usize,
    pub decoder_layers: usize,
    pub encoder_attention_heads: usize,
    pub decoder_attention_heads: usize,
    pub encoder_ffn_dim: usize,
    pub decoder_ffn_dim: usize,
    pub num_queries: usize,
    #[serde(default = "default_act")]
    pub activation_function: String,
    #[serde(default = "default_position_embedding")]
    pub position_embedding_type: String,
    /// DC5 variants: the last stage dilated instead of strided.
    #[serde(default)]
    pub dilation: Option<bool>,
    #[serde(default)]
    pub use_timm_backbone: Option<bool>,
    #[serde(default)]
    pub backbone_config: Option<serde_json::Value>,
}

fn default_act() -> String {
    "relu".into()
}
fn default_position_embedding() -> String {
    "sine".into()
}

/// DETR's LayerNorms are torch's default.
const LN_EPS: f32 = 1e-5;

/// Self- or cross-attention: q, k, v and output projections [d, d].
struct Attention {
    q: Linear,
    k: Linear,
    v: Linear,
    out: Linear,
}

impl Attention {
    fn load(vb: &Weights, d: usize) -> Result<Attention> {
        Ok(Attention {
            q: Linear::load(&vb.pp("q_proj"), d, d, true)?,
            k: Linear::load(&vb.pp("k_proj"), d, d, true)?,
            v: Linear::load(&vb.pp("v_proj"), d, d, true)?,
            out: Linear::load(&vb.pp("out_proj"), d, d, true)?,
        })
    }
}

struct EncoderLayer {
    self_attn: Attention,
    self_attn_norm: LayerNorm,
    fc1: Linear, // [ffn, d]
    fc2: Linear, // [d, ffn]
    final_norm: LayerNorm,
}

struct DecoderLayer {
    self_attn: Attention,
    self_attn_norm: LayerNorm,
    cross_attn: Attention,
    cross_attn_norm: LayerNorm,
    fc1: Linear,
    fc2: Linear,
    final_norm: LayerNorm,
}

pub struct Detr {
    config: DetrConfig,
    act: Activation,
    device: Device,
    backbone: ResNet,
    input_projection: Conv2d,        // 1x1, backbone channels -> d
    query_position_embeddings: Tensor, // [Q, d]
    encoder: Vec<EncoderLayer>,
    decoder: Vec<DecoderLayer>,
    decoder_norm: LayerNorm,
    class_labels_classifier: Linear, // [labels + 1, d]
    bbox_predictor: [Linear; 3],     // [d, d], [d, d], [4, d]
    num_labels: usize,
}

impl Detr {
    pub fn load(model: &ModelConfig, vb: &Weights, head: VisionHead) -> Result<Detr> {
        if head != VisionHead::ObjectDetection {
            return Err(Error::Unsupported(format!("{}: DETR here has only its object-detection head, not {head:?}", model.name)));
        }
        if let Some(class) = &model.architecture
            && class != "DetrForObjectDetection"
        {
            return Err(Error::Unsupported(format!(
                "{} is a `{class}`, which has no object-detection head (this task needs a DetrForObjectDetection)",
                model.name
            )));
        }
        let config: DetrConfig = super::parse(&model.json)?;
        if config.position_embedding_type != "sine" {
            return Err(Error::Unsupported(format!("DETR position_embedding_type `{}` (sine loads)", config.position_embedding_type)));
        }
        if config.dilation == Some(true) {
            return Err(Error::Unsupported("DETR with a dilated backbone (the DC5 variants)".into()));
        }
        let d = config.d_model;
        for heads in [config.encoder_attention_heads, config.decoder_attention_heads] {
            if heads == 0 || d % heads != 0 || d % 2 != 0 {
                return Err(Error::Config(format!("d_model {d} is not an even multiple of {heads} attention heads")));
            }
        }
        let m = vb.pp("model");
        let backbone_vb = m.pp("backbone.conv_encoder.model");
        let layout = ResNet::detect(&backbone_vb).ok_or_else(|| {
            Error::Unsupported(format!(
                "{}: no ResNet backbone under `{}` (timm's `conv1`/`layer1` or transformers' `embedder`/`encoder.stages`)",
                model.name,
                backbone_vb.full_name("")
            ))
        })?;
        let options = resnet_options(&config)?;
        let backbone = ResNet::load(&backbone_vb, layout, options)?;
        let act = nn::activation(&config.activation_function)?;
        let input_projection = Conv2d::load(&m.pp("input_projection"), Conv2dParams::default())?;
        if input_projection.weight.dims() != [d, backbone.out_channels, 1, 1] {
            return Err(Error::weight(
                m.full_name("input_projection.weight"),
                format!("expected shape {:?}, got {:?}", [d, backbone.out_channels, 1, 1], input_projection.weight.dims()),
            ));
        }
        let query_position_embeddings = m.get_f32("query_position_embeddings.weight", &[config.num_queries, d])?;
        let encoder = (0..config.encoder_layers)
            .map(|i| {
                let l = m.pp(format!("encoder.layers.{i}"));
                Ok(EncoderLayer {
                    self_attn: Attention::load(&l.pp("self_attn"), d)?,
                    self_attn_norm: LayerNorm::load(&l.pp("self_attn_layer_norm"), d, LN_EPS)?,
                    fc1: Linear::load(&l.pp("fc1"), d, config.encoder_ffn_dim, true)?,
                    fc2: Linear::load(&l.pp("fc2"), config.encoder_ffn_dim, d, true)?,
                    final_norm: LayerNorm::load(&l.pp("final_layer_norm"), d, LN_EPS)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let decoder = (0..config.decoder_layers)
            .map(|i| {
                let l = m.pp(format!("decoder.layers.{i}"));
                Ok(DecoderLayer {
                    self_attn: Attention::load(&l.pp("self_attn"), d)?,
                    self_attn_norm: LayerNorm::load(&l.pp("self_attn_layer_norm"), d, LN_EPS)?,
                    cross_attn: Attention::load(&l.pp("encoder_attn"), d)?,
                    cross_attn_norm: LayerNorm::load(&l.pp("encoder_attn_layer_norm"), d, LN_EPS)?,
                    fc1: Linear::load(&l.pp("fc1"), d, config.decoder_ffn_dim, true)?,
                    fc2: Linear::load(&l.pp("fc2"), config.decoder_ffn_dim, d, true)?,
                    final_norm: LayerNorm::load(&l.pp("final_layer_norm"), d, LN_EPS)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let num_labels = model.id2label.len();
        let p = vb.pp("bbox_predictor.layers");
        Ok(Detr {
            act,
            device: vb.device().clone(),
            backbone,
            input_projection,
            query_position_embeddings,
            encoder,
            decoder,
            decoder_norm: LayerNorm::load(&m.pp("decoder.layernorm"), d, LN_EPS)?,
            class_labels_classifier: Linear::load(&vb.pp("class_labels_classifier"), d, num_labels + 1, true)?,
            bbox_predictor: [Linear::load(&p.pp(0), d, d, true)?, Linear::load(&p.pp(1), d, d, true)?, Linear::load(&p.pp(2), d, 4, true)?],
            num_labels,
            config,
        })
    }

    /// Multi-head attention of packed rows: `q_in` [Tq, d] (what the queries are projected from),
    /// `k_in` and `v_in` [Tk, d]; `q_offsets` and `kv_offsets` give each image's rows.
    fn attend(&self, a: &Attention, heads: usize, inputs: [&Tensor; 3], offsets: (&Tensor, &Tensor)) -> Result<Tensor> {
        let d = self.config.d_model;
        let hd = d / heads;
        let [q_in, k_in, v_in] = inputs;
        let (tq, tk) = (q_in.dims()[0], k_in.dims()[0]);
        let q = a.q.forward(q_in)?.reshape(&[tq, heads, hd])?;
        let k = a.k.forward(k_in)?.reshape(&[tk, heads, hd])?;
        let v = a.v.forward(v_in)?.reshape(&[tk, heads, hd])?;
        let context = q.attention_kv(&k, &v, offsets.0, offsets.1, 1.0 / (hd as f32).sqrt(), false)?;
        a.out.forward(&context.reshape(&[tq, d])?)
    }

    /// fc2(act(fc1(x))) + x, normalized.
    fn feed_forward(&self, fc1: &Linear, fc2: &Linear, norm: &LayerNorm, x: &Tensor) -> Result<Tensor> {
        let h = fc1.forward_act(x, self.act)?;
        norm.forward_residual(&fc2.forward(&h)?, x)
    }

    /// Offsets [N + 1] of N images of `rows` rows each.
    fn offsets(&self, n: usize, rows: usize) -> Result<Tensor> {
        let offsets: Vec<u32> = (0..=n).map(|i| (i * rows) as u32).collect();
        Tensor::from_u32(&offsets, &[n + 1], &self.device)
    }

    /// `rows` [R, d] repeated for each of N images: [N * R, d].
    fn repeat(&self, rows: &Tensor, n: usize) -> Result<Tensor> {
        let d = rows.dims().to_vec();
        if n == 1 {
            return Ok(rows.clone());
        }
        rows.reshape(&[1, d[0], d[1]])?.broadcast_to(&[n, d[0], d[1]])?.contiguous()?.reshape(&[n * d[0], d[1]])
    }
}

/// Where transformers' ResNet config puts the strides (timm's are fixed; both defaults agree).
fn resnet_options(config: &DetrConfig) -> Result<resnet::Options> {
    let mut options = resnet::Options { downsample_in_first_stage: false, downsample_in_bottleneck: false };
    if config.use_timm_backbone != Some(true)
        && let Some(b) = &config.backbone_config
    {
        let flag = |name: &str| b.get(name).and_then(|v| v.as_bool()).unwrap_or(false);
        options.downsample_in_first_stage = flag("downsample_in_first_stage");
        options.downsample_in_bottleneck = flag("downsample_in_bottleneck");
        if let Some(act) = b.get("hidden_act").and_then(|a| a.as_str())
            && act != "relu"
        {
            return Err(Error::Unsupported(format!("a ResNet backbone with hidden_act `{act}` (relu loads)")));
        }
    }
    Ok(options)
}

/// DetrSinePositionEmbedding (normalize, scale 2π, temperature 10000) of an unpadded h x w
/// feature map: [h * w, d], tokens row by row; channels: d/2 of y, then d/2 of x, each
/// alternating sin and cos. Computed in f32 as PyTorch does, the sines in f64.
pub fn sine_position_embedding(h: usize, w: usize, d: usize) -> Vec<f32> {
    let npf = d / 2;
    let scale = 2.0 * std::f32::consts::PI;
    let eps = 1e-6f32;
    // Cumulative sums over an all-ones mask: 1..=h, normalized by the last one.
    let y: Vec<f32> = (1..=h).map(|i| i as f32 / (h as f32 + eps) * scale).collect();
    let x: Vec<f32> = (1..=w).map(|j| j as f32 / (w as f32 + eps) * scale).collect();
    let dim_t: Vec<f32> = (0..npf).map(|k| 10000f32.powf((2 * (k / 2)) as f32 / npf as f32)).collect();
    let embed = |p: f32, k: usize| {
        let a = (p / dim_t[k]) as f64;
        (if k % 2 == 0 { a.sin() } else { a.cos() }) as f32
    };
    let mut out = Vec::with_capacity(h * w * d);
    for &py in &y {
        for &px in &x {
            out.extend((0..npf).map(|k| embed(py, k)));
            out.extend((0..npf).map(|k| embed(px, k)));
        }
    }
    out
}

impl VisionModel for Detr {
    fn forward(&self, pixel_values: &Tensor, pixel_mask: Option<&Tensor>) -> Result<VisionOutput> {
        if pixel_mask.is_some() {
            // Padding would need masked attention and position embeddings per image; the task
            // runs images of one size together, which needs none.
            return Err(Error::Unsupported("DETR here runs batches of images of one size: no pixel mask (padding)".into()));
        }
        if pixel_values.rank() != 4 || pixel_values.dims()[1] != 3 {
            return Err(Error::Input(format!("DETR takes pixel values [N, 3, H, W], not {:?}", pixel_values.dims())));
        }
        let c = &self.config;
        let (n, d, queries) = (pixel_values.dims()[0], c.d_model, c.num_queries);

        let features = self.backbone.forward(pixel_values)?; // [N, C, h, w]
        let projected = self.input_projection.forward(&features)?; // [N, d, h, w]
        let (h, w) = (projected.dims()[2], projected.dims()[3]);
        let tokens = h * w;
        // flatten(2).transpose(1, 2), packed: [N * h * w, d].
        let mut x = projected.permute(&[0, 2, 3, 1])?.contiguous()?.reshape(&[n * tokens, d])?;
        let pos = Tensor::from_f32(&sine_position_embedding(h, w, d), &[tokens, d], &self.device)?;
        let pos = self.repeat(&pos, n)?;
        let image_offsets = self.offsets(n, tokens)?;

        for layer in &self.encoder {
            let qk = x.add(&pos)?;
            let attended = self.attend(&layer.self_attn, c.encoder_attention_heads, [&qk, &qk, &x], (&image_offsets, &image_offsets))?;
            let x1 = layer.self_attn_norm.forward_residual(&attended, &x)?;
            x = self.feed_forward(&layer.fc1, &layer.fc2, &layer.final_norm, &x1)?;
        }
        let memory = x;
        let memory_keys = memory.add(&pos)?;

        let query_pos = self.repeat(&self.query_position_embeddings, n)?; // [N * Q, d]
        let query_offsets = self.offsets(n, queries)?;
        let mut hidden = Tensor::from_f32(&vec![0.0; n * queries * d], &[n * queries, d], &self.device)?;
        for layer in &self.decoder {
            let qk = hidden.add(&query_pos)?;
            let attended = self.attend(&layer.self_attn, c.decoder_attention_heads, [&qk, &qk, &hidden], (&query_offsets, &query_offsets))?;
            let h1 = layer.self_attn_norm.forward_residual(&attended, &hidden)?;
            let q = h1.add(&query_pos)?;
            let crossed = self.attend(&layer.cross_attn, c.decoder_attention_heads, [&q, &memory_keys, &memory], (&query_offsets, &image_offsets))?;
            let h2 = layer.cross_attn_norm.forward_residual(&crossed, &h1)?;
            hidden = self.feed_forward(&layer.fc1, &layer.fc2, &layer.final_norm, &h2)?;
        }
        let hidden = self.decoder_norm.forward(&hidden)?;

        let logits = self.class_labels_classifier.forward(&hidden)?.reshape(&[n, queries, self.num_labels + 1])?;
        let relu = Activation::Unary(UnaryOp::Relu);
        let [b0, b1, b2] = &self.bbox_predictor;
        let boxes = b2.forward(&b1.forward_act(&b0.forward_act(&hidden, relu)?, relu)?)?.sigmoid()?.reshape(&[n, queries, 4])?;
        Ok(VisionOutput { last_hidden_state: Some(hidden.reshape(&[n, queries, d])?), logits: Some(logits), pred_boxes: Some(boxes), ..Default::default() })
    }
}
