"""Text the Studies area derives from a study and its trials: state badges, the progress line,
trial-table cells and sort keys, the best-so-far curve, the importance bars, the best-K trials
and the parallel coordinates' axes and lines. Pure functions (no widgets, no engine calls)
so the list, the detail and the docs capture agree."""

from __future__ import annotations

import math
from typing import Any

from rich.text import Text

from ..clock import elapsed, fmt_duration, fmt_num
from ..run_status import arrow
from ..widgets.parallel_coords import Axis, TrialLine

STATE_ICON = {"created": "○", "queued": "…", "running": "▶", "completed": "✓",
              "cancelled": "■", "stopped": "■", "failed": "✗"}
STATE_STYLE = {"running": "bold cyan", "completed": "green", "failed": "red",
               "cancelled": "yellow", "stopped": "yellow", "queued": "cyan"}
TRIAL_ICON = {"running": "▶", "complete": "✓", "pruned": "✂", "failed": "✗", "cancelled": "■"}
TRIAL_STYLE = {"running": "bold cyan", "complete": "", "pruned": "dim", "failed": "dim red",
               "cancelled": "dim yellow"}
ACTIVE = ("queued", "running")


def count_text(n: int, one: str, many: str) -> str:
    """``1 study``, ``3 studies``: a count with its noun in the right number."""
    return f"{n:,} {one if n == 1 else many}"


def state_text(status: str) -> Text:
    return Text(f"{STATE_ICON.get(status, '?')} {status}", STATE_STYLE.get(status, ""))


def finished_count(study: Any) -> int:
    c = study.counts
    return c.get("complete", 0) + c.get("pruned", 0) + c.get("failed", 0)


def trials_text(study: Any) -> str:
    return f"{finished_count(study)}/{study.n_trials}"


def best_text(study: Any) -> str:
    st = study.settings
    text = f"{st.get('objective', '-')} {arrow(st.get('direction', ''))} {fmt_num(study.best_value)}"
    return text + (f" (#{study.best_trial})" if study.best_trial is not None else "")


def trial_duration(t: Any) -> float | None:
    return elapsed(t.started, t.finished)


def eta_seconds(study: Any, trials: list) -> float | None:
    """The mean duration of the finished trials for each trial still to run, plus what the
    running trials have left of it, over the workers: it counts down between trials."""
    if study.status not in ACTIVE:
        return None
    done = [d for t in trials if t.state in ("complete", "pruned")
            and (d := trial_duration(t)) is not None]
    if not done:
        return None
    mean = sum(done) / len(done)
    running = [t for t in trials if t.state == "running"]
    # a running trial not yet in the mirror (or without a start) counts as a whole one
    unseen = max(0, study.counts.get("running", 0) - len(running))
    left = (study.counts.get("left", 0) + unseen) * mean
    left += sum(max(0.0, mean - (trial_duration(t) or 0.0)) for t in running)
    workers = max(1, int(study.settings.get("workers") or 1))
    return left / workers


def progress_line(study: Any, trials: list) -> Text:
    c = study.counts
    running = c.get("running", 0)
    current = min(study.n_trials, finished_count(study) + (1 if running else 0))
    text = Text.assemble((study.name, "bold"), "  ", state_text(study.status),
                         f"  trial {current}/{study.n_trials}")
    # zero counts say nothing: left out; a cancelled trial is none of the n_trials
    for key in ("running", "pruned", "failed", "cancelled"):
        if c.get(key, 0) or (key == "running" and study.status in ACTIVE):
            text.append(f"  {c.get(key, 0)} {key}")
    text.append(f"  best {best_text(study)}")
    if study.status in ACTIVE:
        text.append(f"  ETA {fmt_duration(eta_seconds(study, trials))}")
    return text


def searched_params(study: Any) -> list[str]:
    return [k for k, p in study.space.items() if p.get("kind") != "fixed"]


# ------------------------------------------------------------------ the trial table

def trial_cells(t: Any, params: list[str], best: int | None) -> list[Text]:
    style = TRIAL_STYLE.get(t.state, "")
    star = Text("★", "bold yellow") if t.number == best else Text("")
    value = t.value
    if value is None and t.state == "pruned" and t.intermediate:
        value_text = Text(f"({fmt_num(t.intermediate[-1][1])})", style)
    else:
        value_text = Text(fmt_num(value), style)
    cells = [star, Text(f"#{t.number}", style),
             Text(f"{TRIAL_ICON.get(t.state, '?')} {t.state}", style), value_text]
    cells += [Text(fmt_param(t.params.get(p)), style) for p in params]
    cells.append(trial_time_text(t))
    return cells


def trial_time_text(t: Any) -> Text:
    d = trial_duration(t)
    return Text(f"{d:.1f}s" if d is not None and d < 10 else fmt_duration(d),
                TRIAL_STYLE.get(t.state, ""))


def fmt_param(v: Any) -> str:
    if isinstance(v, float):
        return fmt_num(v)
    return "-" if v is None else str(v)


