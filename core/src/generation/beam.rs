//! Beam search, as transformers' `_beam_search` (generation/utils.py) runs it for one input:
//! the same candidates, the same finished hypotheses and scores, the same stopping rules, so its
//! token ids and `sequences_scores` come out equal.
//!
//! Each step, every running beam's next-token logits go through log-softmax, then the
//! processors (on the log-probabilities, as transformers applies them), and are added to the
//! beam's running score. The best `keep = max(2, 1 + eos ids) * num_beams` continuations over all
//! beams are kept: those that end (EOS, or the length limit) may become finished hypotheses
//! (only among the first `num_beams`), scored sum(log-probs) / new_tokens^length_penalty; the
//! best `num_beams` that do not end run on. The model side (`Beams`) keeps one cache per beam
//! and reorders them on the device after each step.

use super::{GenerationConfig, Interrupt, LogitsProcessor, Step, Streamer};
use crate::{Error, HostData, Result, Tensor};

/// The model side of beam search: one cache per beam (or a batched cache), stepped and
/// reordered on the device.
pub trait Beams {
    /// Appends `ids` to beam `beam`'s cache; returns lazy logits [1, V] of its last position.
    /// The first call is `step(0, prompt)`; beams 1.. exist after the first `reorder`.
    fn step(&mut self, beam: usize, ids: &[u32]) -> Result<Tensor>;
    /// After a step: beam i continues from the cache of old beam `sources[i]` (device copies, no
    /// host trip).
    fn reorder(&mut self, sources: &[usize]) -> Result<()>;
}

/// One returned sequence of beam search.
#[derive(Clone, Debug, PartialEq)]
pub struct Hypothesis {
    /// The generated ids only (an ending EOS included).
    pub token_ids: Vec<u32>,
    /// sum(log-probs of the generated tokens) / len(token_ids)^length_penalty: transformers'
    /// `sequences_scores`.
    pub score: f32,
}

/// transformers' score for "no such hypothesis" (-1e9, exact in f32): added to a candidate, it
/// ranks it below every real one.
const NONE: f32 = -1.0e9;

#[derive(Clone)]
struct Beam {
    /// Prompt and generated ids.
    ids: Vec<u32>,
    score: f32,
    /// A finished hypothesis (in the finished list); placeholders are not.
    done: bool,
}

