//! Model architectures, one file each, and the registry (`ARCHITECTURES`) that picks one from
//! config.json's `model_type`. Adding a model: its file, and an entry in `ARCHITECTURES`.

use serde::de::DeserializeOwned;

use crate::tokenizer::Batch;
use crate::weights::Weights;
use crate::{Error, Result, Tensor};

pub use heads::{HeadKind, TextHead};

pub mod auto;
pub mod bart;
pub mod beams;
pub mod bert;
pub mod clip;
pub mod convnext;
pub mod deberta_v2;
pub mod detr;
pub mod dinov2;
pub mod distilbert;
pub mod gemma3;
pub mod gguf;
pub mod gpt2;
pub mod heads;
pub mod llama;
pub mod m2m100;
pub mod marian;
pub mod modernbert;
pub mod resnet;
pub mod siglip;
pub mod synthetic;
pub mod t5;
pub mod vit;
pub mod whisper;

/// A text encoder over packed sequences.
pub trait EncoderModel {
    /// Hidden states of every token, packed: [total tokens, hidden].
    fn forward(&self, batch: &Batch) -> Result<Tensor>;
    fn hidden_size(&self) -> usize;
    /// The longest sequence the position embeddings cover.
    fn max_positions(&self) -> usize;
}

/// A causal language model that decodes over a KV cache kept on the device.
pub trait DecoderModel {
    fn vocab_size(&self) -> usize;
    /// The most positions the model was trained for.
    fn max_context(&self) -> usize;
    /// An empty cache for sequences up to `max_len` tokens.
    fn new_cache(&self, max_len: usize) -> Result<KvCache>;
    /// Appends `tokens` at the cache's position and returns logits: [1, V] for the last token,
    /// or [T, V] for every token when `all_logits`. Nothing runs until the logits are read.
    fn forward(&self, tokens: &[u32], cache: &mut KvCache, all_logits: bool) -> Result<Tensor>;
    /// How many of the first `common` cached positions a later call may keep (`KvCache::truncate`)
    /// and continue from, giving what a fresh run over the same tokens gives. All of them, unless
    /// the cached rows depend on more than their prefix (LongRoPE rotates every row with the long
    /// factors once the sequence outgrows the pretraining context).
    fn reusable_prefix(&self, _cache: &KvCache, common: usize) -> usize {
        common
    }
}

/// Keys and values of every layer, on the device: one tensor [max_len, 2 kv heads, head dim] a
/// layer, keys in the first heads and values in the rest, so one write appends both.
pub struct KvCache {
    layers: Vec<Tensor>,
    len: usize,
    max_len: usize,
    tokens: Vec<u32>,
}

impl KvCache {
    /// `shape`: [max_len, kv heads, head dim] of the keys (and of the values).
    pub fn new(layers: usize, shape: &[usize; 3], dtype: crate::DType, device: &crate::Device) -> Result<KvCache> {
        let both = [shape[0], 2 * shape[1], shape[2]];
        let layers = (0..layers).map(|_| Tensor::cache(dtype, &both, device)).collect::<Result<Vec<_>>>()?;
        Ok(KvCache { layers, len: 0, max_len: shape[0], tokens: Vec::new() })
    }

    /// Tokens cached so far.
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    pub(crate) fn check_room(&self, new: usize) -> Result<()> {
        if new == 0 {
            return Err(Error::Input("no tokens to decode".into()));
        }
        if self.len + new > self.max_len {
            return Err(Error::Input(format!("{} tokens do not fit the context of {} ({} already used)", new, self.max_len, self.len)));
        }
        Ok(())
    }

    /// Writes layer `l`'s new keys and values, `kv` [T, 2 Hkv, D] (keys' heads, then values'),
    /// at the current position and returns views of everything cached for that layer, including
    /// them: keys and values [len + T, Hkv, D].
    pub(crate) fn append(&self, l: usize, kv: &Tensor) -> Result<(Tensor, Tensor)> {
        let cache = &self.layers[l];
        let (end, hkv) = (self.len + kv.dims()[0], cache.dims()[1] / 2);
        // write_rows converts f32 rows as it writes them into an f16 cache.
        let all = cache.write_rows(kv, self.len)?.narrow(0, 0, end)?;
        Ok((all.narrow(1, 0, hkv)?, all.narrow(1, hkv, hkv)?))
    }

