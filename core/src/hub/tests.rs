//! The protocol against an in-memory Hub (no sockets): pinning, redirects and where the token
//! goes, streaming, resuming, retries and verification. tests/hub.rs runs the same against a real
//! HTTP server and the native cache.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::*;
use crate::weights::WeightSource;
use crate::{DType, Device, HubErrorKind};

const HUB: &str = "http://hub.test";
const CDN: &str = "http://cdn.test";
const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";
const REPO: &str = "org/tiny";

#[derive(Clone, Debug)]
enum Fault {
    /// The next request for the file answers this status (with Retry-After, in seconds).
    Status(&'static str, u16, Option<u32>),
    /// The next body of the file breaks after this many bytes.
    Break(&'static str, usize),
    /// Every body of the file has one byte changed.
    Corrupt(&'static str),
}

#[derive(Clone, Debug)]
struct Logged {
    method: Method,
    url: String,
    range: Option<String>,
    authorized: bool,
}

struct MockHub {
    files: HashMap<String, Vec<u8>>,
    token: Option<String>,
    /// Follows redirects itself and drops Authorization off the Hub's origin, as fetch does; the
    /// CDN's ETag is then not the sha256 (as S3's is not), so only the tree API gives it.
    follow: bool,
    faults: RefCell<Vec<Fault>>,
    log: RefCell<Vec<Logged>>,
    slept: RefCell<Vec<Duration>>,
    /// The caller's abort: fired once the weights' bodies brought this many bytes in all (the
    /// read that fires it fails, as fetch's does when its signal fires).
    cancel_after_bytes: std::cell::Cell<Option<usize>>,
    cancelled: Rc<std::cell::Cell<bool>>,
}

struct MockBody {
    data: Vec<u8>,
    pos: usize,
    break_at: Option<usize>,
    /// Fires the caller's abort at `break_at` instead of a reset.
    abort: Option<Rc<std::cell::Cell<bool>>>,
}

impl Body for MockBody {
    async fn chunk(&mut self) -> Result<Option<&[u8]>, TransportError> {
        if self.break_at.is_some_and(|b| self.pos >= b) {
            if let Some(flag) = &self.abort {
                flag.set(true);
                return Err(TransportError("The operation was aborted".into()));
            }
            return Err(TransportError("connection reset".into()));
        }
        // Odd-sized pieces, so that tensors straddle them.
        let end = self.data.len().min(self.pos + 4099).min(self.break_at.unwrap_or(usize::MAX));
        let start = std::mem::replace(&mut self.pos, end);
        Ok((end > start).then(|| &self.data[start..end]))
    }
}

fn sha256_hex(b: &[u8]) -> String {
    stream::hex(&Sha256::digest(b))
}

fn is_lfs(file: &str) -> bool {
    file.ends_with(".safetensors")
}

impl MockHub {
    fn new(files: &[(&str, Vec<u8>)]) -> MockHub {
        MockHub {
            files: files.iter().map(|(n, b)| (n.to_string(), b.clone())).collect(),
            token: None,
            follow: false,
            faults: RefCell::new(Vec::new()),
            log: RefCell::new(Vec::new()),
            slept: RefCell::new(Vec::new()),
            cancel_after_bytes: std::cell::Cell::new(None),
            cancelled: Rc::new(std::cell::Cell::new(false)),
        }
    }

    fn take_fault(&self, file: &str, pick: impl Fn(&Fault) -> bool) -> Option<Fault> {
        let mut faults = self.faults.borrow_mut();
        let i = faults
            .iter()
            .position(|f| pick(f) && matches!(f, Fault::Status(n, ..) | Fault::Break(n, _) | Fault::Corrupt(n) if *n == file))?;
        Some(if matches!(faults[i], Fault::Corrupt(_)) { faults[i].clone() } else { faults.remove(i) })
    }

    fn gets(&self, file: &str) -> Vec<Logged> {
        self.log.borrow().iter().filter(|l| l.method == Method::Get && l.url.contains(file)).cloned().collect()
    }

    fn respond(&self, status: u16, headers: &[(&str, String)], data: Vec<u8>, break_at: Option<usize>) -> Response<MockBody> {
        let headers = headers.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
        Response { status, headers, body: MockBody { data, pos: 0, break_at, abort: None }, redirected_to: None }
    }

    /// The Hub's API: a commit's tree (with each LFS file's sha256) and a revision's commit.
    fn api(&self, path: &str) -> Response<MockBody> {
        let json = if path == format!("{REPO}/revision/main") {
            serde_json::json!({ "id": REPO, "sha": COMMIT })
        } else if path == format!("{REPO}/tree/{COMMIT}") {
            let mut names: Vec<&String> = self.files.keys().collect();
            names.sort();
            let entries: Vec<serde_json::Value> = names
                .into_iter()
                .map(|name| {
                    let content = &self.files[name];
                    let mut e =
                        serde_json::json!({ "type": "file", "path": name, "size": content.len(), "oid": format!("git-{}", content.len()) });
                    if is_lfs(name) {
                        e["lfs"] = serde_json::json!({ "oid": sha256_hex(content), "size": content.len() });
                    }
                    e
                })
                .collect();
            serde_json::Value::Array(entries)
        } else {
            return self.respond(404, &[("x-error-code", "RevisionNotFound".into())], Vec::new(), None);
        };
        let data = json.to_string().into_bytes();
        self.respond(200, &[("content-length", data.len().to_string())], data, None)
    }

    async fn answer(&self, request: &Request) -> Result<Response<MockBody>, TransportError> {
        if self.cancelled.get() {
            panic!("a request after the abort: {}", request.url);
        }
        let header = |n: &str| request.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(n)).map(|(_, v)| v.clone());
        let authorization = header("authorization");
        let range = header("range");
        self.log.borrow_mut().push(Logged {
            method: request.method,
            url: request.url.clone(),
            range: range.clone(),
            authorized: authorization.is_some(),
        });
        if let Some(path) = request.url.strip_prefix(&format!("{HUB}/api/models/")) {
            return Ok(self.api(path));
        }
        let (file, on_cdn) = if let Some(rest) = request.url.strip_prefix(&format!("{CDN}/")) {
            (rest.split('?').next().unwrap_or("").to_string(), true)
        } else {
            let rest = request.url.strip_prefix(&format!("{HUB}/{REPO}/resolve/")).ok_or(TransportError("no such host".into()))?;
            let (rev, file) = rest.split_once('/').unwrap_or((rest, ""));
            if rev != "main" && rev != COMMIT {
                return Ok(self.respond(404, &[("x-error-code", "RevisionNotFound".into())], Vec::new(), None));
            }
            (file.to_string(), false)
        };
        if on_cdn && authorization.is_some() {
            panic!("the CDN received the token");
        }
        if let Some(token) = &self.token
            && !on_cdn
            && authorization.as_deref() != Some(&format!("Bearer {token}"))
        {
            let status = if authorization.is_some() { 403 } else { 401 };
            return Ok(self.respond(status, &[("x-error-code", "GatedRepo".into())], Vec::new(), None));
        }
        if let Some(Fault::Status(_, status, after)) = self.take_fault(&file, |f| matches!(f, Fault::Status(..))) {
            let mut h = vec![];
            if let Some(s) = after {
                h.push(("retry-after", s.to_string()));
            }
            return Ok(self.respond(status, &h, Vec::new(), None));
        }
        let Some(content) = self.files.get(&file) else {
            return Ok(self.respond(404, &[("x-error-code", "EntryNotFound".into()), ("x-repo-commit", COMMIT.into())], Vec::new(), None));
        };
        let sha = sha256_hex(content);
        let size = content.len().to_string();
        if !on_cdn && is_lfs(&file) {
            let h = [
                ("location", format!("{CDN}/{file}?signed=1")),
                ("x-linked-etag", format!("\"{sha}\"")),
                ("x-linked-size", size),
                ("x-repo-commit", COMMIT.into()),
                ("etag", "\"pointer-etag\"".into()),
            ];
            return Ok(self.respond(302, &h, Vec::new(), None));
        }
        let etag = match is_lfs(&file) {
            true if self.follow => "cdn-etag".to_string(),
            true => sha,
            false => format!("git-{}", content.len()),
        };
        let mut data = content.clone();
        if self.take_fault(&file, |f| matches!(f, Fault::Corrupt(_))).is_some() {
            let mid = data.len() / 2;
            data[mid] ^= 0xff;
        }
        let mut status = 200;
        let mut h = vec![("etag", format!("\"{etag}\""))];
        if !on_cdn {
            h.push(("x-repo-commit", COMMIT.to_string()));
        }
        if let Some(r) = range.as_deref().and_then(|r| r.strip_prefix("bytes=")) {
            let (a, b) = r.split_once('-').unwrap();
            let a: usize = a.parse().unwrap();
            let b: usize = if b.is_empty() { data.len() - 1 } else { b.parse::<usize>().unwrap().min(data.len() - 1) };
            h.push(("content-range", format!("bytes {a}-{b}/{}", data.len())));
            data = data[a..=b].to_vec();
            status = 206;
        }
        h.push(("content-length", data.len().to_string()));
        if request.method == Method::Head {
            return Ok(self.respond(status, &h, Vec::new(), None));
        }
        let break_at = match self.take_fault(&file, |f| matches!(f, Fault::Break(..))) {
            Some(Fault::Break(_, n)) => Some(n),
            _ => None,
        };
        let cancel_at = self.cancel_after_bytes.get().filter(|_| file == "model.safetensors" && request.method == Method::Get);
        let mut response = self.respond(status, &h, data, break_at.or(cancel_at));
        if cancel_at.is_some() {
            response.body.abort = Some(self.cancelled.clone());
        }
        Ok(response)
    }
}

impl Transport for MockHub {
    type Body = MockBody;

    async fn send(&self, request: &Request) -> Result<Response<MockBody>, TransportError> {
        if !self.follow {
            return self.answer(request).await;
        }
        let mut request = request.clone();
        let mut redirected_to = None;
        loop {
            let mut response = self.answer(&request).await?;
            let location = response.header("location").filter(|_| (300..400).contains(&response.status)).map(str::to_string);
            let Some(next) = location else {
                response.redirected_to = redirected_to;
                return Ok(response);
            };
            // As browsers do: Authorization never follows a redirect to another origin.
            if client::origin(&next) != client::origin(&request.url) {
                request.headers.retain(|(k, _)| !k.eq_ignore_ascii_case("authorization"));
            }
            request.url = next.clone();
            redirected_to = Some(next);
        }
    }

    async fn sleep(&self, duration: Duration) {
        self.slept.borrow_mut().push(duration);
    }

    fn cancelled(&self) -> bool {
        self.cancelled.get()
    }
}

/// A safetensors file of f32 tensors (name, dims), values counting up from `seed`.
fn safetensors_file(tensors: &[(&str, Vec<usize>)], seed: f32) -> (Vec<u8>, Vec<Vec<f32>>) {
    let mut header = serde_json::Map::new();
    let mut data = Vec::new();
    let mut values = Vec::new();
    for (i, (name, dims)) in tensors.iter().enumerate() {
        let n: usize = dims.iter().product();
        let v: Vec<f32> = (0..n).map(|j| seed + (i * 1000 + j) as f32).collect();
        let start = data.len();
        data.extend(v.iter().flat_map(|x| x.to_le_bytes()));
        header.insert(name.to_string(), serde_json::json!({"dtype": "F32", "shape": dims, "data_offsets": [start, data.len()]}));
        values.push(v);
    }
    let mut h = serde_json::to_vec(&header).unwrap();
    while h.len() % 8 != 0 {
        h.push(b' ');
    }
    let mut file = (h.len() as u64).to_le_bytes().to_vec();
    file.extend(h);
    file.extend(data);
    (file, values)
}

fn tiny_repo() -> (Vec<(&'static str, Vec<u8>)>, Vec<Vec<f32>>) {
    let shapes = [("a", vec![300, 40]), ("b", vec![7]), ("c", vec![64, 100]), ("d", vec![3, 3])];
    let (weights, values) = safetensors_file(&shapes, 0.5);
    (vec![("config.json", br#"{"model_type": "test"}"#.to_vec()), ("model.safetensors", weights)], values)
}

fn options() -> HubOptions {
    HubOptions {
        endpoint: HUB.into(),
        piece_bytes: 10_000,
        retry: RetryPolicy { base_delay: Duration::from_millis(10), ..Default::default() },
        ..Default::default()
    }
}

fn check_weights(w: std::sync::Arc<dyn WeightSource>, values: &[Vec<f32>]) {
    let vb = crate::weights::Weights::new(w, &Device::Cpu, crate::weights::Precision::default());
    let dims = [vec![300, 40], vec![7], vec![64, 100], vec![3, 3]];
    for ((name, v), d) in ["a", "b", "c", "d"].iter().zip(values).zip(&dims) {
        let t = vb.get(name, d).unwrap();
        assert_eq!(t.dtype(), DType::F32);
        assert_eq!(&t.to_vec_f32_blocking().unwrap(), v, "tensor {name}");
    }
}

fn block<F: std::future::Future>(f: F) -> F::Output {
    pollster::block_on(f)
}

#[test]
fn a_cold_load_pins_streams_by_ranges_and_keeps_the_token_off_the_cdn() {
    let (files, values) = tiny_repo();
    let mut mock = MockHub::new(&files);
    mock.token = Some("secret".into());
    let store = MemoryStore::new();
    let events = std::rc::Rc::new(RefCell::new(Vec::new()));
    let sink = events.clone();
    let mut opts = options();
    opts.token = Some("secret".into());
    opts.progress = Some(std::sync::Arc::new(move |e: &ProgressEvent| sink.borrow_mut().push(e.clone())));
    let hub = Hub::new(mock, store.clone(), opts);
    let model = hub.model(REPO, None).unwrap();
    let loaded = block(model.load(&["config.json", "missing.json"], &Device::Cpu)).unwrap();
    assert_eq!(loaded.commit(), COMMIT);
    assert_eq!(block(store.commit(REPO, "main")).unwrap().as_deref(), Some(COMMIT));
    use crate::files::ModelFiles;
    assert!(loaded.read("missing.json").unwrap().is_none());
    assert!(loaded.read("tokenizer.json").is_err(), "a file not asked for is an error, not an absent file");
    check_weights(loaded.weights(&Device::Cpu).unwrap(), &values);

    let log = hub.transport().log.borrow().clone();
    // Only the first request names the branch; every later one the commit.
    assert!(log[0].url.ends_with("/resolve/main/config.json"), "{:?}", log[0]);
    assert!(log[1..].iter().all(|l| !l.url.contains("/resolve/main/")), "{log:#?}");
    for l in &log {
        assert_eq!(l.authorized, l.url.starts_with(HUB), "the token goes to the Hub only: {l:?}");
    }
    // The weights came from the CDN in two ranged requests: the header's (as much as a piece),
    // then the rest in one, read on from piece to piece (pieces of about piece_bytes, cut at
    // tensor ends, are what the store is given at a time).
    let gets = hub.transport().gets("model.safetensors");
    let ranges: Vec<&str> = gets.iter().filter_map(|g| g.range.as_deref()).collect();
    let size = files[1].1.len();
    assert_eq!(ranges, ["bytes=0-9999".to_string(), format!("bytes=10000-{}", size - 1)], "{gets:#?}");
    assert!(gets.iter().all(|g| g.url.starts_with(CDN)), "{gets:#?}");
    assert!(model.staging_peak() <= 300 * 40 * 4, "at most one tensor staged");
    // Progress: transformers.js's events, the total included, ending with ready.
    let events = events.borrow().clone();
    let statuses: Vec<&str> = events.iter().map(|e| e.status.as_str()).collect();
    for s in ["initiate", "download", "progress", "progress_total", "done", "ready"] {
        assert!(statuses.contains(&s), "{s} missing from {statuses:?}");
    }
    let last_total = events.iter().rev().find(|e| e.status == ProgressStatus::Total).unwrap();
    assert_eq!(last_total.loaded, last_total.total);
    assert_eq!(events.last().unwrap().status, ProgressStatus::Ready);

    // Warm: one HEAD to pin the branch; nothing else, no weight request at all.
    hub.transport().log.borrow_mut().clear();
    let again = hub.model(REPO, None).unwrap();
    let loaded = block(again.load(&["config.json", "missing.json"], &Device::Cpu)).unwrap();
    check_weights(loaded.weights(&Device::Cpu).unwrap(), &values);
    let log = hub.transport().log.borrow().clone();
    assert_eq!(log.len(), 1, "{log:#?}");
    assert_eq!(log[0].method, Method::Head);
}

#[test]
fn a_broken_connection_resumes_at_the_byte_where_it_broke() {
    let (files, values) = tiny_repo();
    let mock = MockHub::new(&files);
    mock.faults.borrow_mut().push(Fault::Break("model.safetensors", 5_001));
    let hub = Hub::new(mock, MemoryStore::new(), options());
    let w = block(hub.model(REPO, None).unwrap().weights(&Device::Cpu)).unwrap();
    check_weights(w, &values);
    let gets = hub.transport().gets("model.safetensors");
    let resumed = gets.iter().find(|g| g.range.as_deref().is_some_and(|r| r.starts_with("bytes=5001-")));
    assert!(resumed.is_some(), "no request resumed at byte 5001: {gets:#?}");
}

#[test]
fn status_503_is_retried_after_retry_after() {
    let (files, values) = tiny_repo();
    let mock = MockHub::new(&files);
    mock.faults.borrow_mut().push(Fault::Status("model.safetensors", 503, Some(2)));
    let hub = Hub::new(mock, MemoryStore::new(), options());
    let w = block(hub.model(REPO, None).unwrap().weights(&Device::Cpu)).unwrap();
    check_weights(w, &values);
    assert!(hub.transport().slept.borrow().contains(&Duration::from_secs(2)));
}

#[test]
fn errors_name_the_repository_and_file() {
    let (files, _) = tiny_repo();
    let mock = MockHub::new(&files);
    for _ in 0..5 {
        mock.faults.borrow_mut().push(Fault::Status("config.json", 500, None));
    }
    let mut opts = options();
    let hub = Hub::new(mock, MemoryStore::new(), opts.clone());
    let err = block(hub.model(REPO, None).unwrap().file("config.json")).err().expect("an error");
    let Error::Hub { kind, repo, file, .. } = &err else { panic!("{err}") };
    assert_eq!((*kind, repo.as_str(), file.as_str()), (HubErrorKind::Server, REPO, "config.json"), "{err}");
    assert!(err.to_string().contains("still after 5 tries"), "{err}");
    let mut mock = MockHub::new(&files);
    mock.token = Some("right".into());
    let hub = Hub::new(mock, MemoryStore::new(), opts.clone());
    let err = block(hub.model(REPO, None).unwrap().file("config.json")).err().expect("an error");
    assert!(matches!(err, Error::Hub { kind: HubErrorKind::Unauthorized, .. }) && err.to_string().contains("HF_TOKEN"), "{err}");
    opts.token = Some("wrong".into());
    let (files, _) = tiny_repo();
    let mut mock = MockHub::new(&files);
    mock.token = Some("right".into());
    let hub = Hub::new(mock, MemoryStore::new(), opts);
    let err = block(hub.model(REPO, None).unwrap().file("config.json")).err().expect("an error");
    assert!(matches!(err, Error::Hub { kind: HubErrorKind::Forbidden, .. }), "{err}");
    let hub = Hub::new(MockHub::new(&tiny_repo().0), MemoryStore::new(), options());
    let err = block(hub.model(REPO, Some("v9")).unwrap().file("config.json")).err().expect("an error");
    assert!(matches!(err, Error::Hub { kind: HubErrorKind::NotFound, .. }) && err.to_string().contains("revision"), "{err}");
}

#[test]
fn content_that_does_not_match_its_sha256_is_never_stored() {
    let (files, values) = tiny_repo();
    let mock = MockHub::new(&files);
    mock.faults.borrow_mut().push(Fault::Corrupt("model.safetensors"));
    let store = MemoryStore::new();
    let hub = Hub::new(mock, store.clone(), options());
    let err = block(hub.model(REPO, None).unwrap().weights(&Device::Cpu)).err().expect("a corrupt download fails");
    assert!(matches!(err, Error::Hub { kind: HubErrorKind::Integrity, .. }) && err.to_string().contains("sha256"), "{err}");
    let (blobs, partial) = store.contents();
    assert_eq!(partial, 0, "the bad bytes are discarded");
    assert!(blobs.iter().all(|b| b.starts_with("git-")), "no weights blob: {blobs:?}");
    // Once the server is fixed, the same store loads.
    hub.transport().faults.borrow_mut().clear();
    let w = block(hub.model(REPO, None).unwrap().weights(&Device::Cpu)).unwrap();
    check_weights(w, &values);
}

#[test]
fn an_aborted_load_stops_without_retrying_and_the_next_one_resumes() {
    let (files, values) = tiny_repo();
    let mock = MockHub::new(&files);
    mock.cancel_after_bytes.set(Some(25_000));
    let store = MemoryStore::new();
    let hub = Hub::new(mock, store.clone(), options());
    let err = block(hub.model(REPO, None).unwrap().weights(&Device::Cpu)).err().expect("an aborted load fails");
    assert!(matches!(err, Error::Hub { kind: HubErrorKind::Cancelled, .. }) && err.to_string().contains("aborted"), "{err}");
    assert!(hub.transport().slept.borrow().is_empty(), "no retry after the abort");
    assert_eq!(store.contents().1, 1, "the partial download is kept, to resume");
    let transport = hub.transport();
    transport.cancelled.set(false);
    transport.cancel_after_bytes.set(None);
    transport.log.borrow_mut().clear();
    let w = block(hub.model(REPO, None).unwrap().weights(&Device::Cpu)).unwrap();
    check_weights(w, &values);
    let first = hub.transport().gets("model.safetensors").into_iter().next().unwrap();
    // Every byte before the abort was stored (this store keeps writes at once): the header's
    // 10,000, then 25,000 of the second request.
    assert!(first.range.as_deref().is_some_and(|r| r.starts_with("bytes=35000-")), "resumed: {first:?}");
}

#[test]
fn an_interrupted_download_resumes_from_the_store() {
    let (files, values) = tiny_repo();
    let mock = MockHub::new(&files);
    // More breaks without progress than the retry policy allows: the load fails midway.
    mock.faults.borrow_mut().push(Fault::Break("model.safetensors", 30_000));
    for _ in 0..5 {
        mock.faults.borrow_mut().push(Fault::Break("model.safetensors", 0));
    }
    let store = MemoryStore::new();
    let hub = Hub::new(mock, store.clone(), options());
    let err = block(hub.model(REPO, None).unwrap().weights(&Device::Cpu)).err().expect("fails");
    assert!(matches!(err, Error::Hub { kind: HubErrorKind::Network, .. }), "{err}");
    assert_eq!(store.contents().1, 1, "the partial download is kept");
    hub.transport().log.borrow_mut().clear();
    let w = block(hub.model(REPO, None).unwrap().weights(&Device::Cpu)).unwrap();
    check_weights(w, &values);
    let first = hub.transport().gets("model.safetensors").into_iter().next().unwrap();
    // The first request (the header's, bytes 0..10000) went through; the next broke without
    // progress.
    assert!(first.range.as_deref().is_some_and(|r| r.starts_with("bytes=10000-")), "resumed after the stored bytes: {first:?}");
    assert_eq!(store.contents().1, 0);
}

#[test]
fn offline_loads_come_from_the_store_alone() {
    let (files, values) = tiny_repo();
    let store = MemoryStore::new();
    let hub = Hub::new(MockHub::new(&files), store.clone(), options());
    block(hub.model(REPO, None).unwrap().load(&["config.json"], &Device::Cpu)).unwrap();
    let offline = Hub::new(MockHub::new(&[]), store.clone(), HubOptions { offline: true, ..options() });
    let loaded = block(offline.model(REPO, None).unwrap().load(&["config.json", "tokenizer.json"], &Device::Cpu)).unwrap();
    check_weights(crate::files::ModelFiles::weights(&loaded, &Device::Cpu).unwrap(), &values);
    assert!(offline.transport().log.borrow().is_empty());
    let err = crate::files::ModelFiles::require(&loaded, "tokenizer.json").err().expect("an error");
    assert!(matches!(err, Error::Hub { kind: HubErrorKind::Offline, .. }), "{err}");
    let fresh = Hub::new(MockHub::new(&[]), MemoryStore::new(), HubOptions { offline: true, ..options() });
    let err = block(fresh.model(REPO, None).unwrap().file("config.json")).err().expect("an error");
    assert!(matches!(err, Error::Hub { kind: HubErrorKind::Offline, .. }), "{err}");
}

#[test]
fn names() {
    assert!(is_repo_id("sentence-transformers/all-MiniLM-L6-v2") && is_repo_id("gpt2"));
    for bad in ["", "a/b/c", "../x", "a//b", "-a/b", "a--b/c", "./model"] {
        assert!(!is_repo_id(bad), "{bad}");
    }
    assert_eq!(normalize_etag("W/\"abc\""), "abc");
    assert_eq!(normalize_etag("\"abc\""), "abc");
    assert!(is_commit_hash(COMMIT) && !is_commit_hash("main"));
}

/// fetch: redirects followed by the transport, so the Hub's own redirect (X-Linked-Etag) is never
/// seen, and the CDN's ETag is not the sha256.
fn follow_mode(files: &[(&str, Vec<u8>)]) -> MockHub {
    let mut mock = MockHub::new(files);
    mock.follow = true;
    mock
}

#[test]
fn a_transport_that_follows_redirects_pins_verifies_by_the_tree_and_keeps_the_token_off_the_cdn() {
    let (files, values) = tiny_repo();
    let mut mock = follow_mode(&files);
    mock.token = Some("secret".into());
    let store = MemoryStore::new();
    let hub = Hub::new(mock, store.clone(), HubOptions { token: Some("secret".into()), ..options() });
    let model = hub.model(REPO, None).unwrap();
    let loaded = block(model.load(&["config.json"], &Device::Cpu)).unwrap();
    assert_eq!(loaded.commit(), COMMIT);
    check_weights(crate::files::ModelFiles::weights(&loaded, &Device::Cpu).unwrap(), &values);
    let log = hub.transport().log.borrow().clone();
    for l in &log {
        assert_eq!(l.authorized, l.url.starts_with(HUB), "the token goes to the Hub only: {l:?}");
    }
    // One tree listing gave the sha256; the weights' two requests (header, rest) went straight
    // to the CDN.
    assert_eq!(log.iter().filter(|l| l.url.contains("/api/models/")).count(), 1, "{log:#?}");
    let gets = hub.transport().gets("model.safetensors");
    assert!(gets.len() == 2 && gets.iter().all(|g| g.url.starts_with(CDN)), "{gets:#?}");
    // Stored under its sha256, not the CDN's ETag.
    let (blobs, partial) = store.contents();
    assert!(blobs.contains(&sha256_hex(&files[1].1)) && partial == 0, "{blobs:?}");
}

#[test]
fn a_transport_that_follows_redirects_pins_by_the_revision_api_when_weights_come_first() {
    let (files, values) = tiny_repo();
    let hub = Hub::new(follow_mode(&files), MemoryStore::new(), options());
    let model = hub.model(REPO, None).unwrap();
    check_weights(block(model.weights(&Device::Cpu)).unwrap(), &values);
    assert_eq!(model.pinned().as_deref(), Some(COMMIT));
    let log = hub.transport().log.borrow().clone();
    assert!(log.iter().any(|l| l.url.ends_with("/api/models/org/tiny/revision/main")), "{log:#?}");
    // After the branch's HEAD, everything names the commit.
    let after_pin = log.iter().skip_while(|l| !l.url.contains("/revision/main")).skip(1);
    assert!(after_pin.clone().all(|l| !l.url.contains("/resolve/main/")), "{log:#?}");
}

#[test]
fn a_transport_that_follows_redirects_still_rejects_bytes_that_do_not_match_the_sha256() {
    let (files, values) = tiny_repo();
    let mock = follow_mode(&files);
    mock.faults.borrow_mut().push(Fault::Corrupt("model.safetensors"));
    let store = MemoryStore::new();
    let hub = Hub::new(mock, store.clone(), options());
    let err = block(hub.model(REPO, None).unwrap().weights(&Device::Cpu)).err().expect("a corrupt download fails");
    assert!(matches!(err, Error::Hub { kind: HubErrorKind::Integrity, .. }), "{err}");
    assert_eq!(store.contents().1, 0, "the bad bytes are discarded");
    hub.transport().faults.borrow_mut().clear();
    check_weights(block(hub.model(REPO, None).unwrap().weights(&Device::Cpu)).unwrap(), &values);
}

#[test]
fn tokenizer_json_is_parsed_during_the_load_and_copied_to_each_caller() {
    use crate::tokenizer::Tokenizer;
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/tiny-distilbert/tokenizer.json");
    let json = std::fs::read(fixture).unwrap();
    let (mut files, _) = tiny_repo();
    files.push(("tokenizer.json", json.clone()));
    let hub = Hub::new(MockHub::new(&files), MemoryStore::new(), options());
    let loaded = block(hub.model(REPO, None).unwrap().load(&["config.json", "tokenizer.json"], &Device::Cpu)).unwrap();
    // The task's tokenizer comes from a copy of the parsed one, which stays for the next caller
    // (the npm package's pipe.tokenizer); the same text encodes as with a tokenizer parsed from
    // the bytes.
    let from_load = Tokenizer::from_files(&loaded, 16).unwrap();
    assert!(crate::files::ModelFiles::parsed_tokenizer(&loaded).is_some(), "a copy for the next caller");
    let from_bytes = Tokenizer::from_bytes(&json, 16).unwrap();
    let text = "The quick brown fox jumps over the lazy dog, twice over and again.";
    let (a, b) = (from_load.encode_full(text, None).unwrap(), from_bytes.encode_full(text, None).unwrap());
    assert_eq!(a.ids, b.ids);
    assert_eq!(a.ids.len(), 16, "truncated to the task's length");

    // A tokenizer.json that does not parse is left to the task, whose error names it.
    let (mut files, _) = tiny_repo();
    files.push(("tokenizer.json", br#"{"model": {"vocab": "#.to_vec()));
    let hub = Hub::new(MockHub::new(&files), MemoryStore::new(), options());
    let loaded = block(hub.model(REPO, None).unwrap().load(&["config.json", "tokenizer.json"], &Device::Cpu)).unwrap();
    let err = Tokenizer::from_files(&loaded, 16).err().expect("an error");
    assert!(err.to_string().contains("tokenizer.json is not JSON"), "{err}");
}

#[test]
fn out_of_room_the_error_is_the_weights_whichever_file_the_store_refused_first() {
    // The small files come while the weights stream: in a browser, the weights may fill the
    // quota before a small file is stored. Here the store has room for config.json only, so the
    // small file is refused first; the error must still be the weights' (which says how much
    // they need), and what the weights had stored is given back.
    let (mut files, _) = tiny_repo();
    files.push(("tokenizer_config.json", br#"{"model_max_length": 512, "do_lower_case": true}"#.to_vec()));
    let store = MemoryStore::with_room(files[0].1.len() + 8);
    let hub = Hub::new(MockHub::new(&files), store.clone(), options());
    let model = hub.model(REPO, None).unwrap();
    let err = block(model.load(&["config.json", "tokenizer_config.json"], &Device::Cpu)).err().expect("the load cannot fit");
    match &err {
        crate::Error::Hub { file, kind: HubErrorKind::Quota, msg, .. } => {
            assert_eq!(file, "model.safetensors", "{err}");
            assert!(msg.contains("needs more room"), "{err}");
        }
        other => panic!("not a quota error: {other}"),
    }
    assert!(hub.transport().gets("model.safetensors").len() > 0, "the weights were asked for");
    let (blobs, unfinished) = store.contents();
    assert_eq!((blobs.len(), unfinished), (1, 0), "only config.json is kept");
}
