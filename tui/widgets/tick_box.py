"""A checkbox whose state reads without colour: ``[x]`` ticked, ``[ ]`` not (Textual's own
``▐X▌`` looks the same both ways and only its colour changes). Optionally the label says the
state in words too, e.g. ``[x] true`` / ``[ ] false``."""

from __future__ import annotations

from typing import Any

from textual.content import Content
from textual.widgets import Checkbox


class TickBox(Checkbox):
    """A ``Checkbox`` drawn as ``[x]`` / ``[ ]``. ``states`` (off word, on word), when given,
    replace the label with the word for the current value."""

    DEFAULT_CSS = """
    TickBox {
        & > .toggle--button {
            color: $text-muted;
            background: transparent;
        }
        &.-on > .toggle--button {
            color: $text-success;
            background: transparent;
            text-style: bold;
        }
        &:focus > .toggle--button {
            text-style: bold reverse;
        }
    }
    """

    def __init__(self, label: str = "", value: bool = False, *,
                 states: tuple[str, str] | None = None, **kwargs: Any) -> None:
        self.states = states
        super().__init__(states[bool(value)] if states else label, value, **kwargs)

    @property
    def _button(self) -> Content:
        return Content.styled("[x]" if self.value else "[ ]",
                              self.get_visual_style("toggle--button"))

    def watch_value(self) -> None:
        if self.states:
            self.label = self.states[self.value]
        super().watch_value()
