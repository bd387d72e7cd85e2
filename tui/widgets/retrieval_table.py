"""The ``retrieval_table`` result view: one row per setting (bits, method...), one column per
retrieval metric, the best value of each metric column marked ★ (higher is better).

Registered like any third-party view, in the ``labdeck.result_views`` entry-point group.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable, Label

SETTINGS = ("bits", "direction")  # columns that name a setting, not a metric


def best_per_column(rows: list[dict[str, Any]], columns: list[str]) -> dict[str, int]:
    """Row index of the highest numeric value per column (retrieval metrics: higher is better)."""
    best: dict[str, int] = {}
    for col in columns:
        vals = [(i, r.get(col)) for i, r in enumerate(rows)
                if isinstance(r.get(col), (int, float)) and not isinstance(r.get(col), bool)]
        if len({v for _, v in vals}) > 1:
            best[col] = max(vals, key=lambda p: p[1])[0]
    return best


class RetrievalTable(Vertical):
    """``{"view_type": "retrieval_table", "summary": {...}, "data": {"rows": [{...}, ...]}}``"""

    @staticmethod
    def accepts(result: dict[str, Any]) -> bool:
        data = result.get("data")
        return isinstance(data, dict) and isinstance(data.get("rows"), list)

    def __init__(self, result: dict[str, Any], **kw) -> None:
        super().__init__(**kw)
        self.result = result

    def compose(self) -> ComposeResult:
        r = self.result
        rows = [row for row in r["data"]["rows"] if isinstance(row, dict)]
        if r.get("summary"):
            yield Label("summary: " + "  ".join(
                f"{k}={_fmt(v)}" for k, v in r["summary"].items()))
        table: DataTable = DataTable(id="result-table", zebra_stripes=True)
        columns = list(dict.fromkeys(k for row in rows for k in row))
        best = best_per_column(rows, [c for c in columns if c not in SETTINGS])
        table.add_columns(*columns)
        for i, row in enumerate(rows):
            cells = []
            for c in columns:
                text = _fmt(row.get(c))
                cells.append(Text(text + " ★", "bold green") if best.get(c) == i else text)
            table.add_row(*cells)
        yield table


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return "-" if v is None else str(v)