    /// Layer `l`'s cache tensor [max_len, 2 Hkv, D], for ops that append to it themselves
    /// (`Tensor::attention_append_rope`) at row `len()`.
    pub(crate) fn layer(&self, l: usize) -> &Tensor {
        &self.layers[l]
    }

    /// The token ids cached so far, where the model records them (`record_tokens`).
    pub(crate) fn tokens(&self) -> &[u32] {
        &self.tokens
    }

    /// Kept by models that may have to recompute their cache from the tokens (LongRoPE).
    pub(crate) fn record_tokens(&mut self, tokens: &[u32]) {
        self.tokens.extend_from_slice(tokens);
    }

    /// Called by a model after recording a forward pass of `t` tokens.
    pub(crate) fn advance(&mut self, t: usize) {
        self.len += t;
    }

    /// Keeps the first `len` cached positions and forgets the rest (a later forward overwrites
    /// their rows).
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
        self.tokens.truncate(len);
    }

    /// The device memory the cache holds, in bytes (all `max_len` rows, used or not).
    pub fn bytes(&self) -> usize {
        self.layers.iter().map(|t| t.dtype().bytes_for(t.numel()).unwrap_or(0)).sum()
    }

    /// Forgets the cached tokens (the device buffers are kept for reuse).
    pub fn reset(&mut self) {
        self.len = 0;
        self.tokens.clear();
    }

    /// An empty cache of the same shape, dtype and device (another beam's).
    pub fn empty_like(&self) -> Result<KvCache> {
        let layers = self.layers.iter().map(|t| Tensor::cache(t.dtype(), t.dims(), t.device())).collect::<Result<Vec<_>>>()?;
        Ok(KvCache { layers, len: 0, max_len: self.max_len, tokens: Vec::new() })
    }

    /// Makes this cache a copy of `other` (beam search: a beam continues from another beam's
    /// past; a pipeline moves a kept cache into a longer one), by device copies of the cached
    /// rows, recorded like any op: the next append to this cache runs after them. Whatever was
    /// recorded earlier on this cache must have been realized (read) already, since the copy
    /// overwrites its rows. `other` may be shorter (fewer rows), not otherwise different.
    pub fn copy_from(&mut self, other: &KvCache) -> Result<()> {
        if self.layers.len() != other.layers.len()
            || self.layers.iter().zip(&other.layers).any(|(a, b)| a.dims()[1..] != b.dims()[1..] || a.dtype() != b.dtype())
            || other.len > self.max_len
        {
            return Err(Error::Input("KvCache::copy_from: the two caches differ in shape".into()));
        }
        if other.len > 0 {
            for (mine, theirs) in self.layers.iter_mut().zip(&other.layers) {
                *mine = mine.write_rows(&theirs.narrow(0, 0, other.len)?, 0)?;
            }
        }
        self.len = other.len;
        self.tokens = other.tokens.clone();
        Ok(())
    }
}

/// A decoder's state for one encoded input: its self-attention KV cache, and the cross-attention
/// keys and values of every layer, computed once from the encoder's output and kept on the
/// device (the first decode step realizes them; later steps only read them).
pub struct EncoderDecoderCache {
    pub self_attention: KvCache,
    /// Per decoder layer: keys and values [encoder positions, heads, head dim].
    cross: Vec<(Tensor, Tensor)>,
    encoder_len: usize,
}

impl EncoderDecoderCache {
    /// Decoder tokens cached so far.
    pub fn len(&self) -> usize {
        self.self_attention.len()
    }
    pub fn is_empty(&self) -> bool {
        self.self_attention.is_empty()
    }
    /// The positions of the encoder output the cross-attention reads.
    pub fn encoder_len(&self) -> usize {
        self.encoder_len
    }
    /// Forgets the decoded tokens, keeping the cross-attention keys and values: decoding the
    /// same input again (another prompt, a temperature fallback) skips the encoder.
    pub fn reset(&mut self) {
        self.self_attention.reset();
    }

