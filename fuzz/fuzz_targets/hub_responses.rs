//! The Hub client against a server whose every answer comes from the input: statuses, headers
//! (X-Repo-Commit, ETag, X-Linked-Size, Location, Link, Content-Range, Retry-After), redirects
//! and JSON or file bodies. The input is a JSON list of answers, given in order:
//! `[{"status": 302, "headers": [["location", "/x"]], "body": "...", "redirected_to": null}, ...]`;
//! when they run out the connection fails. Beyond not panicking, the token must never reach
//! another origin nor an error message.
#![no_main]

use std::cell::RefCell;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use webformers::Device;
use webformers::hub::{Body, Hub, HubOptions, MemoryStore, Method, Request, Response, RetryPolicy, Transport, TransportError};

const ENDPOINT: &str = "https://hub.test";
const TOKEN: &str = "hf_fuzzsecrettoken";

struct Scripted {
    answers: RefCell<std::vec::IntoIter<Value>>,
}

struct Bytes {
    data: Vec<u8>,
    pos: usize,
    /// The connection breaks after this many bytes.
    break_at: Option<usize>,
}

impl Body for Bytes {
    async fn chunk(&mut self) -> Result<Option<&[u8]>, TransportError> {
        let end = self.data.len().min(self.pos + 1000);
        if self.break_at.is_some_and(|b| self.pos >= b) {
            return Err(TransportError("connection reset".into()));
        }
        let start = std::mem::replace(&mut self.pos, end);
        Ok((end > start).then(|| &self.data[start..end]))
    }
}

impl Transport for Scripted {
    type Body = Bytes;

    async fn send(&self, request: &Request) -> Result<Response<Bytes>, TransportError> {
        let authorized = request.headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("authorization"));
        let own = request.url.starts_with(ENDPOINT) && request.url[ENDPOINT.len()..].starts_with(['/', '?', '#']);
        assert!(!authorized || own, "the token went to {}", request.url);
        let Some(a) = self.answers.borrow_mut().next() else { return Err(TransportError("no more answers".into())) };
        let headers = a["headers"]
            .as_array()
            .map(|h| h.iter().filter_map(|p| Some((p[0].as_str()?.to_ascii_lowercase(), p[1].as_str()?.to_string()))).collect())
            .unwrap_or_default();
        let data = a["body"].as_str().unwrap_or("").as_bytes().to_vec();
        let body = Bytes { data, pos: 0, break_at: a["break_at"].as_u64().map(|b| b as usize) };
        if request.method == Method::Head && a["status"].is_null() {
            return Err(TransportError("refused".into()));
        }
        Ok(Response {
            status: a["status"].as_u64().unwrap_or(200).min(999) as u16,
            headers,
            body,
            redirected_to: a["redirected_to"].as_str().map(str::to_string),
        })
    }

    async fn sleep(&self, _duration: Duration) {}
}

fn check(r: webformers::Result<impl Sized>) {
    if let Err(e) = r {
        assert!(!e.to_string().contains(TOKEN), "the token is in an error: {e}");
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(Value::Array(answers)) = serde_json::from_slice::<Value>(data) else { return };
    let options = HubOptions {
        endpoint: ENDPOINT.into(),
        token: Some(TOKEN.into()),
        retry: RetryPolicy { attempts: 3, base_delay: Duration::ZERO, ..Default::default() },
        piece_bytes: 300,
        ..Default::default()
    };
    let hub = Hub::new(Scripted { answers: RefCell::new(answers.into_iter()) }, MemoryStore::new(), options);
    let model = match hub.model("org/model", None) {
        Ok(m) => m,
        Err(e) => panic!("a valid repository id was refused: {e}"),
    };
    pollster::block_on(async {
        check(model.commit().await);
        check(model.file("config.json").await);
        check(model.file("onnx/tokenizer.json").await);
        check(model.weights(&Device::Cpu).await);
    });
});
