//! Word-level timestamps, as transformers computes them for Whisper: the cross-attention of the
//! alignment heads ([heads, tokens, frames]) normalized per frame over the tokens, smoothed by a
//! median filter along time, averaged over heads, aligned with dynamic time warping; each token's
//! time is where the path first reaches it (`_extract_token_timestamps`). Tokens are then grouped
//! into words (`_combine_tokens_into_words`: at spaces, or at whole characters for languages
//! written without spaces; punctuation joined to its neighbour) with the first token's start and
//! the last one's end (`_collate_word_timestamps`).

use serde_json::{Value, json};

use super::decode::{TIME_PRECISION, Vocab};
use crate::{Error, Result};

/// PyTorch's median filter along the last axis of rows of `width` values, edges reflected
/// (`_median_filter`); rows no wider than half the filter are left alone.
pub fn median_filter(x: &mut [f32], width: usize, filter: usize) {
    let pad = filter / 2;
    if width <= pad || width == 0 {
        return;
    }
    let mut padded = vec![0f32; width + 2 * pad];
    let mut window = vec![0f32; filter];
    for row in x.chunks_mut(width) {
        for (j, p) in padded.iter_mut().enumerate() {
            // reflect without repeating the edge: index -1 is 1, index width is width - 2
            let k = j as isize - pad as isize;
            let k = if k < 0 {
                -k
            } else if k >= width as isize {
                2 * (width as isize - 1) - k
            } else {
                k
            };
            *p = row[k as usize];
        }
        for (j, out) in row.iter_mut().enumerate() {
            window.copy_from_slice(&padded[j..j + filter]);
            window.sort_by(|a, b| a.total_cmp(b));
            *out = window[pad];
        }
    }
}

/// The per-token times of one generation (`_extract_token_timestamps`). `weights` is
/// [heads, rows, frames] row-major: the alignment heads' cross-attention of every decoder input
/// position (the prompt, then each generated token but the last); `prompt_len` the decoder
/// prompt's length; `num_frames` the input's log-mel frames (the attention is cut to half of them,
/// the encoder's stride). Returns one time per position of prompt + generated tokens (rows + 1).
pub fn token_timestamps(
    weights: &[f32],
    heads: usize,
    rows: usize,
    frames: usize,
    prompt_len: usize,
    num_frames: Option<usize>,
    filter_width: usize,
) -> Result<Vec<f64>> {
    if weights.len() != heads * rows * frames || heads == 0 {
        return Err(Error::Input(format!("cross-attention of {} values is not [{heads}, {rows}, {frames}]", weights.len())));
    }
    let mut times = vec![0f64; rows + 1];
    let keep = num_frames.map_or(frames, |n| (n / 2).min(frames));
    let tokens = rows.saturating_sub(prompt_len);
    if tokens == 0 || keep == 0 {
        return Ok(times);
    }
    // [heads, tokens, keep], standardized over the tokens of each frame (population std)
    let mut w = vec![0f32; heads * tokens * keep];
    for h in 0..heads {
        for t in 0..tokens {
            let src = &weights[(h * rows + prompt_len + t) * frames..][..keep];
            w[(h * tokens + t) * keep..][..keep].copy_from_slice(src);
        }
        for f in 0..keep {
            let col = |t: usize| (h * tokens + t) * keep + f;
            let mean = (0..tokens).map(|t| w[col(t)]).sum::<f32>() / tokens as f32;
            let var = (0..tokens).map(|t| (w[col(t)] - mean) * (w[col(t)] - mean)).sum::<f32>() / tokens as f32;
            let std = var.sqrt();
            for t in 0..tokens {
                w[col(t)] = (w[col(t)] - mean) / std;
            }
        }
    }
    median_filter(&mut w, keep, filter_width);
    // the heads' mean, negated: DTW finds the cheapest path
    let mut matrix = vec![0f64; tokens * keep];
    for (i, m) in matrix.iter_mut().enumerate() {
        let s: f32 = (0..heads).map(|h| w[h * tokens * keep + i]).sum();
        *m = -((s / heads as f32) as f64);
    }
    let (text_idx, time_idx) = dynamic_time_warping(&matrix, tokens, keep)?;
    let mut jumps = Vec::with_capacity(tokens);
    for k in 0..text_idx.len() {
        if k == 0 || text_idx[k] != text_idx[k - 1] {
            jumps.push(time_idx[k] as f64 * TIME_PRECISION);
        }
    }
    for (k, t) in jumps.iter().enumerate() {
        times[prompt_len + k] = *t;
    }
    // the last token (the end) has no attention row: it takes the time before it
    times[rows] = *jumps.last().unwrap_or(&0.0);
    // transformers keeps these as f32
    Ok(times.into_iter().map(|t| t as f32 as f64).collect())
}

