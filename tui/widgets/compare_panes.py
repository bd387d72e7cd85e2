"""The three compare panes; each renders a ``Comparison`` it is handed, nothing more."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from ..clock import fmt_num
from ..colors import run_hex, run_rgb
from ..run_status import arrow
from .metric_chart import MetricChart, Series


def run_label(comp: Any, i: int) -> Text:
    return Text.assemble(("■ ", run_hex(comp.run_ids[i])), comp.columns[i])


class ConfigDiffPane(Vertical):
    def compose(self) -> ComposeResult:
        yield Static("", classes="pane-title")
        yield DataTable(id="config-diff", zebra_stripes=True)

    def show(self, comp: Any, differing_only: bool) -> None:
        keys = comp.differing if differing_only else comp.config_keys
        self.query_one(".pane-title", Static).update(
            f"config diff: {'differing keys only' if differing_only else 'all keys'}"
            f" ({len(comp.differing)} of {len(comp.config_keys)} differ)   d toggles")
        table = self.query_one(DataTable)
        table.clear(columns=True)
        table.add_column("key")
        for i in range(len(comp.columns)):
            table.add_column(run_label(comp, i))
        for key in keys:
            diff = key in comp.differing
            cells = [Text(key, "bold" if diff else "")]
            for v in comp.config[key]:
                text = "-" if v is None else str(v)
                cells.append(Text(text, "bold black on yellow") if diff else Text(text, "dim"))
            table.add_row(*cells)


class FinalTablePane(Vertical):
    def compose(self) -> ComposeResult:
        yield Static("", classes="pane-title")
        yield DataTable(id="final-table", zebra_stripes=True)

    def show(self, comp: Any, which: str) -> None:
        self.query_one(".pane-title", Static).update(
            f"final metrics: {which} value per run (★ best by direction)   b last/best  e export")
        table = self.query_one(DataTable)
        table.clear(columns=True)
        table.add_column("metric")
        for i in range(len(comp.columns)):
            table.add_column(run_label(comp, i))
        for key, m in comp.metrics.items():
            best_i = m["best_last" if which == "last" else "best_best"]
            cells: list[Any] = [f"{key} {arrow(m['direction'])}"]
            for i, v in enumerate(m[which]):
                text = fmt_num(v)
                cells.append(Text(text + " ★", "bold green") if i == best_i else text)
            table.add_row(*cells)


class ChartsPane(Vertical):
    """One overlaid chart per chosen metric, with a legend of run colours; up to three side by
    side, more wrap into a second row."""

    def compose(self) -> ComposeResult:
        yield Static("", classes="legend")
        yield Vertical(classes="chart-box")

    async def show(self, comp: Any, curves: dict[str, list[Any]]) -> None:
        legend = Text("curves (m metrics)  ")
        for i in range(len(comp.columns)):
            legend.append_text(run_label(comp, i))
            legend.append("   ")
        self.query_one(".legend", Static).update(legend)
        box = self.query_one(".chart-box", Vertical)
        await box.remove_children()
        charts = [MetricChart(key) for key in curves]
        box.set_class(len(charts) > 3, "wrapped")
        await box.mount_all(charts)
        for chart, (_key, points) in zip(charts, curves.items(), strict=True):
            series = [Series(comp.columns[i], p.x, p.y, run_rgb(comp.run_ids[i]))
                      for i, p in enumerate(points)]
            chart.show(series, force=True)
