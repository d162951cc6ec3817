//! Generated tokens to the pipeline's output, as transformers' Whisper tokenizer `_decode_asr`
//! makes it: the text, segment chunks `{timestamp: [start, end], text}` split at timestamp tokens
//! and offset by each audio chunk's place, overlapping chunks (`chunk_length_s`) merged by the
//! longest common token sequence, and word chunks from per-token times.

use serde_json::{Value, json};

use super::languages;
use super::words;
use crate::Result;
use crate::tasks::Event;

/// The seconds per timestamp token step.
pub const TIME_PRECISION: f64 = 0.02;

/// The tokens of one generated audio chunk, as the pipeline hands them on.
#[derive(Clone, Debug, Default)]
pub struct ChunkTokens {
    /// Generated tokens (no decoder prompt, no final end token).
    pub tokens: Vec<u32>,
    /// Per-token times in seconds (word timestamps), aligned with `tokens`.
    pub token_timestamps: Option<Vec<f64>>,
    /// (chunk length, left stride, right stride) in seconds, for chunked audio.
    pub stride: Option<(f64, f64, f64)>,
}

/// What `return_timestamps` asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timestamps {
    None,
    Segments,
    Words,
}

/// The tokenizer facts decoding needs.
pub struct Vocab<'a> {
    /// The first special token (`<|endoftext|>`); ids from here up to `timestamp_begin` are special.
    pub eos: u32,
    /// The first timestamp token (`<|0.00|>`).
    pub timestamp_begin: u32,
    /// `<|startofprev|>` and `<|startoftranscript|>`, to strip a previous-text prompt.
    pub startofprev: Option<u32>,
    pub startoftranscript: Option<u32>,
    /// A token's text (`<|en|>` for language tokens).
    pub token: &'a dyn Fn(u32) -> Option<String>,
    /// Decodes text tokens (byte-level, invalid UTF-8 as U+FFFD).
    pub decode: &'a dyn Fn(&[u32]) -> Result<String>,
}

impl Vocab<'_> {
    fn is_special(&self, t: u32) -> bool {
        t >= self.eos && t < self.timestamp_begin
    }

    /// The language a special token names (`<|fr|>` → `french`).
    fn language(&self, t: u32) -> Option<&'static str> {
        let text = (self.token)(t)?;
        let code = text.strip_prefix("<|")?.strip_suffix("|>")?;
        languages::name_of(code)
    }
}

#[derive(Clone, Debug, Default)]
struct Chunk {
    language: Option<&'static str>,
    timestamp: [Option<f64>; 2],
    text: String,
    words: Vec<Value>,
}

/// Python's `round(x, 2)` for the values met here (times of whole 10 ms steps plus offsets).
fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// The text and, when asked, the `chunks` of the pipeline's output (all outputs at once).
pub fn decode_asr(
    vocab: &Vocab,
    outputs: &[ChunkTokens],
    return_timestamps: Timestamps,
    return_language: bool,
) -> Result<(String, Option<Vec<Value>>)> {
    let mut ignore = |_: Event<'_>| {};
    let mut decoder = AsrDecoder::new(vocab, return_timestamps, return_language, &mut ignore);
    for output in outputs {
        decoder.push_output(output)?;
    }
    decoder.finish()
}

/// `_decode_asr` one token at a time, so that a transcription can be streamed as it is decoded:
/// every chunk (segment) it closes is final, and so is the text of the open chunk that no later
/// merge can change. It reports, in order, `ChunkStart(start)` (before a chunk's first text, or
/// at its close), `Text` pieces, and `ChunkEnd(end)` when a timestamp closes the chunk; the
/// pieces concatenated are the result's text and the times are the result's chunk timestamps.
///
/// Feed it whole outputs (`push_output`: chunked audio, whose right stride needs the output's
/// last timestamps), or one output token by token (`begin_output`, `push`, `end_output`: tokens
/// that are final, i.e. kept by their generation window).
pub struct AsrDecoder<'v, 'e> {
    vocab: &'v Vocab<'v>,
    timestamps: Timestamps,
    return_language: bool,
    last_language: Option<&'static str>,
    chunks: Vec<Chunk>,
    chunk: Chunk,
    time_offset: f64,
    /// The token sequences of the open chunk, merged as they come (`previous_tokens`).
    previous: Merge,
    skip: bool,
    out: OutputState,
    stream: ChunkStream,
    on_event: &'e mut dyn FnMut(Event<'_>),
}

