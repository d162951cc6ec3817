//! A model on its own, as transformers' `AutoModel` and `AutoModelFor{Task}` classes give it:
//! loaded by config.json's architecture through the registry (`ARCHITECTURES`), called on named
//! tensors (`input_ids`, `attention_mask`, `pixel_values`, ...) and answering named tensors
//! (`last_hidden_state`, `logits`, `start_logits`, ...), with no task's pre- or post-processing.
//!
//! One contract for every architecture: the class says which entry point of the registry is
//! loaded (a text encoder with a `TextHead`, a decoder, a vision model with a `VisionHead`), and
//! `forward` turns the padded [batch, tokens] tensors front ends pass into what those entry
//! points take (packed sequences, one KV cache per row; an encoder-decoder's encoder output and
//! decoder cache per row) and back. A new architecture that fills
//! its registry entry needs nothing here.

use std::rc::Rc;

use serde_json::Value;

use crate::files::ModelFiles;
use crate::generation::{self, GenerationConfig, Interrupt};
use crate::tasks::LoadOptions;
use crate::tasks::text_encoder::MAX_BATCH;
use crate::tasks::zero_shot_image_classification as zsic;
use crate::tokenizer::Batch;
use crate::weights::Weights;
use crate::{Device, Error, Result, Tensor};

use super::{
    DecoderModel, EncoderDecoderModel, HeadKind, ImageTextModel, ModelConfig, SpeechSeq2SeqModel, TextModel, TextPadding, TextSeq2SeqModel,
    VisionHead, VisionModel,
};
use crate::tasks::asr::prompt::WhisperGenerationConfig;
use crate::tasks::seq2seq;

/// Which transformers class is loaded: the base model or one with a task head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelClass {
    /// `AutoModel`: the backbone's hidden states.
    Base,
    /// `AutoModelFor{SequenceClassification, TokenClassification, QuestionAnswering, MaskedLM}`.
    TextHead(HeadKind),
    /// `AutoModelForCausalLM`.
    CausalLm,
    /// `AutoModelForImageClassification`.
    ImageClassification,
    /// `AutoModelForObjectDetection` (DETR: `logits` and `pred_boxes`).
    ObjectDetection,
    /// `AutoModelForSeq2SeqLM`: a text encoder-decoder (Marian, BART, M2M100 / NLLB, T5).
    Seq2SeqLm,
    /// `AutoModelForSpeechSeq2Seq`: a speech encoder-decoder (Whisper).
    SpeechSeq2Seq,
    /// A CLIP or SigLIP class of transformers.js's (`CLIPModel`, `CLIPTextModelWithProjection`,
    /// ..., `SiglipVisionModel`; see `DUAL_CLASSES`).
    Dual(DualClass),
}

/// Which towers of a dual encoder a class runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DualPart {
    /// Both, compared: `logits_per_image`, `logits_per_text`, `text_embeds`, `image_embeds`.
    Both,
    Text,
    Vision,
}

/// A dual encoder's class: its name, the model_type family it loads (`clip`, `siglip`) and
/// which towers it runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DualClass {
    pub name: &'static str,
    pub family: &'static str,
    pub part: DualPart,
}

/// transformers.js's CLIP and SigLIP classes. A one-tower class loads a whole checkpoint's
/// weights too (the towers are one file here, not one ONNX file each), and answers as
/// transformers.js's does: CLIP's `text_embeds` / `image_embeds` (projected, not normalized),
/// SigLIP's `pooler_output`.
pub const DUAL_CLASSES: [DualClass; 6] = [
    DualClass { name: "CLIPModel", family: "clip", part: DualPart::Both },
    DualClass { name: "CLIPTextModelWithProjection", family: "clip", part: DualPart::Text },
    DualClass { name: "CLIPVisionModelWithProjection", family: "clip", part: DualPart::Vision },
    DualClass { name: "SiglipModel", family: "siglip", part: DualPart::Both },
    DualClass { name: "SiglipTextModel", family: "siglip", part: DualPart::Text },
    DualClass { name: "SiglipVisionModel", family: "siglip", part: DualPart::Vision },
];

impl ModelClass {
    /// From transformers' class name (`AutoModelForMaskedLM`), its suffix (`ForMaskedLM`), or
    /// `AutoModel`.
    pub fn from_name(name: &str) -> Result<ModelClass> {
        if let Some(class) = DUAL_CLASSES.iter().find(|c| c.name == name) {
            return Ok(ModelClass::Dual(*class));
        }
        let suffix = name.strip_prefix("AutoModel").unwrap_or(name);
        if suffix.is_empty() {
            return Ok(ModelClass::Base);
        }
        if let Some(kind) = HeadKind::ALL.into_iter().find(|k| k.class_suffix() == suffix) {
            return Ok(ModelClass::TextHead(kind));
        }
        match suffix {
            "ForCausalLM" => Ok(ModelClass::CausalLm),
            "ForImageClassification" => Ok(ModelClass::ImageClassification),
            "ForObjectDetection" => Ok(ModelClass::ObjectDetection),
            "ForSeq2SeqLM" => Ok(ModelClass::Seq2SeqLm),
            "ForSpeechSeq2Seq" => Ok(ModelClass::SpeechSeq2Seq),
            _ => Err(Error::Unsupported(format!(
                "unknown model class `{name}`; the classes are AutoModel, {}, AutoModelForCausalLM, AutoModelForImageClassification, AutoModelForObjectDetection, AutoModelForSeq2SeqLM, AutoModelForSpeechSeq2Seq, {}",
                HeadKind::ALL.map(|k| format!("AutoModel{}", k.class_suffix())).join(", "),
                DUAL_CLASSES.map(|c| c.name).join(", ")
            ))),
        }
    }

    /// transformers' class name (`AutoModelForMaskedLM`).
    pub fn name(&self) -> String {
        match self {
            ModelClass::Base => "AutoModel".into(),
            ModelClass::TextHead(kind) => format!("AutoModel{}", kind.class_suffix()),
            ModelClass::CausalLm => "AutoModelForCausalLM".into(),
            ModelClass::ImageClassification => "AutoModelForImageClassification".into(),
            ModelClass::ObjectDetection => "AutoModelForObjectDetection".into(),
            ModelClass::Seq2SeqLm => "AutoModelForSeq2SeqLM".into(),
            ModelClass::SpeechSeq2Seq => "AutoModelForSpeechSeq2Seq".into(),
            ModelClass::Dual(c) => c.name.into(),
        }
    }
}

/// A tensor as a front end holds it: row-major values and their dims.
#[derive(Clone, Debug, PartialEq)]
pub struct HostTensor {
    pub dims: Vec<usize>,
    pub data: HostValues,
}

