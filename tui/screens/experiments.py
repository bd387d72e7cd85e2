"""Experiments area: the table (sort, filter, select), and the actions on an experiment.

An empty home says what to do next. Loads are never cancelled by newer changes (a run's
heartbeat commits every second): a change during a load asks for one more load after it, so
the rows are fresh however slow the query, also when the screen comes back into view."""

from __future__ import annotations

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import DataTable, Footer, Input, Label, Static

from ..clock import fmt_age, fmt_num
from ..filtering import matches
from ..run_status import arrow, status_text
from ..table_window import TableWindow
from ..widgets.header import LabdeckHeader
from .base import AreaScreen, cursor_key, mark_sorted
from .confirm import ConfirmModal

COLUMNS = ("✓", "name", "adapter", "runs", "last run", "best objective", "updated")
SORT_KEYS = {
    "name": lambda e: e.name.lower(), "adapter": lambda e: e.adapter,
    "runs": lambda e: e.runs, "last run": lambda e: e.last_status or "",
    "best objective": lambda e: (e.best_value is None, e.best_value or 0.0),
    "updated": lambda e: -e.updated}
EMPTY_HINT = (
    "[b]No experiments yet.[/b]\n\n"
    "  [b]n[/b]             create one (the script adapter runs any command)\n"
    "  [b]labdeck demo[/b]  in a shell: a demo home with example experiments and runs\n"
    "  [b]?[/b]             every key     [b]ctrl+p[/b]  every action")


def last_run_text(e) -> Text:
    if not e.last_status:
        return Text("-", "dim")
    return status_text(e.last_status, e.last_progress, e.last_error, e.last_message)


def best_text(e) -> str:
    if not e.objective:
        return "-"
    return f"{e.objective} {arrow(e.direction)} {fmt_num(e.best_value)}"


