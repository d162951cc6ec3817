"""Records what transformers' Whisper host-side logic computes, for the unit tests of
core/src/tasks/asr/ (tests/fixtures/asr-host-reference.json).

Everything here runs without a model: the timestamp logits processor on random logits, the decoder
prompt (init tokens) from a generation config, `_decode_asr` (segment chunks, strides, the
longest-common-sequence merge, word chunks) with a small fake byte-level tokenizer, and the token
timestamps from random cross-attention weights (median filter, DTW, jumps).

Run: .cache/pyref-venv/bin/python tests/reference/make_asr_host_reference.py
"""

import json
import math
import os
import types

import numpy as np
import torch

from transformers.generation.logits_process import WhisperTimeStampLogitsProcessor
from transformers.models.whisper import generation_whisper as gw
from transformers.models.whisper import tokenization_whisper as tw

OUT = os.path.join(os.path.dirname(__file__), "..", "fixtures", "asr-host-reference.json")
rng = np.random.default_rng(11)


def finite_or_none(values):
    return [None if not math.isfinite(v) else float(v) for v in values]


# ---- the timestamp logits processor -------------------------------------------------------------
# A small vocabulary laid out as Whisper's: text ids, then eos, specials, <|notimestamps|>, timestamps.
V, EOS, NO_TS = 40, 10, 19
TS_BEGIN = NO_TS + 1
processor_cases = []
histories = [
    [],  # the first step: a timestamp must come first
    [22],  # after one timestamp: text or eos only
    [22, 3],
    [22, 3, 4, 25],  # a single timestamp after text: another timestamp or eos
    [22, 3, 4, 25, 25],  # a pair: text next, timestamps masked
    [20, 5, 27, 27, 6],  # timestamps must not decrease
    [20, 5, 27],
    [21, 21],
]
for max_initial in [None, 3]:
    cfg = types.SimpleNamespace(no_timestamps_token_id=NO_TS, eos_token_id=EOS, bos_token_id=EOS, max_initial_timestamp_index=max_initial)
    for h in histories:
        for boost in [False, True]:
            prompt = [30, 31, 32]
            ids = prompt + h
            logits = np.round(rng.normal(0, 2, V), 4).astype(np.float32)
            if boost:
                # timestamps likely enough in sum to win over every text token
                logits[TS_BEGIN:] += 3.0
            proc = WhisperTimeStampLogitsProcessor(cfg, begin_index=len(prompt))
            out = proc(torch.tensor([ids]), torch.tensor(logits[None].copy()))[0].numpy()
            processor_cases.append(
                {
                    "max_initial_timestamp_index": max_initial,
                    "ids": ids,
                    "begin_index": len(prompt),
                    "logits": logits.tolist(),
                    "expected": finite_or_none(out.tolist()),
                }
            )

# ---- the decoder prompt ------------------------------------------------------------------------
lang_to_id = {"<|en|>": 50259, "<|zh|>": 50260, "<|de|>": 50261, "<|fr|>": 50265, "<|yue|>": 50358}
task_to_id = {"translate": 50358 - 0, "transcribe": 50359}
task_to_id = {"translate": 50359, "transcribe": 50360}
prompt_cases = []
for language in [None, "en", "english", "<|fr|>", "French", "zh", "mandarin", "cantonese", "klingon", "xx"]:
    for task in [None, "transcribe", "translate", "dance"]:
        for ts in [False, True]:
            for forced in [None, [[1, None], [2, 50360]], [[1, 50259], [2, 50360], [3, 50364]]]:
                gc = types.SimpleNamespace(
                    decoder_start_token_id=50258,
                    no_timestamps_token_id=50364,
                    lang_to_id=lang_to_id,
                    task_to_id=task_to_id,
                    is_multilingual=True,
                    return_timestamps=ts,
                    forced_decoder_ids=forced,
                    task=task,
                    language=language,
                )
                fake = types.SimpleNamespace(device="cpu", detect_language=lambda **kw: torch.tensor([50261]))
                try:
                    init = gw.WhisperGenerationMixin._retrieve_init_tokens(fake, None, 1, gc, types.SimpleNamespace(), 3000, {})
                    expected = {"ids": init[0].tolist()}
                except (ValueError, TypeError) as e:
                    expected = {"error": str(e)[:60]}
                prompt_cases.append(
                    {"language": language, "task": task, "return_timestamps": ts, "forced_decoder_ids": forced, "expected": expected}
                )

