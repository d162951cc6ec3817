//! The images of a call's first argument: `{"$media": i}` items (pixels, or a file the engine
//! decodes), and natively file paths, `http(s)://` URLs and `data:` URLs.

use serde_json::Value;

use super::{RawImage, decode};
use crate::tasks::{Input, Media, json_kind};
use crate::{Error, Result};

/// The largest image file read from a path or a URL.
pub const MAX_FILE_BYTES: u64 = 256 << 20;

impl Input<'_> {
    /// The call's images: one image or an array of them (`true` when it was an array). Each item
    /// is a `{"$media": i}` placeholder or a string (natively a path, an `http(s)://` URL or a
    /// `data:` URL; in wasm the JS package resolves strings before the call).
    pub fn images(&self, task: &str) -> Result<(Vec<RawImage>, bool)> {
        match self.value {
            Value::Array(items) => {
                if items.is_empty() {
                    return Err(Error::Input(format!("{task} takes an image or an array of images, not an empty array")));
                }
                let images = items.iter().map(|v| self.image(v, task)).collect::<Result<Vec<_>>>()?;
                Ok((images, true))
            }
            v => Ok((vec![self.image(v, task)?], false)),
        }
    }

    fn image(&self, v: &Value, task: &str) -> Result<RawImage> {
        if let Some(media) = self.media_at(v) {
            return match media? {
                Media::Image(image) => Ok(image.clone()),
                Media::Encoded(bytes) => decode(bytes),
                Media::Audio(_) => Err(Error::Input(format!("{task} takes an image, not audio"))),
            };
        }
        match v {
            Value::String(s) => image_from_string(s),
            other => Err(Error::Input(format!(
                "{task} takes an image (a file path, a URL or an image object) or an array of them, not {}",
                json_kind(other)
            ))),
        }
    }
}

fn image_from_string(s: &str) -> Result<RawImage> {
    if let Some(rest) = s.strip_prefix("data:") {
        return decode(&data_url(rest)?);
    }
    read_source(s, "image", MAX_FILE_BYTES).and_then(|bytes| decode(&bytes).map_err(|e| Error::Input(format!("{}: {e}", short(s)))))
}

/// A long string (a URL) cut for an error message.
pub(crate) fn short(s: &str) -> String {
    if s.chars().count() > 120 { format!("{}...", s.chars().take(120).collect::<String>()) } else { s.to_string() }
}

/// The bytes of the file a string names natively: an `http(s)://` URL or a path; `what` ("image",
/// "audio") names it in errors, and files over `max_bytes` are refused.
#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn read_source(s: &str, what: &str, max_bytes: u64) -> Result<Vec<u8>> {
    use std::io::Read;
    let lower = s.to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        let response = ureq::get(s).timeout(std::time::Duration::from_secs(60)).call().map_err(|e| match e {
            ureq::Error::Status(code, _) => Error::Input(format!("{}: the server answered HTTP {code}", short(s))),
            ureq::Error::Transport(t) => Error::Input(format!("{}: cannot fetch the {what}: {t}", short(s))),
        })?;
        let mut bytes = Vec::new();
        response
            .into_reader()
            .take(max_bytes + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| Error::Input(format!("{}: the download broke off: {e}", short(s))))?;
        if bytes.len() as u64 > max_bytes {
            return Err(Error::Input(format!("{}: the file is larger than {max_bytes} bytes", short(s))));
        }
        return Ok(bytes);
    }
    let meta = std::fs::metadata(s).map_err(|e| Error::Input(format!("cannot read the {what} file {}: {e}", short(s))))?;
    if meta.len() > max_bytes {
        return Err(Error::Input(format!("the {what} file {} is larger than {max_bytes} bytes", short(s))));
    }
    std::fs::read(s).map_err(|e| Error::Input(format!("cannot read the {what} file {}: {e}", short(s))))
}

#[cfg(target_arch = "wasm32")]
pub(crate) fn read_source(s: &str, what: &str, _max_bytes: u64) -> Result<Vec<u8>> {
    Err(Error::Input(format!(
        "an {what} given as a string ({}) is resolved by the JS package, not the engine: pass the {what} itself",
        short(s)
    )))
}

/// The bytes of a `data:[<type>][;base64],<data>` URL (what follows `data:`).
pub(crate) fn data_url(rest: &str) -> Result<Vec<u8>> {
    let (head, body) = rest.split_once(',').ok_or_else(|| Error::Input("a data: URL without a comma".into()))?;
    if head.ends_with(";base64") { base64(body.trim()) } else { percent_decode(body) }
}

fn base64(s: &str) -> Result<Vec<u8>> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        } as u32)
    };
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for &c in s.as_bytes().iter().filter(|c| !c.is_ascii_whitespace()) {
        if c == b'=' {
            break;
        }
        let v = value(c).ok_or_else(|| Error::Input(format!("a data: URL's base64 has the character {:?}", c as char)))?;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Ok(out)
}

fn percent_decode(s: &str) -> Result<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok());
            out.push(hex.ok_or_else(|| Error::Input("a data: URL has a bad %-escape".into()))?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_decodes() {
        assert_eq!(base64("aGVsbG8gd29ybGQ=").unwrap(), b"hello world");
        assert_eq!(base64("YQ==").unwrap(), b"a");
        assert!(base64("a*b").is_err());
        assert_eq!(percent_decode("a%20b").unwrap(), b"a b");
    }
}
