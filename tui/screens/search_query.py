"""The Search area's queries: check that the chosen checkpoint can answer one, run it in a
worker (the first query of a checkpoint waits for the model), and show the ranked hits."""

from __future__ import annotations

import os

from rich.text import Text
from textual import work
from textual.widgets import ContentSwitcher

from ..clock import monotonic
from ..widgets.search_results import HitList, ThumbGrid
from .search_modals import Source

TOP_K = 12


class SearchQueries:
    """Mixed into SearchScreen: ``_query`` runs a text or image query against the source."""

    hits: list
    last_query: tuple[str, str] | None
    latency_ms: float | None

    def _query(self, kind: str, query: str) -> None:
        src, a = self.source, self.adapter
        if src is None or a is None:
            self._set_status("no checkpoint to search: press r to pick one", error=True)
        elif (kind == "text" and not a.text) or (kind == "image" and not a.image):
            self._set_status(f"adapter {a.name} does not search by {kind}", error=True)
        elif src.index_items is None:
            self._set_status(f"no index for {src.label} › {src.checkpoint} yet: press b to"
                             " build it", error=True)
            self.notify("no index yet: press b to build one", severity="warning")
        else:
            self.last_query = (kind, query)
            self._search(src, kind, query, dict(self.values))

    @work(exclusive=True, group="search", exit_on_error=False)
    async def _search(self, src: Source, kind: str, query: str, options: dict) -> None:
        self.busy = True
        self._set_status("loading model… (first query of this checkpoint)"
                         if src.key not in self.warm else "searching…")
        started = monotonic()
        try:
            res = await self.engine.search(src.run_id, kind, query, checkpoint=src.checkpoint,
                                           k=TOP_K, **options)
        except (ValueError, LookupError, OSError) as exc:
            self._set_status(f"⚠ {exc}", error=True)
            self.notify(str(exc), title="search", severity="warning")
            return
        finally:
            self.busy = False
        self.warm.add(src.key)
        # what the user waited for (the first query of a checkpoint includes loading the model)
        self.hits = res["hits"]
        self.latency_ms = (monotonic() - started) * 1000
        switch = self.query_one("#search-switch", ContentSwitcher)
        if kind == "text":
            await self.query_one(ThumbGrid).show(self.hits)
            switch.current = "search-grid"
        else:
            self.query_one(HitList).show(self.hits)
            switch.current = "search-list"
        self._set_status(self._result_line(kind, query, options))
        self.searches += 1
        self.refresh_bindings()

    def _result_line(self, kind: str, query: str, options: dict) -> Text:
        took = "" if self.latency_ms is None else f" in {self.latency_ms:.1f} ms"
        what = f"“{query}”" if kind == "text" else os.path.basename(query)
        opts = " · ".join(str(v) for v in options.values())
        line = Text.assemble((f"{len(self.hits)} results{took}", "bold"),
                             (f"  {kind} query {what}" + (f" · {opts}" if opts else ""), "dim"))
        credits = dict.fromkeys(str(h.extra["credit"]) for h in self.hits
                                if h.extra.get("credit"))
        for credit in credits:  # the images' licence asks for it wherever they appear
            line.append(f"\n{credit}", "italic dim")
        return line

    def _clear_results(self) -> None:
        self.hits, self.last_query, self.latency_ms = [], None, None
        self.query_one("#search-switch", ContentSwitcher).current = "search-empty"
