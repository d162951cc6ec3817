//! The `webformers` command line: run a pipeline task on a model from a folder or the Hub, or
//! benchmark one. Errors print one line on stderr and exit with status 1; nothing panics on bad
//! input.

mod progress;

use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand};
use webformers::chat::Message;
use webformers::files::{DirFiles, ModelFiles};
use webformers::hub::{HfCache, Hub, HubOptions, NativeHub, UreqTransport};
use webformers::tasks::feature_extraction::{FeatureExtraction, Pooling};
use webformers::tasks::text_generation::{GenerationOptions, Prompt, TextGeneration};
use webformers::tasks::{LoadOptions, Task};
use webformers::weights::WeightDType;
use webformers::{Device, DeviceChoice, GpuOptions, Result};

#[derive(Parser)]
#[command(name = "webformers", version, about = "Run Hugging Face models on WebGPU or the CPU")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Clone)]
struct ModelArgs {
    /// A model folder (config.json, tokenizer.json, model.safetensors), a .gguf file, or, when no
    /// such path exists, a Hub repository (`org/name`) or a GGUF file in one
    /// (`org/name/model.gguf`), fetched into the Hugging Face cache.
    #[arg(long)]
    model: String,
    /// A Hub model's branch, tag or commit (default: main).
    #[arg(long)]
    revision: Option<String>,
    /// auto takes the GPU when an adapter exists, else the CPU.
    #[arg(long, default_value = "auto")]
    device: String,
    /// Weight storage: auto (as stored), fp32, or fp16.
    #[arg(long, default_value = "auto")]
    dtype: String,
    /// CPU threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
}

#[derive(clap::Args, Clone)]
struct GenerationArgs {
    /// text-generation: the most tokens to generate.
    #[arg(long, default_value_t = 256)]
    max_new_tokens: usize,
    /// text-generation: send the prompt as one user message through the model's chat template.
    #[arg(long)]
    chat: bool,
    /// text-generation: sample instead of greedy decoding.
    #[arg(long)]
    do_sample: bool,
    #[arg(long, default_value_t = 1.0)]
    temperature: f32,
    #[arg(long, default_value_t = 50)]
    top_k: usize,
    #[arg(long, default_value_t = 1.0)]
    top_p: f32,
    #[arg(long, default_value_t = 1.0)]
    repetition_penalty: f32,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// text-generation: stop before this string (repeatable).
    #[arg(long)]
    stop: Vec<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Run a task: `webformers run feature-extraction --model DIR "some text" ...`
    Run {
        task: String,
        #[command(flatten)]
        model: ModelArgs,
        /// none, mean or cls
        #[arg(long, default_value = "none")]
        pooling: String,
        /// L2-normalize the embeddings.
        #[arg(long)]
        normalize: bool,
        /// Print only JSON on stdout, at the end.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        generation: GenerationArgs,
        /// The texts (feature-extraction) or the prompt (text-generation).
        #[arg(required = true)]
        texts: Vec<String>,
    },
    /// Measure throughput and latency of feature-extraction on a corpus.
    Bench {
        task: String,
        #[command(flatten)]
        model: ModelArgs,
        /// feature-extraction: a JSON file {"sentences": [...], "single": "..."}.
        #[arg(long, default_value = "bench/corpus.json")]
        corpus: String,
        /// text-generation: prompt tokens for the prefill measurement.
        #[arg(long, default_value_t = 128)]
        prompt_tokens: usize,
        /// text-generation: decoded tokens per measurement.
        #[arg(long, default_value_t = 64)]
        decode_tokens: usize,
        #[arg(long, default_value_t = 32)]
        batch: usize,
        /// Timed passes over the corpus (after one warm-up).
        #[arg(long, default_value_t = 5)]
        reps: usize,
        /// Timed single-sentence calls.
        #[arg(long, default_value_t = 50)]
        latency_runs: usize,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match pollster::block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Threads, dtype and device from the flags; says on stderr which device runs.
async fn prepare(args: &ModelArgs) -> Result<(Device, LoadOptions)> {
    if let Some(n) = args.threads {
        webformers::cpu::set_threads(n)?;
    }
    let choice: DeviceChoice = args.device.parse()?;
    let dtype = match args.dtype.as_str() {
        "auto" => WeightDType::Auto,
        "fp32" | "f32" => WeightDType::F32,
        "fp16" | "f16" => WeightDType::F16,
        other => return Err(webformers::Error::Input(format!("unknown dtype `{other}`; use auto, fp32 or fp16"))),
    };
    let (device, fallback) = Device::select(choice, GpuOptions::from_env()).await?;
    match fallback {
        Some(why) => eprintln!("device: {} (no GPU: {why})", device.describe()),
        None => eprintln!("device: {}", device.describe()),
    }
    Ok((device, LoadOptions { dtype }))
}

/// Where `--model` points.
enum ModelRef {
    Path(std::path::PathBuf),
    /// A repository: `org/name`.
    Hub(String),
    /// One file of a repository: `org/name/path/model.gguf`.
    HubFile {
        repo: String,
        file: String,
    },
}

/// A path that exists wins; otherwise `org/name` is a Hub repository, and `org/name/file.gguf`
/// a GGUF file in one.
fn model_ref(args: &ModelArgs) -> Result<ModelRef> {
    let path = std::path::Path::new(&args.model);
    let remote = if path.exists() {
        None
    } else if args.model.ends_with(".gguf") {
        let mut parts = args.model.splitn(3, '/');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(org), Some(name), Some(file)) if webformers::hub::is_repo_id(&format!("{org}/{name}")) => {
                Some(ModelRef::HubFile { repo: format!("{org}/{name}"), file: file.to_string() })
            }
            _ => None,
        }
    } else if webformers::hub::is_repo_id(&args.model) {
        Some(ModelRef::Hub(args.model.clone()))
    } else {
        None
    };
    match remote {
        Some(r) => Ok(r),
        None if args.revision.is_some() => {
            Err(webformers::Error::Input(format!("--revision is for Hub models, and `{}` is a local path", args.model)))
        }
        None => Ok(ModelRef::Path(path.to_path_buf())),
    }
}

