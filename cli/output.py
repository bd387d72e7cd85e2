"""Printing for the CLI: aligned text tables for people, JSON for scripts.

Text output goes through ``say`` (and ``table``): names, metric keys, messages and errors come
from users' scripts and configs, and a control character in one (ESC, CR, a newline in a
key) must not reach the terminal raw. JSON escapes them by itself.

Lists that may be long (100,000 runs) are printed as they are read: ``TableStream`` and
``JsonStream`` write each row as it comes, and ``shown_line`` ends a table with how many were
shown and how to see more.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
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


# ------------------------------------------------------------------ long lists, streamed


def add_paging_options(p: Any, what: str) -> None:
    """``--limit``, ``--offset`` and ``--jsonl`` for a command that lists ``what``: every
    row by default (scripts), read and printed a page at a time, never all in memory."""
    p.add_argument("--limit", type=_positive, metavar="N", help=f"show at most N {what}"
                   " (default: all)")
    p.add_argument("--offset", type=_count, default=0, metavar="N",
                   help=f"skip the first N {what}")
    p.add_argument("--jsonl", action="store_true",
                   help="one JSON object per line (--json: one array, streamed the same)")


def _count(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = -1
    if n < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}")
    return n


def _positive(text: str) -> int:
    n = _count(text)
    if n == 0:
        raise argparse.ArgumentTypeError("expected a whole number >= 1, got 0")
    return n


class JsonStream:
    """A JSON list written as its items arrive: the bytes ``emit_json`` writes for the whole
    list (``lines``: one compact object per line instead, JSON Lines)."""

    def __init__(self, lines: bool = False, file: Any = None):
        self.lines = lines
        self.file = file or sys.stdout
        self.count = 0

    def write(self, obj: Any) -> None:
        options: dict[str, Any] = ({"separators": (",", ":")} if self.lines else {"indent": 2})
        try:  # a record's to_json is safe already: no second walk for it
            text = json.dumps(obj, allow_nan=False, default=str, **options)
        except ValueError:  # a NaN or an infinity: as strings, as emit_json writes them
            text = json.dumps(_json_safe(obj), default=str, **options)
        if self.lines:
            self.file.write(text + "\n")
        else:
            self.file.write(("[\n  " if self.count == 0 else ",\n  ") + text.replace("\n", "\n  "))
        self.count += 1

    def close(self) -> None:
        if not self.lines:
            self.file.write("[]\n" if self.count == 0 else "\n]\n")


class TableStream:
    """A text table (as ``table`` draws it) printed as its rows arrive. The columns are sized
    to the header and the first ``fit`` rows, held back until then; a later, longer cell
    widens its column from its own line on (the lines above are out already)."""

    def __init__(self, headers: Sequence[str], fit: int = 200, file: Any = None):
        self.headers = [clean(h) for h in headers]
        self.fit = fit
        self.file = file or sys.stdout
        self.count = 0
        self._held: list[list[str]] | None = []
        self._widths: list[int] = []

    def add(self, row: Sequence[Any]) -> None:
        cells = [clean(fmt_num(c) if not isinstance(c, str) else c) for c in row]
        self.count += 1
        if self._held is None:
            self._widths = [max(w, len(c)) for w, c in zip(self._widths, cells, strict=True)]
            self._line(cells)
            return
        self._held.append(cells)
        if len(self._held) >= self.fit:
            self._flush()

    def _flush(self) -> None:
        held, self._held = self._held or [], None
        self._widths = [max(len(r[i]) for r in [self.headers, *held])
                        for i in range(len(self.headers))]
        self._line(self.headers)
        self.file.write("  ".join("-" * w for w in self._widths) + "\n")
        for cells in held:
            self._line(cells)

    def _line(self, cells: Sequence[str]) -> None:
        self.file.write("  ".join(c.ljust(w) for c, w in zip(cells, self._widths, strict=True))
                        .rstrip() + "\n")

    def close(self) -> None:
        if self._held is not None:
            self._flush()


def shown_line(shown: int, offset: int, total: int, noun: str) -> str:
    """The last line of a listing: how many rows it showed of how many, and the ``--offset``
    that shows the next ones when there are more (``showing 50 of 100,000 runs: --offset 50
    for more``)."""
    if shown:
        total = max(total, offset + shown)  # rows deleted while it printed
    plural = noun if total == 1 else noun + "s"
    if offset == 0 and shown == total:
        return f"{total:,} {plural}"
    text = f"showing {shown:,} of {total:,} {plural}"
    if shown and offset:
        text += f" ({offset + 1:,}-{offset + shown:,})"
    elif not shown:
        text += f" (--offset {offset:,} is past the last)"
    if offset + shown < total:
        text += f": --offset {offset + shown} for more"
    return text


async def print_listing(args: Any, items: AsyncIterator[Any], *, headers: Sequence[str],
                        row: Callable[[Any], Sequence[Any]], as_json: Callable[[Any], Any],
                        count: Callable[[], Awaitable[int]], noun: str) -> int:
    """A list command's output, each item written as it is read: ``--json`` (the array),
    ``--jsonl`` (a line each) or a table ended by ``shown_line``. ``count`` (one COUNT) runs
    only when ``--offset`` or ``--limit`` left rows out."""
    if args.json or args.jsonl:
        out = JsonStream(lines=args.jsonl)
        async for item in items:
            out.write(as_json(item))
        out.close()
        return 0
    shown = TableStream(headers)
    async for item in items:
        shown.add(row(item))
    shown.close()
    cut = args.offset > 0 or (args.limit is not None and shown.count >= args.limit)
    say(shown_line(shown.count, args.offset, await count() if cut else shown.count, noun))
    return 0
