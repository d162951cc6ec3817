//! Whisper's timestamp rules, as transformers' `WhisperTimeStampLogitsProcessor` applies them
//! at each step: timestamps come in pairs (except right before the end), never decrease, the
//! first generated token is a timestamp (at most `max_initial_timestamp_index` steps of 20 ms),
//! and when the timestamps together are more likely than any single text token, a timestamp is
//! forced.

/// The rules for one generation; `begin_index` is the decoder prompt's length.
#[derive(Clone, Debug)]
pub struct TimestampRules {
    pub no_timestamps_token_id: u32,
    pub eos_token_id: u32,
    pub begin_index: usize,
    pub max_initial_timestamp_index: Option<u32>,
}

impl TimestampRules {
    pub fn timestamp_begin(&self) -> u32 {
        self.no_timestamps_token_id + 1
    }

    /// Rewrites one step's logits; `ids` is the prompt plus what was generated so far.
    pub fn apply(&self, ids: &[u32], logits: &mut [f32]) {
        let v = logits.len();
        let begin = (self.timestamp_begin() as usize).min(v);
        let eos = (self.eos_token_id as usize).min(v);
        let is_ts = |t: u32| t >= self.timestamp_begin();
        if let Some(x) = logits.get_mut(self.no_timestamps_token_id as usize) {
            *x = f32::NEG_INFINITY;
        }
        let seq = ids.get(self.begin_index..).unwrap_or(&[]);
        let n = seq.len();
        let last_was_ts = n >= 1 && is_ts(seq[n - 1]);
        let penultimate_was_ts = n < 2 || is_ts(seq[n - 2]);
        if last_was_ts {
            if penultimate_was_ts {
                // a pair just closed: text (or the end) must follow
                logits[begin..].fill(f32::NEG_INFINITY);
            } else {
                // an opened segment: its closing timestamp or the end
                logits[..eos].fill(f32::NEG_INFINITY);
            }
        }
        // timestamps never go back; after a pair, not even to the same time
        let last_ts = seq.iter().rev().find(|&&t| is_ts(t)).copied();
        let lowest_allowed = match last_ts {
            None => self.timestamp_begin(),
            Some(t) if last_was_ts && !penultimate_was_ts => t,
            Some(t) => t + 1,
        };
        let hi = (lowest_allowed as usize).min(v);
        if hi > begin {
            logits[begin..hi].fill(f32::NEG_INFINITY);
        }
        if ids.len() == self.begin_index {
            logits[..begin].fill(f32::NEG_INFINITY);
            if let Some(max) = self.max_initial_timestamp_index {
                let last_allowed = (self.timestamp_begin() + max) as usize;
                if last_allowed + 1 < v {
                    logits[last_allowed + 1..].fill(f32::NEG_INFINITY);
                }
            }
        }
        // the timestamps' total probability against the best text token's (log-softmax's shared
        // normalizer cancels in the comparison)
        let ts_lse = log_sum_exp(&logits[begin..]);
        let max_text = logits[..begin].iter().fold(f64::NEG_INFINITY, |m, &x| m.max(x as f64));
        if ts_lse > max_text {
            logits[..begin].fill(f32::NEG_INFINITY);
        }
    }
}

fn log_sum_exp(xs: &[f32]) -> f64 {
    let max = xs.iter().fold(f64::NEG_INFINITY, |m, &x| m.max(x as f64));
    if max == f64::NEG_INFINITY {
        return max;
    }
    max + xs.iter().map(|&x| (x as f64 - max).exp()).sum::<f64>().ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_match_transformers() {
        let fixture = super::super::tests_fixture();
        let p = &fixture["processor"];
        let cases = p["cases"].as_array().unwrap();
        for case in cases {
            let rules = TimestampRules {
                no_timestamps_token_id: p["no_timestamps"].as_u64().unwrap() as u32,
                eos_token_id: p["eos"].as_u64().unwrap() as u32,
                begin_index: case["begin_index"].as_u64().unwrap() as usize,
                max_initial_timestamp_index: case["max_initial_timestamp_index"].as_u64().map(|x| x as u32),
            };
            let ids: Vec<u32> = case["ids"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect();
            let mut logits: Vec<f32> = case["logits"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect();
            rules.apply(&ids, &mut logits);
            for (i, (got, want)) in logits.iter().zip(case["expected"].as_array().unwrap()).enumerate() {
                match want.as_f64() {
                    None => assert_eq!(*got, f32::NEG_INFINITY, "ids {ids:?} logit {i}"),
                    Some(w) => assert_eq!(*got, w as f32, "ids {ids:?} logit {i}"),
                }
            }
        }
        assert_eq!(cases.len(), 32);
    }
}
