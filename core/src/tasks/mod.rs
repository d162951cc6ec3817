//! Pipeline tasks, one file each, named as transformers.js names them, and the registry that
//! every front end (the CLI, the wasm binding, tests) goes through.
//!
//! The contract: a task declares a `TaskInfo` (name, aliases, default model, the files it reads,
//! its input kind, how to load it) and implements `Pipeline`, whose `run` takes the two arguments
//! of the transformers.js call as JSON (`input`, `options`) and returns exactly the value that
//! call resolves to (or a tensor). So a front end needs no code per task: it looks the task up,
//! loads it, and passes JSON through. Adding a task: its file and a line in `TASKS`.

use std::future::Future;
use std::pin::Pin;

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::files::ModelFiles;
use crate::models::auto::AutoModel;
use crate::weights::Precision;
use crate::{Device, Error, Result};

pub use events::Event;

pub mod asr;
pub mod automatic_speech_recognition;
pub mod events;
pub mod feature_extraction;
pub mod fill_mask;
pub mod image_classification;
pub mod image_feature_extraction;
pub mod image_model;
pub mod object_detection;
pub mod question_answering;
pub mod seq2seq;
pub mod summarization;
pub mod text2text_generation;
pub mod text_classification;
pub mod text_encoder;
pub mod text_generation;
pub mod token_classification;
pub mod translation;
pub mod translation_languages;
pub mod zero_shot_classification;
pub mod zero_shot_image_classification;

/// Every task. The first name a front end is given that matches a task's name or alias wins.
pub static TASKS: &[&TaskInfo] = &[
    &feature_extraction::TASK,
    &text_generation::TASK,
    &text_classification::TASK,
    &token_classification::TASK,
    &question_answering::TASK,
    &fill_mask::TASK,
    &zero_shot_classification::TASK,
    &zero_shot_image_classification::TASK,
    &image_classification::TASK,
    &image_feature_extraction::TASK,
    &object_detection::TASK,
    &automatic_speech_recognition::TASK,
    &translation::TASK,
    &summarization::TASK,
    &text2text_generation::TASK,
];

/// What a task takes as its first argument (the front ends' help and type checks read this, and
/// the JS package its positional call shapes, by the snake_case name; images and audio come with
/// the vision and speech tasks).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InputKind {
    /// A string or an array of strings.
    Text,
    /// A string, `{text, text_pair}`, or an array of those.
    TextOrPair,
    /// `{question, context}` (or an array of those); transformers.js also takes
    /// `(question, context, options)`.
    QuestionContext,
    /// A string or an array of strings, scored against `options.candidate_labels`;
    /// transformers.js also takes the labels as the second argument: `(texts, labels, options)`.
    TextWithLabels,
    /// A string or a chat (an array of `{role, content}` messages), or an array of those.
    TextOrChat,
    /// An image or an array of images (see `Input::images`).
    Image,
    /// An image or an array of images, scored against `options.candidate_labels`;
    /// transformers.js also takes the labels as the second argument: `(images, labels, options)`.
    ImageWithLabels,
    /// Audio or an array of audio (see `Input::audios`): a file path or URL, samples at the
    /// model's rate (an array of numbers; a Float32Array in JS), or a `{"$media": i}` item.
    Audio,
}

/// A task's entry in the registry.
pub struct TaskInfo {
    /// transformers.js's name (`text-classification`).
    pub name: &'static str,
    /// Other names for it (`sentiment-analysis`).
    pub aliases: &'static [&'static str],
    /// The Hub model transformers.js uses when none is given.
    pub default_model: &'static str,
    pub input: InputKind,
    /// Files besides the weights that `load` cannot do without.
    pub required_files: &'static [&'static str],
    /// Files besides the weights that `load` reads when present.
    pub optional_files: &'static [&'static str],
    /// Builds the pipeline from a model's files (a folder, the Hub, files in memory).
    pub load: fn(&dyn ModelFiles, &Device, &LoadOptions) -> Result<Box<dyn Pipeline>>,
}