    /// A cache over the same encoder output (its cross-attention keys and values shared, not
    /// copied) with an empty self-attention cache: another beam of the same input.
    pub fn fork(&self) -> Result<EncoderDecoderCache> {
        Ok(EncoderDecoderCache {
            self_attention: self.self_attention.empty_like()?,
            cross: self.cross.clone(),
            encoder_len: self.encoder_len,
        })
    }

    /// Makes this cache's decoded past a copy of `other`'s (see `KvCache::copy_from`); both must
    /// be over the same encoder output (forks of one cache).
    pub fn copy_from(&mut self, other: &EncoderDecoderCache) -> Result<()> {
        self.self_attention.copy_from(&other.self_attention)
    }
}

/// An encoder-decoder model's decoder side: the encoder runs once per input, the decoder takes
/// its output through an `EncoderDecoderCache`. Nothing runs until a returned tensor is read.
pub trait EncoderDecoderModel {
    fn vocab_size(&self) -> usize;
    /// The most decoder positions the model has (Whisper: 448).
    fn max_target_positions(&self) -> usize;
    /// A cache for up to `max_len` decoder tokens over `encoder_hidden` [S, hidden] (lazy is
    /// fine): the cross-attention keys and values of every layer.
    fn new_cache(&self, encoder_hidden: &Tensor, max_len: usize) -> Result<EncoderDecoderCache>;
    /// Appends `tokens` and returns logits [1, V] (last position) or [T, V] (`all_logits`).
    fn decode(&self, tokens: &[u32], cache: &mut EncoderDecoderCache, all_logits: bool) -> Result<Tensor>;
    /// `decode` (last position's logits [1, V]) that also returns the cross-attention
    /// probabilities of `heads` ((layer, head) pairs) for the new tokens: [heads.len(), T, S]
    /// (word-level timestamps from alignment heads).
    fn decode_with_cross_attentions(
        &self,
        tokens: &[u32],
        cache: &mut EncoderDecoderCache,
        heads: &[(usize, usize)],
    ) -> Result<(Tensor, Tensor)>;
}

/// A speech encoder-decoder (Whisper): log-mel features in.
pub trait SpeechSeq2SeqModel: EncoderDecoderModel {
    fn num_mel_bins(&self) -> usize;
    /// The frames `encode` takes (Whisper: 3000, 30 s).
    fn num_frames(&self) -> usize;
    /// The encoder output's width.
    fn hidden_size(&self) -> usize;
    /// `features` row-major [n_mels, frames] to the encoder output [frames / 2, hidden].
    fn encode(&self, features: &[f32]) -> Result<Tensor>;
}

/// A text encoder-decoder (Marian, BART, T5; later M2M100/NLLB): token ids in.
pub trait TextSeq2SeqModel: EncoderDecoderModel {
    /// `input_ids` (one sequence, special tokens included) to the encoder output [S, hidden]
    /// (lazy).
    fn encode(&self, input_ids: &[u32]) -> Result<Tensor>;
    /// The decoder's first token (`decoder_start_token_id`: Marian's pad, BART's `</s>`).
    fn decoder_start_token_id(&self) -> u32;
    /// The longest input `encode` takes (its position embeddings).
    fn max_source_positions(&self) -> usize;
}

/// The most labels a classifier may have without an `id2label` (whose size its bytes bound).
pub const MAX_LABELS: usize = 1 << 20;

/// What config.json says about a model beyond its hyperparameters: its type, the class it was
/// saved from, and its labels.
#[derive(Clone, Debug)]
pub struct ModelConfig {
    /// The model's name (folder, repository), for error messages.
    pub name: String,
    pub model_type: String,
    /// `architectures[0]`: the transformers class the checkpoint was saved from
    /// (`BertForSequenceClassification`), when config.json says.
    pub architecture: Option<String>,
    /// `id2label` in id order; transformers' default (`LABEL_0`, `LABEL_1`) when absent.
    pub id2label: Vec<String>,
    /// `problem_type`: `multi_label_classification` makes classifiers use sigmoids.
    pub problem_type: Option<String>,
    /// The whole config.json, which each architecture parses into its own struct.
    pub json: serde_json::Value,
}

