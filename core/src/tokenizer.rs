//! Text to token ids with the `tokenizers` crate, truncated the way the Python reference does it.
//!
//! Hugging Face's tokenizer.json files often carry padding and truncation settings of their
//! own (all-MiniLM-L6-v2's pads and truncates to 128); the Python libraries override them, and so
//! do we: no padding, and truncation to the model's maximum length with the special tokens kept
//! (sentence-transformers keeps the final [SEP]).

use crate::{Error, Result};

pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    /// The truncation length; usize::MAX when texts are never truncated (generation prompts).
    max_len: usize,
}

/// Token ids of a batch of texts, one sequence each, unpadded.
#[derive(Clone, Debug, PartialEq)]
pub struct Batch {
    pub ids: Vec<Vec<u32>>,
    pub type_ids: Vec<Vec<u32>>,
}

impl Batch {
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

impl Tokenizer {
    /// From the bytes of a tokenizer.json; `max_len` is the model's maximum sequence length.
    pub fn from_bytes(json: &[u8], max_len: usize) -> Result<Tokenizer> {
        let mut inner = tokenizers::Tokenizer::from_bytes(json).map_err(|e| Error::Tokenizer(format!("tokenizer.json: {e}")))?;
        inner.with_padding(None);
        inner
            .with_truncation(Some(tokenizers::TruncationParams {
                max_length: max_len,
                strategy: tokenizers::TruncationStrategy::LongestFirst,
                direction: tokenizers::TruncationDirection::Right,
                stride: 0,
            }))
            .map_err(|e| Error::Tokenizer(format!("truncation to {max_len}: {e}")))?;
        Ok(Tokenizer { inner, max_len })
    }

    /// For text generation: no padding, no truncation (a prompt longer than the context is an
    /// error the caller reports, not something to cut silently).
    pub fn for_generation(json: &[u8]) -> Result<Tokenizer> {
        let inner = tokenizers::Tokenizer::from_bytes(json).map_err(|e| Error::Tokenizer(format!("tokenizer.json: {e}")))?;
        Tokenizer::from_inner(inner)
    }

    /// Wraps a tokenizer built in code (from GGUF metadata, say), without padding or truncation.
    pub fn from_inner(mut inner: tokenizers::Tokenizer) -> Result<Tokenizer> {
        inner.with_padding(None);
        inner.with_truncation(None).map_err(|e| Error::Tokenizer(e.to_string()))?;
        Ok(Tokenizer { inner, max_len: usize::MAX })
    }

    /// Token ids of one text; `add_special_tokens` applies the tokenizer's post-processor
    /// (BOS for Llama-family tokenizers, [CLS]/[SEP] for BERT).
    pub fn encode(&self, text: &str, add_special_tokens: bool) -> Result<Vec<u32>> {
        let enc =
            self.inner.encode(text, add_special_tokens).map_err(|e| Error::Tokenizer(format!("encoding {:?}: {e}", preview(text))))?;
        Ok(enc.get_ids().to_vec())
    }

    /// Special (added) tokens' ids, to skip them when decoding.
    pub fn is_special(&self, id: u32) -> bool {
        self.inner.get_added_tokens_decoder().get(&id).is_some_and(|t| t.special)
    }

    pub fn max_len(&self) -> usize {
        self.max_len
    }

    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// Encodes each text with the model's special tokens ([CLS] ... [SEP] for BERT).
    pub fn encode_batch(&self, texts: &[&str]) -> Result<Batch> {
        let mut batch = Batch { ids: Vec::with_capacity(texts.len()), type_ids: Vec::with_capacity(texts.len()) };
        for text in texts {
            let enc = self.inner.encode(*text, true).map_err(|e| Error::Tokenizer(format!("encoding {:?}: {e}", preview(text))))?;
            batch.ids.push(enc.get_ids().to_vec());
            batch.type_ids.push(enc.get_type_ids().to_vec());
        }
        Ok(batch)
    }

    pub fn decode(&self, ids: &[u32], skip_special_tokens: bool) -> Result<String> {
        self.inner.decode(ids, skip_special_tokens).map_err(|e| Error::Tokenizer(format!("decoding: {e}")))
    }
}

fn preview(text: &str) -> String {
    let mut s: String = text.chars().take(40).collect();
    if text.chars().count() > 40 {
        s.push('…');
    }
    s
}
