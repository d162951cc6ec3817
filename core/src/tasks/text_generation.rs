//! text-generation: a prompt (or a chat) in, new text out, streamed as it is generated.
//! Greedy decoding by default, as in transformers. The loop, the logits processors and the
//! stopping criteria are the generation library's (`crate::generation`); this file turns the
//! prompt into ids, drives `generate` with the decoder's KV cache, and shapes the result.

use std::rc::Rc;

use crate::chat::{ChatOptions, ChatTemplate, Message};
use crate::files::ModelFiles;
use crate::generation::{self, GenerationConfig, Interrupt, TextStreamer};
use crate::models::auto::{AutoModel, LoadedModel};
use crate::models::{self, DecoderModel, KvCache};
use crate::tokenizer::Tokenizer;
use crate::weights::Weights;
use crate::{Device, Error, Result};

use serde_json::Value;

use super::{Input, InputKind, LoadOptions, LocalFuture, Output, Pipeline, TaskInfo};

pub static TASK: TaskInfo = TaskInfo {
    name: "text-generation",
    aliases: &[],
    default_model: "HuggingFaceTB/SmolLM2-135M-Instruct",
    input: InputKind::TextOrChat,
    required_files: &["config.json", "tokenizer.json"],
    optional_files: &["tokenizer_config.json", "generation_config.json"],
    load: |files, device, options| Ok(Box::new(TextGeneration::load(files, device, options)?)),
};

/// The call's own options besides the generation ones (`GenerationConfig::take_options`:
/// max_new_tokens, do_sample, temperature, top_k, top_p, repetition_penalty, seed, stop, ...).
#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct CallOptions {
    /// The prompt before the new text (transformers' default), or the new text alone.
    return_full_text: Option<bool>,
    /// Continue from the KV cache the pipeline kept from its last call where this prompt extends
    /// that call's prompt and reply (default true); false computes the whole prompt and keeps
    /// no cache.
    reuse_cache: Option<bool>,
    /// The most device memory the kept cache may hold, in bytes (default `KEPT_CACHE_BYTES`);
    /// a larger one is dropped after the call.
    max_cache_bytes: Option<usize>,
    /// A messages prompt: tool definitions (JSON schemas) for the chat template.
    tools: Option<Value>,
    /// A messages prompt: documents for the chat template.
    documents: Option<Value>,
    /// A messages prompt: end the rendered chat where the assistant's reply begins (default true).
    add_generation_prompt: Option<bool>,
    /// A messages prompt: this template instead of the model's.
    chat_template: Option<String>,
    /// A messages prompt: further template variables (`{"enable_thinking": false}`).
    chat_template_kwargs: Option<Value>,
}

impl CallOptions {
    /// The chat options these call options give (an error naming a mistyped one).
    fn chat(&self) -> Result<ChatRequestOptions> {
        chat_request_options(
            self.tools.as_ref(),
            self.documents.as_ref(),
            self.add_generation_prompt,
            self.chat_template.clone(),
            self.chat_template_kwargs.as_ref(),
        )
    }

    /// Whether any chat option was given (they need a messages prompt).
    fn has_chat_options(&self) -> bool {
        self.tools.is_some()
            || self.documents.is_some()
            || self.add_generation_prompt.is_some()
            || self.chat_template.is_some()
            || self.chat_template_kwargs.is_some()
    }
}

/// A chat's rendering options and template override.
#[derive(Clone, Debug, Default)]
pub struct ChatRequestOptions {
    pub options: ChatOptions,
    /// A template instead of the model's (`chat_template`).
    pub template: Option<String>,
}

/// `apply_chat_template`'s arguments, checked: tools and documents are lists of objects,
/// `chat_template_kwargs` an object. The generation prompt is on unless `add_generation_prompt`
/// is false.
fn chat_request_options(
    tools: Option<&Value>,
    documents: Option<&Value>,
    add_generation_prompt: Option<bool>,
    template: Option<String>,
    kwargs: Option<&Value>,
) -> Result<ChatRequestOptions> {
    let list_of_objects = |name: &str, v: Option<&Value>| -> Result<Option<Value>> {
        match v {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(list)) if list.iter().all(Value::is_object) => Ok(Some(Value::Array(list.clone()))),
            Some(other) => Err(Error::Input(format!("`{name}` must be an array of objects, not {other}"))),
        }
    };
    let extra = match kwargs {
        None | Some(Value::Null) => serde_json::Map::new(),
        Some(Value::Object(map)) => map.clone(),
        Some(other) => return Err(Error::Input(format!("`chat_template_kwargs` must be an object of template variables, not {other}"))),
    };
    Ok(ChatRequestOptions {
        options: ChatOptions {
            add_generation_prompt: add_generation_prompt.unwrap_or(true),
            tools: list_of_objects("tools", tools)?,
            documents: list_of_objects("documents", documents)?,
            extra,
        },
        template,
    })
}

