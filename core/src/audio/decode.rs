//! Decoding audio files to mono f32: WAV with hound, the rest (MP3, FLAC, OGG/Vorbis, M4A/AAC, and
//! the WAV encodings hound lacks) with symphonia, the format sniffed from the bytes.
//!
//! Every decoded block is mixed down to mono at once and handed to a `Sink`, which keeps it or
//! resamples it on the fly, and which refuses audio longer than MAX_DURATION_SECONDS as soon as
//! the header (or the samples) say so.
//!
//! Damaged files: a truncated file (a WAV whose data chunk claims more than the file holds, an MP3
//! or OGG cut mid-stream) decodes to the complete frames it holds, as ffmpeg (transformers'
//! pipeline) and browsers' `decodeAudioData` do; a file with no complete frame is refused. Packets
//! that fail to decode inside a compressed stream are skipped (a glitch, not the end of the file).

use std::io::Cursor;

use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::{CODEC_TYPE_NULL, DecoderOptions};
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::FormatOptions;
use symphonia::core::io::{MediaSourceStream, MediaSourceStreamOptions};
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

use super::resample::StreamResampler;
use super::{MAX_SAMPLE, RawAudio, check_rate, max_frames, too_long};
use crate::{Error, Result};

const FORMATS: &str = "WAV, MP3, FLAC, OGG/Vorbis or M4A/AAC";

/// Decodes `bytes`; resampled to `target` when given.
pub(super) fn decode(bytes: &[u8], target: Option<u32>) -> Result<RawAudio> {
    if bytes.is_empty() {
        return Err(Error::Input("the audio file is empty (0 bytes)".into()));
    }
    super::container::check_declared_lengths(bytes)?;
    if is_wav(bytes) {
        match decode_wav(bytes, target) {
            // hound reads PCM and float WAVs; A-law, µ-law, ADPCM and f64 go to symphonia.
            Err(WavError::Unsupported) => {}
            Err(WavError::Other(e)) => return Err(e),
            Ok(audio) => return Ok(audio),
        }
    }
    guarded(|| decode_symphonia(bytes, target))
}

fn is_wav(b: &[u8]) -> bool {
    b.len() >= 12 && (&b[..4] == b"RIFF" || &b[..4] == b"RIFX") && &b[8..12] == b"WAVE"
}

/// Collects mono samples at the file's rate, or resamples them as they come.
struct Sink {
    rate: u32,
    target: Option<u32>,
    frames: u64,
    max: u64,
    mono: Vec<f32>,
    resampler: Option<StreamResampler>,
    scratch: Vec<f32>,
}

impl Sink {
    /// `frames_hint`: the frames the header announces (checked against the 4-hour limit, and
    /// used to allocate the output once rather than growing it, which would briefly hold it twice).
    fn new(rate: u32, frames_hint: Option<u64>, target: Option<u32>) -> Result<Sink> {
        check_rate(rate).map_err(|e| Error::Input(format!("the audio file: {e}")))?;
        let max = max_frames(rate);
        if let Some(n) = frames_hint
            && n > max
        {
            return Err(too_long(n as f64 / rate as f64));
        }
        let (mono, resampler) = match target {
            Some(t) if t != rate => (Vec::new(), Some(StreamResampler::new(rate, t, frames_hint)?)),
            _ => (super::reserved(frames_hint.unwrap_or(0)), None),
        };
        Ok(Sink { rate, target, frames: 0, max, mono, resampler, scratch: Vec::new() })
    }

    fn push_mono(&mut self, mono: &[f32]) -> Result<()> {
        // Float files (WAV) can hold anything: NaN, infinities, or values whose sums overflow in
        // the resampler's FFT (which then panics).
        if let Some(x) = mono.iter().find(|x| !(x.abs() <= MAX_SAMPLE)) {
            return Err(Error::Input(format!("the audio file holds a sample of {x}, which is not audio (float samples lie in [-1, 1])")));
        }
        self.frames += mono.len() as u64;
        if self.frames > self.max {
            return Err(too_long(self.frames as f64 / self.rate as f64));
        }
        match &mut self.resampler {
            Some(r) => r.push(mono),
            None => {
                self.mono.extend_from_slice(mono);
                Ok(())
            }
        }
    }

    /// Averages each frame's channels.
    fn push_interleaved(&mut self, samples: &[f32], channels: usize) -> Result<()> {
        if channels == 1 {
            return self.push_mono(samples);
        }
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        let scale = 1.0 / channels as f32;
        scratch.extend(samples.chunks_exact(channels).map(|f| f.iter().sum::<f32>() * scale));
        let r = self.push_mono(&scratch);
        self.scratch = scratch;
        r
    }

