//! The native engine in Node: a Node-API addon over webformers-core, with the same task surface
//! as the wasm build's `TaskPipeline` (any task of the registry, JSON in and out), so that the
//! npm package's `pipeline()` runs the native kernels (AVX-512 / AVX2 / NEON, rayon threads) and
//! wgpu's native GPU backends in Node, where it would otherwise run its WASM build.
//!
//! A loaded task is not `Send` (its futures are local, as wasm needs), so each pipeline lives on
//! a thread of its own and takes its loads and runs from a channel, one at a time; the JS thread
//! never blocks: every call returns a promise, settled from that thread through Node-API's
//! thread-safe deferreds.

use std::collections::HashMap;
use std::sync::{Arc, mpsc};

mod model;

use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;
use serde_json::Value;
use webformers::audio::RawAudio;
use webformers::files::{DirFiles, ModelFiles};
use webformers::generation::Interrupt;
use webformers::hub::{HfCache, Hub, HubOptions, ProgressEvent, UreqTransport};
use webformers::image::RawImage;
use webformers::models::auto::AutoModel;
use webformers::tasks::text_generation::TextGeneration;
use webformers::tasks::{self, Event, Input, LoadOptions, Media, Output, Pipeline};
use webformers::weights::Precision;
use webformers::weights::gguf::GgufFile;
use webformers::{Device, DeviceChoice, GpuOptions};

/// An engine error as a JS `Error` whose `code` is the engine's (`webformers::Error::code`),
/// as the wasm build throws them.
fn js_error(e: webformers::Error) -> Error<String> {
    Error::new(e.code().to_string(), e.to_string())
}

/// A task's name, default model, files and input kind, as the wasm build's `taskFiles`.
#[napi(js_name = "taskFiles")]
pub fn task_files(task: String) -> Result<Value, String> {
    let task = tasks::task(&task).map_err(js_error)?;
    Ok(task.files_json(task.loads_gguf()))
}

/// Sets the CPU threads the kernels use (rayon's pool): once, before the first pipeline runs.
/// Without it, every core is used.
#[napi(js_name = "setThreads")]
pub fn set_threads(threads: u32) -> Result<(), String> {
    webformers::cpu::set_threads(threads as usize).map_err(js_error)
}

/// The CPU features the kernels picked and the thread count, for the pipeline's `adapter`.
#[napi(js_name = "cpuDescription")]
pub fn cpu_description() -> String {
    Device::Cpu.describe()
}

/// What a pipeline's thread is asked to do; each answers through its deferred (a promise the JS
/// side holds).
enum Job {
    Run {
        input: Value,
        options: Value,
        media: Vec<Media>,
        events: Option<EventSink>,
        reply: Deferred<RunOutput>,
    },
    Call {
        method: String,
        args: Value,
        reply: Deferred<Value>,
    },
    /// Makes model `id` over the pipeline's weights (`pipe.model`).
    MakeModel {
        id: u32,
    },
    Model {
        id: u32,
        op: model::ModelOp,
    },
    DropModel {
        id: u32,
    },
}

type Deferred<T> = napi::JsDeferred<T, Box<dyn FnOnce(Env) -> Result<T> + Send>>;
type EventSink = ThreadsafeFunction<Value, (), Value, Status, false>;

/// A run's result: JSON, or a tensor as `{dims, data: Float32Array}` (what the wasm build gives).
#[napi(object)]
pub struct TensorOutput {
    pub dims: Vec<u32>,
    pub data: Float32Array,
}

pub type RunOutput = Either<Value, TensorOutput>;

/// One binary part of a call's input, as native.js hands it over: a file's bytes (`bytes`: an
/// image or audio file the engine decodes), decoded pixels (`width`, `height`, `channels`,
/// `pixels`: the npm package's `RawImage`), or mono samples (`samples`, `samplingRate`: its
/// `RawAudio`). The JSON input names item `i` as `{"$media": i}`.
#[napi(object)]
pub struct MediaItem {
    pub bytes: Option<Uint8Array>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub channels: Option<u32>,
    pub pixels: Option<Uint8Array>,
    pub samples: Option<Float32Array>,
    pub sampling_rate: Option<u32>,
}

