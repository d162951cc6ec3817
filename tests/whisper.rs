//! Whisper (`models::whisper`) against PyTorch transformers on the espeak-ng speech clips of
//! tests/fixtures/speech: encoder output, the first decoder step's logits, exact greedy token
//! ids, language detection (multilingual models) and the alignment heads' cross-attention
//! probabilities (tests/fixtures/whisper/*-reference.json, made by
//! tests/reference/make_whisper_reference.py).
//!
//! Models: the real whisper-tiny.en and whisper-base (fp16, scripts/fetch-models.sh) and two
//! tiny random ones committed under tests/fixtures/whisper (f32 80 mel bins with a 2-layer
//! decoder; f16 128 mel bins, multilingual). Lavapipe is 40-60x slower than the CPU backend (one
//! whisper-tiny.en clip took over three minutes there on CI's 2 CPUs), so the GPU runs the tiny
//! random models on two clips, through every kernel the real checkpoints use; the real
//! checkpoints and the long clips run on the CPU only.
//!
//! The greedy loop here is transformers' `generate` without timestamps: the decoder prompt
//! (sot, [language, task,] notimestamps), suppress_tokens masked at every step and
//! begin_suppress_tokens at the first, until EOS. (The reference asserts that this loop equals
//! `model.generate`.)

use webformers::audio::{RawAudio, WhisperFeatureExtractor};
use webformers::files::{DirFiles, ModelFiles};
use webformers::models::{self, ModelConfig, SpeechSeq2SeqModel};
use webformers::weights::{WeightDType, Weights};
use webformers::{Device, Tensor};
use webformers_tests::{devices, fixture, floats, repo_root};

/// Relative tolerance of encoder outputs and logits (f32 compute over the same f16 or f32
/// weights: summation order, and features within 1e-4 of Python's).
const REL: f32 = 1e-3;
/// Absolute tolerance of cross-attention probabilities (values in [0, 1]).
const PROB_TOL: f32 = 1e-3;

struct Loaded {
    model: Box<dyn SpeechSeq2SeqModel>,
    extractor: WhisperFeatureExtractor,
    generation: serde_json::Value,
}

fn model_path(name: &str) -> std::path::PathBuf {
    if name.starts_with("tiny-") { repo_root().join("tests/fixtures/whisper").join(name) } else { webformers_tests::model_dir(name) }
}

fn load(name: &str, device: &Device) -> Loaded {
    let files = DirFiles::open(model_path(name)).unwrap();
    let config = ModelConfig::from_json(files.name(), files.json("config.json").unwrap().unwrap()).unwrap();
    let vb = Weights::new(files.weights(device).unwrap(), device, WeightDType::Auto);
    let model = models::load_speech_seq2seq(&config, &vb).unwrap();
    let extractor = WhisperFeatureExtractor::from_config(&files.json("preprocessor_config.json").unwrap().unwrap()).unwrap();
    let generation = files.json("generation_config.json").unwrap().unwrap();
    Loaded { model, extractor, generation }
}

fn ids(v: &serde_json::Value) -> Vec<u32> {
    v.as_array().unwrap_or_else(|| panic!("not an array: {v}")).iter().map(|x| x.as_u64().unwrap() as u32).collect()
}

fn clip_samples(clip: &str) -> Vec<f32> {
    let bytes = std::fs::read(repo_root().join("tests/fixtures/speech").join(format!("{clip}.flac"))).unwrap();
    let audio = RawAudio::decode(&bytes).unwrap();
    assert_eq!(audio.sampling_rate, 16000, "{clip}");
    audio.samples
}

/// max |got - want| <= REL * max(1, max |want|).
fn assert_close(what: &str, got: &[f32], want: &[f32], rel: f32) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    let scale = want.iter().fold(1.0f32, |m, w| m.max(w.abs()));
    let d = got.iter().zip(want).map(|(g, w)| (g - w).abs()).fold(0.0f32, f32::max);
    assert!(
        d <= rel * scale,
        "{what}: differs by {d:e} (scale {scale}); got {:?}, want {:?}",
        &got[..got.len().min(6)],
        &want[..want.len().min(6)]
    );
}

