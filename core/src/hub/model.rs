//! One model repository at one revision: pinning it to a commit, finding each file in the store or
//! on the Hub, fetching small files whole and streaming weights onto the device.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::client::{self, Target};
use super::progress::Tracker;
use super::store::{Cached, FileMeta, PartialFile, Store};
use super::stream::{self, Fetch, Format};
use super::transport::{Body, Method, Transport};
use super::{Hub, is_commit_hash, normalize_etag};
use crate::files::ModelFiles;
use crate::tokenizer::ParsedTokenizer;
use crate::weights::gguf::GgufFile;
use crate::weights::safetensors::{self, SafetensorsFile};
use crate::weights::{DeviceWeights, Shards, SharedBytes, WeightSource};
use crate::{Device, Error, HubErrorKind, Result};

const WEIGHTS_FILE: &str = "model.safetensors";
const TOKENIZER_FILE: &str = "tokenizer.json";

/// The largest file read whole into memory (configs, tokenizers, an index): the size is the
/// server's word, and a server claiming gigabytes for config.json is refused before any byte.
const WHOLE_FILE_LIMIT: u64 = 256 << 20;

/// Whether a value from the server (an ETag, a commit) may name a file or folder of the cache:
/// letters, digits, `-`, `_`, `.`, not starting with `.`, at most 128 characters.
fn is_plain_name(value: &str) -> bool {
    (1..=128).contains(&value.len()) && !value.starts_with('.') && value.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

/// What a HEAD of a resolve URL says.
enum Head {
    /// `followed`: the transport followed a redirect itself (fetch), so the Hub's own answer (its
    /// X-Repo-Commit, X-Linked-Etag) was not seen.
    Found {
        meta: FileMeta,
        commit: Option<String>,
        followed: bool,
    },
    Missing {
        commit: Option<String>,
    },
}

impl Head {
    fn commit(&self) -> Option<&str> {
        match self {
            Head::Found { commit, .. } | Head::Missing { commit } => commit.as_deref(),
        }
    }
}

/// Where a file is.
enum Located {
    Cached(SharedBytes),
    /// Complete in the store, read by ranges.
    Stored(FileMeta),
    Remote(FileMeta),
    /// Not in the repository at this commit.
    Absent,
    /// Not in the store, and the network is off limits.
    NotCached,
}

/// A file of a load, as `HubFiles` hands it to a task.
#[derive(Clone)]
enum FileState {
    Fetched(SharedBytes),
    Absent,
    NotCached,
}

/// A repository at a revision. Every file it fetches comes from the commit it pins first.
pub struct HubModel<'h, T: Transport, S: Store> {
    hub: &'h Hub<T, S>,
    repo: String,
    revision: String,
    commit: RefCell<Option<String>>,
    /// The Hub was unreachable at first contact and the store knew the revision: the rest of the
    /// load comes from the store.
    fell_back: Cell<bool>,
    tracker: Tracker,
    staging_peak: Cell<usize>,
    /// Folder listings of the pinned commit (`/api/models/{repo}/tree/{commit}/{folder}`): where a
    /// transport that follows redirects (fetch) learns an LFS file's sha256 and size.
    trees: RefCell<HashMap<String, Option<HashMap<String, (String, u64)>>>>,
}

impl<'h, T: Transport, S: Store> HubModel<'h, T, S> {
    pub(super) fn new(hub: &'h Hub<T, S>, repo: &str, revision: &str) -> Self {
        HubModel {
            hub,
            repo: repo.to_string(),
            revision: revision.to_string(),
            commit: RefCell::new(None),
            fell_back: Cell::new(false),
            tracker: Tracker::new(hub.options.progress.clone(), repo),
            staging_peak: Cell::new(0),
            trees: RefCell::new(HashMap::new()),
        }
    }

    pub fn repo(&self) -> &str {
        &self.repo
    }

    pub fn revision(&self) -> &str {
        &self.revision
    }

    /// The commit this load is pinned to, once it is.
    pub fn pinned(&self) -> Option<String> {
        self.commit.borrow().clone()
    }

    /// The most host memory one streamed tensor took (0 when every tensor arrived in one read).
    pub fn staging_peak(&self) -> usize {
        self.staging_peak.get()
    }

    fn offline(&self) -> bool {
        self.hub.options.offline || self.fell_back.get()
    }

    fn target<'a>(&'a self, file: &'a str) -> Target<'a> {
        Target { repo: &self.repo, file, token: self.hub.options.token.as_deref() }
    }

    fn resolve_url(&self, revision: &str, file: &str) -> String {
        format!("{}/{}/resolve/{}/{}", self.hub.options.endpoint, self.repo, client::encode_segment(revision), client::encode_path(file))
    }