#[derive(Clone, Debug, PartialEq)]
pub enum HostValues {
    /// Integer tensors (token ids, masks) of any width, as i64.
    Int(Vec<i64>),
    Float(Vec<f32>),
}

/// A model's named inputs or outputs, in order.
pub type NamedTensors = Vec<(String, HostTensor)>;

/// A loaded model as `AutoModel` runs it. The model sits behind an `Rc`, so that a task pipeline
/// and an `AutoModel` over the same load (`Pipeline::auto_model`, JS's `pipe.model`) share one
/// copy of the weights: cloning this clones handles, not tensors.
#[derive(Clone)]
pub enum LoadedModel {
    /// A text encoder with its head (none: the base model); `vocab` bounds the input ids.
    Text {
        model: Rc<TextModel>,
        vocab: usize,
    },
    Decoder {
        model: Rc<dyn DecoderModel>,
        generation: GenerationConfig,
    },
    Vision {
        model: Rc<dyn VisionModel>,
        head: VisionHead,
    },
    /// A text encoder-decoder with its generation defaults (`seq2seq::generation_defaults`).
    TextSeq2Seq {
        model: Rc<dyn TextSeq2SeqModel>,
        generation: GenerationConfig,
        forced_eos: Option<u32>,
    },
    /// Whisper with generation_config.json's prompt tokens and suppressions.
    SpeechSeq2Seq {
        model: Rc<dyn SpeechSeq2SeqModel>,
        generation: WhisperGenerationConfig,
    },
    /// A dual encoder (CLIP, SigLIP): `Base` (`AutoModel`, both towers) or a `Dual` class.
    ImageText {
        model: Rc<dyn ImageTextModel>,
        class: ModelClass,
    },
}

impl LoadedModel {
    /// A text encoder as loaded, its vocabulary read from config.json.
    pub fn text(model: Rc<TextModel>, config: &ModelConfig) -> Result<LoadedModel> {
        Ok(LoadedModel::Text { model, vocab: vocab_size(config)? })
    }

    /// The transformers class this model is an instance of: its head decides.
    fn class(&self) -> ModelClass {
        match self {
            LoadedModel::Text { model, .. } => model.head.as_ref().map_or(ModelClass::Base, |h| ModelClass::TextHead(h.kind)),
            LoadedModel::Decoder { .. } => ModelClass::CausalLm,
            LoadedModel::Vision { head: VisionHead::None, .. } => ModelClass::Base,
            LoadedModel::Vision { head: VisionHead::ImageClassification, .. } => ModelClass::ImageClassification,
            LoadedModel::Vision { head: VisionHead::ObjectDetection, .. } => ModelClass::ObjectDetection,
            LoadedModel::TextSeq2Seq { .. } => ModelClass::Seq2SeqLm,
            LoadedModel::SpeechSeq2Seq { .. } => ModelClass::SpeechSeq2Seq,
            LoadedModel::ImageText { class, .. } => *class,
        }
    }
}

pub struct AutoModel {
    loaded: LoadedModel,
    pub config: ModelConfig,
    pub class: ModelClass,
    device: Device,
    interrupt: Interrupt,
}

impl AutoModel {
    /// The model of `files` as `class` loads it. The architecture is checked before any weight
    /// is read: an unknown one, or one without the entry point the class needs, is
    /// `Error::Unsupported` listing the supported ones.
    pub fn load(class: ModelClass, files: &dyn ModelFiles, device: &Device, options: &LoadOptions) -> Result<AutoModel> {
        let json = files.json("config.json")?.ok_or_else(|| Error::file(files.name(), "is not a model: it has no config.json"))?;
        let config = ModelConfig::from_json(files.name(), json)?;
        let arch = super::ARCHITECTURES.iter().find(|a| a.model_types.contains(&config.model_type.as_str()));
        let text = || super::architecture(&config, "text encoder", |a| a.text_encoder.is_some());
        let vision = || super::architecture(&config, "vision model", |a| a.vision.is_some());
        // transformers.js's AutoModel on a CLIPModel / SiglipModel checkpoint (both towers' configs)
        // is the dual encoder; on one tower's checkpoint, that tower's vision model as before.
        let dual_checkpoint = arch.is_some_and(|a| a.image_text.is_some()) && config.json.get("text_config").is_some();
        // Checked first, so that a wrong model fails before its weights are read.
        match class {
            ModelClass::Base if dual_checkpoint => (),
            ModelClass::Dual(c) => check_dual_family(&config, c)?,
            ModelClass::Base if arch.is_some_and(|a| a.vision.is_some()) => vision().map(drop)?,
            ModelClass::Base if arch.is_some_and(|a| a.decoder.is_some()) => {
                return Err(Error::Unsupported(format!(
                    "{}: AutoModel of a decoder (model_type `{}`) would return hidden states, which this engine does not expose; use AutoModelForCausalLM for its logits",
                    config.name, config.model_type
                )));
            }
            ModelClass::Base | ModelClass::TextHead(_) => text().map(drop)?,
            ModelClass::CausalLm => super::architecture(&config, "causal language model", |a| a.decoder.is_some()).map(drop)?,
            ModelClass::ImageClassification | ModelClass::ObjectDetection => vision().map(drop)?,
            ModelClass::Seq2SeqLm => super::architecture(&config, "text encoder-decoder", |a| a.text_seq2seq.is_some()).map(drop)?,
            ModelClass::SpeechSeq2Seq => {
                super::architecture(&config, "speech encoder-decoder", |a| a.speech_seq2seq.is_some()).map(drop)?
            }
        }
        let vb = Weights::new(files.weights(device)?, device, options.dtype);
        let vision_head =
            |head| -> Result<LoadedModel> { Ok(LoadedModel::Vision { model: super::load_vision_model(&config, &vb, head)?.into(), head }) };
        let image_text = |class: ModelClass| -> Result<LoadedModel> {
            let model = super::load_image_text_model(&config, &vb)?;
            let part = if let ModelClass::Dual(c) = class { c.part } else { DualPart::Both };
            let (vision, text) = model.has_towers();
            if (part != DualPart::Text && !vision) || (part != DualPart::Vision && !text) {
                return Err(Error::Unsupported(format!(
                    "{}: {} needs the {} tower, which this checkpoint (`{}`) does not hold",
                    config.name,
                    class.name(),
                    if vision { "text" } else { "vision" },
                    config.architecture.as_deref().unwrap_or(&config.model_type)
                )));
            }
            Ok(LoadedModel::ImageText { model: model.into(), class })
        };
        let loaded = match class {
            ModelClass::Base if dual_checkpoint => image_text(class)?,
            ModelClass::Dual(_) => image_text(class)?,
            ModelClass::Base if arch.is_some_and(|a| a.vision.is_some()) => vision_head(VisionHead::None)?,
            ModelClass::Base => LoadedModel::text(Rc::new(super::load_text_model(&config, &vb, None)?), &config)?,
            ModelClass::TextHead(kind) => LoadedModel::text(Rc::new(super::load_text_model(&config, &vb, Some(kind))?), &config)?,
            ModelClass::CausalLm => {
                let generation = GenerationConfig::from_json(&files.json("generation_config.json")?.unwrap_or_default(), &config.json)?;
                LoadedModel::Decoder { model: super::load_decoder(&config, &vb)?.into(), generation }
            }
            ModelClass::ImageClassification => vision_head(VisionHead::ImageClassification)?,
            ModelClass::ObjectDetection => vision_head(VisionHead::ObjectDetection)?,
            ModelClass::Seq2SeqLm => {
                let generation_json = files.json("generation_config.json")?.unwrap_or_default();
                let (generation, forced_eos) = seq2seq::generation_defaults(files.name(), &generation_json, &config.json)?;
                LoadedModel::TextSeq2Seq { model: super::load_text_seq2seq(&config, &vb)?.into(), generation, forced_eos }
            }
            ModelClass::SpeechSeq2Seq => {
                let generation_json = files.json("generation_config.json")?.unwrap_or_default();
                // Without a tokenizer, the special tokens are generation_config.json's ids.
                let generation = WhisperGenerationConfig::from_json(&generation_json, &|_| None)?;
                LoadedModel::SpeechSeq2Seq { model: super::load_speech_seq2seq(&config, &vb)?.into(), generation }
            }
        };
        Ok(AutoModel::sharing(loaded, config, device))
    }

