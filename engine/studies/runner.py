"""Running a study: the worker loop (claim a trial, train it, tell the tuner, mirror it) and
the "study" job type, which runs that loop in its worker process and starts ``workers - 1``
more loops as child processes in the same process group (so a cancel reaches all of them).

Each trial really trains the adapter, in this process, as a labdeck run of the study's trials
experiment (``<study>/trials``): the study overrides the adapter's ``epochs_key`` with
``search_epochs`` and its ``subset_key`` with ``subset_ratio`` when the adapter has them.

Per trial bookkeeping is kept small (bench/study_overhead.py): the run row and the trial's
mirror row go in one transaction, so do the run's end (status, summary) and the final mirror
row; one metric writer (its connection and flush thread) and one objective poller serve all
of a worker's trials.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from adapters.base import BaseAdapter

from ..data import studies as data
from ..data.runs import finish_run, insert_run
from ..metric_writer import MetricWriter
from ..records import HOST, now
from ..registry import get_adapter_class
from ..schema import connect_sync, write_tx
from ..settings import Settings, load_settings
from .mirror import finalize, mirror_state, mirror_trial, open_tuner, sweep
from .spec import StudyDefinition
from .trial_reporter import Poller, TrialReporter
from .tuner import BaseTuner, TrialHandle, TunerTrial

SWEEP_EVERY_S = 5.0  # dead workers' trials, between trials (a worker also sweeps at start/end)


def trial_config(defn: StudyDefinition, params: dict[str, Any]) -> dict[str, Any]:
    """Base config + fixed + sampled params, with the study's epochs / subset overrides."""
    cls = get_adapter_class(defn.adapter)
    config = {**defn.base_config, **defn.fixed(), **params}
    s = defn.settings
    if cls.epochs_key and s.search_epochs is not None:
        config[cls.epochs_key] = s.search_epochs
    if cls.subset_key and s.subset_ratio is not None:
        config[cls.subset_key] = s.subset_ratio
    return cls.validate_config(config)


