//! Tiny random DeBERTa-v2 encoders made with transformers by
//! tests/reference/make_tiny_deberta_v2.py, on every backend: every token's hidden state for
//! sequences of 1 to 40 tokens (past the log-bucket and clamp ranges of the relative positions),
//! all in one packed batch and each alone. tiny-deberta-v2 is deberta-v3's configuration
//! (buckets, p2c + c2p, shared keys, normalized relative embeddings); tiny-deberta-v2-conv the
//! other paths (absolute positions, token types, embed_proj, c2p alone with its own key
//! projection, no buckets, the ConvLayer, `deberta.`-prefixed tensor names). Also: the log-bucket
//! formula against Python's over -1100..1100, and bad configs and inputs as errors.

use webformers::files::{DirFiles, ModelFiles};
use webformers::models::deberta_v2::{DebertaV2, log_bucket_position};
use webformers::models::{EncoderModel, ModelConfig, load_text_model, parse};
use webformers::tokenizer::Batch;
use webformers::weights::{WeightDType, Weights};
use webformers::{Device, Error};
use webformers_tests::{devices, floats, max_abs_diff, repo_root};

const TOLERANCE: f32 = 1e-4;
const MODELS: [&str; 2] = ["tiny-deberta-v2", "tiny-deberta-v2-conv"];

fn folder(name: &str) -> std::path::PathBuf {
    repo_root().join("tests/fixtures").join(name)
}

fn read_json(path: std::path::PathBuf) -> serde_json::Value {
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn weights(name: &str, device: &Device) -> (DirFiles, Weights) {
    let files = DirFiles::open(folder(name)).unwrap();
    let vb = Weights::new(files.weights(device).unwrap(), device, WeightDType::Auto);
    (files, vb)
}

fn load(name: &str, config: &serde_json::Value, device: &Device) -> webformers::Result<DebertaV2> {
    DebertaV2::load(parse(config)?, &weights(name, device).1)
}

fn id_list(v: &serde_json::Value) -> Vec<u32> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect()
}

/// The reference's inputs as one batch: token ids and types (zeros where the model has none).
fn batch_of(inputs: &[&serde_json::Value]) -> Batch {
    let ids: Vec<Vec<u32>> = inputs.iter().map(|i| id_list(&i["token_ids"])).collect();
    let type_ids = inputs.iter().zip(&ids).map(|(i, s)| i.get("token_type_ids").map_or(vec![0; s.len()], id_list)).collect();
    Batch { ids, type_ids }
}

fn hidden(model: &dyn EncoderModel, batch: &Batch) -> Vec<f32> {
    let out = model.forward(batch).unwrap();
    assert_eq!(out.dims(), [batch.total_tokens(), model.hidden_size()]);
    pollster::block_on(out.to_vec_f32()).unwrap()
}

#[test]
fn tiny_deberta_v2_matches_transformers() {
    for device in devices() {
        for name in MODELS {
            let reference = read_json(folder(name).join("reference.json"));
            let config = read_json(folder(name).join("config.json"));
            let model = load(name, &config, &device).unwrap();
            let inputs: Vec<&serde_json::Value> = reference["inputs"].as_array().unwrap().iter().collect();
            let h = model.hidden_size();

            // All sequences packed in one batch, each compared with its single run in Python.
            let all = hidden(&model, &batch_of(&inputs));
            let mut at = 0;
            for (i, input) in inputs.iter().enumerate() {
                let want = floats(&input["last_hidden_state"]);
                let got = &all[at * h..at * h + want.len()];
                at += want.len() / h;
                let d = max_abs_diff(got, &want);
                assert!(d <= TOLERANCE, "{device:?} {name} input {i} in a batch: hidden states differ by {d:e}");
                // Alone: a batch must not change a sequence's result.
                let alone = hidden(&model, &batch_of(&[input]));
                let d = max_abs_diff(&alone, &want);
                assert!(d <= TOLERANCE, "{device:?} {name} input {i} alone: hidden states differ by {d:e}");
            }
            assert_eq!(at * h, all.len());

            // The registry builds the same encoder from config.json.
            let (_, vb) = weights(name, &device);
            let registered = load_text_model(&ModelConfig::from_json(name, config.clone()).unwrap(), &vb, None).unwrap();
            let d = max_abs_diff(&hidden(registered.encoder.as_ref(), &batch_of(&inputs[..1])), &floats(&inputs[0]["last_hidden_state"]));
            assert!(d <= TOLERANCE, "{device:?} {name} through the registry: differs by {d:e}");
        }
    }
}

