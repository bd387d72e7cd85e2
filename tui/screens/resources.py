"""GPUs area: one card per GPU (utilisation and memory bars, the labdeck job that holds it,
foreign processes, why the scheduler may not use it) and the jobs waiting for devices.

Utilisation moves without any database write, so besides reloading on DataChanged the area
re-reads the engine's snapshot on a short timer while it is the screen in view.
"""

from __future__ import annotations

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Footer, Label, OptionList, Static
from textual.widgets.option_list import Option

from engine.resources import Resources, WaitingJob

from ..widgets.gpu_card import GpuCard, blocked
from ..widgets.header import LabdeckHeader
from .base import AreaScreen
from .job_actions import confirm_cancel_job
from .job_detail import JobDetailScreen

REFRESH_S = 2.0


def no_gpu_line(nvml: str) -> str:
    """Why the machine shows no device, calmly: a CPU-only machine is a normal case."""
    why = "" if nvml in ("ok", "no GPU") else f" ({nvml})"
    return f"no GPU{why}: jobs run on the CPU"


def waiting_entry(w: WaitingJob) -> Text:
    """``job 12  train  exp › run 3  asks 2 GPUs`` and, below, why it waits (wrapped)."""
    asks = f"asks {w.gpus} GPU{'s' * (w.gpus != 1)}" if w.gpus else "CPU"
    return Text.assemble(("job ", "bold"), (str(w.job_id), "bold"), f"  {w.type}  {w.target}  ",
                         (asks, "dim"), "\n  ", (w.reason, "yellow"))


def summary_line(res: Resources) -> str:
    waiting = len(res.waiting)
    queue = f"{waiting} job{'s' * (waiting != 1)} waiting" if waiting else "no job waiting"
    if not res.gpus:
        return queue
    free = sum(1 for g in res.gpus if g.usable and not g.held_by)
    unusable = sum(1 for g in res.gpus if blocked(g))
    return (f"{res.total} GPU{'s' * (res.total != 1)}  {res.busy} busy  {free} free"
            + (f"  {unusable} unusable" if unusable else "")
            + f"   {queue}   enter: the job")


class ResourcesScreen(AreaScreen):
    AREA = "resources"
    BINDINGS = [
        Binding("enter", "open", "Job", id="resources.open", show=False),
        Binding("x", "cancel", "Cancel job", id="resources.cancel"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.resources: Resources | None = None
        self.job_labels: dict[int, str] = {}
        self.loaded = False

    def compose(self) -> ComposeResult:
        yield LabdeckHeader(self.AREA)
        yield Label("", id="res-info", classes="title")
        yield Static("", id="no-gpu", classes="empty")
        yield OptionList(id="gpus")
        yield Label("", id="waiting-title", classes="title")
        yield OptionList(id="waiting")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#no-gpu").display = False
        self.query_one("#gpus").focus()
        self.set_interval(REFRESH_S, self._tick)

    def _tick(self) -> None:
        if self.is_current:
            self._load()

    def reload(self) -> None:
        self._load()

    @work(exclusive=True, group="resources", exit_on_error=False)
    async def _load(self) -> None:
        res = await self.engine.resources()
        held = {j for g in res.gpus for j in g.held_by}
        held |= {p.job_id for g in res.gpus for p in g.processes if p.job_id is not None}
        if held - set(self.job_labels):
            jobs = await self.engine.list_jobs(status="running")
            self.job_labels = {j.id: f"{j.type}  {j.target}" for j in jobs}
        self.resources = res
        self._show(res)
        self.loaded = True

    def _show(self, res: Resources) -> None:
        self.query_one("#res-info", Label).update(summary_line(res))
        none = self.query_one("#no-gpu", Static)
        none.display = not res.gpus
        none.update(no_gpu_line(res.nvml))
        gpus = self.query_one("#gpus", OptionList)
        gpus.display = bool(res.gpus)
        _refill(gpus, [Option(GpuCard(g, self.job_labels), id=str(g.index)) for g in res.gpus],
                rules=True)
        self.query_one("#waiting-title", Label).update(
            f"queued jobs ({len(res.waiting)})" if res.waiting else "queued jobs: none")
        _refill(self.query_one("#waiting", OptionList),
                [Option(waiting_entry(w), id=str(w.job_id)) for w in res.waiting])
        if not res.gpus and gpus.has_focus:
            self.query_one("#waiting").focus()

    # ------------------------------------------------------------------ actions

    def current_job_id(self) -> int | None:
        """The job under the cursor: the one holding the highlighted GPU, or the highlighted
        waiting job."""
        waiting = self.query_one("#waiting", OptionList)
        if waiting.has_focus:
            at = waiting.highlighted
            option_id = None if at is None else waiting.get_option_at_index(at).id
            return int(option_id) if option_id else None
        gpus = self.query_one("#gpus", OptionList)
        if self.resources is None or gpus.highlighted is None:
            return None
        option = gpus.get_option_at_index(gpus.highlighted)
        gpu = next((g for g in self.resources.gpus if str(g.index) == option.id), None)
        if gpu is None:
            return None
        jobs = [*gpu.held_by, *(p.job_id for p in gpu.processes if p.job_id is not None)]
        return jobs[0] if jobs else None

    @on(OptionList.OptionSelected)
    def _selected(self) -> None:
        self.action_open()

    def action_open(self) -> None:
        job_id = self.current_job_id()
        if job_id is None:
            self.notify("no labdeck job holds this GPU")
            return
        self.app.push_screen(JobDetailScreen(job_id))

    def action_cancel(self) -> None:
        job_id = self.current_job_id()
        if job_id is None:
            self.notify("no labdeck job holds this GPU")
            return
        confirm_cancel_job(self.app, job_id)


def _refill(options: OptionList, entries: list[Option], rules: bool = False) -> None:
    """Replace the entries (with a rule between them), keeping the highlight where it was."""
    at = options.highlighted
    shown: list[Option | None] = []
    for entry in entries:
        shown += [entry, None] if rules else [entry]
    options.set_options(shown[:-1] if rules else shown)
    if entries:
        options.highlighted = min(at or 0, len(entries) - 1)
