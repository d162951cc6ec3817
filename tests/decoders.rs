//! Tiny random Llama, Qwen2, Qwen3, Gemma 3 (sliding window shorter than the prompts), SmolLM3 (a
//! NoPE layer), Phi-3 (partial rotary, LongRoPE whose long factors take over while generating, a
//! sliding window) and GPT-2 models (made with transformers at a fixed seed, committed under
//! tests/fixtures with golden outputs from tests/reference/make_tiny_decoders.py) on every backend:
//! tokenization, logits at every prompt position, step-by-step logits through the KV cache, greedy
//! continuations, the chat template, and tiny-qwen3, tiny-phi3 and tiny-smollm3 loaded from GGUFs.

use webformers::chat::Message;
use webformers::files::DirFiles;
use webformers::tasks::LoadOptions;
use webformers::tasks::text_generation::{GenerationOptions, Prompt, StopReason, TextGeneration};
use webformers_tests::{FP16_DECODER_LOGITS_TOLERANCE, devices, fixture, floats, max_abs_diff, repo_root};

/// f32 models of hidden size 64: differences come from summation order only.
const LOGITS_TOLERANCE: f32 = 1e-4;

fn ids(v: &serde_json::Value) -> Vec<u32> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect()
}

fn load(name: &str, device: &webformers::Device) -> TextGeneration {
    let files = DirFiles::open(repo_root().join("tests/fixtures").join(name)).unwrap();
    TextGeneration::load(&files, device, &LoadOptions::default()).unwrap()
}

