//! The model side of `webformers bench automatic-speech-recognition` (and, alone, of
//! `webformers bench speech-model`): the encoder on one 30 s window and the decoder one token at a
//! time, timed apart, so that a speech benchmark can report them beside the whole call's
//! real-time factor (bench/speech.sh; Transformers.js's counterpart times its two ONNX sessions
//! the same way).

use std::time::Instant;

use serde_json::{Value, json};
use webformers::Result;
use webformers::audio::WhisperFeatureExtractor;
use webformers::files::DirFiles;
use webformers::files::ModelFiles;
use webformers::models::{self, SpeechSeq2SeqModel};
use webformers::tasks;
use webformers::weights::Weights;

use super::{ModelArgs, ModelRef, median, model_ref, prepare};

/// Decoder steps timed after the prompt (fewer when the model ends the text first).
const STEPS: usize = 48;

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Median milliseconds of the encoder on the input's first 30 s (`encoder_ms_per_call`), of the
/// decoder's first call on the prompt (which also computes the cross-attention keys and values:
/// `decoder_prompt_ms`), and of each later greedy step (`decoder_token_ms`), over `reps` runs
/// after one warm-up. Every timed piece ends with a read of its result, since nothing runs
/// before one.
/// A local model folder only: this measures the model, not loading.
pub async fn time_model(args: &ModelArgs, input: &Value, reps: usize, pool_set: bool) -> Result<Value> {
    let ModelRef::Path(path) = model_ref(args)? else {
        return Err(webformers::Error::Unsupported(format!("`{}`: the speech model benchmark takes a local model folder", args.model)));
    };
    let files = DirFiles::open(path)?;
    // After the task's own load (bench_task) the thread pool is already set to --threads, and
    // setting it again is an error.
    let mut args = args.clone();
    if pool_set {
        args.threads = None;
    }
    let (device, options) = prepare(&args, false).await?;
    let config = files.json("config.json")?.unwrap_or_default();
    let vb = Weights::new(files.weights(&device)?, &device, options.dtype);
    let model = models::load_speech_seq2seq(&models::ModelConfig::from_json(files.name(), config.clone())?, &vb)?;
    let extractor = WhisperFeatureExtractor::from_config(&files.json("preprocessor_config.json")?.unwrap_or_default())?;
    let audio = match tasks::Input::json(input).audios(16000)? {
        tasks::OneOrMany::One(a) => a,
        tasks::OneOrMany::Many(mut v) => v.swap_remove(0),
    };
    let features = extractor.extract(&audio.samples)?;
    let prompt = prompt_tokens(&files.json("generation_config.json")?.unwrap_or_default(), &config);
    let (mut enc, mut first, mut steps) = (Vec::new(), Vec::new(), Vec::new());
    for rep in 0..=reps.max(1) {
        let (e, f, s) = run_once(model.as_ref(), &features, &prompt).await?;
        if rep > 0 {
            enc.push(e);
            first.push(f);
            steps.extend(s);
        }
    }
    let steps_per_run = steps.len() / reps.max(1);
    Ok(json!({
        "model_device": device.describe(),
        "encoder_ms_per_call": round2(median(enc)),
        "decoder_prompt_tokens": prompt.len(),
        "decoder_prompt_ms": round2(median(first)),
        "decoder_steps": steps_per_run,
        "decoder_token_ms": if steps.is_empty() { Value::Null } else { round2(median(steps)).into() },
    }))
}

async fn run_once(model: &dyn SpeechSeq2SeqModel, features: &[f32], prompt: &[u32]) -> Result<(f64, f64, Vec<f64>)> {
    let t = Instant::now();
    let hidden = model.encode(features)?;
    hidden.to_vec_f32().await?;
    let encoder = ms(t);
    let mut cache = model.new_cache(&hidden, model.max_target_positions())?;
    let t = Instant::now();
    let mut next = model.decode(prompt, &mut cache, false)?.argmax()?.to_vec_u32().await?[0];
    let prompt_ms = ms(t);
    let room = model.max_target_positions().saturating_sub(prompt.len() + 1);
    let mut steps = Vec::new();
    for _ in 0..STEPS.min(room) {
        let t = Instant::now();
        next = model.decode(&[next], &mut cache, false)?.argmax()?.to_vec_u32().await?[0];
        steps.push(ms(t));
    }
    Ok((encoder, prompt_ms, steps))
}

/// The decoder prompt of English transcription without timestamps: start token, then (for a
/// multilingual checkpoint) <|en|> and <|transcribe|>, then <|notimestamps|>, from
/// generation_config.json. Its ids only matter for which tokens follow.
fn prompt_tokens(generation: &Value, config: &Value) -> Vec<u32> {
    let id = |v: &Value| v.as_u64().map(|x| x as u32);
    let start = id(&generation["decoder_start_token_id"]).or_else(|| id(&config["decoder_start_token_id"])).unwrap_or(50257);
    let mut prompt = vec![start];
    if generation["is_multilingual"].as_bool() == Some(true) {
        prompt.extend(id(&generation["lang_to_id"]["<|en|>"]));
        prompt.extend(id(&generation["task_to_id"]["transcribe"]));
    }
    prompt.extend(id(&generation["no_timestamps_token_id"]));
    prompt
}

/// `webformers bench speech-model --model DIR --input JSON [--reps N]`: `time_model` alone, one
/// JSON line.
pub async fn bench_model(args: &ModelArgs, input: Option<&str>, reps: usize) -> Result<()> {
    let input = super::parse_json("--input", input.unwrap_or("null"))?;
    let timing = time_model(args, &input, reps, false).await?;
    // Read after loading: asking earlier would start rayon's pool before --threads sets it.
    let mut result = json!({ "model": args.model, "threads": webformers::cpu::threads() });
    if let Value::Object(timing) = timing {
        result.as_object_mut().expect("an object").extend(timing);
    }
    println!("{result}");
    Ok(())
}
