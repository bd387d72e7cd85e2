"""All the processes of one job, found and killed as a whole, and who stops what on cancel.

A process group does not bound a job: a descendant may call ``setsid()`` and leave it, and
once its parent exits it is re-parented to init, where walking parent links from the worker
no longer reaches it. A ``ProcessTree`` collects members, each time it is refreshed, from:
the root (the worker) and its descendants by parent pid; the members of the root's process
group; processes whose environment carries the job's marker (the worker exports
``LABDECK_HOME`` and ``LABDECK_JOB_ID`` to everything it starts, and ``/proc/<pid>/environ``
keeps what a process was started with); and every process it already knew that is still
alive, with the descendants of all of these. A member is remembered by pid and start time, so
a re-parented one stays known (the worker refreshes its tree every second while the job runs)
and a reused pid is never taken for one. ``kill`` stops members with SIGSTOP until a fresh
scan finds no new one, so none can fork a child that escapes between the scan and the
SIGKILL. Linux only (``/proc``).

Who stops what when a job is cancelled, so that no process gets more than one SIGTERM and a
command gets the full grace (``Settings.cancel_grace_s``, ``LABDECK_CANCEL_GRACE``) before
SIGKILL:

- ``cancel_job`` only sets the job's cancel flag. The scheduler sends the worker's process
  group (the worker and what an in-process adapter started) one SIGTERM; with no scheduler
  running, the worker sees the flag with its next heartbeat. Either way the worker only asks
  the job to stop (``Reporter.should_stop()``).
- The job's code stops itself. An in-process adapter returns from its loop; the script adapter
  owns its command, which runs in its own process group (so the scheduler's SIGTERM does not
  reach it): it sends that group one SIGTERM, waits the grace (``Reporter.stop_grace_s``,
  which the scheduler hands the worker), then SIGKILLs the group. The group's leader kills the
  group if the worker dies, so the command never outlives it.
- When the adapter has returned, the worker SIGKILLs whatever of its tree is left (a
  descendant that left the group, a daemon a finished script forgot), then records the end.
- The scheduler is the backstop: a worker still alive ``WORKER_MARGIN_S`` after the grace, or
  a worker that exited or died, has its whole tree SIGKILLed.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .records import pid_alive

# how long after the grace the scheduler waits for a cancelled worker to record its end
WORKER_MARGIN_S = 5.0


def job_marker(home: os.PathLike[str] | str, job_id: int) -> dict[str, str]:
    """The environment a job's worker gives every process it starts."""
    return {"LABDECK_HOME": str(home), "LABDECK_JOB_ID": str(job_id)}


@dataclass(frozen=True)
class _Proc:
    pid: int
    ppid: int
    pgid: int
    start: int  # clock ticks after boot: with the pid, the process's identity
    zombie: bool


def _scan() -> dict[int, _Proc]:
    procs: dict[int, _Proc] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as fh:
                data = fh.read()
            # fields after "(comm)": state ppid pgrp session tty tpgid flags ... starttime (22)
            rest = data[data.rindex(b")") + 2:].split()
            procs[int(name)] = _Proc(int(name), int(rest[1]), int(rest[2]), int(rest[19]),
                                     rest[0] in (b"Z", b"X"))
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile, or not ours to read
    return procs


def _has_env(pid: int, wanted: Iterable[bytes]) -> bool:
    try:
        with open(f"/proc/{pid}/environ", "rb") as fh:
            env = set(fh.read().split(b"\0"))
    except OSError:
        return False
    return all(w in env for w in wanted)


class ProcessTree:
    """The processes of one job. ``root`` is the worker's pid (None once it is gone: its pid
    may be reused), ``group`` a process group that belongs wholly to the job, ``marker``
    environment variables every process of the job inherits."""

    def __init__(self, root: int | None = None, group: int | None = None,
                 marker: Mapping[str, str] | None = None):
        self.root = root
        self.group = group
        self._marker = [f"{k}={v}".encode() for k, v in (marker or {}).items()]
        self._known: dict[int, int] = {}  # pid -> start time
        self._lock = threading.Lock()

    def refresh(self, scan_environ: bool = False) -> set[int]:
        """Scan /proc; remember and return the live members. Reading every process's
        environment costs more, so it is done when killing, not on each periodic refresh."""
        procs = _scan()
        with self._lock:
            seeds = {pid for pid, start in self._known.items()
                     if pid in procs and procs[pid].start == start}
            if self.root is not None and self.root in procs:
                seeds.add(self.root)
            for p in procs.values():
                if (self.group is not None and p.pgid == self.group) or (
                        scan_environ and self._marker and p.pid not in seeds
                        and _has_env(p.pid, self._marker)):
                    seeds.add(p.pid)
            children: dict[int, list[int]] = {}
            for p in procs.values():
                children.setdefault(p.ppid, []).append(p.pid)
            members, todo = set(), list(seeds)
            while todo:
                pid = todo.pop()
                if pid in members:
                    continue
                members.add(pid)
                todo.extend(children.get(pid, ()))
            members = {pid for pid in members if not procs[pid].zombie}
            self._known = {pid: procs[pid].start for pid in members}
            return set(members)

    def watch(self, interval: float = 1.0) -> threading.Event:
        """Refresh every ``interval`` seconds in a daemon thread until the returned event is
        set, so a descendant that is re-parented later is still known."""
        done = threading.Event()

        def loop() -> None:
            while not done.wait(interval):
                try:
                    self.refresh()
                except Exception:  # noqa: BLE001 - a failed scan is retried on the next tick
                    pass

        threading.Thread(target=loop, name="labdeck-process-tree", daemon=True).start()
        return done

    def kill(self) -> set[int]:
        """SIGKILL every member but the calling process; returns the pids killed."""
        me = os.getpid()
        stopped: set[int] = set()
        try:
            for _ in range(100):  # a fork bomb is not our problem beyond this many rounds
                new = self.refresh(scan_environ=True) - stopped - {me}
                if not new:
                    break
                for pid in new:
                    _send(pid, signal.SIGSTOP)
                stopped |= new
        finally:
            for pid in stopped:
                _send(pid, signal.SIGKILL)
        return stopped


def _send(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def killpg(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def signame(num: int) -> str:
    try:
        return signal.Signals(num).name
    except ValueError:
        return "?"


def is_worker(pid: int, job_id: int) -> bool:
    """A live process that is really this job's worker (guards against pid reuse)."""
    if not pid_alive(pid):
        return False
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            args = fh.read().split(b"\0")
    except OSError:
        return True
    return b"engine.worker" in args and str(job_id).encode() in args
