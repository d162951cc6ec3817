//! `GenerationConfig`: a model's generation defaults (generation_config.json, else config.json)
//! with the call's options over them, named as transformers (and transformers.js) name them.

use serde_json::{Map, Value};

use crate::{Error, Result};

#[derive(Clone, Debug, PartialEq)]
pub struct GenerationConfig {
    /// The most tokens to generate.
    pub max_new_tokens: usize,
    /// The most tokens in all (prompt + generated), from a model's `max_length` (Whisper's 448);
    /// `None` when `max_new_tokens` alone bounds generation (an explicit `max_new_tokens` clears it,
    /// as in transformers).
    pub max_length: Option<usize>,
    /// Sample instead of taking the most likely token.
    pub do_sample: bool,
    /// Sampling only; 1.0 is none.
    pub temperature: f32,
    /// Sampling only; 0 keeps every token.
    pub top_k: usize,
    /// Sampling only; 1.0 keeps every token.
    pub top_p: f32,
    /// 1.0 is none.
    pub repetition_penalty: f32,
    /// 0 is none.
    pub no_repeat_ngram_size: usize,
    /// The seed of the sampler (SplitMix64), so that sampled generations reproduce.
    pub seed: u64,
    /// Generation stops after any of these.
    pub eos_token_ids: Vec<u32>,
    /// Never generated.
    pub suppress_tokens: Vec<u32>,
    /// Not generated as the first new token.
    pub begin_suppress_tokens: Vec<u32>,
    /// `(position, token)`: the token at that position of the whole sequence (prompt included),
    /// as `forced_decoder_ids` counts; with a prompt of n tokens, position n is the first new one.
    pub forced_tokens: Vec<(usize, u32)>,
    /// Generation stops before any of these strings (they are not returned).
    pub stop_strings: Vec<String>,
    pub decoder_start_token_id: Option<u32>,
    pub bos_token_id: Option<u32>,
    pub pad_token_id: Option<u32>,
    /// Beams of beam search; 1 is greedy decoding or sampling (`generate`), more is `beam_search`.
    pub num_beams: usize,
    /// Beam search: a finished hypothesis scores sum(log-probs) / new_tokens^length_penalty.
    pub length_penalty: f32,
    /// Beam search: when it stops (transformers' `early_stopping`).
    pub early_stopping: EarlyStopping,
    /// Beam search: how many of the best hypotheses are returned (at most `num_beams`).
    pub num_return_sequences: usize,
    /// No EOS before the whole sequence (prompt included) is this long.
    pub min_length: usize,
    /// No EOS before this many new tokens.
    pub min_new_tokens: usize,
}

/// transformers' `early_stopping` of beam search: `true`, `false` or `"never"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum EarlyStopping {
    /// `false` (the default): stop when the best running beam, scored at its current length, can
    /// no longer beat the worst of `num_beams` finished hypotheses.
    #[default]
    Heuristic,
    /// `true`: stop as soon as `num_beams` hypotheses are finished.
    WhenFull,
    /// `"never"`: as `false`, but with a positive length penalty the running beam is scored at
    /// the longest length it could reach (the canonical beam search stopping rule).
    Never,
}

impl EarlyStopping {
    fn from_json(v: &Value) -> Option<EarlyStopping> {
        match v {
            Value::Bool(true) => Some(EarlyStopping::WhenFull),
            Value::Bool(false) => Some(EarlyStopping::Heuristic),
            Value::String(s) if s == "never" => Some(EarlyStopping::Never),
            _ => None,
        }
    }
}

impl<'de> serde::Deserialize<'de> for EarlyStopping {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<EarlyStopping, D::Error> {
        let v = Value::deserialize(d)?;
        EarlyStopping::from_json(&v).ok_or_else(|| serde::de::Error::custom(format!("expected true, false or \"never\", not {v}")))
    }
}

impl Default for GenerationConfig {
    fn default() -> Self {
        // transformers' defaults (top_k 50 and top_p 1.0 apply only when sampling), except the
        // length: 256 new tokens rather than a total of 20.
        GenerationConfig {
            max_new_tokens: 256,
            max_length: None,
            do_sample: false,
            temperature: 1.0,
            top_k: 50,
            top_p: 1.0,
            repetition_penalty: 1.0,
            no_repeat_ngram_size: 0,
            seed: 0,
            eos_token_ids: Vec::new(),
            suppress_tokens: Vec::new(),
            begin_suppress_tokens: Vec::new(),
            forced_tokens: Vec::new(),
            stop_strings: Vec::new(),
            decoder_start_token_id: None,
            bos_token_id: None,
            pad_token_id: None,
            num_beams: 1,
            length_penalty: 1.0,
            early_stopping: EarlyStopping::Heuristic,
            num_return_sequences: 1,
            min_length: 0,
            min_new_tokens: 0,
        }
    }
}

