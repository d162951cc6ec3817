//! The real all-MiniLM-L6-v2 on every backend against sentence-transformers (PyTorch) outputs
//! committed in tests/fixtures/minilm-reference.json (made by tests/reference/make_minilm_reference.py).
//! Tolerance: max abs difference 1e-4 on every compared value.

use webformers::files::DirFiles;
use webformers::tasks::LoadOptions;
use webformers::tasks::feature_extraction::{FeatureExtraction, Pooling};
use webformers_tests::{devices, fixture, floats, max_abs_diff, model_dir};

const TOLERANCE: f32 = 1e-4;

struct Case {
    name: String,
    text: String,
    token_ids: Vec<u32>,
    embedding: Vec<f32>,
    mean: Vec<f32>,
    cls: Vec<f32>,
    hidden: Option<Vec<f32>>,
}

fn cases() -> Vec<Case> {
    let reference = fixture("minilm-reference.json");
    let inputs = reference["inputs"].as_array().expect("inputs");
    assert!(inputs.len() >= 20, "the reference needs at least 20 inputs");
    inputs
        .iter()
        .map(|i| Case {
            name: i["name"].as_str().unwrap().to_string(),
            text: i["text"].as_str().unwrap().to_string(),
            token_ids: i["token_ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect(),
            embedding: floats(&i["embedding"]),
            mean: floats(&i["mean_unnormalized"]),
            cls: floats(&i["cls"]),
            hidden: i.get("last_hidden_state").map(floats),
        })
        .collect()
}

/// Lavapipe (CI's software GPU) runs MiniLM at under 1 sentence/s on 2 CPUs, so past the one
/// padded batch of every input, the GPU's passes (inputs alone, pooling modes, fp16 and
/// quantized weights) take the inputs of at most this many tokens (19 of 29, "?" and "hello" among
/// them); the CPU takes all. The long inputs reach no other GPU kernel.
const GPU_MAX_TOKENS: usize = 32;

fn cases_for<'a>(cases: &'a [Case], device: &webformers::Device) -> Vec<&'a Case> {
    cases.iter().filter(|c| !device.is_gpu() || c.token_ids.len() <= GPU_MAX_TOKENS).collect()
}

fn load(device: &webformers::Device) -> FeatureExtraction {
    let files = DirFiles::open(model_dir("all-MiniLM-L6-v2")).unwrap();
    FeatureExtraction::load(&files, device, &LoadOptions::default()).unwrap()
}

#[test]
fn tokenization_matches_sentence_transformers_including_truncation() {
    let pipe = load(&webformers::Device::Cpu);
    let cases = cases();
    assert!(cases.iter().any(|c| c.token_ids.len() == 256), "the reference needs an input over 256 tokens");
    for c in &cases {
        let batch = pipe.tokenizer().encode_batch(&[&c.text]).unwrap();
        assert_eq!(batch.ids[0], c.token_ids, "token ids of `{}`", c.name);
    }
}

#[test]
fn normalized_embeddings_match_in_one_padded_batch() {
    let cases = cases();
    let texts: Vec<&str> = cases.iter().map(|c| c.text.as_str()).collect();
    for device in devices() {
        let pipe = load(&device);
        let out = pipe.run(&texts, Pooling::Mean, true).unwrap_or_block();
        assert_eq!(out.dims, vec![cases.len(), 384]);
        for (i, c) in cases.iter().enumerate() {
            let diff = max_abs_diff(out.row(i), &c.embedding);
            assert!(diff <= TOLERANCE, "{device:?}: `{}` differs by {diff:e}", c.name);
        }
    }
}

#[test]
fn each_input_alone_matches_and_pooling_modes_match() {
    let all = cases();
    for device in devices() {
        let pipe = load(&device);
        let cases = cases_for(&all, &device);
        for c in &cases {
            let out = pipe.run(&[&c.text], Pooling::Mean, true).unwrap_or_block();
            let diff = max_abs_diff(out.row(0), &c.embedding);
            assert!(diff <= TOLERANCE, "{device:?}: `{}` alone differs by {diff:e}", c.name);
        }
        // Unnormalized mean and CLS pooling, in one batch each.
        let texts: Vec<&str> = cases.iter().map(|c| c.text.as_str()).collect();
        let mean = pipe.run(&texts, Pooling::Mean, false).unwrap_or_block();
        let cls = pipe.run(&texts, Pooling::Cls, false).unwrap_or_block();
        for (i, c) in cases.iter().enumerate() {
            let d = max_abs_diff(mean.row(i), &c.mean);
            assert!(d <= TOLERANCE, "{device:?}: mean of `{}` differs by {d:e}", c.name);
            let d = max_abs_diff(cls.row(i), &c.cls);
            assert!(d <= TOLERANCE, "{device:?}: cls of `{}` differs by {d:e}", c.name);
        }
        // Pooling none: every token's hidden state, zero-padded to the longest text.
        let with_hidden: Vec<&Case> = cases.iter().copied().filter(|c| c.hidden.is_some()).collect();
        let texts: Vec<&str> = with_hidden.iter().map(|c| c.text.as_str()).collect();
        let out = pipe.run(&texts, Pooling::None, false).unwrap_or_block();
        let longest = with_hidden.iter().map(|c| c.token_ids.len()).max().unwrap();
        assert_eq!(out.dims, vec![with_hidden.len(), longest, 384]);
        for (i, c) in with_hidden.iter().enumerate() {
            let hidden = c.hidden.as_ref().unwrap();
            let row = out.row(i);
            let d = max_abs_diff(&row[..hidden.len()], hidden);
            assert!(d <= TOLERANCE, "{device:?}: hidden states of `{}` differ by {d:e}", c.name);
            assert!(row[hidden.len()..].iter().all(|&v| v == 0.0), "{device:?}: padding of `{}` is not zero", c.name);
        }
    }
}

