//! Every vision task on every vision architecture, through the one task contract
//! (`tasks::load(task, files, device)` then `run(input, options)`), against the answers of Python
//! transformers' own `pipeline()` on tiny random models: labels identical, scores and embeddings
//! within the reference's stated tolerance, boxes within half a pixel, on the CPU and the GPU
//! backends.
//!
//! Each `tests/fixtures/vision/*-reference.json` (one per model family, made by the script its
//! `made_by` names) holds `{tolerance, cases: [{task, model, input, options, output}]}`; `model`
//! is a folder of `tests/fixtures/vision/`, and image inputs are file names in
//! `tests/fixtures/images/`.

use serde_json::Value;
use webformers::files::DirFiles;
use webformers::tasks::{self, LoadOptions, Pipeline};
use webformers_tests::{PipelineCache, devices, json_differences, repo_root};

/// Image file names in an input, made paths (the CLI and this test pass paths; front ends pass
/// decoded pixels).
fn with_image_paths(input: &Value) -> Value {
    let images = repo_root().join("tests/fixtures/images");
    match input {
        Value::String(name) if images.join(name).is_file() => Value::String(images.join(name).to_string_lossy().into_owned()),
        Value::Array(items) => Value::Array(items.iter().map(with_image_paths).collect()),
        other => other.clone(),
    }
}

#[test]
fn every_vision_task_matches_python_transformers_on_every_architecture() {
    let dir = repo_root().join("tests/fixtures/vision");
    let mut references: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/fixtures/vision")
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with("-reference.json"))
        .collect();
    references.sort();
    assert!(!references.is_empty(), "no vision references in {}", dir.display());
    let mut failures = Vec::new();
    let mut count = 0;
    for device in devices() {
        for path in &references {
            let reference: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
            let tolerance = reference["tolerance"].as_f64().expect("the reference states its tolerance");
            let mut pipelines = PipelineCache::new(dir.clone(), device.clone());
            for case in reference["cases"].as_array().expect("cases") {
                count += 1;
                let (task, model) = (case["task"].as_str().unwrap(), case["model"].as_str().unwrap());
                let pipe = match pipelines.get(task, model) {
                    Ok(pipe) => pipe,
                    Err(e) => {
                        failures.push(format!("{device:?} {e}"));
                        continue;
                    }
                };
                let label = format!("{device:?} {task} {model} {} {}", case["input"], case["options"]);
                let input = with_image_paths(&case["input"]);
                match pollster::block_on(pipe.run_json(&input, &case["options"], &mut |_| {})) {
                    Ok(out) => {
                        let diffs = json_differences(&out.to_json(), &case["output"], tolerance);
                        if !diffs.is_empty() {
                            let mut shown = diffs.clone();
                            shown.truncate(5);
                            failures.push(format!("{label}: {} differences: {}", diffs.len(), shown.join("; ")));
                        }
                    }
                    Err(e) => failures.push(format!("{label}: {e}")),
                }
            }
        }
    }
    let mut shown = failures.clone();
    shown.truncate(40);
    assert!(failures.is_empty(), "{} of {count} cases failed:\n{}", failures.len(), shown.join("\n"));
}

/// Loads `task` on the tiny model `model` of tests/fixtures/vision on the CPU.
fn load_tiny(task: &str, model: &str) -> webformers::Result<Box<dyn Pipeline>> {
    let files = DirFiles::open(repo_root().join("tests/fixtures/vision").join(model)).unwrap();
    tasks::load(task, &files, &webformers::Device::Cpu, &LoadOptions::default())
}