/// The generation options a call may give (transformers.js's names), all optional.
#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Overrides {
    max_new_tokens: Option<usize>,
    max_length: Option<usize>,
    do_sample: Option<bool>,
    temperature: Option<f32>,
    top_k: Option<usize>,
    top_p: Option<f32>,
    repetition_penalty: Option<f32>,
    no_repeat_ngram_size: Option<usize>,
    seed: Option<u64>,
    eos_token_id: Option<OneOrMany<u32>>,
    suppress_tokens: Option<Vec<u32>>,
    begin_suppress_tokens: Option<Vec<u32>>,
    forced_decoder_ids: Option<Vec<(usize, u32)>>,
    /// `stop` is webformers' older name for `stop_strings`.
    stop: Option<OneOrMany<String>>,
    stop_strings: Option<OneOrMany<String>>,
    num_beams: Option<usize>,
    length_penalty: Option<f32>,
    early_stopping: Option<EarlyStopping>,
    num_return_sequences: Option<usize>,
    min_length: Option<usize>,
    min_new_tokens: Option<usize>,
}

#[derive(serde::Deserialize)]
#[serde(untagged)]
enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

impl<T> OneOrMany<T> {
    fn into_vec(self) -> Vec<T> {
        match self {
            OneOrMany::One(x) => vec![x],
            OneOrMany::Many(v) => v,
        }
    }
}

/// The option names `take_options` takes out of a call's options.
pub const OPTION_NAMES: &[&str] = &[
    "max_new_tokens",
    "max_length",
    "do_sample",
    "temperature",
    "top_k",
    "top_p",
    "repetition_penalty",
    "no_repeat_ngram_size",
    "seed",
    "eos_token_id",
    "suppress_tokens",
    "begin_suppress_tokens",
    "forced_decoder_ids",
    "stop",
    "stop_strings",
    "num_beams",
    "length_penalty",
    "early_stopping",
    "num_return_sequences",
    "min_length",
    "min_new_tokens",
];

fn ids(v: &Value) -> Option<Vec<u32>> {
    match v {
        Value::Number(n) => n.as_u64().map(|n| vec![n as u32]),
        Value::Array(list) => Some(list.iter().filter_map(Value::as_u64).map(|n| n as u32).collect()),
        _ => None,
    }
}

impl GenerationConfig {
    /// A model's defaults: each field from `generation` (generation_config.json) when it has it,
    /// else from `config` (config.json, where older models keep them); either may be `Null`.
    pub fn from_json(generation: &Value, config: &Value) -> Result<GenerationConfig> {
        let get = |key: &str| -> &Value {
            match &generation[key] {
                Value::Null => &config[key],
                v => v,
            }
        };
        let bad = |key: &str| Error::Config(format!("generation_config.json: `{key}` is {}", get(key)));
        let mut c = GenerationConfig::default();
        if let Some(n) = get("max_new_tokens").as_u64() {
            c.max_new_tokens = n as usize;
        } else if let Some(n) = get("max_length").as_u64() {
            c.max_length = Some(n as usize);
        }
        c.do_sample = get("do_sample").as_bool().unwrap_or(false);
        let float = |key: &str, default: f32| -> f32 { get(key).as_f64().map(|x| x as f32).unwrap_or(default) };
        c.temperature = float("temperature", 1.0);
        c.top_k = get("top_k").as_u64().map(|k| k as usize).unwrap_or(50);
        c.top_p = float("top_p", 1.0);
        c.repetition_penalty = float("repetition_penalty", 1.0);
        c.no_repeat_ngram_size = get("no_repeat_ngram_size").as_u64().unwrap_or(0) as usize;
        c.eos_token_ids = ids(get("eos_token_id")).unwrap_or_default();
        c.suppress_tokens = ids(get("suppress_tokens")).unwrap_or_default();
        c.begin_suppress_tokens = ids(get("begin_suppress_tokens")).unwrap_or_default();
        c.forced_tokens = match get("forced_decoder_ids") {
            Value::Null => Vec::new(),
            v => serde_json::from_value(v.clone()).map_err(|_| bad("forced_decoder_ids"))?,
        };
        let token = |key: &str| get(key).as_u64().map(|n| n as u32);
        c.decoder_start_token_id = token("decoder_start_token_id");
        c.bos_token_id = token("bos_token_id");
        c.pad_token_id = token("pad_token_id");
        let count = |key: &str, default: usize| -> Result<usize> {
            match get(key) {
                Value::Null => Ok(default),
                v => v.as_u64().map(|n| n as usize).ok_or_else(|| bad(key)),
            }
        };
        c.num_beams = count("num_beams", 1)?;
        c.num_return_sequences = count("num_return_sequences", 1)?;
        c.min_length = count("min_length", 0)?;
        c.min_new_tokens = count("min_new_tokens", 0)?;
        c.length_penalty = float("length_penalty", 1.0);
        c.early_stopping = match get("early_stopping") {
            Value::Null => EarlyStopping::Heuristic,
            v => EarlyStopping::from_json(v).ok_or_else(|| bad("early_stopping"))?,
        };
        c.validate().map_err(|e| Error::Config(format!("generation_config.json: {e}")))?;
        Ok(c)
    }

