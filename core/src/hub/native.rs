//! The native transport (ureq, rustls) and the environment variables huggingface_hub reads.
//! Blocking calls inside async fns are fine here: a native load blocks on the whole future.

use std::io::Read;
use std::sync::mpsc::{Receiver, Sender, SyncSender, channel, sync_channel};
use std::time::Duration;

use super::cache::HfCache;
use super::transport::{Body, Method, Request, Response, Transport, TransportError};
use super::{DEFAULT_ENDPOINT, Hub, HubOptions};

pub struct UreqTransport {
    agent: ureq::Agent,
    read_timeout: Duration,
}

/// The read timeout when none is configured (`HF_HUB_DOWNLOAD_TIMEOUT`).
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// A body must bring at least this many bytes per read timeout (or end): a server that drips a
/// byte at a time never trips a per-read timeout, and would otherwise hold a load forever.
const LOW_SPEED_BYTES: u64 = 1024;

impl UreqTransport {
    pub fn new() -> UreqTransport {
        UreqTransport::with_read_timeout(DEFAULT_READ_TIMEOUT)
    }

    /// `read_timeout`: a read that waits this long fails (a stalled connection, resumed by the
    /// client), and so does a body that brings fewer than 1 KiB in that time (a drip).
    pub fn with_read_timeout(read_timeout: Duration) -> UreqTransport {
        let read_timeout = read_timeout.max(Duration::from_millis(1));
        let agent = ureq::AgentBuilder::new()
            // Redirects come back to the client, which decides where Authorization may go.
            .redirects(0)
            .timeout_connect(Duration::from_secs(10))
            .timeout_read(read_timeout)
            .timeout_write(Duration::from_secs(30))
            .user_agent(concat!("webformers/", env!("CARGO_PKG_VERSION")))
            .build();
        UreqTransport { agent, read_timeout }
    }

    /// As huggingface_hub: `HF_HUB_DOWNLOAD_TIMEOUT` seconds, else 30.
    pub fn from_env() -> UreqTransport {
        let seconds = std::env::var("HF_HUB_DOWNLOAD_TIMEOUT").ok().and_then(|v| v.trim().parse::<f64>().ok());
        let timeout = seconds.and_then(|s| Duration::try_from_secs_f64(s).ok()).filter(|d| !d.is_zero());
        UreqTransport::with_read_timeout(timeout.unwrap_or(DEFAULT_READ_TIMEOUT))
    }
}

/// A body reader that fails when fewer than `LOW_SPEED_BYTES` arrive while it waits one read
/// timeout in all (the socket's own read timeout catches a full stall). Only the time spent
/// waiting for the server counts: a consumer that takes its time between reads is not the
/// server's slowness.
struct Watched {
    inner: Box<dyn Read + Send + Sync>,
    window: Duration,
    waited: Duration,
    bytes: u64,
}

impl Read for Watched {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let start = std::time::Instant::now();
        let n = self.inner.read(buf)?;
        self.waited += start.elapsed();
        self.bytes += n as u64;
        if self.bytes >= LOW_SPEED_BYTES {
            self.waited = Duration::ZERO;
            self.bytes = 0;
        } else if n > 0 && self.waited >= self.window {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!(
                    "the server sent {} bytes in {:.1} s, fewer than {LOW_SPEED_BYTES} per read timeout (HF_HUB_DOWNLOAD_TIMEOUT)",
                    self.bytes,
                    self.waited.as_secs_f64()
                ),
            ));
        }
        Ok(n)
    }
}

impl Default for UreqTransport {
    fn default() -> Self {
        UreqTransport::new()
    }
}

/// Bodies of at least this many bytes are read by a thread of their own, so that the socket is
/// drained while the previous piece is hashed, stored and uploaded.
const READ_AHEAD_ABOVE: u64 = 1 << 20;
const PIECE: usize = 1 << 20;
/// Pieces read ahead at most.
const AHEAD: usize = 8;

enum Piece {
    Bytes(Vec<u8>, usize),
    End,
    Failed(std::io::Error),
}

