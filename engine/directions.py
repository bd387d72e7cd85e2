"""Which way is better for a metric: the experiment's objective direction wins, otherwise
loss-like names are minimised and everything else maximised.

System metrics (keys under ``sys/``: what a job's processes and GPUs were doing, sampled by
engine/system_metrics.py) have no better way: "best" tables, summaries and default objectives
leave them out, and only an objective named explicitly can be one."""

from __future__ import annotations

import re

_MIN_TOKENS = re.compile(
    r"(loss|err|error|mse|mae|rmse|perplexity|ppl|nll|wer|cer|distance|time|latency)",
    re.IGNORECASE,
)


SYSTEM_PREFIX = "sys/"


def is_system_key(key: str) -> bool:
    """A system metric (``sys/...``), not a result of the job."""
    return key.startswith(SYSTEM_PREFIX)


def direction_for(key: str, objective: str | None = None, objective_direction: str | None = None) -> str:
    if objective and key == objective and objective_direction in ("minimize", "maximize"):
        return objective_direction
    leaf = key.rsplit("/", 1)[-1]
    return "minimize" if _MIN_TOKENS.search(leaf) else "maximize"
