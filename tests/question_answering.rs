//! question-answering against Python transformers' pipeline: the question-answering cases of
//! tests/fixtures/tiny-tasks-reference.json (tiny random `*ForQuestionAnswering` models with
//! contexts long enough to need several windows), on every backend. Strings and integers must be
//! equal, scores within the reference's tolerance (1e-4). An architecture this build cannot load (its encoder not merged yet)
//! is skipped with a note; any other load failure fails.

use serde_json::Value;
use webformers::Error;
use webformers::files::DirFiles;
use webformers::tasks::{self, LoadOptions, Output, Pipeline};
use webformers_tests::{devices, json_differences, repo_root, task_cases};

const TASK: &str = "question-answering";

fn run(pipe: &dyn Pipeline, input: &Value, options: &Value) -> webformers::Result<Value> {
    match pollster::block_on(pipe.run_json(input, options, &mut |_| {}))? {
        Output::Json(v) => Ok(v),
        other => panic!("question-answering returned a tensor: {other:?}"),
    }
}

fn load(model: &str, device: &webformers::Device) -> Option<Box<dyn Pipeline>> {
    let files = DirFiles::open(repo_root().join("tests/fixtures/tiny-tasks").join(model)).unwrap();
    match tasks::load(TASK, &files, device, &LoadOptions::default()) {
        Ok(pipe) => Some(pipe),
        Err(Error::Unsupported(why)) => {
            eprintln!("SKIPPING {model}: {why}");
            None
        }
        Err(e) => panic!("{model}: {e}"),
    }
}

#[test]
fn question_answering_matches_transformers() {
    let (cases, tolerance) = task_cases();
    let cases: Vec<&Value> = cases.iter().filter(|c| c["task"] == TASK).collect();
    assert!(!cases.is_empty(), "no {TASK} cases in the reference");
    let mut models: Vec<&str> = cases.iter().map(|c| c["model"].as_str().unwrap()).collect();
    models.dedup();
    let mut failures = Vec::new();
    let mut checked = 0;
    for device in devices() {
        for model in &models {
            let Some(pipe) = load(model, &device) else { continue };
            for (i, case) in cases.iter().filter(|c| c["model"] == *model).enumerate() {
                let label = format!("{device:?} {model} case {i} {}", case["options"]);
                match run(pipe.as_ref(), &case["input"], &case["options"]) {
                    Ok(got) => {
                        let diffs = json_differences(&got, &case["output"], tolerance);
                        if !diffs.is_empty() {
                            failures.push(format!("{label}: {}\n    got  {got}\n    want {}", diffs.join("; "), case["output"]));
                        }
                    }
                    Err(e) => failures.push(format!("{label}: {e}")),
                }
                checked += 1;
            }
        }
    }
    eprintln!("{checked} question-answering cases checked");
    assert!(failures.is_empty(), "{} of {checked} cases differ:\n{}", failures.len(), failures.join("\n"));
}

/// Bad questions and windows are errors that say what is wrong, never panics.
#[test]
fn question_answering_rejects_bad_input() {
    let Some(pipe) = load("bert-question-answering", &webformers::Device::Cpu) else { return };
    let context = "The keeper lived on the rock for eleven years and fished from the rocks every day. ".repeat(8);
    let bad = [
        (serde_json::json!({ "question": "Who?" }), Value::Null, "has no `context`"),
        (serde_json::json!([{ "question": "Who?", "context": "The keeper." }, { "context": context }]), Value::Null, "has no `question`"),
        (serde_json::json!({ "question": "Who?", "context": "" }), Value::Null, "an empty `context`"),
        (serde_json::json!({ "question": "", "context": context }), Value::Null, "an empty `question`"),
        (serde_json::json!("Who?"), Value::Null, "takes"),
        (serde_json::json!({ "question": "Who?", "context": context }), serde_json::json!({ "top_k": 0 }), "top_k"),
        (serde_json::json!({ "question": "Who?", "context": context }), serde_json::json!({ "max_answer_len": 0 }), "max_answer_len"),
        (serde_json::json!({ "question": "Who?", "context": context }), serde_json::json!({ "topk": 2 }), "topk"),
        (
            serde_json::json!({ "question": "Who?", "context": context }),
            serde_json::json!({ "doc_stride": 40, "max_seq_len": 32 }),
            "doc_stride",
        ),
        // The window leaves the context fewer tokens than the stride: tokenizers would panic.
        (
            serde_json::json!({ "question": "Who lived on the rock?", "context": context }),
            serde_json::json!({ "doc_stride": 20, "max_seq_len": 24 }),
            "stride",
        ),
        // The question alone fills the window.
        (
            serde_json::json!({ "question": "Who lived on the rock for eleven years?", "context": context }),
            serde_json::json!({ "doc_stride": 1, "max_seq_len": 8 }),
            "window",
        ),
    ];
    for (input, options, says) in bad {
        match run(pipe.as_ref(), &input, &options) {
            Err(e) => assert!(e.to_string().contains(says), "{input} {options}: `{e}` does not mention `{says}`"),
            Ok(v) => panic!("{input} {options}: accepted, gave {v}"),
        }
    }
}
