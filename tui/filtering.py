"""The experiments filter language, as typed after `/`.

Space-separated terms, all must match:
  ``word``            name, a tag or the adapter contains it (case-insensitive)
  ``adapter:vlm``     the adapter contains "vlm";  ``tag:demo`` a tag contains "demo"
  ``status:running``  the last run's status
  ``lr>1e-3``         a config key compared with > >= < <= = != (numbers compare as numbers)
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from typing import Any

_OPS: dict[str, Callable[[Any, Any], bool]] = {
    ">=": operator.ge, "<=": operator.le, "!=": operator.ne, ">": operator.gt,
    "<": operator.lt, "=": operator.eq}
_TERM = re.compile(r"^([\w./-]+)(>=|<=|!=|>|<|=)(.*)$")


def _number(text: Any) -> float | None:
    if isinstance(text, bool):
        return None
    if isinstance(text, (int, float)):
        return float(text)
    try:
        return float(str(text))
    except ValueError:
        return None


def _compare(actual: Any, op: str, wanted: str) -> bool:
    a, w = _number(actual), _number(wanted)
    try:
        if a is not None and w is not None:
            return _OPS[op](a, w)
        return _OPS[op](str(actual).lower(), wanted.lower())
    except TypeError:
        return False


def matches(exp: Any, query: str) -> bool:
    for term in query.split():
        low = term.lower()
        if ":" in term and not _TERM.match(term):
            field, _, value = low.partition(":")
            if field == "adapter" and value not in exp.adapter.lower():
                return False
            if field == "tag" and not any(value in t.lower() for t in exp.tags):
                return False
            if field == "status" and value not in (exp.last_status or "").lower():
                return False
            if field in ("adapter", "tag", "status"):
                continue
        m = _TERM.match(term)
        if m:
            key, op, value = m.groups()
            if key not in exp.config or not _compare(exp.config[key], op, value):
                return False
            continue
        hay = [exp.name.lower(), exp.adapter.lower(), *(t.lower() for t in exp.tags)]
        if not any(low in h for h in hay):
            return False
    return True
