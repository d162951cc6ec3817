//! Hub loading end to end: the real all-MiniLM-L6-v2 served by the Hub stand-in
//! (tests/hub/server.py, 127.0.0.1 only) into a huggingface_hub cache in a temporary folder.
//! Cold and warm loads, offline, tokens and the CDN, sharded weights, faults on the wire, and
//! the cache shared with Python's huggingface_hub both ways. Embeddings after every successful
//! load must equal the PyTorch reference (tests/fixtures/minilm-reference.json) within 1e-4.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use webformers::hub::{HfCache, Hub, HubOptions, NativeHub, RetryPolicy, UreqTransport};
use webformers::tasks::feature_extraction::{FeatureExtraction, Pooling};
use webformers::tasks::{LoadOptions, feature_extraction};
use webformers::{Device, Error, HubErrorKind};
use webformers_tests::{HubServer, devices, fixture, floats, max_abs_diff, model_dir, repo_root};

mod hostile;

const REPO: &str = "sentence-transformers/all-MiniLM-L6-v2";
const WEIGHTS: &str = "model.safetensors";

fn minilm() -> PathBuf {
    model_dir("all-MiniLM-L6-v2")
}

fn serve() -> HubServer {
    HubServer::start(&[(REPO, &minilm())], &[])
}

fn options(server: &HubServer) -> HubOptions {
    HubOptions {
        endpoint: server.endpoint(),
        // Quick retries: the faults below cost milliseconds, not seconds.
        retry: RetryPolicy { base_delay: Duration::from_millis(20), max_delay: Duration::from_millis(200), ..Default::default() },
        ..Default::default()
    }
}

fn hub(cache: &Path, options: HubOptions) -> NativeHub {
    Hub::new(UreqTransport::new(), HfCache::new(cache), options)
}

fn load(hub: &NativeHub, repo: &str, device: &Device) -> webformers::Result<FeatureExtraction> {
    let files = pollster::block_on(hub.model(repo, None)?.load(&feature_extraction::TASK.files(), device))?;
    FeatureExtraction::load(&files, device, &LoadOptions::default())
}

/// Normalized mean embeddings of a few reference inputs match PyTorch: the longest too on the
/// CPU (on CI's lavapipe a 256-token input costs seconds per load, and these tests load often).
fn check_embeddings(pipe: &FeatureExtraction, what: &str) {
    let reference = fixture("minilm-reference.json");
    let inputs = reference["inputs"].as_array().unwrap();
    let mut picked: Vec<&serde_json::Value> = inputs.iter().take(4).collect();
    if !pipe.device().is_gpu() {
        picked.extend(inputs.iter().max_by_key(|i| i["token_ids"].as_array().map_or(0, |a| a.len())));
    }
    let texts: Vec<&str> = picked.iter().map(|i| i["text"].as_str().unwrap()).collect();
    let out = pollster::block_on(pipe.run(&texts, Pooling::Mean, true)).unwrap();
    for (i, input) in picked.iter().enumerate() {
        let diff = max_abs_diff(out.row(i), &floats(&input["embedding"]));
        assert!(diff <= 1e-4, "{what}: `{}` differs from the reference by {diff:e}", input["name"]);
    }
}

fn sha256_of(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect()
}

fn weights_sha256() -> String {
    static SHA: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SHA.get_or_init(|| sha256_of(&minilm().join(WEIGHTS))).clone()
}

fn repo_dir(cache: &Path, repo: &str) -> PathBuf {
    cache.join(format!("models--{}", repo.replace('/', "--")))
}

/// Requests for a file, on either server.
fn requests_for(server: &HubServer, file: &str) -> Vec<serde_json::Value> {
    server.requests().into_iter().filter(|r| r["file"] == file).collect()
}

