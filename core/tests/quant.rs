//! Quantized weights: ggml block dequantization against the `gguf` Python package
//! (tests/fixtures/quant-reference.json, made by tests/reference/make_quant_reference.py), and
//! quantized matmul and embedding lookup on every backend against dequantize + the f32 reference.

mod support;

use std::path::PathBuf;

use support::{Tolerance, assert_close};
use webformers::quant::{dequantize, quantize};
use webformers::weights::gguf::GgufFile;
use webformers::DType;

const QUANT_TYPES: [DType; 6] = [DType::Q8_0, DType::Q4_0, DType::Q4_1, DType::Q4K, DType::Q5K, DType::Q6K];

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn fixture() -> serde_json::Value {
    let path = repo_root().join("tests/fixtures/quant-reference.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

fn floats(v: &serde_json::Value) -> Vec<f32> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect()
}

fn smollm2() -> GgufFile {
    let p = repo_root().join(".cache/models/SmolLM2-135M-Instruct.Q4_1.gguf");
    assert!(p.exists(), "{} is missing: run scripts/fetch-models.sh smollm2", p.display());
    GgufFile::open(p).unwrap()
}

#[test]
fn dequantization_matches_gguf_py_exactly() {
    let fx = fixture();
    for dtype in QUANT_TYPES {
        let case = &fx["dequantize"][dtype.name()];
        let bytes = hex(case["bytes"].as_str().unwrap());
        let want = floats(&case["values"]);
        let got = dequantize(dtype, &bytes).unwrap();
        // Same operations in the same order as ggml's reference: bit-exact.
        assert_close(&format!("{dtype} dequantize"), &got, &want, Tolerance { abs: 0.0, rel: 0.0 });
    }
}

#[test]
fn quantization_matches_gguf_py_bytes() {
    let fx = fixture();
    for dtype in [DType::Q8_0, DType::Q4_0, DType::Q4_1] {
        let case = &fx["quantize"][dtype.name()];
        let input = floats(&case["input"]);
        assert_eq!(quantize(dtype, &input).unwrap(), hex(case["bytes"].as_str().unwrap()), "{dtype}");
    }
}

#[test]
fn real_smollm2_tensors_dequantize_like_gguf_py() {
    let fx = fixture();
    let file = smollm2();
    for (name, want) in fx["smollm2"].as_object().unwrap() {
        let info = file.tensor(name).unwrap();
        assert_eq!(info.dtype.name(), want["type"].as_str().unwrap(), "{name}");
        let dims: Vec<usize> = want["dims"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect();
        assert_eq!(info.dims, dims, "{name}");
        assert_eq!(info.range.start as u64, want["data_offset"].as_u64().unwrap(), "{name}");
        assert_eq!(info.range.len() as u64, want["n_bytes"].as_u64().unwrap(), "{name}");
        let values = dequantize(info.dtype, file.tensor_bytes(name).unwrap()).unwrap();
        let cols = dims[1];
        for (row, first) in want["rows"].as_object().unwrap() {
            let row: usize = row.parse().unwrap();
            assert_close(&format!("{name} row {row}"), &values[row * cols..][..16], &floats(first), Tolerance { abs: 0.0, rel: 0.0 });
        }
        let sum: f64 = values.iter().map(|&v| v as f64).sum();
        let abs_sum: f64 = values.iter().map(|&v| (v as f64).abs()).sum();
        let (want_sum, want_abs) = (want["sum"].as_f64().unwrap(), want["abs_sum"].as_f64().unwrap());
        assert!((sum - want_sum).abs() <= 1e-9 * want_abs, "{name}: sum {sum} vs {want_sum}");
        assert!((abs_sum - want_abs).abs() <= 1e-9 * want_abs, "{name}: abs sum {abs_sum} vs {want_abs}");
    }
}
