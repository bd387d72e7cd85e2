"""The top line: home, scheduler state, busy GPUs (on a machine that has any) and the area
keys. On a narrow terminal the words shrink, but the current area always keeps its name, so
a newcomer sees where they are and what the bracketed letters mean."""

from __future__ import annotations

import os
import re

from rich.text import Text
from textual.widgets import Static


def short_home(path: str) -> str:
    home = os.path.expanduser("~")
    if path == home or path.startswith(home + os.sep):
        return "~" + path[len(home):]
    return path


def tail_home(path: str) -> str:
    """The home's last part (``…/.labdeck``) for the narrowest line."""
    head, _, last = path.rstrip(os.sep).rpartition(os.sep)
    return f"…{os.sep}{last}" if head and last else path


def short_scheduler(text: str) -> str:
    """``scheduler: embedded (1/1 running)`` -> ``sched embedded (1/1)``."""
    return text.replace("scheduler: ", "sched ").replace(" running", "")


def tiny_scheduler(text: str) -> str:
    """The fewest words that still say it: ``sched 1/1`` for the embedded scheduler, no pid
    for another, ``sched none`` when none serves and nothing waits; a fault (retrying,
    stopped) keeps its words, it must catch the eye."""
    short = short_scheduler(text)
    if "stopped (" in short or "retrying (" in short:
        return short
    embedded = re.fullmatch(r"sched embedded \((\d+/\d+)\)", short)
    if embedded:
        return f"sched {embedded.group(1)}"
    if short == "sched none (0 queued)":
        return "sched none"
    return re.sub(r" pid \d+", "", short)


class LabdeckHeader(Static):
    """Reads its state from the app (``header_state``: home, scheduler text and GPU text,
    e.g. "GPUs 1/2 busy" or "" on a machine without one; and ``AREAS``: objects with ``mode``,
    ``key``, ``label`` and ``short_label``); the app refreshes it."""

    def __init__(self, area: str, **kw) -> None:
        super().__init__(**kw)
        self.area = area

    def render(self) -> Text:
        home, sched, gpus = getattr(self.app, "header_state", ("", "", ""))
        home = short_home(home)
        short_sched, tiny_sched = short_scheduler(sched), tiny_scheduler(sched)
        short_gpus = gpus.replace("GPUs ", "GPU ").replace(" busy", "")
        # the widest line that fits: everything in words; then shorter scheduler and GPU
        # text; then short area names; then one letter per area but the current one, which
        # always keeps its name
        variants = ((home, sched, gpus, "full"), (home, short_sched, short_gpus, "full"),
                    (home, short_sched, short_gpus, "short"),
                    (home, tiny_sched, short_gpus, "short"),
                    (home, short_sched, short_gpus, "keys"),
                    (home, tiny_sched, short_gpus, "keys"),
                    (tail_home(home), tiny_sched, short_gpus, "keys"))
        for home_text, sched_text, gpu_text, names in variants:
            line = self._line(home_text, sched_text, gpu_text, names)
            if line.cell_len <= self.size.width:
                break
        return line

    def _line(self, home: str, sched: str, gpus: str, names: str) -> Text:
        # a scheduler retrying a database fault, or stopped by one, must catch the eye
        alert = "bold red" if "stopped (" in sched else "bold yellow" if "retrying (" in sched else ""
        text = Text.assemble(("labdeck", "bold"), "  ", home, "  ", (sched, alert), "  ")
        if gpus:
            text.append(gpus)
            text.append("  ")
        areas = getattr(self.app, "AREAS", ())
        # the area the user is in is the app's mode: a run opened from a study stays in
        # Studies (its screen's own AREA says Experiments)
        mode = getattr(self.app, "current_mode", None)
        current = mode if any(a.mode == mode for a in areas) else self.area
        for a in areas:
            here = a.mode == current
            if here or names == "full":
                label = a.label
            elif names == "short":
                label = a.short_label
            else:
                label = f"[{a.key}]"
            text.append(label, "reverse bold" if here else "")
            text.append(" ")
        text.rstrip()
        return text
