"""Adapter registry: classes come from the ``labdeck.adapters`` entry-point group, where the
built-in adapters register exactly like third-party ones. Nothing here imports an adapter's
heavy dependencies: loading a class imports only its package's top module."""

from __future__ import annotations

from functools import cache, lru_cache
from importlib.metadata import entry_points
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from adapters.base import BaseAdapter

GROUP = "labdeck.adapters"


class UnknownAdapterError(LookupError):
    pass


@lru_cache(maxsize=1)
def _entry_points() -> dict[str, object]:
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def adapter_names() -> list[str]:
    return sorted(_entry_points())


@cache
def _load(name: str) -> type[BaseAdapter]:
    ep = _entry_points().get(name)
    if ep is None:
        raise UnknownAdapterError(
            f"unknown adapter {name!r} (known: {', '.join(adapter_names()) or 'none'})")
    return ep.load()  # type: ignore[attr-defined]  # an EntryPoint; typeshed types the lookup loosely


def get_adapter_class(name: str) -> type[BaseAdapter]:
    """The class behind ``name`` in the entry-point group, the same in every process (no
    per-process registration: a study or job worker would not see it)."""
    return _load(name)