fn assert_sum_close(what: &str, got: f64, want: f64, magnitude: f64) {
    let d = (got - want).abs();
    assert!(d <= REL as f64 * magnitude.max(1.0), "{what}: {got} vs {want} (|x| sum {magnitude})");
}

fn argmax(v: &[f32]) -> usize {
    v.iter().enumerate().fold((0, f32::NEG_INFINITY), |(bi, bv), (i, &x)| if x > bv { (i, x) } else { (bi, bv) }).0
}

/// The plain greedy loop (see the module comment); returns the generated ids, EOS included.
fn greedy(m: &Loaded, encoded: &Tensor, prompt: &[u32], max_len: usize) -> Vec<u32> {
    let g = &m.generation;
    let suppress = ids(&g["suppress_tokens"]);
    let begin = ids(&g["begin_suppress_tokens"]);
    let eos = g["eos_token_id"].as_u64().unwrap() as u32;
    let mut cache = m.model.new_cache(encoded, max_len).unwrap();
    let mut out = Vec::new();
    let mut step: Vec<u32> = prompt.to_vec();
    while prompt.len() + out.len() < max_len {
        let mut logits = m.model.decode(&step, &mut cache, false).unwrap().to_vec_f32_blocking().unwrap();
        for &id in &suppress {
            logits[id as usize] = f32::NEG_INFINITY;
        }
        if out.is_empty() {
            for &id in &begin {
                logits[id as usize] = f32::NEG_INFINITY;
            }
        }
        let next = argmax(&logits) as u32;
        out.push(next);
        if next == eos {
            break;
        }
        step = vec![next];
    }
    out
}