    /// An `AutoModel` over an already loaded model (a task pipeline's): no weight is read or
    /// copied; the class follows from the model's head.
    pub fn sharing(loaded: LoadedModel, config: ModelConfig, device: &Device) -> AutoModel {
        AutoModel { class: loaded.class(), loaded, config, device: device.clone(), interrupt: Interrupt::new() }
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The flag that stops a `generate` in flight after its current token.
    pub fn interrupt(&self) -> &Interrupt {
        &self.interrupt
    }

    /// The model's outputs for `inputs`, named as transformers names them: text encoders take
    /// `input_ids` [B, S] (integers), optional `attention_mask` [B, S] (each row's ones first:
    /// right padding) and `token_type_ids` [B, S], and give `last_hidden_state` [B, S, H] (zeros
    /// at padding), or their head's `logits` ([B, labels]; [B, S, labels] per token, [B, S, V]
    /// for masked LM) or `start_logits` / `end_logits` [B, S]. Decoders take `input_ids` and
    /// `attention_mask` (any padding: each row's attended tokens are one sequence, positions
    /// counted from its first) and give `logits` [B, S, V] (zeros at padding). Vision models take
    /// `pixel_values` [N, 3, H, W] (and DETR's `pixel_mask` [N, H, W]) and give
    /// `last_hidden_state`, `pooler_output`, `logits`, `pred_boxes`, those their head has.
    pub async fn forward(&self, inputs: &NamedTensors) -> Result<NamedTensors> {
        check_names(inputs, self.input_names())?;
        match &self.loaded {
            LoadedModel::Text { model, vocab } => self.forward_text(model, *vocab, inputs).await,
            LoadedModel::Decoder { model, .. } => self.forward_decoder(model.as_ref(), inputs).await,
            LoadedModel::Vision { model, .. } => self.forward_vision(model.as_ref(), inputs).await,
            LoadedModel::TextSeq2Seq { .. } | LoadedModel::SpeechSeq2Seq { .. } => self.forward_seq2seq(inputs).await,
            LoadedModel::ImageText { model, class } => self.forward_image_text(model.as_ref(), *class, inputs).await,
        }
    }

    /// The inputs `forward` reads.
    pub fn input_names(&self) -> &'static [&'static str] {
        match &self.loaded {
            LoadedModel::Text { .. } => &["input_ids", "attention_mask", "token_type_ids"],
            // transformers.js passes position_ids to decoders; they follow from the mask here.
            LoadedModel::Decoder { .. } => &["input_ids", "attention_mask", "position_ids"],
            LoadedModel::Vision { .. } => &["pixel_values", "pixel_mask"],
            LoadedModel::TextSeq2Seq { .. } => &["input_ids", "attention_mask", "decoder_input_ids"],
            LoadedModel::SpeechSeq2Seq { .. } => &["input_features", "decoder_input_ids"],
            LoadedModel::ImageText { class: ModelClass::Dual(DualClass { part: DualPart::Text, .. }), .. } => {
                &["input_ids", "attention_mask"]
            }
            LoadedModel::ImageText { class: ModelClass::Dual(DualClass { part: DualPart::Vision, .. }), .. } => &["pixel_values"],
            LoadedModel::ImageText { .. } => &["input_ids", "attention_mask", "pixel_values"],
        }
    }

    /// An encoder-decoder's decoder side, for what text and speech share.
    fn encoder_decoder(&self) -> Option<&dyn EncoderDecoderModel> {
        match &self.loaded {
            LoadedModel::TextSeq2Seq { model, .. } => Some(model.as_ref()),
            LoadedModel::SpeechSeq2Seq { model, .. } => Some(model.as_ref()),
            _ => None,
        }
    }

    /// An encoder-decoder's encoder outputs, one a row (lazy, [positions, hidden]), each over
    /// the row's own input: a text row's attended tokens (`input_ids` [B, S] with a
    /// right-padded `attention_mask`), or a speech row's `input_features` [B, mel bins, frames].
    /// Also the positions a row of `encoder_last_hidden_state` has (S; frames / 2).
    fn encode_rows(&self, inputs: &NamedTensors) -> Result<(Vec<Tensor>, usize)> {
        match &self.loaded {
            LoadedModel::TextSeq2Seq { model, .. } => {
                let (ids, b, s) = token_ids(inputs, model.vocab_size())?;
                let lengths = right_padded_lengths(inputs, b, s)?;
                let max = model.max_source_positions();
                if s > max {
                    return Err(Error::Input(format!("input_ids has {s} tokens a row; {} reads at most {max}", self.config.name)));
                }
                let rows = (0..b)
                    .map(|r| model.encode(&ids[r * s..r * s + lengths[r]].iter().map(|&v| v as u32).collect::<Vec<u32>>()))
                    .collect::<Result<Vec<_>>>()?;
                Ok((rows, s))
            }
            LoadedModel::SpeechSeq2Seq { model, .. } => {
                let (mels, frames) = (model.num_mel_bins(), model.num_frames());
                let features = find(inputs, "input_features").ok_or_else(|| {
                    Error::Input(format!("the model takes input_features [batch, {mels}, {frames}] (AutoProcessor's log-mel)"))
                })?;
                let values = floats(features, "input_features")?;
                if features.dims.len() != 3 || features.dims[0] == 0 || features.dims[1..] != [mels, frames] {
                    return Err(Error::Input(format!("input_features must be [batch, {mels}, {frames}], not {:?}", features.dims)));
                }
                let rows = values.chunks(mels * frames).map(|row| model.encode(row)).collect::<Result<Vec<_>>>()?;
                Ok((rows, frames / 2))
            }
            _ => Err(Error::Unsupported(format!("{} is not an encoder-decoder", self.config.name))),
        }
    }

