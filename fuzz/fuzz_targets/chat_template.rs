//! Chat templates (tokenizer_config.json's `chat_template`, a GGUF's `tokenizer.chat_template`)
//! rendered on a short conversation: hostile templates must end within the fuel, recursion and
//! output limits with an error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use webformers::chat::{ChatTemplate, Message};

fuzz_target!(|data: &[u8]| {
    let Ok(source) = std::str::from_utf8(data) else { return };
    let template = ChatTemplate::new(source, "<s>", "</s>");
    let messages = [
        Message::new("system", "You are a helpful assistant."),
        Message::new("user", "Hi there"),
        Message::new("assistant", "Hello! How can I help?"),
        Message::new("user", "Tell me a joke."),
    ];
    let _ = template.render(&messages, true);
});
