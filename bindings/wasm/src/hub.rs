//! Models from the Hub in JavaScript: the core's one Hub protocol (`webformers::hub`) over
//! `fetch` (`FetchTransport`) into the package's IndexedDB cache (`JsStore`, a thin adapter over
//! the JS object npm/src/hub-store.js makes: IndexedDB's event API and the JS cache API share one
//! schema there). `hubLoad` resolves to a `HubLoaded`: a task's small files plus its weights,
//! already streamed onto the device tensor by tensor; the tasks' `loadFromHub` build on it.
//!
//! fetch follows redirects itself and hides a redirect's headers, so the Hub's metadata of an
//! LFS file (X-Linked-Etag) is never seen: the protocol then pins the commit with the HEAD of a
//! small file (or the revision API) and takes the sha256 from the commit's tree listing (see
//! core/src/hub/model.rs). Authorization goes only to requests for the endpoint's origin, and
//! browsers drop it when a redirect leaves that origin (the Fetch standard), so the CDN never
//! gets the token.

use std::cell::{Cell, RefCell};
use std::ops::Range;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use js_sys::{Array, Function, Object, Promise, Reflect, Uint8Array};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{JsFuture, future_to_promise};
use webformers::hub::{
    Body, Cached, FileMeta, Hub, HubFiles, HubOptions, PartialFile, ProgressEvent, ProgressFn, Request, Response, RetryPolicy, Store,
    Transport, TransportError,
};
use webformers::weights::{DeviceWeights, SharedBytes};
use webformers::{Error, HubErrorKind};

use crate::{EngineDevice, js_error, set};

#[wasm_bindgen]
extern "C" {
    // Globals of windows, workers and Node alike.
    #[wasm_bindgen(js_name = fetch)]
    fn global_fetch(input: &str, init: &web_sys::RequestInit) -> Promise;
    #[wasm_bindgen(js_name = setTimeout)]
    fn set_timeout(handler: &Function, ms: i32) -> JsValue;
    #[wasm_bindgen(js_name = clearTimeout)]
    fn clear_timeout(id: &JsValue);
}

// ---- fetch ---------------------------------------------------------------------------------

/// The least a body must bring per `env.fetchTimeout` (or end), as the native transport.
const LOW_SPEED_BYTES: usize = 1024;

/// Aborts a request when nothing arrives for a while (`env.fetchTimeout`), or too little: while a
/// body is read, only the time spent waiting for the server counts, and it starts again only once
/// the body brought `LOW_SPEED_BYTES`, so that a server dripping a byte at a time is cut off like
/// a silent one.
/// Also aborts it when the caller's AbortSignal fires (the listener is removed with the request).
struct Watchdog {
    controller: web_sys::AbortController,
    ms: u32,
    timer: RefCell<Option<JsValue>>,
    fired: Rc<Cell<bool>>,
    on_fire: Closure<dyn FnMut()>,
    caller: Option<(web_sys::AbortSignal, Closure<dyn FnMut()>)>,
}

impl Watchdog {
    fn new(ms: u32, caller: Option<&web_sys::AbortSignal>) -> Result<Watchdog, TransportError> {
        let controller = web_sys::AbortController::new().map_err(|e| TransportError(describe(&e)))?;
        let fired = Rc::new(Cell::new(false));
        let (c, f) = (controller.clone(), fired.clone());
        let on_fire = Closure::<dyn FnMut()>::new(move || {
            f.set(true);
            c.abort();
        });
        let caller = match caller {
            Some(signal) => {
                let c = controller.clone();
                let on_abort = Closure::<dyn FnMut()>::new(move || c.abort());
                signal
                    .add_event_listener_with_callback("abort", on_abort.as_ref().unchecked_ref())
                    .map_err(|e| TransportError(describe(&e)))?;
                Some((signal.clone(), on_abort))
            }
            None => None,
        };
        let dog = Watchdog { controller, ms, timer: RefCell::new(None), fired, on_fire, caller };
        dog.arm();
        Ok(dog)
    }

    fn arm(&self) {
        self.arm_for(self.ms);
    }

