//! `models::auto` (what the npm package's AutoModel classes run) natively on every backend: the
//! tiny Llama's logits at every position and greedy ids against transformers, a left-padded batch
//! included (tiny-decoders-reference.json); a tiny BERT classifier's softmaxed logits against
//! Python's pipeline scores in one right-padded batch (tiny-tasks-reference.json); bad input; a
//! task pipeline's model (`Pipeline::auto_model`, the encoder-decoder tasks' included) against the
//! same class loaded on its own, with no device buffer made for it; CLIP's and SigLIP's classes
//! against transformers' forward (dual-encoder-forward.json); a GGUF text-generation pipeline's
//! model against the safetensors model's logits. The encoder-decoder classes against
//! transformers: seq2seq_auto_model.rs.

use serde_json::{Value, json};
use webformers::Error;
use webformers::files::DirFiles;
use webformers::models::auto::{AutoModel, HostTensor, HostValues, ModelClass, NamedTensors};
use webformers::tasks::{self, LoadOptions};
use webformers::tokenizer::Tokenizer;
use webformers_tests::{devices, fixture, floats, max_abs_diff, repo_root};

/// f32 models of hidden size 32 to 64: differences come from summation order only.
const TOLERANCE: f32 = 1e-4;

/// Every test here holds it: one counts live device buffers, which are counted process-wide.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn load(class: &str, folder: &str, device: &webformers::Device) -> webformers::Result<AutoModel> {
    let files = DirFiles::open(repo_root().join("tests/fixtures").join(folder)).unwrap();
    AutoModel::load(ModelClass::from_name(class)?, &files, device, &LoadOptions::default())
}

fn ints(rows: &[Vec<i64>]) -> HostTensor {
    HostTensor { dims: vec![rows.len(), rows[0].len()], data: HostValues::Int(rows.concat()) }
}

fn ids(v: &Value) -> Vec<i64> {
    v.as_array().unwrap().iter().map(|x| x.as_i64().unwrap()).collect()
}

fn output<'a>(out: &'a NamedTensors, name: &str) -> (&'a [usize], &'a [f32]) {
    let (_, t) = out.iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("no output {name}"));
    match &t.data {
        HostValues::Float(v) => (&t.dims, v),
        HostValues::Int(_) => panic!("{name} is not float"),
    }
}

#[test]
fn causal_lm_logits_and_greedy_ids_match_transformers() {
    let _serial = serial();
    let m = &fixture("tiny-decoders-reference.json")["models"]["tiny-llama"];
    for device in devices() {
        let model = load("AutoModelForCausalLM", "tiny-llama", &device).unwrap();
        let prompt = &m["prompts"][0];
        let inputs = vec![("input_ids".to_string(), ints(&[ids(&prompt["token_ids"])]))];
        let out = pollster::block_on(model.forward(&inputs)).unwrap();
        let (dims, logits) = output(&out, "logits");
        assert_eq!(dims[..2], [1, ids(&prompt["token_ids"]).len()]);
        let d = max_abs_diff(logits, &floats(&prompt["logits"]));
        assert!(d <= TOLERANCE, "{device:?}: logits differ by {d:e}");
        let greedy = ids(&prompt["greedy_ids"]);
        let (sequences, shape) = pollster::block_on(model.generate(&inputs, &json!({ "max_new_tokens": greedy.len() }))).unwrap();
        let want: Vec<u32> = ids(&prompt["token_ids"]).into_iter().chain(greedy).map(|x| x as u32).collect();
        assert_eq!(sequences, want, "{device:?}");
        assert_eq!(shape, [1, want.len()]);

        // A left-padded batch: each row's last logits and greedy ids.
        let rows = m["chat_batch"]["rows"].as_array().unwrap();
        let padded: Vec<Vec<i64>> = rows.iter().map(|r| ids(&r["padded_ids"])).collect();
        let mask: Vec<Vec<i64>> = rows.iter().map(|r| ids(&r["attention_mask"])).collect();
        let width = padded[0].len();
        let inputs = vec![("input_ids".to_string(), ints(&padded)), ("attention_mask".to_string(), ints(&mask))];
        let out = pollster::block_on(model.forward(&inputs)).unwrap();
        let (dims, logits) = output(&out, "logits");
        let vocab = dims[2];
        for (r, row) in rows.iter().enumerate() {
            let last = &logits[(r * width + width - 1) * vocab..][..vocab];
            let d = max_abs_diff(last, &floats(&row["last_logits"]));
            assert!(d <= TOLERANCE, "{device:?} row {r}: last logits differ by {d:e}");
        }
        let steps = rows.iter().map(|r| r["greedy_ids"].as_array().unwrap().len()).max().unwrap();
        let (sequences, shape) = pollster::block_on(model.generate(&inputs, &json!({ "max_new_tokens": steps }))).unwrap();
        assert_eq!(shape, [rows.len(), width + steps]);
        for (r, row) in rows.iter().enumerate() {
            let greedy: Vec<u32> = ids(&row["greedy_ids"]).into_iter().map(|x| x as u32).collect();
            assert_eq!(sequences[r * shape[1] + width..][..greedy.len()], greedy[..], "{device:?} row {r}");
        }
    }
}

