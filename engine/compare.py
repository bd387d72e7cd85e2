"""Compare runs or experiments: config diff and final metrics with the best marked.

An experiment stands for its latest run that has metrics (a run queued and cancelled before
it started has none), and the comparison says so in ``notes`` when that is not its latest
run. Only results get a best (★): not a setting or a counter logged as a metric (the learning
rate, the epoch, the step, progress), nor a system metric (``sys/``), unless it is the
experiment's objective. Keys sort naturally: ``map_8`` before ``map_16``."""

from __future__ import annotations

import math
import re
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
    # metrics[key] = {"direction": ..., "ranked": bool, "last": [...], "best": [...],
    #                 "best_last": i, "best_best": i}; unranked: direction and bests None
    notes: list[str] = field(default_factory=list)  # which run stands for an experiment, why


# a path segment that names a setting or a counter, not a result: lr, learning_rate,
# lr_group0, epoch, step, global_step, iteration, progress
_NOT_A_RESULT = re.compile(
    r"(lr|learning[_-]?rate)([_-]\w*)?|epochs?|steps?|global[_-]?steps?|iters?|iterations?"
    r"|progress", re.IGNORECASE)


def is_ranked(key: str, objective: str | None = None) -> bool:
    """Whether a metric gets a best: the objective always; otherwise a result, not a system
    metric nor a setting or counter (``train/lr``, ``epoch``, ``step``, ``progress``)."""
    if objective and key == objective:
        return True
    if is_system_key(key):
        return False
    return not any(_NOT_A_RESULT.fullmatch(part) for part in key.split("/"))


def natural_key(key: str) -> tuple[list[Any], str]:
    """Sort key with numbers by value: ``map_8 < map_16 < map_128``."""
    parts = re.split(r"(\d+)", key)
    return [int(p) if i % 2 else p.lower() for i, p in enumerate(parts)], key


class CompareMixin:
    if TYPE_CHECKING:  # from the other parts of engine.api.Engine
        async def get_experiment(self, ref: str | int) -> Experiment: ...
        async def get_run(self, ref: int | str) -> Run: ...
        async def list_runs(self, exp_ref: str | int | None = None) -> list[Run]: ...
        async def _summary(self, run: Run) -> dict[str, dict[str, Any]]: ...

    async def compare_target(self, ref: str | int
                             ) -> tuple[Run, dict[str, dict[str, Any]], str | None]:
        """(run, its metrics summary, a note) for one ref: a run (id or EXP/NUMBER), or an
        experiment, whose latest run with metrics stands for it; the note says which run
        that is when it is not the latest (or that none has metrics yet)."""
        try:
            exp = await self.get_experiment(ref)
            runs = await self.list_runs(exp.id)  # highest number first
            if not runs:
                raise NotFoundError(f"experiment {exp.name!r} has no runs yet")
        except NotFoundError as first:
            try:
                run = await self.get_run(ref)
            except NotFoundError:
                raise first from None
            return run, await self._summary(run), None
        for i, run in enumerate(runs):
            summary = await self._summary(run)
            if summary:
                return run, summary, _skipped_note(exp.name, run, runs[:i])
        latest = runs[0]
        return latest, {}, (f"{exp.name}: no run has metrics yet; showing run {latest.number}"
                            f" ({latest.status})")

    async def compare(self, refs: list[str | int]) -> Comparison:
        if len(refs) < 2:
            raise ValueError("compare needs two or more experiments or runs")
        targets = [await self.compare_target(ref) for ref in refs]
        runs = [run for run, _, _ in targets]
        summaries = [summary for _, summary, _ in targets]
        keys = sorted({k for r in runs for k in r.config}, key=natural_key)
        config = {k: [r.config.get(k) for r in runs] for k in keys}
        differing = [k for k, vals in config.items() if len({repr(v) for v in vals}) > 1]
        metrics: dict[str, dict[str, Any]] = {}
        objective = runs[0].objective
        all_keys = sorted({k for s in summaries for k in s
                           if not is_system_key(k) or k == objective}, key=natural_key)
        for key in all_keys:
            last = [s.get(key, {}).get("last") for s in summaries]
            best = [s.get(key, {}).get("best") for s in summaries]
            if is_ranked(key, objective):
                direction: str | None = direction_for(key, objective, runs[0].direction)
                best_last, best_best = _argbest(last, direction), _argbest(best, direction)
            else:
                direction = best_last = best_best = None
            metrics[key] = {"direction": direction, "ranked": direction is not None,
                            "last": last, "best": best,
                            "best_last": best_last, "best_best": best_best}
        labels = [r.label for r in runs]
        return Comparison(columns=labels, run_ids=[r.id for r in runs], config_keys=keys,
                          config=config, differing=differing, metrics=metrics,
                          notes=[note for _, _, note in targets if note])


def _skipped_note(name: str, taken: Run, skipped: list[Run]) -> str | None:
    """"lr-0.01: run 1, its latest with metrics (run 2 cancelled has none)"."""
    if not skipped:
        return None
    which = ", ".join(f"{r.number} {r.status}" for r in skipped)
    has = "run {} has none" if len(skipped) == 1 else "runs {} have none"
    return f"{name}: run {taken.number}, its latest with metrics ({has.format(which)})"


def _argbest(values: list[Any], direction: str | None) -> int | None:
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
