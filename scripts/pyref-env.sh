#!/usr/bin/env bash
# Creates the Python reference environment (.cache/pyref-venv) used to make
# golden test data and the ONNX Runtime baseline model. Never run by CI: torch
# alone is several GB. Idempotent: does nothing when the venv already matches
# tests/reference/requirements.txt.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.cache/pyref-venv"
req="$root/tests/reference/requirements.txt"
marker="$venv/.requirements.sha256"
want="$(sha256sum "$req" | cut -d' ' -f1)"

if [[ -f "$marker" && "$(cat "$marker")" == "$want" ]]; then
  echo "pyref venv up to date: $venv"
  exit 0
fi

python="${PYTHON:-python3}"
if [[ ! -x "$venv/bin/python" ]]; then
  "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --upgrade pip
# The default index serves torch with its CUDA dependencies; big but works on
# CPU. PyTorch's own CPU-only index is not reachable from these machines.
"$venv/bin/python" -m pip install --quiet -r "$req"
echo "$want" > "$marker"
echo "pyref venv ready: $venv"
