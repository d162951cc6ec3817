//! Choosing the next token from logits the way transformers' `generate` does: repetition
//! penalty, then temperature, top-k and top-p, then a draw from a seeded generator.

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

#[derive(Clone, Debug, PartialEq)]
pub struct Sampling {
    /// 1.0 is none; below 1 sharpens, above flattens.
    pub temperature: f32,
    /// 0 keeps every token.
    pub top_k: usize,
    /// 1.0 keeps every token.
    pub top_p: f32,
}

/// transformers' repetition penalty: logits of tokens already seen are divided by `penalty`
/// when positive, multiplied when negative.
pub fn apply_repetition_penalty(logits: &mut [f32], seen: &[u32], penalty: f32) {
    if penalty == 1.0 {
        return;
    }
    let mut done = std::collections::HashSet::new();
    for &t in seen {
        if let Some(l) = logits.get_mut(t as usize) {
            if done.insert(t) {
                *l = if *l < 0.0 { *l * penalty } else { *l / penalty };
            }
        }
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

/// Draws a token: temperature, then top-k, then top-p (smallest set whose probability reaches
/// p, always keeping the most likely token), then a draw from what is left.
pub fn sample(logits: &[f32], s: &Sampling, rng: &mut SplitMix64) -> u32 {
    let temperature = if s.temperature > 0.0 { s.temperature } else { 1.0 };
    let mut candidates: Vec<(u32, f32)> = logits.iter().enumerate().map(|(i, &l)| (i as u32, l / temperature)).collect();
    candidates.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    if s.top_k > 0 {
        candidates.truncate(s.top_k.max(1));
    }
    let max = candidates[0].1;
    let mut probs: Vec<f64> = candidates.iter().map(|&(_, l)| ((l - max) as f64).exp()).collect();
    let total: f64 = probs.iter().sum();
    probs.iter_mut().for_each(|p| *p /= total);
    if s.top_p < 1.0 {
        let mut cumulative = 0.0;
        let mut keep = probs.len();
        for (i, p) in probs.iter().enumerate() {
            cumulative += p;
            if cumulative >= s.top_p as f64 {
                keep = i + 1;
                break;
            }
        }
        probs.truncate(keep.max(1));
        let total: f64 = probs.iter().sum();
        probs.iter_mut().for_each(|p| *p /= total);
    }
    let mut r = rng.next_f64();
    for (i, p) in probs.iter().enumerate() {
        if r < *p {
            return candidates[i].0;
        }
        r -= p;
    }
    candidates[probs.len() - 1].0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_one_is_greedy_and_seeds_reproduce() {
        let logits = [0.1, 3.0, 2.9, -1.0];
        let mut rng = SplitMix64::new(7);
        let greedy = Sampling { temperature: 0.7, top_k: 1, top_p: 1.0 };
        assert!((0..20).all(|_| sample(&logits, &greedy, &mut rng) == 1));
        let wide = Sampling { temperature: 1.0, top_k: 0, top_p: 1.0 };
        let a: Vec<u32> = {
            let mut r = SplitMix64::new(42);
            (0..50).map(|_| sample(&logits, &wide, &mut r)).collect()
        };
        let b: Vec<u32> = {
            let mut r = SplitMix64::new(42);
            (0..50).map(|_| sample(&logits, &wide, &mut r)).collect()
        };
        assert_eq!(a, b);
        assert!(a.contains(&1) && a.contains(&2));
        // top_p 0.5 keeps only the most likely token here (it alone is ~50%).
        let nucleus = Sampling { temperature: 1.0, top_k: 0, top_p: 0.4 };
        assert!((0..20).all(|_| sample(&logits, &nucleus, &mut rng) == 1));
    }

    #[test]
    fn repetition_penalty_follows_transformers() {
        let mut logits = [2.0, -2.0, 1.0];
        apply_repetition_penalty(&mut logits, &[0, 1, 0], 2.0);
        assert_eq!(logits, [1.0, -4.0, 1.0]);
    }
}
