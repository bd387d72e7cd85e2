"""The adapter contract: what a model family must provide to be launched, searched and tuned.

Adapters import only this module. The engine hands them a ``Reporter`` (implemented by the
engine) and validated config dicts; it finds adapter classes through the
``labdeck.adapters`` entry-point group, where the built-in adapters register too.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

# ----------------------------------------------------------------------------- capabilities

TRAIN = "train"
EVALUATE = "evaluate"
INDEX = "index"
SEARCH_TEXT = "search_text"
SEARCH_IMAGE = "search_image"
RESUME = "resume"  # train(resume_from=...) continues from a checkpoint of an earlier run
ALL_CAPABILITIES = frozenset({TRAIN, EVALUATE, INDEX, SEARCH_TEXT, SEARCH_IMAGE, RESUME})


# ----------------------------------------------------------------------------- config schema


class ConfigError(ValueError):
    """One or more config fields are invalid. ``errors`` maps field name -> reason."""

    def __init__(self, errors: Mapping[str, str]):
        self.errors = dict(errors)
        text = "; ".join(f"{k}: {v}" for k, v in self.errors.items())
        super().__init__(f"invalid config: {text}")


_TYPES: dict[str, type] = {"int": int, "float": float, "str": str, "bool": bool}
# each type in words, for the errors a person reads ("expected a whole number (int), got 'lots'")
_EXPECTED = {"int": "a whole number (int)", "float": "a number", "str": "text",
             "bool": "true or false"}


@dataclass(frozen=True)
class Field:
    """One config key. ``type`` is one of int, float, str, bool."""

    name: str
    type: str
    default: Any = None
    help: str = ""
    min: float | None = None
    max: float | None = None
    choices: tuple[Any, ...] | None = None
    required: bool = False
    # min/max are inclusive unless these say otherwise
    min_exclusive: bool = False

    def expected(self) -> str:
        """What this field takes, in words, for error messages: "a whole number (int)",
        "a number", "true or false", "text", or the list of its choices."""
        if self.choices is not None:
            return "one of " + ", ".join(map(str, self.choices))
        return _EXPECTED[self.type]

    def parse(self, text: str) -> Any:
        """Parse a value typed by a user (CLI ``--set``, a TUI input) into this field's type.
        A ValueError says what was expected in words and what was given."""
        t = self.type
        s = text.strip()
        wrong = f"expected {self.expected()}, got {text!r}"
        if t == "bool":
            low = s.lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError(wrong)
        if t == "int":
            try:
                return int(s)
            except ValueError:
                try:
                    f = float(s)  # accept "1e3"
                except ValueError:
                    raise ValueError(wrong) from None
                if not f.is_integer():
                    raise ValueError(wrong) from None
                return int(f)
        if t == "float":
            try:
                value = float(s)
            except ValueError:
                raise ValueError(wrong) from None
            if not math.isfinite(value):
                raise ValueError(f"expected a finite number, got {text!r}")
            return value
        return text

    def check(self, value: Any) -> tuple[Any, str | None]:
        """Return (coerced value, error or None)."""
        t = self.type
        if value is None:
            if self.required:
                return value, "is required"
            return value, None
        wrong = f"expected {_EXPECTED[t]}, got {type(value).__name__} {value!r}"
        if t == "bool":
            if not isinstance(value, bool):
                return value, wrong
        elif t == "int":
            if isinstance(value, bool) or not isinstance(value, int):
                if isinstance(value, float) and value.is_integer():
                    value = int(value)
                else:
                    return value, wrong
        elif t == "float":
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                return value, wrong
            try:
                value = float(value)
            except OverflowError:  # an int beyond 1.8e308
                return value, "must be a finite number"
            if not math.isfinite(value):
                return value, f"must be a finite number, got {value!r}"
        elif t == "str":
            if not isinstance(value, str):
                return value, wrong
            if self.required and not value.strip():
                return value, "must not be empty"
        if self.choices is not None and value not in self.choices:
            return value, f"expected {self.expected()}, got {value!r}"
        if self.min is not None and t in ("int", "float"):
            if value < self.min or (self.min_exclusive and value == self.min):
                op = ">" if self.min_exclusive else ">="
                return value, f"must be {op} {self.min}, got {value!r}"
        if self.max is not None and t in ("int", "float") and value > self.max:
            return value, f"must be <= {self.max}, got {value!r}"
        return value, None


@dataclass(frozen=True)
class ConfigSchema:
    fields: tuple[Field, ...]

    def __post_init__(self) -> None:
        for f in self.fields:
            if f.type not in _TYPES:
                raise TypeError(f"field {f.name}: unknown type {f.type!r}")

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)

    def names(self) -> list[str]:
        return [f.name for f in self.fields]

    def defaults(self) -> dict[str, Any]:
        return {f.name: f.default for f in self.fields}

    def validate(self, config: Mapping[str, Any] | None) -> dict[str, Any]:
        """Fill defaults and check every key; raise ConfigError naming each bad field."""
        config = dict(config or {})
        errors: dict[str, str] = {}
        known = {f.name for f in self.fields}
        for key in config:
            if key not in known:
                errors[key] = f"unknown key (known: {', '.join(sorted(known))})"
        out: dict[str, Any] = {}
        for f in self.fields:
            value = config.get(f.name, f.default)
            value, err = f.check(value)
            if err:
                errors[f.name] = err
            out[f.name] = value
        if errors:
            raise ConfigError(errors)
        return out

    def parse_assignments(self, items: Sequence[str]) -> dict[str, Any]:
        """Parse ``key=value`` strings with each field's type; errors name the field."""
        out: dict[str, Any] = {}
        errors: dict[str, str] = {}
        for item in items:
            if "=" not in item:
                errors[item] = "expected key=value"
                continue
            key, _, text = item.partition("=")
            key = key.strip()
            try:
                out[key] = self.field(key).parse(text)
            except KeyError:
                errors[key] = f"unknown key (known: {', '.join(sorted(self.names()))})"
            except ValueError as exc:
                errors[key] = str(exc)
        if errors:
            raise ConfigError(errors)
        return out