impl MediaItem {
    fn into_media(self, i: usize) -> webformers::Result<Media> {
        let bad = |what: String| webformers::Error::Input(format!("media item {i}: {what}"));
        let inner = |e: webformers::Error| match e {
            webformers::Error::Input(message) => bad(message),
            other => other,
        };
        if let Some(bytes) = self.bytes {
            if bytes.is_empty() {
                return Err(bad("the encoded file is empty (0 bytes)".into()));
            }
            return Ok(Media::Encoded(bytes.to_vec()));
        }
        if let (Some(samples), Some(rate)) = (self.samples, self.sampling_rate) {
            return RawAudio::new(samples.to_vec(), rate).map(Media::Audio).map_err(inner);
        }
        match (self.width, self.height, self.channels, self.pixels) {
            (Some(w), Some(h), Some(c), Some(pixels)) => {
                RawImage::new(w as usize, h as usize, c as usize, pixels.to_vec()).map(Media::Image).map_err(inner)
            }
            _ => Err(bad("expected file bytes, {width, height, channels, pixels} or {samples, samplingRate}".into())),
        }
    }
}

/// A task loaded on the native engine. Made by `loadPipeline`; dropping it (JS garbage
/// collection) closes its channel, and its thread ends after the job in hand.
#[napi]
pub struct NativePipeline {
    /// None once disposed. The models made from it hold senders of their own, which keep the
    /// thread (and the weights) while they live.
    jobs: Jobs,
    task: String,
    device: String,
    info: Value,
    /// Set from the JS thread while a run holds the pipeline's thread (an AbortSignal, an
    /// InterruptableStoppingCriteria): `call("interrupt")` lands mid-run.
    interrupt: Option<Interrupt>,
    /// What `model()` makes, or why it cannot.
    model: std::result::Result<model::ModelFacts, Error<String>>,
    models_made: std::sync::atomic::AtomicU32,
}

/// Where a model comes from: a folder (`dir`), or a Hub repository (`repo`) fetched into the
/// huggingface_hub cache at `cacheDir` from `endpoint` (the npm package's `env.remoteHost`,
/// `env.accessToken`, `env.cacheDir`), memory-mapped from there.
#[napi(object)]
pub struct ModelSource {
    pub dir: Option<String>,
    pub repo: Option<String>,
    pub revision: Option<String>,
    pub endpoint: Option<String>,
    pub token: Option<String>,
    pub cache_dir: Option<String>,
    /// Only what the cache holds: no request is made.
    pub offline: Option<bool>,
    /// A .gguf file in the folder or repository: the model is that one file (text-generation).
    pub file: Option<String>,
}

/// What a pipeline or model is loaded from.
enum Opened {
    Files(Box<dyn ModelFiles>),
    Gguf(Box<GgufFile>),
}

/// The model's files (`files`: what besides the weights the load reads), from its folder or
/// from the Hub, or its one .gguf file (blocking: this runs on the pipeline's thread). Hub
/// downloads report to `progress`.
fn open_source(source: &ModelSource, files: &[&str], device: &Device, progress: Option<ProgressSink>) -> webformers::Result<Opened> {
    if let Some(dir) = &source.dir {
        return Ok(match &source.file {
            Some(file) => Opened::Gguf(Box::new(GgufFile::open(std::path::Path::new(dir).join(file))?)),
            None => Opened::Files(Box::new(DirFiles::open(dir)?)),
        });
    }
    let Some(repo) = &source.repo else {
        return Err(webformers::Error::Input("the model source names neither a folder (`dir`) nor a Hub repository (`repo`)".into()));
    };
    let mut options = HubOptions::from_env();
    if let Some(sink) = progress {
        // Delivered as a run's events are: in order, and before the load's promise settles.
        options.progress = Some(Arc::new(move |event: &ProgressEvent| deliver(&sink, event.to_json())));
    }
    if let Some(endpoint) = &source.endpoint {
        options.endpoint = endpoint.trim_end_matches('/').to_string();
    }
    if source.token.is_some() {
        options.token = source.token.clone();
    }
    options.offline |= source.offline.unwrap_or(false);
    let cache = source.cache_dir.as_ref().map_or_else(HfCache::from_env, HfCache::new);
    let hub = Hub::new(UreqTransport::from_env(), cache, options);
    let model = hub.model(repo, source.revision.as_deref())?;
    Ok(match &source.file {
        Some(file) => Opened::Gguf(Box::new(pollster::block_on(model.gguf(file))?)),
        None => Opened::Files(Box::new(pollster::block_on(model.load(files, device))?)),
    })
}

