"""The tuner plugin contract (``BaseTuner``) and the records it hands back.

A tuner is a study's search back end: it samples each trial's params and owns the study's
trials in its own storage (Optuna: an RDB or journal URL; random: a small SQLite file).
labdeck talks to it through this interface only: the runner claims a trial (``ask``), reports
the objective per epoch (``report``, which answers "prune?") and ends it (``tell``); screens
read labdeck's mirror tables, filled from ``trials()``. Tuners are plugins: the
``labdeck.tuners`` entry-point group names them (``tuner_registry``).

Counting rule: a study has exactly ``n_trials`` trial slots. A study's tuner creates them up
front (``ensure_slots``), and ``ask`` only ever claims an existing slot, atomically in the
tuner's storage, so k workers on one study make exactly ``n_trials`` trials and never run one
twice. A trial interrupted by cancel is marked failed with ``cancelled`` (a tuner's own states
have no cancelled; labdeck's mirror shows it cancelled) and does not use up a slot: starting
the study again adds a fresh one.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from ..records import HOST, pid_alive
from .spec import StudyDefinition

STATES = ("waiting", "running", "complete", "pruned", "failed")
FINISHED = ("complete", "pruned", "failed")


@dataclass
class TunerTrial:
    """One trial as the tuner stores it (tuner-agnostic)."""

    number: int
    state: str  # one of STATES
    params: dict[str, Any]
    value: float | None = None
    intermediate: list[tuple[int, float]] = field(default_factory=list)
    started: float | None = None
    finished: float | None = None
    attrs: dict[str, Any] = field(default_factory=dict)  # pid, host, home, run_id, error...

    @property
    def cancelled(self) -> bool:
        return bool(self.attrs.get("cancelled"))


@dataclass
class TrialHandle:
    """A claimed, running trial. ``params`` holds the sampled values of searched params."""

    number: int
    params: dict[str, Any]
    native: Any = None  # the tuner's own trial object


class BaseTuner(ABC):
    """One study in one tuner's storage. Instances are per process (not shared)."""

    name: ClassVar[str]
    description: ClassVar[str] = ""
    supports_pruning: ClassVar[bool] = True

    def __init__(self, definition: StudyDefinition, storage: str, home: Path,
                 tuner_study: str, worker_index: int = 0):
        self.definition = definition
        self.storage = storage
        self.home = Path(home)
        self.tuner_study = tuner_study  # the study's name inside the storage
        self.worker_index = worker_index

    # -- storage -------------------------------------------------------------------------

    @classmethod
    @abstractmethod
    def default_storage(cls, home: Path) -> str:
        """The labdeck-managed storage URL under ``home``."""

    @classmethod
    @abstractmethod
    def load_definition(cls, storage: str, tuner_study: str) -> dict[str, Any] | None:
        """The study definition stored with the study (for a worker joining from elsewhere)."""

    @abstractmethod
    def create(self) -> None:
        """Create the study in the storage (idempotent) with its definition and slots."""

    @abstractmethod
    def ensure_slots(self, n_trials: int) -> int:
        """Make the study hold ``n_trials`` countable trials; returns how many were added."""

    # -- trials --------------------------------------------------------------------------

    @abstractmethod
    def ask(self, attrs: dict[str, Any]) -> TrialHandle | None:
        """Claim a waiting slot and sample its params; None when no slot is left."""

    @abstractmethod
    def report(self, handle: TrialHandle, step: int, value: float) -> bool:
        """Record an intermediate objective value; True when the pruner says stop."""

    @abstractmethod
    def tell(self, handle: TrialHandle, state: str, value: float | None = None,
             attrs: dict[str, Any] | None = None) -> None:
        """End a trial: state complete (with value), pruned or failed."""

    @abstractmethod
    def trials(self) -> list[TunerTrial]:
        ...

    @abstractmethod
    def fail_trial(self, number: int, attrs: dict[str, Any]) -> bool:
        """Mark a running trial failed (its worker died). False when it is not running."""

    # -- study-wide flags ----------------------------------------------------------------

    @abstractmethod
    def set_stop(self, flag: bool) -> None:
        """Ask every worker of the study, wherever it runs, to stop after/within its trial."""

    @abstractmethod
    def stop_requested(self) -> bool:
        ...

    # -- optional ------------------------------------------------------------------------

    def waiting_slots(self) -> int:
        """Trials still to be claimed by some worker."""
        return sum(1 for t in self.trials() if t.state == "waiting")

    def running_trials(self) -> list[TunerTrial]:
        return [t for t in self.trials() if t.state == "running"]

    def fail_stale(self) -> list[int]:
        """Fail running trials whose worker is gone. Base rule: a trial started on this host
        whose worker pid is dead. Tuners may add heartbeat-based rules for other hosts."""
        failed = []
        for t in self.running_trials():
            pid, host = t.attrs.get("pid"), t.attrs.get("host")
            if pid and host == HOST and pid != os.getpid() and not pid_alive(int(pid)):
                if self.fail_trial(t.number, {"error": f"worker process {pid} on {host} died"}):
                    failed.append(t.number)
        return failed

    def importance(self, trials: list[TunerTrial] | None = None) -> dict[str, float]:
        from .importance import correlation_importance

        done = [t for t in (trials if trials is not None else self.trials())
                if t.state == "complete" and t.value is not None]
        return correlation_importance(done, self.definition.space)

    def close(self) -> None:
        return None


def count_slots(trials: list[TunerTrial]) -> int:
    """Trials that use up a slot: all but the ones interrupted by cancel."""
    return sum(1 for t in trials if not (t.state == "failed" and t.cancelled))
