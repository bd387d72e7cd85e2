"""The three compare panes; each renders a ``Comparison`` it is handed, nothing more.

Columns fit the pane: a long config value (a script's command) is cut with an ellipsis so
every run's column shows at 80x24, and the cell under the cursor is shown whole on a line of
its own; a long run label keeps its run number (``lr-swe… › run 2``)."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from ..clock import fmt_num
from ..colors import run_hex, run_rgb
from ..run_status import arrow
from .metric_chart import MetricChart, Series

MIN_CELL = 12  # no column is cut narrower than this
KEY_CELL = 24  # nor is the key column wider


def fit(text: str, width: int) -> str:
    """``text`` cut to ``width`` characters with an ellipsis."""
    return text if len(text) <= width else text[:max(width - 1, 0)] + "…"


def fit_label(label: str, width: int) -> str:
    """A run label cut to ``width``, its tail (`` › run 3``) kept whole."""
    if len(label) <= width:
        return label
    head, sep, tail = label.rpartition(" › ")
    if not sep or len(sep + tail) >= width - 2:
        return fit(label, width)
    return fit(head, width - len(sep + tail)) + sep + tail


def run_label(comp: Any, i: int, width: int | None = None) -> Text:
    label = comp.columns[i] if width is None else fit_label(comp.columns[i], width - 2)
    return Text.assemble(("■ ", run_hex(comp.run_ids[i])), label)


def cell_width(pane_width: int, first: int, runs: int) -> int:
    """How wide each run's column may be for ``runs`` of them to fit beside a first column of
    ``first`` characters (each cell is padded by one on either side)."""
    return max(MIN_CELL, (pane_width - first - 2 * (runs + 1) - 1) // max(runs, 1))


class ConfigDiffPane(Vertical):
    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self._shown: tuple[Any, bool] | None = None
        self._keys: list[str] = []

    def compose(self) -> ComposeResult:
        yield Static("", classes="pane-title")
        yield Static("", id="config-value")
        yield DataTable(id="config-diff", zebra_stripes=True)

    def show(self, comp: Any, differing_only: bool) -> None:
        self._shown = (comp, differing_only)
        keys = self._keys = comp.differing if differing_only else comp.config_keys
        self.query_one(".pane-title", Static).update(
            f"config diff: {'differing keys only' if differing_only else 'all keys'}"
            f" ({len(comp.differing)} of {len(comp.config_keys)} differ)   d toggles")
        key_width = min(KEY_CELL, max((len(k) for k in keys), default=3))
        width = cell_width(self.size.width or self.app.size.width, key_width,
                           len(comp.columns))
        table = self.query_one(DataTable)
        cursor = table.cursor_coordinate
        table.clear(columns=True)
        table.add_column("key")
        for i in range(len(comp.columns)):
            table.add_column(run_label(comp, i, width))
        for key in keys:
            diff = key in comp.differing
            cells = [Text(fit(key, key_width), "bold" if diff else "")]
            for v in comp.config[key]:
                text = fit(_whole(v), width)
                cells.append(Text(text, "bold black on yellow") if diff else Text(text, "dim"))
            table.add_row(*cells)
        if keys:
            table.move_cursor(row=min(cursor.row, len(keys) - 1), column=cursor.column)
        self._show_cell(table.cursor_coordinate.row, table.cursor_coordinate.column)

    def on_resize(self) -> None:
        if self._shown is not None:
            self.show(*self._shown)

    @on(DataTable.CellHighlighted)
    def _cell(self, event: DataTable.CellHighlighted) -> None:
        self._show_cell(event.coordinate.row, event.coordinate.column)

    def _show_cell(self, row: int, column: int) -> None:
        """The cell under the cursor, whole: ``command · exp › run 1: python train.py ...``;
        on the key column, the value every run shares (or how to see each)."""
        line = self.query_one("#config-value", Static)
        if self._shown is None or not self._keys:
            line.update("")
            return
        comp = self._shown[0]
        key = self._keys[min(row, len(self._keys) - 1)]
        values = comp.config[key]
        if column == 0 and len({repr(v) for v in values}) == 1:
            line.update(Text.assemble(" ", (key, "bold"), " (every run): ", _whole(values[0])))
        elif column == 0:
            line.update(Text.assemble(" ", (key, "bold"), (": ← → each run's value", "dim")))
        else:
            i = min(column, len(comp.columns)) - 1
            line.update(Text.assemble(" ", (key, "bold"), " · ", run_label(comp, i), ": ",
                                      _whole(values[i])))


def _whole(value: Any) -> str:
    return "-" if value is None else str(value)


class FinalTablePane(Vertical):
    def compose(self) -> ComposeResult:
        yield Static("", classes="pane-title")
        yield DataTable(id="final-table", zebra_stripes=True)

    def show(self, comp: Any, which: str) -> None:
        self.query_one(".pane-title", Static).update(
            f"final metrics: {which} value per run, ★ best result   b last/best  e export")
        names = [f"{key} {arrow(m['direction'])}" if m["direction"] else key
                 for key, m in comp.metrics.items()]
        first = max((len(n) for n in names), default=6)
        width = cell_width(self.size.width or self.app.size.width, first, len(comp.columns))
        table = self.query_one(DataTable)
        table.clear(columns=True)
        table.add_column("metric")
        for i in range(len(comp.columns)):
            table.add_column(run_label(comp, i, width))
        for name, m in zip(names, comp.metrics.values(), strict=True):
            best_i = m["best_last" if which == "last" else "best_best"]
            cells: list[Any] = [name]
            for i, v in enumerate(m[which]):
                text = fmt_num(v)
                cells.append(Text(text + " ★", "bold green") if i == best_i else text)
            table.add_row(*cells)


class ChartsPane(Vertical):
    """One overlaid chart per chosen metric, under a legend line of run colours (the charts
    draw no legend of their own over the data); up to three side by side, more wrap into a
    second row."""

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self._comp: Any = None

    def compose(self) -> ComposeResult:
        yield Static("", classes="legend")
        yield Vertical(classes="chart-box")

    def on_resize(self) -> None:
        if self._comp is not None:
            self.query_one(".legend", Static).update(self._legend(self._comp))

    async def show(self, comp: Any, curves: dict[str, list[Any]]) -> None:
        self._comp = comp
        self.query_one(".legend", Static).update(self._legend(comp))
        box = self.query_one(".chart-box", Vertical)
        await box.remove_children()
        charts = [MetricChart(key) for key in curves]
        box.set_class(len(charts) > 3, "wrapped")
        await box.mount_all(charts)
        for chart, (_key, points) in zip(charts, curves.items(), strict=True):
            series = [Series(comp.columns[i], p.x, p.y, run_rgb(comp.run_ids[i]))
                      for i, p in enumerate(points)]
            chart.show(series, force=True)

    def _legend(self, comp: Any) -> Text:
        """Every run on the one line: labels cut (run numbers kept) where they do not fit."""
        runs = len(comp.columns)
        room = (self.size.width or self.app.size.width) - 2
        title = "curves (m metrics)  "
        if sum(len(c) + 5 for c in comp.columns) + len(title) > room:
            title = ""
        width = max(MIN_CELL, (room - len(title)) // max(runs, 1) - 3)
        legend = Text(title)
        for i in range(runs):
            legend.append_text(run_label(comp, i, width))
            legend.append("   ")
        return legend
