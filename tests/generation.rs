//! The generation library (core/src/generation): every logits processor against transformers'
//! own processors on fixed logits (tests/reference/make_generation_reference.py), the device
//! mask path against the host path, stopping criteria (EOS, max tokens, stop strings) and the
//! interrupt, on the CPU and the GPU backends. The model is a fake `step` closure whose logits
//! depend on the last token, so every case is exact.

use webformers::generation::{
    self, GenerationConfig, Interrupt, LogitsProcessor, NoRepeatNGram, RepetitionPenalty, Step, StopReason, Streamer, SuppressTokens,
    SuppressTokensAtBegin, Temperature, TextStreamer, TopK, TopP,
};
use webformers::tokenizer::Tokenizer;
use webformers::{Device, Tensor};
use webformers_tests::{devices, fixture, repo_root};

fn processor(spec: &serde_json::Value) -> Box<dyn LogitsProcessor> {
    let ids = |v: &serde_json::Value| v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect::<Vec<_>>();
    let f = |k: &str| spec[k].as_f64().unwrap() as f32;
    let n = |k: &str| spec[k].as_u64().unwrap() as usize;
    let keep = spec["min_tokens_to_keep"].as_u64().unwrap_or(1) as usize;
    match spec["kind"].as_str().unwrap() {
        "suppress" => Box::new(SuppressTokens { tokens: ids(&spec["tokens"]) }),
        "begin_suppress" => Box::new(SuppressTokensAtBegin { tokens: ids(&spec["tokens"]), begin_index: None }),
        "repetition_penalty" => Box::new(RepetitionPenalty { penalty: f("penalty") }),
        "no_repeat_ngram" => Box::new(NoRepeatNGram { size: n("size") }),
        "temperature" => Box::new(Temperature { temperature: f("temperature") }),
        "top_k" => Box::new(TopK { top_k: n("top_k"), min_tokens_to_keep: keep }),
        "top_p" => Box::new(TopP { top_p: f("top_p"), min_tokens_to_keep: keep }),
        other => panic!("unknown processor kind {other}"),
    }
}

