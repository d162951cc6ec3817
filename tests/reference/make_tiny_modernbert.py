"""Makes two tiny random ModernBERT checkpoints and their golden outputs, for tests/modernbert.rs.

Outputs (under tests/fixtures/tiny-modernbert/):
    mlm/        ModernBertForMaskedLM as save_pretrained writes it (weights `model.*`, `head.*`,
                `decoder.bias`; decoder.weight tied to the token embeddings, so not saved):
                hidden 32, 3 layers, global_attn_every_n_layers 2 (layers 0 and 2 global, 1
                local), local_attention 8 (a local query sees |i - j| <= 4), 4 heads,
                intermediate 64, vocab 300, attention_bias true, mlp_bias false, norm_bias
                false (no LayerNorm bias tensors), hidden_activation gelu (exact erf), the
                default rope thetas (160000 global, 10000 local). config.json as transformers
                5 writes it (`layer_types`, `rope_parameters`).
    cls/        ModernBertForSequenceClassification, classifier_pooling "mean", 2 labels:
                3 layers, global_attn_every_n_layers 3 (layer 0 global, 1 and 2 local),
                local_attention 7 (odd: |i - j| <= 3), vocab 100, attention_bias false,
                mlp_bias true, norm_bias true, hidden_activation and classifier_activation
                gelu_pytorch_tanh, global_rope_theta 1000 and local_rope_theta 50. Its
                config.json is rewritten in the Hub's older form (`global_attn_every_n_layers`,
                `global_rope_theta`, `local_rope_theta`, `local_attention`, no `layer_types` or
                `rope_parameters`), as answerdotai/ModernBERT-base has it; it is checked to load
                back into the same model.
    reference.json   per model: config facts, tensor names and shapes, and for token-id
                sequences of 3 to 40 tokens (longer than the windows) last_hidden_state
                [tokens, hidden]; the head outputs (mlm: logits of the first sequence; cls:
                sequence logits, token-classification logits and question-answering start/end
                logits of the same checkpoint loaded into those classes); and the evidence that
                each tested detail matters (window, rope thetas, GELU kind).

Run once, by hand, in the reference environment (CI never does):
    scripts/pyref-env.sh
    .cache/pyref-venv/bin/python tests/reference/make_tiny_modernbert.py

Weights come from a seeded torch.Generator (not transformers' init, which leaves norms at 1 and
biases at 0 and so would test neither). Everything recorded is computed on what was saved,
reloaded the ordinary way; CPU, float32, eager attention, one thread: reruns give identical
files. The eager path's sliding-window mask (masking_utils.sliding_window_bidirectional_overlay:
|q - kv| <= local_attention // 2) is checked against a mask built here by hand and against the
sdpa path.
"""

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import safetensors
import torch
import transformers
from transformers import (
    AutoConfig,
    ModernBertConfig,
    ModernBertForMaskedLM,
    ModernBertForQuestionAnswering,
    ModernBertForSequenceClassification,
    ModernBertForTokenClassification,
)
from golden_json import dump

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "fixtures" / "tiny-modernbert"
SEED = 2024
LENGTHS = [3, 9, 40, 17, 1, 26]
MAX_TOTAL_BYTES = 600_000


def randomize(model, seed):
    """Linear weights N(0, 1/fan_in), LayerNorm weights 1 + N(0, 0.1^2), biases N(0, 0.1^2),
    embeddings N(0, 0.5^2)."""
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
            elif isinstance(module, torch.nn.Linear):
                p.copy_(noise / p.shape[1] ** 0.5)
            else:
                raise ValueError(f"unhandled parameter {name} in {type(module).__name__}")


def common_config(**kw):
    return dict(
        hidden_size=32,
        num_hidden_layers=3,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=64,
        pad_token_id=0,
        bos_token_id=1,
        cls_token_id=1,
        eos_token_id=2,
        sep_token_id=2,
        attn_implementation="eager",
        **kw,
    )


def hand_mask_hidden(model, ids):
    """last_hidden_state with every local layer's mask built here (|i - j| <= local_attention // 2)
    and passed explicitly: checks the eager mask transformers builds is that one."""
    cfg = model.config
    n = len(ids)
    pos = torch.arange(n)
    window = cfg.local_attention // 2
    allowed = (pos[:, None] - pos[None, :]).abs() <= window
    sliding = torch.zeros(1, 1, n, n).masked_fill(~allowed, torch.finfo(torch.float32).min)
    masks = {"full_attention": torch.zeros(1, 1, n, n), "sliding_attention": sliding}
    with torch.no_grad():
        return base(model)(input_ids=torch.tensor([ids]), attention_mask=masks).last_hidden_state[0]


def base(model):
    return model.model


def hidden(model, ids):
    with torch.no_grad():
        return base(model)(input_ids=torch.tensor([ids])).last_hidden_state[0]


def max_diff(a, b):
    return float((a - b).abs().max())