/// Task `task` from `source` on a device picked by `device` and `dtype`.
fn load_task(
    task: &str,
    source: &ModelSource,
    device: &str,
    dtype: &str,
    progress: Option<ProgressSink>,
) -> webformers::Result<Box<dyn Pipeline>> {
    let info = tasks::task(task)?;
    let (device, options) = open_device(device, dtype)?;
    match open_source(source, &info.files(), &device, progress)? {
        Opened::Files(files) => tasks::load(task, files.as_ref(), &device, &options),
        Opened::Gguf(file) if info.loads_gguf() => Ok(Box::new(TextGeneration::load_gguf(*file, &device, &options)?)),
        Opened::Gguf(_) => {
            Err(webformers::Error::Input(format!("{}: a .gguf file loads text-generation only; give a model folder", info.name)))
        }
    }
}

/// The device `device` ('cpu', 'gpu', 'auto') names, and the load options of `dtype`.
fn open_device(device: &str, dtype: &str) -> webformers::Result<(Device, LoadOptions)> {
    let choice: DeviceChoice = device.parse()?;
    let (device, _note) = pollster::block_on(Device::select(choice, GpuOptions::default()))?;
    // `..Default::default()`: options added to core later keep their defaults here.
    #[allow(clippy::needless_update)]
    let options = LoadOptions { dtype: Precision::parse(dtype)?, ..Default::default() };
    Ok((device, options))
}

/// What a load hands back to the JS thread.
struct Loaded {
    task: String,
    device: String,
    info: Value,
    interrupt: Option<Interrupt>,
    /// What `pipe.model` would be, or why there is none.
    model: std::result::Result<model::ModelFacts, Error<String>>,
}

/// Loads task `task` from `source` (a folder or a Hub repository) on `device` ('cpu', 'gpu' or
/// 'auto': wgpu's native backends, Vulkan, Metal or DX12) at `dtype` ('auto', 'fp32', 'q8', ...).
/// Resolves to a `NativePipeline`; rejects with the engine's error (`code` as the wasm build's).
#[napi(js_name = "loadPipeline")]
pub fn load_pipeline<'env>(
    env: &'env Env,
    task: String,
    source: ModelSource,
    device: String,
    dtype: String,
    on_progress: Option<Function<'env, Value, ()>>,
) -> Result<Object<'env>> {
    let progress = threadsafe(on_progress)?;
    let name = format!("webformers {task}");
    let load = move || {
        let pipeline = load_task(&task, &source, &device, &dtype, progress)?;
        let loaded = Loaded {
            task: pipeline.task().name.to_string(),
            device: if pipeline.device().is_gpu() { "gpu" } else { "cpu" }.to_string(),
            info: pipeline.info(),
            interrupt: pipeline.interrupt_flag(),
            model: pipeline.auto_model().map(|m| model::ModelFacts::of(&m)).map_err(js_error),
        };
        Ok((loaded, Some(pipeline), HashMap::new()))
    };
    load_on_thread(env, name, load, |jobs, Loaded { task, device, info, interrupt, model }| NativePipeline {
        jobs: std::sync::Mutex::new(Some(jobs)),
        task,
        device,
        info,
        interrupt,
        model,
        models_made: 0.into(),
    })
}

/// Starts a thread that runs `load` (the facts JS reads, and what the thread then serves: see
/// `serve`), and resolves the promise it returns to `make(jobs, facts)`; a failed load or a
/// panic rejects it with the coded error. A second thread waits for the load, so that the JS
/// thread does not.
pub(crate) fn load_on_thread<'env, F, T>(
    env: &'env Env,
    name: String,
    load: impl FnOnce() -> webformers::Result<(F, Option<Box<dyn Pipeline>>, HashMap<u32, AutoModel>)> + Send + 'static,
    make: impl FnOnce(mpsc::Sender<Job>, F) -> T + Send + 'static,
) -> Result<Object<'env>>
where
    F: Send + 'static,
    T: ToNapiValue + 'static,
{
    let (deferred, promise) = env.create_deferred::<T, Box<dyn FnOnce(Env) -> Result<T> + Send>>()?;
    let (ready_tx, ready_rx) = mpsc::channel::<std::result::Result<F, Error<String>>>();
    let (jobs, job_rx) = mpsc::channel::<Job>();
    let spawned = std::thread::Builder::new().name(name).spawn(move || {
        let loaded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(load));
        match loaded.map_err(panicked).and_then(|loaded| loaded.map_err(js_error)) {
            Ok((facts, pipeline, models)) => {
                let _ = ready_tx.send(Ok(facts));
                serve(pipeline, models, job_rx);
            }
            Err(e) => {
                let _ = ready_tx.send(Err(e));
            }
        }
    });
    if let Err(e) = spawned {
        deferred.reject(Error::from_reason(format!("could not start a thread for the load: {e}")));
        return Ok(promise);
    }
    std::thread::spawn(move || match ready_rx.recv() {
        Ok(Ok(facts)) => deferred.resolve(Box::new(move |_| Ok(make(jobs, facts)))),
        Ok(Err(e)) => deferred.reject(coded(e)),
        Err(_) => deferred.reject(Error::from_reason("the loading thread stopped")),
    });
    Ok(promise)
}

