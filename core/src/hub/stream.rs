//! Reading one file in file order, and weights tensor by tensor.
//!
//! `Fetch` walks a file from its first byte to its last: ranges the store already holds are read
//! back from it, the others come by Range requests; every byte is hashed, stored and handed to a
//! sink exactly once, so a broken connection resumes at the byte where it broke. The caller takes
//! the file in pieces (`advance`, then `flush` to the store), but one request asks for everything
//! up to the next stored range and its body stays open from piece to piece: the transfer never
//! waits for a piece to be hashed and stored before the next is asked for (the network's buffers
//! fill meanwhile, and flow control holds the sender when they are full). `stream_weights` puts a
//! sink behind it that cuts the bytes into tensors and writes each onto the device as its bytes
//! arrive: host memory never holds the file (natively, at most one tensor is staged for its
//! upload; in the browser and on the CPU not even that).

use std::collections::HashSet;
use std::ops::Range;

use sha2::{Digest, Sha256};

use super::HubOptions;
use super::client::{self, Target};
use super::progress::Tracker;
use super::store::{FileMeta, PartialFile};
use super::transport::{Body, Method, Transport};
use crate::weights::{DeviceWeights, TensorInfo, TensorWriter, gguf, safetensors};
use crate::{Device, Error, HubErrorKind, Result, Tensor};

/// Bytes handed on in order: (offset in the file, bytes).
pub(crate) type Sink<'s> = dyn FnMut(u64, &[u8]) -> Result<()> + 's;

/// One piece read back from a store.
const STORE_READ_BYTES: u64 = 4 << 20;

/// What a broken request must have brought to count as progress, which restarts the retry
/// count: a server that drips a few bytes before each stall would otherwise be retried forever.
const MIN_PROGRESS: u64 = 64 << 10;

/// Checks the bytes against the file's ETag: the sha256 of an LFS file, or the git blob sha1 of
/// another (git's `blob {size}\0` header, then the bytes), so that no file is cached as it is
/// unless it is the file the Hub described.
enum Verifier {
    Sha256(Sha256),
    GitSha1(sha1_smol::Sha1),
}

impl Verifier {
    fn new(meta: &FileMeta) -> Option<Verifier> {
        if meta.sha256().is_some() {
            return Some(Verifier::Sha256(Sha256::new()));
        }
        meta.git_sha1().map(|_| {
            let mut h = sha1_smol::Sha1::new();
            h.update(format!("blob {}\0", meta.size).as_bytes());
            Verifier::GitSha1(h)
        })
    }

    fn update(&mut self, bytes: &[u8]) {
        match self {
            Verifier::Sha256(h) => h.update(bytes),
            Verifier::GitSha1(h) => h.update(bytes),
        }
    }

    /// (what was checked, the hex digest).
    fn finish(self) -> (&'static str, String) {
        match self {
            Verifier::Sha256(h) => ("sha256", hex(&h.finalize())),
            Verifier::GitSha1(h) => ("git blob sha1", h.digest().to_string()),
        }
    }
}

enum Broke {
    /// The request failed for good (its own retries are spent) or a sink failed.
    Fatal(Error),
    /// The connection broke mid-body: retry from the current byte.
    Broken(String),
    /// The remembered CDN URL was refused (signed URLs expire): ask the resolve URL again.
    Refused(u16),
}

/// A response body left open between pieces: it continues the file at byte `at` (its `carry`
/// first: bytes it gave beyond the last piece) and brings bytes up to `end`.
struct OpenBody<B> {
    body: B,
    at: u64,
    end: u64,
    carry: Vec<u8>,
    /// A 206 (its empty rest is read at its end, so that the connection can be reused).
    ranged: bool,
}

pub(crate) struct Fetch<'a, T: Transport, P: PartialFile> {
    transport: &'a T,
    options: &'a HubOptions,
    at: Target<'a>,
    tracker: &'a Tracker,
    meta: FileMeta,
    /// `{endpoint}/{repo}/resolve/{commit}/{file}`, asked again when the CDN URL stops working.
    resolve_url: String,
    /// Where GETs go: the CDN URL once known, so each range costs one round trip.
    url: String,
    partial: P,
    held: Vec<Range<u64>>,
    pos: u64,
    hasher: Option<Verifier>,
    /// The store had part of the file from an earlier, interrupted download.
    resumed: bool,
    downloading: bool,
    open: Option<OpenBody<T::Body>>,
}