/// The cheapest monotonic alignment of `n` tokens with `m` frames (`_dynamic_time_warping`),
/// its cost accumulated in f32 as there; returns the (token, frame) index pairs of the path.
pub fn dynamic_time_warping(matrix: &[f64], n: usize, m: usize) -> Result<(Vec<usize>, Vec<usize>)> {
    let w = m + 1;
    let mut cost = vec![f32::INFINITY; (n + 1) * w];
    let mut trace = vec![-1i8; (n + 1) * w];
    cost[0] = 0.0;
    for j in 1..=m {
        for i in 1..=n {
            let c0 = cost[(i - 1) * w + j - 1];
            let c1 = cost[(i - 1) * w + j];
            let c2 = cost[i * w + j - 1];
            let (c, t) = if c0 < c1 && c0 < c2 {
                (c0, 0)
            } else if c1 < c0 && c1 < c2 {
                (c1, 1)
            } else {
                (c2, 2)
            };
            cost[i * w + j] = (matrix[(i - 1) * m + j - 1] + c as f64) as f32;
            trace[i * w + j] = t;
        }
    }
    trace[..w].fill(2);
    for i in 0..=n {
        trace[i * w] = 1;
    }
    let (mut i, mut j) = (n, m);
    let (mut text, mut time) = (Vec::new(), Vec::new());
    while i > 0 || j > 0 {
        text.push(i.wrapping_sub(1));
        time.push(j.wrapping_sub(1));
        match trace[i * w + j] {
            0 => {
                i -= 1;
                j -= 1;
            }
            1 => i -= 1,
            2 => j -= 1,
            _ => return Err(Error::Input(format!("dynamic time warping: no path at ({i}, {j})"))),
        }
    }
    text.reverse();
    time.reverse();
    Ok((text, time))
}

const PREPEND: &str = "\"'“¡¿([{-";
const APPEND: &str = "\"'.。,，!！?？:：”)]}、";
const PUNCTUATION: &str = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

/// Words of `tokens` with each word's token indices (`_combine_tokens_into_words`).
pub fn combine_tokens_into_words(vocab: &Vocab, tokens: &[u32], language: Option<&str>) -> Result<(Vec<String>, Vec<Vec<usize>>)> {
    let language = language.unwrap_or("english");
    let (mut words, mut indices) = if ["chinese", "japanese", "thai", "lao", "myanmar", "cantonese"].contains(&language) {
        split_on_unicode(vocab, tokens)?
    } else {
        split_on_spaces(vocab, tokens)?
    };
    merge_punctuations(&mut words, &mut indices);
    Ok((words, indices))
}

/// Groups tokens until they decode to whole characters (no U+FFFD that the full text lacks).
fn split_on_unicode(vocab: &Vocab, tokens: &[u32]) -> Result<(Vec<String>, Vec<Vec<usize>>)> {
    let full: Vec<char> = (vocab.decode)(tokens)?.chars().collect();
    let (mut words, mut indices) = (Vec::new(), Vec::new());
    let mut current: Vec<usize> = Vec::new();
    let mut offset = 0usize;
    for k in 0..tokens.len() {
        current.push(k);
        let ids: Vec<u32> = current.iter().map(|&i| tokens[i]).collect();
        let decoded: Vec<char> = (vocab.decode)(&ids)?.chars().collect();
        let whole = match decoded.iter().position(|&c| c == '\u{fffd}') {
            None => true,
            Some(p) => offset + p >= full.len() || full[offset + p] == '\u{fffd}',
        };
        if whole {
            offset += decoded.len();
            words.push(decoded.into_iter().collect());
            indices.push(std::mem::take(&mut current));
        }
    }
    Ok((words, indices))
}

/// Python's `needle in haystack` for strings: a substring test (the empty string is in every one).
fn contains(haystack: &str, needle: &str) -> bool {
    haystack.contains(needle)
}