def trial_sort_key(column: str, direction: str):
    sign = 1 if direction == "minimize" else -1

    def key(t: Any) -> tuple:
        if column == "#":
            return (t.number,)
        if column == "state":
            return (t.state, t.number)
        if column == "value":  # best first, unvalued last
            return (t.value is None, sign * (t.value or 0.0), t.number)
        if column == "duration":
            return (trial_duration(t) or 0.0, t.number)
        v = t.params.get(column)
        return (v is None, str(type(v)), v if v is not None else 0, t.number)

    return key


# ------------------------------------------------------------------ charts

def best_so_far(trials: list, direction: str) -> tuple[list[float], list[float]]:
    """A step line through the best complete value after each trial (x: trial number)."""
    better = min if direction == "minimize" else max
    xs: list[float] = []
    ys: list[float] = []
    best: float | None = None
    for t in sorted(trials, key=lambda t: t.number):
        if t.state != "complete" or t.value is None or not math.isfinite(t.value):
            continue
        new = t.value if best is None else better(best, t.value)
        if best is not None and new != best:
            xs.append(t.number)
            ys.append(best)
        best = new
        xs.append(t.number)
        ys.append(best)
    ended = [t.number for t in trials if t.state != "running"]
    if xs and ended:
        last = max(ended)
        if last > xs[-1]:
            xs.append(last)
            ys.append(ys[-1])
    return xs, ys


def importance_bars(importance: dict[str, float], width: int = 20) -> Text:
    if not importance:
        return Text("no importance (needs two or more complete trials)", "dim")
    items = sorted(importance.items(), key=lambda kv: -kv[1])
    name_w = min(16, max(len(k) for k in importance))
    top = max(v for _, v in items) or 1.0
    text = Text()
    for i, (k, v) in enumerate(items):
        n = max(0, round(width * v / top))
        text.append(f"{k[:name_w]:<{name_w}} ")
        text.append("█" * n, "bold magenta")
        text.append("░" * (width - n), "dim")
        text.append(f" {v:.2f}")
        if i < len(items) - 1:
            text.append("\n")
    return text


def best_params_text(study: Any) -> Text:
    if study.best_params is None:
        return Text("no complete trial yet", "dim")
    searched = set(searched_params(study))
    text = Text.assemble(("trial ", "dim"), (f"#{study.best_trial}", "bold yellow"),
                         ("  value ", "dim"), (fmt_num(study.best_value), "bold"))
    for k, v in study.best_params.items():
        text.append("\n")
        text.append(f"{k} = ", "" if k in searched else "dim")
        text.append(fmt_param(v), "bold" if k in searched else "dim")
    return text


# Below this many complete trials an importance is mostly noise: PED-ANOVA compares the top
# 10% of trials with the rest (one or two trials), a rank correlation on a handful of points
# swings with each new one.
RELIABLE_IMPORTANCE_TRIALS = 20


def importance_caveat(complete: int) -> Text | None:
    """A warning to print with an importance computed from ``complete`` trials, or None when
    there are enough of them to read it as a ranking."""
    if complete >= RELIABLE_IMPORTANCE_TRIALS:
        return None
    return Text(f"⚠ from only {complete} complete trial{'s' if complete != 1 else ''}:"
                f" unreliable below ~{RELIABLE_IMPORTANCE_TRIALS}; read it as a hint,"
                " not a ranking", "yellow")


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)


def best_trials(trials: list, direction: str, k: int | None = None) -> list:
    """The complete trials with a value, best first by ``direction`` (ties: the earlier
    trial); only the first ``k`` when k is given."""
    sign = 1 if direction == "minimize" else -1
    done = sorted((t for t in trials if t.state == "complete" and _finite(t.value)),
                  key=lambda t: (sign * t.value, t.number))
    return done if k is None else done[:k]


def clip_best_line(line: tuple[list[float], list[float]], worst: float,
                   direction: str) -> tuple[list[float], list[float]]:
    """The part of a best-so-far line no worse than ``worst`` (the K-th best value): the
    line as the best K trials alone draw it, from the first of them on."""
    ok = (lambda y: y <= worst) if direction == "minimize" else (lambda y: y >= worst)
    pairs = [(x, y) for x, y in zip(*line, strict=True) if ok(y)]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def parallel_axes(study: Any, log_objective: bool = False) -> list[Axis]:
    """One axis per searched parameter, in the space's order, then the objective."""
    axes = []
    for name in searched_params(study):
        p = study.space[name]
        axes.append(Axis(name, p.get("kind", "float"), p.get("low"), p.get("high"),
                         bool(p.get("log")), tuple(p.get("choices") or ())))
    st = study.settings
    axes.append(Axis(str(st.get("objective") or "objective"), log=log_objective,
                     note=arrow(st.get("direction", ""))))
    return axes


def parallel_lines(study: Any, trials_best_first: list) -> list[TrialLine]:
    params = searched_params(study)
    return [TrialLine(t.number, (*(t.params.get(p) for p in params), t.value))
            for t in trials_best_first]