#[test]
fn sequence_classification_logits_match_python_in_a_padded_batch() {
    let _serial = serial();
    let reference = fixture("tiny-tasks-reference.json");
    let name = "bert-sequence-classification";
    let cases: Vec<&Value> = reference["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| {
            c["task"] == "text-classification" && c["model"] == name && c["input"].is_string() && c["options"] == json!({"top_k": null})
        })
        .collect();
    assert!(!cases.is_empty());
    let dir = repo_root().join("tests/fixtures/tiny-tasks").join(name);
    let tokenizer = Tokenizer::from_bytes(&std::fs::read(dir.join("tokenizer.json")).unwrap(), 64).unwrap();
    let encoded: Vec<Vec<i64>> =
        cases.iter().map(|c| tokenizer.encode(c["input"].as_str().unwrap(), true).unwrap().into_iter().map(i64::from).collect()).collect();
    let width = encoded.iter().map(Vec::len).max().unwrap();
    let pad = |row: &Vec<i64>, fill: i64, keep: fn(i64) -> i64| -> Vec<i64> {
        row.iter().map(|&x| keep(x)).chain(std::iter::repeat_n(fill, width - row.len())).collect()
    };
    let input_ids: Vec<Vec<i64>> = encoded.iter().map(|r| pad(r, 0, |x| x)).collect();
    let mask: Vec<Vec<i64>> = encoded.iter().map(|r| pad(r, 0, |_| 1)).collect();
    for device in devices() {
        let model = load("AutoModelForSequenceClassification", &format!("tiny-tasks/{name}"), &device).unwrap();
        let inputs = vec![("input_ids".to_string(), ints(&input_ids)), ("attention_mask".to_string(), ints(&mask))];
        let out = pollster::block_on(model.forward(&inputs)).unwrap();
        let (dims, logits) = output(&out, "logits");
        let labels = dims[1];
        assert_eq!(dims, [cases.len(), labels]);
        for (i, case) in cases.iter().enumerate() {
            let scores = webformers::tasks::text_encoder::softmax(&logits[i * labels..(i + 1) * labels]);
            for answer in case["output"].as_array().unwrap() {
                let id = model.config.label_id(answer["label"].as_str().unwrap()).unwrap();
                let want = answer["score"].as_f64().unwrap();
                assert!((scores[id] - want).abs() <= TOLERANCE as f64, "{device:?} case {i}: {} vs {want}", scores[id]);
            }
        }
    }
}

