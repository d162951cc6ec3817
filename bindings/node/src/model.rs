//! Models on their own in Node (the npm package's `AutoModel...` classes and `pipe.model`), as
//! the wasm build's `ModelRunner`: `forward` and `generate` on tensors by name. A model lives on
//! a thread as a pipeline does (an `AutoModel` is not `Send` either): `loadModel` starts one for
//! it, and `NativePipeline::model` makes one on its pipeline's thread, over the same weights.
//! Tensors cross as `{name, dims, ints | floats}`: native.js makes every integer type i64 and
//! every float type f32 (the engine's `HostTensor`s).

use std::collections::HashMap;
use std::sync::mpsc;

use napi::bindgen_prelude::*;
use napi_derive::napi;
use serde_json::Value;
use webformers::models::auto::{AutoModel, HostTensor, HostValues, ModelClass, NamedTensors};

use crate::{
    Deferred, Job, Jobs, ModelSource, Opened, coded, js_error, load_on_thread, open_device, open_source, panicked, send, threadsafe,
};

/// What the JS side reads of a model without asking its thread.
#[derive(Clone)]
pub(crate) struct ModelFacts {
    class_name: String,
    device: String,
    /// `AutoModel::info` with config.json as `config`, as the wasm build's `info()`.
    info: Value,
    input_names: Vec<String>,
}

impl ModelFacts {
    pub(crate) fn of(model: &AutoModel) -> ModelFacts {
        let mut info = model.info();
        info["config"] = model.config.json.clone();
        ModelFacts {
            class_name: model.class.name(),
            device: if model.device().is_gpu() { "gpu" } else { "cpu" }.to_string(),
            info,
            input_names: model.input_names().iter().map(|s| s.to_string()).collect(),
        }
    }
}

/// A tensor by name, in (`forward`'s and `generate`'s inputs) or out (`forward`'s outputs):
/// integers (ids, masks) or floats.
#[napi(object)]
pub struct JsTensor {
    pub name: String,
    pub dims: Vec<u32>,
    pub ints: Option<BigInt64Array>,
    pub floats: Option<Float32Array>,
}

/// What `generate` resolves to: `[rows, length]` ids.
#[napi(object)]
pub struct Generated {
    pub dims: Vec<u32>,
    pub data: Uint32Array,
}

/// A model's call, run on its thread.
pub(crate) enum ModelOp {
    Forward { inputs: NamedTensors, reply: Deferred<Vec<JsTensor>> },
    Generate { inputs: NamedTensors, options: Value, reply: Deferred<Generated> },
}

impl ModelOp {
    pub(crate) fn reject(self, error: Error) {
        match self {
            ModelOp::Forward { reply, .. } => reply.reject(error),
            ModelOp::Generate { reply, .. } => reply.reject(error),
        }
    }
}

/// Runs `op` on `model` (None: the model could not be made again on its pipeline's thread).
pub(crate) fn run(model: Option<&AutoModel>, op: ModelOp) {
    let Some(model) = model else {
        op.reject(coded(Error::new("engine".to_string(), "this model could not be made on its pipeline".to_string())));
        return;
    };
    let caught = |f: &mut dyn FnMut()| std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    match op {
        ModelOp::Forward { inputs, reply } => {
            let mut out = None;
            match caught(&mut || out = Some(pollster::block_on(model.forward(&inputs)))) {
                Err(panic) => reply.reject(coded(panicked(panic))),
                Ok(()) => match out.expect("set by the call") {
                    Ok(named) => reply.resolve(Box::new(move |_| Ok(named.into_iter().map(tensor_out).collect()))),
                    Err(e) => reply.reject(coded(js_error(e))),
                },
            }
        }
        ModelOp::Generate { inputs, options, reply } => {
            model.interrupt().reset();
            let mut out = None;
            match caught(&mut || out = Some(pollster::block_on(model.generate(&inputs, &options)))) {
                Err(panic) => reply.reject(coded(panicked(panic))),
                Ok(()) => match out.expect("set by the call") {
                    Ok((ids, dims)) => reply.resolve(Box::new(move |_| {
                        Ok(Generated { dims: dims.iter().map(|&d| d as u32).collect(), data: Uint32Array::new(ids) })
                    })),
                    Err(e) => reply.reject(coded(js_error(e))),
                },
            }
        }
    }
}

fn tensor_out((name, tensor): (String, HostTensor)) -> JsTensor {
    let dims = tensor.dims.iter().map(|&d| d as u32).collect();
    match tensor.data {
        HostValues::Int(values) => JsTensor { name, dims, ints: Some(BigInt64Array::new(values)), floats: None },
        HostValues::Float(values) => JsTensor { name, dims, ints: None, floats: Some(Float32Array::new(values)) },
    }
}

