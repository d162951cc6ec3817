//! config.json into the model registry: ModelConfig, then every architecture's config struct and
//! the sizes derived from it, as each entry point loads it (with no weights, so a load ends at the
//! first missing tensor; whatever comes before must fail cleanly on any config).
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use webformers::Device;
use webformers::models::{self, HeadKind, ModelConfig, VisionHead};
use webformers::weights::{DeviceWeights, WeightDType, Weights};

fuzz_target!(|data: &[u8]| {
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    let Ok(config) = ModelConfig::from_json("fuzz", json) else { return };
    let _ = config.label_id("LABEL_0");
    let vb = Weights::new(Arc::new(DeviceWeights::new("fuzz", &Device::Cpu)), &Device::Cpu, WeightDType::Auto);
    let _ = models::load_text_model(&config, &vb, None);
    for head in HeadKind::ALL {
        let _ = models::load_text_model(&config, &vb, Some(head));
    }
    let _ = models::load_decoder(&config, &vb);
    let _ = models::load_text_seq2seq(&config, &vb);
    let _ = models::load_speech_seq2seq(&config, &vb);
    let _ = models::load_image_text_model(&config, &vb);
    for head in [VisionHead::None, VisionHead::ImageClassification, VisionHead::ObjectDetection] {
        let _ = models::load_vision_model(&config, &vb, head);
    }
});
