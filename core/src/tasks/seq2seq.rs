//! What the text encoder-decoder tasks share (`translation`, `summarization`,
//! `text2text-generation`): text in, the encoder once, then the decoder through the generation
//! library, as transformers.js's `Text2TextGenerationPipeline` and Python's do:
//!
//! 1. the text gets config.json's `prefix` and the task's `task_specific_params[task].prefix`,
//!    then is tokenized with its special tokens and truncated to the tokenizer's
//!    `model_max_length` (and the encoder's positions): Transformers.js always truncates
//!    (`truncation: true`); Python's pipeline does when called with `truncation=True`. A cut
//!    text is reported (`Event::Warning`: how many tokens of how many were read). For
//!    translation with a multilingual model (NLLB, M2M100), `src_lang` picks the source
//!    language's token and `tgt_lang` the forced first token (translation_languages.rs);
//! 2. the decoder starts from `decoder_start_token_id` and decodes with the model's
//!    generation_config.json defaults under the call's options: `max_length`, `min_length`,
//!    `bad_words_ids` (single tokens: Marian bans its pad), `forced_bos_token_id` (BART),
//!    `forced_eos_token_id` at the last position, `no_repeat_ngram_size`, and `num_beams`
//!    (beam search, with `length_penalty`, `early_stopping`, `num_return_sequences`), else
//!    greedily or by sampling;
//! 3. the generated ids are decoded without special tokens (and with the tokenizer's
//!    `clean_up_tokenization_spaces`), `num_return_sequences` `{key: text}` per input text, in
//!    one flat array (transformers.js's shape).

use std::rc::Rc;

use serde_json::{Value, json};

use super::events::TokenEvents;
use super::text_encoder::clean_up_tokenization_spaces;
use super::translation_languages::Languages;
use super::{Event, Input, LoadOptions, LocalFuture, OneOrMany, Output, Pipeline, TaskInfo};
use crate::files::ModelFiles;
use crate::generation::{self, GenerationConfig, Interrupt, Streamer, TextStreamer};
use crate::models::auto::{AutoModel, LoadedModel};
use crate::models::{self, EncoderDecoderModel, TextSeq2SeqModel};
use crate::tokenizer::Tokenizer;
use crate::weights::Weights;
use crate::{Device, Error, Result, Tensor};

/// The files every seq2seq task reads besides the weights (tokenizer.json is optional only so
/// that its absence gets the error below, not a missing-file one).
pub const FILES: &[&str] = &["tokenizer.json", "tokenizer_config.json", "generation_config.json"];

/// A loaded text encoder-decoder task.
pub struct TextSeq2Seq {
    task: &'static TaskInfo,
    /// The output field (`translation_text`, `summary_text`, `generated_text`).
    key: &'static str,
    model: Rc<dyn TextSeq2SeqModel>,
    tokenizer: Tokenizer,
    clean_up_spaces: bool,
    /// config.json's `prefix` and `task_specific_params[task].prefix`, in the order they go
    /// before the text.
    prefix: String,
    /// The model's generation defaults, under each call's options.
    config: GenerationConfig,
    /// `forced_eos_token_id`: forced at the last position generation allows.
    forced_eos: Option<u32>,
    /// A multilingual model's languages, for translation (None: one language pair).
    languages: Option<Languages>,
    interrupt: Interrupt,
    device: Device,
    /// config.json (its `model_type` is in `info`: a page shows language pickers for
    /// multilingual ones).
    model_config: models::ModelConfig,
}

/// The call's own options besides the generation ones (`GenerationConfig::take_options`).
#[derive(serde::Deserialize, Default, Clone, Debug)]
#[serde(deny_unknown_fields)]
pub struct CallOptions {
    /// Language codes for translation with a multilingual model (NLLB `fra_Latn`, M2M100
    /// `fr`); Marian's checkpoints are one language pair each and ignore them, as
    /// transformers.js does.
    pub src_lang: Option<String>,
    pub tgt_lang: Option<String>,
}

/// One generated sequence of a text.
#[derive(Clone, Debug, PartialEq)]
pub struct Sequence {
    /// The generated ids (an ending EOS included; the decoder's start token not).
    pub token_ids: Vec<u32>,
    /// Beam search's score, transformers' `sequences_scores` (sum of log-probs over
    /// length^length_penalty); None for greedy decoding, which has no such score.
    pub score: Option<f32>,
}

