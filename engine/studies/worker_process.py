"""A study worker outside the job system, as a process of its own:
``python -m engine.studies.worker_process --home H STUDY`` (what ``labdeck study worker`` and a
study job's extra workers run). SIGTERM / SIGINT stop the running trial (recorded cancelled)
and end the loop."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from typing import Any

from ..settings import Settings, load_settings


def run_worker(settings: Settings, study: str, index: int = 0,
               stop_event: threading.Event | None = None) -> dict[str, Any]:
    from .runner import StudyWorker

    stop = stop_event or threading.Event()

    def on_signal(signum, frame):  # noqa: ARG001
        stop.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
    worker = StudyWorker(settings, study, worker_index=index, stop=stop.is_set)
    return worker.run()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m engine.studies.worker_process")
    p.add_argument("--home")
    p.add_argument("--index", type=int, default=0)
    p.add_argument("study")
    args = p.parse_args(argv)
    out = run_worker(load_settings(args.home), args.study, args.index)
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
