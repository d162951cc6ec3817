//! The `webformers` command line: run a pipeline task on a model from a folder or the Hub, or
//! benchmark one. Errors print one line on stderr and exit with status 1; nothing panics on bad
//! input.

mod progress;
mod speech_bench;

use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand};
use webformers::files::{DirFiles, ModelFiles};
use webformers::hub::{HfCache, Hub, HubOptions, NativeHub, UreqTransport};
use webformers::tasks::feature_extraction::{self, FeatureExtraction, Pooling};
use webformers::tasks::text_generation::{self, TextGeneration};
use webformers::tasks::{self, Event, InputKind, LoadOptions, Output, Pipeline, TaskInfo};
use webformers::weights::Precision;
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
    /// Weight storage: auto (as stored), fp32, fp16, q8, q4 or q4f16 (linear layers quantized at
    /// load); per module: encoder_model=fp32,decoder_model_merged=q4.
    #[arg(long, default_value = "auto")]
    dtype: String,
    /// CPU threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
}

/// Shorthands for options of the call (`--options` says the same in JSON, and wins).
#[derive(clap::Args, Clone)]
struct OptionFlags {
    /// feature-extraction: none, mean or cls.
    #[arg(long)]
    pooling: Option<String>,
    /// feature-extraction: L2-normalize the embeddings.
    #[arg(long)]
    normalize: bool,
    /// text-generation: the most tokens to generate.
    #[arg(long)]
    max_new_tokens: Option<usize>,
    /// text-generation: send the text as one user message through the model's chat template.
    #[arg(long)]
    chat: bool,
    /// text-generation: sample instead of greedy decoding.
    #[arg(long)]
    do_sample: bool,
    #[arg(long)]
    temperature: Option<f32>,
    /// text-generation: sampling's top k; classification tasks: how many labels or answers.
    #[arg(long)]
    top_k: Option<usize>,
    #[arg(long)]
    top_p: Option<f32>,
    #[arg(long)]
    repetition_penalty: Option<f32>,
    #[arg(long)]
    seed: Option<u64>,
    /// text-generation: stop before this string (repeatable).
    #[arg(long)]
    stop: Vec<String>,
    /// automatic-speech-recognition: report progress on stderr even when it is not a terminal
    /// (a terminal always gets a progress bar).
    #[arg(long)]
    progress: bool,
}

impl OptionFlags {
    /// The flags given, as options named as transformers.js names them.
    fn to_options(&self) -> serde_json::Map<String, serde_json::Value> {
        use serde_json::json;
        let mut o = serde_json::Map::new();
        let mut put = |key: &str, value: Option<serde_json::Value>| {
            if let Some(v) = value {
                o.insert(key.to_string(), v);
            }
        };
        put("pooling", self.pooling.as_ref().map(|p| json!(p)));
        put("normalize", self.normalize.then(|| json!(true)));
        put("max_new_tokens", self.max_new_tokens.map(|n| json!(n)));
        put("do_sample", self.do_sample.then(|| json!(true)));
        put("temperature", self.temperature.map(|t| json!(t)));
        put("top_k", self.top_k.map(|k| json!(k)));
        put("top_p", self.top_p.map(|p| json!(p)));
        put("repetition_penalty", self.repetition_penalty.map(|r| json!(r)));
        put("seed", self.seed.map(|s| json!(s)));
        put("stop", (!self.stop.is_empty()).then(|| json!(self.stop)));
        o
    }
}

