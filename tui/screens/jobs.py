"""Jobs area: every job with its progress, elapsed time and ETA; filter, cancel, detail."""

from __future__ import annotations

from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Footer, Label

from engine.jobs import FINAL

from ..clock import elapsed, eta, fmt_duration
from ..job_resources import devices_cell, message_cell
from ..run_status import stalled_label, status_text, steps_text
from ..widgets.header import LabdeckHeader
from .base import AreaScreen, cursor_key
from .job_actions import confirm_cancel_job
from .job_detail import JobDetailScreen
from .job_filter import JobFilter

COLUMNS = ("id", "type", "target", "status", "progress", "elapsed", "ETA", "message")
# shown once any job asks for GPUs or was placed on a machine that has some
GPU_COLUMNS = ("id", "type", "target", "status", "devices", "progress", "elapsed", "ETA",
               "message")


def progress_cell(fraction: float, width: int = 10, message: str = "",
                  running: bool = False) -> Table | Text:
    """A bar with its percentage; for a running job with no total (no fraction, a message
    that counts steps: a script) its step and rate instead of a bar stuck at 0%."""
    steps = steps_text(message) if running and not fraction else None
    if steps:
        return Text(steps, "cyan")
    grid = Table.grid(padding=(0, 1))
    grid.add_row(ProgressBar(total=1.0, completed=fraction, width=width),
                 Text(f"{fraction * 100:3.0f}%"))
    return grid


class JobsScreen(AreaScreen):
    AREA = "jobs"
    BINDINGS = [
        Binding("x", "cancel", "Cancel", id="jobs.cancel"),
        Binding("f", "filter", "Filter", id="jobs.filter"),
        Binding("enter", "open", "Detail", id="jobs.open", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.jobs: list = []
        self.status_filter: str | None = None
        self.type_filter: str | None = None
        self.loaded = False
        self.columns: tuple[str, ...] = ()

    def compose(self) -> ComposeResult:
        yield LabdeckHeader(self.AREA)
        yield Label("", id="jobs-info", classes="title")
        yield DataTable(id="jobs", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        self._set_columns(COLUMNS)
        self.query_one(DataTable).focus()
        self.set_interval(1.0, self._tick)

    def _tick(self) -> None:
        # elapsed/ETA move even when nothing is committed; redraw only while work runs
        if any(j.status == "running" for j in self.jobs) and self.is_current:
            self._render_table()

    def reload(self) -> None:
        self._load()

    @work(exclusive=True, group="jobs", exit_on_error=False)
    async def _load(self) -> None:
        self.jobs = await self.engine.list_jobs(status=self.status_filter, type=self.type_filter)
        self._render_table()
        self.loaded = True

    def _set_columns(self, columns: tuple[str, ...]) -> None:
        table = self.query_one(DataTable)
        table.clear(columns=True)
        for col in columns:
            table.add_column(col, key=col)
        self.columns = columns

    def _render_table(self) -> None:
        gpu = any(j.gpus or j.devices is not None for j in self.jobs)
        if (GPU_COLUMNS if gpu else COLUMNS) != self.columns:
            self._set_columns(GPU_COLUMNS if gpu else COLUMNS)
        table = self.query_one(DataTable)
        row = table.cursor_row
        table.clear()
        for j in self.jobs:
            stalled = stalled_label(j.status, j.last_output, self.engine.settings.stall_warn_s)
            message = message_cell(j)
            message.truncate(60)
            cells = {"id": str(j.id), "type": j.type, "target": j.target,
                     "status": status_text(j.status, stalled=stalled), "devices": devices_cell(j),
                     "progress": progress_cell(j.progress or 0.0, message=j.message,
                                               running=j.status == "running"),
                     "elapsed": fmt_duration(elapsed(j.started, j.finished)),
                     "ETA": fmt_duration(eta(j.started, j.finished, j.status, j.progress)),
                     "message": message}
            table.add_row(*(cells[c] for c in self.columns), key=str(j.id))
        if self.jobs:
            table.move_cursor(row=min(row, len(self.jobs) - 1))
        active = sum(j.status not in FINAL for j in self.jobs)
        filt = " ".join(f for f in (self.status_filter, self.type_filter) if f) or "all"
        self.query_one("#jobs-info", Label).update(
            f"{len(self.jobs)} jobs ({active} active)   filter: {filt}   enter detail  x cancel")

    def current_job_id(self) -> int | None:
        key = cursor_key(self.query_one(DataTable))
        return None if key is None else int(key)

    @on(DataTable.RowSelected)
    def _selected(self) -> None:
        self.action_open()

    def action_open(self) -> None:
        jid = self.current_job_id()
        if jid is not None:
            self.app.push_screen(JobDetailScreen(jid))

    def action_cancel(self) -> None:
        jid = self.current_job_id()
        if jid is not None:
            confirm_cancel_job(self.app, jid)

    def action_filter(self) -> None:
        def chosen(value: tuple[str | None, str | None] | None) -> None:
            if value is not None:
                self.status_filter, self.type_filter = value
                self.reload()

        types = sorted({j.type for j in self.jobs} | {"train", "eval", "index_build", "study"})
        self.app.push_screen(JobFilter(self.status_filter, self.type_filter, types), chosen)
