"""Python transformers' transcript of the speech benchmark clip, for bench/speech.sh's checks.

Run once, by hand, in the reference environment (see bench/README.md, "Speech"):
    .cache/pyref-venv/bin/python bench/speech-reference.py CLIP.wav > bench/speech-reference.json

For whisper-tiny.en and whisper-base (as scripts/fetch-models.sh makes them), the
automatic-speech-recognition pipeline with chunk_length_s 30 (stride 5 s, the default), greedy
(num_beams 1), float32 compute, English transcription: the same call that the benchmark times in
webformers and Transformers.js.
The clip is 60 s of tests/fixtures/speech/long-news.flac (bench/speech.sh makes it with sox).
"""

import json
import sys
import wave
from pathlib import Path

import numpy as np
import torch
from transformers import pipeline

ROOT = Path(__file__).resolve().parents[1]
# Greedy (num_beams 1), as webformers and Transformers.js decode: transformers 5's Whisper pipeline
# searches 5 beams unless told otherwise, which would make the word-error column compare greedy
# transcripts with beam search's.
GREEDY = {"num_beams": 1, "do_sample": False}
MODELS = {"whisper-tiny.en": dict(GREEDY), "whisper-base": {"language": "english", "task": "transcribe", **GREEDY}}


def read_wav(path):
    with wave.open(str(path), "rb") as w:
        if w.getframerate() != 16000 or w.getnchannels() != 1 or w.getsampwidth() != 2:
            sys.exit(f"{path}: want 16 kHz mono 16-bit WAV")
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    return pcm.astype(np.float32) / 32768.0


def main():
    audio = read_wav(sys.argv[1])
    torch.set_num_threads(1)
    out = {"clip_s": len(audio) / 16000, "chunk_length_s": 30, "models": {}}
    for name, gen in MODELS.items():
        asr = pipeline(
            "automatic-speech-recognition", model=str(ROOT / ".cache" / "models" / name),
            dtype=torch.float32, device="cpu",
        )
        res = asr({"raw": audio, "sampling_rate": 16000}, chunk_length_s=30, generate_kwargs=gen)
        out["models"][name] = {"text": res["text"], "generate_kwargs": gen}
        print(name, res["text"], file=sys.stderr)
    json.dump(out, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
