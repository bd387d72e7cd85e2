"""A job's worker process: ``python -m engine.worker --home H JOB_ID``.

Started by the scheduler in its own process session, so it outlives the TUI or an SSH drop.
It owns its job's final status: completed, failed (with the error) or cancelled, and its job's
processes: what the job leaves running when it ends is killed (engine/process_tree.py).

``python -m engine.worker --spool DIR JOB_ID`` is the same worker on another host (a Slurm
batch job, engine/slurm.py): it never opens the home's database. It reads what it needs from
``DIR/job.json`` and reports everything (start, metrics, progress, checkpoints, its end and
an eval's or index build's result) to the spool ``DIR/spool.jsonl`` (engine/spool.py), which
the scheduler applies to the database.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from adapters.base import RESUME

from .data import evals
from .data import jobs as data
from .data.jobs import WorkerJob
from .data.runs import finish_run
from .liveness import process_start_time
from .metric_writer import MetricWriter
from .paths import safe_child
from .process_tree import ProcessTree, job_marker
from .records import HOST
from .registry import get_adapter_class
from .reporter import DatabaseSink, WorkerReporter
from .resources import assigned_gpus, job_device
from .schema import connect_sync
from .settings import load_settings
from .spool import JOB_FILE, SpoolMetrics, SpoolSink, SpoolWriter
from .system_metrics import start_for_job
from .tracking import TRACKING_ENV


class JobError(RuntimeError):
    pass


@dataclasses.dataclass
class _Deferred:
    """An eval's or index build's result that a spooled worker cannot store itself: it rides
    in the ``finished`` record and the scheduler stores it (engine/data/spool.py)."""

    kind: str  # "eval" or "index"
    record: dict[str, Any]


def _checkpoint(run_dir: Path, params: dict[str, Any]) -> Path:
    name = params.get("checkpoint") or "best.pt"
    ckpt_dir = run_dir / "checkpoints"
    path = safe_child(ckpt_dir, name)
    if not path.is_file():
        available = sorted(p.name for p in ckpt_dir.glob("*") if not p.name.startswith("."))
        raise JobError(f"checkpoint {name!r} not found (available: {', '.join(available) or 'none'})")
    return path


def _resume_checkpoint(run_dir: Path, resume: dict[str, Any] | str) -> Path:
    """The checkpoint file of an earlier run that ``start_run`` resolved (checked again here:
    a plain name inside that run's checkpoints directory)."""
    if isinstance(resume, str):  # queued before resume named a run: this run's own folder
        return _checkpoint(run_dir, {"checkpoint": resume})
    source_dir = run_dir.parent / str(int(resume["run_id"]))  # a sibling in <home>/runs
    return _checkpoint(source_dir, {"checkpoint": resume["checkpoint"]})


def run_job(job_id: int, home: str | None) -> int:
    settings = load_settings(home).ensure()  # umask for the adapter and what it starts
    conn = connect_sync(settings.db_path)
    job = data.for_worker(conn, job_id)
    if job is None:
        raise JobError(f"job {job_id} does not exist")
    run_id = job.run_id
    run_dir = settings.run_dir(run_id) if run_id else settings.home / "jobs" / str(job_id)
    me = process_start_time(os.getpid())  # with the pid: a later process reusing it is not us
    train_run = run_id if job.type == "train" and run_id else None
    data.worker_started(conn, job_id, os.getpid(), me, HOST, train_run)
    writer = MetricWriter(connect_sync(settings.db_path), train_run) if train_run else None
    reporter = WorkerReporter(DatabaseSink(connect_sync(settings.db_path), job_id),
                              job_id=job_id, run_id=run_id, run_dir=run_dir,
                              heartbeat_s=settings.heartbeat_s, writer=writer,
                              stop_grace_s=settings.cancel_grace_s)

    status, error, result = _run_reported(job, job_id, run_dir, reporter, settings.home, conn,
                                          settings.db_path)
    if train_run:
        finish_run(conn, train_run, status, error)
    data.worker_finished(conn, job_id, status, result, error)
    print(f"labdeck: job {job_id} {status}" + (f": {error}" if error else ""), flush=True)
    return 0 if status == "completed" else 1


def _run_reported(job: WorkerJob, job_id: int, run_dir: Path, reporter: WorkerReporter,
                  home: Path, conn: Any, db_path: Path | None) -> tuple[str, str | None, Any]:
    """Run the job with its reporter, signals, process tree and system metrics (``db_path``
    None: none, a spooled worker); (status, error, result)."""
    def on_term(signum, frame):  # noqa: ARG001
        reporter.request_stop()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    os.environ.update({**job_marker(home, job_id), "LABDECK_RUN_ID": str(job.run_id or "")})
    # everything the job starts inherits that marker; the tree is rescanned every second so a
    # descendant that leaves the process group and is re-parented is still known at the end
    tree = ProcessTree(root=os.getpid(), marker=job_marker(home, job_id),
                       group=os.getpid() if os.getpgrp() == os.getpid() else None)
    watching = tree.watch(1.0)
    sampler = start_for_job(db_path, tree.refresh) if db_path else None  # sys/ metrics
    status, error, result = "completed", None, None
    try:
        reporter.device = _device(job_id)
        result = _dispatch(conn, job, job_id, run_dir, reporter)
        if reporter.should_stop():
            status = "cancelled"
    except BaseException as exc:  # noqa: BLE001 - every failure becomes the job's error
        if not isinstance(exc, JobError) and _stop_asked(reporter):
            # what a stopped job raises on its way out (a command ended by the cancel's
            # SIGTERM) is no error: the log ends with the plain "cancelled" line below
            status = "cancelled"
        else:
            traceback.print_exc()
            sys.stdout.flush()
            status = "failed"
            error = f"{type(exc).__name__}: {exc}"
    finally:
        if sampler is not None:
            sampler.stop()
        watching.set()
        _kill_leftovers(tree)
        reporter.close()
    return status, error, result


def run_spooled(job_id: int, spool_dir: Path) -> int:
    """The worker of a job on another host: job.json in, spool out; no database."""
    spec = json.loads((spool_dir / JOB_FILE).read_text())
    os.umask(int(spec.get("umask", 0o077)))
    os.environ[TRACKING_ENV] = "stdout"  # a script's tracking API must not open the database
    job = WorkerJob(type=spec["type"], run_id=spec["run_id"], params=spec["params"],
                    config=spec["config"], adapter=spec["adapter"],
                    experiment=spec["experiment"], run_number=spec["run_number"])
    run_dir = Path(spec["run_dir"])
    spool = SpoolWriter(spool_dir)
    spool.write("started", sync=True, pid=os.getpid(), host=HOST, t=time.time())
    train_run = job.run_id if job.type == "train" and job.run_id else None
    writer = (MetricWriter(None, train_run, store=SpoolMetrics(spool, int(spec["last_step"])))
              if train_run else None)
    reporter = WorkerReporter(SpoolSink(spool), job_id=job_id, run_id=job.run_id,
                              run_dir=run_dir, heartbeat_s=float(spec["heartbeat_s"]),
                              writer=writer, stop_grace_s=float(spec["cancel_grace_s"]))
    status, error, result = _run_reported(job, job_id, run_dir, reporter, Path(spec["home"]),
                                          None, None)
    deferred: dict[str, Any] = {}
    if isinstance(result, _Deferred):
        deferred, result = {result.kind: result.record}, None
    spool.write("finished", sync=True, status=status, result=result, error=error,
                t=time.time(), **deferred)
    spool.close()
    print(f"labdeck: job {job_id} {status}" + (f": {error}" if error else ""), flush=True)
    return 0 if status == "completed" else 1


def _stop_asked(reporter: WorkerReporter) -> bool:
    """Whether the job was asked to stop, reading the cancel flag now: the job may have ended
    before the heartbeat or the scheduler's SIGTERM brought the request (its command was
    stopped first)."""
    if reporter.should_stop():
        return True
    try:
        reporter.beat()  # reads the flag, and sets should_stop() when it is up
    except Exception:  # noqa: BLE001 - a database we cannot read: no cancel is known
        return False
    return reporter.should_stop()


def _device(job_id: int) -> str:
    """The device the scheduler gave the job (its environment says); a GPU job says which
    in the run's log."""
    gpus = assigned_gpus()
    if gpus:
        print(f"labdeck: job {job_id} device cuda: GPUs {','.join(map(str, gpus))}"
              f" (CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', '')})", flush=True)
    return job_device()


def _kill_leftovers(tree: ProcessTree) -> None:
    """Nothing the job started outlives it (a daemon a script forgot, a descendant that left
    the process group): SIGKILL what is left, after the adapter has stopped its own."""
    try:
        killed = tree.kill()
    except Exception as exc:  # noqa: BLE001 - the scheduler kills the tree again when we exit
        print(f"labdeck: could not kill the job's leftover processes: {exc}", flush=True)
        return
    if killed:
        print(f"labdeck: killed {len(killed)} leftover process(es) of the job:"
              f" {' '.join(map(str, sorted(killed)))}", flush=True)


def _dispatch(conn: Any, job: WorkerJob, job_id: int, run_dir: Path,
              reporter: WorkerReporter) -> Any:
    if job.type not in ("train", "eval", "index_build"):
        if conn is None:
            raise JobError(f"a {job.type} job cannot run on another host")
        from .jobtypes import run_extra_job_type

        return run_extra_job_type(job.type, conn, dataclasses.asdict(job), job_id, reporter)
    if job.adapter is None or job.run_id is None:
        raise JobError(f"job {job_id} has no run/experiment to work on")
    cls = get_adapter_class(job.adapter)
    adapter = cls()
    config = cls.validate_config(job.config)
    jtype, params = job.type, job.params
    print(f"labdeck: job {job_id} {jtype} {job.experiment} run {job.run_number}"
          f" adapter={job.adapter} pid={os.getpid()}", flush=True)
    if jtype == "train":
        resume = params.get("resume_from")
        if resume and not cls.supports(RESUME):
            raise JobError(f"adapter {cls.name} cannot resume from a checkpoint")
        resume_path = _resume_checkpoint(run_dir, resume) if resume else None
        return adapter.train(config, reporter, resume_from=resume_path)
    if jtype == "eval":
        if not cls.supports("evaluate"):
            raise JobError(f"adapter {cls.name} cannot evaluate")
        ckpt = _checkpoint(run_dir, params)
        res = adapter.evaluate(config, ckpt, reporter)
        if conn is None:
            return _Deferred("eval", {"checkpoint": ckpt.name, "view_type": res.view_type,
                                      "data": res.data, "summary": res.summary})
        result_id = evals.add_eval_result(conn, job.run_id, job_id, ckpt.name, res.view_type,
                                          res.data, res.summary)
        return {"eval_result_id": result_id, "view_type": res.view_type,
                "summary": res.summary, "data": res.data}
    if jtype == "index_build":
        if not cls.supports("index"):
            raise JobError(f"adapter {cls.name} cannot build an index")
        ckpt = _checkpoint(run_dir, params)
        index_dir = run_dir / "indexes" / ckpt.stem
        info = adapter.build_index(config, ckpt, index_dir, reporter)
        if conn is None:
            return _Deferred("index", {"checkpoint": ckpt.name, "path": str(index_dir),
                                       "info": info or {}})
        index_id = evals.replace_index(conn, job.run_id, ckpt.name, str(index_dir), job_id,
                                       info or {})
        return {"index_id": index_id, "path": str(index_dir), **(info or {})}
    raise JobError(f"unknown job type {jtype!r}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.worker")
    parser.add_argument("--home")
    parser.add_argument("--spool", type=Path, help="run from DIR/job.json, report to its spool")
    parser.add_argument("job_id", type=int)
    args = parser.parse_args(argv)
    if args.spool is not None:
        return run_spooled(args.job_id, args.spool)
    return run_job(args.job_id, args.home)


if __name__ == "__main__":
    sys.exit(main())
