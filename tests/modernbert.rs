//! Tiny random ModernBERT encoders (tests/fixtures/tiny-modernbert, made with transformers by
//! tests/reference/make_tiny_modernbert.py) on every backend: every token's hidden state for
//! sequences of 1 to 40 tokens, longer than the local layers' sliding windows, all in one packed
//! batch and each alone; and the task heads (masked LM, sequence and token classification,
//! question answering). Tolerance 1e-4: the reference records that no window, a window one
//! wider or swapped rope thetas move outputs by 0.1 to 2, and the other GELU by ~6e-4.

use webformers::files::{DirFiles, ModelFiles};
use webformers::models::{self, EncoderModel, HeadKind, ModelConfig, TextHead, modernbert};
use webformers::tokenizer::Batch;
use webformers::weights::{WeightDType, Weights};
use webformers::{Device, Error, Tensor};
use webformers_tests::{devices, fixture, floats, max_abs_diff, repo_root};

const TOLERANCE: f32 = 1e-4;

/// A fixture's config and weights on `device`.
fn open(folder: &str, device: &Device) -> (ModelConfig, Weights) {
    let files = DirFiles::open(repo_root().join(folder)).unwrap();
    let config = ModelConfig::from_json(folder, files.json("config.json").unwrap().expect("config.json")).unwrap();
    (config, Weights::new(files.weights(device).unwrap(), device, WeightDType::Auto))
}

fn load(folder: &str, device: &Device) -> webformers::Result<Box<dyn EncoderModel>> {
    let (config, vb) = open(folder, device);
    Ok(models::load_text_model(&config, &vb, None)?.encoder)
}

