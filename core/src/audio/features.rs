//! Whisper's log-mel spectrogram, computed as transformers' `WhisperFeatureExtractor` computes it
//! on its numpy path (`spectrogram` and `mel_filter_bank` in audio_utils.py):
//!
//! 1. pad with `padding_value` (zeros) or truncate to `n_samples` (30 s), the default
//!    `padding="max_length"`;
//! 2. reflect-pad `n_fft / 2` samples on both sides (centered frames);
//! 3. frames of `n_fft` samples every `hop_length`, times a periodic Hann window, real FFT, power
//!    (|X|², with X rounded to f32 first as numpy stores it in complex64);
//! 4. mel filters (slaney mel scale from 0 to 8 kHz, slaney area normalization), floored at 1e-10,
//!    log10, as f32;
//! 5. the last frame dropped, values floored at (max - 8), then (x + 4) / 4.
//!
//! The transform and the filters run in f64 as numpy's do (an f32 FFT would be off by more than
//! 1e-4 in quiet bins next to loud ones). FFT plans, the window and the (sparse) filters are made
//! once per extractor; natively, blocks of frames run on rayon's threads.

use std::sync::Arc;

use realfft::num_complex::Complex;
use realfft::{RealFftPlanner, RealToComplex};
use serde_json::Value;

use super::check_rate;
use crate::{Error, Result};

/// transformers fixes the filters' top frequency at 8 kHz, whatever the sampling rate.
const MAX_FREQUENCY: f64 = 8000.0;

/// WhisperFeatureExtractor's log-mel spectrogram. Build it with `new` or `from_config`: the
/// window, filters and FFT plan are derived from the fields then.
#[derive(Clone)]
pub struct WhisperFeatureExtractor {
    /// Mel bins (80; 128 for large-v3).
    pub feature_size: usize,
    pub sampling_rate: u32,
    pub hop_length: usize,
    pub n_fft: usize,
    /// Seconds that `extract` pads or truncates to.
    pub chunk_length: usize,
    /// chunk_length * sampling_rate.
    pub n_samples: usize,
    /// n_samples / hop_length: the frames `extract` returns.
    pub nb_max_frames: usize,
    pub padding_value: f32,
    window: Arc<Vec<f64>>,
    /// Per mel bin: the first FFT bin where its filter is nonzero, and its weights from there.
    filters: Arc<Vec<(usize, Vec<f64>)>>,
    fft: Arc<dyn RealToComplex<f64>>,
}

impl std::fmt::Debug for WhisperFeatureExtractor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WhisperFeatureExtractor")
            .field("feature_size", &self.feature_size)
            .field("sampling_rate", &self.sampling_rate)
            .field("hop_length", &self.hop_length)
            .field("n_fft", &self.n_fft)
            .field("chunk_length", &self.chunk_length)
            .finish()
    }
}

impl WhisperFeatureExtractor {
    /// transformers' defaults (16 kHz, n_fft 400, hop 160, 30 s) with `feature_size` mel bins.
    pub fn new(feature_size: usize) -> Result<Self> {
        Self::with(feature_size, 16000, 160, 30, 400, 0.0)
    }

