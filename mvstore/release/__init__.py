"""Releases: semantic versions, lifecycle stages, changelogs, validation, signing, checksums.

Everything here is porcelain over the core store (objects, refs, ops) and is imported lazily by the
CLI: nothing in this package may import torch, cryptography or gguf at module level.
"""