/// config.json's generation settings that GenerationConfig does not read, as extra processors'
/// inputs: single-token `bad_words_ids`, `forced_bos_token_id`, `forced_eos_token_id`.
struct Forcing {
    banned: Vec<u32>,
    forced_bos: Option<u32>,
    forced_eos: Option<u32>,
}

impl Forcing {
    fn from_json(name: &str, generation: &Value, config: &Value) -> Result<Forcing> {
        let get = |key: &str| if generation[key].is_null() { &config[key] } else { &generation[key] };
        let mut banned = Vec::new();
        if let Value::Array(words) = get("bad_words_ids") {
            for word in words {
                match word.as_array().map(|w| w.iter().map(Value::as_u64).collect::<Vec<_>>()).as_deref() {
                    Some([Some(id)]) => banned.push(*id as u32),
                    _ => {
                        return Err(Error::Unsupported(format!(
                            "{name}: bad_words_ids entry {word}: only single-token bad words are supported"
                        )));
                    }
                }
            }
        }
        let token = |key: &str| get(key).as_u64().map(|t| t as u32);
        Ok(Forcing { banned, forced_bos: token("forced_bos_token_id"), forced_eos: token("forced_eos_token_id") })
    }
}

impl TextSeq2Seq {
    /// From a Hugging Face folder: config.json, model.safetensors, tokenizer.json, and
    /// tokenizer_config.json / generation_config.json when present.
    pub fn load(
        files: &dyn ModelFiles,
        device: &Device,
        options: &LoadOptions,
        task: &'static TaskInfo,
        key: &'static str,
    ) -> Result<TextSeq2Seq> {
        let config = files.json("config.json")?.ok_or_else(|| Error::file(files.name(), "is not a model: it has no config.json"))?;
        let model_config = models::ModelConfig::from_json(files.name(), config.clone())?;
        // Checked first, for its clear message (the tokenizer is made once the model is).
        files.read("tokenizer.json")?.ok_or_else(|| {
            let why = if model_config.model_type == "marian" {
                "Marian checkpoints on the Hub ship only SentencePiece models (source.spm, target.spm), which webformers \
                 does not read; use an export that has a tokenizer.json (the Xenova/opus-mt-* repositories do)"
            } else {
                "webformers reads the tokenizer from tokenizer.json"
            };
            Error::file(files.name(), &format!("has no tokenizer.json: {why}"))
        })?;
        let vb = Weights::new(files.weights(device)?, device, options.dtype);
        let model: Rc<dyn TextSeq2SeqModel> = models::load_text_seq2seq(&model_config, &vb)?.into();
        let tokenizer_config = files.json("tokenizer_config.json")?.unwrap_or(Value::Null);
        // Transformers.js truncates to model_max_length; the encoder's positions bound it too.
        let max_len = tokenizer_config["model_max_length"]
            .as_f64()
            .map(|n| n.min(usize::MAX as f64) as usize)
            .unwrap_or(usize::MAX)
            .min(model.max_source_positions());
        let tokenizer = Tokenizer::from_files(files, max_len)?;
        let generation_json = files.json("generation_config.json")?.unwrap_or(Value::Null);
        let (generation, forced_eos) = generation_defaults(files.name(), &generation_json, &config)?;
        // transformers.js places languages for translation only
        let languages = match task.name {
            "translation" => Languages::of(&tokenizer, &tokenizer_config)?,
            _ => None,
        };
        let task_prefix = config["task_specific_params"][task.name]["prefix"].as_str().unwrap_or("");
        let prefix = format!("{task_prefix}{}", config["prefix"].as_str().unwrap_or(""));
        Ok(TextSeq2Seq {
            task,
            key,
            model,
            tokenizer,
            clean_up_spaces: tokenizer_config["clean_up_tokenization_spaces"].as_bool() == Some(true),
            prefix,
            config: generation,
            forced_eos,
            languages,
            interrupt: Interrupt::new(),
            device: device.clone(),
            model_config,
        })
    }

    /// The model's generation defaults (generation_config.json with the forced and banned
    /// tokens of config.json), which each call's options go over.
    pub fn generation_config(&self) -> &GenerationConfig {
        &self.config
    }

    /// A multilingual model's languages (translation with NLLB, M2M100), else None.
    pub fn languages(&self) -> Option<&Languages> {
        self.languages.as_ref()
    }

