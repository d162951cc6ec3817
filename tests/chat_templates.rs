//! Chat templates rendered byte for byte as transformers renders them
//! (tests/fixtures/chat/reference.json, from tests/reference/make_chat_template_reference.py):
//! the tiny decoders' ChatML templates and SmolLM2's GGUF template with multi-turn histories, and
//! a tool-calling template with tools (every `tojson` option), documents, tool calls and results,
//! content parts, `enable_thinking` and extra variables; and the real templates of Qwen3, SmolLM3,
//! Phi-3.5 and Gemma 3 (fetched by scripts/fetch-models.sh into .cache/models/chat-templates, not
//! committed: third-party text) with histories, system prompts, tools, tool calls and results,
//! thinking on and off, and their `raise_exception`s as errors. Then the same through the text-generation
//! pipeline's options (`tools`, `documents`, `add_generation_prompt`, `chat_template`,
//! `chat_template_kwargs`) and its `apply_chat_template` method, and bad chats as clear errors.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use webformers::chat::{ChatOptions, ChatTemplate};
use webformers::files::DirFiles;
use webformers::tasks::{LoadOptions, Output, Pipeline};
use webformers_tests::{fixture, model_dir, repo_root};

fn options(case: &Value) -> ChatOptions {
    ChatOptions {
        add_generation_prompt: case["add_generation_prompt"].as_bool().unwrap(),
        tools: Some(case["tools"].clone()).filter(|v| !v.is_null()),
        documents: Some(case["documents"].clone()).filter(|v| !v.is_null()),
        extra: case["extra"].as_object().unwrap().clone(),
    }
}

/// A case's template text: in the reference, or (`cache:NAME`) the fetched file, checked to be
/// the one the reference was made with.
fn source(case: &Value) -> String {
    let Some(file) = case["template"].as_str().unwrap().strip_prefix("cache:") else {
        return case["source"].as_str().unwrap().to_string();
    };
    let path = model_dir("chat-templates").join(file);
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e} (run scripts/fetch-models.sh chat-templates)", path.display()));
    let sha: String = Sha256::digest(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(sha, case["sha256"].as_str().unwrap(), "{} is not the template the reference was made with", path.display());
    text
}

#[test]
fn templates_render_as_transformers() {
    let reference = fixture("chat/reference.json");
    let cases = reference["cases"].as_array().unwrap();
    assert!(cases.len() >= 36);
    for family in ["Qwen-Qwen3-0.6B", "HuggingFaceTB-SmolLM3-3B", "microsoft-Phi-3.5-mini-instruct", "google-gemma-3"] {
        assert!(cases.iter().any(|c| c["template"] == format!("cache:{family}.jinja")), "no case of {family}");
    }
    for case in cases {
        let template = ChatTemplate::new(source(case), case["bos_token"].as_str().unwrap(), case["eos_token"].as_str().unwrap());
        let messages = case["messages"].as_array().unwrap();
        let got = template.render_with(messages, &options(case));
        if let Some(error) = case["error"].as_str() {
            // transformers raises the template's message; so must we, as an input error.
            let err = got.expect_err(case["name"].as_str().unwrap()).to_string();
            assert!(err.contains(error), "{}: {err}", case["name"]);
            continue;
        }
        let got = got.unwrap_or_else(|e| panic!("{}: {e}", case["name"]));
        let want = case["rendered"].as_str().unwrap();
        assert!(got == want, "{}:\n--- got\n{got}\n--- want\n{want}", case["name"]);
    }
}

fn load(name: &str) -> Box<dyn Pipeline> {
    let files = DirFiles::open(repo_root().join("tests/fixtures").join(name)).unwrap();
    webformers::tasks::load("text-generation", &files, &webformers::Device::Cpu, &LoadOptions::default()).unwrap()
}

