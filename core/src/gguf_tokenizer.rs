//! A `tokenizers` tokenizer from a GGUF file's `tokenizer.ggml.*` metadata, built as the
//! tokenizer.json transformers would produce from it: byte-level BPE with the file's vocabulary
//! and merges, the pre-tokenizer its `tokenizer.ggml.pre` names, control tokens as special
//! added tokens, and BOS prepended when `tokenizer.ggml.add_bos_token` says so. Gemma's
//! sentencepiece vocabulary (`llama` model in a `gemma3` file) becomes transformers'
//! GemmaTokenizer: BPE with byte fallback over merges recovered from the vocabulary's order.

use std::collections::HashMap;

use serde_json::{Value, json};

use crate::tokenizer::Tokenizer;
use crate::{Error, Result};

/// The vocabulary part of a GGUF's metadata.
#[derive(Clone, Debug, Default)]
pub struct GgufVocab {
    /// `tokenizer.ggml.model`: "gpt2" for byte-level BPE (Llama 3, Qwen2, SmolLM2, GPT-2).
    pub model: String,
    /// `tokenizer.ggml.pre`: which split regex precedes byte-level encoding.
    pub pre: Option<String>,
    pub tokens: Vec<String>,
    /// `tokenizer.ggml.token_type`: 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte.
    pub token_types: Vec<i32>,
    /// "left right" pairs, in rank order.
    pub merges: Vec<String>,
    pub bos_id: Option<u32>,
    pub add_bos: bool,
    /// `general.architecture`: which sentencepiece tokenizer a `llama` vocabulary is.
    pub arch: String,
}

const GPT2_PATTERN: &str = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";
const LLAMA3_PATTERN: &str =
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const QWEN2_PATTERN: &str =
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

fn byte_level(use_regex: bool) -> Value {
    json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": use_regex})
}

/// A split regex isolating pieces, then byte-level encoding of each.
fn split_then_bytes(pattern: &str) -> Value {
    json!({"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": pattern}, "behavior": "Isolated", "invert": false},
        byte_level(false),
    ]})
}

pub fn build_tokenizer(v: &GgufVocab) -> Result<Tokenizer> {
    if v.model == "llama" && v.arch == "gemma3" {
        return build_gemma(v);
    }
    if v.model != "gpt2" {
        return Err(Error::Unsupported(format!(
            "GGUF tokenizer model `{}` (byte-level BPE, `gpt2`, is supported: Llama 3, Qwen2, SmolLM2, GPT-2)",
            v.model
        )));
    }
    if v.tokens.is_empty() {
        return Err(Error::Config("the GGUF has no tokenizer.ggml.tokens".into()));
    }
    let pre_tokenizer = match v.pre.as_deref() {
        Some("llama-bpe" | "llama3" | "smaug-bpe") => split_then_bytes(LLAMA3_PATTERN),
        Some("qwen2" | "deepseek-r1-qwen") => split_then_bytes(QWEN2_PATTERN),
        // GPT-2's own regex, which ByteLevel applies itself. transformers maps unknown names
        // (SmolLM2's "smollm" among them) to this as well.
        _ => byte_level(true),
    };
    let _ = GPT2_PATTERN; // documented above; ByteLevel(use_regex) applies the same pattern
    let vocab: serde_json::Map<String, Value> = v.tokens.iter().enumerate().map(|(i, t)| (t.clone(), json!(i))).collect();
    let merges: Vec<Value> = v
        .merges
        .iter()
        .map(|m| {
            let (a, b) = m.split_once(' ').ok_or_else(|| Error::Config(format!("GGUF merge {m:?} is not two tokens")))?;
            Ok(json!([a, b]))
        })
        .collect::<Result<_>>()?;
    let added = added_tokens(v, |_| true);
    let post_processor = bos_processor(v)?;
    let spec = json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": null,
        "pre_tokenizer": pre_tokenizer,
        "post_processor": post_processor,
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
        "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null, "end_of_word_suffix": null,
                  "fuse_unk": false, "byte_fallback": false, "ignore_merges": false, "vocab": vocab, "merges": merges},
    });
    let bytes = serde_json::to_vec(&spec).map_err(|e| Error::Tokenizer(e.to_string()))?;
    Tokenizer::for_generation(&bytes)
}

