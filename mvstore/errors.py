"""The mvstore error tree.

Every error a user can cause is an :class:`MvError`; the CLI turns it into one line on stderr and an
exit code. Errors also inherit the builtin that means the same thing, so callers of the Python API
can catch ``FileNotFoundError`` or ``ValueError`` without importing us.
"""

from __future__ import annotations


class MvError(Exception):
    """Base of every error mvstore raises on purpose."""

    exit_code = 1


class NotARepository(MvError, FileNotFoundError):
    """No ``.mv`` directory at or above the given path."""


class RepositoryExists(MvError, FileExistsError):
    """``init`` on a folder that already holds a repository."""


class RevisionNotFound(MvError, LookupError):
    """A revision (ref, id, prefix, ``REV~N``) that names nothing."""


class AmbiguousRevision(MvError, LookupError):
    """A short id prefix that matches more than one object."""


class ObjectNotFound(MvError, FileNotFoundError):
    """An object id that the store does not hold."""


class CorruptObject(MvError, ValueError):
    """Stored bytes that do not hash to their id, or do not decode."""


class InvalidObject(CorruptObject):
    """A decoded object whose fields are malformed (wrong type, bad path, ...)."""


class InvalidSafetensors(MvError, ValueError):
    """A ``.safetensors`` file whose header or layout is not sound."""


class InvalidRefName(MvError, ValueError):
    """A branch or tag name that is not allowed (``..``, control chars, ...)."""


class RefConflict(MvError):
    """A compare-and-swap on a ref lost: someone else moved it first."""


class RefExists(RefConflict):
    """Creating a ref (tag, branch) that already exists."""


class LockHeld(MvError):
    """A lock file is present: another mv process is running, or one died."""


class NothingToCommit(MvError):
    """The tree to commit equals the parent's tree."""


class DirtyWorktree(MvError):
    """An operation would overwrite changes that are not committed."""


class FileChanged(MvError):
    """A file changed while it was being read for a commit."""


class InvalidPath(MvError, ValueError):
    """A path that escapes the work folder or is otherwise not allowed."""


class UsageError(MvError, ValueError):
    """Bad arguments that the command-line parser could not catch."""

    exit_code = 2
