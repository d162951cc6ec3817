//! Generated tokens to the pipeline's output, as transformers' Whisper tokenizer `_decode_asr`
//! makes it: the text, segment chunks `{timestamp: [start, end], text}` split at timestamp tokens
//! and offset by each audio chunk's place, overlapping chunks (`chunk_length_s`) merged by the
//! longest common token sequence, and word chunks from per-token times.

use serde_json::{Value, json};

use super::languages;
use super::words;
use crate::Result;

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

/// The text and, when asked, the `chunks` of the pipeline's output.
pub fn decode_asr(
    vocab: &Vocab,
    outputs: &[ChunkTokens],
    return_timestamps: Timestamps,
    return_language: bool,
) -> Result<(String, Option<Vec<Value>>)> {
    let words_mode = return_timestamps == Timestamps::Words;
    let mut last_language: Option<&'static str> = None;
    let mut chunks: Vec<Chunk> = Vec::new();
    let mut chunk = Chunk::default();
    let mut time_offset = 0.0f64;
    let mut previous_tokens: Vec<Vec<u32>> = Vec::new();
    let mut previous_times: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut skip = false;
    let tb = vocab.timestamp_begin;

    for output in outputs {
        let token_ids = strip_prompt(&output.tokens, vocab.startofprev, vocab.startoftranscript);
        let token_times = output.token_timestamps.as_deref().unwrap_or(&[]);
        if words_mode && token_times.len() < token_ids.len() {
            return Err(crate::Error::Input(format!("{} token times for {} tokens", token_times.len(), token_ids.len())));
        }
        let mut last_timestamp: Option<u32> = None;
        let mut first_timestamp = tb as f64;
        let mut cur_max = 0.0f64;
        let mut prev_segments_len = 0.0f64;
        let mut penultimate = 0.0f64;
        let mut chunk_len = 0.0;
        let mut stride_right = 0.0;
        if let Some((len, left, right)) = output.stride {
            chunk_len = len;
            stride_right = right;
            time_offset -= left;
            let right_stride_start = len - right;
            if left != 0.0 {
                first_timestamp = left / TIME_PRECISION + tb as f64;
            }
            if right != 0.0 {
                for &t in token_ids.iter().rev() {
                    if t >= tb {
                        // several timestamps may lie in the right stride; the last one is always skipped
                        if last_timestamp.is_some() && (t - tb) as f64 * TIME_PRECISION < right_stride_start {
                            break;
                        }
                        last_timestamp = Some(t);
                    }
                }
            }
        }
        let mut current_tokens: Vec<u32> = Vec::new();
        let mut current_times: Vec<(f64, f64)> = Vec::new();
        for (i, &token) in token_ids.iter().enumerate() {
            if vocab.is_special(token) {
                if let Some(language) = vocab.language(token) {
                    if last_language.is_some_and(|l| l != language) && return_timestamps == Timestamps::None {
                        previous_tokens.push(std::mem::take(&mut current_tokens));
                        let resolved = longest_common_sequence(&previous_tokens, None)?.0;
                        chunk.text = (vocab.decode)(&resolved)?;
                        chunks.push(std::mem::take(&mut chunk));
                        chunk.language = last_language;
                        previous_tokens.clear();
                    }
                    chunk.language = Some(language);
                    last_language = Some(language);
                }
            } else if token >= tb {
                let timestamp = (token - tb) as f64 * TIME_PRECISION;
                if timestamp < cur_max {
                    // a later generation window started (long-form): its times restart at 0
                    let single_ending = i >= 2 && !(token_ids[i - 1] >= tb && token_ids[i - 2] >= tb);
                    if single_ending {
                        prev_segments_len += TIME_PRECISION * 1500.0;
                    } else {
                        cur_max = penultimate;
                        prev_segments_len += penultimate;
                    }
                }
                penultimate = cur_max;
                cur_max = timestamp;
                let time = round2((token - tb) as f64 * TIME_PRECISION + time_offset + prev_segments_len);
                if last_timestamp.is_some_and(|l| token >= l) {
                    // inside the right stride: resolved by the next chunk; its pair is skipped too
                    skip = true;
                } else if skip || (!previous_tokens.is_empty() && (token as f64) < first_timestamp) {
                    skip = false;
                } else if chunk.timestamp[0].is_none() {
                    chunk.timestamp[0] = Some(time);
                } else if Some(time) == chunk.timestamp[0] {
                    // a repeated start (a model quirk): it stays the start
                } else {
                    chunk.timestamp[1] = Some(time);
                    previous_tokens.push(std::mem::take(&mut current_tokens));
                    if words_mode {
                        previous_times.push(std::mem::take(&mut current_times));
                    }
                    let (resolved, resolved_times) = longest_common_sequence(&previous_tokens, words_mode.then_some(&previous_times[..]))?;
                    chunk.text = (vocab.decode)(&resolved)?;
                    if words_mode {
                        chunk.words = words::collate_word_timestamps(vocab, &resolved, &resolved_times, last_language, return_language)?;
                    }
                    chunks.push(std::mem::take(&mut chunk));
                    chunk.language = last_language;
                    previous_tokens.clear();
                    previous_times.clear();
                    current_times.clear();
                }
            } else {
                current_tokens.push(token);
                if words_mode {
                    let start = if i == 0 { round2(time_offset) } else { round2(token_times[i - 1] + time_offset) };
                    let end = round2(token_times[i] + time_offset);
                    current_times.push((start, end));
                }
            }
        }
        if output.stride.is_some() {
            time_offset += chunk_len - stride_right;
        }
        if !current_tokens.is_empty() {
            previous_tokens.push(current_tokens);
            if words_mode {
                previous_times.push(current_times);
            }
        } else if !previous_tokens.iter().any(|p| !p.is_empty()) {
            chunk = Chunk { language: last_language, ..Chunk::default() };
            previous_tokens.clear();
            previous_times.clear();
        }
    }
    if !previous_tokens.is_empty() {
        let (resolved, resolved_times) = longest_common_sequence(&previous_tokens, words_mode.then_some(&previous_times[..]))?;
        chunk.text = (vocab.decode)(&resolved)?;
        if words_mode {
            chunk.words = words::collate_word_timestamps(vocab, &resolved, &resolved_times, last_language, return_language)?;
        }
        chunks.push(chunk);
    }
    let text: String = chunks.iter().map(|c| c.text.as_str()).collect();
    if return_timestamps == Timestamps::None && !return_language {
        return Ok((text, None));
    }
    let out = if words_mode {
        chunks.into_iter().flat_map(|c| c.words).collect()
    } else {
        chunks
            .into_iter()
            .map(|c| {
                let mut o = serde_json::Map::new();
                if return_language {
                    o.insert("language".into(), json!(c.language));
                }
                if return_timestamps != Timestamps::None {
                    o.insert("timestamp".into(), json!(c.timestamp));
                }
                o.insert("text".into(), json!(c.text));
                Value::Object(o)
            })
            .collect()
    };
    Ok((text, Some(out)))
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
/// `_find_longest_common_sequence`: each next sequence is slid along the current tail, the
/// alignment with the highest share of matching tokens (more than one) wins, and the overlap is
/// cut in its middle. With `times`, tokens match only when their times are in order too, and the
/// times are cut alike.
#[allow(clippy::type_complexity)]
pub fn longest_common_sequence(sequences: &[Vec<u32>], times: Option<&[Vec<(f64, f64)>]>) -> Result<(Vec<u32>, Vec<(f64, f64)>)> {
    let Some(first) = sequences.first() else { return Ok((Vec::new(), Vec::new())) };
    let mut left: Vec<u32> = first.clone();
    let mut left_times: Vec<(f64, f64)> = times.and_then(|t| t.first().cloned()).unwrap_or_default();
    let mut total = Vec::new();
    let mut total_times = Vec::new();
    for (k, right) in sequences.iter().enumerate().skip(1) {
        let right_times = times.and_then(|t| t.get(k));
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
                let in_order = match (right_times, left_times.get(left_start + j)) {
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
        total.extend_from_slice(&left[..left_mid]);
        left = right[right_mid..].to_vec();
        if let Some(rt) = right_times {
            total_times.extend_from_slice(&left_times[..left_mid.min(left_times.len())]);
            left_times = rt.get(right_mid..).map(<[_]>::to_vec).unwrap_or_default();
        }
    }
    total.extend_from_slice(&left);
    total_times.extend_from_slice(&left_times);
    Ok((total, total_times))
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
