//! The webformers engine for JavaScript: the wasm-bindgen layer under the npm package `webformers`
//! (npm/). It adds no model code of its own: files fetched by the JS side go into a `MemoryFiles`,
//! and Hub models load through the core's Hub client over fetch into IndexedDB (`hub.rs`), for
//! the same `Device`, tasks and models as the native build.
//!
//! The boundary never panics by design: every fallible call returns a rejected promise (or throws)
//! with an `Error` whose `code` property says what kind of failure it was (see `errors.rs`). A
//! residual panic (a bug) is printed with `console.error` and reported to the handler the JS side
//! installs with `setPanicHandler`, which rejects the calls in flight instead of leaving them
//! pending forever (a panic in wasm32 aborts the instance; it cannot unwind).
//!
//! Everything is wasm32-only; natively the crate is empty.
#![cfg(target_arch = "wasm32")]

mod errors;
mod hub;
mod media;
mod model;
mod pipeline;
mod tokenizer;

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use js_sys::{Object, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use webformers::files::{MemoryFiles, ModelFiles};
use webformers::image::{RawImage, Resample};
use webformers::weights::{Precision, SharedBytes, WeightSource};
use webformers::{Device, DeviceChoice, GpuOptions};

pub use errors::js_error;
pub use hub::{FetchTransport, HubLoaded, JsStore};
pub use model::{ModelRunner, Processor};
pub use pipeline::TaskPipeline;
pub use tokenizer::JsTokenizer;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = console, js_name = error)]
    fn console_error(message: &str);
}

thread_local! {
    static PANIC_HANDLER: RefCell<Option<js_sys::Function>> = const { RefCell::new(None) };
    /// The WebGPU device, once one opened: every pipeline of this instance shares it (as the
    /// native CLI shares one per process), so that its compiled shader pipelines are reused
    /// instead of compiled again for each model.
    static GPU: RefCell<Option<Device>> = const { RefCell::new(None) };
}

#[wasm_bindgen(start)]
fn start() {
    std::panic::set_hook(Box::new(|info| {
        let message = format!("webformers: internal error (a bug, please report it): {info}");
        console_error(&message);
        PANIC_HANDLER.with(|handler| {
            if let Ok(handler) = handler.try_borrow()
                && let Some(f) = handler.as_ref()
            {
                let _ = f.call1(&JsValue::NULL, &JsValue::from_str(&message));
            }
        });
    }));
}

/// Installs the function called (with the message) when the engine panics; the instance is
/// unusable afterwards.
#[wasm_bindgen(js_name = setPanicHandler)]
pub fn set_panic_handler(handler: Option<js_sys::Function>) {
    PANIC_HANDLER.with(|h| *h.borrow_mut() = handler);
}

/// Panics on purpose, after one turn of the event loop (as a panic inside a GPU read would): the
/// tests use it to check that a panic rejects the calls in flight instead of leaving them hanging.
/// The instance is unusable afterwards.
#[wasm_bindgen(js_name = debugPanic)]
pub fn debug_panic(message: String) -> js_sys::Promise {
    wasm_bindgen_futures::future_to_promise(async move {
        wasm_bindgen_futures::JsFuture::from(js_sys::Promise::resolve(&JsValue::NULL)).await?;
        panic!("{message}");
    })
}

/// Destroys this instance's WebGPU device, as a driver reset or a GPU process crash would: the
/// tests use it to check that its pipelines then reject with `device_lost` and a new pipeline opens
/// a new device. False when no device was open.
#[wasm_bindgen(js_name = debugLoseDevice)]
pub fn debug_lose_device() -> bool {
    match GPU.with(|g| g.borrow().clone()) {
        Some(Device::Gpu(gpu)) => {
            gpu.destroy();
            true
        }
        _ => false,
    }
}

/// `[buffers, bytes]` of device memory the engine holds now (`gpu::live_buffers`): what a page
/// watches to see that a pipeline's `model` adds no copy of its weights, or that a disposed one
/// freed them.
#[wasm_bindgen(js_name = liveBuffers)]
pub fn live_buffers() -> Vec<f64> {
    let (buffers, bytes) = webformers::gpu::live_buffers();
    vec![buffers as f64, bytes as f64]
}

