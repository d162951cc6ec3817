//! The real SmolLM2-135M-Instruct Q4_1 GGUF on every backend against PyTorch (transformers loads
//! the same GGUF by dequantizing it): the tokenizer built from GGUF metadata, last-position logits,
//! and greedy chat replies. References: tests/fixtures/smollm2-reference.json and
//! smollm2-france-logits.f32, made by tests/reference/make_smollm2_reference.py.

use webformers::chat::Message;
use webformers::tasks::LoadOptions;
use webformers::tasks::text_generation::{GenerationOptions, Prompt, TextGeneration};
use webformers::weights::gguf::GgufFile;
use webformers_tests::{devices, fixture, floats, max_abs_diff, model_dir, repo_root};

/// Logits are O(10-30); the weights are the same Q4_1 values PyTorch dequantizes, so only f32
/// summation order differs (measured: 6e-5 on the CPU).
const LOGITS_TOLERANCE: f32 = 2e-3;

/// The software GPU of CI (lavapipe) prefills and decodes slowly (about 17 s a prompt's logits,
/// 1.3 tokens/s), so there a few short prompts are compared: logits of two chat prompts and the
/// plain 4-token one, and the greedy replies of three chat prompts (30 new tokens in all). The CPU
/// runs all nine; a longer prompt reaches no other GPU kernel.
const GPU_LOGITS_PROMPTS: [&str; 3] = ["france", "greeting", "quick_brown_fox"];
const GPU_GREEDY_PROMPTS: [&str; 3] = ["france", "greeting", "arithmetic"];

/// The CPU's int8 path (`webformers::cpu::set_int8_matmul`) is process-wide: a test that sets it
/// holds this lock. The logits tests compare at f32 tolerances, so they run the f32 path.
static INT8_SWITCH: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn cpu_path(int8: bool) -> std::sync::MutexGuard<'static, ()> {
    let guard = INT8_SWITCH.lock().unwrap_or_else(|e| e.into_inner());
    webformers::cpu::set_int8_matmul(int8);
    guard
}

fn ids(v: &serde_json::Value) -> Vec<u32> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect()
}

fn load(device: &webformers::Device) -> TextGeneration {
    let file = GgufFile::open(model_dir("SmolLM2-135M-Instruct.Q4_1.gguf")).unwrap();
    TextGeneration::load_gguf(file, device, &LoadOptions::default()).unwrap()
}

fn prompt_of(p: &serde_json::Value) -> Prompt {
    match p["kind"].as_str().unwrap() {
        "chat" => Prompt::Chat(serde_json::from_value::<Vec<Message>>(p["messages"].clone()).unwrap()),
        _ => Prompt::Text(p["text"].as_str().unwrap().to_string()),
    }
}

#[test]
fn tokenizer_from_gguf_metadata_matches_transformers() {
    let reference = fixture("smollm2-reference.json");
    let pipe = load(&webformers::Device::Cpu);
    for case in reference["tokenizer_cases"].as_array().unwrap() {
        let text = case["text"].as_str().unwrap();
        assert_eq!(pipe.tokenizer().encode(text, false).unwrap(), ids(&case["ids"]), "ids of {text:?}");
        let decoded = pipe.tokenizer().decode(&ids(&case["ids"]), true).unwrap();
        assert_eq!(decoded, case["decoded_skip_special"].as_str().unwrap(), "decoding of {text:?}");
    }
    for p in reference["prompts"].as_array().unwrap() {
        let prompt = prompt_of(p);
        assert_eq!(pipe.prompt_text(&prompt).unwrap(), p["text"].as_str().unwrap(), "chat template of {}", p["name"]);
        assert_eq!(pipe.prompt_ids(&prompt).unwrap(), ids(&p["token_ids"]), "prompt ids of {}", p["name"]);
    }
}

#[test]
fn last_position_logits_match_pytorch() {
    let _f32 = cpu_path(false);
    let reference = fixture("smollm2-reference.json");
    let full: Vec<f32> = std::fs::read(repo_root().join("tests/fixtures/smollm2-france-logits.f32"))
        .unwrap()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    for device in devices() {
        let pipe = load(&device);
        let model = pipe.model();
        for p in reference["prompts"].as_array().unwrap() {
            if device.is_gpu() && !GPU_LOGITS_PROMPTS.contains(&p["name"].as_str().unwrap()) {
                continue;
            }
            let prompt_ids = ids(&p["token_ids"]);
            let mut cache = model.new_cache(prompt_ids.len()).unwrap();
            let logits = model.forward(&prompt_ids, &mut cache, false).unwrap().to_vec_f32_blocking().unwrap();
            let d = max_abs_diff(&logits[..64], &floats(&p["last_logits_first64"]));
            assert!(d <= LOGITS_TOLERANCE, "{device:?} {}: first 64 logits differ by {d}", p["name"]);
            for pair in p["top20"].as_array().unwrap() {
                let (id, want) = (pair[0].as_u64().unwrap() as usize, pair[1].as_f64().unwrap() as f32);
                assert!((logits[id] - want).abs() <= LOGITS_TOLERANCE, "{device:?} {}: logit {id} is {} not {want}", p["name"], logits[id]);
            }
            if p["name"] == "france" {
                let d = max_abs_diff(&logits, &full);
                eprintln!("{device:?}: France logits, max abs difference over the vocabulary {d}");
                assert!(d <= LOGITS_TOLERANCE, "{device:?}: France logits differ by {d}");
            }
        }
    }
}