impl<'a, T: Transport, P: PartialFile> Fetch<'a, T, P> {
    pub(crate) fn new(
        transport: &'a T,
        options: &'a HubOptions,
        at: Target<'a>,
        tracker: &'a Tracker,
        meta: FileMeta,
        resolve_url: String,
        partial: P,
    ) -> Self {
        let held = partial.held();
        let held_bytes: u64 = held.iter().map(|r| r.end - r.start).sum();
        let complete = held_bytes >= meta.size && meta.size > 0;
        // A complete stored file was verified when it was stored; anything else is checked now.
        let hasher = if complete { None } else { Verifier::new(&meta) };
        Fetch {
            transport,
            options,
            at,
            tracker,
            url: meta.location.clone(),
            meta,
            resolve_url,
            partial,
            held,
            pos: 0,
            hasher,
            resumed: held_bytes > 0 && !complete,
            downloading: false,
            open: None,
        }
    }

    pub(crate) fn size(&self) -> u64 {
        self.meta.size
    }

    pub(crate) fn pos(&self) -> u64 {
        self.pos
    }

    pub(crate) fn resumed(&self) -> bool {
        self.resumed
    }

    /// Hands on bytes `pos..end`; a request it makes asks for everything up to the next stored
    /// byte (the file's end when none is stored), and its body stays open for the next call.
    pub(crate) async fn advance(&mut self, end: u64, sink: &mut Sink<'_>) -> Result<()> {
        self.advance_asking(end, u64::MAX, sink).await
    }

    /// Hands on bytes `pos..end`, asking for no byte past `end`: a weights file's header, read
    /// before anything says whether the rest is wanted (a model too large for the device is
    /// refused after it, having downloaded no more).
    pub(crate) async fn advance_exactly(&mut self, end: u64, sink: &mut Sink<'_>) -> Result<()> {
        self.advance_asking(end, end, sink).await
    }

    async fn advance_asking(&mut self, end: u64, ask_limit: u64, sink: &mut Sink<'_>) -> Result<()> {
        let end = end.min(self.meta.size);
        while self.pos < end {
            let pos = self.pos;
            match self.held.iter().find(|r| r.start <= pos && pos < r.end).map(|r| r.end) {
                Some(held_end) => {
                    let stop = held_end.min(end).min(pos + STORE_READ_BYTES);
                    let bytes = self.partial.read(pos..stop).await?;
                    if bytes.len() as u64 != stop - pos {
                        return Err(self.at.error(HubErrorKind::Cache, format!("the store gave {} bytes for {pos}..{stop}", bytes.len())));
                    }
                    self.take(&bytes, sink, false).await?;
                }
                None => {
                    let next_held = self.held.iter().map(|r| r.start).filter(|&s| s > pos).min().unwrap_or(u64::MAX);
                    self.fetch(end.min(next_held), next_held.min(self.meta.size).min(ask_limit), sink).await?;
                }
            }
        }
        Ok(())
    }

    /// The end of one planned piece: the store may write what it was given.
    pub(crate) async fn flush(&mut self) -> Result<()> {
        self.partial.flush().await
    }

    /// Checks the whole file against its size and sha256, then lets the store show it. Bytes
    /// that do not match are discarded, never kept.
    pub(crate) async fn finish(mut self) -> Result<()> {
        if self.pos != self.meta.size {
            return Err(self.at.error(HubErrorKind::Protocol, format!("stopped at byte {} of {}", self.pos, self.meta.size)));
        }
        self.partial.flush().await?;
        if let Some(hasher) = self.hasher.take() {
            let (what, got) = hasher.finish();
            let expected = self.meta.etag.to_ascii_lowercase();
            if got != expected {
                self.partial.discard().await?;
                return Err(self.at.error(
                    HubErrorKind::Integrity,
                    format!("the downloaded bytes have {what} {got}, not the {expected} of the file's ETag; nothing was cached"),
                ));
            }
        }
        self.partial.finish().await
    }

    async fn take(&mut self, bytes: &[u8], sink: &mut Sink<'_>, fetched: bool) -> Result<()> {
        if let Some(h) = &mut self.hasher {
            h.update(bytes);
        }
        if fetched {
            self.partial.write(self.pos, bytes).await?;
        }
        sink(self.pos, bytes)?;
        self.pos += bytes.len() as u64;
        self.tracker.progress(self.at.file, self.pos, self.meta.size);
        Ok(())
    }