def variant_diff(folder, cls, ids, **changes):
    """How far last_hidden_state moves when a config detail is changed (same weights)."""
    cfg = AutoConfig.from_pretrained(str(folder))
    for k, v in changes.items():
        setattr(cfg, k, v)
    other = cls.from_pretrained(str(folder), config=cfg, attn_implementation="eager").eval()
    ref = cls.from_pretrained(str(folder), attn_implementation="eager").eval()
    return max_diff(hidden(other, ids), hidden(ref, ids))


def rope_variant_diff(folder, cls, ids, layer_type, theta):
    cfg = AutoConfig.from_pretrained(str(folder))
    params = {k: dict(v) for k, v in cfg.rope_parameters.items()}
    params[layer_type]["rope_theta"] = theta
    cfg.rope_parameters = params
    other = cls.from_pretrained(str(folder), config=cfg, attn_implementation="eager").eval()
    ref = cls.from_pretrained(str(folder), attn_implementation="eager").eval()
    return max_diff(hidden(other, ids), hidden(ref, ids))


def tensors(folder):
    with safetensors.safe_open(str(folder / "model.safetensors"), "pt") as f:
        names = sorted(f.keys())
        return {k: list(f.get_slice(k).get_shape()) for k in names}, sorted({str(f.get_slice(k).get_dtype()) for k in names})


def make(name, cls, config, seed, rewrite=None):
    folder = OUT / name
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    torch.manual_seed(seed)
    model = cls(config)
    randomize(model, seed + 1)
    model.eval()
    model.save_pretrained(str(folder))
    if rewrite is not None:
        path = folder / "config.json"
        before = AutoConfig.from_pretrained(str(folder)).to_dict()
        path.write_text(json.dumps(rewrite(json.loads(path.read_text())), indent=2, sort_keys=True) + "\n")
        after = AutoConfig.from_pretrained(str(folder)).to_dict()
        for k in ("layer_types", "rope_parameters", "local_attention", "sliding_window"):
            assert before.get(k) == after.get(k), (k, before.get(k), after.get(k))
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]
    return folder


def hub_style(cfg):
    """The older config.json form of the Hub's ModernBERT checkpoints."""
    layer_types = cfg.pop("layer_types")
    rope = cfg.pop("rope_parameters")

    def pattern(n):
        return ["sliding_attention" if i % n else "full_attention" for i in range(len(layer_types))]

    cfg["global_attn_every_n_layers"] = next(n for n in range(1, len(layer_types) + 1) if pattern(n) == layer_types)
    cfg["global_rope_theta"] = rope["full_attention"]["rope_theta"]
    cfg["local_rope_theta"] = rope["sliding_attention"]["rope_theta"]
    return cfg


