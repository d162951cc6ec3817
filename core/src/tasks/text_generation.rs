//! text-generation: a prompt (or a chat) in, new text out, streamed as it is generated.
//! Greedy decoding by default, as in transformers; the next token is picked on the device
//! (argmax) unless sampling or a repetition penalty needs the logits on the host.

use crate::chat::{ChatTemplate, Message};
use crate::files::ModelFiles;
use crate::models::{self, DecoderModel};
use crate::sampling::{self, Sampling, SplitMix64};
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

/// The call's options, named as transformers.js names them; absent ones keep the defaults.
#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct CallOptions {
    max_new_tokens: Option<usize>,
    do_sample: Option<bool>,
    temperature: Option<f32>,
    top_k: Option<usize>,
    top_p: Option<f32>,
    repetition_penalty: Option<f32>,
    seed: Option<u64>,
    stop: Option<StopStrings>,
    /// The prompt before the new text (transformers' default), or the new text alone.
    return_full_text: Option<bool>,
}

#[derive(serde::Deserialize)]
#[serde(untagged)]
enum StopStrings {
    One(String),
    Many(Vec<String>),
}

impl CallOptions {
    fn generation(&self) -> GenerationOptions {
        let d = GenerationOptions::default();
        GenerationOptions {
            max_new_tokens: self.max_new_tokens.unwrap_or(d.max_new_tokens),
            do_sample: self.do_sample.unwrap_or(d.do_sample),
            temperature: self.temperature.unwrap_or(d.temperature),
            top_k: self.top_k.unwrap_or(d.top_k),
            top_p: self.top_p.unwrap_or(d.top_p),
            repetition_penalty: self.repetition_penalty.unwrap_or(d.repetition_penalty),
            seed: self.seed.unwrap_or(d.seed),
            stop: match &self.stop {
                None => Vec::new(),
                Some(StopStrings::One(s)) => vec![s.clone()],
                Some(StopStrings::Many(v)) => v.clone(),
            },
        }
    }
}

/// A prompt as the call gives it: text or a chat.
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum PromptInput {
    Text(String),
    Chat(Vec<Message>),
}

#[derive(serde::Deserialize)]
#[serde(untagged)]
enum PromptInputs {
    One(PromptInput),
    Many(Vec<PromptInput>),
}

const PROMPT_KINDS: &str = "a string, a messages array ({role, content}[]), or an array of those";

impl StopReason {
    pub fn name(self) -> &'static str {
        match self {
            StopReason::Eos => "eos",
            StopReason::StopString => "stop_string",
            StopReason::MaxTokens => "max_tokens",
        }
    }
}

impl TextGeneration {
    /// One prompt's `{generated_text, stats}` as transformers.js shapes it: the text (after the
    /// prompt unless `return_full_text` is false), or the chat with the reply appended.
    async fn generate_one(&self, input: &PromptInput, options: &CallOptions, on_text: &mut dyn FnMut(&str)) -> Result<Value> {
        let prompt = match input {
            PromptInput::Text(t) => Prompt::Text(t.clone()),
            PromptInput::Chat(m) if m.is_empty() => return Err(Error::Input("the messages array is empty".into())),
            PromptInput::Chat(m) => Prompt::Chat(m.clone()),
        };
        let out = self.generate(&prompt, &options.generation(), on_text).await?;
        let generated_text = match input {
            PromptInput::Chat(messages) => {
                let mut chat = serde_json::to_value(messages).map_err(|e| Error::Input(e.to_string()))?;
                if let Value::Array(list) = &mut chat {
                    list.push(serde_json::json!({ "role": "assistant", "content": out.text }));
                }
                chat
            }
            PromptInput::Text(t) if options.return_full_text.unwrap_or(true) => Value::String(format!("{t}{}", out.text)),
            PromptInput::Text(_) => Value::String(out.text.clone()),
        };
        let stats = serde_json::json!({
            "prompt_tokens": out.prompt_tokens,
            "new_tokens": out.token_ids.len(),
            "token_ids": out.token_ids,
            "stop_reason": out.stop_reason.name(),
            "prefill_seconds": out.prefill_seconds,
            "decode_seconds": out.decode_seconds,
        });
        Ok(serde_json::json!({ "generated_text": generated_text, "stats": stats }))
    }
}