    /// Fetches `pos..end` (none of it held) from the open body, or from a new request for
    /// `pos..reach` (`reach`: the next held byte, or the file's end) whose body stays open for the
    /// next piece; resumes at the current byte when the connection breaks, as often as the retry
    /// policy allows without progress.
    async fn fetch(&mut self, end: u64, reach: u64, sink: &mut Sink<'_>) -> Result<()> {
        if !self.downloading {
            self.downloading = true;
            self.tracker.download(self.at.file, self.meta.size);
        }
        let policy = self.options.retry.clone();
        let mut failures = 0;
        let mut asked_again = false;
        while self.pos < end {
            let before = self.pos;
            let result = self.fetch_once(end, reach, sink).await;
            if result.is_err() {
                // Never read on from a body that failed: a retry asks again from `pos`.
                self.open = None;
            }
            match result {
                Ok(()) => {}
                Err(Broke::Fatal(e)) => return Err(e),
                Err(Broke::Refused(status)) => {
                    if asked_again || self.url == self.resolve_url {
                        return Err(self.at.error(HubErrorKind::Forbidden, format!("status {status} from {}", client::host(&self.url))));
                    }
                    asked_again = true;
                    self.url = self.resolve_url.clone();
                }
                Err(Broke::Broken(_)) if self.transport.cancelled() => {
                    return Err(self.at.error(HubErrorKind::Cancelled, "the load was aborted"));
                }
                Err(Broke::Broken(why)) => {
                    if self.pos >= before + MIN_PROGRESS.min(end - before) {
                        failures = 0;
                    }
                    failures += 1;
                    if failures >= policy.attempts.max(1) {
                        return Err(self.at.error(
                            HubErrorKind::Network,
                            format!(
                                "the connection broke at byte {} of {} ({why}), still after {failures} tries",
                                self.pos, self.meta.size
                            ),
                        ));
                    }
                    log::warn!(
                        "{}: {}: {}; resuming at byte {}",
                        self.at.repo,
                        self.at.file,
                        client::redact(&why, self.at.token),
                        self.pos
                    );
                    self.transport.sleep(policy.backoff(failures)).await;
                }
            }
        }
        Ok(())
    }

    async fn fetch_once(&mut self, end: u64, reach: u64, sink: &mut Sink<'_>) -> Result<(), Broke> {
        if self.open.as_ref().is_some_and(|o| o.at != self.pos) {
            // Bytes were read from the store meanwhile: this body is behind or ahead.
            self.open = None;
        }
        if self.open.is_none() {
            self.open = Some(self.request(reach.max(end)).await?);
        }
        let Some(mut open) = self.open.take() else { return Ok(()) };
        if !open.carry.is_empty() {
            let carry = std::mem::take(&mut open.carry);
            let n = (end - self.pos).min(carry.len() as u64) as usize;
            self.take(&carry[..n], sink, true).await.map_err(Broke::Fatal)?;
            open.carry = carry[n..].to_vec();
        }
        // The carry is empty whenever a chunk is read: the body's next byte is then `pos`.
        while self.pos < end {
            let chunk = match open.body.chunk().await {
                Ok(Some(c)) => c,
                Ok(None) => return Err(Broke::Broken(format!("the body ended at byte {}", self.pos))),
                Err(e) => return Err(Broke::Broken(e.to_string())),
            };
            let chunk = &chunk[..(open.end - self.pos).min(chunk.len() as u64) as usize];
            let n = (end - self.pos).min(chunk.len() as u64) as usize;
            // The rest of this chunk is the next piece's first bytes.
            open.carry.extend_from_slice(&chunk[n..]);
            self.take(&chunk[..n], sink, true).await.map_err(Broke::Fatal)?;
        }
        open.at = self.pos;
        if self.pos < open.end {
            self.open = Some(open);
        } else if open.ranged {
            // Reading the (empty) rest lets the transport reuse the connection.
            let _ = open.body.chunk().await;
        }
        Ok(())
    }

    /// Sends a GET for `pos..end`, checks its answer and skips to `pos` in it.
    async fn request(&mut self, end: u64) -> Result<OpenBody<T::Body>, Broke> {
        let start = self.pos;
        let sent = client::send(self.transport, self.options, Method::Get, &self.url, Some(start..end), false, self.at)
            .await
            .map_err(Broke::Fatal)?;
        let response = sent.response;
        // Whole-file answers to a range request are read from their start and skipped.
        let mut skip = 0;
        match response.status {
            206 => {
                let (first, last, total) = parse_content_range(response.header("content-range"));
                // The span and the Content-Length must agree too: a body that claims more or fewer
                // bytes than the range it says it is cannot be placed in the file.
                let length = response.header("content-length").and_then(|v| v.trim().parse::<u64>().ok());
                let span = first.zip(last).filter(|(a, b)| a <= b).map(|(a, b)| b - a + 1);
                let disagrees = length.is_some_and(|n| span.is_some_and(|s| s != n));
                if first != Some(start)
                    || total.is_some_and(|t| t != self.meta.size)
                    || last.is_some_and(|l| l >= self.meta.size)
                    || disagrees
                {
                    let msg = format!(
                        "asked for bytes {start}.. of {}, got Content-Range `{}` with Content-Length {}",
                        self.meta.size,
                        response.header("content-range").unwrap_or(""),
                        response.header("content-length").unwrap_or("(none)")
                    );
                    return Err(Broke::Fatal(self.at.error(HubErrorKind::Protocol, msg)));
                }
            }
            200 => skip = start,
            403 | 404 | 410 if sent.url != self.resolve_url => return Err(Broke::Refused(response.status)),
            _ => return Err(Broke::Fatal(client::status_error(&response, Method::Get, &sent.url, sent.authorized, sent.tries, self.at))),
        }
        self.url = sent.url;
        let mut open = OpenBody { body: response.body, at: start, end, carry: Vec::new(), ranged: response.status == 206 };
        while skip > 0 {
            let chunk = match open.body.chunk().await {
                Ok(Some(c)) => c,
                Ok(None) => return Err(Broke::Broken(format!("the body ended at byte {}", start - skip))),
                Err(e) => return Err(Broke::Broken(e.to_string())),
            };
            let s = skip.min(chunk.len() as u64) as usize;
            skip -= s as u64;
            if skip == 0 {
                let rest = &chunk[s..];
                open.carry.extend_from_slice(&rest[..(end - start).min(rest.len() as u64) as usize]);
            }
        }
        Ok(open)
    }
}

