"""Makes two tiny random DeBERTa-v2 encoders and their golden outputs, for tests/deberta_v2.rs.

Outputs (under tests/fixtures/):
    tiny-deberta-v2/         DebertaV2Model as deberta-v3 configures it: relative_attention,
                             pos_att_type ["p2c", "c2p"], position_buckets 8 (log buckets),
                             max_relative_positions 16, share_att_key, norm_rel_ebd "layer_norm",
                             no absolute positions, no token types. Saved by save_pretrained
                             (tensor names without a prefix).
    tiny-deberta-v2-conv/    the other code paths: absolute positions (position_biased_input),
                             two token types, embedding_size 24 != hidden 32 (embed_proj),
                             pos_att_type ["c2p"] with its own pos_key_proj (share_att_key false),
                             no buckets (max_relative_positions 6 clamps), no rel-embedding norm,
                             and the ConvLayer of deberta-v2-xlarge (conv_kernel_size 3, tanh).
                             Saved with the `deberta.` prefix that task checkpoints
                             (DebertaV2ForSequenceClassification, ...) use.
    each folder: config.json, model.safetensors (float32), reference.json: for a few token-id
    sequences (lengths 1 to 40; longer than the bucket and clamp ranges) last_hidden_state
    [tokens, hidden] of each sequence run alone; the same sequences right-padded in one batch
    are checked equal to the single runs (max_abs_diff_vs_single). tiny-deberta-v2's
    reference.json also holds make_log_bucket_position's output for relative positions
    -1100..1100 under deberta-v3's buckets (256, max 512) and the tiny model's (8, max 16), so
    the float32 rounding of the bucket formula is pinned.

Run once, by hand, in the reference environment (CI never does):
    scripts/pyref-env.sh
    .cache/pyref-venv/bin/python tests/reference/make_tiny_deberta_v2.py

Weights are drawn from a torch.Generator with a fixed seed (not transformers' init, which leaves
norms at 1 and biases at 0 and so would test neither). Everything recorded is computed on what
was saved, reloaded the ordinary way; CPU, float32, one thread: rerunning gives identical files.
"""

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import safetensors
import safetensors.torch
import torch
import transformers
from transformers import DebertaV2Config, DebertaV2Model
from transformers.models.deberta_v2.modeling_deberta_v2 import make_log_bucket_position

sys.path.insert(0, str(Path(__file__).resolve().parent))
from golden_json import dump  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
SEED = 2718
BATCH_TOL = 1e-5
MAX_TOTAL_BYTES = 600_000

SHAPES = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
              hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, hidden_act="gelu",
              layer_norm_eps=1e-7, pad_token_id=0)

MODELS = {
    "tiny-deberta-v2": dict(
        vocab_size=300, max_position_embeddings=64, relative_attention=True,
        pos_att_type=["p2c", "c2p"], position_buckets=8, max_relative_positions=16,
        share_att_key=True, norm_rel_ebd="layer_norm", position_biased_input=False,
        type_vocab_size=0, **SHAPES),
    "tiny-deberta-v2-conv": dict(
        vocab_size=128, max_position_embeddings=48, embedding_size=24, relative_attention=True,
        pos_att_type=["c2p"], max_relative_positions=6, share_att_key=False,
        position_biased_input=True, type_vocab_size=2, conv_kernel_size=3, conv_act="tanh",
        **SHAPES),
}
PREFIX = {"tiny-deberta-v2": "", "tiny-deberta-v2-conv": "deberta."}
LENGTHS = [3, 9, 1, 17, 40]

# make_log_bucket_position is pinned over this range of relative positions.
BUCKET_RANGE = 1100
BUCKET_CONFIGS = [(256, 512), (8, 16)]


