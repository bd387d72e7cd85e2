"""`?`: every key of every screen and dialog, as currently mapped (user keymap included), the
screen it was opened on first, then the app's, then the rest by area. Each screen's keys sit
under a heading row of their own (no area column repeated on every row), so the ids, which
``keymap.json`` remaps, show whole even at 80x24.

Nothing here lists screens by hand: every ``Screen`` subclass of ``tui.screens`` that declares
``BINDINGS`` is found by importing the package's modules, and the areas come from
``tui.areas``; a new screen or dialog shows up here by declaring its bindings.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.keys import format_key
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Label

# how a person writes these keys; the rest as Textual shows them ("question_mark" -> "?")
WRITTEN = {"enter": "enter", "escape": "esc", "delete": "del"}


def key_display(keys: str) -> str:
    """``"escape,question_mark"`` -> ``"esc, ?"``; ``"ctrl+p"`` stays ``"ctrl+p"``."""
    shown = []
    for key in keys.split(","):
        *modifiers, name = key.strip().split("+")
        shown.append("+".join([*modifiers, WRITTEN.get(name) or format_key(name)]))
    return ", ".join(shown)


def screen_classes() -> list[type[Screen]]:
    """Every screen and dialog class of this package that declares its own bindings."""
    for info in pkgutil.iter_modules(importlib.import_module(__package__).__path__):
        importlib.import_module(f"{__package__}.{info.name}")
    found: list[type[Screen]] = []
    todo: list[type] = [Screen]
    while todo:
        for sub in todo.pop().__subclasses__():
            todo.append(sub)
            if sub.__module__.startswith(f"{__package__}.") and "BINDINGS" in vars(sub):
                found.append(sub)
    return list(dict.fromkeys(found))


class AreaLike(Protocol):
    """What help needs of an area (``tui.areas.Area``; the app hands them down)."""

    mode: str
    title: str
    screen: type[Screen]


def screen_title(cls: type[Screen], areas: Sequence[AreaLike] = ()) -> str:
    """An area's screen by the area's title, any other by its class name in words."""
    for a in areas:
        if a.screen is cls:
            return a.title.lower()
    name = re.sub(r"(Screen|Modal)$", "", cls.__name__) or cls.__name__
    return re.sub(r"(?<!^)(?=[A-Z])", " ", name).lower()


def sections(current: type[Screen] | None, app_bindings: Iterable[BindingType],
             areas: Sequence[AreaLike] = ()) -> list[tuple[str, list[Binding]]]:
    """(title, bindings) per screen: the current one, the app's, each area's screens in area
    order (the area's own screen, then the screens that belong to it), then the dialogs."""
    classes = screen_classes()
    order = {a.mode: i for i, a in enumerate(areas)}

    def rank(cls: type[Screen]) -> tuple:
        mode = getattr(cls, "AREA", "")
        own = any(a.screen is cls for a in areas)
        return (order.get(mode, len(order)), not own, screen_title(cls, areas))

    ordered = sorted((c for c in classes if c is not current), key=rank)
    out = [("global", _bindings(app_bindings))]
    out += [(screen_title(c, areas), _bindings(vars(c)["BINDINGS"])) for c in ordered]
    if current is not None and current in classes:
        out.insert(0, (screen_title(current, areas), _bindings(vars(current)["BINDINGS"])))
    return out


def _bindings(items: Iterable[BindingType]) -> list[Binding]:
    return [b if isinstance(b, Binding) else Binding(*b) for b in items]


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,question_mark,q", "dismiss", "Close", id="help.close")]

    def __init__(self, current: type[Screen] | None = None,
                 app_bindings: Sequence[BindingType] = (), keymap: Mapping[str, str] | None = None,
                 palette_key: str | None = None, areas: Sequence[AreaLike] = ()) -> None:
        super().__init__()
        self.areas = tuple(areas)
        self.current = current
        self.app_bindings = app_bindings
        self.keymap = dict(keymap or {})
        self.palette_key = palette_key

    def compose(self) -> ComposeResult:
        here = f"{screen_title(self.current, self.areas)} first · " if self.current else ""
        with Vertical(classes="dialog help"):
            yield Label(f"{here}remap ids in <home>/keymap.json · esc closes")
            yield DataTable(id="keys", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("key", "action", "id")
        for title, bindings in sections(self.current, self.app_bindings, self.areas):
            table.add_row(Text(title, "bold underline"), "", "", key=f"area:{title}")
            for b in bindings:
                keys = self.keymap.get(b.id or "", b.key)
                table.add_row(key_display(keys), b.description or b.action, b.id or "")
            if title == "global" and self.palette_key:
                table.add_row(key_display(self.palette_key), "Command palette", "")
