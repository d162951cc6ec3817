//! Requests as the Hub protocol makes them: Authorization only to the endpoint's own origin,
//! redirects followed by hand (so the token never reaches the CDN and the Hub's own redirect can be
//! read for metadata), 429 and 5xx and broken connections retried with exponential backoff that
//! honours Retry-After, and every failure turned into an error naming the repository and file.

use std::ops::Range;
use std::time::Duration;

use super::HubOptions;
use super::transport::{Method, Request, Response, Transport};
use crate::{Error, HubErrorKind, Result};

/// How often and how patiently to retry 429, 5xx and broken connections.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Tries in all, the first included.
    pub attempts: u32,
    /// The wait before the first retry; it doubles each time, up to `max_delay`.
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// The longest Retry-After honoured as asked.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 5,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(8),
            max_retry_after: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    pub(crate) fn backoff(&self, failures: u32) -> Duration {
        let factor = 1u32 << failures.saturating_sub(1).min(16);
        self.base_delay.saturating_mul(factor).min(self.max_delay)
    }
}

/// Which file of which repository a request is for, for errors.
#[derive(Clone, Copy)]
pub(crate) struct Target<'a> {
    pub repo: &'a str,
    pub file: &'a str,
    /// The access token, kept out of every error: a hostile server may echo it back (in
    /// X-Error-Message, a Location, a transport's message).
    pub token: Option<&'a str>,
}

impl Target<'_> {
    pub(crate) fn error(&self, kind: HubErrorKind, msg: impl std::fmt::Display) -> Error {
        let msg = redact(&msg.to_string(), self.token);
        Error::Hub { repo: self.repo.to_string(), file: self.file.to_string(), kind, msg }
    }

    /// Whether a value from the server carries the token (then it must not name anything).
    pub(crate) fn carries_token(&self, value: &str) -> bool {
        self.token.is_some_and(|t| !t.is_empty() && value.contains(t))
    }
}

/// `text` with every occurrence of the token replaced.
pub(crate) fn redact(text: &str, token: Option<&str>) -> String {
    match token {
        Some(t) if !t.is_empty() && text.contains(t) => text.replace(t, "<token>"),
        _ => text.to_string(),
    }
}

const MAX_REDIRECTS: usize = 10;

/// `scheme://host[:port]` of a URL.
pub(crate) fn origin(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    match url[after_scheme..].find(['/', '?', '#']) {
        Some(i) => &url[..after_scheme + i],
        None => url,
    }
}

pub(crate) fn host(url: &str) -> &str {
    let o = origin(url);
    o.find("://").map_or(o, |i| &o[i + 3..])
}

/// A Location header made absolute against the URL that sent it.
pub(crate) fn join(base: &str, location: &str) -> String {
    if location.contains("://") {
        location.to_string()
    } else if let Some(rest) = location.strip_prefix("//") {
        let scheme = base.find("://").map_or("https", |i| &base[..i]);
        format!("{scheme}://{rest}")
    } else if location.starts_with('/') {
        format!("{}{location}", origin(base))
    } else {
        let path_end = base.find(['?', '#']).unwrap_or(base.len());
        let dir_end = base[..path_end].rfind('/').map_or(path_end, |i| i + 1).max(origin(base).len());
        let dir = &base[..dir_end];
        if dir.ends_with('/') { format!("{dir}{location}") } else { format!("{dir}/{location}") }
    }
}

/// Percent-encodes one URL path segment (a revision such as `refs/pr/1` is one segment).
pub(crate) fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A file path in a URL: each segment encoded, the slashes kept.
pub(crate) fn encode_path(path: &str) -> String {
    path.split('/').map(encode_segment).collect::<Vec<_>>().join("/")
}

fn retryable(status: u16) -> bool {
    matches!(status, 429 | 500 | 502 | 503 | 504)
}

/// Retry-After in seconds (the HTTP-date form falls back to the backoff).
fn retry_after<B>(response: &Response<B>) -> Option<Duration> {
    let v = response.header("retry-after")?.trim();
    v.parse::<f64>().ok().and_then(|s| Duration::try_from_secs_f64(s).ok())
}

