"""labdeck's engine: store, scheduler, workers, tracking. Import-light: no textual, no torch."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .api import Engine

__all__ = ["Engine", "tracking"]


def __getattr__(name: str) -> Any:
    import importlib

    if name == "Engine":
        return importlib.import_module(".api", __name__).Engine
    if name == "tracking":
        return importlib.import_module(".tracking", __name__)
    raise AttributeError(name)
