//! summarization: a text (or texts) in, `[{summary_text}]` out, with a text encoder-decoder
//! (BART / DistilBART; the shared run in `seq2seq.rs`).

use super::seq2seq::{FILES, TextSeq2Seq};
use super::{InputKind, TaskInfo};

pub static TASK: TaskInfo = TaskInfo {
    name: "summarization",
    aliases: &[],
    default_model: "Xenova/distilbart-cnn-6-6",
    input: InputKind::Text,
    required_files: &["config.json"],
    optional_files: FILES,
    load: |files, device, options| Ok(Box::new(TextSeq2Seq::load(files, device, options, &TASK, "summary_text")?)),
};