/// The cache is never corrupt: every blob named by a sha256 has that sha256, every snapshot
/// entry is a relative link to an existing blob, and an unfinished download is a true prefix.
fn assert_cache_sound(cache: &Path) {
    let original = std::fs::read(minilm().join(WEIGHTS)).unwrap();
    for repo in std::fs::read_dir(cache).unwrap().flatten().filter(|e| e.file_name().to_string_lossy().starts_with("models--")) {
        for blob in std::fs::read_dir(repo.path().join("blobs")).into_iter().flatten().flatten() {
            let name = blob.file_name().to_string_lossy().into_owned();
            if let Some(etag) = name.strip_suffix(".incomplete") {
                let bytes = std::fs::read(blob.path()).unwrap();
                if etag == weights_sha256() {
                    assert!(original.starts_with(&bytes), "{name} is not a prefix of the weights");
                }
            } else if name.len() == 64 {
                assert_eq!(sha256_of(&blob.path()), name, "blob {name} does not match its name");
            }
        }
        let snapshots = repo.path().join("snapshots");
        for commit in std::fs::read_dir(&snapshots).into_iter().flatten().flatten() {
            for entry in walk(&commit.path()) {
                let link = std::fs::read_link(&entry).unwrap_or_else(|e| panic!("{} is not a link: {e}", entry.display()));
                assert!(link.is_relative(), "{} points at {}", entry.display(), link.display());
                assert!(entry.exists(), "{} points at a missing blob", entry.display());
            }
        }
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.file_type().unwrap().is_dir() { out.extend(walk(&e.path())) } else { out.push(e.path()) }
    }
    out
}

#[test]
fn a_cold_load_fills_the_cache_in_the_hf_layout_and_a_warm_load_makes_no_weight_request() {
    for device in devices() {
        let server = serve();
        let cache = tempfile::tempdir().unwrap();
        let hub = hub(cache.path(), options(&server));
        let pipe = load(&hub, REPO, &device).unwrap();
        check_embeddings(&pipe, &format!("cold, {device:?}"));

        let repo = repo_dir(cache.path(), REPO);
        let commit = std::fs::read_to_string(repo.join("refs/main")).expect("refs/main holds the commit");
        assert_eq!(commit.len(), 40, "{commit}");
        let weights = repo.join("snapshots").join(&commit).join(WEIGHTS);
        assert_eq!(std::fs::read_link(&weights).unwrap(), Path::new("../../blobs").join(weights_sha256()));
        assert_eq!(sha256_of(&weights), weights_sha256());
        for file in ["config.json", "tokenizer.json", "tokenizer_config.json", "sentence_bert_config.json"] {
            let path = repo.join("snapshots").join(&commit).join(file);
            assert_eq!(std::fs::read(&path).unwrap(), std::fs::read(minilm().join(file)).unwrap(), "{file}");
        }
        assert_cache_sound(cache.path());

        let requests = server.requests();
        // Pinned at first contact: only that request names the branch.
        assert_eq!(requests.iter().filter(|r| r["method"] == "HEAD").count(), 5, "{requests:#?}");
        let weight_gets: Vec<_> = requests.iter().filter(|r| r["file"] == WEIGHTS && r["method"] == "GET").collect();
        assert!(weight_gets.iter().all(|r| r["server"] == "cdn" && r["range"].is_string()), "{weight_gets:#?}");
        if device.is_gpu() {
            // The header's range, then the rest in one request read on piece by piece.
            assert_eq!(weight_gets.len(), 2, "to a GPU, weights stream in two requests: {weight_gets:#?}");
        } else {
            // On the CPU the cached file is mapped, so it comes in one sequential request.
            assert_eq!(weight_gets.len(), 1, "{weight_gets:#?}");
        }

        server.reset();
        let pipe = load(&hub, REPO, &device).unwrap();
        check_embeddings(&pipe, &format!("warm, {device:?}"));
        let requests = server.requests();
        assert!(requests.iter().all(|r| r["file"] != WEIGHTS), "a warm load asked for the weights: {requests:#?}");
        assert_eq!(requests.len(), 1, "one HEAD pins the branch; everything else is cached: {requests:#?}");
    }
}

