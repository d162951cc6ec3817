//! question-answering: the span of a context that answers a question, as Python transformers'
//! `QuestionAnsweringPipeline` (4.57) finds it. A long context is cut into overlapping windows
//! (`max_seq_len` tokens, `doc_stride` shared); each window's start and end logits give span
//! scores (`select_starts_ends`, `decode_spans`); spans become character ranges of the context,
//! by whole words by default; equal answers from several spans or windows add their scores.
//!
//! The functions below follow Python's, name for name, so the two read side by side.

use serde_json::Value;

use super::text_encoder::TextEncoderTask;
use super::{Input, InputKind, LoadOptions, LocalFuture, OneOrMany, Output, Pipeline, TaskInfo};
use crate::files::ModelFiles;
use crate::models::HeadKind;
use crate::tokenizer::Encoded;
use crate::{Device, Error, Result};

pub static TASK: TaskInfo = TaskInfo {
    name: "question-answering",
    aliases: &[],
    default_model: "Xenova/distilbert-base-cased-distilled-squad",
    input: InputKind::QuestionContext,
    required_files: &["config.json", "tokenizer.json"],
    optional_files: &["tokenizer_config.json"],
    load: |files, device, options| Ok(Box::new(QuestionAnswering::load(files, device, options)?)),
};

const INPUT_KINDS: &str = "{question, context} or an array of those";

/// One question. Both fields are optional here so that a missing one gets its own message.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Example {
    question: Option<String>,
    context: Option<String>,
}

#[derive(Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Options {
    /// How many answers (default 1: one object; more: an array, unless only one answer exists).
    top_k: Option<usize>,
    /// The longest answer, in tokens (default 15).
    max_answer_len: Option<usize>,
    /// Tokens consecutive windows share (default min(max_seq_len / 2, 128)).
    doc_stride: Option<usize>,
    /// Tokens per window, question and special tokens included (default
    /// min(model_max_length, 384)).
    max_seq_len: Option<usize>,
    /// Accepted for Python's sake, which reads it only with slow (Python) tokenizers; fast ones,
    /// which tokenizer.json is, never truncate the question.
    #[allow(dead_code)]
    max_question_len: Option<usize>,
    /// Whether "no answer" (the first token's score) competes as {"answer": "", "start": 0, "end": 0}.
    handle_impossible_answer: Option<bool>,
    /// Widen spans to whole words (default true).
    align_to_words: Option<bool>,
}

/// Python's postprocess parameters, defaults filled in.
struct Post {
    top_k: usize,
    max_answer_len: usize,
    handle_impossible_answer: bool,
    align_to_words: bool,
}

/// A window of one example, as Python's preprocess yields it.
struct Feature {
    encoding: Encoded,
    /// true for tokens that cannot be in an answer (the question, special tokens; not CLS).
    p_mask: Vec<bool>,
}

/// One answer, as Python's postprocess builds its dicts.
struct Answer {
    score: f64,
    start: usize,
    end: usize,
    answer: String,
}

pub struct QuestionAnswering {
    base: TextEncoderTask,
    /// `tokenizer.cls_token_id`: kept out of `p_mask`, since some models score "no answer" there.
    cls_id: Option<u32>,
    /// `tokenizer.model_max_length` (None: unset, Python's huge sentinel).
    model_max_length: Option<usize>,
}

impl QuestionAnswering {
    pub fn load(files: &dyn ModelFiles, device: &Device, options: &LoadOptions) -> Result<QuestionAnswering> {
        let base = TextEncoderTask::load(files, device, options, Some(HeadKind::QuestionAnswering))?;
        // Python puts the question first unless the tokenizer pads on the left; then it swaps the
        // texts and truncates the first, which `encode_windows` does not do.
        if base.tokenizer_config["padding_side"].as_str() == Some("left") {
            return Err(Error::Unsupported("question-answering with a tokenizer that pads on the left".into()));
        }
        let cls_id = base.special_token("cls_token").and_then(|t| base.tokenizer.token_to_id(&t));
        let model_max_length = base.tokenizer_config["model_max_length"].as_u64().filter(|&n| n < 1_000_000).map(|n| n as usize);
        Ok(QuestionAnswering { base, cls_id, model_max_length })
    }

