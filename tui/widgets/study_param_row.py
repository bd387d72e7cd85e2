"""One row of a study's parameter table: fixed (a value) or searched (float / int range with
an optional log scale, or a list of choices), pre-filled from the adapter's default search
range or, failing that, from the experiment's value. Reports its spec; the form validates.
The range's boxes carry their own ``min`` / ``max`` labels; ticks read ``[x]`` / ``[ ]``."""

from __future__ import annotations

import json
from typing import Any

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Input, Label, Select, Static

from adapters.base import Field
from engine.studies.space import ParamSpec

from .tick_box import TickBox

KINDS = (("float", "float"), ("int", "int"), ("choices", "categorical"))


def literal(text: str) -> Any:
    """A typed value from text: JSON scalars (1, 0.5, true, "x") else the text itself."""
    try:
        v = json.loads(text)
    except ValueError:
        return text
    return v if isinstance(v, (int, float, bool, str)) else text


def guess_range(value: Any, field_type: str | None) -> ParamSpec:
    """A starting range for a parameter the adapter has no default range for."""
    if isinstance(value, bool) or field_type == "bool":
        return ParamSpec("categorical", choices=(True, False))
    if field_type == "int" or (field_type is None and isinstance(value, int)):
        v = int(value or 1)
        return ParamSpec("int", low=max(1, v // 2), high=max(v * 2, v + 1))
    if isinstance(value, (int, float)):
        v = float(value)
        if v > 0:
            return ParamSpec("float", low=v / 10, high=v * 10, log=True)
        return ParamSpec("float", low=-1.0, high=1.0)
    return ParamSpec("categorical", choices=(value,) if value not in (None, "") else ())


def _num(v: Any) -> str:
    return "" if v is None else (f"{v:g}" if isinstance(v, float) else str(v))


class ParamRow(Vertical):
    def __init__(self, name: str, value: Any, default: ParamSpec | None,
                 field: Any = None, **kw: Any) -> None:
        super().__init__(classes="prow", **kw)
        self.param = name
        self.value = value
        self.field = field
        self.default = default
        self.initial = default or guess_range(value, field.type if field else None)

    def compose(self) -> ComposeResult:
        s = self.initial
        with Horizontal(classes="pline"):
            yield Label(self.param, classes="pname")
            yield TickBox("", self.default is not None, compact=True, classes="p-search",
                          tooltip="ticked: the study searches it; not: fixed at its value")
            yield Select(KINDS, value=s.kind, allow_blank=False, compact=True, classes="p-kind")
            yield Label("min", classes="p-bound")
            yield Input(_num(s.low), placeholder="min", compact=True, classes="p-min")
            yield Label("max", classes="p-bound")
            yield Input(_num(s.high), placeholder="max", compact=True, classes="p-max")
            yield TickBox("log", s.log, compact=True, classes="p-log",
                          tooltip="sample on a log scale (min must be > 0)")
            yield Input(",".join(map(str, s.choices or ())), placeholder="a,b,c", compact=True,
                        classes="p-choices")
            yield Input("" if self.value is None else str(self.value), placeholder="value",
                        compact=True, classes="p-value")
        yield Static("", classes="perror")

    def on_mount(self) -> None:
        self.sync()

    @property
    def searched(self) -> bool:
        return self.query_one(".p-search", TickBox).value

    def mode(self) -> str:
        if not self.searched:
            return "fixed"
        return str(self.query_one(".p-kind", Select).value)

    def sync(self) -> None:
        """Show the inputs the mode needs."""
        mode = self.mode()
        for cls in ("fixed", "range", "categorical"):
            self.set_class(cls == ("range" if mode in ("float", "int") else mode), f"-{cls}")

    def changed(self) -> bool:
        return self.searched or self.spec()[0] != ParamSpec("fixed", value=self.value)

    def spec(self) -> tuple[ParamSpec | None, str | None]:
        """This row's spec, or the reason it cannot be read (text that is not a number)."""
        mode = self.mode()
        if mode == "fixed":
            text = self.query_one(".p-value", Input).value
            try:
                value = self.field.parse(text) if self.field else literal(text.strip())
            except ValueError as exc:
                return None, f"value: {exc}"
            return ParamSpec("fixed", value=value), None
        if mode == "categorical":
            text = self.query_one(".p-choices", Input).value
            choices = tuple(literal(c.strip()) for c in text.split(",") if c.strip())
            return ParamSpec("categorical", choices=choices), None
        bounds = []
        for bound in ("min", "max"):
            text = self.query_one(f".p-{bound}", Input).value.strip()
            try:  # the config schema's parsing, so the reason names the type in words
                bounds.append(Field(bound, mode).parse(text))
            except ValueError as exc:
                return None, f"{bound}: {exc}"
        log = self.query_one(".p-log", TickBox).value
        return ParamSpec(mode, low=bounds[0], high=bounds[1], log=log), None

    def show_error(self, message: str | None) -> None:
        self.query_one(".perror", Static).update(f"✗ {message}" if message else "")
        self.set_class(bool(message), "invalid")
