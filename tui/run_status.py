"""How a run's status reads in every table: icon, word, colour; a running run's progress and
epoch; a study trial stopped by the pruner reads "pruned", not "cancelled"; a running job that
has said nothing for a while reads "stalled 12m"."""

from __future__ import annotations

import re

from rich.text import Text

from engine.liveness import fmt_stalled, stalled_seconds

from .clock import now

STATUS_ICON = {"running": "▶", "completed": "✓", "failed": "✗", "cancelled": "■",
               "queued": "…", "pruned": "✂"}
STATUS_STYLE = {"failed": "red", "completed": "green", "cancelled": "yellow", "pruned": "dim"}
_EPOCH = re.compile(r"\bepoch\s+(\d+)", re.IGNORECASE)


def arrow(direction: str | None) -> str:
    """Which way an objective improves: ↓ minimize, ↑ maximize."""
    return "↓" if direction == "minimize" else "↑"


def shown_status(status: str, error: str | None = None) -> str:
    """The study runner ends a pruned trial's run "cancelled" with "pruned at step N"."""
    if status == "cancelled" and error and error.startswith("pruned"):
        return "pruned"
    return status


def message_epoch(message: str | None) -> int | None:
    """The epoch a running job reports in its progress message ("epoch 7/20 step ..."), if
    it says one."""
    m = _EPOCH.search(message or "")
    return int(m.group(1)) if m else None


def stalled_label(status: str, last_output: float | None, warn_s: float) -> str | None:
    """``stalled 12m`` for a running job or run with no metric, progress or log output for
    the warning time (LABDECK_STALL_WARN_S), else None."""
    if status != "running":
        return None
    seconds = stalled_seconds(last_output, warn_s, now())
    return fmt_stalled(seconds) if seconds is not None else None


def status_text(status: str, progress: float | None = None, error: str | None = None,
                message: str | None = None, stalled: str | None = None) -> Text:
    """``▶ 62% e7`` while running (epoch when the message has one), ``▶ stalled 12m`` when
    it says nothing any more, else ``✓ completed``."""
    status = shown_status(status, error)
    icon = STATUS_ICON.get(status, "?")
    if status == "running" and stalled:
        return Text(f"{icon} {stalled}", "bold yellow")
    if status == "running" and progress is not None:
        epoch = message_epoch(message)
        return Text(f"{icon} {progress * 100:.0f}%" + (f" e{epoch}" if epoch is not None else ""),
                    "bold cyan")
    return Text(f"{icon} {status}", STATUS_STYLE.get(status, ""))