impl TaskInfo {
    /// Every file besides the weights that `load` may read: what a remote source (the Hub)
    /// fetches before loading. A file read but missing here is an error.
    pub fn files(&self) -> Vec<&'static str> {
        self.required_files.iter().chain(self.optional_files).copied().collect()
    }

    /// Whether the task loads from one GGUF file (text-generation only). By name: `TASK`s are
    /// consts, so their addresses are not unique.
    pub fn loads_gguf(&self) -> bool {
        self.name == text_generation::TASK.name
    }

    /// What a JS front end needs to fetch and call the task (both bindings' `taskFiles`):
    /// `{task, defaultModel, input, gguf, required, optional}`, the weights last among the
    /// required files; `gguf`: whether that build loads the task from a .gguf file.
    pub fn files_json(&self, gguf: bool) -> Value {
        let required: Vec<&str> = self.required_files.iter().copied().chain(["model.safetensors"]).collect();
        serde_json::json!({
            "task": self.name,
            "defaultModel": self.default_model,
            "input": self.input,
            "gguf": gguf,
            "required": required,
            "optional": self.optional_files,
        })
    }

    /// `options` (the second argument of the call) as the task's typed options: absent or null
    /// gives the defaults; an unknown option or a value of the wrong type is an error naming it.
    pub fn options<T: DeserializeOwned + Default>(&self, options: &Value) -> Result<T> {
        match options {
            Value::Null => Ok(T::default()),
            Value::Object(_) => serde_json::from_value(options.clone()).map_err(|e| Error::Input(format!("{} options: {e}", self.name))),
            other => Err(Error::Input(format!("{} options must be an object, not {}", self.name, json_kind(other)))),
        }
    }

    /// `input` as the task's typed input; `expected` says in words what it takes.
    pub fn input<T: DeserializeOwned>(&self, input: &Value, expected: &str) -> Result<T> {
        serde_json::from_value(input.clone()).map_err(|_| Error::Input(format!("{} takes {expected}, not {}", self.name, json_kind(input))))
    }
}

/// A task by its name or an alias; an unknown name lists the known ones. As transformers.js
/// does, a name with `_` is looked up by what comes before the first one
/// (`translation_en_to_fr` is `translation`).
pub fn task(name: &str) -> Result<&'static TaskInfo> {
    let find = |name: &str| TASKS.iter().copied().find(|t| t.name == name || t.aliases.contains(&name));
    find(name).or_else(|| name.split_once('_').and_then(|(head, _)| find(head))).ok_or_else(|| {
        let names: Vec<String> = TASKS
            .iter()
            .map(|t| if t.aliases.is_empty() { t.name.to_string() } else { format!("{} ({})", t.name, t.aliases.join(", ")) })
            .collect();
        Error::Unsupported(format!("unknown task `{name}`; the tasks are: {}", names.join(", ")))
    })
}

/// Loads task `name` (or alias) from a model's files onto `device`.
pub fn load(name: &str, files: &dyn ModelFiles, device: &Device, options: &LoadOptions) -> Result<Box<dyn Pipeline>> {
    (task(name)?.load)(files, device, options)
}

/// A future that need not be `Send` (wasm's are not).
pub type LocalFuture<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

/// A loaded task.
pub trait Pipeline {
    fn task(&self) -> &'static TaskInfo;
    fn device(&self) -> &Device;
    /// Runs the task: `input` and `options` are the two arguments of the transformers.js call, as
    /// JSON; the result is the value that call resolves to. Tasks report what happens while they
    /// run to `events` (`Event`: streamed text, generated tokens, speech segments, progress).
    fn run<'a>(&'a self, input: Input<'a>, options: &'a Value, events: &'a mut dyn FnMut(Event<'_>)) -> LocalFuture<'a, Result<Output>>;
    /// `run` on an input that is JSON only (text tasks; images given as paths or URLs).
    fn run_json<'a>(
        &'a self,
        input: &'a Value,
        options: &'a Value,
        events: &'a mut dyn FnMut(Event<'_>),
    ) -> LocalFuture<'a, Result<Output>> {
        self.run(Input::json(input), options, events)
    }
    /// Facts about the loaded model that front ends show (`{"hidden_size": 384}`, the labels).
    fn info(&self) -> Value {
        Value::Null
    }
    /// A task's own extra operation (text-generation's `apply_chat_template`, and `interrupt` /
    /// `reset_interrupt`, which stop a generation in flight after its current token: what JS's
    /// AbortSignal and InterruptableStoppingCriteria call), by name, for front ends that pass it
    /// through without knowing the task. It takes `&self`: it may run while `run` is in flight.
    fn call(&self, method: &str, _args: &Value) -> Result<Value> {
        Err(Error::Unsupported(format!("{} has no method `{method}`", self.task().name)))
    }
    /// The flag `call("interrupt")` sets, for a front end that sets it from another thread while
    /// a run is in flight (the Node addon, whose runs hold the pipeline's own thread). None for
    /// tasks that do not generate.
    fn interrupt_flag(&self) -> Option<crate::generation::Interrupt> {
        None
    }
    /// The task's model as transformers' `AutoModel` classes run it (JS: `pipe.model`), over
    /// this pipeline's loaded weights: nothing is read or copied, and the weights live while
    /// either holds them. Tasks whose model no class here covers (the dual encoders'
    /// text-embedding feature-extraction) say so.
    fn auto_model(&self) -> Result<AutoModel> {
        Err(Error::Unsupported(format!(
            "{}: this task's model is not available as a model class (AutoModel...) here; load it with the class itself",
            self.task().name
        )))
    }
}

