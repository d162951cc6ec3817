//! What Whisper's generation needs from `generation_config.json` (with the tokenizer's ids where
//! the file lacks them), and the decoder prompt built from it as transformers'
//! `WhisperGenerationMixin._retrieve_init_tokens` builds it: `<|startoftranscript|>`, the
//! language, the task, and `<|notimestamps|>` unless timestamps are asked for.

use serde_json::Value;

use super::languages;
use crate::{Error, Result};

/// The two tasks a Whisper checkpoint knows.
pub const TASKS: &[&str] = &["translate", "transcribe"];

/// Whisper's generation settings.
#[derive(Clone, Debug, PartialEq)]
pub struct WhisperGenerationConfig {
    pub decoder_start_token_id: u32,
    pub eos_token_ids: Vec<u32>,
    /// `<|notimestamps|>`; the timestamp tokens follow it. None: timestamps are refused.
    pub no_timestamps_token_id: Option<u32>,
    /// None when the config does not say (old configs): `language`/`task` are then not refused
    /// for that reason.
    pub is_multilingual: Option<bool>,
    /// `<|en|>` → id, in file order. Empty: the checkpoint has no language tokens to pick.
    pub lang_to_id: Vec<(String, u32)>,
    pub task_to_id: Vec<(String, u32)>,
    /// The legacy `forced_decoder_ids` ((position, token or null)), used when neither language nor
    /// task is given.
    pub forced_decoder_ids: Vec<(usize, Option<u32>)>,
    /// (layer, head) pairs whose cross-attention aligns tokens with audio frames.
    pub alignment_heads: Vec<(usize, usize)>,
    pub suppress_tokens: Vec<u32>,
    pub begin_suppress_tokens: Vec<u32>,
    pub max_initial_timestamp_index: Option<u32>,
    /// The total sequence length (prompt + generated) when `max_new_tokens` is not given.
    pub max_length: Option<usize>,
    /// The config's own `return_timestamps` default.
    pub return_timestamps: bool,
}

fn ids(v: Option<&Value>) -> Vec<u32> {
    match v {
        Some(Value::Array(a)) => a.iter().filter_map(|x| x.as_u64().map(|x| x as u32)).collect(),
        Some(Value::Number(n)) => n.as_u64().map(|x| vec![x as u32]).unwrap_or_default(),
        _ => Vec::new(),
    }
}

fn id_map(v: Option<&Value>) -> Vec<(String, u32)> {
    match v {
        Some(Value::Object(m)) => m.iter().filter_map(|(k, v)| v.as_u64().map(|id| (k.clone(), id as u32))).collect(),
        _ => Vec::new(),
    }
}

impl WhisperGenerationConfig {
    /// From `generation_config.json` (Null when absent); `token_id` looks special tokens up in the
    /// tokenizer for what the file does not give.
    pub fn from_json(json: &Value, token_id: &dyn Fn(&str) -> Option<u32>) -> Result<Self> {
        let get = |k: &str| json.get(k).filter(|v| !v.is_null());
        let decoder_start_token_id = get("decoder_start_token_id")
            .and_then(Value::as_u64)
            .map(|x| x as u32)
            .or_else(|| token_id("<|startoftranscript|>"))
            .ok_or_else(|| {
                Error::Input("Whisper: no decoder_start_token_id in generation_config.json and no <|startoftranscript|> token".into())
            })?;
        let mut eos_token_ids = ids(get("eos_token_id"));
        if eos_token_ids.is_empty() {
            eos_token_ids.extend(token_id("<|endoftext|>"));
        }
        let no_timestamps_token_id =
            get("no_timestamps_token_id").and_then(Value::as_u64).map(|x| x as u32).or_else(|| token_id("<|notimestamps|>"));
        let forced_decoder_ids = match get("forced_decoder_ids") {
            Some(Value::Array(pairs)) => pairs
                .iter()
                .filter_map(|p| {
                    let p = p.as_array()?;
                    Some((p.first()?.as_u64()? as usize, p.get(1).and_then(Value::as_u64).map(|x| x as u32)))
                })
                .collect(),
            _ => Vec::new(),
        };
        let alignment_heads = match get("alignment_heads") {
            Some(Value::Array(pairs)) => pairs
                .iter()
                .filter_map(|p| {
                    let p = p.as_array()?;
                    Some((p.first()?.as_u64()? as usize, p.get(1)?.as_u64()? as usize))
                })
                .collect(),
            _ => Vec::new(),
        };
        Ok(WhisperGenerationConfig {
            decoder_start_token_id,
            eos_token_ids,
            no_timestamps_token_id,
            is_multilingual: get("is_multilingual").and_then(Value::as_bool),
            lang_to_id: id_map(get("lang_to_id")),
            task_to_id: id_map(get("task_to_id")),
            forced_decoder_ids,
            alignment_heads,
            suppress_tokens: ids(get("suppress_tokens")),
            begin_suppress_tokens: ids(get("begin_suppress_tokens")),
            max_initial_timestamp_index: get("max_initial_timestamp_index").and_then(Value::as_u64).map(|x| x as u32),
            max_length: get("max_length").and_then(Value::as_u64).map(|x| x as usize),
            return_timestamps: get("return_timestamps").and_then(Value::as_bool).unwrap_or(false),
        })
    }

