"""Studies area: the list of hyperparameter studies (enter opens one); new and delete here,
start / resume, cancel and promote shared with the detail screen (``study_actions``)."""

from __future__ import annotations

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Footer, Label

from ..clock import fmt_age
from ..widgets.header import LabdeckHeader
from .base import AreaScreen, cursor_key
from .confirm import ConfirmModal
from .study_actions import StudyActions
from .study_detail import StudyDetailScreen
from .study_format import best_text, count_text, state_text, trials_text

COLUMNS = ("name", "state", "trials", "best", "updated", "adapter", "tuner")


class StudiesScreen(StudyActions, AreaScreen):
    AREA = "studies"
    CSS_PATH = "studies.tcss"
    BINDINGS = [
        Binding("n", "new", "New", id="studies.new"),
        Binding("s", "start", "Start/resume", id="studies.start"),
        Binding("x", "cancel", "Cancel", id="studies.cancel"),
        Binding("p", "promote", "Best→exp", id="studies.promote"),
        Binding("delete,D", "delete", "Delete", id="studies.delete"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.studies: list = []
        self.loaded = False

    def compose(self) -> ComposeResult:
        yield LabdeckHeader(self.AREA)
        yield Label("", id="studies-count", classes="title")
        yield DataTable(id="studies", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for col in COLUMNS:
            table.add_column(col, key=col)
        table.focus()

    def reload(self) -> None:
        self._load()

    @work(exclusive=True, group="studies", exit_on_error=False)
    async def _load(self) -> None:
        self.studies = await self.engine.list_studies()
        table = self.query_one(DataTable)
        current = self.current_study()
        table.clear()
        for s in self.studies:
            table.add_row(s.name, state_text(s.status), trials_text(s), best_text(s),
                          fmt_age(s.updated), s.adapter, s.tuner, key=s.name)
        names = [s.name for s in self.studies]
        if current in names:
            table.move_cursor(row=names.index(current))
        running = sum(1 for s in self.studies if s.status == "running")
        self.query_one("#studies-count", Label).update(
            f"{count_text(len(self.studies), 'study', 'studies')}, {running} running"
            "  ·  enter open  n new from an experiment" if self.studies else
            "No studies yet: n creates one from an experiment (ranges, trials).")
        self.loaded = True

    def current_study(self) -> str | None:
        return cursor_key(self.query_one(DataTable))

    @on(DataTable.RowSelected)
    def _open(self, event: DataTable.RowSelected) -> None:
        self.open_study(str(event.row_key.value))

    def open_study(self, name: str) -> None:
        self.app.push_screen(StudyDetailScreen(name))

    def action_new(self, experiment: str | None = None) -> None:
        from .study_form import ExperimentPicker, StudyForm

        def created(name: str | None) -> None:
            if name:
                self.notify(f"created study {name}; s starts it")
                self.reload()
                self.open_study(name)

        def picked(exp: str | None) -> None:
            if exp:
                self.app.push_screen(StudyForm(exp), created)

        if experiment:
            picked(experiment)
        else:
            self.app.push_screen(ExperimentPicker(), picked)

    def action_delete(self) -> None:
        name = self._need_study()
        if not name:
            return

        def answered(ok: bool | None) -> None:
            if ok:
                self._delete(name)

        self.app.push_screen(ConfirmModal(f"Delete study {name} and its trial runs?", "Delete"),
                             answered)

    @work(group="study-action", exit_on_error=False)
    async def _delete(self, name: str) -> None:
        await self.engine.delete_study(name)
        self.notify(f"deleted study {name}")
        self.reload()
