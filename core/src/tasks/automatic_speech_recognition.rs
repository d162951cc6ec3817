//! automatic-speech-recognition: speech in, `{text}` or `{text, chunks}` out, with Whisper, as
//! transformers.js's pipeline answers and with Python transformers' semantics (its pipeline,
//! `WhisperForConditionalGeneration.generate` and tokenizer `_decode_asr`):
//!
//! - the decoder prompt from `language` / `task` (or the detected language), `<|notimestamps|>`
//!   unless timestamps are asked for (`asr::prompt`);
//! - generation through `crate::generation` (greedy or sampled), with Whisper's suppressions and
//!   its timestamp rules (`asr::timestamps`) as logits processors;
//! - each 30 s input is decoded in windows as transformers seeks: a window that ends on a pair of
//!   timestamps is decoded again from its last timestamp; audio longer than 30 s is long-form
//!   (the same windows over the whole log-mel) unless `chunk_length_s` cuts it into overlapping
//!   chunks whose tokens are merged (`asr::chunk_audio`, `asr::decode`);
//! - `return_timestamps: true` gives segment chunks, `"word"` word chunks from the alignment
//!   heads' cross-attention (`asr::words`).

use std::cell::RefCell;
use std::rc::Rc;

use serde_json::{Value, json};

use super::asr::decode::{self, AsrDecoder, ChunkTokens, Timestamps, Vocab};
use super::asr::prompt::WhisperGenerationConfig;
use super::asr::timestamps::TimestampRules;
use super::asr::{self, words};
use super::{Event, Input, InputKind, LoadOptions, LocalFuture, OneOrMany, Output, Pipeline, TaskInfo};
use crate::audio::{RawAudio, WhisperFeatureExtractor};
use crate::files::ModelFiles;
use crate::generation::processors::{SuppressTokens, SuppressTokensAtBegin};
use crate::generation::{self, GenerationConfig, Interrupt, LogitsProcessor, Step, Streamer};
use crate::models::auto::{AutoModel, LoadedModel};
use crate::models::{self, SpeechSeq2SeqModel};
use crate::tokenizer::Tokenizer;
use crate::weights::Weights;
use crate::{Device, Error, Result};

pub static TASK: TaskInfo = TaskInfo {
    name: "automatic-speech-recognition",
    aliases: &["asr"],
    default_model: "Xenova/whisper-tiny.en",
    input: InputKind::Audio,
    required_files: &["config.json", "tokenizer.json"],
    optional_files: &["preprocessor_config.json", "generation_config.json"],
    load: |files, device, options| Ok(Box::new(AutomaticSpeechRecognition::load(files, device, options)?)),
};

/// The call's options, named as transformers.js (and Python's pipeline) name them.
#[derive(serde::Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
struct CallOptions {
    language: Option<String>,
    task: Option<String>,
    /// true, false or "word" (checked by `timestamps`, to name it in errors).
    return_timestamps: Option<Value>,
    return_language: Option<bool>,
    chunk_length_s: Option<f64>,
    /// Seconds, or [left, right] (checked by `strides`).
    stride_length_s: Option<Value>,
    max_new_tokens: Option<usize>,
    do_sample: Option<bool>,
    temperature: Option<f32>,
    top_k: Option<usize>,
    top_p: Option<f32>,
    seed: Option<u64>,
    num_beams: Option<usize>,
    /// transformers.js accepts it and ignores it for Whisper; so do we.
    #[allow(dead_code)]
    force_full_sequences: Option<bool>,
}

impl CallOptions {
    fn timestamps(&self, config_default: bool) -> Result<Timestamps> {
        match &self.return_timestamps {
            None | Some(Value::Null) | Some(Value::Bool(false)) => Ok(if config_default { Timestamps::Segments } else { Timestamps::None }),
            Some(Value::Bool(true)) => Ok(Timestamps::Segments),
            Some(Value::String(k)) if k == "word" => Ok(Timestamps::Words),
            Some(other) => {
                Err(Error::Input(format!("return_timestamps must be true, false or \"word\" (Whisper has no {other} timestamps)")))
            }
        }
    }

