"""Object stores: move bytes by id. They never parse structured objects."""

from .base import ObjectReader, ObjectWriter
from .local import LocalObjectStore

__all__ = ["LocalObjectStore", "ObjectReader", "ObjectWriter"]