    /// From a preprocessor_config.json (`Null` gives the defaults). Keys read: feature_size,
    /// sampling_rate, hop_length, chunk_length, n_fft, padding_value; n_samples and
    /// nb_max_frames are recomputed as transformers does, and a stored `mel_filters` is ignored
    /// (transformers recomputes it too).
    pub fn from_config(json: &Value) -> Result<Self> {
        let obj = match json {
            Value::Null => return Self::new(80),
            Value::Object(o) => o,
            _ => return Err(Error::Input("preprocessor_config.json must be an object".into())),
        };
        let int = |key: &str, default: u64| -> Result<u64> {
            match obj.get(key) {
                None | Some(Value::Null) => Ok(default),
                Some(v) => v
                    .as_u64()
                    .or_else(|| v.as_f64().filter(|f| f.fract() == 0.0 && *f >= 0.0).map(|f| f as u64))
                    .ok_or_else(|| Error::Input(format!("preprocessor_config.json: `{key}` must be a whole number, not {v}"))),
            }
        };
        let dither = obj.get("dither").and_then(Value::as_f64).unwrap_or(0.0);
        if dither != 0.0 {
            // transformers adds Gaussian noise then: results could not be reproduced anyway.
            log::warn!("preprocessor_config.json asks for dither {dither}; webformers computes features without dithering");
        }
        let padding_value = obj.get("padding_value").and_then(Value::as_f64).unwrap_or(0.0) as f32;
        let clamp = |v: u64| usize::try_from(v).unwrap_or(usize::MAX);
        let rate = u32::try_from(int("sampling_rate", 16000)?).unwrap_or(u32::MAX);
        Self::with(
            clamp(int("feature_size", 80)?),
            rate,
            clamp(int("hop_length", 160)?),
            clamp(int("chunk_length", 30)?),
            clamp(int("n_fft", 400)?),
            padding_value,
        )
    }

