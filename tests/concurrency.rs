//! Concurrent use of pipelines, on the CPU and the GPU: every result identical to the same call
//! run alone (bit for bit: the same kernels on the same inputs), nothing deadlocked.
//! - 16 calls in flight at once on one pipeline (their futures polled in turn on one thread, as
//!   a page's event loop interleaves them: the GPU backend yields at every readback), for
//!   text-classification, token-classification, question-answering, text-generation and
//!   translation with beams;
//! - 4 pipelines of different tasks on one device, each driven from its own thread.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use serde_json::{Value, json};
use webformers::Device;
use webformers::files::DirFiles;
use webformers::tasks::{self, LoadOptions, Pipeline};
use webformers_tests::{devices, repo_root};

/// (task, model folder under tests/fixtures, inputs with their options) of each checked pipeline.
fn workloads() -> Vec<(&'static str, &'static str, Vec<(Value, Value)>)> {
    let texts = ["I loved this film.", "The service was slow and rude.", "Paris is in France.", "Nothing works."];
    let plain = |options: Value| texts.iter().map(|t| (json!(t), options.clone())).collect::<Vec<_>>();
    vec![
        ("text-classification", "tiny-tasks/bert-sequence-classification", plain(json!({"top_k": 2}))),
        ("token-classification", "tiny-tasks/roberta-token-classification", plain(Value::Null)),
        (
            "question-answering",
            "tiny-tasks/distilbert-question-answering",
            texts
                .iter()
                .map(|t| (json!({"question": "What is it?", "context": format!("{t} It was a long day in the city.")}), Value::Null))
                .collect(),
        ),
        ("text-generation", "tiny-llama", plain(json!({"max_new_tokens": 8}))),
        ("translation", "seq2seq/tiny-marian", plain(json!({"num_beams": 2, "max_new_tokens": 8}))),
    ]
}

fn load(task: &str, model: &str, device: &Device) -> Box<dyn Pipeline> {
    let files = DirFiles::open(repo_root().join("tests/fixtures").join(model)).unwrap();
    tasks::load(task, &files, device, &LoadOptions::default()).unwrap_or_else(|e| panic!("{task} {model}: {e}"))
}

fn run_alone(pipe: &dyn Pipeline, input: &Value, options: &Value) -> Value {
    untimed(pollster::block_on(pipe.run_json(input, options, &mut |_| {})).unwrap().to_json())
}

/// A result without text-generation's `stats` (timings differ from run to run).
fn untimed(mut result: Value) -> Value {
    if let Some(items) = result.as_array_mut() {
        for item in items.iter_mut().filter_map(Value::as_object_mut) {
            item.remove("stats");
        }
    }
    result
}

/// Polls every future in turn until all are done (a one-thread executor, like a page's event
/// loop); their outputs in order.
fn join_all<'a, T>(futures: Vec<Pin<Box<dyn Future<Output = T> + 'a>>>) -> Vec<T> {
    struct JoinAll<'a, T> {
        pending: Vec<Option<Pin<Box<dyn Future<Output = T> + 'a>>>>,
        done: Vec<Option<T>>,
    }
    // Nothing is pinned in place: the futures are boxed, the outputs only moved out when done.
    impl<T> Unpin for JoinAll<'_, T> {}
    impl<T> Future for JoinAll<'_, T> {
        type Output = Vec<T>;
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Vec<T>> {
            let this = &mut *self;
            for (slot, out) in this.pending.iter_mut().zip(this.done.iter_mut()) {
                if let Some(future) = slot
                    && let Poll::Ready(value) = future.as_mut().poll(cx)
                {
                    *out = Some(value);
                    *slot = None;
                }
            }
            if this.pending.iter().all(Option::is_none) {
                Poll::Ready(this.done.iter_mut().map(|v| v.take().unwrap()).collect())
            } else {
                // Wake again at once: the futures interleave at each of their await points.
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        }
    }
    let n = futures.len();
    pollster::block_on(JoinAll { pending: futures.into_iter().map(Some).collect(), done: (0..n).map(|_| None).collect() })
}

#[test]
fn sixteen_calls_in_flight_on_one_pipeline_give_what_each_gives_alone() {
    for device in devices() {
        for (task, model, inputs) in workloads() {
            let pipe = load(task, model, &device);
            let alone: Vec<Value> = inputs.iter().map(|(input, options)| run_alone(pipe.as_ref(), input, options)).collect();
            // 16 calls: each input four times, in an interleaved order
            let order: Vec<usize> = (0..16).map(|i| (i * 3) % inputs.len()).collect();
            let futures: Vec<Pin<Box<dyn Future<Output = webformers::Result<Value>> + '_>>> = order
                .iter()
                .map(|&i| {
                    let (input, options) = &inputs[i];
                    let pipe = pipe.as_ref();
                    Box::pin(async move { pipe.run_json(input, options, &mut |_| {}).await.map(|o| untimed(o.to_json())) })
                        as Pin<Box<dyn Future<Output = _>>>
                })
                .collect();
            for (k, (result, &i)) in join_all(futures).into_iter().zip(&order).enumerate() {
                let got = result.unwrap_or_else(|e| panic!("{device:?} {task}: call {k} failed: {e}"));
                assert_eq!(got, alone[i], "{device:?} {task} {model}: call {k} (input {i}) differs from the same call alone");
            }
        }
    }
}

#[test]
fn four_pipelines_on_one_device_from_four_threads_give_what_each_gives_alone() {
    for device in devices() {
        let chosen: Vec<_> = workloads().into_iter().take(4).collect();
        let alone: Vec<Vec<Value>> = chosen
            .iter()
            .map(|(task, model, inputs)| {
                let pipe = load(task, model, &device);
                inputs.iter().map(|(input, options)| run_alone(pipe.as_ref(), input, options)).collect()
            })
            .collect();
        let results: Vec<Vec<Value>> = std::thread::scope(|scope| {
            let handles: Vec<_> = chosen
                .iter()
                .map(|(task, model, inputs)| {
                    let device = device.clone();
                    scope.spawn(move || {
                        let pipe = load(task, model, &device);
                        // each call twice, to overlap with the other threads' work
                        (0..2)
                            .flat_map(|_| {
                                inputs.iter().map(|(input, options)| run_alone(pipe.as_ref(), input, options)).collect::<Vec<_>>()
                            })
                            .collect::<Vec<Value>>()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().expect("a pipeline's thread panicked")).collect()
        });
        for ((task, model, _), (got, want)) in chosen.iter().zip(results.iter().zip(&alone)) {
            let twice: Vec<Value> = want.iter().chain(want).cloned().collect();
            assert_eq!(got, &twice, "{device:?} {task} {model}: results from its own thread differ from alone");
        }
    }
}