impl ModelConfig {
    pub fn from_json(name: &str, json: serde_json::Value) -> Result<ModelConfig> {
        let model_type = match json.get("model_type") {
            Some(serde_json::Value::String(t)) => t.clone(),
            _ => return Err(Error::Config(format!("{name}/config.json has no `model_type`"))),
        };
        let architecture = json.get("architectures").and_then(|a| a.get(0)).and_then(|a| a.as_str()).map(str::to_string);
        let id2label = match json.get("id2label") {
            Some(serde_json::Value::Object(map)) => {
                let mut labels = vec![None; map.len()];
                for (id, label) in map {
                    let slot =
                        id.parse::<usize>().ok().and_then(|i| labels.get_mut(i)).ok_or_else(|| {
                            Error::Config(format!("{name}/config.json: id2label ids must be 0..{}, found `{id}`", map.len()))
                        })?;
                    *slot = Some(label.as_str().map(str::to_string).unwrap_or_else(|| label.to_string()));
                }
                labels.into_iter().map(|l| l.unwrap_or_default()).collect()
            }
            _ => {
                let n = json.get("num_labels").and_then(|n| n.as_u64()).unwrap_or(2);
                // The labels are made here, so a huge count would allocate them all.
                if n > MAX_LABELS as u64 {
                    return Err(Error::Config(format!("{name}/config.json: num_labels is {n}, over the {MAX_LABELS} supported")));
                }
                (0..n).map(|i| format!("LABEL_{i}")).collect()
            }
        };
        let problem_type = json.get("problem_type").and_then(|p| p.as_str()).map(str::to_string);
        Ok(ModelConfig { name: name.to_string(), model_type, architecture, id2label, problem_type, json })
    }

    /// The id of `label` (exact `label2id`/`id2label` match).
    pub fn label_id(&self, label: &str) -> Option<usize> {
        self.id2label.iter().position(|l| l == label)
    }
}

/// One architecture: the `model_type`s config.json names it by, and its typed entry points.
/// An architecture implements the entry points it has; tasks ask for the one they need
/// (vision and audio encoders and encoder-decoder models add their entry points here).
pub struct Architecture {
    pub model_types: &'static [&'static str],
    /// A text encoder: token ids to hidden states.
    pub text_encoder: Option<fn(&ModelConfig, &Weights) -> Result<Box<dyn EncoderModel>>>,
    /// Its task heads, from their Hugging Face weight names.
    pub text_head: Option<fn(HeadKind, &ModelConfig, &Weights) -> Result<TextHead>>,
    /// A causal language model (text-generation).
    pub decoder: Option<fn(&ModelConfig, &Weights) -> Result<Box<dyn DecoderModel>>>,
    /// A vision model (pixels to hidden states, pooled embeddings, or its head's outputs).
    pub vision: Option<fn(&ModelConfig, &Weights, VisionHead) -> Result<Box<dyn VisionModel>>>,
    /// A dual encoder of images and texts into one embedding space (CLIP, SigLIP).
    pub image_text: Option<fn(&ModelConfig, &Weights) -> Result<Box<dyn ImageTextModel>>>,
    /// A speech encoder-decoder (automatic-speech-recognition: Whisper).
    pub speech_seq2seq: Option<fn(&ModelConfig, &Weights) -> Result<Box<dyn SpeechSeq2SeqModel>>>,
    /// A text encoder-decoder (translation, summarization, text2text-generation).
    pub text_seq2seq: Option<fn(&ModelConfig, &Weights) -> Result<Box<dyn TextSeq2SeqModel>>>,
}

impl Architecture {
    /// An architecture with no entry points: entries fill theirs and take the rest from here
    /// (`..Architecture::NONE`), so that adding an entry point touches no other entry.
    pub const NONE: Architecture = Architecture {
        model_types: &[],
        text_encoder: None,
        text_head: None,
        decoder: None,
        vision: None,
        image_text: None,
        speech_seq2seq: None,
        text_seq2seq: None,
    };
}