/// The engine's version (the crate's).
#[wasm_bindgen]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}

/// Whether this is the threaded build (`+atomics`, shared memory): the JS side then starts
/// workers that run `threadPoolRegister` and `threadPoolLoop`.
#[wasm_bindgen]
pub fn threaded() -> bool {
    cfg!(target_feature = "atomics")
}

/// Threads the CPU kernels use: 1, or the calling thread plus the pool's workers.
#[wasm_bindgen(js_name = cpuThreads)]
pub fn cpu_threads() -> usize {
    webformers::cpu::threads()
}

/// In a pool worker, once, after instantiating the module on the shared memory: counts the
/// worker in and returns the value to pass to `threadPoolLoop`.
#[cfg(target_feature = "atomics")]
#[wasm_bindgen(js_name = threadPoolRegister)]
pub fn thread_pool_register() -> i32 {
    webformers::cpu::wasm_pool::register_worker()
}

/// In a pool worker: takes its share of every parallel kernel from now on. Never returns (the
/// worker's event loop stays blocked; terminate the worker to end it).
#[cfg(target_feature = "atomics")]
#[wasm_bindgen(js_name = threadPoolLoop)]
pub fn thread_pool_loop(seen: i32) {
    webformers::cpu::wasm_pool::worker_loop(seen)
}

/// `[jobs the pool ran, items its workers took]` since the start (diagnostics: how much of
/// the parallel work the workers did).
#[cfg(target_feature = "atomics")]
#[wasm_bindgen(js_name = threadPoolStats)]
pub fn thread_pool_stats() -> Vec<f64> {
    let (jobs, items) = webformers::cpu::wasm_pool::stats();
    vec![jobs as f64, items as f64]
}

/// For tests: a parallel job that panics on the pool's workers. The calling thread must then
/// panic too (and the JS side reject the calls in flight) instead of waiting forever.
#[cfg(target_feature = "atomics")]
#[wasm_bindgen(js_name = debugPanicInPoolWorker)]
pub fn debug_panic_in_pool_worker() {
    webformers::cpu::wasm_pool::debug_worker_panic()
}

/// The module's shared memory, to hand to the pool's workers.
#[cfg(target_feature = "atomics")]
#[wasm_bindgen(js_name = threadPoolMemory)]
pub fn thread_pool_memory() -> JsValue {
    wasm_bindgen::memory()
}

/// The address (in the shared memory) of the i32 a pool worker's JS sets to 1 when its instance
/// stopped (a panic), so that the threads waiting for it stop waiting.
#[cfg(target_feature = "atomics")]
#[wasm_bindgen(js_name = threadPoolPoisonAddress)]
pub fn thread_pool_poison_address() -> usize {
    webformers::cpu::wasm_pool::poison_address()
}

/// What the JS side needs to know of a task before loading it:
/// `{task, defaultModel, input, gguf, required: string[], optional: string[]}`: its canonical
/// name, the Hub model transformers.js uses when none is given, what its first argument is
/// (`'text'`, `'text_or_pair'`, `'question_context'`, `'text_with_labels'`, `'text_or_chat'`,
/// `'image'`, `'image_with_labels'`, `'audio'`:
/// the positional call shapes follow from it), whether it loads from a .gguf file, and the files
/// its models are made of. Unknown task: throws, listing the tasks.
///
/// These lists are what the tasks' `load` read from a model folder (see core/src/tasks/); the JS
/// side fetches exactly these before loading.
#[wasm_bindgen(js_name = taskFiles)]
pub fn task_files(task: &str) -> Result<JsValue, JsValue> {
    let task = webformers::tasks::task(task).map_err(js_error)?;
    pipeline::to_js(&task.files_json(task.loads_gguf()))
}

