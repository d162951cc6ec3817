//! translation: a text (or texts) in, `[{translation_text}]` out, with a text encoder-decoder
//! (Marian's opus-mt pairs; NLLB and M2M100 with `src_lang` / `tgt_lang`, translation_languages.rs;
//! the shared run in `seq2seq.rs`). transformers.js's
//! `translation_xx_to_yy` names resolve here (`tasks::task` keeps what comes before the first
//! `_`, as transformers.js does).

use super::seq2seq::{FILES, TextSeq2Seq};
use super::{InputKind, TaskInfo};

pub static TASK: TaskInfo = TaskInfo {
    name: "translation",
    aliases: &[],
    default_model: "Xenova/nllb-200-distilled-600M",
    input: InputKind::Text,
    required_files: &["config.json"],
    optional_files: FILES,
    load: |files, device, options| Ok(Box::new(TextSeq2Seq::load(files, device, options, &TASK, "translation_text")?)),
};
