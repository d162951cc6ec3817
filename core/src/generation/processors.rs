//! transformers' logits processors (generation/logits_process.py), with its semantics: banned
//! tokens go to -inf on the host (to `MASKED` on the device), and the sampling warpers
//! (temperature, top-k, top-p) run in transformers' order after the others. Then the pick:
//! argmax, or a draw from a seeded SplitMix64 so that sampled generations reproduce.

use std::collections::HashSet;

use super::{GenerationConfig, LogitsProcessor, Step};
use crate::Result;

/// The standard processors for `config`, in transformers' order (`_get_logits_processor`):
/// repetition penalty, no-repeat n-gram, min length, min new tokens, suppress, begin-suppress, forced tokens (where
/// transformers 4 and transformers.js put `forced_decoder_ids`), then, when
/// sampling, temperature, top-k and top-p. Callers append their own (Whisper's timestamp rules).
pub fn processors_for(config: &GenerationConfig) -> Vec<Box<dyn LogitsProcessor>> {
    let mut list: Vec<Box<dyn LogitsProcessor>> = Vec::new();
    if config.repetition_penalty != 1.0 {
        list.push(Box::new(RepetitionPenalty { penalty: config.repetition_penalty }));
    }
    if config.no_repeat_ngram_size > 0 {
        list.push(Box::new(NoRepeatNGram { size: config.no_repeat_ngram_size }));
    }
    if config.min_length > 0 && !config.eos_token_ids.is_empty() {
        list.push(Box::new(MinLength { min_length: config.min_length, eos_token_ids: config.eos_token_ids.clone() }));
    }
    if config.min_new_tokens > 0 && !config.eos_token_ids.is_empty() {
        list.push(Box::new(MinNewTokens { min_new_tokens: config.min_new_tokens, eos_token_ids: config.eos_token_ids.clone() }));
    }
    if !config.suppress_tokens.is_empty() {
        list.push(Box::new(SuppressTokens { tokens: config.suppress_tokens.clone() }));
    }
    if !config.begin_suppress_tokens.is_empty() {
        list.push(Box::new(SuppressTokensAtBegin { tokens: config.begin_suppress_tokens.clone(), begin_index: None }));
    }
    if !config.forced_tokens.is_empty() {
        list.push(Box::new(ForceTokens { tokens: config.forced_tokens.clone() }));
    }
    if config.do_sample {
        if config.temperature != 1.0 {
            list.push(Box::new(Temperature { temperature: config.temperature }));
        }
        if config.top_k != 0 {
            list.push(Box::new(TopK { top_k: config.top_k, min_tokens_to_keep: 1 }));
        }
        if config.top_p < 1.0 {
            list.push(Box::new(TopP { top_p: config.top_p, min_tokens_to_keep: 1 }));
        }
    }
    list
}

fn ban(logits: &mut [f32], ids: &[u32]) {
    for &t in ids {
        if let Some(l) = logits.get_mut(t as usize) {
            *l = f32::NEG_INFINITY;
        }
    }
}

/// `SuppressTokensLogitsProcessor`: these ids are never generated.
pub struct SuppressTokens {
    pub tokens: Vec<u32>,
}

impl LogitsProcessor for SuppressTokens {
    fn banned(&self, _step: &Step) -> Option<Vec<u32>> {
        Some(self.tokens.clone())
    }
    fn process(&mut self, _step: &Step, logits: &mut [f32]) -> Result<()> {
        ban(logits, &self.tokens);
        Ok(())
    }
}

/// `SuppressTokensAtBeginLogitsProcessor`: these ids are banned when the sequence is
/// `begin_index` long (by default the prompt's length: the first new token).
pub struct SuppressTokensAtBegin {
    pub tokens: Vec<u32>,
    /// `None`: the prompt's length.
    pub begin_index: Option<usize>,
}

impl SuppressTokensAtBegin {
    fn active(&self, step: &Step) -> bool {
        step.ids.len() == self.begin_index.unwrap_or(step.prompt_len)
    }
}

impl LogitsProcessor for SuppressTokensAtBegin {
    fn banned(&self, step: &Step) -> Option<Vec<u32>> {
        Some(if self.active(step) { self.tokens.clone() } else { Vec::new() })
    }
    fn process(&mut self, step: &Step, logits: &mut [f32]) -> Result<()> {
        if self.active(step) {
            ban(logits, &self.tokens);
        }
        Ok(())
    }
}