/// The state `_decode_asr` keeps per output.
#[derive(Default)]
struct OutputState {
    stride: Option<(f64, f64, f64)>,
    /// The first timestamp token in the right stride (its pair and later ones are skipped).
    last_timestamp: Option<u32>,
    /// Timestamps before the left stride's end are skipped once tokens are pending.
    first_timestamp: f64,
    cur_max: f64,
    prev_segments_len: f64,
    penultimate: f64,
    current_tokens: Vec<u32>,
    current_times: Vec<(f64, f64)>,
    /// Tokens seen after the prompt strip, and the last two of them (long-form window restarts).
    index: usize,
    recent: [Option<u32>; 2],
    /// The previous token's time (word timestamps: a token spans from it to its own).
    prev_time: f64,
    /// Inside a `<|startofprev|>` prompt: skipped up to `<|startoftranscript|>`.
    stripping: bool,
}

/// What has been streamed of the open chunk.
#[derive(Default)]
struct ChunkStream {
    started: bool,
    emitted: String,
    /// Stable tokens already decoded and emitted.
    upto: usize,
}

impl<'v, 'e> AsrDecoder<'v, 'e> {
    pub fn new(
        vocab: &'v Vocab<'v>,
        timestamps: Timestamps,
        return_language: bool,
        on_event: &'e mut dyn FnMut(Event<'_>),
    ) -> AsrDecoder<'v, 'e> {
        AsrDecoder {
            vocab,
            timestamps,
            return_language,
            last_language: None,
            chunks: Vec::new(),
            chunk: Chunk::default(),
            time_offset: 0.0,
            previous: Merge::default(),
            skip: false,
            out: OutputState::default(),
            stream: ChunkStream::default(),
            on_event,
        }
    }

    fn words(&self) -> bool {
        self.timestamps == Timestamps::Words
    }

    /// One whole output.
    pub fn push_output(&mut self, output: &ChunkTokens) -> Result<()> {
        let token_ids = strip_prompt(&output.tokens, self.vocab.startofprev, self.vocab.startoftranscript);
        let token_times = output.token_timestamps.as_deref().unwrap_or(&[]);
        if self.words() && token_times.len() < token_ids.len() {
            return Err(crate::Error::Input(format!("{} token times for {} tokens", token_times.len(), token_ids.len())));
        }
        self.begin_output(output.stride, token_ids);
        for (i, &token) in token_ids.iter().enumerate() {
            self.push(token, token_times.get(i).copied().unwrap_or(0.0))?;
        }
        self.end_output()
    }

    /// Starts an output; `tokens` (its tokens, prompt stripped) are needed with a right stride
    /// only.
    pub fn begin_output(&mut self, stride: Option<(f64, f64, f64)>, tokens: &[u32]) {
        let tb = self.vocab.timestamp_begin;
        let mut out = OutputState { stride, first_timestamp: tb as f64, ..OutputState::default() };
        if let Some((len, left, right)) = stride {
            self.time_offset -= left;
            let right_stride_start = len - right;
            if left != 0.0 {
                out.first_timestamp = left / TIME_PRECISION + tb as f64;
            }
            if right != 0.0 {
                for &t in tokens.iter().rev() {
                    if t >= tb {
                        // several timestamps may lie in the right stride; the last one is always skipped
                        if out.last_timestamp.is_some() && (t - tb) as f64 * TIME_PRECISION < right_stride_start {
                            break;
                        }
                        out.last_timestamp = Some(t);
                    }
                }
            }
        }
        self.out = out;
    }

    /// The output's next token; `time` is its time in seconds within the output (word
    /// timestamps; ignored otherwise).
    pub fn push(&mut self, token: u32, time: f64) -> Result<()> {
        let vocab = self.vocab;
        if self.out.index == 0 && self.out.recent[1].is_none() && !self.out.stripping && Some(token) == vocab.startofprev {
            self.out.stripping = true;
        }
        if self.out.stripping {
            if Some(token) != vocab.startoftranscript {
                return Ok(());
            }
            self.out.stripping = false;
        }
        let i = self.out.index;
        let words_mode = self.words();
        let tb = vocab.timestamp_begin;
        if vocab.is_special(token) {
            if let Some(language) = vocab.language(token) {
                if self.last_language.is_some_and(|l| l != language) && self.timestamps == Timestamps::None {
                    self.previous.push(std::mem::take(&mut self.out.current_tokens), None);
                    let resolved = self.previous.resolved().0;
                    self.chunk.text = (vocab.decode)(&resolved)?;
                    self.close_chunk();
                    self.chunk.language = self.last_language;
                    self.previous.clear();
                }
                self.chunk.language = Some(language);
                self.last_language = Some(language);
            }
        } else if token >= tb {
            let out = &mut self.out;
            let timestamp = (token - tb) as f64 * TIME_PRECISION;
            if timestamp < out.cur_max {
                // a later generation window started (long-form): its times restart at 0
                let single_ending = i >= 2 && !(out.recent[1].is_some_and(|t| t >= tb) && out.recent[0].is_some_and(|t| t >= tb));
                if single_ending {
                    out.prev_segments_len += TIME_PRECISION * 1500.0;
                } else {
                    out.cur_max = out.penultimate;
                    out.prev_segments_len += out.penultimate;
                }
            }
            out.penultimate = out.cur_max;
            out.cur_max = timestamp;
            let time = round2(timestamp + self.time_offset + out.prev_segments_len);
            if out.last_timestamp.is_some_and(|l| token >= l) {
                // inside the right stride: resolved by the next chunk; its pair is skipped too
                self.skip = true;
            } else if self.skip || (!self.previous.is_empty() && (token as f64) < out.first_timestamp) {
                self.skip = false;
            } else if self.chunk.timestamp[0].is_none() {
                self.chunk.timestamp[0] = Some(time);
            } else if Some(time) == self.chunk.timestamp[0] {
                // a repeated start (a model quirk): it stays the start
            } else {
                self.chunk.timestamp[1] = Some(time);
                let times = words_mode.then(|| std::mem::take(&mut self.out.current_times));
                self.previous.push(std::mem::take(&mut self.out.current_tokens), times);
                let (resolved, resolved_times) = self.previous.resolved();
                self.chunk.text = (vocab.decode)(&resolved)?;
                if words_mode {
                    self.chunk.words =
                        words::collate_word_timestamps(vocab, &resolved, &resolved_times, self.last_language, self.return_language)?;
                }
                self.close_chunk();
                self.chunk.language = self.last_language;
                self.previous.clear();
                self.out.current_times.clear();
            }
        } else {
            self.out.current_tokens.push(token);
            if words_mode {
                let start = if i == 0 { round2(self.time_offset) } else { round2(self.out.prev_time + self.time_offset) };
                let end = round2(time + self.time_offset);
                self.out.current_times.push((start, end));
            }
            self.stream_open()?;
        }
        self.out.index += 1;
        self.out.recent = [self.out.recent[1], Some(token)];
        self.out.prev_time = time;
        Ok(())
    }

    /// Ends the output begun last.
    pub fn end_output(&mut self) -> Result<()> {
        if let Some((len, _, right)) = self.out.stride {
            self.time_offset += len - right;
        }
        if !self.out.current_tokens.is_empty() {
            let times = self.words().then(|| std::mem::take(&mut self.out.current_times));
            self.previous.push(std::mem::take(&mut self.out.current_tokens), times);
        } else if !self.previous.any_tokens {
            self.chunk = Chunk { language: self.last_language, ..Chunk::default() };
            self.previous.clear();
            self.stream = ChunkStream::default();
        }
        self.stream_open()
    }

    /// The text and, when asked, the chunks: what `decode_asr` returns.
    pub fn finish(mut self) -> Result<(String, Option<Vec<Value>>)> {
        if !self.previous.is_empty() {
            let (resolved, resolved_times) = self.previous.resolved();
            self.chunk.text = (self.vocab.decode)(&resolved)?;
            if self.words() {
                self.chunk.words =
                    words::collate_word_timestamps(self.vocab, &resolved, &resolved_times, self.last_language, self.return_language)?;
            }
            self.close_chunk();
        }
        let chunks = std::mem::take(&mut self.chunks);
        let text: String = chunks.iter().map(|c| c.text.as_str()).collect();
        if self.timestamps == Timestamps::None && !self.return_language {
            return Ok((text, None));
        }
        let out = if self.words() {
            chunks.into_iter().flat_map(|c| c.words).collect()
        } else {
            chunks
                .into_iter()
                .map(|c| {
                    let mut o = serde_json::Map::new();
                    if self.return_language {
                        o.insert("language".into(), json!(c.language));
                    }
                    if self.timestamps != Timestamps::None {
                        o.insert("timestamp".into(), json!(c.timestamp));
                    }
                    o.insert("text".into(), json!(c.text));
                    Value::Object(o)
                })
                .collect()
        };
        Ok((text, Some(out)))
    }

    /// Reports the open chunk's start once, before anything else of it.
    fn start_chunk(&mut self) {
        if !self.stream.started {
            self.stream.started = true;
            if let Some(start) = self.chunk.timestamp[0] {
                (self.on_event)(Event::ChunkStart(start));
            }
        }
    }

    /// Streams the open chunk's text that no later token can change: its tokens so far when
    /// they are never merged again (audio without strides), else what the merge has settled.
    fn stream_open(&mut self) -> Result<()> {
        // Text that comes before its chunk's start timestamp (a model can put text right after a
        // closing timestamp) belongs to a chunk whose start a later timestamp sets: it waits, so
        // that the chunk's start is reported before its text.
        if self.timestamps != Timestamps::None && self.chunk.timestamp[0].is_none() {
            return Ok(());
        }
        let stable: &[u32] =
            if self.out.stride.is_none() && self.previous.is_empty() { &self.out.current_tokens } else { &self.previous.total };
        if stable.len() <= self.stream.upto {
            return Ok(());
        }
        let piece = (self.vocab.decode)(&stable[self.stream.upto..])?;
        // a character cut between tokens waits for its last bytes
        if piece.is_empty() || piece.ends_with('\u{FFFD}') {
            return Ok(());
        }
        self.stream.upto = stable.len();
        self.start_chunk();
        self.stream.emitted.push_str(&piece);
        (self.on_event)(Event::Text(&piece));
        Ok(())
    }

    /// Moves the open chunk (its text set) to the closed ones, reporting what was not yet.
    fn close_chunk(&mut self) {
        self.start_chunk();
        if let Some(rest) = self.chunk.text.strip_prefix(self.stream.emitted.as_str())
            && !rest.is_empty()
        {
            (self.on_event)(Event::Text(rest));
        }
        if let Some(end) = self.chunk.timestamp[1] {
            (self.on_event)(Event::ChunkEnd(end));
        }
        self.stream = ChunkStream::default();
        self.chunks.push(std::mem::take(&mut self.chunk));
    }
}

