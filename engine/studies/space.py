"""A study's search space: each parameter fixed or searched (float, int, categorical).

Spaces are plain JSON-able dicts on disk (``ParamSpec.to_json``) so every tuner, the
labdeck tables and the Optuna study's user attributes hold the same description. An invalid
space is refused here, before anything runs, with an error naming the parameter.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from adapters.base import BaseAdapter, ConfigError, SearchRange

KINDS = ("float", "int", "categorical", "fixed")


class SpaceError(ConfigError):
    """The search space is invalid; ``errors`` maps parameter name -> reason."""

    def __init__(self, errors: Mapping[str, str]):
        super().__init__(errors)
        text = "; ".join(f"{k}: {v}" for k, v in self.errors.items())
        self.args = (f"invalid search space: {text}",)

    def __str__(self) -> str:
        return self.args[0]


@dataclass(frozen=True)
class ParamSpec:
    kind: str  # float | int | categorical | fixed
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple[Any, ...] | None = None
    value: Any = None  # for fixed

    @property
    def searched(self) -> bool:
        return self.kind != "fixed"

    def bounds(self) -> tuple[float, float]:
        """A numeric parameter's range (parsing guarantees both ends for int and float)."""
        if self.low is None or self.high is None:
            raise ValueError(f"a {self.kind} parameter needs low and high")
        return self.low, self.high

    def to_json(self) -> dict[str, Any]:
        if self.kind == "fixed":
            return {"kind": "fixed", "value": self.value}
        if self.kind == "categorical":
            return {"kind": "categorical", "choices": list(self.choices or ())}
        return {"kind": self.kind, "low": self.low, "high": self.high, "log": self.log}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> ParamSpec:
        kind = d.get("kind")
        if kind == "fixed":
            return cls("fixed", value=d.get("value"))
        if kind == "categorical":
            return cls("categorical", choices=tuple(d.get("choices") or ()))
        return cls(str(kind), low=d.get("low"), high=d.get("high"), log=bool(d.get("log")))

    @classmethod
    def from_range(cls, r: SearchRange) -> ParamSpec:
        if r.kind == "categorical":
            return cls("categorical", choices=tuple(r.choices or ()))
        return cls(r.kind, low=r.low, high=r.high, log=r.log)

    def describe(self) -> str:
        if self.kind == "fixed":
            return f"= {self.value!r}"
        if self.kind == "categorical":
            return "{" + ", ".join(map(str, self.choices or ())) + "}"
        return f"{self.kind} [{self.low}, {self.high}]" + (" log" if self.log else "")


Space = dict[str, ParamSpec]


def space_to_json(space: Space) -> dict[str, Any]:
    return {k: v.to_json() for k, v in space.items()}


def space_from_json(d: Mapping[str, Any]) -> Space:
    return {k: ParamSpec.from_json(v) for k, v in d.items()}


# ------------------------------------------------------------------ parsing CLI text


def _literal(text: str) -> Any:
    try:
        v = json.loads(text)
    except ValueError:
        return text
    return v if isinstance(v, (int, float, bool, str)) else text


def parse_param(item: str, field_type: str | None = None) -> tuple[str, ParamSpec]:
    """``NAME=MIN:MAX[:log]`` (range), ``NAME=a,b,c`` (choices), ``NAME=V`` (fixed).

    ``field_type`` (the adapter's config field type, when known) decides int vs float."""
    if "=" not in item:
        raise SpaceError({item: "expected NAME=MIN:MAX[:log], NAME=a,b,c or NAME=VALUE"})
    name, _, text = item.partition("=")
    name, text = name.strip(), text.strip()
    if not name:
        raise SpaceError({item: "missing parameter name"})
    if "," in text:
        choices = tuple(_literal(c.strip()) for c in text.split(",") if c.strip() != "")
        return name, ParamSpec("categorical", choices=choices)
    if ":" in text:
        parts = text.split(":")
        log = False
        if len(parts) == 3 and parts[2].strip().lower() == "log":
            log, parts = True, parts[:2]
        if len(parts) != 2:
            raise SpaceError({name: f"expected MIN:MAX or MIN:MAX:log, got {text!r}"})
        try:
            lo, hi = float(parts[0]), float(parts[1])
        except ValueError:
            raise SpaceError({name: f"MIN and MAX must be numbers, got {text!r}"}) from None
        is_int = field_type == "int" or (
            field_type is None and all(_is_int_text(p) for p in parts))
        if is_int:
            if not (lo.is_integer() and hi.is_integer()):
                raise SpaceError({name: f"integer parameter needs integer bounds, got {text!r}"})
            return name, ParamSpec("int", low=int(lo), high=int(hi), log=log)
        return name, ParamSpec("float", low=lo, high=hi, log=log)
    if text == "":
        raise SpaceError({name: "empty value"})
    return name, ParamSpec("fixed", value=_literal(text))


