"""The plain-thread task runner behind :mod:`.codes`' parallel kernels (see ``_run_tasks``)."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor


def _threads() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


_pool_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None


def _forget_pool() -> None:  # a forked child inherits the pool object but not its threads
    global _pool, _pool_lock
    _pool, _pool_lock = None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def _run_tasks(task, n_tasks: int) -> None:
    """Run ``task(i)`` for ``i < n_tasks``, GIL-free kernels, on this thread and the pool.

    Tasks are taken from a shared counter and this thread waits only for tasks that were
    taken: on a machine shared with other jobs a pool thread may not be scheduled for
    milliseconds, and then this thread simply does all the work. That is why these are
    plain threads and not numba ``parallel=True``: numba's OpenMP pool spins at barriers
    and collapses (10-50x slower) when its cores are shared with another process or with
    torch's or faiss's own OpenMP pools; its workqueue pool may not be entered from two
    threads at once.
    """
    global _pool
    helpers = min(_threads(), n_tasks) - 1
    if helpers <= 0:
        for i in range(n_tasks):
            task(i)
        return
    lock = threading.Lock()
    done = threading.Event()
    state = {"next": 0, "finished": 0}
    errors: list[BaseException] = []

    def worker() -> None:
        while True:
            with lock:
                i = state["next"]
                if i >= n_tasks or errors:
                    return
                state["next"] = i + 1
            try:
                task(i)
            except BaseException as exc:  # noqa: BLE001 - re-raised on the calling thread
                errors.append(exc)
            with lock:
                state["finished"] += 1
                if state["finished"] == state["next"] and (state["next"] == n_tasks or errors):
                    done.set()

    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(_threads(), thread_name_prefix="labdeck-codes")
    for _ in range(helpers):
        _pool.submit(worker)
    worker()
    done.wait()
    if errors:
        raise errors[0]