    fn finish(self) -> Result<RawAudio> {
        if self.frames == 0 {
            return Err(Error::Input("the audio file holds no samples".into()));
        }
        let (samples, rate) = match self.resampler {
            Some(r) => (r.finish()?, self.target.unwrap_or(self.rate)),
            None => (self.mono, self.rate),
        };
        if samples.is_empty() {
            return Err(Error::Input("the audio file is too short to resample (under one sample at the target rate)".into()));
        }
        Ok(RawAudio { samples, sampling_rate: rate })
    }
}

enum WavError {
    Unsupported,
    Other(Error),
}

fn decode_wav(bytes: &[u8], target: Option<u32>) -> std::result::Result<RawAudio, WavError> {
    let bad = |e: hound::Error| match e {
        hound::Error::Unsupported => WavError::Unsupported,
        e => WavError::Other(Error::Input(format!("cannot decode the WAV file: {e}"))),
    };
    let mut reader = hound::WavReader::new(Cursor::new(bytes)).map_err(bad)?;
    let spec = reader.spec();
    let channels = spec.channels as usize;
    if channels == 0 {
        return Err(WavError::Other(Error::Input("the WAV file has 0 channels".into())));
    }
    // The header's frame count, but no more than the bytes present (a truncated file claims more).
    let block = (channels * spec.bits_per_sample.div_ceil(8) as usize).max(1);
    let frames_hint = (reader.duration() as u64).min((bytes.len() / block) as u64);
    let mut sink = Sink::new(spec.sample_rate, Some(frames_hint), target).map_err(WavError::Other)?;
    let mut block_buf: Vec<f32> = Vec::with_capacity(4096 * channels);
    let flush = |buf: &mut Vec<f32>, sink: &mut Sink| -> Result<()> {
        let whole = buf.len() / channels * channels;
        sink.push_interleaved(&buf[..whole], channels)?;
        buf.clear();
        Ok(())
    };
    // A truncated file ends in an I/O error: what came before it is kept (whole frames only).
    match spec.sample_format {
        hound::SampleFormat::Float => {
            for s in reader.samples::<f32>() {
                let Ok(s) = s else { break };
                block_buf.push(s);
                if block_buf.len() == block_buf.capacity() {
                    flush(&mut block_buf, &mut sink).map_err(WavError::Other)?;
                }
            }
        }
        hound::SampleFormat::Int => {
            let scale = 1.0 / (1u64 << (spec.bits_per_sample.clamp(1, 32) - 1)) as f32;
            for s in reader.samples::<i32>() {
                let Ok(s) = s else { break };
                block_buf.push(s as f32 * scale);
                if block_buf.len() == block_buf.capacity() {
                    flush(&mut block_buf, &mut sink).map_err(WavError::Other)?;
                }
            }
        }
    }
    flush(&mut block_buf, &mut sink).map_err(WavError::Other)?;
    sink.finish().map_err(WavError::Other)
}

fn decode_symphonia(bytes: &[u8], target: Option<u32>) -> Result<RawAudio> {
    // symphonia reads from an owned ('static) source: the encoded bytes are copied once.
    let source = MediaSourceStream::new(Box::new(Cursor::new(bytes.to_vec())), MediaSourceStreamOptions::default());
    // Gapless: the MP3 encoder's delay and padding (LAME tag) are trimmed, as ffmpeg trims them.
    let format_options = FormatOptions { enable_gapless: true, ..Default::default() };
    let probed = symphonia::default::get_probe()
        .format(&Hint::new(), source, &format_options, &MetadataOptions::default())
        .map_err(|_| Error::Input(format!("the {} bytes given are not a {FORMATS} audio file (or it is damaged)", bytes.len())))?;
    let mut format = probed.format;
    let track = format
        .tracks()
        .iter()
        .find(|t| t.codec_params.codec != CODEC_TYPE_NULL)
        .ok_or_else(|| Error::Input("the file has no audio track".into()))?;
    let track_id = track.id;
    let frames_hint = track.codec_params.n_frames;
    let mut decoder = symphonia::default::get_codecs()
        .make(&track.codec_params, &DecoderOptions::default())
        .map_err(|e| Error::Input(format!("the file's audio codec is not supported ({e}); {FORMATS} are")))?;

    let mut sink: Option<Sink> = None;
    let mut buffer: Option<SampleBuffer<f32>> = None;
    let mut last_error = None;
    loop {
        let packet = match format.next_packet() {
            Ok(p) => p,
            // The end of the stream, or a stream cut short: keep what was decoded.
            Err(SymError::IoError(_)) | Err(SymError::ResetRequired) => break,
            Err(e) => {
                last_error = Some(e.to_string());
                break;
            }
        };
        if packet.track_id() != track_id {
            continue;
        }
        let decoded = match decoder.decode(&packet) {
            Ok(d) => d,
            Err(SymError::DecodeError(e)) => {
                last_error = Some(e.to_string());
                continue;
            }
            Err(SymError::IoError(_)) => continue,
            Err(e) => return Err(Error::Input(format!("cannot decode the audio: {e}"))),
        };
        let spec = *decoded.spec();
        let sink = match &mut sink {
            Some(s) => {
                if s.rate != spec.rate {
                    return Err(Error::Input(format!("the audio changes its sampling rate ({} Hz, then {} Hz)", s.rate, spec.rate)));
                }
                s
            }
            None => sink.insert(Sink::new(spec.rate, frames_hint, target)?),
        };
        let channels = spec.channels.count();
        if channels == 0 || decoded.frames() == 0 {
            continue;
        }
        let capacity = decoded.capacity() as u64;
        if buffer.as_ref().is_none_or(|b| b.capacity() < decoded.capacity() * channels) {
            buffer = Some(SampleBuffer::new(capacity, spec));
        }
        let buf = buffer.as_mut().expect("set above");
        buf.copy_interleaved_ref(decoded);
        sink.push_interleaved(buf.samples(), channels)?;
    }
    match sink {
        Some(s) => s.finish(),
        None => Err(Error::Input(match last_error {
            Some(e) => format!("cannot decode the audio: {e}"),
            None => "the audio file holds no samples".into(),
        })),
    }
}

