//! Hostile Hub servers (issue 17): redirect loops, endless bodies, sizes that lie, names that
//! point outside the cache, a commit that changes per request, slow drips, and a server that
//! echoes the token. Each case must end in bounded time with a clear error (or a correct load),
//! leave the cache sound with nothing outside it, and never write the access token to the cache,
//! a log line, a progress event or an error. The server's misbehaviour is `tests/hub/server.py`'s
//! hostile fault kinds.

use std::sync::Mutex;

use webformers::hub::ProgressEvent;

use super::*;

/// A token that appears nowhere unless the client leaks it.
const TOKEN: &str = "hf_hostileSecret0123456789abcdefXYZ";

/// Every log line of this test binary (the tests run in parallel: lines of all cases mix, and
/// none may carry the token).
static LOGS: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }
    fn log(&self, record: &log::Record) {
        LOGS.lock().unwrap().push(format!("{} {}", record.target(), record.args()));
    }
    fn flush(&self) {}
}

fn capture_logs() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = log::set_logger(&Capture);
        log::set_max_level(log::LevelFilter::Trace);
    });
}

/// One load against a hostile server: the cache is `root/cache`, so that anything written beside
/// it shows.
struct Case {
    root: tempfile::TempDir,
    events: Arc<Mutex<Vec<String>>>,
    elapsed: Duration,
}

impl Case {
    fn cache(&self) -> PathBuf {
        self.root.path().join("cache")
    }

    /// Nothing outside the cache folder, every link inside it, and the token nowhere: not in a
    /// name, a link, a file's bytes, a progress event, a log line, or `err`.
    fn assert_safe(&self, err: Option<&Error>) {
        let cache = self.cache();
        let beside: Vec<_> = std::fs::read_dir(self.root.path()).unwrap().flatten().map(|e| e.file_name()).collect();
        assert!(beside.iter().all(|n| n == "cache"), "written outside the cache: {beside:?}");
        // An error before the first write leaves no cache at all.
        let Ok(inside) = std::fs::canonicalize(&cache) else { return self.assert_no_token_outside_files(err) };
        for path in walk_all(&cache) {
            let name = path.to_string_lossy();
            assert!(!name.contains(TOKEN), "the token names {name}");
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.file_type().is_symlink() {
                let target = std::fs::read_link(&path).unwrap();
                assert!(!target.to_string_lossy().contains(TOKEN), "{name} links to the token");
                if let Ok(real) = std::fs::canonicalize(&path) {
                    assert!(real.starts_with(&inside), "{name} points outside the cache: {}", real.display());
                }
            } else if meta.is_file() {
                let bytes = std::fs::read(&path).unwrap();
                assert!(!contains(&bytes, TOKEN.as_bytes()), "{name} holds the token");
            }
        }
        self.assert_no_token_outside_files(err);
        assert_cache_sound(&cache);
    }

    /// The token in no progress event, log line or error.
    fn assert_no_token_outside_files(&self, err: Option<&Error>) {
        for e in self.events.lock().unwrap().iter() {
            assert!(!e.contains(TOKEN), "a progress event carries the token: {e}");
        }
        for line in LOGS.lock().unwrap().iter() {
            assert!(!line.contains(TOKEN), "a log line carries the token: {line}");
        }
        if let Some(err) = err {
            assert!(!err.to_string().contains(TOKEN) && !format!("{err:?}").contains(TOKEN), "the error carries the token: {err}");
        }
    }

