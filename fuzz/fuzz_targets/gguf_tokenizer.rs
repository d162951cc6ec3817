//! The tokenizer built from a GGUF's `tokenizer.ggml.*` metadata, then used. The metadata comes as
//! JSON here (`{"model", "pre", "tokens", "token_types", "merges", "bos_id", "add_bos", "arch",
//! "text"}`) so that mutations reach the vocabulary rather than the GGUF framing, which the gguf
//! target covers (it builds the same tokenizer from real GGUF metadata).
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use webformers::gguf_tokenizer::{GgufVocab, build_tokenizer};

fn strings(v: &Value) -> Vec<String> {
    v.as_array().map(|a| a.iter().map(|s| s.as_str().map(str::to_string).unwrap_or_else(|| s.to_string())).collect()).unwrap_or_default()
}

fuzz_target!(|data: &[u8]| {
    let Ok(v) = serde_json::from_slice::<Value>(data) else { return };
    let vocab = GgufVocab {
        model: v["model"].as_str().unwrap_or("gpt2").to_string(),
        pre: v["pre"].as_str().map(str::to_string),
        tokens: strings(&v["tokens"]),
        token_types: v["token_types"].as_array().map(|a| a.iter().map(|t| t.as_i64().unwrap_or(1) as i32).collect()).unwrap_or_default(),
        merges: strings(&v["merges"]),
        bos_id: v["bos_id"].as_u64().map(|b| b as u32),
        add_bos: v["add_bos"].as_bool().unwrap_or(false),
        arch: v["arch"].as_str().unwrap_or("llama").to_string(),
    };
    let Ok(tokenizer) = build_tokenizer(&vocab) else { return };
    let text = v["text"].as_str().unwrap_or("Hello, world! 12345 \n\t héllo 🤗");
    if let Ok(e) = tokenizer.encode_full(text, None) {
        let _ = tokenizer.decode(&e.ids, false);
    }
});
