//! transformers' stopping criteria: EOS ids, stop strings, the most new tokens. (The interrupt
//! is checked by `generate` itself, before every step.)

use super::{GenerationConfig, Step, StopReason, StoppingCriterion};
use crate::{Error, Result};

/// The standard criteria for `config` and a prompt of `prompt_len` tokens, in the order their
/// reasons win: EOS, stop strings, then the length.
pub fn criteria_for(config: &GenerationConfig, prompt_len: usize) -> Result<Vec<Box<dyn StoppingCriterion>>> {
    let max_new = config.max_new_for(prompt_len);
    if max_new == 0 {
        return Err(Error::Input(format!(
            "the prompt has {prompt_len} tokens: max_length {} leaves no room for new ones",
            config.max_length.unwrap_or(0)
        )));
    }
    let mut list: Vec<Box<dyn StoppingCriterion>> = Vec::new();
    if !config.eos_token_ids.is_empty() {
        list.push(Box::new(EosTokens { ids: config.eos_token_ids.clone() }));
    }
    if !config.stop_strings.is_empty() {
        list.push(Box::new(StopStrings::new(&config.stop_strings)));
    }
    list.push(Box::new(MaxNewTokens { max_new_tokens: max_new }));
    Ok(list)
}

/// Stops once the last token is one of `ids`.
pub struct EosTokens {
    pub ids: Vec<u32>,
}

impl StoppingCriterion for EosTokens {
    fn stop(&mut self, step: &Step, _text: &str) -> Option<StopReason> {
        step.ids.last().filter(|t| self.ids.contains(t)).map(|_| StopReason::Eos)
    }
}

/// Stops once `max_new_tokens` tokens were generated.
pub struct MaxNewTokens {
    pub max_new_tokens: usize,
}

impl StoppingCriterion for MaxNewTokens {
    fn stop(&mut self, step: &Step, _text: &str) -> Option<StopReason> {
        (step.generated().len() >= self.max_new_tokens).then_some(StopReason::MaxTokens)
    }
}

/// Stops once the generated text contains one of the strings (the `TextStreamer` cuts the text
/// before it).
pub struct StopStrings {
    pub strings: Vec<String>,
}

impl StopStrings {
    pub fn new(strings: &[String]) -> StopStrings {
        StopStrings { strings: strings.iter().filter(|s| !s.is_empty()).cloned().collect() }
    }
}

impl StoppingCriterion for StopStrings {
    fn stop(&mut self, _step: &Step, text: &str) -> Option<StopReason> {
        self.strings.iter().any(|s| text.contains(s.as_str())).then_some(StopReason::StopString)
    }
}