/// The error for a final non-success status.
pub(crate) fn status_error<B>(response: &Response<B>, method: Method, url: &str, authorized: bool, tries: u32, at: Target) -> Error {
    let status = response.status;
    let code = response.header("x-error-code").unwrap_or("");
    let server_says = response.header("x-error-message").map(|m| format!(" (the server says: {m})")).unwrap_or_default();
    let where_ = format!("{} {}", method.as_str(), host(url));
    let after = if tries > 1 { format!(", still after {tries} tries") } else { String::new() };
    use HubErrorKind as K;
    let (kind, msg) = match status {
        401 if authorized => {
            (K::Unauthorized, format!("401 Unauthorized from {where_}: the token (HF_TOKEN) was not accepted{server_says}"))
        }
        401 => (
            K::Unauthorized,
            format!(
                "401 Unauthorized from {where_}: the repository does not exist, or it is private or gated and needs a token (set HF_TOKEN){server_says}"
            ),
        ),
        403 if code == "GatedRepo" => (
            K::Forbidden,
            format!(
                "403 Forbidden from {where_}: the repository is gated; accept its conditions on the Hub with the token's account{server_says}"
            ),
        ),
        403 => (K::Forbidden, format!("403 Forbidden from {where_}: the token has no access to this file{server_says}")),
        404 if code == "RepoNotFound" => (K::NotFound, format!("404 from {where_}: the repository does not exist{server_says}")),
        404 if code == "RevisionNotFound" => (K::NotFound, format!("404 from {where_}: the revision does not exist{server_says}")),
        404 => (K::NotFound, format!("404 from {where_}: the file does not exist{server_says}")),
        429 => (K::RateLimited, format!("429 Too Many Requests from {where_}{after}{server_says}")),
        500..=599 => (K::Server, format!("server error {status} from {where_}{after}{server_says}")),
        _ => (K::Protocol, format!("unexpected status {status} from {where_}{server_says}")),
    };
    at.error(kind, msg)
}

/// Sends one request, retrying broken connections, 429 and 5xx. Any other status comes back.
async fn send_retrying<T: Transport>(
    transport: &T,
    options: &HubOptions,
    request: &Request,
    at: Target<'_>,
) -> Result<(Response<T::Body>, u32)> {
    let policy = &options.retry;
    let mut tries = 0;
    let cancelled = || at.error(HubErrorKind::Cancelled, "the load was aborted");
    loop {
        tries += 1;
        let last = tries >= policy.attempts.max(1);
        if transport.cancelled() {
            return Err(cancelled());
        }
        match transport.send(request).await {
            Err(_) if transport.cancelled() => return Err(cancelled()),
            Err(e) if last => {
                let msg = format!(
                    "{} {}: {e}{}",
                    request.method.as_str(),
                    host(&request.url),
                    if tries > 1 { format!(", still after {tries} tries") } else { String::new() }
                );
                return Err(at.error(HubErrorKind::Network, msg));
            }
            Err(e) => {
                log::warn!("{}: {}: {}; retrying", at.repo, at.file, redact(&e.0, at.token));
                transport.sleep(policy.backoff(tries)).await;
            }
            Ok(response) if retryable(response.status) && !last => {
                let wait = retry_after(&response).map(|d| d.min(policy.max_retry_after)).unwrap_or_else(|| policy.backoff(tries));
                log::warn!("{}: {}: status {}; retrying in {:.1} s", at.repo, at.file, response.status, wait.as_secs_f64());
                drop(response);
                transport.sleep(wait).await;
            }
            Ok(response) => return Ok((response, tries)),
        }
    }
}

/// What `send` ends with: the response, the URL that gave it (where the transport's own
/// redirects ended, for fetch), whether Authorization went there, and how many tries the last
/// hop took.
pub(crate) struct Sent<B> {
    pub response: Response<B>,
    pub url: String,
    pub authorized: bool,
    pub tries: u32,
}