fn ids_of(m: &serde_json::Value) -> Vec<Vec<u32>> {
    let inputs = m["inputs"].as_array().unwrap();
    inputs.iter().map(|i| i["token_ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect()).collect()
}

/// `head` over the encoder's output for the packed batch `seqs`.
async fn head_logits(model: &dyn EncoderModel, head: &TextHead, seqs: &[Vec<u32>], device: &Device) -> Vec<f32> {
    let b = batch(seqs);
    let offsets = b.offsets();
    let offsets = Tensor::from_u32(&offsets, &[offsets.len()], device).unwrap();
    let hidden = model.forward(&b).unwrap();
    head.forward(&hidden, &offsets, None).unwrap().to_vec_f32().await.unwrap()
}

fn close(label: &str, got: &[f32], want: &[f32]) {
    let d = max_abs_diff(got, want);
    assert!(d <= TOLERANCE, "{label}: differs by {d:e}");
}

fn batch(seqs: &[Vec<u32>]) -> Batch {
    Batch { ids: seqs.to_vec(), type_ids: seqs.iter().map(|s| vec![0; s.len()]).collect() }
}

async fn run(model: &dyn EncoderModel, seqs: &[Vec<u32>]) -> Vec<f32> {
    model.forward(&batch(seqs)).unwrap().to_vec_f32().await.unwrap()
}

#[test]
fn tiny_modernbert_matches_transformers() {
    let reference = fixture("tiny-modernbert/reference.json");
    for device in devices() {
        for (name, m) in reference["models"].as_object().unwrap() {
            let model = load(m["folder"].as_str().unwrap(), &device).unwrap();
            let h = model.hidden_size();
            let inputs = m["inputs"].as_array().unwrap();
            let seqs = ids_of(m);
            let packed = pollster::block_on(run(model.as_ref(), &seqs));
            assert_eq!(packed.len(), seqs.iter().map(Vec::len).sum::<usize>() * h, "{name}: packed output size");
            let (mut row, mut worst) = (0, 0f32);
            for (i, (input, ids)) in inputs.iter().zip(&seqs).enumerate() {
                let label = format!("{device:?} {name} sequence {i} ({} tokens)", ids.len());
                let want = floats(&input["last_hidden_state"]);
                let got = &packed[row * h..(row + ids.len()) * h];
                row += ids.len();
                let d = max_abs_diff(got, &want);
                assert!(d <= TOLERANCE, "{label}: packed, hidden states differ by {d:e}");
                let alone = pollster::block_on(run(model.as_ref(), std::slice::from_ref(ids)));
                let d_alone = max_abs_diff(&alone, &want);
                assert!(d_alone <= TOLERANCE, "{label}: alone, hidden states differ by {d_alone:e}");
                worst = worst.max(d).max(d_alone);
            }
            eprintln!("{device:?} {name}: largest difference {worst:e}");
        }
    }
}

#[test]
fn tiny_modernbert_heads_match_transformers() {
    let reference = fixture("tiny-modernbert/reference.json");
    for device in devices() {
        // ModernBertForMaskedLM: head, then the decoder tied to the token embeddings (+ bias).
        let m = &reference["models"]["mlm"];
        let (config, vb) = open(m["folder"].as_str().unwrap(), &device);
        let model = models::load_text_model(&config, &vb, Some(HeadKind::MaskedLm)).unwrap();
        let head = model.head.as_ref().unwrap();
        let got = pollster::block_on(head_logits(model.encoder.as_ref(), head, &ids_of(m)[..1], &device));
        close(&format!("{device:?} masked LM logits"), &got, &floats(&m["heads"]["masked_lm_logits_0"]));

        // ModernBertForSequenceClassification (mean pooling) over the packed batch; the same
        // checkpoint's head and classifier read per token (token classification), and as
        // question answering's start and end logits.
        let m = &reference["models"]["cls"];
        let seqs = ids_of(m);
        let (config, vb) = open(m["folder"].as_str().unwrap(), &device);
        let model = models::load_text_model(&config, &vb, Some(HeadKind::SequenceClassification)).unwrap();
        let encoder = model.encoder.as_ref();
        let got = pollster::block_on(head_logits(encoder, model.head.as_ref().unwrap(), &seqs, &device));
        close(&format!("{device:?} sequence logits"), &got, &floats(&m["heads"]["sequence_logits"]));
        let token = modernbert::load_head(HeadKind::TokenClassification, &config, &vb).unwrap();
        let qa = modernbert::load_head(HeadKind::QuestionAnswering, &config, &vb).unwrap();
        let tokens = pollster::block_on(head_logits(encoder, &token, &seqs, &device));
        let spans = pollster::block_on(head_logits(encoder, &qa, &seqs, &device));
        let (mut row, inputs) = (0, m["inputs"].as_array().unwrap());
        for (i, (input, ids)) in inputs.iter().zip(&seqs).enumerate() {
            let n = ids.len();
            let label = format!("{device:?} sequence {i} ({n} tokens)");
            close(&format!("{label}: token logits"), &tokens[row * 2..(row + n) * 2], &floats(&input["token_logits"]));
            let (start, end): (Vec<f32>, Vec<f32>) = spans[row * 2..(row + n) * 2].chunks(2).map(|p| (p[0], p[1])).unzip();
            close(&format!("{label}: start logits"), &start, &floats(&input["start_logits"]));
            close(&format!("{label}: end logits"), &end, &floats(&input["end_logits"]));
            row += n;
        }
    }
}

#[test]
fn bad_input_is_an_error() {
    let reference = fixture("tiny-modernbert/reference.json");
    let m = &reference["models"]["mlm"];
    let model = load(m["folder"].as_str().unwrap(), &Device::Cpu).unwrap();
    let vocab = m["config"]["vocab_size"].as_u64().unwrap() as u32;
    let Err(err) = model.forward(&batch(&[vec![1, vocab]])) else { panic!("a token id outside the vocabulary was accepted") };
    assert!(matches!(err, Error::Input(_)) && err.to_string().contains(&vocab.to_string()), "{err}");
    let Err(err) = model.forward(&batch(&[vec![], vec![]])) else { panic!("an empty batch was accepted") };
    assert!(matches!(err, Error::Input(_)), "{err}");
    // An empty sequence beside others is fine (no rows).
    assert!(model.forward(&batch(&[vec![], vec![5, 6]])).is_ok());
}

#[test]
fn bad_configs_and_weights_are_errors() {
    let (config, vb) = open("tests/fixtures/tiny-modernbert/mlm", &Device::Cpu);
    let load_with = |edit: &dyn Fn(&mut serde_json::Value), head: Option<HeadKind>| {
        let mut json = config.json.clone();
        edit(&mut json);
        let c = ModelConfig::from_json(&config.name, json).unwrap();
        models::load_text_model(&c, &vb, head).err().map(|e| e.to_string()).unwrap_or_else(|| panic!("loaded: {}", c.json))
    };
    let with = |edit: &dyn Fn(&mut serde_json::Value)| load_with(edit, None);
    let msg = with(&|c| c["num_attention_heads"] = 5.into());
    assert!(msg.contains("num_attention_heads"), "{msg}");
    let msg = with(&|c| c["hidden_activation"] = "laplace".into());
    assert!(msg.contains("laplace"), "{msg}");
    let msg = with(&|c| c["layer_types"] = serde_json::json!(["full_attention"]));
    assert!(msg.contains("layer_types"), "{msg}");
    let msg = with(&|c| c["layer_types"] = serde_json::json!(["full_attention", "chunked_attention", "full_attention"]));
    assert!(msg.contains("chunked_attention"), "{msg}");
    let msg = with(&|c| c["rope_parameters"]["sliding_attention"]["rope_type"] = "yarn".into());
    assert!(msg.contains("yarn"), "{msg}");
    let msg = with(&|c| {
        c.as_object_mut().unwrap().remove("layer_types");
        c["global_attn_every_n_layers"] = 0.into();
    });
    assert!(msg.contains("global_attn_every_n_layers"), "{msg}");
    // Flags that ask for tensors the checkpoint lacks name the missing tensor.
    let msg = with(&|c| c["norm_bias"] = true.into());
    assert!(msg.contains("model.embeddings.norm.bias"), "{msg}");
    let msg = with(&|c| c["mlp_bias"] = true.into());
    assert!(msg.contains("model.layers.0.mlp.Wi.bias"), "{msg}");
    let msg = with(&|c| c["intermediate_size"] = 65.into());
    assert!(msg.contains("Wi.weight"), "{msg}");
    // Heads: the ones a checkpoint lacks, and settings ModernBERT does not have.
    let msg = load_with(&|_| {}, Some(HeadKind::SequenceClassification));
    assert!(msg.contains("ModernBertForMaskedLM"), "{msg}");
    let msg = load_with(&|c| c["classifier_pooling"] = "max".into(), Some(HeadKind::MaskedLm));
    assert!(msg.contains("classifier_pooling"), "{msg}");
    let msg = load_with(&|c| c["classifier_bias"] = true.into(), Some(HeadKind::MaskedLm));
    assert!(msg.contains("head.dense.bias"), "{msg}");
    let (cls_config, cls_vb) = open("tests/fixtures/tiny-modernbert/cls", &Device::Cpu);
    let msg = modernbert::load_head(HeadKind::MaskedLm, &cls_config, &cls_vb).err().expect("no decoder.bias").to_string();
    assert!(msg.contains("decoder.bias"), "{msg}");
}
