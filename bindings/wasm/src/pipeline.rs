//! Every task for JS through one class: `TaskPipeline.load(task, files, device, dtype)` (or
//! `loadFromHub`, or `loadGguf` for text-generation from one .gguf file), then
//! `run(input, options, onText?, media?)` → `Promise` of the value transformers.js's call resolves to.
//!
//! Nothing here knows a task: the core's registry (`webformers::tasks`) names them, loads them,
//! and runs them on JSON (`Pipeline::run`). This file only converts: JS values in through
//! serde-wasm-bindgen, the result out as plain objects and arrays, a tensor as
//! `{dims, data: Float32Array}`. The one task it names is text-generation, the only one that
//! loads from a GGUF file.

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Array, Float32Array, Object};
use serde::Serialize;
use serde_json::Value;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;
use webformers::files::ModelFiles;
use webformers::tasks::text_generation::TextGeneration;
use webformers::tasks::{self, Event, Input, LoadOptions, Output, Pipeline};
use webformers::weights::gguf::GgufFile;

use crate::hub::HubLoaded;
use crate::media::media_from_js;
use crate::{EngineDevice, Held, ModelFileSet, js_error, set, weight_dtype};

#[wasm_bindgen]
pub struct TaskPipeline {
    // Shared with the runs in flight, so that freeing the JS object mid-run is safe.
    inner: Rc<Held<Box<dyn Pipeline>>>,
}

impl crate::OnDevice for Box<dyn Pipeline> {
    fn device(&self) -> &webformers::Device {
        Pipeline::device(self.as_ref())
    }
}

pub(crate) fn load_options(dtype: &str) -> Result<LoadOptions, JsValue> {
    // `..Default::default()`: options added to core later keep their defaults here.
    #[allow(clippy::needless_update)]
    Ok(LoadOptions { dtype: weight_dtype(dtype)?, ..Default::default() })
}

/// A value as JS sees it: objects as plain objects (not `Map`s), integers as numbers.
pub(crate) fn to_js<T: Serialize + ?Sized>(value: &T) -> Result<JsValue, JsValue> {
    value
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(|e| js_error(webformers::Error::Input(format!("the result could not be handed to JavaScript: {e}"))))
}

/// A JS value (an argument of the call) as JSON; `what` names it in the error.
pub(crate) fn from_js(value: JsValue, what: &str) -> Result<Value, JsValue> {
    serde_wasm_bindgen::from_value(value)
        .map_err(|e| js_error(webformers::Error::Input(format!("the {what} must be plain data (strings, numbers, arrays, objects): {e}"))))
}

fn output_to_js(out: &Output) -> Result<JsValue, JsValue> {
    match out {
        Output::Json(value) => to_js(value),
        Output::Tensor { dims, data } => {
            let result = Object::new();
            set(&result, "dims", &dims.iter().map(|&d| JsValue::from(d as u32)).collect::<Array>());
            set(&result, "data", &Float32Array::from(&data[..]));
            Ok(result.into())
        }
    }
}

impl TaskPipeline {
    fn new(pipeline: Box<dyn Pipeline>) -> TaskPipeline {
        TaskPipeline { inner: Rc::new(Held::new(pipeline)) }
    }
}

#[wasm_bindgen]
impl TaskPipeline {
    /// Task `task` (a name or an alias) built on `device` from a model folder's `files` (weights
    /// are uploaded now). Throws an `Error` with a `code` (see errors.rs) on an unknown task, a
    /// missing file, an unknown architecture, a tensor over the adapter's limits, ...
    pub fn load(task: &str, files: &ModelFileSet, device: &EngineDevice, dtype: &str) -> Result<TaskPipeline, JsValue> {
        let pipeline = tasks::load(task, files.files(), device.device(), &load_options(dtype)?).map_err(js_error)?;
        Ok(TaskPipeline::new(pipeline))
    }

    /// Task `task` from what `hubLoad` fetched: a model folder's files, or one GGUF file's
    /// tensors (taken: a `HubLoaded` builds one GGUF model). The weights are already on `device`.
    #[wasm_bindgen(js_name = loadFromHub)]
    pub fn load_from_hub(task: &str, loaded: &mut HubLoaded, device: &EngineDevice, dtype: &str) -> Result<TaskPipeline, JsValue> {
        let info = tasks::task(task).map_err(js_error)?;
        let options = load_options(dtype)?;
        let pipeline: Box<dyn Pipeline> = match (&loaded.files, loaded.gguf.take()) {
            (_, Some(weights)) if info.loads_gguf() => {
                Box::new(TextGeneration::load_gguf_streamed(weights, device.device(), &options).map_err(js_error)?)
            }
            (_, Some(_)) => {
                return Err(js_error(webformers::Error::Input(format!("{} takes a model folder, not a GGUF file", info.name))));
            }
            (Some(files), None) => (info.load)(files, device.device(), &options).map_err(js_error)?,
            (None, None) => return Err(js_error(webformers::Error::Input("this Hub load was already used".into()))),
        };
        Ok(TaskPipeline::new(pipeline))
    }