    /// Python's `preprocess` for a fast tokenizer: the windows of one example and their p_mask.
    fn preprocess(&self, question: &str, context: &str, doc_stride: Option<usize>, max_seq_len: Option<usize>) -> Result<Vec<Feature>> {
        let max_seq_len = match max_seq_len {
            Some(n) => n,
            // Capped by the model's positions too, where Python would fail inside the model.
            None => self.model_max_length.unwrap_or(usize::MAX).min(384).min(self.base.model.encoder.max_positions()),
        };
        let doc_stride = doc_stride.unwrap_or((max_seq_len / 2).min(128));
        if doc_stride > max_seq_len {
            return Err(Error::Input(format!(
                "question-answering: `doc_stride` ({doc_stride}) is larger than `max_seq_len` ({max_seq_len})"
            )));
        }
        let windows = self.base.tokenizer.encode_windows(question, context, max_seq_len, doc_stride)?;
        Ok(windows
            .into_iter()
            .map(|encoding| {
                // 1 (true) everywhere but the context, then CLS unmasked wherever it is.
                let p_mask =
                    encoding.sequence_ids.iter().zip(&encoding.ids).map(|(&seq, &id)| seq != Some(1) && Some(id) != self.cls_id).collect();
                Feature { encoding, p_mask }
            })
            .collect())
    }

    /// Python's `postprocess` for one example: every window's spans as answers, equal answers
    /// (ignoring case) merged, the best `top_k`.
    fn postprocess(&self, context: &str, features: &[Feature], logits: &[Vec<f32>], p: &Post) -> Value {
        let context: Vec<char> = context.chars().collect();
        let mut min_null_score = 1_000_000.0; // large and positive
        let mut answers: Vec<Answer> = Vec::new();
        // Some candidates may be deleted (merged) when aligned to words, so more are drawn.
        let pre_topk = if p.align_to_words { p.top_k.saturating_mul(2).saturating_add(10) } else { p.top_k };
        for (feature, logits) in features.iter().zip(logits) {
            // qa_outputs is Linear(H, 2): token t's row holds [start_t, end_t].
            let start: Vec<f32> = logits.iter().step_by(2).copied().collect();
            let end: Vec<f32> = logits.iter().skip(1).step_by(2).copied().collect();
            let (spans, null_score) =
                select_starts_ends(&start, &end, &feature.p_mask, min_null_score, pre_topk, p.handle_impossible_answer, p.max_answer_len);
            min_null_score = null_score;
            for (s, e, score) in spans {
                let (start_index, end_index) = get_indices(&feature.encoding, s, e, p.align_to_words);
                let target = slice(&context, start_index, end_index);
                match answers.iter_mut().find(|a| a.answer.to_lowercase() == target.to_lowercase()) {
                    Some(answer) => answer.score += score as f64,
                    None => answers.push(Answer { score: score as f64, start: start_index, end: end_index, answer: target }),
                }
            }
        }
        if p.handle_impossible_answer {
            answers.push(Answer { score: min_null_score, start: 0, end: 0, answer: String::new() });
        }
        // Stable, as Python's sorted(reverse=True) is: equal scores keep their order.
        answers.sort_by(|a, b| b.score.total_cmp(&a.score));
        answers.truncate(p.top_k);
        let json = |a: &Answer| serde_json::json!({ "score": a.score, "start": a.start, "end": a.end, "answer": a.answer });
        // Python returns a lone answer as itself, whatever top_k asked for.
        match answers.as_slice() {
            [one] => json(one),
            many => Value::Array(many.iter().map(json).collect()),
        }
    }
}