    /// `decoder_input_ids` [B, T] for a batch of `b` rows, checked against the vocabulary and the
    /// decoder's positions; None when absent.
    fn decoder_ids(&self, model: &dyn EncoderDecoderModel, inputs: &NamedTensors, b: usize) -> Result<Option<(Vec<u32>, usize)>> {
        let Some(t) = find(inputs, "decoder_input_ids") else { return Ok(None) };
        if t.dims.len() != 2 || t.dims[0] != b || t.dims[1] == 0 {
            return Err(Error::Input(format!(
                "decoder_input_ids must be [{b}, decoder tokens] (one row per input, at least the start token), not {:?}",
                t.dims
            )));
        }
        let len = t.dims[1];
        let max = model.max_target_positions();
        if len > max {
            return Err(Error::Input(format!("decoder_input_ids has {len} tokens a row; the decoder has {max} positions")));
        }
        let vocab = model.vocab_size();
        let ids = ints(t, "decoder_input_ids", &t.dims)?;
        if let Some(bad) = ids.iter().find(|&&id| id < 0 || id as u64 >= vocab as u64) {
            return Err(Error::Input(format!("decoder_input_ids holds {bad}, outside the vocabulary of {vocab}")));
        }
        Ok(Some((ids.into_iter().map(|v| v as u32).collect(), len)))
    }

    /// An encoder-decoder's forward, as transformers' `*ForConditionalGeneration`: `logits`
    /// [B, T, V] of every decoder position (teacher forcing on `decoder_input_ids`, each row
    /// attending to its own encoder output only), and `encoder_last_hidden_state` [B, S, H]
    /// (zeros at padding).
    async fn forward_seq2seq(&self, inputs: &NamedTensors) -> Result<NamedTensors> {
        let model = self.encoder_decoder().expect("an encoder-decoder");
        let (encoded, width) = self.encode_rows(inputs)?;
        let b = encoded.len();
        let (decoder_ids, t) = self.decoder_ids(model, inputs, b)?.ok_or_else(|| {
            Error::Input(format!(
                "{}: forward takes decoder_input_ids [batch, decoder tokens] (the decoder's start token first) besides the encoder's inputs; generate() makes them itself",
                self.class.name()
            ))
        })?;
        let vocab = model.vocab_size();
        let mut logits = Vec::with_capacity(b * t * vocab);
        let mut hidden: Vec<f32> = Vec::new();
        let mut hidden_size = 0;
        for (r, rows) in encoded.iter().enumerate() {
            let mut cache = model.new_cache(rows, t)?;
            logits.extend(model.decode(&decoder_ids[r * t..(r + 1) * t], &mut cache, true)?.to_vec_f32().await?);
            let values = rows.to_vec_f32().await?;
            hidden_size = rows.dims()[1];
            hidden.resize(b * width * hidden_size, 0.0);
            hidden[r * width * hidden_size..][..values.len()].copy_from_slice(&values);
        }
        let float = |dims: Vec<usize>, data: Vec<f32>| HostTensor { dims, data: HostValues::Float(data) };
        Ok(vec![
            ("logits".into(), float(vec![b, t, vocab], logits)),
            ("encoder_last_hidden_state".into(), float(vec![b, width, hidden_size], hidden)),
        ])
    }

    async fn forward_text(&self, model: &TextModel, vocab: usize, inputs: &NamedTensors) -> Result<NamedTensors> {
        let (ids, b, s) = token_ids(inputs, vocab)?;
        let lengths = right_padded_lengths(inputs, b, s)?;
        let max = model.encoder.max_positions();
        if s > max {
            return Err(Error::Input(format!("input_ids has {s} tokens a row; {} reads at most {max}", self.config.name)));
        }
        let types = match find(inputs, "token_type_ids") {
            Some(t) => {
                let t = ints(t, "token_type_ids", &[b, s])?;
                if let Some(bad) = t.iter().find(|&&v| !(0..2).contains(&v)) {
                    return Err(Error::Input(format!("token_type_ids holds {bad}; token types are 0 or 1")));
                }
                t
            }
            None => vec![0; b * s],
        };
        let row = |data: &[i64], r: usize| data[r * s..r * s + lengths[r]].iter().map(|&v| v as u32).collect::<Vec<u32>>();
        let width = match &model.head {
            Some(head) => head.outputs(),
            None => model.encoder.hidden_size(),
        };
        let per_sequence = model.head.as_ref().is_some_and(|h| h.kind == HeadKind::SequenceClassification);
        // [B, S, width] (or [B, width] for sequence classification), zeros at padding.
        let mut out = vec![0f32; if per_sequence { b * width } else { b * s * width }];
        for start in (0..b).step_by(MAX_BATCH) {
            let rows = start..(start + MAX_BATCH).min(b);
            let batch =
                Batch { ids: rows.clone().map(|r| row(&ids, r)).collect(), type_ids: rows.clone().map(|r| row(&types, r)).collect() };
            let hidden = model.encoder.forward(&batch)?;
            let values = match &model.head {
                Some(head) => {
                    let offsets = batch.offsets();
                    head.forward(&hidden, &Tensor::from_u32(&offsets, &[offsets.len()], &self.device)?, None)?.to_vec_f32().await?
                }
                None => hidden.to_vec_f32().await?,
            };
            if per_sequence {
                out[start * width..rows.end * width].copy_from_slice(&values);
                continue;
            }
            let mut packed = values.chunks(width);
            for r in rows {
                for (t, v) in packed.by_ref().take(lengths[r]).enumerate() {
                    out[(r * s + t) * width..][..width].copy_from_slice(v);
                }
            }
        }
        let float = |dims: Vec<usize>, data: Vec<f32>| HostTensor { dims, data: HostValues::Float(data) };
        Ok(match model.head.as_ref().map(|h| h.kind) {
            None => vec![("last_hidden_state".into(), float(vec![b, s, width], out))],
            Some(HeadKind::SequenceClassification) => vec![("logits".into(), float(vec![b, width], out))],
            Some(HeadKind::QuestionAnswering) => {
                // qa_outputs' two columns: start, then end.
                let column = |c: usize| out.chunks(width).map(|x| x[c]).collect();
                vec![("start_logits".into(), float(vec![b, s], column(0))), ("end_logits".into(), float(vec![b, s], column(1)))]
            }
            Some(_) => vec![("logits".into(), float(vec![b, s, width], out))],
        })
    }

