"""What every labdeck screen shares: the engine handle, error surfacing, reload on change."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual.binding import ActiveBinding
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Log
from textual.worker import Worker, WorkerState

from ..messages import DataChanged

if TYPE_CHECKING:
    from engine.api import Engine


class EngineMixin:
    """Gives a screen ``self.engine`` and turns a failed worker into a notification."""

    @property
    def engine(self) -> Engine:
        return self.app.engine  # type: ignore[attr-defined]

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR and event.worker.error is not None:
            err = event.worker.error
            self.app.notify(f"{type(err).__name__}: {err}", title="error",  # type: ignore[attr-defined]
                            severity="error", timeout=8)


class AreaScreen(EngineMixin, Screen):
    """A full screen that reloads when the data changed or when it comes back into view."""

    AREA = ""

    @property
    def active_bindings(self) -> dict[str, ActiveBinding]:
        """As Textual's, with the app's Help first: the footer shows keys in this order and
        cuts what does not fit, and ``?`` must be in sight on an 80-column terminal."""
        found = super().active_bindings
        first = [key for key, active in found.items() if active.binding.id == "app.help"]
        return {key: found[key] for key in first} | found

    def reload(self) -> None:  # pragma: no cover - overridden
        pass

    def on_data_changed(self, message: DataChanged) -> None:
        self.reload()

    def on_screen_resume(self) -> None:
        self.reload()


class EngineModal(EngineMixin, ModalScreen):
    pass


def cursor_key(table: DataTable) -> str | None:
    """The row key under the table's cursor; None while the table is empty."""
    if not table.row_count:
        return None
    try:
        return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
    except Exception:  # the rows are being rebuilt
        return None


def mark_sorted(table: DataTable, columns, sort_column: str, reverse: bool) -> None:
    """Column labels with ▲ / ▼ on the one the rows are sorted by."""
    for col in columns:
        label = col + (" ▼" if reverse else " ▲") if col == sort_column else col
        table.columns[col].label = Text(label)  # type: ignore[index]


def follow_tail(log: Log, shown: list[str], lines: list[str]) -> list[str]:
    """Show ``lines`` (a log's latest tail) in ``log``, which shows ``shown``: append what
    is new when the tail only grew, else rewrite it. Returns what the log now shows."""
    if lines == shown:
        return shown
    if shown and lines[:len(shown)] == shown:
        log.write_lines(lines[len(shown):])
    else:
        log.clear()
        log.write_lines(lines)
    return lines