/// Drops a `<|startofprev|>` prompt (previous text) before `<|startoftranscript|>`.
fn strip_prompt(ids: &[u32], startofprev: Option<u32>, sot: Option<u32>) -> &[u32] {
    match (ids.first(), startofprev) {
        (Some(&first), Some(prev)) if first == prev => match sot.and_then(|s| ids.iter().position(|&t| t == s)) {
            Some(p) => &ids[p..],
            None => &[],
        },
        _ => ids,
    }
}

/// Merges the token sequences of overlapping audio chunks as transformers'
/// `_find_longest_common_sequence` (all at once).
#[allow(clippy::type_complexity)]
pub fn longest_common_sequence(sequences: &[Vec<u32>], times: Option<&[Vec<(f64, f64)>]>) -> Result<(Vec<u32>, Vec<(f64, f64)>)> {
    let mut merge = Merge::default();
    for (k, s) in sequences.iter().enumerate() {
        merge.push(s.clone(), times.and_then(|t| t.get(k)).cloned());
    }
    Ok(merge.resolved())
}

/// transformers' `_find_longest_common_sequence`, one sequence at a time: each next sequence is
/// slid along the current tail, the alignment with the highest share of matching tokens (more
/// than one) wins, and the overlap is cut in its middle. With times, tokens match only when
/// their times are in order too, and the times are cut alike. `total` only grows: it is final.
#[derive(Default)]
struct Merge {
    count: usize,
    any_tokens: bool,
    total: Vec<u32>,
    total_times: Vec<(f64, f64)>,
    left: Vec<u32>,
    left_times: Vec<(f64, f64)>,
}