/// `bytes first-last/total` → (first, last, total).
fn parse_content_range(v: Option<&str>) -> (Option<u64>, Option<u64>, Option<u64>) {
    let Some(v) = v.and_then(|v| v.trim().strip_prefix("bytes ")) else { return (None, None, None) };
    let (span, total) = v.split_once('/').unwrap_or((v, "*"));
    let (first, last) = match span.split_once('-') {
        Some((a, b)) => (a.trim().parse().ok(), b.trim().parse().ok()),
        None => (None, None),
    };
    (first, last, total.trim().parse().ok())
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A weights format that can be read by ranges: how long its header is, and where its tensors are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    Safetensors,
    /// Its header (metadata, tensor infos) is read until it parses; tensor offsets are absolute.
    Gguf,
}

enum HeaderLen {
    /// The header is this many bytes.
    Known(u64),
    /// At least this many: read more and ask again.
    AtLeast(u64),
}

/// Where every tensor is, in absolute file offsets.
struct Layout {
    tensors: Vec<(String, TensorInfo)>,
    unsupported: Vec<(String, String)>,
    /// Tensors whose file bytes (their `range`) are rewritten into their `dtype` on arrival:
    /// GGUF's Q5_0 as Q8_0 (see `GgufFile`).
    transcoded: HashSet<String>,
    /// Bytes the file must have.
    size: u64,
    /// Whether it must have exactly that many (safetensors), or may have more (GGUF's padding).
    exact: bool,
}

impl Format {
    /// Tensors whose bytes a loader reads on the host as well (GGUF's Llama 3 rope factors).
    fn keeps_on_host(self, name: &str) -> bool {
        self == Format::Gguf && crate::models::gguf::HOST_TENSORS.contains(&name)
    }

    /// How long the header is, from the first bytes of a file of `size` bytes.
    fn header_len(self, prefix: &[u8], size: u64, origin: &str) -> Result<HeaderLen> {
        Ok(match self {
            Format::Safetensors => match prefix.get(..8) {
                Some(b) => match u64::from_le_bytes(b.try_into().unwrap_or([0; 8])) {
                    len if len > safetensors::MAX_HEADER_BYTES => return Err(safetensors::implausible_header(len, origin)),
                    len => HeaderLen::Known(len + 8),
                },
                None => HeaderLen::AtLeast(8),
            },
            // GGUF does not say how long its header is: it is parsed until a prefix suffices; an
            // error on the whole file is the file's own.
            Format::Gguf => match gguf::parse_header(prefix, origin) {
                Ok(h) => HeaderLen::Known(h.data_start as u64),
                Err(_) if (prefix.len() as u64) < size => HeaderLen::AtLeast((prefix.len() as u64 * 2).max(1 << 16)),
                Err(e) => return Err(e),
            },
        })
    }

    fn layout(self, header: &[u8], origin: &str) -> Result<Layout> {
        match self {
            Format::Gguf => {
                let h = gguf::parse_header(header, origin)?;
                let mut tensors = Vec::new();
                let mut unsupported = Vec::new();
                let mut transcoded = HashSet::new();
                let mut size = h.data_end;
                for t in h.tensors {
                    match (t.dtype, gguf::q5_0_range(&t)) {
                        (Some(dtype), _) => tensors.push((t.name, TensorInfo { dtype, dims: t.dims, range: t.range })),
                        (None, Some(range)) => {
                            size = size.max(range.end);
                            transcoded.insert(t.name.clone());
                            tensors.push((t.name, TensorInfo { dtype: crate::DType::Q8_0, dims: t.dims, range }));
                        }
                        (None, None) => unsupported.push((t.name, format!("ggml type {}", t.type_id))),
                    }
                }
                tensors.sort_by_key(|(_, info)| (info.range.start, info.range.end));
                Ok(Layout { tensors, unsupported, transcoded, size: size as u64, exact: false })
            }
            Format::Safetensors => {
                let h = safetensors::parse_header(header, origin)?;
                let base = h.data_start;
                let mut tensors: Vec<(String, TensorInfo)> = h
                    .tensors
                    .into_iter()
                    .map(|(name, mut info)| {
                        info.range = info.range.start + base..info.range.end + base;
                        (name, info)
                    })
                    .collect();
                tensors.sort_by_key(|(_, info)| (info.range.start, info.range.end));
                let size = (base + h.data_len) as u64;
                Ok(Layout { tensors, unsupported: h.unsupported.into_iter().collect(), transcoded: HashSet::new(), size, exact: true })
            }
        }
    }
}

