"""Makes tiny random decoder LLMs and their golden outputs, for fast decoder tests.

Outputs (all under tests/fixtures/):
    tiny-llama/    LlamaForCausalLM, llama3 RoPE scaling, untied LM head, BOS-adding tokenizer
                   with a Llama-3-style split regex and a ChatML chat template
    tiny-qwen2/    Qwen2ForCausalLM (q/k/v biases), tied LM head, Qwen2-style split regex
                   and NFC normalizer, ChatML chat template
    tiny-gpt2/     GPT2LMHeadModel (Conv1D weights, learned positions, tied LM head), the plain
                   GPT-2 byte-level tokenizer, no chat template
    tiny-qwen3/    Qwen3ForCausalLM (per-head q/k RMSNorm, no biases, head_dim 32 while
                   hidden / heads is 16), tied LM head, tiny-qwen2's tokenizer
    tiny-gemma3/   Gemma3ForCausalLM (gemma3_text: scaled embeddings, (1 + weight) RMSNorms,
                   q/k norms, pre and post norms, tanh-GELU GeGLU, sliding-window layers of
                   4 keys (shorter than every prompt) between global ones with their own RoPE
                   base, query_pre_attn_scalar, final logit soft-capping), tied LM head,
                   tiny-llama's tokenizer
    tiny-smollm3/  SmolLM3ForCausalLM (Llama with NoPE layers: 4 layers, no_rope_layers left to
                   its default [1, 1, 1, 0], so the last layer has no position embedding, as
                   llama.cpp assumes for its GGUFs), tied LM head, tiny-llama's tokenizer
    tiny-phi3/     Phi3ForCausalLM (fused qkv_proj and gate_up_proj, partial rotary: 8 of 16 dims,
                   LongRoPE with short and long factors past original_max_position_embeddings 16,
                   so the attention factor sqrt(1 + ln 8 / ln 16) scales cos and sin; a sliding
                   window of 12 on every layer), untied LM head, tiny-llama's tokenizer. Its
                   prompts of 6 and 16 tokens grow past 16 while generating (transformers then
                   recomputes the cache with the long factors), the one of 22 starts past it
    tiny-decoders-reference.json   per model: prompt ids, logits at every prompt position,
                   20 greedy tokens, per-step logits of one prompt, and (llama) a left-padded
                   chat batch

Each folder holds config.json, generation_config.json, model.safetensors (float32),
tokenizer.json and tokenizer_config.json, as transformers' save_pretrained writes them,
except that config.json also carries the legacy `rope_theta`/`rope_scaling` keys beside
transformers 5's `rope_parameters` (same values) so loaders of either style can read it.

Run once, by hand, in the reference environment (CI never does):
    scripts/pyref-env.sh
    .cache/pyref-venv/bin/python tests/reference/make_tiny_decoders.py

Method: one byte-level BPE is trained with the `tokenizers` library on the fixed text below;
the three models share its vocabulary (differing only in normalizer, pre-tokenizer and
post-processor). Weights are drawn from a torch.Generator with a fixed seed (not transformers'
init, which leaves norms at 1 and biases at 0 and so would test neither), scaled so logits
spread and greedy choices have clear margins. CPU, float32, one thread: rerunning gives
identical files.
"""

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import safetensors
import tokenizers
import torch
import transformers
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    DynamicCache,
    GenerationConfig,
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedTokenizerFast,
    Gemma3ForCausalLM,
    Gemma3TextConfig,
    Qwen2Config,
    Qwen2ForCausalLM,
    Qwen3Config,
    Qwen3ForCausalLM,
    Phi3Config,
    Phi3ForCausalLM,
    SmolLM3Config,
    SmolLM3ForCausalLM,
)
from transformers.pytorch_utils import Conv1D

ROOT = Path(__file__).resolve().parents[2]
from golden_json import dump, f32_list  # noqa: E402
FIXTURES = ROOT / "tests" / "fixtures"
OUT_JSON = FIXTURES / "tiny-decoders-reference.json"

SEED = 1234
VOCAB_SIZE = 384
NEW_TOKENS = 20
MAX_FOLDER_BYTES = 1_000_000

SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|begin_of_text|>"]
EOT, IM_START, IM_END, BOT = range(4)