/// A `RawImage` as JS sees it: `{width, height, channels, data: Uint8Array}`.
pub(crate) fn image_to_js(image: &RawImage) -> JsValue {
    let out = Object::new();
    set(&out, "width", &JsValue::from(image.width as u32));
    set(&out, "height", &JsValue::from(image.height as u32));
    set(&out, "channels", &JsValue::from(image.channels as u32));
    set(&out, "data", &Uint8Array::from(&image.data[..]));
    out.into()
}

/// Decodes an image file (PNG, JPEG, WebP, GIF, BMP) as PIL decodes it (the engine's decoder, the
/// one the tasks use): `{width, height, channels, data: Uint8Array}`. The npm package's
/// `RawImage.read` in Node, which has no platform decoder; browsers decode with their own.
#[wasm_bindgen(js_name = decodeImage)]
pub fn decode_image(bytes: &[u8]) -> Result<JsValue, JsValue> {
    Ok(image_to_js(&RawImage::decode(bytes).map_err(js_error)?))
}

/// Decodes an audio file (WAV, MP3, FLAC, OGG/Vorbis, M4A/AAC) with the engine's decoders, mixed
/// down to mono (the channels' mean) and, when `sampling_rate` is given, resampled to it (rubato):
/// `{audio: Float32Array, sampling_rate}`. The npm package's `read_audio` in Node and in workers,
/// which have no `AudioContext`; browsers' windows decode with their own.
#[wasm_bindgen(js_name = decodeAudio)]
pub fn decode_audio(bytes: &[u8], sampling_rate: Option<u32>) -> Result<JsValue, JsValue> {
    let audio = match sampling_rate {
        Some(rate) => webformers::audio::RawAudio::decode_at(bytes, rate),
        None => webformers::audio::RawAudio::decode(bytes),
    }
    .map_err(js_error)?;
    let out = Object::new();
    set(&out, "audio", &js_sys::Float32Array::from(&audio.samples[..]));
    set(&out, "sampling_rate", &JsValue::from(audio.sampling_rate));
    Ok(out.into())
}

/// Mono `samples` at `from` Hz resampled to `to` Hz with the engine's resampler (rubato).
#[wasm_bindgen(js_name = resampleAudio)]
pub fn resample_audio(samples: &[f32], from: u32, to: u32) -> Result<Vec<f32>, JsValue> {
    webformers::audio::resample(samples, from, to).map_err(js_error)
}

/// `image` (`{width, height, channels, data}`) resized to `width` x `height` with PIL's filter
/// number `resample` (0 nearest, 1 lanczos, 2 bilinear, 3 bicubic, 4 box, 5 hamming), as PIL's
/// `Image.resize` computes it: what the image processors use.
#[wasm_bindgen(js_name = resizeImage)]
pub fn resize_image(image: JsValue, width: u32, height: u32, resample: u32) -> Result<JsValue, JsValue> {
    let image = media::image_from_js(&image).map_err(js_error)?;
    let filter = Resample::from_pil(resample as u64).map_err(js_error)?;
    Ok(image_to_js(&image.resize(width as usize, height as usize, filter).map_err(js_error)?))
}

/// What a loaded model or task runs on.
pub(crate) trait OnDevice {
    fn device(&self) -> &Device;
}

/// A loaded model or task, shared with the calls in flight (so that freeing the JS object
/// mid-call is safe), that once dropped also frees the idle buffers of the WebGPU device it
/// shared with others: disposing a model gives its memory back.
pub(crate) struct Held<T: OnDevice>(Option<T>);

impl<T: OnDevice> Held<T> {
    pub(crate) fn new(inner: T) -> Held<T> {
        Held(Some(inner))
    }

    pub(crate) fn get(&self) -> &T {
        // Only `Drop` takes it out.
        self.0.as_ref().expect("present until dropped")
    }
}

impl<T: OnDevice> Drop for Held<T> {
    fn drop(&mut self) {
        if let Some(inner) = self.0.take() {
            let device = inner.device().clone();
            drop(inner);
            if let Device::Gpu(gpu) = device {
                gpu.trim_pool();
            }
        }
    }
}

