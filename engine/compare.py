"""Compare runs or experiments: config diff and final metrics with the best marked. System
metrics (``sys/``) have no best and stay out of the table, but for the objective."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .directions import direction_for, is_system_key
from .experiments import NotFoundError
from .models import Experiment, Record, Run


@dataclass
class Comparison(Record):
    columns: list[str]  # one label per compared run
    run_ids: list[int]
    config_keys: list[str]
    config: dict[str, list[Any]]  # key -> value per run (None when absent)
    differing: list[str]
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    # metrics[key] = {"direction": ..., "last": [...], "best": [...], "best_last": i, "best_best": i}


class CompareMixin:
    if TYPE_CHECKING:  # from the other parts of engine.api.Engine
        async def get_experiment(self, ref: str | int) -> Experiment: ...
        async def get_run(self, ref: int | str) -> Run: ...
        async def _summary(self, run: Run) -> dict[str, dict[str, Any]]: ...

    async def resolve_compare_targets(self, refs: list[str | int]) -> list[Run]:
        """Each ref: an experiment (its latest run) or a run (id or EXP/NUMBER)."""
        runs: list[Run] = []
        for ref in refs:
            run = None
            try:
                exp = await self.get_experiment(ref)
                if exp.last_run_id is not None:
                    run = await self.get_run(exp.last_run_id)
                else:
                    raise NotFoundError(f"experiment {exp.name!r} has no runs yet")
            except NotFoundError as first:
                try:
                    run = await self.get_run(ref)
                except NotFoundError:
                    raise first from None
            runs.append(run)
        return runs

    async def compare(self, refs: list[str | int]) -> Comparison:
        if len(refs) < 2:
            raise ValueError("compare needs two or more experiments or runs")
        runs = await self.resolve_compare_targets(refs)
        keys = sorted({k for r in runs for k in r.config})
        config = {k: [r.config.get(k) for r in runs] for k in keys}
        differing = [k for k, vals in config.items() if len({repr(v) for v in vals}) > 1]
        metrics: dict[str, dict[str, Any]] = {}
        summaries = [await self._summary(r) for r in runs]
        objective = runs[0].objective
        all_keys = sorted({k for s in summaries for k in s
                           if not is_system_key(k) or k == objective})
        for key in all_keys:
            direction = direction_for(key, runs[0].objective, runs[0].direction)
            last = [s.get(key, {}).get("last") for s in summaries]
            best = [s.get(key, {}).get("best") for s in summaries]
            metrics[key] = {"direction": direction, "last": last, "best": best,
                            "best_last": _argbest(last, direction),
                            "best_best": _argbest(best, direction)}
        labels = [r.label for r in runs]
        return Comparison(columns=labels, run_ids=[r.id for r in runs], config_keys=keys,
                          config=config, differing=differing, metrics=metrics)


def _argbest(values: list[Any], direction: str) -> int | None:
    best_i, best_v = None, None
    for i, v in enumerate(values):
        if not isinstance(v, (int, float)) or math.isnan(v):
            continue
        if best_v is None or (v < best_v if direction == "minimize" else v > best_v):
            best_i, best_v = i, v
    return best_i


def comparison_rows(c: Comparison, which: str = "last") -> list[dict[str, Any]]:
    """Flat rows (metric, run label -> value, best) for CSV/JSON export."""
    rows = []
    for key, m in c.metrics.items():
        row: dict[str, Any] = {"metric": key, "direction": m["direction"]}
        for label, v in zip(c.columns, m[which], strict=True):
            row[label] = v
        bi = m["best_last" if which == "last" else "best_best"]
        row["best"] = c.columns[bi] if bi is not None else None
        rows.append(row)
    return rows