# ---- _decode_asr with a fake byte-level tokenizer -------------------------------------------------
TEXT = [
    " Hello", " world", ",", ".", " the", "cat", " sat", " on", " mat", "!",
    " \"", "'", " (", "s", " a", " b", "\xe4\xbd", "\xa0", " I", "'m",
    " -", "ing", " big", "?", " Yes", " no", " x", " y", " z", " end",
]
TEXT_BYTES = [t.encode("latin-1") for t in TEXT]
SPECIALS = ["<|endoftext|>", "<|startoftranscript|>", "<|en|>", "<|fr|>", "<|zh|>", "<|translate|>", "<|transcribe|>",
            "<|startoflm|>", "<|startofprev|>", "<|nospeech|>", "<|notimestamps|>"]
T_EOS = len(TEXT)
T_TS = T_EOS + len(SPECIALS)  # the first timestamp id


class FakeTokenizer:
    """The parts of WhisperTokenizer that _decode_asr uses, over byte tokens (decoded as UTF-8
    with replacement characters, as tokenizers' byte-level decoder does)."""

    eos_token_id = T_EOS
    all_special_ids = list(range(T_EOS, T_TS))
    language = None

    def convert_tokens_to_ids(self, token):
        return T_EOS + SPECIALS.index(token)

    def decode(self, ids, **kwargs):
        out = b""
        for i in ids:
            if i < T_EOS:
                out += TEXT_BYTES[i]
            elif i < T_TS:
                out += SPECIALS[i - T_EOS].encode()
        return out.decode("utf-8", errors="replace")

    def _strip_prompt(self, token_ids, prompt_token_id, decoder_start_token_id):
        return tw.WhisperTokenizer._strip_prompt(self, token_ids, prompt_token_id, decoder_start_token_id)

    def _convert_to_list(self, ids):
        return ids


tok = FakeTokenizer()


def ts(t):
    return T_TS + int(round(t / 0.02))


decode_cases = []


def decode_case(name, outputs, return_timestamps, return_language=False):
    model_outputs = []
    for o in outputs:
        m = {"tokens": np.array([o["tokens"]])}
        if "stride" in o:
            m["stride"] = tuple(o["stride"])
        if "token_timestamps" in o:
            m["token_timestamps"] = np.array([o["token_timestamps"]])
        model_outputs.append(m)
    try:
        text, optional = tw._decode_asr(tok, model_outputs, return_timestamps=return_timestamps, return_language=return_language, time_precision=0.02)
        chunks = optional.get("chunks")
        if chunks is not None:
            chunks = [{**c, "timestamp": list(c["timestamp"])} if "timestamp" in c else c for c in chunks]
        expected = {"text": text, "chunks": chunks}
    except Exception as e:  # noqa: BLE001
        expected = {"error": str(e)[:60]}
    decode_cases.append({"name": name, "outputs": outputs, "return_timestamps": return_timestamps, "return_language": return_language, "expected": expected})


