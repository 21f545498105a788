"""The narrow protocols that operations ask for (a reader, a writer), not a whole repository."""

from __future__ import annotations

from typing import Protocol

from ..ids import ObjectId


class ObjectReader(Protocol):
    def has(self, oid: ObjectId) -> bool: ...

    def read(self, oid: ObjectId, kind: int | None = None) -> bytes:
        """Raw bytes of an object, verified against its id."""
        ...

    def read_into(self, oid: ObjectId, out: memoryview) -> None:
        """Fill ``out`` (exactly the object's raw size) with the verified bytes of a data object."""
        ...


class ObjectWriter(Protocol):
    def put(self, oid: ObjectId, data: bytes | memoryview, kind: int) -> bool:
        """Stage an object; False when the store already holds it."""
        ...
