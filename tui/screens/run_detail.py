"""Run detail: live charts of chosen metrics, summary, config, log tail, checkpoints, and the
run's actions (cancel, eval / index build from a checkpoint and resume training from one, when
the adapter supports it).

Which ticked metrics get a chart: as many as fit (9 rows each), the latest ticked ones, laid
out in the list's order; a line under them names the ticked ones left out for lack of room,
so a tick never silently takes the place of the chart being watched."""

from __future__ import annotations

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import (
    DataTable,
    Footer,
    Label,
    Log,
    SelectionList,
    Static,
    TabbedContent,
    TabPane,
)
from textual.widgets.selection_list import Selection

from adapters.base import RESUME
from engine.directions import SYSTEM_PREFIX, is_system_key
from engine.jobs import FINAL

from ..clock import elapsed, eta, fmt_age, fmt_duration, fmt_num
from ..colors import run_rgb
from ..keymap import tab_keys
from ..run_status import shown_status, stalled_label, status_text
from ..widgets.header import LabdeckHeader
from ..widgets.metric_chart import MetricChart, Series
from ..widgets.tick_list import TickList
from .base import AreaScreen, cursor_key, follow_tail
from .confirm import ConfirmModal

X_AXES = ("step", "epoch", "wall")
SMOOTHING = (0.0, 0.6, 0.9)
ZOOMS = (None, 1000, 100)
MAX_CHARTS = 4
CHART_ROWS = 9  # the fewest rows a chart stays readable in
# the tabs below the charts (title, id): keys 1-4 open them
TABS = (("summary", "tab-summary"), ("checkpoints", "tab-checkpoints"), ("log", "tab-log"),
        ("config", "tab-config"))


def default_metrics(keys: list[str], objective: str | None) -> list[str]:
    """The objective, else up to two losses, else the first metric; never a system one."""
    if objective in keys:
        return [objective]
    own = [k for k in keys if not is_system_key(k)]
    return [k for k in own if "loss" in k][:2] or own[:1]


def charted(chosen: list[str], keys: list[str], fit: int) -> tuple[list[str], list[str]]:
    """(charted, hidden) of the ticked metrics ``chosen`` (oldest tick first) when ``fit``
    charts fit: the ``fit`` latest ticked are charted; both lists in ``keys``' order."""
    latest = set(chosen[-fit:]) if fit > 0 else set()
    order = [k for k in keys if k in chosen] + [k for k in chosen if k not in keys]
    return [k for k in order if k in latest], [k for k in order if k not in latest]


def hidden_note(hidden: list[str]) -> Text:
    """One line (cut, the names first, where it is too long)."""
    note = Text.assemble((f"no room for {', '.join(hidden)}", "bold"),
                         (" (the latest ticks are charted)", "dim"))
    note.no_wrap, note.overflow = True, "ellipsis"
    return note


def system_last(keys) -> list[str]:
    """The run's own metrics, then the system ones (``sys/...``, a group of their own)."""
    keys = list(keys)
    return [k for k in keys if not is_system_key(k)] + [k for k in keys if is_system_key(k)]


def metric_label(key: str, system_starts: bool = False) -> Text:
    """``train/`` dimmed before the name. System metrics are a group: the first shows
    ``sys/`` in bold, the others are indented under it without it (narrow lists stay
    readable: ``sys/cpu_pct``, ``  gpu0/util_pct``)."""
    group = ""
    if is_system_key(key):
        group = SYSTEM_PREFIX if system_starts else "  "
        key = key[len(SYSTEM_PREFIX):]
    prefix, _, name = key.rpartition("/")
    return Text.assemble((group, "bold"), (prefix + "/" if prefix else "", "dim"), name)