    /// One text's generated texts (special tokens skipped), `num_return_sequences` of them, best
    /// first; the text is streamed to `events` as it comes (with beams: the best one's, at the end).
    async fn generate_texts(
        &self,
        text: &str,
        config: &GenerationConfig,
        options: &CallOptions,
        events: &mut dyn FnMut(Event<'_>),
    ) -> Result<Vec<String>> {
        let mut texts = Vec::new();
        for sequence in self.generate_sequences(text, config, options, events).await? {
            let text = self.tokenizer.decode(&sequence.token_ids, true)?;
            texts.push(if self.clean_up_spaces { clean_up_tokenization_spaces(text) } else { text });
        }
        Ok(texts)
    }

    /// One text's generated sequences: one, or with `num_beams > 1` the `num_return_sequences`
    /// best, best first. `min_length` counts the decoder's start token, as transformers' does.
    /// `options` name the languages of a multilingual model.
    pub async fn generate_sequences(
        &self,
        text: &str,
        config: &GenerationConfig,
        options: &CallOptions,
        events: &mut dyn FnMut(Event<'_>),
    ) -> Result<Vec<Sequence>> {
        if text.trim().is_empty() {
            return Err(Error::Input(format!("{}: the text is empty: there is nothing to {}", self.task.name, self.task_verb())));
        }
        config.validate()?;
        let mut config = config.clone();
        let text = format!("{}{text}", self.prefix);
        let (ids, whole) = match &self.languages {
            Some(languages) => {
                let target = languages.target_token(options.tgt_lang.as_deref())?;
                // the target's token replaces any forced BOS of the model's own
                config.forced_tokens.retain(|&(position, _)| position != 1);
                config.forced_tokens.push((1, target));
                languages.source_ids(&self.tokenizer, &text, options.src_lang.as_deref())?
            }
            None => self.tokenizer.encode_noting_cut(&text, true)?,
        };
        if let Some(whole) = whole {
            // Transformers.js cuts silently; say so, since the output then ignores the rest.
            let message = format!(
                "{}: the text is {whole} tokens long; only its first {} (the model's maximum) were read, the rest is ignored",
                self.task.name,
                ids.len()
            );
            events(Event::Warning(&message));
        }
        let encoded = self.model.encode(&ids)?;
        // text and token events go to one sink from two closures
        let sink = std::cell::RefCell::new(events);
        let mut on_text = |t: &str| (*sink.borrow_mut())(Event::Text(t));
        let mut on_tokens = |ids: &[u32]| (*sink.borrow_mut())(Event::Tokens(ids));
        let mut streamer =
            TokenEvents { inner: TextStreamer::new(&self.tokenizer, &config.stop_strings, &mut on_text), on_tokens: &mut on_tokens };
        let prompt = [self.model.decoder_start_token_id()];
        generate_encoded(self.model.as_ref(), &encoded, &prompt, &config, self.forced_eos, Some(&mut streamer), &self.interrupt).await
    }

    fn task_verb(&self) -> &'static str {
        match self.key {
            "translation_text" => "translate",
            "summary_text" => "summarize",
            _ => "generate from",
        }
    }
}

/// The decoder's sequences for one encoded input (`encoded` [S, hidden]) from `prompt` (the
/// decoder's start token, or Whisper's prompt): what the text tasks, Whisper's model class and
/// `AutoModelForSeq2SeqLM.generate` all run. `config.max_length` counts the prompt, and the
/// decoder's positions bound the new tokens; `forced_eos` (`forced_eos_token_id`) is forced at
/// the last position generation allows. One sequence greedily, `num_return_sequences` sampled
/// ones, or with `num_beams > 1` the best `num_return_sequences` beams, best first.
pub async fn generate_encoded(
    model: &dyn EncoderDecoderModel,
    encoded: &Tensor,
    prompt: &[u32],
    config: &GenerationConfig,
    forced_eos: Option<u32>,
    mut streamer: Option<&mut dyn Streamer>,
    interrupt: &Interrupt,
) -> Result<Vec<Sequence>> {
    let mut config = config.clone();
    let room = model.max_target_positions().saturating_sub(prompt.len());
    config.max_new_tokens = config.max_new_for(prompt.len()).min(room);
    config.max_length = None;
    if config.max_new_tokens == 0 {
        return Err(Error::Input("max_length leaves no room for a generated token".into()));
    }
    if let Some(eos) = forced_eos {
        // transformers' ForcedEOSTokenLogitsProcessor: EOS at position max_length - 1
        config.forced_tokens.push((prompt.len() + config.max_new_tokens - 1, eos));
    }
    let mut cache = model.new_cache(encoded, prompt.len() + config.max_new_tokens)?;
    let mut processors = generation::processors_for(&config);
    if config.num_beams > 1 {
        let mut beams = models::beams::EncoderDecoderBeams::new(model, cache);
        let best = generation::beam_search(&mut beams, prompt, &config, &mut processors, streamer, interrupt).await?;
        return Ok(best.into_iter().map(|h| Sequence { token_ids: h.token_ids, score: Some(h.score) }).collect());
    }
    let mut sequences = Vec::new();
    // Sampling with num_return_sequences: independent sequences (`for_sequence`'s seeds) from
    // one encoding, the decoder cache emptied between them.
    for i in 0..config.sampled_sequences() {
        if i > 0 {
            cache.self_attention.reset();
            if let Some(s) = streamer.as_deref_mut() {
                s.restart();
            }
        }
        let one = config.for_sequence(i);
        let mut step = |ids: &[u32]| model.decode(ids, &mut cache, false);
        // a reborrow for this sequence alone (the cast shortens the trait object's lifetime)
        let this_one = streamer.as_deref_mut().map(|s| s as &mut dyn Streamer);
        let out = generation::generate(&mut step, prompt, &one, &mut processors, this_one, interrupt).await?;
        let stopped = out.stop_reason == generation::StopReason::Interrupted;
        sequences.push(Sequence { token_ids: out.token_ids, score: None });
        if stopped {
            break;
        }
    }
    Ok(sequences)
}

/// A text encoder-decoder's generation defaults: generation_config.json (`generation`) over
/// config.json, with config's single-token `bad_words_ids` suppressed and `forced_bos_token_id`
/// forced after the start token; and `forced_eos_token_id`, which `generate_encoded` places.
pub fn generation_defaults(name: &str, generation: &Value, config: &Value) -> Result<(GenerationConfig, Option<u32>)> {
    let mut defaults = GenerationConfig::from_json(generation, config)?;
    let forcing = Forcing::from_json(name, generation, config)?;
    defaults.suppress_tokens.extend(&forcing.banned);
    if let Some(bos) = forcing.forced_bos {
        defaults.forced_tokens.push((1, bos));
    }
    Ok((defaults, forcing.forced_eos))
}

impl Pipeline for TextSeq2Seq {
    fn task(&self) -> &'static TaskInfo {
        self.task
    }

