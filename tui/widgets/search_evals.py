"""Eval results of searchable runs: a list to pick several from, and one comparison rendered
through the results' view type (rows of every picked result, with a column naming the run)."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Label, SelectionList
from textual.widgets.selection_list import Selection

from ..clock import fmt_age
from .result_view import ResultView
from .tick_list import TickList


def eval_label(rec: Any) -> str:
    return f"{rec.experiment}/{rec.run_number} {rec.checkpoint}"


def comparison(records: list[Any]) -> dict[str, Any] | None:
    """One result for several: same view type -> rows concatenated with a leading run column;
    otherwise the first record alone."""
    if not records:
        return None
    first = records[0]
    same = all(r.view_type == first.view_type for r in records)
    rows_ok = all(isinstance(r.data.get("rows"), list) for r in records)
    if len(records) == 1 or not (same and rows_ok):
        return {"view_type": first.view_type, "summary": first.summary, "data": first.data}
    rows = [{"run": eval_label(r), **row} for r in records for row in r.data["rows"]
            if isinstance(row, dict)]
    return {"view_type": first.view_type, "summary": {}, "data": {"rows": rows}}


class EvalsPane(Vertical):
    """``show(records)`` lists eval results; space picks several; the comparison follows."""

    DEFAULT_CSS = """
    EvalsPane #eval-list { height: auto; max-height: 8; border: round $panel; }
    EvalsPane #eval-compare { height: 1fr; }
    EvalsPane .pane-title { height: 1; color: $text-muted; padding: 0 1; }
    """

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.records: list[Any] = []
        self._shown: tuple = ()

    def compose(self) -> ComposeResult:
        yield TickList[int](id="eval-list")
        yield Label("no eval results yet: v evaluates the selected checkpoint",
                    classes="pane-title", id="eval-title")
        yield Vertical(id="eval-compare")

    def on_mount(self) -> None:
        self.query_one("#eval-list").border_title = "eval results (space: compare)"

    def show(self, records: list[Any]) -> None:
        ids = tuple(r.id for r in records)
        if ids == tuple(r.id for r in self.records):
            return
        sl = self.query_one("#eval-list", SelectionList)
        keep = set(sl.selected) if self.records else set(ids[:1])
        self.records = list(records)
        sl.clear_options()
        for r in records:
            head = "  ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}"
                             for k, v in list(r.summary.items())[:3])
            label = Text.assemble(eval_label(r), "  ", (head, "dim"),
                                  ("  " + fmt_age(r.created), "dim"))
            sl.add_option(Selection(label, r.id, r.id in keep))
        if records:
            sl.highlighted = 0
        self._compare()

    @on(SelectionList.SelectedChanged, "#eval-list")
    def _picked(self) -> None:
        self._compare()

    def _compare(self) -> None:
        chosen = set(self.query_one("#eval-list", SelectionList).selected)
        picked = [r for r in self.records if r.id in chosen]
        key = tuple(r.id for r in picked)
        if key == self._shown and self.query("#eval-compare > ResultView"):
            return
        self._shown = key
        title = self.query_one("#eval-title", Label)
        if not self.records:
            title.update("no eval results yet: v evaluates the selected checkpoint")
        elif not picked:
            title.update("pick results with space to compare them")
        else:
            title.update(f"{len(picked)} of {len(self.records)} results ·"
                         f" view {picked[0].view_type} · ★ best per column")
        box = self.query_one("#eval-compare", Vertical)
        box.remove_children()
        result = comparison(picked)
        if result is not None:
            box.mount(ResultView(result))
