"""The labdeck Textual app: the areas of ``areas.AREAS`` as modes, a header, global keys,
toasts, live refresh.

Refresh is cheap: a timer probes ``engine.data_version()`` (SQLite's PRAGMA data_version,
which moves only when another connection commits) and the visible screen reloads only then.

Toasts: one per job end, and a toast never stacks on an identical one still showing (a key
pressed again on an empty list restarts its toast). The theme (ctrl+t, or the palette's
"Change theme") is kept in ``<home>/tui.json`` and comes back on the next start.
"""

from __future__ import annotations

import json
from pathlib import Path

from textual import work
from textual.app import App
from textual.binding import Binding
from textual.notifications import Notify

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
        theme = load_theme(self.engine.home)
        if theme in self.available_themes:
            self.theme = theme
        self.theme_changed_signal.subscribe(self, self._theme_changed)
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
            # one toast: what ended and how, titled with the job that did it
            self.notify(await self._job_line(job), title=f"job {job.id}",
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
        # a target may name its kind already ("study lr-search"): say it once
        what = job.target if job.target.startswith(f"{job.type} ") else (
            f"{job.type} {job.target}")
        return f"{what} {job.status}" + (f": {job.error}" if job.error else "")

    def _on_notify(self, event: Notify) -> None:
        """Runs before App's own handler, which shows ``event``'s toast: an identical toast
        still showing goes first, so the new one restarts it rather than stacking on it."""
        new = event.notification
        for old in list(self._notifications):
            if (old.message, old.title, old.severity) == (new.message, new.title,
                                                          new.severity):
                self._unnotify(old, refresh=False)

    # ------------------------------------------------------------------ actions

    async def action_area(self, name: str) -> None:
        """Open area ``name`` where it was left; its own key inside it goes back to its
        first screen (E in run detail: the experiments list)."""
        if self.current_mode != name:
            await self.switch_mode(name)
        elif len(self.screen_stack) > 1:
            self.screen_stack[0].pop_until_active()
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

    def _theme_changed(self, theme) -> None:
        try:
            save_theme(self.engine.home, theme.name)
        except OSError as exc:
            self.notify(f"could not keep the theme: {exc}", title="theme", severity="warning")


PREFERENCES = "tui.json"  # in the home: what the TUI keeps between starts ({"theme": ...})


def load_theme(home: Path) -> str | None:
    """The theme kept by the last session, if any (an unreadable file is no theme)."""
    try:
        data = json.loads((Path(home) / PREFERENCES).read_text())
    except (OSError, ValueError):
        return None
    theme = data.get("theme") if isinstance(data, dict) else None
    return theme if isinstance(theme, str) else None


def save_theme(home: Path, theme: str) -> None:
    path = Path(home) / PREFERENCES
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        data = {}
    if not isinstance(data, dict):
        data = {}
    if data.get("theme") == theme:
        return
    data["theme"] = theme
    tmp = path.with_name(f".{PREFERENCES}.tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    tmp.replace(path)


async def run_async(home: str | None) -> None:
    """Entry point of ``labdeck`` / ``labdeck tui``: the TUI with an embedded scheduler that
    only claims jobs while no ``labdeck serve`` holds the lease."""
    engine = await Engine.open(home)
    try:
        await engine.ensure_scheduler()
        await LabdeckApp(engine=engine).run_async()
    finally:
        await engine.close()
