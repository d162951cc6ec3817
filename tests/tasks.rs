//! Every pipeline task on every architecture, through the one task contract
//! (`tasks::load(task, files, device)` then `run(input, options)`), against the answers of Python
//! transformers' own `pipeline()` on tiny random models (tests/reference/make_tiny_task_models.py):
//! labels, tokens, words, spans and offsets identical, scores within the reference's tolerance
//! (1e-4), on the CPU and the GPU backends.

use std::collections::HashMap;

use webformers_tests::{PipelineCache, devices, json_differences, repo_root, task_cases};

#[test]
fn every_task_matches_python_transformers_on_every_architecture() {
    let (cases, tolerance) = task_cases();
    assert!(cases.len() >= 8 * 5 * 6, "the reference has {} cases", cases.len());
    let mut failures = Vec::new();
    for device in devices() {
        let mut pipelines = PipelineCache::new(repo_root().join("tests/fixtures/tiny-tasks"), device.clone());
        for case in &cases {
            let (task, model) = (case["task"].as_str().unwrap(), case["model"].as_str().unwrap());
            let pipe = match pipelines.get(task, model) {
                Ok(pipe) => pipe,
                Err(e) => {
                    failures.push(format!("{device:?} {e}"));
                    continue;
                }
            };
            let label = format!("{device:?} {task} {model} {} {}", case["input"], case["options"]);
            match pollster::block_on(pipe.run_json(&case["input"], &case["options"], &mut |_| {})) {
                Ok(out) => {
                    let diffs = json_differences(&out.to_json(), &case["output"], tolerance);
                    if !diffs.is_empty() {
                        failures.push(format!("{label}: {}", diffs.join("; ")));
                    }
                }
                Err(e) => failures.push(format!("{label}: {e}")),
            }
        }
    }
    let mut shown = failures.clone();
    shown.truncate(40);
    let mut per_pair: HashMap<String, usize> = HashMap::new();
    for f in &failures {
        let words: Vec<&str> = f.split(' ').collect();
        let device_end = words.iter().position(|w| w.ends_with(')')).unwrap_or(0);
        let pair = words.iter().skip(device_end + 1).take(2).copied().collect::<Vec<_>>().join(" ");
        *per_pair.entry(format!("{} {pair}", words[0])).or_default() += 1;
    }
    let mut per_pair: Vec<String> = per_pair.into_iter().map(|(k, n)| format!("{k}: {n}")).collect();
    per_pair.sort();
    assert!(failures.is_empty(), "{} failures ({}):\n{}", failures.len(), per_pair.join(", "), shown.join("\n"));
}