pub(crate) fn set(target: &Object, key: &str, value: &JsValue) {
    // Setting a data property on a plain object cannot fail.
    let _ = Reflect::set(target, &JsValue::from_str(key), value);
}

/// Why WebGPU cannot be used from this global scope, if it cannot. wgpu itself panics outside a
/// window or a dedicated worker (Node, a shared worker), so this is checked before asking it.
fn webgpu_unavailable() -> Option<String> {
    let global = js_sys::global();
    let defined = |key: &str| Reflect::get(&global, &JsValue::from_str(key)).is_ok_and(|v| !v.is_undefined());
    if !defined("Window") && !defined("WorkerGlobalScope") {
        return Some("WebGPU needs a browser window or a dedicated worker (in Node, use device 'wasm')".into());
    }
    let gpu = Reflect::get(&global, &JsValue::from_str("navigator"))
        .and_then(|n| if n.is_undefined() || n.is_null() { Ok(JsValue::UNDEFINED) } else { Reflect::get(&n, &JsValue::from_str("gpu")) });
    match gpu {
        Ok(gpu) if !gpu.is_undefined() && !gpu.is_null() => None,
        _ => Some("this browser has no WebGPU (navigator.gpu is missing)".into()),
    }
}

/// Where a pipeline runs: the WebGPU device or the CPU (wasm simd128).
#[wasm_bindgen]
pub struct EngineDevice {
    device: Device,
    note: Option<String>,
}

#[wasm_bindgen]
impl EngineDevice {
    /// `'webgpu'` or `'wasm'`.
    #[wasm_bindgen(getter)]
    pub fn kind(&self) -> String {
        if self.device.is_gpu() { "webgpu" } else { "wasm" }.to_string()
    }

    /// The adapter or CPU in words ("gpu (SwiftShader Device ..., BrowserWebGpu)", "cpu (simd128)").
    #[wasm_bindgen(getter)]
    pub fn description(&self) -> String {
        self.device.describe()
    }

    /// Why `'auto'` fell back to the CPU, when it did.
    #[wasm_bindgen(getter)]
    pub fn note(&self) -> Option<String> {
        self.note.clone()
    }

    /// The largest buffer one binding can see, on a GPU device.
    #[wasm_bindgen(getter, js_name = maxBindingBytes)]
    pub fn max_binding_bytes(&self) -> Option<f64> {
        match &self.device {
            Device::Gpu(gpu) => Some(gpu.max_binding_bytes() as f64),
            Device::Cpu => None,
        }
    }
}

impl EngineDevice {
    pub(crate) fn device(&self) -> &Device {
        &self.device
    }
}

/// Opens a device: `'webgpu'` (rejects without a usable adapter), `'wasm'`, or `'auto'` (WebGPU
/// when an adapter opens, else the CPU, with the reason in `note`). The WebGPU device is opened
/// once per instance and shared (see `GPU`); a disposed pipeline frees its buffers (see
/// pipeline.rs).
#[wasm_bindgen(js_name = openDevice)]
pub async fn open_device(choice: String) -> Result<EngineDevice, JsValue> {
    let choice: DeviceChoice = choice.parse().map_err(js_error)?;
    if choice != DeviceChoice::Cpu
        && let Some(why) = webgpu_unavailable()
    {
        return match choice {
            DeviceChoice::Gpu => Err(js_error(webformers::Error::NoAdapter(why))),
            _ => Ok(EngineDevice { device: Device::Cpu, note: Some(why) }),
        };
    }
    // A lost device stays lost: forget it, so this load opens a new one.
    if GPU.with(|g| matches!(&*g.borrow(), Some(Device::Gpu(gpu)) if gpu.lost().is_some())) {
        GPU.with(|g| *g.borrow_mut() = None);
    }
    match (choice, GPU.with(|g| g.borrow().clone())) {
        (DeviceChoice::Gpu, Some(device)) => return Ok(EngineDevice { device, note: None }),
        // `auto` never takes a software adapter (Device::select).
        (DeviceChoice::Auto, Some(Device::Gpu(gpu))) if !gpu.is_software() => {
            return Ok(EngineDevice { device: Device::Gpu(gpu), note: None });
        }
        _ => {}
    }
    let (device, note) = Device::select(choice, GpuOptions::default()).await.map_err(js_error)?;
    if device.is_gpu() {
        GPU.with(|g| *g.borrow_mut() = Some(device.clone()));
    }
    Ok(EngineDevice { device, note })
}