/// The first argument of a call: JSON, plus the binary things (decoded images, encoded files,
/// audio samples) that JSON cannot carry cheaply. In the JSON, `{"$media": i}` stands for
/// `media[i]`; front ends put decoded pixels there instead of arrays of numbers.
#[derive(Clone, Copy)]
pub struct Input<'a> {
    pub value: &'a Value,
    pub media: &'a [Media],
}

impl<'a> Input<'a> {
    /// An input with no binary parts.
    pub fn json(value: &'a Value) -> Input<'a> {
        Input { value, media: &[] }
    }

    /// The media item a `{"$media": i}` value stands for; `None` when `v` is not such a value.
    pub fn media_at(&self, v: &Value) -> Option<Result<&'a Media>> {
        let index = v.as_object().filter(|o| o.len() == 1)?.get("$media")?;
        Some(
            index
                .as_u64()
                .and_then(|i| self.media.get(i as usize))
                .ok_or_else(|| Error::Input(format!("`$media` index {index} names no media item ({} given)", self.media.len()))),
        )
    }
}

/// A binary input part.
#[derive(Clone, Debug)]
pub enum Media {
    /// Decoded pixels.
    Image(crate::image::RawImage),
    /// Decoded audio (mono samples and their rate); resampled to the model's rate when needed.
    Audio(crate::audio::RawAudio),
    /// The bytes of a file (an image or audio file) that the engine decodes itself (Node, where
    /// no platform decoder exists).
    Encoded(Vec<u8>),
}

/// What a task returns: a JSON value shaped as transformers.js's result, or a tensor (kept as
/// f32s so that front ends can hand it over without going through JSON numbers).
#[derive(Clone, Debug, PartialEq)]
pub enum Output {
    Json(Value),
    Tensor { dims: Vec<usize>, data: Vec<f32> },
}

impl Output {
    /// The result as JSON; a tensor becomes `{"dims": [...], "data": nested rows}`.
    pub fn to_json(&self) -> Value {
        match self {
            Output::Json(v) => v.clone(),
            Output::Tensor { dims, data } => serde_json::json!({ "dims": dims, "data": nest(data, dims) }),
        }
    }
}

/// Flat values as nested arrays following `dims`.
fn nest(data: &[f32], dims: &[usize]) -> Value {
    if dims.len() <= 1 {
        return serde_json::json!(data);
    }
    let width: usize = dims[1..].iter().product();
    Value::Array(data.chunks(width.max(1)).map(|c| nest(c, &dims[1..])).collect())
}

pub(crate) fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// One value or an array of them, as pipeline inputs come; `Many` results stay arrays.
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(untagged)]
pub enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

impl<T> OneOrMany<T> {
    pub fn is_many(&self) -> bool {
        matches!(self, OneOrMany::Many(_))
    }
    pub fn items(&self) -> Vec<&T> {
        match self {
            OneOrMany::One(x) => vec![x],
            OneOrMany::Many(v) => v.iter().collect(),
        }
    }
}

/// Options common to loading any task's model.
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// The weights' precision, for the whole model or per module.
    pub dtype: Precision,
}

/// Rounds a score the way it is compared: f32 precision, shown as the f64 JSON carries.
/// The methods every generating task takes (JS: an AbortSignal, InterruptableStoppingCriteria):
/// `interrupt` stops a generation in flight after its current token and stays set until
/// `reset_interrupt`. None for any other method.
pub fn interrupt_method(interrupt: &crate::generation::Interrupt, method: &str) -> Option<Value> {
    match method {
        "interrupt" => interrupt.interrupt(),
        "reset_interrupt" => interrupt.reset(),
        _ => return None,
    }
    Some(Value::Null)
}

pub(crate) fn score(x: f32) -> Value {
    serde_json::json!(x as f64)
}
