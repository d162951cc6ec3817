//! Models and processors on their own for JS (the npm package's `AutoModel`, `AutoModelFor...`
//! and `AutoProcessor`): `ModelRunner.load(class, files, device, dtype)` (or `loadFromHub`) then
//! `forward(inputs)` / `generate(inputs, options)`; `Processor.load(files)` then
//! `process(input, media)`. The engine's `webformers::models::auto` does the work; this file
//! converts tensors: in, `{type, dims, data}` objects (the package's `Tensor`) by name; out,
//! `{type, dims, data}` with a Float32Array (floats) or an Int32Array (integers, which JS makes
//! int64).

use std::rc::Rc;

use js_sys::{Array, BigInt64Array, BigUint64Array, Float32Array, Float64Array, Int32Array, Object, Reflect, Uint32Array};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;
use webformers::Error;
use webformers::files::ModelFiles;
use webformers::models::auto::{AutoModel, AutoProcessor, HostTensor, HostValues, ModelClass, NamedTensors};
use webformers::tasks::Input;

use crate::hub::HubLoaded;
use crate::media::media_from_js;
use crate::pipeline::{from_js, load_options, to_js};
use crate::{EngineDevice, Held, ModelFileSet, js_error, set};

#[wasm_bindgen]
pub struct ModelRunner {
    // Shared with the calls in flight, so that freeing the JS object mid-call is safe.
    inner: Rc<Held<AutoModel>>,
}

impl crate::OnDevice for AutoModel {
    fn device(&self) -> &webformers::Device {
        AutoModel::device(self)
    }
}

pub(crate) fn runner(model: AutoModel) -> ModelRunner {
    ModelRunner { inner: Rc::new(Held::new(model)) }
}

#[wasm_bindgen]
impl ModelRunner {
    /// The model of a folder's `files` as transformers' class `class` (`AutoModel`,
    /// `AutoModelForSequenceClassification`, ...) loads it, on `device`. Throws an `Error` with a
    /// `code`: `unsupported` (an unknown class or architecture, or a checkpoint without the
    /// class's head), `file`, `config`, `weight`, ...
    pub fn load(class: &str, files: &ModelFileSet, device: &EngineDevice, dtype: &str) -> Result<ModelRunner, JsValue> {
        let class = ModelClass::from_name(class).map_err(js_error)?;
        Ok(runner(AutoModel::load(class, files.files(), device.device(), &load_options(dtype)?).map_err(js_error)?))
    }

    /// `load` from what `hubLoad` fetched (the weights already on `device`).
    #[wasm_bindgen(js_name = loadFromHub)]
    pub fn load_from_hub(class: &str, loaded: &HubLoaded, device: &EngineDevice, dtype: &str) -> Result<ModelRunner, JsValue> {
        let class = ModelClass::from_name(class).map_err(js_error)?;
        let files =
            loaded.files.as_ref().ok_or_else(|| js_error(Error::Input("a model class loads a model folder, not a GGUF file".into())))?;
        Ok(runner(AutoModel::load(class, files, device.device(), &load_options(dtype)?).map_err(js_error)?))
    }

    /// transformers' class the model is an instance of (`AutoModelForSequenceClassification`).
    #[wasm_bindgen(getter, js_name = className)]
    pub fn class_name(&self) -> String {
        self.inner.get().class.name()
    }

    /// `'webgpu'` or `'wasm'`.
    #[wasm_bindgen(getter)]
    pub fn device(&self) -> String {
        if self.inner.get().device().is_gpu() { "webgpu" } else { "wasm" }.to_string()
    }

    /// `{model_type, architecture, id2label, vocab_size, hidden_size, max_positions}` (those the
    /// model has) and config.json as `config`.
    pub fn info(&self) -> Result<JsValue, JsValue> {
        let model = self.inner.get();
        let mut info = model.info();
        info["config"] = model.config.json.clone();
        to_js(&info)
    }

