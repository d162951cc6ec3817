//! A GGUF file: header, metadata, tensor table and data ranges, every tensor's bytes, and the
//! whole model load (metadata to config, tokenizer and chat template, tensors dequantized).
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use webformers::Device;
use webformers::weights::WeightDType;
use webformers::weights::gguf::{GgufFile, parse_header};

fuzz_target!(|data: &[u8]| {
    let _ = parse_header(data, "fuzz.gguf");
    let Ok(file) = GgufFile::from_bytes(Arc::new(data.to_vec()), "fuzz.gguf") else { return };
    let names: Vec<String> = file.tensors().iter().map(|t| t.name.clone()).collect();
    for name in &names {
        let _ = file.tensor(name);
        let _ = file.tensor_bytes(name);
    }
    let _ = webformers::models::gguf::load(file, &Device::Cpu, WeightDType::Auto);
});