/// Every processor (and a sampling chain in transformers' order) gives transformers' values:
/// -inf exactly where it has -inf, the rest within 1e-6 (elementwise f32 arithmetic).
#[test]
fn processors_match_transformers() {
    let reference = fixture("generation/processors-reference.json");
    for case in reference["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let ids: Vec<u32> = case["ids"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect();
        let step = Step { ids: &ids, prompt_len: case["prompt_len"].as_u64().unwrap() as usize };
        let mut logits: Vec<f32> = case["logits"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect();
        let mut list: Vec<Box<dyn LogitsProcessor>> = case["processors"].as_array().unwrap().iter().map(processor).collect();
        for p in &mut list {
            p.process(&step, &mut logits).unwrap();
        }
        for (i, (got, want)) in logits.iter().zip(case["want"].as_array().unwrap()).enumerate() {
            match want.as_f64() {
                None => assert_eq!(*got, f32::NEG_INFINITY, "{name}: logit {i} is {got}, transformers' is -inf"),
                Some(w) => assert!((got - w as f32).abs() <= 1e-6, "{name}: logit {i} is {got}, transformers' is {w}"),
            }
        }
        // A processor that only bans says so, and bans exactly the ids it sets to -inf.
        if list.len() == 1
            && let Some(banned) = list[0].banned(&step)
        {
            let masked: Vec<u32> =
                case["want"].as_array().unwrap().iter().enumerate().filter(|(_, w)| w.is_null()).map(|(i, _)| i as u32).collect();
            let mut banned: Vec<u32> = banned.into_iter().filter(|&t| (t as usize) < logits.len()).collect();
            banned.sort_unstable();
            banned.dedup();
            assert_eq!(banned, masked, "{name}: banned ids");
        }
    }
}

const VOCAB: usize = 37;

/// A fake model: the logits after token t, distinct values that favour a few tokens, so greedy
/// decoding cycles and masks change its path.
fn fake_logits(last: u32, position: usize) -> Vec<f32> {
    (0..VOCAB).map(|j| (j as f32 * 1.7 + last as f32 * 2.3 + position as f32 * 0.37).sin() * 4.0).collect()
}

/// `generate` over the fake model on `device`: the step closure returns lazy-free logits [1, V].
fn run(
    device: &Device,
    prompt: &[u32],
    config: &GenerationConfig,
    mut processors: Vec<Box<dyn LogitsProcessor>>,
    streamer: Option<&mut dyn Streamer>,
    interrupt: &Interrupt,
) -> webformers::Result<generation::Generation> {
    let mut position = 0usize;
    let mut step = |ids: &[u32]| -> webformers::Result<Tensor> {
        position += ids.len();
        Tensor::from_f32(&fake_logits(*ids.last().unwrap(), position), &[1, VOCAB], device)
    };
    pollster::block_on(generation::generate(&mut step, prompt, config, &mut processors, streamer, interrupt))
}

/// Forces the host path (it needs `process`) without changing anything.
struct HostOnly;
impl LogitsProcessor for HostOnly {
    fn process(&mut self, _: &Step, _: &mut [f32]) -> webformers::Result<()> {
        Ok(())
    }
}

/// The banned ids masked on the device pick the same tokens as the host path's -inf, greedy.
#[test]
fn device_mask_matches_host_path() {
    let config = GenerationConfig {
        max_new_tokens: 24,
        suppress_tokens: vec![3, 11, 20],
        begin_suppress_tokens: vec![28, 9],
        no_repeat_ngram_size: 2,
        forced_tokens: vec![(5, 17)],
        ..Default::default()
    };
    let prompt = [1u32, 2, 4];
    for device in devices() {
        let plain =
            run(&device, &prompt, &GenerationConfig { max_new_tokens: 24, ..Default::default() }, vec![], None, &Interrupt::new()).unwrap();
        let on_device = run(&device, &prompt, &config, generation::processors_for(&config), None, &Interrupt::new()).unwrap();
        let mut host_list = generation::processors_for(&config);
        host_list.push(Box::new(HostOnly));
        let on_host = run(&device, &prompt, &config, host_list, None, &Interrupt::new()).unwrap();
        assert_eq!(on_device.token_ids, on_host.token_ids, "{device:?}");
        assert_ne!(on_device.token_ids, plain.token_ids, "{device:?}: the processors change the path");
        let ids = &on_device.token_ids;
        assert_eq!(ids[2], 17, "{device:?}: position 5 is forced");
        assert!(!ids.iter().any(|t| [3, 11, 20].contains(t)), "{device:?}: suppressed ids in {ids:?}");
        assert!(![28, 9].contains(&ids[0]), "{device:?}: begin-suppressed first id in {ids:?}");
        let all: Vec<u32> = prompt.iter().chain(ids).copied().collect();
        let mut pairs: Vec<_> = all.windows(2).collect();
        pairs.sort();
        assert!(pairs.windows(2).all(|w| w[0] != w[1]), "{device:?}: a repeated bigram in {all:?}");
        assert_eq!(on_device.stop_reason, StopReason::MaxTokens);
        assert_eq!(ids.len(), 24);
    }
}

/// Sampling is reproducible from its seed and differs between seeds; top_k 1 is greedy.
#[test]
fn seeded_sampling_reproduces() {
    let prompt = [5u32];
    let sampled = |seed: u64, top_k: usize| {
        let config =
            GenerationConfig { max_new_tokens: 16, do_sample: true, temperature: 1.5, top_k, top_p: 0.95, seed, ..Default::default() };
        run(&Device::Cpu, &prompt, &config, generation::processors_for(&config), None, &Interrupt::new()).unwrap().token_ids
    };
    assert_eq!(sampled(7, 0), sampled(7, 0));
    assert_ne!(sampled(7, 0), sampled(8, 0));
    let greedy =
        run(&Device::Cpu, &prompt, &GenerationConfig { max_new_tokens: 16, ..Default::default() }, vec![], None, &Interrupt::new());
    assert_eq!(sampled(3, 1), greedy.unwrap().token_ids);
}

/// EOS ends generation with the EOS id as the last token.
#[test]
fn eos_stops() {
    let plain =
        run(&Device::Cpu, &[1], &GenerationConfig { max_new_tokens: 10, ..Default::default() }, vec![], None, &Interrupt::new()).unwrap();
    let eos = plain.token_ids[3];
    let first = plain.token_ids.iter().position(|&t| t == eos).unwrap();
    let config = GenerationConfig { max_new_tokens: 10, eos_token_ids: vec![eos], ..Default::default() };
    let out = run(&Device::Cpu, &[1], &config, vec![], None, &Interrupt::new()).unwrap();
    assert_eq!(out.stop_reason, StopReason::Eos);
    assert_eq!(out.token_ids, plain.token_ids[..=first]);
}

fn gpt2_tokenizer() -> Tokenizer {
    Tokenizer::for_generation(&std::fs::read(repo_root().join("tests/fixtures/tiny-gpt2/tokenizer.json")).unwrap()).unwrap()
}

/// Stop strings end generation; the streamed text stops before them, and the pieces add up.
#[test]
fn stop_strings_cut_the_streamed_text() {
    let tokenizer = gpt2_tokenizer();
    let prompt = [40u32, 41];
    let plain = run(&Device::Cpu, &prompt, &GenerationConfig { max_new_tokens: 12, ..Default::default() }, vec![], None, &Interrupt::new())
        .unwrap();
    let text = tokenizer.decode(&plain.token_ids, true).unwrap();
    // A stop string from the middle of the plain continuation.
    let chars: Vec<char> = text.chars().collect();
    let stop: String = chars[chars.len() / 2..chars.len() / 2 + 2].iter().collect();
    let config = GenerationConfig { max_new_tokens: 12, stop_strings: vec![stop.clone()], ..Default::default() };
    let mut streamed = String::new();
    let mut on_text = |s: &str| streamed.push_str(s);
    let mut streamer = TextStreamer::new(&tokenizer, &config.stop_strings, &mut on_text);
    let out = run(&Device::Cpu, &prompt, &config, vec![], Some(&mut streamer), &Interrupt::new()).unwrap();
    let emitted = streamer.emitted().to_string();
    assert_eq!(out.stop_reason, StopReason::StopString);
    assert_eq!(emitted, text[..text.find(&stop).unwrap()]);
    assert_eq!(streamed, emitted);
    assert!(out.token_ids.len() < 12);
    // Stop strings need a decoding streamer.
    let err = run(&Device::Cpu, &prompt, &config, vec![], None, &Interrupt::new()).unwrap_err();
    assert!(err.to_string().contains("stop strings"), "{err}");
}

/// An interrupt set from the streamer's callback stops generation after that step; a flag
/// already set stops it before the first step; after `reset` it runs again.
#[test]
fn interrupt_stops_after_the_step() {
    let tokenizer = gpt2_tokenizer();
    let interrupt = Interrupt::new();
    let config = GenerationConfig { max_new_tokens: 20, ..Default::default() };
    for device in devices() {
        let flag = interrupt.clone();
        let mut pieces = 0;
        let mut on_text = |_: &str| {
            pieces += 1;
            if pieces == 3 {
                flag.interrupt();
            }
        };
        let mut streamer = TextStreamer::new(&tokenizer, &[], &mut on_text);
        let out = run(&device, &[40, 41], &config, vec![], Some(&mut streamer), &interrupt).unwrap();
        assert_eq!(out.stop_reason, StopReason::Interrupted, "{device:?}");
        assert!(out.token_ids.len() >= 3 && out.token_ids.len() < 20, "{device:?}: {} tokens", out.token_ids.len());
        assert_eq!(out.stop_reason.name(), "interrupted");
        let again = run(&device, &[40, 41], &config, vec![], None, &interrupt).unwrap();
        assert_eq!((again.stop_reason, again.token_ids.len()), (StopReason::Interrupted, 0), "{device:?}");
        interrupt.reset();
        let free = run(&device, &[40, 41], &config, vec![], None, &interrupt).unwrap();
        assert_eq!((free.stop_reason, free.token_ids.len()), (StopReason::MaxTokens, 20), "{device:?}");
    }
}

/// Configs generation cannot run with are clear errors, never panics.
#[test]
fn bad_configs_are_clear_errors() {
    let cases: Vec<(GenerationConfig, &str)> = vec![
        (GenerationConfig { max_new_tokens: 0, ..Default::default() }, "max_new_tokens is 0"),
        (GenerationConfig { do_sample: true, temperature: 0.0, ..Default::default() }, "temperature"),
        (GenerationConfig { top_p: 1.5, ..Default::default() }, "top_p"),
        (GenerationConfig { repetition_penalty: -1.0, ..Default::default() }, "repetition_penalty"),
        (GenerationConfig { max_length: Some(2), ..Default::default() }, "max_length"),
    ];
    for (config, words) in cases {
        let err = run(&Device::Cpu, &[1, 2], &config, vec![], None, &Interrupt::new()).unwrap_err();
        assert!(err.to_string().contains(words), "{err}");
    }
    let err = run(&Device::Cpu, &[], &GenerationConfig::default(), vec![], None, &Interrupt::new()).unwrap_err();
    assert!(err.to_string().contains("prompt"), "{err}");
    // A step that returns something other than [1, V] logits.
    let mut step = |_: &[u32]| Tensor::from_f32(&[0.0; 6], &[2, 3], &Device::Cpu);
    let err = pollster::block_on(generation::generate(&mut step, &[1], &GenerationConfig::default(), &mut [], None, &Interrupt::new()))
        .unwrap_err();
    assert!(err.to_string().contains("[1, V]"), "{err}");
}

/// generation_config.json (else config.json) as the model's defaults; the call's options over them.
#[test]
fn config_from_json_and_call_options() {
    let generation = serde_json::json!({
        "eos_token_id": [50256, 50257], "suppress_tokens": [1, 2], "begin_suppress_tokens": [220, 50256],
        "forced_decoder_ids": [[1, 50259], [2, 50359]], "max_length": 448, "no_repeat_ngram_size": 3,
        "repetition_penalty": 1.1, "decoder_start_token_id": 50258
    });
    let config = serde_json::json!({ "eos_token_id": 7, "bos_token_id": 3, "temperature": 0.5 });
    let mut c = GenerationConfig::from_json(&generation, &config).unwrap();
    assert_eq!(c.eos_token_ids, [50256, 50257]);
    assert_eq!(c.suppress_tokens, [1, 2]);
    assert_eq!(c.begin_suppress_tokens, [220, 50256]);
    assert_eq!(c.forced_tokens, [(1, 50259), (2, 50359)]);
    assert_eq!((c.max_length, c.max_new_for(4)), (Some(448), 256));
    assert_eq!(c.max_new_for(440), 8);
    assert_eq!((c.no_repeat_ngram_size, c.repetition_penalty), (3, 1.1));
    assert_eq!((c.decoder_start_token_id, c.bos_token_id, c.temperature), (Some(50258), Some(3), 0.5));
    let rest = c
        .take_options(
            "t",
            &serde_json::json!({ "max_new_tokens": 5, "do_sample": true, "top_k": 3, "stop": "x", "return_full_text": false }),
        )
        .unwrap();
    assert_eq!(rest, serde_json::json!({ "return_full_text": false }));
    assert_eq!((c.max_new_tokens, c.max_length, c.do_sample, c.top_k), (5, None, true, 3));
    assert_eq!(c.stop_strings, ["x"]);
    let err = c.take_options("t", &serde_json::json!({ "max_new_tokens": "many" })).unwrap_err();
    assert!(err.to_string().contains("max_new_tokens"), "{err}");
    let err = c.take_options("t", &serde_json::json!({ "max_new_tokens": 0 })).unwrap_err();
    assert!(err.to_string().contains("max_new_tokens is 0"), "{err}");
    let empty = GenerationConfig::from_json(&serde_json::Value::Null, &serde_json::Value::Null).unwrap();
    assert_eq!(empty, GenerationConfig::default());
}
