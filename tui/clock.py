"""The TUI's notion of time and the text it derives from it (ages, durations, ETAs).

Every reading goes through the module's ``clock`` object, so whoever runs the app (a test
that wants the same text every time, say) can put another one in its place.
"""

from __future__ import annotations

import math
import time


class Clock:
    """Wall time for ages and ETAs; a monotonic timer for what the TUI measures itself."""

    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.perf_counter()


clock = Clock()


def now() -> float:
    return clock.now()


def monotonic() -> float:
    return clock.monotonic()


def fmt_duration(seconds: float | None) -> str:
    if seconds is None or seconds < 0 or math.isnan(seconds):
        return "-"
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{(s % 3600) // 60:02d}m"
    return f"{s // 86400}d{(s % 86400) // 3600:02d}h"


def fmt_age(ts: float | None) -> str:
    if ts is None:
        return "-"
    d = max(0.0, now() - ts)
    if d < 60:
        return "just now"
    if d < 3600:
        return f"{int(d // 60)}m ago"
    if d < 86400:
        return f"{int(d // 3600)}h ago"
    return f"{int(d // 86400)}d ago"


def fmt_num(v: float | int | None) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int):
        return str(v)
    if math.isnan(v):
        return "nan"
    if v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e5):
        return f"{v:.3e}"
    text = f"{v:.4g}"
    # a float stays visibly a float: 1.0 -> "1.0", not "1" (a step count would be an int)
    return text if any(c in text for c in ".en") else text + ".0"


def elapsed(started: float | None, finished: float | None) -> float | None:
    if started is None:
        return None
    return (finished or now()) - started


def eta(started: float | None, finished: float | None, status: str,
        progress: float | None) -> float | None:
    el = elapsed(started, finished)
    if status != "running" or not el or not progress or progress >= 1:
        return None
    return el * (1 - progress) / progress