    fn with(
        feature_size: usize,
        sampling_rate: u32,
        hop_length: usize,
        chunk_length: usize,
        n_fft: usize,
        padding_value: f32,
    ) -> Result<Self> {
        let bad = |msg: String| Err(Error::Input(format!("Whisper feature extractor: {msg}")));
        check_rate(sampling_rate)?;
        if !(1..=1024).contains(&feature_size) {
            return bad(format!("feature_size {feature_size} is not 1 to 1024"));
        }
        if !(2..=65536).contains(&n_fft) {
            return bad(format!("n_fft {n_fft} is not 2 to 65536"));
        }
        if !(1..=n_fft.max(1)).contains(&hop_length) {
            return bad(format!("hop_length {hop_length} is not 1 to n_fft ({n_fft})"));
        }
        if !(1..=3600).contains(&chunk_length) {
            return bad(format!("chunk_length {chunk_length} s is not 1 to 3600"));
        }
        if !padding_value.is_finite() {
            return bad("padding_value must be a finite number".into());
        }
        let n_samples = chunk_length * sampling_rate as usize;
        // Periodic Hann: np.hanning(n + 1)[:-1].
        let window = (0..n_fft).map(|i| 0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / n_fft as f64).cos()).collect();
        Ok(WhisperFeatureExtractor {
            feature_size,
            sampling_rate,
            hop_length,
            n_fft,
            chunk_length,
            n_samples,
            nb_max_frames: n_samples / hop_length,
            padding_value,
            window: Arc::new(window),
            filters: Arc::new(mel_filters(n_fft / 2 + 1, feature_size, sampling_rate)),
            fft: RealFftPlanner::<f64>::new().plan_fft_forward(n_fft),
        })
    }

    /// The log-mel features of `samples` (mono, at `sampling_rate`), padded with `padding_value`
    /// or truncated to `n_samples` as the extractor's default call does: row-major
    /// [feature_size, nb_max_frames].
    pub fn extract(&self, samples: &[f32]) -> Result<Vec<f32>> {
        let n = samples.len().min(self.n_samples);
        let mut padded = Vec::with_capacity(self.n_samples);
        padded.extend_from_slice(&samples[..n]);
        padded.resize(self.n_samples, self.padding_value);
        let (features, frames) = self.log_mel(&padded)?;
        debug_assert_eq!(frames, self.nb_max_frames);
        Ok(features)
    }

    /// The features of all of `samples`, neither padded nor truncated (transformers'
    /// `padding="longest", truncation=False` on one input, as Whisper's long-form generation
    /// calls it): row-major [feature_size, frames], and frames.
    pub fn extract_unpadded(&self, samples: &[f32]) -> Result<(Vec<f32>, usize)> {
        if samples.is_empty() {
            return Err(Error::Input("no audio samples to compute features of".into()));
        }
        self.log_mel(samples)
    }

    fn log_mel(&self, x: &[f32]) -> Result<(Vec<f32>, usize)> {
        if self.filters.len() != self.feature_size || self.window.len() != self.n_fft || self.fft.len() != self.n_fft {
            return Err(Error::Input("WhisperFeatureExtractor's fields were changed after it was built; build a new one".into()));
        }
        if let Some(i) = x.iter().position(|v| !v.is_finite()) {
            return Err(Error::Input(format!("audio sample {i} is {} (samples must be finite numbers)", x[i])));
        }
        let half = self.n_fft / 2;
        // Centered frames over the reflect-padded signal; the last is dropped.
        let total = (x.len() + 2 * half).saturating_sub(self.n_fft) / self.hop_length + 1;
        let frames = total - 1;
        let n_mels = self.feature_size;
        if frames == 0 {
            return Err(Error::Input(format!("the audio is too short for one feature frame ({} samples)", x.len())));
        }
        let mut padded = Vec::with_capacity(x.len() + 2 * half);
        padded.extend((0..half).map(|i| x[reflect(i as isize - half as isize, x.len())]));
        padded.extend_from_slice(x);
        padded.extend((0..half).map(|i| x[reflect((x.len() + i) as isize, x.len())]));

        // Frame-major log10 mel energies, then the transposition and scaling.
        let mut spec = vec![0f32; frames * n_mels];
        const BLOCK: usize = 64;
        let run_block = |(b, out): (usize, &mut [f32])| {
            let mut input = self.fft.make_input_vec();
            let mut output = self.fft.make_output_vec();
            let mut scratch = self.fft.make_scratch_vec();
            let mut power = vec![0f64; output.len()];
            for (k, mels) in out.chunks_mut(n_mels).enumerate() {
                let start = (b * BLOCK + k) * self.hop_length;
                let frame = &padded[start..start + self.n_fft];
                if frame.iter().all(|&v| v == 0.0) {
                    // All-zero frames (the padding of short audio) are the floor: skip the FFT.
                    mels.fill(-10.0);
                    continue;
                }
                for ((i, &s), &w) in input.iter_mut().zip(frame).zip(self.window.iter()) {
                    *i = s as f64 * w;
                }
                self.fft.process_with_scratch(&mut input, &mut output, &mut scratch).expect("buffers sized by the plan");
                for (p, c) in power.iter_mut().zip(&output) {
                    *p = power_f32(c);
                }
                for (m, (lo, weights)) in mels.iter_mut().zip(self.filters.iter()) {
                    let e: f64 = weights.iter().zip(&power[*lo..]).map(|(w, p)| w * p).sum();
                    *m = e.max(1e-10).log10() as f32;
                }
            }
        };
        #[cfg(not(target_arch = "wasm32"))]
        {
            use rayon::prelude::*;
            spec.par_chunks_mut(BLOCK * n_mels).enumerate().for_each(run_block);
        }
        #[cfg(target_arch = "wasm32")]
        spec.chunks_mut(BLOCK * n_mels).enumerate().for_each(run_block);

        let max = spec.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let floor = max - 8.0;
        let mut features = vec![0f32; n_mels * frames];
        for (t, row) in spec.chunks(n_mels).enumerate() {
            for (m, &v) in row.iter().enumerate() {
                features[m * frames + t] = (v.max(floor) + 4.0) / 4.0;
            }
        }
        Ok((features, frames))
    }
}

/// |c|² with c rounded to f32 first, as numpy keeps the spectrum in complex64.
fn power_f32(c: &Complex<f64>) -> f64 {
    let (re, im) = (c.re as f32 as f64, c.im as f32 as f64);
    let a = re.hypot(im);
    a * a
}