/// Python's `select_starts_ends`: the window's logits normalized over the tokens that may be
/// answers, then its best `top_k` spans; `min_null_score` carries the lowest "no answer" score
/// (first token as both start and end) over the windows so far.
fn select_starts_ends(
    start: &[f32],
    end: &[f32],
    p_mask: &[bool],
    min_null_score: f64,
    top_k: usize,
    handle_impossible_answer: bool,
    max_answer_len: usize,
) -> (Vec<(usize, usize, f32)>, f64) {
    // Python names it `undesired_tokens` but holds 1 for the tokens that may be answers (the
    // attention mask is all ones: windows are never padded here).
    if start.is_empty() {
        return (Vec::new(), min_null_score);
    }
    let desired: Vec<bool> = p_mask.iter().map(|&masked| !masked).collect();
    // Non-context tokens cannot contribute to the softmax. In float32, as numpy computes it.
    let masked = |logits: &[f32]| -> Vec<f32> { logits.iter().zip(&desired).map(|(&x, &ok)| if ok { x } else { -10000.0 }).collect() };
    let mut start = softmax_f32(&masked(start));
    let mut end = softmax_f32(&masked(end));
    let mut min_null_score = min_null_score;
    if handle_impossible_answer {
        min_null_score = min_null_score.min((start[0] * end[0]) as f64);
    }
    // Mask CLS
    start[0] = 0.0;
    end[0] = 0.0;
    (decode_spans(&start, &end, top_k, max_answer_len, &desired), min_null_score)
}

/// numpy's `exp(x - x.max()); / sum()` on a float32 row.
fn softmax_f32(x: &[f32]) -> Vec<f32> {
    let max = x.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    let exps: Vec<f32> = x.iter().map(|&v| (v - max).exp()).collect();
    let sum: f32 = exps.iter().sum();
    exps.into_iter().map(|e| e / sum).collect()
}

/// Python's `decode_spans`: every (start, end) pair scored start[s] * end[e], zero unless
/// s <= e < s + max_answer_len, the best `top_k` of the flattened scores, then those whose
/// tokens may be answers.
fn decode_spans(start: &[f32], end: &[f32], top_k: usize, max_answer_len: usize, desired: &[bool]) -> Vec<(usize, usize, f32)> {
    let n = start.len();
    // np.tril(np.triu(outer), max_answer_len - 1), flattened row by row.
    let score = |flat: usize| {
        let (s, e) = (flat / n, flat % n);
        if e >= s && e - s < max_answer_len { start[s] * end[e] } else { 0.0 }
    };
    // The best first; equal scores by flat index. numpy's argmax (top_k 1) does the same; its
    // argpartition and argsort leave ties in no set order, and only zero scores tie in practice.
    let by_rank = |a: &usize, b: &usize| score(*b).total_cmp(&score(*a)).then(a.cmp(b));
    let mut order: Vec<usize> = (0..n * n).collect();
    let k = top_k.min(order.len());
    if k == 0 {
        return Vec::new();
    }
    if k < order.len() {
        order.select_nth_unstable_by(k - 1, by_rank);
        order.truncate(k);
    }
    order.sort_by(by_rank);
    // np.isin(starts, undesired_tokens.nonzero()): the mask is [1, n], so nonzero() also lists
    // its row index 0, and token 0 always passes (when any token does).
    let any = desired.contains(&true);
    let allowed = |t: usize| desired[t] || (t == 0 && any);
    order.into_iter().map(|flat| (flat / n, flat % n, score(flat))).filter(|&(s, e, _)| allowed(s) && allowed(e)).collect()
}

/// Python's `get_indices`: the span of tokens s..=e as characters of the context, widened to
/// the words of its first and last tokens; by the tokens' own offsets when not aligning to
/// words, or when a token has no word (Python's `except` around `word_to_chars`).
fn get_indices(enc: &Encoded, s: usize, e: usize, align_to_words: bool) -> (usize, usize) {
    if align_to_words
        && let (Some(start_word), Some(end_word)) = (enc.word_ids[s], enc.word_ids[e])
        && let (Some(start_chars), Some(end_chars)) = (word_to_chars(enc, start_word, 1), word_to_chars(enc, end_word, 1))
    {
        return (start_chars.0, end_chars.1);
    }
    (enc.offsets[s].0, enc.offsets[e].1)
}