#[derive(Subcommand)]
enum Command {
    /// Run a task: `webformers run TASK --model M [--input JSON] [--options JSON] [TEXT...]`.
    /// TASK is any pipeline task (`webformers run list` names them).
    Run {
        task: String,
        #[command(flatten)]
        model: ModelArgs,
        /// The first argument of the transformers.js call, as JSON: a string, an array of
        /// strings, {"question": ..., "context": ...}, {"text": ..., "text_pair": ...}, messages;
        /// an image or audio file's path (or URL), or an array of them.
        #[arg(long)]
        input: Option<String>,
        /// The second argument, as JSON: {"top_k": 3}, {"candidate_labels": ["a", "b"]}, ...
        #[arg(long)]
        options: Option<String>,
        /// Print exactly the JSON value the JS pipeline resolves to, and nothing else on stdout.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        flags: OptionFlags,
        /// Shorthand for --input: one text is a string, several an array of strings (a
        /// text-generation prompt: the words joined).
        texts: Vec<String>,
    },
    /// Chat with a text-generation model: each line read from stdin is a user turn; the reply
    /// streams to stdout and the turn's stats (prompt tokens, those continued from the kept KV
    /// cache, time to first token, tokens/s) go to stderr. An empty line or EOF ends.
    Chat {
        #[command(flatten)]
        model: ModelArgs,
        /// A system message first.
        #[arg(long)]
        system: Option<String>,
        /// Each turn's call options, as JSON: {"tools": [...], "chat_template_kwargs":
        /// {"enable_thinking": false}, "max_new_tokens": 256, ...}.
        #[arg(long)]
        options: Option<String>,
    },
    /// Measure a task. feature-extraction and text-generation have their own workloads (a
    /// corpus's throughput and one sentence's latency; prefill and decode speed). Any task:
    /// `--input JSON [--options JSON]` times one call (median latency of `--reps` calls after
    /// warm-up calls), and `--corpus FILE --batch N` times passes over the corpus's sentences, the
    /// input of each call an array of `N` of them (sentences/s, median of `--reps` passes after
    /// one warm-up pass); both may be given.
    Bench {
        task: String,
        #[command(flatten)]
        model: ModelArgs,
        /// A JSON file {"sentences": [...], "single": "..."} (feature-extraction: default
        /// bench/corpus.json).
        #[arg(long)]
        corpus: Option<String>,
        /// Any task but feature-extraction and text-generation: the call's first argument, as
        /// `webformers run --input` takes it.
        #[arg(long)]
        input: Option<String>,
        /// Any task but feature-extraction and text-generation: the call's second argument.
        #[arg(long)]
        options: Option<String>,
        /// text-generation: prompt tokens for the prefill measurement.
        #[arg(long, default_value_t = 128)]
        prompt_tokens: usize,
        /// text-generation: decoded tokens per measurement.
        #[arg(long, default_value_t = 64)]
        decode_tokens: usize,
        /// Sentences per call over the corpus.
        #[arg(long, default_value_t = 32)]
        batch: usize,
        /// Timed passes over the corpus (after one warm-up); with --input, timed calls.
        #[arg(long, default_value_t = 5)]
        reps: usize,
        /// feature-extraction: timed single-sentence calls.
        #[arg(long, default_value_t = 50)]
        latency_runs: usize,
        /// Untimed calls before the timed ones (--input).
        #[arg(long, default_value_t = 3)]
        warmup: usize,
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

/// The device `prepare` opened last, for `with_fallback` to judge a failed load by.
static OPENED: std::sync::Mutex<Option<Device>> = std::sync::Mutex::new(None);

/// Threads, dtype and device from the flags (the CPU when `cpu`: a fallback); says on stderr
/// which device runs.
async fn prepare(args: &ModelArgs, cpu: bool) -> Result<(Device, LoadOptions)> {
    if let Some(n) = args.threads {
        webformers::cpu::set_threads(n)?;
    }
    let choice: DeviceChoice = if cpu { DeviceChoice::Cpu } else { args.device.parse()? };
    let dtype = Precision::parse(&args.dtype)?;
    let (device, fallback) = Device::select(choice, GpuOptions::from_env()).await?;
    match fallback {
        Some(why) => eprintln!("device: {} (no GPU: {why})", device.describe()),
        None => eprintln!("device: {}", device.describe()),
    }
    *OPENED.lock().unwrap_or_else(|p| p.into_inner()) = Some(device.clone());
    Ok((device, LoadOptions { dtype }))
}

/// Runs `open` (false: on the device the flags choose); under `--device auto`, a load the GPU
/// failed for its own fault (out of memory, lost, over a limit) runs again on the CPU, saying why.
async fn with_fallback<T, F, Fut>(args: &ModelArgs, open: F) -> Result<T>
where
    F: Fn(bool) -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let e = match open(false).await {
        Err(e) => e,
        done => return done,
    };
    let choice: DeviceChoice = args.device.parse()?;
    // Taken, so the GPU's memory goes with the failed load before the CPU load starts.
    let opened = OPENED.lock().unwrap_or_else(|p| p.into_inner()).take();
    match opened.and_then(|device| device.fallback(choice, &e)) {
        Some((_, note)) => {
            eprintln!("device: {note}; loading on the CPU instead");
            open(true).await
        }
        None => Err(e),
    }
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
    Hub::new(UreqTransport::from_env(), HfCache::from_env(), options)
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
async fn open_files(args: &ModelArgs, task: &TaskInfo, cpu: bool) -> Result<(Box<dyn ModelFiles>, Device, LoadOptions)> {
    let repo = match model_ref(args)? {
        ModelRef::Path(path) => {
            let files = DirFiles::open(path)?;
            let (device, options) = prepare(args, cpu).await?;
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
    let (device, options) = prepare(args, cpu).await?;
    let t = Instant::now();
    let files = model.load(&task.files(), &device).await?;
    loaded(&bars, &repo, files.commit(), t);
    Ok((Box::new(files), device, options))
}

async fn open(args: &ModelArgs) -> Result<FeatureExtraction> {
    with_fallback(args, |cpu| async move {
        let (files, device, options) = open_files(args, &feature_extraction::TASK, cpu).await?;
        FeatureExtraction::load(files.as_ref(), &device, &options)
    })
    .await
}

async fn open_generator(args: &ModelArgs) -> Result<TextGeneration> {
    with_fallback(args, |cpu| open_generator_on(args, cpu)).await
}

async fn open_generator_on(args: &ModelArgs, cpu: bool) -> Result<TextGeneration> {
    match model_ref(args)? {
        ModelRef::Path(path) if args.model.ends_with(".gguf") => {
            let file = webformers::weights::gguf::GgufFile::open(path)?;
            let (device, options) = prepare(args, cpu).await?;
            TextGeneration::load_gguf(file, &device, &options)
        }
        ModelRef::HubFile { repo, file } => {
            let bars = progress::Bars::new();
            let hub = hub_client(&bars);
            let model = hub.model(&repo, args.revision.as_deref())?;
            let t = Instant::now();
            let gguf = model.gguf(&file).await.map_err(not_here)?;
            loaded(&bars, &format!("{repo}/{file}"), &model.pinned().unwrap_or_default(), t);
            let (device, options) = prepare(args, cpu).await?;
            TextGeneration::load_gguf(gguf, &device, &options)
        }
        _ => {
            let (files, device, options) = open_files(args, &text_generation::TASK, cpu).await?;
            TextGeneration::load(files.as_ref(), &device, &options)
        }
    }
}

/// Any task's pipeline (text-generation also from a GGUF file).
async fn open_pipeline(args: &ModelArgs, task: &'static TaskInfo) -> Result<Box<dyn Pipeline>> {
    if std::ptr::eq(task, &text_generation::TASK) {
        return Ok(Box::new(open_generator(args).await?));
    }
    with_fallback(args, |cpu| async move {
        let (files, device, options) = open_files(args, task, cpu).await?;
        (task.load)(files.as_ref(), &device, &options)
    })
    .await
}

/// The call's first argument: `--input` JSON, else the positional texts (one is a string, more
/// an array; a prompt's words are joined), as a chat message with `--chat`.
fn call_input(task: &TaskInfo, input: Option<&str>, texts: &[String], chat: bool) -> Result<serde_json::Value> {
    use serde_json::{Value, json};
    let value = match (input, texts) {
        (Some(_), [_, ..]) => {
            return Err(webformers::Error::Input("give the input either with --input or as TEXT arguments, not both".into()));
        }
        (Some(json), []) => parse_json("--input", json)?,
        (None, []) => return Err(webformers::Error::Input(format!("{} needs an input: TEXT arguments or --input JSON", task.name))),
        (None, texts) if task.input == InputKind::TextOrChat => Value::String(texts.join(" ")),
        (None, [one]) => Value::String(one.clone()),
        (None, texts) => json!(texts),
    };
    Ok(match value {
        Value::String(text) if chat => json!([{ "role": "user", "content": text }]),
        other => other,
    })
}

fn parse_json(flag: &str, text: &str) -> Result<serde_json::Value> {
    serde_json::from_str(text).map_err(|e| webformers::Error::Input(format!("{flag} is not valid JSON ({e}): {text}")))
}

/// `webformers chat`: a conversation kept as messages; each turn renders the whole chat again,
/// and the pipeline continues from the KV cache of the turn before (only the new tokens run).
async fn chat(model: &ModelArgs, system: Option<String>, options: Option<&str>) -> Result<()> {
    use std::io::{BufRead, Write};
    let options = match options.map(|o| parse_json("--options", o)).transpose()? {
        None => serde_json::json!({}),
        Some(v @ serde_json::Value::Object(_)) => v,
        Some(other) => return Err(webformers::Error::Input(format!("--options must be a JSON object, not {other}"))),
    };
    let pipe = open_pipeline(model, &text_generation::TASK).await?;
    let mut messages: Vec<serde_json::Value> = system.into_iter().map(|s| serde_json::json!({"role": "system", "content": s})).collect();
    let stdin = std::io::stdin();
    let mut stdout = std::io::stdout();
    for line in stdin.lock().lines() {
        let line = line.map_err(|e| webformers::Error::Input(format!("reading stdin: {e}")))?;
        if line.trim().is_empty() {
            break;
        }
        messages.push(serde_json::json!({"role": "user", "content": line}));
        let out = pipe
            .run_json(&serde_json::Value::Array(messages.clone()), &options, &mut |event| {
                if let Event::Text(piece) = event {
                    let _ = write!(stdout, "{piece}");
                    let _ = stdout.flush();
                }
            })
            .await?
            .to_json();
        println!();
        let result = &out[0];
        messages = result["generated_text"].as_array().cloned().unwrap_or_default();
        let stats = &result["stats"];
        eprintln!(
            "[{} prompt tokens, {} from the kept cache; {:.0} ms to the first token; {} new tokens, {:.1} tokens/s]",
            stats["prompt_tokens"],
            stats["prompt_tokens_reused"],
            stats["time_to_first_token"].as_f64().unwrap_or(0.0) * 1000.0,
            stats["new_tokens"],
            stats["tokens_per_second"].as_f64().unwrap_or(0.0),
        );
    }
    Ok(())
}

/// `webformers run`: one path for every task. With `--json`, stdout holds exactly the value the
/// JS pipeline resolves to; without, a readable rendering (text-generation streams its text).
async fn run_task(
    task: &str,
    model: &ModelArgs,
    input: Option<&str>,
    options: Option<&str>,
    json: bool,
    flags: &OptionFlags,
    texts: &[String],
) -> Result<()> {
    use std::io::Write;
    let task = tasks::task(task)?;
    // Everything about the call is checked before the model loads.
    let input = call_input(task, input, texts, flags.chat)?;
    let mut call_options = flags.to_options();
    match options.map(|o| parse_json("--options", o)).transpose()? {
        None => {}
        Some(serde_json::Value::Object(given)) => call_options.extend(given),
        Some(other) => return Err(webformers::Error::Input(format!("--options must be a JSON object, not {other}"))),
    }
    let call_options = serde_json::Value::Object(call_options);
    let pipe = open_pipeline(model, task).await?;
    let mut stdout = std::io::stdout();
    // Generated text (a reply, a transcript, a translation) is shown as it comes: whatever task
    // reports text streams it.
    let mut streamed = false;
    let bar = progress::TaskBar::new(flags.progress);
    let out = pipe
        .run_json(&input, &call_options, &mut |event| match event {
            Event::Text(piece) if !json => bar.suspend(|| {
                streamed = true;
                // A closed pipe must not abort generation with a panic.
                let _ = write!(stdout, "{piece}");
                let _ = stdout.flush();
            }),
            Event::Progress { done, total, unit } => bar.update(done, total, unit),
            Event::Warning(message) => bar.suspend(|| eprintln!("warning: {message}")),
            _ => {}
        })
        .await;
    bar.finish();
    let out = out?;
    let value = out.to_json();
    let streams = streamed || matches!(task.input, InputKind::TextOrChat | InputKind::Audio);
    if json {
        println!("{value}");
    } else if streams {
        println!();
        // Several texts (or beams' num_return_sequences) stream one after another: show each
        // result apart too.
        let many = value.as_array().is_some_and(|a| a.len() > 1);
        if many && task.input == InputKind::Text {
            println!("{}", serde_json::to_string_pretty(&value).unwrap_or_default());
        }
        // A transcript's timestamped chunks, one a line.
        for result in value.as_array().map_or(vec![&value], |a| a.iter().collect()) {
            for chunk in result["chunks"].as_array().into_iter().flatten() {
                let at = |i: usize| chunk["timestamp"][i].as_f64().map_or("?".to_string(), |t| format!("{t:.2}"));
                println!("[{} -> {}] {}", at(0), at(1), chunk["text"].as_str().unwrap_or(""));
            }
        }
    } else {
        match &out {
            Output::Tensor { dims, data } => print_embeddings(&input, dims, data),
            Output::Json(v) => println!("{}", serde_json::to_string_pretty(v).unwrap_or_default()),
        }
    }
    if let Some(stats) = value.get(0).and_then(|first| first.get("stats")) {
        let reused = stats["prompt_tokens_reused"].as_u64().unwrap_or(0);
        eprintln!(
            "{} prompt tokens{} in {:.0} ms (time to first token), {} new tokens ({}), {:.1} s decoding, {:.1} tokens/s",
            stats["prompt_tokens"],
            if reused > 0 { format!(" ({reused} from the kept cache)") } else { String::new() },
            stats["time_to_first_token"].as_f64().or(stats["prefill_seconds"].as_f64()).unwrap_or(0.0) * 1000.0,
            stats["new_tokens"],
            stats["stop_reason"].as_str().unwrap_or(""),
            stats["decode_seconds"].as_f64().unwrap_or(0.0),
            stats["tokens_per_second"].as_f64().unwrap_or(0.0),
        );
    }
    Ok(())
}

async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Run { task, model, input, options, json, flags, texts } => {
            run_task(&task, &model, input.as_deref(), options.as_deref(), json, &flags, &texts).await
        }
        Command::Chat { model, system, options } => chat(&model, system, options.as_deref()).await,
        Command::Bench { task, model, corpus, input, options, prompt_tokens, decode_tokens, batch, reps, latency_runs, warmup } => {
            if task == "speech-model" {
                // A speech encoder-decoder alone (no task): encoder and decoder step times.
                return speech_bench::bench_model(&model, input.as_deref(), reps).await;
            }
            let task = tasks::task(&task)?;
            let own_workload = std::ptr::eq(task, &feature_extraction::TASK) || std::ptr::eq(task, &text_generation::TASK);
            if own_workload && (input.is_some() || options.is_some()) {
                return Err(webformers::Error::Input(format!("{}'s benchmark has its own workload: no --input or --options", task.name)));
            }
            if std::ptr::eq(task, &feature_extraction::TASK) {
                let pipe = open(&model).await?;
                bench(&pipe, corpus.as_deref().unwrap_or("bench/corpus.json"), batch, reps, latency_runs).await
            } else if std::ptr::eq(task, &text_generation::TASK) {
                bench_generation(&model, prompt_tokens, decode_tokens, reps).await
            } else {
                let spec =
                    TaskBench { input: input.as_deref(), options: options.as_deref(), corpus: corpus.as_deref(), batch, reps, warmup };
                bench_task(task, &model, &spec).await
            }
        }
    }
}

/// What `webformers bench TASK` measures for a task without a workload of its own.
struct TaskBench<'a> {
    input: Option<&'a str>,
    options: Option<&'a str>,
    corpus: Option<&'a str>,
    batch: usize,
    reps: usize,
    warmup: usize,
}

/// Any task through `Pipeline::run`: the latency of one call on `--input`, and the throughput of
/// calls on batches of `--corpus` sentences. Prints one JSON line.
async fn bench_task(task: &'static TaskInfo, args: &ModelArgs, spec: &TaskBench<'_>) -> Result<()> {
    use serde_json::{Value, json};
    if spec.input.is_none() && spec.corpus.is_none() {
        return Err(webformers::Error::Input(format!(
            "the {} benchmark needs --input JSON (latency of one call), --corpus FILE (throughput), or both",
            task.name
        )));
    }
    if spec.reps == 0 || spec.batch == 0 {
        return Err(webformers::Error::Input("--reps and --batch must be positive".into()));
    }
    // Everything given is checked before the model loads.
    let input = spec.input.map(|i| parse_json("--input", i)).transpose()?;
    let options = match spec.options.map(|o| parse_json("--options", o)).transpose()? {
        None => Value::Object(Default::default()),
        Some(o @ Value::Object(_)) => o,
        Some(other) => return Err(webformers::Error::Input(format!("--options must be a JSON object, not {other}"))),
    };
    let sentences: Vec<Value> = match spec.corpus {
        None => Vec::new(),
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| webformers::Error::Input(format!("{path}: {e}")))?;
            let corpus: Value = serde_json::from_str(&text).map_err(|e| webformers::Error::Input(format!("{path}: {e}")))?;
            let sentences: Vec<Value> = corpus["sentences"].as_array().into_iter().flatten().filter(|v| v.is_string()).cloned().collect();
            if sentences.is_empty() {
                return Err(webformers::Error::Input(format!("{path}: no \"sentences\" (an array of strings)")));
            }
            sentences
        }
    };
    let started = Instant::now();
    let pipe = open_pipeline(args, task).await?;
    let load_s = started.elapsed().as_secs_f64();
    let mut result = json!({
        "task": task.name,
        "model": args.model,
        "device": pipe.device().describe(),
        "threads": webformers::cpu::threads(),
        "load_s": (load_s * 100.0).round() / 100.0,
    });
    let (pipe, options) = (&pipe, &options);
    let call = |input: Value| async move { pipe.run_json(&input, options, &mut |_| {}).await };
    if !sentences.is_empty() {
        let batches: Vec<Value> = sentences.chunks(spec.batch).map(|c| Value::Array(c.to_vec())).collect();
        let pass = || async {
            for b in &batches {
                call(b.clone()).await?;
            }
            Ok::<(), webformers::Error>(())
        };
        pass().await?; // warm-up: weights packed, buffers pooled, GPU pipelines compiled
        let mut rates = Vec::new();
        for _ in 0..spec.reps {
            let t = Instant::now();
            pass().await?;
            rates.push(sentences.len() as f64 / t.elapsed().as_secs_f64());
        }
        result["sentences"] = sentences.len().into();
        result["batch"] = spec.batch.into();
        result["passes"] = spec.reps.into();
        result["sentences_per_s"] = ((median(rates) * 10.0).round() / 10.0).into();
    }
    if let Some(input) = input {
        let mut output = Value::Null;
        // A text-to-text task's generated token ids (Event::Tokens) of the last warm-up call, so
        // that a benchmark can check them against another runtime's (texts decoded from random
        // weights say little).
        let mut token_ids: Vec<u32> = Vec::new();
        for _ in 0..spec.warmup.max(1) {
            token_ids.clear();
            let mut events = |e: Event<'_>| {
                if let Event::Tokens(ids) = e {
                    token_ids.extend_from_slice(ids)
                }
            };
            output = pipe.run_json(&input, options, &mut events).await?.to_json();
        }
        let mut latencies = Vec::new();
        for _ in 0..spec.reps {
            let t = Instant::now();
            call(input.clone()).await?;
            latencies.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        let min = latencies.iter().copied().fold(f64::INFINITY, f64::min);
        let latency = median(latencies);
        result["calls"] = spec.reps.into();
        result["latency_ms"] = ((latency * 100.0).round() / 100.0).into();
        result["latency_ms_min"] = ((min * 100.0).round() / 100.0).into();
        if matches!(task.input, InputKind::Image | InputKind::ImageWithLabels) {
            // Images per call: an array of them, or one.
            let images = input.as_array().map_or(1, Vec::len);
            result["images"] = images.into();
            result["images_per_s"] = ((images as f64 / (latency / 1000.0) * 100.0).round() / 100.0).into();
            if let Some((decode_ms, preprocess_ms)) = time_image_preprocessing(task, &args.model, &input, spec.reps)? {
                result["decode_ms"] = ((decode_ms * 100.0).round() / 100.0).into();
                result["preprocess_ms"] = ((preprocess_ms * 100.0).round() / 100.0).into();
            }
        }
        if matches!(task.input, InputKind::Audio) {
            // Real-time factor: audio seconds per second of the call; then the model's encoder
            // and decoder timed apart (speech_bench).
            let audio_s: f64 = match tasks::Input::json(&input).audios(16000)? {
                tasks::OneOrMany::One(a) => a.duration_seconds(),
                tasks::OneOrMany::Many(v) => v.iter().map(|a| a.duration_seconds()).sum(),
            };
            result["audio_s"] = ((audio_s * 100.0).round() / 100.0).into();
            result["rtf"] = ((audio_s / (latency / 1000.0) * 100.0).round() / 100.0).into();
            if let Value::Object(timing) = speech_bench::time_model(args, &input, spec.reps, true).await? {
                result.as_object_mut().expect("an object").extend(timing);
            }
        }
        if task.input == InputKind::Text && !token_ids.is_empty() {
            result["new_tokens"] = token_ids.len().into();
            result["output_token_ids"] = token_ids.into();
        }
        result["output"] = output;
    }
    println!("{result}");
    Ok(())
}

