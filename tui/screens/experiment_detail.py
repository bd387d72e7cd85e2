"""One experiment: its runs (enter opens run detail) and its config."""

from __future__ import annotations

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import DataTable, Footer, Label, Static

from ..clock import elapsed, fmt_age, fmt_duration, fmt_num
from ..colors import run_hex
from ..run_status import arrow, status_text
from ..table_window import TableWindow
from ..widgets.header import LabdeckHeader
from .base import AreaScreen, cursor_key


class ExperimentDetailScreen(AreaScreen):
    AREA = "experiments"
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back", id="experiment.back"),
        Binding("r", "launch", "Run", id="experiment.launch"),
        Binding("x", "cancel_run", "Cancel run", id="experiment.cancel"),
        Binding("space", "select", "Select", id="experiment.select"),
        Binding("c", "compare", "Compare", id="experiment.compare"),
    ]

    def __init__(self, name: str) -> None:
        super().__init__()
        self.exp_name = name
        self.runs: list = []
        self.objective: str | None = None
        self.selected: set[int] = set()
        self.loaded = False
        self.window = TableWindow(self._add_row)

    def compose(self) -> ComposeResult:
        yield LabdeckHeader(self.AREA)
        yield Label(self.exp_name, id="title", classes="title")
        with Horizontal(id="exp-body"):
            yield DataTable(id="runs", cursor_type="row", zebra_stripes=True)
            with VerticalScroll(id="config-pane"):
                yield Static("", id="config")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("", "run", "status", "steps", "objective (last/best)", "duration",
                          "started")
        table.focus()

    def reload(self) -> None:
        self._load()

    @work(exclusive=True, group="experiment", exit_on_error=False)
    async def _load(self) -> None:
        exp = await self.engine.get_experiment(self.exp_name)
        self.runs = await self.engine.list_runs(exp.id)
        self.objective = obj = exp.objective
        self.query_one("#title", Label).update(
            f"{exp.name}  ·  {exp.adapter}  ·  objective {obj or '-'} {arrow(exp.direction) if obj else ''}"
            f"  ·  {len(self.runs)} runs  ·  tags: {' '.join(exp.tags) or '-'}")
        lines = ["[b]config[/b]"] + [f"{k} = {v!r}" for k, v in exp.config.items()]
        if exp.origin:
            lines.append(f"\norigin: {exp.origin}")
        self.query_one("#config", Static).update("\n".join(lines))
        self._fill_runs()
        self.loaded = True

    def _fill_runs(self) -> None:
        table = self.query_one(DataTable)
        row = min(table.cursor_row, len(self.runs) - 1)
        self.window.fill(table, self.runs, keep=max(row, 0))  # 10,000 runs: a page at a time
        if self.runs:
            table.move_cursor(row=row)

    def _add_row(self, table: DataTable, r) -> None:
        s = (r.summary or {}).get(self.objective or "", {})
        objective = f"{fmt_num(s.get('last'))} / {fmt_num(s.get('best'))}" if s else "-"
        mark = Text("●", run_hex(r.id)) if r.id in self.selected else Text("■", run_hex(r.id))
        table.add_row(mark, f"#{r.number}", status_text(r.status, r.progress, r.error, r.message),
                      fmt_num(r.steps), objective, fmt_duration(elapsed(r.started, r.finished)),
                      fmt_age(r.started), key=str(r.id))

    @on(DataTable.RowHighlighted)
    def _near_the_end(self, event: DataTable.RowHighlighted) -> None:
        self.window.more(event.data_table, event.cursor_row)

    def current_run_id(self) -> int | None:
        key = cursor_key(self.query_one(DataTable))
        return None if key is None else int(key)

    @on(DataTable.RowSelected)
    def _open(self, event: DataTable.RowSelected) -> None:
        from .run_detail import RunDetailScreen

        self.app.push_screen(RunDetailScreen(int(str(event.row_key.value))))

    @work(group="experiment-action", exit_on_error=False)
    async def action_launch(self) -> None:
        run_id, job_id = await self.engine.start_run(self.exp_name)
        self.notify(f"queued run {run_id} (job {job_id})")
        self.reload()

    def action_cancel_run(self) -> None:
        from .confirm import ConfirmModal

        rid = self.current_run_id()
        if rid is None:
            return

        def answered(ok: bool | None) -> None:
            if ok:
                self._cancel(rid)

        self.app.push_screen(ConfirmModal(f"Cancel run {rid}?", "Cancel run"), answered)

    @work(group="experiment-action", exit_on_error=False)
    async def _cancel(self, run_id: int) -> None:
        job = await self.engine.cancel_run(run_id)
        self.notify(f"cancel requested (job {job})" if job else "run is not active")
        self.reload()

    def action_select(self) -> None:
        rid = self.current_run_id()
        if rid is not None:
            self.selected ^= {rid}
            self._fill_runs()  # only the mark changes: no need to fetch the runs again

    async def action_compare(self) -> None:
        if len(self.selected) < 2:
            self.notify("select two or more runs with space first", severity="warning")
            return
        # runs by EXPERIMENT/NUMBER: a bare id could be read as an experiment id
        refs = [f"{r.experiment}/{r.number}" for r in self.runs if r.id in self.selected]
        await self.app.open_compare(refs)  # type: ignore[attr-defined]