    /// Fires in `ms` (at least 1), unless there is no timeout at all.
    fn arm_for(&self, ms: u32) {
        self.disarm();
        if self.ms > 0 {
            let id = set_timeout(self.on_fire.as_ref().unchecked_ref(), ms.clamp(1, i32::MAX as u32) as i32);
            *self.timer.borrow_mut() = Some(id);
        }
    }

    fn disarm(&self) {
        if let Some(id) = self.timer.borrow_mut().take() {
            clear_timeout(&id);
        }
    }

    /// Why a request failed: the watchdog's timeout, or what fetch said.
    fn why(&self, e: &JsValue) -> TransportError {
        if self.fired.get() {
            TransportError(format!("fewer than {LOW_SPEED_BYTES} bytes were received in {} ms (env.fetchTimeout)", self.ms))
        } else {
            TransportError(describe(e))
        }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.disarm();
        if let Some((signal, on_abort)) = &self.caller {
            let _ = signal.remove_event_listener_with_callback("abort", on_abort.as_ref().unchecked_ref());
        }
    }
}

/// A thrown JS value in words: its message, and its cause's code (Node names the socket error).
fn describe(e: &JsValue) -> String {
    let get = |v: &JsValue, k: &str| Reflect::get(v, &JsValue::from_str(k)).ok().and_then(|v| v.as_string());
    let message = get(e, "message").or_else(|| e.as_string()).unwrap_or_else(|| "unknown error".into());
    let cause = Reflect::get(e, &JsValue::from_str("cause")).ok().filter(|c| c.is_object());
    match cause.and_then(|c| get(&c, "code").or_else(|| get(&c, "message"))) {
        Some(c) if !message.contains(&c) => format!("{message} ({c})"),
        _ => message,
    }
}

/// The Hub transport of the browser (and Node): `fetch`, redirects followed by it.
pub struct FetchTransport {
    timeout_ms: u32,
    /// The caller's AbortSignal (`pipeline(..., { signal })`): aborts the request in flight.
    signal: Option<web_sys::AbortSignal>,
}

pub struct FetchBody {
    reader: Option<web_sys::ReadableStreamDefaultReader>,
    buf: Vec<u8>,
    done: bool,
    watchdog: Watchdog,
    /// Bytes, and milliseconds spent waiting for them, since the body last brought
    /// `LOW_SPEED_BYTES`.
    since_armed: usize,
    waited_ms: f64,
}

impl Body for FetchBody {
    async fn chunk(&mut self) -> Result<Option<&[u8]>, TransportError> {
        let Some(reader) = &self.reader else { return Ok(None) };
        if self.done {
            return Ok(None);
        }
        self.watchdog.arm_for(self.watchdog.ms.saturating_sub(self.waited_ms as u32));
        let start = js_sys::Date::now();
        let step = JsFuture::from(reader.read()).await.map_err(|e| self.watchdog.why(&e))?;
        // The time until the next read is the caller's, not the server's.
        self.watchdog.disarm();
        self.waited_ms += js_sys::Date::now() - start;
        let done = Reflect::get(&step, &JsValue::from_str("done")).map(|d| d.is_truthy()).unwrap_or(true);
        if done {
            self.done = true;
            self.watchdog.disarm();
            return Ok(None);
        }
        let value: Uint8Array = Reflect::get(&step, &JsValue::from_str("value"))
            .ok()
            .and_then(|v| v.dyn_into().ok())
            .ok_or_else(|| TransportError("the body gave something other than bytes".into()))?;
        let n = value.length() as usize;
        self.since_armed += n;
        if self.since_armed >= LOW_SPEED_BYTES {
            self.since_armed = 0;
            self.waited_ms = 0.0;
        }
        if self.buf.len() < n {
            self.buf.resize(n, 0);
        }
        value.copy_to(&mut self.buf[..n]);
        Ok(Some(&self.buf[..n]))
    }
}