    /// No file of `file`'s name is in any snapshot, and no blob is half-shown.
    fn assert_not_cached(&self, file: &str) {
        let snapshots = repo_dir(&self.cache(), REPO).join("snapshots");
        for commit in std::fs::read_dir(&snapshots).into_iter().flatten().flatten() {
            assert!(std::fs::symlink_metadata(commit.path().join(file)).is_err(), "{file} was cached in {}", commit.path().display());
        }
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Every file, folder and link below `dir` (links not followed).
fn walk_all(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        out.push(e.path());
        if e.file_type().unwrap().is_dir() {
            out.extend(walk_all(&e.path()));
        }
    }
    out
}

/// Loads `repo` (feature-extraction's files and weights, on the CPU) with the token, quick
/// retries and a read timeout of `read_timeout`, after setting `faults`.
fn load_hostile(server: &HubServer, repo: &str, faults: &[&str], read_timeout: Duration) -> (webformers::Result<FeatureExtraction>, Case) {
    capture_logs();
    server.reset();
    for f in faults {
        server.fault(f);
    }
    let root = tempfile::tempdir().unwrap();
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    let options = HubOptions {
        token: Some(TOKEN.into()),
        retry: RetryPolicy {
            attempts: 3,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(50),
            ..Default::default()
        },
        progress: Some(Arc::new(move |e: &ProgressEvent| sink.lock().unwrap().push(format!("{e:?}")))),
        ..options(server)
    };
    let hub = Hub::new(UreqTransport::with_read_timeout(read_timeout), HfCache::new(root.path().join("cache")), options);
    let t = Instant::now();
    let out = load(&hub, repo, &Device::Cpu);
    let case = Case { root, events, elapsed: t.elapsed() };
    (out, case)
}

const QUICK: Duration = Duration::from_secs(5);

fn expect_err(out: webformers::Result<FeatureExtraction>, what: &str) -> Error {
    match out {
        Ok(_) => panic!("{what}: loaded"),
        Err(e) => e,
    }
}

fn assert_kind(err: &Error, kind: HubErrorKind, words: &[&str], what: &str) {
    assert!(matches!(err, Error::Hub { kind: k, .. } if *k == kind), "{what}: expected {kind:?}, got {err}");
    let text = err.to_string();
    for w in words {
        assert!(text.contains(w), "{what}: `{w}` is not in: {text}");
    }
}

#[test]
fn hostile_redirect_loops_and_endless_chains_are_clear_errors_at_once() {
    let server = serve();
    for (file, kind, says) in [
        ("config.json", "loop", "redirect loop"),
        ("config.json", "chain", "more than 10 redirects"),
        // The CDN loops: the weights' GET.
        (WEIGHTS, "loop", "redirect loop"),
    ] {
        let what = format!("{kind} on {file}");
        let fault = format!("file={file}&kind={kind}&count=-1&method={}", if file == WEIGHTS { "GET" } else { "HEAD" });
        let (out, case) = load_hostile(&server, REPO, &[&fault], QUICK);
        let err = expect_err(out, &what);
        assert_kind(&err, HubErrorKind::Protocol, &[says, file, REPO], &what);
        assert!(case.elapsed < Duration::from_secs(10), "{what}: took {:?}", case.elapsed);
        let hops = requests_for(&server, file).len();
        assert!(hops <= 12, "{what}: {hops} requests");
        case.assert_not_cached(file);
        case.assert_safe(Some(&err));
    }
}

#[test]
fn hostile_bodies_far_longer_than_the_file_are_cut_at_its_size() {
    let server = serve();
    let weights_size = std::fs::metadata(minilm().join(WEIGHTS)).unwrap().len();
    let config_size = std::fs::metadata(minilm().join("config.json")).unwrap().len();
    // Endless bodies, with no Content-Length or one of 10 GB, for a 600-byte file and the weights:
    // the client reads each file's size, checks it, and hangs up.
    for kind in ["huge", "huge_cl"] {
        let faults = [format!("file=config.json&kind={kind}&count=-1"), format!("file={WEIGHTS}&kind={kind}&count=-1")];
        let (out, case) = load_hostile(&server, REPO, &faults.iter().map(String::as_str).collect::<Vec<_>>(), QUICK);
        let pipe = out.unwrap_or_else(|e| panic!("{kind}: {e}"));
        check_embeddings(&pipe, kind);
        assert!(case.elapsed < Duration::from_secs(30), "{kind}: took {:?}", case.elapsed);
        // The server keeps writing until the socket's buffers fill after the client hung up; it
        // counts the most one answer wrote.
        std::thread::sleep(Duration::from_millis(500));
        let stats: serde_json::Value = serde_json::from_str(&server.control("/_stats")).unwrap();
        for (file, size) in [("config.json", config_size), (WEIGHTS, weights_size)] {
            let sent = stats["sent"][file].as_u64().unwrap_or_else(|| panic!("{kind}: {file} was not sent endlessly: {}", stats["sent"]));
            assert!(sent >= size && sent <= size + (32 << 20), "{kind}: {sent} bytes sent for a file of {size}");
        }
        case.assert_safe(None);
    }
}

#[test]
fn hostile_sizes_that_disagree_with_the_bytes_are_never_cached() {
    let server = serve();
    let config_size = std::fs::metadata(minilm().join("config.json")).unwrap().len();
    let weights_size = std::fs::metadata(minilm().join(WEIGHTS)).unwrap().len();
    let cases: Vec<(String, &str, HubErrorKind, &str)> = vec![
        // The server says the file has another size, and sends that many bytes: they are not the
        // file the ETag names (the git blob sha1 of a small file, the sha256 of weights).
        (format!("file=config.json&kind=lie&size={}&count=-1", config_size - 100), "config.json", HubErrorKind::Integrity, "git blob sha1"),
        (format!("file=config.json&kind=lie&size={}&count=-1", config_size + 100), "config.json", HubErrorKind::Integrity, "git blob sha1"),
        (format!("file={WEIGHTS}&kind=lie&size={}&count=-1", weights_size - 1000), WEIGHTS, HubErrorKind::Integrity, "sha256"),
        (format!("file={WEIGHTS}&kind=lie&size={}&count=-1", weights_size + 1000), WEIGHTS, HubErrorKind::Integrity, "sha256"),
        // A Content-Length that is not the length of the range the answer says it holds.
        ("file=config.json&kind=cl&delta=50&count=-1".into(), "config.json", HubErrorKind::Protocol, "Content-Length"),
        ("file=config.json&kind=cl&delta=-50&count=-1".into(), "config.json", HubErrorKind::Protocol, "Content-Length"),
        // A body that ends before its Content-Length, every time: resumable, never complete.
        (
            "file=config.json&kind=short&after=100&count=-1&method=GET".into(),
            "config.json",
            HubErrorKind::Network,
            "the connection broke at byte",
        ),
        // A size too large to read whole, refused before a byte is asked for.
        ("file=config.json&kind=lie&size=10000000000&count=-1".into(), "config.json", HubErrorKind::Protocol, "more than"),
    ];
    for (fault, file, kind, says) in cases {
        let (out, case) = load_hostile(&server, REPO, &[&fault], QUICK);
        let err = expect_err(out, &fault);
        assert_kind(&err, kind, &[says, file, REPO], &fault);
        assert!(case.elapsed < Duration::from_secs(20), "{fault}: took {:?}", case.elapsed);
        case.assert_not_cached(file);
        case.assert_safe(Some(&err));
        if fault.contains("size=10000000000") {
            assert!(requests_for(&server, file).iter().all(|r| r["method"] == "HEAD"), "{fault}: asked for the bytes");
        }
    }
}

/// A repository whose safetensors index names `shard` as the one shard.
fn repo_naming(shard: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for f in ["config.json", "tokenizer.json", "tokenizer_config.json"] {
        std::fs::copy(minilm().join(f), dir.path().join(f)).unwrap();
    }
    let index = serde_json::json!({"metadata": {}, "weight_map": {"embeddings.word_embeddings.weight": shard}});
    std::fs::write(dir.path().join("model.safetensors.index.json"), index.to_string()).unwrap();
    dir
}

#[test]
fn hostile_names_from_the_server_never_reach_outside_the_cache() {
    let shards = [
        "../../../../evil.safetensors",
        "/tmp/evil.safetensors",
        "..\\evil.safetensors",
        "C:/evil.safetensors",
        "C:evil.safetensors",
        "a/../../evil.safetensors",
        "a/./b.safetensors",
    ];
    let repos: Vec<(String, tempfile::TempDir)> =
        shards.iter().enumerate().map(|(i, s)| (format!("evil/names-{i}"), repo_naming(s))).collect();
    let mut served: Vec<(&str, &Path)> = repos.iter().map(|(id, dir)| (id.as_str(), dir.path())).collect();
    let model = minilm();
    served.push((REPO, &model));
    let server = HubServer::start(&served, &[]);
    for ((id, _), shard) in repos.iter().zip(shards) {
        let (out, case) = load_hostile(&server, id, &[], QUICK);
        let err = expect_err(out, shard);
        assert!(err.to_string().contains("is not a plain file name"), "{shard}: {err}");
        assert!(server.requests().iter().all(|r| !r["file"].as_str().unwrap_or("").contains("evil")), "{shard}: asked for it");
        case.assert_safe(Some(&err));
    }
    // ETags and commits name blobs and snapshot folders: one that is a path is refused.
    for (fault, says) in [
        ("file=config.json&kind=etag&value=../../../evil&count=-1", "cannot name a file"),
        ("file=config.json&kind=etag&value=C:evil&count=-1", "cannot name a file"),
        ("file=*&kind=commit_is&value=../../evil&count=-1", "is not a commit"),
        ("file=*&kind=commit_is&value=/tmp/evil&count=-1", "is not a commit"),
    ] {
        let (out, case) = load_hostile(&server, REPO, &[fault], QUICK);
        let err = expect_err(out, fault);
        assert_kind(&err, HubErrorKind::Protocol, &[says], fault);
        case.assert_safe(Some(&err));
    }
}

#[test]
fn hostile_a_commit_per_request_stops_the_load_before_two_commits_mix() {
    let server = serve();
    let (out, case) = load_hostile(&server, REPO, &["file=*&kind=commit&count=-1"], QUICK);
    let err = expect_err(out, "a commit per request");
    assert_kind(&err, HubErrorKind::Protocol, &["asked for commit", "answered for commit"], "a commit per request");
    // One commit folder at most, and `main` names it.
    let dir = repo_dir(&case.cache(), REPO);
    let commits: Vec<_> = std::fs::read_dir(dir.join("snapshots")).into_iter().flatten().flatten().map(|e| e.file_name()).collect();
    assert!(commits.len() <= 1, "{commits:?}");
    let main = std::fs::read_to_string(dir.join("refs/main")).unwrap();
    assert!(commits.iter().all(|c| *c == *main), "{commits:?} vs main {main}");
    case.assert_safe(Some(&err));
}

#[test]
fn hostile_slow_drips_and_stalls_time_out_in_bounded_time() {
    let server = serve();
    let timeout = Duration::from_millis(700);
    for (fault, file) in [
        // A byte every 200 ms: each read succeeds, but a window of the timeout brings too few.
        ("file=config.json&kind=drip&interval=200&count=-1&method=GET", "config.json"),
        // A byte every 3 s: a read waits past the timeout.
        ("file=config.json&kind=drip&interval=3000&count=-1&method=GET", "config.json"),
        (&format!("file={WEIGHTS}&kind=drip&interval=200&count=-1&method=GET"), WEIGHTS),
    ] {
        let (out, case) = load_hostile(&server, REPO, &[fault], timeout);
        let err = expect_err(out, fault);
        assert_kind(&err, HubErrorKind::Network, &[file, REPO, "still after 3 tries"], fault);
        // 3 tries, each ended by the timeout (about 1.4 s at most: the window, then a read).
        assert!(case.elapsed < Duration::from_secs(8), "{fault}: took {:?}", case.elapsed);
        case.assert_not_cached(file);
        case.assert_safe(Some(&err));
    }
}

#[test]
fn hostile_the_token_is_never_echoed_and_never_leaves_the_hub_host() {
    let server = serve();
    // The server echoes the token in its error message, makes it the ETag, makes it the commit.
    for (fault, kind, says) in [
        ("file=config.json&kind=echo&count=-1", HubErrorKind::Forbidden, "<token>"),
        ("file=config.json&kind=etag&value=$token&count=-1", HubErrorKind::Protocol, "cannot name a file"),
        ("file=*&kind=commit_is&value=$token&count=-1", HubErrorKind::Protocol, "is not a commit"),
    ] {
        let (out, case) = load_hostile(&server, REPO, &[fault], QUICK);
        let err = expect_err(out, fault);
        assert_kind(&err, kind, &[says], fault);
        case.assert_safe(Some(&err));
    }
    // Redirects to another host (the same server as `localhost`): followed without Authorization.
    let faults = ["file=config.json&kind=offhost&method=GET", &format!("file={WEIGHTS}&kind=offhost&method=GET")];
    let (out, case) = load_hostile(&server, REPO, &faults, QUICK);
    check_embeddings(&out.unwrap(), "redirected to another host");
    let requests = server.requests();
    for file in ["config.json", WEIGHTS] {
        let moved: Vec<_> =
            requests.iter().filter(|r| r["file"] == file && r["host"].as_str().unwrap_or("").starts_with("localhost")).collect();
        assert!(!moved.is_empty(), "{file}: never redirected to localhost: {requests:#?}");
        assert!(moved.iter().all(|r| r["auth"] == false), "{file}: Authorization went to another host: {moved:#?}");
    }
    assert!(requests.iter().any(|r| r["file"] == "config.json" && r["auth"] == true), "the token never reached the Hub");
    case.assert_safe(None);
}