impl Pipeline for TextGeneration {
    fn task(&self) -> &'static TaskInfo {
        &TASK
    }

    fn device(&self) -> &Device {
        &self.device
    }

    /// A prompt gives `[{generated_text, stats}]`; an array of prompts one such array each.
    fn run<'a>(&'a self, input: Input<'a>, options: &'a Value, on_text: &'a mut dyn FnMut(&str)) -> LocalFuture<'a, Result<Output>> {
        let input = input.value;
        Box::pin(async move {
            let inputs: PromptInputs = TASK.input(input, PROMPT_KINDS)?;
            let options: CallOptions = TASK.options(options)?;
            Ok(Output::Json(match inputs {
                PromptInputs::One(one) => Value::Array(vec![self.generate_one(&one, &options, on_text).await?]),
                PromptInputs::Many(many) => {
                    let mut all = Vec::with_capacity(many.len());
                    for one in &many {
                        all.push(Value::Array(vec![self.generate_one(one, &options, on_text).await?]));
                    }
                    Value::Array(all)
                }
            }))
        })
    }

    fn info(&self) -> Value {
        serde_json::json!({ "vocab_size": self.model.vocab_size(), "max_context": self.model.max_context(), "chat_template": self.template.is_some() })
    }

    fn call(&self, method: &str, args: &Value) -> Result<Value> {
        match method {
            // transformers.js's tokenizer.apply_chat_template(messages, {tokenize: false}).
            "apply_chat_template" => {
                let messages: Vec<Message> = TASK.input(args, "a messages array ({role, content}[])")?;
                Ok(Value::String(self.prompt_text(&Prompt::Chat(messages))?))
            }
            other => Err(Error::Unsupported(format!("text-generation has no method `{other}`"))),
        }
    }
}

#[derive(Clone, Debug)]
pub enum Prompt {
    /// Plain text, tokenized with the tokenizer's special tokens (BOS where it adds one).
    Text(String),
    /// Messages rendered through the model's chat template, with the generation prompt.
    Chat(Vec<Message>),
}

#[derive(Clone, Debug)]
pub struct GenerationOptions {
    pub max_new_tokens: usize,
    /// Sample instead of taking the most likely token.
    pub do_sample: bool,
    pub temperature: f32,
    pub top_k: usize,
    pub top_p: f32,
    pub repetition_penalty: f32,
    pub seed: u64,
    /// Generation stops before any of these strings (they are not returned).
    pub stop: Vec<String>,
}

