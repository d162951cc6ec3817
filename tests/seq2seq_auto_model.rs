//! The encoder-decoder model classes (`AutoModelForSeq2SeqLM`, `AutoModelForSpeechSeq2Seq`:
//! `models::auto`, what the npm package's classes run) on every backend, against transformers
//! (tests/fixtures/seq2seq/auto-model-reference.json, made by
//! tests/reference/make_seq2seq_auto_model_reference.py): the tiny Marian, BART and T5 on a
//! right-padded batch of two texts and the tiny Whisper on two log-mel stand-ins, their forward
//! (`logits` of every decoder position, `encoder_last_hidden_state`) and their greedy and 2-beam
//! `generate` ids; bad input. The translation, summarization, text2text-generation and ASR
//! pipelines' model (`Pipeline::auto_model`) against the class loaded alone: auto_model.rs.

use serde_json::{Value, json};
use webformers::files::DirFiles;
use webformers::models::auto::{AutoModel, HostTensor, HostValues, ModelClass, NamedTensors};
use webformers::tasks::LoadOptions;
use webformers::{Device, Error};
use webformers_tests::{devices, fixture, floats, max_abs_diff, repo_root};

/// f32 models of width 8 to 32: differences come from summation order only.
const TOLERANCE: f32 = 1e-4;

/// One test at a time: each runs every backend, and Whisper's encoder is the slow part.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn load(class: &str, folder: &str, device: &Device) -> webformers::Result<AutoModel> {
    let files = DirFiles::open(repo_root().join("tests/fixtures").join(folder)).unwrap();
    AutoModel::load(ModelClass::from_name(class)?, &files, device, &LoadOptions::default())
}

fn ids(v: &Value) -> Vec<i64> {
    v.as_array().unwrap().iter().map(|x| x.as_i64().unwrap()).collect()
}

/// A JSON array of rows as an int64 tensor [rows, width].
fn int_rows(v: &Value) -> HostTensor {
    let rows: Vec<Vec<i64>> = v.as_array().unwrap().iter().map(ids).collect();
    HostTensor { dims: vec![rows.len(), rows[0].len()], data: HostValues::Int(rows.concat()) }
}

fn rows_u32(v: &Value) -> Vec<Vec<u32>> {
    v.as_array().unwrap().iter().map(|r| ids(r).into_iter().map(|x| x as u32).collect()).collect()
}

fn output<'a>(out: &'a NamedTensors, name: &str) -> (&'a [usize], &'a [f32]) {
    let (_, t) = out.iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("no output {name}"));
    match &t.data {
        HostValues::Float(v) => (&t.dims, v),
        HostValues::Int(_) => panic!("{name} is not float"),
    }
}

fn dims(v: &Value) -> Vec<usize> {
    ids(v).into_iter().map(|x| x as usize).collect()
}

/// `generate`'s [rows, len] ids as rows.
fn generated(model: &AutoModel, inputs: &NamedTensors, options: Value) -> Vec<Vec<u32>> {
    let (ids, [rows, len]) = pollster::block_on(model.generate(inputs, &options)).unwrap();
    assert_eq!(ids.len(), rows * len);
    ids.chunks(len).map(<[u32]>::to_vec).collect()
}

fn text_inputs(m: &Value) -> NamedTensors {
    vec![("input_ids".into(), int_rows(&m["input_ids"])), ("attention_mask".into(), int_rows(&m["attention_mask"]))]
}

/// The reference's log-mel stand-in for row `b` (the formula of the Python script, in f64 and
/// then f32 as torch.tensor makes it).
fn whisper_features(batch: usize, mels: usize, frames: usize) -> HostTensor {
    let mut data = Vec::with_capacity(batch * mels * frames);
    for b in 0..batch {
        for m in 0..mels {
            for f in 0..frames {
                data.push((0.5 * (0.013 * (f + 1) as f64 * (m + 1 + 3 * b) as f64).sin()) as f32);
            }
        }
    }
    HostTensor { dims: vec![batch, mels, frames], data: HostValues::Float(data) }
}

fn whisper_inputs(m: &Value) -> NamedTensors {
    let d = dims(&m["input_features_dims"]);
    vec![("input_features".into(), whisper_features(d[0], d[1], d[2]))]
}