#[test]
fn bad_input_is_a_clear_error() {
    let _serial = serial();
    let device = webformers::Device::Cpu;
    assert!(matches!(ModelClass::from_name("AutoModelForNothing"), Err(Error::Unsupported(m)) if m.contains("AutoModelForCausalLM")));
    assert!(matches!(load("AutoModel", "tiny-llama", &device), Err(Error::Unsupported(m)) if m.contains("AutoModelForCausalLM")));
    let bert = load("AutoModel", "tiny-tasks/bert-sequence-classification", &device).unwrap();
    let run = |inputs: NamedTensors| pollster::block_on(bert.forward(&inputs)).err().map(|e| e.to_string()).unwrap_or_default();
    let float_ids = HostTensor { dims: vec![1, 2], data: HostValues::Float(vec![1.0, 2.0]) };
    assert!(run(vec![("input_ids".into(), float_ids)]).contains("integer tensor"));
    let left_padded = vec![("input_ids".into(), ints(&[vec![0, 5, 6]])), ("attention_mask".into(), ints(&[vec![0, 1, 1]]))];
    assert!(run(left_padded).contains("right-padded"));
    assert!(run(vec![("input_ids".into(), ints(&[vec![1, 1_000_000]]))]).contains("outside the vocabulary"));
    assert!(
        run(vec![("input_ids".into(), ints(&[vec![1, 2]])), ("inputs_ids".into(), ints(&[vec![1]]))]).contains("no input `inputs_ids`")
    );
    assert!(pollster::block_on(bert.generate(&vec![("input_ids".into(), ints(&[vec![1, 2]]))], &Value::Null)).is_err());
}

/// Named float outputs of two models must agree name by name.
fn assert_same_outputs(got: &NamedTensors, want: &NamedTensors, what: &str) {
    let names = |o: &NamedTensors| o.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    assert_eq!(names(got), names(want), "{what}");
    for (name, _) in want {
        let ((dims, a), (want_dims, b)) = (output(got, name), output(want, name));
        assert_eq!(dims, want_dims, "{what} {name}");
        let d = max_abs_diff(a, b);
        assert!(d <= TOLERANCE, "{what} {name} differs by {d:e}");
    }
}

