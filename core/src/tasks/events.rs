//! What a task reports while it runs (`Pipeline::run`'s event sink): streamed text, the token ids
//! of every generation step, speech segments opening and closing, progress through the input, and
//! warnings about the input (a text cut to the model's length).
//! Front ends map them onto their own callbacks (the CLI prints text and a progress bar; the wasm
//! binding passes plain objects to one JS function, which the npm package turns into
//! transformers.js's `TextStreamer` / `WhisperTextStreamer` calls).

/// What a task reports while it runs, in order.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Event<'a> {
    /// A final piece of generated text (text-generation, ASR, seq2seq): the pieces of one call,
    /// concatenated, are the text of its result.
    Text(&'a str),
    /// Token ids just generated, special and timestamp tokens included (JS: token_callback_function).
    Tokens(&'a [u32]),
    /// ASR with timestamps: a segment starts / ends, seconds from the start of the audio
    /// (JS: WhisperTextStreamer's on_chunk_start / on_chunk_end).
    ChunkStart(f64),
    ChunkEnd(f64),
    /// Progress through the input: `done` of `total` `unit`s (ASR: "s" of audio), after each
    /// window/chunk.
    Progress {
        done: f64,
        total: f64,
        unit: &'static str,
    },
    /// Something the caller should know that does not fail the call (seq2seq: the text was
    /// truncated to the encoder's length). JS: `{type: 'warning', message}`; the CLI prints
    /// `warning: ...` on stderr.
    Warning(&'a str),
}

impl Event<'_> {
    /// The event as the plain object JS receives (`{type: 'text', text}`, `{type: 'tokens', ids}`,
    /// `{type: 'chunk_start', time}`, `{type: 'chunk_end', time}`,
    /// `{type: 'progress', done, total, unit}`, `{type: 'warning', message}`).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::json;
        match *self {
            Event::Text(text) => json!({ "type": "text", "text": text }),
            Event::Tokens(ids) => json!({ "type": "tokens", "ids": ids }),
            Event::ChunkStart(time) => json!({ "type": "chunk_start", "time": time }),
            Event::ChunkEnd(time) => json!({ "type": "chunk_end", "time": time }),
            Event::Progress { done, total, unit } => json!({ "type": "progress", "done": done, "total": total, "unit": unit }),
            Event::Warning(message) => json!({ "type": "warning", "message": message }),
        }
    }
}

/// An event sink that keeps only the text (what `on_text` callbacks used to receive).
pub fn text_only(mut on_text: impl FnMut(&str)) -> impl FnMut(Event<'_>) {
    move |e| {
        if let Event::Text(t) = e {
            on_text(t)
        }
    }
}

/// A generation streamer that reports every step's ids (`Event::Tokens`) before handing them on
/// to `inner` (a text streamer, whose text goes to the same sink through its own closure).
pub struct TokenEvents<'s, S> {
    pub inner: S,
    pub on_tokens: &'s mut dyn FnMut(&[u32]),
}

impl<S: crate::generation::Streamer> crate::generation::Streamer for TokenEvents<'_, S> {
    fn put(&mut self, ids: &[u32]) -> crate::Result<()> {
        (self.on_tokens)(ids);
        self.inner.put(ids)
    }
    fn end(&mut self) -> crate::Result<()> {
        self.inner.end()
    }
    fn text(&self) -> Option<&str> {
        self.inner.text()
    }
    fn restart(&mut self) {
        self.inner.restart()
    }
}