/// The object form of the `apply_chat_template` method's argument.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ChatTemplateArgs {
    messages: Vec<serde_json::Map<String, Value>>,
    tools: Option<Value>,
    documents: Option<Value>,
    add_generation_prompt: Option<bool>,
    chat_template: Option<String>,
    chat_template_kwargs: Option<Value>,
}

/// The default bound on the KV cache a pipeline keeps between calls (`CallOptions::max_cache_bytes`).
pub const KEPT_CACHE_BYTES: usize = 256 << 20;

/// The KV cache of a pipeline's last generation, kept for the next call (multi-turn chat).
struct KeptCache {
    cache: KvCache,
    /// The ids whose keys and values the cache holds (its first `cache.len()` positions).
    ids: Vec<u32>,
}

/// What a generation does besides its `GenerationConfig`.
#[derive(Clone, Copy, Debug)]
pub struct RunSettings {
    /// Continue from the kept cache where the prompt extends its ids.
    pub reuse: bool,
    /// Keep this generation's cache when it holds at most this many bytes (0: keep none).
    pub keep_bytes: usize,
    /// Stop at the model's EOS ids too, besides the config's: true, unless the call gave its own
    /// `eos_token_id`, which replaces the model's (as in transformers).
    pub model_eos: bool,
}

impl Default for RunSettings {
    fn default() -> RunSettings {
        RunSettings { reuse: true, keep_bytes: KEPT_CACHE_BYTES, model_eos: true }
    }
}

/// A prompt as the call gives it: text or a chat.
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum PromptInput {
    Text(String),
    /// Objects (an array of strings is several text prompts).
    Chat(Vec<serde_json::Map<String, Value>>),
}

#[derive(serde::Deserialize)]
#[serde(untagged)]
enum PromptInputs {
    One(PromptInput),
    Many(Vec<PromptInput>),
}

const PROMPT_KINDS: &str = "a string, a messages array ({role, content}[]), or an array of those";