#[test]
fn a_pipelines_model_shares_its_weights_and_matches_the_class_loaded_alone() {
    let _serial = serial();
    let pixels: Vec<f32> = (0..3 * 64 * 64).map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0).collect();
    let text = vec![
        ("input_ids".to_string(), ints(&[vec![2, 45, 17, 9, 3], vec![2, 8, 3, 0, 0]])),
        ("attention_mask".to_string(), ints(&[vec![1, 1, 1, 1, 1], vec![1, 1, 1, 0, 0]])),
    ];
    let image = vec![("pixel_values".to_string(), HostTensor { dims: vec![1, 3, 64, 64], data: HostValues::Float(pixels) })];
    // ViT's position table is for its 32 x 32 images.
    let small: Vec<f32> = (0..3 * 32 * 32).map(|i| ((i * 53 % 97) as f32 / 48.0) - 1.0).collect();
    let small_image = vec![("pixel_values".to_string(), HostTensor { dims: vec![1, 3, 32, 32], data: HostValues::Float(small) })];
    // The encoder-decoders: a right-padded batch with its decoder prompts; one 30 s log-mel.
    let seq2seq_text = vec![
        ("input_ids".to_string(), ints(&[vec![45, 17, 9, 3], vec![8, 3, 0, 0]])),
        ("attention_mask".to_string(), ints(&[vec![1, 1, 1, 1], vec![1, 1, 0, 0]])),
        ("decoder_input_ids".to_string(), ints(&[vec![2, 5, 7], vec![2, 9, 9]])),
    ];
    let features: Vec<f32> = (0..80 * 3000).map(|i| ((i * 31 % 89) as f32 / 44.0) - 1.0).collect();
    let speech = vec![
        ("input_features".to_string(), HostTensor { dims: vec![1, 80, 3000], data: HostValues::Float(features) }),
        ("decoder_input_ids".to_string(), ints(&[vec![50257, 50362, 30194]])),
    ];
    let dual = fixture("vision/dual-encoder-forward.json");
    let clip = &dual["models"]["tiny-clip"];
    let clip_inputs = vec![
        ("input_ids".to_string(), ints(&int_rows(&clip["input_ids"]))),
        ("attention_mask".to_string(), ints(&int_rows(&clip["attention_mask"]))),
        ("pixel_values".to_string(), host(&clip["pixel_values"])),
    ];
    let cases: [(&str, &str, &str, &NamedTensors); 10] = [
        ("text-classification", "tiny-tasks/bert-sequence-classification", "AutoModelForSequenceClassification", &text),
        ("feature-extraction", "tiny-tasks/bert-sequence-classification", "AutoModel", &text),
        ("text-generation", "tiny-llama", "AutoModelForCausalLM", &text),
        ("object-detection", "vision/tiny-detr", "AutoModelForObjectDetection", &image),
        ("image-classification", "vision/tiny-vit-classifier", "AutoModelForImageClassification", &small_image),
        ("translation", "seq2seq/tiny-marian", "AutoModelForSeq2SeqLM", &seq2seq_text),
        ("summarization", "seq2seq/tiny-bart", "AutoModelForSeq2SeqLM", &seq2seq_text),
        ("text2text-generation", "seq2seq/tiny-t5", "AutoModelForSeq2SeqLM", &seq2seq_text),
        ("automatic-speech-recognition", "whisper/tiny-whisper-en", "AutoModelForSpeechSeq2Seq", &speech),
        ("zero-shot-image-classification", "vision/tiny-clip", "AutoModel", &clip_inputs),
    ];
    for device in devices() {
        for &(task, folder, class, inputs) in &cases {
            let what = format!("{device:?} {task} on {folder}");
            let files = DirFiles::open(repo_root().join("tests/fixtures").join(folder)).unwrap();
            let alone = load(class, folder, &device).unwrap();
            let want = pollster::block_on(alone.forward(inputs)).unwrap();
            let pipe = tasks::load(task, &files, &device, &LoadOptions::default()).unwrap();
            let before = webformers::gpu::live_buffers();
            let model = pipe.auto_model().unwrap();
            assert_eq!(webformers::gpu::live_buffers(), before, "{what}: taking the model made device buffers");
            assert_eq!(model.class.name(), class, "{what}");
            assert_eq!(model.config.json, alone.config.json, "{what}");
            // The view keeps the weights when the pipeline is gone.
            drop(pipe);
            assert_same_outputs(&pollster::block_on(model.forward(inputs)).unwrap(), &want, &what);
            if class.ends_with("Seq2SeqLM") || class.ends_with("SpeechSeq2Seq") {
                // The same generation defaults as the class alone (forced and banned tokens, Whisper's prompt).
                let encoder_inputs: NamedTensors = inputs.iter().filter(|(n, _)| n != "decoder_input_ids").cloned().collect();
                let generate = |m: &AutoModel| pollster::block_on(m.generate(&encoder_inputs, &json!({ "max_new_tokens": 6 }))).unwrap();
                assert_eq!(generate(&model), generate(&alone), "{what}: generate");
            }
        }
    }
    // feature-extraction on a dual encoder (its text tower's embeddings) has no model class here:
    // a clear error, not a partial model.
    let files = DirFiles::open(repo_root().join("tests/fixtures/vision/tiny-clip")).unwrap();
    let embeddings = tasks::load("feature-extraction", &files, &webformers::Device::Cpu, &LoadOptions::default()).unwrap();
    assert!(matches!(embeddings.auto_model(), Err(Error::Unsupported(m)) if m.contains("feature-extraction")));
}

fn host(t: &Value) -> HostTensor {
    let dims = t["dims"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect();
    HostTensor { dims, data: HostValues::Float(floats(&t["data"])) }
}

fn int_rows(v: &Value) -> Vec<Vec<i64>> {
    v.as_array().unwrap().iter().map(ids).collect()
}

/// Every named output of `want` (`{name: {dims, data}}`), within the tolerance.
fn assert_outputs(got: &NamedTensors, want: &Value, what: &str) {
    let want = want.as_object().unwrap();
    assert_eq!(got.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), want.keys().map(String::as_str).collect::<Vec<_>>(), "{what}");
    for (name, t) in want {
        let (dims, values) = output(got, name);
        let want = host(t);
        assert_eq!(dims, want.dims, "{what} {name}");
        let HostValues::Float(w) = &want.data else { unreachable!() };
        let d = max_abs_diff(values, w);
        assert!(d <= TOLERANCE, "{what} {name} differs by {d:e}");
    }
}

