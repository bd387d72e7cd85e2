"""User key remapping: ``<home>/keymap.json`` maps binding ids to keys, e.g.
``{"experiments.new": "N", "app.jobs": "f3"}``; applied through Textual's ``set_keymap``.
And the number keys that open a screen's tabs, declared the same way on every screen."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from textual.binding import Binding


def load_keymap(home: Path) -> tuple[dict[str, str], str | None]:
    """Return (keymap, error message or None)."""
    path = home / "keymap.json"
    if not path.exists():
        return {}, None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        return {}, f"{path}: {exc}"
    if not isinstance(data, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        return {}, f"{path}: expected an object of binding id -> keys"
    return data, None


def tab_keys(area: str, titles: Sequence[str]) -> list[Binding]:
    """Keys ``1``, ``2``, ... that open a screen's tabs (action ``tab(i)``, ids
    ``<area>.tab_<i>``), so a tab is reached without focusing the tab bar. Left out of the
    footer: the tab titles carry their numbers."""
    return [Binding(str(i), f"tab({i})", f"{title.capitalize()} tab", id=f"{area}.tab_{i}",
                    show=False) for i, title in enumerate(titles, 1)]

