//! Device faults on the real all-MiniLM-L6-v2: a GPU device lost under a loaded pipeline, and
//! device memory running out (a fake budget, `GpuOptions::memory_budget`). Each is an `Error` of
//! its own kind naming the cause, never a panic or a hang, and a new device recovers: results
//! then match sentence-transformers (tests/fixtures/minilm-reference.json) within 1e-4, as in
//! minilm.rs.

use std::sync::Arc;
use std::time::Duration;

use webformers::files::DirFiles;
use webformers::tasks::LoadOptions;
use webformers::tasks::feature_extraction::{FeatureExtraction, Pooling};
use webformers::{Device, DeviceChoice, Error, GpuContext, GpuOptions};
use webformers_tests::{fixture, floats, gpu_required, max_abs_diff, model_dir};

const TOLERANCE: f32 = 1e-4;

/// A GPU context of its own (these tests break theirs), or None with the reason printed where
/// there is no adapter and WEBFORMERS_REQUIRE_GPU is not set.
fn fresh_gpu(options: GpuOptions) -> Option<Arc<GpuContext>> {
    match pollster::block_on(GpuContext::new(options)) {
        Ok(gpu) => Some(gpu),
        Err(e) if !gpu_required() => {
            eprintln!("SKIPPING: no GPU adapter: {e} (WEBFORMERS_REQUIRE_GPU=1 makes this an error)");
            None
        }
        Err(e) => panic!("WEBFORMERS_REQUIRE_GPU=1 but there is no GPU adapter: {e}"),
    }
}

fn load(device: &Device) -> webformers::Result<FeatureExtraction> {
    let files = DirFiles::open(model_dir("all-MiniLM-L6-v2")).unwrap();
    FeatureExtraction::load(&files, device, &LoadOptions::default())
}

/// The first reference sentence and its normalized embedding.
fn reference() -> (String, Vec<f32>) {
    let reference = fixture("minilm-reference.json");
    let first = &reference["inputs"][0];
    (first["text"].as_str().unwrap().to_string(), floats(&first["embedding"]))
}

/// Runs `pipe` on `text`; a call that takes over a minute ends the test process with a message
/// (a lost device must not hang a call; the pipeline cannot move to another thread to wait on).
fn embed(pipe: &FeatureExtraction, text: &str) -> webformers::Result<Vec<f32>> {
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watched = done.clone();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(60));
        if !watched.load(std::sync::atomic::Ordering::SeqCst) {
            eprintln!("a call neither returned nor panicked within a minute");
            std::process::exit(1);
        }
    });
    let out = pollster::block_on(pipe.run(&[text], Pooling::Mean, true)).map(|e| e.row(0).to_vec());
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    out
}

#[test]
fn a_lost_device_is_a_device_lost_error_and_a_new_device_recovers() {
    let Some(gpu) = fresh_gpu(GpuOptions::from_env()) else { return };
    let (text, want) = reference();
    let pipe = load(&Device::Gpu(gpu.clone())).unwrap();
    let before = embed(&pipe, &text).unwrap();
    assert!(max_abs_diff(&before, &want) <= TOLERANCE);

    gpu.destroy();
    assert_eq!(gpu.lost().as_deref(), Some("it was destroyed"));
    for attempt in ["the first call after the loss", "a second call"] {
        match embed(&pipe, &text) {
            Err(Error::DeviceLost(why)) => assert_eq!(why, "it was destroyed", "{attempt}"),
            other => panic!("{attempt}: expected DeviceLost, got {:?}", other.map(|v| v.len())),
        }
    }
    let message = embed(&pipe, &text).unwrap_err().to_string();
    assert_eq!(message, "the GPU device was lost (it was destroyed); open a new device and load the model again");
    // Loading on the lost device fails the same way, at its first weight.
    match load(&Device::Gpu(gpu.clone())) {
        Err(Error::DeviceLost(why)) => assert_eq!(why, "it was destroyed"),
        Err(e) => panic!("a load on the lost device: expected DeviceLost, got {e}"),
        Ok(_) => panic!("a load on the lost device succeeded"),
    }
    drop(pipe);

    let Some(again) = fresh_gpu(GpuOptions::from_env()) else { return };
    let pipe = load(&Device::Gpu(again)).unwrap();
    let after = embed(&pipe, &text).unwrap();
    let diff = max_abs_diff(&after, &want);
    assert!(diff <= TOLERANCE, "a new device after a lost one differs by {diff:e}");
}