    /// `stride_length_s` as [left, right] seconds.
    fn strides(&self) -> Result<Option<[f64; 2]>> {
        let bad = || {
            Error::Input(format!(
                "stride_length_s must be seconds or [left, right] seconds, not {}",
                self.stride_length_s.as_ref().unwrap_or(&Value::Null)
            ))
        };
        match &self.stride_length_s {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n.as_f64().map(|s| Some([s, s])).ok_or_else(bad),
            Some(Value::Array(a)) if a.len() == 2 => match (a[0].as_f64(), a[1].as_f64()) {
                (Some(l), Some(r)) => Ok(Some([l, r])),
                _ => Err(bad()),
            },
            Some(_) => Err(bad()),
        }
    }
}

pub struct AutomaticSpeechRecognition {
    model: Rc<dyn SpeechSeq2SeqModel>,
    /// config.json, for `auto_model`.
    model_config: models::ModelConfig,
    tokenizer: Tokenizer,
    features: WhisperFeatureExtractor,
    generation: WhisperGenerationConfig,
    median_filter_width: usize,
    /// The first timestamp token, or past the vocabulary when the model has none.
    timestamp_begin: u32,
    eos: u32,
    startofprev: Option<u32>,
    /// Set by `call("interrupt")` (JS: an AbortSignal, InterruptableStoppingCriteria): the window
    /// being decoded stops after its current token, and no further window starts.
    interrupt: Interrupt,
    device: Device,
}

impl AutomaticSpeechRecognition {
    /// From a Hugging Face Whisper folder: config.json, model.safetensors, tokenizer.json,
    /// preprocessor_config.json and generation_config.json (both optional).
    pub fn load(files: &dyn ModelFiles, device: &Device, options: &LoadOptions) -> Result<Self> {
        let config = files.json("config.json")?.ok_or_else(|| Error::file(files.name(), "is not a model: it has no config.json"))?;
        let model_config = models::ModelConfig::from_json(files.name(), config.clone())?;
        let vb = Weights::new(files.weights(device)?, device, options.dtype);
        let model: Rc<dyn SpeechSeq2SeqModel> = models::load_speech_seq2seq(&model_config, &vb)?.into();
        let tokenizer = Tokenizer::for_generation_from_files(files)?;
        let features = WhisperFeatureExtractor::from_config(&files.json("preprocessor_config.json")?.unwrap_or(Value::Null))?;
        if features.feature_size != model.num_mel_bins() {
            return Err(Error::Config(format!(
                "{}: preprocessor_config.json gives {} mel bins, the model takes {}",
                files.name(),
                features.feature_size,
                model.num_mel_bins()
            )));
        }
        let generation_json = files.json("generation_config.json")?.unwrap_or(Value::Null);
        let generation = WhisperGenerationConfig::from_json(&generation_json, &|t| tokenizer.token_to_id(t))?;
        let eos = generation.eos_token_ids.first().copied().or_else(|| tokenizer.token_to_id("<|endoftext|>")).ok_or_else(|| {
            Error::Config(format!("{}: no end token (generation_config.json eos_token_id or <|endoftext|>)", files.name()))
        })?;
        let timestamp_begin = generation.timestamp_begin().unwrap_or(model.vocab_size() as u32 + 1);
        Ok(AutomaticSpeechRecognition {
            median_filter_width: config["median_filter_width"].as_u64().unwrap_or(7) as usize,
            startofprev: tokenizer.token_to_id("<|startofprev|>"),
            model,
            model_config,
            tokenizer,
            features,
            generation,
            timestamp_begin,
            eos,
            interrupt: Interrupt::new(),
            device: device.clone(),
        })
    }

