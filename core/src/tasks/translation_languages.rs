//! The languages of multilingual translation models, as transformers.js's translation pipeline
//! takes them (`src_lang` / `tgt_lang` options; its NllbTokenizer and M2M100Tokenizer
//! `_build_translation_inputs`) and transformers' tokenizers place them:
//!
//! - the model's languages are its tokenizer's special tokens that name one (tokenizer.json's
//!   added tokens, and tokenizer_config.json's `additional_special_tokens` / `language_codes`);
//! - the source language's token goes around the text where the tokenizer kind puts it
//!   (NLLB: `eng_Latn text </s>`, or `text </s> eng_Latn` with `legacy_behaviour`; M2M100:
//!   `__en__ text </s>`); without `src_lang` the text gets tokenizer.json's own special tokens
//!   (its default source language), as in transformers.js;
//! - the target language's token is forced as the first generated token (`forced_bos_token_id`).
//!
//! Each tokenizer kind is one `LanguageKind` in `KINDS`: a later kind (mBART's `en_XX`, Marian's
//! multilingual `>>fra<<` text prefixes) is one more entry, with its own placements.

use serde_json::Value;

use crate::tokenizer::Tokenizer;
use crate::{Error, Result};

/// Where a tokenizer kind puts the source language's token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourcePlacement {
    /// `[src] text </s>` (NLLB, M2M100).
    BeforeText,
    /// `text </s> [src]` (NLLB's `legacy_behaviour`, mBART).
    AfterEos,
}

/// How a tokenizer kind asks for the target language.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetPlacement {
    /// The target's token is the decoder's first generated token (`forced_bos_token_id`).
    ForcedBos,
}

/// One tokenizer kind's language conventions.
pub struct LanguageKind {
    /// For messages ("NLLB").
    pub name: &'static str,
    /// tokenizer_config.json's `tokenizer_class` of this kind (with or without `Fast`).
    pub tokenizer_classes: &'static [&'static str],
    /// The language code a token names, if it names one (`__fr__` -> `fr`).
    pub code_of: fn(&str) -> Option<&str>,
    /// The token of a language code.
    pub token_of: fn(&str) -> String,
    /// Where the source's token goes, given tokenizer_config.json.
    pub source: fn(&Value) -> SourcePlacement,
    pub target: TargetPlacement,
}

/// NLLB-200's FLORES-200 codes: three lowercase letters, `_`, a script (`eng_Latn`).
fn nllb_code(token: &str) -> Option<&str> {
    let b = token.as_bytes();
    let ok = b.len() == 8
        && b[..3].iter().all(u8::is_ascii_lowercase)
        && b[3] == b'_'
        && b[4].is_ascii_uppercase()
        && b[5..].iter().all(u8::is_ascii_lowercase);
    ok.then_some(token)
}

/// M2M100's `__fr__` tokens (two or three letters) name the code `fr`.
fn m2m100_code(token: &str) -> Option<&str> {
    let code = token.strip_prefix("__")?.strip_suffix("__")?;
    (matches!(code.len(), 2 | 3) && code.bytes().all(|c| c.is_ascii_lowercase())).then_some(code)
}

pub static KINDS: &[LanguageKind] = &[
    LanguageKind {
        name: "NLLB",
        tokenizer_classes: &["NllbTokenizer"],
        code_of: nllb_code,
        token_of: |code| code.to_string(),
        source: |config| match config["legacy_behaviour"].as_bool() {
            Some(true) => SourcePlacement::AfterEos,
            _ => SourcePlacement::BeforeText,
        },
        target: TargetPlacement::ForcedBos,
    },
    LanguageKind {
        name: "M2M100",
        tokenizer_classes: &["M2M100Tokenizer"],
        code_of: m2m100_code,
        token_of: |code| format!("__{code}__"),
        source: |_| SourcePlacement::BeforeText,
        target: TargetPlacement::ForcedBos,
    },
];

/// A multilingual model's languages and where their tokens go.
pub struct Languages {
    kind: &'static LanguageKind,
    source: SourcePlacement,
    /// (code, token id), in the tokenizer's order.
    codes: Vec<(String, u32)>,
    eos: u32,
}

/// How many codes an error message lists before it counts the rest.
const LISTED: usize = 30;