/// The first read of a weights file (at most one request's worth): its header, and the start of
/// its tensors.
const FIRST_READ: u64 = 256 << 10;

/// Streams a weights file onto `device`, one tensor at a time, in pieces of about
/// `options.piece_bytes` cut at tensor boundaries, each flushed to the store.
pub(crate) async fn stream_weights<T: Transport, P: PartialFile>(
    fetch: &mut Fetch<'_, T, P>,
    format: Format,
    device: &Device,
    origin: &str,
    piece_bytes: u64,
) -> Result<DeviceWeights> {
    let size = fetch.size();
    let truncated = |need: u64| truncated_header(origin, need, size);
    let mut header = Vec::new();
    let mut want = FIRST_READ.min(piece_bytes).min(size);
    let header_len = loop {
        fetch
            .advance_exactly(want, &mut |_, b| {
                header.extend_from_slice(b);
                Ok(())
            })
            .await?;
        match format.header_len(&header, size, origin)? {
            HeaderLen::Known(n) if n <= header.len() as u64 => break n,
            HeaderLen::Known(n) | HeaderLen::AtLeast(n) if n > size => return Err(truncated(n)),
            HeaderLen::Known(n) | HeaderLen::AtLeast(n) => want = n.max(want.saturating_add(1)).min(size),
        }
    };
    let (mut asm, ends) = assembler(format, &header[..header_len as usize], size, device, origin)?;
    asm.feed(header_len, &header[header_len as usize..])?;
    header.truncate(header_len as usize);
    for end in plan(fetch.pos(), size, &ends, piece_bytes) {
        fetch.advance(end, &mut |at, b| asm.feed(at, b)).await?;
        fetch.flush().await?;
    }
    asm.finish(header)
}

/// The assembler for a file of `size` bytes whose header is `header`, once the header is checked
/// against the size and the weights against the device; and the tensors' end offsets.
fn assembler<'d>(format: Format, header: &[u8], size: u64, device: &'d Device, origin: &str) -> Result<(Assembler<'d>, Vec<u64>)> {
    let layout = format.layout(header, origin)?;
    if layout.size > size || (layout.exact && layout.size != size) {
        return Err(Error::file(origin, format!("truncated or padded: the header describes {} bytes, the file has {size}", layout.size)));
    }
    let weights: u64 = layout.tensors.iter().map(|(_, i)| i.range.len() as u64).sum();
    crate::weights::check_weights_fit(device, weights, &format!("loading {origin}"))?;
    let ends: Vec<u64> = layout.tensors.iter().map(|(_, i)| i.range.end as u64).collect();
    let mut out = DeviceWeights::new(origin, device);
    for (name, dtype) in &layout.unsupported {
        out.insert_unsupported(name, dtype);
    }
    let mut asm = Assembler::new(layout.tensors, format, device, out);
    asm.transcoded = layout.transcoded;
    Ok((asm, ends))
}

fn truncated_header(origin: &str, need: u64, size: u64) -> Error {
    Error::file(origin, format!("truncated: the header needs {need} bytes, the file has {size}"))
}

/// The pieces a file held elsewhere (a page's JS memory) is read in.
const READ_PIECE: u64 = 4 << 20;

/// A safetensors file of `size` bytes that the caller holds elsewhere and reads out piece by piece
/// (`read(offset, buffer)` fills `buffer` from `offset`), made on `device` tensor by tensor as a
/// Hub load streams one: at most one piece of it is in this memory at a time, so a page's weights
/// never need a hole in wasm memory as large as their file.
pub fn read_safetensors(
    size: u64,
    device: &Device,
    origin: &str,
    read: &mut dyn FnMut(u64, &mut [u8]) -> Result<()>,
) -> Result<std::sync::Arc<dyn crate::weights::WeightSource>> {
    read_safetensors_in(size, device, origin, read, READ_PIECE)
}