    fn vocab<'a>(&'a self, token: &'a dyn Fn(u32) -> Option<String>, decode: &'a dyn Fn(&[u32]) -> Result<String>) -> Vocab<'a> {
        Vocab {
            eos: self.eos,
            timestamp_begin: self.timestamp_begin,
            startofprev: self.startofprev,
            startoftranscript: Some(self.generation.decoder_start_token_id),
            token,
            decode,
        }
    }

    /// One audio's `{text}` / `{text, chunks}`. Its events go to `sink`: the text as it becomes
    /// final and the segments' times (from the same decoder that makes the result), each step's
    /// tokens, and progress after every window or chunk (`done_before` seconds of earlier audios
    /// of the call, of `total_s`).
    async fn transcribe(&self, audio: &RawAudio, options: &CallOptions, sink: &Sink<'_>, done_before: f64, total_s: f64) -> Result<Value> {
        let sr = self.features.sampling_rate;
        if audio.samples.is_empty() {
            return Err(Error::Input("the audio is empty: there is nothing to transcribe".into()));
        }
        if audio.samples.iter().any(|x| !x.is_finite()) {
            return Err(Error::Input("the audio has samples that are not finite numbers".into()));
        }
        let timestamps = options.timestamps(self.generation.return_timestamps)?;
        if timestamps != Timestamps::None && self.generation.no_timestamps_token_id.is_none() {
            return Err(Error::Input(
                "this model's generation_config.json has no no_timestamps_token_id: it cannot return timestamps".into(),
            ));
        }
        if timestamps == Timestamps::Words && self.generation.alignment_heads.is_empty() {
            return Err(Error::Input(
                "this model's generation_config.json has no alignment_heads: word timestamps are not available".into(),
            ));
        }
        let token = |t: u32| self.tokenizer.id_to_token(t);
        let decode = |ids: &[u32]| self.tokenizer.decode(ids, false);
        let vocab = self.vocab(&token, &decode);
        let mut to_sink = |e: Event<'_>| (*sink.borrow_mut())(e);
        let mut decoder = AsrDecoder::new(&vocab, timestamps, options.return_language.unwrap_or(false), &mut to_sink);
        let samples = audio.samples.len();
        let progress = |done_samples: usize| {
            let done = done_samples.min(samples) as f64 / sr as f64;
            (*sink.borrow_mut())(Event::Progress { done: done_before + done, total: total_s, unit: "s" })
        };
        match options.chunk_length_s {
            Some(chunk_s) if chunk_s != 0.0 => {
                // Overlapping chunks: a chunk's tokens are merged with its neighbours', so the
                // decoder streams each chunk's settled part once the chunk is decoded.
                let stride = options.strides()?;
                for c in asr::chunk_audio(samples, sr, chunk_s, stride)? {
                    if self.interrupt.is_set() {
                        break;
                    }
                    let features = self.features.extract(&audio.samples[c.start..c.end])?;
                    let frames = features.len() / self.features.feature_size;
                    // the extractor's attention mask: a frame per hop of real samples
                    let num_frames = (c.end - c.start).div_ceil(self.features.hop_length).min(frames);
                    let mut out =
                        self.generate_windows(&features, frames, num_frames, options, timestamps, sink, None, &mut |_| {}).await?;
                    out.stride =
                        Some(((c.end - c.start) as f64 / sr as f64, c.stride_left as f64 / sr as f64, c.stride_right as f64 / sr as f64));
                    decoder.push_output(&out)?;
                    progress(c.end);
                }
            }
            _ => {
                let (features, frames) = if samples > self.features.n_samples {
                    // long-form: the log-mel of the whole audio, decoded window by window
                    self.features.extract_unpadded(&audio.samples)?
                } else {
                    let f = self.features.extract(&audio.samples)?;
                    let frames = f.len() / self.features.feature_size;
                    (f, frames)
                };
                let num_frames = samples.div_ceil(self.features.hop_length).min(frames);
                let hop = self.features.hop_length;
                decoder.begin_output(None, &[]);
                self.generate_windows(&features, frames, num_frames, options, timestamps, sink, Some(&mut decoder), &mut |seek| {
                    progress(seek * hop)
                })
                .await?;
                decoder.end_output()?;
            }
        }
        let (text, chunks) = decoder.finish()?;
        Ok(match chunks {
            Some(chunks) => json!({ "text": text, "chunks": chunks }),
            None => json!({ "text": text }),
        })
    }

    /// One generate() call of transformers' Whisper: windows of 3000 frames from `seek`, each
    /// decoded from the same prompt, until the log-mel's end. With `live`, the tokens that each
    /// window keeps go to that decoder as soon as they are final (word timestamps: once the
    /// window's times are known) and the returned tokens are empty; `on_window(seek)` follows
    /// every window.
    #[allow(clippy::too_many_arguments)]
    async fn generate_windows(
        &self,
        features: &[f32],
        total_frames: usize,
        num_frames: usize,
        options: &CallOptions,
        timestamps: Timestamps,
        sink: &Sink<'_>,
        mut live: Option<&mut AsrDecoder<'_, '_>>,
        on_window: &mut dyn FnMut(usize),
    ) -> Result<ChunkTokens> {
        let n_mels = self.features.feature_size;
        let window = self.features.nb_max_frames;
        let words = timestamps == Timestamps::Words;
        let mut out = ChunkTokens { token_timestamps: words.then(Vec::new), ..ChunkTokens::default() };
        let mut seek = 0usize;
        let mut prompt: Option<Vec<u32>> = None;
        while seek < total_frames && !self.interrupt.is_set() {
            let window_frames = window.min(total_frames - seek);
            // [n_mels, window], zeros past the audio's end
            let mut segment = vec![0f32; n_mels * window];
            for m in 0..n_mels {
                segment[m * window..m * window + window_frames].copy_from_slice(&features[m * total_frames + seek..][..window_frames]);
            }
            let encoded = self.model.encode(&segment)?;
            let prompt = match &prompt {
                Some(p) => p.clone(),
                None => {
                    let language = options.language.as_deref();
                    let task = options.task.as_deref();
                    let detected = if self.generation.needs_language_detection(language, task) {
                        Some(self.detect_language(&encoded).await?)
                    } else {
                        None
                    };
                    let p = self.generation.init_tokens(language, task, timestamps != Timestamps::None, detected)?;
                    prompt = Some(p.clone());
                    p
                }
            };
            // The first window of a short-form input keeps the decoder prompt before its tokens
            // (its language token is what `return_language` reports); every other window adds its
            // tokens alone, as transformers concatenates its segments: a prompt between two
            // windows would hide their timestamp pair from `decode_asr`'s test for a window
            // ending on a single timestamp, and offset the later times by a whole window.
            let from = if total_frames <= window && seek == 0 { 0 } else { prompt.len() };
            // Token by token, the decoder may take a window's tokens up to its latest timestamp
            // (a window keeps every timestamp it makes; only text after its last timestamp pair
            // can be dropped and decoded again), or all of them without timestamps.
            let per_token = live.is_some() && !words;
            if let Some(d) = live.as_deref_mut().filter(|_| per_token) {
                for &t in &prompt[from..] {
                    d.push(t, 0.0)?;
                }
            }
            let mut streamer = WindowStreamer {
                sink,
                decoder: live.as_deref_mut().filter(|_| per_token),
                pending: Vec::new(),
                hold_text: timestamps != Timestamps::None,
                timestamp_begin: self.timestamp_begin,
                eos: self.eos,
            };
            let (mut tokens, times) =
                self.generate_window(&encoded, &prompt, options, timestamps, num_frames.saturating_sub(seek), &mut streamer).await?;
            let pending = std::mem::take(&mut streamer.pending);
            if tokens.last().is_some_and(|t| self.generation.eos_token_ids.contains(t)) {
                tokens.pop();
            }
            let r = asr::retrieve_segment(&tokens, self.timestamp_begin, window_frames);
            let time_offset = seek as f64 * decode::TIME_PRECISION / 2.0;
            // per token of the window, shifted by its start (in f32, as transformers adds them)
            let shifted = |times: &[f64]| times.iter().map(|&t| (t as f32 + time_offset as f32) as f64).collect::<Vec<f64>>();
            match (live.as_deref_mut(), per_token) {
                (Some(d), true) => {
                    // the held-back text the window keeps (none when it ends inside a segment)
                    let pushed = tokens.len().saturating_sub(pending.len());
                    for &t in pending.iter().take(r.keep.saturating_sub(pushed)) {
                        d.push(t, 0.0)?;
                    }
                }
                (Some(d), false) => {
                    let times = shifted(&times.unwrap_or_default()[from..prompt.len() + r.keep]);
                    for (&t, &time) in prompt[from..].iter().chain(&tokens[..r.keep]).zip(&times) {
                        d.push(t, time)?;
                    }
                }
                (None, _) => {
                    if let (Some(all), Some(times)) = (out.token_timestamps.as_mut(), times) {
                        all.extend(shifted(&times[from..prompt.len() + r.keep]));
                    }
                    out.tokens.extend_from_slice(&prompt[from..]);
                    out.tokens.extend_from_slice(&tokens[..r.keep]);
                }
            }
            // a window that would not advance (a pair at 0.00) ends the input rather than loop
            seek += if r.advance == 0 { window_frames } else { r.advance };
            on_window(seek.min(num_frames));
        }
        Ok(out)
    }

    /// transformers' `detect_language`: the most likely language token after
    /// `<|startoftranscript|>`.
    async fn detect_language(&self, encoded: &crate::Tensor) -> Result<u32> {
        let mut cache = self.model.new_cache(encoded, 1)?;
        let logits = self.model.decode(&[self.generation.decoder_start_token_id], &mut cache, false)?.to_vec_f32().await?;
        self.generation.detect_language(&logits)
    }

    /// One window's generation: its tokens (end token included) and, for word timestamps, the
    /// per-token times of prompt + generated tokens.
    async fn generate_window(
        &self,
        encoded: &crate::Tensor,
        prompt: &[u32],
        options: &CallOptions,
        timestamps: Timestamps,
        num_frames: usize,
        streamer: &mut dyn Streamer,
    ) -> Result<(Vec<u32>, Option<Vec<f64>>)> {
        let max_positions = self.model.max_target_positions();
        let max_new = match options.max_new_tokens {
            Some(0) => return Err(Error::Input("max_new_tokens must be at least 1".into())),
            Some(n) if n + prompt.len() > max_positions => {
                return Err(Error::Input(format!(
                    "max_new_tokens {n} plus the {}-token prompt exceeds the model's {max_positions} target positions",
                    prompt.len()
                )));
            }
            Some(n) => n,
            None => self.generation.max_length.unwrap_or(max_positions).min(max_positions).saturating_sub(prompt.len()).max(1),
        };
        let config = GenerationConfig {
            max_new_tokens: max_new,
            do_sample: options.do_sample.unwrap_or(false),
            temperature: options.temperature.unwrap_or(1.0),
            top_k: options.top_k.unwrap_or(50),
            top_p: options.top_p.unwrap_or(1.0),
            seed: options.seed.unwrap_or(0),
            eos_token_ids: self.generation.eos_token_ids.clone(),
            num_beams: options.num_beams.unwrap_or(1),
            ..GenerationConfig::default()
        };
        config.validate()?;
        if config.num_beams > 1 && timestamps != Timestamps::None {
            return Err(Error::Unsupported(format!(
                "num_beams {} with return_timestamps: beam search decodes without timestamps only",
                config.num_beams
            )));
        }
        // transformers' order: begin-suppress, suppress, timestamp rules, then the sampling warpers
        let mut processors: Vec<Box<dyn LogitsProcessor>> = Vec::new();
        if !self.generation.begin_suppress_tokens.is_empty() {
            processors.push(Box::new(SuppressTokensAtBegin { tokens: self.generation.begin_suppress_tokens.clone(), begin_index: None }));
        }
        if !self.generation.suppress_tokens.is_empty() {
            processors.push(Box::new(SuppressTokens { tokens: self.generation.suppress_tokens.clone() }));
        }
        if timestamps != Timestamps::None {
            let no_ts = self.generation.no_timestamps_token_id.expect("checked by transcribe");
            processors.push(Box::new(TimestampProcessor(TimestampRules {
                no_timestamps_token_id: no_ts,
                eos_token_id: self.eos,
                begin_index: prompt.len(),
                max_initial_timestamp_index: self.generation.max_initial_timestamp_index,
            })));
        }
        processors.extend(generation::processors_for(&config));
        if config.num_beams > 1 {
            // transformers' Whisper generate with beams: the best sequence, EOS included.
            let cache = self.model.new_cache(encoded, prompt.len() + max_new)?;
            let mut beams = crate::models::beams::EncoderDecoderBeams::new(self.model.as_ref(), cache);
            let best = generation::beam_search(&mut beams, prompt, &config, &mut processors, Some(streamer), &self.interrupt).await?;
            return Ok((best.into_iter().next().map(|h| h.token_ids).unwrap_or_default(), None));
        }
        let mut cache = self.model.new_cache(encoded, prompt.len() + max_new)?;
        let heads = &self.generation.alignment_heads;
        let words = timestamps == Timestamps::Words;
        let mut attentions: Vec<crate::Tensor> = Vec::new();
        let mut step = |ids: &[u32]| -> Result<crate::Tensor> {
            if words {
                let (logits, att) = self.model.decode_with_cross_attentions(ids, &mut cache, heads)?;
                attentions.push(att);
                Ok(logits)
            } else {
                self.model.decode(ids, &mut cache, false)
            }
        };
        let generated = generation::generate(&mut step, prompt, &config, &mut processors, Some(streamer), &self.interrupt).await?;
        let tokens = generated.token_ids;
        let times = if words {
            let s = self.model_frames();
            // Every step's alignment-head rows, read in one realization straight into the
            // [heads, rows, frames] table the alignment needs (they live for one window only).
            let rows: usize = attentions.iter().map(|a| a.dims().get(1).copied().unwrap_or(0)).sum();
            let mut all = vec![0f32; heads.len() * rows * s];
            let as_f32 = attentions.iter().map(|a| a.to_dtype(crate::DType::F32)).collect::<Result<Vec<_>>>()?;
            drop(attentions);
            let mut row0 = 0;
            for data in crate::Tensor::read_all(&as_f32.iter().collect::<Vec<_>>()).await? {
                let crate::HostData::F32(w) = data else {
                    return Err(Error::dtype("word timestamps", "cross-attention weights read back as integers"));
                };
                let t = w.len() / (heads.len() * s);
                for h in 0..heads.len() {
                    all[(h * rows + row0) * s..][..t * s].copy_from_slice(&w[h * t * s..][..t * s]);
                }
                row0 += t;
            }
            Some(words::token_timestamps(&all, heads.len(), rows, s, prompt.len(), Some(num_frames), self.median_filter_width)?)
        } else {
            None
        };
        Ok((tokens, times))
    }

    /// The encoder's output frames (half the log-mel window).
    fn model_frames(&self) -> usize {
        self.features.nb_max_frames / 2
    }
}