pub struct UreqBody(BodyState);

enum BodyState {
    Direct { reader: Box<dyn Read + Send + Sync>, buf: Vec<u8> },
    Ahead { pieces: Receiver<Piece>, spare: Sender<Vec<u8>>, current: Option<(Vec<u8>, usize)> },
}

impl UreqBody {
    fn new(reader: Box<dyn Read + Send + Sync>, length: Option<u64>) -> UreqBody {
        if length.is_none_or(|n| n < READ_AHEAD_ABOVE) {
            return UreqBody(BodyState::Direct { reader, buf: vec![0; 64 << 10] });
        }
        let (tx, pieces) = sync_channel(AHEAD);
        let (spare, spares) = channel::<Vec<u8>>();
        // Ends when the body does, or when the body is dropped (its next send fails).
        let spawned = std::thread::Builder::new().name("hub-read".into()).spawn(move || read_ahead(reader, tx, spares));
        if let Err(e) = spawned {
            // No thread: the body then reports the failure where it is read.
            let (tx, pieces) = sync_channel(1);
            let _ = tx.send(Piece::Failed(e));
            return UreqBody(BodyState::Ahead { pieces, spare: channel().0, current: None });
        }
        UreqBody(BodyState::Ahead { pieces, spare, current: None })
    }
}

fn read_ahead(mut reader: Box<dyn Read + Send + Sync>, tx: SyncSender<Piece>, spares: Receiver<Vec<u8>>) {
    loop {
        // Buffers come back once read, so a long body reuses a handful of them.
        let mut piece = spares.try_recv().unwrap_or_else(|_| vec![0; PIECE]);
        let mut filled = 0;
        let ended = loop {
            match reader.read(&mut piece[filled..]) {
                Ok(0) => break true,
                Ok(n) => {
                    filled += n;
                    if filled == piece.len() {
                        break false;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // Every byte that did arrive is kept: the download resumes after it.
                    if filled > 0 && tx.send(Piece::Bytes(piece, filled)).is_err() {
                        return;
                    }
                    let _ = tx.send(Piece::Failed(e));
                    return;
                }
            }
        };
        if filled > 0 && tx.send(Piece::Bytes(piece, filled)).is_err() {
            return;
        }
        if ended {
            let _ = tx.send(Piece::End);
            return;
        }
    }
}

impl Body for UreqBody {
    async fn chunk(&mut self) -> Result<Option<&[u8]>, TransportError> {
        match &mut self.0 {
            BodyState::Direct { reader, buf } => loop {
                match reader.read(buf) {
                    Ok(0) => return Ok(None),
                    Ok(n) => return Ok(Some(&buf[..n])),
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(TransportError(e.to_string())),
                }
            },
            BodyState::Ahead { pieces, spare, current } => {
                if let Some((used, _)) = current.take() {
                    let _ = spare.send(used);
                }
                match pieces.recv() {
                    Ok(Piece::Bytes(bytes, n)) => Ok(Some(&current.insert((bytes, n)).0[..n])),
                    Ok(Piece::End) => Ok(None),
                    Ok(Piece::Failed(e)) => Err(TransportError(e.to_string())),
                    Err(_) => Err(TransportError("the body's reader stopped".into())),
                }
            }
        }
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
        let length = response.header("content-length").and_then(|v| v.trim().parse::<u64>().ok());
        let body = if request.method == Method::Head {
            UreqBody::new(Box::new(std::io::empty()), Some(0))
        } else {
            let watched = Watched { inner: response.into_reader(), window: self.read_timeout, waited: Duration::ZERO, bytes: 0 };
            UreqBody::new(Box::new(watched), length)
        };
        Ok(Response { status, headers, body, redirected_to: None })
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
    /// `HF_HUB_OFFLINE`, `HF_HOME`, `HF_HUB_CACHE`, `HF_HUB_DOWNLOAD_TIMEOUT`).
    pub fn from_env() -> NativeHub {
        Hub::new(UreqTransport::from_env(), HfCache::from_env(), HubOptions::from_env())
    }
}
