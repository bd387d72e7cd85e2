"""`labdeck study ...` commands (hyperparameter studies)."""

from __future__ import annotations


def add_parsers(add, sub) -> None:  # noqa: ARG001 - filled in by the studies feature
    return None