#[test]
fn offline_loads_come_from_the_cache_alone() {
    let server = serve();
    let cache = tempfile::tempdir().unwrap();
    load(&hub(cache.path(), options(&server)), REPO, &Device::Cpu).unwrap();
    drop(server);
    // Nothing listens there: any request would fail.
    let nowhere = HubOptions { endpoint: "http://127.0.0.1:9".into(), offline: true, ..HubOptions::default() };
    let pipe = load(&hub(cache.path(), nowhere.clone()), REPO, &Device::Cpu).unwrap();
    check_embeddings(&pipe, "offline");
    // Online, with the Hub unreachable, the cached revision is used too.
    let unreachable = HubOptions { offline: false, retry: RetryPolicy { attempts: 1, ..Default::default() }, ..nowhere.clone() };
    check_embeddings(&load(&hub(cache.path(), unreachable), REPO, &Device::Cpu).unwrap(), "unreachable Hub");

    let empty = tempfile::tempdir().unwrap();
    let err = load(&hub(empty.path(), nowhere), REPO, &Device::Cpu).err().expect("nothing cached");
    assert!(matches!(err, Error::Hub { kind: HubErrorKind::Offline, .. }), "{err}");
    assert!(err.to_string().contains(REPO), "{err}");
}

#[test]
fn the_token_reaches_the_hub_and_never_the_cdn() {
    let gated = "org/gated-minilm";
    let server = HubServer::start(&[(gated, &minilm())], &[gated]);
    let cache = tempfile::tempdir().unwrap();
    let err = load(&hub(cache.path(), options(&server)), gated, &Device::Cpu).err().expect("needs a token");
    assert!(matches!(err, Error::Hub { kind: HubErrorKind::Unauthorized, .. }), "{err}");
    assert!(err.to_string().contains(gated) && err.to_string().contains("config.json") && err.to_string().contains("HF_TOKEN"), "{err}");

    let wrong = HubOptions { token: Some("wrong".into()), ..options(&server) };
    let err = load(&hub(cache.path(), wrong), gated, &Device::Cpu).err().expect("a wrong token");
    assert!(matches!(err, Error::Hub { kind: HubErrorKind::Forbidden, .. }), "{err}");

    server.reset();
    let right = HubOptions { token: Some("test-token".into()), ..options(&server) };
    check_embeddings(&load(&hub(cache.path(), right), gated, &Device::Cpu).unwrap(), "gated");
    let requests = server.requests();
    assert!(requests.iter().any(|r| r["server"] == "cdn"), "{requests:#?}");
    for r in &requests {
        assert_eq!(r["auth"], r["server"] == "hub", "Authorization goes to the Hub only: {r}");
    }
}

#[test]
fn unknown_repositories_revisions_and_files_are_clear_errors() {
    let server = serve();
    let cache = tempfile::tempdir().unwrap();
    let h = hub(cache.path(), options(&server));
    let err = load(&h, "nobody/nothing", &Device::Cpu).err().expect("no such repo");
    assert!(err.to_string().contains("nobody/nothing") && err.to_string().contains("does not exist"), "{err}");
    let model = h.model(REPO, Some("no-such-branch")).unwrap();
    let err = pollster::block_on(model.file("config.json")).err().expect("no such revision");
    assert!(matches!(err, Error::Hub { kind: HubErrorKind::NotFound, .. }) && err.to_string().contains("revision"), "{err}");
    // A file the repository lacks is remembered, and not asked for again.
    let model = h.model(REPO, None).unwrap();
    assert!(pollster::block_on(model.file("generation_config.json")).unwrap().is_none());
    let commit = model.pinned().unwrap();
    assert!(repo_dir(cache.path(), REPO).join(".no_exist").join(&commit).join("generation_config.json").is_file());
    server.reset();
    assert!(pollster::block_on(h.model(REPO, Some(&commit)).unwrap().file("generation_config.json")).unwrap().is_none());
    assert!(server.requests().is_empty(), "a pinned commit and a remembered absence need no request");
}

/// Requests for the weights before the one a fault should hit: the header's, when streaming to a
/// GPU; none on the CPU, where the file comes in one request.
fn requests_before_data(device: &Device) -> u32 {
    if device.is_gpu() { 1 } else { 0 }
}

