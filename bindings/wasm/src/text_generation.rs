//! text-generation for JS: `TextGenerationTask.load(files, device, dtype)` (a model folder's
//! files) or `TextGenerationTask.loadGguf(files, file, device, dtype)` (one .gguf file), then
//! `generate(prompt, optionsJson, onText)` → `Promise<{text, tokenIds, ...}>`, calling `onText`
//! with each new piece of text as soon as it is final.

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Object, Uint32Array};
use serde::Deserialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;
use webformers::chat::Message;
use webformers::files::ModelFiles;
use webformers::tasks::LoadOptions;
use webformers::tasks::text_generation::{GenerationOptions, Prompt, StopReason, TextGeneration};
use webformers::weights::gguf::GgufFile;

use crate::hub::HubLoaded;
use crate::{EngineDevice, ModelFileSet, js_error, set, weight_dtype};

#[wasm_bindgen]
pub struct TextGenerationTask {
    inner: Rc<TextGeneration>,
}

/// The JS options, named as transformers.js names them; absent ones keep the engine's defaults.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct JsGenerationOptions {
    max_new_tokens: Option<usize>,
    do_sample: Option<bool>,
    temperature: Option<f32>,
    top_k: Option<usize>,
    top_p: Option<f32>,
    repetition_penalty: Option<f32>,
    seed: Option<u64>,
    stop: Option<Vec<String>>,
}

impl JsGenerationOptions {
    fn apply(self) -> GenerationOptions {
        let mut o = GenerationOptions::default();
        o.max_new_tokens = self.max_new_tokens.unwrap_or(o.max_new_tokens);
        o.do_sample = self.do_sample.unwrap_or(o.do_sample);
        o.temperature = self.temperature.unwrap_or(o.temperature);
        o.top_k = self.top_k.unwrap_or(o.top_k);
        o.top_p = self.top_p.unwrap_or(o.top_p);
        o.repetition_penalty = self.repetition_penalty.unwrap_or(o.repetition_penalty);
        o.seed = self.seed.unwrap_or(o.seed);
        o.stop = self.stop.unwrap_or_default();
        o
    }
}

fn load_options(dtype: &str) -> Result<LoadOptions, JsValue> {
    // `..Default::default()`: options added to core later keep their defaults here.
    #[allow(clippy::needless_update)]
    Ok(LoadOptions { dtype: weight_dtype(dtype)?, ..Default::default() })
}

/// A string is plain text; an array of `{role, content}` is a chat.
fn prompt_from_js(prompt: &JsValue) -> Result<Prompt, JsValue> {
    if let Some(text) = prompt.as_string() {
        return Ok(Prompt::Text(text));
    }
    let bad = || js_error(webformers::Error::Input("the prompt must be a string or an array of {role, content} messages".into()));
    if !js_sys::Array::is_array(prompt) {
        return Err(bad());
    }
    let json: String = js_sys::JSON::stringify(prompt).map_err(|_| bad())?.into();
    let messages: Vec<Message> = serde_json::from_str(&json).map_err(|_| bad())?;
    Ok(Prompt::Chat(messages))
}

#[wasm_bindgen]
impl TextGenerationTask {
    /// From a model folder's files (config.json, tokenizer.json, model.safetensors, and the
    /// tokenizer and generation configs when present).
    pub fn load(files: &ModelFileSet, device: &EngineDevice, dtype: &str) -> Result<TextGenerationTask, JsValue> {
        let task = TextGeneration::load(files.files(), device.device(), &load_options(dtype)?).map_err(js_error)?;
        Ok(TextGenerationTask { inner: Rc::new(task) })
    }

    /// Whether this build loads .gguf files: the JS side asks before downloading one.
    #[wasm_bindgen(js_name = supportsGguf)]
    pub fn supports_gguf() -> bool {
        true
    }

