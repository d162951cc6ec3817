"""Makes tests/fixtures/quant-reference.json: ggml block dequantization (and, for the types the
gguf package can quantize, quantization) as the `gguf` Python package computes it, plus a few
statistics of real tensors of the SmolLM2 GGUF.

Run once, by hand, in the reference environment (CI never does):
    scripts/fetch-models.sh smollm2 && scripts/pyref-env.sh
    .cache/pyref-venv/bin/python tests/reference/make_quant_reference.py

Block bytes are random except the f16 scales, which are drawn as finite, realistically small
values (random bits would give NaN and infinities, which say nothing about the layout).
"""

import importlib.metadata
import json
from pathlib import Path

import gguf
import numpy as np
from gguf import GGMLQuantizationType as T
from gguf.quants import dequantize, quantize

ROOT = Path(__file__).resolve().parents[2]
GGUF_FILE = ROOT / ".cache" / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"
OUT = ROOT / "tests" / "fixtures" / "quant-reference.json"

rng = np.random.default_rng(20240611)


def f16_bytes(values):
    return np.asarray(values, dtype=np.float16).view(np.uint8).reshape(-1, 2)


def random_blocks(qtype, n_blocks):
    """n_blocks of random bytes with valid f16 fields at the offsets ggml puts them."""
    block_size, type_size = gguf.GGML_QUANT_SIZES[qtype]
    raw = rng.integers(0, 256, size=(n_blocks, type_size), dtype=np.uint8)
    scale = lambda: rng.uniform(-0.05, 0.05, size=n_blocks)  # noqa: E731
    positive = lambda: rng.uniform(0.0005, 0.05, size=n_blocks)  # noqa: E731
    if qtype in (T.Q8_0, T.Q4_0):
        raw[:, 0:2] = f16_bytes(scale())  # d
    elif qtype == T.Q4_1:
        raw[:, 0:2] = f16_bytes(scale())  # d
        raw[:, 2:4] = f16_bytes(scale())  # m
    elif qtype in (T.Q4_K, T.Q5_K):
        raw[:, 0:2] = f16_bytes(positive())  # d
        raw[:, 2:4] = f16_bytes(positive())  # dmin
    elif qtype == T.Q6_K:
        raw[:, 208:210] = f16_bytes(scale())  # d, at the end of the block
    else:
        raise ValueError(qtype)
    return raw


def floats(a):
    # Python floats print float32 values exactly (shortest repr that round-trips the f64 cast).
    return [float(v) for v in np.asarray(a, dtype=np.float32).ravel()]


def block_cases():
    out = {}
    for qtype, n_blocks in [(T.Q8_0, 8), (T.Q4_0, 8), (T.Q4_1, 8), (T.Q4_K, 3), (T.Q5_K, 3), (T.Q6_K, 3)]:
        raw = random_blocks(qtype, n_blocks)
        values = dequantize(raw.reshape(-1), qtype)
        assert np.all(np.isfinite(values)), qtype
        out[qtype.name.lower()] = {"bytes": raw.tobytes().hex(), "values": floats(values)}
    return out


def quantize_cases():
    """Random f32 values, and the bytes gguf's reference quantizers make of them."""
    out = {}
    for qtype in (T.Q8_0, T.Q4_0, T.Q4_1):
        values = rng.normal(0.0, 1.0, size=(4, 64)).astype(np.float32)
        values[0, :32] = 0.0  # an all-zero block: the scale must be 0, not NaN
        values[1, 5] = 7.5  # an outlier
        q = quantize(values, qtype)
        out[qtype.name.lower()] = {"input": floats(values), "bytes": q.tobytes().hex()}
    return out


def real_tensors():
    reader = gguf.GGUFReader(GGUF_FILE)
    out = {}
    for name, rows in [("blk.0.attn_q.weight", [0, 1, 575]), ("token_embd.weight", [0, 504, 49151]), ("blk.3.ffn_down.weight", [7])]:
        t = next(t for t in reader.tensors if t.name == name)
        dense = dequantize(t.data, t.tensor_type)  # [rows, cols], row-major like our dims
        assert dense.shape == (int(t.shape[1]), int(t.shape[0])), (name, dense.shape, t.shape)
        out[name] = {
            "type": t.tensor_type.name.lower(),
            "dims": list(dense.shape),
            "data_offset": int(t.data_offset),
            "n_bytes": int(t.n_bytes),
            "sum": float(dense.astype(np.float64).sum()),
            "abs_sum": float(np.abs(dense.astype(np.float64)).sum()),
            "rows": {str(r): floats(dense[r, :16]) for r in rows},
        }
    return out


def main():
    fixture = {
        "gguf_version": importlib.metadata.version("gguf"),
        "dequantize": block_cases(),
        "quantize": quantize_cases(),
        "smollm2": real_tensors(),
    }
    OUT.write_text(json.dumps(fixture, indent=1) + "\n")
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