/// One model on some clips of its reference, on one device.
fn check_model(name: &str, device: &Device, clips: &[&str]) {
    let reference = fixture(&format!("whisper/{name}-reference.json"));
    let m = load(name, device);
    let random = name.starts_with("tiny-");
    for &clip in clips {
        let case = &reference["clips"][clip];
        let at = format!("{name} {clip} {device:?}");
        let samples = clip_samples(clip);
        assert_eq!(samples.len() as u64, case["samples"].as_u64().unwrap(), "{at}: sample count");
        let features = m.extractor.extract(&samples).unwrap();
        assert_eq!(features.len(), m.model.num_mel_bins() * m.model.num_frames());

        // Encoder output [1500, d].
        let encoded = m.model.encode(&features).unwrap();
        let hidden = encoded.to_vec_f32_blocking().unwrap();
        let d = m.model.hidden_size();
        assert_eq!(encoded.dims(), &[1500, d], "{at}");
        let enc = &case["encoder"];
        for (row, want) in enc["rows"].as_object().unwrap() {
            let r: usize = row.parse().unwrap();
            let want = floats(want);
            assert_close(&format!("{at}: encoder row {r}"), &hidden[r * d..r * d + want.len()], &want, REL);
        }
        let abs_sum: f64 = hidden.iter().map(|x| x.abs() as f64).sum();
        assert_sum_close(&format!("{at}: encoder |x| sum"), abs_sum, enc["abs_sum"].as_f64().unwrap(), abs_sum);
        let sum: f64 = hidden.iter().map(|&x| x as f64).sum();
        assert_sum_close(&format!("{at}: encoder sum"), sum, enc["sum"].as_f64().unwrap(), abs_sum);
        let row_sums: Vec<f32> = (0..1500).step_by(100).map(|r| hidden[r * d..(r + 1) * d].iter().map(|x| x.abs()).sum()).collect();
        assert_close(&format!("{at}: encoder row |x| sums"), &row_sums, &floats(&enc["row_abs_sums"]), REL);

        // Language detection: the language token most likely after <|startoftranscript|>.
        let prompt = ids(&case["prompt"]);
        if let Some(lang) = case.get("language") {
            let lang_ids: Vec<u32> = m.generation["lang_to_id"].as_object().unwrap().values().map(|v| v.as_u64().unwrap() as u32).collect();
            let mut cache = m.model.new_cache(&encoded, 4).unwrap();
            let logits = m.model.decode(&prompt[..1], &mut cache, false).unwrap().to_vec_f32_blocking().unwrap();
            let scores: Vec<f32> = lang_ids.iter().map(|&i| logits[i as usize]).collect();
            assert_eq!(lang_ids[argmax(&scores)], lang["id"].as_u64().unwrap() as u32, "{at}: detected language");
            assert_eq!(prompt[1], lang["id"].as_u64().unwrap() as u32);
        }

        // The first step's logits after the prompt.
        let mut cache = m.model.new_cache(&encoded, prompt.len() + 1).unwrap();
        let logits = m.model.decode(&prompt, &mut cache, false).unwrap().to_vec_f32_blocking().unwrap();
        assert_eq!(logits.len(), m.model.vocab_size());
        let first = &case["first_logits"];
        let top = ids(&first["top_ids"]);
        let got_top: Vec<f32> = top.iter().map(|&i| logits[i as usize]).collect();
        assert_close(&format!("{at}: top logits"), &got_top, &floats(&first["top_values"]), REL);
        assert_close(&format!("{at}: first logits"), &logits[..16], &floats(&first["first_values"]), REL);
        assert_eq!(argmax(&logits) as u32, top[0], "{at}: first argmax");
        let abs_sum: f64 = logits.iter().map(|x| x.abs() as f64).sum();
        assert_sum_close(&format!("{at}: logits |x| sum"), abs_sum, first["abs_sum"].as_f64().unwrap(), abs_sum);

        // Greedy ids, exactly.
        let max_len = if random { prompt.len() + 24 } else { m.generation["max_length"].as_u64().unwrap() as usize };
        let got = greedy(&m, &encoded, &prompt, max_len);
        assert_eq!(got, ids(&case["greedy"]), "{at}: greedy ids");

        // The alignment heads' cross-attention over prompt + 4 tokens, in one decoder pass.
        let xa = &case["cross_attentions"];
        let tokens = ids(&xa["tokens"]);
        let heads: Vec<(usize, usize)> = xa["heads"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| (h["layer"].as_u64().unwrap() as usize, h["head"].as_u64().unwrap() as usize))
            .collect();
        let mut cache = m.model.new_cache(&encoded, tokens.len()).unwrap();
        let (logits, probs) = m.model.decode_with_cross_attentions(&tokens, &mut cache, &heads).unwrap();
        assert_eq!(logits.dims(), &[1, m.model.vocab_size()]);
        let (t, s) = (tokens.len(), 1500);
        assert_eq!(probs.dims(), &[heads.len(), t, s], "{at}");
        let probs = probs.to_vec_f32_blocking().unwrap();
        for (i, h) in xa["heads"].as_array().unwrap().iter().enumerate() {
            let what = format!("{at}: cross-attention head {:?}", heads[i]);
            let rows = &probs[i * t * s..(i + 1) * t * s];
            let last = &rows[(t - 1) * s..];
            assert!((last.iter().sum::<f32>() - 1.0).abs() < 1e-4, "{what}: a probability row sums to 1");
            assert_close(&format!("{what} last row"), &last[..16], &floats(&h["last_first"]), PROB_TOL);
            let frames = ids(&h["last_top_frames"]);
            let got_top: Vec<f32> = frames.iter().map(|&f| last[f as usize]).collect();
            assert_close(&format!("{what} top frames"), &got_top, &floats(&h["last_top_values"]), PROB_TOL);
            // Every row's peak frame, where Python's is clear of the runner-up.
            for (r, want) in ids(&h["argmax"]).into_iter().enumerate() {
                let row = &rows[r * s..(r + 1) * s];
                let got = argmax(row);
                assert!(
                    got as u32 == want || (row[got] - row[want as usize]).abs() < PROB_TOL,
                    "{what}: row {r} peaks at frame {got}, Python's at {want}"
                );
            }
        }
    }
}

const ALL_CLIPS: &[&str] =
    &["us-short", "gb-slow", "us-female-fast", "us-noisy", "gb-female-silence", "scotland-numbers", "us-story", "long-news"];