    /// Pins the revision now (at first contact otherwise): with the HEAD of config.json.
    pub async fn commit(&self) -> Result<String> {
        if let Some(c) = self.pinned() {
            return Ok(c);
        }
        let mut head = None;
        self.first_contact("config.json", &mut head).await
    }

    /// A file of the model, whole; None when the repository has no such file (or, offline, when
    /// the cache does not have it).
    pub async fn file(&self, file: &str) -> Result<Option<SharedBytes>> {
        Ok(match self.fetch_file(file).await? {
            FileState::Fetched(b) => Some(b),
            FileState::Absent | FileState::NotCached => None,
        })
    }

    /// The weights, streamed onto `device` unless the store has them whole (then mapped):
    /// model.safetensors, or the shards model.safetensors.index.json names.
    pub async fn weights(&self, device: &Device) -> Result<Arc<dyn WeightSource>> {
        if let Some(w) = self.weights_file(WEIGHTS_FILE, device).await? {
            return Ok(w);
        }
        let index = match self.fetch_file(safetensors::INDEX_FILE).await? {
            FileState::Fetched(b) => b,
            FileState::NotCached => {
                return Err(self
                    .target(WEIGHTS_FILE)
                    .error(HubErrorKind::Offline, "the weights are not in the cache, and the network is off limits"));
            }
            FileState::Absent => {
                return Err(self
                    .target(WEIGHTS_FILE)
                    .error(HubErrorKind::NotFound, format!("the repository has neither {WEIGHTS_FILE} nor {}", safetensors::INDEX_FILE)));
            }
        };
        let origin = format!("{}/{}", self.repo, safetensors::INDEX_FILE);
        let mut parts = Vec::new();
        for shard in safetensors::shard_files((*index).as_ref(), &origin)? {
            let part = self.weights_file(&shard, device).await?;
            parts.push(part.ok_or_else(|| self.target(&shard).error(HubErrorKind::NotFound, "a shard the index names is missing"))?);
        }
        Ok(Arc::new(Shards::new(origin, parts)?))
    }

    /// Everything a task needs: `files` (each may be absent) and the weights on `device`. A
    /// repository without safetensors weights that names the model it was converted from
    /// (transformers.js's `Xenova/*` and `onnx-community/*` ONNX conversions) gets that model's
    /// weights, its own config and tokenizer.
    pub async fn load(&self, files: &[&str], device: &Device) -> Result<HubFiles> {
        let mut fetched = HashMap::new();
        // The first file pins the commit; the others come while the weights stream, so that in
        // the browser their round trips and stores hide behind the weights' transfer (natively
        // the transport blocks, and they simply come first).
        let (first, others) = files.split_first().map_or((None, &[][..]), |(f, rest)| (Some(*f), rest));
        if let Some(file) = first {
            fetched.insert(file.to_string(), self.fetch_file(file).await?);
        }
        let first_fetched = &fetched;
        let small_files = async {
            let mut out = Vec::new();
            for file in others {
                match self.fetch_file(file).await {
                    Ok(state) => out.push((file.to_string(), state)),
                    // Out of room while the weights stream: the weights most likely took it, and
                    // their own error says how much they need (and gives their chunks back), so
                    // it waits for them.
                    Err(full @ Error::Hub { kind: HubErrorKind::Quota, .. }) => return Ok(Err(full)),
                    Err(e) => return Err(e),
                }
            }
            // Parsed here, while the weights still stream, rather than by the task after them.
            // A file that does not parse is left to the task, whose error names it.
            let tokenizer_json = first_fetched.iter().chain(out.iter().map(|(f, s)| (f, s))).find_map(|(file, state)| match state {
                FileState::Fetched(bytes) if file == TOKENIZER_FILE => Some(bytes.clone()),
                _ => None,
            });
            let parsed = tokenizer_json.and_then(|json| ParsedTokenizer::parse((*json).as_ref()).ok());
            Ok(Ok((out, parsed)))
        };
        // The weights' own failure is looked at below (a conversion's base may have them).
        let (small_files, weights) = side_by_side(small_files, async { Ok(self.weights(device).await) }).await?;
        let (others, parsed_tokenizer) = match small_files {
            Ok(files) => files,
            Err(small_file_out_of_room) => {
                return Err(match weights {
                    Err(weights_out_of_room @ Error::Hub { kind: HubErrorKind::Quota, .. }) => weights_out_of_room,
                    _ => small_file_out_of_room,
                });
            }
        };
        fetched.extend(others);
        let (weights, base) = match weights {
            Err(missing @ Error::Hub { kind: HubErrorKind::NotFound, .. }) => {
                match self.converted_from().await? {
                    Some(base) => {
                        log::warn!(
                            "{} has no safetensors weights (an ONNX conversion?): using those of {base}, the model it names as its base",
                            self.repo
                        );
                        let base_model = self.hub.model(&base, None)?;
                        let weights = base_model.weights(device).await.map_err(|e| match e {
                        Error::Hub { kind: HubErrorKind::NotFound, .. } => self.target(WEIGHTS_FILE).error(
                            HubErrorKind::NotFound,
                            format!("the repository has no safetensors weights, and neither has {base}, the model it was converted from ({e})"),
                        ),
                        e => e,
                    })?;
                        (weights, Some(base_model))
                    }
                    None => return Err(missing),
                }
            }
            other => (other?, None),
        };
        if let Some(base) = &base {
            // Files the conversion left out (sentence-transformers' sentence_bert_config.json,
            // the pooling config) come from the base, so the task reads what its weights need.
            for (file, state) in fetched.iter_mut() {
                if matches!(state, FileState::Absent) {
                    *state = base.fetch_file(file).await?;
                }
            }
        }
        self.tracker.ready();
        let commit = self.pinned().unwrap_or_default();
        Ok(HubFiles { name: self.repo.clone(), commit, files: fetched, weights, parsed_tokenizer: Mutex::new(parsed_tokenizer) })
    }