#[test]
fn a_connection_dropped_in_the_middle_of_a_tensor_resumes_there() {
    for device in devices() {
        for kind in ["drop", "short"] {
            let server = serve();
            let cache = tempfile::tempdir().unwrap();
            // The first data request breaks 1 MB into its body: inside word_embeddings.
            let skip = requests_before_data(&device);
            server.fault(&format!("file={WEIGHTS}&kind={kind}&skip={skip}&after=1000003&method=GET"));
            let pipe = load(&hub(cache.path(), options(&server)), REPO, &device).unwrap();
            check_embeddings(&pipe, &format!("{kind}, {device:?}"));
            assert_cache_sound(cache.path());
            let gets: Vec<_> = requests_for(&server, WEIGHTS).into_iter().filter(|r| r["method"] == "GET" && r["status"] == 206).collect();
            let starts: Vec<u64> =
                gets.iter().filter_map(|r| r["range"].as_str()?.strip_prefix("bytes=")?.split('-').next()?.parse().ok()).collect();
            let broken = starts[skip as usize];
            assert!(
                starts.iter().any(|&s| s > broken && s <= broken + 1_000_003),
                "{kind}, {device:?}: no request resumed inside the broken one (starts {starts:?})"
            );
        }
    }
}

#[test]
fn status_503_is_retried_after_its_retry_after() {
    let server = serve();
    let cache = tempfile::tempdir().unwrap();
    server.fault(&format!("file={WEIGHTS}&kind=status&status=503&retry_after=1"));
    let t = Instant::now();
    let pipe = load(&hub(cache.path(), options(&server)), REPO, &Device::Cpu).unwrap();
    assert!(t.elapsed() >= Duration::from_secs(1), "Retry-After: 1 was not honoured");
    check_embeddings(&pipe, "after a 503");
    let statuses: Vec<_> = requests_for(&server, WEIGHTS).iter().map(|r| r["status"].as_u64().unwrap()).collect();
    assert_eq!(statuses[..2], [503, 302], "{statuses:?}");

    // A server that keeps failing: a clear error naming repo and file, after the retries.
    let cache = tempfile::tempdir().unwrap();
    server.fault(&format!("file={WEIGHTS}&kind=status&status=503&count=-1"));
    let err = load(&hub(cache.path(), options(&server)), REPO, &Device::Cpu).err().expect("keeps failing");
    assert!(matches!(err, Error::Hub { kind: HubErrorKind::Server, .. }), "{err}");
    assert!(err.to_string().contains(REPO) && err.to_string().contains(WEIGHTS) && err.to_string().contains("503"), "{err}");
}

#[test]
fn bytes_that_do_not_match_the_etag_are_never_cached() {
    let server = serve();
    let cache = tempfile::tempdir().unwrap();
    server.fault(&format!("file={WEIGHTS}&kind=corrupt&count=-1"));
    let err = load(&hub(cache.path(), options(&server)), REPO, &Device::Cpu).err().expect("corrupt bytes");
    assert!(matches!(err, Error::Hub { kind: HubErrorKind::Integrity, .. }), "{err}");
    assert!(err.to_string().contains(WEIGHTS) && err.to_string().contains("sha256"), "{err}");
    let blobs = repo_dir(cache.path(), REPO).join("blobs");
    assert!(!blobs.join(weights_sha256()).exists(), "a corrupt blob was kept");
    assert!(!blobs.join(format!("{}.incomplete", weights_sha256())).exists(), "corrupt bytes were kept for resuming");
    assert_cache_sound(cache.path());
    // Once the server sends the right bytes, the same cache loads.
    server.reset();
    check_embeddings(&load(&hub(cache.path(), options(&server)), REPO, &Device::Cpu).unwrap(), "after a corrupt download");
    assert_cache_sound(cache.path());
}