impl TextGeneration {
    /// One prompt's `[{generated_text, stats}]` as transformers.js shapes it: the text (after the
    /// prompt unless `return_full_text` is false), or the chat with the reply appended; one
    /// entry per returned sequence (beam search's `num_return_sequences`, best first).
    async fn generate_one(
        &self,
        input: &PromptInput,
        config: &GenerationConfig,
        options: &CallOptions,
        eos_given: bool,
        events: &mut dyn FnMut(super::Event<'_>),
    ) -> Result<Value> {
        let prompt = match input {
            PromptInput::Text(_) if options.has_chat_options() => {
                return Err(Error::Input(
                    "tools, documents, add_generation_prompt, chat_template and chat_template_kwargs apply to a messages prompt, not text"
                        .into(),
                ));
            }
            PromptInput::Text(t) => Prompt::Text(t.clone()),
            PromptInput::Chat(m) if m.is_empty() => return Err(Error::Input("the messages array is empty".into())),
            PromptInput::Chat(m) => Prompt::Messages(m.iter().cloned().map(Value::Object).collect(), options.chat()?),
        };
        let settings = RunSettings {
            reuse: options.reuse_cache.unwrap_or(true),
            keep_bytes: if options.reuse_cache == Some(false) { 0 } else { options.max_cache_bytes.unwrap_or(KEPT_CACHE_BYTES) },
            model_eos: !eos_given,
        };
        let outs = if config.num_beams > 1 {
            self.generate_beams(&prompt, config, settings.model_eos, |t| events(super::Event::Text(t))).await?
        } else {
            let mut outs = Vec::new();
            for i in 0..config.sampled_sequences() {
                outs.push(self.generate_cached(&prompt, &config.for_sequence(i), settings, events).await?);
                if outs.last().is_some_and(|o| o.stop_reason == StopReason::Interrupted) {
                    break;
                }
            }
            outs
        };
        outs.iter().map(|out| self.shape(input, options, out)).collect::<Result<Vec<_>>>().map(Value::Array)
    }

    /// One sequence's `{generated_text, stats}`.
    fn shape(&self, input: &PromptInput, options: &CallOptions, out: &Generated) -> Result<Value> {
        let generated_text = match input {
            PromptInput::Chat(messages) => {
                let mut chat: Vec<Value> = messages.iter().cloned().map(Value::Object).collect();
                chat.push(serde_json::json!({ "role": "assistant", "content": out.text }));
                Value::Array(chat)
            }
            PromptInput::Text(t) if options.return_full_text.unwrap_or(true) => Value::String(format!("{t}{}", out.text)),
            PromptInput::Text(_) => Value::String(out.text.clone()),
        };
        Ok(serde_json::json!({ "generated_text": generated_text, "stats": out.stats() }))
    }
}

impl Generated {
    /// The result's `stats`: the prompt's tokens (those continued from the kept cache among
    /// them), the new ones, why generation stopped, and the times (time to first token: the
    /// prompt's forward pass; tokens per second: after the first token).
    pub fn stats(&self) -> Value {
        let after_first = self.token_ids.len().saturating_sub(1);
        let tokens_per_second = if after_first > 0 && self.decode_seconds > 0.0 { after_first as f64 / self.decode_seconds } else { 0.0 };
        serde_json::json!({
            "prompt_tokens": self.prompt_tokens,
            "prompt_tokens_reused": self.prompt_tokens_reused,
            "new_tokens": self.token_ids.len(),
            "token_ids": self.token_ids,
            "stop_reason": self.stop_reason.name(),
            "prefill_seconds": self.prefill_seconds,
            "decode_seconds": self.decode_seconds,
            "time_to_first_token": self.prefill_seconds,
            "tokens_per_second": tokens_per_second,
        })
    }
}

impl Pipeline for TextGeneration {
    fn auto_model(&self) -> Result<AutoModel> {
        let config = self.model_config.clone().ok_or_else(|| {
            Error::Unsupported(
                "text-generation over a decoder built from parts: it has no config, so no model class is made over it".into(),
            )
        })?;
        let loaded = LoadedModel::Decoder { model: self.model.clone(), generation: self.config.clone() };
        Ok(AutoModel::sharing(loaded, config, &self.device))
    }
    fn task(&self) -> &'static TaskInfo {
        &TASK
    }

    fn device(&self) -> &Device {
        &self.device
    }

    /// A prompt gives `[{generated_text, stats}]`; an array of prompts one such array each.
    fn run<'a>(
        &'a self,
        input: Input<'a>,
        options: &'a Value,
        events: &'a mut dyn FnMut(super::Event<'_>),
    ) -> LocalFuture<'a, Result<Output>> {
        let input = input.value;
        Box::pin(async move {
            let inputs: PromptInputs = TASK.input(input, PROMPT_KINDS)?;
            let mut config = self.config.clone();
            let rest = config.take_options(TASK.name, options)?;
            // The call's EOS ids replace the model's, as in transformers.
            let eos_given = options.get("eos_token_id").is_some_and(|v| !v.is_null());
            let options: CallOptions = TASK.options(&rest).map_err(|e| match e {
                // serde lists only this task's own options; name the generation ones too.
                Error::Input(m) if m.contains("unknown field") => {
                    Error::Input(format!("{m}, or a generation option ({})", generation::OPTION_NAMES.join(", ")))
                }
                e => e,
            })?;
            Ok(Output::Json(match inputs {
                PromptInputs::One(one) => self.generate_one(&one, &config, &options, eos_given, events).await?,
                PromptInputs::Many(many) => {
                    let mut all = Vec::with_capacity(many.len());
                    for one in &many {
                        all.push(self.generate_one(one, &config, &options, eos_given, events).await?);
                    }
                    Value::Array(all)
                }
            }))
        })
    }

    fn info(&self) -> Value {
        serde_json::json!({ "vocab_size": self.model.vocab_size(), "max_context": self.model.max_context(), "chat_template": self.template.is_some() })
    }

    fn interrupt_flag(&self) -> Option<crate::generation::Interrupt> {
        Some(self.interrupt.clone())
    }

    fn call(&self, method: &str, args: &Value) -> Result<Value> {
        match method {
            // transformers.js's tokenizer.apply_chat_template(messages, {tokenize: false}).
            // Or `{messages, tools, documents, add_generation_prompt, chat_template,
            // chat_template_kwargs}`, as the call's options take them.
            "apply_chat_template" => {
                let (messages, chat) = match args {
                    Value::Object(_) => {
                        let a: ChatTemplateArgs =
                            serde_json::from_value(args.clone()).map_err(|e| Error::Input(format!("apply_chat_template: {e}")))?;
                        let chat = chat_request_options(
                            a.tools.as_ref(),
                            a.documents.as_ref(),
                            a.add_generation_prompt,
                            a.chat_template,
                            a.chat_template_kwargs.as_ref(),
                        )?;
                        (a.messages, chat)
                    }
                    _ => (
                        TASK.input(args, "a messages array ({role, content}[]) or {messages, tools, ...}")?,
                        chat_request_options(None, None, None, None, None)?,
                    ),
                };
                Ok(Value::String(self.prompt_text(&Prompt::Messages(messages.into_iter().map(Value::Object).collect(), chat))?))
            }
            // Forgets the KV cache kept from the last call (multi-turn reuse).
            "clear_cache" => {
                self.clear_cache();
                Ok(Value::Null)
            }
            other => super::interrupt_method(&self.interrupt, other)
                .ok_or_else(|| Error::Unsupported(format!("text-generation has no method `{other}`"))),
        }
    }
}

