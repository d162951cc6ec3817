//! Engine errors as JavaScript `Error`s: the message is the engine's, and a `code` property
//! (`webformers::Error::code`) says what kind of failure it was.

use js_sys::Reflect;
use wasm_bindgen::JsValue;
use webformers::Error;

pub fn js_error(e: Error) -> JsValue {
    let error = js_sys::Error::new(&e.to_string());
    let _ = Reflect::set(&error, &JsValue::from_str("code"), &JsValue::from_str(e.code()));
    error.into()
}
