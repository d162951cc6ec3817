//! Helpers for the integration tests: where the real models and fixtures are, and the devices
//! every test runs on.

use std::path::PathBuf;
use std::sync::OnceLock;

use webformers::{Device, GpuContext, GpuOptions};

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_path_buf()
}

/// A real model fetched by scripts/fetch-models.sh; a missing one fails the test with the fix.
pub fn model_dir(name: &str) -> PathBuf {
    let dir = repo_root().join(".cache/models").join(name);
    assert!(dir.exists(), "{} is missing: run scripts/fetch-models.sh", dir.display());
    dir
}

pub fn fixture(name: &str) -> serde_json::Value {
    let path = repo_root().join("tests/fixtures").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub fn floats(v: &serde_json::Value) -> Vec<f32> {
    fn walk(v: &serde_json::Value, out: &mut Vec<f32>) {
        match v {
            serde_json::Value::Array(items) => items.iter().for_each(|i| walk(i, out)),
            serde_json::Value::Number(n) => out.push(n.as_f64().unwrap_or(f64::NAN) as f32),
            _ => out.push(f32::NAN),
        }
    }
    let mut out = Vec::new();
    walk(v, &mut out);
    out
}

/// The CPU, and the GPU when an adapter exists. Without one the GPU is skipped with the reason
/// printed, unless WEBFORMERS_REQUIRE_GPU=1 (CI sets it), where that is a failure.
pub fn devices() -> Vec<Device> {
    static GPU: OnceLock<Option<Device>> = OnceLock::new();
    let gpu = GPU.get_or_init(|| match pollster::block_on(GpuContext::new(GpuOptions::from_env())) {
        Ok(g) => Some(Device::Gpu(g)),
        Err(e) => {
            if std::env::var("WEBFORMERS_REQUIRE_GPU").is_ok_and(|v| v == "1") {
                panic!("WEBFORMERS_REQUIRE_GPU=1 but there is no GPU adapter: {e}");
            }
            eprintln!("SKIPPING the GPU backend: {e} (WEBFORMERS_REQUIRE_GPU=1 makes this an error)");
            None
        }
    });
    let mut out = vec![Device::Cpu];
    out.extend(gpu.clone());
    out
}

/// max |a - b|
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "lengths differ");
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}
