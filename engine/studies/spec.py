"""A study's settings (how many trials, how each trial trains, how it is judged) and the full
definition a worker needs to run trials: adapter, base config, space, settings.

The definition is JSON so it can live both in labdeck's ``studies`` table and in the tuner's
own storage, which lets a worker on another machine join with only a storage URL.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from adapters.base import ConfigError

from .space import Space, space_from_json, space_to_json

PRUNERS = ("none", "median", "hyperband")
DIRECTIONS = ("minimize", "maximize")


@dataclass(frozen=True)
class StudySettings:
    objective: str
    direction: str = "minimize"
    n_trials: int = 20
    search_epochs: int | None = 1
    subset_ratio: float | None = None
    pruner: str = "none"
    timeout_s: float | None = None
    workers: int = 1
    tuner: str = "optuna"
    storage: str | None = None  # None: the tuner's labdeck-managed default
    seed: int | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> StudySettings:
        names = cls.__dataclass_fields__
        if "engine" in d and "tuner" not in d:  # written before the tuner had its own name
            d = {**d, "tuner": d["engine"]}
        return cls(**{k: v for k, v in d.items() if k in names})

    def validate(self) -> StudySettings:
        errors: dict[str, str] = {}
        if not self.objective:
            errors["objective"] = "an objective metric is required (--objective)"
        if self.direction not in DIRECTIONS:
            errors["direction"] = f"must be minimize or maximize, got {self.direction!r}"
        if not isinstance(self.n_trials, int) or self.n_trials < 1:
            errors["n_trials"] = f"must be an integer >= 1, got {self.n_trials!r}"
        if self.search_epochs is not None and (
                not isinstance(self.search_epochs, int) or self.search_epochs < 1):
            errors["search_epochs"] = f"must be an integer >= 1, got {self.search_epochs!r}"
        if self.subset_ratio is not None and not (0 < float(self.subset_ratio) <= 1):
            errors["subset_ratio"] = f"must be in (0, 1], got {self.subset_ratio!r}"
        if self.pruner not in PRUNERS:
            errors["pruner"] = f"must be one of {', '.join(PRUNERS)}, got {self.pruner!r}"
        if self.timeout_s is not None and float(self.timeout_s) <= 0:
            errors["timeout_s"] = f"must be > 0 seconds, got {self.timeout_s!r}"
        if not isinstance(self.workers, int) or self.workers < 1:
            errors["workers"] = f"must be an integer >= 1, got {self.workers!r}"
        if errors:
            raise ConfigError(errors)
        return self


@dataclass
class StudyDefinition:
    """Everything a worker needs to run a trial of this study."""

    name: str
    adapter: str
    base_config: dict[str, Any]
    space: Space
    settings: StudySettings
    trials_experiment: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "adapter": self.adapter, "base_config": self.base_config,
                "space": space_to_json(self.space), "settings": self.settings.to_json(),
                "trials_experiment": self.trials_experiment}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> StudyDefinition:
        return cls(name=d["name"], adapter=d["adapter"], base_config=dict(d["base_config"]),
                   space=space_from_json(d["space"]),
                   settings=StudySettings.from_json(d["settings"]),
                   trials_experiment=d.get("trials_experiment"))

    @property
    def searched(self) -> list[str]:
        return [k for k, p in self.space.items() if p.searched]

    def fixed(self) -> dict[str, Any]:
        return {k: p.value for k, p in self.space.items() if not p.searched}