/// Control tokens (type 3) as special added tokens, user-defined ones (type 4) as plain added
/// tokens: matched whole in the text, as transformers' `add_gguf_special_tokens` adds them
/// (user-defined ones only where `in_vocab` has them as spelled: Gemma's runs of spaces are
/// looked up respelled instead).
fn added_tokens(v: &GgufVocab, in_vocab: impl Fn(&str) -> bool) -> Vec<Value> {
    v.tokens
        .iter()
        .enumerate()
        .filter_map(|(i, t)| match v.token_types.get(i) {
            Some(3) => Some(json!({"id": i, "content": t, "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true})),
            Some(4) if in_vocab(t) => Some(json!({"id": i, "content": t, "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": false})),
            _ => None,
        })
        .collect()
}

/// BOS before each text when the file says so.
fn bos_processor(v: &GgufVocab) -> Result<Value> {
    Ok(match (v.add_bos, v.bos_id) {
        (true, Some(bos)) => {
            let bos_text =
                v.tokens.get(bos as usize).cloned().ok_or_else(|| Error::Config(format!("BOS id {bos} is outside the vocabulary")))?;
            json!({"type": "TemplateProcessing",
                "single": [{"SpecialToken": {"id": bos_text, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
                "pair": [{"SpecialToken": {"id": bos_text, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
                "special_tokens": {bos_text.clone(): {"id": bos_text, "ids": [bos], "tokens": [bos_text]}}})
        }
        _ => Value::Null,
    })
}

/// Python's `str.isspace` (Unicode White_Space plus the separators U+001C..U+001F).
fn py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Gemma's vocabulary as transformers' `gemma_tokenizer` (integrations/gguf) rebuilds it: tokens
/// of spaces (and other blanks) respelled with U+2581 as GemmaTokenizer looks them up, and, since
/// the file has no merges, every split of a token into two tokens as a merge, ranked by the
/// token's position in the file (earlier first), then longer left and right parts first
/// (`generate_merges` with the positions as scores).
fn build_gemma(v: &GgufVocab) -> Result<Tokenizer> {
    if v.tokens.is_empty() {
        return Err(Error::Config("the GGUF has no tokenizer.ggml.tokens".into()));
    }
    let tokens: Vec<String> = v
        .tokens
        .iter()
        .map(|t| if t.contains(' ') && t.chars().all(py_space) { "\u{2581}".repeat(t.chars().count()) } else { t.clone() })
        .collect();
    // A dict from the list: a repeated spelling keeps its first place and its last id.
    let mut ids: HashMap<&str, usize> = HashMap::with_capacity(tokens.len());
    let mut order: Vec<&str> = Vec::with_capacity(tokens.len());
    for (i, t) in tokens.iter().enumerate() {
        if ids.insert(t.as_str(), i).is_none() {
            order.push(t.as_str());
        }
    }
    let mut merges: Vec<(usize, &str, &str)> = Vec::new(); // (rank: the merged token's id, left, right)
    for &t in &order {
        let rank = ids[t];
        let mut local: Vec<(&str, &str)> =
            t.char_indices().skip(1).map(|(at, _)| t.split_at(at)).filter(|(l, r)| ids.contains_key(l) && ids.contains_key(r)).collect();
        // generate_merges' final sort (descending score, then lengths, stable) puts the longest
        // left part first within a token.
        local.sort_by_key(|(l, _)| std::cmp::Reverse(l.chars().count()));
        merges.extend(local.into_iter().map(|(l, r)| (rank, l, r)));
    }
    merges.sort_by_key(|&(rank, _, _)| rank);
    let vocab: serde_json::Map<String, Value> = order.iter().map(|&t| (t.to_string(), json!(ids[t]))).collect();
    let merges: Vec<Value> = merges.into_iter().map(|(_, l, r)| json!([l, r])).collect();
    let unk = v.tokens.get(3).filter(|t| t.as_str() == "<unk>").map(|_| "<unk>");
    let spec = json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added_tokens(v, |t| ids.contains_key(t)),
        "normalizer": {"type": "Replace", "pattern": {"String": " "}, "content": "\u{2581}"},
        "pre_tokenizer": {"type": "Split", "pattern": {"String": " "}, "behavior": "MergedWithPrevious", "invert": false},
        "post_processor": bos_processor(v)?,
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": "\u{2581}"}, "content": " "},
            {"type": "ByteFallback"},
            {"type": "Fuse"},
        ]},
        "model": {"type": "BPE", "dropout": null, "unk_token": unk, "continuing_subword_prefix": null, "end_of_word_suffix": null,
                  "fuse_unk": true, "byte_fallback": true, "ignore_merges": false, "vocab": vocab, "merges": merges},
    });
    let bytes = serde_json::to_vec(&spec).map_err(|e| Error::Tokenizer(e.to_string()))?;
    Tokenizer::for_generation(&bytes)
}