/// An image task's preprocessing alone, as its call does it, median milliseconds of (decoding the
/// input's images, the model's image processor making pixel_values of them), so that a benchmark
/// can report it apart from the call; `None` when the model is not a local folder with a
/// preprocessor_config.json.
fn time_image_preprocessing(task: &TaskInfo, model: &str, input: &serde_json::Value, reps: usize) -> Result<Option<(f64, f64)>> {
    let path = std::path::Path::new(model).join("preprocessor_config.json");
    let Ok(text) = std::fs::read_to_string(&path) else { return Ok(None) };
    let config =
        serde_json::from_str(&text).map_err(|e| webformers::Error::File { path: path.display().to_string(), msg: e.to_string() })?;
    let processor = webformers::image::ImageProcessor::from_json(&config)?;
    let (mut decode, mut process) = (Vec::new(), Vec::new());
    for _ in 0..reps.max(3) {
        let t = Instant::now();
        let (images, _) = tasks::Input::json(input).images(task.name)?;
        decode.push(t.elapsed().as_secs_f64() * 1000.0);
        let t = Instant::now();
        processor.process(&images)?;
        process.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(Some((median(decode), median(process))))
}

/// Prefill and decode speed of a decoder: a GGUF file, a model folder, or
/// `synthetic:llama-3.2-1b:<q4_0|q4_k|...>` (random weights with Llama 3.2 1B's shapes).
async fn bench_generation(args: &ModelArgs, prompt_tokens: usize, decode_tokens: usize, reps: usize) -> Result<()> {
    use webformers::models::synthetic;
    let started = Instant::now();
    let (model, weight_bytes): (std::rc::Rc<dyn webformers::models::DecoderModel>, Option<u64>) =
        match args.model.strip_prefix("synthetic:") {
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
                let (device, options) = prepare(args, false).await?;
                let config = synthetic::llama_3_2_1b();
                let bytes = synthetic::weight_bytes_per_token(&config, dtype);
                (synthetic::llama(config, dtype, &device, 7, options.dtype.main)?.into(), Some(bytes))
            }
            None => (open_generator(args).await?.into_model(), None),
        };
    let load_seconds = started.elapsed().as_secs_f64();
    let vocab = model.vocab_size() as u32;
    let prompt: Vec<u32> = (0..prompt_tokens as u32).map(|i| (i * 7919 + 13) % vocab).collect();
    let mut prefill = Vec::new();
    let mut decode = Vec::new();
    let mut dispatches_per_token = 0.0;
    let mut bind_groups_per_token = 0.0;
    let mut cache_bytes = 0;
    for rep in 0..reps.max(1) + 1 {
        let mut cache = model.new_cache(prompt_tokens + decode_tokens + 1)?;
        cache_bytes = cache.bytes();
        let t = Instant::now();
        let mut next = model.forward(&prompt, &mut cache, false)?.argmax()?.to_vec_u32().await?[0];
        let prefill_s = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let dispatched = webformers::gpu::dispatches_submitted();
        let bound = webformers::gpu::bind_groups_created();
        for _ in 0..decode_tokens {
            next = model.forward(&[next], &mut cache, false)?.argmax()?.to_vec_u32().await?[0];
        }
        let decode_s = t.elapsed().as_secs_f64();
        dispatches_per_token = (webformers::gpu::dispatches_submitted() - dispatched) as f64 / decode_tokens.max(1) as f64;
        bind_groups_per_token = (webformers::gpu::bind_groups_created() - bound) as f64 / decode_tokens.max(1) as f64;
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
        // All rows of the cache the run allocates (f16 under --dtype fp16 on a GPU with shader-f16).
        "kv_cache_bytes": cache_bytes,
    });
    if dispatches_per_token > 0.0 {
        result["gpu_dispatches_per_token"] = dispatches_per_token.round().into();
        // Bind groups made per decode step: 0 once the first step's are cached (gpu/run.rs).
        result["gpu_bind_groups_per_token"] = ((bind_groups_per_token * 100.0).round() / 100.0).into();
    }
    if let Some(bytes) = weight_bytes {
        result["weight_bytes_per_token"] = bytes.into();
        result["weight_read_gb_per_s"] = ((bytes as f64 * decode_rate / 1e9) * 10.0).round().mul_add(0.1, 0.0).into();
    }
    println!("{result}");
    Ok(())
}

/// Embeddings as a few numbers per text and, for several texts, their cosine similarities.
fn print_embeddings(input: &serde_json::Value, dims: &[usize], data: &[f32]) {
    let texts: Vec<&str> = match input {
        serde_json::Value::String(s) => vec![s.as_str()],
        serde_json::Value::Array(items) => items.iter().map(|t| t.as_str().unwrap_or("")).collect(),
        _ => Vec::new(),
    };
    let out = webformers::tasks::feature_extraction::Embeddings { dims: dims.to_vec(), data: data.to_vec() };
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