# ----------------------------------------------------------------------------- search ranges


@dataclass(frozen=True)
class SearchRange:
    """Default hyperparameter range an adapter suggests for studies."""

    kind: str  # "float" | "int" | "categorical"
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple[Any, ...] | None = None


# ----------------------------------------------------------------------------- reporting


@runtime_checkable
class Reporter(Protocol):
    """What a running job gives an adapter. Implemented by the engine; adapters never import it.

    ``log`` is cheap (buffered); call it as often as every step.

    An engine reporter also has ``stop_grace_s``: when ``should_stop()`` turns true, an adapter
    that started child processes sends them one SIGTERM, waits that long, then SIGKILLs them
    (read it with ``getattr``, as a reporter outside the engine may not have it).

    And ``device``: the torch device string the job was given, ``"cpu"`` or ``"cuda"`` (the
    job's first GPU: the process sees only the GPUs the scheduler gave it, through
    ``CUDA_VISIBLE_DEVICES``). An adapter computes there; one that cannot fails with a clear
    error rather than falling back. Read it with ``reporter_device(reporter)``: a reporter
    without it means ``"cpu"``. Metric keys under ``sys/`` are the engine's own (system
    metrics) and refused from adapters.
    """

    run_dir: Path  # the run's directory; checkpoints go under run_dir / "checkpoints"

    def log(self, metrics: Mapping[str, float], step: int | None = None,
            epoch: float | None = None) -> None: ...

    def progress(self, fraction: float, message: str = "") -> None: ...

    def checkpoint_path(self, name: str) -> Path:
        """Safe path for a checkpoint file named ``name`` inside the run's checkpoints dir."""
        ...

    def checkpoint_saved(self, name: str, step: int | None = None) -> None:
        """Tell the engine a checkpoint file was written (after writing it)."""
        ...

    def should_stop(self) -> bool: ...

    def info(self, message: str) -> None:
        """A human line for the run's log."""
        ...


def reporter_device(reporter: object) -> str:
    """The device a reporter gives its job (``"cpu"`` or ``"cuda"``); "cpu" when it says none."""
    device = getattr(reporter, "device", None)
    return device if isinstance(device, str) and device else "cpu"


