"""`labdeck compare`: the config diff and final metrics of experiments or runs side by side."""

from __future__ import annotations

from engine.api import Engine
from engine.compare import comparison_rows

from .output import emit_json, fmt_num, say, table


def add_parsers(sub, add) -> None:
    p = add(sub, "compare", "config diff and final metrics of experiments or runs")
    p.add_argument("targets", nargs="+")
    p.add_argument("--diff-only", action="store_true")
    p.add_argument("--best", action="store_true", help="compare best values instead of last")
    p.set_defaults(func=compare)


async def compare(args) -> int:
    async with Engine.session(args.home) as engine:
        c = await engine.compare(args.targets)
    which = "best" if args.best else "last"
    if args.json:
        d = c.to_json()
        d["rows"] = comparison_rows(c, which)
        emit_json(d)
        return 0
    keys = c.differing if args.diff_only else c.config_keys
    say("config" + (" (differing only)" if args.diff_only else ""))
    rows = [[("* " if k in c.differing else "  ") + k] + [fmt_num(v) if not isinstance(v, str)
            else v for v in c.config[k]] for k in keys]
    say(table(["key", *c.columns], rows))
    say(f"\nmetrics ({which}; ★ best)")
    rows = []
    for key, m in c.metrics.items():
        bi = m["best_last" if which == "last" else "best_best"]
        rows.append([key + (" ↓" if m["direction"] == "minimize" else " ↑")] + [
            fmt_num(v) + (" ★" if i == bi else "") for i, v in enumerate(m[which])])
    say(table(["metric", *c.columns], rows))
    return 0
