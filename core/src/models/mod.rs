//! Model architectures, one file each, and the registry that picks one from config.json's
//! `model_type`. Adding a model: its file, and a line in `load_encoder`.

use serde::de::DeserializeOwned;

use crate::files::ModelFiles;
use crate::tokenizer::Batch;
use crate::weights::Weights;
use crate::{Error, Result, Tensor};

pub mod bert;

/// A text encoder over packed sequences.
pub trait EncoderModel {
    /// Hidden states of every token, packed: [total tokens, hidden].
    fn forward(&self, batch: &Batch) -> Result<Tensor>;
    fn hidden_size(&self) -> usize;
    /// The longest sequence the position embeddings cover.
    fn max_positions(&self) -> usize;
}

/// Encoder architectures by `model_type`.
pub const ENCODERS: &[&str] = &["bert", "roberta", "xlm-roberta"];

pub fn load_encoder(files: &dyn ModelFiles, config: &serde_json::Value, vb: &Weights) -> Result<Box<dyn EncoderModel>> {
    let model_type = config.get("model_type").and_then(|v| v.as_str()).unwrap_or("");
    match model_type {
        "bert" | "roberta" | "xlm-roberta" => Ok(Box::new(bert::Bert::load(parse(config)?, vb)?)),
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
