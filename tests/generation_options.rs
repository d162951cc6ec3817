//! text-generation's call options on the tiny decoders, on every backend, through the pipeline
//! as every front end calls it (`run_json`):
//! - max_length, no_repeat_ngram_size, eos_token_id (a number, a list: it replaces the model's
//!   EOS), min_new_tokens, repetition_penalty: token ids identical to transformers' `generate()`
//!   (tests/fixtures/generation/options-reference.json, from
//!   tests/reference/make_generation_options_reference.py);
//! - num_return_sequences with sampling (independent, reproducible sequences), return_full_text;
//! - unknown options and impossible combinations: errors that name them;
//! - multi-turn reuse of the kept KV cache: three turns give the tokens of fresh runs while
//!   computing fewer prompt tokens (stats.prompt_tokens_reused), on every tiny architecture
//!   (Gemma 3's sliding window, Phi-3's LongRoPE recompute included); `reuse_cache: false` and
//!   `max_cache_bytes` turn it off.

use serde_json::{Value, json};
use webformers::files::DirFiles;
use webformers::tasks::{LoadOptions, Output, Pipeline};
use webformers_tests::{devices, fixture, repo_root};

/// The reference's greedy choices are at least this far apart (the script prints the smallest
/// margin); f32 differences between backends are about 1e-5.
const MIN_MARGIN: f64 = 1e-3;

fn load(name: &str, device: &webformers::Device) -> Box<dyn Pipeline> {
    let files = DirFiles::open(repo_root().join("tests/fixtures").join(name)).unwrap();
    webformers::tasks::load("text-generation", &files, device, &LoadOptions::default()).unwrap()
}

fn run(pipe: &dyn Pipeline, input: Value, options: Value) -> webformers::Result<Value> {
    match pollster::block_on(pipe.run_json(&input, &options, &mut |_| {}))? {
        Output::Json(v) => Ok(v),
        other => panic!("text-generation returned {other:?}"),
    }
}