decode_case("plain", [{"tokens": [0, 1, 3]}], False)
decode_case("plain with language", [{"tokens": [T_EOS + 2, 0, 1, 3]}], False, True)
decode_case("segments", [{"tokens": [ts(0), 0, 1, 2, ts(1.5), ts(1.5), 18, 6, 3, ts(3.2)]}], True)
decode_case("segments with language", [{"tokens": [T_EOS + 3, ts(0), 0, 1, ts(1.5)]}], True, True)
decode_case("no end timestamp", [{"tokens": [ts(0), 0, 1, 2, ts(1.5), ts(1.5), 18, 6]}], True)
decode_case("duplicate start", [{"tokens": [ts(0.4), ts(0.4), 0, 1, ts(1.0)]}], True)
decode_case("long-form restart", [{"tokens": [ts(0), 0, 1, ts(20.0), ts(20.0), 4, 5, ts(29.0), ts(2.0), 6, 7, ts(5.0)]}], True)
decode_case("long-form double ending", [{"tokens": [ts(0), 0, 1, ts(20.0), ts(20.0), 4, 5, ts(28.0), ts(28.0), ts(1.0), 6, 7, ts(5.0)]}], True)
# Chunked audio: strides in seconds (chunk length, left, right), the overlap merged.
chunked = [
    {"tokens": [0, 1, 4, 5, 6, 7, 4, 8], "stride": [30.0, 0.0, 5.0]},
    {"tokens": [6, 7, 4, 8, 3, 24, 18, 22], "stride": [30.0, 5.0, 5.0]},
    {"tokens": [18, 22, 29, 3], "stride": [12.0, 5.0, 0.0]},
]
decode_case("chunked plain", chunked, False)
chunked_ts = [
    {"tokens": [ts(0), 0, 1, ts(2.0), ts(2.0), 4, 5, 6, ts(22.0), ts(22.0), 7, 4, 8, ts(27.0)], "stride": [30.0, 0.0, 5.0]},
    {"tokens": [ts(0), 6, 7, 4, 8, ts(2.0), ts(2.0), 3, 24, ts(10.0), ts(10.0), 18, 22, ts(23.0), ts(23.5), 29, ts(27.0)], "stride": [30.0, 5.0, 5.0]},
    {"tokens": [ts(0), 18, 22, ts(3.0), ts(3.0), 29, 3, ts(6.0)], "stride": [12.0, 5.0, 0.0]},
]
decode_case("chunked segments", chunked_ts, True)
decode_case("chunked lone chunk", [{"tokens": [ts(0), 0, 1, ts(2.0)], "stride": [8.0, 0.0, 0.0]}], True)
decode_case("empty", [{"tokens": []}], True)
decode_case("empty plain", [{"tokens": []}], False)
decode_case("only specials", [{"tokens": [T_EOS + 2, T_EOS]}], False)


def word_ts(n, start=0.0, step=0.3):
    return [round(start + step * i, 2) for i in range(n)]


w1 = [ts(0), 0, 2, 1, 3, ts(1.5), ts(1.5), 10, 18, 19, 21, 3, 10, ts(3.0)]
decode_case("words", [{"tokens": w1, "token_timestamps": word_ts(len(w1))}], "word")
w2 = [ts(0), 12, 0, 9, 20, 1, 23, 16, 17, 14, 11, 13, ts(2.0)]
decode_case("words punctuation and unicode", [{"tokens": w2, "token_timestamps": word_ts(len(w2), 0.1, 0.17)}], "word")
w3 = [T_EOS + 2, ts(0), 0, 1, 5, 13, ts(1.0)]
decode_case("words with language", [{"tokens": w3, "token_timestamps": word_ts(len(w3))}], "word", True)
wc = [
    {"tokens": [ts(0), 0, 1, 4, 5, 6, 7, 4, 8, ts(27.0)], "stride": [30.0, 0.0, 5.0]},
    {"tokens": [ts(0), 6, 7, 4, 8, 3, 24, 18, 22, ts(27.0)], "stride": [30.0, 5.0, 5.0]},
    {"tokens": [ts(0), 18, 22, 29, 3, ts(6.0)], "stride": [12.0, 5.0, 0.0]},
]
for k, c in enumerate(wc):
    c["token_timestamps"] = [0.0] + [round(0.5 + 2.9 * i, 2) for i in range(len(c["tokens"]) - 1)]
