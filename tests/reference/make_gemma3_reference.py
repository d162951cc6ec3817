"""Makes the golden data of the real google/gemma-3-270m Q4_K_M GGUF for tests/gemma3.rs.

Output: tests/fixtures/gemma3-270m-reference.json: GGUF facts, tokenizer cases, and per prompt
its token ids, last-position logits (the first 64, every 256th, the top 20, the argmax) and the
32 greedy tokens that follow.

Run once, by hand, in the reference environment (CI never does):
    scripts/fetch-models.sh gemma3 && scripts/pyref-env.sh
    .cache/pyref-venv/bin/python tests/reference/make_gemma3_reference.py

Method: transformers loads the GGUF itself (`from_pretrained(dir, gguf_file=...)`): gguf-py
dequantizes every tensor to float32 (Q5_0, Q8_0, Q4_K and Q6_K here), the norm weights lose
the 1 llama.cpp added, and the config is Gemma3TextConfig's defaults plus what the file says
(sliding window 512, a global layer every 6th). The tokenizer is the one transformers builds
from the GGUF metadata (GemmaTokenizer with merges recovered from the vocabulary). CPU, float32,
one thread, eager attention: rerunning gives identical files.
"""

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import torch
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

sys.path.insert(0, str(Path(__file__).resolve().parent))
from golden_json import dump  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
MODEL_DIR = ROOT / ".cache" / "models"
GGUF_FILE = "gemma-3-270m-q4_k_m.gguf"
GGUF_SHA256 = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
OUT_JSON = ROOT / "tests" / "fixtures" / "gemma3-270m-reference.json"

NEW_TOKENS = 32
TOP_K = 20
FIRST_N = 64
STRIDE = 256

# Plain-text prompts (a base model): prose, a list, and code.
PROMPTS = [
    ("capital", "The capital of France is"),
    ("story", "Once upon a time, in a small village by the sea, there lived an old fisherman who"),
    ("code", "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n"),
]
TOKENIZER_CASES = [
    "Hello world",
    " Hello  world",
    "   three leading spaces",
    "line one\nline two\n\n",
    "tabs\tand\t\ttabs",
    "12345 and 3.14159",
    "naïve café résumé Zoë",
    "日本語のテキスト、中文。",
    "emoji 🤗🚀 ok",
    "<start_of_turn>user\nhi<end_of_turn>\n",
    "def f(x):\n    return x * 2\n",
]


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def main():
    torch.set_num_threads(1)
    path = MODEL_DIR / GGUF_FILE
    assert sha256(path) == GGUF_SHA256, "run scripts/fetch-models.sh gemma3"
    tok = AutoTokenizer.from_pretrained(str(MODEL_DIR), gguf_file=GGUF_FILE)
    model = AutoModelForCausalLM.from_pretrained(
        str(MODEL_DIR), gguf_file=GGUF_FILE, dtype=torch.float32, attn_implementation="eager").eval()
    cfg = model.config

    cases = []
    for text in TOKENIZER_CASES:
        ids = tok(text)["input_ids"]
        cases.append({"text": text, "ids": ids, "decoded_skip_special": tok.decode(ids, skip_special_tokens=True)})

    prompts = []
    for name, text in PROMPTS:
        ids = tok(text)["input_ids"]
        with torch.inference_mode():
            logits = model(torch.tensor([ids])).logits[0, -1]
            gc = GenerationConfig(do_sample=False, max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS,
                                  eos_token_id=None, pad_token_id=0, bos_token_id=None,
                                  return_dict_in_generate=True, output_logits=True)
            out = model.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                                 generation_config=gc)
        new = out.sequences[0, len(ids):].tolist()
        steps = torch.stack(out.logits, 1)[0]
        top2 = torch.topk(steps, 2, dim=-1).values
        top = torch.topk(logits, TOP_K)
        prompts.append({
            "name": name,
            "text": text,
            "token_ids": ids,
            "last_logits_first64": logits[:FIRST_N].numpy(),
            "last_logits_every256": logits[::STRIDE].numpy(),
            "top20_ids": top.indices.tolist(),
            "top20_logits": top.values.numpy(),
            "argmax": int(logits.argmax()),
            "greedy_ids": new,
            "greedy_text": tok.decode(new, skip_special_tokens=False),
            "greedy_min_margin": float((top2[:, 0] - top2[:, 1]).min()),
        })
        print(f"{name}: {len(ids)} tokens -> {tok.decode(new)!r} (min margin {prompts[-1]['greedy_min_margin']:.3g})")

    fixture = {
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
        "note": (
            "Made by tests/reference/make_gemma3_reference.py from google/gemma-3-270m Q4_K_M "
            f"(GGUF sha256 {GGUF_SHA256}), loaded by transformers with gguf_file= (dequantized to "
            "float32, eager attention, CPU). token_ids: tokenizer(text) (BOS added). "
            f"last_logits_first64 / _every256: the last prompt position's logits [0:64] and "
            f"[::256]; top20_ids / top20_logits: its 20 largest. greedy_ids: generate(do_sample="
            f"False, max_new_tokens={NEW_TOKENS}) that never stops early; greedy_min_margin: the "
            "smallest top-1 minus top-2 logit gap over those steps."
        ),
        "gguf_file": GGUF_FILE,
        "config": {k: getattr(cfg, k, None) for k in [
            "vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
            "num_key_value_heads", "head_dim", "sliding_window", "query_pre_attn_scalar",
            "final_logit_softcapping", "rms_norm_eps", "layer_types", "rope_parameters"]},
        "tokenizer_cases": cases,
        "prompts": prompts,
    }
    text = dump(fixture) + "\n"
    json.loads(text)
    OUT_JSON.write_text(text, encoding="utf-8")
    print(f"wrote {OUT_JSON.relative_to(ROOT)} ({len(text) / 1e3:.0f} kB)")


if __name__ == "__main__":
    sys.exit(main())