fn token_ids(result: &Value) -> Vec<u64> {
    result["stats"]["token_ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect()
}

#[test]
fn options_match_transformers_generate() {
    let reference = fixture("generation/options-reference.json");
    let cases = reference["cases"].as_array().unwrap();
    assert!(cases.len() >= 40);
    for device in devices() {
        let mut loaded: Option<(String, Box<dyn Pipeline>)> = None;
        for case in cases {
            let name = case["model"].as_str().unwrap();
            if loaded.as_ref().is_none_or(|(n, _)| n != name) {
                loaded = Some((name.to_string(), load(name, &device)));
            }
            let pipe = &loaded.as_ref().unwrap().1;
            assert!(case["margin"].as_f64().unwrap() > MIN_MARGIN, "{case}");
            let out = run(pipe.as_ref(), case["prompt"].clone(), case["options"].clone()).unwrap();
            let want: Vec<u64> = case["token_ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
            assert_eq!(token_ids(&out[0]), want, "{device:?} {name} {} {}", case["prompt"], case["options"]);
            assert_eq!(out[0]["stats"]["prompt_tokens"], case["prompt_ids"].as_array().unwrap().len());
        }
    }
}

#[test]
fn sampled_sequences_are_independent_and_reproduce() {
    let pipe = load("tiny-llama", &webformers::Device::Cpu);
    let options = json!({"do_sample": true, "max_new_tokens": 8, "seed": 7, "num_return_sequences": 3, "temperature": 2.0});
    let out = run(pipe.as_ref(), json!("The keeper"), options.clone()).unwrap();
    let seqs: Vec<Vec<u64>> = out.as_array().unwrap().iter().map(token_ids).collect();
    assert_eq!(seqs.len(), 3);
    assert!(seqs[0] != seqs[1] || seqs[1] != seqs[2], "three samples at temperature 2 all equal: {seqs:?}");
    // Each is the single sequence of its own seed.
    for (i, seq) in seqs.iter().enumerate() {
        let one =
            run(pipe.as_ref(), json!("The keeper"), json!({"do_sample": true, "max_new_tokens": 8, "seed": 7 + i, "temperature": 2.0}))
                .unwrap();
        assert_eq!(&token_ids(&one[0]), seq, "sequence {i}");
    }
    let again: Vec<Vec<u64>> =
        run(pipe.as_ref(), json!("The keeper"), options).unwrap().as_array().unwrap().iter().map(token_ids).collect();
    assert_eq!(again, seqs, "not reproducible");
    // Greedy decoding has one sequence: asking for more is refused, as transformers does.
    let err = run(pipe.as_ref(), json!("The keeper"), json!({"num_return_sequences": 2})).unwrap_err().to_string();
    assert!(err.contains("num_return_sequences (2) needs do_sample"), "{err}");
}

#[test]
fn return_full_text_and_unknown_options() {
    let pipe = load("tiny-llama", &webformers::Device::Cpu);
    let full = run(pipe.as_ref(), json!("The keeper"), json!({"max_new_tokens": 4})).unwrap();
    let new = run(pipe.as_ref(), json!("The keeper"), json!({"max_new_tokens": 4, "return_full_text": false})).unwrap();
    let (full, new) = (full[0]["generated_text"].as_str().unwrap(), new[0]["generated_text"].as_str().unwrap());
    assert!(!new.is_empty());
    assert_eq!(full, format!("The keeper{new}"));
    for (options, name) in [
        (json!({"max_new_tokens": 4, "no_such_option": 1}), "no_such_option"),
        (json!({"max_new_token": 4}), "max_new_token"),
        (json!({"penalty_alpha": 0.6}), "penalty_alpha"),
    ] {
        let err = run(pipe.as_ref(), json!("The keeper"), options).unwrap_err().to_string();
        assert!(err.contains(&format!("unknown field `{name}`")) && err.contains("no_repeat_ngram_size"), "{err}");
    }
    let err = run(pipe.as_ref(), json!("The keeper"), json!({"eos_token_id": "x"})).unwrap_err().to_string();
    assert!(err.contains("`eos_token_id`"), "{err}");
}

/// One turn's stats: (new token ids, prompt tokens, prompt tokens reused).
fn turn(pipe: &dyn Pipeline, prompt: &Value, options: &Value) -> (Vec<u64>, u64, u64, Value) {
    let out = run(pipe, prompt.clone(), options.clone()).unwrap();
    let stats = &out[0]["stats"];
    (token_ids(&out[0]), stats["prompt_tokens"].as_u64().unwrap(), stats["prompt_tokens_reused"].as_u64().unwrap(), out[0].clone())
}

/// Three turns of text that each extend the last prompt and reply; a fourth that goes back to a
/// short prefix of the first (Phi-3: the cache holds long-rotated rows by then, so nothing of it
/// is reusable). Every turn's tokens equal a fresh run's.
#[test]
fn multi_turn_reuses_the_cache_with_fresh_tokens() {
    let models = ["tiny-llama", "tiny-qwen2", "tiny-gpt2", "tiny-qwen3", "tiny-gemma3", "tiny-smollm3", "tiny-phi3"];
    let options = json!({"max_new_tokens": 10, "no_repeat_ngram_size": 2});
    let fresh_options = json!({"max_new_tokens": 10, "no_repeat_ngram_size": 2, "reuse_cache": false});
    for device in devices() {
        for name in models {
            let pipe = load(name, &device);
            let fresh = load(name, &device);
            let mut prompt = "The keeper lit the lamp".to_string();
            let mut computed = 0;
            let mut total = 0;
            for (t, more) in [" and the boats came home.", " Then the storm", ""].iter().enumerate() {
                let (ids, prompt_tokens, reused, out) = turn(pipe.as_ref(), &json!(prompt), &options);
                let (want, _, fresh_reused, _) = turn(fresh.as_ref(), &json!(prompt), &fresh_options);
                assert_eq!(ids, want, "{device:?} {name} turn {t}: tokens differ from a fresh run");
                assert_eq!(fresh_reused, 0);
                if t > 0 {
                    assert!(reused > 0, "{device:?} {name} turn {t}: nothing reused");
                }
                assert!(reused < prompt_tokens);
                computed += prompt_tokens - reused;
                total += prompt_tokens;
                prompt = format!("{}{more}", out["generated_text"].as_str().unwrap());
            }
            assert!(computed < total, "{device:?} {name}: {computed} of {total} prompt tokens computed");
            // Back to a prefix shorter than the last call's.
            let (ids, _, reused, _) = turn(pipe.as_ref(), &json!("The keeper lit"), &options);
            assert_eq!(ids, turn(fresh.as_ref(), &json!("The keeper lit"), &fresh_options).0, "{device:?} {name}: going back");
            if name == "tiny-phi3" {
                assert_eq!(reused, 0, "{device:?}: LongRoPE rows reused below original_max_position_embeddings");
            } else {
                assert!(reused > 0, "{device:?} {name}: the shared prefix was not reused");
            }
        }
    }
}

/// A chat of three turns through the chat template: the reply, re-rendered as the assistant's
/// message, extends the cached prompt and reply.
#[test]
fn chat_turns_reuse_the_cache() {
    for device in devices() {
        let pipe = load("tiny-llama", &device);
        let fresh = load("tiny-llama", &device);
        let options = json!({"max_new_tokens": 8, "no_repeat_ngram_size": 2});
        let mut messages = json!([{"role": "system", "content": "You keep the light."}, {"role": "user", "content": "Is the storm over?"}]);
        let mut reused_total = 0;
        for (t, next) in ["When will it end?", "Thank you."].iter().chain([&""]).enumerate() {
            let (ids, prompt_tokens, reused, out) = turn(pipe.as_ref(), &messages, &options);
            let (want, ..) =
                turn(fresh.as_ref(), &messages, &json!({"max_new_tokens": 8, "no_repeat_ngram_size": 2, "reuse_cache": false}));
            assert_eq!(ids, want, "{device:?} turn {t}");
            if t > 0 {
                // At least the previous turn's whole prompt.
                assert!(reused >= 20, "{device:?} turn {t}: {reused} of {prompt_tokens} reused");
            }
            reused_total += reused;
            messages = out["generated_text"].clone();
            messages.as_array_mut().unwrap().push(json!({"role": "user", "content": next}));
        }
        assert!(reused_total > 0);
    }
}

#[test]
fn cache_reuse_can_be_turned_off_and_bounded() {
    let pipe = load("tiny-llama", &webformers::Device::Cpu);
    let options = json!({"max_new_tokens": 4});
    let first = turn(pipe.as_ref(), &json!("The keeper lit the lamp"), &options);
    assert_eq!(first.2, 0);
    let again = turn(pipe.as_ref(), &json!("The keeper lit the lamp"), &options);
    assert_eq!((again.0.clone(), again.2), (first.0.clone(), first.1 - 1), "the whole prompt but its last token is reused");
    let off = turn(pipe.as_ref(), &json!("The keeper lit the lamp"), &json!({"max_new_tokens": 4, "reuse_cache": false}));
    assert_eq!((off.0, off.2), (first.0.clone(), 0));
    // That call kept nothing, so the next one computes everything.
    assert_eq!(turn(pipe.as_ref(), &json!("The keeper lit the lamp"), &options).2, 0);
    // A bound below the cache's size keeps nothing.
    turn(pipe.as_ref(), &json!("The keeper lit the lamp"), &json!({"max_new_tokens": 4, "max_cache_bytes": 1000}));
    assert_eq!(turn(pipe.as_ref(), &json!("The keeper lit the lamp"), &options).2, 0);
    pipe.call("clear_cache", &Value::Null).unwrap();
    assert_eq!(turn(pipe.as_ref(), &json!("The keeper lit the lamp"), &options).2, 0);
    // The stats carry the time to the first token and the rate.
    let stats = &turn(pipe.as_ref(), &json!("The keeper"), &json!({"max_new_tokens": 6, "min_new_tokens": 6})).3["stats"];
    assert!(stats["time_to_first_token"].as_f64().unwrap() > 0.0, "{stats}");
    assert!(stats["tokens_per_second"].as_f64().unwrap() > 0.0, "{stats}");
    assert_eq!(stats["new_tokens"], 6);
}

/// A generation interrupted mid-stream stops after the current token, keeps a consistent cache,
/// and the next call (continuing from that cache) gives a fresh run's tokens.
#[test]
fn interrupted_generation_leaves_a_usable_cache() {
    for device in devices() {
        let pipe = load("tiny-llama", &device);
        let fresh = load("tiny-llama", &device);
        let options = json!({"max_new_tokens": 40, "min_new_tokens": 40});
        let mut steps = 0;
        let out = pollster::block_on(pipe.run_json(&json!("The keeper lit the lamp"), &options, &mut |e| {
            if let webformers::tasks::Event::Tokens(_) = e {
                steps += 1;
                if steps == 3 {
                    pipe.call("interrupt", &Value::Null).unwrap();
                }
            }
        }))
        .unwrap()
        .to_json();
        pipe.call("reset_interrupt", &Value::Null).unwrap();
        let stats = &out[0]["stats"];
        assert_eq!((stats["stop_reason"].as_str(), stats["new_tokens"].as_u64()), (Some("interrupted"), Some(3)), "{device:?}");
        let text = out[0]["generated_text"].as_str().unwrap().to_string();
        let next = format!("{text} and then");
        let (ids, _, reused, _) = turn(pipe.as_ref(), &json!(next), &json!({"max_new_tokens": 8}));
        let (want, ..) = turn(fresh.as_ref(), &json!(next), &json!({"max_new_tokens": 8, "reuse_cache": false}));
        assert_eq!(ids, want, "{device:?}");
        assert!(reused > 0, "{device:?}");
    }
}