#[derive(Clone, Debug)]
pub enum Prompt {
    /// Plain text, tokenized with the tokenizer's special tokens (BOS where it adds one).
    Text(String),
    /// Messages rendered through the model's chat template, with the generation prompt.
    Chat(Vec<Message>),
    /// Messages as transformers takes them (objects with a `role`; `content` a string or parts,
    /// `tool_calls`, ...), rendered with `apply_chat_template`'s options.
    Messages(Vec<Value>, ChatRequestOptions),
}

/// The options of `TextGeneration::generate`: the generation library's config. Its EOS ids are
/// added to the model's own.
pub type GenerationOptions = GenerationConfig;
pub use crate::generation::StopReason;

#[derive(Clone, Debug)]
pub struct Generated {
    /// The new text, special tokens skipped, cut before a stop string.
    pub text: String,
    /// Every generated token id (an ending EOS included).
    pub token_ids: Vec<u32>,
    pub prompt_tokens: usize,
    /// Of `prompt_tokens`, those continued from the kept KV cache rather than computed.
    pub prompt_tokens_reused: usize,
    pub stop_reason: StopReason,
    /// Time to the first generated token (prompt processing).
    pub prefill_seconds: f64,
    /// Time for the tokens after the first.
    pub decode_seconds: f64,
}

pub struct TextGeneration {
    tokenizer: Tokenizer,
    /// Shared with the task's `AutoModel` view (`auto_model`).
    model: Rc<dyn DecoderModel>,
    /// config.json (a GGUF's: the facts its header gives; `None`: built from parts by `new`).
    model_config: Option<models::ModelConfig>,
    template: Option<ChatTemplate>,
    eos_ids: Vec<u32>,
    /// The model's generation defaults (generation_config.json), under each call's options.
    config: GenerationConfig,
    interrupt: Interrupt,
    device: Device,
    /// The last generation's cache (`generate_cached`); taken out while a generation runs.
    kept: std::sync::Mutex<Option<KeptCache>>,
}

