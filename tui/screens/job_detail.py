"""One job: its resources (GPUs asked for and given, why it waits), params, a log tail that
follows, and the result view."""

from __future__ import annotations

import json

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Footer, Label, Log, Static, TabbedContent, TabPane

from engine.jobs import FINAL

from ..clock import elapsed, fmt_duration
from ..job_resources import resources_line
from ..keymap import tab_keys
from ..widgets.header import LabdeckHeader
from ..widgets.result_view import ResultView
from .base import AreaScreen, follow_tail
from .job_actions import confirm_cancel_job

# its tabs (title, id): keys 1-3 open them
TABS = (("log", "tab-log"), ("result", "tab-result"), ("params", "tab-params"))


class JobDetailScreen(AreaScreen):
    AREA = "jobs"
    BINDINGS = [Binding("escape", "app.pop_screen", "Back", id="job.back"),
                Binding("x", "cancel", "Cancel", id="job.cancel"),
                *tab_keys("job", [t for t, _ in TABS])]

    def __init__(self, job_id: int) -> None:
        super().__init__()
        self.job_id = job_id
        self.job = None
        self._lines: list[str] = []
        self._result_shown = False
        self.loaded = False

    def compose(self) -> ComposeResult:
        yield LabdeckHeader(self.AREA)
        yield Label("", id="job-title", classes="title")
        yield Label("", id="job-resources", classes="title")
        with TabbedContent(id="job-tabs"):
            with TabPane("1 log", id="tab-log"):
                yield Log(id="job-log", max_lines=5000)
            with TabPane("2 result", id="tab-result"):
                yield Vertical(id="result-box")
            with TabPane("3 params", id="tab-params"):
                yield Static("", id="job-params")
        yield Footer()

    def reload(self) -> None:
        self._load()

    @work(exclusive=True, group="job", exit_on_error=False)
    async def _load(self) -> None:
        job = self.job = await self.engine.get_job(self.job_id)
        self.query_one("#job-title", Label).update(
            f"job {job.id}  {job.type}  {job.target}  {job.status}  "
            f"{(job.progress or 0) * 100:.0f}%  {fmt_duration(elapsed(job.started, job.finished))}"
            f"  {job.error or job.message or ''}")
        gpus = resources_line(job)
        line = self.query_one("#job-resources", Label)
        line.display = bool(gpus)
        line.update(gpus)
        self.query_one("#job-params", Static).update(
            json.dumps(job.params, indent=2, sort_keys=True) if job.params else "(no params)")
        lines = await self.engine.log_tail(job_id=job.id, lines=500)
        self._lines = follow_tail(self.query_one("#job-log", Log), self._lines, lines)
        if not self._result_shown and (job.status in FINAL or job.result is not None):
            box = self.query_one("#result-box", Vertical)
            await box.remove_children()
            await box.mount(ResultView(job.result))
            self._result_shown = job.status in FINAL
        self.loaded = True

    def on_mount(self) -> None:
        self.query_one("#job-resources").display = False

    def action_tab(self, index: int) -> None:
        self.query_one("#job-tabs", TabbedContent).active = TABS[index - 1][1]

    def action_cancel(self) -> None:
        confirm_cancel_job(self.app, self.job_id)
