"""Python transformers' automatic-speech-recognition pipeline on the speech fixtures, for
tests/asr.rs (tests/fixtures/asr-pipeline-reference.json): text, segment chunks and word chunks
with whisper-tiny.en and whisper-base (the folders scripts/fetch-models.sh makes), long-form
audio in 30 s chunks and sequentially; and `language` / `task` on the tiny random multilingual
model (tests/fixtures/whisper/tiny-whisper-multi, for the npm tests: cheap on every backend).

The clips are read as the engine reads them: FLAC's 16-bit samples / 32768 (decoded by sox to
raw PCM here, so no Python audio package is needed).

The model computes in float32, as webformers does (over the same fp16 weights): transformers 5
loads a checkpoint in the dtype its config names ("auto"), float16 for these CTranslate2-converted
folders, and the pipeline then also casts the features to float16, so a reference made without
`dtype=torch.float32` is a float16 computation, whose near-tied greedy picks differ (whisper-tiny.en
on long-news.flac in 30 s chunks: "I too go to one" in float16, "I too goes to one" in float32).

Every finished case is cached (ASR_REFERENCE_CACHE, default .cache/asr-reference/, one JSON file
per case), so an interrupted run resumes; delete the cache after changing this script.

Run: .cache/pyref-venv/bin/python tests/reference/make_asr_reference.py [MODELS_DIR] [--only MODEL]
(`--only`: remake that model's cases alone, keeping the others in the file.)
"""

import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import torch
from transformers import pipeline

root = os.path.join(os.path.dirname(__file__), "..", "..")
args = sys.argv[1:]
only = None
if "--only" in args:
    at = args.index("--only")
    only = args[at + 1]
    del args[at : at + 2]
models = args[0] if args else os.path.join(root, ".cache", "models")
fixture_models = os.path.join(root, "tests", "fixtures", "whisper")
speech = os.path.join(root, "tests", "fixtures", "speech")
OUT = os.path.join(root, "tests", "fixtures", "asr-pipeline-reference.json")
CACHE = os.environ.get("ASR_REFERENCE_CACHE", os.path.join(root, ".cache", "asr-reference"))
torch.manual_seed(0)
torch.set_num_threads(int(os.environ.get("THREADS", "1")))


def read(clip):
    raw = subprocess.run(["sox", os.path.join(speech, clip), "-t", "raw", "-e", "signed", "-b", "16", "-c", "1", "-r", "16000", "-"], capture_output=True, check=True).stdout
    return np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0


def plain(x):
    if isinstance(x, dict):
        return {k: plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [plain(v) for v in x]
    if isinstance(x, float):
        return round(x, 2)
    return x


CLIPS = ["us-short.flac", "gb-female-silence.flac", "us-noisy.flac"]
PLANS = [
    ("whisper-tiny.en", [(c, o) for c in CLIPS for o in [{}, {"return_timestamps": True}, {"return_timestamps": "word"}]]
     + [("long-news.flac", {"chunk_length_s": 30, "return_timestamps": True}),
        ("long-news.flac", {"chunk_length_s": 30, "return_timestamps": "word"}),
        ("long-news.flac", {"return_timestamps": True})]),
    ("whisper-base", [("us-short.flac", o) for o in [{}, {"return_timestamps": True}, {"return_timestamps": "word"}, {"language": "english", "task": "transcribe"}]]
     + [("long-news.flac", {"chunk_length_s": 30, "return_timestamps": True}),
        ("long-news.flac", {"return_timestamps": True})]),
    # A tiny random model says nothing true, but its tokens follow the prompt exactly: a language,
    # translation, and translation from a named language with segment timestamps. 24 tokens at most
    # (a random model never ends on its own).
    ("tiny-whisper-multi", [("us-short.flac", {"language": "french", "max_new_tokens": 24}),
                            ("us-short.flac", {"task": "translate", "max_new_tokens": 24}),
                            ("us-short.flac", {"language": "german", "task": "translate", "return_timestamps": True, "max_new_tokens": 24})]),
]
cases = []
if only:
    with open(OUT) as f:
        cases = [c for c in json.load(f)["cases"] if c["model"] != only]
    PLANS = [p for p in PLANS if p[0] == only]
    assert PLANS, f"no plan for {only}"


def save():
    with open(OUT, "w") as f:
        json.dump({"made_by": "tests/reference/make_asr_reference.py", "cases": cases}, f, indent=1)


os.makedirs(CACHE, exist_ok=True)
for model, runs in PLANS:
    folder = os.path.join(fixture_models, model) if model.startswith("tiny-") else os.path.join(models, model)
    asr = None
    for clip, options in runs:
        key = hashlib.sha256(json.dumps([model, clip, options], sort_keys=True).encode()).hexdigest()[:16]
        cached = os.path.join(CACHE, f"{model}-{key}.json")
        if os.path.exists(cached):
            with open(cached) as f:
                cases.append(json.load(f))
            print(model, clip, options, "(cached)", flush=True)
            continue
        if asr is None:
            # float32 compute: see the module comment.
            asr = pipeline("automatic-speech-recognition", model=folder, device="cpu", dtype=torch.float32)
            assert asr.model.dtype == torch.float32
        audio = read(clip)
        kwargs = dict(options)
        # transformers 5's Whisper pipeline searches 5 beams unless told otherwise; transformers.js
        # (and webformers) decode greedily, so the reference does too.
        generate_kwargs = {"num_beams": 1, "do_sample": False}
        generate_kwargs.update({k: kwargs.pop(k) for k in ["language", "task", "max_new_tokens"] if k in kwargs})
        kwargs["generate_kwargs"] = generate_kwargs
        out = asr(audio.copy(), **kwargs)
        print(model, clip, options, json.dumps(plain(out))[:200], flush=True)
        cases.append({"model": model, "clip": clip, "options": options, "expected": plain(out)})
        with open(cached, "w") as f:
            json.dump(cases[-1], f)
        save()

print("wrote", OUT)
