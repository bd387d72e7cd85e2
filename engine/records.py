"""What the engine's records share beyond SQL (that is in engine/data): this host's name and
the clock rows are stamped with, how a record's JSON columns hold NaN and infinities, whether a
pid is alive, and how a job or run whose process is gone ends."""

from __future__ import annotations

import json
import math
import os
import socket
import time
from typing import Any

HOST = socket.gethostname()
FINAL_STATUSES = ("completed", "failed", "cancelled")


def now() -> float:
    return time.time()


def decode_value(v: float | None) -> float:
    return math.nan if v is None else v


# what a read found gone: (kind "job"/"run", id) -> (status, reason) it ends with
Gone = dict[tuple[str, int], tuple[str, str]]


def gone_end(kind: str, pid: int, cancel: bool) -> tuple[str, str]:
    """(status, reason) of a job or tracking run whose process is gone: cancelled if that was
    asked for (killed after the grace), else failed."""
    if cancel:
        return "cancelled", "cancelled"
    return "failed", (f"worker process {pid} is gone" if kind == "job"
                      else f"process {pid} ended without finishing")


def _json_safe(obj: Any) -> Any:
    """JSON cannot hold NaN/inf portably: encode them as strings."""
    if isinstance(obj, float):
        if math.isnan(obj):
            return "NaN"
        if math.isinf(obj):
            return "Infinity" if obj > 0 else "-Infinity"
        return obj
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    return obj


def loads(text: str | None, default: Any = None) -> Any:
    """JSON written by ``dumps_safe`` (NaN/inf restored); ``default`` for empty text."""
    if not text:
        return default
    return _restore(json.loads(text))


def _restore(obj: Any) -> Any:
    if obj == "NaN":
        return math.nan
    if obj == "Infinity":
        return math.inf
    if obj == "-Infinity":
        return -math.inf
    if isinstance(obj, dict):
        return {k: _restore(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_restore(v) for v in obj]
    return obj


def dumps_safe(obj: Any) -> str:
    return json.dumps(_json_safe(obj))


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie is not alive for our purposes
    try:
        with open(f"/proc/{pid}/stat") as fh:
            state = fh.read().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except OSError:
        return True
