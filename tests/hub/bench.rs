//! Hub loading benchmark (not a test): a cold load of all-MiniLM-L6-v2 through the Hub stand-in
//! (tests/hub/server.py on 127.0.0.1) into an empty huggingface_hub cache and onto the device,
//! against the raw transfer of the same bytes from the same server: a plain GET loop (ureq,
//! redirects followed, bytes discarded) and curl. Runs alternate so that noise hits all alike.
//!
//!     cargo run --release -p webformers-tests --example hub-load -- [--reps 9] [--device cpu|gpu] [--rate-mb 50]
//!
//! `--rate-mb N` throttles the server to N MB/s (10^6 bytes) shared by every connection, as a
//! real link would be; the default is unthrottled (the kernel's sendfile on loopback).
//! Prints one JSON object: times in ms (min and median over the reps) and the ratios.

use std::io::Read;
use std::process::Command;
use std::time::Instant;

use webformers::hub::{HfCache, Hub, HubOptions, UreqTransport};
use webformers::tasks::feature_extraction;
use webformers::{Device, DeviceChoice, GpuOptions};
use webformers_tests::{HubServer, model_dir};

const REPO: &str = "sentence-transformers/all-MiniLM-L6-v2";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let reps: usize = arg("--reps").and_then(|r| r.parse().ok()).unwrap_or(9);
    let piece_bytes: u64 = arg("--piece-mb").and_then(|r| r.parse::<u64>().ok()).map_or(HubOptions::default().piece_bytes, |m| m << 20);
    let choice: DeviceChoice = arg("--device").unwrap_or_else(|| "cpu".into()).parse().expect("--device cpu|gpu");
    let (device, _) = pollster::block_on(Device::select(choice, GpuOptions::from_env())).expect("a device");

    let folder = model_dir("all-MiniLM-L6-v2");
    let server = HubServer::start(&[(REPO, &folder)], &[]);
    let rate_mb: f64 = arg("--rate-mb").map_or(0.0, |r| r.parse().expect("--rate-mb MB/s"));
    assert_eq!(server.control(&format!("/_rate?bytes_per_s={}", rate_mb * 1e6)), "ok");
    let mut files: Vec<&str> = feature_extraction::TASK.files();
    files.push("model.safetensors");
    let files: Vec<&str> = files.into_iter().filter(|f| folder.join(f).exists()).collect();
    let bytes: u64 = files.iter().map(|f| std::fs::metadata(folder.join(f)).unwrap().len()).sum();
    let urls: Vec<String> = files.iter().map(|f| format!("{}/{REPO}/resolve/main/{f}", server.endpoint())).collect();

    let agent = ureq::AgentBuilder::new().build();
    let raw = || {
        let t = Instant::now();
        let c = cpu_ms();
        let mut got = 0u64;
        for url in &urls {
            let mut reader = agent.get(url).call().expect("GET").into_reader();
            let mut buf = vec![0u8; 256 << 10];
            loop {
                let n = reader.read(&mut buf).expect("read");
                if n == 0 {
                    break;
                }
                got += n as u64;
            }
        }
        assert_eq!(got, bytes);
        (t.elapsed().as_secs_f64() * 1e3, cpu_ms() - c)
    };
    let curl = || {
        let mut cmd = Command::new("curl");
        cmd.args(["-s", "-L"]);
        for url in &urls {
            cmd.args(["-o", "/dev/null", url]);
        }
        let t = Instant::now();
        assert!(cmd.status().expect("curl runs").success());
        t.elapsed().as_secs_f64() * 1e3
    };
    let load = |cache: &std::path::Path| {
        let hub = Hub::new(
            UreqTransport::new(),
            HfCache::new(cache),
            HubOptions { endpoint: server.endpoint(), piece_bytes, ..Default::default() },
        );
        let t = Instant::now();
        let c = cpu_ms();
        let model = hub.model(REPO, None).unwrap();
        let loaded = pollster::block_on(model.load(&feature_extraction::TASK.files(), &device)).expect("load");
        // Everything on the device before the clock stops.
        let ms = (t.elapsed().as_secs_f64() * 1e3, cpu_ms() - c);
        drop(loaded);
        ms
    };

    if args.iter().any(|a| a == "--raw-only") {
        for _ in 0..reps {
            let (ms, cpu) = raw();
            println!("raw GET loop {ms:.1} ms, {cpu:.1} ms CPU");
        }
        return;
    }
    if args.iter().any(|a| a == "--cold-only") {
        // For profiling the load alone.
        for _ in 0..reps {
            let cache = tempfile::tempdir().unwrap();
            let (ms, cpu) = load(cache.path());
            println!("cold load {ms:.1} ms, {cpu:.1} ms CPU");
        }
        return;
    }
    // One of each first: the server hashes the weights once, caches warm up.
    raw();
    curl();
    let (mut raws, mut curls, mut colds, mut warms) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut raw_cpu, mut cold_cpu) = (Vec::new(), Vec::new());
    for _ in 0..reps {
        let cache = tempfile::tempdir().unwrap();
        let (ms, cpu) = load(cache.path());
        colds.push(ms);
        cold_cpu.push(cpu);
        warms.push(load(cache.path()).0);
        drop(cache);
        let (ms, cpu) = raw();
        raws.push(ms);
        raw_cpu.push(cpu);
        curls.push(curl());
    }
    let stat = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        (v[0], v[v.len() / 2])
    };
    let (raw_min, raw_med) = stat(&mut raws);
    let (curl_min, curl_med) = stat(&mut curls);
    let (cold_min, cold_med) = stat(&mut colds);
    let (warm_min, warm_med) = stat(&mut warms);
    let (_, raw_cpu_med) = stat(&mut raw_cpu);
    let (_, cold_cpu_med) = stat(&mut cold_cpu);
    let r = |x: f64| (x * 10.0).round() / 10.0;
    println!(
        "{}",
        serde_json::json!({
            "device": device.describe(),
            "bytes": bytes,
            "files": files,
            "reps": reps,
            "piece_bytes": piece_bytes,
            "rate_mb_per_s": rate_mb,
            "cpu_ms_median": {"cold_load": r(cold_cpu_med), "raw_get_loop": r(raw_cpu_med)},
            "cold_load_ms": {"min": r(cold_min), "median": r(cold_med)},
            "warm_load_ms": {"min": r(warm_min), "median": r(warm_med)},
            "raw_get_loop_ms": {"min": r(raw_min), "median": r(raw_med)},
            "curl_ms": {"min": r(curl_min), "median": r(curl_med)},
            "cold_over_raw": {"min": (cold_min / raw_min * 100.0).round() / 100.0, "median": (cold_med / raw_med * 100.0).round() / 100.0},
            "cold_over_curl": {"min": (cold_min / curl_min * 100.0).round() / 100.0, "median": (cold_med / curl_med * 100.0).round() / 100.0},
        })
    );
}

/// CPU time of this process, every thread included (user + system), in ms.
fn cpu_ms() -> f64 {
    // SAFETY: getrusage only writes the struct it is given.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let ms = |t: libc::timeval| t.tv_sec as f64 * 1e3 + t.tv_usec as f64 / 1e3;
    ms(u.ru_utime) + ms(u.ru_stime)
}
