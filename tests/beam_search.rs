//! Beam search (core/src/generation/beam.rs) on the tiny random decoders against transformers'
//! `generate(num_beams=...)` (tests/reference/make_beam_reference.py): 2 and 4 beams, with and
//! without no_repeat_ngram_size, length penalties 0.5 and 2, early_stopping true / false /
//! "never", num_return_sequences 2, min_new_tokens; token ids identical and sequences_scores
//! within 1e-4, on every backend. Also: the per-beam caches' reorder (moves and device copies)
//! against fresh caches, the text-generation task's `num_beams` option, and bad options.

use serde_json::{Value, json};
use webformers::files::{DirFiles, ModelFiles};
use webformers::generation::{self, Beams, GenerationConfig, Interrupt, beam_search};
use webformers::models::beams::DecoderBeams;
use webformers::tasks::text_generation::{Prompt, TextGeneration};
use webformers::tasks::{LoadOptions, Output, Pipeline};
use webformers::{Device, Tensor};
use webformers_tests::{devices, fixture, max_abs_diff, repo_root};

/// transformers' `sequences_scores` against ours: f32 log-softmax sums over at most 16 tokens.
const SCORE_TOLERANCE: f32 = 1e-4;

fn ids(v: &Value) -> Vec<u32> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect()
}

fn folder(name: &str) -> DirFiles {
    DirFiles::open(repo_root().join("tests/fixtures").join(name)).unwrap()
}

fn load(name: &str, device: &Device) -> TextGeneration {
    TextGeneration::load(&folder(name), device, &LoadOptions::default()).unwrap()
}

/// The model's generation_config.json with the case's options over it, as a call gets it.
fn config_for(name: &str, options: &Value) -> GenerationConfig {
    let files = folder(name);
    let generation = files.json("generation_config.json").unwrap().unwrap_or_default();
    let config = files.json("config.json").unwrap().unwrap();
    let mut c = GenerationConfig::from_json(&generation, &config).unwrap();
    let rest = c.take_options("test", options).unwrap();
    assert!(rest.is_null(), "options beam search does not take: {rest}");
    c
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    pollster::block_on(f)
}

#[test]
fn beam_search_matches_transformers() {
    let reference = fixture("generation/beam-reference.json");
    for device in devices() {
        for (name, m) in reference["models"].as_object().unwrap() {
            let pipe = load(name, &device);
            let prompt = ids(&m["prompt_ids"]);
            for case in m["cases"].as_array().unwrap() {
                let label = format!("{device:?} {name} {}", case["name"].as_str().unwrap());
                let config = config_for(name, &case["options"]);
                let mut beams = DecoderBeams::new(pipe.model(), prompt.len() + config.max_new_for(prompt.len())).unwrap();
                let mut processors = generation::processors_for(&config);
                let got = block_on(beam_search(&mut beams, &prompt, &config, &mut processors, None, &Interrupt::new())).unwrap();
                let want = case["sequences"].as_array().unwrap();
                assert_eq!(got.len(), want.len(), "{label}: sequences returned");
                for (i, (g, w)) in got.iter().zip(want).enumerate() {
                    assert_eq!(g.token_ids, ids(&w["token_ids"]), "{label}: sequence {i} ids");
                    let want_score = w["score"].as_f64().unwrap() as f32;
                    assert!(
                        (g.score - want_score).abs() <= SCORE_TOLERANCE,
                        "{label}: sequence {i} score {} vs transformers' {want_score}",
                        g.score
                    );
                }
            }
        }
    }
}

