//! The native soak (a program, not a test: bench/soak.sh runs it for 30 minutes; CI does not).
//! It loads, runs and drops a pipeline of every task in a loop on one device for a given time, as
//! a long-lived server or desktop app would, and checks that the process stops growing: resident
//! memory, open file descriptors, threads and the engine's device buffers are sampled after two
//! warm-up rounds (the baseline: pools and caches have reached their working size) and at the end.
//! Every call's result must also stay identical to its first round's (the same kernels on the same
//! inputs), so that nothing is lost or corrupted along the way.
//!
//!   soak [--minutes M] [--device cpu|gpu] [--json FILE]
//!
//! Bounds (exit status 1 when one is exceeded): open files and threads back to the baseline; device
//! buffers and their bytes at most the baseline's; resident memory at most 10% + 16 MiB over it.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use webformers::audio::RawAudio;
use webformers::files::DirFiles;
use webformers::tasks::{self, LoadOptions, Pipeline};
use webformers::{Device, GpuContext, GpuOptions};
use webformers_tests::repo_root;

/// One pipeline of the loop: its task, its model folder (relative to the repository root) and one
/// call's arguments.
struct Workload {
    task: &'static str,
    model: &'static str,
    input: Input,
    options: Value,
}

enum Input {
    Json(Value),
    /// An image under tests/fixtures/images, passed by path: decoded by every call.
    Image(&'static str),
    /// A clip under tests/fixtures/speech, decoded by every round (the audio decoders soak too).
    Audio(&'static str),
}

fn workloads() -> Vec<Workload> {
    let text = |task, model, input: Value, options: Value| Workload { task, model, input: Input::Json(input), options };
    vec![
        text(
            "feature-extraction",
            ".cache/models/all-MiniLM-L6-v2",
            json!(["A man is eating food.", "A soak runs the same calls for half an hour."]),
            json!({"pooling": "mean", "normalize": true}),
        ),
        text("fill-mask", "tests/fixtures/tiny-tasks/bert-masked-lm", json!("The capital of France is [MASK]."), Value::Null),
        text(
            "text-classification",
            "tests/fixtures/tiny-tasks/bert-sequence-classification",
            json!("I loved this film."),
            json!({"top_k": 2}),
        ),
        text("token-classification", "tests/fixtures/tiny-tasks/roberta-token-classification", json!("Paris is in France."), Value::Null),
        text(
            "question-answering",
            "tests/fixtures/tiny-tasks/distilbert-question-answering",
            json!({"question": "Where is Paris?", "context": "Paris is in France. It was a long day in the city."}),
            Value::Null,
        ),
        text(
            "zero-shot-classification",
            "tests/fixtures/tiny-tasks/xlm-roberta-sequence-classification",
            json!("The service was slow and rude."),
            json!({"candidate_labels": ["food", "service", "weather"]}),
        ),
        text("text-generation", "tests/fixtures/tiny-llama", json!("Once upon a time"), json!({"max_new_tokens": 8})),
        text("text-generation", "tests/fixtures/tiny-gemma3", json!("Once upon a time"), json!({"max_new_tokens": 8})),
        text("translation", "tests/fixtures/seq2seq/tiny-marian", json!("Hello world."), json!({"num_beams": 2, "max_new_tokens": 8})),
        text(
            "summarization",
            "tests/fixtures/seq2seq/tiny-bart",
            json!("The soak loads every task again and again."),
            json!({"max_new_tokens": 8}),
        ),
        text(
            "text2text-generation",
            "tests/fixtures/seq2seq/tiny-t5",
            json!("translate English to German: Hello."),
            json!({"max_new_tokens": 8}),
        ),
        Workload {
            task: "image-classification",
            model: "tests/fixtures/vision/tiny-dinov2-classifier",
            input: Input::Image("cat.jpg"),
            options: json!({"top_k": 2}),
        },
        Workload {
            task: "image-feature-extraction",
            model: "tests/fixtures/vision/tiny-dinov2",
            input: Input::Image("coffee.png"),
            options: Value::Null,
        },
        Workload {
            task: "zero-shot-image-classification",
            model: "tests/fixtures/vision/tiny-clip",
            input: Input::Image("astronaut.webp"),
            options: json!({"candidate_labels": ["cat", "dog", "bridge"]}),
        },
        Workload {
            task: "object-detection",
            model: "tests/fixtures/vision/tiny-detr",
            input: Input::Image("cat.jpg"),
            options: json!({"threshold": 0.0}),
        },
        Workload {
            task: "automatic-speech-recognition",
            model: "tests/fixtures/whisper/tiny-whisper-en",
            input: Input::Audio("us-short.flac"),
            options: json!({"return_timestamps": true, "max_new_tokens": 16}),
        },
    ]
}

/// What is sampled: resident memory, open file descriptors, threads (Linux's /proc), and the
/// engine's device buffers.
#[derive(Clone, Copy, Debug, Default)]
struct Sample {
    rss_bytes: u64,
    open_files: u64,
    threads: u64,
    gpu_buffers: u64,
    gpu_bytes: u64,
}

fn sample() -> Sample {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status.lines().find_map(|l| l.strip_prefix(name)).and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok()).unwrap_or(0)
    };
    let open_files = std::fs::read_dir("/proc/self/fd").map(|d| d.count() as u64).unwrap_or(0);
    let (gpu_buffers, gpu_bytes) = webformers::gpu::live_buffers();
    Sample { rss_bytes: field("VmRSS:") * 1024, open_files, threads: field("Threads:"), gpu_buffers, gpu_bytes }
}