    /// Whether this build loads .gguf files: the JS side asks before downloading one.
    #[wasm_bindgen(js_name = supportsGguf)]
    pub fn supports_gguf() -> bool {
        true
    }

    /// text-generation from one GGUF file (weights, tokenizer and chat template in its
    /// metadata), held in `files` under the name `file`.
    #[wasm_bindgen(js_name = loadGguf)]
    pub fn load_gguf(files: &ModelFileSet, file: &str, device: &EngineDevice, dtype: &str) -> Result<TaskPipeline, JsValue> {
        let bytes = files.files().require(file).map_err(js_error)?;
        let gguf = GgufFile::from_bytes(bytes, files.files().name()).map_err(js_error)?;
        let task = TextGeneration::load_gguf(gguf, device.device(), &load_options(dtype)?).map_err(js_error)?;
        Ok(TaskPipeline::new(Box::new(task)))
    }

    /// The task's canonical name.
    #[wasm_bindgen(getter)]
    pub fn task(&self) -> String {
        self.inner.get().task().name.to_string()
    }

    /// `'webgpu'` or `'wasm'`: where the task runs.
    #[wasm_bindgen(getter)]
    pub fn device(&self) -> String {
        if self.inner.get().device().is_gpu() { "webgpu" } else { "wasm" }.to_string()
    }

    /// Facts about the loaded model (`{hidden_size}`, `{labels}`, `{mask_token}`, ...), as a
    /// plain object; `null` when the task has none.
    pub fn info(&self) -> Result<JsValue, JsValue> {
        to_js(&self.inner.get().info())
    }

    /// The task's model as a `ModelRunner` over the same weights on the device (the npm
    /// package's `pipe.model`): no weight is copied, and the weights stay while either the
    /// pipeline or the runner holds them. Throws `unsupported` for tasks whose model no class
    /// covers (encoder-decoders, dual encoders, GGUF text-generation).
    pub fn model(&self) -> Result<crate::model::ModelRunner, JsValue> {
        Ok(crate::model::runner(self.inner.get().auto_model().map_err(js_error)?))
    }

    /// The task's own operation `method` (text-generation's `apply_chat_template`, `interrupt`,
    /// `reset_interrupt`) on `args`; callable while a `run` is in flight (the generation loop
    /// yields to the event loop between tokens, so an `interrupt` lands mid-generation).
    pub fn call(&self, method: &str, args: JsValue) -> Result<JsValue, JsValue> {
        let args = from_js(args, "arguments")?;
        to_js(&self.inner.get().call(method, &args).map_err(js_error)?)
    }

    /// Runs the task: `input` and `options` are the two arguments of the transformers.js call.
    /// Resolves to what that call resolves to (plain objects and arrays), or, for a tensor,
    /// `{dims, data: Float32Array}`. `on_event` gets what the task reports while it runs, each
    /// as a plain object (`Event::to_json`): `{type: 'text', text}` (streamed text),
    /// `{type: 'tokens', ids}`, `{type: 'chunk_start', time}`, `{type: 'chunk_end', time}`,
    /// `{type: 'progress', done, total, unit}`, `{type: 'warning', message}`; if it throws, the run still finishes, then the
    /// promise rejects with the first exception. `media` (optional): the images `{"$media": i}` in `input` stand for,
    /// each `{width, height, channels, data: Uint8Array | Uint8ClampedArray}` (decoded pixels)
    /// or a `Uint8Array` of file bytes that the engine decodes (see media.rs).
    pub fn run(&self, input: JsValue, options: JsValue, on_event: Option<js_sys::Function>, media: JsValue) -> js_sys::Promise {
        let inner = self.inner.clone();
        let args = from_js(input, "input").and_then(|input| {
            let options = from_js(options, "options")?;
            Ok((input, options, media_from_js(&media).map_err(js_error)?))
        });
        future_to_promise(async move {
            let (input, options, media) = args?;
            let thrown: Rc<RefCell<Option<JsValue>>> = Rc::default();
            let sink = thrown.clone();
            let mut on_event = move |event: Event<'_>| {
                if let Some(f) = &on_event
                    && let Err(e) = to_js(&event.to_json()).and_then(|event| f.call1(&JsValue::NULL, &event))
                {
                    sink.borrow_mut().get_or_insert(e);
                }
            };
            let out = inner.get().run(Input { value: &input, media: &media }, &options, &mut on_event).await.map_err(js_error)?;
            if let Some(e) = thrown.borrow_mut().take() {
                return Err(e);
            }
            output_to_js(&out)
        })
    }
}
