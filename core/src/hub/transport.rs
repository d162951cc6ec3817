//! What the Hub protocol needs from HTTP, and nothing more: send one request, read its body in
//! pieces, wait. Natively a blocking client runs inside these async fns (the caller blocks on the
//! whole load anyway); in the browser `fetch` and `setTimeout` implement them.

use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Head,
    Get,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Head => "HEAD",
            Method::Get => "GET",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Request {
    pub method: Method,
    pub url: String,
    /// Extra headers (Range, Authorization); the transport adds its own (User-Agent).
    pub headers: Vec<(String, String)>,
}

pub struct Response<B> {
    pub status: u16,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: B,
    /// Where a transport that follows redirects itself (fetch) ended up, when it followed any:
    /// the answer (status, headers) is that URL's, and the redirect's own headers were never seen.
    pub redirected_to: Option<String>,
}

impl<B> Response<B> {
    /// A header's value, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// The connection failed, or broke before the whole response arrived. Always worth a retry.
#[derive(Clone, Debug)]
pub struct TransportError(pub String);

impl std::fmt::Display for TransportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A response body, read in pieces so that no file is ever held whole.
// The futures are used where they are made (no spawning), so no Send bound is wanted: browser
// futures are not Send.
#[allow(async_fn_in_trait)]
pub trait Body {
    /// The next bytes of the body (a piece of any length, valid until the next call), or None at
    /// its end. A body that ends before its Content-Length is an error.
    async fn chunk(&mut self) -> Result<Option<&[u8]>, TransportError>;
}

#[allow(async_fn_in_trait)]
pub trait Transport {
    type Body: Body;

    /// Sends one request. A transport that can, returns redirects (3xx with Location) as they are,
    /// for the client to follow: it needs the headers of the Hub's redirect (X-Linked-Etag) and
    /// decides where Authorization may go. One that cannot see them (fetch) follows them itself,
    /// says where it ended (`Response::redirected_to`), and must then drop Authorization when a
    /// redirect leaves the origin (browsers do, as the Fetch standard requires).
    async fn send(&self, request: &Request) -> Result<Response<Self::Body>, TransportError>;

    /// Waits before a retry.
    async fn sleep(&self, duration: Duration);

    /// Whether the caller gave up on the load (an AbortSignal): the client then stops instead of
    /// retrying the failure the abort caused.
    fn cancelled(&self) -> bool {
        false
    }
}
