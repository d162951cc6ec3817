//! The `webformers` binary as a user runs it: JSON output against the Python reference, and one
//! clear line on stderr (never a panic) for every kind of bad input.

use std::process::{Command, Output};

use webformers_tests::{fixture, floats, max_abs_diff, model_dir};

fn command() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_webformers"));
    // Mesa's software Vulkan prints an `error:` line of its own when this is unset.
    c.env("XDG_RUNTIME_DIR", std::env::temp_dir());
    c
}

fn webformers(args: &[&str]) -> Output {
    command().args(args).output().expect("the binary runs")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A failed run: non-zero status, one `error:` line naming the problem, no panic.
#[track_caller]
fn assert_clear_error(out: &Output, needle: &str) {
    let err = stderr(out);
    assert!(!out.status.success(), "succeeded, stderr: {err}");
    assert!(!err.contains("panicked"), "panicked: {err}");
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "expected one error line, got: {err}");
    assert!(errors[0].contains(needle), "`{needle}` not in: {}", errors[0]);
    assert!(out.stdout.is_empty(), "stdout should be empty on error");
}

#[test]
fn json_output_matches_the_reference_on_every_device() {
    let reference = fixture("minilm-reference.json");
    let inputs = reference["inputs"].as_array().unwrap();
    let pick = |name: &str| inputs.iter().find(|i| i["name"] == name).unwrap();
    let (a, b) = (pick("hello"), pick("cjk"));
    let model = model_dir("all-MiniLM-L6-v2");
    for device in ["cpu", "auto"] {
        let out = webformers(&[
            "run",
            "feature-extraction",
            "--model",
            model.to_str().unwrap(),
            "--device",
            device,
            "--pooling",
            "mean",
            "--normalize",
            "--json",
            a["text"].as_str().unwrap(),
            b["text"].as_str().unwrap(),
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(stderr(&out).contains("device:"), "the chosen device is reported on stderr");
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is exactly one JSON object");
        assert_eq!(json["dims"], serde_json::json!([2, 384]));
        let rows = json["data"].as_array().unwrap();
        assert_eq!(rows.len(), 2);
        assert!(max_abs_diff(&floats(&rows[0]), &floats(&a["embedding"])) <= 1e-4);
        assert!(max_abs_diff(&floats(&rows[1]), &floats(&b["embedding"])) <= 1e-4);
    }
}

#[test]
fn bad_input_gives_one_clear_line() {
    let model = model_dir("all-MiniLM-L6-v2");
    let model = model.to_str().unwrap();
    assert_clear_error(&webformers(&["run", "feature-extraction", "--model", "/no/such/model", "hi"]), "does not exist");
    assert_clear_error(&webformers(&["run", "transliteration", "--model", model, "hi"]), "unknown task `transliteration`");
    assert_clear_error(&webformers(&["run", "feature-extraction", "--model", "/tmp", "hi"]), "no config.json");
    assert_clear_error(&webformers(&["run", "feature-extraction", "--model", model, "--pooling", "max", "hi"]), "unknown pooling");

    let dir = std::env::temp_dir().join(format!("webformers-cli-corrupt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["config.json", "tokenizer.json"] {
        std::fs::copy(model_dir("all-MiniLM-L6-v2").join(f), dir.join(f)).unwrap();
    }
    std::fs::write(dir.join("model.safetensors"), b"\x08\x00\x00\x00\x00\x00\x00\x00{garbage").unwrap();
    assert_clear_error(&webformers(&["run", "feature-extraction", "--model", dir.to_str().unwrap(), "hi"]), "not a valid safetensors file");
}

#[test]
fn gpu_without_an_adapter_is_a_clear_error() {
    // No Metal on Linux (and no Vulkan on macOS): wgpu finds no adapter on that backend alone.
    let backend = if cfg!(target_os = "macos") { "vulkan" } else { "metal" };
    let model = model_dir("all-MiniLM-L6-v2");
    let out = command()
        .env("WGPU_BACKEND", backend)
        .args(["run", "feature-extraction", "--model", model.to_str().unwrap(), "--device", "gpu", "hi"])
        .output()
        .unwrap();
    assert_clear_error(&out, "no GPU adapter");
    // `auto` falls back to the CPU and says so.
    let out = command()
        .env("WGPU_BACKEND", backend)
        .args(["run", "feature-extraction", "--model", model.to_str().unwrap(), "--json", "hi"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("device: cpu"), "{}", stderr(&out));
}

/// A GPU without room for the model (a fake one: WEBFORMERS_GPU_MEMORY_BUDGET, 60 MB against
/// MiniLM's 90.9 MB): `--device gpu` is one clear line naming the weight, the bytes and the budget.
/// (`auto` loads on the CPU then: tests/device_faults.rs checks that decision, `Device::fallback`;
/// here `auto` never takes lavapipe, a software adapter.)
#[test]
fn gpu_out_of_memory_is_a_clear_error() {
    let model = model_dir("all-MiniLM-L6-v2");
    let out = command()
        .env("WEBFORMERS_GPU_MEMORY_BUDGET", "60000000")
        .args(["run", "feature-extraction", "--model", model.to_str().unwrap(), "--device", "gpu", "hi"])
        .output()
        .unwrap();
    if stderr(&out).contains("no GPU adapter") && !webformers_tests::gpu_required() {
        eprintln!("SKIPPING: no GPU adapter ({})", stderr(&out).trim());
        return;
    }
    assert_clear_error(&out, "error: out of memory: weight `");
    assert!(stderr(&out).contains("of the GPU's 60000000-byte memory budget are in use"), "{}", stderr(&out));
}

/// `--model org/name`: fetched from a Hub (the stand-in of tests/hub) into the HF cache, then
/// loaded offline from it; `--revision` pins a commit; mistakes are one clear line.
#[test]
fn hub_models_by_id_are_cached_and_work_offline() {
    use webformers_tests::HubServer;
    let repo = "sentence-transformers/all-MiniLM-L6-v2";
    let llama = "test/tiny-llama";
    let fixtures = webformers_tests::repo_root().join("tests/fixtures/tiny-llama");
    let gguf_folder = tempfile::tempdir().unwrap();
    let gguf = "SmolLM2-135M-Instruct.Q4_1.gguf";
    std::os::unix::fs::symlink(webformers_tests::repo_root().join(".cache/models").join(gguf), gguf_folder.path().join(gguf)).unwrap();
    let server =
        HubServer::start(&[(repo, &model_dir("all-MiniLM-L6-v2")), (llama, &fixtures), ("test/smollm2-gguf", gguf_folder.path())], &[]);
    let home = tempfile::tempdir().unwrap();
    let reference = fixture("minilm-reference.json");
    let hello = reference["inputs"].as_array().unwrap().iter().find(|i| i["name"] == "hello").unwrap().clone();
    let run = |env: &[(&str, &str)], args: &[&str]| {
        let mut c = command();
        c.env_remove("HF_TOKEN").env_remove("HF_HUB_CACHE").env("HF_HOME", home.path());
        c.envs(env.iter().copied()).args(args).output().unwrap()
    };
    let endpoint = server.endpoint();
    let online = [("HF_ENDPOINT", endpoint.as_str())];
    let offline = [("HF_ENDPOINT", "http://127.0.0.1:9"), ("HF_HUB_OFFLINE", "1")];
    let embed = ["run", "feature-extraction", "--model", repo, "--device", "cpu", "--pooling", "mean", "--normalize", "--json"];
    for (env, what) in [(&online[..], "online"), (&offline[..], "offline")] {
        let mut args = embed.to_vec();
        args.push(hello["text"].as_str().unwrap());
        let out = run(env, &args);
        assert!(out.status.success(), "{what}: {}", stderr(&out));
        assert!(stderr(&out).contains(&format!("model: {repo} at ")), "{what}: {}", stderr(&out));
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
        assert!(max_abs_diff(&floats(&json["data"][0]), &floats(&hello["embedding"])) <= 1e-4, "{what}");
    }
    let snapshots = home.path().join("hub/models--sentence-transformers--all-MiniLM-L6-v2/snapshots");
    let commit = std::fs::read_dir(&snapshots).unwrap().next().unwrap().unwrap().file_name().into_string().unwrap();
    let out = run(&offline, &[&embed[..], &["--revision", &commit, "hi"]].concat());
    assert!(out.status.success(), "--revision {commit}: {}", stderr(&out));

    // Text generation loads through the same path.
    let out = run(&online, &["run", "text-generation", "--model", llama, "--device", "cpu", "--max-new-tokens", "3", "--json", "Hello"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON array");
    assert!(json[0]["generated_text"].is_string(), "{json}");

    // A GGUF file in a repository: org/name/file.gguf.
    let gguf_ref = format!("test/smollm2-gguf/{gguf}");
    for env in [&online[..], &offline[..]] {
        let out = run(env, &["run", "text-generation", "--model", &gguf_ref, "--device", "cpu", "--max-new-tokens", "3", "--json", "Hi"]);
        assert!(out.status.success(), "{}", stderr(&out));
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON array");
        assert!(json[0]["generated_text"].is_string(), "{json}");
    }

    assert_clear_error(&run(&online, &[&embed[..], &["--revision", "no-such-branch", "hi"]].concat()), "revision does not exist");
    assert_clear_error(&run(&online, &["run", "feature-extraction", "--model", "nobody/nothing", "hi"]), "nobody/nothing");
    assert_clear_error(&run(&offline, &["run", "feature-extraction", "--model", "nobody/nothing", "hi"]), "HF_HUB_OFFLINE");
    let folder = model_dir("all-MiniLM-L6-v2");
    assert_clear_error(
        &run(&online, &["run", "feature-extraction", "--model", folder.to_str().unwrap(), "--revision", "main", "hi"]),
        "--revision",
    );
}

fn tiny_task_model(name: &str) -> String {
    webformers_tests::repo_root().join("tests/fixtures/tiny-tasks").join(name).to_str().unwrap().to_string()
}

/// One command shape for every task: `--input` and `--options` are the JS call's arguments and
/// `--json` prints exactly the value the JS pipeline resolves to, which is Python's answer here.
#[test]
fn every_task_speaks_one_shape_with_json_input_and_options() {
    let (cases, tolerance) = webformers_tests::task_cases();
    for task in ["text-classification", "token-classification", "question-answering", "fill-mask", "zero-shot-classification"] {
        // The first bert case of each task, and one with options.
        let picked: Vec<&serde_json::Value> = cases
            .iter()
            .filter(|c| c["task"] == task && c["model"].as_str().unwrap().starts_with("bert-"))
            .filter(|c| c["options"].as_object().is_some_and(|o| !o.is_empty()))
            .take(1)
            .chain(cases.iter().filter(|c| c["task"] == task && c["model"].as_str().unwrap().starts_with("bert-")).take(1))
            .collect();
        assert_eq!(picked.len(), 2, "{task}: the reference has bert cases");
        for case in picked {
            let model = tiny_task_model(case["model"].as_str().unwrap());
            let (input, options) = (case["input"].to_string(), case["options"].to_string());
            let out = webformers(&["run", task, "--model", &model, "--device", "cpu", "--json", "--input", &input, "--options", &options]);
            assert!(out.status.success(), "{task} {input}: {}", stderr(&out));
            let got: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is exactly one JSON value");
            let diffs = webformers_tests::json_differences(&got, &case["output"], tolerance);
            assert!(diffs.is_empty(), "{task} {input} {options}: {}", diffs.join("; "));
        }
    }

    // Positional texts are shorthand for a string (or an array), and flags for options; the
    // alias names the same task.
    let case = cases
        .iter()
        .find(|c| {
            c["task"] == "text-classification"
                && c["model"] == "bert-sequence-classification"
                && c["input"].is_string()
                && c["options"] == serde_json::json!({})
        })
        .expect("a plain text-classification case");
    let model = tiny_task_model("bert-sequence-classification");
    let out = webformers(&["run", "sentiment-analysis", "--model", &model, "--device", "cpu", "--json", case["input"].as_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let got: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(webformers_tests::json_differences(&got, &case["output"], tolerance).is_empty(), "{got} vs {}", case["output"]);
    let out = webformers(&[
        "run",
        "text-classification",
        "--model",
        &model,
        "--device",
        "cpu",
        "--top-k",
        "2",
        "--json",
        "The bridge has seven arches.",
    ]);
    let got: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(got.as_array().map(Vec::len), Some(2), "--top-k 2 gives two labels: {got}");
    // Without --json: a readable rendering that names the label.
    let out = webformers(&["run", "text-classification", "--model", &model, "--device", "cpu", "The bridge has seven arches."]);
    assert!(out.status.success(), "{}", stderr(&out));
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(["entailment", "neutral", "contradiction"].iter().any(|l| shown.contains(l)), "{shown}");
}

#[test]
fn bad_task_input_gives_one_clear_line() {
    let classifier = tiny_task_model("bert-sequence-classification");
    let mlm = tiny_task_model("bert-masked-lm");
    let qa = tiny_task_model("bert-question-answering");
    let run = |args: &[&str]| webformers(&[&["run"], args, &["--device", "cpu"]].concat());
    // An unknown task lists the known ones.
    let out = run(&["summarize-this", "--model", &classifier, "hi"]);
    assert_clear_error(&out, "unknown task `summarize-this`");
    assert!(stderr(&out).contains("question-answering") && stderr(&out).contains("sentiment-analysis"), "{}", stderr(&out));
    // A model without the task's head names both.
    let out = run(&["fill-mask", "--model", &classifier, "The [MASK] is here."]);
    assert_clear_error(&out, "BertForSequenceClassification");
    assert!(stderr(&out).contains("ForMaskedLM"), "{}", stderr(&out));
    assert_clear_error(&run(&["zero-shot-classification", "--model", &classifier, "The bridge."]), "candidate_labels");
    assert_clear_error(&run(&["question-answering", "--model", &qa, "--input", r#"{"question": "Where?"}"#]), "question-answering takes");
    assert_clear_error(&run(&["fill-mask", "--model", &mlm, "No mask in this text."]), "no mask token ([MASK])");
    assert_clear_error(&run(&["text-classification", "--model", &classifier, "--input", "{not json"]), "--input is not valid JSON");
    assert_clear_error(&run(&["text-classification", "--model", &classifier, "--options", "[1]", "hi"]), "--options must be a JSON object");
    assert_clear_error(&run(&["text-classification", "--model", &classifier, "--options", r#"{"topk": 2}"#, "hi"]), "unknown field `topk`");
    assert_clear_error(&run(&["text-classification", "--model", &classifier]), "needs an input");
}

/// `--device auto` never takes a software adapter (lavapipe here, 30x slower than the CPU
/// backend), and says on stderr why it took the CPU; `--device gpu` still uses it.
#[test]
fn auto_device_skips_software_adapters() {
    let model = tiny_task_model("bert-sequence-classification");
    let gpu = webformers(&["run", "text-classification", "--model", &model, "--device", "gpu", "--json", "hi"]);
    if !gpu.status.success() {
        assert!(!webformers_tests::gpu_required(), "WEBFORMERS_REQUIRE_GPU=1 but --device gpu failed: {}", stderr(&gpu));
        eprintln!("SKIPPING: no GPU adapter ({})", stderr(&gpu).trim());
        return;
    }
    let software = ["llvmpipe", "lavapipe", "SwiftShader"].iter().any(|n| stderr(&gpu).contains(n));
    let auto = webformers(&["run", "text-classification", "--model", &model, "--json", "hi"]);
    assert!(auto.status.success(), "{}", stderr(&auto));
    if software {
        assert!(stderr(&auto).contains("device: cpu"), "{}", stderr(&auto));
        assert!(stderr(&auto).contains("software"), "the reason is given: {}", stderr(&auto));
    } else {
        assert!(stderr(&auto).contains("device: gpu"), "{}", stderr(&auto));
    }
}

/// `webformers bench TASK` for a task without a workload of its own: `--input` times one call
/// (and shows its result), `--corpus` with `--batch` times calls on batches of the corpus.
#[test]
fn any_task_benchmarks_through_one_call_shape() {
    let classifier = tiny_task_model("bert-sequence-classification");
    let corpus = webformers_tests::repo_root().join("bench/corpus.json");
    let out = webformers(&[
        "bench",
        "text-classification",
        "--model",
        &classifier,
        "--device",
        "cpu",
        "--input",
        r#"["a", "b"]"#,
        "--options",
        r#"{"top_k": null}"#,
        "--corpus",
        corpus.to_str().unwrap(),
        "--batch",
        "16",
        "--reps",
        "2",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let got: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is one JSON object");
    assert_eq!(got["task"], "text-classification");
    assert!(got["latency_ms"].as_f64().is_some_and(|ms| ms > 0.0), "{got}");
    assert!(got["sentences_per_s"].as_f64().is_some_and(|r| r > 0.0), "{got}");
    assert_eq!((got["sentences"].as_u64(), got["batch"].as_u64(), got["calls"].as_u64()), (Some(64), Some(16), Some(2)), "{got}");
    // top_k null: every label of each of the two texts.
    assert_eq!(
        got["output"].as_array().map(|a| a.iter().map(|r| r.as_array().map(Vec::len)).collect()),
        Some(vec![Some(3), Some(3)]),
        "{got}"
    );

    let bench = |args: &[&str]| webformers(&[&["bench"], args, &["--device", "cpu"]].concat());
    assert_clear_error(&bench(&["text-classification", "--model", &classifier]), "needs --input JSON");
    assert_clear_error(&bench(&["text-classification", "--model", &classifier, "--input", "{not json"]), "--input is not valid JSON");
    assert_clear_error(
        &bench(&["text-classification", "--model", &classifier, "--input", "\"a\"", "--options", "[1]"]),
        "--options must be a JSON object",
    );
    assert_clear_error(&bench(&["text-classification", "--model", &classifier, "--input", "\"a\"", "--reps", "0"]), "must be positive");
    assert_clear_error(&bench(&["feature-extraction", "--model", &classifier, "--input", "\"a\""]), "its own workload");
}

/// `webformers bench` of a text-to-text task also gives the warm-up call's generated ids
/// (`output_token_ids`, `new_tokens`; bench/seq2seq.sh checks them against other runtimes):
/// Python's `generate` ids on the tiny Marian model, without the decoder's start token.
#[test]
fn seq2seq_bench_reports_the_generated_ids() {
    let reference = fixture("seq2seq/reference.json");
    let case = reference["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| {
            c["model"] == "tiny-marian"
                && c["task"] == "translation"
                && c["options"] == serde_json::json!({})
                && c["input"] == "The cat sat on the mat."
        })
        .expect("a reference case");
    let want = &case["token_ids"].as_array().unwrap()[1..];
    let model = webformers_tests::repo_root().join("tests/fixtures/seq2seq/tiny-marian");
    let input = case["input"].to_string();
    let out = webformers(&[
        "bench",
        "translation",
        "--model",
        model.to_str().unwrap(),
        "--device",
        "cpu",
        "--input",
        &input,
        "--reps",
        "1",
        "--warmup",
        "1",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let got: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is one JSON object");
    assert_eq!(got["output_token_ids"].as_array().map(Vec::as_slice), Some(want), "{got}");
    assert_eq!(got["new_tokens"].as_u64(), Some(want.len() as u64), "{got}");
    assert_eq!(got["output"], case["output"], "{got}");
}

/// The text encoder-decoder tasks on the tiny random Marian model: `--json` gives Python
/// transformers 4.57.6's `pipeline()` answers (tests/fixtures/seq2seq/reference.json), greedy and
/// beam search through `--options`; without `--json` the text streams to stdout; a text longer
/// than the encoder reads is cut and said so on stderr.
#[test]
fn translation_matches_the_reference_and_streams() {
    let reference = fixture("seq2seq/reference.json");
    let model = webformers_tests::repo_root().join("tests/fixtures/seq2seq/tiny-marian");
    let model = model.to_str().unwrap();
    let cases: Vec<&serde_json::Value> = reference["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["model"] == "tiny-marian" && c["task"] == "translation" && c["input"].is_string())
        .collect();
    let pick = |options: serde_json::Value| {
        cases.iter().copied().find(|c| c["options"] == options && c["input"] == "The cat sat on the mat.").expect("a reference case")
    };
    for case in [pick(serde_json::json!({})), pick(serde_json::json!({"num_beams": 3}))] {
        let text = case["input"].as_str().unwrap();
        let options = case["options"].to_string();
        let out = webformers(&["run", "translation", "--model", model, "--device", "cpu", "--json", "--options", &options, text]);
        assert!(out.status.success(), "{options}: {}", stderr(&out));
        let got: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is exactly one JSON value");
        assert_eq!(got, case["output"], "{options}");
        // Streamed: the translation is what stdout shows, then a newline.
        let out = webformers(&["run", "translation_en_to_fr", "--model", model, "--device", "cpu", "--options", &options, text]);
        assert!(out.status.success(), "{options}: {}", stderr(&out));
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("{}\n", case["output"][0]["translation_text"].as_str().unwrap()),
            "{options}"
        );
    }

    // The long text: cut to the encoder's 64 positions, as transformers.js does, and said so.
    let long = cases.iter().find(|c| c["input"].as_str().unwrap().len() > 1000).expect("the long text");
    let out = webformers(&["run", "translation", "--model", model, "--device", "cpu", "--json", long["input"].as_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let got: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(got, long["output"]);
    let warnings: Vec<String> = stderr(&out).lines().filter(|l| l.starts_with("warning:")).map(String::from).collect();
    assert_eq!(warnings.len(), 1, "{}", stderr(&out));
    assert!(warnings[0].starts_with("warning: translation: the text is ") && warnings[0].contains("only its first 64"), "{}", warnings[0]);

    // Bad input: one clear line.
    assert_clear_error(&webformers(&["run", "translation", "--model", model, "--device", "cpu", ""]), "the text is empty");
    assert_clear_error(
        &webformers(&["run", "translation", "--model", model, "--device", "cpu", "--options", r#"{"num_beams": 0}"#, "Hello."]),
        "num_beams must be at least 1",
    );
}

/// `webformers chat`: each stdin line is a user turn; every reply is the one a fresh
/// `webformers run` gives for the whole conversation so far, and the later turns continue from
/// the kept KV cache (their stats line on stderr says how many prompt tokens it held).
#[test]
fn chat_turns_reuse_the_cache_and_reply_as_fresh_runs() {
    use std::io::Write;
    let model = webformers_tests::repo_root().join("tests/fixtures/tiny-llama");
    let model = model.to_str().unwrap();
    let options = r#"{"max_new_tokens": 6, "no_repeat_ngram_size": 2}"#;
    let turns = ["Is the storm over?", "When will it end?", "Thank you."];
    let mut child = command()
        .args(["chat", "--model", model, "--device", "cpu", "--system", "You are terse.", "--options", options])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the binary runs");
    child.stdin.take().unwrap().write_all(format!("{}\n\n", turns.join("\n")).as_bytes()).unwrap();
    let chat = child.wait_with_output().unwrap();
    assert!(chat.status.success(), "chat failed: {}", stderr(&chat));

    // The same conversation, one fresh process (so no kept cache) per turn.
    let mut messages = vec![serde_json::json!({"role": "system", "content": "You are terse."})];
    let mut expected = String::new();
    for turn in turns {
        messages.push(serde_json::json!({"role": "user", "content": turn}));
        let input = serde_json::Value::Array(messages.clone()).to_string();
        let out =
            webformers(&["run", "text-generation", "--model", model, "--device", "cpu", "--input", &input, "--options", options, "--json"]);
        assert!(out.status.success(), "run failed: {}", stderr(&out));
        let result: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        messages = result[0]["generated_text"].as_array().unwrap().clone();
        let reply = messages.last().unwrap();
        assert_eq!(reply["role"], "assistant");
        expected.push_str(reply["content"].as_str().unwrap());
        expected.push('\n');
    }
    assert_eq!(String::from_utf8_lossy(&chat.stdout), expected);

    // One stats line per turn; every turn after the first continues from the kept cache.
    let reused: Vec<u64> =
        stderr(&chat).lines().filter_map(|l| l.split(" prompt tokens, ").nth(1)?.split(' ').next()?.parse().ok()).collect();
    assert_eq!(reused.len(), turns.len(), "stats lines: {}", stderr(&chat));
    assert_eq!(reused[0], 0);
    assert!(reused[1..].iter().all(|&n| n > 10), "prompt tokens from the kept cache per turn: {reused:?}");
}