fn models() -> Vec<(String, serde_json::Value)> {
    let reference = fixture("tiny-decoders-reference.json");
    reference["models"].as_object().unwrap().iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

#[test]
fn tokenizers_match() {
    for (name, m) in models() {
        let pipe = load(&name, &webformers::Device::Cpu);
        for case in m["tokenizer_cases"].as_array().unwrap() {
            let got = pipe.tokenizer().encode(case["text"].as_str().unwrap(), true).unwrap();
            assert_eq!(got, ids(&case["ids"]), "{name}: {:?}", case["text"]);
        }
    }
}

#[test]
fn prompt_logits_and_cached_steps_match() {
    for device in devices() {
        for (name, m) in models() {
            let pipe = load(&name, &device);
            let model = pipe.model();
            for (p, prompt) in m["prompts"].as_array().unwrap().iter().enumerate() {
                let prompt_ids = ids(&prompt["token_ids"]);
                assert_eq!(
                    pipe.prompt_ids(&Prompt::Text(prompt["text"].as_str().unwrap().into())).unwrap(),
                    prompt_ids,
                    "{name} prompt {p} ids"
                );
                // Every position's logits from one prefill.
                let mut cache = model.new_cache(prompt_ids.len() + 32).unwrap();
                let logits = model.forward(&prompt_ids, &mut cache, true).unwrap().to_vec_f32_blocking().unwrap();
                let want = floats(&prompt["logits"]);
                let d = max_abs_diff(&logits, &want);
                assert!(d <= LOGITS_TOLERANCE, "{device:?} {name} prompt {p}: prefill logits differ by {d:e}");
                // Then one token at a time through the cache, feeding the reference's greedy ids.
                if let Some(steps) = prompt["step_logits"].as_array() {
                    let greedy = ids(&prompt["greedy_ids"]);
                    for (s, step) in steps.iter().enumerate().skip(1) {
                        let got = model.forward(&[greedy[s - 1]], &mut cache, false).unwrap().to_vec_f32_blocking().unwrap();
                        let d = max_abs_diff(&got, &floats(step));
                        assert!(d <= LOGITS_TOLERANCE, "{device:?} {name} prompt {p} step {s}: logits differ by {d:e}");
                    }
                }
            }
        }
    }
}

#[test]
fn greedy_generation_matches() {
    for device in devices() {
        for (name, m) in models() {
            let pipe = load(&name, &device);
            for prompt in m["prompts"].as_array().unwrap() {
                let want = ids(&prompt["greedy_ids"]);
                let options = GenerationOptions { max_new_tokens: want.len(), ..Default::default() };
                let mut streamed = String::new();
                let out = pollster::block_on(
                    pipe.generate(&Prompt::Text(prompt["text"].as_str().unwrap().into()), &options, |s| streamed.push_str(s)),
                )
                .unwrap();
                assert_eq!(out.token_ids, want, "{device:?} {name}: greedy ids for {:?}", prompt["text"]);
                assert_eq!(out.stop_reason, StopReason::MaxTokens);
                assert_eq!(streamed, out.text, "{name}: the streamed pieces add up to the text");
                assert_eq!(out.text, pipe.tokenizer().decode(&want, true).unwrap());
            }
        }
    }
}

#[test]
fn fp16_on_the_gpu_attends_an_f16_kv_cache() {
    // Issue 13 §3: dtype fp16 keeps the KV cache in f16 where the adapter has shader-f16 (half
    // the cache, half what attention reads per token), written and attended in place by the same
    // fused kernels. Every tiny decoder: prefill and cached-step logits within the fp16
    // tolerance of PyTorch's fp32, and the greedy ids wherever PyTorch's own margin between the
    // top two tokens exceeds twice that tolerance.
    let Some(device) = webformers_tests::gpu_with_shader_f16() else { return };
    let fp16 = LoadOptions { dtype: webformers::weights::WeightDType::F16.into() };
    for (name, m) in models() {
        let files = DirFiles::open(repo_root().join("tests/fixtures").join(&name)).unwrap();
        let pipe = TextGeneration::load(&files, &device, &fp16).unwrap();
        let model = pipe.model();
        let f32_bytes = load(&name, &device).model().new_cache(64).unwrap().bytes();
        assert_eq!(model.new_cache(64).unwrap().bytes() * 2, f32_bytes, "{name}: the fp16 cache is half the f32 one");
        for (p, prompt) in m["prompts"].as_array().unwrap().iter().enumerate() {
            let prompt_ids = ids(&prompt["token_ids"]);
            let greedy = ids(&prompt["greedy_ids"]);
            let mut cache = model.new_cache(prompt_ids.len() + 32).unwrap();
            let logits = model.forward(&prompt_ids, &mut cache, true).unwrap().to_vec_f32_blocking().unwrap();
            let d = max_abs_diff(&logits, &floats(&prompt["logits"]));
            eprintln!("{name} prompt {p}: fp16 prefill logits within {d:e}");
            assert!(d <= FP16_DECODER_LOGITS_TOLERANCE, "{name} prompt {p}: fp16 prefill logits differ by {d:e}");
            if let Some(steps) = prompt["step_logits"].as_array() {
                for (s, step) in steps.iter().enumerate().skip(1) {
                    let got = model.forward(&[greedy[s - 1]], &mut cache, false).unwrap().to_vec_f32_blocking().unwrap();
                    let d = max_abs_diff(&got, &floats(step));
                    assert!(d <= FP16_DECODER_LOGITS_TOLERANCE, "{name} prompt {p} step {s}: fp16 logits differ by {d:e}");
                }
            }
            if prompt["greedy_min_margin"].as_f64().unwrap() > 2.0 * FP16_DECODER_LOGITS_TOLERANCE as f64 {
                let options = GenerationOptions { max_new_tokens: greedy.len(), ..Default::default() };
                let out =
                    pollster::block_on(pipe.generate(&Prompt::Text(prompt["text"].as_str().unwrap().into()), &options, |_| {})).unwrap();
                assert_eq!(out.token_ids, greedy, "{name}: fp16 greedy ids for {:?}", prompt["text"]);
            }
        }
    }
}

#[test]
fn chat_template_renders_like_transformers() {
    let (name, m) = models().into_iter().find(|(n, _)| n == "tiny-llama").unwrap();
    let pipe = load(&name, &webformers::Device::Cpu);
    for row in m["chat_batch"]["rows"].as_array().unwrap() {
        let messages: Vec<Message> = serde_json::from_value(row["messages"].clone()).unwrap();
        let prompt = Prompt::Chat(messages);
        assert_eq!(pipe.prompt_text(&prompt).unwrap(), row["rendered_text"].as_str().unwrap());
        assert_eq!(pipe.prompt_ids(&prompt).unwrap(), ids(&row["token_ids"]));
    }
}

#[test]
fn bad_generation_input_is_a_clear_error() {
    let pipe = load("tiny-gpt2", &webformers::Device::Cpu);
    let long = "word ".repeat(400);
    let err = pollster::block_on(pipe.generate(&Prompt::Text(long), &GenerationOptions::default(), |_| {})).unwrap_err();
    assert!(err.to_string().contains("context"), "{err}");
    let err = pollster::block_on(pipe.generate(&Prompt::Text(String::new()), &GenerationOptions::default(), |_| {})).unwrap_err();
    assert!(err.to_string().contains("empty"), "{err}");
    let err = pollster::block_on(pipe.generate(&Prompt::Chat(vec![Message::new("user", "hi")]), &GenerationOptions::default(), |_| {}))
        .unwrap_err();
    assert!(err.to_string().contains("no chat template"), "{err}");
}

/// The task through the registry (`Pipeline::run`), as front ends call it: generation options
/// override the model's config, bad options are clear errors, and `call("interrupt")` (what JS's
/// AbortSignal and InterruptableStoppingCriteria do) stops a generation after its current token.
#[test]
fn pipeline_options_and_interrupt() {
    use webformers::tasks::{self, Pipeline};
    let files = DirFiles::open(repo_root().join("tests/fixtures/tiny-gpt2")).unwrap();
    let (_, m) = models().into_iter().find(|(n, _)| n == "tiny-gpt2").unwrap();
    let prompt = &m["prompts"][0];
    let want = ids(&prompt["greedy_ids"]);
    let input = serde_json::json!(prompt["text"].as_str().unwrap());
    for device in devices() {
        let pipe: Box<dyn Pipeline> = tasks::load("text-generation", &files, &device, &LoadOptions::default()).unwrap();
        let run = |options: serde_json::Value, on_text: &mut dyn FnMut(&str)| {
            pollster::block_on(pipe.run_json(&input, &options, &mut tasks::events::text_only(on_text))).map(|o| o.to_json())
        };
        let out = run(serde_json::json!({ "max_new_tokens": 8, "return_full_text": false }), &mut |_| {}).unwrap();
        let stats = &out[0]["stats"];
        assert_eq!(ids(&stats["token_ids"]), want[..8], "{device:?}");
        assert_eq!(stats["stop_reason"], "max_tokens");
        for (options, words) in [
            (serde_json::json!({ "max_new_tokens": 0 }), "max_new_tokens is 0"),
            (serde_json::json!({ "max_new_tokens": -1 }), "max_new_tokens"),
            (serde_json::json!({ "no_such_option": 1 }), "no_such_option"),
            (serde_json::json!({ "do_sample": true, "temperature": 0 }), "temperature"),
            (serde_json::json!("fast"), "must be an object"),
        ] {
            let err = run(options.clone(), &mut |_| {}).unwrap_err();
            assert!(err.to_string().contains(words), "{options}: {err}");
        }
        // Interrupted from the streamed text's callback: stops after that token.
        let mut pieces = 0;
        let out = run(serde_json::json!({ "max_new_tokens": 20 }), &mut |_| {
            pieces += 1;
            if pieces == 2 {
                pipe.call("interrupt", &serde_json::Value::Null).unwrap();
            }
        })
        .unwrap();
        let stats = &out[0]["stats"];
        assert_eq!(stats["stop_reason"], "interrupted", "{device:?}");
        let n = stats["new_tokens"].as_u64().unwrap() as usize;
        assert!((2..20).contains(&n), "{device:?}: {n} tokens");
        assert_eq!(ids(&stats["token_ids"]), want[..n]);
        // It stays set until reset.
        let out = run(serde_json::json!({ "max_new_tokens": 4 }), &mut |_| {}).unwrap();
        assert_eq!(out[0]["stats"]["new_tokens"], 0);
        pipe.call("reset_interrupt", &serde_json::Value::Null).unwrap();
        let out = run(serde_json::json!({ "max_new_tokens": 4 }), &mut |_| {}).unwrap();
        assert_eq!(out[0]["stats"]["stop_reason"], "max_tokens");
    }
}

/// tiny-qwen3, tiny-phi3 and tiny-smollm3 as GGUFs (tests/reference/make_tiny_qwen3_gguf.py,
/// make_tiny_phi3_smollm3_ggufs.py: llama.cpp's layout and names; Qwen3's q_norm / k_norm as
/// `attn_q_norm` / `attn_k_norm` and its head size from `attention.key_length`; Phi-3's fused
/// `attn_qkv` / `ffn_up`, rotated dims, window, and LongRoPE factors as `rope_factors_*` tensors;
/// SmolLM3's q/k rows permuted as Llama's, its NoPE layers every 4th as llama.cpp assumes)
/// give the safetensors folders' golden logits at every position, and prompt 0's per-step logits
/// through the cache (Phi-3's past its LongRoPE switch).
#[test]
fn qwen3_phi3_smollm3_ggufs_match_transformers() {
    for name in ["tiny-qwen3", "tiny-phi3", "tiny-smollm3"] {
        let (_, m) = models().into_iter().find(|(n, _)| n == name).unwrap();
        for device in devices() {
            let path = repo_root().join("tests/fixtures").join(format!("{name}.gguf"));
            let pipe =
                TextGeneration::load_gguf(webformers::weights::gguf::GgufFile::open(path).unwrap(), &device, &LoadOptions::default())
                    .unwrap();
            for (p, prompt) in m["prompts"].as_array().unwrap().iter().enumerate() {
                let prompt_ids = ids(&prompt["token_ids"]);
                assert_eq!(
                    pipe.prompt_ids(&Prompt::Text(prompt["text"].as_str().unwrap().into())).unwrap(),
                    prompt_ids,
                    "{name} prompt {p} ids"
                );
                let mut cache = pipe.model().new_cache(prompt_ids.len() + 32).unwrap();
                let logits = pipe.model().forward(&prompt_ids, &mut cache, true).unwrap().to_vec_f32_blocking().unwrap();
                let d = max_abs_diff(&logits, &floats(&prompt["logits"]));
                assert!(d <= LOGITS_TOLERANCE, "{device:?} {name} prompt {p}: GGUF logits differ by {d:e}");
                if let Some(steps) = prompt["step_logits"].as_array() {
                    let greedy = ids(&prompt["greedy_ids"]);
                    for (s, step) in steps.iter().enumerate().skip(1) {
                        let got = pipe.model().forward(&[greedy[s - 1]], &mut cache, false).unwrap().to_vec_f32_blocking().unwrap();
                        let d = max_abs_diff(&got, &floats(step));
                        assert!(d <= LOGITS_TOLERANCE, "{device:?} {name} GGUF prompt {p} step {s}: logits differ by {d:e}");
                    }
                }
            }
        }
    }
}

/// Gemma 3 configs this decoder cannot run exactly are refused, naming what: attention logit
/// soft-capping, bidirectional attention, a layer kind it does not know, a sliding layer
/// without a window, another activation.
#[test]
fn gemma3_configs_it_cannot_run_are_named() {
    let dir = repo_root().join("tests/fixtures/tiny-gemma3");
    let config: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
    for (key, value, words) in [
        ("attn_logit_softcapping", serde_json::json!(50.0), "attn_logit_softcapping"),
        ("use_bidirectional_attention", serde_json::json!(true), "use_bidirectional_attention"),
        (
            "layer_types",
            serde_json::json!(["sliding_attention", "chunked_attention", "full_attention", "sliding_attention"]),
            "chunked_attention",
        ),
        ("sliding_window", serde_json::Value::Null, "sliding_window"),
        ("hidden_activation", serde_json::json!("relu"), "relu"),
    ] {
        let mut files = webformers::files::MemoryFiles::new("tiny-gemma3");
        let mut patched = config.clone();
        patched[key] = value;
        files.insert("config.json", serde_json::to_vec(&patched).unwrap());
        for file in ["tokenizer.json", "tokenizer_config.json", "generation_config.json", "model.safetensors"] {
            files.insert(file, std::fs::read(dir.join(file)).unwrap());
        }
        let err = TextGeneration::load(&files, &webformers::Device::Cpu, &LoadOptions::default()).err().expect(key).to_string();
        assert!(err.contains(words), "{key}: {err}");
    }
}

/// Phi-3 and SmolLM3 configs that cannot run are refused, naming what: LongRoPE without its
/// short or long factors or its pretraining context, a partial rotary factor that leaves no
/// pair to rotate, `no_rope_layers` not one flag per layer.
#[test]
fn phi3_and_smollm3_configs_it_cannot_run_are_named() {
    type Patch = fn(&mut serde_json::Value);
    let cases: [(&str, Patch, &str); 5] = [
        ("tiny-phi3", |c| drop_rope_key(c, "short_factor"), "short_factor"),
        ("tiny-phi3", |c| drop_rope_key(c, "long_factor"), "long_factor"),
        (
            "tiny-phi3",
            |c| {
                drop_rope_key(c, "original_max_position_embeddings");
                c.as_object_mut().unwrap().remove("original_max_position_embeddings");
            },
            "original_max_position_embeddings",
        ),
        ("tiny-phi3", |c| set_rope_key(c, "partial_rotary_factor", serde_json::json!(0.1)), "partial_rotary_factor"),
        ("tiny-smollm3", |c| c["no_rope_layers"] = serde_json::json!([1, 0]), "no_rope_layers"),
    ];
    for (name, patch, words) in cases {
        let dir = repo_root().join("tests/fixtures").join(name);
        let mut config: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
        patch(&mut config);
        let mut files = webformers::files::MemoryFiles::new(name);
        files.insert("config.json", serde_json::to_vec(&config).unwrap());
        for file in ["tokenizer.json", "tokenizer_config.json", "generation_config.json", "model.safetensors"] {
            files.insert(file, std::fs::read(dir.join(file)).unwrap());
        }
        let err = TextGeneration::load(&files, &webformers::Device::Cpu, &LoadOptions::default()).err().expect(words).to_string();
        assert!(err.contains(words), "{name} without a good {words}: {err}");
    }
}

/// The fixtures carry the RoPE parameters twice (transformers 5's and the Hub's spelling).
fn drop_rope_key(config: &mut serde_json::Value, key: &str) {
    for section in ["rope_parameters", "rope_scaling"] {
        config[section].as_object_mut().unwrap().remove(key);
    }
}

fn set_rope_key(config: &mut serde_json::Value, key: &str, value: serde_json::Value) {
    for section in ["rope_parameters", "rope_scaling"] {
        config[section][key] = value.clone();
    }
}