def main():
    torch.set_num_threads(1)
    transformers.utils.logging.disable_progress_bar()
    OUT.mkdir(parents=True, exist_ok=True)

    mlm_config = ModernBertConfig(
        **common_config(
            vocab_size=300,
            global_attn_every_n_layers=2,
            local_attention=8,
            attention_bias=True,
            mlp_bias=False,
            norm_bias=False,
            hidden_activation="gelu",
        )
    )
    cls_config = ModernBertConfig(
        **common_config(
            vocab_size=100,
            global_attn_every_n_layers=3,
            local_attention=7,
            attention_bias=False,
            mlp_bias=True,
            norm_bias=True,
            hidden_activation="gelu_pytorch_tanh",
            classifier_activation="gelu_pytorch_tanh",
            classifier_pooling="mean",
            classifier_bias=True,
            num_labels=2,
            global_rope_theta=1000.0,
            local_rope_theta=50.0,
        )
    )
    folders = {
        "mlm": (make("mlm", ModernBertForMaskedLM, mlm_config, SEED), ModernBertForMaskedLM),
        "cls": (make("cls", ModernBertForSequenceClassification, cls_config, SEED + 10, hub_style), ModernBertForSequenceClassification),
    }

    g = torch.Generator().manual_seed(SEED + 99)
    records = {}
    for name, (folder, cls) in folders.items():
        model = cls.from_pretrained(str(folder), attn_implementation="eager").eval()
        cfg = model.config
        assert cfg._attn_implementation == "eager"
        vocab = cfg.vocab_size
        seqs = [torch.randint(0, vocab, (n,), generator=g).tolist() for n in LENGTHS]
        sdpa = cls.from_pretrained(str(folder), attn_implementation="sdpa").eval()
        inputs, singles = [], []
        for ids in seqs:
            h = hidden(model, ids)
            singles.append(h)
            assert max_diff(h, hand_mask_hidden(model, ids)) < 1e-5, "eager mask is not |i - j| <= local_attention // 2"
            assert max_diff(h, hidden(sdpa, ids)) < 1e-4, "eager and sdpa differ"
            inputs.append({"token_ids": ids, "last_hidden_state": h.numpy()})
        # A right-padded batch equals the single runs (what the Rust packed batch must match).
        n = max(LENGTHS)
        batch = torch.tensor([ids + [cfg.pad_token_id] * (n - len(ids)) for ids in seqs])
        mask = torch.tensor([[1] * len(ids) + [0] * (n - len(ids)) for ids in seqs])
        with torch.no_grad():
            padded = base(model)(input_ids=batch, attention_mask=mask).last_hidden_state
        batch_diff = max(max_diff(padded[i, : len(ids)], singles[i]) for i, ids in enumerate(seqs))
        assert batch_diff < 1e-5, batch_diff

        longest = seqs[LENGTHS.index(max(LENGTHS))]
        evidence = {
            "no_window_max_abs_diff": variant_diff(folder, cls, longest, local_attention=10_000),
            "window_one_wider_max_abs_diff": variant_diff(folder, cls, longest, local_attention=cfg.local_attention + 2),
            "global_theta_swapped_max_abs_diff": rope_variant_diff(
                folder, cls, longest, "full_attention", cfg.rope_parameters["sliding_attention"]["rope_theta"]
            ),
            "local_theta_swapped_max_abs_diff": rope_variant_diff(
                folder, cls, longest, "sliding_attention", cfg.rope_parameters["full_attention"]["rope_theta"]
            ),
            "other_gelu_max_abs_diff": variant_diff(
                folder, cls, longest, hidden_activation="gelu" if cfg.hidden_activation != "gelu" else "gelu_pytorch_tanh"
            ),
        }
        for k, v in evidence.items():
            # Several times the Rust test's tolerance (1e-4), so a wrong detail fails it.
            assert v > 4e-4, (name, k, v)

        heads = {}
        with torch.no_grad():
            if name == "mlm":
                heads["masked_lm_logits_0"] = model(input_ids=torch.tensor([seqs[0]])).logits[0].numpy()
            else:
                heads["sequence_logits"] = np.stack([model(input_ids=torch.tensor([ids])).logits[0].numpy() for ids in seqs])
                tok = ModernBertForTokenClassification.from_pretrained(str(folder), attn_implementation="eager").eval()
                qa = ModernBertForQuestionAnswering.from_pretrained(str(folder), attn_implementation="eager").eval()
                for rec, ids in zip(inputs, seqs):
                    rec["token_logits"] = tok(input_ids=torch.tensor([ids])).logits[0].numpy()
                    out = qa(input_ids=torch.tensor([ids]))
                    rec["start_logits"] = out.start_logits[0].numpy()
                    rec["end_logits"] = out.end_logits[0].numpy()
        shapes, dtypes = tensors(folder)
        records[name] = {
            "folder": folder.relative_to(ROOT).as_posix(),
            "class": cls.__name__,
            "config": {
                "vocab_size": vocab,
                "layer_types": cfg.layer_types,
                "local_attention": cfg.local_attention,
                "rope_theta": {k: v["rope_theta"] for k, v in cfg.rope_parameters.items()},
                "hidden_activation": cfg.hidden_activation,
                "classifier_pooling": cfg.classifier_pooling,
                "attention_bias": cfg.attention_bias,
                "mlp_bias": cfg.mlp_bias,
                "norm_bias": cfg.norm_bias,
            },
            "safetensors_dtypes": dtypes,
            "safetensors_tensors": shapes,
            "padded_batch_max_abs_diff_vs_single": batch_diff,
            "evidence": evidence,
            "heads": heads,
            "inputs": inputs,
        }

    fixture = {
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__, "numpy": np.__version__},
        "note": (
            "Made by tests/reference/make_tiny_modernbert.py (see its docstring for both models). "
            "inputs[i]: token_ids (no tokenizer: random ids from a seeded generator) and "
            "last_hidden_state [tokens, hidden] of the base model (eager attention, each sequence "
            "alone; a right-padded batch gives the same within padded_batch_max_abs_diff_vs_single). "
            "evidence: how far the longest sequence's last_hidden_state moves with no sliding "
            "window, a window one wider, the global or local rope theta swapped for the other, or "
            "the other GELU (erf vs tanh). heads (mlm): masked_lm_logits_0 [tokens, vocab] of "
            "sequence 0; (cls): sequence_logits [sequences, 2] (mean pooling, head, classifier), "
            "and per input token_logits [tokens, 2] and start_logits / end_logits [tokens] from the "
            "same checkpoint loaded as ModernBertForTokenClassification and "
            "ModernBertForQuestionAnswering. Floats are the shortest decimals that round-trip to "
            "float32."
        ),
        "models": records,
    }
    text = dump(fixture) + "\n"
    json.loads(text)
    (OUT / "reference.json").write_text(text, encoding="utf-8")
    total = sum(p.stat().st_size for p in OUT.rglob("*") if p.is_file())
    assert total < MAX_TOTAL_BYTES, total
    print(f"wrote {OUT.relative_to(ROOT)}: {total} bytes")
    for name, r in records.items():
        print(f"  {name}: layer types {r['config']['layer_types']}, evidence {r['evidence']}")


if __name__ == "__main__":
    sys.exit(main())