CHATML = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
# Llama 3 style: the template writes the BOS itself (the tokenizer would add it to plain text).
CHATML_BOS = "{{ bos_token }}" + CHATML

# transformers' split regexes of Llama 3 and Qwen2 (tokenizers' Split, behavior 'isolated').
LLAMA3_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
QWEN2_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)

# transformers' _compute_llama3_parameters (modeling_rope_utils.py), in words.
LLAMA3_FORMULA = (
    "inv[i] = 1 / theta^(2i/d) (float32, i < d/2); wavelen = 2*pi/inv[i]; "
    "low_wl = orig_max_pos / low_freq_factor; high_wl = orig_max_pos / high_freq_factor; "
    "if wavelen < high_wl: inv[i] unchanged; elif wavelen > low_wl: inv[i] / factor; "
    "else (medium, bounds inclusive): s = (orig_max_pos / wavelen - low_freq_factor) / "
    "(high_freq_factor - low_freq_factor), inv = (1 - s) * inv / factor + s * inv. "
    "attention_scaling 1.0 (cos/sin unscaled). Pairs are rotate_half's (x[i], x[i + d/2]). "
    "Here d = 16: pair 0 unchanged, pairs 1-2 smoothed, pairs 3-7 divided by 8."
)

# Training text for the BPE, written for this project.
TRAIN_TEXT = """\
The little lighthouse stood at the end of the harbor wall. Every night the keeper climbed
the stairs, lit the lamp, and watched the boats come home. The boats were small and the sea
was wide, but the light was steady and the sailors trusted it.
In the morning the keeper wrote in the log: the wind, the weather, the time the lamp went out.
He counted the ships that passed: one, two, three, four, five. Some days there were twelve,
some days there were none at all. He liked the quiet days best.
A cat lived in the lighthouse too. The cat did not care about ships. The cat cared about fish,
about the warm spot by the stove, and about the seagulls that laughed at it from the rail.
When the storm came, the keeper stayed awake all night. The waves were taller than the wall.
The lamp turned and turned, and the light went out over the water, and the boats found the
harbor. In the morning the sky was clear, and the keeper slept until noon.
Questions people ask: What is the light for? Where do the boats go? Who keeps the keeper?
The answer is simple. The light is for anyone who is lost, and the keeper keeps the light.
Numbers in the log: 1984, 2024, 3.14, 42, 100, 7 + 5 = 12, 9 - 3 = 6.
def count(ships):
    return len(ships)
"""

PROMPTS = [
    "The keeper lit the lamp",
    "Where do the boats go? 42 ships, 7 cats.",
    "  the cat's   warm\nstove\n\n",
]
CHAT_BATCH = [
    [{"role": "user", "content": "Hello, keeper!"}],
    [
        {"role": "system", "content": "You keep the light."},
        {"role": "user", "content": "Is the storm over?"},
        {"role": "assistant", "content": "Not yet."},
        {"role": "user", "content": "When will it end?"},
    ],
]
TOKENIZER_CASES = [
    "The keeper's cat",
    "12345 and 3.14",
    "  two leading spaces\n\nand newlines",
    "café naïve 🤗",
    "<|im_start|>user\nhi<|im_end|>\n",
    "I'LL SEE\r\nyou",
]


# --- tokenizer ---------------------------------------------------------------------------

def train_bpe():
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(TRAIN_TEXT.splitlines(keepends=True), trainer)
    assert tok.get_vocab_size() == VOCAB_SIZE, tok.get_vocab_size()
    for i, s in enumerate(SPECIALS):
        assert tok.token_to_id(s) == i
    return tok


# Which family's tokenizer each model borrows.
TOKENIZER_OF = {"llama": "llama", "qwen2": "qwen2", "gpt2": "gpt2", "qwen3": "qwen2", "gemma3": "llama",
                "smollm3": "llama", "phi3": "llama"}