    /// The repository this one was converted from: README.md's `base_model` (the model card's
    /// metadata; the first, if a list), else config.json's `_name_or_path` when it names another
    /// repository. None when neither does.
    async fn converted_from(&self) -> Result<Option<String>> {
        let is_other_repo = |id: &str| id.split('/').count() == 2 && !id.starts_with('.') && !id.starts_with('/') && id != self.repo;
        if let FileState::Fetched(card) = self.fetch_file("README.md").await?
            && let Some(base) = card_base_model(&String::from_utf8_lossy((*card).as_ref()))
            && is_other_repo(&base)
        {
            return Ok(Some(base));
        }
        if let FileState::Fetched(config) = self.fetch_file("config.json").await?
            && let Ok(config) = serde_json::from_slice::<serde_json::Value>((*config).as_ref())
            && let Some(name) = config["_name_or_path"].as_str()
            && is_other_repo(name)
        {
            return Ok(Some(name.to_string()));
        }
        Ok(None)
    }

    /// The commit, from the first request's answer (or the store, offline).
    async fn first_contact(&self, file: &str, head: &mut Option<Head>) -> Result<String> {
        if is_commit_hash(&self.revision) {
            return self.pin(&self.revision, false).await;
        }
        let cached = || async { self.hub.store.commit(&self.repo, &self.revision).await };
        if self.hub.options.offline {
            return match cached().await? {
                Some(c) => self.pin(&c, false).await,
                None => Err(self.target(file).error(
                    HubErrorKind::Offline,
                    format!("revision `{}` is not in the cache, and HF_HUB_OFFLINE forbids asking the Hub", self.revision),
                )),
            };
        }
        match self.head(&self.revision, file).await {
            Ok(h) => {
                let commit = match h.commit() {
                    Some(c) => c.to_string(),
                    // fetch followed the Hub's redirect (a large file was asked first), so its
                    // X-Repo-Commit was never seen: the revision API says. The HEAD named the
                    // branch, so it is not reused: the file is asked again by the commit.
                    None if matches!(h, Head::Found { followed: true, .. }) => {
                        let commit = self.revision_commit(file).await?;
                        return self.pin(&commit, true).await;
                    }
                    None => {
                        return Err(self.target(file).error(
                            HubErrorKind::Protocol,
                            "the server sent no X-Repo-Commit header, so the load cannot be pinned to one commit",
                        ));
                    }
                };
                *head = Some(h);
                self.pin(&commit, true).await
            }
            // Unreachable or failing: what the store knows of the revision still works.
            Err(e @ Error::Hub { kind: HubErrorKind::Network | HubErrorKind::Server, .. }) => match cached().await? {
                Some(c) => {
                    log::warn!("{e}; using the cached commit {c} of `{}`", self.revision);
                    self.fell_back.set(true);
                    self.pin(&c, false).await
                }
                None => Err(e),
            },
            Err(e) => Err(e),
        }
    }

    async fn pin(&self, commit: &str, remember: bool) -> Result<String> {
        let at = self.target("");
        if !is_plain_name(commit) || at.carries_token(commit) {
            return Err(at.error(HubErrorKind::Protocol, format!("`{commit}` is not a commit")));
        }
        if remember && commit != self.revision {
            self.hub.store.set_commit(&self.repo, &self.revision, commit).await?;
        }
        *self.commit.borrow_mut() = Some(commit.to_string());
        Ok(commit.to_string())
    }

