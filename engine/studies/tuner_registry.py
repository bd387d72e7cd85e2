"""Tuners come from the ``labdeck.tuners`` entry-point group, where the built-in ones (optuna,
random: pyproject.toml) are declared exactly like a third-party package's. Every process
(the TUI, the CLI, a job's worker, a study's extra workers) resolves a name the same way, from
what is installed, so a study created with a tuner runs with it wherever its workers start.
Listing names loads nothing; a tuner's module (and so Optuna) is imported on first use.
"""

from __future__ import annotations

from functools import cache, lru_cache
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .tuner import BaseTuner

GROUP = "labdeck.tuners"


class UnknownTunerError(LookupError):
    pass


@lru_cache(maxsize=1)
def _entry_points() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def tuner_names() -> list[str]:
    return sorted(_entry_points())


@cache
def get_tuner(name: str) -> type[BaseTuner]:
    from .tuner import BaseTuner

    ep = _entry_points().get(name)
    if ep is None:
        raise UnknownTunerError(
            f"unknown tuner {name!r} (known: {', '.join(tuner_names()) or 'none'})")
    try:
        cls = ep.load()
    except ImportError as exc:
        raise UnknownTunerError(f"tuner {name!r} is not available: {exc}") from exc
    if not (isinstance(cls, type) and issubclass(cls, BaseTuner)):
        raise UnknownTunerError(f"tuner {name!r} ({ep.value}) is not a BaseTuner subclass")
    return cls
