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

/// The GPU of `devices()` when its adapter has shader-f16 (what f16 KV caches and activations
/// need); None with the reason printed, or a panic under `WEBFORMERS_REQUIRE_GPU=1` (CI's lavapipe
/// has shader-f16, so there these tests always run).
pub fn gpu_with_shader_f16() -> Option<Device> {
    let gpu = devices().into_iter().find(Device::is_gpu)?;
    if gpu.has_shader_f16() {
        return Some(gpu);
    }
    if gpu_required() {
        panic!("WEBFORMERS_REQUIRE_GPU=1 but the adapter ({gpu:?}) lacks shader-f16, which the f16 tests need");
    }
    eprintln!("SKIPPING an f16 GPU test: the adapter ({gpu:?}) lacks shader-f16");
    None
}

/// fp16 (f16 weights, and on a GPU with shader-f16 an f16 KV cache) against PyTorch in fp32 on
/// the tiny decoders: rounding every weight and cached key and value to 11 significant bits
/// moves their logits (of magnitude up to 15) by at most this much (tests/decoders.rs,
/// tests/dispatches.rs).
pub const FP16_DECODER_LOGITS_TOLERANCE: f32 = 3e-2;

/// max |a - b|
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "lengths differ");
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// The Hub stand-in (tests/hub/server.py) on free ports of 127.0.0.1, stopped when dropped.
pub struct HubServer {
    child: std::process::Child,
    pub port: u16,
    pub cdn_port: u16,
}

impl HubServer {
    /// Serves each (repo id, folder); `gated` repos need the token `test-token`.
    pub fn start(repos: &[(&str, &std::path::Path)], gated: &[&str]) -> HubServer {
        use std::io::BufRead;
        use std::process::{Command, Stdio};
        let script = repo_root().join("tests/hub/server.py");
        let mut cmd = Command::new("python3");
        cmd.arg(&script).args(["--port", "0", "--cdn-port", "0"]);
        for (id, dir) in repos {
            cmd.arg("--repo").arg(format!("{id}={}", dir.display()));
        }
        for id in gated {
            cmd.args(["--gated", id]);
        }
        // stdin stays open while this process lives: the server exits when it closes.
        let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().expect("python3 runs tests/hub/server.py");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("the server prints its ports");
        let ports: serde_json::Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("server said `{line}`: {e}"));
        let port = |k: &str| ports[k].as_u64().expect("a port") as u16;
        HubServer { port: port("port"), cdn_port: port("cdn_port"), child }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// GET a control path (`/_stats`, `/_reset`, `/_fault?...`) and return the body.
    pub fn control(&self, path: &str) -> String {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.port)).expect("the server listens");
        write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out.split_once("\r\n\r\n").map(|(_, body)| body.to_string()).unwrap_or_default()
    }

    /// Every request since the last reset: {server, method, file, range, auth, status}.
    pub fn requests(&self) -> Vec<serde_json::Value> {
        let stats: serde_json::Value = serde_json::from_str(&self.control("/_stats")).expect("stats are JSON");
        assert_eq!(stats["cdn_authorization"], 0, "the CDN received an Authorization header");
        stats["requests"].as_array().cloned().unwrap_or_default()
    }

    pub fn reset(&self) {
        self.control("/_reset");
    }

    /// Makes the server misbehave (see tests/hub/server.py): `fault("file=model.safetensors&kind=drop&after=1000")`.
    pub fn fault(&self, query: &str) {
        assert_eq!(self.control(&format!("/_fault?{query}")), "ok");
    }
}

impl Drop for HubServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How far a detected box's corners may be from the reference's, in pixels.
pub const BOX_TOLERANCE_PX: f64 = 0.5;

