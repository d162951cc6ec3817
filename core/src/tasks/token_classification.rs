//! token-classification (ner): a label for every token of a text, or entities grouped from
//! them, as Python transformers' TokenClassificationPipeline computes them (4.57). The functions
//! below mirror its `postprocess`: `gather_pre_entities` (softmax scores, offsets, which tokens
//! continue a word), `aggregate` (`aggregate_words` / `aggregate_word` for first, average and
//! max), `group_entities` / `group_sub_entities`, then `ignore_labels` filtering.
//!
//! A text longer than the model's maximum length is truncated (as transformers.js does; Python
//! would fail, or window it with `stride`, which is not offered here).

use serde_json::Value;

use super::text_encoder::{TextEncoderTask, softmax};
use super::{Input, InputKind, LoadOptions, LocalFuture, OneOrMany, Output, Pipeline, TaskInfo, score};
use crate::files::ModelFiles;
use crate::models::HeadKind;
use crate::tokenizer::Encoded;
use crate::{Device, Error, Result};

pub static TASK: TaskInfo = TaskInfo {
    name: "token-classification",
    aliases: &["ner"],
    default_model: "Xenova/bert-base-multilingual-cased-ner-hrl",
    input: InputKind::Text,
    required_files: &["config.json", "tokenizer.json"],
    optional_files: &["tokenizer_config.json"],
    load: |files, device, options| Ok(Box::new(TokenClassification::load(files, device, options)?)),
};

/// How tokens become entities (Python's `AggregationStrategy`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AggregationStrategy {
    /// Every token on its own, with its index.
    #[default]
    None,
    /// Adjacent tokens with the same tag grouped (B- starts a new group).
    Simple,
    /// Words first (a word's tag is its first token's), then grouped as `Simple`.
    First,
    /// Words first (a word's tag is the best of its tokens' mean scores), then grouped.
    Average,
    /// Words first (a word's tag is that of its most confident token), then grouped.
    Max,
}

impl AggregationStrategy {
    const NAMES: &str = "\"none\", \"simple\", \"first\", \"average\" or \"max\"";

    /// By name, in any case (Python looks `name.upper()` up in the enum).
    fn parse(name: &str) -> Result<AggregationStrategy> {
        Ok(match name.to_ascii_lowercase().as_str() {
            "none" => AggregationStrategy::None,
            "simple" => AggregationStrategy::Simple,
            "first" => AggregationStrategy::First,
            "average" => AggregationStrategy::Average,
            "max" => AggregationStrategy::Max,
            _ => {
                return Err(Error::Input(format!(
                    "token-classification: unknown aggregation_strategy {name:?}; it is one of {}",
                    Self::NAMES
                )));
            }
        })
    }
}

#[derive(Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Options {
    /// Labels left out of the result; absent: ["O"].
    ignore_labels: Option<Vec<String>>,
    aggregation_strategy: Option<String>,
}

/// One token of the text, before aggregation (Python's `pre_entity` dict).
struct PreEntity {
    /// The token as the vocabulary spells it (`##ing`, `Ġthe`), or the text it covers when it
    /// is the unknown token.
    word: String,
    /// Softmax over the labels.
    scores: Vec<f64>,
    /// Character offsets into the text.
    start: usize,
    end: usize,
    /// The token's position in the encoding (special tokens counted).
    index: usize,
    /// Whether the token continues the previous token's word.
    is_subword: bool,
}

/// A labelled token or word (Python's `entity` dict); `index` only for tokens.
struct Entity {
    entity: String,
    score: f64,
    index: Option<usize>,
    word: String,
    start: usize,
    end: usize,
}

/// Adjacent entities grouped under one tag (Python's `entity_group` dict).
struct EntityGroup {
    entity_group: String,
    score: f64,
    word: String,
    start: usize,
    end: usize,
}

pub struct TokenClassification {
    base: TextEncoderTask,
    /// The unknown token's id (Python's `tokenizer.unk_token_id`): such a token's word is the
    /// text it covers, and it never continues a word.
    unk_id: Option<u32>,
    /// Whether the tokenizer marks word-continuing pieces (WordPiece's `##`); if not, a token
    /// continues a word when no space precedes it (Python's fallback heuristic).
    word_aware: bool,
}

impl TokenClassification {
    pub fn load(files: &dyn ModelFiles, device: &Device, options: &LoadOptions) -> Result<TokenClassification> {
        let base = TextEncoderTask::load(files, device, options, Some(HeadKind::TokenClassification))?;
        let unk_id =
            base.special_token("unk_token").or_else(|| base.tokenizer.model_unk_token()).and_then(|t| base.tokenizer.token_to_id(&t));
        let word_aware = base.tokenizer.continuing_subword_prefix().is_some();
        Ok(TokenClassification { base, unk_id, word_aware })
    }

