"""Python references for tests/audio.rs, written to tests/fixtures/audio-reference/.

- Log-mel features: transformers' WhisperFeatureExtractor (feature_size 80 and 128) on its numpy
  path (the one webformers follows) over the 16 kHz clips of tests/fixtures/audio/ (16-bit PCM
  read as int16 / 32768, exactly what hound gives) and over a 35 s concatenation of them (the
  truncation to 30 s). Every value is kept: the frames that cover the clip in full, and, for the
  frames after them (the zero padding), the one value they all hold (checked here). The torch
  path's largest difference from the numpy path is recorded for information.
- Lossy decoding: ffmpeg's decoders (PyAV) on the MP3, OGG/Vorbis and M4A/AAC clips, mixed down
  to mono by averaging the channels; the first 2 s kept as int16 (the tolerance is far above
  int16's step).
- Resampling: soxr "VHQ" of the 44.1 kHz float sweep to 16 kHz (f32).

Needs the pyref venv plus `av` and `soxr` (pip install av soxr).
Run: python tests/reference/make_audio_reference.py
"""

import json
import wave
from pathlib import Path

import numpy as np

import transformers.models.whisper.feature_extraction_whisper as fx
from transformers import WhisperFeatureExtractor

ROOT = Path(__file__).resolve().parents[1] / "fixtures"
AUDIO = ROOT / "audio"
OUT = ROOT / "audio-reference"
OUT.mkdir(exist_ok=True)


def read_wav16(path):
    with wave.open(str(path)) as w:
        assert w.getsampwidth() == 2 and w.getnchannels() == 1, path
        return np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32) / 32768.0, w.getframerate()


def features(fe, samples, torch_path):
    saved = fx.is_torch_available
    fx.is_torch_available = (lambda: True) if torch_path else (lambda: False)
    try:
        return fe(samples, sampling_rate=16000, return_tensors="np")["input_features"][0]
    finally:
        fx.is_torch_available = saved


ref = {"features": [], "decoded": [], "resample": None}

clips = {name: read_wav16(AUDIO / f"{name}.wav")[0] for name in ["speech_a_16k", "speech_b_16k", "speech_c_noisy_16k"]}
long_parts, total = [], 0
while total < 35 * 16000:
    for name in clips:
        long_parts.append(name)
        total += len(clips[name])
cases = [(name, [name]) for name in clips] + [("long_35s", long_parts)]

for n_mels in (80, 128):
    fe = WhisperFeatureExtractor(feature_size=n_mels)
    for case, parts in cases:
        if case == "long_35s" and n_mels != 80:
            continue
        samples = np.concatenate([clips[p] for p in parts])
        f = features(fe, samples, torch_path=False)
        assert f.shape == (n_mels, 3000), f.shape
        # Frames past the clip (plus the reflect-padded edge) are the floor value only.
        kept = min(3000, -(-len(samples) // 160) + 3)
        tail = f[:, kept:]
        tail_value = float(tail[0, 0]) if tail.size else None
        if tail.size:
            assert np.all(tail == tail_value), case
        name = f"features_{case}_{n_mels}.f32"
        np.ascontiguousarray(f[:, :kept], dtype="<f4").tofile(OUT / name)
        torch_diff = float(np.abs(features(fe, samples, torch_path=True) - f).max())
        ref["features"].append(
            {
                "case": case,
                "parts": parts,
                "n_mels": n_mels,
                "file": name,
                "frames_kept": kept,
                "tail_value": tail_value,
                "max": float(f.max()),
                "torch_path_max_abs_diff": torch_diff,
            }
        )
        print(case, n_mels, kept, tail_value, "torch vs numpy", torch_diff)

import av  # noqa: E402

for name in ["speech_b_44k_stereo.mp3", "speech_d_22k.ogg", "speech_b_44k_stereo.m4a"]:
    with av.open(str(AUDIO / name)) as c:
        chunks, rate = [], None
        for frame in c.decode(audio=0):
            rate = frame.sample_rate
            a = frame.to_ndarray().astype(np.float64)
            if not frame.format.is_planar:
                a = a.reshape(-1, len(frame.layout.channels)).T
            chunks.append(a.mean(axis=0))
    x = np.concatenate(chunks)
    keep = x[: 2 * rate]
    out = f"decoded_{name.replace('.', '_')}.i16"
    np.clip(np.round(keep * 32768), -32768, 32767).astype("<i2").tofile(OUT / out)
    ref["decoded"].append({"file": name, "sampling_rate": rate, "frames": len(x), "kept": len(keep), "reference": out})
    print(name, rate, len(x))

import soxr  # noqa: E402

with open(AUDIO / "sweep_44k_f32.wav", "rb") as fh:
    data = fh.read()
sweep = np.frombuffer(data[data.index(b"data") + 8 :], "<f4")
y = soxr.resample(sweep.astype(np.float64), 44100, 16000, quality="VHQ").astype("<f4")
y.tofile(OUT / "sweep_16k_soxr_vhq.f32")
ref["resample"] = {"input": "sweep_44k_f32.wav", "from": 44100, "to": 16000, "frames": len(y), "reference": "sweep_16k_soxr_vhq.f32"}
print("sweep", len(sweep), "->", len(y))

(OUT / "reference.json").write_text(json.dumps(ref, indent=1) + "\n")