/// numpy's "reflect" padding (the edge is not repeated), for any distance from the signal.
fn reflect(i: isize, len: usize) -> usize {
    if len == 1 {
        return 0;
    }
    let period = 2 * (len as isize - 1);
    let j = i.rem_euclid(period);
    (if j >= len as isize { period - j } else { j }) as usize
}

fn hz_to_mel(f: f64) -> f64 {
    // Slaney: linear below 1 kHz, logarithmic above.
    let logstep = 27.0 / 6.4f64.ln();
    if f >= 1000.0 { 15.0 + (f / 1000.0).ln() * logstep } else { 3.0 * f / 200.0 }
}

fn mel_to_hz(m: f64) -> f64 {
    let logstep = 6.4f64.ln() / 27.0;
    if m >= 15.0 { 1000.0 * (logstep * (m - 15.0)).exp() } else { 200.0 * m / 3.0 }
}

/// np.linspace(a, b, n).
fn linspace(a: f64, b: f64, n: usize) -> Vec<f64> {
    let step = (b - a) / (n - 1) as f64;
    let mut v: Vec<f64> = (0..n).map(|i| a + i as f64 * step).collect();
    v[n - 1] = b;
    v
}

/// transformers' `mel_filter_bank(bins, n_mels, 0, 8000, rate, norm="slaney", mel_scale="slaney")`,
/// each filter kept as its nonzero run.
fn mel_filters(bins: usize, n_mels: usize, rate: u32) -> Vec<(usize, Vec<f64>)> {
    let mels = linspace(hz_to_mel(0.0), hz_to_mel(MAX_FREQUENCY), n_mels + 2);
    let hz: Vec<f64> = mels.iter().map(|&m| mel_to_hz(m)).collect();
    let fft_freqs = linspace(0.0, (rate / 2) as f64, bins);
    (0..n_mels)
        .map(|j| {
            let enorm = 2.0 / (hz[j + 2] - hz[j]);
            let weights: Vec<f64> = fft_freqs
                .iter()
                .map(|&f| {
                    let down = -(hz[j] - f) / (hz[j + 1] - hz[j]);
                    let up = (hz[j + 2] - f) / (hz[j + 2] - hz[j + 1]);
                    down.min(up).max(0.0) * enorm
                })
                .collect();
            let lo = weights.iter().position(|&w| w != 0.0).unwrap_or(0);
            let hi = weights.iter().rposition(|&w| w != 0.0).map_or(lo, |i| i + 1);
            (lo, weights[lo..hi].to_vec())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reflect_matches_numpy() {
        // np.pad([0,1,2,3], 5, mode="reflect") -> [1 2 3 2 1 | 0 1 2 3 | 2 1 0 1 2]
        let idx: Vec<usize> = (-5..9).map(|i| reflect(i, 4)).collect();
        assert_eq!(idx, vec![1, 2, 3, 2, 1, 0, 1, 2, 3, 2, 1, 0, 1, 2]);
    }

    #[test]
    fn silence_and_shapes() {
        let fe = WhisperFeatureExtractor::new(80).unwrap();
        assert_eq!((fe.n_samples, fe.nb_max_frames), (480000, 3000));
        let f = fe.extract(&[]).unwrap();
        assert_eq!(f.len(), 80 * 3000);
        assert!(f.iter().all(|&v| v == -1.5));
        let (f, frames) = fe.extract_unpadded(&vec![0.1; 16000]).unwrap();
        assert_eq!((frames, f.len()), (100, 8000));
        assert!(fe.extract(&[f32::NAN]).is_err());
        assert!(WhisperFeatureExtractor::from_config(&serde_json::json!({"feature_size": 128})).unwrap().feature_size == 128);
        assert!(WhisperFeatureExtractor::from_config(&serde_json::json!({"hop_length": 0})).is_err());
        assert!(WhisperFeatureExtractor::from_config(&serde_json::json!({"sampling_rate": 1})).is_err());
    }
}