    /// A HEAD of the resolve URL that stops at the Hub's redirect to its CDN: that answer holds the
    /// file's metadata (X-Linked-Etag, X-Linked-Size) and the CDN URL.
    async fn head(&self, revision: &str, file: &str) -> Result<Head> {
        let at = self.target(file);
        let url = self.resolve_url(revision, file);
        let sent = client::send(&self.hub.transport, &self.hub.options, Method::Head, &url, None, true, at).await?;
        let r = &sent.response;
        let commit = r.header("x-repo-commit").map(str::to_string);
        // Asked by the pinned commit, a server answering for another would mix two commits in
        // one load (and one snapshot folder).
        if let (Some(pinned), Some(answered)) = (self.pinned(), &commit)
            && pinned != *answered
        {
            let msg = format!(
                "asked for commit {pinned}, the server answered for commit `{answered}`: the revision moved or the server is inconsistent, so the load stops rather than mix two commits"
            );
            return Err(at.error(HubErrorKind::Protocol, msg));
        }
        let code = r.header("x-error-code").unwrap_or("");
        match r.status {
            200..=399 if r.redirected_to.is_some() => {
                // fetch followed the redirect to the CDN: the headers are the CDN's. The Hub lists
                // the file's sha256 (its LFS oid) and size in the commit's tree; the CDN's own ETag
                // and length are the fallback for a server without that API.
                let listed =
                    match commit.clone().or_else(|| self.pinned()).or_else(|| is_commit_hash(revision).then(|| revision.to_string())) {
                        Some(c) => self.listed(&c, file).await?,
                        None => None,
                    };
                let (etag, size) = match listed {
                    Some(found) => found,
                    None => {
                        let etag = r.header("etag").map(normalize_etag).filter(|e| !e.is_empty());
                        let size = r.header("content-length").and_then(|s| s.trim().parse::<u64>().ok());
                        match (etag, size) {
                            (Some(e), Some(n)) => (e, n),
                            _ => {
                                return Err(at.error(
                                    HubErrorKind::Protocol,
                                    "the answer has no ETag or size, and the tree API does not list the file",
                                ));
                            }
                        }
                    }
                };
                check_etag(&etag, at)?;
                Ok(Head::Found { meta: FileMeta { etag, size, location: sent.url.clone() }, commit, followed: true })
            }
            200..=399 => {
                let redirected = (300..400).contains(&r.status);
                let etag = r.header("x-linked-etag").or(r.header("etag")).map(normalize_etag).filter(|e| !e.is_empty());
                let etag = etag.ok_or_else(|| at.error(HubErrorKind::Protocol, "the answer has no ETag"))?;
                check_etag(&etag, at)?;
                let size = r.header("x-linked-size").or(if redirected { None } else { r.header("content-length") });
                let size = size
                    .and_then(|s| s.trim().parse::<u64>().ok())
                    .ok_or_else(|| at.error(HubErrorKind::Protocol, "the answer has no size (X-Linked-Size or Content-Length)"))?;
                let location = match r.header("location").filter(|_| redirected) {
                    Some(l) => client::join(&sent.url, l),
                    None => sent.url.clone(),
                };
                // A branch may move on: read a small file by its commit, not by the branch.
                let location = match &commit {
                    Some(c) if location == url => self.resolve_url(c, file),
                    _ => location,
                };
                Ok(Head::Found { meta: FileMeta { etag, size, location }, commit, followed: false })
            }
            404 if code != "RepoNotFound" && code != "RevisionNotFound" => Ok(Head::Missing { commit }),
            _ => Err(client::status_error(r, Method::Head, &sent.url, sent.authorized, sent.tries, at)),
        }
    }

    /// The commit a branch or tag points to, from `/api/models/{repo}/revision/{revision}`.
    async fn revision_commit(&self, file: &str) -> Result<String> {
        let at = self.target(file);
        let url = format!("{}/api/models/{}/revision/{}", self.hub.options.endpoint, self.repo, client::encode_segment(&self.revision));
        let (json, _) = self.get_json(&url, at).await?;
        json["sha"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| at.error(HubErrorKind::Protocol, format!("the revision API gave no commit (`sha`) for `{}`", self.revision)))
    }

