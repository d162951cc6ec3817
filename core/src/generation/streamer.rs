//! Streamers: `TextStreamer` decodes the new ids with the tokenizer and hands each final piece
//! of text to a callback (whole characters only, stop strings held back and cut).

use super::Streamer;
use crate::Result;
use crate::tokenizer::Tokenizer;

/// Decodes the generated ids (special tokens skipped) after every token and passes on what is
/// final. `text()` is everything decoded (for stop strings); `emitted()` what was passed on.
pub struct TextStreamer<'a> {
    tokenizer: &'a Tokenizer,
    on_text: &'a mut dyn FnMut(&str),
    ids: Vec<u32>,
    decoded: String,
    stream: TextStream,
}

impl<'a> TextStreamer<'a> {
    /// `stop`: the stop strings (their prefixes are held back, and the text ends before them).
    pub fn new(tokenizer: &'a Tokenizer, stop: &[String], on_text: &'a mut dyn FnMut(&str)) -> TextStreamer<'a> {
        TextStreamer { tokenizer, on_text, ids: Vec::new(), decoded: String::new(), stream: TextStream::new(stop) }
    }

    /// The text passed on so far (after `end`: the whole new text, cut before a stop string).
    pub fn emitted(&self) -> &str {
        &self.stream.text
    }
}

impl Streamer for TextStreamer<'_> {
    fn put(&mut self, ids: &[u32]) -> Result<()> {
        self.ids.extend_from_slice(ids);
        self.decoded = self.tokenizer.decode(&self.ids, true)?;
        let (piece, _) = self.stream.push(&self.decoded);
        if !piece.is_empty() {
            (self.on_text)(piece);
        }
        Ok(())
    }

    fn end(&mut self) -> Result<()> {
        let rest = self.stream.finish(&self.decoded);
        if !rest.is_empty() {
            (self.on_text)(&rest);
        }
        Ok(())
    }

    fn text(&self) -> Option<&str> {
        Some(&self.decoded)
    }

    fn restart(&mut self) {
        self.ids.clear();
        self.decoded.clear();
        self.stream.text.clear();
    }
}

/// Turns the growing decoded text into final pieces: holds back an incomplete UTF-8 character
/// (shown as U+FFFD by byte-level decoders) and any tail that may begin a stop string.
pub struct TextStream {
    stop: Vec<String>,
    /// What has been emitted.
    pub text: String,
}

impl TextStream {
    pub fn new(stop: &[String]) -> TextStream {
        TextStream { stop: stop.iter().filter(|s| !s.is_empty()).cloned().collect(), text: String::new() }
    }

    /// The new final piece of `decoded` and whether a stop string was reached.
    pub fn push(&mut self, decoded: &str) -> (&str, bool) {
        let before = self.text.len();
        if let Some(at) = self.stop.iter().filter_map(|s| decoded.find(s.as_str())).min() {
            self.extend_to(decoded, at);
            return (&self.text[before.min(self.text.len())..], true);
        }
        let mut end = decoded.len();
        if decoded.ends_with('\u{FFFD}') {
            end -= '\u{FFFD}'.len_utf8();
        }
        // Keep back the longest tail that is a prefix of a stop string.
        for s in &self.stop {
            for n in (1..s.len()).rev() {
                if s.is_char_boundary(n) && decoded[..end].ends_with(&s[..n]) {
                    end = end.min(end - n);
                    break;
                }
            }
        }
        self.extend_to(decoded, end);
        (&self.text[before.min(self.text.len())..], false)
    }

    fn extend_to(&mut self, decoded: &str, end: usize) {
        // Decoders may rewrite earlier text slightly (cleanup of spaces); only append.
        if end > self.text.len()
            && decoded.is_char_boundary(self.text.len())
            && decoded.is_char_boundary(end)
            && decoded.starts_with(self.text.as_str())
        {
            self.text.push_str(&decoded[self.text.len()..end]);
        }
    }

    /// Whatever is left once generation ends (minus a stop string).
    pub fn finish(&mut self, decoded: &str) -> String {
        let before = self.text.len();
        let end = self.stop.iter().filter_map(|s| decoded.find(s.as_str())).min().unwrap_or(decoded.len());
        self.extend_to(decoded, end);
        self.text[before.min(self.text.len())..].to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::TextStream;

    #[test]
    fn stream_holds_back_partial_characters_and_stop_prefixes() {
        let mut s = TextStream::new(&["STOP".to_string()]);
        assert_eq!(s.push("Hel").0, "Hel");
        assert_eq!(s.push("Hello \u{FFFD}").0, "lo ");
        assert_eq!(s.push("Hello é S").0, "é ");
        assert_eq!(s.push("Hello é ST").0, "");
        let (piece, stop) = s.push("Hello é STOP and more");
        assert_eq!((piece, stop), ("", true));
        assert_eq!(s.text, "Hello é ");
    }
}