impl Drop for FetchBody {
    fn drop(&mut self) {
        // A body not read to its end releases its connection.
        if let (Some(reader), false) = (&self.reader, self.done) {
            // Awaited, so that a stream that already broke rejects into nothing, not the console.
            let cancelled = JsFuture::from(reader.cancel());
            wasm_bindgen_futures::spawn_local(async move {
                let _ = cancelled.await;
            });
        }
    }
}

impl Transport for FetchTransport {
    type Body = FetchBody;

    async fn send(&self, request: &Request) -> Result<Response<FetchBody>, TransportError> {
        let fail = |e: JsValue| TransportError(describe(&e));
        let init = web_sys::RequestInit::new();
        init.set_method(request.method.as_str());
        let headers = web_sys::Headers::new().map_err(fail)?;
        for (name, value) in &request.headers {
            headers.set(name, value).map_err(fail)?;
        }
        init.set_headers(&headers);
        init.set_redirect(web_sys::RequestRedirect::Follow);
        // The IndexedDB cache is the cache: the HTTP cache would only keep a second copy.
        init.set_cache(web_sys::RequestCache::NoStore);
        if self.cancelled() {
            return Err(TransportError("the load was aborted".into()));
        }
        let watchdog = Watchdog::new(self.timeout_ms, self.signal.as_ref())?;
        init.set_signal(Some(&watchdog.controller.signal()));
        let answer = JsFuture::from(global_fetch(&request.url, &init)).await.map_err(|e| {
            let mut why = watchdog.why(&e);
            if is_browser() && !watchdog.fired.get() {
                why.0.push_str(" (is the host reachable, and does it allow this page's origin (CORS)?)");
            }
            why
        })?;
        let response: web_sys::Response = answer.dyn_into().map_err(|_| TransportError("fetch did not give a Response".into()))?;
        let mut header_list = Vec::new();
        if let Ok(Some(entries)) = js_sys::try_iter(&response.headers()) {
            for entry in entries.flatten() {
                let pair = Array::from(&entry);
                if let (Some(k), Some(v)) = (pair.get(0).as_string(), pair.get(1).as_string()) {
                    header_list.push((k.to_ascii_lowercase(), v));
                }
            }
        }
        let redirected_to = response.redirected().then(|| response.url());
        let reader = match (request.method, response.body()) {
            (webformers::hub::Method::Get, Some(stream)) => {
                Some(stream.get_reader().unchecked_into::<web_sys::ReadableStreamDefaultReader>())
            }
            _ => None,
        };
        // Armed again by each read of the body.
        watchdog.disarm();
        let done = reader.is_none();
        Ok(Response {
            status: response.status(),
            headers: header_list,
            body: FetchBody { reader, buf: Vec::new(), done, watchdog, since_armed: 0, waited_ms: 0.0 },
            redirected_to,
        })
    }

    fn cancelled(&self) -> bool {
        self.signal.as_ref().is_some_and(|s| s.aborted())
    }

    async fn sleep(&self, duration: Duration) {
        let ms = duration.as_millis().min(i32::MAX as u128) as i32;
        let wait = Promise::new(&mut |resolve, _| {
            set_timeout(&resolve, ms);
        });
        let _ = JsFuture::from(wait).await;
    }
}

fn is_browser() -> bool {
    let global = js_sys::global();
    ["Window", "WorkerGlobalScope"].iter().any(|k| Reflect::get(&global, &JsValue::from_str(k)).is_ok_and(|v| !v.is_undefined()))
}

// ---- the store: IndexedDB (npm/src/hub-store.js) or Node's cache folders (hub-fs-store.js) ------

