//! Audio in: decoding (WAV, FLAC, MP3, OGG/Vorbis, M4A/AAC), resampling and Whisper's log-mel
//! features, against the references of tests/reference/make_audio_reference.py (transformers'
//! WhisperFeatureExtractor, ffmpeg's decoders through PyAV, soxr), on the espeak-ng clips of
//! tests/fixtures/audio/ (tests/reference/make_audio_fixtures.sh); and bad audio input, which
//! must give a clear error, never a panic.

use std::path::PathBuf;
use std::time::Instant;

use serde_json::{Value, json};
use webformers::audio::{RawAudio, WhisperFeatureExtractor, resample};
use webformers::tasks::{Input, Media};
use webformers_tests::repo_root;

fn audio_dir() -> PathBuf {
    repo_root().join("tests/fixtures/audio")
}

fn ref_dir() -> PathBuf {
    repo_root().join("tests/fixtures/audio-reference")
}

fn reference() -> Value {
    serde_json::from_str(&std::fs::read_to_string(ref_dir().join("reference.json")).unwrap()).unwrap()
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(audio_dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn decode(name: &str) -> RawAudio {
    RawAudio::decode(&read(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn f32s(path: PathBuf) -> Vec<f32> {
    std::fs::read(&path).unwrap().chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect()
}

fn i16s(path: PathBuf) -> Vec<f32> {
    std::fs::read(&path).unwrap().chunks_exact(2).map(|b| i16::from_le_bytes(b.try_into().unwrap()) as f32 / 32768.0).collect()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// The lag of `b` against `a` (b[i + lag] ≈ a[i]) within ±max_lag, by cross-correlation over `a`'s first `n`.
fn best_lag(a: &[f32], b: &[f32], max_lag: isize, n: usize) -> isize {
    let score = |lag: isize| -> f64 {
        (0..n)
            .filter_map(|i| {
                let j = i as isize + lag;
                (j >= 0 && (j as usize) < b.len()).then(|| a[i] as f64 * b[j as usize] as f64)
            })
            .sum()
    };
    (-max_lag..=max_lag).max_by(|&x, &y| score(x).total_cmp(&score(y))).unwrap()
}

/// Signal-to-error ratio in dB of `b` (shifted by `lag`) against `a`, over a's first `n`.
fn snr_db(a: &[f32], b: &[f32], lag: isize, n: usize) -> f64 {
    let (mut s, mut e) = (0.0f64, 0.0f64);
    for i in 0..n {
        let j = i as isize + lag;
        let y = if j >= 0 && (j as usize) < b.len() { b[j as usize] as f64 } else { 0.0 };
        s += (a[i] as f64).powi(2);
        e += (a[i] as f64 - y).powi(2);
    }
    10.0 * (s / e).log10()
}

#[test]
fn features_match_whisper_feature_extractor() {
    let reference = reference();
    let mut clips = std::collections::HashMap::new();
    for case in reference["features"].as_array().unwrap() {
        let n_mels = case["n_mels"].as_u64().unwrap() as usize;
        let fe = WhisperFeatureExtractor::from_config(&json!({ "feature_size": n_mels })).unwrap();
        let samples: Vec<f32> = case["parts"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|p| {
                clips
                    .entry(p.as_str().unwrap().to_string())
                    .or_insert_with(|| {
                        let a = decode(&format!("{}.wav", p.as_str().unwrap()));
                        assert_eq!(a.sampling_rate, 16000);
                        a.samples
                    })
                    .clone()
            })
            .collect();
        let got = fe.extract(&samples).unwrap();
        assert_eq!(got.len(), n_mels * 3000);
        let kept = case["frames_kept"].as_u64().unwrap() as usize;
        let want = f32s(ref_dir().join(case["file"].as_str().unwrap()));
        assert_eq!(want.len(), n_mels * kept);
        let mut worst = 0f32;
        for m in 0..n_mels {
            let row = &got[m * 3000..(m + 1) * 3000];
            worst = worst.max(max_diff(&row[..kept], &want[m * kept..(m + 1) * kept]));
            if let Some(tail) = case["tail_value"].as_f64() {
                // The frames of the zero padding all hold the floor value.
                worst = worst.max(row[kept..].iter().map(|v| (v - tail as f32).abs()).fold(0.0, f32::max));
            }
        }
        println!("{} {n_mels} bins: max |diff| {worst:.2e}", case["case"]);
        assert!(worst <= 1e-4, "{} {n_mels} bins: max |diff| {worst}", case["case"]);
    }
}

#[test]
fn features_are_fast() {
    let fe = WhisperFeatureExtractor::new(80).unwrap();
    let samples: Vec<f32> =
        (0..480_000).map(|i| ((i as f32) * 0.01).sin() * 0.3 + ((i * 7919 % 1000) as f32 / 1000.0 - 0.5) * 0.01).collect();
    fe.extract(&samples).unwrap();
    let t = Instant::now();
    for _ in 0..5 {
        fe.extract(&samples).unwrap();
    }
    let ms = t.elapsed().as_secs_f64() * 1000.0 / 5.0;
    println!("log-mel of 30 s (80 bins): {ms:.1} ms");
    // Generous: a debug-free build does it in tens of milliseconds.
    assert!(ms < 2000.0, "{ms} ms");
}

#[test]
fn flac_decodes_to_the_wav_samples() {
    let wav = decode("speech_b_44k_stereo.wav");
    let flac = decode("speech_b_44k_stereo.flac");
    assert_eq!(wav.sampling_rate, 44100);
    assert_eq!(flac, wav);
    // The stereo clip's right channel is the left at half level (sox remix 1 1v0.5), so the mono
    // average is 0.75 of the 44.1 kHz source: compare with speech_b_16k.wav's energy loosely.
    let peak = wav.samples.iter().fold(0f32, |m, v| m.max(v.abs()));
    assert!(peak > 0.1 && peak <= 1.0, "{peak}");
}

#[test]
fn lossy_formats_match_ffmpeg_and_the_source() {
    let reference = reference();
    let source = decode("speech_b_44k_stereo.wav").samples;
    let source_22k = decode("speech_d_22k.wav").samples;
    for case in reference["decoded"].as_array().unwrap() {
        let name = case["file"].as_str().unwrap();
        let got = decode(name);
        assert_eq!(got.sampling_rate as u64, case["sampling_rate"].as_u64().unwrap(), "{name}");
        // Against ffmpeg's decode (its first 2 s, as int16): aligned, the same signal.
        let ffmpeg = i16s(ref_dir().join(case["reference"].as_str().unwrap()));
        let n = ffmpeg.len() - 3000;
        let lag = best_lag(&ffmpeg, &got.samples, 2500, n);
        let snr = snr_db(&ffmpeg, &got.samples, lag, n);
        // Against the source WAV.
        let src = if name.contains("22k") { &source_22k } else { &source };
        let n_src = src.len().min(got.samples.len()) - 3000;
        let lag_src = best_lag(src, &got.samples, 2500, 40000.min(n_src));
        let snr_src = snr_db(src, &got.samples, lag_src, n_src);
        println!(
            "{name}: {} frames (ffmpeg {}), vs ffmpeg lag {lag} SNR {snr:.1} dB, vs source lag {lag_src} SNR {snr_src:.1} dB",
            got.samples.len(),
            case["frames"]
        );
        // Decoders of the same bitstream agree far beyond the codec's own error.
        assert!(snr > 60.0, "{name}: {snr} dB against ffmpeg");
        // The codec's error against the source (128 kbit/s MP3 and AAC, q3 Vorbis).
        assert!(snr_src > 15.0, "{name}: {snr_src} dB against the source");
        // MP3 and Vorbis start on the same sample as ffmpeg's decode (sox's MP3 has no LAME
        // gapless tag, so both keep the codec's 1105-sample delay against the source).
        if !name.ends_with(".m4a") {
            assert_eq!(lag, 0, "{name}");
        }
        assert!(lag.abs() <= 2112, "{name}: lag {lag}");
    }
}

#[test]
fn wav_variants_decode() {
    // 22.05 kHz mono 16-bit, and the 32-bit float sweep.
    let d = decode("speech_d_22k.wav");
    assert_eq!(d.sampling_rate, 22050);
    let sweep = decode("sweep_44k_f32.wav");
    assert_eq!((sweep.sampling_rate, sweep.samples.len()), (44100, 66150));
    let peak = sweep.samples.iter().fold(0f32, |m, v| m.max(v.abs()));
    assert!((peak - 0.5).abs() < 1e-3, "{peak}");
}

#[test]
fn resampling_matches_soxr() {
    let reference = reference();
    let r = &reference["resample"];
    let sweep = decode(r["input"].as_str().unwrap());
    let got = resample(&sweep.samples, 44100, 16000).unwrap();
    let want = f32s(ref_dir().join(r["reference"].as_str().unwrap()));
    assert_eq!(got.len(), want.len());
    // The sweep rises exponentially from 50 Hz to 20 kHz over 1.5 s: it crosses 7 kHz at about
    // 1.33 s. Below that (the passband of both resamplers) the outputs agree closely; above 8 kHz
    // both remove it (their transition bands differ in between).
    let t7k = (1.5 * (7000f64 / 50.0).ln() / (20000f64 / 50.0).ln() * 16000.0) as usize;
    let pass = max_diff(&got[50..t7k], &want[50..t7k]);
    let t8k = (1.5 * (8000f64 / 50.0).ln() / (20000f64 / 50.0).ln() * 16000.0) as usize + 200;
    let rms = |x: &[f32]| (x.iter().map(|v| (v * v) as f64).sum::<f64>() / x.len() as f64).sqrt();
    let stop = rms(&got[t8k..got.len() - 50]);
    println!(
        "resample vs soxr VHQ: passband max |diff| {pass:.2e}; above 8 kHz rms {stop:.2e} (soxr {:.2e})",
        rms(&want[t8k..want.len() - 50])
    );
    assert!(pass < 2e-3, "passband max |diff| {pass}");
    assert!(stop < 1e-3, "stop-band rms {stop}");
    // Decoding straight to 16 kHz (resampled while decoding) gives the same samples.
    let direct = RawAudio::decode_at(&read(r["input"].as_str().unwrap()), 16000).unwrap();
    assert_eq!(direct.sampling_rate, 16000);
    assert_eq!(direct.samples, got);
}

#[test]
fn input_audios_resolves_every_form() {
    let path = audio_dir().join("speech_b_44k_stereo.mp3");
    let bytes = read("speech_b_44k_stereo.mp3");
    let at16k = RawAudio::decode_at(&bytes, 16000).unwrap();
    // A path.
    let v = json!(path.to_str().unwrap());
    let a = Input::json(&v).audios(16000).unwrap();
    assert_eq!(a.items()[0], &at16k);
    // Encoded bytes and decoded audio as media; a batch of them.
    let media = [Media::Encoded(bytes.clone()), Media::Audio(RawAudio::decode(&bytes).unwrap())];
    let v = json!([{"$media": 0}, {"$media": 1}]);
    let a = Input { value: &v, media: &media }.audios(16000).unwrap();
    assert!(a.is_many());
    assert_eq!(a.items()[0], &at16k);
    assert_eq!(a.items()[1], &at16k);
    // A data: URL.
    let wav = read("speech_a_16k.wav");
    let url = format!("data:audio/wav;base64,{}", base64(&wav));
    let v = json!(url);
    assert_eq!(Input::json(&v).audios(16000).unwrap().items()[0], &decode("speech_a_16k.wav"));
}

fn base64(b: &[u8]) -> String {
    const T: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::new();
    for c in b.chunks(3) {
        let n = (c[0] as u32) << 16 | (*c.get(1).unwrap_or(&0) as u32) << 8 | *c.get(2).unwrap_or(&0) as u32;
        for k in 0..4 {
            if k <= c.len() {
                s.push(T[(n >> (18 - 6 * k) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

/// A 16-bit PCM WAV file.
fn wav_bytes(rate: u32, channels: u16, frames: usize) -> Vec<u8> {
    let data_len = frames * channels as usize * 2;
    let mut b = Vec::with_capacity(44 + data_len);
    b.extend_from_slice(b"RIFF");
    b.extend_from_slice(&(36 + data_len as u32).to_le_bytes());
    b.extend_from_slice(b"WAVEfmt ");
    b.extend_from_slice(&16u32.to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes());
    b.extend_from_slice(&channels.to_le_bytes());
    b.extend_from_slice(&rate.to_le_bytes());
    b.extend_from_slice(&(rate * channels as u32 * 2).to_le_bytes());
    b.extend_from_slice(&(channels * 2).to_le_bytes());
    b.extend_from_slice(&16u16.to_le_bytes());
    b.extend_from_slice(b"data");
    b.extend_from_slice(&(data_len as u32).to_le_bytes());
    b.resize(44 + data_len, 0);
    b
}

fn err(bytes: &[u8]) -> String {
    match RawAudio::decode(bytes) {
        Ok(a) => panic!("decoded {} samples from bad input", a.samples.len()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn bad_audio_is_a_clear_error() {
    // Empty.
    assert!(err(b"").contains("empty"), "{}", err(b""));
    // Not audio: text, an image, random bytes.
    let e = err(b"this is a text file, not audio");
    assert!(e.contains("not a WAV, MP3, FLAC, OGG/Vorbis or M4A/AAC"), "{e}");
    let png = std::fs::read(repo_root().join("tests/fixtures/images").read_dir().unwrap().flatten().next().unwrap().path()).unwrap();
    assert!(RawAudio::decode(&png).is_err());
    let noise: Vec<u8> = (0..20000u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
    assert!(RawAudio::decode(&noise).is_err());
    // A sample rate of 1 Hz, 0 Hz, 10 MHz.
    for rate in [0, 1, 10_000_000] {
        let e = err(&wav_bytes(rate, 1, 100));
        assert!(e.contains("Hz"), "{rate}: {e}");
    }
    assert!(RawAudio::new(vec![0.0; 4], 1).is_err());
    // A header with no samples.
    let e = err(&wav_bytes(16000, 1, 0));
    assert!(e.contains("no samples"), "{e}");
    // Truncated WAV: the complete frames are decoded (as ffmpeg does); cut inside the header: an error.
    let full = read("speech_a_16k.wav");
    let whole = decode("speech_a_16k.wav");
    let cut = RawAudio::decode(&full[..full.len() / 2 + 1]).unwrap();
    assert_eq!(cut.samples, whole.samples[..cut.samples.len()]);
    assert_eq!(cut.samples.len(), (full.len() / 2 + 1 - 44) / 2);
    assert!(RawAudio::decode(&full[..30]).is_err());
    // Truncated compressed files decode what they hold; cut to their first bytes, an error.
    for name in ["speech_b_44k_stereo.mp3", "speech_d_22k.ogg", "speech_b_44k_stereo.flac", "speech_b_44k_stereo.m4a"] {
        let b = read(name);
        match RawAudio::decode(&b[..b.len() / 2]) {
            Ok(a) => assert!(a.samples.len() < decode(name).samples.len(), "{name}"),
            Err(e) => println!("{name} cut in half: {e}"),
        }
        assert!(RawAudio::decode(&b[..16]).is_err(), "{name}");
        // Corrupted in the middle: decodes (skipping bad packets) or errs, never panics.
        let mut c = b.clone();
        let mid = c.len() / 2;
        for x in &mut c[mid..mid + 2000] {
            *x = x.wrapping_mul(31).wrapping_add(7);
        }
        let _ = RawAudio::decode(&c);
    }
    // Silence is fine: the features are the floor.
    let silent = RawAudio::decode(&wav_bytes(16000, 1, 16000)).unwrap();
    let f = WhisperFeatureExtractor::new(80).unwrap().extract(&silent.samples).unwrap();
    assert!(f.iter().all(|&v| v == -1.5));
}

#[test]
fn hours_of_audio_are_bounded() {
    // 2 hours at 16 kHz mono decodes (one 230 MB file, one 460 MB output); 2 hours at 8 kHz
    // resampled to 16 kHz while decoding; past 4 hours is refused before anything is decoded.
    let two_hours = wav_bytes(16000, 1, 2 * 3600 * 16000);
    let t = Instant::now();
    let a = RawAudio::decode(&two_hours).unwrap();
    assert_eq!(a.samples.len(), 2 * 3600 * 16000);
    assert_eq!(a.samples.capacity(), a.samples.len(), "the output is allocated once");
    println!("2 h of 16 kHz WAV decoded in {:.1} s", t.elapsed().as_secs_f64());
    drop(a);
    drop(two_hours);
    let two_hours_8k = wav_bytes(8000, 1, 2 * 3600 * 8000);
    let t = Instant::now();
    let a = RawAudio::decode_at(&two_hours_8k, 16000).unwrap();
    assert_eq!(a.samples.len(), 2 * 3600 * 16000);
    println!("2 h of 8 kHz WAV decoded and resampled to 16 kHz in {:.1} s", t.elapsed().as_secs_f64());
    drop(a);
    // 5 hours at 1 kHz: refused.
    let e = err(&wav_bytes(1000, 1, 5 * 3600 * 1000));
    assert!(e.contains("4 hours"), "{e}");
    assert!(RawAudio::new(vec![0.0; 5 * 3600 * 1000], 1000).is_err());
}
