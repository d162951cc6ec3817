//! tokenizer.json loading, then encoding (single, pair, windows) and decoding with it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use webformers::tokenizer::Tokenizer;

const TEXTS: [&str; 3] = ["Hello, world! The quick brown fox.", "  héllo\n\twörld 🤗 12345 <s></s>[CLS]", ""];

fuzz_target!(|data: &[u8]| {
    let Ok(tokenizer) = Tokenizer::from_bytes(data, 64) else { return };
    for text in TEXTS {
        if let Ok(e) = tokenizer.encode_full(text, Some("a second text")) {
            let _ = tokenizer.decode(&e.ids, true);
        }
    }
    let _ = tokenizer.encode_windows(TEXTS[0], TEXTS[1], 16, 4);
    let _ = tokenizer.decode(&[0, 1, 2, 3, 1_000_000, u32::MAX], false);
});
