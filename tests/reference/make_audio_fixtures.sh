#!/usr/bin/env bash
# Makes the short speech clips of tests/fixtures/audio/ (committed; rerun only to change them):
# espeak-ng speech in several voices and speeds, converted with sox to the rates, channel counts
# and formats the decoders are tested on, and an AAC .m4a made with PyAV (ffmpeg's encoder).
# Needs espeak-ng, sox (with libsox-fmt-mp3 / vorbis) and a Python with `av` (pip install av).
#   PY=/path/to/python tests/reference/make_audio_fixtures.sh
set -euo pipefail
cd "$(dirname "$0")/../fixtures/audio"
PY=${PY:-python3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

say() { # voice speed text out.wav (espeak-ng writes 22.05 kHz mono 16-bit)
  espeak-ng -v "$1" -s "$2" -w "$4" "$3"
}
say en-us 160 "The quick brown fox jumps over the lazy dog." "$tmp/a.wav"
say en-gb+f3 130 "Whisper listens to speech in many languages." "$tmp/b.wav"
say en-us+m3 200 "Seven, eight, nine. Testing one two three, at a faster pace." "$tmp/c.wav"
say en-gb-scotland 150 "Rain is falling on the hills of the north." "$tmp/d.wav"

# 16 kHz mono 16-bit: the feature extractor's references (sox's very high quality resampler).
sox "$tmp/a.wav" -r 16000 -b 16 speech_a_16k.wav rate -v
sox "$tmp/b.wav" -r 16000 -b 16 speech_b_16k.wav rate -v
# Speech over noise with a second of silence before it (dither off so that silence is zeros).
sox -D "$tmp/c.wav" -r 16000 -b 16 "$tmp/c16.wav" rate -v pad 1 0
sox -D -n -r 16000 -b 16 -c 1 "$tmp/noise.wav" synth "$(soxi -D "$tmp/c16.wav")" whitenoise vol 0.02
sox -D -m "$tmp/c16.wav" "$tmp/noise.wav" -b 16 speech_c_noisy_16k.wav
# 22.05 kHz mono as espeak-ng made it.
cp "$tmp/d.wav" speech_d_22k.wav
# 44.1 kHz stereo: left the voice, right the voice at half level (the mix-down is an average).
sox -D "$tmp/b.wav" -r 44100 -b 16 "$tmp/b44.wav" rate -v
sox -D "$tmp/b44.wav" -c 2 speech_b_44k_stereo.wav remix 1 1v0.5
# The same clip losslessly (must decode to the same samples), and lossy.
sox -D speech_b_44k_stereo.wav speech_b_44k_stereo.flac
sox -D speech_b_44k_stereo.wav -C 128 speech_b_44k_stereo.mp3
sox -D speech_d_22k.wav -C 3 speech_d_22k.ogg
"$PY" - <<'PY'
import av
# AAC in an MP4 container (.m4a) from the 44.1 kHz stereo clip.
src = av.open("speech_b_44k_stereo.wav")
out = av.open("speech_b_44k_stereo.m4a", "w", format="mp4")
stream = out.add_stream("aac", rate=44100)
stream.bit_rate = 128000
stream.layout = "stereo"
for frame in src.decode(audio=0):
    frame.pts = None
    for packet in stream.encode(frame):
        out.mux(packet)
for packet in stream.encode(None):
    out.mux(packet)
out.close()
PY
# A 1.5 s 32-bit float WAV at 44.1 kHz: a sine sweep from 50 Hz to 20 kHz at 0.5 amplitude (the
# resampler's reference input; its content above 8 kHz must vanish at 16 kHz).
"$PY" - <<'PY'
import numpy as np, wave, struct
rate, n = 44100, 66150
t = np.arange(n) / rate
f0, f1, T = 50.0, 20000.0, n / rate
phase = 2 * np.pi * f0 * T / np.log(f1 / f0) * (np.exp(t / T * np.log(f1 / f0)) - 1)
x = (0.5 * np.sin(phase)).astype("<f4")
# A minimal WAVE_FORMAT_IEEE_FLOAT file (the wave module writes PCM only).
data = x.tobytes()
fmt = struct.pack("<HHIIHH", 3, 1, rate, rate * 4, 4, 32)
body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
open("sweep_44k_f32.wav", "wb").write(b"RIFF" + struct.pack("<I", len(body)) + body)
PY
ls -l
