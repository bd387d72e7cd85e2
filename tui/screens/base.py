"""What every labdeck screen shares: the engine handle, error surfacing, reload on change."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.screen import ModalScreen, Screen
from textual.worker import Worker, WorkerState

from ..messages import DataChanged

if TYPE_CHECKING:
    from engine.api import Engine


class EngineMixin:
    """Gives a screen ``self.engine`` and turns a failed worker into a notification."""

    @property
    def engine(self) -> Engine:
        return self.app.engine  # type: ignore[attr-defined]

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR and event.worker.error is not None:
            err = event.worker.error
            self.app.notify(f"{type(err).__name__}: {err}", title="error",  # type: ignore[attr-defined]
                            severity="error", timeout=8)


class AreaScreen(EngineMixin, Screen):
    """A full screen that reloads when the data changed or when it comes back into view."""

    AREA = ""

    def reload(self) -> None:  # pragma: no cover - overridden
        pass

    def on_data_changed(self, message: DataChanged) -> None:
        self.reload()

    def on_screen_resume(self) -> None:
        self.reload()


class EngineModal(EngineMixin, ModalScreen):
    pass