    /// Python's `gather_pre_entities`: every token but the special ones, with its scores, its
    /// span of `sentence` and whether it continues a word.
    fn gather_pre_entities(&self, sentence: &[char], encoded: &Encoded, logits: &[f32]) -> Vec<PreEntity> {
        let width = logits.len() / encoded.len().max(1);
        let mut pre_entities = Vec::new();
        for (idx, token_logits) in logits.chunks(width.max(1)).enumerate().take(encoded.len()) {
            if encoded.special[idx] {
                continue;
            }
            let id = encoded.ids[idx];
            let mut word = self.base.tokenizer.id_to_token(id).unwrap_or_default();
            let (start, end) = encoded.offsets[idx];
            let word_ref: String = slice(sentence, start, end).iter().collect();
            let mut is_subword = if self.word_aware {
                // A word-aware tokenizer's continuing piece carries its prefix, so it is longer
                // (or shorter, normalized) than the text it covers.
                word.chars().count() != word_ref.chars().count()
            } else {
                // The fallback: a token not preceded by a space continues a word (wrong for
                // punctuation, as Python's comment admits, but what it computes).
                start > 0 && !slice(sentence, start - 1, start + 1).contains(&' ')
            };
            if Some(id) == self.unk_id {
                word = word_ref;
                is_subword = false;
            }
            pre_entities.push(PreEntity { word, scores: softmax(token_logits), start, end, index: idx, is_subword });
        }
        pre_entities
    }

    /// Python's `aggregate`: tokens labelled one by one (none, simple) or as words (first,
    /// average, max); grouped unless the strategy is none.
    fn aggregate(&self, pre_entities: Vec<PreEntity>, strategy: AggregationStrategy) -> Result<Aggregated> {
        let entities = match strategy {
            AggregationStrategy::None | AggregationStrategy::Simple => pre_entities
                .into_iter()
                .map(|pre| {
                    let entity_idx = argmax(&pre.scores);
                    Entity {
                        entity: self.base.label(entity_idx),
                        score: pre.scores[entity_idx],
                        index: Some(pre.index),
                        word: pre.word,
                        start: pre.start,
                        end: pre.end,
                    }
                })
                .collect(),
            _ => self.aggregate_words(&pre_entities, strategy)?,
        };
        if strategy == AggregationStrategy::None {
            return Ok(Aggregated::Tokens(entities));
        }
        Ok(Aggregated::Groups(self.group_entities(&entities)?))
    }

    /// Python's `aggregate_word`: one word's tokens as one entity, its tag chosen by `strategy`.
    fn aggregate_word(&self, entities: &[&PreEntity], strategy: AggregationStrategy) -> Result<Entity> {
        let tokens: Vec<String> = entities.iter().map(|e| e.word.clone()).collect();
        let word = self.base.tokenizer.convert_tokens_to_string(&tokens)?;
        let (idx, score) = match strategy {
            AggregationStrategy::First => {
                let scores = &entities[0].scores;
                let idx = argmax(scores);
                (idx, scores[idx])
            }
            AggregationStrategy::Max => {
                // Python's `max(..., key=)`: the first token whose best score is the highest.
                let best = |e: &PreEntity| e.scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let mut max_entity = entities[0];
                for e in &entities[1..] {
                    if best(e) > best(max_entity) {
                        max_entity = e;
                    }
                }
                let idx = argmax(&max_entity.scores);
                (idx, max_entity.scores[idx])
            }
            AggregationStrategy::Average => {
                let labels = entities[0].scores.len();
                let average_scores: Vec<f64> = (0..labels).map(|l| nanmean(entities.iter().map(|e| e.scores[l]))).collect();
                let idx = argmax(&average_scores);
                (idx, average_scores[idx])
            }
            AggregationStrategy::None | AggregationStrategy::Simple => {
                return Err(Error::Input("none and simple strategies are invalid for word aggregation".into()));
            }
        };
        Ok(Entity {
            entity: self.base.label(idx),
            score,
            index: None,
            word,
            start: entities[0].start,
            end: entities[entities.len() - 1].end,
        })
    }

    /// Python's `aggregate_words`: tokens gathered into words (a token that is not a subword
    /// starts one), each word one entity, so that a word never ends up split between tags.
    fn aggregate_words(&self, pre_entities: &[PreEntity], strategy: AggregationStrategy) -> Result<Vec<Entity>> {
        let mut word_entities = Vec::new();
        let mut word_group: Vec<&PreEntity> = Vec::new();
        for entity in pre_entities {
            if !word_group.is_empty() && !entity.is_subword {
                word_entities.push(self.aggregate_word(&word_group, strategy)?);
                word_group.clear();
            }
            word_group.push(entity);
        }
        if !word_group.is_empty() {
            word_entities.push(self.aggregate_word(&word_group, strategy)?);
        }
        Ok(word_entities)
    }

    /// Python's `group_sub_entities`: adjacent entities of one tag as a group, its tag the first
    /// entity's without the part up to the first `-` (`B-PER` → `PER`), its score their mean.
    fn group_sub_entities(&self, entities: &[&Entity]) -> Result<EntityGroup> {
        let first = &entities[0].entity;
        let entity_group = first.split_once('-').map_or(first.as_str(), |(_, rest)| rest).to_string();
        let tokens: Vec<String> = entities.iter().map(|e| e.word.clone()).collect();
        Ok(EntityGroup {
            entity_group,
            score: nanmean(entities.iter().map(|e| e.score)),
            word: self.base.tokenizer.convert_tokens_to_string(&tokens)?,
            start: entities[0].start,
            end: entities[entities.len() - 1].end,
        })
    }