/// Sends `method url`, following redirects. Authorization goes only to the endpoint's origin.
/// With `stop_off_origin`, a redirect that leaves that origin (the Hub sending a large file to its
/// CDN) is returned as it is: it carries the file's metadata.
pub(crate) async fn send<T: Transport>(
    transport: &T,
    options: &HubOptions,
    method: Method,
    url: &str,
    range: Option<Range<u64>>,
    stop_off_origin: bool,
    at: Target<'_>,
) -> Result<Sent<T::Body>> {
    let home = origin(&options.endpoint).to_string();
    let mut url = url.to_string();
    // Every URL of this chain: a server that sends the client back where it was is looping, and
    // is told so at once rather than after the hop limit.
    let mut visited: Vec<String> = Vec::new();
    for _ in 0..=MAX_REDIRECTS {
        let mut headers = Vec::new();
        if let Some(r) = &range {
            headers.push(("Range".to_string(), format!("bytes={}-{}", r.start, r.end.saturating_sub(1))));
        }
        let authorized = options.token.is_some() && origin(&url) == home;
        if let (true, Some(token)) = (authorized, &options.token) {
            headers.push(("Authorization".to_string(), format!("Bearer {token}")));
        }
        let request = Request { method, url: url.clone(), headers };
        let (response, tries) = send_retrying(transport, options, &request, at).await?;
        let location = response.header("location").filter(|_| (300..400).contains(&response.status)).map(|l| join(&url, l));
        match location {
            Some(next) if !(stop_off_origin && origin(&next) != home) => {
                if next == url || visited.contains(&next) {
                    let msg = format!("a redirect loop: {} sends the request back to a URL it already redirected", host(&url));
                    return Err(at.error(HubErrorKind::Protocol, msg));
                }
                visited.push(std::mem::replace(&mut url, next));
            }
            _ => {
                // A transport that followed redirects itself reports where it ended; Authorization
                // did not go past the endpoint's origin (fetch drops it there).
                let url = response.redirected_to.clone().unwrap_or(url);
                let authorized = authorized && origin(&url) == home;
                return Ok(Sent { response, url, authorized, tries });
            }
        }
    }
    Err(at.error(HubErrorKind::Protocol, format!("more than {MAX_REDIRECTS} redirects (the limit), the last from {}", host(&url))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(origin("https://huggingface.co/a/b?x=1"), "https://huggingface.co");
        assert_eq!(origin("http://127.0.0.1:8080"), "http://127.0.0.1:8080");
        assert_eq!(host("http://127.0.0.1:8080/x"), "127.0.0.1:8080");
        assert_eq!(join("http://a:1/x/y", "http://b:2/z"), "http://b:2/z");
        assert_eq!(join("https://a/x/y", "//cdn/z"), "https://cdn/z");
        assert_eq!(join("http://a:1/x/y?q", "/z"), "http://a:1/z");
        assert_eq!(join("http://a:1/x/y", "z"), "http://a:1/x/z");
        assert_eq!(encode_segment("refs/pr/1"), "refs%2Fpr%2F1");
        assert_eq!(encode_path("1_Pooling/config.json"), "1_Pooling/config.json");
        assert_eq!(encode_path("a b/c+d"), "a%20b/c%2Bd");
    }

    #[test]
    fn retry_after_is_read_in_seconds_and_never_panics() {
        let response = |v: &str| Response { status: 503, headers: vec![("retry-after".into(), v.into())], body: (), redirected_to: None };
        assert_eq!(retry_after(&response("2")), Some(Duration::from_secs(2)));
        assert_eq!(retry_after(&response("0.5")), Some(Duration::from_millis(500)));
        for bad in ["1e300", "-1", "NaN", "Wed, 21 Oct 2015 07:28:00 GMT"] {
            assert_eq!(retry_after(&response(bad)), None, "{bad}");
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let p = RetryPolicy { base_delay: Duration::from_millis(100), max_delay: Duration::from_millis(350), ..Default::default() };
        let waits: Vec<u128> = (1..=4).map(|i| p.backoff(i).as_millis()).collect();
        assert_eq!(waits, [100, 200, 350, 350]);
    }
}