impl Sample {
    fn json(&self) -> Value {
        json!({
            "rss_mb": (self.rss_bytes as f64 / 1048576.0 * 10.0).round() / 10.0,
            "open_files": self.open_files,
            "threads": self.threads,
            "gpu_buffers": self.gpu_buffers,
            "gpu_mb": (self.gpu_bytes as f64 / 1048576.0 * 10.0).round() / 10.0,
        })
    }
}

/// A result without what differs from run to run (text-generation's timing stats).
fn untimed(mut result: Value) -> Value {
    if let Some(items) = result.as_array_mut() {
        for item in items.iter_mut().filter_map(Value::as_object_mut) {
            item.remove("stats");
        }
    }
    result
}

fn input_of(workload: &Workload) -> Result<Value, String> {
    let root = repo_root();
    match &workload.input {
        Input::Json(v) => Ok(v.clone()),
        Input::Image(name) => Ok(json!(root.join("tests/fixtures/images").join(name).to_string_lossy())),
        Input::Audio(name) => {
            let bytes = std::fs::read(root.join("tests/fixtures/speech").join(name)).map_err(|e| format!("{name}: {e}"))?;
            Ok(json!(RawAudio::decode(&bytes).map_err(|e| format!("{name}: {e}"))?.samples))
        }
    }
}

/// Loads, runs once and drops the workload's pipeline: its result.
fn round_trip(workload: &Workload, device: &Device) -> Result<Value, String> {
    let files = DirFiles::open(repo_root().join(workload.model)).map_err(|e| e.to_string())?;
    let pipe: Box<dyn Pipeline> = tasks::load(workload.task, &files, device, &LoadOptions::default()).map_err(|e| e.to_string())?;
    let input = input_of(workload)?;
    let out = pollster::block_on(pipe.run_json(&input, &workload.options, &mut |_| {})).map_err(|e| e.to_string())?;
    Ok(untimed(out.to_json()))
}

