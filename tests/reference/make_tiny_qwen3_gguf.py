"""Writes tests/fixtures/tiny-qwen3.gguf: the tiny-qwen3 fixture (make_tiny_decoders.py) as
llama.cpp's converter lays out a Qwen3 GGUF, so tests/decoders.rs can check the GGUF path of
Qwen3 against the same golden logits as the safetensors folder.

Run once, by hand, after make_tiny_decoders.py (CI never does):
    .cache/pyref-venv/bin/python tests/reference/make_tiny_qwen3_gguf.py

Layout (convert_hf_to_gguf.py's Qwen3): architecture `qwen3`; hyperparameters under `qwen3.*`
with the head size as `attention.key_length`; float32 tensors under llama.cpp's names
(`blk.N.attn_q_norm.weight` for q_norm ...), q/k rows not permuted (Qwen rotates halves);
no `output.weight` (tied); the tokenizer as `gpt2` BPE with the `qwen2` pre-tokenizer, the
special tokens as control tokens. Deterministic: rerunning gives an identical file.
"""

import json
import sys
from pathlib import Path

import gguf
import numpy as np
from safetensors.numpy import load_file

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "tests" / "fixtures" / "tiny-qwen3"
OUT = ROOT / "tests" / "fixtures" / "tiny-qwen3.gguf"

NAMES = {
    "input_layernorm.weight": "attn_norm.weight",
    "self_attn.q_proj.weight": "attn_q.weight",
    "self_attn.k_proj.weight": "attn_k.weight",
    "self_attn.v_proj.weight": "attn_v.weight",
    "self_attn.o_proj.weight": "attn_output.weight",
    "self_attn.q_norm.weight": "attn_q_norm.weight",
    "self_attn.k_norm.weight": "attn_k_norm.weight",
    "post_attention_layernorm.weight": "ffn_norm.weight",
    "mlp.gate_proj.weight": "ffn_gate.weight",
    "mlp.up_proj.weight": "ffn_up.weight",
    "mlp.down_proj.weight": "ffn_down.weight",
}


def main():
    cfg = json.loads((SRC / "config.json").read_text())
    assert cfg["model_type"] == "qwen3" and cfg["tie_word_embeddings"]
    tok = json.loads((SRC / "tokenizer.json").read_text())
    weights = load_file(str(SRC / "model.safetensors"))

    w = gguf.GGUFWriter(str(OUT), "qwen3")
    w.add_name("tiny-qwen3")
    w.add_context_length(cfg["max_position_embeddings"])
    w.add_embedding_length(cfg["hidden_size"])
    w.add_block_count(cfg["num_hidden_layers"])
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_head_count(cfg["num_attention_heads"])
    w.add_head_count_kv(cfg["num_key_value_heads"])
    w.add_key_length(cfg["head_dim"])
    w.add_value_length(cfg["head_dim"])
    w.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
    w.add_rope_freq_base(cfg["rope_theta"])

    vocab = sorted(tok["model"]["vocab"].items(), key=lambda kv: kv[1])
    assert [i for _, i in vocab] == list(range(len(vocab)))
    specials = {t["id"] for t in tok["added_tokens"] if t["special"]}
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("qwen2")
    w.add_token_list([t for t, _ in vocab])
    w.add_token_types([3 if i in specials else 1 for _, i in vocab])
    w.add_token_merges([" ".join(m) if isinstance(m, list) else m for m in tok["model"]["merges"]])
    w.add_eos_token_id(cfg["eos_token_id"])
    w.add_add_bos_token(False)

    w.add_tensor("token_embd.weight", weights["model.embed_tokens.weight"])
    w.add_tensor("output_norm.weight", weights["model.norm.weight"])
    for l in range(cfg["num_hidden_layers"]):
        for hf, name in NAMES.items():
            w.add_tensor(f"blk.{l}.{name}", weights[f"model.layers.{l}.{hf}"])
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print(f"wrote {OUT.relative_to(ROOT)} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    sys.exit(main())
