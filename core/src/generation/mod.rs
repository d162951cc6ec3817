//! Generation as a library: the token-by-token loop that every decoder shares (decoder-only
//! models and encoder-decoder ones alike), with transformers' logits processors, stopping
//! criteria and streamers.
//!
//! A model plugs in through one closure, `step(ids) -> logits [1, V]`, which appends `ids` to its
//! own cache (a KV cache, plus cross-attention K/V for an encoder-decoder) and returns the lazy
//! logits of the last position. `generate` then picks the next token:
//! - greedy with masking-only processors (suppress, begin-suppress, forced tokens, no-repeat
//!   n-gram): the banned ids become an additive [1, V] mask added on the device, and only the
//!   argmax (one u32) is read back;
//! - sampling, or any processor that must see the values (repetition penalty, temperature,
//!   top-k/top-p, Whisper's timestamp rules): the logits row is read back and every processor
//!   rewrites it on the host in list order, then argmax or a seeded draw.
//!
//! Beam search (`beam_search`, beam.rs) is the other loop, for `num_beams > 1`: the model side
//! is a `Beams` (one cache per beam, reordered on the device), the processors are the same.
//!
//! Adding a processor: implement `LogitsProcessor` (in processors.rs, or in the caller's code:
//! the list is open); return the banned ids from `banned` when banning is all it does, so greedy
//! decoding stays on the device. `processors_for` builds transformers' standard list in its order.

mod beam;
mod config;
pub mod processors;
pub mod stopping;
pub mod streamer;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::{Error, Result, Tensor};

pub use beam::{Beams, Hypothesis, beam_search, log_softmax};
pub use config::{EarlyStopping, GenerationConfig, OPTION_NAMES};
pub use processors::{
    ForceTokens, MinLength, MinNewTokens, NoRepeatNGram, RepetitionPenalty, SplitMix64, SuppressTokens, SuppressTokensAtBegin, Temperature,
    TopK, TopP, argmax, processors_for, sample,
};
pub use stopping::{EosTokens, MaxNewTokens, StopStrings, criteria_for};
pub use streamer::{TextStream, TextStreamer};

/// What a processor or criterion sees at one step.
#[derive(Clone, Copy, Debug)]
pub struct Step<'a> {
    /// The prompt (the decoder prompt of an encoder-decoder) and the tokens generated so far.
    pub ids: &'a [u32],
    pub prompt_len: usize,
}

impl Step<'_> {
    /// The tokens generated so far (after the prompt).
    pub fn generated(&self) -> &[u32] {
        &self.ids[self.prompt_len.min(self.ids.len())..]
    }
}

/// Rewrites one step's next-token logits, as a transformers `LogitsProcessor` does.
pub trait LogitsProcessor {
    /// The ids this processor bans at this step when banning is all it does: they get an additive
    /// -huge mask on the device, so greedy decoding still reads back only the argmax. `None`: it
    /// needs `process` (the values on the host) at this step.
    fn banned(&self, _step: &Step) -> Option<Vec<u32>> {
        None
    }
    /// The one token this processor allows at this step (every other one is banned), if any:
    /// forced tokens, applied on the device as a mask too.
    fn forced(&self, _step: &Step) -> Option<u32> {
        None
    }
    /// Rewrites this step's logits [V] on the host (called, in list order, when the step's
    /// logits are read back: sampling, or a processor whose `banned` is `None`).
    fn process(&mut self, step: &Step, logits: &mut [f32]) -> Result<()>;
}

/// Why generation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// An end-of-sequence token was generated (it is the last of `token_ids`).
    Eos,
    /// The text reached a stop string.
    StopString,
    /// `max_new_tokens` (or `max_length`) tokens.
    MaxTokens,
    /// The `Interrupt` was set (from JS: an `AbortSignal` or `InterruptableStoppingCriteria`).
    Interrupted,
}

