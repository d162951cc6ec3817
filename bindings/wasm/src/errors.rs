//! Engine errors as JavaScript `Error`s: the message is the engine's, and a `code` property says
//! what kind of failure it was, so the JS side can decide (a GPU limit in `device: 'auto'` means
//! falling back to WASM; a missing file does not).

use js_sys::Reflect;
use wasm_bindgen::JsValue;
use webformers::{Error, HubErrorKind};

/// `code`: `file`, `config`, `weight`, `tokenizer`, `unsupported`, `input`, `no_adapter`,
/// `over_limit`, `out_of_memory` (a device buffer over the memory budget or refused by the device),
/// `device_lost` (the WebGPU device is gone: a new pipeline opens a new one), `gpu`; for the Hub: `file` (no such repository, revision or file), `auth`
/// (private or gated, no valid token), `network` (unreachable, HTTP errors after retries, a
/// server that does not speak the Hub's protocol), `integrity` (bytes that do not match their
/// sha256; nothing was cached), `quota` (the browser's storage quota), `cache` (IndexedDB
/// failed), `aborted` (the load's AbortSignal fired); or `engine` for anything else (shape or dtype errors: a bug or an unsupported model).
pub fn js_error(e: Error) -> JsValue {
    let message = e.to_string();
    let code = match &e {
        Error::Hub { kind, .. } => match kind {
            HubErrorKind::NotFound => "file",
            HubErrorKind::Unauthorized | HubErrorKind::Forbidden => "auth",
            HubErrorKind::Integrity => "integrity",
            HubErrorKind::Quota => "quota",
            HubErrorKind::Cache => "cache",
            HubErrorKind::Cancelled => "aborted",
            HubErrorKind::RateLimited | HubErrorKind::Server | HubErrorKind::Network | HubErrorKind::Offline | HubErrorKind::Protocol => {
                "network"
            }
        },
        Error::File { .. } => "file",
        Error::Config(_) => "config",
        Error::Weight { .. } => "weight",
        Error::Tokenizer(_) => "tokenizer",
        Error::Unsupported(_) => "unsupported",
        Error::Input(_) => "input",
        Error::NoAdapter(_) => "no_adapter",
        Error::OverLimit { .. } => "over_limit",
        Error::OutOfMemory { .. } => "out_of_memory",
        Error::DeviceLost(_) => "device_lost",
        Error::Gpu(_) => "gpu",
        _ => "engine",
    };
    let error = js_sys::Error::new(&message);
    let _ = Reflect::set(&error, &JsValue::from_str("code"), &JsValue::from_str(code));
    error.into()
}