#[test]
fn image_tasks_refuse_bad_input_with_clear_errors() {
    let classify = load_tiny("image-classification", "tiny-vit-classifier").unwrap();
    let run = |p: &dyn Pipeline, input: Value, options: Value| pollster::block_on(p.run_json(&input, &options, &mut |_| {}));
    // Text where an image belongs: not a file, so an error (never a panic).
    let err = run(&*classify, serde_json::json!("a photo of a cat"), Value::Null).unwrap_err().to_string();
    assert!(err.contains("a photo of a cat"), "{err}");
    let err = run(&*classify, serde_json::json!(42), Value::Null).unwrap_err().to_string();
    assert!(err.contains("image-classification") && err.contains("a number"), "{err}");
    let err = run(&*classify, serde_json::json!([]), Value::Null).unwrap_err().to_string();
    assert!(err.contains("empty"), "{err}");
    let cat = with_image_paths(&serde_json::json!("cat.jpg"));
    let err = run(&*classify, cat.clone(), serde_json::json!({"top_k": "all"})).unwrap_err().to_string();
    assert!(err.contains("image-classification options"), "{err}");
    let err = run(&*classify, cat.clone(), serde_json::json!({"pool": true})).unwrap_err().to_string();
    assert!(err.contains("pool"), "{err}");

    // A checkpoint of another head: a ViTModel has no classifier; both classes are named.
    for (model, class, wanted) in [
        ("tiny-vit", "ViTModel", "ViTForImageClassification"),
        ("tiny-dinov2", "Dinov2Model", "Dinov2ForImageClassification"),
        ("tiny-convnext", "ConvNextModel", "ConvNextForImageClassification"),
    ] {
        let err = load_tiny("image-classification", model).err().expect("a backbone has no classifier").to_string();
        assert!(err.contains(class) && err.contains(wanted), "{err}");
    }

    // `pool: true` on a ViT saved without its pooler.
    let features = load_tiny("image-feature-extraction", "tiny-vit-no-pooler").unwrap();
    let err = run(&*features, cat, serde_json::json!({"pool": true})).unwrap_err().to_string();
    assert!(err.contains("pool"), "{err}");

    // A text model is not a vision model.
    let files = DirFiles::open(repo_root().join("tests/fixtures/tiny-bert-pooler")).unwrap();
    let err = tasks::load("image-feature-extraction", &files, &webformers::Device::Cpu, &LoadOptions::default()).err().unwrap().to_string();
    assert!(err.contains("vision model"), "{err}");
}

#[test]
fn dual_encoders_refuse_bad_input_with_clear_errors() {
    let run = |p: &dyn Pipeline, input: Value, options: Value| pollster::block_on(p.run_json(&input, &options, &mut |_| {}));
    let clf = load_tiny("zero-shot-image-classification", "tiny-clip").unwrap();
    let coffee = with_image_paths(&serde_json::json!("coffee.png"));
    let err = run(&*clf, coffee.clone(), Value::Null).unwrap_err().to_string();
    assert!(err.contains("candidate_labels"), "{err}");
    let err = run(&*clf, coffee.clone(), serde_json::json!({"candidate_labels": []})).unwrap_err().to_string();
    assert!(err.contains("candidate_labels"), "{err}");
    let err = run(&*clf, coffee.clone(), serde_json::json!({"candidate_labels": "cat, dog"})).unwrap_err().to_string();
    assert!(err.contains("zero-shot-image-classification options"), "{err}");
    let err = run(&*clf, coffee, serde_json::json!({"candidate_labels": ["cat"], "multi_label": true})).unwrap_err().to_string();
    assert!(err.contains("multi_label"), "{err}");
    let err = run(&*clf, serde_json::json!(7), serde_json::json!({"candidate_labels": ["cat"]})).unwrap_err().to_string();
    assert!(err.contains("zero-shot-image-classification"), "{err}");

    // Text embeddings are already one vector a text: a pooling mode is refused, not ignored.
    let embed = load_tiny("feature-extraction", "tiny-siglip").unwrap();
    let err = run(&*embed, serde_json::json!("a cat"), serde_json::json!({"pooling": "mean"})).unwrap_err().to_string();
    assert!(err.contains("pooling"), "{err}");
    let err = run(&*embed, serde_json::json!([]), Value::Null).unwrap_err().to_string();
    assert!(err.contains("at least one text"), "{err}");

    // A text model is no dual encoder.
    let files = DirFiles::open(repo_root().join("tests/fixtures/tiny-bert-pooler")).unwrap();
    let err =
        tasks::load("zero-shot-image-classification", &files, &webformers::Device::Cpu, &LoadOptions::default()).err().unwrap().to_string();
    assert!(err.contains("dual encoder"), "{err}");
}