impl Merge {
    fn is_empty(&self) -> bool {
        self.count == 0
    }

    fn clear(&mut self) {
        *self = Merge::default();
    }

    fn push(&mut self, right: Vec<u32>, right_times: Option<Vec<(f64, f64)>>) {
        self.count += 1;
        self.any_tokens |= !right.is_empty();
        if self.count == 1 {
            self.left = right;
            self.left_times = right_times.unwrap_or_default();
            return;
        }
        let (left, left_times) = (&self.left, &self.left_times);
        let (ll, rl) = (left.len(), right.len());
        let mut best = 0.0f64;
        let mut best_idx = (ll, ll, 0usize, 0usize);
        for i in 1..ll + rl {
            let eps = i as f64 / 10000.0;
            let left_start = ll.saturating_sub(i);
            let left_stop = ll.min(ll + rl - i);
            let right_start = i.saturating_sub(ll);
            let right_stop = rl.min(i);
            let mut matches = 0usize;
            for j in 0..left_stop - left_start {
                let (a, b) = (left[left_start + j], right[right_start + j]);
                let in_order = match (&right_times, left_times.get(left_start + j)) {
                    (Some(rt), Some(lt)) => rt.get(right_start + j).is_some_and(|r| lt <= r),
                    _ => true,
                };
                if a == b && in_order {
                    matches += 1;
                }
            }
            let matching = matches as f64 / i as f64 + eps;
            if matches > 1 && matching > best {
                best = matching;
                best_idx = (left_start, left_stop, right_start, right_stop);
            }
        }
        let (ls, le, rs, re) = best_idx;
        let left_mid = (le + ls) / 2;
        let right_mid = (re + rs) / 2;
        self.total.extend_from_slice(&self.left[..left_mid]);
        self.left = right[right_mid..].to_vec();
        if let Some(rt) = right_times {
            self.total_times.extend_from_slice(&self.left_times[..left_mid.min(self.left_times.len())]);
            self.left_times = rt.get(right_mid..).map(<[_]>::to_vec).unwrap_or_default();
        }
    }