impl StopReason {
    /// The name results carry (`stats.stop_reason`).
    pub fn name(self) -> &'static str {
        match self {
            StopReason::Eos => "eos",
            StopReason::StopString => "stop_string",
            StopReason::MaxTokens => "max_tokens",
            StopReason::Interrupted => "interrupted",
        }
    }
}

/// Decides, after each new token, whether generation ends (transformers' `StoppingCriteria`).
pub trait StoppingCriterion {
    /// `step.ids` ends with the new token; `text_so_far` is the streamer's decoded text of the
    /// generated tokens ("" without a text streamer).
    fn stop(&mut self, step: &Step, text_so_far: &str) -> Option<StopReason>;
}

/// Receives the new token ids as they are generated (a text streamer decodes them).
pub trait Streamer {
    fn put(&mut self, ids: &[u32]) -> Result<()>;
    /// Generation has ended: flush what was held back.
    fn end(&mut self) -> Result<()>;
    /// The decoded text of every token put so far, for stop strings; `None` if this streamer
    /// does not decode.
    fn text(&self) -> Option<&str> {
        None
    }
    /// Another sequence of the same call starts (sampling with `num_return_sequences`): forget
    /// the text put so far.
    fn restart(&mut self) {}
}

/// An interrupt flag that JS sets (an `AbortSignal`, transformers.js's
/// `InterruptableStoppingCriteria`, `pipeline.call("interrupt")`); `generate` checks it before
/// every step. It stays set until `reset`.
#[derive(Clone, Debug, Default)]
pub struct Interrupt(Arc<AtomicBool>);