decode_case("chunked words", wc, "word")

# ---- longest common sequence alone ------------------------------------------------------------
lcs_cases = []
for _ in range(40):
    n = int(rng.integers(1, 4))
    seqs = [list(map(int, rng.integers(0, 6, int(rng.integers(0, 12))))) for _ in range(n + 1)]
    lcs_cases.append({"sequences": seqs, "expected": list(map(int, tw._find_longest_common_sequence(seqs, None)))})

# ---- token timestamps from cross-attention ------------------------------------------------------
dtw_cases = []
for heads, prompt_len, generated, frames, num_frames in [(2, 3, 6, 40, 60), (3, 4, 10, 50, 100), (1, 1, 3, 12, None), (4, 3, 2, 30, 31), (2, 3, 1, 20, 40), (4, 4, 20, 100, 150)]:
    total = prompt_len + generated  # prompt + generated (the last generated, eos, has no attention row)
    rows = total - 1
    att = rng.random((heads, rows, frames)).astype(np.float32)
    att /= att.sum(-1, keepdims=True)
    # short decimals in the JSON; both sides read them as the nearest f32
    att64 = np.round(att.astype(np.float64), 5)
    att = att64.astype(np.float32)
    layers = 4
    # generate()'s cross_attentions: per step, per layer, [batch, heads of the layer, new tokens, frames]
    alignment = [(i % layers, i // layers) for i in range(heads)]
    per_layer_heads = max(h for _, h in alignment) + 1
    steps = []
    full = np.zeros((layers, per_layer_heads, rows, frames), dtype=np.float32)
    for k, (l, h) in enumerate(alignment):
        full[l, h] = att[k]
    bounds = [(0, prompt_len)] + [(prompt_len + i, prompt_len + i + 1) for i in range(rows - prompt_len)]
    for a, b in bounds:
        steps.append(tuple(torch.tensor(full[l][None, :, a:b]) for l in range(layers)))
    outputs = {"cross_attentions": tuple(steps), "sequences": torch.zeros((1, total), dtype=torch.long)}

    class Out(dict):
        __getattr__ = dict.__getitem__

    fake = types.SimpleNamespace(config=types.SimpleNamespace(decoder_layers=layers, median_filter_width=7))
    nf = None if num_frames is None else torch.tensor([num_frames])
    stamps = gw.WhisperGenerationMixin._extract_token_timestamps(fake, Out(outputs), alignment, 0.02, num_frames=nf, num_input_ids=prompt_len)
    dtw_cases.append({"prompt_len": prompt_len, "num_frames": num_frames, "weights": att64.reshape(-1).tolist(), "dims": [heads, rows, frames], "expected": stamps[0].tolist()})

median_cases = []
for n in [1, 3, 4, 7, 12]:
    x = rng.normal(0, 1, (2, n)).astype(np.float32)
    median_cases.append({"x": x.reshape(-1).tolist(), "dims": [2, n], "expected": gw._median_filter(torch.tensor(x[None]), 7).reshape(-1).tolist()})

languages = [[code, name] for code, name in tw.LANGUAGES.items()]
aliases = [[name, code] for name, code in tw.TO_LANGUAGE_CODE.items() if tw.LANGUAGES.get(code) != name]

with open(OUT, "w") as f:
    json.dump(
        {
            "processor": {"vocab": V, "eos": EOS, "no_timestamps": NO_TS, "cases": processor_cases},
            "prompt": {"decoder_start": 50258, "no_timestamps": 50364, "lang_to_id": lang_to_id, "task_to_id": task_to_id, "cases": prompt_cases},
            "decode": {"text": TEXT, "specials": SPECIALS, "cases": decode_cases},
            "lcs": lcs_cases,
            "token_timestamps": dtw_cases,
            "median": median_cases,
            "languages": languages,
            "aliases": aliases,
        },
        f,
    )
print("wrote", OUT, os.path.getsize(OUT), "bytes")
