//! Tiny random RoBERTa, XLM-RoBERTa, DistilBERT and BERT (tanh GELU) encoders, made with
//! transformers at a fixed seed by tests/reference/make_tiny_encoders.py, on every backend:
//! token ids (truncation included), every token's hidden state, mean pooling and the first token,
//! alone and in one batch. Tolerance 1e-4: the reference records that the wrong GELU moves
//! outputs by ~5e-4, and wrong positions by ~2.

use webformers::files::DirFiles;
use webformers::tasks::LoadOptions;
use webformers::tasks::feature_extraction::{FeatureExtraction, Pooling};
use webformers_tests::{devices, fixture, floats, max_abs_diff, repo_root};

const TOLERANCE: f32 = 1e-4;

#[test]
fn tiny_encoders_match_transformers() {
    let reference = fixture("tiny-encoders-reference.json");
    for device in devices() {
        for (name, m) in reference["models"].as_object().unwrap() {
            let files = DirFiles::open(repo_root().join("tests/fixtures").join(name)).unwrap();
            let pipe = FeatureExtraction::load(&files, &device, &LoadOptions::default()).unwrap();
            let inputs = m["inputs"].as_array().unwrap();
            let texts: Vec<&str> = inputs.iter().map(|i| i["text"].as_str().unwrap()).collect();
            let want_ids: Vec<Vec<u32>> =
                inputs.iter().map(|i| i["token_ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect()).collect();
            assert_eq!(pipe.tokenizer().encode_batch(&texts).unwrap().ids, want_ids, "{name}: token ids");

            let hidden = pollster::block_on(pipe.run(&texts, Pooling::None, false)).unwrap();
            let mean = pollster::block_on(pipe.run(&texts, Pooling::Mean, false)).unwrap();
            let first = pollster::block_on(pipe.run(&texts, Pooling::Cls, false)).unwrap();
            for (i, input) in inputs.iter().enumerate() {
                let label = format!("{device:?} {name} `{}`", input["name"]);
                let want = floats(&input["last_hidden_state"]);
                let d = max_abs_diff(&hidden.row(i)[..want.len()], &want);
                assert!(d <= TOLERANCE, "{label}: hidden states differ by {d:e}");
                let d = max_abs_diff(mean.row(i), &floats(&input["mean_pooled"]));
                assert!(d <= TOLERANCE, "{label}: mean pooling differs by {d:e}");
                let d = max_abs_diff(first.row(i), &floats(&input["token0"]));
                assert!(d <= TOLERANCE, "{label}: first token differs by {d:e}");
                // Alone, too: a batch must not change a text's result.
                let alone = pollster::block_on(pipe.run(&[texts[i]], Pooling::Mean, false)).unwrap();
                let d = max_abs_diff(alone.row(0), &floats(&input["mean_pooled"]));
                assert!(d <= TOLERANCE, "{label}: alone, mean pooling differs by {d:e}");
            }
        }
    }
}