impl Default for GenerationOptions {
    fn default() -> Self {
        // transformers' defaults: greedy; top_k 50 and top_p 1.0 apply only when sampling.
        GenerationOptions {
            max_new_tokens: 256,
            do_sample: false,
            temperature: 1.0,
            top_k: 50,
            top_p: 1.0,
            repetition_penalty: 1.0,
            seed: 0,
            stop: Vec::new(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    Eos,
    StopString,
    MaxTokens,
}

#[derive(Clone, Debug)]
pub struct Generated {
    /// The new text, special tokens skipped, cut before a stop string.
    pub text: String,
    /// Every generated token id (an ending EOS included).
    pub token_ids: Vec<u32>,
    pub prompt_tokens: usize,
    pub stop_reason: StopReason,
    /// Time to the first generated token (prompt processing).
    pub prefill_seconds: f64,
    /// Time for the tokens after the first.
    pub decode_seconds: f64,
}

pub struct TextGeneration {
    tokenizer: Tokenizer,
    model: Box<dyn DecoderModel>,
    template: Option<ChatTemplate>,
    eos_ids: Vec<u32>,
    device: Device,
}

impl TextGeneration {
    /// From a Hugging Face folder: config.json, model.safetensors, tokenizer.json, and the chat
    /// template and EOS ids from tokenizer_config.json / generation_config.json when present.
    pub fn load(files: &dyn ModelFiles, device: &Device, options: &LoadOptions) -> Result<TextGeneration> {
        let config = files.json("config.json")?.ok_or_else(|| Error::file(files.name(), "is not a model: it has no config.json"))?;
        let vb = Weights::new(files.weights(device)?, device, options.dtype);
        let model = models::load_decoder(&models::ModelConfig::from_json(files.name(), config.clone())?, &vb)?;
        let tokenizer = Tokenizer::for_generation((*files.require("tokenizer.json")?).as_ref())?;
        let tok_config = files.json("tokenizer_config.json")?.unwrap_or_default();
        let token_text = |key: &str| -> String {
            match &tok_config[key] {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Object(o) => o.get("content").and_then(|c| c.as_str()).unwrap_or("").to_string(),
                _ => String::new(),
            }
        };
        let (bos, eos) = (token_text("bos_token"), token_text("eos_token"));
        let template = match &tok_config["chat_template"] {
            serde_json::Value::String(s) => Some(s.clone()),
            // A list of named templates: the "default" one.
            serde_json::Value::Array(list) => {
                list.iter().find(|t| t["name"] == "default").and_then(|t| t["template"].as_str()).map(str::to_string)
            }
            _ => None,
        }
        .map(|source| ChatTemplate::new(source, bos, eos.clone()));
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
        Ok(TextGeneration::new(tokenizer, model, template, eos_ids, device))
    }

    /// From a GGUF file: weights, hyperparameters, tokenizer and chat template all come from it.
    pub fn load_gguf(file: crate::weights::gguf::GgufFile, device: &Device, options: &LoadOptions) -> Result<TextGeneration> {
        let parts = models::gguf::load(file, device, options.dtype)?;
        Ok(TextGeneration::new(parts.tokenizer, parts.model, parts.template, parts.eos_ids, device))
    }

    /// From a GGUF file's tensors streamed onto `device` as they arrived
    /// (`HubModel::gguf_weights`), with its header (metadata, tokenizer, chat template) kept.
    pub fn load_gguf_streamed(weights: crate::weights::DeviceWeights, device: &Device, options: &LoadOptions) -> Result<TextGeneration> {
        let parts = models::gguf::load_streamed(weights, device, options.dtype)?;
        Ok(TextGeneration::new(parts.tokenizer, parts.model, parts.template, parts.eos_ids, device))
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
        TextGeneration { tokenizer, model, template, eos_ids, device: device.clone() }
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

    /// The decoder alone (benchmarks drive it directly).
    pub fn into_model(self) -> Box<dyn DecoderModel> {
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

    /// Generates, calling `on_text` with each new piece of text as soon as it is final.
    pub async fn generate(&self, prompt: &Prompt, options: &GenerationOptions, mut on_text: impl FnMut(&str)) -> Result<Generated> {
        let prompt_ids = self.prompt_ids(prompt)?;
        let context = self.model.max_context();
        if prompt_ids.len() >= context {
            return Err(Error::Input(format!("the prompt has {} tokens; the model's context is {context}", prompt_ids.len())));
        }
        let max_new = options.max_new_tokens.min(context - prompt_ids.len());
        if max_new == 0 {
            return Err(Error::Input("max_new_tokens is 0".into()));
        }
        let mut cache = self.model.new_cache(prompt_ids.len() + max_new)?;
        let sampling = Sampling { temperature: options.temperature, top_k: options.top_k, top_p: options.top_p };
        let mut rng = SplitMix64::new(options.seed);
        let host_logits = options.do_sample || options.repetition_penalty != 1.0;
        let mut stream = TextStream::new(&options.stop);
        let mut generated = Vec::new();
        let start = web_time::now();
        let mut first_token_at = None;
        let mut input = prompt_ids.clone();
        let stop_reason = loop {
            let logits = self.model.forward(&input, &mut cache, false)?; // [1, V]
            let next = if host_logits {
                let mut row = logits.to_vec_f32().await?;
                let seen: Vec<u32> = prompt_ids.iter().chain(&generated).copied().collect();
                sampling::apply_repetition_penalty(&mut row, &seen, options.repetition_penalty);
                if options.do_sample { sampling::sample(&row, &sampling, &mut rng) } else { sampling::argmax(&row) }
            } else {
                logits.argmax()?.to_vec_u32().await?[0]
            };
            first_token_at.get_or_insert_with(web_time::now);
            generated.push(next);
            if self.eos_ids.contains(&next) {
                break StopReason::Eos;
            }
            let text = self.tokenizer.decode(&generated, true)?;
            let (piece, hit_stop) = stream.push(&text);
            if !piece.is_empty() {
                on_text(piece);
            }
            if hit_stop {
                break StopReason::StopString;
            }
            if generated.len() >= max_new {
                break StopReason::MaxTokens;
            }
            input = vec![next];
        };
        let text = self.tokenizer.decode(&generated, true)?;
        let rest = stream.finish(&text);
        if !rest.is_empty() {
            on_text(&rest);
        }
        let first = first_token_at.unwrap_or(start);
        Ok(Generated {
            text: stream.text,
            token_ids: generated,
            prompt_tokens: prompt_ids.len(),
            stop_reason,
            prefill_seconds: first - start,
            decode_seconds: web_time::now() - first,
        })
    }
}

/// Turns the growing decoded text into final pieces: holds back an incomplete UTF-8 character
/// (shown as U+FFFD by byte-level decoders) and any tail that may begin a stop string.
struct TextStream {
    stop: Vec<String>,
    /// What has been emitted.
    text: String,
}

impl TextStream {
    fn new(stop: &[String]) -> TextStream {
        TextStream { stop: stop.iter().filter(|s| !s.is_empty()).cloned().collect(), text: String::new() }
    }

    /// The new final piece of `decoded` and whether a stop string was reached.
    fn push(&mut self, decoded: &str) -> (&str, bool) {
        let before = self.text.len();
        if let Some(at) = self.stop.iter().filter_map(|s| decoded.find(s.as_str())).min() {
            self.extend_to(decoded, at);
            return (&self.text[before.min(self.text.len())..], true);
        }
        let mut end = decoded.len();
        if decoded.ends_with('\u{FFFD}') {
            end -= '\u{FFFD}'.len_utf8();
        }
        // Keep back the longest tail that is a prefix of a stop string.
        for s in &self.stop {
            for n in (1..s.len()).rev() {
                if s.is_char_boundary(n) && decoded[..end].ends_with(&s[..n]) {
                    end = end.min(end - n);
                    break;
                }
            }
        }
        self.extend_to(decoded, end);
        (&self.text[before.min(self.text.len())..], false)
    }

    fn extend_to(&mut self, decoded: &str, end: usize) {
        // Decoders may rewrite earlier text slightly (cleanup of spaces); only append.
        if end > self.text.len()
            && decoded.is_char_boundary(self.text.len())
            && decoded.is_char_boundary(end)
            && decoded.starts_with(self.text.as_str())
        {
            self.text.push_str(&decoded[self.text.len()..end]);
        }
    }

    /// Whatever is left once generation ends (minus a stop string).
    fn finish(&mut self, decoded: &str) -> String {
        let before = self.text.len();
        let end = self.stop.iter().filter_map(|s| decoded.find(s.as_str())).min().unwrap_or(decoded.len());
        self.extend_to(decoded, end);
        self.text[before.min(self.text.len())..].to_string()
    }
}

/// Seconds on a monotonic clock, natively and in the browser.
mod web_time {
    #[cfg(not(target_arch = "wasm32"))]
    pub fn now() -> f64 {
        use std::sync::OnceLock;
        static START: OnceLock<std::time::Instant> = OnceLock::new();
        START.get_or_init(std::time::Instant::now).elapsed().as_secs_f64()
    }
    #[cfg(target_arch = "wasm32")]
    pub fn now() -> f64 {
        // Date.now() is available in windows, workers and Node alike.
        js_sys::Date::now() / 1000.0
    }
}

#[cfg(test)]
mod tests {
    use super::TextStream;

    #[test]
    fn stream_holds_back_partial_characters_and_stop_prefixes() {
        let mut s = TextStream::new(&["STOP".to_string()]);
        assert_eq!(s.push("Hel").0, "Hel");
        assert_eq!(s.push("Hello \u{FFFD}").0, "lo ");
        assert_eq!(s.push("Hello é S").0, "é ");
        assert_eq!(s.push("Hello é ST").0, "");
        let (piece, stop) = s.push("Hello é STOP and more");
        assert_eq!((piece, stop), ("", true));
        assert_eq!(s.text, "Hello é ");
    }
}
