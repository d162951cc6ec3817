//! Tiny random ModernBERT encoders (tests/fixtures/tiny-modernbert, made with transformers by
//! tests/reference/make_tiny_modernbert.py) on every backend: every token's hidden state for
//! sequences of 1 to 40 tokens, longer than the local layers' sliding windows, all in one packed
//! batch and each alone. Tolerance 1e-4: the reference records that no window, a window one
//! wider or swapped rope thetas move outputs by 0.1 to 2, and the other GELU by ~6e-4.

use webformers::files::{DirFiles, ModelFiles};
use webformers::models::{self, EncoderModel};
use webformers::tokenizer::Batch;
use webformers::weights::{WeightDType, Weights};
use webformers::{Device, Error};
use webformers_tests::{devices, fixture, floats, max_abs_diff, repo_root};

const TOLERANCE: f32 = 1e-4;

fn load(folder: &str, device: &Device) -> webformers::Result<Box<dyn EncoderModel>> {
    let files = DirFiles::open(repo_root().join(folder))?;
    let config = files.json("config.json")?.expect("config.json");
    let vb = Weights::new(files.weights(device)?, device, WeightDType::Auto);
    models::load_encoder(&files, &config, &vb)
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
            let seqs: Vec<Vec<u32>> =
                inputs.iter().map(|i| i["token_ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect()).collect();
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
fn bad_input_is_an_error() {
    let reference = fixture("tiny-modernbert/reference.json");
    let m = &reference["models"]["mlm"];
    let model = load(m["folder"].as_str().unwrap(), &Device::Cpu).unwrap();
    let vocab = m["config"]["vocab_size"].as_u64().unwrap() as u32;
    let err = model.forward(&batch(&[vec![1, vocab]])).err().expect("a token id outside the vocabulary");
    assert!(matches!(err, Error::Input(_)) && err.to_string().contains(&vocab.to_string()), "{err}");
    let err = model.forward(&batch(&[vec![], vec![]])).err().expect("nothing to encode");
    assert!(matches!(err, Error::Input(_)), "{err}");
    // An empty sequence beside others is fine (no rows).
    assert!(model.forward(&batch(&[vec![], vec![5, 6]])).is_ok());
}

#[test]
fn bad_configs_and_weights_are_errors() {
    let folder = repo_root().join("tests/fixtures/tiny-modernbert/mlm");
    let files = DirFiles::open(&folder).unwrap();
    let config = files.json("config.json").unwrap().unwrap();
    let vb = Weights::new(files.weights(&Device::Cpu).unwrap(), &Device::Cpu, WeightDType::Auto);
    let with = |edit: &dyn Fn(&mut serde_json::Value)| {
        let mut c = config.clone();
        edit(&mut c);
        models::load_encoder(&files, &c, &vb).err().map(|e| e.to_string()).unwrap_or_else(|| panic!("loaded: {c}"))
    };
    let msg = with(&|c| c["num_attention_heads"] = 5.into());
    assert!(msg.contains("num_attention_heads"), "{msg}");
    let msg = with(&|c| c["hidden_activation"] = "quick_gelu".into());
    assert!(msg.contains("quick_gelu"), "{msg}");
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
}
