"""Exports gemma-3-270m to ONNX the way Transformers.js loads a decoder, for bench/gemma3.sh.

The weights exist here only as the Q4_K_M GGUF (scripts/fetch-models.sh gemma3): transformers
dequantizes it (`from_pretrained(dir, gguf_file=...)`, as tests/reference/make_gemma3_reference.py
does) into an fp32 Gemma3ForCausalLM folder, which optimum exports as
`text-generation-with-past` (one graph with the KV cache as inputs and outputs, opset 17). So
Transformers.js runs the same weights as webformers and llama.cpp, rounded once more by its own
quantization: onnx/model_quantized.onnx (dtype 'q8': ORT dynamic quantization, signed int8
per-channel MatMul weights, as bench/export-whisper-onnx.py) and onnx/model_q4.onnx (dtype 'q4':
ORT's MatMulNBits, 4-bit symmetric blocks of 32, as Transformers.js's conversion script makes
it); onnx/model.onnx is fp32.

Run once, by hand, in the optimum venv (see bench/optimum-env.sh):
    .cache/optimum-venv/bin/python bench/export-gemma3-onnx.py
Writes .cache/models/gemma-3-270m-onnx/.
"""

import shutil
import sys
import tempfile
from pathlib import Path

import onnx
import torch
from onnxruntime.quantization import QuantType, quantize_dynamic
from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer
from optimum.exporters.onnx import main_export
from transformers import AutoModelForCausalLM, AutoTokenizer

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / ".cache" / "models"
GGUF = "gemma-3-270m-q4_k_m.gguf"
DEST = MODELS / "gemma-3-270m-onnx"


def main():
    if not (MODELS / GGUF).exists():
        sys.exit(f"missing {MODELS / GGUF}: run scripts/fetch-models.sh gemma3 first")
    # A sibling temp folder renamed at the end: an interrupted run leaves nothing that looks done.
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-onnx-", dir=MODELS))
    try:
        hf = tmp / "hf"
        tok = AutoTokenizer.from_pretrained(str(MODELS), gguf_file=GGUF)
        model = AutoModelForCausalLM.from_pretrained(str(MODELS), gguf_file=GGUF, dtype=torch.float32)
        model.save_pretrained(hf)
        tok.save_pretrained(hf)
        model.generation_config.save_pretrained(hf)
        del model
        raw = tmp / "optimum"
        main_export(str(hf), output=str(raw), task="text-generation-with-past", device="cpu", opset=17, do_validation=False)
        out = tmp / "model"
        (out / "onnx").mkdir(parents=True)
        for f in raw.iterdir():
            if f.suffix != ".onnx" and not f.name.endswith(".onnx_data") and f.is_file():
                shutil.copy2(f, out / f.name)
        fp32 = out / "onnx" / "model.onnx"
        onnx.save(onnx.load(str(raw / "model.onnx")), str(fp32))  # external data (if any) pulled in
        quantize_dynamic(
            str(fp32), str(out / "onnx" / "model_quantized.onnx"), weight_type=QuantType.QInt8, per_channel=True,
            reduce_range=True, extra_options={"MatMulConstBOnly": True},
        )
        q4 = MatMulNBitsQuantizer(onnx.load(str(fp32)), block_size=32, is_symmetric=True)
        q4.process()
        q4.model.save_model_to_file(str(out / "onnx" / "model_q4.onnx"), use_external_data_format=False)
        if DEST.exists():
            shutil.rmtree(DEST)
        out.rename(DEST)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for p in sorted(DEST.rglob("*")):
        if p.is_file():
            print(f"{p.relative_to(ROOT)}  {p.stat().st_size} bytes")


if __name__ == "__main__":
    main()