fn read_safetensors_in(
    size: u64,
    device: &Device,
    origin: &str,
    read: &mut dyn FnMut(u64, &mut [u8]) -> Result<()>,
    piece_bytes: u64,
) -> Result<std::sync::Arc<dyn crate::weights::WeightSource>> {
    let format = Format::Safetensors;
    let mut header = vec![0; size.min(8) as usize];
    read(0, &mut header)?;
    let header_len = match format.header_len(&header, size, origin)? {
        HeaderLen::Known(n) if n <= size => n,
        HeaderLen::Known(n) | HeaderLen::AtLeast(n) => return Err(truncated_header(origin, n, size)),
    };
    header.resize(header_len as usize, 0);
    read(8, &mut header[8..])?;
    let (mut asm, _) = assembler(format, &header, size, device, origin)?;
    let mut piece = Vec::new();
    let mut at = header_len;
    while at < size {
        piece.resize((size - at).min(piece_bytes) as usize, 0);
        read(at, &mut piece)?;
        asm.feed(at, &piece)?;
        at += piece.len() as u64;
    }
    Ok(std::sync::Arc::new(asm.finish(header)?))
}

/// Piece ends covering `from..size`: cut at tensor ends once a piece has `target` bytes, and
/// within a tensor when one piece would pass 4 × `target` (so no piece grows without bound).
pub(crate) fn plan(from: u64, size: u64, tensor_ends: &[u64], target: u64) -> Vec<u64> {
    let target = target.max(1);
    let max = target.saturating_mul(4);
    let mut cuts = Vec::new();
    let mut start = from;
    let mut ends = tensor_ends.iter().copied().filter(|&e| e > from && e < size).peekable();
    while start < size {
        // The first tensor end at or past `start + target`, unless that makes the request too long.
        while ends.peek().is_some_and(|&e| e < start + target) {
            ends.next();
        }
        let cut = match ends.peek() {
            Some(&e) if e - start <= max => e,
            _ => (start + max).min(size),
        };
        let cut = if size - cut < target / 4 { size } else { cut };
        cuts.push(cut);
        start = cut;
    }
    cuts
}

/// Cuts a byte stream into tensors: a tensor whole within one read is uploaded from it, one that
/// spans reads is written onto the device piece by piece as they arrive (`TensorWriter`).
struct Assembler<'d> {
    /// By start offset.
    tensors: Vec<(String, TensorInfo)>,
    next: usize,
    /// The tensor that spans reads, being filled.
    writer: Option<TensorWriter>,
    /// The bytes of a tensor the format wants on the host too (GGUF's `rope_freqs`).
    host: Vec<u8>,
    /// Tensors rewritten on arrival (Q5_0 as Q8_0): gathered whole on the host, then uploaded.
    transcoded: HashSet<String>,
    gathered: Vec<u8>,
    format: Format,
    peak: usize,
    device: &'d Device,
    out: DeviceWeights,
}

/// Weight errors keep their device-fault kinds (so a caller can fall back to another device).
fn weight_error(name: &str, e: Error) -> Error {
    match e {
        e @ (Error::OverLimit { .. } | Error::OutOfMemory { .. } | Error::DeviceLost(_)) => e,
        e => Error::weight(name, e),
    }
}

impl<'d> Assembler<'d> {
    fn new(tensors: Vec<(String, TensorInfo)>, format: Format, device: &'d Device, out: DeviceWeights) -> Self {
        Assembler {
            tensors,
            next: 0,
            writer: None,
            host: Vec::new(),
            transcoded: HashSet::new(),
            gathered: Vec::new(),
            format,
            peak: 0,
            device,
            out,
        }
    }

    fn upload(&mut self, index: usize, bytes: &[u8]) -> Result<()> {
        let (name, info) = &self.tensors[index];
        let tensor = match Tensor::from_bytes(bytes, info.dtype, &info.dims, self.device) {
            Ok(t) => t,
            // The same kind and words as a tensor written piece by piece.
            Err(Error::OverLimit { needed, limit, .. }) => {
                return Err(Error::OverLimit { what: format!("weight `{name}`"), needed, limit });
            }
            Err(Error::OutOfMemory { needed, why, .. }) => {
                return Err(Error::OutOfMemory { what: format!("weight `{name}`"), needed, why });
            }
            Err(e @ Error::DeviceLost(_)) => return Err(e),
            Err(e) => return Err(Error::weight(name, e)),
        };
        self.out.insert(name.clone(), tensor);
        Ok(())
    }