/// A Hub client configured as huggingface_hub is (HF_ENDPOINT, HF_TOKEN, HF_HOME, ...), drawing
/// its progress on stderr.
fn hub_client(bars: &progress::Bars) -> NativeHub {
    let options = HubOptions { progress: Some(bars.callback()), ..HubOptions::from_env() };
    Hub::new(UreqTransport::new(), HfCache::from_env(), options)
}

/// A mistyped local path reads as a Hub id: say that no such folder exists either.
fn not_here(e: webformers::Error) -> webformers::Error {
    match e {
        webformers::Error::Hub { repo, file, kind, msg } if msg.contains("the repository does not exist") => {
            webformers::Error::Hub { msg: format!("{msg} (and there is no local path `{repo}`)"), repo, file, kind }
        }
        e => e,
    }
}

fn loaded(bars: &progress::Bars, repo: &str, commit: &str, t: Instant) {
    bars.finish();
    let fetched = bars.downloaded();
    let commit: String = commit.chars().take(10).collect();
    let how = if fetched > 0 { format!("{:.1} MB downloaded", fetched as f64 / 1e6) } else { "from the cache".to_string() };
    eprintln!("model: {repo} at {commit} ({how}, {:.2} s)", t.elapsed().as_secs_f64());
}

/// The model's files, the device and the load options. The folder, or the Hub repository (its
/// config.json), is checked before a GPU is opened, so a wrong name fails fast.
async fn open_files(args: &ModelArgs, task: Task) -> Result<(Box<dyn ModelFiles>, Device, LoadOptions)> {
    let repo = match model_ref(args)? {
        ModelRef::Path(path) => {
            let files = DirFiles::open(path)?;
            let (device, options) = prepare(args).await?;
            return Ok((Box::new(files), device, options));
        }
        ModelRef::Hub(repo) => repo,
        ModelRef::HubFile { .. } => {
            return Err(webformers::Error::Unsupported(format!("`{}`: a GGUF file runs text-generation only", args.model)));
        }
    };
    let bars = progress::Bars::new();
    let hub = hub_client(&bars);
    let model = hub.model(&repo, args.revision.as_deref())?;
    if model.file("config.json").await.map_err(not_here)?.is_none() {
        return Err(webformers::Error::File { path: repo, msg: "is not a model: the repository has no config.json".into() });
    }
    let (device, options) = prepare(args).await?;
    let t = Instant::now();
    let files = model.load(task.files(), &device).await?;
    loaded(&bars, &repo, files.commit(), t);
    Ok((Box::new(files), device, options))
}