/// AutoModel, CLIPModel / SiglipModel and the one-tower classes on the tiny CLIP and SigLIP give
/// transformers' forward outputs: normalized embeddings and logits (with SigLIP's bias), and the
/// towers' projected (CLIP) or pooled (SigLIP) embeddings. SigLIP reads its max_length-padded
/// texts whole, as transformers.js feeds them (no mask).
#[test]
fn dual_encoder_classes_match_transformers() {
    let _serial = serial();
    let reference = fixture("vision/dual-encoder-forward.json");
    for (name, family) in [("tiny-clip", "CLIP"), ("tiny-siglip", "Siglip")] {
        let m = &reference["models"][name];
        let mut text = vec![("input_ids".to_string(), ints(&int_rows(&m["input_ids"])))];
        if m.get("attention_mask").is_some() {
            text.push(("attention_mask".to_string(), ints(&int_rows(&m["attention_mask"]))));
        }
        let image = vec![("pixel_values".to_string(), host(&m["pixel_values"]))];
        let both: NamedTensors = text.iter().chain(&image).cloned().collect();
        let towers = if family == "CLIP" {
            ["CLIPTextModelWithProjection", "CLIPVisionModelWithProjection"]
        } else {
            ["SiglipTextModel", "SiglipVisionModel"]
        };
        let folder = format!("vision/{name}");
        for device in devices() {
            for class in ["AutoModel".to_string(), format!("{family}Model")] {
                let model = load(&class, &folder, &device).unwrap();
                assert_eq!(model.class.name(), class);
                let out = pollster::block_on(model.forward(&both)).unwrap();
                assert_outputs(&out, &m["model"], &format!("{device:?} {name} {class}"));
            }
            for (class, inputs, want) in [(towers[0], &text, &m["text"]), (towers[1], &image, &m["vision"])] {
                let model = load(class, &folder, &device).unwrap();
                let out = pollster::block_on(model.forward(inputs)).unwrap();
                assert_outputs(&out, want, &format!("{device:?} {name} {class}"));
            }
        }
    }
    // A class of the other family, or a tower's input missing, is a clear error.
    let cpu = webformers::Device::Cpu;
    assert!(matches!(load("SiglipModel", "vision/tiny-clip", &cpu), Err(Error::Unsupported(m)) if m.contains("CLIPModel")));
    let clip = load("CLIPModel", "vision/tiny-clip", &cpu).unwrap();
    let text_only = vec![("input_ids".to_string(), ints(&[vec![5, 6, 2]]))];
    assert!(pollster::block_on(clip.forward(&text_only)).unwrap_err().to_string().contains("pixel_values"));
}

/// A text-generation pipeline loaded from a GGUF file gives its model as AutoModelForCausalLM:
/// the safetensors model's logits (tiny-decoders-reference.json), with no device buffer made.
#[test]
fn a_gguf_pipelines_model_gives_the_safetensors_logits() {
    let _serial = serial();
    let m = &fixture("tiny-decoders-reference.json")["models"]["tiny-qwen3"];
    for device in devices() {
        let path = repo_root().join("tests/fixtures/tiny-qwen3.gguf");
        let pipe = tasks::text_generation::TextGeneration::load_gguf(
            webformers::weights::gguf::GgufFile::open(path).unwrap(),
            &device,
            &LoadOptions::default(),
        )
        .unwrap();
        let before = webformers::gpu::live_buffers();
        let model = tasks::Pipeline::auto_model(&pipe).unwrap();
        assert_eq!(webformers::gpu::live_buffers(), before, "{device:?}: taking the model made device buffers");
        assert_eq!(model.class.name(), "AutoModelForCausalLM");
        assert_eq!(model.config.model_type, "qwen3");
        drop(pipe);
        for (p, prompt) in m["prompts"].as_array().unwrap().iter().enumerate() {
            let inputs = vec![("input_ids".to_string(), ints(&[ids(&prompt["token_ids"])]))];
            let out = pollster::block_on(model.forward(&inputs)).unwrap();
            let d = max_abs_diff(output(&out, "logits").1, &floats(&prompt["logits"]));
            assert!(d <= TOLERANCE, "{device:?} prompt {p}: GGUF logits differ by {d:e}");
        }
    }
}