#[test]
fn text_seq2seq_forward_and_generate_match_transformers() {
    let _serial = serial();
    let reference = fixture("seq2seq/auto-model-reference.json");
    let max_new = reference["max_new_tokens"].as_u64().unwrap();
    for device in devices() {
        for (name, m) in reference["text"].as_object().unwrap() {
            let what = format!("{device:?} {name}");
            let model = load("AutoModelForSeq2SeqLM", &format!("seq2seq/{name}"), &device).unwrap();
            assert_eq!(model.class.name(), "AutoModelForSeq2SeqLM");
            let mut inputs = text_inputs(m);
            // generate first: it takes no decoder_input_ids here (the start token is the prompt)
            let greedy = generated(&model, &inputs, json!({ "max_new_tokens": max_new }));
            assert_eq!(greedy, rows_u32(&m["greedy"]), "{what}: greedy ids");
            let beams = generated(&model, &inputs, json!({ "max_new_tokens": max_new, "num_beams": 2 }));
            assert_eq!(beams, rows_u32(&m["beams2"]), "{what}: 2-beam ids");

            inputs.push(("decoder_input_ids".into(), int_rows(&m["decoder_input_ids"])));
            let out = pollster::block_on(model.forward(&inputs)).unwrap();
            let (logit_dims, logits) = output(&out, "logits");
            assert_eq!(logit_dims, dims(&m["logits_dims"]), "{what}");
            let d = max_abs_diff(logits, &floats(&m["logits"]));
            assert!(d <= TOLERANCE, "{what}: logits differ by {d:e}");
            // encoder_last_hidden_state: transformers' padding rows hold values of no meaning
            // (here zeros); the attended ones must agree.
            let (hidden_dims, hidden) = output(&out, "encoder_last_hidden_state");
            assert_eq!(hidden_dims, dims(&m["encoder_last_hidden_state_dims"]), "{what}");
            let want = floats(&m["encoder_last_hidden_state"]);
            let (s, h) = (hidden_dims[1], hidden_dims[2]);
            for (r, mask) in m["attention_mask"].as_array().unwrap().iter().enumerate() {
                let len = ids(mask).iter().filter(|&&x| x == 1).count();
                let d = max_abs_diff(&hidden[r * s * h..][..len * h], &want[r * s * h..][..len * h]);
                assert!(d <= TOLERANCE, "{what} row {r}: encoder_last_hidden_state differs by {d:e}");
                assert!(hidden[(r * s + len) * h..(r + 1) * s * h].iter().all(|&x| x == 0.0), "{what} row {r}: padding is not zeros");
            }
        }
    }
}

/// fp16 (f16 weights) against transformers in fp32: the tiny Marian's logits reach 16, and
/// rounding its weights to 11 significant bits moves them by up to 4.3e-2 (the CPU, f32 cache).
const FP16_TOLERANCE: f32 = 6e-2;
/// What the GPU's f16 self-attention cache adds, against the CPU's f32 cache over the same f16
/// weights: the cached keys and values rounded to f16, and summation order.
const F16_CACHE_TOLERANCE: f32 = 1.5e-2;

