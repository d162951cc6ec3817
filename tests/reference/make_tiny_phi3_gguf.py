"""Writes tests/fixtures/tiny-phi3.gguf: the tiny-phi3 fixture (make_tiny_decoders.py) as
llama.cpp's converter lays out a Phi-3 GGUF, so tests/decoders.rs can check the GGUF path of
Phi-3 against the same golden logits as the safetensors folder.

Run once, by hand, after make_tiny_decoders.py (CI never does):
    .cache/pyref-venv/bin/python tests/reference/make_tiny_phi3_gguf.py

Layout (convert_hf_to_gguf.py's Phi3MiniModel): architecture `phi3`; hyperparameters under
`phi3.*`: the rotated dims as `rope.dimension_count` (int(partial_rotary_factor * hidden) //
heads), `rope.scaling.original_context_length`, `rope.scaling.attn_factor` (LongRoPE's
sqrt(1 + ln(scale) / ln(original)), scale = context_length / original) and
`attention.sliding_window`; LongRoPE's factors as the f32 tensors `rope_factors_short.weight`
and `rope_factors_long.weight`; the fused projections kept fused (`blk.N.attn_qkv.weight`,
`blk.N.ffn_up.weight` holding gate then up), q/k rows not permuted (Phi-3 rotates halves);
float32 tensors; the tokenizer as `gpt2` BPE with the `llama-bpe` pre-tokenizer and a BOS
added, the special tokens as control tokens. Deterministic: rerunning gives an identical file.
"""

import json
import math
import sys
from pathlib import Path

import gguf
import numpy as np
from safetensors.numpy import load_file

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "tests" / "fixtures" / "tiny-phi3"
OUT = ROOT / "tests" / "fixtures" / "tiny-phi3.gguf"

NAMES = {
    "input_layernorm.weight": "attn_norm.weight",
    "self_attn.qkv_proj.weight": "attn_qkv.weight",
    "self_attn.o_proj.weight": "attn_output.weight",
    "post_attention_layernorm.weight": "ffn_norm.weight",
    "mlp.gate_up_proj.weight": "ffn_up.weight",
    "mlp.down_proj.weight": "ffn_down.weight",
}


def main():
    cfg = json.loads((SRC / "config.json").read_text())
    assert cfg["model_type"] == "phi3" and not cfg["tie_word_embeddings"]
    rope = cfg["rope_parameters"]
    assert rope["rope_type"] == "longrope"
    tok = json.loads((SRC / "tokenizer.json").read_text())
    weights = load_file(str(SRC / "model.safetensors"))
    hidden, heads = cfg["hidden_size"], cfg["num_attention_heads"]
    original, context = cfg["original_max_position_embeddings"], cfg["max_position_embeddings"]
    scale = context / original

    w = gguf.GGUFWriter(str(OUT), "phi3")
    w.add_name("tiny-phi3")
    w.add_context_length(context)
    w.add_rope_scaling_orig_ctx_len(original)
    w.add_embedding_length(hidden)
    w.add_block_count(cfg["num_hidden_layers"])
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_head_count(heads)
    w.add_head_count_kv(cfg["num_key_value_heads"])
    w.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
    w.add_rope_dimension_count(int(rope["partial_rotary_factor"] * hidden) // heads)
    w.add_rope_freq_base(rope["rope_theta"])
    w.add_sliding_window(cfg["sliding_window"])
    w.add_rope_scaling_attn_factors(math.sqrt(1 + math.log(scale) / math.log(original)))

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

    w.add_tensor("token_embd.weight", weights["model.embed_tokens.weight"])
    w.add_tensor("rope_factors_long.weight", np.array(rope["long_factor"], dtype=np.float32))
    w.add_tensor("rope_factors_short.weight", np.array(rope["short_factor"], dtype=np.float32))
    w.add_tensor("output_norm.weight", weights["model.norm.weight"])
    w.add_tensor("output.weight", weights["lm_head.weight"])
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
