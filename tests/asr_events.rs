//! What automatic-speech-recognition reports while it runs (`tasks::Event`), on the tiny random
//! Whisper models (tests/fixtures/whisper/tiny-whisper-{en,multi}) on every device: the streamed
//! text pieces concatenated are exactly the result's text; with segment timestamps, every
//! `ChunkStart`/`ChunkEnd` pair is exactly a returned chunk's `timestamp` (a last open segment
//! has a start and no end, as its chunk has `[start, null]`); `Tokens` come one per step;
//! `Progress` grows to the audio's length. Random models ramble up to the token limit, end
//! windows mid-segment (text that the next window decodes again) and make odd timestamps, which
//! is what the streaming has to get right. Also: long audio through chunking in bounded memory.

use serde_json::{Value, json};
use webformers::Device;
use webformers::audio::RawAudio;
use webformers::files::DirFiles;
use webformers::tasks::{self, Event, LoadOptions, Pipeline};
use webformers_tests::{devices, repo_root};

const TASK: &str = "automatic-speech-recognition";

fn load(model: &str, device: &Device) -> Box<dyn Pipeline> {
    let files = DirFiles::open(repo_root().join("tests/fixtures/whisper").join(model)).unwrap();
    tasks::load(TASK, &files, device, &LoadOptions::default()).unwrap()
}

fn clip(name: &str) -> Vec<f32> {
    let bytes = std::fs::read(repo_root().join("tests/fixtures/speech").join(name)).unwrap();
    RawAudio::decode(&bytes).unwrap().samples
}

/// Everything one call reported.
#[derive(Default, Debug)]
struct Recorded {
    text: String,
    steps: usize,
    /// (start, end) per segment, in order.
    segments: Vec<(f64, Option<f64>)>,
    progress: Vec<(f64, f64)>,
    /// Events out of order (an end without a start, text inside no segment with timestamps).
    misordered: Vec<String>,
}

fn run(pipe: &dyn Pipeline, samples: &[f32], options: &Value) -> (Value, Recorded) {
    let mut r = Recorded::default();
    let mut open = false;
    let out = pollster::block_on(pipe.run_json(&json!(samples), options, &mut |e: Event<'_>| match e {
        Event::Text(t) => r.text.push_str(t),
        Event::Tokens(ids) => {
            r.steps += 1;
            if ids.len() != 1 {
                r.misordered.push(format!("a step reported {} ids", ids.len()));
            }
        }
        Event::ChunkStart(t) => {
            if open {
                r.misordered.push(format!("start {t} while a segment is open"));
            }
            open = true;
            r.segments.push((t, None));
        }
        Event::ChunkEnd(t) => {
            match r.segments.last_mut() {
                Some(s) if open => s.1 = Some(t),
                _ => r.misordered.push(format!("end {t} without a start")),
            }
            open = false;
        }
        Event::Progress { done, total, unit } => {
            assert_eq!(unit, "s");
            r.progress.push((done, total));
        }
        Event::Warning(w) => r.misordered.push(format!("unexpected warning: {w}")),
    }))
    .unwrap_or_else(|e| panic!("{options}: {e}"))
    .to_json();
    (out, r)
}

fn check(label: &str, samples: &[f32], options: &Value, out: &Value, r: &Recorded) {
    assert!(r.misordered.is_empty(), "{label}: {:?}", r.misordered);
    assert_eq!(r.text, out["text"].as_str().unwrap(), "{label}: streamed text vs the result's");
    assert!(r.steps > 0, "{label}: no Tokens events");
    if options["return_timestamps"] == true {
        // A chunk without a start (text after the last timestamp, never given one) reports no
        // segment events: it has no end either.
        let want: Vec<(f64, Option<f64>)> = out["chunks"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|c| Some((c["timestamp"][0].as_f64()?, c["timestamp"][1].as_f64())))
            .collect();
        assert_eq!(r.segments, want, "{label}: streamed segment times vs the result's chunks {out}");
    }
    let seconds = samples.len() as f64 / 16000.0;
    assert!(!r.progress.is_empty(), "{label}: no progress");
    assert!(r.progress.windows(2).all(|w| w[0].0 <= w[1].0), "{label}: progress went back: {:?}", r.progress);
    let (done, total) = *r.progress.last().unwrap();
    assert!(
        (total - seconds).abs() < 1e-9 && (done - total).abs() < 1e-9,
        "{label}: progress ends at {done} of {total}, audio {seconds} s"
    );
}