class StudyWorker:
    """One worker loop on one study, in this process."""

    def __init__(self, settings: Settings, study: str | int, *, worker_index: int = 0,
                 stop: Callable[[], bool] = lambda: False,
                 progress: Callable[[float, str], None] | None = None):
        self.settings = settings.ensure()
        self.conn = connect_sync(settings.db_path)
        self.row = data.get_study(self.conn, study)
        self.tuner: BaseTuner = open_tuner(self.row, settings.home, worker_index)
        self.defn = self.tuner.definition
        self.adapter_cls = get_adapter_class(self.defn.adapter)
        self._adapter: BaseAdapter | None = None
        self._outer_stop = stop
        self._progress = progress
        self._cancel_seen = False
        self._last_cancel_check = 0.0
        self._last_tuner_check = -1e9
        self.done: list[int] = []
        self._conns: dict[str, Any] = {}
        self._writer: MetricWriter | None = None
        self._poller = Poller()

    # -- stop conditions ----------------------------------------------------------------

    def cancelled(self) -> bool:
        """The study's cancel flag (labdeck row); checked at most once a second during a
        trial."""
        if self._cancel_seen:
            return True
        t = time.monotonic()
        if t - self._last_cancel_check >= 1.0:
            self._last_cancel_check = t
            self._cancel_seen = data.cancel_requested(self.conn, self.row.id)
        return self._cancel_seen

    def _tuner_stop(self) -> bool:
        """The tuner's study-wide stop flag (reaches workers on other machines); read at most
        every couple of seconds, it costs a storage round trip."""
        t = time.monotonic()
        if t - self._last_tuner_check < 2.0:
            return False
        self._last_tuner_check = t
        return self.tuner.stop_requested()

    def stopping(self) -> bool:
        return self._outer_stop() or self.cancelled()

    # -- the loop -------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        sweep(self.conn, self.row, self.tuner, self.settings.home)
        if self.row.status != "running":
            data.set_status(self.conn, self.row.id, "running")
        timeout = self.defn.settings.timeout_s
        t0 = last_sweep = time.monotonic()
        reason = None
        try:
            while True:
                if self.stopping() or self._tuner_stop():
                    reason = "cancelled"
                    break
                if timeout and time.monotonic() - t0 > timeout:
                    reason = "stopped"
                    break
                if time.monotonic() - last_sweep > SWEEP_EVERY_S:
                    last_sweep = time.monotonic()
                    if self.tuner.fail_stale():
                        sweep(self.conn, self.row, self.tuner, self.settings.home)
                handle = self.tuner.ask(self._attrs(None))
                if handle is None:
                    break
                self.run_trial(handle)
                self.done.append(handle.number)
        finally:
            status = finalize(self.conn, self.row, self.tuner, self.settings.home,
                              stopping=reason)
            self.tuner.close()
            self._poller.close()
            if self._writer is not None:
                self._writer.close()
                self._writer = None
            for c in self._conns.values():
                c.close()
        return {"study": self.row.name, "trials_run": self.done, "status": status}

    def _attrs(self, run_id: int | None) -> dict[str, Any]:
        return {"pid": os.getpid(), "host": HOST, "home": str(self.settings.home),
                "run_id": run_id}

    def _conn(self, role: str) -> Any:
        """Connections reused from trial to trial (the metric writer's, the poller's)."""
        if role not in self._conns:
            self._conns[role] = connect_sync(self.settings.db_path)
        return self._conns[role]

    def _metric_writer(self, run_id: int) -> MetricWriter:
        """The worker's metric writer, pointed at this trial's run."""
        if self._writer is None:
            self._writer = MetricWriter(self._conn("writer"), run_id)
        else:
            self._writer.retarget(run_id)
        return self._writer

    @property
    def adapter(self) -> Any:
        if self._adapter is None:
            self._adapter = self.adapter_cls()
        return self._adapter

    def run_trial(self, handle: TrialHandle) -> TunerTrial:
        defn, conn = self.defn, self.conn
        started = now()
        params = {**defn.fixed(), **handle.params}
        try:
            config = trial_config(defn, handle.params)
        except Exception as exc:  # noqa: BLE001 - a bad sample fails the trial, not the study
            err = f"{type(exc).__name__}: {exc}"
            self.tuner.tell(handle, "failed", attrs={"error": err})
            t = TunerTrial(handle.number, "failed", params, started=started, finished=now(),
                           attrs={**self._attrs(None), "error": err})
            with write_tx(conn):
                mirror_trial(conn, self.row.id, t, None)
            return t
        exp_id = self.row.trials_experiment_id
        if exp_id is None:  # made with the study; gone only if someone deleted it by hand
            raise RuntimeError(f"study {self.row.name} has no trials experiment")
        with write_tx(conn):
            run_id, _ = insert_run(conn, exp_id, config, "running", "study", pid=os.getpid())
            attrs = self._attrs(run_id)
            running = TunerTrial(handle.number, "running", params, started=started,
                                 attrs=attrs)
            mirror_trial(conn, self.row.id, running, run_id)
        writer = self._metric_writer(run_id)
        n_trials = defn.settings.n_trials

        def on_progress(fraction: float, message: str) -> None:
            if self._progress is not None:
                done = len(self.done)
                self._progress(min(1.0, (done + fraction) / n_trials),
                               f"trial {handle.number}: {message}")

        reporter = TrialReporter(
            self._conn("poll"), writer, run_id, self.settings.run_dir(run_id),
            defn.settings.objective, lambda step, v: self.tuner.report(handle, step, v),
            self.stopping, on_progress, poller=self._poller)
        reporter.stop_grace_s = self.settings.cancel_grace_s  # the same grace as a train job
        old_env = os.environ.get("LABDECK_RUN_ID")
        os.environ["LABDECK_RUN_ID"] = str(run_id)
        error = None
        result: Any = None
        print(f"labdeck: study {self.row.name} trial {handle.number} run {run_id}"
              f" params {params}", flush=True)
        try:
            result = self.adapter.train(config, reporter)
        except BaseException as exc:  # noqa: BLE001 - the trial's failure, recorded below
            error = f"{type(exc).__name__}: {exc}"
            if isinstance(exc, KeyboardInterrupt | SystemExit):
                error = "cancelled"
        finally:
            if old_env is None:
                os.environ.pop("LABDECK_RUN_ID", None)
            else:
                os.environ["LABDECK_RUN_ID"] = old_env
            writer.flush()
            reporter.close()
        value = reporter.last_value
        if value is None and isinstance(result, dict) and isinstance(
                result.get(defn.settings.objective), int | float):
            value = float(result[defn.settings.objective])
        end_attrs: dict[str, Any] = {}
        if reporter.pruned:
            state, run_status = "pruned", "cancelled"
            end_attrs["error"] = f"pruned at step {reporter.pruned_at}"
        elif self.stopping():
            state, run_status = "failed", "cancelled"
            end_attrs.update(error="cancelled", cancelled=True)
        elif error is not None:
            state, run_status = "failed", "failed"
            end_attrs["error"] = error
        elif value is None or value != value:
            state, run_status = "failed", "failed"
            end_attrs["error"] = (f"objective {defn.settings.objective!r} was never logged"
                                  if value is None else "objective is NaN")
        else:
            state, run_status = "complete", "completed"
        # a pruned trial's note goes to labdeck's mirror only (one storage write less per
        # trial); the mirror keeps it when a sweep re-mirrors the trial from the tuner
        self.tuner.tell(handle, state, value if state == "complete" else None,
                         end_attrs if state == "failed" else None)
        final = TunerTrial(handle.number, state, params,
                           value=value if state != "failed" else None,
                           intermediate=list(enumerate(reporter.values)), started=started,
                           finished=now(), attrs={**attrs, **end_attrs})
        with write_tx(conn):
            finish_run(conn, run_id, run_status, end_attrs.get("error"), tx=False)
            mirror_trial(conn, self.row.id, final, run_id)
        shown = mirror_state(final)  # "cancelled", as the mirror says, not failed
        print(f"labdeck: trial {handle.number} {shown}"
              + (f" value={value}" if state == "complete" else "")
              + (f" ({end_attrs['error']})" if end_attrs.get("error") and shown != "cancelled"
                 else ""), flush=True)
        return final


