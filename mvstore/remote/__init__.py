"""Remotes: a tiny byte-level backend interface, the remote repository layout on top of it, and
lazy access to a remote model."""