/// symphonia may panic on a malformed file (it should not); natively that becomes an error, in
/// wasm (where a panic aborts) the decoders are trusted.
#[cfg(not(target_arch = "wasm32"))]
fn guarded(f: impl FnOnce() -> Result<RawAudio>) -> Result<RawAudio> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        .unwrap_or_else(|_| Err(Error::Input("the audio decoder failed on a malformed file".into())))
}

#[cfg(target_arch = "wasm32")]
fn guarded(f: impl FnOnce() -> Result<RawAudio>) -> Result<RawAudio> {
    f()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wav(rate: u32, channels: u16, samples: &[i16]) -> Vec<u8> {
        let spec = hound::WavSpec { channels, sample_rate: rate, bits_per_sample: 16, sample_format: hound::SampleFormat::Int };
        let mut out = Cursor::new(Vec::new());
        let mut w = hound::WavWriter::new(&mut out, spec).unwrap();
        for &s in samples {
            w.write_sample(s).unwrap();
        }
        w.finalize().unwrap();
        out.into_inner()
    }

    #[test]
    fn wav_stereo_is_averaged() {
        let a = decode(&wav(16000, 2, &[16384, 0, -32768, -32768]), None).unwrap();
        assert_eq!(a.sampling_rate, 16000);
        assert_eq!(a.samples, vec![0.25, -1.0]);
    }

    #[test]
    fn truncated_wav_keeps_whole_frames() {
        let full = wav(16000, 2, &[100; 2000]);
        // Cut in the middle of a frame: 500 whole frames remain.
        let cut = &full[..44 + 500 * 4 + 3];
        let a = decode(cut, None).unwrap();
        assert_eq!(a.samples.len(), 500);
        // Only the header: nothing to decode.
        assert!(decode(&full[..44], None).is_err());
        assert!(decode(&full[..20], None).is_err());
    }

    #[test]
    fn bad_inputs_are_errors() {
        assert!(decode(b"", None).is_err());
        assert!(decode(b"hello, this is not audio at all, just some text in a file", None).is_err());
        assert!(decode(&[0u8; 5000], None).is_err());
        // A 1 Hz WAV.
        let e = decode(&wav(1, 1, &[0; 10]), None).unwrap_err().to_string();
        assert!(e.contains("1 Hz"), "{e}");
    }

    #[test]
    fn too_long_is_refused_from_the_header() {
        // A header announcing 5 hours at 1 kHz mono with a data chunk cut short.
        let mut b = wav(1000, 1, &[0; 16]);
        let frames: u32 = 5 * 3600 * 1000;
        b[40..44].copy_from_slice(&(frames * 2).to_le_bytes());
        // The hint is capped by the bytes present, so this one decodes (16 frames);
        assert_eq!(decode(&b, None).unwrap().samples.len(), 16);
        // while a real 5 h file is refused as soon as 4 h are counted.
        let long = wav(1000, 1, &vec![0; (4 * 3600 * 1000) + 10]);
        let e = decode(&long, None).unwrap_err().to_string();
        assert!(e.contains("4 hours"), "{e}");
    }
}