    /// The merged tokens (and times) of every sequence so far.
    fn resolved(&self) -> (Vec<u32>, Vec<(f64, f64)>) {
        let mut tokens = self.total.clone();
        tokens.extend_from_slice(&self.left);
        let mut times = self.total_times.clone();
        times.extend_from_slice(&self.left_times);
        (tokens, times)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The fixture's fake byte-level tokenizer: text tokens are Latin-1 strings standing for bytes.
    pub(crate) struct Fake {
        text: Vec<Vec<u8>>,
        specials: Vec<String>,
    }

    impl Fake {
        pub(crate) fn new(fixture: &Value) -> Fake {
            let d = &fixture["decode"];
            let text =
                d["text"].as_array().unwrap().iter().map(|s| s.as_str().unwrap().chars().map(|c| c as u32 as u8).collect()).collect();
            let specials = d["specials"].as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string()).collect();
            Fake { text, specials }
        }
        pub(crate) fn eos(&self) -> u32 {
            self.text.len() as u32
        }
        pub(crate) fn token(&self, t: u32) -> Option<String> {
            let t = t as usize;
            if t < self.text.len() {
                Some(String::from_utf8_lossy(&self.text[t]).into_owned())
            } else {
                self.specials.get(t - self.text.len()).cloned()
            }
        }
        pub(crate) fn decode(&self, ids: &[u32]) -> Result<String> {
            let mut bytes = Vec::new();
            for &t in ids {
                let t = t as usize;
                if t < self.text.len() {
                    bytes.extend_from_slice(&self.text[t]);
                } else if let Some(s) = self.specials.get(t - self.text.len()) {
                    bytes.extend_from_slice(s.as_bytes());
                }
            }
            Ok(String::from_utf8_lossy(&bytes).into_owned())
        }
        pub(crate) fn vocab<'a>(
            &'a self,
            token: &'a dyn Fn(u32) -> Option<String>,
            decode: &'a dyn Fn(&[u32]) -> Result<String>,
        ) -> Vocab<'a> {
            let id = |s: &str| self.specials.iter().position(|x| x == s).map(|p| self.eos() + p as u32);
            Vocab {
                eos: self.eos(),
                timestamp_begin: self.eos() + self.specials.len() as u32,
                startofprev: id("<|startofprev|>"),
                startoftranscript: id("<|startoftranscript|>"),
                token,
                decode,
            }
        }
    }

    fn u32s(v: &Value) -> Vec<u32> {
        v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect()
    }

    /// Compares JSON with floats equal to within 1e-9 (times are rounded to 10 ms on both sides).
    pub(crate) fn assert_json_close(got: &Value, want: &Value, what: &str) {
        match (got, want) {
            (Value::Number(a), Value::Number(b)) => {
                assert!((a.as_f64().unwrap() - b.as_f64().unwrap()).abs() < 1e-9, "{what}: {got} vs {want}")
            }
            (Value::Array(a), Value::Array(b)) => {
                assert_eq!(a.len(), b.len(), "{what}: {got} vs {want}");
                a.iter().zip(b).for_each(|(x, y)| assert_json_close(x, y, what));
            }
            (Value::Object(a), Value::Object(b)) => {
                assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>(), "{what}: {got} vs {want}");
                a.iter().for_each(|(k, x)| assert_json_close(x, &b[k], what));
            }
            _ => assert_eq!(got, want, "{what}"),
        }
    }

    #[test]
    fn decode_asr_matches_transformers() {
        let fixture = super::super::tests_fixture();
        let fake = Fake::new(&fixture);
        let token = |t: u32| fake.token(t);
        let decode = |ids: &[u32]| fake.decode(ids);
        let vocab = fake.vocab(&token, &decode);
        for case in fixture["decode"]["cases"].as_array().unwrap() {
            let name = case["name"].as_str().unwrap();
            let outputs: Vec<ChunkTokens> = case["outputs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|o| ChunkTokens {
                    tokens: u32s(&o["tokens"]),
                    token_timestamps: o
                        .get("token_timestamps")
                        .map(|t| t.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()),
                    stride: o.get("stride").map(|s| (s[0].as_f64().unwrap(), s[1].as_f64().unwrap(), s[2].as_f64().unwrap())),
                })
                .collect();
            let ts = match &case["return_timestamps"] {
                Value::Bool(true) => Timestamps::Segments,
                Value::String(_) => Timestamps::Words,
                _ => Timestamps::None,
            };
            let (text, chunks) = decode_asr(&vocab, &outputs, ts, case["return_language"].as_bool().unwrap()).unwrap();
            assert_eq!(text, case["expected"]["text"].as_str().unwrap(), "{name}");
            assert_json_close(&json!(chunks), &case["expected"]["chunks"], name);
        }
    }

    #[test]
    fn longest_common_sequence_matches_transformers() {
        let fixture = super::super::tests_fixture();
        for case in fixture["lcs"].as_array().unwrap() {
            let seqs: Vec<Vec<u32>> = case["sequences"].as_array().unwrap().iter().map(u32s).collect();
            assert_eq!(longest_common_sequence(&seqs, None).unwrap().0, u32s(&case["expected"]), "{seqs:?}");
        }
    }
}
