"""What the Search area can search and how: searchable checkpoints (runs of adapters that
declare a search capability), and the adapter's own options and sample queries."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rich.text import Text

from adapters.base import INDEX, SEARCH_IMAGE, SEARCH_TEXT

from .search_modals import Source

SEARCH_CAPS = (SEARCH_TEXT, SEARCH_IMAGE)


@dataclass
class AdapterSearch:
    """An adapter's search surface as the screen needs it."""

    name: str
    capabilities: frozenset[str]
    options: tuple[Any, ...] = ()  # SearchOption
    samples: tuple[str, ...] = ()
    defaults: dict[str, Any] = field(default_factory=dict)

    @property
    def text(self) -> bool:
        return SEARCH_TEXT in self.capabilities

    @property
    def image(self) -> bool:
        return SEARCH_IMAGE in self.capabilities

    @property
    def index(self) -> bool:
        return INDEX in self.capabilities


def adapter_search(engine, name: str) -> AdapterSearch | None:
    """None when the adapter is unknown or declares no search capability."""
    try:
        cls = engine.adapter_class(name)
    except Exception:  # noqa: BLE001 - an adapter that is not installed here
        return None
    caps = frozenset(c for c in SEARCH_CAPS + (INDEX,) if cls.supports(c))
    if not caps & set(SEARCH_CAPS):
        return None
    options = tuple(cls().search_options())
    samples = tuple(getattr(cls, "sample_queries", lambda: ())())
    return AdapterSearch(name, caps, options, samples, {o.name: o.default for o in options})


async def load_sources(engine, adapters: dict[str, AdapterSearch | None]
                       ) -> tuple[list[Source], list[str]]:
    """Every checkpoint of every run of a searchable adapter, newest run first, and a line
    for each such run still training; fills ``adapters`` (a cache by name) as it goes."""
    indexes: dict[tuple[int, str], Any] = {}
    for rec in await engine.list_indexes():
        indexes.setdefault((rec.run_id, rec.checkpoint), rec)
    out: list[Source] = []
    pending: list[str] = []
    for run in await engine.list_runs():
        if run.adapter not in adapters:
            adapters[run.adapter] = adapter_search(engine, run.adapter)
        if adapters[run.adapter] is None:
            continue
        if run.status in ("queued", "running"):
            done = f" {run.progress:.0%}" if run.progress else ""
            pending.append(f"{run.label} is {run.status}{done}")
        for ck in await engine.list_checkpoints(run.id):
            rec = indexes.get((run.id, ck["name"]))
            items = None if rec is None else int(rec.info.get("n_items") or 0)
            out.append(Source(run.id, ck["name"], run.label, run.adapter, items))
    return out, pending


def default_source(sources: list[Source]) -> Source | None:
    """Newest checkpoint with an index; else the newest run's best-looking checkpoint."""
    if not sources:
        return None
    indexed = [s for s in sources if s.index_items is not None]
    if indexed:
        return indexed[0]
    newest = [s for s in sources if s.run_id == sources[0].run_id]
    for s in newest:
        if s.checkpoint.startswith("best"):
            return s
    return newest[0]


def options_text(options: tuple[Any, ...], values: dict[str, Any], keys: tuple[str, ...]) -> Text:
    """``bits 8 16 32 ⟨64⟩ 128 [ ]   method ⟨hamming⟩ cosine h`` from the adapter's options."""
    text = Text()
    for i, opt in enumerate(options):
        if i:
            text.append("   ")
        text.append((opt.label or opt.name) + " ", "bold")
        for c in opt.choices:
            if c == values.get(opt.name):
                text.append(f"⟨{c}⟩", "reverse bold")
            else:
                text.append(f" {c} ", "dim")
        if i < len(keys) and keys[i]:
            text.append(f"  {keys[i]}", "italic dim")
    return text


def cycle(choices: tuple[Any, ...], value: Any, step: int) -> Any:
    if not choices:
        return value
    i = choices.index(value) if value in choices else 0
    return choices[(i + step) % len(choices)]