/// Joins sub-words into words: a word starts at a space, a special token or a punctuation mark.
fn split_on_spaces(vocab: &Vocab, tokens: &[u32]) -> Result<(Vec<String>, Vec<Vec<usize>>)> {
    let (subwords, subindices) = split_on_unicode(vocab, tokens)?;
    let (mut words, mut indices): (Vec<String>, Vec<Vec<usize>>) = (Vec::new(), Vec::new());
    for (sub, idx) in subwords.into_iter().zip(subindices) {
        let special = tokens[idx[0]] >= vocab.eos;
        let with_space = sub.starts_with(' ');
        let punctuation = contains(PUNCTUATION, sub.trim_matches(char::is_whitespace));
        if special || with_space || punctuation || words.is_empty() {
            words.push(sub);
            indices.push(idx);
        } else {
            words.last_mut().unwrap().push_str(&sub);
            indices.last_mut().unwrap().extend(idx);
        }
    }
    Ok((words, indices))
}

/// Attaches opening punctuation to the next word and closing punctuation to the previous one.
fn merge_punctuations(words: &mut Vec<String>, indices: &mut Vec<Vec<usize>>) {
    if words.len() >= 2 {
        let mut j = words.len() - 1;
        for i in (0..words.len() - 1).rev() {
            if words[i].starts_with(' ') && contains(PREPEND, words[i].trim_matches(char::is_whitespace)) {
                words[j] = format!("{}{}", words[i], words[j]);
                let mut merged = std::mem::take(&mut indices[i]);
                merged.extend(std::mem::take(&mut indices[j]));
                indices[j] = merged;
                words[i].clear();
            } else {
                j = i;
            }
        }
    }
    let (mut i, mut j) = (0, 1);
    while j < words.len() {
        if !words[i].ends_with(' ') && contains(APPEND, &words[j]) {
            let w = std::mem::take(&mut words[j]);
            words[i].push_str(&w);
            let idx = std::mem::take(&mut indices[j]);
            indices[i].extend(idx);
        } else {
            i = j;
        }
        j += 1;
    }
    let keep: Vec<bool> = words.iter().map(|w| !w.is_empty()).collect();
    let mut k = 0;
    words.retain(|_| {
        k += 1;
        keep[k - 1]
    });
    indices.retain(|i| !i.is_empty());
}

/// The word chunks `{text, timestamp: [start, end]}` of resolved tokens with their (start, end)
/// times (`_collate_word_timestamps`).
pub fn collate_word_timestamps(
    vocab: &Vocab,
    tokens: &[u32],
    times: &[(f64, f64)],
    language: Option<&str>,
    return_language: bool,
) -> Result<Vec<Value>> {
    let (words, indices) = combine_tokens_into_words(vocab, tokens, language)?;
    words
        .into_iter()
        .zip(indices)
        .map(|(word, idx)| {
            let start = times.get(idx[0]).map(|t| t.0);
            let end = times.get(*idx.last().unwrap()).map(|t| t.1);
            let (Some(start), Some(end)) = (start, end) else {
                return Err(Error::Input(format!("no time for the tokens of word {word:?}")));
            };
            Ok(if return_language {
                json!({ "text": word, "timestamp": [start, end], "language": language })
            } else {
                json!({ "text": word, "timestamp": [start, end] })
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f32s(v: &Value) -> Vec<f32> {
        v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect()
    }

    #[test]
    fn median_filter_matches_torch() {
        let fixture = super::super::tests_fixture();
        for case in fixture["median"].as_array().unwrap() {
            let mut x = f32s(&case["x"]);
            let width = case["dims"][1].as_u64().unwrap() as usize;
            median_filter(&mut x, width, 7);
            assert_eq!(x, f32s(&case["expected"]), "width {width}");
        }
    }

    #[test]
    fn token_timestamps_match_transformers() {
        let fixture = super::super::tests_fixture();
        for case in fixture["token_timestamps"].as_array().unwrap() {
            let d: Vec<usize> = case["dims"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as usize).collect();
            let got = token_timestamps(
                &f32s(&case["weights"]),
                d[0],
                d[1],
                d[2],
                case["prompt_len"].as_u64().unwrap() as usize,
                case["num_frames"].as_u64().map(|x| x as usize),
                7,
            )
            .unwrap();
            let want: Vec<f64> = case["expected"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
            assert_eq!(got.len(), want.len(), "{d:?}");
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() < 1e-6, "{d:?}: {got:?} vs {want:?}");
            }
        }
    }

    #[test]
    fn bad_attention_shape_is_an_error() {
        assert!(token_timestamps(&[0.0; 5], 1, 2, 3, 0, None, 7).is_err());
    }
}
