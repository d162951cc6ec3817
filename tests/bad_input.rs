//! Bad input gives a clear error or a defined result, never a panic: truncated and corrupt
//! weights, missing files, a wrong shape, unknown architectures, empty texts.

use std::path::{Path, PathBuf};

use webformers::files::DirFiles;
use webformers::tasks::LoadOptions;
use webformers::tasks::feature_extraction::{FeatureExtraction, Pooling};
use webformers::{Device, Error};
use webformers_tests::{fixture, floats, max_abs_diff, model_dir};

/// A copy of the MiniLM folder in a fresh temp dir, with `edit` applied.
fn broken_model(tag: &str, edit: impl FnOnce(&Path)) -> PathBuf {
    let src = model_dir("all-MiniLM-L6-v2");
    let dir = std::env::temp_dir().join(format!("webformers-bad-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["config.json", "tokenizer.json", "tokenizer_config.json", "sentence_bert_config.json", "model.safetensors"] {
        std::fs::copy(src.join(f), dir.join(f)).unwrap();
    }
    edit(&dir);
    dir
}

fn load_error(dir: &Path) -> Error {
    match DirFiles::open(dir).and_then(|files| FeatureExtraction::load(&files, &Device::Cpu, &LoadOptions::default())) {
        Ok(_) => panic!("{} loaded, but it is broken", dir.display()),
        Err(e) => e,
    }
}

#[test]
fn truncated_safetensors_is_a_clear_error() {
    let dir = broken_model("truncated", |d| {
        let bytes = std::fs::read(d.join("model.safetensors")).unwrap();
        std::fs::write(d.join("model.safetensors"), &bytes[..bytes.len() / 2]).unwrap();
    });
    let msg = load_error(&dir).to_string();
    assert!(msg.contains("model.safetensors") && msg.contains("truncated"), "{msg}");
    // Cut inside the header too.
    std::fs::write(dir.join("model.safetensors"), b"\x10\x00\x00").unwrap();
    let msg = load_error(&dir).to_string();
    assert!(msg.contains("not a valid safetensors file"), "{msg}");
}

#[test]
fn corrupted_safetensors_header_is_a_clear_error() {
    let dir = broken_model("corrupt", |d| {
        let mut bytes = std::fs::read(d.join("model.safetensors")).unwrap();
        for b in &mut bytes[8..64] {
            *b = b'#';
        }
        std::fs::write(d.join("model.safetensors"), &bytes).unwrap();
    });
    let msg = load_error(&dir).to_string();
    assert!(msg.contains("model.safetensors") && msg.contains("not a valid safetensors file"), "{msg}");
}

#[test]
fn a_mis_shaped_tensor_is_named() {
    let dir = broken_model("shape", |d| {
        let path = d.join("config.json");
        let text = std::fs::read_to_string(&path).unwrap().replace("\"intermediate_size\": 1536", "\"intermediate_size\": 1535");
        std::fs::write(path, text).unwrap();
    });
    let msg = load_error(&dir).to_string();
    assert!(msg.contains("encoder.layer.0.intermediate.dense.weight") && msg.contains("[1535, 384]"), "{msg}");
}

#[test]
fn missing_files_and_folders_are_named() {
    let dir = broken_model("no-tokenizer", |d| std::fs::remove_file(d.join("tokenizer.json")).unwrap());
    let msg = load_error(&dir).to_string();
    assert!(msg.contains("tokenizer.json") && msg.contains("missing"), "{msg}");

    let dir = broken_model("no-config", |d| std::fs::remove_file(d.join("config.json")).unwrap());
    let msg = load_error(&dir).to_string();
    assert!(msg.contains("config.json"), "{msg}");

    let msg = load_error(Path::new("/nonexistent/model")).to_string();
    assert!(msg.contains("/nonexistent/model") && msg.contains("does not exist"), "{msg}");
}

#[test]
fn unknown_architecture_is_a_clear_error() {
    let dir = broken_model("arch", |d| {
        let path = d.join("config.json");
        let text = std::fs::read_to_string(&path).unwrap().replace("\"model_type\": \"bert\"", "\"model_type\": \"mamba\"");
        std::fs::write(path, text).unwrap();
    });
    let msg = load_error(&dir).to_string();
    assert!(msg.contains("mamba") && msg.contains("supported"), "{msg}");
}

#[test]
fn empty_strings_have_a_defined_embedding_and_no_texts_is_an_error() {
    let files = DirFiles::open(model_dir("all-MiniLM-L6-v2")).unwrap();
    let pipe = FeatureExtraction::load(&files, &Device::Cpu, &LoadOptions::default()).unwrap();
    let reference = fixture("minilm-reference.json");
    let empty = reference["inputs"].as_array().unwrap().iter().find(|i| i["text"] == "").expect("the reference embeds \"\"");
    let out = pollster::block_on(pipe.run(&["first", "", "last"], Pooling::Mean, true)).unwrap();
    assert!(max_abs_diff(out.row(1), &floats(&empty["embedding"])) <= 1e-4);
    let err = pollster::block_on(pipe.run(&[], Pooling::Mean, true)).unwrap_err();
    assert!(err.to_string().contains("at least one text"), "{err}");
}

/// The MiniLM tokenizer.json with its post-processor replaced by `post_processor`.
fn tokenizer_with_post_processor(post_processor: serde_json::Value) -> Vec<u8> {
    let mut json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(model_dir("all-MiniLM-L6-v2").join("tokenizer.json")).unwrap()).unwrap();
    json["post_processor"] = post_processor;
    serde_json::to_vec(&json).unwrap()
}