/// The head a vision task needs on top of the backbone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VisionHead {
    /// The backbone alone (image-feature-extraction).
    None,
    /// `*ForImageClassification`.
    ImageClassification,
    /// `*ForObjectDetection`.
    ObjectDetection,
}

/// What a vision model computes, named as transformers' output fields; a model fills the ones
/// its head has. Nothing runs until a tensor is read.
#[derive(Default)]
pub struct VisionOutput {
    /// [N, tokens, hidden] (ViT, DINOv2, CLIP, SigLIP: the class token first); ConvNeXt's last
    /// stage [N, C, h, w].
    pub last_hidden_state: Option<Tensor>,
    /// [N, dim]: what transformers.js's image-feature-extraction returns with `pool: true`
    /// (the pooler output, or CLIP's and SigLIP's projected image embedding).
    pub pooled: Option<Tensor>,
    /// Classifier logits [N, labels]; DETR's [N, queries, labels + 1].
    pub logits: Option<Tensor>,
    /// DETR's boxes [N, queries, 4] as (center x, center y, width, height) in [0, 1].
    pub pred_boxes: Option<Tensor>,
}

/// A vision model over a batch of images of one size.
pub trait VisionModel {
    /// `pixel_values` [N, 3, H, W] as the image processor made them; `pixel_mask` [N, H, W]
    /// (1 on real pixels, 0 on padding) for models whose processor pads (DETR).
    fn forward(&self, pixel_values: &Tensor, pixel_mask: Option<&Tensor>) -> Result<VisionOutput>;
}

/// How a dual encoder's texts are padded before its text tower sees them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextPadding {
    /// Not at all: padding is masked out, so packed sequences give the same result (CLIP).
    None,
    /// To the tokenizer's `model_max_length` with its pad token, attended to like any token, as
    /// the model was trained (SigLIP).
    MaxLength,
}

/// A dual encoder (CLIP, SigLIP): images and texts to embeddings compared by cosine similarity.
/// Nothing runs until a tensor is read.
pub trait ImageTextModel {
    /// Image embeddings [N, D] (projected, not normalized) of `pixel_values` [N, 3, H, W].
    fn image_embeds(&self, pixel_values: &Tensor) -> Result<Tensor>;
    /// Text embeddings [B, D] (projected, not normalized) of tokenized texts, padded as
    /// `text_padding` says.
    fn text_embeds(&self, batch: &Batch) -> Result<Tensor>;
    /// Which towers the checkpoint has: (vision, text).
    fn has_towers(&self) -> (bool, bool);
    /// `logit_scale` [1] (its exp multiplies the cosine similarities), when the checkpoint has it.
    fn logit_scale(&self) -> Option<&Tensor>;
    /// `logit_bias` [1] (SigLIP).
    fn logit_bias(&self) -> Option<&Tensor>;
    fn text_padding(&self) -> TextPadding;
    /// The longest text (in tokens) the text tower's position embeddings cover.
    fn max_text_positions(&self) -> usize;
    /// Whether each image-text logit is scored on its own by a sigmoid (SigLIP), rather than
    /// softmaxed over the labels (CLIP).
    fn sigmoid_scores(&self) -> bool;
}