type ProgressSink = EventSink;

/// Calls JS's `sink` with `value` and waits until JS has taken it: events then reach JS in order
/// and before the promise of their run or load settles, and a slow consumer slows the run
/// instead of queueing without bound. (native.js wraps callbacks so that they never throw: a
/// throw inside a thread-safe call would end the process.)
fn deliver(sink: &EventSink, value: Value) {
    let (taken, wait) = mpsc::sync_channel::<()>(1);
    let status = sink.call_with_return_value(value, ThreadsafeFunctionCallMode::Blocking, move |_, _| {
        let _ = taken.send(());
        Ok(())
    });
    if status == Status::Ok {
        let _ = wait.recv();
    }
}

/// A JS callback (events, load progress) callable from the pipeline's thread.
fn threadsafe(callback: Option<Function<'_, Value, ()>>) -> Result<Option<EventSink>> {
    match callback {
        Some(f) => Ok(Some(f.build_threadsafe_function::<Value>().build().map_err(|e| Error::from_reason(e.reason.clone()))?)),
        None => Ok(None),
    }
}

/// A coded error carried where a deferred takes `Error<Status>`: the code goes first in the
/// message, before a NUL, and the JS side (native.js) splits it off again.
fn coded(e: Error<String>) -> Error {
    Error::new(Status::GenericFailure, format!("{}\u{0}{}", e.status, e.reason))
}

/// The thread of a pipeline or model: runs each job to its end, then the next; stops when the
/// JS objects are gone (the channel closes). A panic in a run rejects that run's promise
/// (natively it unwinds, unlike in wasm) and the thread takes the next job. `models` are the
/// models over the same weights (`pipe.model`, or the one `loadModel` made), by id.
fn serve(pipeline: Option<Box<dyn Pipeline>>, mut models: HashMap<u32, AutoModel>, jobs: mpsc::Receiver<Job>) {
    while let Ok(job) = jobs.recv() {
        match job {
            Job::Run { input, options, media, events, reply } => {
                let Some(pipeline) = &pipeline else { continue };
                let mut on_event = |event: Event<'_>| {
                    if let Some(sink) = &events {
                        deliver(sink, event.to_json());
                    }
                };
                let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    pollster::block_on(pipeline.run(Input { value: &input, media: &media }, &options, &mut on_event))
                }));
                match ran {
                    Ok(Ok(Output::Json(value))) => reply.resolve(Box::new(move |_| Ok(Either::A(value)))),
                    Ok(Ok(Output::Tensor { dims, data })) => reply.resolve(Box::new(move |_| {
                        let dims = dims.iter().map(|&d| d as u32).collect();
                        Ok(Either::B(TensorOutput { dims, data: Float32Array::new(data) }))
                    })),
                    Ok(Err(e)) => reply.reject(coded(js_error(e))),
                    Err(panic) => reply.reject(coded(panicked(panic))),
                }
            }
            Job::Call { method, args, reply } => {
                let Some(pipeline) = &pipeline else { continue };
                match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| pipeline.call(&method, &args))) {
                    Ok(Ok(value)) => reply.resolve(Box::new(move |_| Ok(value))),
                    Ok(Err(e)) => reply.reject(coded(js_error(e))),
                    Err(panic) => reply.reject(coded(panicked(panic))),
                }
            }
            Job::MakeModel { id } => {
                // It was made once at load (ModelFacts); a failure now leaves the id unknown,
                // and its calls say so.
                if let Some(Ok(model)) = pipeline.as_ref().map(|p| p.auto_model()) {
                    models.insert(id, model);
                }
            }
            Job::Model { id, op } => model::run(models.get(&id), op),
            Job::DropModel { id } => {
                models.remove(&id);
            }
        }
    }
}

/// A panic's message as an error with code 'panic' (the wasm build's code for one).
fn panicked(panic: Box<dyn std::any::Any + Send>) -> Error<String> {
    let msg = panic.downcast_ref::<String>().cloned().or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()));
    Error::new("panic".to_string(), format!("the engine panicked: {}", msg.unwrap_or_else(|| "(no message)".into())))
}