impl TextGeneration {
    /// From a Hugging Face folder: config.json, model.safetensors, tokenizer.json, and the chat
    /// template and EOS ids from tokenizer_config.json / generation_config.json when present.
    pub fn load(files: &dyn ModelFiles, device: &Device, options: &LoadOptions) -> Result<TextGeneration> {
        let config = files.json("config.json")?.ok_or_else(|| Error::file(files.name(), "is not a model: it has no config.json"))?;
        let vb = Weights::new(files.weights(device)?, device, options.dtype);
        let model_config = models::ModelConfig::from_json(files.name(), config.clone())?;
        let model = models::load_decoder(&model_config, &vb)?;
        let tokenizer = Tokenizer::for_generation_from_files(files)?;
        let tok_config = files.json("tokenizer_config.json")?.unwrap_or_default();
        let eos = crate::chat::special_token_text(&tok_config, "eos_token");
        let template = ChatTemplate::from_tokenizer_config(&tok_config);
        let mut eos_ids = Vec::new();
        let generation = files.json("generation_config.json")?.unwrap_or_default();
        for value in [&generation["eos_token_id"], &config["eos_token_id"]] {
            match value {
                serde_json::Value::Number(n) => eos_ids.extend(n.as_u64().map(|n| n as u32)),
                serde_json::Value::Array(list) => eos_ids.extend(list.iter().filter_map(|v| v.as_u64()).map(|n| n as u32)),
                _ => {}
            }
        }
        eos_ids.extend(tokenizer.token_to_id(&eos));
        let mut pipe = TextGeneration::new(tokenizer, model, template, eos_ids, device);
        pipe.config = GenerationConfig::from_json(&generation, &config)?;
        pipe.model_config = Some(model_config);
        Ok(pipe)
    }

    /// From a GGUF file: weights, hyperparameters, tokenizer and chat template all come from it.
    pub fn load_gguf(file: crate::weights::gguf::GgufFile, device: &Device, options: &LoadOptions) -> Result<TextGeneration> {
        let parts = models::gguf::load(file, device, options.dtype)?;
        Ok(TextGeneration::from_gguf(parts, device))
    }

    /// From a GGUF file's tensors streamed onto `device` as they arrived
    /// (`HubModel::gguf_weights`), with its header (metadata, tokenizer, chat template) kept.
    pub fn load_gguf_streamed(weights: crate::weights::DeviceWeights, device: &Device, options: &LoadOptions) -> Result<TextGeneration> {
        let parts = models::gguf::load_streamed(weights, device, options.dtype)?;
        Ok(TextGeneration::from_gguf(parts, device))
    }

    /// From a GGUF's parts, its config kept for the model's `AutoModel` view.
    fn from_gguf(parts: models::gguf::GgufParts, device: &Device) -> TextGeneration {
        let mut pipe = TextGeneration::new(parts.tokenizer, parts.model, parts.template, parts.eos_ids, device);
        pipe.model_config = Some(parts.config);
        pipe
    }

    /// From parts (the GGUF loader builds them from the file's metadata).
    pub fn new(
        tokenizer: Tokenizer,
        model: Box<dyn DecoderModel>,
        template: Option<ChatTemplate>,
        mut eos_ids: Vec<u32>,
        device: &Device,
    ) -> TextGeneration {
        eos_ids.sort_unstable();
        eos_ids.dedup();
        TextGeneration {
            tokenizer,
            model: model.into(),
            model_config: None,
            template,
            eos_ids,
            config: GenerationConfig::default(),
            interrupt: Interrupt::new(),
            device: device.clone(),
            kept: std::sync::Mutex::new(None),
        }
    }