/// Every architecture, by `model_type`. Adding one: its file, and an entry here.
pub static ARCHITECTURES: &[Architecture] = &[
    Architecture {
        model_types: &["bert", "roberta", "xlm-roberta"],
        text_encoder: Some(|c, vb| Ok(Box::new(bert::Bert::load(parse(&c.json)?, vb)?))),
        text_head: Some(bert::load_head),
        ..Architecture::NONE
    },
    Architecture {
        model_types: &["deberta-v2"],
        text_encoder: Some(|c, vb| Ok(Box::new(deberta_v2::DebertaV2::load(parse(&c.json)?, vb)?))),
        text_head: Some(deberta_v2::load_head),
        ..Architecture::NONE
    },
    Architecture {
        model_types: &["distilbert"],
        text_encoder: Some(|c, vb| Ok(Box::new(distilbert::load(parse(&c.json)?, vb)?))),
        text_head: Some(distilbert::load_head),
        ..Architecture::NONE
    },
    Architecture {
        model_types: &["modernbert"],
        text_encoder: Some(|c, vb| Ok(Box::new(modernbert::ModernBert::load(parse(&c.json)?, vb)?))),
        text_head: Some(modernbert::load_head),
        ..Architecture::NONE
    },
    Architecture {
        model_types: &["clip", "clip_vision_model", "clip_text_model"],
        vision: Some(clip::load_vision),
        image_text: Some(|c, vb| Ok(Box::new(clip::Clip::load(c, vb)?))),
        ..Architecture::NONE
    },
    Architecture {
        model_types: &["siglip", "siglip_vision_model", "siglip_text_model"],
        vision: Some(siglip::load_vision),
        image_text: Some(|c, vb| Ok(Box::new(siglip::Siglip::load(c, vb)?))),
        ..Architecture::NONE
    },
    Architecture {
        model_types: &["llama", "mistral", "qwen2", "qwen3", "smollm3", "phi3"],
        decoder: Some(|c, vb| Ok(Box::new(llama::Llama::load(parse(&c.json)?, vb, false)?))),
        ..Architecture::NONE
    },
    Architecture { model_types: &["vit"], vision: Some(|c, vb, head| Ok(Box::new(vit::Vit::load(c, vb, head)?))), ..Architecture::NONE },
    Architecture {
        model_types: &["dinov2", "dinov2_with_registers"],
        vision: Some(|c, vb, head| Ok(Box::new(dinov2::Dinov2::load(c, vb, head)?))),
        ..Architecture::NONE
    },
    Architecture {
        model_types: &["convnext"],
        vision: Some(|c, vb, head| Ok(Box::new(convnext::ConvNext::load(c, vb, head)?))),
        ..Architecture::NONE
    },
    Architecture { model_types: &["detr"], vision: Some(|c, vb, head| Ok(Box::new(detr::Detr::load(c, vb, head)?))), ..Architecture::NONE },
    Architecture {
        model_types: &["whisper"],
        speech_seq2seq: Some(|c, vb| Ok(Box::new(whisper::Whisper::load(parse(&c.json)?, vb)?))),
        ..Architecture::NONE
    },
    Architecture {
        model_types: &["marian"],
        text_seq2seq: Some(|c, vb| Ok(Box::new(marian::load(parse(&c.json)?, vb)?))),
        ..Architecture::NONE
    },
    Architecture {
        model_types: &["bart"],
        text_seq2seq: Some(|c, vb| Ok(Box::new(bart::load(parse(&c.json)?, vb)?))),
        ..Architecture::NONE
    },
    Architecture {
        model_types: &["t5", "mt5"],
        text_seq2seq: Some(|c, vb| Ok(Box::new(t5::T5::load(parse(&c.json)?, vb)?))),
        ..Architecture::NONE
    },
    Architecture {
        // NLLB-200 checkpoints are `m2m_100` too
        model_types: &["m2m_100"],
        text_seq2seq: Some(|c, vb| Ok(Box::new(m2m100::M2M100::load(parse(&c.json)?, vb)?))),
        ..Architecture::NONE
    },
    Architecture {
        model_types: &["gemma3_text"],
        decoder: Some(|c, vb| Ok(Box::new(gemma3::Gemma3::load(parse(&c.json)?, vb)?))),
        ..Architecture::NONE
    },
    Architecture {
        model_types: &["gpt2"],
        decoder: Some(|c, vb| Ok(Box::new(gpt2::Gpt2::load(parse(&c.json)?, vb)?))),
        ..Architecture::NONE
    },
];

/// The model types that have `entry` (for error messages).
fn model_types_with(entry: impl Fn(&Architecture) -> bool) -> String {
    ARCHITECTURES.iter().filter(|a| entry(a)).flat_map(|a| a.model_types.iter().copied()).collect::<Vec<_>>().join(", ")
}

