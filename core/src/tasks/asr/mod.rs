//! The host side of Whisper speech recognition, written after transformers' pipeline, generate
//! and tokenizer code (each function names its counterpart): the decoder prompt (`prompt`), the
//! timestamp rules (`timestamps`), audio chunking and the generation windows of one input
//! (here), tokens to text and chunks (`decode`), and word timestamps (`words`). None of it runs a
//! model, so all of it is unit-tested against values recorded from Python
//! (tests/reference/make_asr_host_reference.py → tests/fixtures/asr-host-reference.json).

pub mod decode;
pub mod languages;
pub mod prompt;
pub mod timestamps;
pub mod words;

use crate::{Error, Result};

/// Python's `round()`: halves to even.
fn round_half_even(x: f64) -> f64 {
    x.round_ties_even()
}

/// One window of chunked audio (`chunk_length_s`), as the pipeline's `chunk_iter` cuts it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AudioChunk {
    /// Sample range of the input.
    pub start: usize,
    pub end: usize,
    /// Samples at the left and right that overlap the neighbours (0 at the ends).
    pub stride_left: usize,
    pub stride_right: usize,
}

/// The windows of `len` samples at `sampling_rate` for `chunk_length_s` with strides
/// (`stride_length_s`, default a sixth of the chunk on each side).
pub fn chunk_audio(len: usize, sampling_rate: u32, chunk_length_s: f64, stride_length_s: Option<[f64; 2]>) -> Result<Vec<AudioChunk>> {
    if !(chunk_length_s.is_finite() && chunk_length_s > 0.0) {
        return Err(Error::Input(format!("chunk_length_s must be a positive number of seconds, not {chunk_length_s}")));
    }
    let [left_s, right_s] = stride_length_s.unwrap_or([chunk_length_s / 6.0; 2]);
    if !(left_s.is_finite() && right_s.is_finite() && left_s >= 0.0 && right_s >= 0.0) {
        return Err(Error::Input(format!("stride_length_s must be non-negative seconds, not [{left_s}, {right_s}]")));
    }
    let sr = sampling_rate as f64;
    let chunk_len = round_half_even(chunk_length_s * sr) as usize;
    let stride_left = round_half_even(left_s * sr) as usize;
    let stride_right = round_half_even(right_s * sr) as usize;
    if chunk_len < stride_left + stride_right {
        return Err(Error::Input("chunk_length_s must be larger than the two strides together (stride_length_s)".into()));
    }
    let step = chunk_len - stride_left - stride_right;
    if step == 0 {
        return Err(Error::Input("chunk_length_s minus the strides leaves no step: the audio would never advance".into()));
    }
    let mut chunks = Vec::new();
    let mut start = 0;
    while start < len {
        let end = start + chunk_len;
        let is_last = end >= len;
        let left = if start == 0 { 0 } else { stride_left };
        let right = if is_last { 0 } else { stride_right };
        let actual_end = end.min(len);
        if actual_end - start > left {
            chunks.push(AudioChunk { start, end: actual_end, stride_left: left, stride_right: right });
        }
        if is_last {
            break;
        }
        start += step;
    }
    Ok(chunks)
}

/// What one generation window yields (`_retrieve_segment`): the token range kept, and how many
/// log-mel frames the window advances.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WindowResult {
    /// How many of the generated tokens (end token dropped) are kept.
    pub keep: usize,
    /// Frames to move the window by.
    pub advance: usize,
}

/// Where the next window starts after a generation of `tokens` (no end token) over
/// `window_frames` frames: after everything when the window ended on a single timestamp or had no
/// segment ends; else at the last segment end, dropping the unfinished segment after it (which
/// the next window decodes again). The encoder halves the frames, so a timestamp step is 2 frames.
pub fn retrieve_segment(tokens: &[u32], timestamp_begin: u32, window_frames: usize) -> WindowResult {
    let is_ts: Vec<bool> = tokens.iter().map(|&t| t >= timestamp_begin).collect();
    let n = tokens.len();
    let single_ending = n >= 2 && !is_ts[n - 2] && is_ts[n - 1];
    let pair_ends: Vec<usize> = (0..n.saturating_sub(1)).filter(|&i| is_ts[i] && is_ts[i + 1]).map(|i| i + 1).collect();
    if pair_ends.is_empty() || single_ending {
        return WindowResult { keep: n, advance: window_frames };
    }
    let last_slice = pair_ends[pair_ends.len() - 1] + 1;
    let last_ts = (tokens[last_slice - 2] - timestamp_begin) as usize;
    WindowResult { keep: last_slice, advance: last_ts * 2 }
}

#[cfg(test)]
pub(crate) fn tests_fixture() -> serde_json::Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/asr-host-reference.json");
    serde_json::from_str(&std::fs::read_to_string(path).expect("tests/fixtures/asr-host-reference.json")).expect("asr fixture JSON")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_as_the_pipeline_cuts_them() {
        // 90 s at 16 kHz in 30 s chunks with 5 s strides: steps of 20 s
        let c = chunk_audio(90 * 16000, 16000, 30.0, None).unwrap();
        let starts: Vec<usize> = c.iter().map(|c| c.start / 16000).collect();
        assert_eq!(starts, vec![0, 20, 40, 60]);
        assert_eq!((c[0].stride_left, c[0].stride_right), (0, 80000));
        assert_eq!((c[3].start, c[3].end, c[3].stride_left, c[3].stride_right), (960000, 1440000, 80000, 0));
        // a last window no longer than its left stride is dropped
        let c = chunk_audio(20 * 16000 + 100, 16000, 10.0, Some([2.0, 2.0])).unwrap();
        assert_eq!(c.last().unwrap().end, 20 * 16000 + 100);
        let c = chunk_audio(12 * 16000, 16000, 10.0, Some([2.0, 2.0])).unwrap();
        assert_eq!(c.len(), 2);
        assert!(chunk_audio(100, 16000, 1.0, Some([0.6, 0.6])).is_err());
        assert!(chunk_audio(100, 16000, 0.0, None).is_err());
        assert!(chunk_audio(100, 16000, f64::NAN, None).is_err());
        assert!(chunk_audio(0, 16000, 30.0, None).unwrap().is_empty());
    }

    #[test]
    fn windows_advance_as_transformers_seeks() {
        let tb = 100;
        // single ending: the whole window
        assert_eq!(retrieve_segment(&[100, 1, 2, 150], tb, 3000), WindowResult { keep: 4, advance: 3000 });
        // no timestamps at all
        assert_eq!(retrieve_segment(&[1, 2], tb, 3000), WindowResult { keep: 2, advance: 3000 });
        // ends on a pair: seek to the last timestamp
        assert_eq!(retrieve_segment(&[100, 1, 150, 150, 2, 180, 180], tb, 3000), WindowResult { keep: 7, advance: 160 });
        // text after the last pair is dropped and decoded again
        assert_eq!(retrieve_segment(&[100, 1, 150, 150, 2, 3], tb, 3000), WindowResult { keep: 4, advance: 100 });
    }
}
