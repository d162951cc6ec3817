//! The one error type of the engine. Every fallible call returns it; nothing panics on bad input,
//! because a panic in wasm kills the page's instance.

use std::fmt;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("shape error in {op}: {msg}")]
    Shape { op: &'static str, msg: String },

    #[error("dtype error in {op}: {msg}")]
    DType { op: &'static str, msg: String },

    #[error("tensors live on different devices ({0})")]
    DeviceMismatch(&'static str),

    #[error("weight `{name}`: {msg}")]
    Weight { name: String, msg: String },

    #[error("{path}: {msg}")]
    File { path: String, msg: String },

    #[error("model config: {0}")]
    Config(String),

    #[error("unsupported: {0}")]
    Unsupported(String),

    #[error("tokenizer: {0}")]
    Tokenizer(String),

    #[error("GPU: {0}")]
    Gpu(String),

    #[error("no GPU adapter is available: {0}")]
    NoAdapter(String),

    #[error("{what} needs {needed} bytes in one binding, more than this adapter's limit of {limit} bytes")]
    OverLimit { what: String, needed: u64, limit: u64 },

    /// The GPU device is gone (destroyed, a driver reset, the browser's `GPUDevice.destroy()`):
    /// every pipeline on it fails from then on; a new device and a reload recover.
    #[error("the GPU device was lost ({0}); open a new device and load the model again")]
    DeviceLost(String),

    /// Memory that is not there: a GPU buffer over the memory budget (`GpuOptions::memory_budget`)
    /// or refused by the device, or weights over what wasm32's 4 GiB memory has left.
    #[error("out of memory: {what} needs {needed} bytes, and {why}")]
    OutOfMemory { what: String, needed: u64, why: String },

    #[error("invalid input: {0}")]
    Input(String),

    /// Fetching a file of a Hub repository failed; `kind` says why, for callers that react to it.
    #[error("{repo}: {file}: {msg}")]
    Hub { repo: String, file: String, kind: HubErrorKind, msg: String },
}

impl Error {
    /// A short name for what kind of failure this is, the `code` of the JavaScript `Error` both
    /// bindings throw, so that front ends decide without parsing messages (a GPU limit under
    /// device 'auto' means falling back to the CPU; a missing file does not): `file`, `config`,
    /// `weight`, `tokenizer`, `unsupported`, `input`, `no_adapter`, `over_limit`,
    /// `out_of_memory`, `device_lost`, `gpu`; for the Hub `file` (no such repository, revision or
    /// file), `auth`, `network`, `integrity`, `quota`, `cache`, `aborted`; `engine` for the rest
    /// (shape or dtype errors: a bug or an unsupported model).
    pub fn code(&self) -> &'static str {
        match self {
            Error::Hub { kind, .. } => match kind {
                HubErrorKind::NotFound => "file",
                HubErrorKind::Unauthorized | HubErrorKind::Forbidden => "auth",
                HubErrorKind::Integrity => "integrity",
                HubErrorKind::Quota => "quota",
                HubErrorKind::Cache => "cache",
                HubErrorKind::Cancelled => "aborted",
                HubErrorKind::RateLimited
                | HubErrorKind::Server
                | HubErrorKind::Network
                | HubErrorKind::Offline
                | HubErrorKind::Protocol => "network",
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
        }
    }
}

/// Why a Hub request failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HubErrorKind {
    /// 404: no such repository, revision or file.
    NotFound,
    /// 401: the repository is private or gated, or does not exist, and no valid token was sent.
    Unauthorized,
    /// 403: the token is valid but has no access (a gated repository whose terms were not accepted).
    Forbidden,
    /// 429, after retrying.
    RateLimited,
    /// 5xx, after retrying.
    Server,
    /// The connection failed or broke, after retrying.
    Network,
    /// The bytes do not match the file's sha256 ETag or size; nothing was cached.
    Integrity,
    /// `HF_HUB_OFFLINE` forbids the request and the cache does not have the file.
    Offline,
    /// The server answered something a Hub never does (no commit header, a bad range).
    Protocol,
    /// The local cache could not be read or written.
    Cache,
    /// The local cache is out of room (the browser's storage quota for the page's origin).
    Quota,
    /// The caller aborted the load (an AbortSignal): what was complete stays cached, a file in
    /// progress stays resumable and invisible.
    Cancelled,
}

impl Error {
    pub(crate) fn shape(op: &'static str, msg: impl fmt::Display) -> Self {
        Error::Shape { op, msg: msg.to_string() }
    }
    pub(crate) fn dtype(op: &'static str, msg: impl fmt::Display) -> Self {
        Error::DType { op, msg: msg.to_string() }
    }
    pub(crate) fn weight(name: impl Into<String>, msg: impl fmt::Display) -> Self {
        Error::Weight { name: name.into(), msg: msg.to_string() }
    }
    /// `e`, met while making weight `name`: device faults keep their kind (so a caller can fall
    /// back to another device) with the weight named; any other error becomes a `Weight` error.
    pub(crate) fn in_weight(name: &str, e: Error) -> Self {
        match e {
            Error::OverLimit { what, needed, limit } => Error::OverLimit { what: format!("weight `{name}` ({what})"), needed, limit },
            Error::OutOfMemory { what, needed, why } => Error::OutOfMemory { what: format!("weight `{name}` ({what})"), needed, why },
            e @ Error::DeviceLost(_) => e,
            e => Error::weight(name, e),
        }
    }

    /// Whether `e` is the GPU's fault rather than the model's or the input's: no adapter, a lost
    /// device, memory or a limit exceeded, a wgpu error. Device `auto` falls back to the CPU on these.
    pub fn is_device_fault(&self) -> bool {
        matches!(self, Error::NoAdapter(_) | Error::DeviceLost(_) | Error::OutOfMemory { .. } | Error::OverLimit { .. } | Error::Gpu(_))
    }

    pub(crate) fn file(path: impl fmt::Display, msg: impl fmt::Display) -> Self {
        Error::File { path: path.to_string(), msg: msg.to_string() }
    }
}