#[test]
fn greedy_replies_match_pytorch() {
    let _f32 = cpu_path(false);
    let reference = fixture("smollm2-reference.json");
    for device in devices() {
        let pipe = load(&device);
        let mut matched = 0;
        for p in reference["prompts"].as_array().unwrap() {
            let greedy = &p["greedy"];
            if device.is_gpu() && !GPU_GREEDY_PROMPTS.contains(&p["name"].as_str().unwrap()) {
                continue;
            }
            let want = ids(&greedy["ids"]);
            let options = GenerationOptions { max_new_tokens: want.len(), ..Default::default() };
            let out = pollster::block_on(pipe.generate(&prompt_of(p), &options, |_| {})).unwrap();
            // Where PyTorch's own margin between the top two tokens is below our logit tolerance,
            // a divergence after that step is not an error: compare up to the first such step.
            let close =
                greedy["steps"].as_array().unwrap().iter().position(|s| s["margin"].as_f64().unwrap() < 2.0 * LOGITS_TOLERANCE as f64);
            let upto = close.map_or(want.len(), |i| i + 1);
            assert_eq!(out.token_ids[..upto.min(out.token_ids.len())], want[..upto], "{device:?} {}: greedy ids", p["name"]);
            if close.is_none() {
                assert_eq!(out.token_ids, want, "{device:?} {}", p["name"]);
                assert_eq!(out.text, greedy["text"].as_str().unwrap(), "{device:?} {}", p["name"]);
                matched += 1;
            }
        }
        let bar = if device.is_gpu() { GPU_GREEDY_PROMPTS.len() } else { 5 };
        assert!(matched >= bar, "{device:?}: only {matched} prompts compared whole");
    }
}

/// The int8 CPU path (`WEBFORMERS_INT8=1`: activations rounded to 8 bits, llama.cpp's scheme) is
/// not PyTorch's f32 arithmetic, so a reply may part from PyTorch's where two tokens are nearly
/// tied. Checked: every reply is PyTorch's up to a step where PyTorch's own top-two margin is under
/// INT8_MARGIN logits. The bar for making the path the default, whole replies identical on at
/// least 4 of 5 chat prompts, is not met (3 of 8 on 2026-12-05), so it is off by default.
#[test]
fn greedy_replies_on_the_int8_path_part_only_at_near_ties() {
    const INT8_MARGIN: f64 = 0.25;
    let _int8 = cpu_path(true);
    let reference = fixture("smollm2-reference.json");
    let pipe = load(&webformers::Device::Cpu);
    let (mut chats, mut same) = (0, 0);
    for p in reference["prompts"].as_array().unwrap() {
        if p["kind"] != "chat" {
            continue;
        }
        let want = ids(&p["greedy"]["ids"]);
        let options = GenerationOptions { max_new_tokens: want.len(), ..Default::default() };
        let out = pollster::block_on(pipe.generate(&prompt_of(p), &options, |_| {})).unwrap();
        chats += 1;
        match out.token_ids.iter().zip(&want).position(|(a, b)| a != b) {
            None if out.token_ids.len() == want.len() => same += 1,
            None => panic!("int8 {}: {} tokens, PyTorch {}", p["name"], out.token_ids.len(), want.len()),
            Some(i) => {
                let margin = p["greedy"]["steps"][i]["margin"].as_f64().unwrap();
                eprintln!("int8 {}: parts from PyTorch at token {i} of {} (PyTorch's margin {margin:.3})", p["name"], want.len());
                assert!(margin < INT8_MARGIN, "int8 {}: token {i} differs where PyTorch's margin is {margin}", p["name"]);
            }
        }
    }
    eprintln!("int8: {same} of {chats} chat replies identical to PyTorch's");
    // How far the int8 path moves the logits: France's whole last-position row against PyTorch's.
    let full: Vec<f32> = std::fs::read(repo_root().join("tests/fixtures/smollm2-france-logits.f32"))
        .unwrap()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let france = reference["prompts"].as_array().unwrap().iter().find(|p| p["name"] == "france").unwrap();
    let prompt_ids = ids(&france["token_ids"]);
    let model = pipe.model();
    let mut cache = model.new_cache(prompt_ids.len()).unwrap();
    let logits = model.forward(&prompt_ids, &mut cache, false).unwrap().to_vec_f32_blocking().unwrap();
    let mean = logits.iter().zip(&full).map(|(a, b)| a - b).sum::<f32>() / full.len() as f32;
    let rms = (logits.iter().zip(&full).map(|(a, b)| (a - b - mean).powi(2)).sum::<f32>() / full.len() as f32).sqrt();
    // A shift common to every logit leaves the softmax as it is: reported apart.
    eprintln!(
        "int8: France logits, max abs difference {} over the vocabulary; mean difference {mean}, rms about it {rms}",
        max_abs_diff(&logits, &full)
    );
}
