"""The top line: home, scheduler state, busy GPUs (on a machine that has any) and the area
keys."""

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
    """Reads its state from the app (``header_state``: home, scheduler text and GPU text,
    e.g. "GPUs 1/2 busy" or "" on a machine without one; and ``AREAS``: objects with ``mode``,
    ``key`` and ``label``); the app refreshes it."""

    def __init__(self, area: str, **kw) -> None:
        super().__init__(**kw)
        self.area = area

    def render(self) -> Text:
        home, sched, gpus = getattr(self.app, "header_state", ("", "", ""))
        short_sched = sched.replace("scheduler: ", "sched ").replace(" running", "")
        short_gpus = gpus.replace("GPUs ", "GPU ").replace(" busy", "")
        # the widest line that fits: everything in words, then short scheduler and GPU text,
        # then one letter per area
        variants = ((sched, gpus, True), (short_sched, short_gpus, True),
                    (short_sched, short_gpus, False))
        for sched_text, gpu_text, full in variants:
            line = self._line(short_home(home), sched_text, gpu_text, full)
            if line.cell_len <= self.size.width:
                break
        return line

    def _line(self, home: str, sched: str, gpus: str, full: bool) -> Text:
        # a scheduler retrying a database fault, or stopped by one, must catch the eye
        alert = "bold red" if "stopped (" in sched else "bold yellow" if "retrying (" in sched else ""
        text = Text.assemble(("labdeck", "bold"), "  ", home, "  ", (sched, alert), "  ")
        if gpus:
            text.append(gpus)
            text.append("  ")
        for a in getattr(self.app, "AREAS", ()):
            text.append(a.label if full else f"[{a.key}]",
                        "reverse bold" if a.mode == self.area else "")
            text.append(" ")
        text.rstrip()
        return text