    async fn forward_decoder(&self, model: &dyn DecoderModel, inputs: &NamedTensors) -> Result<NamedTensors> {
        let vocab = model.vocab_size();
        let (ids, b, s) = token_ids(inputs, vocab)?;
        let attended = attended_positions(inputs, b, s)?;
        let mut out = vec![0f32; b * s * vocab];
        for (r, positions) in attended.iter().enumerate() {
            let tokens: Vec<u32> = positions.iter().map(|&p| ids[r * s + p] as u32).collect();
            let mut cache = model.new_cache(tokens.len())?;
            let logits = model.forward(&tokens, &mut cache, true)?.to_vec_f32().await?;
            for (&p, row) in positions.iter().zip(logits.chunks(vocab)) {
                out[(r * s + p) * vocab..][..vocab].copy_from_slice(row);
            }
        }
        Ok(vec![("logits".into(), HostTensor { dims: vec![b, s, vocab], data: HostValues::Float(out) })])
    }

    async fn forward_vision(&self, model: &dyn VisionModel, inputs: &NamedTensors) -> Result<NamedTensors> {
        let pixels = find(inputs, "pixel_values").ok_or_else(|| Error::Input("the model takes pixel_values [N, 3, H, W]".into()))?;
        let values = floats(pixels, "pixel_values")?;
        if pixels.dims.len() != 4 || pixels.dims[1] != 3 || pixels.dims.contains(&0) {
            return Err(Error::Input(format!("pixel_values must be [N, 3, H, W], not {:?}", pixels.dims)));
        }
        let (n, h, w) = (pixels.dims[0], pixels.dims[2], pixels.dims[3]);
        let pixel_values = Tensor::from_f32(values, &pixels.dims, &self.device)?;
        let mask = match find(inputs, "pixel_mask") {
            Some(m) => {
                let mask: Vec<f32> = ints(m, "pixel_mask", &[n, h, w])?.into_iter().map(|v| v as f32).collect();
                Some(Tensor::from_f32(&mask, &[n, h, w], &self.device)?)
            }
            None => None,
        };
        let output = model.forward(&pixel_values, mask.as_ref())?;
        let mut out = NamedTensors::new();
        let named = [
            ("last_hidden_state", output.last_hidden_state),
            ("pooler_output", output.pooled),
            ("logits", output.logits),
            ("pred_boxes", output.pred_boxes),
        ];
        for (name, tensor) in named {
            if let Some(t) = tensor {
                let dims = t.dims().to_vec();
                out.push((name.into(), HostTensor { dims, data: HostValues::Float(t.to_vec_f32().await?) }));
            }
        }
        Ok(out)
    }

    /// A dual encoder's outputs, as transformers' CLIPModel / SiglipModel forward gives them:
    /// the embeddings normalized, `logits_per_text` [B, N] their cosine similarities times
    /// `logit_scale.exp()` (plus SigLIP's `logit_bias`), `logits_per_image` its transpose. One
    /// tower's class gives its embedding as that tower's class does (see `DUAL_CLASSES`).
    async fn forward_image_text(&self, model: &dyn ImageTextModel, class: ModelClass, inputs: &NamedTensors) -> Result<NamedTensors> {
        let part = match class {
            ModelClass::Dual(c) => c.part,
            _ => DualPart::Both,
        };
        let float = |dims: Vec<usize>, data: Vec<f32>| HostTensor { dims, data: HostValues::Float(data) };
        let pooled_name = |clip_name: &str| if model.sigmoid_scores() { "pooler_output".to_string() } else { clip_name.to_string() };
        let text = match part {
            DualPart::Vision => None,
            _ => Some(self.dual_text_embeds(model, inputs).await?),
        };
        let image = match part {
            DualPart::Text => None,
            _ => Some(self.dual_image_embeds(model, inputs).await?),
        };
        let (mut text, mut image) = match (text, image) {
            (Some((t, b, d)), None) => return Ok(vec![(pooled_name("text_embeds"), float(vec![b, d], t))]),
            (None, Some((i, n, d))) => return Ok(vec![(pooled_name("image_embeds"), float(vec![n, d], i))]),
            (Some(t), Some(i)) => (t, i),
            (None, None) => unreachable!("every part runs a tower"),
        };
        let ((b, dim), n) = ((text.1, text.2), image.1);
        if image.2 != dim {
            return Err(Error::Config(format!(
                "{}: image embeddings of {} values and text embeddings of {dim}",
                self.config.name, image.2
            )));
        }
        let scale = model.logit_scale().ok_or_else(|| Error::weight("logit_scale", format!("not found in {}", self.config.name)))?;
        let scale = scale.to_vec_f32().await?[0].exp();
        let bias = match model.logit_bias() {
            Some(b) => b.to_vec_f32().await?[0],
            None => 0.0,
        };
        zsic::normalize_rows(&mut text.0, dim);
        zsic::normalize_rows(&mut image.0, dim);
        let per_image = zsic::logits_per_image(&text.0, &image.0, dim, scale, bias);
        let per_text: Vec<f32> = (0..b * n).map(|k| per_image[(k % n) * b + k / n]).collect();
        Ok(vec![
            ("logits_per_image".into(), float(vec![n, b], per_image)),
            ("logits_per_text".into(), float(vec![b, n], per_text)),
            ("text_embeds".into(), float(vec![b, dim], text.0)),
            ("image_embeds".into(), float(vec![n, dim], image.0)),
        ])
    }

    /// The text tower's embeddings of `input_ids` [B, S]: (values, B, D). CLIP's rows are cut at
    /// their `attention_mask` (right padding; its causal tower pools at the EOS, before the
    /// padding); SigLIP's are read whole, every token attended to, as transformers.js's SigLIP
    /// (whose ONNX text model takes no mask) reads the texts its tokenizer padded to max_length.
    async fn dual_text_embeds(&self, model: &dyn ImageTextModel, inputs: &NamedTensors) -> Result<(Vec<f32>, usize, usize)> {
        let vocab = self.config.json["text_config"]["vocab_size"].as_u64().or(self.config.json["vocab_size"].as_u64()).unwrap_or(u64::MAX);
        let (ids, b, s) = token_ids(inputs, vocab as usize)?;
        let lengths = match model.text_padding() {
            TextPadding::None => right_padded_lengths(inputs, b, s)?,
            TextPadding::MaxLength => vec![s; b],
        };
        let mut out = Vec::new();
        for start in (0..b).step_by(MAX_BATCH) {
            let rows = start..(start + MAX_BATCH).min(b);
            let ids: Vec<Vec<u32>> = rows.map(|r| ids[r * s..][..lengths[r]].iter().map(|&v| v as u32).collect()).collect();
            let type_ids = ids.iter().map(|row| vec![0; row.len()]).collect();
            out.extend(model.text_embeds(&Batch { ids, type_ids })?.to_vec_f32().await?);
        }
        let dim = out.len() / b;
        Ok((out, b, dim))
    }