    /// Python's `group_entities`: an entity joins the previous one's group when it has the same
    /// tag and does not begin a new entity (`B-`).
    fn group_entities(&self, entities: &[Entity]) -> Result<Vec<EntityGroup>> {
        let mut entity_groups = Vec::new();
        let mut entity_group_disagg: Vec<&Entity> = Vec::new();
        for entity in entities {
            if let Some(last) = entity_group_disagg.last() {
                let (bi, tag) = get_tag(&entity.entity);
                let (_, last_tag) = get_tag(&last.entity);
                if !(tag == last_tag && bi != "B") {
                    entity_groups.push(self.group_sub_entities(&entity_group_disagg)?);
                    entity_group_disagg.clear();
                }
            }
            entity_group_disagg.push(entity);
        }
        if !entity_group_disagg.is_empty() {
            entity_groups.push(self.group_sub_entities(&entity_group_disagg)?);
        }
        Ok(entity_groups)
    }

    /// Python's `postprocess` for one text: the entities as JSON, `ignore_labels` left out.
    fn postprocess(
        &self,
        sentence: &str,
        encoded: &Encoded,
        logits: &[f32],
        strategy: AggregationStrategy,
        ignore_labels: &[String],
    ) -> Result<Value> {
        let sentence: Vec<char> = sentence.chars().collect();
        let pre_entities = self.gather_pre_entities(&sentence, encoded, logits);
        let ignored = |label: &String| ignore_labels.contains(label);
        Ok(Value::Array(match self.aggregate(pre_entities, strategy)? {
            Aggregated::Tokens(entities) => entities
                .into_iter()
                .filter(|e| !ignored(&e.entity))
                .map(|e| {
                    serde_json::json!({
                        "entity": e.entity,
                        "score": score(e.score as f32),
                        "index": e.index,
                        "word": e.word,
                        "start": e.start,
                        "end": e.end,
                    })
                })
                .collect(),
            Aggregated::Groups(groups) => groups
                .into_iter()
                .filter(|g| !ignored(&g.entity_group))
                .map(|g| {
                    serde_json::json!({
                        "entity_group": g.entity_group,
                        "score": score(g.score as f32),
                        "word": g.word,
                        "start": g.start,
                        "end": g.end,
                    })
                })
                .collect(),
        }))
    }
}

/// What `aggregate` returns: labelled tokens (none), or groups (every other strategy).
enum Aggregated {
    Tokens(Vec<Entity>),
    Groups(Vec<EntityGroup>),
}

/// Python's `get_tag`: (`B` or `I`, tag); a label without a B-/I- prefix continues (`I`).
fn get_tag(entity_name: &str) -> (&str, &str) {
    if let Some(tag) = entity_name.strip_prefix("B-") {
        ("B", tag)
    } else if let Some(tag) = entity_name.strip_prefix("I-") {
        ("I", tag)
    } else {
        ("I", entity_name)
    }
}

/// numpy's argmax: the first index of the largest value.
fn argmax(xs: &[f64]) -> usize {
    let mut best = 0;
    for (i, &x) in xs.iter().enumerate() {
        if x > xs[best] {
            best = i;
        }
    }
    best
}

/// numpy's nanmean: the mean of the values that are not NaN (NaN when none is).
fn nanmean(xs: impl Iterator<Item = f64>) -> f64 {
    let (sum, n) = xs.filter(|x| !x.is_nan()).fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
    sum / n as f64
}

/// `chars[start..end]` clamped to the text, as Python's slicing is.
fn slice(chars: &[char], start: usize, end: usize) -> &[char] {
    let end = end.min(chars.len());
    &chars[start.min(end)..end]
}

impl Pipeline for TokenClassification {
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
            let texts: OneOrMany<String> = TASK.input(input, "a string or an array of strings")?;
            let options: Options = TASK.options(options)?;
            let strategy = options.aggregation_strategy.as_deref().map(AggregationStrategy::parse).transpose()?.unwrap_or_default();
            let ignore_labels = options.ignore_labels.unwrap_or_else(|| vec!["O".to_string()]);
            let items = texts.items();
            let encodings = items.iter().map(|t| self.base.tokenizer.encode_full(t, None)).collect::<Result<Vec<_>>>()?;
            let logits = self.base.head_outputs(&encodings).await?;
            let mut results = items
                .iter()
                .zip(&encodings)
                .zip(&logits)
                .map(|((text, encoded), logits)| self.postprocess(text, encoded, logits, strategy, &ignore_labels))
                .collect::<Result<Vec<_>>>()?;
            Ok(Output::Json(match texts {
                OneOrMany::One(_) => results.remove(0),
                OneOrMany::Many(_) => Value::Array(results),
            }))
        })
    }

    fn info(&self) -> Value {
        serde_json::json!({ "labels": self.base.config.id2label })
    }
}