impl Interrupt {
    pub fn new() -> Interrupt {
        Interrupt::default()
    }
    pub fn interrupt(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
    pub fn reset(&self) {
        self.0.store(false, Ordering::SeqCst);
    }
    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// What `generate` returns.
#[derive(Clone, Debug, PartialEq)]
pub struct Generation {
    /// The generated ids only (an ending EOS included).
    pub token_ids: Vec<u32>,
    pub stop_reason: StopReason,
    /// Time to the first generated token (the prompt's forward pass).
    pub prefill_seconds: f64,
    /// Time for the tokens after the first.
    pub decode_seconds: f64,
}

/// The additive mask value of a banned id: the lowest finite f32, uploaded as data (WGSL
/// compilers refuse infinite or out-of-range literals, so no shader spells it).
pub const MASKED: f32 = f32::MIN;

/// The loop, shared by decoder-only and encoder-decoder models. `step(input_ids)` appends the ids
/// to the model's cache and returns lazy logits [1, V] of the last position; it is called with
/// the prompt first, then with each new token. The stopping criteria are `criteria_for(config)`
/// (EOS ids, stop strings, max tokens) and the interrupt.
pub async fn generate(
    step: &mut dyn FnMut(&[u32]) -> Result<Tensor>,
    prompt: &[u32],
    config: &GenerationConfig,
    processors: &mut [Box<dyn LogitsProcessor>],
    streamer: Option<&mut dyn Streamer>,
    interrupt: &Interrupt,
) -> Result<Generation> {
    config.validate()?;
    let mut criteria = criteria_for(config, prompt.len())?;
    generate_with_criteria(step, prompt, config, processors, &mut criteria, streamer, interrupt).await
}

/// `generate` with the caller's stopping criteria instead of `criteria_for(config)` (add to
/// that list to keep the standard ones).
pub async fn generate_with_criteria(
    step: &mut dyn FnMut(&[u32]) -> Result<Tensor>,
    prompt: &[u32],
    config: &GenerationConfig,
    processors: &mut [Box<dyn LogitsProcessor>],
    criteria: &mut [Box<dyn StoppingCriterion>],
    mut streamer: Option<&mut dyn Streamer>,
    interrupt: &Interrupt,
) -> Result<Generation> {
    config.validate()?;
    if prompt.is_empty() {
        return Err(Error::Input("generation needs a prompt of at least one token".into()));
    }
    if !config.stop_strings.is_empty() && streamer.as_ref().and_then(|s| s.text()).is_none() {
        return Err(Error::Config("stop strings need a streamer that decodes text (TextStreamer)".into()));
    }
    let mut rng = SplitMix64::new(config.seed);
    let mut mask = DeviceMask::default();
    let mut ids = prompt.to_vec();
    let prompt_len = prompt.len();
    let start = time::now();
    let mut first_token_at = None;
    let mut input = prompt.to_vec();
    let stop_reason = loop {
        // A single-threaded wasm loop never hands the JS event loop a turn on its own; without
        // this, an AbortSignal's abort event (or a worker's "interrupt" message) would only be
        // delivered after generation ended.
        #[cfg(target_arch = "wasm32")]
        time::yield_to_event_loop().await;
        if interrupt.is_set() {
            break StopReason::Interrupted;
        }
        let logits = step(&input)?;
        let vocab = *logits.dims().last().unwrap_or(&0);
        if logits.numel() != vocab || vocab == 0 {
            return Err(Error::Input(format!("generate: the step must return logits [1, V], not {:?}", logits.dims())));
        }
        let at = Step { ids: &ids, prompt_len };
        let plans: Vec<Option<Vec<u32>>> = processors.iter().map(|p| p.banned(&at)).collect();
        let next = if config.do_sample || plans.iter().any(Option::is_none) {
            let mut row = logits.to_vec_f32().await?;
            for p in processors.iter_mut() {
                p.process(&at, &mut row)?;
            }
            if config.do_sample { sample(&row, &mut rng) } else { argmax(&row) }
        } else {
            // A forced token overrides the bans before it (ForceTokens comes last in
            // transformers' order and sets every other logit itself).
            let forced = processors.iter().find_map(|p| p.forced(&at));
            let mut banned: Vec<u32> = if forced.is_some() {
                Vec::new()
            } else {
                plans.into_iter().flatten().flatten().filter(|&t| (t as usize) < vocab).collect()
            };
            banned.sort_unstable();
            banned.dedup();
            match mask.get(forced, banned, vocab, logits.device())? {
                Some(m) => logits.add(m)?.argmax()?.to_vec_u32().await?[0],
                None => logits.argmax()?.to_vec_u32().await?[0],
            }
        };
        first_token_at.get_or_insert_with(time::now);
        ids.push(next);
        if let Some(s) = streamer.as_deref_mut() {
            s.put(&[next])?;
        }
        let at = Step { ids: &ids, prompt_len };
        let text = streamer.as_deref().and_then(|s| s.text()).unwrap_or("");
        if let Some(reason) = criteria.iter_mut().find_map(|c| c.stop(&at, text)) {
            break reason;
        }
        input = vec![next];
    };
    if let Some(s) = streamer {
        s.end()?;
    }
    let first = first_token_at.unwrap_or(start);
    Ok(Generation {
        token_ids: ids[prompt_len..].to_vec(),
        stop_reason,
        prefill_seconds: first - start,
        decode_seconds: time::now() - first,
    })
}

/// The device mask of the last step, kept while the banned set stays the same (suppress_tokens
/// never changes; begin-suppress only at the first step), so most steps upload nothing.
#[derive(Default)]
struct DeviceMask {
    key: Option<(Option<u32>, Vec<u32>, usize)>,
    tensor: Option<Tensor>,
}

impl DeviceMask {
    /// The [1, V] additive mask for this step, `None` when nothing is banned.
    fn get(&mut self, forced: Option<u32>, banned: Vec<u32>, vocab: usize, device: &crate::Device) -> Result<Option<&Tensor>> {
        if forced.is_none() && banned.is_empty() {
            return Ok(None);
        }
        let key = (forced, banned, vocab);
        if self.key.as_ref() != Some(&key) {
            let values = mask_values(forced, &key.1, vocab);
            self.tensor = Some(Tensor::from_f32(&values, &[1, vocab], device)?);
            self.key = Some(key);
        }
        Ok(self.tensor.as_ref())
    }
}

/// The additive mask's values: `MASKED` at banned ids (at every id but the forced one, if any).
pub fn mask_values(forced: Option<u32>, banned: &[u32], vocab: usize) -> Vec<f32> {
    let mut values = vec![if forced.is_some() { MASKED } else { 0.0 }; vocab];
    for &t in banned {
        if let Some(v) = values.get_mut(t as usize) {
            *v = MASKED;
        }
    }
    if let Some(v) = forced.and_then(|f| values.get_mut(f as usize)) {
        *v = 0.0;
    }
    values
}

/// Seconds on a monotonic clock, natively and in the browser; and, in wasm, a turn of the event loop.
pub(crate) mod time {
    #[cfg(not(target_arch = "wasm32"))]
    pub fn now() -> f64 {
        use std::sync::OnceLock;
        static START: OnceLock<std::time::Instant> = OnceLock::new();
        START.get_or_init(std::time::Instant::now).elapsed().as_secs_f64()
    }
    #[cfg(target_arch = "wasm32")]
    pub fn now() -> f64 {
        // Date.now() is available in windows, workers and Node alike.
        js_sys::Date::now() / 1000.0
    }

    /// Lets the JS event loop run its pending tasks (events, worker messages) once, at most every
    /// `YIELD_EVERY_MS`: a message posted through a `MessageChannel` is a macrotask (unlike a
    /// resolved promise, a microtask that runs before any event), and, unlike `setTimeout(0)`,
    /// it is not clamped to 4 ms when nested. Where there is no `MessageChannel`, nothing happens.
    #[cfg(target_arch = "wasm32")]
    pub async fn yield_to_event_loop() {
        use std::cell::Cell;
        use wasm_bindgen::{JsCast, JsValue};
        const YIELD_EVERY_MS: f64 = 10.0;
        thread_local!(static LAST: Cell<f64> = const { Cell::new(0.0) });
        let now = js_sys::Date::now();
        if now - LAST.with(Cell::get) < YIELD_EVERY_MS {
            return;
        }
        LAST.with(|l| l.set(now));
        let global = js_sys::global();
        let Ok(ctor) = js_sys::Reflect::get(&global, &JsValue::from_str("MessageChannel")) else { return };
        let Some(ctor) = ctor.dyn_ref::<js_sys::Function>() else { return };
        let Ok(channel) = js_sys::Reflect::construct(ctor, &js_sys::Array::new()) else { return };
        let get = |o: &JsValue, k: &str| js_sys::Reflect::get(o, &JsValue::from_str(k)).unwrap_or(JsValue::UNDEFINED);
        let (port1, port2) = (get(&channel, "port1"), get(&channel, "port2"));
        let promise = js_sys::Promise::new(&mut |resolve, _reject| {
            let resolve_now = resolve.clone();
            // The port closes itself once the message arrives (an open port keeps Node alive).
            let close = get(&port1, "close");
            let port = port1.clone();
            let on_message = wasm_bindgen::closure::Closure::once_into_js(move |_: JsValue| {
                if let Some(close) = close.dyn_ref::<js_sys::Function>() {
                    let _ = close.call0(&port);
                }
                let _ = resolve.call0(&JsValue::NULL);
            });
            let _ = js_sys::Reflect::set(&port1, &JsValue::from_str("onmessage"), &on_message);
            let posted =
                get(&port2, "postMessage").dyn_ref::<js_sys::Function>().is_some_and(|post| post.call1(&port2, &JsValue::NULL).is_ok());
            if !posted {
                // Never wait for a message that will not come.
                let _ = resolve_now.call0(&JsValue::NULL);
            }
        });
        let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
    }
}
