//! question-answering. (Being written: the registry entry and loading are final; `run` is not yet.)

use serde_json::Value;

use super::text_encoder::TextEncoderTask;
use super::{InputKind, LoadOptions, LocalFuture, Output, Pipeline, TaskInfo};
use crate::files::ModelFiles;
use crate::models::HeadKind;
use crate::{Device, Error, Result};

pub static TASK: TaskInfo = TaskInfo {
    name: "question-answering",
    aliases: &[],
    default_model: "Xenova/distilbert-base-cased-distilled-squad",
    input: InputKind::QuestionContext,
    required_files: &["config.json", "tokenizer.json"],
    optional_files: &["tokenizer_config.json"],
    load: |files, device, options| Ok(Box::new(QuestionAnswering::load(files, device, options)?)),
};

pub struct QuestionAnswering {
    base: TextEncoderTask,
}

impl QuestionAnswering {
    pub fn load(files: &dyn ModelFiles, device: &Device, options: &LoadOptions) -> Result<QuestionAnswering> {
        Ok(QuestionAnswering { base: TextEncoderTask::load(files, device, options, Some(HeadKind::QuestionAnswering))? })
    }
}

impl Pipeline for QuestionAnswering {
    fn task(&self) -> &'static TaskInfo {
        &TASK
    }

    fn device(&self) -> &Device {
        &self.base.device
    }

    fn run<'a>(&'a self, _input: &'a Value, _options: &'a Value, _: &'a mut dyn FnMut(&str)) -> LocalFuture<'a, Result<Output>> {
        Box::pin(async move { Err(Error::Unsupported("question-answering is not finished".into())) })
    }
}
