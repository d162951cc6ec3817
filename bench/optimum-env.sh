#!/usr/bin/env bash
# Makes .cache/optimum-venv for bench/export-whisper-onnx.py: optimum-onnx with transformers 4.x
# (bench/requirements-onnx-export.txt, no dependencies resolved) on top of the reference venv's
# torch, onnx and onnxruntime, which a .pth file adds after the venv's own packages, so that the
# venv's transformers 4.x wins over the reference venv's 5.x. Nothing of the reference venv
# changes. Needs scripts/pyref-env.sh first.
set -euo pipefail
cd "$(dirname "$0")/.."
ref=.cache/pyref-venv
venv=.cache/optimum-venv
[[ -x $ref/bin/python ]] || { echo "missing $ref: run scripts/pyref-env.sh first" >&2; exit 1; }
site=$("$ref/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
"$ref/bin/python" -m venv --without-pip "$venv" 2>/dev/null || "$ref/bin/python" -m venv "$venv"
[[ -x $venv/bin/pip ]] || "$venv/bin/python" -m ensurepip >/dev/null  # (no -q: Python 3.11's ensurepip refuses it)
"$venv/bin/python" -m pip install -q --no-deps -r bench/requirements-onnx-export.txt
vsite=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "$(cd "$site" && pwd)" >"$vsite/zz-pyref.pth"
"$venv/bin/python" -c 'import optimum.exporters.onnx, transformers, torch; print("optimum venv: transformers", transformers.__version__, "torch", torch.__version__)'