    /// A file's (sha256 or git ETag, size) as the commit's tree lists it; None when the listing is
    /// unavailable or does not have it.
    async fn listed(&self, commit: &str, file: &str) -> Result<Option<(String, u64)>> {
        let folder = file.rsplit_once('/').map_or("", |(dir, _)| dir).to_string();
        if !self.trees.borrow().contains_key(&folder) {
            let listing = match self.list_folder(commit, &folder, file).await {
                Ok(l) => Some(l),
                Err(e) => {
                    log::warn!("{}: the tree of `{folder}` could not be listed ({e}); using the CDN's headers", self.repo);
                    None
                }
            };
            self.trees.borrow_mut().insert(folder.clone(), listing);
        }
        Ok(self.trees.borrow().get(&folder).and_then(|l| l.as_ref()).and_then(|l| l.get(file).cloned()))
    }

    /// Every file of one folder at `commit`: path → (the sha256 of an LFS file, else the git oid; size).
    async fn list_folder(&self, commit: &str, folder: &str, file: &str) -> Result<HashMap<String, (String, u64)>> {
        let at = self.target(file);
        let base = format!("{}/api/models/{}/tree/{}", self.hub.options.endpoint, self.repo, client::encode_segment(commit));
        let mut next = Some(if folder.is_empty() { base } else { format!("{base}/{}", client::encode_path(folder)) });
        let mut out = HashMap::new();
        // The Hub pages long listings (a Link header names the next page).
        for _ in 0..100 {
            let Some(url) = next.take() else { break };
            let (json, link) = self.get_json(&url, at).await?;
            let entries = json.as_array().ok_or_else(|| at.error(HubErrorKind::Protocol, "the tree API did not answer a list"))?;
            for e in entries.iter().filter(|e| e["type"] == "file") {
                let Some(path) = e["path"].as_str() else { continue };
                let (oid, size) = match e.get("lfs") {
                    Some(lfs) if lfs.is_object() => (lfs["oid"].as_str(), lfs["size"].as_u64()),
                    _ => (e["oid"].as_str(), e["size"].as_u64()),
                };
                if let (Some(oid), Some(size)) = (oid, size) {
                    out.insert(path.to_string(), (normalize_etag(oid), size));
                }
            }
            next = link;
        }
        Ok(out)
    }

    /// GETs a small JSON document of the Hub's API (at most 64 MiB); also the Link header's next page.
    async fn get_json(&self, url: &str, at: Target<'_>) -> Result<(serde_json::Value, Option<String>)> {
        const LIMIT: usize = 64 << 20;
        let sent = client::send(&self.hub.transport, &self.hub.options, Method::Get, url, None, false, at).await?;
        let r = sent.response;
        if !(200..300).contains(&r.status) {
            return Err(client::status_error(&r, Method::Get, &sent.url, sent.authorized, sent.tries, at));
        }
        let next = r.header("link").and_then(next_link).map(|l| client::join(&sent.url, &l));
        let mut body = r.body;
        let mut bytes = Vec::new();
        loop {
            match body.chunk().await {
                Ok(Some(c)) if bytes.len() + c.len() <= LIMIT => bytes.extend_from_slice(c),
                Ok(Some(_)) => {
                    return Err(at.error(HubErrorKind::Protocol, format!("{} answered more than {LIMIT} bytes", client::host(url))));
                }
                Ok(None) => break,
                Err(e) => return Err(at.error(HubErrorKind::Network, format!("GET {}: {e}", client::host(url)))),
            }
        }
        let json = serde_json::from_slice(&bytes)
            .map_err(|e| at.error(HubErrorKind::Protocol, format!("GET {}: not JSON: {e}", client::host(url))))?;
        Ok((json, next))
    }

    async fn locate(&self, file: &str) -> Result<Located> {
        check_file_name(file).map_err(|msg| self.target(file).error(HubErrorKind::NotFound, msg))?;
        let mut head = None;
        let commit = match self.pinned() {
            Some(c) => c,
            None => self.first_contact(file, &mut head).await?,
        };
        let store = &self.hub.store;
        match store.get(&self.repo, &commit, file).await? {
            Cached::Bytes(b) => return Ok(Located::Cached(b)),
            Cached::Stored(meta) => return Ok(Located::Stored(meta)),
            Cached::Absent => return Ok(Located::Absent),
            Cached::Unknown => {}
        }
        if self.offline() {
            return Ok(Located::NotCached);
        }
        let head = match head {
            Some(h) => h,
            None => self.head(&commit, file).await?,
        };
        let meta = match head {
            Head::Found { meta, .. } => meta,
            Head::Missing { .. } => {
                store.set_absent(&self.repo, &commit, file).await?;
                return Ok(Located::Absent);
            }
        };
        // The same bytes stored for another commit are not fetched again.
        if store.link(&self.repo, &commit, file, &meta).await? {
            match store.get(&self.repo, &commit, file).await? {
                Cached::Bytes(b) => return Ok(Located::Cached(b)),
                Cached::Stored(meta) => return Ok(Located::Stored(meta)),
                _ => {}
            }
        }
        Ok(Located::Remote(meta))
    }

