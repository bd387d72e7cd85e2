"""Job types beyond train / eval / index_build (which engine/worker.py runs itself): a fixed
table, the same in every process that reads it (the scheduler's, a job's worker). There is no
runtime registration: a job type added in one process would be unknown to the worker process
that runs the job."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

JOB_TYPES: dict[str, str] = {
    # type -> "module:function", imported only when such a job runs
    "study": "engine.studies.runner:run_study_job",
}


def run_extra_job_type(job_type: str, conn: Any, job: dict[str, Any], job_id: int,
                       reporter: Any) -> Any:
    target = JOB_TYPES.get(job_type)
    if target is None:
        raise RuntimeError(f"unknown job type {job_type!r}")
    module, _, func = target.partition(":")
    fn: Callable[..., Any] = getattr(importlib.import_module(module), func)
    return fn(conn, job, job_id, reporter)