    fn device(&self) -> &Device {
        &self.device
    }

    /// A text or an array of texts gives `[{key: text}, ...]`, one object per text.
    fn run<'a>(&'a self, input: Input<'a>, options: &'a Value, events: &'a mut dyn FnMut(Event<'_>)) -> LocalFuture<'a, Result<Output>> {
        Box::pin(async move {
            let texts: OneOrMany<String> = self.task.input(input.value, "a string or an array of strings")?;
            let mut config = self.config.clone();
            let rest = config.take_options(self.task.name, options)?;
            let options: CallOptions = self.task.options(&rest).map_err(|e| match e {
                Error::Input(m) if m.contains("unknown field") => {
                    Error::Input(format!("{m}, or a generation option ({})", generation::OPTION_NAMES.join(", ")))
                }
                e => e,
            })?;
            config.validate()?;
            if let Some(languages) = &self.languages {
                // checked before any text runs
                languages.target_token(options.tgt_lang.as_deref())?;
            }
            let mut results = Vec::new();
            for text in texts.items() {
                for generated in self.generate_texts(text, &config, &options, events).await? {
                    results.push(json!({ self.key: generated }));
                }
            }
            Ok(Output::Json(Value::Array(results)))
        })
    }

    fn info(&self) -> Value {
        let languages: Option<Vec<&str>> = self.languages.as_ref().map(|l| l.codes().collect());
        json!({
            "vocab_size": self.model.vocab_size(),
            "max_source_positions": self.model.max_source_positions(),
            "languages": languages,
            "model_type": self.model_config.model_type,
        })
    }

    fn interrupt_flag(&self) -> Option<crate::generation::Interrupt> {
        Some(self.interrupt.clone())
    }

    fn call(&self, method: &str, _args: &Value) -> Result<Value> {
        super::interrupt_method(&self.interrupt, method)
            .ok_or_else(|| Error::Unsupported(format!("{} has no method `{method}`", self.task.name)))
    }

    /// `AutoModelForSeq2SeqLM` over this pipeline's weights, with the same generation defaults.
    fn auto_model(&self) -> Result<AutoModel> {
        let loaded = LoadedModel::TextSeq2Seq { model: self.model.clone(), generation: self.config.clone(), forced_eos: self.forced_eos };
        Ok(AutoModel::sharing(loaded, self.model_config.clone(), &self.device))
    }
}
