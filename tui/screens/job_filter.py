"""The jobs filter dialog: status and type, each "any" or one value."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Select

STATUSES = ("queued", "running", "completed", "failed", "cancelled")


class JobFilter(ModalScreen[tuple[str | None, str | None] | None]):
    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel", id="jobfilter.cancel"),
                Binding("ctrl+s", "apply", "Apply", id="jobfilter.apply")]

    def __init__(self, status: str | None, type_: str | None, types: list[str]) -> None:
        super().__init__()
        self.status, self.type_, self.types = status, type_, types

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("Filter jobs")
            yield Select([(s, s) for s in STATUSES], value=self.status or Select.NULL,
                         prompt="any status", id="status")
            yield Select([(t, t) for t in self.types], value=self.type_ or Select.NULL,
                         prompt="any type", id="type")
            with Horizontal(classes="buttons"):
                yield Button("Apply (ctrl+s)", variant="primary", id="apply")
                yield Button("Clear", id="clear")

    def _value(self, sel_id: str) -> str | None:
        v = self.query_one(f"#{sel_id}", Select).value
        return None if v is Select.NULL else str(v)

    def action_apply(self) -> None:
        self.dismiss((self._value("status"), self._value("type")))

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "clear":
            self.dismiss((None, None))
        else:
            self.action_apply()
