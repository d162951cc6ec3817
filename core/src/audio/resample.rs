//! Resampling with rubato's synchronous FFT resampler (`FftFixedInOut`).
//!
//! Why that one: sampling rates are integers, so the ratio is always rational (44.1 kHz → 16 kHz
//! is 441:160) and a synchronous resampler is exact. rubato's FFT resampler band-limits with a
//! Blackman-Harris-windowed sinc as long as its FFT chunk (here ≥ 1024 input frames, so a steep
//! transition band and > 100 dB stop-band rejection) and applies it by FFT convolution, which
//! costs O(log n) a sample: hours of audio resample in seconds, where rubato's asynchronous sinc
//! interpolator (a 256-tap sinc a sample, for ratios that change at run time) would take minutes.
//! The quality is checked against soxr's "VHQ" resampler in tests/audio.rs.
//!
//! Streaming: `StreamResampler` takes samples as a decoder produces them and keeps only one
//! chunk of input, so that decoding and resampling a long file never holds its native-rate
//! samples. Its output is aligned (rubato's filter delay removed) and has exactly
//! ceil(n * to / from) samples, as soxr and librosa give.

use rubato::{FftFixedInOut, Resampler};

use crate::{Error, Result};

/// The input frames a chunk is made of, at least (rounded up to a multiple of the reduced ratio).
const CHUNK: usize = 1024;

/// `samples` (mono, at `from` Hz) resampled to `to` Hz.
pub fn resample(samples: &[f32], from: u32, to: u32) -> Result<Vec<f32>> {
    super::check_rate(from)?;
    super::check_rate(to)?;
    if from == to {
        return Ok(samples.to_vec());
    }
    let mut r = StreamResampler::new(from, to, Some(samples.len() as u64))?;
    r.push(samples)?;
    r.finish()
}

pub(crate) struct StreamResampler {
    inner: FftFixedInOut<f32>,
    chunk_in: usize,
    pending: Vec<f32>,
    out_chunk: Vec<Vec<f32>>,
    /// Output frames still to drop (the filter's delay).
    skip: usize,
    frames_in: u64,
    from: u32,
    to: u32,
    out: Vec<f32>,
}

impl StreamResampler {
    /// `frames_hint`: the input frames expected, when known (the output is allocated once).
    pub(crate) fn new(from: u32, to: u32, frames_hint: Option<u64>) -> Result<StreamResampler> {
        // rubato centers its filter on input frame chunk_in / 2 (rounded down) and reports a delay
        // of chunk_out / 2: both are exact only when chunk_in and chunk_out are even, so the
        // chunk holds an even number of reduced-ratio periods (else the output lags by a fraction
        // of a sample: 0.2 samples for 44.1 kHz → 16 kHz).
        let gcd = gcd(from, to);
        let period = (from / gcd) as usize;
        let periods = CHUNK.div_ceil(period).next_multiple_of(2);
        let inner = FftFixedInOut::<f32>::new(from as usize, to as usize, periods * period, 1)
            .map_err(|e| Error::Input(format!("cannot resample from {from} Hz to {to} Hz: {e}")))?;
        let chunk_in = inner.input_frames_next();
        let chunk_out = inner.output_frames_next();
        let skip = inner.output_delay();
        let capacity = frames_hint.map(|n| out_len(n, from, to)).unwrap_or(0);
        Ok(StreamResampler {
            inner,
            chunk_in,
            pending: Vec::with_capacity(2 * chunk_in),
            out_chunk: vec![vec![0.0; chunk_out]],
            skip,
            frames_in: 0,
            from,
            to,
            out: super::reserved(capacity),
        })
    }

    pub(crate) fn push(&mut self, samples: &[f32]) -> Result<()> {
        self.frames_in += samples.len() as u64;
        let mut rest = samples;
        while !rest.is_empty() {
            let take = (self.chunk_in - self.pending.len()).min(rest.len());
            self.pending.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.pending.len() == self.chunk_in {
                self.run_chunk()?;
            }
        }
        Ok(())
    }

    fn run_chunk(&mut self) -> Result<()> {
        let (_, n) = self
            .inner
            .process_into_buffer(&[&self.pending], &mut self.out_chunk, None)
            .map_err(|e| Error::Input(format!("resampling failed: {e}")))?;
        self.pending.clear();
        let produced = &self.out_chunk[0][..n];
        let skip = self.skip.min(produced.len());
        self.skip -= skip;
        self.out.extend_from_slice(&produced[skip..]);
        Ok(())
    }

    /// Flushes the filter with zeros and returns exactly ceil(n * to / from) samples.
    pub(crate) fn finish(mut self) -> Result<Vec<f32>> {
        let want = out_len(self.frames_in, self.from, self.to) as usize;
        while self.out.len() < want {
            self.pending.resize(self.chunk_in, 0.0);
            self.run_chunk()?;
        }
        self.out.truncate(want);
        Ok(self.out)
    }
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// ceil(n * to / from).
fn out_len(n: u64, from: u32, to: u32) -> u64 {
    (n as u128 * to as u128).div_ceil(from as u128) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(freq: f64, rate: u32, n: usize) -> Vec<f32> {
        (0..n).map(|i| (2.0 * std::f64::consts::PI * freq * i as f64 / rate as f64).sin() as f32).collect()
    }

    #[test]
    fn sine_keeps_its_phase_and_length() {
        // A 440 Hz tone from 44.1 kHz to 16 kHz: the same tone, aligned, of ceil(n * 160 / 441) samples.
        let x = sine(440.0, 44100, 44100);
        let y = resample(&x, 44100, 16000).unwrap();
        assert_eq!(y.len(), 16000);
        let expected = sine(440.0, 16000, 16000);
        // Away from the edges (where the input stops), within 1e-3.
        let err = y[200..15800].iter().zip(&expected[200..15800]).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(err < 1e-3, "max error {err}");
        // Streaming in odd pieces gives the same output.
        let mut r = StreamResampler::new(44100, 16000, None).unwrap();
        for piece in x.chunks(777) {
            r.push(piece).unwrap();
        }
        assert_eq!(r.finish().unwrap(), y);
    }

    #[test]
    fn tone_above_nyquist_is_removed() {
        // 10 kHz cannot exist at 16 kHz: it must be filtered out, not folded to 6 kHz.
        let x = sine(10_000.0, 48000, 48000);
        let y = resample(&x, 48000, 16000).unwrap();
        let rms = (y[500..15500].iter().map(|v| v * v).sum::<f32>() / 15000.0).sqrt();
        assert!(rms < 1e-3, "rms {rms}");
    }

    #[test]
    fn upsampling_and_short_inputs() {
        assert_eq!(resample(&[0.25; 3], 8000, 16000).unwrap().len(), 6);
        assert_eq!(resample(&[0.25; 1], 44100, 16000).unwrap().len(), 1);
        assert_eq!(resample(&[], 44100, 16000).unwrap().len(), 0);
        assert!(resample(&[0.0; 4], 0, 16000).is_err());
    }
}