/// Forced tokens (`forced_decoder_ids`, as transformers.js's `ForceTokensLogitsProcessor`):
/// when the sequence is `position` long, every id but `token` is -inf and `token` is 0.
pub struct ForceTokens {
    pub tokens: Vec<(usize, u32)>,
}

impl LogitsProcessor for ForceTokens {
    fn banned(&self, _step: &Step) -> Option<Vec<u32>> {
        Some(Vec::new())
    }
    fn forced(&self, step: &Step) -> Option<u32> {
        self.tokens.iter().find(|(at, _)| *at == step.ids.len()).map(|&(_, t)| t)
    }
    fn process(&mut self, step: &Step, logits: &mut [f32]) -> Result<()> {
        if let Some(t) = self.forced(step) {
            logits.fill(f32::NEG_INFINITY);
            if let Some(l) = logits.get_mut(t as usize) {
                *l = 0.0;
            }
        }
        Ok(())
    }
}

/// `RepetitionPenaltyLogitsProcessor`: the logit of every id already in the sequence (prompt
/// included) is divided by `penalty` when positive, multiplied when negative; once per id.
pub struct RepetitionPenalty {
    pub penalty: f32,
}

impl LogitsProcessor for RepetitionPenalty {
    fn process(&mut self, step: &Step, logits: &mut [f32]) -> Result<()> {
        let mut done = HashSet::new();
        for &t in step.ids {
            if let Some(l) = logits.get_mut(t as usize)
                && done.insert(t)
            {
                *l = if *l < 0.0 { *l * self.penalty } else { *l / self.penalty };
            }
        }
        Ok(())
    }
}

/// `NoRepeatNGramLogitsProcessor`: no n-gram of `size` tokens occurs twice in the sequence
/// (prompt included): the tokens that would complete one already seen are banned.
pub struct NoRepeatNGram {
    pub size: usize,
}

impl NoRepeatNGram {
    fn banned_ids(&self, ids: &[u32]) -> Vec<u32> {
        let n = self.size;
        if n == 0 || ids.len() < n {
            return Vec::new();
        }
        // The last n - 1 tokens, matched against the first n - 1 of every window of n; a
        // matching window bans its last token.
        let prefix = &ids[ids.len() + 1 - n..];
        let mut out: Vec<u32> = ids.windows(n).filter(|w| &w[..n - 1] == prefix).map(|w| w[n - 1]).collect();
        out.sort_unstable();
        out.dedup();
        out
    }
}

impl LogitsProcessor for NoRepeatNGram {
    fn banned(&self, step: &Step) -> Option<Vec<u32>> {
        Some(self.banned_ids(step.ids))
    }
    fn process(&mut self, step: &Step, logits: &mut [f32]) -> Result<()> {
        ban(logits, &self.banned_ids(step.ids));
        Ok(())
    }
}

/// `MinLengthLogitsProcessor`: no EOS while the sequence (prompt included) is shorter than
/// `min_length`.
pub struct MinLength {
    pub min_length: usize,
    pub eos_token_ids: Vec<u32>,
}

impl LogitsProcessor for MinLength {
    fn banned(&self, step: &Step) -> Option<Vec<u32>> {
        Some(if step.ids.len() < self.min_length { self.eos_token_ids.clone() } else { Vec::new() })
    }
    fn process(&mut self, step: &Step, logits: &mut [f32]) -> Result<()> {
        if step.ids.len() < self.min_length {
            ban(logits, &self.eos_token_ids);
        }
        Ok(())
    }
}

/// `MinNewTokensLengthLogitsProcessor`: no EOS before `min_new_tokens` new tokens.
pub struct MinNewTokens {
    pub min_new_tokens: usize,
    pub eos_token_ids: Vec<u32>,
}

impl LogitsProcessor for MinNewTokens {
    fn banned(&self, step: &Step) -> Option<Vec<u32>> {
        Some(if step.generated().len() < self.min_new_tokens { self.eos_token_ids.clone() } else { Vec::new() })
    }
    fn process(&mut self, step: &Step, logits: &mut [f32]) -> Result<()> {
        if step.generated().len() < self.min_new_tokens {
            ban(logits, &self.eos_token_ids);
        }
        Ok(())
    }
}

