"""Errors of the release workflow; like every :class:`MvError`, one line on the command line."""

from __future__ import annotations

from ..errors import MvError


class InvalidVersion(MvError, ValueError):
    """A tag name that looks like a version but is not ``MAJOR.MINOR.PATCH[-pre][+build]``."""


class InvalidStage(MvError, ValueError):
    """A stage name that is not one of checkpoint, candidate, release, deprecated, archived."""


class ValidationFailed(MvError):
    """An artifact check found errors (``mv validate`` exits 4 then; see its ``--help``)."""

    exit_code = 4


class SignatureError(MvError):
    """A signed tag whose signature is missing, malformed or does not verify."""


class UntrustedKey(SignatureError):
    """A valid signature by a key that is not in the trusted list."""


class KeyFileError(MvError, OSError):
    """A signing key file that is missing, unreadable, too open, or not an Ed25519 key."""


class UnsafePickle(MvError, ValueError):
    """A pickle that is not a flat dict of tensors, or a torch too old to load one safely."""


class ChecksumMismatch(MvError):
    """A folder that does not match its ``MANIFEST.sha256``."""