class ExperimentsScreen(AreaScreen):
    AREA = "experiments"
    # in the footer's order: what a newcomer needs first (80 columns show about seven)
    BINDINGS = [
        Binding("n", "new", "New", id="experiments.new"),
        Binding("r", "launch", "Run", id="experiments.launch"),
        Binding("slash", "filter", "Filter", id="experiments.filter"),
        Binding("e", "edit", "Edit", id="experiments.edit"),
        Binding("space", "select", "Select", id="experiments.select"),
        Binding("c", "compare", "Compare", id="experiments.compare"),
        Binding("g", "latest_run", "Curves", id="experiments.latest_run"),
        Binding("d", "duplicate", "Dup", id="experiments.duplicate"),
        Binding("delete,D", "delete", "Delete", id="experiments.delete"),
        Binding("o", "sort", "Sort", id="experiments.sort"),
        Binding("escape", "clear_filter", "Clear", id="experiments.clear_filter", show=False),
        Binding("t", "new_study", "Study", id="experiments.new_study", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.experiments: list = []
        self.selected: set[str] = set()
        self.sort_column = "updated"
        self.sort_reverse = False
        self.loaded = False
        self._loading = False  # a load is running: a reload asks for one more after it
        self._load_again = False
        self.window = TableWindow(self._add_row)  # long lists are drawn a page at a time

    def compose(self) -> ComposeResult:
        yield LabdeckHeader(self.AREA)
        with Horizontal(classes="filterbar"):
            yield Input(placeholder="/ filter: name tag:x adapter:x status:x lr>1e-3",
                        id="filter")
            yield Label("", id="count")
        yield DataTable(id="experiments", cursor_type="row", zebra_stripes=True)
        yield Static(EMPTY_HINT, id="empty-hint")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for col in COLUMNS:
            table.add_column(col, key=col)
        table.focus()
        hint = self.query_one("#empty-hint", Static)
        hint.display = False
        hint.styles.padding = (1, 2)

    def reload(self) -> None:
        if self._loading:
            self._load_again = True
            return
        self._loading = True
        self._load()

    @work(group="experiments", exit_on_error=False)
    async def _load(self) -> None:
        try:
            again = True
            while again:
                self._load_again = False
                self.experiments = await self.engine.list_experiments()
                self.app.palette_cache["experiments"] = self.experiments  # type: ignore[attr-defined]
                self._render_table()
                self.loaded = True
                again = self._load_again
        finally:
            self._loading = False

    def visible(self) -> list:
        query = self.query_one("#filter", Input).value
        rows = [e for e in self.experiments if matches(e, query)]
        rows.sort(key=SORT_KEYS[self.sort_column], reverse=self.sort_reverse)
        return rows

    def _render_table(self) -> None:
        table = self.query_one(DataTable)
        current = self.current_name()
        rows = self.visible()
        names = [e.name for e in rows]
        at = names.index(current) if current in names else None
        self.window.fill(table, rows, keep=at)
        mark_sorted(table, COLUMNS, self.sort_column, self.sort_reverse)
        if at is not None:
            table.move_cursor(row=at)
        empty = not self.experiments
        self.query_one("#empty-hint", Static).display = empty
        table.styles.height = "auto" if empty else "1fr"  # the hint right under the columns
        self._count()

    def _count(self) -> None:
        self.query_one("#count", Label).update(
            "no experiments yet" if not self.experiments else
            f"{len(self.window.rows):,} of {len(self.experiments):,} experiments"
            + (f"  {len(self.selected)} selected" if self.selected else "") + self.window.note())

    def _add_row(self, table: DataTable, e) -> None:
        mark = Text("●", "bold magenta") if e.name in self.selected else ""
        table.add_row(mark, e.name, e.adapter, str(e.runs), last_run_text(e), best_text(e),
                      fmt_age(e.updated), key=e.name)

    def current_name(self) -> str | None:
        return cursor_key(self.query_one(DataTable))

    def _need_current(self) -> str | None:
        name = self.current_name()
        if name is None:
            self.notify("no experiment selected", severity="warning")
        return name

    # ------------------------------------------------------------------ events

    @on(Input.Changed, "#filter")
    def _filter_changed(self) -> None:
        self._render_table()

    @on(Input.Submitted, "#filter")
    def _filter_done(self) -> None:
        self.query_one(DataTable).focus()

    @on(DataTable.HeaderSelected)
    def _header(self, event: DataTable.HeaderSelected) -> None:
        col = str(event.column_key.value)
        if col in SORT_KEYS:
            self.sort_reverse = not self.sort_reverse if col == self.sort_column else False
            self.sort_column = col
            self._render_table()

    @on(DataTable.RowHighlighted)
    def _near_the_end(self, event: DataTable.RowHighlighted) -> None:
        if self.window.more(event.data_table, event.cursor_row):
            self._count()

    @on(DataTable.RowSelected)
    def _open(self, event: DataTable.RowSelected) -> None:
        from .experiment_detail import ExperimentDetailScreen

        self.app.push_screen(ExperimentDetailScreen(str(event.row_key.value)))

    # ------------------------------------------------------------------ actions

    def action_filter(self) -> None:
        self.query_one("#filter", Input).focus()

    def action_clear_filter(self) -> None:
        self.query_one("#filter", Input).value = ""
        self.query_one(DataTable).focus()

    def action_sort(self) -> None:
        cols = list(SORT_KEYS)
        self.sort_column = cols[(cols.index(self.sort_column) + 1) % len(cols)]
        self.sort_reverse = False
        self._render_table()

    def action_select(self) -> None:
        name = self._need_current()
        if name:
            self.selected ^= {name}
            self._selection_changed()

    def _selection_changed(self) -> None:
        # the palette's "Compare selected experiments" reads it from the app
        self.app.palette_cache["selected"] = [  # type: ignore[attr-defined]
            e.name for e in self.visible() if e.name in self.selected]
        self._render_table()

    async def action_compare(self) -> None:
        refs = [e.name for e in self.visible() if e.name in self.selected]
        if len(refs) < 2:
            self.notify("select two or more experiments with space first", severity="warning")
            return
        await self.app.open_compare(refs)  # type: ignore[attr-defined]

    def action_new(self) -> None:
        from .experiment_form import AdapterPicker, ExperimentForm

        def picked(adapter: str | None) -> None:
            if adapter:
                self.app.push_screen(ExperimentForm(adapter), self._saved)

        self.app.push_screen(AdapterPicker(self.engine.adapter_names()), picked)

    def action_edit(self) -> None:
        from .experiment_form import ExperimentForm

        name = self._need_current()
        exp = next((e for e in self.experiments if e.name == name), None)
        if exp:
            self.app.push_screen(ExperimentForm(exp.adapter, existing=exp), self._saved)

    def _saved(self, name: str | None) -> None:
        if name:
            self.notify(f"saved experiment {name}")
            self.reload()

    @work(group="experiments-action", exit_on_error=False)
    async def action_duplicate(self) -> None:
        name = self._need_current()
        if name:
            exp = await self.engine.duplicate_experiment(name)
            self.notify(f"duplicated {name} as {exp.name}")
            self.reload()

    def action_delete(self) -> None:
        name = self._need_current()
        if not name:
            return

        def answered(ok: bool | None) -> None:
            if ok:
                self._delete(name)

        self.app.push_screen(ConfirmModal(f"Delete experiment {name} and all its runs?",
                                          "Delete"), answered)

    @work(group="experiments-action", exit_on_error=False)
    async def _delete(self, name: str) -> None:
        await self.engine.delete_experiment(name)
        self.selected.discard(name)
        self._selection_changed()
        self.notify(f"deleted experiment {name}")
        self.reload()

    @work(group="experiments-action", exit_on_error=False)
    async def action_launch(self, name: str | None = None) -> None:
        name = name or self._need_current()
        if name:
            run_id, job_id = await self.engine.start_run(name)
            run = await self.engine.get_run(run_id)
            self.notify(f"queued {run.label} (job {job_id})")
            self.reload()

    @work(group="experiments-action", exit_on_error=False)
    async def action_latest_run(self) -> None:
        from .run_detail import RunDetailScreen

        name = self._need_current()
        if name:
            exp = await self.engine.get_experiment(name)
            if exp.last_run_id is None:
                self.notify(f"{name} has no runs yet (r launches one)", severity="warning")
            else:
                self.app.push_screen(RunDetailScreen(exp.last_run_id))

    def action_new_study(self) -> None:
        """A hyperparameter study over the selected experiment (the Studies area's form)."""
        from .study_actions import new_study_from

        name = self._need_current()
        if name:
            new_study_from(self.app, name)

    def palette_action(self, what: str, name: str | None) -> None:
        from .experiment_detail import ExperimentDetailScreen

        if what == "new":
            self.action_new()
        elif what == "launch":
            self.action_launch(name)
        elif what == "open" and name:
            self.app.push_screen(ExperimentDetailScreen(name))
