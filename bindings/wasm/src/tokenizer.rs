//! A tokenizer on its own (the npm package's `AutoTokenizer`): tokenizer.json read by the same
//! `tokenizers` code as the tasks, with tokenizer_config.json's chat template. Padding, batching
//! and tensors are the JS side's (npm/src/tokenizer.js); encoding, truncation, decoding and chat
//! templates are here.

use js_sys::{Array, Object, Reflect, Uint32Array};
use serde_json::Value;
use wasm_bindgen::prelude::*;
use webformers::Error;
use webformers::chat::ChatTemplate;
use webformers::files::ModelFiles;
use webformers::tokenizer::{Tokenizer, clean_up_tokenization_spaces};

use crate::hub::HubLoaded;
use crate::pipeline::to_js;
use crate::{ModelFileSet, js_error};

#[wasm_bindgen(js_name = Tokenizer)]
pub struct JsTokenizer {
    inner: Tokenizer,
    /// tokenizer_config.json (an empty object when the model has none).
    config: Value,
}

#[wasm_bindgen(js_class = Tokenizer)]
impl JsTokenizer {
    /// From a model's tokenizer.json (required) and tokenizer_config.json (optional).
    pub fn load(files: &ModelFileSet) -> Result<JsTokenizer, JsValue> {
        let files = files.files();
        let json = files.require("tokenizer.json").map_err(js_error)?;
        let inner = Tokenizer::for_generation((*json).as_ref()).map_err(js_error)?;
        let config = files.json("tokenizer_config.json").map_err(js_error)?.unwrap_or_else(|| Value::Object(Default::default()));
        Ok(JsTokenizer { inner, config })
    }

    /// The tokenizer of what `hubLoad` fetched, from its files and the tokenizer.json it parsed
    /// while the weights streamed: no second download or parse for a pipeline's `tokenizer`.
    /// None when the load did not fetch both tokenizer files (the caller fetches them then).
    #[wasm_bindgen(js_name = fromHubLoaded)]
    pub fn from_hub_loaded(loaded: &HubLoaded) -> Result<Option<JsTokenizer>, JsValue> {
        let Some(files) = loaded.files.as_ref() else { return Ok(None) };
        // `read` errs for a file the task did not ask for: then this load cannot tell absent
        // from not fetched.
        if !matches!(files.read("tokenizer.json"), Ok(Some(_))) || files.read("tokenizer_config.json").is_err() {
            return Ok(None);
        }
        let inner = Tokenizer::for_generation_from_files(files).map_err(js_error)?;
        let config = files.json("tokenizer_config.json").map_err(js_error)?.unwrap_or_else(|| Value::Object(Default::default()));
        Ok(Some(JsTokenizer { inner, config }))
    }

    /// tokenizer_config.json as text (the JS side reads its special tokens and settings).
    #[wasm_bindgen(js_name = configJson)]
    pub fn config_json(&self) -> String {
        self.config.to_string()
    }

    /// `{input_ids, attention_mask, token_type_ids}` (Uint32Arrays) of a text or pair, truncated
    /// to `max_length` tokens when given (longest first, special tokens kept).
    pub fn encode(&self, text: &str, pair: Option<String>, add_special_tokens: bool, max_length: Option<u32>) -> Result<JsValue, JsValue> {
        if max_length == Some(0) {
            return Err(js_error(Error::Input("max_length must be at least 1".into())));
        }
        let encoded =
            self.inner.encode_with(text, pair.as_deref(), add_special_tokens, max_length.map(|m| m as usize)).map_err(js_error)?;
        let out = Object::new();
        let set = |key: &str, values: &[u32]| Reflect::set(&out, &JsValue::from_str(key), &Uint32Array::from(values).into());
        set("input_ids", &encoded.ids)?;
        set("attention_mask", &vec![1; encoded.ids.len()])?;
        set("token_type_ids", &encoded.type_ids)?;
        Ok(out.into())
    }

    /// The tokens (strings) of a text, without special tokens unless asked.
    pub fn tokenize(&self, text: &str, pair: Option<String>, add_special_tokens: bool) -> Result<Array, JsValue> {
        let tokens = self.inner.tokens(text, pair.as_deref(), add_special_tokens).map_err(js_error)?;
        Ok(tokens.iter().map(|t| JsValue::from_str(t)).collect())
    }