    /// The names of the inputs `forward` reads.
    #[wasm_bindgen(js_name = inputNames)]
    pub fn input_names(&self) -> Vec<String> {
        self.inner.get().input_names().iter().map(|s| s.to_string()).collect()
    }

    /// Runs the model on `inputs` (an object of `{type, dims, data}` tensors by name): resolves
    /// to an object of output tensors by name (see `AutoModel::forward`).
    pub fn forward(&self, inputs: JsValue) -> js_sys::Promise {
        let inner = self.inner.clone();
        let inputs = named_from_js(&inputs).map_err(js_error);
        future_to_promise(async move {
            let out = inner.get().forward(&inputs?).await.map_err(js_error)?;
            Ok(named_to_js(&out))
        })
    }

    /// Generates for `inputs` (`input_ids`, `attention_mask`; an encoder-decoder's
    /// `decoder_input_ids`, Whisper's `input_features`) with generation `options`: resolves to
    /// `{dims: [rows, length], data: Uint32Array}`: a decoder's rows followed by their new tokens,
    /// an encoder-decoder's decoder prompt followed by them (see `AutoModel::generate`).
    pub fn generate(&self, inputs: JsValue, options: JsValue) -> js_sys::Promise {
        let inner = self.inner.clone();
        let args = named_from_js(&inputs).map_err(js_error).and_then(|inputs| Ok((inputs, from_js(options, "options")?)));
        future_to_promise(async move {
            let (inputs, options) = args?;
            inner.get().interrupt().reset();
            let (ids, dims) = inner.get().generate(&inputs, &options).await.map_err(js_error)?;
            let out = Object::new();
            set(&out, "dims", &dims.iter().map(|&d| JsValue::from(d as u32)).collect::<Array>());
            set(&out, "data", &Uint32Array::from(&ids[..]));
            Ok(out.into())
        })
    }

    /// Stops a `generate` in flight after its current token.
    pub fn interrupt(&self) {
        self.inner.get().interrupt().interrupt();
    }
}

/// A model's processor (`AutoProcessor`).
#[wasm_bindgen]
pub struct Processor {
    inner: AutoProcessor,
    /// preprocessor_config.json.
    config: serde_json::Value,
}

#[wasm_bindgen]
impl Processor {
    /// From a model's preprocessor_config.json (in `files`).
    pub fn load(files: &ModelFileSet) -> Result<Processor, JsValue> {
        let inner = AutoProcessor::load(files.files()).map_err(js_error)?;
        let config = files.files().json(webformers::image::PREPROCESSOR_CONFIG).map_err(js_error)?.unwrap_or_default();
        Ok(Processor { inner, config })
    }

    /// preprocessor_config.json, as a plain object.
    #[wasm_bindgen(getter)]
    pub fn config(&self) -> Result<JsValue, JsValue> {
        to_js(&self.config)
    }

    /// `'image'` or `'audio'`: what `process` takes.
    #[wasm_bindgen(getter)]
    pub fn kind(&self) -> String {
        self.inner.input_kind().to_string()
    }

    /// The sampling rate of the audio the processor takes (undefined for images).
    #[wasm_bindgen(getter, js_name = samplingRate)]
    pub fn sampling_rate(&self) -> Option<u32> {
        self.inner.sampling_rate()
    }

    /// The processor's tensors for `input` (JSON: `{$media: i}` items, or an array of them) with
    /// the `media` they stand for: `pixel_values` (...) or `input_features`, by name.
    pub fn process(&self, input: JsValue, media: JsValue) -> Result<JsValue, JsValue> {
        let value = from_js(input, "input")?;
        let media = media_from_js(&media).map_err(js_error)?;
        let out = self.inner.process(Input { value: &value, media: &media }).map_err(js_error)?;
        Ok(named_to_js(&out))
    }
}

