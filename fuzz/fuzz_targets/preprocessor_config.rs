//! preprocessor_config.json: the image processor (sizes, crops, normalisation) run on a small
//! image, and the Whisper feature extractor run on a short clip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use webformers::audio::WhisperFeatureExtractor;
use webformers::image::{ImageProcessor, RawImage};

fuzz_target!(|data: &[u8]| {
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    if let Ok(p) = ImageProcessor::from_json(&json) {
        let pixels: Vec<u8> = (0..24 * 17 * 3).map(|i| (i * 7 % 256) as u8).collect();
        let image = RawImage::new(24, 17, 3, pixels).expect("a valid image");
        let _ = p.size.output_size(17, 24);
        let _ = p.process(&[image]);
    }
    if let Ok(fe) = WhisperFeatureExtractor::from_config(&json) {
        let clip: Vec<f32> = (0..4000).map(|i| (i as f32 * 0.05).sin() * 0.5).collect();
        let _ = fe.extract_unpadded(&clip);
    }
});