    /// The vision tower's embeddings of `pixel_values` [N, 3, H, W]: (values, N, D).
    async fn dual_image_embeds(&self, model: &dyn ImageTextModel, inputs: &NamedTensors) -> Result<(Vec<f32>, usize, usize)> {
        let pixels = find(inputs, "pixel_values").ok_or_else(|| Error::Input("the model takes pixel_values [N, 3, H, W]".into()))?;
        let values = floats(pixels, "pixel_values")?;
        if pixels.dims.len() != 4 || pixels.dims.contains(&0) {
            return Err(Error::Input(format!("pixel_values must be [N, 3, H, W], not {:?}", pixels.dims)));
        }
        let n = pixels.dims[0];
        let per_image = values.len() / n;
        let mut out = Vec::new();
        for start in (0..n).step_by(MAX_BATCH) {
            let count = MAX_BATCH.min(n - start);
            let dims = [count, pixels.dims[1], pixels.dims[2], pixels.dims[3]];
            let chunk = Tensor::from_f32(&values[start * per_image..][..count * per_image], &dims, &self.device)?;
            out.extend(model.image_embeds(&chunk)?.to_vec_f32().await?);
        }
        let dim = out.len() / n;
        Ok((out, n, dim))
    }

    /// `AutoModelForCausalLM`: greedy or sampled generation for each row of `input_ids` [B, S]
    /// with its `attention_mask`: the rows as given (padding kept) followed by their new tokens,
    /// rows that stopped early filled with the pad token (else the first EOS): [B, S + n].
    /// `options` are generation options (`max_new_tokens`, `do_sample`, ...) over the model's
    /// generation_config.json; beam search is not offered for decoders here. The
    /// encoder-decoders: see `generate_seq2seq`.
    pub async fn generate(&self, inputs: &NamedTensors, options: &Value) -> Result<(Vec<u32>, [usize; 2])> {
        if self.encoder_decoder().is_some() {
            return self.generate_seq2seq(inputs, options).await;
        }
        let LoadedModel::Decoder { model, generation } = &self.loaded else {
            return Err(Error::Unsupported(format!(
                "{}: generate() needs a model loaded with AutoModelForCausalLM, AutoModelForSeq2SeqLM or AutoModelForSpeechSeq2Seq",
                self.config.name
            )));
        };
        check_names(inputs, self.input_names())?;
        let mut config = generation.clone();
        let rest = config.take_options("generate", options)?;
        if rest != Value::Null {
            return Err(Error::Input(format!("generate: unknown options {rest}")));
        }
        if config.num_beams > 1 || config.sampled_sequences() > 1 {
            return Err(Error::Unsupported(
                "generate() here decodes one sequence per row: use num_beams 1 and num_return_sequences 1".into(),
            ));
        }
        let vocab = model.vocab_size();
        let (ids, b, s) = token_ids(inputs, vocab)?;
        let attended = attended_positions(inputs, b, s)?;
        let mut generated = Vec::with_capacity(b);
        for (r, positions) in attended.iter().enumerate() {
            let prompt: Vec<u32> = positions.iter().map(|&p| ids[r * s + p] as u32).collect();
            let row_config = config.for_sequence(r);
            let mut cache = model.new_cache(prompt.len() + row_config.max_new_for(prompt.len()))?;
            let mut step = |tokens: &[u32]| model.forward(tokens, &mut cache, false);
            let mut processors = generation::processors_for(&row_config);
            let out = generation::generate(&mut step, &prompt, &row_config, &mut processors, None, &self.interrupt).await?;
            generated.push(out.token_ids);
        }
        let new = generated.iter().map(Vec::len).max().unwrap_or(0);
        let fill = config.pad_token_id.or(config.eos_token_ids.first().copied()).unwrap_or(0);
        let mut sequences = Vec::with_capacity(b * (s + new));
        for (r, tokens) in generated.iter().enumerate() {
            sequences.extend(ids[r * s..(r + 1) * s].iter().map(|&v| v as u32));
            sequences.extend_from_slice(tokens);
            sequences.extend(std::iter::repeat_n(fill, new - tokens.len()));
        }
        Ok((sequences, [b, s + new]))
    }

