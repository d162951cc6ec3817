#!/usr/bin/env python3
"""Weight files small enough to carry, grown back to full size where they run (bench/gpu.sh).

A GPU machine of this workplace takes at most 64 MiB of working tree per call, and the models the
GPU benchmarks use are 75 to 100 MB each. Their speed does not depend on the weights' values, only
on their shapes and types, so `cut` keeps a safetensors or GGUF file's header (names, shapes,
types, offsets, and a GGUF's metadata with its tokenizer) and its small tensors (norms, biases,
position ids) verbatim, and `grow` rebuilds a file of the same size, layout and types whose large
tensors hold random values of a sane range: floats near zero, quantized blocks with random quants
and small valid scales (random scale bytes could be NaN or infinity).

    bench/skeleton.py cut  MODEL_FILE  OUT.skel
    bench/skeleton.py grow OUT.skel    MODEL_FILE

Standard library only: it runs on the GPU machine's Python as on this one.
"""

import json
import random
import struct
import sys

MAGIC = b"WFSKEL1\n"
# Tensors up to this size are kept as they are: small, and some are not weights (position ids).
KEEP_BYTES = 64 << 10

# GGUF tensor types: (values per block, bytes per block, offsets of the block's f16 scales).
GGUF_TYPES = {
    0: (1, 4, None),  # F32
    1: (1, 2, None),  # F16
    2: (32, 18, [0]),  # Q4_0
    3: (32, 20, [0, 2]),  # Q4_1
    6: (32, 22, [0]),  # Q5_0
    7: (32, 24, [0, 2]),  # Q5_1
    8: (32, 34, [0]),  # Q8_0
    10: (256, 84, [80, 82]),  # Q2_K
    11: (256, 110, [108]),  # Q3_K
    12: (256, 144, [0, 2]),  # Q4_K
    13: (256, 176, [0, 2]),  # Q5_K
    14: (256, 210, [208]),  # Q6_K
    30: (1, 2, None),  # BF16
}
SAFETENSORS_FLOATS = {"F32": "f", "F16": "e", "F64": "d"}


class Reader:
    def __init__(self, data):
        self.data, self.pos = data, 0

    def take(self, fmt):
        value = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return value[0]

    def string(self):
        n = self.take("Q")
        self.pos += n
        return self.data[self.pos - n : self.pos].decode("utf-8", "replace")


GGUF_SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}


def gguf_value(r, kind):
    if kind == 8:
        return r.string()
    if kind == 9:
        item, n = r.take("I"), r.take("Q")
        if item in GGUF_SCALARS:  # skipped, not read one by one (token types, scores)
            r.pos += n * struct.calcsize("<" + GGUF_SCALARS[item])
            return None
        return [gguf_value(r, item) for _ in range(n)]
    if kind not in GGUF_SCALARS:
        raise ValueError(f"unknown GGUF value type {kind}")
    return r.take(GGUF_SCALARS[kind])


