"""Exports all-MiniLM-L6-v2 to ONNX the way Transformers.js loads it.

Run once, by hand, in the reference environment (see bench/README.md):
    scripts/fetch-models.sh minilm && scripts/pyref-env.sh
    .cache/pyref-venv/bin/python bench/export-onnx.py

Writes .cache/models/all-MiniLM-L6-v2-onnx/ with the config and tokenizer
files plus onnx/model.onnx (fp32) and onnx/model_quantized.onnx (dynamic int8,
Transformers.js's dtype 'q8'). Only the BertModel is exported: Transformers.js
does pooling and normalization itself, from `last_hidden_state`.
"""

import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnxruntime.quantization import QuantType, quantize_dynamic
from transformers import AutoModel, AutoTokenizer

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / ".cache" / "models" / "all-MiniLM-L6-v2"
DEST = ROOT / ".cache" / "models" / "all-MiniLM-L6-v2-onnx"
FILES = ["config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"]
OPSET = 14
# Different lengths in one padded batch: catches shapes frozen by the tracer.
CHECK_TEXTS = ["Hello world", "a", "The quick brown fox jumps over the lazy dog, twice.", "x " * 300]


class BertForExport(torch.nn.Module):
    """BertModel with the classic additive attention mask built here.

    transformers 5 builds its masks with code that the TorchScript tracer
    freezes to the sample's shapes, so the mask is made explicitly, as
    transformers 4 did: (1 - mask) * -10000 added to the attention scores.
    That is also the graph shape of the exports Transformers.js publishes,
    which ORT's load-time fusions (BiasGelu, FusedMatMul, LayerNorm) handle;
    the torch.export-based exporter's graph ran about 15% slower.
    """

    def __init__(self, bert):
        super().__init__()
        self.bert = bert

    def forward(self, input_ids, attention_mask, token_type_ids):
        h = self.bert.embeddings(input_ids=input_ids, token_type_ids=token_type_ids)
        additive = (1.0 - attention_mask[:, None, None, :].to(h.dtype)) * -10000.0
        return self.bert.encoder(h, attention_mask=additive).last_hidden_state


def export(out_dir: Path):
    # Eager attention: plain MatMul/Softmax ops that every ORT build runs.
    bert = AutoModel.from_pretrained(str(SRC), dtype=torch.float32, attn_implementation="eager")
    model = BertForExport(bert.eval()).eval()
    tok = AutoTokenizer.from_pretrained(str(SRC))
    sample = tok(["Hello world", "a longer sample sentence"], padding=True, return_tensors="pt")
    args = (sample["input_ids"], sample["attention_mask"], sample["token_type_ids"])
    axes = {0: "batch_size", 1: "sequence_length"}
    path = out_dir / "onnx" / "model.onnx"
    path.parent.mkdir(parents=True)
    with torch.inference_mode():
        torch.onnx.export(
            model,
            args,
            str(path),
            input_names=["input_ids", "attention_mask", "token_type_ids"],
            output_names=["last_hidden_state"],
            dynamic_axes={
                "input_ids": axes,
                "attention_mask": axes,
                "token_type_ids": axes,
                "last_hidden_state": axes,
            },
            opset_version=OPSET,
            # The TorchScript exporter (deprecated, still shipped) gives the
            # graph described above, in one self-contained file.
            dynamo=False,
        )
    onnx.checker.check_model(str(path))
    return bert, tok, path


def check(bert, tok, path: Path, atol: float, min_cos: float):
    """Compares ORT on the exported file with PyTorch on a padded batch."""
    enc = tok(CHECK_TEXTS, padding=True, truncation=True, max_length=256, return_tensors="np")
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feed = {k: enc[k].astype(np.int64) for k in ["input_ids", "attention_mask", "token_type_ids"]}
    got = sess.run(["last_hidden_state"], feed)[0]
    with torch.inference_mode():
        want = bert(**{k: torch.from_numpy(v) for k, v in feed.items()}).last_hidden_state.numpy()
    mask = feed["attention_mask"][..., None].astype(np.float32)
    diff = float(np.abs((got - want) * mask).max())
    # Cosine of the mean-pooled sentence embeddings: what the benchmark uses.
    g, w = (got * mask).sum(1), (want * mask).sum(1)
    cos = float(np.min((g * w).sum(1) / np.linalg.norm(g, axis=1) / np.linalg.norm(w, axis=1)))
    print(f"{path.name}: max |ORT - torch| over real tokens {diff:.2e}, min pooled cosine {cos:.6f}")
    if diff > atol or cos < min_cos:
        sys.exit(f"{path.name} does not match PyTorch")


def main():
    torch.set_num_threads(1)  # shared machine; export is quick anyway
    if not (SRC / "model.safetensors").exists():
        sys.exit(f"missing {SRC}: run scripts/fetch-models.sh minilm first")
    # Build in a sibling temp folder and rename at the end, so an interrupted
    # run never leaves a half-written model that looks complete.
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-onnx-", dir=DEST.parent))
    try:
        bert, tok, fp32 = export(tmp)
        for name in FILES:
            shutil.copy2(SRC / name, tmp / name)
        q8 = fp32.with_name("model_quantized.onnx")
        # Weights as signed int8, activations quantized per batch at run time:
        # ORT's dynamic quantization, which is what Transformers.js calls q8.
        # Per-channel scales: per-tensor ones cost too much accuracy here
        # (pooled cosine to fp32 0.93 against 0.987 on "Hello world"-size
        # inputs); MatMulConstBOnly leaves activation x activation alone.
        quantize_dynamic(
            str(fp32),
            str(q8),
            weight_type=QuantType.QInt8,
            per_channel=True,
            extra_options={"MatMulConstBOnly": True},
        )
        check(bert, tok, fp32, atol=1e-4, min_cos=0.999999)
        # int8 is approximate: these bounds catch a broken graph, not drift.
        check(bert, tok, q8, atol=1.0, min_cos=0.98)
        if DEST.exists():
            shutil.rmtree(DEST)
        tmp.rename(DEST)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for p in sorted(DEST.rglob("*")):
        if p.is_file():
            print(f"{p.relative_to(ROOT)}  {p.stat().st_size} bytes")


if __name__ == "__main__":
    main()