/// A wrong type for a known option is an error naming it (serde's own message does not).
fn check_option_types(options: &Value) -> Result<()> {
    let Value::Object(o) = options else { return Ok(()) };
    for (key, value) in o {
        let expected = match key.as_str() {
            "chunk_length_s" | "temperature" | "top_p" => ("a number", value.is_number()),
            "max_new_tokens" | "top_k" | "seed" | "num_beams" => ("a whole number", value.is_u64()),
            "language" | "task" => ("a string", value.is_string()),
            "do_sample" | "return_language" | "force_full_sequences" => ("a boolean", value.is_boolean()),
            _ => continue,
        };
        if !value.is_null() && !expected.1 {
            return Err(Error::Input(format!("{} option `{key}` must be {}, not {value}", TASK.name, expected.0)));
        }
    }
    Ok(())
}

/// The timestamp rules as a generation logits processor (they need the logits on the host).
struct TimestampProcessor(TimestampRules);

impl LogitsProcessor for TimestampProcessor {
    fn process(&mut self, step: &Step, logits: &mut [f32]) -> Result<()> {
        self.0.apply(step.ids, logits);
        Ok(())
    }
}

/// Where a call's events go (shared by the decoder, the window streamers and progress).
type Sink<'s> = RefCell<&'s mut dyn FnMut(Event<'_>)>;

/// One window's streamer: reports each step's ids, and hands the decoder the tokens that are
/// final as they come (with timestamps, text is held until a timestamp follows it).
struct WindowStreamer<'s, 't, 'a, 'v, 'e> {
    sink: &'s Sink<'t>,
    decoder: Option<&'a mut AsrDecoder<'v, 'e>>,
    /// Generated tokens not yet given to the decoder (the end token is never given).
    pending: Vec<u32>,
    hold_text: bool,
    timestamp_begin: u32,
    eos: u32,
}