#[test]
fn an_interrupted_download_resumes_from_the_incomplete_blob() {
    for device in devices() {
        let server = serve();
        let cache = tempfile::tempdir().unwrap();
        // The first data request breaks 3 MB in, and every retry at once: the retries give up.
        let skip = requests_before_data(&device);
        server.fault(&format!("file={WEIGHTS}&kind=drop&skip={skip}&after=3000000&method=GET"));
        server.fault(&format!("file={WEIGHTS}&kind=drop&after=0&count=-1&method=GET"));
        let err = load(&hub(cache.path(), options(&server)), REPO, &device).err().expect("gives up");
        assert!(matches!(err, Error::Hub { kind: HubErrorKind::Network, .. }), "{err}");
        assert!(err.to_string().contains(REPO) && err.to_string().contains(WEIGHTS), "{err}");
        let incomplete = repo_dir(cache.path(), REPO).join("blobs").join(format!("{}.incomplete", weights_sha256()));
        let kept = std::fs::metadata(&incomplete).expect("the partial download is kept").len();
        assert!(kept >= 3_000_000, "{kept}");
        assert!(!repo_dir(cache.path(), REPO).join("blobs").join(weights_sha256()).exists());
        assert_cache_sound(cache.path());

        server.reset();
        check_embeddings(&load(&hub(cache.path(), options(&server)), REPO, &device).unwrap(), &format!("resumed, {device:?}"));
        let first = requests_for(&server, WEIGHTS).into_iter().find(|r| r["method"] == "GET").unwrap();
        let range = first["range"].as_str().unwrap();
        assert!(range.starts_with(&format!("bytes={kept}-")), "{device:?}: resumes at byte {kept}: {range}");
        assert!(!incomplete.exists());
        assert_cache_sound(cache.path());
    }
}

/// model.safetensors split into three shards with an index, as large checkpoints are.
fn sharded_minilm(dir: &Path) {
    let bytes = std::fs::read(minilm().join(WEIGHTS)).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut names: Vec<String> = file.names().into_iter().map(str::to_string).collect();
    names.sort();
    let mut weight_map = serde_json::Map::new();
    let per_shard = names.len().div_ceil(3);
    for (i, chunk) in names.chunks(per_shard).enumerate() {
        let shard = format!("model-{:05}-of-00003.safetensors", i + 1);
        let views: Vec<(String, safetensors::tensor::TensorView)> = chunk.iter().map(|n| (n.clone(), file.tensor(n).unwrap())).collect();
        safetensors::tensor::serialize_to_file(views, None, &dir.join(&shard)).unwrap();
        for n in chunk {
            weight_map.insert(n.clone(), shard.clone().into());
        }
    }
    let index = serde_json::json!({"metadata": {"total_size": bytes.len()}, "weight_map": weight_map});
    std::fs::write(dir.join("model.safetensors.index.json"), index.to_string()).unwrap();
    for f in ["config.json", "tokenizer.json", "tokenizer_config.json", "sentence_bert_config.json"] {
        std::fs::copy(minilm().join(f), dir.join(f)).unwrap();
    }
}

#[test]
fn sharded_weights_stream_shard_by_shard() {
    let folder = tempfile::tempdir().unwrap();
    sharded_minilm(folder.path());
    let repo = "test/minilm-sharded";
    let server = HubServer::start(&[(repo, folder.path())], &[]);
    let cache = tempfile::tempdir().unwrap();
    for device in devices() {
        let pipe = load(&hub(cache.path(), options(&server)), repo, &device).unwrap();
        check_embeddings(&pipe, &format!("sharded, {device:?}"));
    }
    let shards: Vec<String> =
        server.requests().iter().filter_map(|r| r["file"].as_str().filter(|f| f.starts_with("model-")).map(str::to_string)).collect();
    assert_eq!(shards.iter().collect::<std::collections::BTreeSet<_>>().len(), 3, "{shards:?}");
    // The same folder loads locally too (the sharded path of ModelFiles::weights).
    let files = webformers::files::DirFiles::open(folder.path()).unwrap();
    check_embeddings(&FeatureExtraction::load(&files, &Device::Cpu, &LoadOptions::default()).unwrap(), "sharded folder");
    assert_cache_sound(cache.path());
}

#[test]
fn progress_events_follow_transformers_js() {
    let server = serve();
    let cache = tempfile::tempdir().unwrap();
    let events = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = events.clone();
    let options = HubOptions {
        progress: Some(Arc::new(move |e: &webformers::hub::ProgressEvent| sink.lock().unwrap().push(e.to_json()))),
        ..options(&server)
    };
    load(&hub(cache.path(), options), REPO, &Device::Cpu).unwrap();
    let events = events.lock().unwrap();
    let of = |status: &str| events.iter().filter(|e| e["status"] == status).collect::<Vec<_>>();
    let weights_done = of("done").into_iter().find(|e| e["file"] == WEIGHTS).expect("done for the weights");
    assert_eq!(weights_done["loaded"], weights_done["total"]);
    assert!(of("progress").iter().all(|e| e["name"] == REPO && e["progress"].as_f64().unwrap() <= 100.0));
    let total = of("progress_total").last().cloned().cloned().unwrap();
    assert_eq!(total["loaded"], total["total"]);
    assert!(total["total"].as_u64().unwrap() > 90_000_000);
    assert_eq!(events.last().unwrap()["status"], "ready");
    assert_eq!(of("initiate").len(), of("done").len());
}