/// `TemperatureLogitsWarper`: logits / temperature.
pub struct Temperature {
    pub temperature: f32,
}

impl LogitsProcessor for Temperature {
    fn process(&mut self, _step: &Step, logits: &mut [f32]) -> Result<()> {
        logits.iter_mut().for_each(|l| *l /= self.temperature);
        Ok(())
    }
}

/// `TopKLogitsWarper`: every logit below the k-th largest is -inf (ties with it are kept).
pub struct TopK {
    pub top_k: usize,
    pub min_tokens_to_keep: usize,
}

impl LogitsProcessor for TopK {
    fn process(&mut self, _step: &Step, logits: &mut [f32]) -> Result<()> {
        let k = self.top_k.max(self.min_tokens_to_keep).min(logits.len());
        if k == 0 || k == logits.len() {
            return Ok(());
        }
        let mut sorted = logits.to_vec();
        sorted.sort_unstable_by(|a, b| b.total_cmp(a));
        let kth = sorted[k - 1];
        logits.iter_mut().filter(|l| **l < kth).for_each(|l| *l = f32::NEG_INFINITY);
        Ok(())
    }
}

/// `TopPLogitsWarper`: keeps the most likely tokens whose probabilities sum to `top_p` (the
/// ones sorted ascending whose cumulative probability is at most 1 - top_p go), at least
/// `min_tokens_to_keep`.
pub struct TopP {
    pub top_p: f32,
    pub min_tokens_to_keep: usize,
}

impl LogitsProcessor for TopP {
    fn process(&mut self, _step: &Step, logits: &mut [f32]) -> Result<()> {
        if logits.is_empty() {
            return Ok(());
        }
        // Ascending, ties in index order (a stable sort, as torch's on CPU).
        let mut order: Vec<usize> = (0..logits.len()).collect();
        order.sort_by(|&a, &b| logits[a].total_cmp(&logits[b]));
        let probs = softmax(&order.iter().map(|&i| logits[i]).collect::<Vec<_>>());
        let keep_from = order.len().saturating_sub(self.min_tokens_to_keep);
        let mut cumulative = 0.0f32;
        for (rank, (&i, p)) in order.iter().zip(&probs).enumerate() {
            cumulative += p;
            if cumulative <= 1.0 - self.top_p && rank < keep_from {
                logits[i] = f32::NEG_INFINITY;
            }
        }
        Ok(())
    }
}

/// Softmax in f32, as torch computes it (max subtracted).
fn softmax(x: &[f32]) -> Vec<f32> {
    let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let e: Vec<f32> = x.iter().map(|&v| (v - max).exp()).collect();
    let sum: f32 = e.iter().sum();
    e.iter().map(|v| v / sum).collect()
}

/// A small seeded generator (SplitMix64), so sampled generations reproduce.
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The index of the largest logit (the first among equals).
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &v) in logits.iter().enumerate() {
        if v > logits[best] {
            best = i;
        }
    }
    best as u32
}

/// Draws a token from softmax(logits) (the processed logits: -inf ones are never drawn): the
/// candidates from the most likely down (ties by id), one uniform draw walked along them.
pub fn sample(logits: &[f32], rng: &mut SplitMix64) -> u32 {
    let mut candidates: Vec<(u32, f32)> =
        logits.iter().enumerate().filter(|(_, l)| **l > f32::NEG_INFINITY && !l.is_nan()).map(|(i, &l)| (i as u32, l)).collect();
    if candidates.is_empty() {
        // Everything banned: nothing is more likely than anything else.
        return argmax(logits);
    }
    candidates.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let max = candidates[0].1;
    let probs: Vec<f64> = candidates.iter().map(|&(_, l)| ((l - max) as f64).exp()).collect();
    let total: f64 = probs.iter().sum();
    let mut r = rng.next_f64();
    for (i, p) in probs.iter().enumerate() {
        let p = p / total;
        if r < p {
            return candidates[i].0;
        }
        r -= p;
    }
    candidates[candidates.len() - 1].0
}
