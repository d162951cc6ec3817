//! The real google/gemma-3-270m Q4_K_M GGUF against PyTorch (transformers loads the same GGUF by
//! dequantizing it): the tokenizer built from the GGUF's sentencepiece vocabulary, last-position
//! logits, and greedy continuations of 32 tokens. Reference:
//! tests/fixtures/gemma3-270m-reference.json, made by tests/reference/make_gemma3_reference.py.
//! The file mixes Q5_0 (read as the same values in Q8_0), Q8_0, Q4_K and Q6_K weights.

use webformers::tasks::LoadOptions;
use webformers::tasks::text_generation::{GenerationOptions, Prompt, TextGeneration};
use webformers::weights::gguf::GgufFile;
use webformers_tests::{devices, fixture, floats, max_abs_diff, model_dir};

/// Logits are O(10-40); the weights are the values PyTorch dequantizes, so only f32 summation
/// order differs.
const LOGITS_TOLERANCE: f32 = 1e-3;

/// Compared at f32 tolerances: the CPU's int8 path (off by default, would apply to this file's Q8_0 and
/// rewritten Q5_0 tensors) is switched off in every test of this binary.
fn f32_path() {
    webformers::cpu::set_int8_matmul(false);
}

fn ids(v: &serde_json::Value) -> Vec<u32> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect()
}

fn load(device: &webformers::Device) -> TextGeneration {
    let file = GgufFile::open(model_dir("gemma-3-270m-q4_k_m.gguf")).unwrap();
    TextGeneration::load_gguf(file, device, &LoadOptions::default()).unwrap()
}

#[test]
fn tokenizer_from_gguf_metadata_matches_transformers() {
    f32_path();
    let reference = fixture("gemma3-270m-reference.json");
    let pipe = load(&webformers::Device::Cpu);
    for case in reference["tokenizer_cases"].as_array().unwrap() {
        let text = case["text"].as_str().unwrap();
        let want = ids(&case["ids"]);
        assert_eq!(pipe.tokenizer().encode(text, true).unwrap(), want, "ids of {text:?}");
        assert_eq!(pipe.tokenizer().decode(&want, true).unwrap(), case["decoded_skip_special"].as_str().unwrap(), "decoding of {text:?}");
    }
    for p in reference["prompts"].as_array().unwrap() {
        let prompt = Prompt::Text(p["text"].as_str().unwrap().into());
        assert_eq!(pipe.prompt_ids(&prompt).unwrap(), ids(&p["token_ids"]), "prompt ids of {}", p["name"]);
    }
}

/// Every prompt, on the CPU and the GPU.
#[test]
fn last_position_logits_match_pytorch() {
    f32_path();
    let reference = fixture("gemma3-270m-reference.json");
    for device in devices() {
        let pipe = load(&device);
        let model = pipe.model();
        let prompts = reference["prompts"].as_array().unwrap();
        for p in prompts {
            let prompt_ids = ids(&p["token_ids"]);
            let mut cache = model.new_cache(prompt_ids.len()).unwrap();
            let logits = model.forward(&prompt_ids, &mut cache, false).unwrap().to_vec_f32_blocking().unwrap();
            let d = max_abs_diff(&logits[..64], &floats(&p["last_logits_first64"]));
            assert!(d <= LOGITS_TOLERANCE, "{device:?} {}: first 64 logits differ by {d}", p["name"]);
            let every: Vec<f32> = logits.iter().step_by(256).copied().collect();
            let d = max_abs_diff(&every, &floats(&p["last_logits_every256"]));
            assert!(d <= LOGITS_TOLERANCE, "{device:?} {}: every 256th logit differs by up to {d}", p["name"]);
            for (&id, want) in ids(&p["top20_ids"]).iter().zip(floats(&p["top20_logits"])) {
                let got = logits[id as usize];
                assert!((got - want).abs() <= LOGITS_TOLERANCE, "{device:?} {}: logit {id} is {got}, not {want}", p["name"]);
            }
        }
    }
}

const GPU_GREEDY_TOKENS: usize = 8;

/// Every prompt's 32 tokens on the CPU; on the GPU, the first GPU_GREEDY_TOKENS of each (CI's
/// lavapipe, a software GPU on 2 CPUs, takes seconds a step over the 262k-token head; the cached
/// step's kernels are the same at step 8 as at step 32).
#[test]
fn greedy_continuations_match_pytorch() {
    f32_path();
    let reference = fixture("gemma3-270m-reference.json");
    for device in devices() {
        let pipe = load(&device);
        let prompts = reference["prompts"].as_array().unwrap();
        for p in prompts {
            let mut want = ids(&p["greedy_ids"]);
            if device.is_gpu() {
                want.truncate(GPU_GREEDY_TOKENS);
            }
            assert!(
                p["greedy_min_margin"].as_f64().unwrap() > 4.0 * LOGITS_TOLERANCE as f64,
                "{}: PyTorch's own margin is too small",
                p["name"]
            );
            let options = GenerationOptions { max_new_tokens: want.len(), ..Default::default() };
            let out = pollster::block_on(pipe.generate(&Prompt::Text(p["text"].as_str().unwrap().into()), &options, |_| {})).unwrap();
            assert_eq!(out.token_ids, want, "{device:?} {}: greedy ids", p["name"]);
        }
    }
}
