"""Worker for the concurrent ref-update test (a module of its own so spawned processes import little)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def race(mvdir: str, me: int, rounds: int, barrier: Any, results: Any) -> None:
    from mvstore.errors import LockHeld, RefConflict
    from mvstore.ids import hash_bytes
    from mvstore.refs import RefStore

    refs = RefStore(Path(mvdir))
    for r in range(rounds):
        barrier.wait()
        old = refs.read("refs/heads/main")
        barrier.wait()  # everyone has read the same value: now all race
        new = hash_bytes(f"{r}-{me}".encode())
        try:
            refs.update("refs/heads/main", new, expected=old, message=f"{r}-{me}")
            outcome = "won"
        except RefConflict:
            outcome = "conflict"
        except LockHeld:
            outcome = "locked"
        results.put((r, me, outcome, new.hex()))
        barrier.wait()
