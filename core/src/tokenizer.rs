//! Text to token ids with the `tokenizers` crate, truncated the way the Python reference does it.
//!
//! Hugging Face's tokenizer.json files often carry padding and truncation settings of their
//! own (all-MiniLM-L6-v2's pads and truncates to 128); the Python libraries override them, and so
//! do we: no padding, and truncation to the model's maximum length with the special tokens kept
//! (sentence-transformers keeps the final [SEP]).

use std::sync::{Mutex, MutexGuard};

use crate::files::ModelFiles;
use crate::{Error, Result};

pub struct Tokenizer {
    /// Behind a lock because a few encodes (question answering's overflowing windows) set their
    /// own truncation for one call and put the default back.
    inner: Mutex<tokenizers::Tokenizer>,
    /// The truncation length; usize::MAX when texts are never truncated (generation prompts).
    max_len: usize,
}

/// One encoded sequence (a text, or a pair of texts) with everything the tasks' post-processing
/// reads, as Python's fast tokenizers return it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Encoded {
    pub ids: Vec<u32>,
    pub type_ids: Vec<u32>,
    /// Each token's span in its own text, in characters (Unicode scalar values, as Python
    /// indexes strings); (0, 0) for special tokens.
    pub offsets: Vec<(usize, usize)>,
    /// Tokens the post-processor added ([CLS], [SEP], <s>, ...).
    pub special: Vec<bool>,
    /// Which text a token came from: Some(0) the first, Some(1) the pair's second, None special.
    pub sequence_ids: Vec<Option<usize>>,
    /// The word a token belongs to, within its text (None for special tokens).
    pub word_ids: Vec<Option<u32>>,
}

impl Encoded {
    fn from_encoding(e: &tokenizers::Encoding) -> Encoded {
        Encoded {
            ids: e.get_ids().to_vec(),
            type_ids: e.get_type_ids().to_vec(),
            offsets: e.get_offsets().to_vec(),
            special: e.get_special_tokens_mask().iter().map(|&m| m != 0).collect(),
            sequence_ids: e.get_sequence_ids(),
            word_ids: e.get_word_ids().to_vec(),
        }
    }