#[wasm_bindgen]
extern "C" {
    /// `npm/src/hub-store.js`'s IndexedDB store, Node's `hub-fs-store.js`, or the one that keeps nothing.
    pub type JsHubStore;
    #[wasm_bindgen(method, catch)]
    async fn commit(this: &JsHubStore, repo: &str, revision: &str) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(method, catch, js_name = setCommit)]
    async fn set_commit(this: &JsHubStore, repo: &str, revision: &str, commit: &str) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(method, catch)]
    async fn get(this: &JsHubStore, repo: &str, commit: &str, file: &str) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(method, catch, js_name = setAbsent)]
    async fn set_absent(this: &JsHubStore, repo: &str, commit: &str, file: &str) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(method, catch)]
    async fn link(this: &JsHubStore, repo: &str, commit: &str, file: &str, etag: &str, size: f64) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(method, catch)]
    async fn open(this: &JsHubStore, repo: &str, commit: &str, file: &str, etag: &str, size: f64) -> Result<JsValue, JsValue>;

    /// One file being stored (or read back by ranges).
    pub type JsHubPartial;
    #[wasm_bindgen(method, getter)]
    fn held(this: &JsHubPartial) -> JsValue;
    #[wasm_bindgen(method, catch)]
    async fn read(this: &JsHubPartial, start: f64, end: f64) -> Result<JsValue, JsValue>;
    /// Copies the bytes (they are a view of wasm memory).
    #[wasm_bindgen(method, catch)]
    fn write(this: &JsHubPartial, offset: f64, bytes: &[u8]) -> Result<(), JsValue>;
    #[wasm_bindgen(method, catch)]
    async fn flush(this: &JsHubPartial) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(method, catch)]
    async fn finish(this: &JsHubPartial) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(method, catch)]
    async fn discard(this: &JsHubPartial) -> Result<JsValue, JsValue>;
}

/// A store failure: `Quota` when the browser refused the room (QuotaExceededError).
fn store_error(repo: &str, file: &str, e: JsValue) -> Error {
    let name = Reflect::get(&e, &JsValue::from_str("name")).ok().and_then(|n| n.as_string()).unwrap_or_default();
    let kind = if name == "QuotaExceededError" { HubErrorKind::Quota } else { HubErrorKind::Cache };
    // The JS store is IndexedDB in browsers, the huggingface_hub cache folders in Node.
    let store = if is_browser() { "the browser cache (IndexedDB)" } else { "the Hub cache folder" };
    let mut msg = format!("{store}: {}", describe(&e));
    // The browser's own QuotaExceededError may say nothing; the weights' store words its own.
    if kind == HubErrorKind::Quota && !msg.contains("needs more room") {
        msg.push_str(
            " (the browser refused the room: the quota is used up; free some with cache.delete(), or set env.useBrowserCache = false to load without caching)",
        );
    }
    Error::Hub { repo: repo.to_string(), file: file.to_string(), kind, msg }
}

pub struct JsStore {
    inner: JsHubStore,
}

pub struct JsPartial {
    inner: JsHubPartial,
    held: Vec<Range<u64>>,
    repo: String,
    file: String,
}

impl JsPartial {
    fn error(&self, e: JsValue) -> Error {
        store_error(&self.repo, &self.file, e)
    }
}

impl Store for JsStore {
    type Partial = JsPartial;

    async fn commit(&self, repo: &str, revision: &str) -> webformers::Result<Option<String>> {
        Ok(self.inner.commit(repo, revision).await.map_err(|e| store_error(repo, "", e))?.as_string())
    }
    async fn set_commit(&self, repo: &str, revision: &str, commit: &str) -> webformers::Result<()> {
        self.inner.set_commit(repo, revision, commit).await.map_err(|e| store_error(repo, "", e)).map(drop)
    }
    async fn get(&self, repo: &str, commit: &str, file: &str) -> webformers::Result<Cached> {
        let v = self.inner.get(repo, commit, file).await.map_err(|e| store_error(repo, file, e))?;
        if v.is_null() || v.is_undefined() {
            return Ok(Cached::Unknown);
        }
        let field = |k: &str| Reflect::get(&v, &JsValue::from_str(k)).unwrap_or(JsValue::UNDEFINED);
        if field("absent").is_truthy() {
            return Ok(Cached::Absent);
        }
        if let Ok(bytes) = field("bytes").dyn_into::<Uint8Array>() {
            let bytes: SharedBytes = Arc::new(bytes.to_vec());
            return Ok(Cached::Bytes(bytes));
        }
        match (field("etag").as_string(), field("size").as_f64()) {
            // Large files are read back by ranges, never whole.
            (Some(etag), Some(size)) => Ok(Cached::Stored(FileMeta { etag, size: size as u64, location: String::new() })),
            _ => Ok(Cached::Unknown),
        }
    }
    async fn set_absent(&self, repo: &str, commit: &str, file: &str) -> webformers::Result<()> {
        self.inner.set_absent(repo, commit, file).await.map_err(|e| store_error(repo, file, e)).map(drop)
    }
    async fn link(&self, repo: &str, commit: &str, file: &str, meta: &FileMeta) -> webformers::Result<bool> {
        let linked = self.inner.link(repo, commit, file, &meta.etag, meta.size as f64).await.map_err(|e| store_error(repo, file, e))?;
        Ok(linked.is_truthy())
    }
    async fn open(&self, repo: &str, commit: &str, file: &str, meta: &FileMeta) -> webformers::Result<JsPartial> {
        let p = self.inner.open(repo, commit, file, &meta.etag, meta.size as f64).await.map_err(|e| store_error(repo, file, e))?;
        let inner: JsHubPartial = p.unchecked_into();
        let mut held: Vec<Range<u64>> = Array::from(&inner.held())
            .iter()
            .filter_map(|r| {
                let r = Array::from(&r);
                let (a, b) = (r.get(0).as_f64()?, r.get(1).as_f64()?);
                (a < b).then_some(a as u64..b as u64)
            })
            .collect();
        held.sort_by_key(|r| r.start);
        Ok(JsPartial { inner, held, repo: repo.to_string(), file: file.to_string() })
    }
}