/// The architecture of `config`, which must have the entry point `what` names (`has` checks it).
pub fn architecture(config: &ModelConfig, what: &str, has: impl Fn(&Architecture) -> bool) -> Result<&'static Architecture> {
    let arch = ARCHITECTURES.iter().find(|a| a.model_types.contains(&config.model_type.as_str()));
    match arch {
        Some(a) if has(a) => Ok(a),
        _ => Err(Error::Unsupported(format!(
            "model_type `{}` (from {}/config.json) has no {what} here; supported: {}",
            config.model_type,
            config.name,
            model_types_with(has)
        ))),
    }
}

/// A vision model with the head `head`, which must be what the checkpoint was saved with.
pub fn load_vision_model(config: &ModelConfig, vb: &Weights, head: VisionHead) -> Result<Box<dyn VisionModel>> {
    let arch = architecture(config, "vision model", |a| a.vision.is_some())?;
    (arch.vision.expect("checked"))(config, vb, head)
}

/// A dual encoder of images and texts (CLIP, SigLIP).
pub fn load_image_text_model(config: &ModelConfig, vb: &Weights) -> Result<Box<dyn ImageTextModel>> {
    let arch = architecture(config, "image-text dual encoder", |a| a.image_text.is_some())?;
    (arch.image_text.expect("checked"))(config, vb)
}

/// A speech encoder-decoder (Whisper) from a config.json.
pub fn load_speech_seq2seq(config: &ModelConfig, vb: &Weights) -> Result<Box<dyn SpeechSeq2SeqModel>> {
    let arch = architecture(config, "speech encoder-decoder", |a| a.speech_seq2seq.is_some())?;
    (arch.speech_seq2seq.expect("checked"))(config, vb)
}

/// A text encoder-decoder (Marian, BART, M2M100 / NLLB) from a config.json.
pub fn load_text_seq2seq(config: &ModelConfig, vb: &Weights) -> Result<Box<dyn TextSeq2SeqModel>> {
    let arch = architecture(config, "text encoder-decoder", |a| a.text_seq2seq.is_some())?;
    (arch.text_seq2seq.expect("checked"))(config, vb)
}

/// A decoder from a config.json (Hugging Face safetensors folders).
pub fn load_decoder(config: &ModelConfig, vb: &Weights) -> Result<Box<dyn DecoderModel>> {
    let arch = architecture(config, "text-generation model", |a| a.decoder.is_some())?;
    (arch.decoder.expect("checked"))(config, vb)
}

/// A text encoder, with the task head `head` when a task needs one. The head must be what the
/// checkpoint was saved with: a `BertModel` has no classifier, and a `BertForMaskedLM` no
/// question-answering outputs.
pub fn load_text_model(config: &ModelConfig, vb: &Weights, head: Option<HeadKind>) -> Result<TextModel> {
    let arch = architecture(config, "text encoder", |a| a.text_encoder.is_some())?;
    let head = match head {
        None => None,
        Some(kind) => {
            if let Some(class) = &config.architecture
                && HeadKind::of_architecture(class) != Some(kind)
            {
                return Err(Error::Unsupported(format!(
                    "{} is a `{class}`, which has no {} head (this task needs a *{} model)",
                    config.name,
                    kind.class_suffix().trim_start_matches("For"),
                    kind.class_suffix()
                )));
            }
            let load_head =
                arch.text_head.ok_or_else(|| Error::Unsupported(format!("model_type `{}` has no task heads here", config.model_type)))?;
            Some(load_head(kind, config, vb)?)
        }
    };
    let encoder = (arch.text_encoder.expect("checked"))(config, vb)?;
    Ok(TextModel { encoder, head })
}

/// A text encoder and the head its task reads.
pub struct TextModel {
    pub encoder: Box<dyn EncoderModel>,
    pub head: Option<TextHead>,
}

/// A config.json as a typed struct, with the field that failed named.
pub fn parse<T: DeserializeOwned>(config: &serde_json::Value) -> Result<T> {
    serde_json::from_value(config.clone()).map_err(|e| Error::Config(format!("config.json: {e}")))
}
