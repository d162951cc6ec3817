//! Pipeline tasks, one file each, named as transformers.js names them. A task wraps a model with
//! its pre- and post-processing; the CLI and the JS package call tasks, never models.

use crate::weights::WeightDType;
use crate::{Error, Result};

pub mod feature_extraction;
pub mod text_generation;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Task {
    FeatureExtraction,
    TextGeneration,
}

pub const TASKS: &[(&str, Task)] =
    &[("feature-extraction", Task::FeatureExtraction), ("embeddings", Task::FeatureExtraction), ("text-generation", Task::TextGeneration)];

impl Task {
    pub fn from_name(name: &str) -> Result<Task> {
        TASKS.iter().find(|(n, _)| *n == name).map(|(_, t)| *t).ok_or_else(|| {
            let names: Vec<&str> = TASKS.iter().map(|(n, _)| *n).collect();
            Error::Unsupported(format!("unknown task `{name}`; supported: {}", names.join(", ")))
        })
    }
}

impl Task {
    /// Every file besides the weights that the task's `load` may read (absent ones are fine): what a
    /// remote source (the Hub) fetches before loading. A file read but missing here is an error.
    pub fn files(&self) -> &'static [&'static str] {
        match self {
            Task::FeatureExtraction => &["config.json", "tokenizer.json", "tokenizer_config.json", "sentence_bert_config.json"],
            Task::TextGeneration => &["config.json", "tokenizer.json", "tokenizer_config.json", "generation_config.json"],
        }
    }
}

/// Options common to loading any task's model.
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    pub dtype: WeightDType,
}