    /// An encoder-decoder's `generate` (`AutoModelForSeq2SeqLM`, `AutoModelForSpeechSeq2Seq`),
    /// as transformers' returns it: per input row, the decoder's prompt (its start token, or
    /// `decoder_input_ids` when given; Whisper's `<|startoftranscript|>`, language, task and
    /// `<|notimestamps|>`) followed by the generated tokens, rows padded with the pad token
    /// (else the first EOS) to one length: [B * num_return_sequences, L]. `options` are the
    /// generation options over the model's generation_config.json, beam search included;
    /// Whisper also takes `language` and `task` (detected / transcribe when absent, as
    /// transformers does for a multilingual checkpoint).
    async fn generate_seq2seq(&self, inputs: &NamedTensors, options: &Value) -> Result<(Vec<u32>, [usize; 2])> {
        let model = self.encoder_decoder().expect("an encoder-decoder");
        check_names(inputs, self.input_names())?;
        let (mut config, forced_eos, whisper) = match &self.loaded {
            LoadedModel::TextSeq2Seq { generation, forced_eos, .. } => (generation.clone(), *forced_eos, None),
            LoadedModel::SpeechSeq2Seq { generation, .. } => {
                let defaults = GenerationConfig {
                    eos_token_ids: generation.eos_token_ids.clone(),
                    suppress_tokens: generation.suppress_tokens.clone(),
                    begin_suppress_tokens: generation.begin_suppress_tokens.clone(),
                    max_length: generation.max_length,
                    ..GenerationConfig::default()
                };
                (defaults, None, Some(generation))
            }
            _ => unreachable!("encoder_decoder() is Some"),
        };
        let rest = config.take_options("generate", options)?;
        let (language, task) = match (whisper, rest) {
            (_, Value::Null) => (None, None),
            (Some(_), Value::Object(mut rest)) => {
                let mut text = |key: &str| -> Result<Option<String>> {
                    match rest.remove(key) {
                        None | Some(Value::Null) => Ok(None),
                        Some(Value::String(v)) => Ok(Some(v)),
                        Some(other) => Err(Error::Input(format!("generate: `{key}` must be a string, not {other}"))),
                    }
                };
                let (language, task) = (text("language")?, text("task")?);
                if !rest.is_empty() {
                    return Err(Error::Input(format!("generate: unknown options {}", Value::Object(rest))));
                }
                (language, task)
            }
            (_, rest) => return Err(Error::Input(format!("generate: unknown options {rest}"))),
        };
        config.validate()?;
        let (encoded, _) = self.encode_rows(inputs)?;
        let prompts = self.decoder_ids(model, inputs, encoded.len())?;
        let mut rows: Vec<Vec<u32>> = Vec::new();
        for (r, row) in encoded.iter().enumerate() {
            let prompt = match (&prompts, &self.loaded, whisper) {
                (Some((ids, t)), _, _) => ids[r * t..(r + 1) * t].to_vec(),
                (None, LoadedModel::TextSeq2Seq { model, .. }, _) => vec![model.decoder_start_token_id()],
                (None, _, Some(whisper)) => {
                    let detected = if whisper.needs_language_detection(language.as_deref(), task.as_deref()) {
                        // transformers' detect_language: the likeliest language after the start token
                        let mut cache = model.new_cache(row, 1)?;
                        let logits = model.decode(&[whisper.decoder_start_token_id], &mut cache, false)?.to_vec_f32().await?;
                        Some(whisper.detect_language(&logits)?)
                    } else {
                        None
                    };
                    whisper.init_tokens(language.as_deref(), task.as_deref(), false, detected)?
                }
                _ => unreachable!("an encoder-decoder is text or speech"),
            };
            let row_config = config.for_sequence(r);
            for sequence in seq2seq::generate_encoded(model, row, &prompt, &row_config, forced_eos, None, &self.interrupt).await? {
                rows.push(prompt.iter().copied().chain(sequence.token_ids).collect());
            }
        }
        let len = rows.iter().map(Vec::len).max().unwrap_or(0);
        let fill = config.pad_token_id.or(config.eos_token_ids.first().copied()).unwrap_or(0);
        let mut sequences = Vec::with_capacity(rows.len() * len);
        for row in &rows {
            sequences.extend_from_slice(row);
            sequences.extend(std::iter::repeat_n(fill, len - row.len()));
        }
        Ok((sequences, [rows.len(), len]))
    }

    /// Facts front ends show: the class, model_type, labels and sizes.
    pub fn info(&self) -> Value {
        let mut info = serde_json::json!({
            "model_type": self.config.model_type,
            "architecture": self.config.architecture,
            "id2label": self.config.id2label,
        });
        match &self.loaded {
            LoadedModel::Text { model, vocab } => {
                info["hidden_size"] = model.encoder.hidden_size().into();
                info["vocab_size"] = (*vocab).into();
                info["max_positions"] = model.encoder.max_positions().into();
            }
            LoadedModel::Decoder { model, .. } => {
                info["vocab_size"] = model.vocab_size().into();
                info["max_positions"] = model.max_context().into();
            }
            LoadedModel::Vision { .. } | LoadedModel::ImageText { .. } => {}
            LoadedModel::TextSeq2Seq { model, .. } => {
                info["vocab_size"] = model.vocab_size().into();
                info["max_positions"] = model.max_source_positions().into();
                info["max_target_positions"] = model.max_target_positions().into();
                info["decoder_start_token_id"] = model.decoder_start_token_id().into();
            }
            LoadedModel::SpeechSeq2Seq { model, .. } => {
                info["vocab_size"] = model.vocab_size().into();
                info["num_mel_bins"] = model.num_mel_bins().into();
                info["num_frames"] = model.num_frames().into();
                info["max_target_positions"] = model.max_target_positions().into();
            }
        }
        info
    }
}

/// A dual encoder's class must be of the checkpoint's family (a SiglipModel class on a CLIP
/// checkpoint is refused, as transformers refuses it).
fn check_dual_family(config: &ModelConfig, class: DualClass) -> Result<()> {
    super::architecture(config, "image-text dual encoder", |a| a.image_text.is_some())?;
    if config.model_type.starts_with(class.family) {
        return Ok(());
    }
    let fits: Vec<&str> = DUAL_CLASSES.iter().filter(|c| config.model_type.starts_with(c.family)).map(|c| c.name).collect();
    Err(Error::Unsupported(format!(
        "{} is a `{}` model, not a {} one: {} does not load it{}",
        config.name,
        config.model_type,
        class.family,
        class.name,
        if fits.is_empty() { String::new() } else { format!("; use {}", fits.join(", ")) }
    )))
}

/// A text encoder's vocabulary (config.json's `vocab_size`), which the ids are checked against:
/// an id past it would read outside the embedding table.
fn vocab_size(config: &ModelConfig) -> Result<usize> {
    config.json["vocab_size"]
        .as_u64()
        .map(|v| v as usize)
        .ok_or_else(|| Error::Config(format!("{}/config.json has no `vocab_size`", config.name)))
}

/// What a processor returns beside the model's inputs (image sizes for post-processing): passed
/// through with them, as transformers.js code does, and not read.
const PROCESSOR_EXTRAS: [&str; 2] = ["original_sizes", "reshaped_input_sizes"];

/// Every input must be one the model reads: a misspelt name would otherwise be ignored.
fn check_names(inputs: &NamedTensors, known: &[&str]) -> Result<()> {
    match inputs.iter().find(|(name, _)| !known.contains(&name.as_str()) && !PROCESSOR_EXTRAS.contains(&name.as_str())) {
        Some((name, _)) => Err(Error::Input(format!("the model takes no input `{name}`; its inputs are {}", known.join(", ")))),
        None => Ok(()),
    }
}

fn find<'a>(inputs: &'a NamedTensors, name: &str) -> Option<&'a HostTensor> {
    inputs.iter().find(|(n, _)| n == name).map(|(_, t)| t)
}

/// An integer tensor of dims `dims`.
fn ints(t: &HostTensor, name: &str, dims: &[usize]) -> Result<Vec<i64>> {
    let HostValues::Int(values) = &t.data else {
        return Err(Error::Input(format!("{name} must be an integer tensor (int64), not float")));
    };
    if t.dims != dims {
        return Err(Error::Input(format!("{name} has dims {:?}; it must be {dims:?}", t.dims)));
    }
    Ok(values.clone())
}

