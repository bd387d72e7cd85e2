"""Parameter importance without Optuna: |Spearman rank correlation| of each searched parameter
with the objective over complete trials, normalised to sum to 1. Categorical values are ranked
by the mean objective of their category (so a category that matters ranks as a monotone
signal). Crude but dependency-free; the Optuna tuner uses Optuna's evaluator when it can."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any


def _ranks(xs: Sequence[float]) -> list[float]:
    order = sorted(range(len(xs)), key=lambda i: xs[i])
    ranks = [0.0] * len(xs)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and xs[order[j + 1]] == xs[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2.0
        i = j + 1
    return ranks


def spearman(xs: Sequence[float], ys: Sequence[float]) -> float:
    if len(xs) < 2:
        return 0.0
    rx, ry = _ranks(xs), _ranks(ys)
    mx, my = sum(rx) / len(rx), sum(ry) / len(ry)
    cov = sum((a - mx) * (b - my) for a, b in zip(rx, ry, strict=True))
    vx = math.sqrt(sum((a - mx) ** 2 for a in rx))
    vy = math.sqrt(sum((b - my) ** 2 for b in ry))
    if vx == 0 or vy == 0:
        return 0.0
    return cov / (vx * vy)


def correlation_importance(trials: Sequence[Any], space: dict[str, Any]) -> dict[str, float]:
    """``trials``: objects with ``params`` and ``value`` (complete trials only)."""
    searched = [k for k, p in space.items() if getattr(p, "searched", True)]
    ys = [float(t.value) for t in trials]
    raw: dict[str, float] = {}
    for name in searched:
        vals = [t.params.get(name) for t in trials]
        if any(v is None for v in vals):
            continue
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vals):
            xs = [float(v) for v in vals]
        else:
            groups: dict[str, list[float]] = {}
            for v, y in zip(vals, ys, strict=True):
                groups.setdefault(repr(v), []).append(y)
            means = {k: sum(g) / len(g) for k, g in groups.items()}
            xs = [means[repr(v)] for v in vals]
        raw[name] = abs(spearman(xs, ys))
    total = sum(raw.values())
    if total <= 0:
        return {k: 0.0 for k in raw}
    return dict(sorted(((k, v / total) for k, v in raw.items()), key=lambda kv: -kv[1]))
