"""Hyperparameter studies: search spaces, pluggable search engines (Optuna, random), the
study worker that trains one trial after another, and the async API the TUI and CLI use.

Import-light: nothing here imports optuna until a study using the Optuna engine runs.
"""

from __future__ import annotations

from .registry import get_engine, list_engines, register_engine

__all__ = ["get_engine", "list_engines", "register_engine"]
