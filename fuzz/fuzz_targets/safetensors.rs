//! A safetensors file (header, then every tensor read and converted as a model would), and the
//! same bytes as a sharded checkpoint's index.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use webformers::Device;
use webformers::weights::safetensors::{SafetensorsFile, parse_header, shard_files};
use webformers::weights::{WeightDType, WeightSource, Weights};

fuzz_target!(|data: &[u8]| {
    let _ = shard_files(data, "fuzz/model.safetensors.index.json");
    let _ = parse_header(data, "fuzz/model.safetensors");
    let Ok(file) = SafetensorsFile::from_bytes(Arc::new(data.to_vec()), "fuzz/model.safetensors") else { return };
    let file: Arc<dyn WeightSource> = Arc::new(file);
    for dtype in [WeightDType::Auto, WeightDType::F16] {
        let vb = Weights::new(file.clone(), &Device::Cpu, dtype);
        for name in file.names() {
            let dims = file.info(name).map(|i| i.dims.clone()).unwrap_or_default();
            if let Ok(t) = vb.get(name, &dims) {
                let _ = t.to_vec_f32_blocking();
            }
        }
    }
});
