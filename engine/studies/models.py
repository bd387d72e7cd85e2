"""Records the studies API returns (engine-agnostic: read from labdeck's own tables)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..models import Record


@dataclass
class Trial(Record):
    number: int
    state: str  # running | complete | pruned | failed
    params: dict[str, Any]
    value: float | None
    intermediate: list[tuple[int, float]]
    run_id: int | None
    pid: int | None
    host: str | None
    started: float | None
    finished: float | None
    error: str | None

    @property
    def duration(self) -> float | None:
        if self.started is None:
            return None
        import time

        return (self.finished or time.time()) - self.started

    def to_json(self) -> dict[str, Any]:
        d = super().to_json()
        d["duration"] = self.duration
        return d


@dataclass
class Study(Record):
    id: int
    name: str
    adapter: str
    experiment: str | None  # the base experiment
    trials_experiment: str | None  # where each trial's run lives
    status: str  # created | queued | running | completed | cancelled | stopped | failed
    engine: str
    storage: str
    engine_study: str  # the study's name inside the storage (optuna.load_study's study_name)
    settings: dict[str, Any]
    space: dict[str, Any]
    base_config: dict[str, Any]
    job_id: int | None
    n_trials: int
    counts: dict[str, int] = field(default_factory=dict)  # per trial state, plus "left"
    best_trial: int | None = None
    best_value: float | None = None
    best_params: dict[str, Any] | None = None
    importance: dict[str, float] | None = None
    error: str | None = None
    created: float = 0.0
    updated: float = 0.0