fn hub_python() -> PathBuf {
    let python = repo_root().join(".cache/hub-venv/bin/python");
    assert!(python.exists(), "{} is missing: run scripts/hub-python.sh", python.display());
    python
}

fn interop(args: &[&str], envs: &[(&str, &str)]) -> serde_json::Value {
    let out = std::process::Command::new(hub_python())
        .arg(repo_root().join("tests/hub/interop.py"))
        .args(args)
        .env_remove("HF_HOME")
        .env_remove("HF_TOKEN")
        .env("HF_HUB_DISABLE_TELEMETRY", "1")
        .env("HF_HUB_DISABLE_UPDATE_CHECK", "1")
        .env("HF_HUB_DISABLE_XET", "1")
        .envs(envs.iter().copied())
        .output()
        .expect("python runs");
    assert!(out.status.success(), "interop.py {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("interop.py printed {:?}: {e}", String::from_utf8_lossy(&out.stdout)))
}

#[test]
fn python_finds_what_webformers_cached() {
    let server = serve();
    let cache = tempfile::tempdir().unwrap();
    let pipe = load(&hub(cache.path(), options(&server)), REPO, &Device::Cpu).unwrap();
    drop(pipe);
    let files = [WEIGHTS, "config.json", "tokenizer.json", "sentence_bert_config.json"];
    let mut args = vec!["find", REPO];
    args.extend(files);
    let cache_str = cache.path().to_str().unwrap();
    let found = interop(&args, &[("HF_HUB_CACHE", cache_str), ("HF_HUB_OFFLINE", "1")]);
    for file in files {
        let entry = &found["files"][file];
        assert_eq!(entry["sha256"].as_str().unwrap(), sha256_of(&minilm().join(file)), "{file}");
        assert!(entry["path"].as_str().unwrap().starts_with(cache_str), "{entry}");
    }
    let repos = found["repos"].as_array().unwrap();
    assert_eq!(repos.len(), 1, "{found}");
    assert_eq!(repos[0]["repo_id"], REPO);
}

#[test]
fn webformers_finds_what_python_cached() {
    let server = serve();
    let cache = tempfile::tempdir().unwrap();
    let cache_str = cache.path().to_str().unwrap();
    let endpoint = server.endpoint();
    interop(&["download", REPO], &[("HF_HUB_CACHE", cache_str), ("HF_ENDPOINT", &endpoint)]);
    // Offline, from Python's cache alone.
    let nowhere = HubOptions { endpoint: "http://127.0.0.1:9".into(), offline: true, ..HubOptions::default() };
    check_embeddings(&load(&hub(cache.path(), nowhere), REPO, &Device::Cpu).unwrap(), "offline from Python's cache");
    // Online: the weights Python fetched are not fetched again.
    server.reset();
    check_embeddings(&load(&hub(cache.path(), options(&server)), REPO, &Device::Cpu).unwrap(), "online from Python's cache");
    assert!(requests_for(&server, WEIGHTS).is_empty(), "{:#?}", server.requests());
    assert_cache_sound(cache.path());
}

#[test]
fn gguf_files_stream_tensor_by_tensor_or_map_from_the_cache() {
    use webformers::weights::WeightSource;
    use webformers::weights::gguf::{self, GgufFile};
    const FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
    let path = repo_root().join(".cache/models").join(FILE);
    assert!(path.exists(), "{} is missing: run scripts/fetch-models.sh", path.display());
    let folder = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(&path, folder.path().join(FILE)).unwrap();
    let repo = "test/smollm2-gguf";
    let server = HubServer::start(&[(repo, folder.path())], &[]);
    let local = GgufFile::open(&path).unwrap();

    // Whole, mapped from the cache: what TextGeneration::load_gguf takes.
    let cache = tempfile::tempdir().unwrap();
    let whole = pollster::block_on(hub(cache.path(), options(&server)).model(repo, None).unwrap().gguf(FILE)).unwrap();
    assert_eq!(whole.tensors().len(), local.tensors().len());
    assert_eq!(whole.metadata().keys().count(), local.metadata().keys().count());
    assert_eq!(sha256_of(&repo_dir(cache.path(), repo).join("blobs").join(sha256_of(&path))), sha256_of(&path));

    // Streamed onto each device tensor by tensor, ggml blocks as stored, the header kept.
    let norm = local.tensors().iter().find(|t| t.dtype == Some(webformers::DType::F32)).expect("an f32 tensor").clone();
    let quantized = local.tensors().iter().find(|t| t.dtype.is_some_and(|d| d.is_quantized())).expect("a quantized tensor").clone();
    for device in devices() {
        let cold = tempfile::tempdir().unwrap();
        let w = pollster::block_on(hub(cold.path(), options(&server)).model(repo, None).unwrap().gguf_weights(FILE, &device)).unwrap();
        assert_eq!(w.len(), local.tensors().iter().filter(|t| t.dtype.is_some()).count(), "{device:?}");
        assert_eq!(gguf::parse_header(w.header(), "streamed").unwrap().metadata.keys().count(), local.metadata().keys().count());
        let streamed = w.tensor(&norm.name, &device).unwrap().unwrap().to_vec_f32_blocking().unwrap();
        let stored: Vec<f32> =
            local.tensor_bytes(&norm.name).unwrap().chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
        assert_eq!(streamed, stored, "{device:?}: {}", norm.name);
        let q = w.info(&quantized.name).unwrap();
        assert_eq!((q.dtype, &q.dims), (quantized.dtype.unwrap(), &quantized.dims), "{device:?}");
        assert_cache_sound(cold.path());
        // The streamed tensors and kept header make the same model as the mapped file.
        use webformers::chat::Message;
        use webformers::tasks::text_generation::{GenerationOptions, Prompt, TextGeneration};
        let prompt = Prompt::Chat(vec![Message { role: "user".into(), content: "What is the capital of France?".into() }]);
        // Lavapipe (CI's GPU) decodes about a token a second: three tokens there.
        let options = GenerationOptions { max_new_tokens: if device.is_gpu() { 3 } else { 8 }, ..Default::default() };
        let streamed = TextGeneration::load_gguf_streamed(w, &device, &LoadOptions::default()).unwrap();
        let mapped = TextGeneration::load_gguf(GgufFile::open(&path).unwrap(), &device, &LoadOptions::default()).unwrap();
        let reply = |pipe: &TextGeneration| pollster::block_on(pipe.generate(&prompt, &options, |_| {})).unwrap().token_ids;
        assert_eq!(reply(&streamed), reply(&mapped), "{device:?}");
    }

    // From the cache: no GET; one HEAD pins the branch.
    server.reset();
    let w = pollster::block_on(hub(cache.path(), options(&server)).model(repo, None).unwrap().gguf_weights(FILE, &Device::Cpu)).unwrap();
    assert_eq!(w.len(), local.tensors().iter().filter(|t| t.dtype.is_some()).count());
    let requests = server.requests();
    assert!(requests.iter().all(|r| r["method"] == "HEAD") && requests.len() == 1, "{requests:#?}");
}

/// Gemma 3's Q4_K_M mixes in Q5_0, which no kernel reads: streamed, its tensors are rewritten
/// as Q8_0 on arrival, as the mapped file's are at open, and the two give the same logits.
#[test]
fn a_gguf_with_q5_0_streams_as_it_maps() {
    use webformers::tasks::text_generation::TextGeneration;
    use webformers::weights::WeightSource;
    use webformers::weights::gguf::GgufFile;
    const FILE: &str = "gemma-3-270m-q4_k_m.gguf";
    let path = repo_root().join(".cache/models").join(FILE);
    assert!(path.exists(), "{} is missing: run scripts/fetch-models.sh gemma3", path.display());
    let folder = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(&path, folder.path().join(FILE)).unwrap();
    let repo = "test/gemma3-gguf";
    let server = HubServer::start(&[(repo, folder.path())], &[]);
    let device = Device::Cpu;
    let cold = tempfile::tempdir().unwrap();
    let w = pollster::block_on(hub(cold.path(), options(&server)).model(repo, None).unwrap().gguf_weights(FILE, &device)).unwrap();
    let q = w.info("blk.0.attn_q.weight").unwrap();
    assert_eq!((q.dtype, &q.dims), (webformers::DType::Q8_0, &vec![1024, 640]));
    let streamed = TextGeneration::load_gguf_streamed(w, &device, &LoadOptions::default()).unwrap();
    let mapped = TextGeneration::load_gguf(GgufFile::open(&path).unwrap(), &device, &LoadOptions::default()).unwrap();
    let ids = [2u32, 818, 5279, 529, 7001, 563];
    let logits = |pipe: &TextGeneration| {
        let mut cache = pipe.model().new_cache(ids.len()).unwrap();
        pipe.model().forward(&ids, &mut cache, false).unwrap().to_vec_f32_blocking().unwrap()
    };
    assert_eq!(logits(&streamed), logits(&mapped));
}

/// A transformers.js conversion's layout (`Xenova/*`): config and tokenizer files, ONNX weights
/// under onnx/, no safetensors; `card` is its README.md (None: none), `name_or_path` config.json's.
fn onnx_conversion(card: Option<&str>, name_or_path: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for file in ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"] {
        std::fs::copy(minilm().join(file), dir.path().join(file)).unwrap();
    }
    let mut config: serde_json::Value = serde_json::from_slice(&std::fs::read(minilm().join("config.json")).unwrap()).unwrap();
    config["_name_or_path"] = serde_json::json!(name_or_path);
    std::fs::write(dir.path().join("config.json"), config.to_string()).unwrap();
    if let Some(card) = card {
        std::fs::write(dir.path().join("README.md"), card).unwrap();
    }
    std::fs::create_dir(dir.path().join("onnx")).unwrap();
    std::fs::write(dir.path().join("onnx/model.onnx"), b"an ONNX graph would be here").unwrap();
    dir
}

