"""Porcelain: functions that take a repository and return a result dataclass."""