#[test]
fn fp16_weights_stay_close() {
    // f16 storage halves memory; rounding the weights costs accuracy, so this bound is looser.
    let all = cases();
    for device in devices() {
        let cases = cases_for(&all, &device);
        let texts: Vec<&str> = cases.iter().map(|c| c.text.as_str()).collect();
        let files = DirFiles::open(model_dir("all-MiniLM-L6-v2")).unwrap();
        let options = LoadOptions { dtype: webformers::weights::WeightDType::F16.into() };
        let pipe = FeatureExtraction::load(&files, &device, &options).unwrap();
        let out = pipe.run(&texts, Pooling::Mean, true).unwrap_or_block();
        for (i, c) in cases.iter().enumerate() {
            let cos = webformers::reference::cosine(out.row(i), &c.embedding);
            assert!(cos > 0.9995, "{device:?}: fp16 `{}` cosine {cos}", c.name);
        }
    }
}

#[test]
fn quantized_weights_meet_the_quality_bars() {
    // Against sentence-transformers in fp32, over every case (lowest and median cosine).
    // q8 (Q8_0 linear layers quantized at load) with f32 activations (the GPU; the CPU with
    // `set_int8_matmul(false)`) meets issue 13's bar, lowest >= 0.999 (Transformers.js's int8
    // ONNX model reaches 0.987 here). On the CPU, q8 weights take the int8 path by default
    // (activations quantized to 8 bits, 1.6x faster): lowest 0.9977 (the input "?"), median
    // 0.9996, under the bar on its worst input. 4-bit does not meet its 0.99: Q4_1 with the
    // least-squares (scale, min) per block (quant::q4_1_searched) gives a lowest 0.935 (the input
    // "?") and a median 0.975, on both backends (round-to-nearest gave 0.903 / 0.962), 0.932 /
    // 0.974 with int8 activations; these bounds guard that. BENCHMARKS.md ("Precision") has the other 4-bit schemes measured.
    let all = cases();
    let check = |device: &webformers::Device, name: &str, what: &str, lowest_bar: f32, median_bar: f32| {
        let cases = cases_for(&all, device);
        let texts: Vec<&str> = cases.iter().map(|c| c.text.as_str()).collect();
        let files = DirFiles::open(model_dir("all-MiniLM-L6-v2")).unwrap();
        let options = LoadOptions { dtype: webformers::weights::Precision::parse(name).unwrap() };
        let pipe = FeatureExtraction::load(&files, device, &options).unwrap();
        let out = pipe.run(&texts, Pooling::Mean, true).unwrap_or_block();
        let mut cosines: Vec<(f32, &str)> =
            cases.iter().enumerate().map(|(i, c)| (webformers::reference::cosine(out.row(i), &c.embedding), c.name.as_str())).collect();
        cosines.sort_by(|a, b| a.0.total_cmp(&b.0));
        let (lowest, median) = (cosines[0], cosines[cosines.len() / 2].0);
        eprintln!("{device:?} {name} {what}: lowest cosine {} (`{}`), median {median}", lowest.0, lowest.1);
        assert!(lowest.0 >= lowest_bar, "{device:?}: {name} {what} `{}` cosine {} under {lowest_bar}", lowest.1, lowest.0);
        assert!(median >= median_bar, "{device:?}: {name} {what} median cosine {median} under {median_bar}");
    };
    for device in devices() {
        if device.is_gpu() {
            // q4 here is quantize.wgsl's searched Q4_1: its embeddings must be as good as the CPU's.
            check(&device, "q8", "f32 activations", 0.999, 0.9997);
            check(&device, "q4", "f32 activations", 0.93, 0.97);
            continue;
        }
        check(&device, "q8", "int8 activations", 0.997, 0.9995);
        check(&device, "q4", "int8 activations", 0.925, 0.97);
        // The process-wide switch: only this test of this binary uses quantized weights.
        webformers::cpu::set_int8_matmul(false);
        check(&device, "q8", "f32 activations", 0.999, 0.9997);
        check(&device, "q4", "f32 activations", 0.93, 0.97);
        check(&device, "q4f16", "f32 activations", 0.93, 0.97);
    }
}

trait Block<T> {
    fn unwrap_or_block(self) -> T;
}

impl<F: std::future::Future<Output = webformers::Result<T>>, T> Block<T> for F {
    fn unwrap_or_block(self) -> T {
        pollster::block_on(self).unwrap()
    }
}