def gguf_layout(head):
    """(data start, [(name, absolute offset, bytes, type)]) of a GGUF file's first bytes."""
    r = Reader(head)
    if head[:4] != b"GGUF":
        raise ValueError("not a GGUF file")
    r.pos = 4
    version, n_tensors, n_kv = r.take("I"), r.take("Q"), r.take("Q")
    if version < 2:
        raise ValueError(f"GGUF version {version} is not supported")
    alignment = 32
    for _ in range(n_kv):
        key = r.string()
        value = gguf_value(r, r.take("I"))
        if key == "general.alignment":
            alignment = value
    tensors = []
    for _ in range(n_tensors):
        name = r.string()
        dims = [r.take("Q") for _ in range(r.take("I"))]
        kind, offset = r.take("I"), r.take("Q")
        if kind not in GGUF_TYPES:
            raise ValueError(f"{name}: GGUF tensor type {kind} is not known here")
        values = 1
        for d in dims:
            values *= d
        per_block, block_bytes, _ = GGUF_TYPES[kind]
        tensors.append((name, offset, values // per_block * block_bytes, kind))
    start = -(-r.pos // alignment) * alignment
    return start, [(n, start + o, size, kind) for n, o, size, kind in tensors]


def safetensors_layout(head):
    n = struct.unpack_from("<Q", head)[0]
    header = json.loads(head[8 : 8 + n])
    start = 8 + n
    tensors = []
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        tensors.append((name, start + begin, end - begin, info["dtype"]))
    return start, tensors


def layout(head):
    return gguf_layout(head) if head[:4] == b"GGUF" else safetensors_layout(head)


def header_bytes(path):
    """Enough of the file's start to hold its whole header."""
    with open(path, "rb") as f:
        head = f.read(8)
        if head[:4] != b"GGUF":
            return head + f.read(struct.unpack("<Q", head)[0])
        size = 1 << 20
        while True:  # a GGUF header's length is known only once parsed
            f.seek(0)
            head = f.read(size)
            try:
                start, _ = gguf_layout(head)
                return head[:start]
            except (struct.error, IndexError):
                if len(head) < size:
                    raise
                size *= 4


def cut(src, dst):
    head = header_bytes(src)
    start, tensors = layout(head)
    keep, kept = [], []
    with open(src, "rb") as f:
        for _, offset, size, _ in tensors:
            if size <= KEEP_BYTES:
                f.seek(offset)
                keep.append([offset, size])
                kept.append(f.read(size))
        f.seek(0, 2)
        total = f.tell()
    meta = json.dumps({"size": total, "data_start": start, "keep": keep}).encode()
    with open(dst, "wb") as out:
        out.write(MAGIC + struct.pack("<Q", len(meta)) + meta + head + b"".join(kept))


def pattern(kind, rng, length=1 << 20):
    """About `length` bytes of valid random values of `kind`, whole blocks."""
    if kind in SAFETENSORS_FLOATS or kind in (0, 1, 30, "BF16"):
        code = SAFETENSORS_FLOATS.get(kind, {0: "f", 1: "e"}.get(kind))
        values = [rng.uniform(-0.05, 0.05) for _ in range(length // 4)]
        if code:
            return struct.pack(f"<{len(values)}{code}", *values)
        # bf16: the top half of each f32
        return b"".join(struct.pack("<f", v)[2:] for v in values)
    if kind in GGUF_TYPES:
        _, block_bytes, scales = GGUF_TYPES[kind]
        blocks = bytearray(rng.randbytes(length // block_bytes * block_bytes))
        scale = struct.pack("<e", 0.01)
        for b in range(0, len(blocks), block_bytes):
            for s in scales:
                blocks[b + s : b + s + 2] = scale
        return bytes(blocks)
    return bytes(length)  # integers, booleans: zeros


def grow(src, dst):
    with open(src, "rb") as f:
        data = f.read()
    if not data.startswith(MAGIC):
        raise ValueError(f"{src}: not a skeleton made by `cut`")
    n = struct.unpack_from("<Q", data, len(MAGIC))[0]
    at = len(MAGIC) + 8
    meta = json.loads(data[at : at + n])
    at += n
    head = data[at : at + meta["data_start"]]
    at += meta["data_start"]
    _, tensors = layout(head)
    kept = {offset for offset, _ in meta["keep"]}
    out = bytearray(meta["size"])
    out[: len(head)] = head
    rng = random.Random(7)
    patterns = {}
    for _, offset, size, kind in tensors:
        if offset in kept:
            continue
        if kind not in patterns:
            patterns[kind] = pattern(kind, rng)
        p = patterns[kind]
        for begin in range(0, size, len(p)):
            chunk = min(len(p), size - begin)
            out[offset + begin : offset + begin + chunk] = p[:chunk]
    for offset, size in meta["keep"]:
        out[offset : offset + size] = data[at : at + size]
        at += size
    with open(dst, "wb") as f:
        f.write(out)


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] not in ("cut", "grow"):
        sys.exit(__doc__.split("\n\n")[2])
    try:
        (cut if sys.argv[1] == "cut" else grow)(sys.argv[2], sys.argv[3])
    except (OSError, ValueError, KeyError, struct.error) as e:
        sys.exit(f"skeleton.py {sys.argv[1]}: {e}")