#[test]
fn fp16_decoders_attend_an_f16_self_attention_cache_on_the_gpu() {
    // Issue 13 §3 for the encoder-decoders: the decoder's self-attention cache follows its dtype
    // (cross-attention keys and values stay f32, and the same attention kernel reads both). The
    // CPU keeps an f32 cache under fp16, so CPU and GPU differ by the cache's rounding.
    let _serial = serial();
    let Some(gpu) = webformers_tests::gpu_with_shader_f16() else { return };
    let reference = fixture("seq2seq/auto-model-reference.json");
    let fp16 = LoadOptions { dtype: webformers::weights::WeightDType::F16.into() };
    let logits = |class: &str, folder: &str, device: &Device, inputs: &NamedTensors| -> Vec<f32> {
        let files = DirFiles::open(repo_root().join("tests/fixtures").join(folder)).unwrap();
        let model = AutoModel::load(ModelClass::from_name(class).unwrap(), &files, device, &fp16).unwrap();
        let out = pollster::block_on(model.forward(inputs)).unwrap();
        output(&out, "logits").1.to_vec()
    };
    let check = |name: &str, f32_cache: &[f32], f16_cache: &[f32], want: &[f32]| {
        let (cpu, gpu, cache) = (max_abs_diff(f32_cache, want), max_abs_diff(f16_cache, want), max_abs_diff(f16_cache, f32_cache));
        eprintln!("{name} fp16: CPU (f32 cache) within {cpu:e} of transformers fp32, GPU (f16 cache) {gpu:e}, GPU vs CPU {cache:e}");
        assert!(cpu <= FP16_TOLERANCE && gpu <= FP16_TOLERANCE, "{name}: fp16 logits differ by {cpu:e} (CPU) / {gpu:e} (GPU)");
        assert!(cache <= F16_CACHE_TOLERANCE, "{name}: the f16 cache moves the logits by {cache:e}");
        // Both read the same f16 weights exactly and sum in f32 (1e-5 apart when the caches
        // agree): a difference this small would mean the GPU's cache was not f16 after all.
        assert!(cache >= 5e-4, "{name}: GPU and CPU agree to {cache:e}: is the GPU's cache f16?");
    };
    for (name, m) in reference["text"].as_object().unwrap() {
        let mut inputs = text_inputs(m);
        inputs.push(("decoder_input_ids".into(), int_rows(&m["decoder_input_ids"])));
        let folder = format!("seq2seq/{name}");
        let on = |device: &Device| logits("AutoModelForSeq2SeqLM", &folder, device, &inputs);
        check(name, &on(&Device::Cpu), &on(&gpu), &floats(&m["logits"]));
    }
    let m = &reference["whisper"]["tiny-whisper-en"];
    let mut inputs = whisper_inputs(m);
    inputs.push(("decoder_input_ids".into(), int_rows(&m["decoder_input_ids"])));
    let vocab = dims(&m["logits_dims"])[2];
    let picked: Vec<usize> = ids(&m["logits_ids"]).into_iter().map(|x| x as usize).collect();
    let on = |device: &Device| -> Vec<f32> {
        let all = logits("AutoModelForSpeechSeq2Seq", "whisper/tiny-whisper-en", device, &inputs);
        all.chunks(vocab).flat_map(|row| picked.iter().map(|&i| row[i]).collect::<Vec<_>>()).collect()
    };
    check("tiny-whisper-en", &on(&Device::Cpu), &on(&gpu), &floats(&m["logits"]));
}

#[test]
fn whisper_forward_and_generate_match_transformers() {
    let _serial = serial();
    let reference = fixture("seq2seq/auto-model-reference.json");
    let max_new = reference["max_new_tokens"].as_u64().unwrap();
    let m = &reference["whisper"]["tiny-whisper-en"];
    let prompt: Vec<u32> = ids(&m["prompt"]).into_iter().map(|x| x as u32).collect();
    for device in devices() {
        let what = format!("{device:?} tiny-whisper-en");
        let model = load("AutoModelForSpeechSeq2Seq", "whisper/tiny-whisper-en", &device).unwrap();
        let mut inputs = whisper_inputs(m);
        // transformers' Whisper generate leaves the prompt out; transformers.js's (and ours) keep it.
        for (options, key) in
            [(json!({ "max_new_tokens": max_new }), "greedy"), (json!({ "max_new_tokens": max_new, "num_beams": 2 }), "beams2")]
        {
            let got = generated(&model, &inputs, options);
            let want: Vec<Vec<u32>> = rows_u32(&m[key]).into_iter().map(|row| prompt.iter().copied().chain(row).collect()).collect();
            assert_eq!(got, want, "{what}: {key} ids");
        }

        inputs.push(("decoder_input_ids".into(), int_rows(&m["decoder_input_ids"])));
        let out = pollster::block_on(model.forward(&inputs)).unwrap();
        let (logit_dims, logits) = output(&out, "logits");
        assert_eq!(logit_dims, dims(&m["logits_dims"]), "{what}");
        let vocab = logit_dims[2];
        let picked: Vec<usize> = ids(&m["logits_ids"]).into_iter().map(|x| x as usize).collect();
        let at_ids: Vec<f32> = logits.chunks(vocab).flat_map(|row| picked.iter().map(|&i| row[i])).collect();
        let d = max_abs_diff(&at_ids, &floats(&m["logits"]));
        assert!(d <= TOLERANCE, "{what}: logits differ by {d:e}");
        let argmax: Vec<i64> =
            logits.chunks(vocab).map(|row| row.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).unwrap().0 as i64).collect();
        assert_eq!(argmax, floats(&m["argmax"]).into_iter().map(|x| x as i64).collect::<Vec<_>>(), "{what}: argmax");
        let (hidden_dims, hidden) = output(&out, "encoder_last_hidden_state");
        assert_eq!(hidden_dims, dims(&m["encoder_last_hidden_state_dims"]), "{what}");
        let (frames, h) = (hidden_dims[1], hidden_dims[2]);
        let rows = dims(&m["encoder_rows"]);
        let got: Vec<f32> = (0..hidden_dims[0])
            .flat_map(|b| rows.iter().flat_map(move |&r| (0..h).map(move |c| (b, r, c))))
            .map(|(b, r, c)| hidden[(b * frames + r) * h + c])
            .collect();
        let d = max_abs_diff(&got, &floats(&m["encoder_rows_values"]));
        assert!(d <= TOLERANCE, "{what}: encoder_last_hidden_state differs by {d:e}");
    }
}