    /// The first timestamp token (`<|0.00|>`).
    pub fn timestamp_begin(&self) -> Option<u32> {
        self.no_timestamps_token_id.map(|t| t + 1)
    }

    fn lang_id(&self, token: &str) -> Option<u32> {
        self.lang_to_id.iter().find(|(k, _)| k == token).map(|(_, id)| *id)
    }

    fn task_id(&self, task: &str) -> Option<u32> {
        self.task_to_id.iter().find(|(k, _)| k == task).map(|(_, id)| *id)
    }

    /// The language token of `language`, given as transformers takes it: a token (`<|fr|>`), a
    /// name (`french`, `mandarin`) or a code (`fr`), in any case.
    pub fn language_id(&self, language: &str) -> Result<u32> {
        let language = language.to_lowercase();
        let token = if self.lang_id(&language).is_some() {
            language.clone()
        } else if let Some(code) = languages::code_of_name(&language) {
            format!("<|{code}|>")
        } else if languages::is_code(&language) {
            format!("<|{language}|>")
        } else {
            return Err(Error::Input(format!(
                "unsupported language `{language}`: give a language name (\"english\"), a code (\"en\") or a token (\"<|en|>\")"
            )));
        };
        self.lang_id(&token).ok_or_else(|| {
            Error::Input(format!("language {token} is not one this model knows (its generation_config.json has no such language token)"))
        })
    }

    /// Whether the prompt for `language`/`task` needs the detected language (a multilingual
    /// model given no language and no forced language token).
    pub fn needs_language_detection(&self, language: Option<&str>, task: Option<&str>) -> bool {
        if language.is_some() || self.lang_to_id.is_empty() {
            return false;
        }
        let forced = self.forced_prompt(language, task);
        forced.len() <= 1 || forced[1].is_none()
    }

    /// The legacy forced tokens after `<|startoftranscript|>`, used only when neither language
    /// nor task is given.
    fn forced_prompt(&self, language: Option<&str>, task: Option<&str>) -> Vec<Option<u32>> {
        let mut init = vec![Some(self.decoder_start_token_id)];
        if language.is_none() && task.is_none() && self.forced_decoder_ids.first().is_some_and(|f| f.0 == 1) {
            for (i, (pos, token)) in self.forced_decoder_ids.iter().enumerate() {
                if *pos != i + 1 {
                    break;
                }
                init.push(*token);
            }
        }
        init
    }

    /// The decoder prompt. `detected` is the language token found by language detection, needed
    /// when `needs_language_detection` says so.
    pub fn init_tokens(
        &self,
        language: Option<&str>,
        task: Option<&str>,
        return_timestamps: bool,
        detected: Option<u32>,
    ) -> Result<Vec<u32>> {
        if self.is_multilingual == Some(false) && (language.is_some() || task.is_some()) {
            return Err(Error::Input(
                "this is an English-only Whisper model: it takes no `language` or `task` (use a multilingual checkpoint to pick them)"
                    .into(),
            ));
        }
        if language.is_some() && self.lang_to_id.is_empty() {
            return Err(Error::Input("this model's generation_config.json has no lang_to_id: it cannot take a `language`".into()));
        }
        if task.is_some() && self.task_to_id.is_empty() {
            return Err(Error::Input("this model's generation_config.json has no task_to_id: it cannot take a `task`".into()));
        }
        let mut init = self.forced_prompt(language, task);
        if language.is_none() && task.is_none() {
            let used = init.len() - 1;
            if used < self.forced_decoder_ids.len() && used > 0 {
                return Err(Error::Input(format!(
                    "generation_config.json's forced_decoder_ids {:?} do not follow Whisper's prompt pattern (positions 1, 2, 3...)",
                    self.forced_decoder_ids
                )));
            }
        }
        let lang_undefined = init.len() <= 1 || init[1].is_none();
        let lang = match language {
            Some(l) => Some(self.language_id(l)?),
            None if !self.lang_to_id.is_empty() && lang_undefined => {
                Some(detected.ok_or_else(|| Error::Input("Whisper: the language must be detected before building the prompt".into()))?)
            }
            None => None,
        };
        if let Some(lang) = lang {
            if init.len() > 1 {
                init[1] = Some(lang);
            } else {
                init.push(Some(lang));
            }
        }
        let task_ids: Vec<u32> = self.task_to_id.iter().map(|(_, id)| *id).collect();
        if let Some(task) = task {
            if !TASKS.contains(&task) {
                return Err(Error::Input(format!("unsupported task `{task}`: Whisper's tasks are \"transcribe\" and \"translate\"")));
            }
            let id = self
                .task_id(task)
                .ok_or_else(|| Error::Input(format!("this model's generation_config.json has no `{task}` in task_to_id")))?;
            init.push(Some(id));
            // transformers replaces every task token already there with the asked one
            for t in init.iter_mut() {
                if t.is_some_and(|t| task_ids.contains(&t)) {
                    *t = Some(id);
                }
            }
        } else if language.is_some()
            && !init.iter().any(|t| t.is_some_and(|t| task_ids.contains(&t)))
            && let Some(id) = self.task_id("transcribe")
        {
            init.push(Some(id));
        }
        if let Some(no_ts) = self.no_timestamps_token_id {
            if !return_timestamps && *init.last().unwrap_or(&None) != Some(no_ts) {
                init.push(Some(no_ts));
            } else if return_timestamps && *init.last().unwrap_or(&None) == Some(no_ts) {
                init.pop();
            }
        }
        Ok(init.into_iter().flatten().collect())
    }