/// `tokenizers` panics while encoding with a template that names a special token its
/// post-processor does not define, or one whose ids and tokens differ in number. serde also
/// accepts a struct written as an array (found by fuzzing), so each is tried in both shapes;
/// every one must be refused at load with the reason.
#[test]
fn a_post_processor_template_that_would_panic_is_refused_at_load_in_any_json_shape() {
    use serde_json::json;
    let cls = json!({"id": "[CLS]", "ids": [101], "tokens": ["[CLS]"]});
    let seq_a = json!({"Sequence": {"id": "A", "type_id": 0}});
    let seq_b = json!({"Sequence": {"id": "B", "type_id": 1}});
    let template = |single: serde_json::Value, specials: serde_json::Value| json!({"type": "TemplateProcessing", "single": single, "pair": [seq_a, seq_b], "special_tokens": specials});
    let undefined = "do not define";
    let uneven = "ids for";
    let cases = [
        (
            "undefined token, map form",
            template(json!([{"SpecialToken": {"id": "[X]", "type_id": 0}}, seq_a]), json!({"[CLS]": cls})),
            undefined,
        ),
        ("undefined token, array form", template(json!([{"SpecialToken": ["[X]", 0]}, seq_a]), json!({"[CLS]": cls})), undefined),
        ("undefined token, string form", template(json!(["[X]", "$A"]), json!({"[CLS]": cls})), undefined),
        (
            "undefined token, processor as an array",
            json!(["TemplateProcessing", [{"SpecialToken": ["[X]", 0]}, seq_a], [seq_a, seq_b], {"[CLS]": cls}]),
            undefined,
        ),
        (
            "undefined token inside a Sequence",
            json!({"type": "Sequence", "processors": [template(json!([{"SpecialToken": ["[X]", 0]}, seq_a]), json!({}))]}),
            undefined,
        ),
        (
            "uneven ids, map form",
            template(
                json!([{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, seq_a]),
                json!({"[CLS]": {"id": "[CLS]", "ids": [101, 102], "tokens": ["[CLS]"]}}),
            ),
            uneven,
        ),
        (
            "uneven ids, array form",
            template(json!([{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, seq_a]), json!({"[CLS]": ["[CLS]", [101, 102], ["[CLS]"]]})),
            uneven,
        ),
    ];
    for (what, post_processor, reason) in cases {
        let bytes = tokenizer_with_post_processor(post_processor);
        match webformers::tokenizer::Tokenizer::from_bytes(&bytes, 64) {
            Ok(tokenizer) => {
                // A shape tokenizers itself refuses is fine too; one it accepts must encode.
                let encoded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    (tokenizer.encode_full("hello", None).is_ok(), tokenizer.encode_full("hello", Some("world")).is_ok())
                }));
                panic!(
                    "{what}: loaded, then encoding (single, pair) {}",
                    match encoded {
                        Err(_) => "panicked".to_string(),
                        Ok(ok) => format!("gave {ok:?}"),
                    }
                );
            }
            Err(e) => {
                let msg = e.to_string();
                assert!(msg.contains("tokenizer.json"), "{what}: {msg}");
                if !msg.contains(reason) {
                    eprintln!("{what}: refused by tokenizers' own parse: {msg}");
                }
            }
        }
    }
}