impl Languages {
    /// The languages of a tokenizer of a multilingual kind: the kind tokenizer_config.json's
    /// `tokenizer_class` names or, for a generic class, the kind whose language tokens the
    /// tokenizer has. None for other tokenizers (one language pair: Marian's opus-mt, say).
    pub fn of(tokenizer: &Tokenizer, tokenizer_config: &Value) -> Result<Option<Languages>> {
        let class = tokenizer_config["tokenizer_class"].as_str().unwrap_or("");
        let class = class.strip_suffix("Fast").unwrap_or(class);
        let named = KINDS.iter().find(|k| k.tokenizer_classes.contains(&class));
        let candidates: Vec<&'static LanguageKind> = match named {
            Some(kind) => vec![kind],
            None => KINDS.iter().collect(),
        };
        for kind in candidates {
            let codes = Self::codes_of(kind, tokenizer, tokenizer_config);
            // one language token alone is no choice of languages
            if codes.len() < 2 && named.is_none() {
                continue;
            }
            if codes.is_empty() {
                return Err(Error::Config(format!(
                    "tokenizer_config.json names a {} tokenizer, but the tokenizer has no language tokens",
                    kind.name
                )));
            }
            let eos_token = tokenizer_config["eos_token"].as_str().or(tokenizer_config["eos_token"]["content"].as_str()).unwrap_or("</s>");
            let eos = tokenizer
                .token_to_id(eos_token)
                .ok_or_else(|| Error::Config(format!("the {} tokenizer has no end-of-sequence token {eos_token:?}", kind.name)))?;
            return Ok(Some(Languages { kind, source: (kind.source)(tokenizer_config), codes, eos }));
        }
        Ok(None)
    }

    /// The kind's language tokens among the tokenizer's special tokens and
    /// tokenizer_config.json's lists, in id order, each once.
    fn codes_of(kind: &LanguageKind, tokenizer: &Tokenizer, config: &Value) -> Vec<(String, u32)> {
        let mut tokens: Vec<(u32, String)> = tokenizer.special_tokens();
        for list in ["additional_special_tokens", "language_codes"] {
            for entry in config[list].as_array().into_iter().flatten() {
                let token = entry.as_str().or(entry["content"].as_str()).unwrap_or("");
                // `language_codes` may hold codes rather than tokens
                for token in [token.to_string(), (kind.token_of)(token)] {
                    if let Some(id) = tokenizer.token_to_id(&token) {
                        tokens.push((id, token));
                    }
                }
            }
        }
        tokens.sort();
        tokens.dedup();
        tokens.into_iter().filter_map(|(id, token)| (kind.code_of)(&token).map(|code| (code.to_string(), id))).collect()
    }

    /// The kind's name ("NLLB").
    pub fn kind(&self) -> &'static str {
        self.kind.name
    }

    /// The model's language codes, in the tokenizer's order.
    pub fn codes(&self) -> impl Iterator<Item = &str> {
        self.codes.iter().map(|(code, _)| code.as_str())
    }

    /// The codes for a message: all of them, or the first `LISTED` and how many more.
    fn listed(&self) -> String {
        let shown: Vec<&str> = self.codes().take(LISTED).collect();
        match self.codes.len() - shown.len() {
            0 => shown.join(", "),
            more => format!("{}, and {more} more", shown.join(", ")),
        }
    }

    /// The token id of `code`, or an error that lists the model's languages.
    fn id(&self, code: &str, option: &str) -> Result<u32> {
        self.codes.iter().find(|(c, _)| c == code).map(|&(_, id)| id).ok_or_else(|| {
            Error::Input(format!(
                "translation: {option} {code:?} is not one of this model's {} languages ({} {} codes): {}",
                self.codes.len(),
                self.kind.name,
                if self.codes.len() == 1 { "code" } else { "codes" },
                self.listed()
            ))
        })
    }

    /// The encoder's input ids for `text` in language `src_lang`, truncated as the tokenizer
    /// truncates (its special tokens kept); without `src_lang`, tokenizer.json's own special
    /// tokens (its default source language).
    /// Also the length the ids would have had uncut, when they were cut to the tokenizer's
    /// maximum (None when they fit).
    pub fn source_ids(&self, tokenizer: &Tokenizer, text: &str, src_lang: Option<&str>) -> Result<(Vec<u32>, Option<usize>)> {
        let Some(code) = src_lang else {
            return tokenizer.encode_noting_cut(text, true);
        };
        let src = self.id(code, "src_lang")?;
        let (mut ids, whole) = tokenizer.encode_noting_cut(text, false)?;
        // the language token and </s> take two places of the maximum
        let room = tokenizer.max_len().saturating_sub(2);
        let whole = whole.unwrap_or(ids.len());
        ids.truncate(room);
        let cut = (whole > room).then_some(whole + 2);
        let ids = match self.source {
            SourcePlacement::BeforeText => [&[src][..], &ids, &[self.eos]].concat(),
            SourcePlacement::AfterEos => [&ids[..], &[self.eos, src]].concat(),
        };
        Ok((ids, cut))
    }

    /// The token that asks for `tgt_lang`, which a multilingual model needs.
    pub fn target_token(&self, tgt_lang: Option<&str>) -> Result<u32> {
        let code = tgt_lang.ok_or_else(|| {
            Error::Input(format!(
                "translation: this model translates into {} languages: name the target with the tgt_lang option ({} codes: {})",
                self.codes.len(),
                self.kind.name,
                self.listed()
            ))
        })?;
        match self.kind.target {
            TargetPlacement::ForcedBos => self.id(code, "tgt_lang"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{KINDS, Languages, SourcePlacement, m2m100_code, nllb_code};

    #[test]
    fn many_languages_are_listed_in_part() {
        let codes = (0..40).map(|i| (format!("l{i:02}"), i)).collect();
        let languages = Languages { kind: &KINDS[1], source: SourcePlacement::BeforeText, codes, eos: 2 };
        let err = languages.target_token(Some("xx")).unwrap_err().to_string();
        assert!(err.contains("\"xx\" is not one of this model's 40 languages"), "{err}");
        assert!(err.contains("l00, l01,") && err.contains("l29, and 10 more") && !err.contains("l30"), "{err}");
        let err = languages.target_token(None).unwrap_err().to_string();
        assert!(err.contains("tgt_lang") && err.contains("and 10 more"), "{err}");
    }

    #[test]
    fn language_tokens_are_recognized() {
        assert_eq!(nllb_code("fra_Latn"), Some("fra_Latn"));
        assert_eq!(nllb_code("zho_Hans"), Some("zho_Hans"));
        assert_eq!(nllb_code("</s>"), None);
        assert_eq!(nllb_code("en_XX"), None);
        assert_eq!(m2m100_code("__fr__"), Some("fr"));
        assert_eq!(m2m100_code("__ast__"), Some("ast"));
        assert_eq!(m2m100_code("__madeupword0__"), None);
        assert_eq!(m2m100_code("<s>"), None);
    }
}