    async fn fetch_file(&self, file: &str) -> Result<FileState> {
        let meta = match self.locate(file).await? {
            Located::Cached(b) => {
                self.tracker.initiate(file);
                self.tracker.done(file, (*b).as_ref().len() as u64);
                return Ok(FileState::Fetched(b));
            }
            Located::Absent => return Ok(FileState::Absent),
            Located::NotCached => return Ok(FileState::NotCached),
            Located::Stored(meta) | Located::Remote(meta) => meta,
        };
        if meta.size > WHOLE_FILE_LIMIT {
            let msg = format!("the server says it has {} bytes, more than the {WHOLE_FILE_LIMIT} a file read whole may have", meta.size);
            return Err(self.target(file).error(HubErrorKind::Protocol, msg));
        }
        self.tracker.initiate(file);
        let bytes = self
            .stream_file(file, &meta, async |fetch| {
                // The size is the server's word: reserve no more than a sane amount up front.
                let mut out = Vec::with_capacity(fetch.size().min(64 << 20) as usize);
                let size = fetch.size();
                fetch
                    .advance(size, &mut |_, b| {
                        out.extend_from_slice(b);
                        Ok(())
                    })
                    .await?;
                Ok(out)
            })
            .await?;
        self.tracker.done(file, meta.size);
        Ok(FileState::Fetched(Arc::new(bytes)))
    }

    /// One weights file; None when the repository does not have it.
    async fn weights_file(&self, file: &str, device: &Device) -> Result<Option<Arc<dyn WeightSource>>> {
        let origin = format!("{}/{file}", self.repo);
        let meta = match self.locate(file).await? {
            Located::Cached(b) => {
                self.tracker.initiate(file);
                self.tracker.done(file, (*b).as_ref().len() as u64);
                return Ok(Some(Arc::new(SafetensorsFile::from_bytes(b, &origin)?)));
            }
            Located::Absent | Located::NotCached => return Ok(None),
            Located::Stored(meta) | Located::Remote(meta) => meta,
        };
        if matches!(device, Device::Cpu) && self.hub.store.maps_files() {
            // On the CPU the stored file itself holds the weights, mapped as in a warm load:
            // nothing is copied as it streams, and host memory holds no second copy at all.
            let bytes = self.store_whole(file, &meta).await?;
            return Ok(Some(Arc::new(SafetensorsFile::from_bytes(bytes, &origin)?)));
        }
        Ok(Some(Arc::new(self.stream_tensors(file, &meta, Format::Safetensors, device).await?)))
    }

    /// A GGUF file of the repository (`file` is its path in it), whole and mapped from the store:
    /// what `TextGeneration::load_gguf` takes. Needs a store that maps files (natively).
    pub async fn gguf(&self, file: &str) -> Result<GgufFile> {
        let origin = format!("{}/{file}", self.repo);
        let bytes = match self.locate(file).await? {
            Located::Cached(b) => {
                self.tracker.initiate(file);
                self.tracker.done(file, (*b).as_ref().len() as u64);
                b
            }
            Located::Absent => return Err(self.target(file).error(HubErrorKind::NotFound, "the repository has no such file")),
            Located::NotCached => {
                return Err(self.target(file).error(HubErrorKind::Offline, "not in the cache, and the network is off limits"));
            }
            Located::Stored(meta) | Located::Remote(meta) => {
                if !self.hub.store.maps_files() {
                    return Err(Error::Unsupported(format!(
                        "{origin}: a whole GGUF needs a store that maps files; stream it with gguf_weights"
                    )));
                }
                self.store_whole(file, &meta).await?
            }
        };
        GgufFile::from_bytes(bytes, &origin)
    }

    /// A GGUF file's tensors streamed onto `device` as they arrive (ggml block types as stored),
    /// with its header kept (`DeviceWeights::header`, for `gguf::parse_header`'s metadata): for
    /// loaders that take tensors already on the device, as the browser's must.
    pub async fn gguf_weights(&self, file: &str, device: &Device) -> Result<DeviceWeights> {
        match self.locate(file).await? {
            Located::Stored(meta) | Located::Remote(meta) => self.stream_tensors(file, &meta, Format::Gguf, device).await,
            // A complete file in a mapping store: its tensors are read from the map.
            Located::Cached(bytes) => {
                let origin = format!("{}/{file}", self.repo);
                let size = (*bytes).as_ref().len() as u64;
                let meta = FileMeta { etag: String::new(), size, location: String::new() };
                let mut fetch = Fetch::new(
                    &self.hub.transport,
                    &self.hub.options,
                    self.target(file),
                    &self.tracker,
                    meta,
                    String::new(),
                    super::store::BytesPartial(bytes),
                );
                stream::stream_weights(&mut fetch, Format::Gguf, device, &origin, self.hub.options.piece_bytes).await
            }
            Located::Absent => Err(self.target(file).error(HubErrorKind::NotFound, "the repository has no such file")),
            Located::NotCached => Err(self.target(file).error(HubErrorKind::Offline, "not in the cache, and the network is off limits")),
        }
    }