    /// Takes bytes `at..at + data.len()` of the file; calls come in file order.
    fn feed(&mut self, mut at: u64, mut data: &[u8]) -> Result<()> {
        while self.next < self.tensors.len() {
            let (name, info) = &self.tensors[self.next];
            let (start, end) = (info.range.start as u64, info.range.end as u64);
            if at < start {
                // Bytes before this tensor (padding, or a tensor no op uses) pass by.
                let skip = (start - at).min(data.len() as u64);
                data = &data[skip as usize..];
                at += skip;
                if at < start {
                    return Ok(());
                }
            }
            let have = start + self.writer.as_ref().map_or(self.gathered.len() as u64, |w| w.written() as u64);
            if at != have {
                // Overlapping tensors, or bytes out of order: never silently mix them up.
                return Err(Error::weight(name, format!("its bytes arrived at {at}, expected {have}")));
            }
            let take = (end - at).min(data.len() as u64) as usize;
            let piece = &data[..take];
            if self.format.keeps_on_host(name) {
                self.host.extend_from_slice(piece);
            }
            let name = name.clone();
            if self.transcoded.contains(&name) {
                self.gathered.extend_from_slice(piece);
                self.peak = self.peak.max(self.gathered.len());
                if at + take as u64 == end {
                    let bytes = crate::quant::q5_0_to_q8_0(&std::mem::take(&mut self.gathered)).map_err(|e| Error::weight(&name, e))?;
                    self.upload(self.next, &bytes)?;
                }
            } else if self.writer.is_none() && at + take as u64 == end {
                // Whole within this read: uploaded straight from it.
                self.upload(self.next, piece)?;
            } else {
                if self.writer.is_none() {
                    let (_, info) = &self.tensors[self.next];
                    self.writer = Some(TensorWriter::new(&name, info.dtype, &info.dims, self.device).map_err(|e| weight_error(&name, e))?);
                }
                let mut complete = false;
                if let Some(writer) = self.writer.as_mut() {
                    writer.write(piece).map_err(|e| weight_error(&name, e))?;
                    self.peak = self.peak.max(writer.staged_bytes());
                    complete = start + writer.written() as u64 == end;
                }
                if complete && let Some(w) = self.writer.take() {
                    let tensor = w.finish().map_err(|e| weight_error(&name, e))?;
                    self.out.insert(name.clone(), tensor);
                }
            }
            data = &data[take..];
            at += take as u64;
            if at < end {
                return Ok(());
            }
            if self.format.keeps_on_host(&name) {
                self.out.set_host_bytes(&name, std::mem::take(&mut self.host));
            }
            self.next += 1;
        }
        Ok(())
    }

