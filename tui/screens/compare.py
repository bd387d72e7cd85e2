"""Compare two or more runs or experiments: config diff, overlaid curves, final metrics.
Stacked panes on a large terminal; tabs when it is small (80x24), opened with 1-3. An
experiment stands for its latest run with metrics; a line under the title says which when
that is not its latest run."""

from __future__ import annotations

import asyncio
import csv
import json
import time

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Footer, Label, TabbedContent, TabPane

from engine.compare import comparison_rows

from ..keymap import tab_keys
from ..widgets.compare_panes import ChartsPane, ConfigDiffPane, FinalTablePane
from ..widgets.header import LabdeckHeader
from .base import AreaScreen

DEFAULT_CHARTS = 3
WIDE = (100, 34)  # at least this many columns and rows for stacked panes
# the panes (title, id; at 80x24 each is tab "tab-<id>"): keys 1-3 open them
PANES = (("config diff", "pane-config"), ("curves", "pane-charts"),
         ("final metrics", "pane-final"))


def default_metrics(keys: list[str], objective: str | None,
                    ranked: list[str] | None = None) -> list[str]:
    """The shared objective, then train/loss and val/loss, then the other results (``ranked``,
    when given: not the learning rate or the epoch), then the rest: the first three."""
    first = [k for k in (objective, "train/loss", "val/loss") if k in keys]
    results = [k for k in keys if ranked is None or k in ranked]
    rest = [k for k in keys if k not in first]
    return list(dict.fromkeys(first + results + rest))[:DEFAULT_CHARTS]


def shared_objective(runs: list) -> str | None:
    objectives = {r.objective for r in runs}
    return runs[0].objective if len(objectives) == 1 else None