@dataclass
class EvalResult:
    """A generic eval result: JSON-able ``data`` plus the view type that renders it."""

    view_type: str
    data: dict[str, Any]
    summary: dict[str, float] = field(default_factory=dict)  # headline numbers


@dataclass
class SearchHit:
    rank: int
    score: float
    item_id: str
    text: str = ""
    image_path: str | None = None  # a PNG on disk (e.g. an index thumbnail)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SearchOption:
    """A user-selectable search parameter (e.g. bits 8..128, method hamming|cosine)."""

    name: str
    choices: tuple[Any, ...]
    default: Any
    label: str = ""


# ----------------------------------------------------------------------------- the base class


class BaseAdapter(ABC):
    """A model family. Required methods are abstract; optional ones raise NotImplementedError
    and are advertised through ``capabilities``."""

    name: ClassVar[str]
    description: ClassVar[str] = ""
    capabilities: ClassVar[frozenset[str]] = frozenset({TRAIN})
    result_view_type: ClassVar[str | None] = None
    # default objective for new experiments: (metric key, "minimize" | "maximize")
    default_objective: ClassVar[tuple[str, str] | None] = None
    # the config key that controls epochs, and the one that controls the training subset
    epochs_key: ClassVar[str | None] = None
    subset_key: ClassVar[str | None] = None

    @classmethod
    @abstractmethod
    def config_schema(cls) -> ConfigSchema: ...

    @abstractmethod
    def train(self, config: dict[str, Any], reporter: Reporter,
              resume_from: Path | None = None) -> dict[str, Any]:
        """Train with a validated config. Return a small JSON-able result dict.
        ``resume_from`` (a checkpoint file of an earlier run) is only ever given to an
        adapter that declares the ``resume`` capability."""

    # -- optional --------------------------------------------------------------------------

    def evaluate(self, config: dict[str, Any], checkpoint: Path, reporter: Reporter) -> EvalResult:
        raise NotImplementedError

    def build_index(self, config: dict[str, Any], checkpoint: Path, index_dir: Path,
                    reporter: Reporter) -> dict[str, Any]:
        raise NotImplementedError

    def load_index(self, index_dir: Path) -> Any:
        raise NotImplementedError

    def search_options(self) -> tuple[SearchOption, ...]:
        return ()

    def search_by_text(self, index: Any, query: str, k: int = 10,
                       **options: Any) -> list[SearchHit]:
        raise NotImplementedError

    def search_by_image(self, index: Any, path: Path, k: int = 10,
                        **options: Any) -> list[SearchHit]:
        raise NotImplementedError

    @classmethod
    def get_search_ranges(cls) -> dict[str, SearchRange]:
        return {}

    @classmethod
    def sample_queries(cls) -> tuple[str, ...]:
        """Example text queries a search UI can offer as one-key buttons (optional)."""
        return ()

    @classmethod
    def sample_images(cls, dest: Path) -> list[Path]:
        """Write example image files for image queries into ``dest``; their paths (optional;
        the demo home offers them in Search)."""
        return []

    # -- helpers ---------------------------------------------------------------------------

    @classmethod
    def validate_config(cls, config: Mapping[str, Any] | None) -> dict[str, Any]:
        return cls.config_schema().validate(config)

    @classmethod
    def parse_assignments(cls, items: Sequence[str]) -> dict[str, Any]:
        """Parse ``key=value`` strings (CLI ``--set``) with each field's type."""
        return cls.config_schema().parse_assignments(items)

    @classmethod
    def objective_from_config(cls, config: Mapping[str, Any]) -> tuple[str, str | None] | None:
        """The objective a config names, (metric key, "minimize" | "maximize" | None: from
        the key's name), for an adapter whose metrics are the user's own (the script
        adapter's config has ``objective`` and ``direction`` fields); None: the experiment's
        objective comes from elsewhere (``default_objective``, or what the caller gives)."""
        return None

    @classmethod
    def supports(cls, capability: str) -> bool:
        return capability in cls.capabilities
