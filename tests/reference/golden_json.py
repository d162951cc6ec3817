"""The JSON layout of the committed golden files, shared by the scripts that make them: one line
per array of float32 values, written as their shortest round-tripping decimals, so the files stay
small and their diffs readable. (make_smollm2_reference.py extends it with scalar float32 values
and compact nested lists, so it keeps its own.)"""

import json

import numpy as np


def f32_list(a):
    """Shortest decimal strings that round-trip to the same float32 values."""
    a = np.asarray(a, dtype=np.float32).ravel()
    assert np.all(np.isfinite(a))
    return [str(v) for v in a]


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
    if isinstance(obj, np.ndarray) and obj.ndim == 2:
        return dump(list(obj), indent)
    if isinstance(obj, np.ndarray):
        return pad + "[" + ",".join(f32_list(obj)) + "]"
    return pad + json.dumps(obj, ensure_ascii=False)
