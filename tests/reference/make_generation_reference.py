"""Reference values for core/src/generation's logits processors, from transformers' own
processors (transformers/generation/logits_process.py) on small fixed logits.

Output: tests/fixtures/generation/processors-reference.json, a list of cases
    {name, processors: [{kind, ...params}], ids, prompt_len, logits, want}
where `processors` run in list order on `logits` (one row, float32) with `ids` as input_ids,
and `want` is the result (float32; -inf written as null).

Run once, by hand, in the reference environment (CI never does):
    /work/main/.cache/pyref-venv/bin/python tests/reference/make_generation_reference.py
"""

import json
import math
import pathlib

import numpy as np
import torch
from transformers.generation.logits_process import (
    LogitsProcessorList,
    NoRepeatNGramLogitsProcessor,
    RepetitionPenaltyLogitsProcessor,
    SuppressTokensAtBeginLogitsProcessor,
    SuppressTokensLogitsProcessor,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

OUT = pathlib.Path(__file__).resolve().parents[1] / "fixtures/generation/processors-reference.json"

# Fixed logits of a 12-token vocabulary: positive and negative values, a tie at 1.5.
LOGITS = [2.25, -1.0, 0.5, 1.5, -3.5, 1.5, 0.0, 3.0, -0.25, 0.75, -2.0, 1.125]
RNG = np.random.default_rng(11)
WIDE = RNG.normal(0.0, 2.0, 40).astype(np.float32).tolist()


def build(spec, prompt_len):
    kind = spec["kind"]
    if kind == "suppress":
        return SuppressTokensLogitsProcessor(spec["tokens"])
    if kind == "begin_suppress":
        return SuppressTokensAtBeginLogitsProcessor(spec["tokens"], prompt_len)
    if kind == "repetition_penalty":
        return RepetitionPenaltyLogitsProcessor(spec["penalty"])
    if kind == "no_repeat_ngram":
        return NoRepeatNGramLogitsProcessor(spec["size"])
    if kind == "temperature":
        return TemperatureLogitsWarper(spec["temperature"])
    if kind == "top_k":
        return TopKLogitsWarper(spec["top_k"], min_tokens_to_keep=spec.get("min_tokens_to_keep", 1))
    if kind == "top_p":
        return TopPLogitsWarper(spec["top_p"], min_tokens_to_keep=spec.get("min_tokens_to_keep", 1))
    raise ValueError(kind)


def case(name, processors, ids, prompt_len, logits=LOGITS):
    chain = LogitsProcessorList([build(p, prompt_len) for p in processors])
    scores = torch.tensor([logits], dtype=torch.float32)
    out = chain(torch.tensor([ids], dtype=torch.long), scores)[0].numpy()
    want = [None if math.isinf(v) and v < 0 else float(np.float32(v)) for v in out.tolist()]
    return {"name": name, "processors": processors, "ids": ids, "prompt_len": prompt_len, "logits": logits, "want": want}


CASES = [
    case("suppress", [{"kind": "suppress", "tokens": [1, 7, 40]}], [3, 4], 2),
    case("begin_suppress at the first step", [{"kind": "begin_suppress", "tokens": [0, 7]}], [3, 4], 2),
    case("begin_suppress after it", [{"kind": "begin_suppress", "tokens": [0, 7]}], [3, 4, 9], 2),
    case("repetition_penalty", [{"kind": "repetition_penalty", "penalty": 1.3}], [0, 1, 0, 7, 4, 6], 3),
    case("repetition_penalty below 1", [{"kind": "repetition_penalty", "penalty": 0.5}], [1, 3, 3], 1),
    case("no_repeat_ngram 2", [{"kind": "no_repeat_ngram", "size": 2}], [5, 3, 7, 5, 3, 2, 5], 3),
    case("no_repeat_ngram 3", [{"kind": "no_repeat_ngram", "size": 3}], [1, 2, 3, 1, 2, 9, 1, 2], 2),
    case("no_repeat_ngram 1", [{"kind": "no_repeat_ngram", "size": 1}], [4, 0], 1),
    case("no_repeat_ngram too short", [{"kind": "no_repeat_ngram", "size": 4}], [1, 1, 1], 1),
    case("temperature", [{"kind": "temperature", "temperature": 0.7}], [0], 1),
    case("top_k 3", [{"kind": "top_k", "top_k": 3}], [0], 1),
    case("top_k 4 keeps the tie", [{"kind": "top_k", "top_k": 4}], [0], 1),
    case("top_k past the vocabulary", [{"kind": "top_k", "top_k": 50}], [0], 1),
    case("top_p 0.9", [{"kind": "top_p", "top_p": 0.9}], [0], 1),
    case("top_p 0.3", [{"kind": "top_p", "top_p": 0.3}], [0], 1),
    case("top_p 0.05 min 2", [{"kind": "top_p", "top_p": 0.05, "min_tokens_to_keep": 2}], [0], 1),
    case("top_p 0.8 wide", [{"kind": "top_p", "top_p": 0.8}], [0], 1, WIDE),
    case(
        "sampling chain",
        [
            {"kind": "repetition_penalty", "penalty": 1.2},
            {"kind": "no_repeat_ngram", "size": 2},
            {"kind": "suppress", "tokens": [11]},
            {"kind": "temperature", "temperature": 0.8},
            {"kind": "top_k", "top_k": 20},
            {"kind": "top_p", "top_p": 0.85},
        ],
        [3, 17, 5, 3, 30, 2],
        2,
        WIDE,
    ),
]

if __name__ == "__main__":
    OUT.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "source": "transformers' logits processors on fixed float32 logits (tests/reference/make_generation_reference.py); "
        "`want` is the processed row, null where transformers gives -inf",
        "cases": CASES,
    }
    # One case a line, so the file stays small and its diffs readable.
    lines = ",\n  ".join(json.dumps(c) for c in CASES)
    OUT.write_text('{\n "source": ' + json.dumps(doc["source"]) + ',\n "cases": [\n  ' + lines + "\n ]\n}\n")
    print(f"wrote {OUT} ({len(CASES)} cases)")
