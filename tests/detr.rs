//! DETR's raw outputs (every query's logits and boxes, which the object-detection task's
//! thresholding hides) against PyTorch's on a photo, for both backbone layouts (timm's and
//! transformers' ResNet), on every device; and the checkpoints DETR refuses.
//! The reference is tests/fixtures/vision/detr-reference.json's `raw`
//! (tests/reference/make_tiny_vision_detr.py).

use webformers::Error;
use webformers::files::{DirFiles, MemoryFiles, ModelFiles};
use webformers::image::{ImageProcessor, decode};
use webformers::models::{self, ModelConfig, VisionHead};
use webformers::tasks::{self, LoadOptions};
use webformers::weights::{WeightDType, Weights};
use webformers::{Device, Tensor};
use webformers_tests::{devices, fixture, floats, max_abs_diff, repo_root};

fn vision_dir(name: &str) -> std::path::PathBuf {
    repo_root().join("tests/fixtures/vision").join(name)
}

fn outputs(model: &str, image: &str, device: &Device) -> (Vec<f32>, Vec<f32>, Vec<usize>) {
    let files = DirFiles::open(vision_dir(model)).unwrap();
    let config = ModelConfig::from_json(model, files.json("config.json").unwrap().unwrap()).unwrap();
    let vb = Weights::new(files.weights(device).unwrap(), device, WeightDType::Auto);
    let detr = models::load_vision_model(&config, &vb, VisionHead::ObjectDetection).unwrap();
    let processor = ImageProcessor::from_json(&files.json("preprocessor_config.json").unwrap().unwrap()).unwrap();
    let bytes = std::fs::read(repo_root().join("tests/fixtures/images").join(image)).unwrap();
    let processed = processor.process(&[decode(&bytes).unwrap()]).unwrap();
    let pixels = Tensor::from_f32(&processed.pixel_values, &processed.dims, device).unwrap();
    let out = detr.forward(&pixels, None).unwrap();
    let (logits, boxes) = (out.logits.unwrap(), out.pred_boxes.unwrap());
    let dims = logits.dims().to_vec();
    (logits.to_vec_f32_blocking().unwrap(), boxes.to_vec_f32_blocking().unwrap(), dims)
}

#[test]
fn detr_logits_and_boxes_match_pytorch_for_both_backbone_layouts() {
    let reference = fixture("vision/detr-reference.json");
    let tolerance = reference["tolerance"].as_f64().unwrap() as f32;
    let raws = reference["raw"].as_array().expect("raw outputs");
    assert_eq!(raws.len(), 2, "one per backbone layout");
    for device in devices() {
        for raw in raws {
            let (model, image) = (raw["model"].as_str().unwrap(), raw["image"].as_str().unwrap());
            let (want_logits, want_boxes) = (floats(&raw["logits"]), floats(&raw["pred_boxes"]));
            let (logits, boxes, dims) = outputs(model, image, &device);
            assert_eq!(dims[0] * dims[1] * dims[2], want_logits.len(), "{model}: logits {dims:?}");
            let (dl, db) = (max_abs_diff(&logits, &want_logits), max_abs_diff(&boxes, &want_boxes));
            eprintln!("{device:?} {model}: logits within {dl:e}, boxes within {db:e}");
            assert!(dl <= tolerance && db <= tolerance, "{device:?} {model}: logits differ by {dl}, boxes by {db}");
        }
    }
}

/// A folder's files with config.json edited.
fn with_config(model: &str, edit: impl Fn(&mut serde_json::Value)) -> MemoryFiles {
    let dir = vision_dir(model);
    let mut files = MemoryFiles::new(model);
    for name in ["model.safetensors", "preprocessor_config.json"] {
        files.insert(name, std::fs::read(dir.join(name)).unwrap());
    }
    let mut config: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
    edit(&mut config);
    files.insert("config.json", serde_json::to_vec(&config).unwrap());
    files
}

fn load_error(files: &dyn ModelFiles, task: &str) -> String {
    match tasks::load(task, files, &Device::Cpu, &LoadOptions::default()) {
        Ok(_) => panic!("{task} loaded {}", files.name()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn detr_refuses_what_it_cannot_run() {
    // Another class's checkpoint: both classes named.
    let e = load_error(&with_config("tiny-detr", |c| c["architectures"] = serde_json::json!(["DetrForSegmentation"])), "object-detection");
    assert!(e.contains("DetrForSegmentation") && e.contains("DetrForObjectDetection"), "{e}");
    let e = load_error(&with_config("tiny-detr", |c| c["position_embedding_type"] = "learned".into()), "object-detection");
    assert!(e.contains("learned"), "{e}");
    let e = load_error(&with_config("tiny-detr", |c| c["dilation"] = true.into()), "object-detection");
    assert!(e.contains("dilated"), "{e}");
    // Bad options and inputs are errors naming them.
    let files = DirFiles::open(vision_dir("tiny-detr")).unwrap();
    let pipeline = tasks::load("object-detection", &files, &Device::Cpu, &LoadOptions::default()).unwrap();
    let image = serde_json::json!(repo_root().join("tests/fixtures/images/cat.jpg").to_string_lossy());
    for (input, options, words) in [
        (image.clone(), serde_json::json!({"top_k": 3}), "top_k"),
        (image.clone(), serde_json::json!({"threshold": "high"}), "threshold"),
        (serde_json::json!(42), serde_json::Value::Null, "image"),
        (serde_json::json!([]), serde_json::Value::Null, "empty"),
    ] {
        match pollster::block_on(pipeline.run_json(&input, &options, &mut |_| {})) {
            Err(e @ Error::Input(_)) => assert!(e.to_string().contains(words), "{input} {options}: {e}"),
            other => panic!("{input} {options}: {other:?}"),
        }
    }
}