#[test]
fn tiny_random_whisper_models_match_python() {
    for device in devices() {
        let clips: &[&str] = if matches!(device, Device::Cpu) { ALL_CLIPS } else { &["us-short", "us-noisy"] };
        for name in ["tiny-whisper-en", "tiny-whisper-multi"] {
            check_model(name, &device, clips);
        }
    }
}

#[test]
fn whisper_tiny_en_matches_python() {
    check_model("whisper-tiny.en", &Device::Cpu, ALL_CLIPS);
}

/// whisper-base's reference holds these clips only (its Python run is slow: see
/// make_whisper_reference.py's --clips): speech, noise, numbers and the first 30 s window of the
/// 90 s clip. Its pipeline cases (long-form included) are in tests/asr.rs.
const BASE_CLIPS: &[&str] = &["us-short", "us-noisy", "scotland-numbers", "long-news"];

/// CPU only: whisper-base on lavapipe takes minutes a clip.
#[test]
fn whisper_base_matches_python() {
    check_model("whisper-base", &Device::Cpu, BASE_CLIPS);
}

#[test]
fn bad_inputs_are_errors() {
    let m = load("tiny-whisper-en", &Device::Cpu);
    let model = &m.model;
    // Features of the wrong size, or not finite.
    assert!(model.encode(&[0.0; 10]).is_err());
    let mut features = vec![0.0f32; model.num_mel_bins() * model.num_frames()];
    features[5] = f32::NAN;
    assert!(model.encode(&features).is_err());
    features[5] = 0.0;
    let encoded = model.encode(&features).unwrap();
    // Caches: no room, too long, the wrong width.
    assert!(model.new_cache(&encoded, 0).is_err());
    assert!(model.new_cache(&encoded, model.max_target_positions() + 1).is_err());
    let wrong = Tensor::from_f32(&[0.0; 12], &[4, 3], &Device::Cpu).unwrap();
    assert!(model.new_cache(&wrong, 8).is_err());
    let mut cache = model.new_cache(&encoded, 4).unwrap();
    // Token ids outside the vocabulary, nothing to decode, more than the cache holds.
    assert!(model.decode(&[model.vocab_size() as u32], &mut cache, false).is_err());
    assert!(model.decode(&[], &mut cache, false).is_err());
    assert!(model.decode(&[1, 2, 3, 4, 5], &mut cache, false).is_err());
    // Alignment heads outside the decoder.
    assert!(model.decode_with_cross_attentions(&[1], &mut cache, &[(9, 0)]).is_err());
    assert!(model.decode_with_cross_attentions(&[1], &mut cache, &[(0, 99)]).is_err());
    assert!(model.decode_with_cross_attentions(&[1], &mut cache, &[]).is_err());
    // Still usable after the refusals: nothing was appended.
    assert_eq!(cache.len(), 0);
    let logits = model.decode(&[50257, 50362], &mut cache, true).unwrap();
    assert_eq!(logits.dims(), &[2, model.vocab_size()]);
    assert_eq!(cache.len(), 2);
    cache.reset();
    assert_eq!(cache.len(), 0);
}

#[test]
fn a_whisper_config_must_make_sense() {
    let m = serde_json::json!({
        "model_type": "whisper", "vocab_size": 10, "d_model": 6, "encoder_layers": 1, "decoder_layers": 1,
        "encoder_attention_heads": 4, "decoder_attention_heads": 2, "encoder_ffn_dim": 8, "decoder_ffn_dim": 8
    });
    let config = ModelConfig::from_json("bad", m).unwrap();
    let files = DirFiles::open(repo_root().join("tests/fixtures/whisper/tiny-whisper-en")).unwrap();
    let vb = Weights::new(files.weights(&Device::Cpu).unwrap(), &Device::Cpu, WeightDType::Auto);
    // 6 is not split by 4 heads.
    let err = models::load_speech_seq2seq(&config, &vb).err().expect("an error");
    assert!(err.to_string().contains("attention heads"), "{err}");
}
