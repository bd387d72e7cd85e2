"""Where a run's and a job's files live, and checks that user-given names stay inside them."""

from __future__ import annotations

import json
import os
from pathlib import Path

from .settings import Settings


class UnsafePathError(ValueError):
    pass


def job_log_path(settings: Settings, job_id: int, run_id: int | None) -> Path:
    if run_id:
        return settings.run_dir(run_id) / f"job-{int(job_id)}.log"
    return settings.home / "jobs" / f"{int(job_id)}.log"


def checkpoints_dir(settings: Settings, run_id: int) -> Path:
    return settings.run_dir(run_id) / "checkpoints"


def safe_child(base: Path, name: str) -> Path:
    """Resolve ``name`` as a direct child of ``base``; refuse traversal, absolute paths, NUL,
    separators and symlinks that lead outside ``base``."""
    check_name(name)
    path = base / name
    real_base = base.resolve()
    real = path.resolve()
    if real.parent != real_base and real_base not in real.parents:
        raise UnsafePathError(f"{name!r} leads outside {base}")
    return path


def check_name(name: str) -> None:
    """Refuse what can never be a plain file name: empty, NUL, absolute, separators, ``..``."""
    if not isinstance(name, str) or not name:
        raise UnsafePathError("empty name")
    if "\x00" in name:
        raise UnsafePathError("name contains NUL")
    if name.startswith("/") or os.path.isabs(name):
        raise UnsafePathError(f"absolute path refused: {name!r}")
    if name in (".", "..") or "/" in name or "\\" in name or ".." in Path(name).parts:
        raise UnsafePathError(f"path traversal refused: {name!r}")


def read_ckpt_meta(ckpt_dir: Path) -> dict[str, dict]:
    try:
        return json.loads((ckpt_dir / ".meta.json").read_text())
    except (OSError, ValueError):
        return {}


def write_ckpt_meta(ckpt_dir: Path, meta: dict[str, dict]) -> None:
    tmp = ckpt_dir / ".meta.json.tmp"
    tmp.write_text(json.dumps(meta))
    os.replace(tmp, ckpt_dir / ".meta.json")


def list_checkpoints(ckpt_dir: Path) -> list[dict]:
    if not ckpt_dir.is_dir():
        return []
    meta = read_ckpt_meta(ckpt_dir)
    out = []
    for p in sorted(ckpt_dir.iterdir()):
        if p.name.startswith("."):
            continue
        try:
            st = p.stat()
        except OSError:
            continue
        if not p.is_file():
            continue
        out.append({"name": p.name, "size": st.st_size, "mtime": st.st_mtime,
                    "step": meta.get(p.name, {}).get("step")})
    return out


def delete_checkpoint(ckpt_dir: Path, name: str) -> None:
    path = safe_child(ckpt_dir, name)
    if path.is_symlink():
        # even a link that points inside: only the link goes, never its target
        path.unlink()
    elif not path.is_file():
        raise FileNotFoundError(f"no checkpoint named {name!r}")
    else:
        path.unlink()
    meta = read_ckpt_meta(ckpt_dir)
    if meta.pop(name, None) is not None:
        write_ckpt_meta(ckpt_dir, meta)


def checkpoint_file(run_dir: Path, name: str) -> Path:
    """A safe path for checkpoint ``name`` in ``run_dir/checkpoints`` (created if missing)."""
    ckpt_dir = run_dir / "checkpoints"
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    return safe_child(ckpt_dir, name)


def record_checkpoint(run_dir: Path, name: str, step: int | None) -> None:
    """Remember the step a checkpoint was saved at (shown by checkpoint listings)."""
    import time

    ckpt_dir = run_dir / "checkpoints"
    meta = read_ckpt_meta(ckpt_dir)
    meta[name] = {"step": step, "time": time.time()}
    write_ckpt_meta(ckpt_dir, meta)