    /// Streams a file into the store without looking at it, then takes it back whole (mapped).
    async fn store_whole(&self, file: &str, meta: &FileMeta) -> Result<SharedBytes> {
        self.tracker.initiate(file);
        self.stream_file(file, meta, async |fetch| {
            let size = fetch.size();
            fetch.advance(size, &mut |_, _| Ok(())).await
        })
        .await?;
        self.tracker.done(file, meta.size);
        match self.hub.store.get(&self.repo, &self.pinned().unwrap_or_default(), file).await? {
            Cached::Bytes(b) => Ok(b),
            _ => Err(self.target(file).error(HubErrorKind::Cache, "stored, but the store does not give it back")),
        }
    }

    /// Streams a weights file onto `device`, tensor by tensor, while storing it.
    async fn stream_tensors(&self, file: &str, meta: &FileMeta, format: Format, device: &Device) -> Result<DeviceWeights> {
        let origin = format!("{}/{file}", self.repo);
        self.tracker.initiate(file);
        let piece_bytes = self.hub.options.piece_bytes;
        let weights =
            self.stream_file(file, meta, async |fetch| stream::stream_weights(fetch, format, device, &origin, piece_bytes).await).await?;
        self.staging_peak.set(self.staging_peak.get().max(weights.staging_peak()));
        self.tracker.done(file, meta.size);
        Ok(weights)
    }