    pub fn device(&self) -> &Device {
        &self.device
    }
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }
    pub fn eos_ids(&self) -> &[u32] {
        &self.eos_ids
    }
    pub fn model(&self) -> &dyn DecoderModel {
        self.model.as_ref()
    }
    /// The model's generation defaults (from generation_config.json; the defaults for GGUF).
    pub fn generation_config(&self) -> &GenerationConfig {
        &self.config
    }
    /// The flag that stops a generation in flight (shared: set it from anywhere).
    pub fn interrupt(&self) -> &Interrupt {
        &self.interrupt
    }

    /// The decoder alone (benchmarks drive it directly).
    pub fn into_model(self) -> Rc<dyn DecoderModel> {
        self.model
    }

    /// The prompt's text as the model sees it (the rendered chat, or the text itself).
    pub fn prompt_text(&self, prompt: &Prompt) -> Result<String> {
        match prompt {
            Prompt::Text(t) => Ok(t.clone()),
            Prompt::Chat(messages) => {
                let template =
                    self.template.as_ref().ok_or_else(|| Error::Config("this model has no chat template; pass plain text".into()))?;
                template.render(messages, true)
            }
            Prompt::Messages(messages, chat) => {
                let template = match (&chat.template, &self.template) {
                    // An override keeps the model's special tokens.
                    (Some(source), Some(own)) => own.with_source(source.clone()),
                    (Some(source), None) => ChatTemplate::new(source.clone(), "", ""),
                    (None, Some(own)) => own.clone(),
                    (None, None) => {
                        return Err(Error::Config("this model has no chat template; pass plain text or a chat_template".into()));
                    }
                };
                template.render_with(messages, &chat.options)
            }
        }
    }

    /// The prompt's token ids.
    pub fn prompt_ids(&self, prompt: &Prompt) -> Result<Vec<u32>> {
        let text = self.prompt_text(prompt)?;
        // A rendered chat already holds its special tokens as text.
        let ids = self.tokenizer.encode(&text, matches!(prompt, Prompt::Text(_)))?;
        if ids.is_empty() {
            return Err(Error::Input("the prompt is empty: there is nothing to continue".into()));
        }
        Ok(ids)
    }

    /// The prompt's ids and the generation config for them: the model's EOS ids added, the
    /// length bounded by the model's context.
    fn prepare(&self, prompt: &Prompt, options: &GenerationOptions, model_eos: bool) -> Result<(Vec<u32>, GenerationConfig)> {
        let prompt_ids = self.prompt_ids(prompt)?;
        let context = self.model.max_context();
        if prompt_ids.len() >= context {
            return Err(Error::Input(format!("the prompt has {} tokens; the model's context is {context}", prompt_ids.len())));
        }
        options.validate()?;
        let mut config = options.clone();
        config.max_new_tokens = config.max_new_for(prompt_ids.len()).min(context - prompt_ids.len());
        config.max_length = None;
        if config.max_new_tokens == 0 {
            return Err(Error::Input(format!("the prompt has {} tokens: max_length leaves no room for new ones", prompt_ids.len())));
        }
        if model_eos {
            config.eos_token_ids.extend(&self.eos_ids);
        }
        Ok((prompt_ids, config))
    }

    /// Generates, calling `on_text` with each new piece of text as soon as it is final. The
    /// model's EOS ids end generation besides `options.eos_token_ids`. Greedy or sampled: for
    /// `num_beams > 1`, see `generate_beams`.
    pub async fn generate(&self, prompt: &Prompt, options: &GenerationOptions, on_text: impl FnMut(&str)) -> Result<Generated> {
        self.generate_with_events(prompt, options, &mut super::events::text_only(on_text)).await
    }

    /// `generate`, reporting each step's ids (`Event::Tokens`) and each final piece of text
    /// (`Event::Text`) to `events`.
    pub async fn generate_with_events(
        &self,
        prompt: &Prompt,
        options: &GenerationOptions,
        events: &mut dyn FnMut(super::Event<'_>),
    ) -> Result<Generated> {
        self.generate_cached(prompt, options, RunSettings::default(), events).await
    }

    /// Forgets the kept KV cache (its device memory is freed).
    pub fn clear_cache(&self) {
        *self.kept.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// The cache for a prompt of `prompt_ids` that generates up to `max_new` tokens, and how many
    /// of the prompt's first tokens it already holds: the kept cache cut to the longest prefix it
    /// shares with the prompt (at least the last prompt token is computed, for its logits), moved
    /// into a longer cache when it is too short; or a new one.
    fn take_cache(&self, prompt_ids: &[u32], max_new: usize, reuse: bool) -> Result<(KvCache, usize)> {
        let needed = prompt_ids.len() + max_new;
        let kept = self.kept.lock().unwrap_or_else(|e| e.into_inner()).take();
        let Some(KeptCache { mut cache, ids }) = kept.filter(|_| reuse) else {
            return Ok((self.model.new_cache(needed)?, 0));
        };
        let common = ids.iter().zip(&prompt_ids[..prompt_ids.len() - 1]).take_while(|(a, b)| a == b).count();
        let reused = self.model.reusable_prefix(&cache, common);
        if reused == 0 {
            drop(cache);
            return Ok((self.model.new_cache(needed)?, 0));
        }
        cache.truncate(reused);
        if cache.max_len() < needed {
            let mut longer = self.model.new_cache(needed)?;
            longer.copy_from(&cache)?;
            cache = longer;
        }
        Ok((cache, reused))
    }

    /// `generate_with_events`, continuing from the cache kept from the last call where the prompt
    /// extends its tokens (`settings.reuse`), and keeping this call's cache for the next one when
    /// it is small enough (`settings.keep_bytes`). The tokens are those of a fresh run.
    pub async fn generate_cached(
        &self,
        prompt: &Prompt,
        options: &GenerationOptions,
        settings: RunSettings,
        events: &mut dyn FnMut(super::Event<'_>),
    ) -> Result<Generated> {
        if options.num_beams > 1 {
            return Err(Error::Input("generate decodes one beam: use generate_beams for num_beams > 1".into()));
        }
        let (prompt_ids, config) = self.prepare(prompt, options, settings.model_eos)?;
        let (mut cache, reused) = self.take_cache(&prompt_ids, config.max_new_tokens, settings.reuse)?;
        let mut first = true;
        let mut step = |ids: &[u32]| {
            // The prompt's first `reused` tokens are in the cache already.
            let ids = if std::mem::take(&mut first) { &ids[reused..] } else { ids };
            self.model.forward(ids, &mut cache, false)
        };
        let mut processors = generation::processors_for(&config);
        // text and token events go to one sink from two closures
        let sink = std::cell::RefCell::new(events);
        let mut on_text = |t: &str| (*sink.borrow_mut())(super::Event::Text(t));
        let mut on_tokens = |ids: &[u32]| (*sink.borrow_mut())(super::Event::Tokens(ids));
        let mut streamer = super::events::TokenEvents {
            inner: TextStreamer::new(&self.tokenizer, &config.stop_strings, &mut on_text),
            on_tokens: &mut on_tokens,
        };
        // An error leaves the cache part-written: it is dropped, not kept.
        let out = generation::generate(&mut step, &prompt_ids, &config, &mut processors, Some(&mut streamer), &self.interrupt).await?;
        let text = streamer.inner.emitted().to_string();
        drop(streamer);
        if cache.bytes() <= settings.keep_bytes && !cache.is_empty() {
            // The cache holds the prompt and every generated token but the last (never fed back).
            let ids: Vec<u32> = prompt_ids.iter().chain(&out.token_ids).take(cache.len()).copied().collect();
            *self.kept.lock().unwrap_or_else(|e| e.into_inner()) = Some(KeptCache { cache, ids });
        }
        Ok(Generated {
            text,
            token_ids: out.token_ids,
            prompt_tokens: prompt_ids.len(),
            prompt_tokens_reused: reused,
            stop_reason: out.stop_reason,
            prefill_seconds: out.prefill_seconds,
            decode_seconds: out.decode_seconds,
        })
    }

    /// Beam search (`options.num_beams`): the `num_return_sequences` best sequences, best first.
    /// `on_text` gets the best one's text once the search ends (beams rewrite their past, so no
    /// text is final before). Each result's `decode_seconds` is the whole search's time after the
    /// prompt's forward pass.
    pub async fn generate_beams(
        &self,
        prompt: &Prompt,
        options: &GenerationOptions,
        model_eos: bool,
        mut on_text: impl FnMut(&str),
    ) -> Result<Vec<Generated>> {
        let (prompt_ids, config) = self.prepare(prompt, options, model_eos)?;
        let start = generation::time::now();
        let mut beams = crate::models::beams::DecoderBeams::new(self.model.as_ref(), prompt_ids.len() + config.max_new_tokens)?;
        let mut processors = generation::processors_for(&config);
        let mut streamer = TextStreamer::new(&self.tokenizer, &[], &mut on_text);
        let best = generation::beam_search(&mut beams, &prompt_ids, &config, &mut processors, Some(&mut streamer), &self.interrupt).await?;
        let seconds = generation::time::now() - start;
        let interrupted = self.interrupt.is_set();
        best.into_iter()
            .map(|h| {
                let stop_reason = if interrupted {
                    StopReason::Interrupted
                } else if h.token_ids.last().is_some_and(|t| config.eos_token_ids.contains(t)) {
                    StopReason::Eos
                } else {
                    StopReason::MaxTokens
                };
                Ok(Generated {
                    text: self.tokenizer.decode(&h.token_ids, true)?,
                    token_ids: h.token_ids,
                    prompt_tokens: prompt_ids.len(),
                    prompt_tokens_reused: 0,
                    stop_reason,
                    prefill_seconds: 0.0,
                    decode_seconds: seconds,
                })
            })
            .collect()
    }
}