def variant(base, kind):
    """The shared vocabulary with each family's own normalizer/pre-tokenizer/post-processor."""
    kind = TOKENIZER_OF[kind]
    tok = Tokenizer.from_str(base.to_str())
    if kind == "llama":
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(LLAMA3_SPLIT), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ])
        tok.post_processor = processors.TemplateProcessing(
            single="<|begin_of_text|> $A",
            pair="<|begin_of_text|> $A <|begin_of_text|> $B",
            special_tokens=[("<|begin_of_text|>", BOT)],
        )
    elif kind == "qwen2":
        tok.normalizer = normalizers.NFC()
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(QWEN2_SPLIT), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ])
    elif kind == "gpt2":
        pass
    else:
        raise ValueError(kind)
    return tok


def hf_tokenizer(tok, kind):
    kind = TOKENIZER_OF[kind]
    kw = {"tokenizer_object": tok, "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"}
    if kind == "llama":
        kw.update(bos_token="<|begin_of_text|>", chat_template=CHATML_BOS)
    elif kind == "qwen2":
        kw.update(chat_template=CHATML)
    else:
        kw.update(bos_token="<|endoftext|>", eos_token="<|endoftext|>", unk_token="<|endoftext|>")
    kw["additional_special_tokens"] = ["<|im_start|>", "<|im_end|>"]
    return PreTrainedTokenizerFast(**kw)


# --- models ------------------------------------------------------------------------------