fn main() {
    let mut minutes = 30.0f64;
    let mut device_name = "cpu".to_string();
    let mut json_path = None;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().unwrap_or_else(|| usage(&format!("{flag} needs a value")));
        match flag.as_str() {
            "--minutes" => minutes = value.parse().unwrap_or_else(|_| usage("--minutes takes a number")),
            "--device" => device_name = value,
            "--json" => json_path = Some(value),
            other => usage(&format!("unknown flag {other}")),
        }
    }
    let device = match device_name.as_str() {
        "cpu" => Device::Cpu,
        "gpu" => match pollster::block_on(GpuContext::new(GpuOptions::from_env())) {
            Ok(gpu) => Device::Gpu(gpu),
            Err(e) => {
                eprintln!("soak: no GPU adapter: {e}");
                std::process::exit(2);
            }
        },
        other => usage(&format!("--device is cpu or gpu, not {other}")),
    };

    let workloads = workloads();
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(minutes * 60.0);
    let mut first_results: Vec<Value> = Vec::new();
    let mut baseline = None;
    let mut peak = Sample::default();
    let mut failures = Vec::new();
    let (mut rounds, mut calls) = (0u64, 0u64);
    let mut next_report = started;
    eprintln!("soak: {} pipelines per round on {device_name} for {minutes} min", workloads.len());
    while rounds < 3 || Instant::now() < deadline {
        for (i, workload) in workloads.iter().enumerate() {
            let result = round_trip(workload, &device);
            calls += 1;
            match result {
                Ok(value) if rounds == 0 => first_results.push(value),
                Ok(value) if value != first_results[i] => failures.push(format!(
                    "round {rounds}: {} {} changed its result: {value} (first: {})",
                    workload.task, workload.model, first_results[i]
                )),
                Ok(_) => {}
                Err(e) => {
                    // A failing workload stops the soak: its figures would mean nothing.
                    eprintln!("soak: round {rounds}: {} {}: {e}", workload.task, workload.model);
                    std::process::exit(1);
                }
            }
        }
        rounds += 1;
        let now = sample();
        peak = Sample {
            rss_bytes: peak.rss_bytes.max(now.rss_bytes),
            open_files: peak.open_files.max(now.open_files),
            threads: peak.threads.max(now.threads),
            gpu_buffers: peak.gpu_buffers.max(now.gpu_buffers),
            gpu_bytes: peak.gpu_bytes.max(now.gpu_bytes),
        };
        if rounds == 2 {
            baseline = Some(now);
        }
        if Instant::now() >= next_report {
            eprintln!("soak: {:>6.1} min, round {rounds}: {}", started.elapsed().as_secs_f64() / 60.0, now.json());
            next_report += Duration::from_secs(60);
        }
    }
    let end = sample();
    let base = baseline.expect("at least 3 rounds ran");
    let rss_bound = base.rss_bytes + base.rss_bytes / 10 + 16 * 1048576;
    let mut exceeded = Vec::new();
    if end.open_files > base.open_files {
        exceeded.push(format!("open files {} -> {}", base.open_files, end.open_files));
    }
    if end.threads > base.threads {
        exceeded.push(format!("threads {} -> {}", base.threads, end.threads));
    }
    if end.gpu_buffers > base.gpu_buffers || end.gpu_bytes > base.gpu_bytes {
        exceeded.push(format!("device buffers {} ({} B) -> {} ({} B)", base.gpu_buffers, base.gpu_bytes, end.gpu_buffers, end.gpu_bytes));
    }
    if end.rss_bytes > rss_bound {
        exceeded.push(format!("resident memory {} -> {} B (bound {rss_bound})", base.rss_bytes, end.rss_bytes));
    }
    let report = json!({
        "device": device_name,
        "minutes": (started.elapsed().as_secs_f64() / 60.0 * 10.0).round() / 10.0,
        "pipelines_per_round": workloads.len(),
        "rounds": rounds,
        "calls": calls,
        "baseline_after_round_2": base.json(),
        "end": end.json(),
        "peak": peak.json(),
        "rss_growth_mb": ((end.rss_bytes as f64 - base.rss_bytes as f64) / 1048576.0 * 10.0).round() / 10.0,
        "bounds_exceeded": exceeded,
        "results_changed": failures,
    });
    println!("{report}");
    if let Some(path) = json_path {
        std::fs::write(&path, format!("{report}\n")).unwrap_or_else(|e| eprintln!("soak: writing {path}: {e}"));
    }
    if !exceeded.is_empty() || !failures.is_empty() {
        std::process::exit(1);
    }
}

fn usage(problem: &str) -> ! {
    eprintln!("soak: {problem}\nusage: soak [--minutes M] [--device cpu|gpu] [--json FILE]");
    std::process::exit(2);
}