/// The pipeline renders a chat with its options as `render_with` does, and returns
/// transformers.js's shape: the messages as given (tool calls and all) plus the reply.
#[test]
fn pipeline_takes_chat_options() {
    let reference = fixture("chat/reference.json");
    let case = reference["cases"].as_array().unwrap().iter().find(|c| c["name"] == "tiny-llama override: tools").unwrap();
    let pipe = load("tiny-llama");
    let mut args = json!({
        "messages": case["messages"],
        "tools": case["tools"],
        "chat_template": case["source"],
        "add_generation_prompt": true,
        "chat_template_kwargs": case["extra"],
    });
    // An override keeps the model's special tokens: the reference rendered it with tiny-llama's.
    assert_eq!(pipe.call("apply_chat_template", &args).unwrap(), case["rendered"]);
    // transformers.js's form: the messages alone (the model's template, generation prompt on).
    let history = json!([{"role": "user", "content": "Hi"}]);
    assert_eq!(
        pipe.call("apply_chat_template", &history).unwrap(),
        json!("<|begin_of_text|><|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
    );

    let run = |input: &Value, options: &Value| match pollster::block_on(pipe.run_json(input, options, &mut |_| {})) {
        Ok(Output::Json(v)) => Ok(v),
        Ok(other) => panic!("{other:?}"),
        Err(e) => Err(e.to_string()),
    };
    // A generation with the documents case (the tools one outgrows the tiny model's context).
    let docs = reference["cases"].as_array().unwrap().iter().find(|c| c["name"] == "tiny-llama override: documents").unwrap();
    let call_options = json!({
        "max_new_tokens": 3,
        "documents": docs["documents"],
        "chat_template": docs["source"],
        "chat_template_kwargs": docs["extra"],
    });
    let out = run(&docs["messages"], &call_options).unwrap();
    let chat = out[0]["generated_text"].as_array().unwrap();
    assert_eq!(&chat[..chat.len() - 1], docs["messages"].as_array().unwrap().as_slice());
    assert_eq!(chat.last().unwrap()["role"], "assistant");
    let prompt = pipe.call("apply_chat_template", &json!({"messages": docs["messages"], "documents": docs["documents"], "chat_template": docs["source"], "chat_template_kwargs": docs["extra"]})).unwrap();
    assert_eq!(prompt, docs["rendered"]);
    let prompt_tokens = out[0]["stats"]["prompt_tokens"].as_u64().unwrap() as usize;
    let want_tokens = pipe.call("apply_chat_template", &json!({"messages": docs["messages"], "chat_template": docs["source"]})).unwrap();
    assert!(prompt_tokens > want_tokens.as_str().unwrap().len() / 8, "the documents were not in the prompt: {prompt_tokens} tokens");
    // add_generation_prompt: false ends before the assistant's turn.
    let no_prompt = pipe.call("apply_chat_template", &json!({"messages": docs["messages"], "add_generation_prompt": false})).unwrap();
    assert!(!no_prompt.as_str().unwrap().ends_with("assistant\n"), "{no_prompt}");

    // Bad chats and options are errors that say what is wrong.
    args["tools"] = json!({"name": "x"});
    let err = pipe.call("apply_chat_template", &args).unwrap_err().to_string();
    assert!(err.contains("tools"), "{err}");
    for (input, options, says) in [
        (json!([{"content": "no role"}]), Value::Null, "role"),
        (json!([]), Value::Null, "empty"),
        (json!([{"role": "user", "content": "x"}]), json!({"documents": "text"}), "documents"),
        (json!([{"role": "user", "content": "x"}]), json!({"chat_template_kwargs": 3}), "chat_template_kwargs"),
        (json!([{"role": "user", "content": "x"}]), json!({"chat_template": "{% if %}"}), "chat template"),
        (json!("plain text"), json!({"tools": []}), "messages"),
    ] {
        let err = run(&input, &options).unwrap_err();
        assert!(err.contains(says), "{input} {options}: {err}");
    }
}