#[test]
fn an_onnx_conversion_loads_the_weights_of_the_model_it_was_converted_from() {
    let card = format!("---\nlibrary_name: transformers.js\nbase_model: {REPO}\n---\n\n# all-MiniLM-L6-v2 with ONNX weights\n");
    let by_card = onnx_conversion(Some(&card), "nreimers/MiniLM-L6-H384-uncased");
    let by_config = onnx_conversion(None, REPO);
    let orphan = onnx_conversion(Some("---\nlicense: apache-2.0\n---\n"), "./local-folder");
    let server = HubServer::start(
        &[
            (REPO, &minilm()),
            ("Xenova/all-MiniLM-L6-v2", by_card.path()),
            ("onnx-community/minilm", by_config.path()),
            ("someone/orphan", orphan.path()),
        ],
        &[],
    );
    let cache = tempfile::tempdir().unwrap();
    let h = hub(cache.path(), options(&server));
    for repo in ["Xenova/all-MiniLM-L6-v2", "onnx-community/minilm"] {
        let pipe = load(&h, repo, &Device::Cpu).unwrap_or_else(|e| panic!("{repo}: {e}"));
        check_embeddings(&pipe, repo);
    }
    // The base's weights are cached once, under the base.
    assert!(repo_dir(cache.path(), REPO).join("blobs").is_dir());
    let conversion_files = walk(&repo_dir(cache.path(), "Xenova/all-MiniLM-L6-v2"));
    // (.no_exist/ remembers that the conversion has no weights file)
    assert!(!conversion_files.iter().any(|p| p.ends_with(WEIGHTS) && !p.components().any(|c| c.as_os_str() == ".no_exist")));
    // Neither a card's base_model nor a repository in _name_or_path: the clear error.
    let err = load(&h, "someone/orphan", &Device::Cpu).err().expect("no weights anywhere").to_string();
    assert!(err.contains("someone/orphan") && err.contains("neither model.safetensors nor"), "{err}");
}
