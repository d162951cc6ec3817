//! Model architectures, one file each, and the registry that picks one from config.json's
//! `model_type`. Adding a model: its file, and a line in `load_encoder`.

use serde::de::DeserializeOwned;

use crate::files::ModelFiles;
use crate::tokenizer::Batch;
use crate::weights::Weights;
use crate::{Error, Result, Tensor};

pub mod bert;
pub mod distilbert;
pub mod gguf;
pub mod gpt2;
pub mod llama;
pub mod modernbert;
pub mod synthetic;

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
}

/// Keys and values of every layer, on the device: one tensor [max_len, 2 kv heads, head dim] a
/// layer, keys in the first heads and values in the rest, so one write appends both.
pub struct KvCache {
    layers: Vec<Tensor>,
    len: usize,
    max_len: usize,
}

impl KvCache {
    /// `shape`: [max_len, kv heads, head dim] of the keys (and of the values).
    pub fn new(layers: usize, shape: &[usize; 3], dtype: crate::DType, device: &crate::Device) -> Result<KvCache> {
        let both = [shape[0], 2 * shape[1], shape[2]];
        let layers = (0..layers).map(|_| Tensor::cache(dtype, &both, device)).collect::<Result<Vec<_>>>()?;
        Ok(KvCache { layers, len: 0, max_len: shape[0] })
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
        let all = cache.write_rows(&kv.to_dtype(cache.dtype())?, self.len)?.narrow(0, 0, end)?;
        Ok((all.narrow(1, 0, hkv)?, all.narrow(1, hkv, hkv)?))
    }

    /// Called by a model after recording a forward pass of `t` tokens.
    pub(crate) fn advance(&mut self, t: usize) {
        self.len += t;
    }

    /// Forgets the cached tokens (the device buffers are kept for reuse).
    pub fn reset(&mut self) {
        self.len = 0;
    }
}

pub const DECODERS: &[&str] = &["llama", "mistral", "qwen2", "gpt2"];

/// A decoder from a config.json (Hugging Face safetensors folders).
pub fn load_decoder(name: &str, config: &serde_json::Value, vb: &Weights) -> Result<Box<dyn DecoderModel>> {
    let model_type = config.get("model_type").and_then(|v| v.as_str()).unwrap_or("");
    match model_type {
        "llama" | "mistral" | "qwen2" => Ok(Box::new(llama::Llama::load(parse(config)?, vb, false)?)),
        "gpt2" => Ok(Box::new(gpt2::Gpt2::load(parse(config)?, vb)?)),
        "" => Err(Error::Config(format!("{name}/config.json has no `model_type`"))),
        other => Err(Error::Unsupported(format!(
            "model_type `{other}` (from {name}/config.json) has no text-generation model here; supported: {}",
            DECODERS.join(", ")
        ))),
    }
}

/// Encoder architectures by `model_type`.
pub const ENCODERS: &[&str] = &["bert", "roberta", "xlm-roberta", "distilbert"];

pub fn load_encoder(files: &dyn ModelFiles, config: &serde_json::Value, vb: &Weights) -> Result<Box<dyn EncoderModel>> {
    let model_type = config.get("model_type").and_then(|v| v.as_str()).unwrap_or("");
    match model_type {
        "bert" | "roberta" | "xlm-roberta" => Ok(Box::new(bert::Bert::load(parse(config)?, vb)?)),
        "distilbert" => Ok(Box::new(distilbert::load(parse(config)?, vb)?)),
        "modernbert" => Ok(Box::new(modernbert::ModernBert::load(parse(config)?, vb)?)),
        "" => Err(Error::Config(format!("{}/config.json has no `model_type`", files.name()))),
        other => Err(Error::Unsupported(format!(
            "model_type `{other}` (from {}/config.json) has no encoder here; supported: {}",
            files.name(),
            ENCODERS.join(", ")
        ))),
    }
}

/// A config.json as a typed struct, with the field that failed named.
pub fn parse<T: DeserializeOwned>(config: &serde_json::Value) -> Result<T> {
    serde_json::from_value(config.clone()).map_err(|e| Error::Config(format!("config.json: {e}")))
}
