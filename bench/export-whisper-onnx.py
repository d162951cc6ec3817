"""Exports whisper-tiny.en and whisper-base to ONNX the way Transformers.js loads them.

Run once, by hand, in its own venv (optimum-onnx needs transformers 4.x; see bench/README.md,
"Speech"):
    scripts/fetch-models.sh whisper-tiny.en whisper-base && scripts/pyref-env.sh
    bench/optimum-env.sh
    .cache/optimum-venv/bin/python bench/export-whisper-onnx.py [NAME ...]

For each model, writes .cache/models/NAME-onnx/ with the config, generation, preprocessor and
tokenizer files and, under onnx/, what Transformers.js 4.3.1 picks for Whisper:
encoder_model.onnx and decoder_model_merged.onnx (fp32; the decoder with and without its cache
in one graph, switched by `use_cache_branch`, as optimum merges them), and the same two with the
suffix _quantized (ORT dynamic quantization, signed int8 per-channel weights, reduce_range, the
If subgraphs included: Transformers.js's dtype 'q8'). The export itself is optimum's
`automatic-speech-recognition-with-past` (TorchScript tracer, opset 17), on the same
transformers folder that webformers and the Python reference load (fp16 weights, upcast to
fp32). Correctness is checked end to end by bench/transformersjs/asr.mjs --reference, which
compares Transformers.js's transcript with Python transformers'.
"""

import shutil
import sys
import tempfile
from pathlib import Path

import onnx
from onnxruntime.quantization import QuantType, quantize_dynamic
from optimum.exporters.onnx import main_export

ROOT = Path(__file__).resolve().parents[1]
MODELS = ["whisper-tiny.en", "whisper-base"]
FILES = [
    "config.json", "generation_config.json", "preprocessor_config.json", "tokenizer.json",
    "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json", "vocab.json", "merges.txt",
]
ONNX = ["encoder_model", "decoder_model_merged"]


def export(name: str):
    src = ROOT / ".cache" / "models" / name
    dest = ROOT / ".cache" / "models" / f"{name}-onnx"
    if not (src / "model.safetensors").exists():
        sys.exit(f"missing {src}: run scripts/fetch-models.sh {name} first")
    # Built in a sibling temp folder and renamed at the end, so that an interrupted run never
    # leaves a half-written model that looks complete.
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-onnx-", dir=dest.parent))
    try:
        raw = tmp / "optimum"
        main_export(
            str(src), output=str(raw), task="automatic-speech-recognition-with-past", device="cpu",
            opset=17, do_validation=False,
        )
        out = tmp / "model"
        (out / "onnx").mkdir(parents=True)
        for f in FILES:
            # optimum writes the tokenizer files that transformers 4 saves; the config files
            # come from the source folder, as the Hub's repositories have them.
            for base in (src, raw):
                if (base / f).exists():
                    shutil.copy2(base / f, out / f)
                    break
        for stem in ONNX:
            fp32 = out / "onnx" / f"{stem}.onnx"
            m = onnx.load(str(raw / f"{stem}.onnx"))  # external data (if any) pulled in
            onnx.save(m, str(fp32))
            quantize_dynamic(
                str(fp32), str(out / "onnx" / f"{stem}_quantized.onnx"),
                weight_type=QuantType.QInt8, per_channel=True, reduce_range=True,
                extra_options={"MatMulConstBOnly": True, "EnableSubgraph": True},
            )
        if dest.exists():
            shutil.rmtree(dest)
        out.rename(dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for p in sorted(dest.rglob("*")):
        if p.is_file():
            print(f"{p.relative_to(ROOT)}  {p.stat().st_size} bytes")


def main():
    for name in sys.argv[1:] or MODELS:
        export(name)


if __name__ == "__main__":
    main()
