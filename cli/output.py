"""Printing for the CLI: aligned text tables for people, JSON for scripts.

Text output goes through ``say`` (and ``table``): names, metric keys, messages and errors come
from users' scripts and configs, and a control character in one (ESC, CR, a newline in a
key) must not reach the terminal raw. JSON escapes them by itself.
"""

from __future__ import annotations

import json
import math
import re
import sys
import time
from collections.abc import Sequence
from typing import Any

from engine.records import _json_safe

# C0 (tab and newline apart), DEL, C1, line/paragraph separators, bidi overrides
_OTHER_CONTROLS = r"\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069"
_CONTROL = re.compile(rf"[\t\n{_OTHER_CONTROLS}]")
_CONTROL_BUT_LAYOUT = re.compile(rf"[{_OTHER_CONTROLS}]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(m: re.Match) -> str:
    c = m.group()
    return _NAMED.get(c) or (f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}")


def clean(value: Any) -> str:
    """``value`` as one line of text: every control character escaped (``\\n``, ``\\x1b``)."""
    return _CONTROL.sub(_escape, value if isinstance(value, str) else str(value))


def say(text: str = "", file: Any = None) -> None:
    """``print`` for text output: control characters escaped except the newlines and tabs
    that lay the text out (a value that must stay on one line goes through ``clean``)."""
    print(_CONTROL_BUT_LAYOUT.sub(_escape, text), file=file or sys.stdout)


def emit_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(_json_safe(obj), indent=2, default=str) + "\n")


def fmt_num(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        if v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e5):
            return f"{v:.3e}"
        text = f"{v:.4f}".rstrip("0")
        return text + "0" if text.endswith(".") else text
    return str(v)


def fmt_age(t: float | None) -> str:
    if not t:
        return "-"
    d = time.time() - t
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if d >= size:
            return f"{int(d // size)}{unit} ago"
    return f"{int(d)}s ago"


def fmt_duration(s: float | None) -> str:
    if s is None:
        return "-"
    s = int(s)
    if s >= 3600:
        return f"{s // 3600}h{(s % 3600) // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s}s"


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[clean(h) for h in headers]] + [[clean(fmt_num(c) if not isinstance(c, str) else c)
                                              for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
             for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
