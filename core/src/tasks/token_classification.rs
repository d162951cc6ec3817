//! token-classification. (Being written: the registry entry and loading are final; `run` is not yet.)

use serde_json::Value;

use super::text_encoder::TextEncoderTask;
use super::{InputKind, LoadOptions, LocalFuture, Output, Pipeline, TaskInfo};
use crate::files::ModelFiles;
use crate::models::HeadKind;
use crate::{Device, Error, Result};

pub static TASK: TaskInfo = TaskInfo {
    name: "token-classification",
    aliases: &["ner"],
    default_model: "Xenova/bert-base-multilingual-cased-ner-hrl",
    input: InputKind::Text,
    required_files: &["config.json", "tokenizer.json"],
    optional_files: &["tokenizer_config.json"],
    load: |files, device, options| Ok(Box::new(TokenClassification::load(files, device, options)?)),
};

pub struct TokenClassification {
    base: TextEncoderTask,
}

impl TokenClassification {
    pub fn load(files: &dyn ModelFiles, device: &Device, options: &LoadOptions) -> Result<TokenClassification> {
        Ok(TokenClassification { base: TextEncoderTask::load(files, device, options, Some(HeadKind::TokenClassification))? })
    }
}

impl Pipeline for TokenClassification {
    fn task(&self) -> &'static TaskInfo {
        &TASK
    }

    fn device(&self) -> &Device {
        &self.base.device
    }

    fn run<'a>(&'a self, _input: &'a Value, _options: &'a Value, _: &'a mut dyn FnMut(&str)) -> LocalFuture<'a, Result<Output>> {
        Box::pin(async move { Err(Error::Unsupported("token-classification is not finished".into())) })
    }
}