async fn open(args: &ModelArgs) -> Result<FeatureExtraction> {
    let (files, device, options) = open_files(args, Task::FeatureExtraction).await?;
    FeatureExtraction::load(files.as_ref(), &device, &options)
}

async fn open_generator(args: &ModelArgs) -> Result<TextGeneration> {
    match model_ref(args)? {
        ModelRef::Path(path) if args.model.ends_with(".gguf") => {
            let file = webformers::weights::gguf::GgufFile::open(path)?;
            let (device, options) = prepare(args).await?;
            TextGeneration::load_gguf(file, &device, &options)
        }
        ModelRef::HubFile { repo, file } => {
            let bars = progress::Bars::new();
            let hub = hub_client(&bars);
            let model = hub.model(&repo, args.revision.as_deref())?;
            let t = Instant::now();
            let gguf = model.gguf(&file).await.map_err(not_here)?;
            loaded(&bars, &format!("{repo}/{file}"), &model.pinned().unwrap_or_default(), t);
            let (device, options) = prepare(args).await?;
            TextGeneration::load_gguf(gguf, &device, &options)
        }
        _ => {
            let (files, device, options) = open_files(args, Task::TextGeneration).await?;
            TextGeneration::load(files.as_ref(), &device, &options)
        }
    }
}

async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Run { task, model, pooling, normalize, json, generation, texts } => match Task::from_name(&task)? {
            Task::FeatureExtraction => {
                let pooling: Pooling = pooling.parse()?;
                let pipe = open(&model).await?;
                let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
                let out = pipe.run(&refs, pooling, normalize).await?;
                if json {
                    println!("{}", serde_json::json!({ "dims": out.dims, "data": nest(&out.data, &out.dims) }));
                } else {
                    print_human(&refs, &out);
                }
                Ok(())
            }
            Task::TextGeneration => generate(&model, &generation, json, &texts).await,
        },
        Command::Bench { task, model, corpus, prompt_tokens, decode_tokens, batch, reps, latency_runs } => match Task::from_name(&task)? {
            Task::FeatureExtraction => {
                let pipe = open(&model).await?;
                bench(&pipe, &corpus, batch, reps, latency_runs).await
            }
            Task::TextGeneration => bench_generation(&model, prompt_tokens, decode_tokens, reps).await,
        },
    }
}

