"""A long list in a DataTable a page at a time: the first PAGE rows are drawn, and moving the
cursor onto the last drawn row draws the next page. Filtering and sorting work on the whole
list in memory (cheap); what is costly at 10,000 rows is the table itself (adding, measuring
and laying out every row on each keystroke), so only what can be seen soon is drawn.
bench/scale.py measures it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from textual.widgets import DataTable

PAGE = 300  # rows drawn at once: many screens' worth, a few ms to add


class TableWindow:
    """Draws ``rows`` into ``table`` through ``add(table, row)``, a page at a time."""

    def __init__(self, add: Callable[[DataTable, Any], None], page: int = PAGE) -> None:
        self.add = add
        self.page = page
        self.rows: Sequence[Any] = ()
        self.shown = 0

    def fill(self, table: DataTable, rows: Sequence[Any], keep: int | None = None) -> None:
        """Clear the table and draw the first page of ``rows`` (at least up to index ``keep``,
        the row the cursor should stay on)."""
        self.rows = rows
        table.clear()
        self.shown = 0
        want = self.page if keep is None else max(self.page, (keep // self.page + 1) * self.page)
        self._draw(table, want)

    def more(self, table: DataTable, cursor_row: int) -> bool:
        """Draw the next page when the cursor is on the last drawn row; True if it did."""
        if self.shown < len(self.rows) and cursor_row >= self.shown - 1:
            self._draw(table, self.shown + self.page)
            return True
        return False

    def _draw(self, table: DataTable, upto: int) -> None:
        for row in self.rows[self.shown:upto]:
            self.add(table, row)
        self.shown = min(upto, len(self.rows))

    def note(self) -> str:
        """What the count line adds while part of the list is drawn."""
        if self.shown >= len(self.rows):
            return ""
        return f"  (first {self.shown:,} drawn; ↓ past them draws more)"
