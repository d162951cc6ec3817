//! The tiny random Qwen3, Phi-3 (partial rotary, LongRoPE), SmolLM3 (a NoPE layer) and Gemma 3
//! (sliding window of 4, shorter than the prompts) decoders of tests/fixtures against
//! transformers' logits (tests/fixtures/tiny-decoders-reference.json, from
//! tests/reference/make_tiny_decoders.py): every prompt position from one prefill, then one token
//! at a time through the KV cache. Natively and in headless Chromium (scripts/test-wasm.sh),
//! where there is no filesystem: the models and the reference are compiled in and loaded through
//! `MemoryFiles`, and every readback is awaited.

#[macro_use]
mod support;

use support::devices;
use webformers::Device;
use webformers::files::MemoryFiles;
use webformers::tasks::LoadOptions;
use webformers::tasks::text_generation::{Prompt, TextGeneration};

/// f32 models of hidden size 64: differences come from summation order only (the tolerance of
/// tests/decoders.rs).
const LOGITS_TOLERANCE: f32 = 1e-4;

/// Cached steps checked on a GPU (SwiftShader, the browser's adapter here, is slow). Twelve take
/// Phi-3's prompt 0 (6 tokens) past its 16-position LongRoPE switch, where every cached row is
/// rotated again with the long factors.
const GPU_STEPS: usize = 12;

static REFERENCE: &str = include_str!("../../tests/fixtures/tiny-decoders-reference.json");

macro_rules! fixture_folder {
    ($name:literal) => {
        (
            $name,
            [
                ("config.json", include_bytes!(concat!("../../tests/fixtures/", $name, "/config.json")).as_slice()),
                ("generation_config.json", include_bytes!(concat!("../../tests/fixtures/", $name, "/generation_config.json")).as_slice()),
                ("model.safetensors", include_bytes!(concat!("../../tests/fixtures/", $name, "/model.safetensors")).as_slice()),
                ("tokenizer.json", include_bytes!(concat!("../../tests/fixtures/", $name, "/tokenizer.json")).as_slice()),
                ("tokenizer_config.json", include_bytes!(concat!("../../tests/fixtures/", $name, "/tokenizer_config.json")).as_slice()),
            ],
        )
    };
}

type Folder = (&'static str, [(&'static str, &'static [u8]); 5]);

const MODELS: [Folder; 4] =
    [fixture_folder!("tiny-qwen3"), fixture_folder!("tiny-phi3"), fixture_folder!("tiny-smollm3"), fixture_folder!("tiny-gemma3")];

fn load(folder: &Folder, device: &Device) -> TextGeneration {
    let mut files = MemoryFiles::new(folder.0);
    for (file, bytes) in folder.1 {
        files.insert(file, bytes.to_vec());
    }
    TextGeneration::load(&files, device, &LoadOptions::default()).unwrap_or_else(|e| panic!("{}: {e}", folder.0))
}

fn ids(v: &serde_json::Value) -> Vec<u32> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect()
}

/// A nested array of numbers, flattened in order.
fn floats(v: &serde_json::Value) -> Vec<f32> {
    fn walk(v: &serde_json::Value, out: &mut Vec<f32>) {
        match v {
            serde_json::Value::Array(items) => items.iter().for_each(|i| walk(i, out)),
            v => out.push(v.as_f64().map_or(f32::NAN, |x| x as f32)),
        }
    }
    let mut out = Vec::new();
    walk(v, &mut out);
    out
}

/// The largest |a - b|; NaN anywhere makes it NaN, so a comparison with the tolerance fails.
fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "lengths differ");
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, |m, d| if d.is_nan() || m.is_nan() { f32::NAN } else { m.max(d) })
}

async_test! { async fn prompt_logits_and_cached_steps_match_transformers() {
    let reference: serde_json::Value = serde_json::from_str(REFERENCE).unwrap();
    // Collected rather than asserted at once, so one run shows every model on every device.
    let mut failures = Vec::new();
    for (device_name, device) in devices().await {
        // On the CPU every prompt and every step; on a GPU prompt 0 and its first GPU_STEPS steps.
        let on_gpu = matches!(device, Device::Gpu(_));
        for folder in &MODELS {
            let name = folder.0;
            let m = &reference["models"][name];
            let pipe = load(folder, &device);
            let model = pipe.model();
            let (mut worst_prefill, mut worst_step, mut steps_checked) = (0f32, 0f32, 0);
            let prompts = m["prompts"].as_array().unwrap_or_else(|| panic!("{name}: no prompts in the reference"));
            for (p, prompt) in prompts.iter().enumerate().take(if on_gpu { 1 } else { usize::MAX }) {
                let prompt_ids = ids(&prompt["token_ids"]);
                assert_eq!(pipe.prompt_ids(&Prompt::Text(prompt["text"].as_str().unwrap().into())).unwrap(), prompt_ids, "{name} prompt {p} ids");
                let mut cache = model.new_cache(prompt_ids.len() + 32).unwrap();
                let logits = model.forward(&prompt_ids, &mut cache, true).unwrap().to_vec_f32().await.unwrap();
                let want = floats(&prompt["logits"]);
                let d = max_abs_diff(&logits, &want);
                if !(d <= LOGITS_TOLERANCE) {
                    // Which positions: all of them points at a per-token op, later ones at attention.
                    let vocab = model.vocab_size();
                    let rows: Vec<String> =
                        logits.chunks(vocab).zip(want.chunks(vocab)).map(|(g, w)| format!("{:.1e}", max_abs_diff(g, w))).collect();
                    failures.push(format!("{device_name} {name} prompt {p}: prefill logits differ by {d:e} (by position: {})", rows.join(" ")));
                }
                worst_prefill = worst_prefill.max(d);
                // Step s feeds the reference's greedy token s-1 (step 0 is the prefill's last row).
                let Some(steps) = prompt["step_logits"].as_array() else { continue };
                let greedy = ids(&prompt["greedy_ids"]);
                let last = if on_gpu { GPU_STEPS.min(steps.len() - 1) } else { steps.len() - 1 };
                for s in 1..=last {
                    let got = model.forward(&[greedy[s - 1]], &mut cache, false).unwrap().to_vec_f32().await.unwrap();
                    let d = max_abs_diff(&got, &floats(&steps[s]));
                    if !(d <= LOGITS_TOLERANCE) {
                        failures.push(format!("{device_name} {name} prompt {p} step {s}: logits differ by {d:e}"));
                    }
                    worst_step = worst_step.max(d);
                    steps_checked += 1;
                }
            }
            test_log!("{device_name} {name}: max |diff| prefill {worst_prefill:.2e}, {steps_checked} cached steps {worst_step:.2e}");
        }
    }
    assert!(failures.is_empty(), "logits beyond {LOGITS_TOLERANCE:e}:\n{}", failures.join("\n"));
}}