    /// Language detection as transformers' `detect_language`: the most likely language token
    /// after `<|startoftranscript|>` (`logits` is that position's row).
    pub fn detect_language(&self, logits: &[f32]) -> Result<u32> {
        let mut best: Option<(u32, f32)> = None;
        for &(_, id) in &self.lang_to_id {
            let v = *logits
                .get(id as usize)
                .ok_or_else(|| Error::Input(format!("language token {id} is outside the vocabulary ({})", logits.len())))?;
            // argmax keeps the first of equal values, in id order
            if best.is_none_or(|(bid, bv)| v > bv || (v == bv && id < bid)) {
                best = Some((id, v));
            }
        }
        best.map(|(id, _)| id).ok_or_else(|| Error::Input("this model has no language tokens to detect".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn init_tokens_match_transformers() {
        let fixture = super::super::tests_fixture();
        let p = &fixture["prompt"];
        let mut checked = 0;
        for case in p["cases"].as_array().unwrap() {
            let gc = json!({
                "decoder_start_token_id": p["decoder_start"], "no_timestamps_token_id": p["no_timestamps"],
                "lang_to_id": p["lang_to_id"], "task_to_id": p["task_to_id"], "is_multilingual": true,
                "forced_decoder_ids": case["forced_decoder_ids"],
            });
            let config = WhisperGenerationConfig::from_json(&gc, &|_| None).unwrap();
            let language = case["language"].as_str();
            let task = case["task"].as_str();
            let detected = config.needs_language_detection(language, task).then_some(50261);
            let got = config.init_tokens(language, task, case["return_timestamps"].as_bool().unwrap(), detected);
            match (&case["expected"]["ids"], got) {
                (Value::Array(want), Ok(got)) => {
                    let want: Vec<u32> = want.iter().map(|x| x.as_u64().unwrap() as u32).collect();
                    assert_eq!(got, want, "{case}");
                }
                (Value::Null, Err(_)) => {}
                (_, got) => panic!("{case}: got {got:?}"),
            }
            checked += 1;
        }
        assert!(checked > 100);
    }

    #[test]
    fn english_only_refuses_language_and_task() {
        let gc = json!({"decoder_start_token_id": 50257, "no_timestamps_token_id": 50362, "is_multilingual": false, "forced_decoder_ids": [[1, 50362]]});
        let config = WhisperGenerationConfig::from_json(&gc, &|_| None).unwrap();
        assert_eq!(config.init_tokens(None, None, false, None).unwrap(), vec![50257, 50362]);
        assert_eq!(config.init_tokens(None, None, true, None).unwrap(), vec![50257]);
        assert!(config.init_tokens(Some("en"), None, false, None).unwrap_err().to_string().contains("English-only"));
        assert!(config.init_tokens(None, Some("translate"), false, None).is_err());
        assert!(!config.needs_language_detection(None, None));
    }

    #[test]
    fn detects_the_most_likely_language_token() {
        let gc = json!({"decoder_start_token_id": 3, "lang_to_id": {"<|en|>": 4, "<|fr|>": 5, "<|de|>": 6}});
        let config = WhisperGenerationConfig::from_json(&gc, &|_| None).unwrap();
        assert_eq!(config.detect_language(&[9.0, 9.0, 9.0, 9.0, 1.0, 3.0, 2.0]).unwrap(), 5);
        assert!(config.detect_language(&[0.0; 5]).is_err());
    }
}