/// Runs beam search over `model` from `prompt`; returns the `num_return_sequences` best
/// hypotheses, best first. `processors` see each beam's own ids; the stopping criteria are the
/// EOS ids and the length (`max_new_tokens` / `max_length`). The streamer, if any, gets the best
/// hypothesis at the end (beams change their past, so nothing is final before). When the
/// interrupt is set, the best finished and running hypotheses so far are returned.
pub async fn beam_search(
    model: &mut dyn Beams,
    prompt: &[u32],
    config: &GenerationConfig,
    processors: &mut [Box<dyn LogitsProcessor>],
    streamer: Option<&mut dyn Streamer>,
    interrupt: &Interrupt,
) -> Result<Vec<Hypothesis>> {
    config.validate()?;
    if prompt.is_empty() {
        return Err(Error::Input("generation needs a prompt of at least one token".into()));
    }
    if config.do_sample {
        return Err(Error::Unsupported("beam search with sampling (do_sample with num_beams > 1)".into()));
    }
    if !config.stop_strings.is_empty() {
        return Err(Error::Unsupported("stop strings with beam search (num_beams > 1)".into()));
    }
    let num_beams = config.num_beams;
    let prompt_len = prompt.len();
    let max_new = config.max_new_for(prompt_len);
    if max_new == 0 {
        return Err(Error::Input(format!(
            "the prompt has {prompt_len} tokens: max_length {} leaves no room for new ones",
            config.max_length.unwrap_or(0)
        )));
    }
    let max_length = prompt_len + max_new;
    let mut eos = config.eos_token_ids.clone();
    eos.sort_unstable();
    eos.dedup();
    // Enough candidates that `num_beams` of them go on even if the best ones all end.
    let keep = 2.max(1 + eos.len()) * num_beams;
    let length_penalty = config.length_penalty as f64;
    // transformers divides an f32 tensor by a Python float: the divisor is rounded to f32.
    let penalty_for = |new_tokens: usize| (new_tokens as f64).powf(length_penalty) as f32;
    let early = config.early_stopping;

    // Beam 0 starts at 0, the others at NONE, so that the first step's candidates all continue
    // beam 0 (the beams are identical until then).
    let mut running: Vec<Beam> =
        (0..num_beams).map(|b| Beam { ids: prompt.to_vec(), score: if b == 0 { 0.0 } else { NONE }, done: false }).collect();
    let mut finished: Vec<Beam> = vec![Beam { ids: prompt.to_vec(), score: NONE, done: false }; num_beams];
    let mut improvable = true;
    let mut cur_len = prompt_len;
    let mut first = true;
    loop {
        #[cfg(target_arch = "wasm32")]
        super::time::yield_to_event_loop().await;
        if interrupt.is_set() {
            finished = interrupted(finished, &running, prompt_len, &penalty_for);
            break;
        }
        let rows = if first {
            // One forward pass: every beam holds the prompt alone.
            let row = read_row(&model.step(0, prompt)?).await?;
            vec![row; num_beams]
        } else {
            let logits = (0..num_beams).map(|b| model.step(b, &running[b].ids[cur_len - 1..])).collect::<Result<Vec<_>>>()?;
            let refs: Vec<&Tensor> = logits.iter().collect();
            let mut rows = Vec::with_capacity(num_beams);
            for (data, t) in Tensor::read_all(&refs).await?.into_iter().zip(&logits) {
                rows.push(row_of(data, t)?);
            }
            rows
        };
        let vocab = rows[0].len();
        if vocab == 0 || rows.iter().any(|r| r.len() != vocab) {
            return Err(Error::Input("beam search: every beam's step must return logits [1, V] of one V".into()));
        }
        let mut scores = Vec::with_capacity(num_beams * vocab);
        for (beam, row) in running.iter().zip(&rows) {
            let mut log_probs = log_softmax(row);
            let at = Step { ids: &beam.ids, prompt_len };
            for p in processors.iter_mut() {
                p.process(&at, &mut log_probs)?;
            }
            scores.extend(log_probs.iter().map(|&l| l + beam.score));
        }

        // The best `keep` continuations; `ends`: the stopping criteria (EOS, length) hit.
        struct Candidate {
            beam: usize,
            token: u32,
            score: f32,
            ends: bool,
        }
        let candidates: Vec<Candidate> = top_k(&scores, keep)
            .into_iter()
            .map(|i| {
                let token = (i % vocab) as u32;
                Candidate { beam: i / vocab, token, score: scores[i], ends: eos.contains(&token) || cur_len + 1 >= max_length }
            })
            .collect();
        let extend = |c: &Candidate| {
            let mut ids = running[c.beam].ids.clone();
            ids.push(c.token);
            ids
        };

        // The best `num_beams` that do not end run on.
        let run_scores: Vec<f32> = candidates.iter().map(|c| if c.ends { c.score + NONE } else { c.score }).collect();
        let next: Vec<usize> = top_k(&run_scores, num_beams);
        let sources: Vec<usize> = next.iter().map(|&k| if first { 0 } else { candidates[k].beam }).collect();
        let next_running: Vec<Beam> =
            next.iter().map(|&k| Beam { ids: extend(&candidates[k]), score: run_scores[k], done: false }).collect();

        // Ending candidates among the first `num_beams` join the finished hypotheses, if they
        // rank among the best `num_beams` of them.
        let full = early == super::EarlyStopping::WhenFull && finished.iter().all(|f| f.done);
        let penalty = penalty_for(cur_len + 1 - prompt_len);
        let mut merged = finished;
        for (k, c) in candidates.iter().enumerate() {
            let just_finished = c.ends && k < num_beams;
            let mut score = c.score / penalty;
            for excluded in [full, !improvable, !just_finished] {
                if excluded {
                    score += NONE;
                }
            }
            merged.push(Beam { ids: extend(c), score, done: just_finished });
        }
        let merged_scores: Vec<f32> = merged.iter().map(|b| b.score).collect();
        finished = top_k(&merged_scores, num_beams).into_iter().map(|i| merged[i].clone()).collect();

        running = next_running;
        cur_len += 1;
        // Can a running beam still beat the worst finished hypothesis? (`_check_early_stop_heuristic`)
        let all_done = finished.iter().all(|f| f.done);
        let hypothetical = if early == super::EarlyStopping::Never && length_penalty > 0.0 { max_length } else { cur_len };
        let best_possible = running[0].score / penalty_for(hypothetical - prompt_len);
        let worst_finished = finished.iter().map(|f| f.score).fold(f32::INFINITY, f32::min);
        improvable &= finished.iter().any(|f| best_possible > if f.done { worst_finished } else { NONE });
        let stop = !improvable || (all_done && early == super::EarlyStopping::WhenFull) || candidates.iter().all(|c| c.ends);
        if stop {
            break;
        }
        model.reorder(&sources)?;
        first = false;
    }
    let best: Vec<Hypothesis> = finished
        .into_iter()
        .take(config.num_return_sequences)
        .map(|f| Hypothesis { token_ids: f.ids[prompt_len..].to_vec(), score: f.score })
        .collect();
    if let Some(s) = streamer {
        if let Some(h) = best.first() {
            s.put(&h.token_ids)?;
        }
        s.end()?;
    }
    Ok(best)
}

