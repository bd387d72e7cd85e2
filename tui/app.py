"""The labdeck Textual app: the areas of ``areas.AREAS`` as modes, a header, global keys,
toasts, live refresh.

Refresh is cheap: a timer probes ``engine.data_version()`` (SQLite's PRAGMA data_version,
which moves only when another connection commits) and the visible screen reloads only then.
"""

from __future__ import annotations

from pathlib import Path

from textual import work
from textual.app import App
from textual.binding import Binding

from engine.api import Engine
from engine.jobs import FINAL

from .areas import AREAS
from .clock import fmt_num
from .commands import LabdeckCommands
from .keymap import load_keymap
from .messages import DataChanged
from .screens.help import HelpScreen
from .widgets.header import LabdeckHeader


class LabdeckApp(App):
    TITLE = "labdeck"
    CSS_PATH = "app.tcss"
    AREAS = AREAS  # the header reads them
    MODES = {a.mode: a.screen for a in AREAS}
    COMMANDS = App.COMMANDS | {LabdeckCommands}
    BINDINGS = [
        *(a.binding for a in AREAS),
        Binding("question_mark", "help", "Help", id="app.help"),
        Binding("ctrl+t", "toggle_theme", "Theme", id="app.theme", show=False),
        Binding("q", "quit", "Quit", id="app.quit"),
    ]

    def __init__(self, engine: Engine | None = None, home: str | Path | None = None,
                 poll_s: float = 0.5, scheduler: bool = False) -> None:
        super().__init__()
        self.engine: Engine = engine  # type: ignore[assignment]
        self._own_engine = engine is None
        self._home = home
        self._embed = scheduler
        self.poll_s = poll_s
        self.header_state = ("", "scheduler: -", "")
        self.compare_refs: list[str | int] = []
        self.selected_jobs_seen: dict[int, str] = {}
        self.palette_cache: dict[str, list] = {"experiments": [], "jobs": []}
        self.ready = False
        self._version: int | None = None
        self._ticks = 0
        self.keymap_overrides: dict[str, str] = {}

    async def on_mount(self) -> None:
        if self.engine is None:
            self.engine = await Engine.open(self._home)
            if self._embed:
                await self.engine.ensure_scheduler()
        self.header_state = (str(self.engine.home), "scheduler: -", "")
        keymap, err = load_keymap(self.engine.home)
        if keymap:
            self.keymap_overrides = keymap
            self.set_keymap(keymap)
        if err:
            self.notify(err, title="keymap", severity="warning")
        await self.switch_mode(AREAS[0].mode)
        self.ready = True
        await self._refresh_header()
        self.set_interval(self.poll_s, self._poll)

    async def on_unmount(self) -> None:
        if self._own_engine and self.engine is not None:
            await self.engine.close()

    # ------------------------------------------------------------------ polling

    def _poll(self) -> None:
        self._probe()

    @work(exclusive=True, group="poll", exit_on_error=False)
    async def _probe(self) -> None:
        self._ticks += 1
        version = await self.engine.data_version()
        changed = version != self._version
        self._version = version
        if changed:
            self.screen.post_message(DataChanged())
            await self._toast_jobs()
        if changed or self._ticks % 10 == 0:
            await self._refresh_header()

    async def _refresh_header(self) -> None:
        st = await self.engine.scheduler_status()
        if st["stopped"]:
            text = f"scheduler: stopped ({st['stopped']})"
        elif st["problem"]:
            text = f"scheduler: retrying ({st['problem']})"
        elif st["ours"]:
            text = f"scheduler: embedded ({st['running']}/{st['limit']} running)"
        elif st["serving"]:
            text = f"scheduler: {st['mode']} pid {st['pid']} ({st['running']} running)"
        else:
            text = f"scheduler: none ({st['queued']} queued)"
        res = await self.engine.resources()
        gpus = f"GPUs {res.busy}/{res.total} busy" if res.total else ""
        self.header_state = (str(self.engine.home), text, gpus)
        for header in self.screen.query(LabdeckHeader):
            header.refresh()

    async def _toast_jobs(self) -> None:
        jobs = await self.engine.list_jobs(limit=100)
        self.palette_cache["jobs"] = jobs
        first = not self.selected_jobs_seen
        for job in jobs:
            before = self.selected_jobs_seen.get(job.id)
            self.selected_jobs_seen[job.id] = job.status
            if first or job.status not in FINAL or before is None or before in FINAL:
                continue
            self.notify(await self._job_line(job), title=f"job {job.id} {job.status}",
                        severity="error" if job.status == "failed" else "information")

    async def _job_line(self, job) -> str:
        if job.type == "train" and job.run_id:
            run = await self.engine.get_run(job.run_id)
            line = f"run {run.number} of {run.experiment} {job.status}"
            summary = await self.engine.run_summary(run.id)
            if run.objective and run.objective in summary:
                s = summary[run.objective]
                line += f": {run.objective} {fmt_num(s.get('last'))}"
                if s.get("last") == s.get("best"):
                    line += " (best)"
            return line
        return f"{job.type} {job.target} {job.status}" + (f": {job.error}" if job.error else "")

    # ------------------------------------------------------------------ actions

    async def action_area(self, name: str) -> None:
        if self.current_mode != name:
            await self.switch_mode(name)
        await self._refresh_header()

    async def open_compare(self, refs: list[str | int]) -> None:
        self.compare_refs = list(refs)
        if self.current_mode == "compare":
            self.screen.post_message(DataChanged())
        await self.action_area("compare")

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(type(self.screen), self.BINDINGS, self.keymap_overrides,
                                        self.COMMAND_PALETTE_BINDING, areas=AREAS))

    def action_toggle_theme(self) -> None:
        self.theme = "textual-light" if self.theme == "textual-dark" else "textual-dark"


async def run_async(home: str | None) -> None:
    """Entry point of ``labdeck`` / ``labdeck tui``: the TUI with an embedded scheduler that
    only claims jobs while no ``labdeck serve`` holds the lease."""
    engine = await Engine.open(home)
    try:
        await engine.ensure_scheduler()
        await LabdeckApp(engine=engine).run_async()
    finally:
        await engine.close()
