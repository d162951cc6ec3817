#!/usr/bin/env bash
# Creates .cache/hub-venv: Python's huggingface_hub (no torch), for the tests that check that
# webformers and huggingface_hub share one cache both ways (tests/hub). About 5 s the first time;
# idempotent: does nothing when the venv already matches tests/hub/requirements.txt.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.cache/hub-venv"
req="$root/tests/hub/requirements.txt"
marker="$venv/.requirements.sha256"
want="$(sha256sum "$req" | cut -d' ' -f1)"

if [[ -f "$marker" && "$(cat "$marker")" == "$want" ]]; then
  echo "hub venv up to date: $venv"
  exit 0
fi

python="${PYTHON:-python3}"
if [[ ! -x "$venv/bin/python" ]]; then
  "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet -r "$req"
echo "$want" > "$marker"
echo "hub venv ready: $venv"