/// The inputs as the engine's named tensors; a tensor whose values do not fill its dims is refused.
fn named_tensors(inputs: Vec<JsTensor>) -> webformers::Result<NamedTensors> {
    inputs
        .into_iter()
        .map(|t| {
            let bad = |what: String| webformers::Error::Input(format!("input `{}`: {what}", t.name));
            let dims: Vec<usize> = t.dims.iter().map(|&d| d as usize).collect();
            let data = match (&t.ints, &t.floats) {
                (Some(ints), None) => HostValues::Int(ints.to_vec()),
                (None, Some(floats)) => HostValues::Float(floats.to_vec()),
                _ => return Err(bad("expected integer or float values".into())),
            };
            let n = match &data {
                HostValues::Int(v) => v.len(),
                HostValues::Float(v) => v.len(),
            };
            if dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d)) != Some(n) {
                return Err(bad(format!("{n} values do not fill dims {dims:?}")));
            }
            Ok((t.name.clone(), HostTensor { dims, data }))
        })
        .collect()
}

/// A model on the native engine. Made by `loadModel` or `NativePipeline::model`; dropping it
/// (JS garbage collection) lets its thread drop the model.
#[napi]
pub struct NativeModel {
    jobs: Jobs,
    id: u32,
    facts: ModelFacts,
}

impl NativeModel {
    pub(crate) fn new(jobs: mpsc::Sender<Job>, id: u32, facts: ModelFacts) -> NativeModel {
        NativeModel { jobs: std::sync::Mutex::new(Some(jobs)), id, facts }
    }

    fn release(&self) {
        if let Some(jobs) = self.jobs.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take() {
            let _ = jobs.send(Job::DropModel { id: self.id });
        }
    }
}

impl Drop for NativeModel {
    fn drop(&mut self) {
        self.release();
    }
}

#[napi]
impl NativeModel {
    /// transformers' class the model is an instance of (`AutoModelForSequenceClassification`).
    #[napi(getter, js_name = "className")]
    pub fn class_name(&self) -> String {
        self.facts.class_name.clone()
    }

    /// 'cpu' or 'gpu'.
    #[napi(getter)]
    pub fn device(&self) -> String {
        self.facts.device.clone()
    }

    /// `{model_type, architecture, id2label, ...}` and config.json as `config`.
    #[napi]
    pub fn info(&self) -> Value {
        self.facts.info.clone()
    }

    /// The names of the inputs `forward` reads.
    #[napi(js_name = "inputNames")]
    pub fn input_names(&self) -> Vec<String> {
        self.facts.input_names.clone()
    }

    /// Runs the model on `inputs`: resolves to its output tensors.
    #[napi]
    pub fn forward<'env>(&self, env: &'env Env, inputs: Vec<JsTensor>) -> Result<Object<'env>> {
        let inputs = named_tensors(inputs).map_err(|e| coded(js_error(e)))?;
        let (reply, promise) = env.create_deferred::<Vec<JsTensor>, Box<dyn FnOnce(Env) -> Result<Vec<JsTensor>> + Send>>()?;
        send(&self.jobs, Job::Model { id: self.id, op: ModelOp::Forward { inputs, reply } }, "model");
        Ok(promise)
    }

    /// Generates for `inputs` with generation `options` (see the wasm build's `ModelRunner::generate`).
    #[napi]
    pub fn generate<'env>(&self, env: &'env Env, inputs: Vec<JsTensor>, options: Option<Value>) -> Result<Object<'env>> {
        let inputs = named_tensors(inputs).map_err(|e| coded(js_error(e)))?;
        let (reply, promise) = env.create_deferred::<Generated, Box<dyn FnOnce(Env) -> Result<Generated> + Send>>()?;
        let options = options.unwrap_or(Value::Null);
        send(&self.jobs, Job::Model { id: self.id, op: ModelOp::Generate { inputs, options, reply } }, "model");
        Ok(promise)
    }

    /// Lets the model go; later calls reject.
    #[napi]
    pub fn dispose(&self) {
        self.release();
    }
}

/// Loads `model` as transformers' class `class` (`AutoModel`, `AutoModelForCausalLM`, ...) from
/// `source` on `device` at `dtype`; `on_progress` gets Hub download events. Resolves to a
/// `NativeModel`; rejects with the engine's coded error.
#[napi(js_name = "loadModel")]
pub fn load_model<'env>(
    env: &'env Env,
    class: String,
    source: ModelSource,
    device: String,
    dtype: String,
    on_progress: Option<Function<'env, Value, ()>>,
) -> Result<Object<'env>> {
    let progress = threadsafe(on_progress)?;
    let name = format!("webformers {class}");
    let load = move || {
        let class = ModelClass::from_name(&class)?;
        let (device, options) = open_device(&device, &dtype)?;
        let model = match open_source(&source, &["config.json", "generation_config.json"], &device, progress)? {
            Opened::Files(files) => AutoModel::load(class, files.as_ref(), &device, &options)?,
            Opened::Gguf(_) => return Err(webformers::Error::Input("a model class loads a model folder, not a GGUF file".into())),
        };
        Ok((ModelFacts::of(&model), None, HashMap::from([(0, model)])))
    };
    load_on_thread(env, name, load, |jobs, facts| NativeModel::new(jobs, 0, facts))
}