impl PartialFile for JsPartial {
    fn held(&self) -> Vec<Range<u64>> {
        self.held.clone()
    }
    async fn read(&mut self, range: Range<u64>) -> webformers::Result<Vec<u8>> {
        let v = self.inner.read(range.start as f64, range.end as f64).await.map_err(|e| self.error(e))?;
        let bytes: Uint8Array = v.dyn_into().map_err(|v| self.error(v))?;
        Ok(bytes.to_vec())
    }
    async fn write(&mut self, offset: u64, bytes: &[u8]) -> webformers::Result<()> {
        self.inner.write(offset as f64, bytes).map_err(|e| self.error(e))
    }
    async fn flush(&mut self) -> webformers::Result<()> {
        self.inner.flush().await.map_err(|e| self.error(e)).map(drop)
    }
    async fn finish(self) -> webformers::Result<()> {
        self.inner.finish().await.map_err(|e| self.error(e)).map(drop)
    }
    async fn discard(self) -> webformers::Result<()> {
        self.inner.discard().await.map_err(|e| self.error(e)).map(drop)
    }
}

// ---- loading --------------------------------------------------------------------------------

/// What `hubLoad` fetched: a task's files and its weights on the device, or a GGUF file's tensors.
#[wasm_bindgen]
pub struct HubLoaded {
    commit: String,
    pub(crate) files: Option<HubFiles>,
    /// A GGUF file's tensors and header; taken by the loader.
    pub(crate) gguf: Option<DeviceWeights>,
}

#[wasm_bindgen]
impl HubLoaded {
    /// The commit every file came from.
    #[wasm_bindgen(getter)]
    pub fn commit(&self) -> String {
        self.commit.clone()
    }
}

/// A progress event as transformers.js shapes it.
fn progress_object(e: &ProgressEvent) -> JsValue {
    let o = Object::new();
    set(&o, "status", &JsValue::from_str(e.status.as_str()));
    set(&o, "name", &JsValue::from_str(&e.name));
    if !e.file.is_empty() {
        set(&o, "file", &JsValue::from_str(&e.file));
    }
    let json = e.to_json();
    for key in ["loaded", "total", "progress"] {
        if let Some(v) = json[key].as_f64() {
            set(&o, key, &JsValue::from(v));
        }
    }
    o.into()
}