#[test]
fn streamed_events_agree_with_the_result() {
    let short = clip("us-short.flac");
    let long = clip("long-news.flac");
    for device in devices() {
        let cpu = matches!(device, Device::Cpu);
        for model in ["tiny-whisper-en", "tiny-whisper-multi"] {
            let pipe = load(model, &device);
            // CI's lavapipe decodes these at about a token a second: shorter replies there.
            let (segment_tokens, word_tokens) = if cpu { (60, 40) } else { (20, 20) };
            let mut cases: Vec<(&str, &[f32], Value)> = vec![
                ("short", &short, json!({"return_timestamps": true, "max_new_tokens": segment_tokens})),
                ("short", &short, json!({"return_timestamps": "word", "max_new_tokens": word_tokens})),
            ];
            if cpu {
                cases.extend([
                    ("short", &short[..], json!({})),
                    ("short", &short[..], json!({"return_timestamps": true})),
                    ("long-form", &long[..], json!({})),
                    ("long-form", &long[..], json!({"return_timestamps": true})),
                    ("long-form", &long[..], json!({"return_timestamps": "word"})),
                    ("chunked", &long[..], json!({"chunk_length_s": 30})),
                    ("chunked", &long[..], json!({"chunk_length_s": 30, "return_timestamps": true})),
                    ("chunked", &long[..], json!({"chunk_length_s": 10, "stride_length_s": [2, 3], "return_timestamps": true})),
                    ("chunked", &long[..], json!({"chunk_length_s": 30, "return_timestamps": "word"})),
                ]);
            }
            for (name, samples, options) in &cases {
                let label = format!("{device:?} {model} {name} {options}");
                let (out, r) = run(pipe.as_ref(), samples, options);
                check(&label, samples, options, &out, &r);
            }
        }
    }
}

#[test]
fn progress_counts_every_audio_of_a_call() {
    let pipe = load("tiny-whisper-en", &Device::Cpu);
    let short = clip("us-short.flac");
    let mut progress = Vec::new();
    let mut text = String::new();
    let input = json!([short.clone(), short.clone()]);
    let out = pollster::block_on(pipe.run_json(&input, &json!({"max_new_tokens": 10}), &mut |e: Event<'_>| match e {
        Event::Progress { done, total, .. } => progress.push((done, total)),
        Event::Text(t) => text.push_str(t),
        _ => {}
    }))
    .unwrap()
    .to_json();
    let seconds = short.len() as f64 / 16000.0;
    assert_eq!(progress.len(), 2, "{progress:?}");
    assert!((progress[0].0 - seconds).abs() < 1e-9 && (progress[1].0 - 2.0 * seconds).abs() < 1e-9, "{progress:?}");
    assert!(progress.iter().all(|p| (p.1 - 2.0 * seconds).abs() < 1e-9), "{progress:?}");
    let all: String = out.as_array().unwrap().iter().map(|o| o["text"].as_str().unwrap()).collect();
    assert_eq!(text, all);
}

/// Quiet noise (deterministic) of `seconds` at 16 kHz.
fn noise(seconds: usize) -> Vec<f32> {
    let mut state = 0x2545F4914F6CDD1Du64;
    (0..seconds * 16000)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            ((state >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.01
        })
        .collect()
}

/// Long audio in 30 s chunks: memory stays that of one chunk plus the output (the features of
/// one chunk at a time; word-timestamp attention rows for one window at a time). The length is
/// `ASR_LONG_SECONDS` (default 10 minutes; the closing report of the events branch measured
/// 2 hours with it, peak RSS included).
#[test]
fn long_audio_in_chunks_finishes_with_a_result() {
    let seconds: usize = std::env::var("ASR_LONG_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(600);
    let pipe = load("tiny-whisper-en", &Device::Cpu);
    let samples = noise(seconds);
    let options = json!({"chunk_length_s": 30, "return_timestamps": true, "max_new_tokens": 24});
    let t = std::time::Instant::now();
    let (out, r) = run(pipe.as_ref(), &samples, &options);
    check(&format!("{seconds} s of noise"), &samples, &options, &out, &r);
    eprintln!(
        "{seconds} s of audio in {:.1} s, {} steps, {} chunks",
        t.elapsed().as_secs_f64(),
        r.steps,
        out["chunks"].as_array().unwrap().len()
    );
}