/// `{name: {type, dims, data}}` as named host tensors.
fn named_from_js(inputs: &JsValue) -> Result<NamedTensors, Error> {
    if !inputs.is_object() || Array::is_array(inputs) {
        return Err(Error::Input("the model's inputs must be an object of tensors by name ({input_ids, attention_mask, ...})".into()));
    }
    let mut named = NamedTensors::new();
    for key in Object::keys(inputs.unchecked_ref::<Object>()).iter() {
        let name = key.as_string().unwrap_or_default();
        let value = Reflect::get(inputs, &key).unwrap_or(JsValue::UNDEFINED);
        // transformers.js code passes whole tokenizer outputs; absent optional ones are undefined.
        if value.is_undefined() || value.is_null() {
            continue;
        }
        named.push((name.clone(), host_tensor(&value).map_err(|e| Error::Input(format!("input `{name}`: {e}")))?));
    }
    Ok(named)
}

/// A `Tensor` (`{type, dims, data}`) as a host tensor: integer types as i64, float32/float64 as f32.
fn host_tensor(value: &JsValue) -> Result<HostTensor, String> {
    let get = |key: &str| Reflect::get(value, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED);
    let kind = get("type").as_string().ok_or("expected a Tensor ({type, dims, data})")?;
    let dims_value = get("dims");
    if !Array::is_array(&dims_value) {
        return Err("its `dims` must be an array of sizes".into());
    }
    let dims = Array::from(&dims_value)
        .iter()
        .map(|d| d.as_f64().filter(|d| *d >= 0.0 && d.fract() == 0.0 && *d <= u32::MAX as f64).map(|d| d as usize))
        .collect::<Option<Vec<usize>>>()
        .ok_or("its `dims` must be an array of sizes")?;
    let data = get("data");
    if !js_sys::ArrayBuffer::is_view(&data) {
        return Err("its `data` must be a typed array".into());
    }
    let values = match kind.as_str() {
        "int64" => HostValues::Int(data.dyn_ref::<BigInt64Array>().ok_or("int64 data must be a BigInt64Array")?.to_vec()),
        "uint64" => HostValues::Int(
            data.dyn_ref::<BigUint64Array>()
                .ok_or("uint64 data must be a BigUint64Array")?
                .to_vec()
                .into_iter()
                .map(|v| i64::try_from(v).map_err(|_| format!("{v} is too large")))
                .collect::<Result<_, _>>()?,
        ),
        "int32" | "uint32" | "int16" | "uint16" | "int8" | "uint8" | "bool" => {
            HostValues::Int(Float64Array::new(&data).to_vec().into_iter().map(|v| v as i64).collect())
        }
        "float32" => HostValues::Float(data.dyn_ref::<Float32Array>().ok_or("float32 data must be a Float32Array")?.to_vec()),
        "float64" => HostValues::Float(Float64Array::new(&data).to_vec().into_iter().map(|v| v as f32).collect()),
        other => return Err(format!("a {other} tensor is not taken; use int64 for ids and masks, float32 for values")),
    };
    let n = match &values {
        HostValues::Int(v) => v.len(),
        HostValues::Float(v) => v.len(),
    };
    if n != dims.iter().product::<usize>() {
        return Err(format!("{n} values do not fill dims {dims:?}"));
    }
    Ok(HostTensor { dims, data: values })
}

/// Named host tensors as `{name: {type, dims, data}}`.
fn named_to_js(named: &NamedTensors) -> JsValue {
    let out = Object::new();
    for (name, t) in named {
        let o = Object::new();
        set(&o, "dims", &t.dims.iter().map(|&d| JsValue::from(d as u32)).collect::<Array>());
        match &t.data {
            HostValues::Float(v) => {
                set(&o, "type", &JsValue::from_str("float32"));
                set(&o, "data", &Float32Array::from(&v[..]));
            }
            HostValues::Int(v) => {
                set(&o, "type", &JsValue::from_str("int64"));
                let narrow: Vec<i32> = v.iter().map(|&x| x as i32).collect();
                set(&o, "data", &Int32Array::from(&narrow[..]));
            }
        }
        set(&out, name, &o);
    }
    out.into()
}
