"""Is the process behind a "running" row still the one that wrote it, and is it doing anything?

A pid alone proves little: the worker may be gone and its pid given to another process. A row
therefore keeps the process's start time next to its pid (``process_start_time``), and
``same_process`` compares both. A live process may still be stuck: a hung command keeps a
fresh heartbeat (a thread writes it), so stall detection looks only at output (metrics,
progress, log lines), never at the heartbeat.
"""

from __future__ import annotations

import os
from pathlib import Path

# the recorded and the measured start time agree to a clock tick; the boot time they are
# counted from may move when the wall clock is stepped, so allow a little
_START_TOLERANCE_S = 1.0


def _boot_time() -> float | None:
    try:
        with open("/proc/stat") as fh:
            for line in fh:
                if line.startswith("btime "):
                    return float(line.split()[1])
    except OSError:
        pass
    return None


def _stat(pid: int) -> list[str] | None:
    """/proc/<pid>/stat from field 3 (state) on; None when there is no such entry."""
    try:
        with open(f"/proc/{int(pid)}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _start_from(fields: list[str]) -> float | None:
    boot = _boot_time()
    try:
        ticks = int(fields[19])  # field 22 (starttime, clock ticks after boot)
    except (IndexError, ValueError):
        return None
    return None if boot is None else boot + ticks / os.sysconf("SC_CLK_TCK")


def process_start_time(pid: int | None) -> float | None:
    """When ``pid`` started (UNIX time), from /proc/<pid>/stat field 22 and the boot time;
    None where it cannot be read (no such process, no /proc)."""
    fields = _stat(pid) if pid else None
    return _start_from(fields) if fields else None


def same_process(pid: int | None, started: float | None) -> bool:
    """The live (not zombie) process ``pid`` started at ``started``. With no recorded start
    time (an old row) or no /proc to read it from, a live pid is taken at its word."""
    if not pid:
        return False
    fields = _stat(pid)
    if fields is None:
        if os.path.isdir("/proc/self"):
            return False
        try:  # no /proc on this system: existence is all we can know
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass
        return True
    if fields[0] == "Z":
        return False
    if started is None:
        return True
    now_started = _start_from(fields)
    return now_started is None or abs(now_started - started) <= _START_TOLERANCE_S


def last_output(recorded: float | None, log: Path | None) -> float | None:
    """The later of what the database recorded (progress, metrics, start) and the last write
    to the job's log file."""
    try:
        mtime = log.stat().st_mtime if log is not None else None
    except OSError:
        mtime = None
    times = [t for t in (recorded, mtime) if t is not None]
    return max(times) if times else None


def stalled_seconds(last: float | None, warn_s: float, now: float) -> float | None:
    """Seconds without output when that reaches ``warn_s`` (0 turns warnings off), else None."""
    if last is None or warn_s <= 0:
        return None
    idle = now - last
    return idle if idle >= warn_s else None


def fmt_stalled(seconds: float) -> str:
    """``stalled 45s`` / ``stalled 12m`` / ``stalled 3h``: coarse on purpose, it only warns."""
    s = int(seconds)
    if s < 60:
        return f"stalled {s}s"
    if s < 3600:
        return f"stalled {s // 60}m"
    return f"stalled {s // 3600}h"