fn floats<'a>(t: &'a HostTensor, name: &str) -> Result<&'a [f32]> {
    match &t.data {
        HostValues::Float(values) => Ok(values),
        HostValues::Int(_) => Err(Error::Input(format!("{name} must be a float32 tensor, not an integer one"))),
    }
}

/// `input_ids` [B, S] checked against the vocabulary: (ids, B, S).
fn token_ids(inputs: &NamedTensors, vocab: usize) -> Result<(Vec<i64>, usize, usize)> {
    let t = find(inputs, "input_ids").ok_or_else(|| Error::Input("the model takes input_ids [batch, tokens]".into()))?;
    if t.dims.len() != 2 || t.dims.contains(&0) {
        return Err(Error::Input(format!("input_ids must be [batch, tokens] with both at least 1, not {:?}", t.dims)));
    }
    let (b, s) = (t.dims[0], t.dims[1]);
    let ids = ints(t, "input_ids", &[b, s])?;
    if let Some(bad) = ids.iter().find(|&&id| id < 0 || id as u64 >= vocab as u64) {
        return Err(Error::Input(format!("input_ids holds {bad}, outside the vocabulary of {vocab}")));
    }
    Ok((ids, b, s))
}

/// `attention_mask` [B, S] of zeros and ones (all ones when absent), by row.
fn mask_rows(inputs: &NamedTensors, b: usize, s: usize) -> Result<Vec<Vec<bool>>> {
    let mask = match find(inputs, "attention_mask") {
        Some(m) => ints(m, "attention_mask", &[b, s])?,
        None => vec![1; b * s],
    };
    if let Some(bad) = mask.iter().find(|&&v| v != 0 && v != 1) {
        return Err(Error::Input(format!("attention_mask holds {bad}; it must be 0 or 1")));
    }
    let rows: Vec<Vec<bool>> = mask.chunks(s).map(|r| r.iter().map(|&v| v == 1).collect()).collect();
    if let Some(r) = rows.iter().position(|r| !r.contains(&true)) {
        return Err(Error::Input(format!("attention_mask row {r} attends to no token")));
    }
    Ok(rows)
}

/// Each row's length for an encoder, whose packed sequences start at position 0: the mask must
/// be ones then zeros (the tokenizer's right padding).
fn right_padded_lengths(inputs: &NamedTensors, b: usize, s: usize) -> Result<Vec<usize>> {
    let rows = mask_rows(inputs, b, s)?;
    rows.iter()
        .enumerate()
        .map(|(r, row)| {
            let len = row.iter().take_while(|&&m| m).count();
            if row[len..].contains(&true) {
                return Err(Error::Input(format!(
                    "attention_mask row {r} is not right-padded (ones, then zeros); encoders here take right padding"
                )));
            }
            Ok(len)
        })
        .collect()
}

/// Each row's attended positions, in order (a decoder's sequence, left or right padded).
fn attended_positions(inputs: &NamedTensors, b: usize, s: usize) -> Result<Vec<Vec<usize>>> {
    Ok(mask_rows(inputs, b, s)?.iter().map(|row| (0..row.len()).filter(|&p| row[p]).collect()).collect())
}

/// A model's preprocessing on its own, as transformers' `AutoProcessor` gives it: the image
/// processor or Whisper's feature extractor that preprocessor_config.json names, the same code
/// the pipelines run.
pub enum AutoProcessor {
    Image(crate::image::ImageProcessor),
    Audio(crate::audio::WhisperFeatureExtractor),
}

impl AutoProcessor {
    /// From preprocessor_config.json (required): an `image_processor_type` makes an image
    /// processor, a `WhisperFeatureExtractor` the log-mel features.
    pub fn load(files: &dyn ModelFiles) -> Result<AutoProcessor> {
        let file = crate::image::PREPROCESSOR_CONFIG;
        let config = files.json(file)?.ok_or_else(|| Error::file(files.name(), format!("has no {file}: it names no processor")))?;
        if config["feature_extractor_type"].as_str() == Some("WhisperFeatureExtractor") {
            return Ok(AutoProcessor::Audio(crate::audio::WhisperFeatureExtractor::from_config(&config)?));
        }
        Ok(AutoProcessor::Image(crate::image::ImageProcessor::load(files)?))
    }

    /// `"image"` or `"audio"`: what the processor takes.
    pub fn input_kind(&self) -> &'static str {
        match self {
            AutoProcessor::Image(_) => "image",
            AutoProcessor::Audio(_) => "audio",
        }
    }

    /// The sampling rate audio must have (resampled to it when it does not).
    pub fn sampling_rate(&self) -> Option<u32> {
        match self {
            AutoProcessor::Audio(f) => Some(f.sampling_rate),
            AutoProcessor::Image(_) => None,
        }
    }

    /// Images to `pixel_values` [N, 3, H, W] (and `pixel_mask` [N, H, W] where the processor
    /// pads), with `original_sizes` and `reshaped_input_sizes` [N, 2] as (height, width); audio to
    /// `input_features` [N, mel bins, frames] padded or cut to the extractor's 30 s, as the
    /// pipelines' own inputs are made.
    pub fn process(&self, input: crate::tasks::Input<'_>) -> Result<NamedTensors> {
        let float = |dims: Vec<usize>, data: Vec<f32>| HostTensor { dims, data: HostValues::Float(data) };
        let sizes = |s: &[(usize, usize)]| HostTensor {
            dims: vec![s.len(), 2],
            data: HostValues::Int(s.iter().flat_map(|&(h, w)| [h as i64, w as i64]).collect()),
        };
        match self {
            AutoProcessor::Image(processor) => {
                let (images, _) = input.images("AutoProcessor")?;
                let out = processor.process(&images)?;
                let [n, _, h, w] = out.dims;
                let mut named = vec![("pixel_values".to_string(), float(out.dims.to_vec(), out.pixel_values))];
                if let Some(mask) = out.pixel_mask {
                    named.push((
                        "pixel_mask".into(),
                        HostTensor { dims: vec![n, h, w], data: HostValues::Int(mask.iter().map(|&m| m as i64).collect()) },
                    ));
                }
                named.push(("original_sizes".into(), sizes(&out.original_sizes)));
                named.push(("reshaped_input_sizes".into(), sizes(&out.reshaped_sizes)));
                Ok(named)
            }
            AutoProcessor::Audio(extractor) => {
                let audios = input.audios(extractor.sampling_rate)?;
                let items = audios.items();
                let mut features = Vec::with_capacity(items.len() * extractor.feature_size * extractor.nb_max_frames);
                for audio in &items {
                    features.extend(extractor.extract(&audio.samples)?);
                }
                Ok(vec![("input_features".into(), float(vec![items.len(), extractor.feature_size, extractor.nb_max_frames], features))])
            }
        }
    }
}
