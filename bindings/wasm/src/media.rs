//! The binary parts of a call's input (`Media`), from JS values: decoded pixels
//! (`{width, height, channels, data: Uint8Array | Uint8ClampedArray}`, what the npm package's
//! `RawImage` and the browser's `ImageData` hold) or a file's bytes (`Uint8Array`, which the
//! engine decodes: Node has no platform image or audio decoder), or decoded audio
//! (`{audio: Float32Array | Float64Array, sampling_rate}`, what the npm package's `RawAudio`
//! holds, mono). The JSON input refers to item `i` as `{"$media": i}` (see
//! `webformers::tasks::Input`).
//!
//! Audio samples are copied once from the typed array (no JSON numbers); pixels are copied once, straight from the JS buffer into the engine's `Vec<u8>`; a bad item is
//! an `Input` error naming it, never a panic.

use js_sys::{Array, Float32Array, Float64Array, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use webformers::audio::RawAudio;
use webformers::image::RawImage;
use webformers::tasks::Media;
use webformers::{Error, Result};

/// The media list of a call: `undefined`/`null` is none.
pub(crate) fn media_from_js(media: &JsValue) -> Result<Vec<Media>> {
    if media.is_undefined() || media.is_null() {
        return Ok(Vec::new());
    }
    if !Array::is_array(media) {
        return Err(Error::Input("the media of a call must be an array".into()));
    }
    Array::from(media).iter().enumerate().map(|(i, item)| one(&item).map_err(|e| Error::Input(format!("media item {i}: {e}")))).collect()
}

fn one(item: &JsValue) -> std::result::Result<Media, String> {
    if let Some(bytes) = item.dyn_ref::<Uint8Array>() {
        if bytes.length() == 0 {
            return Err("the encoded file is empty (0 bytes)".into());
        }
        return Ok(Media::Encoded(bytes.to_vec()));
    }
    if !item.is_object() {
        return Err("expected {width, height, channels, data} pixels, {audio, sampling_rate} samples or a Uint8Array of file bytes".into());
    }
    if Reflect::has(item, &JsValue::from_str("sampling_rate")).unwrap_or(false) {
        return audio_from_js(item).map(Media::Audio);
    }
    pixels(item).map(Media::Image)
}

/// `{audio: Float32Array | Float64Array, sampling_rate}` (transformers.js's `RawAudio`; `data`
/// is read when `audio` is absent) as a `RawAudio`: one copy from the typed array.
fn audio_from_js(item: &JsValue) -> std::result::Result<RawAudio, String> {
    let rate = Reflect::get(item, &JsValue::from_str("sampling_rate")).unwrap_or(JsValue::UNDEFINED);
    let rate = match rate.as_f64() {
        Some(r) if r.fract() == 0.0 && r >= 0.0 && r <= u32::MAX as f64 => r as u32,
        _ => return Err("`sampling_rate` must be a whole number of Hz".into()),
    };
    let mut data = Reflect::get(item, &JsValue::from_str("audio")).unwrap_or(JsValue::UNDEFINED);
    if data.is_undefined() {
        data = Reflect::get(item, &JsValue::from_str("data")).unwrap_or(JsValue::UNDEFINED);
    }
    let samples = if let Some(f) = data.dyn_ref::<Float32Array>() {
        f.to_vec()
    } else if let Some(f) = data.dyn_ref::<Float64Array>() {
        f.to_vec().into_iter().map(|x| x as f32).collect()
    } else {
        return Err("audio samples (`audio`) must be a Float32Array or Float64Array".into());
    };
    RawAudio::new(samples, rate).map_err(|e| match e {
        Error::Input(message) => message,
        other => other.to_string(),
    })
}

/// `{width, height, channels, data}` pixels as a `RawImage` (one copy).
pub(crate) fn image_from_js(item: &JsValue) -> Result<RawImage> {
    if !item.is_object() {
        return Err(Error::Input("an image must be {width, height, channels, data} pixels".into()));
    }
    pixels(item).map_err(Error::Input)
}

fn pixels(item: &JsValue) -> std::result::Result<RawImage, String> {
    let dim = |key: &str| -> std::result::Result<usize, String> {
        let v = Reflect::get(item, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED);
        match v.as_f64() {
            Some(n) if n >= 0.0 && n.fract() == 0.0 && n <= u32::MAX as f64 => Ok(n as usize),
            _ => Err(format!("`{key}` must be a non-negative integer")),
        }
    };
    let (width, height, channels) = (dim("width")?, dim("height")?, dim("channels")?);
    let data = Reflect::get(item, &JsValue::from_str("data")).unwrap_or(JsValue::UNDEFINED);
    RawImage::new(width, height, channels, bytes_of(&data)?).map_err(|e| match e {
        // Its message alone: the caller wraps it in an `Input` error of its own.
        Error::Input(message) => message,
        other => other.to_string(),
    })
}

/// The bytes of a `Uint8Array` or `Uint8ClampedArray` (any 8-bit view), copied once.
fn bytes_of(data: &JsValue) -> std::result::Result<Vec<u8>, String> {
    if let Some(bytes) = data.dyn_ref::<Uint8Array>() {
        return Ok(bytes.to_vec());
    }
    if let Some(clamped) = data.dyn_ref::<js_sys::Uint8ClampedArray>() {
        // A Uint8Array view on the same memory (no copy), then the one copy into wasm.
        return Ok(Uint8Array::new_with_byte_offset_and_length(&clamped.buffer(), clamped.byte_offset(), clamped.length()).to_vec());
    }
    Err("`data` must be a Uint8Array or Uint8ClampedArray of pixels".into())
}
