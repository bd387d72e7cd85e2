"""User key remapping: ``<home>/keymap.json`` maps binding ids to keys, e.g.
``{"experiments.new": "N", "app.jobs": "f3"}``; applied through Textual's ``set_keymap``."""

from __future__ import annotations

import json
from pathlib import Path


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