/// After an interrupt: the finished hypotheses so far, and the running beams scored as if they
/// had ended, best first.
fn interrupted(finished: Vec<Beam>, running: &[Beam], prompt_len: usize, penalty_for: &dyn Fn(usize) -> f32) -> Vec<Beam> {
    let mut all: Vec<Beam> = finished.into_iter().filter(|f| f.done).collect();
    all.extend(running.iter().filter(|b| b.ids.len() > prompt_len && b.score > NONE).map(|b| Beam {
        ids: b.ids.clone(),
        score: b.score / penalty_for(b.ids.len() - prompt_len),
        done: true,
    }));
    all.sort_by(|a, b| b.score.total_cmp(&a.score));
    if all.is_empty() {
        // Stopped before the first step: the prompt alone, so that every input still has a
        // result (an empty text), as greedy decoding gives.
        all.push(Beam { ids: running[0].ids[..prompt_len].to_vec(), score: 0.0, done: true });
    }
    all
}

async fn read_row(logits: &Tensor) -> Result<Vec<f32>> {
    let data = Tensor::read_all(&[logits]).await?.pop().ok_or_else(|| Error::Input("beam search: no logits".into()))?;
    row_of(data, logits)
}

fn row_of(data: HostData, logits: &Tensor) -> Result<Vec<f32>> {
    let vocab = *logits.dims().last().unwrap_or(&0);
    match data {
        HostData::F32(row) if logits.numel() == vocab => Ok(row),
        _ => Err(Error::Input(format!("beam search: the step must return f32 logits [1, V], not {:?}", logits.dims()))),
    }
}

/// log(softmax(x)) in f32 as torch computes it: x - max - log(sum(exp(x - max))).
pub fn log_softmax(x: &[f32]) -> Vec<f32> {
    let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if max == f32::NEG_INFINITY {
        return x.to_vec();
    }
    let sum: f64 = x.iter().map(|&v| ((v - max) as f64).exp()).sum();
    let log_sum = sum.ln() as f32;
    x.iter().map(|&v| v - max - log_sum).collect()
}

/// The indices of the `k` largest values, largest first (ties: the lower index first).
fn top_k(values: &[f32], k: usize) -> Vec<usize> {
    let order = |a: &usize, b: &usize| values[*b].total_cmp(&values[*a]).then(a.cmp(b));
    let mut idx: Vec<usize> = (0..values.len()).collect();
    let k = k.min(idx.len());
    if k == 0 {
        return Vec::new();
    }
    if k < idx.len() {
        idx.select_nth_unstable_by(k - 1, order);
        idx.truncate(k);
    }
    idx.sort_unstable_by(order);
    idx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_is_sorted_and_stable_on_ties() {
        assert_eq!(top_k(&[1.0, 3.0, 3.0, -1.0, 2.0], 3), vec![1, 2, 4]);
        assert_eq!(top_k(&[1.0, 2.0], 5), vec![1, 0]);
    }

    #[test]
    fn log_softmax_sums_to_one() {
        let l = log_softmax(&[1.0, 2.0, 3.0, f32::NEG_INFINITY]);
        let total: f32 = l.iter().map(|v| v.exp()).sum();
        assert!((total - 1.0).abs() < 1e-6);
        assert_eq!(l[3], f32::NEG_INFINITY);
    }
}
