//! Hostile input found by fuzzing (scripts/fuzz.sh, FUZZING.md) or built to the same end: each
//! parser of untrusted bytes answers with a clear error, never a panic, a hang or an allocation of
//! what a header merely claims.

use std::time::{Duration, Instant};

use webformers::Error;
use webformers::chat::{ChatTemplate, Message};

/// Runs `f` and checks it took under `limit` (a hostile input must be refused quickly).
fn quickly<T>(limit: Duration, f: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let out = f();
    assert!(start.elapsed() < limit, "took {:?}, over {limit:?}", start.elapsed());
    out
}

/// The rendered prompt's length (a failing test must not print megabytes).
fn render(template: &str) -> webformers::Result<usize> {
    ChatTemplate::new(template, "<s>", "</s>").render(&[Message::new("user", "Hi")], true).map(|s| s.len())
}

#[test]
fn a_chat_template_that_recurses_forever_is_an_error() {
    let e = quickly(Duration::from_secs(5), || render("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}")).unwrap_err();
    assert!(matches!(e, Error::Input(_)) && e.to_string().contains("recursion"), "{e}");
}

#[test]
fn a_chat_template_that_loops_too_long_runs_out_of_fuel() {
    let e = quickly(Duration::from_secs(10), || {
        render("{% for a in range(100000) %}{% for b in range(100000) %}{{ a }}{% endfor %}{% endfor %}")
    })
    .unwrap_err();
    assert!(e.to_string().contains("too much work"), "{e}");
}

#[test]
fn a_chat_template_that_builds_a_huge_string_is_an_error() {
    for (t, why) in [
        ("{% set s = 'x' * 10000000 %}{% for i in range(10) %}{{ s }}{% endfor %}", "too long"),
        (
            "{% set ns = namespace(s='ab') %}{% for i in range(60) %}{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s|length }}",
            "too much work",
        ),
    ] {
        let e = quickly(Duration::from_secs(10), || render(t)).unwrap_err();
        assert!(e.to_string().contains(why), "{t}: {e}");
    }
}

#[test]
fn a_long_conversation_still_renders_within_the_fuel() {
    // 200 turns of 5 KB each (a megabyte of prompt) through a ChatML template.
    let template = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'].strip() + '<|im_end|>\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";
    let turn = "word ".repeat(1000);
    let messages: Vec<Message> = (0..200).map(|i| Message::new(if i % 2 == 0 { "user" } else { "assistant" }, turn.clone())).collect();
    let out = ChatTemplate::new(template, "", "").render(&messages, true).unwrap();
    let expected: usize = messages.iter().map(|m| format!("<|im_start|>{}\n{}<|im_end|>\n", m.role, m.content.trim()).len()).sum();
    assert_eq!(out.len(), expected + "<|im_start|>assistant\n".len());
}

/// A mono 32-bit float WAV at `rate` holding `samples`.
fn float_wav(rate: u32, samples: &[f32]) -> Vec<u8> {
    let data: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
    let mut w = Vec::new();
    w.extend_from_slice(b"RIFF");
    w.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
    w.extend_from_slice(b"WAVEfmt ");
    // PCM header: 16 bytes, format 3 (IEEE float), 1 channel, rate, byte rate, block 4, 32 bits.
    for (v, n) in [(16u32, 4), (3, 2), (1, 2), (rate, 4), (rate * 4, 4), (4, 2), (32, 2)] {
        w.extend_from_slice(&v.to_le_bytes()[..n]);
    }
    w.extend_from_slice(b"data");
    w.extend_from_slice(&(data.len() as u32).to_le_bytes());
    w.extend_from_slice(&data);
    w
}

#[test]
fn a_float_wav_with_nan_or_huge_samples_is_an_error_not_a_resampler_panic() {
    // Found by fuzzing (audio_decode): a float WAV's NaN, or values whose FFT sums overflow,
    // made the resampler's inverse FFT fail and rubato panic.
    use webformers::audio::RawAudio;
    for bad in [f32::NAN, f32::INFINITY, 3e38, -2e7] {
        let mut samples: Vec<f32> = (0..4410).map(|i| (i as f32 * 0.01).sin() * 0.5).collect();
        samples[1000] = bad;
        let wav = float_wav(44_100, &samples);
        for result in [RawAudio::decode_at(&wav, 16_000), RawAudio::decode(&wav)] {
            let e = result.unwrap_err();
            assert!(e.to_string().contains("not audio"), "{bad}: {e}");
        }
        assert!(RawAudio::new(samples, 16_000).is_err(), "{bad}");
    }
    // Loud but plausible float audio (clipped past 1) still decodes and resamples.
    let loud: Vec<f32> = (0..4410).map(|i| (i as f32 * 0.01).sin() * 1.5).collect();
    let audio = RawAudio::decode_at(&float_wav(44_100, &loud), 16_000).unwrap();
    assert_eq!(audio.samples.len(), 1600);
}