def _is_int_text(t: str) -> bool:
    try:
        int(t.strip())
        return True
    except ValueError:
        return False


# ------------------------------------------------------------------ defaults and validation


def default_space(adapter_cls: type[BaseAdapter]) -> Space:
    return {k: ParamSpec.from_range(r) for k, r in adapter_cls.get_search_ranges().items()}


def known_params(adapter_cls: type[BaseAdapter], base_config: Mapping[str, Any]) -> set[str]:
    try:
        names = set(adapter_cls.config_schema().names())
    except Exception:  # noqa: BLE001 - a schema that cannot be built names nothing
        names = set()
    return names | set(base_config)


def validate_space(space: Space, adapter_cls: type[BaseAdapter],
                   base_config: Mapping[str, Any],
                   reserved: Mapping[str, str] | None = None) -> Space:
    """Check every parameter; raise SpaceError naming each bad one. ``reserved`` maps config
    keys the study itself sets (epochs, subset) to the setting that controls them."""
    errors: dict[str, str] = {}
    known = known_params(adapter_cls, base_config)
    for name, p in space.items():
        if name not in known:
            errors[name] = (f"unknown parameter for adapter {adapter_cls.name}"
                            f" (known: {', '.join(sorted(known)) or 'none'})")
            continue
        if reserved and name in reserved and p.searched:
            errors[name] = f"set by the study's {reserved[name]} setting; not searchable"
            continue
        err = _check(p)
        if err:
            errors[name] = err
    if errors:
        raise SpaceError(errors)
    if not any(p.searched for p in space.values()):
        raise SpaceError({"space": "no parameter is searched (give --param NAME=MIN:MAX or "
                                   "NAME=a,b,c, or use an adapter with default search ranges)"})
    # every edge of the space must be a valid config for the adapter
    for name, p in space.items():
        for v in _edges(p):
            try:
                adapter_cls.validate_config({**base_config, name: v})
            except ConfigError as exc:
                reason = exc.errors.get(name) or "; ".join(f"{k}: {r}" for k, r in
                                                           exc.errors.items())
                errors[name] = f"value {v!r} is not valid for the adapter: {reason}"
                break
    if errors:
        raise SpaceError(errors)
    return space


def _check(p: ParamSpec) -> str | None:
    if p.kind not in KINDS:
        return f"unknown kind {p.kind!r} (one of {', '.join(KINDS)})"
    if p.kind == "fixed":
        return None
    if p.kind == "categorical":
        if not p.choices:
            return "empty choices"
        if len(set(map(repr, p.choices))) != len(p.choices):
            return "duplicate choices"
        return None
    if p.low is None or p.high is None:
        return "min and max are required"
    lo, hi = float(p.low), float(p.high)
    if math.isnan(lo) or math.isnan(hi) or math.isinf(lo) or math.isinf(hi):
        return "min and max must be finite"
    if lo >= hi:
        return f"min ({p.low}) must be < max ({p.high})"
    if p.log and lo <= 0:
        return f"log scale needs min > 0, got {p.low}"
    if p.kind == "int" and not (float(p.low).is_integer() and float(p.high).is_integer()):
        return "integer parameter needs integer bounds"
    return None


def _edges(p: ParamSpec) -> list[Any]:
    if p.kind == "fixed":
        return [p.value]
    if p.kind == "categorical":
        return list(p.choices or ())
    if p.kind == "int":
        lo, hi = p.bounds()
        return [int(lo), int(hi)]
    return list(p.bounds())