/// Reordering beams (moves, and device copies into the caches of dropped beams, cycles and
/// duplicates included) leaves each beam's cache as a fresh cache fed the same tokens.
#[test]
fn reordered_caches_equal_fresh_ones() {
    for device in devices() {
        let pipe = load("tiny-llama", &device);
        let model = pipe.model();
        let prompt = [3u32, 279, 224, 84];
        // Per beam, the tokens after the prompt; each reorder's sources, then one token a beam.
        let mut histories: Vec<Vec<u32>> = vec![Vec::new()];
        let mut beams = DecoderBeams::new(model, 16).unwrap();
        let first = block_on(beams.step(0, &prompt).unwrap().to_vec_f32()).unwrap();
        let steps: [(&[usize], [u32; 3]); 4] =
            [(&[0, 0, 0], [10, 11, 12]), (&[2, 0, 1], [20, 21, 22]), (&[1, 1, 2], [30, 31, 32]), (&[2, 1, 0], [40, 41, 42])];
        for (sources, tokens) in steps {
            beams.reorder(sources).unwrap();
            histories = sources.iter().map(|&s| histories[s].clone()).collect();
            let logits: Vec<Tensor> = (0..3).map(|b| beams.step(b, &[tokens[b]]).unwrap()).collect();
            for (b, l) in logits.iter().enumerate() {
                histories[b].push(tokens[b]);
                let got = block_on(l.to_vec_f32()).unwrap();
                let mut cache = model.new_cache(16).unwrap();
                let all: Vec<u32> = prompt.iter().chain(&histories[b]).copied().collect();
                let want = block_on(model.forward(&all, &mut cache, false).unwrap().to_vec_f32()).unwrap();
                let d = max_abs_diff(&got, &want);
                assert!(d <= 1e-4, "{device:?}: beam {b} after {sources:?} differs from a fresh cache by {d:e}");
            }
        }
        assert_eq!(first.len(), model.vocab_size());
    }
}

fn run_task(pipe: &TextGeneration, text: &str, options: Value) -> webformers::Result<Value> {
    let mut streamed = String::new();
    let input = json!(text);
    let out = block_on(pipe.run_json(&input, &options, &mut webformers::tasks::events::text_only(|t| streamed.push_str(t))))?;
    let Output::Json(v) = out else { panic!("text-generation returns JSON") };
    // The streamed text is the best sequence's.
    assert_eq!(v[0]["generated_text"].as_str().unwrap(), format!("{text}{streamed}"));
    Ok(v)
}

/// The text-generation task takes `num_beams` (and the other beam options) and returns
/// `num_return_sequences` entries, best first, with transformers' tokens.
#[test]
fn text_generation_task_runs_beam_search() {
    let reference = fixture("generation/beam-reference.json");
    let m = &reference["models"]["tiny-llama"];
    let case = m["cases"].as_array().unwrap().iter().find(|c| c["name"] == "beams4_eos_return_2").unwrap();
    let pipe = load("tiny-llama", &Device::Cpu);
    let text = m["prompt"].as_str().unwrap();
    assert_eq!(pipe.prompt_ids(&Prompt::Text(text.into())).unwrap(), ids(&m["prompt_ids"]));
    let out = run_task(&pipe, text, case["options"].clone()).unwrap();
    let want = case["sequences"].as_array().unwrap();
    assert_eq!(out.as_array().unwrap().len(), want.len());
    for (got, w) in out.as_array().unwrap().iter().zip(want) {
        assert_eq!(ids(&got["stats"]["token_ids"]), ids(&w["token_ids"]));
        let new_text = pipe.tokenizer().decode(&ids(&w["token_ids"]), true).unwrap();
        assert_eq!(got["generated_text"].as_str().unwrap(), format!("{text}{new_text}"));
    }
    assert_eq!(out[0]["stats"]["stop_reason"], "eos");
}

#[test]
fn bad_beam_options_are_errors() {
    let pipe = load("tiny-llama", &Device::Cpu);
    for (options, needle) in [
        (json!({"num_beams": 0}), "num_beams"),
        (json!({"num_beams": 2, "num_return_sequences": 3}), "num_return_sequences"),
        (json!({"num_beams": 2, "do_sample": true}), "sampling"),
        (json!({"num_beams": 2, "stop": "x"}), "stop strings"),
        (json!({"num_beams": 2, "early_stopping": "sometimes"}), "early_stopping"),
        (json!({"num_beams": 2, "length_penalty": "long"}), "length_penalty"),
    ] {
        let err = run_task(&pipe, "The quick", options.clone()).unwrap_err().to_string();
        assert!(err.contains(needle), "{options}: {err}");
    }
}