    /// Reads a whole file through `read`, then verifies and stores it. When the check fails on
    /// bytes partly left by an earlier download, those are discarded and it starts over once.
    async fn stream_file<R>(
        &self,
        file: &str,
        meta: &FileMeta,
        read: impl AsyncFn(&mut Fetch<'_, T, S::Partial>) -> Result<R>,
    ) -> Result<R> {
        let commit = self.pinned().unwrap_or_default();
        let mut fresh_start = false;
        loop {
            let partial = self.hub.store.open(&self.repo, &commit, file, meta).await?;
            if self.offline() && partial.held().iter().map(|r| r.end - r.start).sum::<u64>() < meta.size {
                return Err(self
                    .target(file)
                    .error(HubErrorKind::Offline, "only part of the file is in the cache, and the network is off limits"));
            }
            let mut fetch = Fetch::new(
                &self.hub.transport,
                &self.hub.options,
                self.target(file),
                &self.tracker,
                meta.clone(),
                self.resolve_url(&commit, file),
                partial,
            );
            let out = read(&mut fetch).await?;
            let resumed = fetch.resumed();
            match fetch.finish().await {
                Ok(()) => return Ok(out),
                Err(Error::Hub { kind: HubErrorKind::Integrity, .. }) if resumed && !fresh_start => {
                    log::warn!("{}: {file}: the resumed download did not verify; starting over", self.repo);
                    fresh_start = true;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// An ETag names a blob (`blobs/{etag}`): it must be a plain name, and never the token.
fn check_etag(etag: &str, at: Target) -> Result<()> {
    if !is_plain_name(etag) || at.carries_token(etag) {
        return Err(at.error(HubErrorKind::Protocol, format!("ETag `{etag}` cannot name a file")));
    }
    Ok(())
}

/// The `rel="next"` URL of a Link header.
fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|part| {
        let (url, params) = part.trim().split_once(';')?;
        let rel_next = params.split(';').any(|p| matches!(p.trim().replace(' ', "").as_str(), "rel=\"next\"" | "rel=next"));
        rel_next.then(|| url.trim().trim_start_matches('<').trim_end_matches('>').to_string())
    })
}

/// A file name inside a repository: relative, without `..`.
fn check_file_name(file: &str) -> std::result::Result<(), String> {
    if !crate::files::is_file_in_model(file) {
        return Err(format!("`{file}` is not a file name inside a repository"));
    }
    Ok(())
}

/// A model fetched for a task: the files it reads and its weights, ready for a task's `load`.
pub struct HubFiles {
    name: String,
    commit: String,
    files: HashMap<String, FileState>,
    weights: Arc<dyn WeightSource>,
    /// tokenizer.json, parsed while the weights streamed; each caller gets a copy (the task's,
    /// then the npm package's `pipe.tokenizer`), instead of the second caller parsing again.
    parsed_tokenizer: Mutex<Option<ParsedTokenizer>>,
}

impl HubFiles {
    /// The commit every file came from.
    pub fn commit(&self) -> &str {
        &self.commit
    }
}

impl ModelFiles for HubFiles {
    fn name(&self) -> &str {
        &self.name
    }

    fn read(&self, file: &str) -> Result<Option<SharedBytes>> {
        match self.files.get(file) {
            Some(FileState::Fetched(b)) => Ok(Some(b.clone())),
            Some(FileState::Absent | FileState::NotCached) => Ok(None),
            // Never read as absent: that would silently change what the task does.
            None => Err(Error::Input(format!("{}: {file} was not fetched with the model (it is missing from Task::files)", self.name))),
        }
    }

    fn require(&self, file: &str) -> Result<SharedBytes> {
        match self.files.get(file) {
            Some(FileState::NotCached) => Err(Error::Hub {
                repo: self.name.clone(),
                file: file.to_string(),
                kind: HubErrorKind::Offline,
                msg: "not in the cache, and the network is off limits (HF_HUB_OFFLINE)".into(),
            }),
            _ => self.read(file)?.ok_or_else(|| Error::file(format!("{}/{file}", self.name), "missing: this file is required")),
        }
    }

    fn weights(&self, _device: &Device) -> Result<Arc<dyn WeightSource>> {
        Ok(self.weights.clone())
    }

    fn parsed_tokenizer(&self) -> Option<ParsedTokenizer> {
        self.parsed_tokenizer.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }
}

/// `base_model` of a model card's YAML front matter (`base_model: org/name`, or a list whose
/// first item is one), else None. Only this key is read, so a line-based reading suffices.
fn card_base_model(card: &str) -> Option<String> {
    let front = card.strip_prefix("---")?;
    let front = &front[..front.find("\n---")?];
    let unquote = |v: &str| v.trim().trim_matches(|c| c == '"' || c == '\'').to_string();
    let mut lines = front.lines();
    while let Some(line) = lines.next() {
        let Some(value) = line.strip_prefix("base_model:") else { continue };
        if !value.trim().is_empty() {
            let value = unquote(value.trim().trim_start_matches('[').trim_end_matches(']').split(',').next()?);
            return (!value.is_empty()).then_some(value);
        }
        // a block list: the first "- item"
        let item = lines.next()?.trim().strip_prefix('-')?;
        let value = unquote(item);
        return (!value.is_empty()).then_some(value);
    }
    None
}

#[cfg(test)]
mod card_tests {
    use super::card_base_model;

    #[test]
    fn base_model_from_a_model_card() {
        let card = "---\nlibrary_name: transformers.js\nbase_model: sentence-transformers/all-MiniLM-L6-v2\n---\n# x";
        assert_eq!(card_base_model(card).as_deref(), Some("sentence-transformers/all-MiniLM-L6-v2"));
        let listed = "---\nbase_model:\n- Qwen/Qwen3-0.6B\n- other/one\ntags: [a]\n---\n";
        assert_eq!(card_base_model(listed).as_deref(), Some("Qwen/Qwen3-0.6B"));
        let inline = "---\nbase_model: ['google/gemma-3-270m']\n---";
        assert_eq!(card_base_model(inline).as_deref(), Some("google/gemma-3-270m"));
        assert_eq!(card_base_model("# no front matter\nbase_model: x/y"), None);
        assert_eq!(card_base_model("---\nlicense: mit\n---\n"), None);
    }
}

/// Runs two futures side by side on this thread (what one waits for, the other works meanwhile);
/// the first error ends both.
async fn side_by_side<A, B>(a: impl Future<Output = Result<A>>, b: impl Future<Output = Result<B>>) -> Result<(A, B)> {
    use std::task::Poll;
    let (mut a, mut b) = (std::pin::pin!(a), std::pin::pin!(b));
    let (mut done_a, mut done_b) = (None, None);
    std::future::poll_fn(move |cx| {
        if done_a.is_none()
            && let Poll::Ready(r) = a.as_mut().poll(cx)
        {
            done_a = Some(r?);
        }
        if done_b.is_none()
            && let Poll::Ready(r) = b.as_mut().poll(cx)
        {
            done_b = Some(r?);
        }
        match (done_a.take(), done_b.take()) {
            (Some(x), Some(y)) => Poll::Ready(Ok((x, y))),
            (x, y) => {
                (done_a, done_b) = (x, y);
                Poll::Pending
            }
        }
    })
    .await
}
