"""`labdeck compare`: the config diff and final metrics of experiments or runs side by side.
An experiment stands for its latest run with metrics; the output says which run when that is
not its latest."""

from __future__ import annotations

from typing import Any

from engine.api import Engine
from engine.compare import comparison_rows

from .output import emit_json, fmt_num, say, table

LONG = 40  # config values longer than this are cut in the table (--json has them whole)


def add_parsers(sub, add) -> None:
    p = add(sub, "compare", "config diff and final metrics of experiments or runs")
    p.add_argument("targets", nargs="+",
                   help="experiments (each: its latest run with metrics) or runs (EXP/NUMBER)")
    p.add_argument("--diff-only", action="store_true")
    p.add_argument("--best", action="store_true", help="compare best values instead of last")
    p.set_defaults(func=compare)


def _text(v: Any) -> str:
    return v if isinstance(v, str) else fmt_num(v)


def _cell(v: Any) -> str:
    text = _text(v)
    return text if len(text) <= LONG else text[:LONG - 1] + "…"


async def compare(args) -> int:
    async with Engine.session(args.home) as engine:
        c = await engine.compare(args.targets)
    which = "best" if args.best else "last"
    if args.json:
        d = c.to_json()
        d["rows"] = comparison_rows(c, which)
        emit_json(d)
        return 0
    say("comparing " + "  vs  ".join(c.columns))
    for note in c.notes:
        say(f"  {note}")
    keys = c.differing if args.diff_only else c.config_keys
    cut = any(len(_text(v)) > LONG for k in keys for v in c.config[k])
    say("\nconfig" + (" (differing only)" if args.diff_only else "")
        + (f" (values over {LONG} characters cut; --json has them whole)" if cut else ""))
    rows = [[("* " if k in c.differing else "  ") + k] + [_cell(v) for v in c.config[k]]
            for k in keys]
    say(table(["key", *c.columns], rows))
    say(f"\nmetrics ({which}; ★ best, for results only)")
    rows = []
    for key, m in c.metrics.items():
        bi = m["best_last" if which == "last" else "best_best"]
        arrow = {"minimize": " ↓", "maximize": " ↑"}.get(m["direction"], "")
        rows.append([key + arrow] + [
            fmt_num(v) + (" ★" if i == bi else "") for i, v in enumerate(m[which])])
    say(table(["metric", *c.columns], rows))
    return 0
