"""Where a SigLIP backbone may come from: the config check that both the adapter (when it
validates a config, standard library only) and the SigLIP loader use."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SIGLIP_MODEL_TYPES = ("siglip",)


def backbone_path_problem(path: Any) -> str | None:
    """Why ``path`` cannot hold a SigLIP model, or None. Standard library only (config checks)."""
    if not isinstance(path, str) or not path.strip():
        return ("required when backbone=siglip: a local directory holding a SigLIP model "
                "saved with save_pretrained (config.json + weights)")
    p = Path(path).expanduser()
    if not p.is_dir():
        return f"not a directory: {path}" if p.exists() else f"no such directory: {path}"
    cfg = p / "config.json"
    if not cfg.is_file():
        return f"no config.json in {path} (expected a model saved with save_pretrained)"
    try:
        model_type = json.loads(cfg.read_text("utf-8")).get("model_type")
    except (OSError, ValueError) as exc:
        return f"unreadable config.json in {path}: {exc}"
    if model_type not in SIGLIP_MODEL_TYPES:
        return (f"{path} holds a {model_type!r} model; supported: "
                f"{', '.join(SIGLIP_MODEL_TYPES)}")
    return None
