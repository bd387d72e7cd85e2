"""How a run's status reads in every table: icon, word, colour; a running run's progress and
epoch, or, for a job with no total to count against (a script), its step and rate; a study
trial stopped by the pruner reads "pruned", not "cancelled"; a running job that has said
nothing for a while reads "stalled 12m"."""

from __future__ import annotations

import re

from rich.text import Text

from engine.liveness import fmt_stalled, stalled_seconds

from .clock import now

STATUS_ICON = {"running": "▶", "completed": "✓", "failed": "✗", "cancelled": "■",
               "queued": "…", "pruned": "✂"}
STATUS_STYLE = {"failed": "red", "completed": "green", "cancelled": "yellow", "pruned": "dim"}
_EPOCH = re.compile(r"\bepoch\s+(\d+)", re.IGNORECASE)
# "step 1234 (41.5 steps/s)": a step with no "/ total" after it, and the rate if said
_STEP = re.compile(r"\bstep\s+(\d+)(?!\s*/)(?:\s*\(([\d.]+) steps/s\))?", re.IGNORECASE)


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


def message_steps(message: str | None) -> tuple[int, float | None] | None:
    """(step, steps per second or None) when a running job's message counts steps without a
    total ("step 1234 (41.5 steps/s)", what the script adapter says), else None."""
    m = _STEP.search(message or "")
    if not m:
        return None
    return int(m.group(1)), (float(m.group(2)) if m.group(2) else None)


def fmt_count(n: float) -> str:
    """1234 -> "1234", 12345 -> "12.3k", 2_500_000 -> "2.5M"."""
    if abs(n) >= 1e6:
        return f"{n / 1e6:.1f}M"
    if abs(n) >= 1e4:
        return f"{n / 1e3:.1f}k"
    return f"{n:.0f}"


def steps_text(message: str | None) -> str | None:
    """``step 1234 · 41/s`` from a message that counts steps with no total, else None."""
    found = message_steps(message)
    if found is None:
        return None
    step, rate = found
    if rate is None:
        return f"step {fmt_count(step)}"
    return f"step {fmt_count(step)} · {rate:.3g}/s"


def stalled_label(status: str, last_output: float | None, warn_s: float) -> str | None:
    """``stalled 12m`` for a running job or run with no metric, progress or log output for
    the warning time (LABDECK_STALL_WARN_S), else None."""
    if status != "running":
        return None
    seconds = stalled_seconds(last_output, warn_s, now())
    return fmt_stalled(seconds) if seconds is not None else None


def status_text(status: str, progress: float | None = None, error: str | None = None,
                message: str | None = None, stalled: str | None = None) -> Text:
    """``▶ 62% e7`` while running (epoch when the message has one), ``▶ step 1234 · 41/s``
    while running with no total (no progress, a message that counts steps), ``▶ stalled 12m``
    when it says nothing any more, else ``✓ completed``."""
    status = shown_status(status, error)
    icon = STATUS_ICON.get(status, "?")
    if status == "running" and stalled:
        return Text(f"{icon} {stalled}", "bold yellow")
    if status == "running" and not progress and (steps := steps_text(message)):
        return Text(f"{icon} {steps}", "bold cyan")
    if status == "running" and progress is not None:
        epoch = message_epoch(message)
        return Text(f"{icon} {progress * 100:.0f}%" + (f" e{epoch}" if epoch is not None else ""),
                    "bold cyan")
    return Text(f"{icon} {status}", STATUS_STYLE.get(status, ""))