    fn finish(mut self, header: Vec<u8>) -> Result<DeviceWeights> {
        // Empty tensors at the very end have no bytes to arrive.
        while self.tensors.get(self.next).is_some_and(|(_, i)| i.range.is_empty()) {
            self.upload(self.next, &[])?;
            self.next += 1;
        }
        if let Some((name, _)) = self.tensors.get(self.next) {
            return Err(Error::weight(name, "the file ended before this tensor"));
        }
        self.out.set_header(header);
        self.out.set_staging_peak(self.peak);
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_cut_at_tensor_ends_and_cover_everything() {
        let ends = [100, 150, 1000, 1100, 5000, 5050];
        let cuts = plan(40, 5050, &ends, 200);
        assert_eq!(*cuts.last().unwrap(), 5050);
        assert!(cuts.windows(2).all(|w| w[0] < w[1]));
        // 40..1000 would pass 4 × 200 bytes, so it is cut inside that tensor; then tensor ends.
        assert_eq!(cuts, vec![840, 1100, 1900, 2700, 3500, 4300, 5000, 5050]);
        assert_eq!(plan(0, 10, &[5, 10], 1 << 20), vec![10]);
        assert!(plan(10, 10, &[10], 4).is_empty());
    }

    #[test]
    fn content_range() {
        assert_eq!(parse_content_range(Some("bytes 10-19/100")), (Some(10), Some(19), Some(100)));
        assert_eq!(parse_content_range(Some("bytes 10-19/*")), (Some(10), Some(19), None));
        assert_eq!(parse_content_range(None), (None, None, None));
    }

    #[test]
    fn the_assembler_rewrites_q5_0_as_q8_0_from_any_cut() {
        // Two Q5_0 blocks (22 bytes each) after 5 bytes of something else.
        let q5: Vec<u8> = (0..44u8).map(|i| i.wrapping_mul(73).wrapping_add(11)).collect();
        let mut file = vec![7u8; 5];
        file.extend(&q5);
        let want = crate::quant::q5_0_to_q8_0(&q5).unwrap();
        for step in [1, 5, 22, 30, 1000] {
            let info = TensorInfo { dtype: crate::DType::Q8_0, dims: vec![2, 32], range: 5..49 };
            let device = Device::Cpu;
            let mut asm = Assembler::new(vec![("q".to_string(), info)], Format::Gguf, &device, DeviceWeights::new("t", &device));
            asm.transcoded.insert("q".to_string());
            for (i, chunk) in file.chunks(step).enumerate() {
                asm.feed((i * step) as u64, chunk).unwrap();
            }
            let w = asm.finish(Vec::new()).unwrap();
            use crate::weights::WeightSource;
            let t = w.tensor("q", &device).unwrap().unwrap();
            assert_eq!((t.dtype(), t.dims()), (crate::DType::Q8_0, &[2usize, 32][..]), "step {step}");
            let values = crate::quant::dequantize(crate::DType::Q8_0, &want).unwrap();
            let rows = Tensor::from_u32(&[0, 1], &[2], &device).unwrap();
            let got = t.gather_rows(&rows).unwrap().to_vec_f32_blocking().unwrap();
            assert_eq!(got, values, "step {step}");
        }
    }

    #[test]
    fn read_safetensors_gives_the_files_tensors_from_any_piece_size() {
        use crate::weights::WeightSource;
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/tiny-tasks/bert-sequence-classification/model.safetensors");
        let file = std::fs::read(path).unwrap();
        let whole = safetensors::SafetensorsFile::from_bytes(std::sync::Arc::new(file.clone()), "whole").unwrap();
        let device = Device::Cpu;
        for piece in [1, 7, 4096, 1 << 20] {
            let mut reads = 0u64;
            let streamed = read_safetensors_in(
                file.len() as u64,
                &device,
                "streamed",
                &mut |at, out| {
                    reads += 1;
                    out.copy_from_slice(&file[at as usize..at as usize + out.len()]);
                    Ok(())
                },
                piece,
            )
            .unwrap();
            // The length, the header, then the tensors piece by piece: never the file at once.
            let header_len = 8 + u64::from_le_bytes(file[..8].try_into().unwrap());
            assert_eq!(reads, 2 + (file.len() as u64 - header_len).div_ceil(piece), "piece {piece}");
            let mut names = streamed.names();
            names.sort();
            let mut want = whole.names();
            want.sort();
            assert_eq!(names, want);
            for name in names {
                let info = whole.info(name).unwrap();
                let expected =
                    Tensor::from_bytes(&(**whole.bytes()).as_ref()[info.range.clone()], info.dtype, &info.dims, &device).unwrap();
                let got = streamed.tensor(name, &device).unwrap().unwrap();
                assert_eq!(got.dims(), expected.dims(), "{name}");
                assert_eq!(got.to_vec_f32_blocking().unwrap(), expected.to_vec_f32_blocking().unwrap(), "{name}, piece {piece}");
            }
        }
        // A file shorter than its header says, and a reader's own error, are errors naming the file.
        let short = &file[..file.len() - 5];
        let cut = read_safetensors(short.len() as u64, &device, "cut.safetensors", &mut |at, out| {
            out.copy_from_slice(&short[at as usize..at as usize + out.len()]);
            Ok(())
        });
        assert!(
            matches!(&cut, Err(Error::File { .. })) && cut.as_ref().err().unwrap().to_string().contains("cut.safetensors"),
            "{:?}",
            cut.err()
        );
        let failing = read_safetensors(file.len() as u64, &device, "x", &mut |_, _| Err(Error::Input("the page dropped it".into())));
        assert!(failing.err().unwrap().to_string().contains("the page dropped it"));
        // A header length past the limit is refused before that much is read or held.
        let mut asked = 0;
        let claim = read_safetensors(1 << 30, &device, "claim.safetensors", &mut |_, out| {
            asked += out.len();
            out.copy_from_slice(&(1u64 << 29).to_le_bytes()[..out.len()]);
            Ok(())
        });
        assert!(claim.err().unwrap().to_string().contains("implausible") && asked == 8, "read {asked} bytes");
        let tiny = read_safetensors(3, &device, "tiny.safetensors", &mut |_, out| {
            out.fill(0);
            Ok(())
        });
        assert!(tiny.err().unwrap().to_string().contains("tiny.safetensors"));
    }

    #[test]
    fn the_assembler_uploads_whole_tensors_from_any_cut() {
        let f32s = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
        // Two tensors with a gap (a tensor of an unused dtype) between them.
        let a: Vec<f32> = (0..10).map(|i| i as f32).collect();
        let b: Vec<f32> = (0..6).map(|i| -(i as f32)).collect();
        let mut file = vec![0u8; 8];
        file.extend(f32s(&a));
        file.extend([9u8; 12]);
        file.extend(f32s(&b));
        let info = |start: usize, n: usize, dims: Vec<usize>| TensorInfo { dtype: crate::DType::F32, dims, range: start..start + 4 * n };
        for step in [1, 3, 7, 40, 1000] {
            let tensors = vec![("a".to_string(), info(8, 10, vec![2, 5])), ("b".to_string(), info(60, 6, vec![6]))];
            let device = Device::Cpu;
            let mut asm = Assembler::new(tensors, Format::Safetensors, &device, DeviceWeights::new("t", &device));
            for (i, chunk) in file.chunks(step).enumerate() {
                asm.feed((i * step) as u64, chunk).unwrap();
            }
            let w = asm.finish(Vec::new()).unwrap();
            use crate::weights::WeightSource;
            let get = |n: &str| w.tensor(n, &device).unwrap().unwrap().to_vec_f32_blocking().unwrap();
            assert_eq!(get("a"), a, "step {step}");
            assert_eq!(get("b"), b, "step {step}");
        }
    }
}
