"""Reference beam searches for core/src/generation/beam.rs, from transformers' own `generate`
(num_beams > 1, do_sample=False: `_beam_search`) on the tiny random decoders of
tests/fixtures (made by make_tiny_decoders.py).

Output: tests/fixtures/generation/beam-reference.json:
    {versions, models: {name: {prompt_ids, eos: [ids], cases: [{name, options, sequences:
        [{token_ids, score}]}]}}}
`options` are the generate() keyword arguments (transformers' names, the same as
webformers' call options); `token_ids` are the generated ids of each returned sequence (an
ending EOS included, padding cut: the length is the count of its beam_indices that are not
-1); `score` is its `sequences_scores` entry.

The models rarely produce their own EOS, so most cases pass `eos_token_id`: ids picked from a
first beam search's output (`eos` above), so that hypotheses end at several lengths.

`whisper`: the tiny random Whisper (tests/fixtures/whisper/tiny-whisper-en) through
transformers' automatic-speech-recognition pipeline with generate_kwargs {num_beams: 2,
max_new_tokens: 24} (no timestamps): {clip: {options, text, generate_ids}}, where generate_ids
is model.generate(input_features, num_beams=2, max_new_tokens=24)'s output (the decoder prompt
left out, EOS included when it ends so).

Run once, by hand, in the reference environment (CI never does):
    /work/main/.cache/pyref-venv/bin/python tests/reference/make_beam_reference.py [whisper]
(`whisper` redoes only the Whisper part.)
"""

import json
import pathlib

import torch
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "tests/fixtures/generation/beam-reference.json"
MODELS = ["tiny-llama", "tiny-qwen2", "tiny-gpt2"]
PROMPT = "The quick brown fox jumps"


def cases(eos):
    """(name, generate kwargs); `eos` are the picked end ids."""
    base = {"max_new_tokens": 10}
    with_eos = {**base, "eos_token_id": eos}
    return [
        ("beams2", {**base, "num_beams": 2}),
        ("beams4", {**base, "num_beams": 4}),
        ("beams4_no_repeat_2", {**base, "num_beams": 4, "no_repeat_ngram_size": 2, "max_new_tokens": 16}),
        ("beams2_eos", {**with_eos, "num_beams": 2}),
        ("beams4_eos", {**with_eos, "num_beams": 4}),
        ("beams4_eos_length_penalty_0.5", {**with_eos, "num_beams": 4, "length_penalty": 0.5}),
        ("beams4_eos_length_penalty_2", {**with_eos, "num_beams": 4, "length_penalty": 2.0}),
        ("beams4_eos_early_true", {**with_eos, "num_beams": 4, "early_stopping": True}),
        ("beams4_eos_early_false", {**with_eos, "num_beams": 4, "early_stopping": False}),
        ("beams4_eos_early_never", {**with_eos, "num_beams": 4, "early_stopping": "never"}),
        ("beams4_eos_early_never_lp2", {**with_eos, "num_beams": 4, "early_stopping": "never", "length_penalty": 2.0}),
        ("beams4_eos_return_2", {**with_eos, "num_beams": 4, "num_return_sequences": 2}),
        ("beams4_eos_min_new_6", {**with_eos, "num_beams": 4, "min_new_tokens": 6}),
        ("beams2_eos_no_repeat_1_return_2", {**with_eos, "num_beams": 2, "no_repeat_ngram_size": 1, "num_return_sequences": 2}),
    ]


def beam_search(model, ids, kwargs):
    out = model.generate(
        torch.tensor([ids]),
        attention_mask=torch.ones(1, len(ids), dtype=torch.long),
        do_sample=False,
        pad_token_id=0,
        return_dict_in_generate=True,
        output_scores=True,
        **kwargs,
    )
    sequences = []
    for seq, score, beams in zip(out.sequences, out.sequences_scores, out.beam_indices):
        n = int((beams != -1).sum())
        sequences.append({"token_ids": seq[len(ids) : len(ids) + n].tolist(), "score": float(score)})
    return sequences


WHISPER_CLIPS = ["us-short", "gb-slow"]


def whisper():
    import subprocess

    import numpy as np
    from transformers import WhisperFeatureExtractor, WhisperForConditionalGeneration, WhisperTokenizerFast, pipeline

    folder = ROOT / "tests/fixtures/whisper/tiny-whisper-en"
    model = WhisperForConditionalGeneration.from_pretrained(folder, dtype=torch.float32).eval()
    fe = WhisperFeatureExtractor.from_pretrained(folder)
    tok = WhisperTokenizerFast.from_pretrained(folder)
    asr = pipeline("automatic-speech-recognition", model=model, tokenizer=tok, feature_extractor=fe, device="cpu")
    kwargs = {"num_beams": 2, "do_sample": False, "max_new_tokens": 24}
    out = {}
    for clip in WHISPER_CLIPS:
        # 16-bit samples / 32768 decoded by sox, as make_whisper_reference.py reads them.
        path = ROOT / "tests/fixtures/speech" / f"{clip}.flac"
        cmd = ["sox", str(path), "-t", "raw", "-e", "signed-integer", "-b", "16", "-c", "1", "-r", "16000", "-"]
        raw = subprocess.run(cmd, check=True, capture_output=True).stdout
        audio = np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0
        feats = fe(audio, sampling_rate=16000, return_tensors="pt").input_features
        with torch.no_grad():
            ids = model.generate(feats, **kwargs)[0].tolist()
            text = asr(audio.copy(), generate_kwargs=kwargs)["text"]
        out[clip] = {"options": {"num_beams": 2, "max_new_tokens": 24}, "text": text, "generate_ids": ids}
        print(clip, repr(text), ids)
    return out


def main():
    import sys

    if sys.argv[1:] == ["whisper"]:
        result = json.loads(OUT.read_text())
        result["whisper"] = whisper()
        OUT.write_text(json.dumps(result, indent=1) + "\n")
        print(f"wrote {OUT}")
        return
    torch.manual_seed(0)
    result = {
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
        "note": "Made by tests/reference/make_beam_reference.py.",
        "models": {},
    }
    for name in MODELS:
        folder = ROOT / "tests/fixtures" / name
        tokenizer = AutoTokenizer.from_pretrained(folder)
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
        ids = tokenizer(PROMPT)["input_ids"]
        # End ids that the model does produce: the 3rd and 6th tokens of a plain beam search.
        first = beam_search(model, ids, {"num_beams": 4, "max_new_tokens": 10})[0]["token_ids"]
        eos = sorted({first[2], first[5]})
        entry = {"prompt": PROMPT, "prompt_ids": ids, "eos": eos, "cases": []}
        with torch.no_grad():
            for case_name, kwargs in cases(eos):
                entry["cases"].append({"name": case_name, "options": kwargs, "sequences": beam_search(model, ids, kwargs)})
        result["models"][name] = entry
    result["whisper"] = whisper()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
