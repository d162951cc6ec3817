//! generation_config.json (with config.json's fallbacks) into a GenerationConfig, a call's
//! options over it, and the logits processors and stopping criteria built from it. The input is
//! `{"generation": ..., "config": ..., "options": ...}`, or any JSON taken as generation_config.json.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use webformers::generation::{GenerationConfig, criteria_for, processors_for};

fuzz_target!(|data: &[u8]| {
    let Ok(v) = serde_json::from_slice::<Value>(data) else { return };
    let (generation, config, options) = match v.get("generation") {
        Some(g) => (g.clone(), v["config"].clone(), v["options"].clone()),
        None => (v, Value::Null, Value::Null),
    };
    let Ok(mut c) = GenerationConfig::from_json(&generation, &config) else { return };
    let _ = c.validate();
    let _ = c.take_options("text-generation", &options);
    if c.validate().is_ok() {
        let _ = processors_for(&c);
        let _ = criteria_for(&c, 5);
        let _ = c.max_new_for(5);
    }
});
