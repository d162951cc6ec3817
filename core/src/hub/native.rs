//! The native transport (ureq, rustls) and the environment variables huggingface_hub reads.
//! Blocking calls inside async fns are fine here: a native load blocks on the whole future.

use std::io::Read;
use std::time::Duration;

use super::cache::HfCache;
use super::transport::{Body, Method, Request, Response, Transport, TransportError};
use super::{DEFAULT_ENDPOINT, Hub, HubOptions};

pub struct UreqTransport {
    agent: ureq::Agent,
}

impl UreqTransport {
    pub fn new() -> UreqTransport {
        let agent = ureq::AgentBuilder::new()
            // Redirects come back to the client, which decides where Authorization may go.
            .redirects(0)
            .timeout_connect(Duration::from_secs(10))
            // Per read: a stalled connection fails and is resumed, a slow one is not cut off.
            .timeout_read(Duration::from_secs(30))
            .timeout_write(Duration::from_secs(30))
            .user_agent(concat!("webformers/", env!("CARGO_PKG_VERSION")))
            .build();
        UreqTransport { agent }
    }
}

impl Default for UreqTransport {
    fn default() -> Self {
        UreqTransport::new()
    }
}

pub struct UreqBody(Box<dyn Read + Send + Sync>);

impl Body for UreqBody {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, TransportError> {
        self.0.read(buf).map_err(|e| TransportError(e.to_string()))
    }
}

impl Transport for UreqTransport {
    type Body = UreqBody;

    async fn send(&self, request: &Request) -> Result<Response<UreqBody>, TransportError> {
        let mut r = self.agent.request(request.method.as_str(), &request.url);
        for (name, value) in &request.headers {
            r = r.set(name, value);
        }
        let response = match r.call() {
            Ok(response) | Err(ureq::Error::Status(_, response)) => response,
            Err(ureq::Error::Transport(e)) => return Err(TransportError(e.to_string())),
        };
        let headers = response
            .headers_names()
            .into_iter()
            .filter_map(|name| response.header(&name).map(|v| (name.to_ascii_lowercase(), v.to_string())))
            .collect();
        let status = response.status();
        let body = if request.method == Method::Head { UreqBody(Box::new(std::io::empty())) } else { UreqBody(response.into_reader()) };
        Ok(Response { status, headers, body })
    }

    async fn sleep(&self, duration: Duration) {
        std::thread::sleep(duration);
    }
}

fn env_true(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| matches!(v.trim().to_ascii_uppercase().as_str(), "1" | "ON" | "YES" | "TRUE"))
}

impl HubOptions {
    /// As huggingface_hub reads them: `HF_ENDPOINT`, `HF_TOKEN` (else the token file
    /// `$HF_HOME/token` that `hf auth login` writes), `HF_HUB_OFFLINE`.
    pub fn from_env() -> HubOptions {
        let var = |k: &str| std::env::var(k).ok().map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let token = var("HF_TOKEN").or_else(|| var("HUGGING_FACE_HUB_TOKEN")).or_else(|| {
            let path = var("HF_TOKEN_PATH").map(std::path::PathBuf::from).unwrap_or_else(|| super::cache::hf_home().join("token"));
            std::fs::read_to_string(path).ok().map(|t| t.trim().to_string()).filter(|t| !t.is_empty())
        });
        HubOptions {
            endpoint: var("HF_ENDPOINT").unwrap_or_else(|| DEFAULT_ENDPOINT.to_string()),
            token,
            offline: env_true("HF_HUB_OFFLINE") || env_true("TRANSFORMERS_OFFLINE"),
            ..HubOptions::default()
        }
    }
}

/// The native client: ureq into the huggingface_hub cache.
pub type NativeHub = Hub<UreqTransport, HfCache>;

impl Hub<UreqTransport, HfCache> {
    /// Configured from the environment as huggingface_hub is (`HF_ENDPOINT`, `HF_TOKEN`,
    /// `HF_HUB_OFFLINE`, `HF_HOME`, `HF_HUB_CACHE`).
    pub fn from_env() -> NativeHub {
        Hub::new(UreqTransport::new(), HfCache::from_env(), HubOptions::from_env())
    }
}
