//! Audio files (WAV, MP3, FLAC, OGG/Vorbis, M4A/AAC): at the file's rate and resampled to 16 kHz
//! as Whisper wants it. A header claiming hours of audio (a WAV of "4 GB") must not allocate it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use webformers::audio::RawAudio;

fuzz_target!(|data: &[u8]| {
    let _ = RawAudio::decode(data);
    let _ = RawAudio::decode_at(data, 16_000);
});