impl Streamer for WindowStreamer<'_, '_, '_, '_, '_> {
    fn put(&mut self, ids: &[u32]) -> Result<()> {
        (*self.sink.borrow_mut())(Event::Tokens(ids));
        let Some(decoder) = self.decoder.as_deref_mut() else { return Ok(()) };
        for &t in ids.iter().filter(|&&t| t != self.eos) {
            self.pending.push(t);
            if !self.hold_text || t >= self.timestamp_begin {
                for t in self.pending.drain(..) {
                    decoder.push(t, 0.0)?;
                }
            }
        }
        Ok(())
    }
    fn end(&mut self) -> Result<()> {
        Ok(())
    }
}

impl Pipeline for AutomaticSpeechRecognition {
    fn task(&self) -> &'static TaskInfo {
        &TASK
    }

    fn device(&self) -> &Device {
        &self.device
    }

    /// One audio gives `{text[, chunks]}`; an array of audios an array of those.
    fn run<'a>(&'a self, input: Input<'a>, options: &'a Value, events: &'a mut dyn FnMut(Event<'_>)) -> LocalFuture<'a, Result<Output>> {
        Box::pin(async move {
            check_option_types(options)?;
            let options: CallOptions = TASK.options(options)?;
            let audios = input.audios(self.features.sampling_rate)?;
            let sr = self.features.sampling_rate as f64;
            let seconds = |a: &RawAudio| a.samples.len() as f64 / sr;
            let sink: Sink = RefCell::new(events);
            Ok(Output::Json(match audios {
                OneOrMany::One(a) => self.transcribe(&a, &options, &sink, 0.0, seconds(&a)).await?,
                OneOrMany::Many(list) => {
                    // progress counts the seconds of every audio of the call
                    let total: f64 = list.iter().map(seconds).sum();
                    let mut all = Vec::with_capacity(list.len());
                    let mut done = 0.0;
                    for a in &list {
                        all.push(self.transcribe(a, &options, &sink, done, total).await?);
                        done += seconds(a);
                    }
                    Value::Array(all)
                }
            }))
        })
    }

    fn interrupt_flag(&self) -> Option<crate::generation::Interrupt> {
        Some(self.interrupt.clone())
    }

    fn call(&self, method: &str, _args: &Value) -> Result<Value> {
        super::interrupt_method(&self.interrupt, method)
            .ok_or_else(|| Error::Unsupported(format!("automatic-speech-recognition has no method `{method}`")))
    }

    /// `AutoModelForSpeechSeq2Seq` over this pipeline's weights and generation settings.
    fn auto_model(&self) -> Result<AutoModel> {
        let loaded = LoadedModel::SpeechSeq2Seq { model: self.model.clone(), generation: self.generation.clone() };
        Ok(AutoModel::sharing(loaded, self.model_config.clone(), &self.device))
    }

    fn info(&self) -> Value {
        json!({
            "sampling_rate": self.features.sampling_rate,
            "num_mel_bins": self.features.feature_size,
            "multilingual": !self.generation.lang_to_id.is_empty(),
            "vocab_size": self.model.vocab_size(),
        })
    }
}
