//! The native engine in Node: a Node-API addon over webformers-core, with the same task surface
//! as the wasm build's `TaskPipeline` (any task of the registry, JSON in and out), so that the
//! npm package's `pipeline()` runs the native kernels (AVX-512 / AVX2 / NEON, rayon threads) and
//! wgpu's native GPU backends in Node, where it would otherwise run its WASM build.
//!
//! A loaded task is not `Send` (its futures are local, as wasm needs), so each pipeline lives on
//! a thread of its own and takes its loads and runs from a channel, one at a time; the JS thread
//! never blocks: every call returns a promise, settled from that thread through Node-API's
//! thread-safe deferreds.

use std::sync::mpsc;

use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;
use serde_json::Value;
use webformers::audio::RawAudio;
use webformers::files::{DirFiles, ModelFiles};
use webformers::generation::Interrupt;
use webformers::hub::{HfCache, Hub, HubOptions, UreqTransport};
use webformers::image::RawImage;
use webformers::tasks::{self, Event, Input, LoadOptions, Media, Output, Pipeline};
use webformers::weights::Precision;
use webformers::{Device, DeviceChoice, GpuOptions};

/// An engine error as a JS `Error` whose `code` is the engine's (`webformers::Error::code`),
/// as the wasm build throws them.
fn js_error(e: webformers::Error) -> Error<String> {
    Error::new(e.code().to_string(), e.to_string())
}

/// A task's name, default model, files and input kind, as the wasm build's `taskFiles`.
#[napi(js_name = "taskFiles")]
pub fn task_files(task: String) -> Result<Value, String> {
    // No GGUF loading here yet: native.js leaves .gguf models to the WASM build.
    Ok(tasks::task(&task).map_err(js_error)?.files_json(false))
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
    Run { input: Value, options: Value, media: Vec<Media>, events: Option<EventSink>, reply: Deferred<RunOutput> },
    Call { method: String, args: Value, reply: Deferred<Value> },
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
    /// None once disposed.
    jobs: std::sync::Mutex<Option<mpsc::Sender<Job>>>,
    task: String,
    device: String,
    info: Value,
    /// Set from the JS thread while a run holds the pipeline's thread (an AbortSignal, an
    /// InterruptableStoppingCriteria): `call("interrupt")` lands mid-run.
    interrupt: Option<Interrupt>,
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
}

/// The model's files, from its folder or from the Hub (blocking: this runs on the pipeline's
/// thread).
fn open_files(source: &ModelSource, task: &str, device: &Device) -> webformers::Result<Box<dyn ModelFiles>> {
    if let Some(dir) = &source.dir {
        return Ok(Box::new(DirFiles::open(dir)?));
    }
    let Some(repo) = &source.repo else {
        return Err(webformers::Error::Input("the model source names neither a folder (`dir`) nor a Hub repository (`repo`)".into()));
    };
    let mut options = HubOptions::from_env();
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
    let files = pollster::block_on(model.load(&tasks::task(task)?.files(), device))?;
    Ok(Box::new(files))
}

/// What a load hands back to the JS thread.
struct Loaded {
    task: String,
    device: String,
    info: Value,
    interrupt: Option<Interrupt>,
}