/// Fetches a model from the Hub (`endpoint`, `repo` at `revision`) through `store`, streaming
/// its weights onto `device`: the task's `files` (each may be absent) and model.safetensors or its
/// shards; or, with `gguf`, that one GGUF file's tensors. `progress` gets transformers.js-shaped
/// events (a throwing callback is the caller's to catch). `timeout_ms`: a request that receives
/// nothing for this long is abandoned (and retried); `signal` (an AbortSignal) aborts the load.
/// Resolves to a `HubLoaded`; rejects with an `Error` whose `code` says why (`network`, `file`,
/// `auth`, `integrity`, `quota`, `cache`, `aborted`, ...).
#[allow(clippy::too_many_arguments)]
#[wasm_bindgen(js_name = hubLoad)]
pub fn hub_load(
    endpoint: String,
    token: Option<String>,
    repo: String,
    revision: String,
    files: Vec<String>,
    gguf: Option<String>,
    store: JsHubStore,
    progress: Option<Function>,
    timeout_ms: u32,
    device: &EngineDevice,
    signal: Option<web_sys::AbortSignal>,
) -> Promise {
    let device = device.device().clone();
    future_to_promise(async move {
        let hub = client(endpoint, token, store, progress, timeout_ms, signal);
        let model = hub.model(&repo, Some(&revision)).map_err(js_error)?;
        let loaded = match gguf {
            Some(file) => {
                // Pinned by a small file's HEAD (config.json, or its 404, which names the commit
                // too): fetch would follow a HEAD of the GGUF to the CDN, and a cached GGUF then
                // needs no request of its own.
                model.commit().await.map_err(js_error)?;
                let weights = model.gguf_weights(&file, &device).await.map_err(js_error)?;
                HubLoaded { commit: model.pinned().unwrap_or_default(), files: None, gguf: Some(weights) }
            }
            None => {
                let names: Vec<&str> = files.iter().map(String::as_str).collect();
                let files = model.load(&names, &device).await.map_err(js_error)?;
                HubLoaded { commit: files.commit().to_string(), files: Some(files), gguf: None }
            }
        };
        Ok(loaded.into())
    })
}

/// Small files of a Hub model without its weights (`AutoTokenizer`'s tokenizer.json and
/// tokenizer_config.json), through the same client and IndexedDB cache as `hubLoad`: resolves to
/// a `ModelFileSet` holding those that exist; a missing `required` one is a clear error.
#[wasm_bindgen(js_name = hubFiles)]
#[allow(clippy::too_many_arguments)]
pub fn hub_files(
    endpoint: String,
    token: Option<String>,
    repo: String,
    revision: String,
    required: Vec<String>,
    optional: Vec<String>,
    store: JsHubStore,
    progress: Option<Function>,
    timeout_ms: u32,
) -> Promise {
    future_to_promise(async move {
        let hub = client(endpoint, token, store, progress, timeout_ms, None);
        let model = hub.model(&repo, Some(&revision)).map_err(js_error)?;
        let mut set = crate::ModelFileSet::new(repo.clone());
        for (name, needed) in required.iter().map(|f| (f, true)).chain(optional.iter().map(|f| (f, false))) {
            match model.file(name).await.map_err(js_error)? {
                Some(bytes) => set.insert(name.clone(), (*bytes).as_ref().to_vec()),
                None if needed => {
                    return Err(js_error(Error::File { path: format!("{repo}/{name}"), msg: "missing: this file is required".into() }));
                }
                None => {}
            }
        }
        Ok(set.into())
    })
}

/// The core's Hub client over fetch and the IndexedDB store, with transformers.js-shaped progress
/// events to `progress` (an empty token is none).
fn client(
    endpoint: String,
    token: Option<String>,
    store: JsHubStore,
    progress: Option<Function>,
    timeout_ms: u32,
    signal: Option<web_sys::AbortSignal>,
) -> Hub<FetchTransport, JsStore> {
    let callback: Option<ProgressFn> = progress.map(|f| {
        let f: ProgressFn = Arc::new(move |e: &ProgressEvent| {
            let _ = f.call1(&JsValue::NULL, &progress_object(e));
        });
        f
    });
    let options = HubOptions {
        endpoint,
        token: token.filter(|t| !t.is_empty()),
        retry: RetryPolicy::default(),
        progress: callback,
        ..HubOptions::default()
    };
    Hub::new(FetchTransport { timeout_ms, signal }, JsStore { inner: store }, options)
}
