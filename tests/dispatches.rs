//! GPU dispatches of one decode step of the tiny Llama (issue 14): on a datacenter GPU a decode
//! step's time is mostly the fixed cost of its dispatches, so each fusion is held here. A test
//! binary of its own, since `gpu::dispatches_submitted` counts for the whole process.

use webformers::Device;
use webformers::files::DirFiles;
use webformers::tasks::LoadOptions;
use webformers::tasks::text_generation::TextGeneration;
use webformers_tests::{devices, fixture, floats, max_abs_diff, repo_root};

/// Dispatches a decode step takes outside the layers: the embedding lookup, the final norm and the
/// LM head.
const OUTSIDE_LAYERS: u64 = 3;
/// Per layer: RMSNorm + fused QKV; attention rotating the query and the new key as it loads them
/// and writing the new key and value into the KV cache; o-projection + residual; RMSNorm + fused
/// gate/up; SiLU-gated down projection + residual.
const PER_LAYER: u64 = 5;

#[test]
fn llama_decode_step_dispatches_per_layer() {
    let Some(device) = devices().into_iter().find(|d| matches!(d, Device::Gpu(_))) else {
        return; // devices() said why (and fails under WEBFORMERS_REQUIRE_GPU=1)
    };
    decode_step_dispatches(&device, &LoadOptions::default(), 1e-4);
}

#[test]
fn llama_decode_step_dispatches_per_layer_with_an_f16_kv_cache() {
    // dtype fp16 on an adapter with shader-f16: the same 5 dispatches per layer (the fused
    // kernels store and read the cache as f16), logits within the tiny decoders' fp16 bound.
    let Some(device) = webformers_tests::gpu_with_shader_f16() else { return };
    let fp16 = LoadOptions { dtype: webformers::weights::WeightDType::F16.into() };
    decode_step_dispatches(&device, &fp16, webformers_tests::FP16_DECODER_LOGITS_TOLERANCE);
}

/// The counter is process-wide: one test counts at a time.
static COUNTING: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn decode_step_dispatches(device: &Device, options: &LoadOptions, tolerance: f32) {
    let _counting = COUNTING.lock().unwrap_or_else(|e| e.into_inner());
    let files = DirFiles::open(repo_root().join("tests/fixtures/tiny-llama")).unwrap();
    let pipe = TextGeneration::load(&files, device, options).unwrap();
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(repo_root().join("tests/fixtures/tiny-llama/config.json")).unwrap()).unwrap();
    let layers = config["num_hidden_layers"].as_u64().unwrap();
    let reference = fixture("tiny-decoders-reference.json");
    let prompt = &reference["models"]["tiny-llama"]["prompts"][0];
    let prompt_ids: Vec<u32> = prompt["token_ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
    let greedy: Vec<u32> = prompt["greedy_ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();

    let model = pipe.model();
    let mut cache = model.new_cache(prompt_ids.len() + 8).unwrap();
    model.forward(&prompt_ids, &mut cache, false).unwrap().to_vec_f32_blocking().unwrap();
    let before = webformers::gpu::dispatches_submitted();
    let logits = model.forward(&[greedy[0]], &mut cache, false).unwrap().to_vec_f32_blocking().unwrap();
    let dispatches = webformers::gpu::dispatches_submitted() - before;
    // The fused step still computes the reference's logits.
    let d = max_abs_diff(&logits, &floats(&prompt["step_logits"][1]));
    assert!(d <= tolerance, "decode step logits differ by {d:e}");
    assert_eq!(
        dispatches,
        OUTSIDE_LAYERS + PER_LAYER * layers,
        "a decode step of {layers} layers took {dispatches} dispatches ({} expected per layer)",
        PER_LAYER
    );

    // Bind groups are made once: the steps after this one bind the same buffers (the token id
    // upload and the activations come from the pool, the cache and weights stay), so they make
    // none. Each step's logits are still the reference's (the greedy continuation's next token).
    let mut made = Vec::new();
    for step in 1..4 {
        let before = webformers::gpu::bind_groups_created();
        let logits = model.forward(&[greedy[step]], &mut cache, false).unwrap().to_vec_f32_blocking().unwrap();
        made.push(webformers::gpu::bind_groups_created() - before);
        let argmax = logits.iter().enumerate().fold(0, |best, (i, &v)| if v > logits[best] { i } else { best });
        assert_eq!(argmax as u32, greedy[step + 1], "decode step {step}: the greedy token");
    }
    assert_eq!(made[1..], [0, 0], "bind groups made by decode steps 1 to 3: {made:?} (the first may differ: pooled buffers settle)");
}