#[test]
fn log_buckets_match_python_float32_rounding() {
    let reference = read_json(folder("tiny-deberta-v2").join("reference.json"));
    for table in reference["log_buckets"].as_array().unwrap() {
        let (b, m) = (table["bucket_size"].as_u64().unwrap() as usize, table["max_position"].as_u64().unwrap() as usize);
        let first = table["first_relative_position"].as_i64().unwrap();
        for (i, want) in table["buckets"].as_array().unwrap().iter().enumerate() {
            let r = first + i as i64;
            assert_eq!(log_bucket_position(r, b, m), want.as_i64().unwrap(), "bucket of {r} (bucket_size {b}, max_position {m})");
        }
    }
}

/// A copy of a fixture's config.json with `edit` applied.
fn edited(name: &str, edit: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>)) -> serde_json::Value {
    let mut config = read_json(folder(name).join("config.json"));
    edit(config.as_object_mut().unwrap());
    config
}

#[test]
fn bad_configs_and_inputs_are_errors() {
    use serde_json::json;
    let cpu = Device::Cpu;
    let config_error = |name: &str, key: &str, value: serde_json::Value| {
        let config = edited(name, |c| {
            c.insert(key.into(), value.clone());
        });
        match load(name, &config, &cpu) {
            Err(Error::Config(_) | Error::Unsupported(_)) => {}
            Err(e) => panic!("{name} with {key} = {value}: {e} (expected a config error)"),
            Ok(_) => panic!("{name} with {key} = {value} loaded"),
        }
    };
    config_error("tiny-deberta-v2", "num_attention_heads", json!(5));
    config_error("tiny-deberta-v2", "num_attention_heads", json!(0));
    config_error("tiny-deberta-v2", "position_buckets", json!(1));
    config_error("tiny-deberta-v2", "max_relative_positions", json!(5)); // (5 - 1) / (8 / 2) = 1: log(1) = 0
    config_error("tiny-deberta-v2", "hidden_act", json!("mish"));
    config_error("tiny-deberta-v2", "pos_att_type", json!(7));
    config_error("tiny-deberta-v2-conv", "conv_groups", json!(2));
    config_error("tiny-deberta-v2-conv", "conv_kernel_size", json!(4));
    config_error("tiny-deberta-v2-conv", "conv_act", json!("softsign"));

    // The older "c2p|p2c" string form of pos_att_type reads like the list.
    let config = edited("tiny-deberta-v2", |c| {
        c.insert("pos_att_type".into(), json!("P2C|c2p"));
    });
    let model = load("tiny-deberta-v2", &config, &cpu).unwrap();
    let reference = read_json(folder("tiny-deberta-v2").join("reference.json"));
    let input = &reference["inputs"][0];
    let d = max_abs_diff(&hidden(&model, &batch_of(&[input])), &floats(&input["last_hidden_state"]));
    assert!(d <= TOLERANCE, "pos_att_type as a string: differs by {d:e}");

    // A missing weight is named.
    let config = edited("tiny-deberta-v2", |c| {
        c.insert("share_att_key".into(), json!(false));
    });
    let msg = load("tiny-deberta-v2", &config, &cpu).err().expect("loaded without pos_key_proj").to_string();
    assert!(msg.contains("encoder.layer.0.attention.self.pos_key_proj.weight"), "{msg}");

    // Bad inputs: ids past the vocabulary, missing token types, too many positions, nothing.
    let model = load("tiny-deberta-v2-conv", &read_json(folder("tiny-deberta-v2-conv").join("config.json")), &cpu).unwrap();
    let bad = |batch: Batch| match model.forward(&batch) {
        Err(Error::Input(_)) => {}
        Err(e) => panic!("{batch:?}: {e} (expected an input error)"),
        Ok(_) => panic!("{batch:?} was accepted"),
    };
    bad(Batch { ids: vec![vec![1, 128]], type_ids: vec![vec![0, 0]] });
    bad(Batch { ids: vec![vec![1, 2]], type_ids: vec![vec![0, 2]] });
    bad(Batch { ids: vec![vec![1, 2]], type_ids: vec![vec![0]] });
    bad(Batch { ids: vec![vec![1; 49]], type_ids: vec![vec![0; 49]] });
    bad(Batch { ids: vec![vec![]], type_ids: vec![vec![]] });
    bad(Batch { ids: vec![], type_ids: vec![] });
    // An empty sequence beside real ones is allowed: it has no rows.
    let out = model.forward(&Batch { ids: vec![vec![], vec![3, 4, 5]], type_ids: vec![vec![], vec![0, 0, 1]] }).unwrap();
    let values = pollster::block_on(out.to_vec_f32()).unwrap();
    assert!(values.len() == 3 * 32 && values.iter().all(|v| v.is_finite()));
}