async fn generate(model: &ModelArgs, args: &GenerationArgs, json: bool, texts: &[String]) -> Result<()> {
    use std::io::Write;
    let text = texts.join(" ");
    let pipe = open_generator(model).await?;
    let prompt = if args.chat { Prompt::Chat(vec![Message::new("user", text)]) } else { Prompt::Text(text) };
    let options = GenerationOptions {
        max_new_tokens: args.max_new_tokens,
        do_sample: args.do_sample,
        temperature: args.temperature,
        top_k: args.top_k,
        top_p: args.top_p,
        repetition_penalty: args.repetition_penalty,
        seed: args.seed,
        stop: args.stop.clone(),
    };
    let mut stdout = std::io::stdout();
    let out = pipe
        .generate(&prompt, &options, |piece| {
            if !json {
                // Streamed as generated; a closed pipe must not abort generation with a panic.
                let _ = write!(stdout, "{piece}");
                let _ = stdout.flush();
            }
        })
        .await?;
    if json {
        println!("{}", serde_json::json!([{ "generated_text": out.text }]));
    } else {
        println!();
    }
    let decoded = out.token_ids.len().saturating_sub(1);
    let rate = if out.decode_seconds > 0.0 { decoded as f64 / out.decode_seconds } else { 0.0 };
    eprintln!(
        "{} prompt tokens in {:.0} ms, {} new tokens ({:?}), {rate:.1} tokens/s decoding",
        out.prompt_tokens,
        out.prefill_seconds * 1000.0,
        out.token_ids.len(),
        out.stop_reason
    );
    Ok(())
}

/// Prefill and decode speed of a decoder: a GGUF file, a model folder, or
/// `synthetic:llama-3.2-1b:<q4_0|q4_k|...>` (random weights with Llama 3.2 1B's shapes).
async fn bench_generation(args: &ModelArgs, prompt_tokens: usize, decode_tokens: usize, reps: usize) -> Result<()> {
    use webformers::models::synthetic;
    let started = Instant::now();
    let (model, weight_bytes): (Box<dyn webformers::models::DecoderModel>, Option<u64>) = match args.model.strip_prefix("synthetic:") {
        Some(spec) => {
            let dtype = match spec.strip_prefix("llama-3.2-1b:") {
                Some("q4_0") => webformers::DType::Q4_0,
                Some("q4_k") => webformers::DType::Q4K,
                Some("q8_0") => webformers::DType::Q8_0,
                Some("q6_k") => webformers::DType::Q6K,
                _ => {
                    return Err(webformers::Error::Input(format!(
                        "unknown synthetic model `{spec}`; use llama-3.2-1b:q4_0|q4_k|q8_0|q6_k"
                    )));
                }
            };
            let (device, _) = prepare(args).await?;
            let config = synthetic::llama_3_2_1b();
            let bytes = synthetic::weight_bytes_per_token(&config, dtype);
            (synthetic::llama(config, dtype, &device, 7)?, Some(bytes))
        }
        None => (open_generator(args).await?.into_model(), None),
    };
    let load_seconds = started.elapsed().as_secs_f64();
    let vocab = model.vocab_size() as u32;
    let prompt: Vec<u32> = (0..prompt_tokens as u32).map(|i| (i * 7919 + 13) % vocab).collect();
    let mut prefill = Vec::new();
    let mut decode = Vec::new();
    let mut dispatches_per_token = 0.0;
    for rep in 0..reps.max(1) + 1 {
        let mut cache = model.new_cache(prompt_tokens + decode_tokens + 1)?;
        let t = Instant::now();
        let mut next = model.forward(&prompt, &mut cache, false)?.argmax()?.to_vec_u32().await?[0];
        let prefill_s = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let dispatched = webformers::gpu::dispatches_submitted();
        for _ in 0..decode_tokens {
            next = model.forward(&[next], &mut cache, false)?.argmax()?.to_vec_u32().await?[0];
        }
        let decode_s = t.elapsed().as_secs_f64();
        dispatches_per_token = (webformers::gpu::dispatches_submitted() - dispatched) as f64 / decode_tokens.max(1) as f64;
        // The first repetition compiles pipelines and warms caches.
        if rep > 0 {
            prefill.push(prompt_tokens as f64 / prefill_s);
            decode.push(decode_tokens as f64 / decode_s);
        }
    }
    let decode_rate = median(decode.clone());
    let mut result = serde_json::json!({
        "model": args.model,
        "load_s": (load_seconds * 100.0).round() / 100.0,
        "prompt_tokens": prompt_tokens,
        "prefill_tokens_per_s": (median(prefill) * 10.0).round() / 10.0,
        "decode_tokens": decode_tokens,
        "decode_tokens_per_s": (decode_rate * 10.0).round() / 10.0,
    });
    if dispatches_per_token > 0.0 {
        result["gpu_dispatches_per_token"] = dispatches_per_token.round().into();
    }
    if let Some(bytes) = weight_bytes {
        result["weight_bytes_per_token"] = bytes.into();
        result["weight_read_gb_per_s"] = ((bytes as f64 * decode_rate / 1e9) * 10.0).round().mul_add(0.1, 0.0).into();
    }
    println!("{result}");
    Ok(())
}

