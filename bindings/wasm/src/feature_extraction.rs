//! feature-extraction for JS: `FeatureExtractionTask.load(files, device, dtype)` then
//! `run(texts, pooling, normalize)` → `Promise<{dims: number[], data: Float32Array}>`.

use std::rc::Rc;

use js_sys::{Array, Float32Array, Object};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;
use webformers::tasks::LoadOptions;
use webformers::tasks::feature_extraction::{FeatureExtraction, Pooling};

use crate::hub::HubLoaded;
use crate::{EngineDevice, ModelFileSet, js_error, set, weight_dtype};

#[wasm_bindgen]
pub struct FeatureExtractionTask {
    // Shared with the runs in flight, so that freeing the JS object mid-run is safe.
    inner: Rc<FeatureExtraction>,
}

#[wasm_bindgen]
impl FeatureExtractionTask {
    /// Builds the model on `device` from `files` (weights are uploaded now). Throws an `Error`
    /// with a `code` (see errors.rs) on a missing file, an unknown architecture, a tensor over the
    /// adapter's limits, ...
    pub fn load(files: &ModelFileSet, device: &EngineDevice, dtype: &str) -> Result<FeatureExtractionTask, JsValue> {
        // `..Default::default()`: options added to core later keep their defaults here.
        #[allow(clippy::needless_update)]
        let options = LoadOptions { dtype: weight_dtype(dtype)?, ..Default::default() };
        let task = FeatureExtraction::load(files.files(), device.device(), &options).map_err(js_error)?;
        Ok(FeatureExtractionTask { inner: Rc::new(task) })
    }

    /// Builds the model from what `hubLoad` fetched (its weights are already on `device`, the one
    /// they were streamed to).
    #[wasm_bindgen(js_name = loadFromHub)]
    pub fn load_from_hub(loaded: &HubLoaded, device: &EngineDevice, dtype: &str) -> Result<FeatureExtractionTask, JsValue> {
        #[allow(clippy::needless_update)]
        let options = LoadOptions { dtype: weight_dtype(dtype)?, ..Default::default() };
        let files = loaded
            .files
            .as_ref()
            .ok_or_else(|| js_error(webformers::Error::Input("feature-extraction takes a model folder, not a GGUF file".into())))?;
        let task = FeatureExtraction::load(files, device.device(), &options).map_err(js_error)?;
        Ok(FeatureExtractionTask { inner: Rc::new(task) })
    }

    /// The embedding width.
    #[wasm_bindgen(getter, js_name = hiddenSize)]
    pub fn hidden_size(&self) -> usize {
        self.inner.hidden_size()
    }

    /// Embeds `texts`: `pooling` is `'none'`, `'mean'` or `'cls'`. Resolves to
    /// `{dims, data}` (`[texts, hidden]` pooled, `[texts, tokens, hidden]` with `'none'`).
    pub fn run(&self, texts: Vec<String>, pooling: &str, normalize: bool) -> js_sys::Promise {
        let inner = self.inner.clone();
        let pooling = pooling.parse::<Pooling>();
        future_to_promise(async move {
            let pooling = pooling.map_err(js_error)?;
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            let out = inner.run(&refs, pooling, normalize).await.map_err(js_error)?;
            let result = Object::new();
            set(&result, "dims", &out.dims.iter().map(|&d| JsValue::from(d as u32)).collect::<Array>());
            set(&result, "data", &Float32Array::from(&out.data[..]));
            Ok(result.into())
        })
    }
}