    /// From one GGUF file (weights, tokenizer and chat template in its metadata), held in `files`
    /// under the name `file`.
    #[wasm_bindgen(js_name = loadGguf)]
    pub fn load_gguf(files: &ModelFileSet, file: &str, device: &EngineDevice, dtype: &str) -> Result<TextGenerationTask, JsValue> {
        let bytes = files.files().require(file).map_err(js_error)?;
        let gguf = GgufFile::from_bytes(bytes, files.files().name()).map_err(js_error)?;
        let task = TextGeneration::load_gguf(gguf, device.device(), &load_options(dtype)?).map_err(js_error)?;
        Ok(TextGenerationTask { inner: Rc::new(task) })
    }

    /// From what `hubLoad` fetched: a model folder's files, or one GGUF file's tensors (taken:
    /// a `HubLoaded` builds one GGUF model). The weights are already on `device`.
    #[wasm_bindgen(js_name = loadFromHub)]
    pub fn load_from_hub(loaded: &mut HubLoaded, device: &EngineDevice, dtype: &str) -> Result<TextGenerationTask, JsValue> {
        let options = load_options(dtype)?;
        let task = match (&loaded.files, loaded.gguf.take()) {
            (_, Some(weights)) => TextGeneration::load_gguf_streamed(weights, device.device(), &options),
            (Some(files), None) => TextGeneration::load(files, device.device(), &options),
            (None, None) => Err(webformers::Error::Input("this Hub load was already used".into())),
        }
        .map_err(js_error)?;
        Ok(TextGenerationTask { inner: Rc::new(task) })
    }

    /// The prompt as the model sees it: the chat rendered through the model's template.
    #[wasm_bindgen(js_name = promptText)]
    pub fn prompt_text(&self, prompt: JsValue) -> Result<String, JsValue> {
        self.inner.prompt_text(&prompt_from_js(&prompt)?).map_err(js_error)
    }

    /// Generates from `prompt` (a string or a messages array). `options_json`: a JSON object of
    /// transformers.js generation options (`max_new_tokens`, `do_sample`, `temperature`, `top_k`,
    /// `top_p`, `repetition_penalty`, `seed`, `stop`). `on_text` gets each new piece of text.
    /// Resolves to `{text, tokenIds, promptTokens, stopReason, prefillSeconds, decodeSeconds}`.
    pub fn generate(&self, prompt: JsValue, options_json: &str, on_text: Option<js_sys::Function>) -> js_sys::Promise {
        let inner = self.inner.clone();
        let prompt = prompt_from_js(&prompt);
        let options = if options_json.is_empty() {
            Ok(JsGenerationOptions::default())
        } else {
            serde_json::from_str::<JsGenerationOptions>(options_json)
                .map_err(|e| js_error(webformers::Error::Input(format!("generation options: {e}"))))
        };
        future_to_promise(async move {
            let prompt = prompt?;
            let options = options?.apply();
            // The first exception thrown by the callback; generation goes on, the promise rejects.
            let thrown: Rc<RefCell<Option<JsValue>>> = Rc::default();
            let sink = thrown.clone();
            let out = inner
                .generate(&prompt, &options, move |piece| {
                    if let Some(f) = &on_text
                        && let Err(e) = f.call1(&JsValue::NULL, &JsValue::from_str(piece))
                    {
                        sink.borrow_mut().get_or_insert(e);
                    }
                })
                .await
                .map_err(js_error)?;
            if let Some(e) = thrown.borrow_mut().take() {
                return Err(e);
            }
            let result = Object::new();
            set(&result, "text", &JsValue::from_str(&out.text));
            set(&result, "tokenIds", &Uint32Array::from(&out.token_ids[..]));
            set(&result, "promptTokens", &JsValue::from(out.prompt_tokens as u32));
            let reason = match out.stop_reason {
                StopReason::Eos => "eos",
                StopReason::StopString => "stop_string",
                StopReason::MaxTokens => "max_tokens",
            };
            set(&result, "stopReason", &JsValue::from_str(reason));
            set(&result, "prefillSeconds", &JsValue::from(out.prefill_seconds));
            set(&result, "decodeSeconds", &JsValue::from(out.decode_seconds));
            Ok(result.into())
        })
    }
}