def make_config(kind):
    common = dict(vocab_size=VOCAB_SIZE, tie_word_embeddings=kind not in ("llama", "phi3"))
    if kind == "llama":
        return LlamaConfig(
            hidden_size=64, intermediate_size=128, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
            rms_norm_eps=1e-5, rope_theta=10000.0,
            rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                          "high_freq_factor": 4.0, "original_max_position_embeddings": 64},
            bos_token_id=BOT, eos_token_id=IM_END, pad_token_id=EOT, **common)
    if kind == "qwen2":
        return Qwen2Config(
            hidden_size=64, intermediate_size=128, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
            rms_norm_eps=1e-6, rope_theta=1000000.0, use_sliding_window=False,
            bos_token_id=None, eos_token_id=IM_END, pad_token_id=EOT, **common)
    if kind == "qwen3":
        return Qwen3Config(
            hidden_size=64, intermediate_size=128, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, head_dim=32, max_position_embeddings=128,
            rms_norm_eps=1e-6, rope_theta=1000000.0, use_sliding_window=False, attention_bias=False,
            bos_token_id=None, eos_token_id=IM_END, pad_token_id=EOT, **common)
    if kind == "phi3":
        return Phi3Config(
            hidden_size=64, intermediate_size=128, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
            original_max_position_embeddings=16, rms_norm_eps=1e-5, sliding_window=12,
            rope_parameters={"rope_type": "longrope", "rope_theta": 10000.0, "partial_rotary_factor": 0.5,
                             "short_factor": [1.0, 1.05, 1.3, 2.0], "long_factor": [1.0, 2.5, 6.0, 16.0]},
            bos_token_id=BOT, eos_token_id=IM_END, pad_token_id=EOT, **common)
    if kind == "smollm3":
        return SmolLM3Config(
            hidden_size=64, intermediate_size=128, num_hidden_layers=4,
            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
            rms_norm_eps=1e-6, rope_theta=10000.0,
            bos_token_id=BOT, eos_token_id=IM_END, pad_token_id=EOT, **common)
    if kind == "gemma3":
        return Gemma3TextConfig(
            hidden_size=64, intermediate_size=128, num_hidden_layers=4,
            num_attention_heads=4, num_key_value_heads=2, head_dim=32, max_position_embeddings=128,
            rms_norm_eps=1e-6, hidden_activation="gelu_pytorch_tanh",
            rope_parameters={"full_attention": {"rope_type": "default", "rope_theta": 1000000.0},
                             "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0}},
            query_pre_attn_scalar=24, sliding_window=4, final_logit_softcapping=12.0,
            layer_types=["sliding_attention", "sliding_attention", "full_attention", "sliding_attention"],
            bos_token_id=BOT, eos_token_id=IM_END, pad_token_id=EOT, **common)
    if kind == "gpt2":
        return GPT2Config(
            n_embd=64, n_layer=2, n_head=4, n_positions=128, n_inner=None,
            activation_function="gelu_new", layer_norm_epsilon=1e-5,
            embd_pdrop=0.0, attn_pdrop=0.0, resid_pdrop=0.0,
            bos_token_id=EOT, eos_token_id=EOT, pad_token_id=EOT, **common)
    raise ValueError(kind)


def randomize(model, seed):
    """Deterministic weights: linear ~ N(0, 1/fan_in), norms 1 + N(0, 0.1^2), biases and
    norm biases N(0, 0.1^2), embeddings N(0, 0.5^2), an untied LM head N(0, 16/fan_in)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters(), key=lambda kv: kv[0]):
            module = model.get_submodule(name.rsplit(".", 1)[0])
            leaf = name.rsplit(".", 1)[1]
            noise = torch.randn(p.shape, generator=g, dtype=torch.float32)
            if isinstance(module, torch.nn.Embedding):
                p.copy_(noise * 0.5)
            elif type(module).__name__ == "Gemma3RMSNorm":  # scales by (1 + weight)
                p.copy_(noise * 0.1)
            elif isinstance(module, torch.nn.LayerNorm) or "norm" in type(module).__name__.lower():
                p.copy_(noise * 0.1 + (1.0 if leaf == "weight" else 0.0))
            elif leaf == "bias":
                p.copy_(noise * 0.1)
            elif isinstance(module, Conv1D):  # GPT-2: weight is [in, out]
                p.copy_(noise / p.shape[0] ** 0.5)
            elif name == "lm_head.weight":  # untied (llama): wider logits, clearer margins
                p.copy_(noise * 4.0 / p.shape[1] ** 0.5)
            elif isinstance(module, torch.nn.Linear):  # weight is [out, in]
                p.copy_(noise / p.shape[1] ** 0.5)
            else:
                raise ValueError(f"unhandled parameter {name} in {type(module).__name__}")


def move_chat_template(folder):
    """transformers 5 writes the template to chat_template.jinja; keep it in
    tokenizer_config.json instead (the long-standing Hub layout, which transformers reads)."""
    jinja = folder / "chat_template.jinja"
    if not jinja.exists():
        return
    cfg_path = folder / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["chat_template"] = jinja.read_text()
    cfg_path.write_text(json.dumps(cfg, indent=2, ensure_ascii=False, sort_keys=True) + "\n")
    jinja.unlink()


def add_legacy_rope_keys(config_path):
    """Hub-style configs (transformers 4) spell RoPE as rope_theta + rope_scaling; transformers 5
    writes rope_parameters. Keep both, same values."""
    cfg = json.loads(config_path.read_text())
    rp = cfg.get("rope_parameters")
    if not rp:
        return None
    if "full_attention" in rp:  # Gemma 3: one set per layer type (Hub: rope_local_base_freq)
        cfg["rope_theta"] = rp["full_attention"]["rope_theta"]
        cfg["rope_local_base_freq"] = rp["sliding_attention"]["rope_theta"]
        config_path.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
        return None
    cfg["rope_theta"] = rp["rope_theta"]
    if rp.get("rope_type", "default") != "default":
        cfg["rope_scaling"] = {k: v for k, v in rp.items() if k != "rope_theta"}
    config_path.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
    return rp


# --- golden outputs ----------------------------------------------------------------------

def greedy(model, ids, eos_id, attention_mask=None):
    """20 greedy tokens; eos does not stop it (the count is always NEW_TOKENS)."""
    inp = torch.tensor(ids) if isinstance(ids[0], list) else torch.tensor([ids])
    if attention_mask is None:
        attention_mask = torch.ones_like(inp)
    gc = GenerationConfig(
        do_sample=False, max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS,
        eos_token_id=None, pad_token_id=EOT, bos_token_id=None,
        return_dict_in_generate=True, output_logits=True,
    )
    out = model.generate(inp, attention_mask=attention_mask, generation_config=gc)
    new = out.sequences[:, inp.shape[1]:]
    assert new.shape[1] == NEW_TOKENS
    step_logits = torch.stack(out.logits, dim=1)  # [B, steps, V], before any processor
    assert torch.equal(step_logits.argmax(-1), new)
    return new, step_logits


def longrope_original(model):
    """LongRoPE's pretraining context (Phi-3), past which the long factors rotate every position."""
    rp = getattr(model.config, "rope_parameters", None) or {}
    return rp.get("original_max_position_embeddings") if rp.get("rope_type") == "longrope" else None


def manual_kv_steps(model, ids, new_ids):
    """The same steps driven by hand through the KV cache, one token at a time. With LongRoPE,
    as Phi3ForCausalLM.prepare_inputs_for_generation does: when the sequence first grows past
    the pretraining context, the cache (rotated with the short factors) is recomputed."""
    orig = longrope_original(model)
    seq = list(ids)
    with torch.inference_mode():
        cache = DynamicCache(config=model.config)
        out = model(torch.tensor([ids]), cache=cache, use_cache=True)
        rows = [out.logits[0, -1]]
        for t in new_ids[:-1]:
            seq.append(t)
            if orig and len(seq) > orig and cache.get_seq_length() <= orig:
                cache = DynamicCache(config=model.config)
                out = model(torch.tensor([seq]), cache=cache, use_cache=True)
            else:
                out = model(torch.tensor([[t]]), cache=cache, use_cache=True)
            rows.append(out.logits[0, -1])
    return torch.stack(rows)


def margins(step_logits):
    top2 = torch.topk(step_logits, 2, dim=-1).values
    return (top2[..., 0] - top2[..., 1])


def model_record(kind, model, tok, raw_tok):
    recs = []
    for pi, text in enumerate(PROMPTS):
        ids = tok(text)["input_ids"]
        assert raw_tok.encode(text).ids == ids
        with torch.inference_mode():
            logits = model(torch.tensor([ids])).logits[0]
            new, step_logits = greedy(model, ids, tok.eos_token_id)
        new_ids = new[0].tolist()
        np.testing.assert_allclose(step_logits[0, 0].numpy(), logits[-1].numpy(), atol=1e-5)
        kv = manual_kv_steps(model, ids, new_ids)
        kv_diff = float((kv - step_logits[0]).abs().max())
        assert kv_diff < 1e-4, kv_diff
        # Without the cache: the whole sequence at once gives the same rows.
        with torch.inference_mode():
            full = model(torch.tensor([ids + new_ids])).logits[0, len(ids) - 1: -1]
        # With LongRoPE the whole sequence rotates long; compare the steps that did too.
        orig = longrope_original(model)
        same = [orig is None or (len(ids) + s > orig) == (len(ids) + NEW_TOKENS - 1 > orig)
                for s in range(NEW_TOKENS)]
        full_diff = float((full - step_logits[0])[same].abs().max())
        assert full_diff < 1e-4, full_diff
        m = margins(step_logits[0])
        eos_steps = [i for i, t in enumerate(new_ids) if t == tok.eos_token_id]
        rec = {
            "text": text,
            "token_ids": ids,
            "tokens": tok.convert_ids_to_tokens(ids),
            "logits": logits.numpy(),
            "greedy_ids": new_ids,
            "greedy_text": tok.decode(new_ids, skip_special_tokens=False),
            "greedy_eos_steps": eos_steps,
            "greedy_min_margin": float(m.min()),
            "kv_cache_vs_generate_max_abs_diff": kv_diff,
            "no_cache_vs_generate_max_abs_diff": full_diff,
        }
        if pi == 0:
            rec["step_logits"] = step_logits[0].numpy()
        recs.append(rec)
    return recs


def chat_batch_record(model, tok):
    texts = [tok.apply_chat_template(c, tokenize=False, add_generation_prompt=True) for c in CHAT_BATCH]
    singles = [tok(t, add_special_tokens=False)["input_ids"] for t in texts]
    for c, ids in zip(CHAT_BATCH, singles):
        t = tok.apply_chat_template(c, tokenize=True, add_generation_prompt=True)
        t = t["input_ids"] if hasattr(t, "keys") else t
        assert list(t) == ids
    tok.padding_side = "left"
    enc = tok(texts, add_special_tokens=False, padding=True, return_tensors="pt")
    with torch.inference_mode():
        new, step_logits = greedy(model, enc["input_ids"].tolist(), tok.eos_token_id,
                                  attention_mask=enc["attention_mask"])
    rows = []
    for b, ids in enumerate(singles):
        with torch.inference_mode():
            new1, steps1 = greedy(model, ids, tok.eos_token_id)
        diff = float((steps1[0] - step_logits[b]).abs().max())
        same = new1[0].tolist() == new[b].tolist()
        rows.append({
            "messages": CHAT_BATCH[b],
            "rendered_text": texts[b],
            "token_ids": ids,
            "padded_ids": enc["input_ids"][b].tolist(),
            "attention_mask": enc["attention_mask"][b].tolist(),
            "last_logits": step_logits[b, 0].numpy(),
            "greedy_ids": new[b].tolist(),
            "greedy_text": tok.decode(new[b].tolist(), skip_special_tokens=False),
            "greedy_min_margin": float(margins(step_logits[b]).min()),
            "unbatched_greedy_same": same,
            "unbatched_step_logits_max_abs_diff": diff,
        })
        assert same and diff < 1e-4, (b, same, diff)
    return {
        "padding_side": "left",
        "pad_token_id": tok.pad_token_id,
        "note": (
            "Rendered with the chat template (add_generation_prompt=True; the template writes "
            "<|begin_of_text|> itself), tokenized with add_special_tokens=False, left-padded "
            "with <|endoftext|>, attention_mask 0 on pads; generate() derives position ids "
            "from the mask (first real token at position 0). Each row's greedy ids and step "
            "logits equal the unbatched run within the recorded difference."
        ),
        "rows": rows,
    }


def folder_size(path):
    return sum(f.stat().st_size for f in path.iterdir() if f.is_file())


def main():
    torch.set_num_threads(1)
    torch.manual_seed(SEED)
    base = train_bpe()
    again = train_bpe()
    assert again.to_str() == base.to_str(), "BPE training is not deterministic"

    out_models = {}
    for mi, kind in enumerate(["llama", "qwen2", "gpt2", "qwen3", "gemma3", "smollm3", "phi3"]):
        folder = FIXTURES / f"tiny-{kind}"
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)

        raw = variant(base, kind)
        hf_tok = hf_tokenizer(raw, kind)
        hf_tok.save_pretrained(str(folder))
        move_chat_template(folder)

        config = make_config(kind)
        cls = {"llama": LlamaForCausalLM, "qwen2": Qwen2ForCausalLM, "gpt2": GPT2LMHeadModel,
               "qwen3": Qwen3ForCausalLM, "gemma3": Gemma3ForCausalLM,
               "smollm3": SmolLM3ForCausalLM, "phi3": Phi3ForCausalLM}[kind]
        torch.manual_seed(SEED + mi)
        model = cls(config)
        randomize(model, SEED + 100 * (mi + 1))
        model.eval()
        model.save_pretrained(str(folder))
        rope = add_legacy_rope_keys(folder / "config.json")

        # Everything below runs on what was saved, loaded the ordinary way.
        tok = AutoTokenizer.from_pretrained(str(folder))
        model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32).eval()
        assert type(model) is cls
        want_template = {"llama": CHATML_BOS, "qwen2": CHATML, "gpt2": None}[TOKENIZER_OF[kind]]
        assert tok.chat_template == want_template, tok.chat_template
        assert len(tok) == model.config.vocab_size == VOCAB_SIZE
        raw_tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
        with safetensors.safe_open(str(folder / "model.safetensors"), "pt") as f:
            tensor_names = sorted(f.keys())
            dtypes = sorted({str(f.get_slice(k).get_dtype()) for k in f.keys()})
            shapes = {k: list(f.get_slice(k).get_shape()) for k in tensor_names}

        rec = {
            "folder": folder.relative_to(ROOT).as_posix(),
            "class": cls.__name__,
            "files": sorted(p.name for p in folder.iterdir()),
            "folder_bytes": folder_size(folder),
            "safetensors_dtypes": dtypes,
            "safetensors_tensors": shapes,
            "tie_word_embeddings": bool(model.config.tie_word_embeddings),
            "eos_token_id": tok.eos_token_id,
            "bos_token_id": tok.bos_token_id,
            "pad_token_id": tok.pad_token_id,
            "bos_added_on_encode": tok("x")["input_ids"][0] == BOT,
            "chat_template": tok.chat_template,
        }
        if rope is not None:
            rotary = model.model.rotary_emb
            rec["rope_parameters"] = rope
            rec["rope_inv_freq"] = rotary.inv_freq.float().numpy()
            rec["rope_attention_scaling"] = float(rotary.attention_scaling)
            d = getattr(model.config, "head_dim", None) or (
                model.config.hidden_size // model.config.num_attention_heads)
            d = int(d * rope.get("partial_rotary_factor", 1.0))  # the rotated dims
            if rope.get("rope_type") == "llama3":
                rec["rope_llama3_formula"] = LLAMA3_FORMULA
            rec["rope_inv_freq_unscaled"] = (
                1.0 / (rope["rope_theta"] ** (np.arange(0, d, 2, dtype=np.float64) / d))
            ).astype(np.float32)
        rec["tokenizer_cases"] = [
            {"text": t, "ids": tok(t)["input_ids"],
             "decoded": tok.decode(tok(t)["input_ids"], skip_special_tokens=False)}
            for t in TOKENIZER_CASES
        ]
        for c in rec["tokenizer_cases"]:
            assert raw_tok.encode(c["text"]).ids == c["ids"]
        rec["prompts"] = model_record(kind, model, tok, raw_tok)
        if kind == "llama":
            rec["chat_batch"] = chat_batch_record(model, tok)
        assert rec["folder_bytes"] < MAX_FOLDER_BYTES, rec["folder_bytes"]
        out_models[f"tiny-{kind}"] = rec

    fixture = {
        "versions": {
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "tokenizers": tokenizers.__version__,
            "safetensors": safetensors.__version__,
            "numpy": np.__version__,
        },
        "note": (
            "Made by tests/reference/make_tiny_decoders.py. Tokenizer: byte-level BPE trained "
            f"with tokenizers (vocab {VOCAB_SIZE}: 4 specials at ids 0-3 "
            f"{SPECIALS}, the 256 byte symbols, then merges) on a fixed text in the script; "
            "tiny-llama splits with the Llama 3 regex and adds <|begin_of_text|> on encode "
            "(TemplateProcessing), tiny-qwen2 has an NFC normalizer and the Qwen2 regex (digits "
            "one by one), tiny-gpt2 the plain GPT-2 ByteLevel regex; tiny-qwen3 has tiny-qwen2's "
            "tokenizer, tiny-gemma3, tiny-smollm3 and tiny-phi3 tiny-llama's. Models: random weights "
            "from a seeded torch.Generator (see randomize()), saved with save_pretrained and "
            "reloaded with AutoModelForCausalLM before any output is computed; CPU, float32. "
            "prompts[i].token_ids: tokenizer(text) as transformers encodes it (special tokens "
            "added per the tokenizer: BOS for llama only). logits: [positions, vocab] at every "
            f"prompt position. greedy_ids: generate(do_sample=False, max_new_tokens={NEW_TOKENS}) "
            "with eos_token_id=None so it never stops early (greedy_eos_steps lists steps that "
            "emitted the model's eos anyway); greedy_min_margin: the smallest top-1 minus "
            "top-2 logit gap over the steps. step_logits (prompt 0 only): [steps, vocab], the "
            "raw logits of each generated step (step 0 = last prompt position); checked equal "
            "to a hand-driven KV-cache loop and to a no-cache forward of prompt+generated. "
            "Floats are the shortest decimals that round-trip to float32."
        ),
        "vocab_size": VOCAB_SIZE,
        "special_tokens": {s: i for i, s in enumerate(SPECIALS)},
        "models": out_models,
    }
    text = dump(fixture) + "\n"
    json.loads(text)
    OUT_JSON.write_text(text, encoding="utf-8")
    total = len(text) + sum(r["folder_bytes"] for r in out_models.values())
    print(f"wrote {OUT_JSON.relative_to(ROOT)} ({len(text) / 1e6:.2f} MB); total {total / 1e6:.2f} MB")
    for name, r in out_models.items():
        print(f"  {name}: {r['folder_bytes']} bytes, files {r['files']}")
        for p in r["prompts"]:
            print(f"    {len(p['token_ids'])} tokens, greedy margin {p['greedy_min_margin']:.3g}, "
                  f"eos at {p['greedy_eos_steps']}: {p['greedy_ids']}")


if __name__ == "__main__":
    sys.exit(main())