/// Differences between `got` and `want` (JSON from a pipeline and from Python): strings,
/// booleans and integers must be equal, floats within `tolerance`, arrays and objects the same
/// shape (object keys as sets); box corners (`xmin`...) within `BOX_TOLERANCE_PX`. Each difference is described with its path.
pub fn json_differences(got: &serde_json::Value, want: &serde_json::Value, tolerance: f64) -> Vec<String> {
    use serde_json::Value;
    fn walk(got: &Value, want: &Value, tolerance: f64, path: &str, out: &mut Vec<String>) {
        match (got, want) {
            (Value::Number(g), Value::Number(w)) if g.is_f64() || w.is_f64() => {
                let (g, w) = (g.as_f64().unwrap_or(f64::NAN), w.as_f64().unwrap_or(f64::NAN));
                // Box corners are pixels, compared within half a pixel (scores stay at `tolerance`).
                let is_box_corner = ["xmin", "ymin", "xmax", "ymax"].iter().any(|k| path.ends_with(&format!(".{k}")));
                let tolerance = if is_box_corner { tolerance.max(BOX_TOLERANCE_PX) } else { tolerance };
                if !((g - w).abs() <= tolerance) {
                    out.push(format!("{path}: {g} vs {w} (differs by {:e})", (g - w).abs()));
                }
            }
            (Value::Array(g), Value::Array(w)) => {
                if g.len() != w.len() {
                    out.push(format!("{path}: {} items vs {}", g.len(), w.len()));
                }
                for (i, (g, w)) in g.iter().zip(w).enumerate() {
                    walk(g, w, tolerance, &format!("{path}[{i}]"), out);
                }
            }
            (Value::Object(g), Value::Object(w)) => {
                let mut keys: Vec<&String> = g.keys().chain(w.keys()).collect();
                keys.sort();
                keys.dedup();
                for k in keys {
                    match (g.get(k), w.get(k)) {
                        (Some(g), Some(w)) => walk(g, w, tolerance, &format!("{path}.{k}"), out),
                        (None, _) => out.push(format!("{path}.{k}: missing")),
                        (_, None) => out.push(format!("{path}.{k}: not in the reference")),
                    }
                }
            }
            (g, w) if g == w => {}
            (g, w) => out.push(format!("{path}: {g} vs {w}")),
        }
    }
    let mut out = Vec::new();
    walk(got, want, tolerance, "$", &mut out);
    out
}

/// The reference cases of tests/fixtures/tiny-tasks-reference.json (made by Python transformers'
/// pipelines on the tiny task models), with the shape transformers.js gives where it differs
/// from Python's: several texts with `top_k: 1` give one flat list of labels, not a list per
/// text.
pub fn task_cases() -> (Vec<serde_json::Value>, f64) {
    let reference = fixture("tiny-tasks-reference.json");
    let tolerance = reference["tolerance"].as_f64().expect("the reference states its tolerance");
    let mut cases = reference["cases"].as_array().expect("cases").clone();
    for case in &mut cases {
        if case["task"] == "text-classification" && case["input"].is_array() && case["options"]["top_k"] == 1 {
            let flat: Vec<serde_json::Value> =
                case["output"].as_array().into_iter().flatten().flat_map(|o| o.as_array().cloned().unwrap_or_default()).collect();
            case["output"] = serde_json::Value::Array(flat);
        }
    }
    (cases, tolerance)
}

/// Whether a missing GPU adapter fails the tests (WEBFORMERS_REQUIRE_GPU=1, set by CI).
pub fn gpu_required() -> bool {
    std::env::var("WEBFORMERS_REQUIRE_GPU").is_ok_and(|v| v == "1")
}

/// The pipelines of a reference's cases, each (task, model folder of `dir`) loaded once on one
/// device; what `tasks.rs` and `vision_tasks.rs` share.
pub struct PipelineCache {
    dir: PathBuf,
    device: Device,
    pipelines: std::collections::HashMap<(String, String), Box<dyn webformers::tasks::Pipeline>>,
}

impl PipelineCache {
    pub fn new(dir: PathBuf, device: Device) -> PipelineCache {
        PipelineCache { dir, device, pipelines: Default::default() }
    }

    /// The pipeline of `task` on `model`, loaded on first use; a failed load is described.
    pub fn get(&mut self, task: &str, model: &str) -> Result<&dyn webformers::tasks::Pipeline, String> {
        use webformers::tasks::{self, LoadOptions};
        let key = (task.to_string(), model.to_string());
        if !self.pipelines.contains_key(&key) {
            let files = webformers::files::DirFiles::open(self.dir.join(model)).map_err(|e| format!("{task} {model}: open: {e}"))?;
            let pipe =
                tasks::load(task, &files, &self.device, &LoadOptions::default()).map_err(|e| format!("{task} {model}: load: {e}"))?;
            self.pipelines.insert(key.clone(), pipe);
        }
        Ok(self.pipelines[&key].as_ref())
    }
}