class RunDetailScreen(AreaScreen):
    AREA = "experiments"
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back", id="run.back"),
        Binding("s", "smoothing", "Smooth", id="run.smoothing"),
        Binding("l", "log_y", "Log-y", id="run.log_y"),
        Binding("a", "x_axis", "X-axis", id="run.x_axis"),
        Binding("z", "zoom", "Zoom", id="run.zoom"),
        Binding("x", "cancel", "Cancel", id="run.cancel"),
        Binding("v", "eval", "Eval", id="run.eval"),
        Binding("i", "index", "Index", id="run.index"),
        Binding("delete,D", "delete_checkpoint", "Del ckpt", id="run.delete_checkpoint"),
        Binding("R", "resume", "Resume from", id="run.resume"),
        *tab_keys("run", [t for t, _ in TABS]),
    ]

    def __init__(self, run_id: int) -> None:
        super().__init__()
        self.run_id = run_id
        self.run = None
        self.keys: list[str] = []
        self.chosen: list[str] = []  # ticked metrics, oldest tick first
        self.picked = False  # the user changed the ticks: no defaults over them any more
        self._chart_texts: tuple[str, str] = ("", "")  # the note and empty line shown
        self.smoothing = 0.0
        self.log_y = False
        self.x_axis = "step"
        self.zoom: int | None = None
        self.checkpoints: list[dict] = []
        self.points_seen: dict[str, int] = {}
        self.loaded = False
        self._log_lines: list[str] = []

    def compose(self) -> ComposeResult:
        yield LabdeckHeader(self.AREA)
        yield Label("", id="run-status", classes="title")
        with Horizontal(id="run-top"):
            yield TickList[str](id="metrics")
            yield Vertical(id="charts")
        with TabbedContent(id="run-tabs"):
            with TabPane("1 summary", id="tab-summary"):
                yield DataTable(id="summary", cursor_type="row", zebra_stripes=True)
            with TabPane("2 checkpoints", id="tab-checkpoints"):
                yield DataTable(id="checkpoints", cursor_type="row")
            with TabPane("3 log", id="tab-log"):
                yield Log(id="log", max_lines=2000)
            with TabPane("4 config", id="tab-config"):
                yield Static("", id="run-config")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#metrics").border_title = "metrics (space)"
        self.query_one("#summary", DataTable).add_columns(
            "metric", "last", "best", "min", "max", "best step", "points")
        self.query_one("#checkpoints", DataTable).add_columns("name", "size", "step", "saved")
        self.query_one("#metrics").focus()

    def reload(self) -> None:
        self._load()

    def on_resize(self, event) -> None:
        self.set_class(event.size.height < 32 or event.size.width < 100, "compact")
        if self.loaded:
            self._redraw()

    # ------------------------------------------------------------------ loading

    @work(exclusive=True, group="run", exit_on_error=False)
    async def _load(self) -> None:
        engine = self.engine
        # until one load has run to its end (a reload cancels the one in flight), each
        # load fills everything
        first = not self.loaded
        was_final = self.loaded and self.run is not None and self.run.status in FINAL
        self.run = run = await engine.get_run(self.run_id)
        keys = await engine.metric_keys(run.id)
        if keys != self.keys:
            if first or not (self.chosen or self.picked):
                self.chosen = default_metrics(keys, run.objective)
            self.keys = keys
            self._fill_metric_list()
        self._status_line()
        if first or not was_final:
            await self._load_summary()
            await self._load_log()
            self.checkpoints = await engine.list_checkpoints(run.id)
            self._fill_checkpoints()
        if first:
            self.query_one("#run-config", Static).update(
                "\n".join(f"{k} = {v!r}" for k, v in run.config.items()) or "-")
        await self._load_charts()
        self.loaded = True

    def _fill_metric_list(self) -> None:
        sl = self.query_one("#metrics", SelectionList)
        at = sl.highlighted
        was = sl.get_option_at_index(at).value if at is not None else None
        sl.clear_options()
        keys = system_last(self.keys)
        first_system = next((k for k in keys if is_system_key(k)), None)
        for key in keys:
            sl.add_option(Selection(metric_label(key, key == first_system), key,
                                    key in self.chosen))
        # a row under the cursor from the start (space ticks it), the same one after a refill
        if keys:
            sl.highlighted = keys.index(was) if was in keys else 0

    def _status_line(self) -> None:
        r = self.run
        parts = [r.label, str(status_text(r.status, r.progress, r.error, r.message))]
        stalled = stalled_label(r.status, r.last_output, self.engine.settings.stall_warn_s)
        if stalled:
            parts.append(stalled)
        if r.progress is not None and r.status == "running":
            parts.append(f"ETA {fmt_duration(eta(r.started, r.finished, r.status, r.progress))}")
        parts.append(f"{fmt_duration(elapsed(r.started, r.finished))}")
        if r.pid and r.status == "running":
            parts.append(f"pid {r.pid}")
        if r.error:
            pruned = shown_status(r.status, r.error) == "pruned"
            parts.append(r.error if pruned else f"error: {r.error}")
        self.query_one("#run-status", Label).update("  ".join(parts))

    async def _load_summary(self) -> None:
        summary = await self.engine.run_summary(self.run_id)
        table = self.query_one("#summary", DataTable)
        table.clear()
        for key in system_last(sorted(summary)):
            s = summary[key]
            table.add_row(key, fmt_num(s.get("last")), fmt_num(s.get("best")),
                          fmt_num(s.get("min")), fmt_num(s.get("max")),
                          fmt_num(s.get("best_step")), fmt_num(s.get("count")))

    async def _load_log(self) -> None:
        lines = await self.engine.log_tail(self.run_id, lines=300)
        self._log_lines = follow_tail(self.query_one("#log", Log), self._log_lines, lines)

    def _fill_checkpoints(self) -> None:
        table = self.query_one("#checkpoints", DataTable)
        table.clear()
        for c in self.checkpoints:
            size = c["size"]
            human = f"{size / 1e6:.1f} MB" if size >= 1e5 else f"{size / 1e3:.1f} kB"
            table.add_row(c["name"], human, fmt_num(c["step"]), fmt_age(c["mtime"]),
                          key=c["name"])

    def _empty_text(self) -> str:
        if not self.keys:
            done = self.run is not None and self.run.status in FINAL
            return "this run logged no metrics" if done else "no metrics yet"
        return "no metric selected: tick one with space"

    async def _load_charts(self, force: bool = False) -> None:
        box = self.query_one("#charts", Vertical)
        height = box.size.height
        # as many charts as stay readable; the rest wait for a taller terminal (or a swap)
        fit = min(MAX_CHARTS, max(1, height // CHART_ROWS)) if height else MAX_CHARTS
        if len(self.chosen) > fit and height:  # the note line takes a row
            fit = min(MAX_CHARTS, max(1, (height - 1) // CHART_ROWS))
        keys, hidden = charted(self.chosen, system_last(self.keys), fit)
        texts = (hidden_note(hidden).plain if hidden else "",
                 "" if keys else self._empty_text())
        charts = list(box.query(MetricChart))
        if [c.key for c in charts] != keys or texts != self._chart_texts:
            await box.remove_children()
            charts = [MetricChart(k) for k in keys]
            extra = ([Static(hidden_note(hidden), classes="chart-note")] if hidden else []) + (
                [Static(Text(texts[1]), classes="empty")] if texts[1] else [])
            await box.mount_all([*charts, *extra])
            self._chart_texts = texts
            force = True
        width = max(40, box.size.width)
        opts = (f"smooth {self.smoothing}  log-y {'on' if self.log_y else 'off'}  "
                f"x {self.x_axis}" + (f"  last {self.zoom}" if self.zoom else ""))
        for chart in charts:
            pts = await self.engine.read_metric(self.run_id, chart.key, max_points=width * 2,
                                                x=self.x_axis, last_n_steps=self.zoom)
            chart.show([Series(self.run.label, pts.x, pts.y, run_rgb(self.run_id))],
                       smoothing=self.smoothing, log_y=self.log_y, x_label=self.x_axis,
                       title=f"{chart.key}  {opts}", force=force)

    @on(SelectionList.SelectedChanged, "#metrics")
    def _chosen(self, event: SelectionList.SelectedChanged) -> None:
        ticked = set(event.selection_list.selected)
        if ticked != set(self.chosen):
            # earlier ticks keep their turn, new ones are the latest (in list order)
            kept = [k for k in self.chosen if k in ticked]
            self.chosen = kept + [k for k in system_last(self.keys)
                                  if k in ticked and k not in kept]
            self.picked = True
            self._redraw()

    @work(exclusive=True, group="charts", exit_on_error=False)
    async def _redraw(self) -> None:
        self._status_line()
        await self._load_charts(force=True)

    # ------------------------------------------------------------------ chart options

    def action_smoothing(self) -> None:
        self.smoothing = SMOOTHING[(SMOOTHING.index(self.smoothing) + 1) % len(SMOOTHING)]
        self._redraw()

    def action_log_y(self) -> None:
        self.log_y = not self.log_y
        self._redraw()

    def action_x_axis(self) -> None:
        self.x_axis = X_AXES[(X_AXES.index(self.x_axis) + 1) % len(X_AXES)]
        self._redraw()

    def action_zoom(self) -> None:
        self.zoom = ZOOMS[(ZOOMS.index(self.zoom) + 1) % len(ZOOMS)]
        self._redraw()

    # ------------------------------------------------------------------ run actions

    def action_cancel(self) -> None:
        if self.run is None or self.run.status in FINAL:
            self.notify("the run is not active", severity="warning")
            return

        def answered(ok: bool | None) -> None:
            if ok:
                self._cancel()

        self.app.push_screen(ConfirmModal(f"Cancel {self.run.label}?", "Cancel run"), answered)

    @work(group="run-action", exit_on_error=False)
    async def _cancel(self) -> None:
        job = await self.engine.cancel_run(self.run_id)
        self.notify(f"cancel requested (job {job})" if job else "run is not active")
        self.reload()

    def _selected_checkpoint(self) -> str | None:
        return cursor_key(self.query_one("#checkpoints", DataTable))

    def action_eval(self) -> None:
        self._submit("evaluate")

    def action_index(self) -> None:
        self._submit("index")

    @work(group="run-action", exit_on_error=False)
    async def _submit(self, capability: str) -> None:
        cls = self.engine.adapter_class(self.run.adapter)
        if not cls.supports(capability):
            self.notify(f"adapter {self.run.adapter} does not support {capability}",
                        severity="warning")
            return
        ckpt = self._selected_checkpoint()
        if capability == "evaluate":
            job = await self.engine.start_eval(self.run_id, ckpt)
        else:
            job = await self.engine.start_index_build(self.run_id, ckpt)
        self.notify(f"queued {capability} job {job} ({ckpt or 'default checkpoint'})")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "resume":  # offered (and in the footer) where the checkpoints are shown
            return self.query_one(TabbedContent).active == "tab-checkpoints"
        return True

    def action_tab(self, index: int) -> None:
        self.query_one("#run-tabs", TabbedContent).active = TABS[index - 1][1]

    @on(TabbedContent.TabActivated)
    def _tab_changed(self) -> None:
        self.refresh_bindings()

    def action_resume(self) -> None:
        name = self._selected_checkpoint()
        if self.run is None or name is None:
            self.notify("no checkpoint to resume from", severity="warning")
            return
        self._resume(name)

    @work(group="run-action", exit_on_error=False)
    async def _resume(self, name: str) -> None:
        """A new run of this experiment that continues from checkpoint ``name`` of this run."""
        if not self.engine.adapter_class(self.run.adapter).supports(RESUME):
            self.notify(f"adapter {self.run.adapter} cannot resume from a checkpoint",
                        severity="warning")
            return
        run_id, job_id = await self.engine.start_run(self.run.experiment_id,
                                                     resume_from=f"{self.run_id}:{name}")
        new = await self.engine.get_run(run_id)
        self.notify(f"launched {new.label} resuming from {self.run.label} {name} (job {job_id})")

    def action_delete_checkpoint(self) -> None:
        name = self._selected_checkpoint()
        if name is None:
            self.notify("no checkpoint to delete", severity="warning")
            return
        self.query_one(TabbedContent).active = "tab-checkpoints"

        def answered(ok: bool | None) -> None:
            if ok:
                self._delete_checkpoint(name)

        self.app.push_screen(ConfirmModal(f"Delete checkpoint {name}?", "Delete"), answered)

    @work(group="run-action", exit_on_error=False)
    async def _delete_checkpoint(self, name: str) -> None:
        await self.engine.delete_checkpoint(self.run_id, name)
        self.notify(f"deleted checkpoint {name}")
        self.checkpoints = await self.engine.list_checkpoints(self.run_id)
        self._fill_checkpoints()