#[test]
fn a_tokenizer_json_with_a_syntax_error_inside_its_decoder_is_an_error_not_a_panic() {
    // Found by fuzzing (tokenizer_json): `tokenizers` panics ("Helper") when the JSON breaks
    // inside the `decoder` value; a cut-down real tokenizer.json whose decoder is cut off.
    use webformers::tokenizer::Tokenizer;
    let json =
        std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/fuzz/tokenizer-json-syntax-error-in-decoder.json")).unwrap();
    for result in [Tokenizer::from_bytes(&json, 64).map(|_| ()), Tokenizer::for_generation(&json).map(|_| ())] {
        let e = result.unwrap_err();
        assert!(matches!(e, Error::Tokenizer(_)) && e.to_string().contains("not JSON"), "{e}");
    }
}

#[test]
fn a_tokenizer_json_with_bytes_that_are_not_utf8_inside_its_decoder_is_an_error_not_a_panic() {
    // Found by fuzzing (tokenizer_json): a byte that is not UTF-8 in a key of the `decoder`
    // object, which serde_json skips unchecked and `tokenizers` then panics on ("Helper").
    use webformers::tokenizer::Tokenizer;
    let json =
        std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/fuzz/tokenizer-json-invalid-utf8-in-decoder.json")).unwrap();
    for result in [Tokenizer::from_bytes(&json, 64).map(|_| ()), Tokenizer::for_generation(&json).map(|_| ())] {
        let e = result.unwrap_err();
        assert!(matches!(e, Error::Tokenizer(_)) && e.to_string().contains("not UTF-8"), "{e}");
    }
}

#[test]
fn a_tokenizer_json_whose_template_names_an_undefined_special_token_is_an_error_not_a_panic() {
    // Found by fuzzing (tokenizer_json): `tokenizers` loads a TemplateProcessing that uses a
    // special token its `special_tokens` lack, then panics on the first encode.
    use webformers::tokenizer::Tokenizer;
    let json = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/fuzz/tokenizer-json-template-names-a-missing-special-token.json"
    ))
    .unwrap();
    for result in [Tokenizer::from_bytes(&json, 64).map(|_| ()), Tokenizer::for_generation(&json).map(|_| ())] {
        let e = result.unwrap_err();
        assert!(matches!(e, Error::Tokenizer(_)) && e.to_string().contains("<|begin_of_text|>"), "{e}");
    }
}

#[test]
fn a_config_with_a_huge_num_labels_is_an_error_not_an_allocation() {
    use webformers::models::{MAX_LABELS, ModelConfig};
    let config = |n: u64| serde_json::json!({"model_type": "bert", "num_labels": n});
    let e = quickly(Duration::from_secs(1), || ModelConfig::from_json("m", config(1 << 60))).unwrap_err();
    assert!(e.to_string().contains("num_labels"), "{e}");
    assert_eq!(ModelConfig::from_json("m", config(3)).unwrap().id2label, ["LABEL_0", "LABEL_1", "LABEL_2"]);
    assert_eq!(ModelConfig::from_json("m", config(MAX_LABELS as u64)).unwrap().id2label.len(), MAX_LABELS);
}

#[test]
fn a_flac_comment_claiming_gigabytes_is_an_error_not_an_allocation() {
    // Found by fuzzing (audio_decode): symphonia allocates a Vorbis comment at its claimed length
    // (here 3.5 GB) before reading it; in wasm that aborts the page.
    use webformers::audio::RawAudio;
    let flac = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/fuzz/flac-comment-claims-3gb.flac")).unwrap();
    let e = quickly(Duration::from_secs(2), || RawAudio::decode(&flac)).unwrap_err();
    assert!(e.to_string().contains("comment block's comment claims"), "{e}");
}

#[test]
fn a_gguf_claiming_more_layers_than_it_has_is_an_error_before_any_per_layer_work() {
    // Found by fuzzing (gguf): 7 KB claiming 12801 layers spent 0.24 s (1.7 s under the
    // sanitizer) making per-layer names before the first missing tensor showed.
    let bytes = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/fuzz/gguf-claims-12801-layers.gguf")).unwrap();
    let file = webformers::weights::gguf::GgufFile::from_bytes(std::sync::Arc::new(bytes), "claims.gguf").unwrap();
    let e = quickly(Duration::from_millis(200), || {
        webformers::models::gguf::load(file, &webformers::Device::Cpu, webformers::weights::WeightDType::Auto)
    })
    .err()
    .expect("a file without its layers does not load");
    assert!(
        matches!(e, Error::Config(_)) && e.to_string().contains("block_count says 12801 layers, but the file has tensors for 1"),
        "{e}"
    );
}