    /// Takes the generation options (`OPTION_NAMES`) out of a call's `options` and applies them
    /// over this config; returns the options left for the task itself (`Null` when none). `task`
    /// names the call in errors. A wrongly typed value is an error naming it.
    pub fn take_options(&mut self, task: &str, options: &Value) -> Result<Value> {
        let mut rest = match options {
            Value::Null => return Ok(Value::Null),
            Value::Object(map) => map.clone(),
            other => return Err(Error::Input(format!("{task} options must be an object, not {}", crate::tasks::json_kind(other)))),
        };
        let mut mine = Map::new();
        for name in OPTION_NAMES {
            // transformers.js passes `null` for "not given" in places: the default stays.
            if let Some(v) = rest.remove(*name).filter(|v| !v.is_null()) {
                mine.insert(name.to_string(), v);
            }
        }
        // One at a time first, so that a wrongly typed value's error names its option.
        for (key, value) in &mine {
            let one = Value::Object(Map::from_iter([(key.clone(), value.clone())]));
            serde_json::from_value::<Overrides>(one).map_err(|e| Error::Input(format!("{task} options: `{key}`: {e}")))?;
        }
        let o: Overrides = serde_json::from_value(Value::Object(mine)).map_err(|e| Error::Input(format!("{task} options: {e}")))?;
        if let Some(n) = o.max_new_tokens {
            self.max_new_tokens = n;
            self.max_length = None;
        }
        if let Some(n) = o.max_length {
            self.max_length = Some(n);
        }
        macro_rules! set {
            ($($field:ident),*) => { $( if let Some(v) = o.$field { self.$field = v; } )* };
        }
        set!(do_sample, temperature, top_k, top_p, repetition_penalty, no_repeat_ngram_size, seed, suppress_tokens, begin_suppress_tokens);
        set!(num_beams, length_penalty, early_stopping, num_return_sequences, min_length, min_new_tokens);
        if let Some(v) = o.eos_token_id {
            self.eos_token_ids = v.into_vec();
        }
        if let Some(v) = o.forced_decoder_ids {
            self.forced_tokens = v;
        }
        if let Some(v) = o.stop_strings.or(o.stop) {
            self.stop_strings = v.into_vec();
        }
        self.validate().map_err(|e| match e {
            Error::Input(m) => Error::Input(format!("{task} options: {m}")),
            e => e,
        })?;
        Ok(if rest.is_empty() { Value::Null } else { Value::Object(rest) })
    }

    /// Values generation cannot run with are a clear error (transformers refuses the same ones).
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Input(m));
        if self.max_new_tokens == 0 {
            return bad("max_new_tokens is 0".into());
        }
        if self.max_length == Some(0) {
            return bad("max_length is 0".into());
        }
        if !(self.temperature.is_finite() && self.temperature > 0.0) && self.do_sample {
            return bad(format!("temperature must be a positive number to sample, not {}", self.temperature));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return bad(format!("top_p must be in (0, 1], not {}", self.top_p));
        }
        if !(self.repetition_penalty.is_finite() && self.repetition_penalty > 0.0) {
            return bad(format!("repetition_penalty must be a positive number, not {}", self.repetition_penalty));
        }
        if self.num_beams == 0 {
            return bad("num_beams must be at least 1, not 0".into());
        }
        if !self.length_penalty.is_finite() {
            return bad(format!("length_penalty must be a finite number, not {}", self.length_penalty));
        }
        if self.num_return_sequences == 0 {
            return bad("num_return_sequences must be at least 1, not 0".into());
        }
        if self.num_beams > 1 && self.num_return_sequences > self.num_beams {
            return bad(format!("num_return_sequences ({}) must be at most num_beams ({})", self.num_return_sequences, self.num_beams));
        }
        if self.num_beams == 1 && self.num_return_sequences > 1 && !self.do_sample {
            // transformers refuses it too: greedy decoding would return the same sequence n times.
            return bad(format!(
                "num_return_sequences ({}) needs do_sample: true (or num_beams at least as large): greedy decoding gives one sequence",
                self.num_return_sequences
            ));
        }
        Ok(())
    }

    /// The config of the `i`-th of `num_return_sequences` sampled sequences (no beams): one
    /// sequence, seeded `seed + i`, so that each sequence reproduces on its own and the first is
    /// the single sequence of the same seed. (transformers samples them as one batch from one
    /// torch generator; its draws are not reproducible here anyway, so independence is what
    /// matters.)
    pub fn for_sequence(&self, i: usize) -> GenerationConfig {
        GenerationConfig { seed: self.seed.wrapping_add(i as u64), num_return_sequences: 1, ..self.clone() }
    }

    /// How many independently sampled sequences a call returns: `num_return_sequences` when
    /// sampling without beams, else 1 (beam search returns its own best ones).
    pub fn sampled_sequences(&self) -> usize {
        if self.num_beams == 1 && self.do_sample { self.num_return_sequences } else { 1 }
    }

    /// The most new tokens for a prompt of `prompt_len` tokens (`max_length` counts the prompt).
    pub fn max_new_for(&self, prompt_len: usize) -> usize {
        match self.max_length {
            Some(total) => self.max_new_tokens.min(total.saturating_sub(prompt_len)),
            None => self.max_new_tokens,
        }
    }
}