/// Loads task `task` from `source` (a folder or a Hub repository) on `device` ('cpu', 'gpu' or
/// 'auto': wgpu's native backends, Vulkan, Metal or DX12) at `dtype` ('auto', 'fp32', 'q8', ...).
/// Resolves to a `NativePipeline`; rejects with the engine's error (`code` as the wasm build's).
#[napi(js_name = "loadPipeline")]
pub fn load_pipeline<'env>(env: &'env Env, task: String, source: ModelSource, device: String, dtype: String) -> Result<Object<'env>> {
    let (deferred, promise) = env.create_deferred::<NativePipeline, Box<dyn FnOnce(Env) -> Result<NativePipeline> + Send>>()?;
    let (ready_tx, ready_rx) = mpsc::channel::<std::result::Result<Loaded, Error<String>>>();
    let (jobs, job_rx) = mpsc::channel::<Job>();
    let spawned = std::thread::Builder::new().name(format!("webformers {task}")).spawn(move || {
        let loaded = std::panic::catch_unwind(|| {
            let choice: DeviceChoice = device.parse()?;
            let (device, _note) = pollster::block_on(Device::select(choice, GpuOptions::default()))?;
            let options = LoadOptions { dtype: Precision::parse(&dtype)?, ..Default::default() };
            let files = open_files(&source, &task, &device)?;
            tasks::load(&task, files.as_ref(), &device, &options)
        });
        let loaded = match loaded {
            Ok(loaded) => loaded.map_err(js_error),
            Err(panic) => Err(panicked(panic)),
        };
        match loaded {
            Ok(pipeline) => {
                let device = if pipeline.device().is_gpu() { "gpu" } else { "cpu" };
                let loaded = Loaded {
                    task: pipeline.task().name.to_string(),
                    device: device.to_string(),
                    info: pipeline.info(),
                    interrupt: pipeline.interrupt_flag(),
                };
                let _ = ready_tx.send(Ok(loaded));
                serve(pipeline.as_ref(), job_rx);
            }
            Err(e) => {
                let _ = ready_tx.send(Err(e));
            }
        }
    });
    if let Err(e) = spawned {
        deferred.reject(Error::from_reason(format!("could not start the pipeline's thread: {e}")));
        return Ok(promise);
    }
    // The load runs on its thread; a second one waits for its answer, so that the JS thread
    // does not.
    std::thread::spawn(move || match ready_rx.recv() {
        Ok(Ok(Loaded { task, device, info, interrupt })) => {
            let jobs = std::sync::Mutex::new(Some(jobs));
            deferred.resolve(Box::new(move |_| Ok(NativePipeline { jobs, task, device, info, interrupt })));
        }
        Ok(Err(e)) => deferred.reject(coded(e)),
        Err(_) => deferred.reject(Error::from_reason("the pipeline's thread stopped while loading")),
    });
    Ok(promise)
}

/// A coded error carried where a deferred takes `Error<Status>`: the code goes first in the
/// message, before a NUL, and the JS side (native.js) splits it off again.
fn coded(e: Error<String>) -> Error {
    Error::new(Status::GenericFailure, format!("{}\u{0}{}", e.status, e.reason))
}

/// The pipeline's thread: runs each job to its end, then the next; stops when the JS object is
/// gone (the channel closes). A panic in a run rejects that run's promise (natively it unwinds,
/// unlike in wasm) and the pipeline takes the next job.
fn serve(pipeline: &dyn Pipeline, jobs: mpsc::Receiver<Job>) {
    while let Ok(job) = jobs.recv() {
        match job {
            Job::Run { input, options, media, events, reply } => {
                // Each event waits until JS has taken it: events then reach JS in order and
                // before the result, and a slow consumer slows the run instead of queueing
                // without bound. (native.js wraps the callback so that it never throws: a throw
                // inside a thread-safe call would end the process.)
                let mut on_event = |event: Event<'_>| {
                    if let Some(sink) = &events {
                        let (taken, wait) = mpsc::sync_channel::<()>(1);
                        let status = sink.call_with_return_value(event.to_json(), ThreadsafeFunctionCallMode::Blocking, move |_, _| {
                            let _ = taken.send(());
                            Ok(())
                        });
                        if status == Status::Ok {
                            let _ = wait.recv();
                        }
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
                match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| pipeline.call(&method, &args))) {
                    Ok(Ok(value)) => reply.resolve(Box::new(move |_| Ok(value))),
                    Ok(Err(e)) => reply.reject(coded(js_error(e))),
                    Err(panic) => reply.reject(coded(panicked(panic))),
                }
            }
        }
    }
}

/// A panic's message as an error with code 'panic' (the wasm build's code for one).
fn panicked(panic: Box<dyn std::any::Any + Send>) -> Error<String> {
    let msg = panic.downcast_ref::<String>().cloned().or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()));
    Error::new("panic".to_string(), format!("the engine panicked: {}", msg.unwrap_or_else(|| "(no message)".into())))
}

impl NativePipeline {
    /// Hands `job` to the pipeline's thread; a disposed pipeline rejects it at once. Every
    /// deferred made must be settled: an unsettled one holds a thread-safe function that keeps
    /// Node's event loop (and so the process) alive.
    fn send(&self, job: Job) {
        let jobs = self.jobs.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let refused = match jobs.as_ref() {
            Some(jobs) => match jobs.send(job) {
                Ok(()) => return,
                Err(mpsc::SendError(job)) => job,
            },
            None => job,
        };
        let disposed = || coded(Error::new("input".to_string(), "this pipeline was disposed".to_string()));
        match refused {
            Job::Run { reply, .. } => reply.reject(disposed()),
            Job::Call { reply, .. } => reply.reject(disposed()),
        }
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
        let events = match on_event {
            Some(f) => Some(f.build_threadsafe_function::<Value>().build().map_err(|e| Error::from_reason(e.reason.clone()))?),
            None => None,
        };
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
}