/// Flat values as nested arrays following `dims` (one row per text).
fn nest(data: &[f32], dims: &[usize]) -> serde_json::Value {
    if dims.len() <= 1 {
        return serde_json::json!(data);
    }
    let width: usize = dims[1..].iter().product();
    serde_json::Value::Array(data.chunks(width.max(1)).map(|c| nest(c, &dims[1..])).collect())
}

fn print_human(texts: &[&str], out: &webformers::tasks::feature_extraction::Embeddings) {
    println!("embeddings: dims {:?}", out.dims);
    for (i, text) in texts.iter().enumerate() {
        let row = out.row(i);
        let head: Vec<String> = row.iter().take(5).map(|v| format!("{v:.6}")).collect();
        println!("  [{i}] {:<50} [{} ...]", shorten(text, 50), head.join(", "));
    }
    if out.dims.len() == 2 && texts.len() > 1 {
        println!("cosine similarity:");
        for i in 0..texts.len() {
            let sims: Vec<String> =
                (0..texts.len()).map(|j| format!("{:6.3}", webformers::reference::cosine(out.row(i), out.row(j)))).collect();
            println!("  [{i}] {}", sims.join(" "));
        }
    }
}

fn shorten(s: &str, n: usize) -> String {
    if s.chars().count() <= n { s.to_string() } else { s.chars().take(n - 1).chain(['…']).collect() }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

async fn bench(pipe: &FeatureExtraction, corpus: &str, batch: usize, reps: usize, latency_runs: usize) -> Result<()> {
    let text = std::fs::read_to_string(corpus).map_err(|e| webformers::Error::Input(format!("{corpus}: {e}")))?;
    let corpus: serde_json::Value = serde_json::from_str(&text).map_err(|e| webformers::Error::Input(format!("{corpus}: {e}")))?;
    let sentences: Vec<&str> = corpus["sentences"].as_array().into_iter().flatten().filter_map(|v| v.as_str()).collect();
    let single = corpus["single"].as_str().unwrap_or("Hello world");
    if sentences.is_empty() || batch == 0 || reps == 0 || latency_runs == 0 {
        return Err(webformers::Error::Input("the corpus needs sentences, and batch, reps and runs must be positive".into()));
    }
    let pass = || async {
        for chunk in sentences.chunks(batch) {
            pipe.run(chunk, Pooling::Mean, true).await?;
        }
        Ok::<(), webformers::Error>(())
    };
    pass().await?; // warm-up: pipelines compiled, weights packed, buffers pooled
    let mut rates = Vec::new();
    for _ in 0..reps {
        let t = Instant::now();
        pass().await?;
        rates.push(sentences.len() as f64 / t.elapsed().as_secs_f64());
    }
    pipe.run(&[single], Pooling::Mean, true).await?;
    let mut latencies = Vec::new();
    for _ in 0..latency_runs {
        let t = Instant::now();
        pipe.run(&[single], Pooling::Mean, true).await?;
        latencies.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let result = serde_json::json!({
        "device": pipe.device().describe(),
        "sentences": sentences.len(),
        "batch": batch,
        "sentences_per_s": (median(rates) * 10.0).round() / 10.0,
        "latency_ms": (median(latencies) * 100.0).round() / 100.0,
    });
    println!("{result}");
    Ok(())
}