/// The sending end of a pipeline's or model's thread; None once disposed.
type Jobs = std::sync::Mutex<Option<mpsc::Sender<Job>>>;

/// Hands `job` to the thread; a disposed pipeline or model (`what`) rejects it at once. Every
/// deferred made must be settled: an unsettled one holds a thread-safe function that keeps
/// Node's event loop (and so the process) alive.
fn send(jobs: &Jobs, job: Job, what: &str) {
    let jobs = jobs.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let refused = match jobs.as_ref() {
        Some(jobs) => match jobs.send(job) {
            Ok(()) => return,
            Err(mpsc::SendError(job)) => job,
        },
        None => job,
    };
    let disposed = || coded(Error::new("input".to_string(), format!("this {what} was disposed")));
    match refused {
        Job::Run { reply, .. } => reply.reject(disposed()),
        Job::Call { reply, .. } => reply.reject(disposed()),
        Job::Model { op, .. } => op.reject(disposed()),
        Job::MakeModel { .. } | Job::DropModel { .. } => {}
    }
}

impl NativePipeline {
    fn send(&self, job: Job) {
        send(&self.jobs, job, "pipeline");
    }
}

#[napi]
impl NativePipeline {
    /// Lets the pipeline go: its thread ends after the job in hand, and the model's memory with
    /// it. Later calls reject.
    #[napi]
    pub fn dispose(&self) {
        self.jobs.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take();
    }

    /// The task's canonical name.
    #[napi(getter)]
    pub fn task(&self) -> String {
        self.task.clone()
    }

    /// 'cpu' or 'gpu': where the task runs.
    #[napi(getter)]
    pub fn device(&self) -> String {
        self.device.clone()
    }

    /// Facts about the loaded model (`{hidden_size}`, `{labels}`, ...), as the wasm build's `info()`.
    #[napi]
    pub fn info(&self) -> Value {
        self.info.clone()
    }

    /// Runs the task: `input` and `options` are the two arguments of the transformers.js call.
    /// `on_event` gets what the task reports while it runs (`Event::to_json`); `media` are the
    /// files `{"$media": i}` in the input stands for (image or audio file bytes, decoded here).
    #[napi]
    pub fn run<'env>(
        &self,
        env: &'env Env,
        input: Value,
        options: Option<Value>,
        on_event: Option<Function<'env, Value, ()>>,
        media: Option<Vec<MediaItem>>,
    ) -> Result<Object<'env>> {
        // What can fail here fails before the deferred exists (see `send`).
        let media =
            media.unwrap_or_default().into_iter().enumerate().map(|(i, item)| item.into_media(i)).collect::<webformers::Result<Vec<_>>>();
        let media = media.map_err(|e| coded(js_error(e)))?;
        let events = threadsafe(on_event)?;
        let (reply, promise) = env.create_deferred::<RunOutput, Box<dyn FnOnce(Env) -> Result<RunOutput> + Send>>()?;
        self.send(Job::Run { input, options: options.unwrap_or(Value::Null), media, events, reply });
        Ok(promise)
    }

    /// The task's own operation `method` (text-generation's `apply_chat_template`, ...) on
    /// `args`, after the run in flight; `interrupt` and `reset_interrupt` act at once, so that an
    /// interrupt lands mid-run.
    #[napi]
    pub fn call<'env>(&self, env: &'env Env, method: String, args: Option<Value>) -> Result<Object<'env>> {
        let (reply, promise) = env.create_deferred::<Value, Box<dyn FnOnce(Env) -> Result<Value> + Send>>()?;
        if let Some(value) = self.interrupt.as_ref().and_then(|flag| tasks::interrupt_method(flag, &method)) {
            reply.resolve(Box::new(|_| Ok(value)));
            return Ok(promise);
        }
        self.send(Job::Call { method, args: args.unwrap_or(Value::Null), reply });
        Ok(promise)
    }

    /// The pipeline's model as transformers' class loads it (`pipe.model`), over the same
    /// weights: the thread and the weights stay while either lives. Throws `unsupported` where no
    /// model class covers the task's model.
    #[napi]
    pub fn model(&self) -> Result<model::NativeModel> {
        let facts = self.model.as_ref().map_err(|e| coded(Error::new(e.status.clone(), e.reason.clone())))?;
        let jobs = self.jobs.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
        let jobs = jobs.ok_or_else(|| coded(Error::new("input".to_string(), "this pipeline was disposed".to_string())))?;
        let id = self.models_made.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let _ = jobs.send(Job::MakeModel { id });
        Ok(model::NativeModel::new(jobs, id, facts.clone()))
    }
}
