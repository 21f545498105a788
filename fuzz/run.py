"""Run one atheris harness: ``python fuzz/run.py TARGET [libFuzzer options] [CORPUS_DIR]``.

Exits non-zero (with the input that did it) when a target raises anything but our own errors, runs
past ``-timeout``, or allocates past ``-malloc_limit_mb`` / ``-rss_limit_mb``. Example:

    python fuzz/run.py safetensors_file -runs=200000 -rss_limit_mb=2048 -malloc_limit_mb=512 -timeout=10
"""

from __future__ import annotations

import os
import sys

import atheris

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

with atheris.instrument_imports(include=["mvstore"]):
    from mvstore.errors import MvError

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from targets import MAX_INPUT, TARGETS


def main() -> None:
    name = sys.argv[1]
    target = TARGETS[name]

    def one(data: bytes) -> None:
        if len(data) > MAX_INPUT:
            return
        try:
            target(data)
        except MvError:
            pass

    atheris.Setup([sys.argv[0], *sys.argv[2:]], one)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
