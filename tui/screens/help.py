"""`?`: every key, grouped by area, as currently mapped (user keymap included)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Label


def _areas() -> list[tuple[str, list]]:
    from ..app import LabdeckApp
    from .compare import CompareScreen
    from .confirm import ConfirmModal
    from .experiment_detail import ExperimentDetailScreen
    from .experiments import ExperimentsScreen
    from .job_detail import JobDetailScreen
    from .jobs import JobsScreen
    from .run_detail import RunDetailScreen
    from .search import SearchScreen
    from .studies import StudiesScreen
    from .study_detail import StudyDetailScreen
    from .study_form import StudyForm

    return [("global", LabdeckApp.BINDINGS), ("experiments", ExperimentsScreen.BINDINGS),
            ("experiment", ExperimentDetailScreen.BINDINGS),
            ("run detail", RunDetailScreen.BINDINGS), ("compare", CompareScreen.BINDINGS),
            ("jobs", JobsScreen.BINDINGS), ("job detail", JobDetailScreen.BINDINGS),
            ("search", SearchScreen.BINDINGS),
            ("studies", StudiesScreen.BINDINGS), ("study", StudyDetailScreen.BINDINGS),
            ("study form", StudyForm.BINDINGS), ("dialogs", ConfirmModal.BINDINGS)]


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,question_mark,q", "dismiss", "Close", id="help.close")]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog help"):
            yield Label("Keys (remap by binding id in <home>/keymap.json)   esc closes")
            yield DataTable(id="keys", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("area", "key", "action", "id")
        overrides = getattr(self.app, "keymap_overrides", {})
        for area, bindings in _areas():
            for b in bindings:
                if not isinstance(b, Binding):
                    continue
                keys = overrides.get(b.id or "", b.key)
                table.add_row(area, keys.replace("question_mark", "?"), b.description, b.id or "")
