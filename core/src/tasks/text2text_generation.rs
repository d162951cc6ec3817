//! text2text-generation: a text (or texts) in, `[{generated_text}]` out, with any text
//! encoder-decoder (the shared run in `seq2seq.rs`).

use super::seq2seq::{FILES, TextSeq2Seq};
use super::{InputKind, TaskInfo};

pub static TASK: TaskInfo = TaskInfo {
    name: "text2text-generation",
    aliases: &[],
    default_model: "Xenova/flan-t5-small",
    input: InputKind::Text,
    required_files: &["config.json"],
    optional_files: FILES,
    load: |files, device, options| Ok(Box::new(TextSeq2Seq::load(files, device, options, &TASK, "generated_text")?)),
};
