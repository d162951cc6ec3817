"""Writes tests/fixtures/tiny-phi3.gguf and tiny-smollm3.gguf: the tiny-phi3 and tiny-smollm3
fixtures (make_tiny_decoders.py) as llama.cpp's converter lays out their GGUFs, so
tests/decoders.rs can check the GGUF paths against the same golden logits as the safetensors
folders.

Run once, by hand, after make_tiny_decoders.py (CI never does):
    .cache/pyref-venv/bin/python tests/reference/make_tiny_phi3_smollm3_ggufs.py

Phi-3 (convert_hf_to_gguf.py's Phi3MiniModel): architecture `phi3`; hyperparameters under
`phi3.*`: the rotated dims as `rope.dimension_count` (int(partial_rotary_factor * hidden) //
heads), `rope.scaling.original_context_length`, `rope.scaling.attn_factor` (LongRoPE's
sqrt(1 + ln(scale) / ln(original)), scale = context_length / original) and
`attention.sliding_window`; LongRoPE's factors as the f32 tensors `rope_factors_short.weight`
and `rope_factors_long.weight`; the fused projections kept fused (`blk.N.attn_qkv.weight`,
`blk.N.ffn_up.weight` holding gate then up), q/k rows not permuted (Phi-3 rotates halves).

SmolLM3 (its SmolLM3Model, a LlamaModel): architecture `smollm3`, Llama's tensor names with the
q/k rows permuted for pairwise rotation as for Llama; no key says which layers have no RoPE
(llama.cpp fixes every 4th, transformers' default, which tiny-smollm3 keeps).

Both: float32 tensors, the tokenizer as `gpt2` BPE with the `llama-bpe` pre-tokenizer and a BOS
added, the special tokens as control tokens. Deterministic: rerunning gives identical files.
"""

import json
import math
import sys
from pathlib import Path

import gguf
import numpy as np
from safetensors.numpy import load_file

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"

PHI3_NAMES = {
    "input_layernorm.weight": "attn_norm.weight",
    "self_attn.qkv_proj.weight": "attn_qkv.weight",
    "self_attn.o_proj.weight": "attn_output.weight",
    "post_attention_layernorm.weight": "ffn_norm.weight",
    "mlp.gate_up_proj.weight": "ffn_up.weight",
    "mlp.down_proj.weight": "ffn_down.weight",
}
LLAMA_NAMES = {
    "input_layernorm.weight": "attn_norm.weight",
    "self_attn.q_proj.weight": "attn_q.weight",
    "self_attn.k_proj.weight": "attn_k.weight",
    "self_attn.v_proj.weight": "attn_v.weight",
    "self_attn.o_proj.weight": "attn_output.weight",
    "post_attention_layernorm.weight": "ffn_norm.weight",
    "mlp.gate_proj.weight": "ffn_gate.weight",
    "mlp.up_proj.weight": "ffn_up.weight",
    "mlp.down_proj.weight": "ffn_down.weight",
}


def add_common(w, cfg, tok):
    w.add_context_length(cfg["max_position_embeddings"])
    w.add_embedding_length(cfg["hidden_size"])
    w.add_block_count(cfg["num_hidden_layers"])
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_head_count(cfg["num_attention_heads"])
    w.add_head_count_kv(cfg["num_key_value_heads"])
    w.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
    w.add_rope_freq_base(cfg["rope_parameters"]["rope_theta"])

    vocab = sorted(tok["model"]["vocab"].items(), key=lambda kv: kv[1])
    assert [i for _, i in vocab] == list(range(len(vocab)))
    specials = {t["id"] for t in tok["added_tokens"] if t["special"]}
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("llama-bpe")
    w.add_token_list([t for t, _ in vocab])
    w.add_token_types([3 if i in specials else 1 for _, i in vocab])
    w.add_token_merges([" ".join(m) if isinstance(m, list) else m for m in tok["model"]["merges"]])
    w.add_bos_token_id(cfg["bos_token_id"])
    w.add_eos_token_id(cfg["eos_token_id"])
    w.add_add_bos_token(True)


def permute(w, heads):
    """llama.cpp's converter: each head's rows reordered from halves (x[i], x[i + d/2]) to
    pairs (x[2i], x[2i + 1])."""
    return w.reshape(heads, 2, w.shape[0] // heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def write(name, arch, blocks):
    src = FIXTURES / name
    cfg = json.loads((src / "config.json").read_text())
    tok = json.loads((src / "tokenizer.json").read_text())
    weights = load_file(str(src / "model.safetensors"))
    out = FIXTURES / f"{name}.gguf"
    w = gguf.GGUFWriter(str(out), arch)
    w.add_name(name)
    add_common(w, cfg, tok)
    tensors = [("token_embd.weight", weights["model.embed_tokens.weight"])]
    extra_tensors, names, rows = blocks(w, cfg, weights)
    tensors += extra_tensors
    tensors.append(("output_norm.weight", weights["model.norm.weight"]))
    if "lm_head.weight" in weights and not cfg["tie_word_embeddings"]:
        tensors.append(("output.weight", weights["lm_head.weight"]))
    for l in range(cfg["num_hidden_layers"]):
        for hf, gg in names.items():
            tensors.append((f"blk.{l}.{gg}", rows(hf, weights[f"model.layers.{l}.{hf}"])))
    for n, t in tensors:
        w.add_tensor(n, t)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print(f"wrote {out.relative_to(ROOT)} ({out.stat().st_size} bytes)")


def phi3(w, cfg, weights):
    assert cfg["model_type"] == "phi3" and not cfg["tie_word_embeddings"]
    rope = cfg["rope_parameters"]
    assert rope["rope_type"] == "longrope"
    hidden, heads = cfg["hidden_size"], cfg["num_attention_heads"]
    original = cfg["original_max_position_embeddings"]
    scale = cfg["max_position_embeddings"] / original
    w.add_rope_scaling_orig_ctx_len(original)
    w.add_rope_dimension_count(int(rope["partial_rotary_factor"] * hidden) // heads)
    w.add_sliding_window(cfg["sliding_window"])
    w.add_rope_scaling_attn_factors(math.sqrt(1 + math.log(scale) / math.log(original)))
    factors = [
        ("rope_factors_long.weight", np.array(rope["long_factor"], dtype=np.float32)),
        ("rope_factors_short.weight", np.array(rope["short_factor"], dtype=np.float32)),
    ]
    return factors, PHI3_NAMES, lambda hf, t: t


def smollm3(w, cfg, weights):
    assert cfg["model_type"] == "smollm3" and cfg["tie_word_embeddings"]
    layers = cfg["num_hidden_layers"]
    assert cfg["no_rope_layers"] == [int((l + 1) % 4 != 0) for l in range(layers)]
    heads, kv_heads = cfg["num_attention_heads"], cfg["num_key_value_heads"]

    def rows(hf, t):
        if hf == "self_attn.q_proj.weight":
            return permute(t, heads)
        if hf == "self_attn.k_proj.weight":
            return permute(t, kv_heads)
        return t

    return [], LLAMA_NAMES, rows


def main():
    write("tiny-phi3", "phi3", phi3)
    write("tiny-smollm3", "smollm3", smollm3)


if __name__ == "__main__":
    sys.exit(main())