    /// The tokens at `positions`, in that order.
    fn select(&self, positions: &[usize]) -> Encoded {
        Encoded {
            ids: positions.iter().map(|&i| self.ids[i]).collect(),
            type_ids: positions.iter().map(|&i| self.type_ids[i]).collect(),
            offsets: positions.iter().map(|&i| self.offsets[i]).collect(),
            special: positions.iter().map(|&i| self.special[i]).collect(),
            sequence_ids: positions.iter().map(|&i| self.sequence_ids[i]).collect(),
            word_ids: positions.iter().map(|&i| self.word_ids[i]).collect(),
        }
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

/// Token ids of a batch of texts, one sequence each, unpadded.
#[derive(Clone, Debug, PartialEq)]
pub struct Batch {
    pub ids: Vec<Vec<u32>>,
    pub type_ids: Vec<Vec<u32>>,
}

impl Batch {
    /// The batch of these encodings' ids and token types.
    pub fn of(encodings: &[Encoded]) -> Batch {
        Batch { ids: encodings.iter().map(|e| e.ids.clone()).collect(), type_ids: encodings.iter().map(|e| e.type_ids.clone()).collect() }
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
    pub fn max_len(&self) -> usize {
        self.ids.iter().map(Vec::len).max().unwrap_or(0)
    }
    pub fn total_tokens(&self) -> usize {
        self.ids.iter().map(Vec::len).sum()
    }

    /// The batch padded to its longest sequence: ids [B * S] (padded with `pad_id`) and the
    /// attention mask [B * S] (1 for real tokens), as transformers builds them.
    pub fn padded(&self, pad_id: u32) -> (Vec<u32>, Vec<u32>, usize) {
        let s = self.max_len();
        let mut ids = Vec::with_capacity(self.len() * s);
        let mut mask = Vec::with_capacity(self.len() * s);
        for seq in &self.ids {
            ids.extend_from_slice(seq);
            ids.extend(std::iter::repeat_n(pad_id, s - seq.len()));
            mask.extend(std::iter::repeat_n(1, seq.len()));
            mask.extend(std::iter::repeat_n(0, s - seq.len()));
        }
        (ids, mask, s)
    }

    /// Where each sequence starts in the packed (unpadded) token list, plus the total at the end.
    pub fn offsets(&self) -> Vec<u32> {
        let mut offsets = vec![0u32];
        for seq in &self.ids {
            offsets.push(offsets.last().copied().unwrap_or(0) + seq.len() as u32);
        }
        offsets
    }
}

/// A tokenizer.json parsed by `tokenizers`, whose decoder deserialization panics ("Helper") on
/// a syntax error, a bad string escape (a lone surrogate) or bytes that are not UTF-8 inside the
/// `decoder` value (found by fuzzing): the bytes are checked as UTF-8 (serde_json does not check
/// the strings it skips) and the JSON is parsed whole first (skipping it would not check the
/// escapes).
fn parse_json(json: &[u8]) -> Result<tokenizers::Tokenizer> {
    std::str::from_utf8(json).map_err(|e| Error::Tokenizer(format!("tokenizer.json is not UTF-8 text: {e}")))?;
    /// Only the post-processor is built as a `Value` (so that its strings' escapes are checked
    /// before `tokenizers` reads them): skipping the rest (the vocabulary, the merges) is most
    /// of a tokenizer's load time saved.
    #[derive(serde::Deserialize)]
    struct PostProcessorOnly {
        #[serde(default, rename = "post_processor")]
        _post_processor: serde_json::Value,
    }
    serde_json::from_slice::<PostProcessorOnly>(json).map_err(|e| {
        let what = if e.is_syntax() || e.is_eof() { "JSON" } else { "a JSON object" };
        Error::Tokenizer(format!("tokenizer.json is not {what}: {e}"))
    })?;
    let tokenizer = tokenizers::Tokenizer::from_bytes(json).map_err(|e| Error::Tokenizer(format!("tokenizer.json: {e}")))?;
    // Checked in the one shape `tokenizers` writes it back in: serde also reads a struct written
    // as an array, a piece as a "[CLS]:0" string, a tagged processor as ["TemplateProcessing", ...]
    // (fuzzing found the array form getting past a check of the file's own JSON).
    if let Some(processor) = tokenizer.get_post_processor() {
        let canonical = serde_json::to_value(processor)
            .map_err(|e| Error::Tokenizer(format!("tokenizer.json: the post-processor cannot be read back: {e}")))?;
        check_post_processor(&canonical)?;
    }
    Ok(tokenizer)
}

/// `tokenizers` accepts a TemplateProcessing whose template names a special token missing from
/// its `special_tokens` (or one whose ids and tokens differ in number), then panics when it
/// encodes (found by fuzzing): refused here, in nested `Sequence` processors too.
fn check_post_processor(processor: &serde_json::Value) -> Result<()> {
    match processor["type"].as_str() {
        Some("Sequence") => {
            for p in processor["processors"].as_array().into_iter().flatten() {
                check_post_processor(p)?;
            }
        }
        Some("TemplateProcessing") => {
            let specials = processor["special_tokens"].as_object();
            for (name, token) in specials.into_iter().flatten() {
                let (ids, tokens) = (token["ids"].as_array().map(Vec::len), token["tokens"].as_array().map(Vec::len));
                if ids != tokens {
                    return Err(Error::Tokenizer(format!(
                        "tokenizer.json: the post-processor's special token `{name}` has {} ids for {} tokens",
                        ids.unwrap_or(0),
                        tokens.unwrap_or(0)
                    )));
                }
            }
            for piece in ["single", "pair"].iter().flat_map(|k| processor[*k].as_array().into_iter().flatten()) {
                if let Some(id) = piece["SpecialToken"]["id"].as_str()
                    && !specials.is_some_and(|s| s.contains_key(id))
                {
                    return Err(Error::Tokenizer(format!(
                        "tokenizer.json: the post-processor's template uses the special token `{id}`, which its special_tokens do not define"
                    )));
                }
            }
        }
        _ => {}
    }
    Ok(())
}

/// A tokenizer.json parsed and checked, not yet set up for a task: what a Hub load parses while
/// the weights still stream (`ModelFiles::parsed_tokenizer`), so that a task built after them
/// does not parse it then.
#[derive(Clone)]
pub struct ParsedTokenizer(tokenizers::Tokenizer);

impl ParsedTokenizer {
    pub fn parse(json: &[u8]) -> Result<ParsedTokenizer> {
        parse_json(json).map(ParsedTokenizer)
    }
}

/// The model's tokenizer.json: already parsed by the source, or parsed now.
fn parsed_from(files: &dyn ModelFiles) -> Result<tokenizers::Tokenizer> {
    match files.parsed_tokenizer() {
        Some(parsed) => Ok(parsed.0),
        None => parse_json((*files.require("tokenizer.json")?).as_ref()),
    }
}

impl Tokenizer {
    /// From the bytes of a tokenizer.json; `max_len` is the model's maximum sequence length.
    pub fn from_bytes(json: &[u8], max_len: usize) -> Result<Tokenizer> {
        Tokenizer::truncating(parse_json(json)?, max_len)
    }

    /// The tokenizer.json of `files`, as `from_bytes`.
    pub fn from_files(files: &dyn ModelFiles, max_len: usize) -> Result<Tokenizer> {
        Tokenizer::truncating(parsed_from(files)?, max_len)
    }

    fn truncating(mut inner: tokenizers::Tokenizer, max_len: usize) -> Result<Tokenizer> {
        inner.with_padding(None);
        inner
            .with_truncation(Some(tokenizers::TruncationParams {
                max_length: max_len,
                strategy: tokenizers::TruncationStrategy::LongestFirst,
                direction: tokenizers::TruncationDirection::Right,
                stride: 0,
            }))
            .map_err(|e| Error::Tokenizer(format!("truncation to {max_len}: {e}")))?;
        Ok(Tokenizer { inner: Mutex::new(inner), max_len })
    }

    /// For text generation: no padding, no truncation (a prompt longer than the context is an
    /// error the caller reports, not something to cut silently).
    pub fn for_generation(json: &[u8]) -> Result<Tokenizer> {
        let inner = parse_json(json)?;
        Tokenizer::from_inner(inner)
    }

    /// The tokenizer.json of `files`, as `for_generation`.
    pub fn for_generation_from_files(files: &dyn ModelFiles) -> Result<Tokenizer> {
        Tokenizer::from_inner(parsed_from(files)?)
    }

    /// Wraps a tokenizer built in code (from GGUF metadata, say), without padding or truncation.
    pub fn from_inner(mut inner: tokenizers::Tokenizer) -> Result<Tokenizer> {
        inner.with_padding(None);
        inner.with_truncation(None).map_err(|e| Error::Tokenizer(e.to_string()))?;
        Ok(Tokenizer { inner: Mutex::new(inner), max_len: usize::MAX })
    }

    fn inner(&self) -> MutexGuard<'_, tokenizers::Tokenizer> {
        // A panic while holding the lock cannot leave the tokenizer half-changed in a way that
        // matters: every user sets what it needs first.
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A text, or a pair of texts (`[CLS] a [SEP] b [SEP]` with token types), truncated to the
    /// model's length, with offsets and sequence ids.
    pub fn encode_full(&self, text: &str, pair: Option<&str>) -> Result<Encoded> {
        let inner = self.inner();
        let enc = match pair {
            Some(p) => inner.encode_char_offsets((text, p), true),
            None => inner.encode_char_offsets(text, true),
        }
        .map_err(|e| Error::Tokenizer(format!("encoding {:?}: {e}", preview(text))))?;
        Ok(Encoded::from_encoding(&enc))
    }

    /// A text or pair as transformers' tokenizer call encodes it: special tokens or not, and
    /// truncated to `max_len` (longest first, special tokens kept) or not at all, whatever this
    /// tokenizer's own truncation is.
    pub fn encode_with(&self, text: &str, pair: Option<&str>, add_special_tokens: bool, max_len: Option<usize>) -> Result<Encoded> {
        let mut inner = self.inner();
        let default = inner.get_truncation().cloned();
        let truncation = max_len.map(|max_length| tokenizers::TruncationParams {
            max_length,
            strategy: tokenizers::TruncationStrategy::LongestFirst,
            direction: tokenizers::TruncationDirection::Right,
            stride: 0,
        });
        inner.with_truncation(truncation).map_err(|e| Error::Tokenizer(format!("truncation to {max_len:?}: {e}")))?;
        let enc = match pair {
            Some(p) => inner.encode_char_offsets((text, p), add_special_tokens),
            None => inner.encode_char_offsets(text, add_special_tokens),
        }
        .map_err(|e| Error::Tokenizer(format!("encoding {:?}: {e}", preview(text))));
        inner.with_truncation(default).map_err(|e| Error::Tokenizer(e.to_string()))?;
        Ok(Encoded::from_encoding(&enc?))
    }

    /// The tokens of a text or pair as strings, as the model split them (an unknown piece keeps
    /// its own text, as transformers' `tokenize` gives it, not the unknown token's).
    pub fn tokens(&self, text: &str, pair: Option<&str>, add_special_tokens: bool) -> Result<Vec<String>> {
        let mut inner = self.inner();
        let default = inner.get_truncation().cloned();
        inner.with_truncation(None).map_err(|e| Error::Tokenizer(e.to_string()))?;
        let enc = match pair {
            Some(p) => inner.encode((text, p), add_special_tokens),
            None => inner.encode(text, add_special_tokens),
        }
        .map_err(|e| Error::Tokenizer(format!("encoding {:?}: {e}", preview(text))));
        inner.with_truncation(default).map_err(|e| Error::Tokenizer(e.to_string()))?;
        Ok(enc?.get_tokens().to_vec())
    }

    /// A pair whose second text is cut into windows of at most `max_len` tokens each (special
    /// tokens and the first text included), consecutive windows sharing `stride` tokens: what
    /// Python's `truncation="only_second", return_overflowing_tokens=True, stride=..` gives
    /// (question answering over long contexts).
    pub fn encode_windows(&self, first: &str, second: &str, max_len: usize, stride: usize) -> Result<Vec<Encoded>> {
        let mut inner = self.inner();
        let default = inner.get_truncation().cloned();
        let result = windows(&mut inner, first, second, max_len, stride);
        // Put the default back whatever happened; it was valid before, so it still is.
        let _ = inner.with_truncation(default);
        result
    }

    /// The special tokens a pair gets ([CLS], [SEP], [SEP]: 3 for BERT).
    pub fn special_tokens_in_pair(&self) -> usize {
        self.inner().get_post_processor().map(|p| tokenizers::PostProcessor::added_tokens(p, true)).unwrap_or(0)
    }

    /// The token's string in the vocabulary (`##ing`, `Ġthe`), as Python's
    /// `convert_ids_to_tokens`.
    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.inner().id_to_token(id)
    }

    /// Token strings back to text through the tokenizer's decoder alone (WordPiece joins `##`
    /// pieces, ByteLevel maps bytes back, Metaspace turns `▁` into spaces), as Python's fast
    /// `convert_tokens_to_string` does: no added-token handling, no clean-up step beyond the
    /// decoder's own. Without a decoder the tokens are joined by spaces, as there.
    pub fn convert_tokens_to_string(&self, tokens: &[String]) -> Result<String> {
        use tokenizers::Decoder;
        match self.inner().get_decoder() {
            Some(decoder) => decoder.decode(tokens.to_vec()).map_err(|e| Error::Tokenizer(format!("decoding tokens: {e}"))),
            None => Ok(tokens.join(" ")),
        }
    }

    /// The prefix the model marks word-continuing pieces with (`##` for WordPiece), when it has
    /// one: what tells Python's token classification that a tokenizer knows word boundaries.
    pub fn continuing_subword_prefix(&self) -> Option<String> {
        let prefix = match self.inner().get_model() {
            tokenizers::ModelWrapper::WordPiece(m) => Some(m.continuing_subword_prefix.clone()),
            tokenizers::ModelWrapper::BPE(m) => m.continuing_subword_prefix.clone(),
            tokenizers::ModelWrapper::WordLevel(_) | tokenizers::ModelWrapper::Unigram(_) => None,
        };
        // Python tests the attribute for truth: an empty prefix counts as none.
        prefix.filter(|p| !p.is_empty())
    }

    /// The model's unknown token (`[UNK]`), where its model names one (WordPiece, BPE,
    /// WordLevel; a Unigram model keeps only an id, and tokenizer_config.json names it anyway).
    pub fn model_unk_token(&self) -> Option<String> {
        match self.inner().get_model() {
            tokenizers::ModelWrapper::WordPiece(m) => Some(m.unk_token.clone()),
            tokenizers::ModelWrapper::BPE(m) => m.unk_token.clone(),
            tokenizers::ModelWrapper::WordLevel(m) => Some(m.unk_token.clone()),
            tokenizers::ModelWrapper::Unigram(_) => None,
        }
    }

    /// Token ids of one text; `add_special_tokens` applies the tokenizer's post-processor
    /// (BOS for Llama-family tokenizers, [CLS]/[SEP] for BERT).
    pub fn encode(&self, text: &str, add_special_tokens: bool) -> Result<Vec<u32>> {
        let enc =
            self.inner().encode(text, add_special_tokens).map_err(|e| Error::Tokenizer(format!("encoding {:?}: {e}", preview(text))))?;
        Ok(enc.get_ids().to_vec())
    }

    /// `encode`, and the length the text would have had untruncated when it was cut to
    /// `max_len` (None when it fit): what lets a task say that it truncated.
    pub fn encode_noting_cut(&self, text: &str, add_special_tokens: bool) -> Result<(Vec<u32>, Option<usize>)> {
        let mut inner = self.inner();
        let fail = |e| Error::Tokenizer(format!("encoding {:?}: {e}", preview(text)));
        let enc = inner.encode(text, add_special_tokens).map_err(fail)?;
        if enc.get_overflowing().is_empty() {
            return Ok((enc.get_ids().to_vec(), None));
        }
        // Cut: count the whole text once more without truncation (only texts that were cut pay).
        let default = inner.get_truncation().cloned();
        let whole = inner
            .with_truncation(None)
            .map_err(|e| Error::Tokenizer(e.to_string()))
            .and_then(|t| t.encode(text, add_special_tokens).map_err(fail));
        // Put the default back whatever happened; it was valid before, so it still is.
        let _ = inner.with_truncation(default);
        Ok((enc.get_ids().to_vec(), Some(whole?.len())))
    }

    /// Special (added) tokens' ids, to skip them when decoding.
    pub fn is_special(&self, id: u32) -> bool {
        self.inner().get_added_tokens_decoder().get(&id).is_some_and(|t| t.special)
    }

    /// The special added tokens (id, text), in id order.
    pub fn special_tokens(&self) -> Vec<(u32, String)> {
        let inner = self.inner();
        let mut tokens: Vec<(u32, String)> =
            inner.get_added_tokens_decoder().iter().filter(|(_, t)| t.special).map(|(&id, t)| (id, t.content.clone())).collect();
        tokens.sort();
        tokens
    }

    pub fn max_len(&self) -> usize {
        self.max_len
    }

    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner().token_to_id(token)
    }

    pub fn vocab_size(&self) -> usize {
        self.inner().get_vocab_size(true)
    }

    /// Encodes each text with the model's special tokens ([CLS] ... [SEP] for BERT).
    pub fn encode_batch(&self, texts: &[&str]) -> Result<Batch> {
        let mut batch = Batch { ids: Vec::with_capacity(texts.len()), type_ids: Vec::with_capacity(texts.len()) };
        let inner = self.inner();
        for text in texts {
            let enc = inner.encode(*text, true).map_err(|e| Error::Tokenizer(format!("encoding {:?}: {e}", preview(text))))?;
            batch.ids.push(enc.get_ids().to_vec());
            batch.type_ids.push(enc.get_type_ids().to_vec());
        }
        Ok(batch)
    }

    pub fn decode(&self, ids: &[u32], skip_special_tokens: bool) -> Result<String> {
        self.inner().decode(ids, skip_special_tokens).map_err(|e| Error::Tokenizer(format!("decoding: {e}")))
    }

    /// Whether tokenizer.json's decoder cleans up tokenization spaces itself (WordPiece's `cleanup`).
    pub fn decoder_cleans_up(&self) -> Option<bool> {
        let inner = self.inner();
        let decoder = serde_json::to_value(inner.get_decoder()?).ok()?;
        decoder["cleanup"].as_bool()
    }
}

pub use crate::tasks::text_encoder::clean_up_tokenization_spaces;

/// `Tokenizer::encode_windows` on the locked tokenizer, whose truncation it changes.
///
/// The windows are cut here from the whole encoded pair, not by `tokenizers`' own overflowing
/// truncation: since 0.23 that stops tokenizing the second text once a window is full (its
/// early exit ignores the stride), so only two windows ever come back, where Python (tokenizers
/// 0.22) gets them all. Cutting the second text's tokens and keeping the special tokens around
/// them is what tokenizers' `Encoding::truncate` then post-processing do (but for token types:
/// there, windows after the first keep type 1 for the second text whatever the template says,
/// which differs only for models that do not read token types); the errors are theirs too, but
/// as errors where `Encoding::truncate` asserts (Python sees a PanicException).
fn windows(inner: &mut tokenizers::Tokenizer, first: &str, second: &str, max_len: usize, stride: usize) -> Result<Vec<Encoded>> {
    // tokenizers' check when Python enables truncation: the stride against a single text's room.
    let added = inner.get_post_processor().map_or(0, |p| tokenizers::PostProcessor::added_tokens(p, false));
    if max_len < added || max_len - added < stride {
        return Err(Error::Input(format!(
            "a stride of {stride} tokens needs windows longer than {max_len} ({added} of them special tokens)"
        )));
    }
    inner.with_truncation(None).map_err(|e| Error::Tokenizer(e.to_string()))?;
    let whole =
        inner.encode_char_offsets((first, second), true).map_err(|e| Error::Tokenizer(format!("encoding {:?}: {e}", preview(first))))?;
    let whole = Encoded::from_encoding(&whole);
    if whole.len() <= max_len {
        return Ok(vec![whole]);
    }
    // The second text's tokens are one run; the special tokens around it stay in every window.
    let second_at: Vec<usize> = (0..whole.len()).filter(|&i| whole.sequence_ids[i] == Some(1)).collect();
    let to_remove = whole.len() - max_len;
    let (Some(&start), Some(&last)) = (second_at.first(), second_at.last()) else {
        return Err(Error::Input(format!("the first text takes more than a window of {max_len} tokens, and the second is empty")));
    };
    let second_len = last + 1 - start;
    if second_len <= to_remove {
        return Err(Error::Input(format!(
            "the first text and the special tokens take {} tokens, leaving none of a window of {max_len} for the second",
            whole.len() - second_len
        )));
    }
    let room = second_len - to_remove;
    if stride >= room {
        return Err(Error::Input(format!(
            "a window of {max_len} tokens leaves {room} for the second text, which must be more than the stride of {stride}"
        )));
    }
    // Encoding::truncate (direction Right): windows of `room` tokens every `room - stride`,
    // until one reaches the end.
    let mut windows = Vec::new();
    for from in (0..second_len).step_by(room - stride) {
        let to = (from + room).min(second_len);
        let keep: Vec<usize> = (0..start).chain(start + from..start + to).chain(last + 1..whole.len()).collect();
        windows.push(whole.select(&keep));
        if to == second_len {
            break;
        }
    }
    Ok(windows)
}

fn preview(text: &str) -> String {
    let mut s: String = text.chars().take(40).collect();
    if text.chars().count() > 40 {
        s.push('…');
    }
    s
}