# ------------------------------------------------------------------ the "study" job type


def _spawn_worker(settings: Settings, study: str, index: int) -> subprocess.Popen:
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["PYTHONUNBUFFERED"] = "1"
    return subprocess.Popen(
        [sys.executable, "-m", "engine.studies.worker_process", "--home", str(settings.home),
         "--index", str(index), study], stdin=subprocess.DEVNULL, env=env)


def run_study_job(conn, job: dict[str, Any], job_id: int, reporter: Any) -> dict[str, Any]:
    """Job type "study" (engine/jobtypes.py): params {"study": NAME}."""
    settings = load_settings(os.environ.get("LABDECK_HOME"))
    name = job["params"]["study"]
    row = data.get_study(conn, name)
    workers = int(row.settings.get("workers") or 1)
    children = [_spawn_worker(settings, name, i) for i in range(1, workers)]
    lock = threading.Lock()

    def progress(fraction: float, message: str) -> None:
        with lock:
            reporter.progress(fraction, message)

    try:
        worker = StudyWorker(settings, name, worker_index=0, stop=reporter.should_stop,
                             progress=progress)
        out = worker.run()
    finally:
        if reporter.should_stop():
            for p in children:
                if p.poll() is None:
                    p.send_signal(signal.SIGTERM)
        for p in children:
            p.wait()
    out["workers"] = workers
    row = data.get_study(conn, name)
    out["status"] = row.status
    if row.status == "completed":
        reporter.progress(1.0, "study completed")
    return out
