"""Search-engine registry. Engines are named by "module:Class" so nothing heavy (optuna) is
imported until a study actually uses that engine."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .base import BaseSearchEngine

_ENGINES: dict[str, str | type[BaseSearchEngine]] = {
    "optuna": "engine.studies.optuna_engine:OptunaEngine",
    "random": "engine.studies.random_engine:RandomEngine",
}


class UnknownEngineError(LookupError):
    pass


def register_engine(name: str, target: str | type[BaseSearchEngine]) -> None:
    """Register a search engine class (or a lazy "module:Class" string) under ``name``."""
    _ENGINES[name] = target


def list_engines() -> list[str]:
    return sorted(_ENGINES)


def get_engine(name: str) -> type[BaseSearchEngine]:
    target = _ENGINES.get(name)
    if target is None:
        raise UnknownEngineError(
            f"unknown search engine {name!r} (known: {', '.join(list_engines())})")
    if isinstance(target, str):
        module, _, attr = target.partition(":")
        try:
            cls = getattr(importlib.import_module(module), attr)
        except ImportError as exc:
            raise UnknownEngineError(
                f"search engine {name!r} is not available: {exc}") from exc
        _ENGINES[name] = cls
        return cls
    return target
