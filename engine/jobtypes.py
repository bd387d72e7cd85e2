"""Job types beyond train / eval / index_build register a runner here (studies, later)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_RUNNERS: dict[str, str] = {
    # type -> "module:function", imported only when such a job runs
    "study": "engine.studies.runner:run_study_job",
}


def register_job_type(job_type: str, target: str) -> None:
    _RUNNERS[job_type] = target


def run_extra_job_type(job_type: str, conn: Any, job: dict[str, Any], job_id: int,
                       reporter: Any) -> Any:
    target = _RUNNERS.get(job_type)
    if target is None:
        raise RuntimeError(f"unknown job type {job_type!r}")
    module, _, func = target.partition(":")
    import importlib

    fn: Callable[..., Any] = getattr(importlib.import_module(module), func)
    return fn(conn, job, job_id, reporter)