    /// Text of `ids`; `clean_up` (default: the tokenizer's decoder's own setting, else
    /// tokenizer_config.json's `clean_up_tokenization_spaces`, else true, as transformers.js)
    /// removes the spaces before punctuation that word-piece joining leaves.
    pub fn decode(&self, ids: &[u32], skip_special_tokens: bool, clean_up: Option<bool>) -> Result<String, JsValue> {
        let vocab = self.inner.vocab_size();
        if let Some(bad) = ids.iter().find(|&&id| id as usize >= vocab) {
            return Err(js_error(Error::Input(format!("token id {bad} is outside the vocabulary of {vocab}"))));
        }
        let text = self.inner.decode(ids, skip_special_tokens).map_err(js_error)?;
        // transformers.js's order: the call's choice, the decoder's own `cleanup` (WordPiece),
        // tokenizer_config.json's, else true.
        let clean = clean_up.or(self.inner.decoder_cleans_up()).or(self.config["clean_up_tokenization_spaces"].as_bool()).unwrap_or(true);
        Ok(if clean { clean_up_tokenization_spaces(text) } else { text })
    }

    /// The model's chat template (or `template`, overriding it) rendered for `messages`
    /// (`[{role, content, ...}]`) with transformers' `tools`, `documents` and further template
    /// variables (`extra`: an object, or null).
    #[wasm_bindgen(js_name = applyChatTemplate)]
    pub fn apply_chat_template(
        &self,
        messages: JsValue,
        add_generation_prompt: bool,
        template: Option<String>,
        tools: JsValue,
        documents: JsValue,
        extra: JsValue,
    ) -> Result<String, JsValue> {
        let json = |v: JsValue, what: &str| -> Result<serde_json::Value, JsValue> {
            if v.is_null() || v.is_undefined() {
                return Ok(serde_json::Value::Null);
            }
            serde_wasm_bindgen::from_value(v).map_err(|e| js_error(Error::Input(format!("{what}: {e}"))))
        };
        let messages = match json(messages, "messages")? {
            serde_json::Value::Array(list) => list,
            other => return Err(js_error(Error::Input(format!("messages must be an array of {{role, content}} objects, not {other}")))),
        };
        let list = |v: serde_json::Value, name: &str| -> Result<Option<serde_json::Value>, JsValue> {
            match v {
                serde_json::Value::Null => Ok(None),
                serde_json::Value::Array(l) if l.iter().all(|x| x.is_object()) => Ok(Some(serde_json::Value::Array(l))),
                other => Err(js_error(Error::Input(format!("{name} must be an array of objects, not {other}")))),
            }
        };
        let options = webformers::chat::ChatOptions {
            add_generation_prompt,
            tools: list(json(tools, "tools")?, "tools")?,
            documents: list(json(documents, "documents")?, "documents")?,
            extra: match json(extra, "template variables")? {
                serde_json::Value::Object(map) => map,
                _ => serde_json::Map::new(),
            },
        };
        let chat = match template {
            Some(source) => ChatTemplate::new(
                source,
                webformers::chat::special_token_text(&self.config, "bos_token"),
                webformers::chat::special_token_text(&self.config, "eos_token"),
            ),
            None => ChatTemplate::from_tokenizer_config(&self.config).ok_or_else(|| {
                js_error(Error::Input(
                    "this tokenizer has no chat template (tokenizer_config.json has no chat_template); pass one with the chat_template option".into(),
                ))
            })?,
        };
        chat.render_with(&messages, &options).map_err(js_error)
    }

    #[wasm_bindgen(js_name = tokenToId)]
    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    #[wasm_bindgen(js_name = idToToken)]
    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    #[wasm_bindgen(js_name = vocabSize)]
    pub fn vocab_size(&self) -> usize {
        self.inner.vocab_size()
    }

    /// `[{id, content}]` of the added special tokens.
    #[wasm_bindgen(js_name = specialTokens)]
    pub fn special_tokens(&self) -> Result<JsValue, JsValue> {
        let list: Vec<Value> =
            self.inner.special_tokens().into_iter().map(|(id, content)| serde_json::json!({"id": id, "content": content})).collect();
        to_js(&list)
    }
}