class CompareScreen(AreaScreen):
    AREA = "compare"
    BINDINGS = [
        Binding("d", "toggle_diff", "Diff only", id="compare.differing"),
        Binding("b", "toggle_best", "Last/best", id="compare.best"),
        Binding("e", "export", "Export", id="compare.export"),
        Binding("m", "pick_metrics", "Metrics", id="compare.metrics"),
        *tab_keys("compare", [t for t, _ in PANES]),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.refs: list = []
        self.comparison = None
        self.curves: dict = {}
        self.chosen: list[str] | None = None  # None: default_metrics
        self.objective: str | None = None
        self.differing_only = True
        self.which = "last"
        self.narrow: bool | None = None
        self.loaded = False
        self._painting = asyncio.Lock()  # the panes are replaced (resize) or painted (load)

    def compose(self) -> ComposeResult:
        yield LabdeckHeader(self.AREA)
        yield Label("", id="compare-title", classes="title")
        yield Label("", id="compare-notes", classes="title")
        yield Vertical(id="compare-body")
        yield Footer()

    def on_resize(self) -> None:
        narrow = self.size.width < WIDE[0] or self.size.height < WIDE[1]
        if narrow != self.narrow:
            self.narrow = narrow
            self._rebuild()

    @work(exclusive=True, group="compare-layout", exit_on_error=False)
    async def _rebuild(self) -> None:
        async with self._painting:
            await self._rebuild_panes()
            await self._paint_panes()

    async def _rebuild_panes(self) -> None:
        body = self.query_one("#compare-body", Vertical)
        await body.remove_children()
        panes = [ConfigDiffPane(id="pane-config"), ChartsPane(id="pane-charts"),
                 FinalTablePane(id="pane-final")]
        if self.narrow:
            tabs = TabbedContent(id="compare-tabs")
            await body.mount(tabs)
            for i, ((title, pane_id), pane) in enumerate(zip(PANES, panes, strict=True), 1):
                await tabs.add_pane(TabPane(f"{i} {title}", pane, id=f"tab-{pane_id}"))
        else:
            await body.mount_all(panes)
        body.set_class(not self.narrow, "stacked")
        if self.focused is None:  # the keys go to the config diff until 1-3 says otherwise
            self.query_one("#config-diff").focus()

    def reload(self) -> None:
        refs = list(getattr(self.app, "compare_refs", []))
        self._load(refs)

    @work(exclusive=True, group="compare", exit_on_error=False)
    async def _load(self, refs: list) -> None:
        title = self.query_one("#compare-title", Label)
        if len(refs) < 2:
            title.update("Nothing to compare yet: in Experiments select two or more with space,"
                         " then press c.")
            self.loaded = True
            return
        engine = self.engine
        comp = await engine.compare(refs)
        runs = [await engine.get_run(rid) for rid in comp.run_ids]
        if refs != self.refs:
            self.chosen = None  # a new comparison starts from the defaults
        self.objective = shared_objective(runs)
        curves = {}
        for key in self.charted(comp):
            curves[key] = [await engine.read_metric(rid, key, max_points=400)
                           for rid in comp.run_ids]
        if refs == self.refs and self.comparison is not None and list(curves) == list(self.curves) \
                and all(len(a.x) == len(b.x) for k in curves for a, b in
                        zip(curves[k], self.curves[k], strict=True)) \
                and comp.metrics == self.comparison.metrics and comp.notes == self.comparison.notes:
            self.loaded = True
            return  # nothing visible changed
        self.refs, self.comparison, self.curves = refs, comp, curves
        title.update(f"comparing {len(comp.columns)}: " + "  vs  ".join(comp.columns))
        notes = self.query_one("#compare-notes", Label)
        notes.update("; ".join(comp.notes))
        notes.display = bool(comp.notes)
        await self._paint()
        self.loaded = True

    def charted(self, comp) -> list[str]:
        keys = list(comp.metrics)
        ranked = [k for k, m in comp.metrics.items() if m["ranked"]]
        if self.chosen is None:
            return default_metrics(keys, self.objective, ranked)
        return [k for k in self.chosen if k in comp.metrics] or default_metrics(
            keys, self.objective, ranked)

    def action_pick_metrics(self) -> None:
        from .metric_picker import MetricPicker

        comp = self.comparison
        if comp is None:
            self.notify("nothing to compare yet", severity="warning")
            return

        def picked(keys: list[str] | None) -> None:
            if keys is not None and keys != list(self.curves):
                self.chosen = keys
                self._load(list(self.refs))

        self.app.push_screen(MetricPicker(list(comp.metrics), list(self.curves)), picked)

    async def _paint(self) -> None:
        """Show the comparison in the panes; never while the panes are being replaced."""
        async with self._painting:
            await self._paint_panes()

    async def _paint_panes(self) -> None:
        comp = self.comparison
        if comp is None:
            return
        for pane in self.query(ConfigDiffPane):
            pane.show(comp, self.differing_only)
        for pane in self.query(FinalTablePane):
            pane.show(comp, self.which)
        for pane in self.query(ChartsPane):
            await pane.show(comp, self.curves)

    def on_mount(self) -> None:
        self.query_one("#compare-notes").display = False

    def action_tab(self, index: int) -> None:
        """1-3: the pane's tab at 80x24; and its table gets the keys (stacked too)."""
        pane_id = PANES[index - 1][1]
        for tabs in self.query(TabbedContent):
            tabs.active = f"tab-{pane_id}"
        for table in self.query(f"#{pane_id} DataTable"):
            table.focus()

    def action_toggle_diff(self) -> None:
        self.differing_only = not self.differing_only
        if self.comparison:
            for pane in self.query(ConfigDiffPane):
                pane.show(self.comparison, self.differing_only)

    def action_toggle_best(self) -> None:
        self.which = "best" if self.which == "last" else "last"
        if self.comparison:
            for pane in self.query(FinalTablePane):
                pane.show(self.comparison, self.which)

    @work(group="compare-export", exit_on_error=False)
    async def action_export(self) -> None:
        if self.comparison is None:
            self.notify("nothing to export", severity="warning")
            return
        rows = comparison_rows(self.comparison, self.which)
        out = self.engine.home / "exports"
        out.mkdir(parents=True, exist_ok=True)
        stem = out / f"compare-{time.strftime('%Y%m%d-%H%M%S')}"
        fields = ["metric", "direction", *self.comparison.columns, "best"]
        with open(f"{stem}.csv", "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=fields)
            writer.writeheader()
            writer.writerows(rows)
        with open(f"{stem}.json", "w") as fh:
            json.dump({"which": self.which, "rows": rows,
                       "config": self.comparison.config}, fh, indent=2, default=str)
        self.notify(f"exported {self.which} values to {stem}.csv and {stem}.json", timeout=10)
