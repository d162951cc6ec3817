//! Audio: decoded mono samples (`RawAudio`), decoding files (WAV with hound; MP3, FLAC,
//! OGG/Vorbis and M4A/AAC with symphonia), resampling (rubato), and Whisper's log-mel features
//! (`WhisperFeatureExtractor`, as transformers computes them).
//!
//! Memory: decoding mixes every packet down to mono as it comes, and `RawAudio::decode_at`
//! resamples while decoding, so a long file is held once encoded and once as mono f32 at the
//! target rate (2 h at 16 kHz: 460 MB), never as interleaved channels or at its native rate.

mod container;
mod decode;
mod features;
mod input;
mod resample;

pub use features::WhisperFeatureExtractor;
pub use input::MAX_AUDIO_FILE_BYTES;
pub use resample::resample;

use crate::{Error, Result};

/// The lowest sampling rate accepted (telephone audio is 8 kHz; below 1 kHz a file is not speech).
pub const MIN_SAMPLING_RATE: u32 = 1_000;
/// The highest sampling rate accepted (the highest that audio hardware records).
pub const MAX_SAMPLING_RATE: u32 = 768_000;
/// The longest audio accepted: 4 hours. Longer input is refused before (or while) it is decoded.
pub const MAX_DURATION_SECONDS: u64 = 4 * 3600;

/// The largest sample magnitude accepted: float audio lies in [-1, 1] (a little beyond when
/// clipped); a million is garbage, and far from where the resampler's f32 FFT sums overflow
/// (which makes it panic).
pub const MAX_SAMPLE: f32 = 1e6;

/// Mono samples in [-1, 1] at `sampling_rate`, as transformers.js's `RawAudio` holds them
/// (after its mix-down to mono).
#[derive(Clone, Debug, PartialEq)]
pub struct RawAudio {
    pub samples: Vec<f32>,
    pub sampling_rate: u32,
}

/// Refuses a sampling rate outside [MIN_SAMPLING_RATE, MAX_SAMPLING_RATE].
pub(crate) fn check_rate(rate: u32) -> Result<()> {
    if !(MIN_SAMPLING_RATE..=MAX_SAMPLING_RATE).contains(&rate) {
        return Err(Error::Input(format!(
            "a sampling rate of {rate} Hz is not supported (audio from {MIN_SAMPLING_RATE} Hz to {MAX_SAMPLING_RATE} Hz is)"
        )));
    }
    Ok(())
}

/// The most frames MAX_DURATION_SECONDS holds at `rate`.
pub(crate) fn max_frames(rate: u32) -> u64 {
    MAX_DURATION_SECONDS * rate as u64
}

pub(crate) fn too_long(seconds: f64) -> Error {
    Error::Input(format!(
        "the audio lasts {:.0} s, longer than the {} hours accepted; cut it into parts",
        seconds,
        MAX_DURATION_SECONDS / 3600
    ))
}

/// An empty Vec with room for `n` samples when that much memory can be had: a header's frame count
/// may be bogus (a damaged file), so a failed reservation is not an error (nor an abort): the Vec
/// then grows as samples actually come.
pub(crate) fn reserved(n: u64) -> Vec<f32> {
    let mut v = Vec::new();
    if let Ok(n) = usize::try_from(n) {
        let _ = v.try_reserve_exact(n);
    }
    v
}

impl RawAudio {
    /// Checks the rate (MIN_SAMPLING_RATE to MAX_SAMPLING_RATE), that there are samples, that
    /// they are finite and within ±MAX_SAMPLE, and that they last at most MAX_DURATION_SECONDS.
    pub fn new(samples: Vec<f32>, sampling_rate: u32) -> Result<RawAudio> {
        check_rate(sampling_rate)?;
        if samples.is_empty() {
            return Err(Error::Input("the audio has no samples".into()));
        }
        if samples.len() as u64 > max_frames(sampling_rate) {
            return Err(too_long(samples.len() as f64 / sampling_rate as f64));
        }
        if let Some(i) = samples.iter().position(|x| !(x.abs() <= MAX_SAMPLE)) {
            return Err(Error::Input(format!("audio sample {i} is {} (samples must be finite numbers in [-1, 1])", samples[i])));
        }
        Ok(RawAudio { samples, sampling_rate })
    }

    /// Decodes an audio file, sniffing its format from the bytes: WAV (hound; symphonia for the
    /// encodings hound lacks: A-law, µ-law, ADPCM, 64-bit float), MP3, FLAC, OGG/Vorbis and
    /// M4A/AAC (symphonia). Channels are averaged to mono (as ffmpeg's `-ac 1` does, which
    /// transformers' pipeline decodes with). The file's own sampling rate is kept.
    pub fn decode(bytes: &[u8]) -> Result<RawAudio> {
        decode::decode(bytes, None)
    }

    /// `decode`, resampled to `sampling_rate` while decoding (so that the native-rate samples
    /// of a long file are never all held).
    pub fn decode_at(bytes: &[u8], sampling_rate: u32) -> Result<RawAudio> {
        check_rate(sampling_rate)?;
        decode::decode(bytes, Some(sampling_rate))
    }

    /// The audio at `rate` (rubato's FFT resampler, see `resample`); a clone when it already is.
    pub fn resample(&self, rate: u32) -> Result<RawAudio> {
        check_rate(rate)?;
        if rate == self.sampling_rate {
            return Ok(self.clone());
        }
        Ok(RawAudio { samples: resample(&self.samples, self.sampling_rate, rate)?, sampling_rate: rate })
    }

    /// `resample` that consumes the audio (no copy when the rate is already `rate`).
    pub fn into_rate(self, rate: u32) -> Result<RawAudio> {
        if rate == self.sampling_rate { Ok(self) } else { self.resample(rate) }
    }

    pub fn duration_seconds(&self) -> f64 {
        self.samples.len() as f64 / self.sampling_rate as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_validates() {
        assert!(RawAudio::new(vec![0.0; 10], 16000).is_ok());
        assert!(RawAudio::new(vec![0.0; 10], 0).is_err());
        assert!(RawAudio::new(vec![0.0; 10], 1).is_err());
        assert!(RawAudio::new(vec![0.0; 10], 10_000_000).is_err());
        assert!(RawAudio::new(vec![], 16000).is_err());
        assert!(RawAudio::new(vec![0.0, f32::NAN], 16000).is_err());
        let a = RawAudio::new(vec![0.5; 8000], 16000).unwrap();
        assert_eq!(a.duration_seconds(), 0.5);
        assert_eq!(a.resample(8000).unwrap().samples.len(), 4000);
        assert!(a.resample(1).is_err());
    }
}