/// tokenizers' `Encoding::word_to_chars`: the characters of the word's tokens within this
/// window's sequence `sequence` (a word cut by the window keeps only its tokens inside).
fn word_to_chars(enc: &Encoded, word: u32, sequence: usize) -> Option<(usize, usize)> {
    // `sequence_range`: the sequence's tokens, or all of them when it has none.
    let first = enc.sequence_ids.iter().position(|&s| s == Some(sequence));
    let range = match first {
        Some(first) => first..enc.sequence_ids.iter().rposition(|&s| s == Some(sequence)).map_or(first, |l| l + 1),
        None => 0..enc.len(),
    };
    let mut tokens: Option<(usize, usize)> = None;
    // Word ids rise along a sequence; tokenizers stops at the first later word.
    for (i, w) in enc.word_ids[range.clone()].iter().enumerate().take_while(|(_, w)| **w <= Some(word)) {
        if *w == Some(word) {
            tokens = Some((tokens.map_or(i, |t| t.0), i + 1));
        }
    }
    let (first, end) = tokens?;
    Some((enc.offsets[range.start + first].0, enc.offsets[range.start + end - 1].1))
}

/// `text[start:end]` of a Python string: code points, clamped, empty when start >= end.
fn slice(text: &[char], start: usize, end: usize) -> String {
    let end = end.min(text.len());
    if start >= end { String::new() } else { text[start..end].iter().collect() }
}

impl Pipeline for QuestionAnswering {
    fn auto_model(&self) -> Result<crate::models::auto::AutoModel> {
        self.base.auto_model()
    }
    fn task(&self) -> &'static TaskInfo {
        &TASK
    }

    fn device(&self) -> &Device {
        &self.base.device
    }

    fn run<'a>(&'a self, input: Input<'a>, options: &'a Value, _: &'a mut dyn FnMut(super::Event<'_>)) -> LocalFuture<'a, Result<Output>> {
        let input = input.value;
        Box::pin(async move {
            let inputs: OneOrMany<Example> = TASK.input(input, INPUT_KINDS)?;
            let options: Options = TASK.options(options)?;
            let post = Post {
                top_k: options.top_k.unwrap_or(1),
                max_answer_len: options.max_answer_len.unwrap_or(15),
                handle_impossible_answer: options.handle_impossible_answer.unwrap_or(false),
                align_to_words: options.align_to_words.unwrap_or(true),
            };
            if post.top_k < 1 {
                return Err(Error::Input(format!("question-answering: top_k should be >= 1 (got {})", post.top_k)));
            }
            if post.max_answer_len < 1 {
                return Err(Error::Input(format!("question-answering: max_answer_len should be >= 1 (got {})", post.max_answer_len)));
            }
            let mut examples = Vec::new();
            for example in inputs.items() {
                // Python's checks, in its order: both keys present, then neither empty.
                let bad = |what: &str| Error::Input(format!("question-answering takes {INPUT_KINDS}; this one {what}"));
                let (question, context) = match (&example.question, &example.context) {
                    (None, _) => return Err(bad("has no `question`")),
                    (_, None) => return Err(bad("has no `context`")),
                    (Some(q), _) if q.is_empty() => return Err(bad("has an empty `question`")),
                    (_, Some(c)) if c.is_empty() => return Err(bad("has an empty `context`")),
                    (Some(q), Some(c)) => (q, c),
                };
                examples.push((context, self.preprocess(question, context, options.doc_stride, options.max_seq_len)?));
            }
            // Every window of every example in one run of the model.
            let encodings: Vec<Encoded> = examples.iter().flat_map(|(_, features)| features.iter().map(|f| f.encoding.clone())).collect();
            let logits = self.base.head_outputs(&encodings).await?;
            let mut logits = logits.as_slice();
            let mut results = Vec::with_capacity(examples.len());
            for (context, features) in &examples {
                let (these, rest) = logits.split_at(features.len());
                results.push(self.postprocess(context, features, these, &post));
                logits = rest;
            }
            // An array of examples gives an array, even of one, as transformers.js returns it
            // (Python would unwrap a list of one).
            Ok(Output::Json(if inputs.is_many() { Value::Array(results) } else { results.remove(0) }))
        })
    }
}