#[test]
fn bad_input_to_an_encoder_decoder_is_a_clear_error() {
    let _serial = serial();
    let device = Device::Cpu;
    let reference = fixture("seq2seq/auto-model-reference.json");
    let m = &reference["text"]["tiny-marian"];
    let marian = load("AutoModelForSeq2SeqLM", "seq2seq/tiny-marian", &device).unwrap();
    let error = |r: webformers::Result<NamedTensors>| r.err().map(|e| e.to_string()).unwrap_or_default();
    let forward = |inputs: &NamedTensors| error(pollster::block_on(marian.forward(inputs)));
    let mut inputs = text_inputs(m);
    assert!(forward(&inputs).contains("decoder_input_ids"), "{}", forward(&inputs));
    // one decoder row for a batch of two, then a decoder id past the vocabulary
    inputs.push(("decoder_input_ids".into(), HostTensor { dims: vec![1, 2], data: HostValues::Int(vec![2, 5]) }));
    assert!(forward(&inputs).contains("must be [2, decoder tokens]"), "{}", forward(&inputs));
    inputs.pop();
    inputs.push(("decoder_input_ids".into(), HostTensor { dims: vec![2, 1], data: HostValues::Int(vec![2, 1_000]) }));
    assert!(forward(&inputs).contains("outside the vocabulary"), "{}", forward(&inputs));
    let generate = |options: Value| pollster::block_on(marian.generate(&text_inputs(m), &options)).err().map(|e| e.to_string());
    assert!(generate(json!({ "language": "fr" })).is_some_and(|e| e.contains("unknown options")));
    // A decoder-only or an encoder-only checkpoint is not an encoder-decoder, and the reverse.
    assert!(
        matches!(load("AutoModelForSeq2SeqLM", "tiny-llama", &device), Err(Error::Unsupported(e)) if e.contains("text encoder-decoder"))
    );
    assert!(
        matches!(load("AutoModelForSpeechSeq2Seq", "seq2seq/tiny-bart", &device), Err(Error::Unsupported(e)) if e.contains("speech encoder-decoder"))
    );
    assert!(matches!(load("AutoModelForCausalLM", "seq2seq/tiny-bart", &device), Err(Error::Unsupported(_))));

    let w = &reference["whisper"]["tiny-whisper-en"];
    let whisper = load("AutoModelForSpeechSeq2Seq", "whisper/tiny-whisper-en", &device).unwrap();
    let short = vec![("input_features".to_string(), whisper_features(1, 80, 100))];
    let e = error(pollster::block_on(whisper.forward(&short)));
    assert!(e.contains("input_features must be [batch, 80, 3000]"), "{e}");
    let ids_in = vec![("input_ids".to_string(), int_rows(&w["decoder_input_ids"]))];
    assert!(error(pollster::block_on(whisper.forward(&ids_in))).contains("no input `input_ids`"));
    // An English-only checkpoint takes no language.
    let e = pollster::block_on(whisper.generate(&whisper_inputs(w), &json!({ "language": "fr", "max_new_tokens": 2 }))).unwrap_err();
    assert!(e.to_string().contains("English-only"), "{e}");
}