/// A model's files, fetched by the JS side, by name (`config.json`, `model.safetensors`, ...).
#[wasm_bindgen]
pub struct ModelFileSet {
    inner: PageFiles,
}

#[wasm_bindgen]
impl ModelFileSet {
    /// `name`: the model's id or URL, used in error messages.
    #[wasm_bindgen(constructor)]
    pub fn new(name: String) -> ModelFileSet {
        ModelFileSet { inner: PageFiles { memory: MemoryFiles::new(name), held: HashMap::new() } }
    }

    /// Adds a file (its bytes are copied into the wasm heap).
    pub fn insert(&mut self, file: String, bytes: Vec<u8>) {
        self.inner.memory.insert(file, bytes);
    }

    /// Adds a safetensors weights file without copying it: it stays in JS memory (do not change
    /// it) and a load reads it onto the device piece by piece.
    #[wasm_bindgen(js_name = insertWeights)]
    pub fn insert_weights(&mut self, file: String, bytes: Uint8Array) {
        self.inner.held.insert(file, bytes);
    }
}

impl ModelFileSet {
    pub(crate) fn files(&self) -> &PageFiles {
        &self.inner
    }
}

/// A model's files as a page hands them over: small ones copied into wasm memory, safetensors
/// weights held in JS memory and read onto the device tensor by tensor at load
/// (`webformers::hub::read_safetensors`, as Hub loads stream theirs). A whole weights file in wasm
/// memory would need a hole that large, which a fragmented heap (it never shrinks) only finds by
/// growing: the browser soak saw wasm memory step up by a file after a few loads.
pub(crate) struct PageFiles {
    memory: MemoryFiles,
    held: HashMap<String, Uint8Array>,
}

impl ModelFiles for PageFiles {
    fn name(&self) -> &str {
        self.memory.name()
    }

    fn read(&self, file: &str) -> webformers::Result<Option<SharedBytes>> {
        match self.held.get(file) {
            // No loader reads weights whole, but a reader that does gets a copy.
            Some(bytes) => Ok(Some(Arc::new(bytes.to_vec()))),
            None => self.memory.read(file),
        }
    }

    fn has(&self, file: &str) -> webformers::Result<bool> {
        Ok(self.held.contains_key(file) || self.memory.has(file)?)
    }

    fn weight_file(&self, file: &str, device: &Device) -> webformers::Result<Arc<dyn WeightSource>> {
        let Some(bytes) = self.held.get(file) else { return self.memory.weight_file(file, device) };
        let origin = format!("{}/{file}", self.name());
        // Typed arrays past 4 GiB have lengths a u32 cannot hold (js_sys's accessors are u32).
        let size = Reflect::get(bytes, &JsValue::from_str("length")).ok().and_then(|v| v.as_f64()).unwrap_or(0.0);
        if size > u32::MAX as f64 {
            return Err(webformers::Error::File {
                path: origin,
                msg: "is over 4 GiB: a page can hand over weights in shards of at most 4 GiB".into(),
            });
        }
        webformers::hub::read_safetensors(size as u64, device, &origin, &mut |at, out| {
            bytes.subarray(at as u32, at as u32 + out.len() as u32).copy_to(out);
            Ok(())
        })
    }
}

/// transformers.js's `dtype` option: `'auto'` (as stored), `'fp32'`, `'fp16'`, `'q8'`, `'q4'`,
/// `'q4f16'`, or per module (`encoder_model=fp32,decoder_model_merged=q4`, as npm writes the
/// object form).
pub(crate) fn weight_dtype(dtype: &str) -> Result<Precision, JsValue> {
    Precision::parse(dtype).map_err(js_error)
}
