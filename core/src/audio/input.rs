//! The audio of a call's first argument, as transformers.js's speech pipelines take it: samples at
//! the model's rate (a Float32Array in JS, an array of numbers in JSON), `{"$media": i}` items
//! (decoded samples at any rate, or a file's bytes), and natively file paths, `http(s)://` URLs
//! and `data:` URLs (fetched by the same code as images). Everything comes back mono at the
//! requested rate.

use serde_json::Value;

use super::RawAudio;
use crate::image::input::{data_url, read_source, short};
use crate::tasks::{Input, Media, OneOrMany, json_kind};
use crate::{Error, Result};

/// The largest audio file read from a path or a URL: 2 GiB (2 hours of 44.1 kHz stereo 16-bit
/// WAV is 1.3 GB; compressed files are ten times smaller).
pub const MAX_AUDIO_FILE_BYTES: u64 = 2 << 30;

impl Input<'_> {
    /// The call's audio at `sampling_rate`: one item, or an array of them (`Many`). An item is a
    /// `{"$media": i}` placeholder, a string (natively a path, an `http(s)://` URL or a `data:`
    /// URL; in wasm the JS package resolves strings before the call), an array of numbers (samples
    /// already at `sampling_rate`, as transformers.js takes a Float32Array), or
    /// `{"array" | "raw": [numbers], "sampling_rate": n}` as transformers' Python pipeline takes.
    /// An array whose first element is a number is one audio, not a batch.
    pub fn audios(&self, sampling_rate: u32) -> Result<OneOrMany<RawAudio>> {
        super::check_rate(sampling_rate)?;
        match self.value {
            Value::Array(items) if items.first().is_some_and(Value::is_number) => {
                Ok(OneOrMany::One(samples_from_json(items, sampling_rate)?))
            }
            Value::Array(items) => {
                if items.is_empty() {
                    return Err(Error::Input("expected audio or an array of audio, not an empty array".into()));
                }
                Ok(OneOrMany::Many(items.iter().map(|v| self.audio(v, sampling_rate)).collect::<Result<Vec<_>>>()?))
            }
            v => Ok(OneOrMany::One(self.audio(v, sampling_rate)?)),
        }
    }

    fn audio(&self, v: &Value, rate: u32) -> Result<RawAudio> {
        if let Some(media) = self.media_at(v) {
            return match media? {
                Media::Audio(audio) => audio.resample(rate),
                Media::Encoded(bytes) => RawAudio::decode_at(bytes, rate),
                Media::Image(_) => Err(Error::Input("expected audio, not an image".into())),
            };
        }
        match v {
            Value::String(s) => audio_from_string(s, rate),
            Value::Array(items) => samples_from_json(items, rate),
            Value::Object(o) if o.contains_key("sampling_rate") => {
                let samples =
                    o.get("array").or_else(|| o.get("raw")).and_then(Value::as_array).ok_or_else(|| {
                        Error::Input("an audio object has its samples in `array` (or `raw`) beside `sampling_rate`".into())
                    })?;
                let from = o["sampling_rate"]
                    .as_u64()
                    .and_then(|r| u32::try_from(r).ok())
                    .ok_or_else(|| Error::Input(format!("`sampling_rate` must be a whole number of Hz, not {}", o["sampling_rate"])))?;
                samples_from_json(samples, from)?.into_rate(rate)
            }
            other => Err(Error::Input(format!(
                "expected audio (a file path, a URL, samples as numbers, or decoded audio) or an array of them, not {}",
                json_kind(other)
            ))),
        }
    }
}

fn audio_from_string(s: &str, rate: u32) -> Result<RawAudio> {
    if let Some(rest) = s.strip_prefix("data:") {
        return RawAudio::decode_at(&data_url(rest)?, rate);
    }
    let bytes = read_source(s, "audio", MAX_AUDIO_FILE_BYTES)?;
    RawAudio::decode_at(&bytes, rate).map_err(|e| Error::Input(format!("{}: {e}", short(s))))
}

fn samples_from_json(items: &[Value], rate: u32) -> Result<RawAudio> {
    let samples = items
        .iter()
        .enumerate()
        .map(|(i, v)| {
            v.as_f64().map(|x| x as f32).ok_or_else(|| Error::Input(format!("audio samples are numbers; item {i} is {}", json_kind(v))))
        })
        .collect::<Result<Vec<f32>>>()?;
    RawAudio::new(samples, rate)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn shapes_of_audio_input() {
        let one = json!([0.0, 0.5, -0.5]);
        let a = Input::json(&one).audios(16000).unwrap();
        assert!(!a.is_many());
        assert_eq!(a.items()[0].samples, vec![0.0, 0.5, -0.5]);

        let many = json!([[0.0, 0.5], [0.25]]);
        let a = Input::json(&many).audios(16000).unwrap();
        assert!(a.is_many());
        assert_eq!(a.items().len(), 2);

        let obj = json!({"array": vec![0.1; 32000], "sampling_rate": 32000});
        let a = Input::json(&obj).audios(16000).unwrap();
        assert_eq!(a.items()[0].samples.len(), 16000);

        let media = [Media::Audio(RawAudio::new(vec![0.0; 441], 44100).unwrap()), Media::Encoded(b"nope".to_vec())];
        let input = json!({"$media": 0});
        let a = Input { value: &input, media: &media }.audios(16000).unwrap();
        assert_eq!(a.items()[0].samples.len(), 160);
        let input = json!({"$media": 1});
        assert!(Input { value: &input, media: &media }.audios(16000).is_err());

        for bad in [json!([]), json!(3), json!([0.5, "a"]), json!({"sampling_rate": 1, "array": [0.0]}), json!("/no/such/file.wav")] {
            assert!(Input::json(&bad).audios(16000).is_err(), "{bad}");
        }
        assert!(Input::json(&one).audios(0).is_err());
    }
}