#[test]
fn weights_over_the_memory_budget_are_an_out_of_memory_error_naming_the_weight() {
    // MiniLM's weights are 90.9 MB in f32, its word embeddings 46.9 MB of them: 60 MB of budget
    // runs out part of the way, after the embeddings.
    let budget = 60_000_000;
    let Some(gpu) = fresh_gpu(GpuOptions { memory_budget: Some(budget), ..GpuOptions::from_env() }) else { return };
    let e = match load(&Device::Gpu(gpu.clone())) {
        Err(e) => e,
        Ok(_) => panic!("90 MB of weights loaded within a 60 MB budget"),
    };
    match &e {
        Error::OutOfMemory { what, needed, why } => {
            assert!(what.starts_with("weight `"), "{what}");
            assert!(*needed > 0 && *needed <= budget, "{needed}");
            let used: u64 = why.split(' ').next().and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("{why}"));
            assert!(used >= 46_881_792 && used + needed > budget, "{why}");
            assert!(why.ends_with("of the GPU's 60000000-byte memory budget are in use"), "{why}");
        }
        other => panic!("expected OutOfMemory, got {other}"),
    }
    assert!(e.to_string().starts_with("out of memory: weight `"), "{e}");
    // The failed load gave back every buffer it had made: the large ones freed, the small ones
    // (up to 64 KiB, pooled like a step's inputs) idle in the context's pool for the next load,
    // freed under memory pressure or with the context.
    assert_eq!(gpu.memory_used(), gpu.pooled_idle_bytes());
    gpu.trim_pool();
    assert_eq!(gpu.memory_used(), 0);
}

#[test]
fn activations_over_the_memory_budget_are_an_out_of_memory_error_and_the_pipeline_survives() {
    let Some(measure) = fresh_gpu(GpuOptions::from_env()) else { return };
    let weights = {
        let _pipe = load(&Device::Gpu(measure.clone())).unwrap();
        measure.memory_used()
    };
    assert!(weights > 80_000_000, "MiniLM's f32 weights on the device: {weights} bytes");

    // Room for the weights and one short sentence's activations, not a long batch's.
    let (text, want) = reference();
    let budget = weights + 4_000_000;
    let Some(gpu) = fresh_gpu(GpuOptions { memory_budget: Some(budget), ..GpuOptions::from_env() }) else { return };
    let pipe = load(&Device::Gpu(gpu.clone())).unwrap();
    let long = "a sentence that goes on and on ".repeat(40);
    let batch: Vec<&str> = std::iter::repeat_n(long.as_str(), 32).collect();
    match pollster::block_on(pipe.run(&batch, Pooling::Mean, true)) {
        Err(Error::OutOfMemory { what, needed, why }) => {
            eprintln!("{what}: {needed}: {why}");
            assert!(needed > 4_000_000, "{what}: {needed}");
            assert!(why.contains(&format!("of the GPU's {budget}-byte memory budget are in use")), "{why}");
        }
        Err(e) => panic!("expected OutOfMemory, got {e}"),
        Ok(_) => panic!("32 x 256 tokens ran within 4 MB of activations"),
    }
    // The failed call freed what it took: the next small one runs and is right.
    let got = embed(&pipe, &text).unwrap();
    let diff = max_abs_diff(&got, &want);
    assert!(diff <= TOLERANCE, "after an out-of-memory call: differs by {diff:e}");
}

#[test]
fn under_auto_a_gpu_out_of_memory_falls_back_to_the_cpu_and_other_errors_stand() {
    let Some(gpu) = fresh_gpu(GpuOptions { memory_budget: Some(60_000_000), ..GpuOptions::from_env() }) else { return };
    let gpu = Device::Gpu(gpu);
    let e = match load(&gpu) {
        Err(e) => e,
        Ok(_) => panic!("90 MB of weights loaded within a 60 MB budget"),
    };
    assert!(e.is_device_fault(), "{e}");
    // A device the caller chose is kept, error and all.
    assert!(gpu.fallback(DeviceChoice::Gpu, &e).is_none());
    let (cpu, note) = gpu.fallback(DeviceChoice::Auto, &e).expect("auto falls back on a GPU fault");
    assert!(matches!(cpu, Device::Cpu));
    assert!(note.starts_with("the model could not load on the GPU (") && note.contains("): out of memory: weight `"), "{note}");
    let (text, want) = reference();
    let got = embed(&load(&cpu).unwrap(), &text).unwrap();
    let diff = max_abs_diff(&got, &want);
    assert!(diff <= TOLERANCE, "the CPU after the fallback differs by {diff:e}");

    // The model's own faults would fail anywhere: no fallback, and none from the CPU.
    let bad = Error::Config("no `hidden_size`".into());
    assert!(!bad.is_device_fault());
    assert!(gpu.fallback(DeviceChoice::Auto, &bad).is_none());
    assert!(Device::Cpu.fallback(DeviceChoice::Auto, &e).is_none());
}
