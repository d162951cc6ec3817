//! Models from the Hugging Face Hub: one implementation of the protocol, over a `Transport`
//! (natively a blocking HTTP client, in the browser `fetch`) into a `Store` (natively the
//! huggingface_hub cache, in the browser IndexedDB).
//!
//! A load pins its revision to one commit at first contact (the `X-Repo-Commit` header), so every
//! file comes from that commit. Small files are fetched whole; weights are read by Range requests
//! in file order and uploaded to the device tensor by tensor as they arrive, while their bytes go
//! to the store, which shows a file only once it is complete and matches its sha256 ETag. An
//! interrupted download resumes where it stopped; a second load makes no weight requests.
//!
//! ```text
//! Hub::new(transport, store, options).model("org/name", Some("main"))?  -> HubModel
//!     .load(&task.files(), &device).await?                               -> HubFiles: ModelFiles
//! FeatureExtraction::load(&files, &device, &options)
//! ```

mod client;
mod model;
mod progress;
mod store;
mod stream;
mod transport;

#[cfg(not(target_arch = "wasm32"))]
mod cache;
#[cfg(not(target_arch = "wasm32"))]
mod native;

pub use client::RetryPolicy;
pub use model::{HubFiles, HubModel};
pub use progress::{ProgressEvent, ProgressFn, ProgressStatus};
pub use store::{Cached, FileMeta, MemoryPartial, MemoryStore, PartialFile, Store};
pub use stream::read_safetensors;
pub use transport::{Body, Method, Request, Response, Transport, TransportError};

#[cfg(not(target_arch = "wasm32"))]
pub use cache::{BlobFile, HfCache};
#[cfg(not(target_arch = "wasm32"))]
pub use native::{DEFAULT_READ_TIMEOUT, NativeHub, UreqBody, UreqTransport};

use crate::{Error, Result};

pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

/// What a Hub client is told: where the Hub is, who asks, and how to fetch.
#[derive(Clone)]
pub struct HubOptions {
    /// The Hub, or a mirror (`HF_ENDPOINT`), without a trailing slash.
    pub endpoint: String,
    /// Sent as `Authorization: Bearer` to the endpoint's origin only (`HF_TOKEN`).
    pub token: Option<String>,
    /// Use the store only and never the network (`HF_HUB_OFFLINE=1`).
    pub offline: bool,
    pub retry: RetryPolicy,
    /// Weights are handed on and stored in pieces of about this many bytes, cut at tensor
    /// boundaries (in the browser, the most a load holds before IndexedDB has it). One request
    /// brings them all: its body is read on from piece to piece.
    pub piece_bytes: u64,
    pub progress: Option<ProgressFn>,
}

impl Default for HubOptions {
    fn default() -> Self {
        HubOptions {
            endpoint: DEFAULT_ENDPOINT.to_string(),
            token: None,
            offline: false,
            retry: RetryPolicy::default(),
            piece_bytes: 8 << 20,
            progress: None,
        }
    }
}

impl std::fmt::Debug for HubOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubOptions")
            .field("endpoint", &self.endpoint)
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .field("offline", &self.offline)
            .field("retry", &self.retry)
            .field("piece_bytes", &self.piece_bytes)
            .finish()
    }
}

/// A Hub client: a transport, a store, and options.
pub struct Hub<T: Transport, S: Store> {
    transport: T,
    store: S,
    options: HubOptions,
}

impl<T: Transport, S: Store> Hub<T, S> {
    pub fn new(transport: T, store: S, mut options: HubOptions) -> Hub<T, S> {
        options.endpoint = options.endpoint.trim_end_matches('/').to_string();
        Hub { transport, store, options }
    }

    pub fn options(&self) -> &HubOptions {
        &self.options
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    pub fn transport(&self) -> &T {
        &self.transport
    }

    /// A model repository (`org/name`) at `revision` (a branch, tag or commit; default `main`).
    /// Nothing is fetched yet.
    pub fn model(&self, repo: &str, revision: Option<&str>) -> Result<HubModel<'_, T, S>> {
        check_repo_id(repo)?;
        let revision = revision.unwrap_or("main");
        if revision.is_empty() || revision.split('/').any(|s| s.is_empty() || s == "." || s == "..") {
            return Err(Error::Input(format!("`{revision}` is not a revision (a branch, tag or commit)")));
        }
        Ok(HubModel::new(self, repo, revision))
    }
}

/// Whether `s` can be a Hub repository id: `name` or `org/name`, of letters, digits, `-`, `_`, `.`.
pub fn is_repo_id(s: &str) -> bool {
    check_repo_id(s).is_ok()
}

fn check_repo_id(repo: &str) -> Result<()> {
    let parts: Vec<&str> = repo.split('/').collect();
    let ok = (1..=2).contains(&parts.len())
        && repo.len() <= 200
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
                && !p.starts_with(['-', '.'])
                && !p.ends_with(['-', '.'])
                && !p.contains("--")
                && !p.contains("..")
        });
    if ok { Ok(()) } else { Err(Error::Input(format!("`{repo}` is not a Hub repository id (`org/name`)"))) }
}

/// The Hub's ETag, made a file name: `W/"abc"` and `"abc"` are `abc`.
pub(crate) fn normalize_etag(etag: &str) -> String {
    let e = etag.trim();
    e.strip_prefix("W/").unwrap_or(e).trim_matches('"').to_string()
}

/// A full commit hash (40 hex digits), which pins nothing more.
pub(crate) fn is_commit_hash(s: &str) -> bool {
    s.len() == 40 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

// Native only: they block on futures with pollster.
#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests;