def randomize(model, seed):
    """Deterministic weights: linear ~ N(0, 1/fan_in), conv ~ N(0, 1/(in * kernel)), LayerNorm
    weights 1 + N(0, 0.1^2), all biases N(0, 0.1^2), embeddings (word, position, type,
    relative) N(0, 0.5^2)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters(), key=lambda kv: kv[0]):
            module = model.get_submodule(name.rsplit(".", 1)[0])
            leaf = name.rsplit(".", 1)[1]
            noise = torch.randn(p.shape, generator=g, dtype=torch.float32)
            if isinstance(module, torch.nn.Embedding):
                p.copy_(noise * 0.5)
            elif isinstance(module, torch.nn.LayerNorm):
                p.copy_(noise * 0.1 + (1.0 if leaf == "weight" else 0.0))
            elif leaf == "bias":
                p.copy_(noise * 0.1)
            elif isinstance(module, torch.nn.Linear):  # weight is [out, in]
                p.copy_(noise / p.shape[1] ** 0.5)
            elif isinstance(module, torch.nn.Conv1d):  # weight is [out, in / groups, kernel]
                p.copy_(noise / (p.shape[1] * p.shape[2]) ** 0.5)
            else:
                raise ValueError(f"unhandled parameter {name} in {type(module).__name__}")


def token_ids(gen, vocab, n):
    return torch.randint(1, vocab, (n,), generator=gen).tolist()


def type_ids(n):
    """Token types as a sentence pair has them: 0 on the first half, 1 on the rest."""
    return [0] * (n // 2) + [1] * (n - n // 2)


def run(model, ids, types, mask=None):
    kw = {"input_ids": torch.tensor(ids)}
    if types is not None:
        kw["token_type_ids"] = torch.tensor(types)
    if mask is not None:
        kw["attention_mask"] = torch.tensor(mask)
    with torch.inference_mode():
        return model(**kw).last_hidden_state


def bucket_tables():
    rel = torch.arange(-BUCKET_RANGE, BUCKET_RANGE + 1, dtype=torch.long)
    return [
        {"bucket_size": b, "max_position": m, "first_relative_position": -BUCKET_RANGE,
         "buckets": make_log_bucket_position(rel, b, m).to(torch.long).tolist()}
        for b, m in BUCKET_CONFIGS
    ]


def make(name, index):
    folder = FIXTURES / name
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    torch.manual_seed(SEED + index)
    config = DebertaV2Config(**MODELS[name])
    model = DebertaV2Model(config)
    randomize(model, SEED + 100 * (index + 1))
    model.eval()
    prefix = PREFIX[name]
    if prefix:
        # As a task checkpoint stores the encoder: every name under `deberta.`.
        config.architectures = ["DebertaV2Model"]
        config.save_pretrained(str(folder))
        tensors = {prefix + k: v.contiguous() for k, v in model.state_dict().items()}
        safetensors.torch.save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "pt"})
    else:
        model.save_pretrained(str(folder))

    # Everything below runs on what was saved, loaded the ordinary way.
    model, info = DebertaV2Model.from_pretrained(str(folder), dtype=torch.float32, output_loading_info=True)
    assert not any(info.values()), info
    model.eval()
    vocab = model.config.vocab_size
    with_types = model.config.type_vocab_size > 0

    gen = torch.Generator().manual_seed(SEED + 7 * (index + 1))
    seqs = [token_ids(gen, vocab, n) for n in LENGTHS]
    inputs = []
    singles = []
    for ids in seqs:
        types = type_ids(len(ids)) if with_types else None
        hs = run(model, [ids], [types] if types else None)[0]
        singles.append(hs)
        rec = {"token_ids": ids}
        if types:
            rec["token_type_ids"] = types
        rec["last_hidden_state"] = hs.numpy()
        inputs.append(rec)

    # The same sequences right-padded in one batch must give the single runs' values.
    s = max(LENGTHS)
    pad = lambda v, fill: v + [fill] * (s - len(v))  # noqa: E731
    batch_ids = [pad(ids, 0) for ids in seqs]
    batch_types = [pad(type_ids(len(ids)), 0) for ids in seqs] if with_types else None
    mask = [pad([1] * len(ids), 0) for ids in seqs]
    batched = run(model, batch_ids, batch_types, mask)
    batch_diff = max(float((batched[i, : len(ids)] - singles[i]).abs().max()) for i, ids in enumerate(seqs))
    assert batch_diff < BATCH_TOL, batch_diff

    with safetensors.safe_open(str(folder / "model.safetensors"), "pt") as f:
        shapes = {k: list(f.get_slice(k).get_shape()) for k in sorted(f.keys())}
    ref = {
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                     "numpy": np.__version__},
        "note": (
            "Made by tests/reference/make_tiny_deberta_v2.py: a tiny random DebertaV2Model "
            "(weights from a seeded torch.Generator, see randomize()), saved and reloaded with "
            "from_pretrained; CPU, float32. inputs[i].last_hidden_state: [tokens, hidden] of "
            "token_ids run alone (attention_mask all ones; token_type_ids as given, else zeros). "
            "max_abs_diff_vs_single: the same inputs right-padded in one batch against the "
            "single runs. Floats are the shortest decimals that round-trip to float32."
        ),
        "config": {k: MODELS[name][k] for k in sorted(MODELS[name])},
        "tensor_prefix": prefix,
        "safetensors_tensors": shapes,
        "max_abs_diff_vs_single": batch_diff,
        "inputs": inputs,
    }
    if index == 0:
        ref["log_buckets"] = bucket_tables()
    text = dump(ref) + "\n"
    json.loads(text)
    (folder / "reference.json").write_text(text, encoding="utf-8")
    size = sum(p.stat().st_size for p in folder.iterdir())
    print(f"{name}: {size} bytes, lengths {LENGTHS}, batch diff {batch_diff:.3g}")
    return size


def main():
    torch.set_num_threads(1)
    total = sum(make(name, i) for i, name in enumerate(MODELS))
    assert total < MAX_TOTAL_BYTES, total
    print(f"total {total} bytes")


if __name__ == "__main__":
    sys.exit(main())
