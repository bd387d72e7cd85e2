"""The top line: home, scheduler state and the area keys."""

from __future__ import annotations

import os

from rich.text import Text
from textual.widgets import Static


def short_home(path: str) -> str:
    home = os.path.expanduser("~")
    if path == home or path.startswith(home + os.sep):
        return "~" + path[len(home):]
    return path


class LabdeckHeader(Static):
    """Reads its state from the app (``header_state``, and ``AREAS``: objects with ``mode``,
    ``key`` and ``label``); the app refreshes it."""

    def __init__(self, area: str, **kw) -> None:
        super().__init__(**kw)
        self.area = area

    def render(self) -> Text:
        home, sched = getattr(self.app, "header_state", ("", ""))
        full = self.size.width >= 40 + len(short_home(home)) + len(sched) + 20
        if not full:  # narrow terminal: short scheduler text and one letter per area
            sched = sched.replace("scheduler: ", "sched ").replace(" running", "")
        # a scheduler retrying a database fault, or stopped by one, must catch the eye
        alert = "bold red" if "stopped (" in sched else "bold yellow" if "retrying (" in sched else ""
        text = Text.assemble(("labdeck", "bold"), "  ", short_home(home), "  ", (sched, alert),
                             "  ")
        for a in getattr(self.app, "AREAS", ()):
            label = a.label if full else f"[{a.key}]"
            style = "reverse bold" if a.mode == self.area else ""
            text.append(label, style)
            text.append(" ")
        return text
