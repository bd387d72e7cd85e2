"""Argument parsing and dispatch. Every command takes --home and --json; a failure prints one
line on stderr and exits non-zero (1 for errors, 2 for usage)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

# handlers are registered by the command modules: name -> async fn(args) -> int
HANDLERS: dict[str, Callable] = {}


def handler(name: str) -> Callable:
    def deco(fn: Callable) -> Callable:
        HANDLERS[name] = fn
        return fn
    return deco


def _common(p: argparse.ArgumentParser, top: bool = False) -> None:
    # Subcommands repeat the options with SUPPRESS defaults, so `labdeck --home X run ...` and
    # `labdeck run ... --home X` both work (a sub-parser default would erase the top value).
    p.add_argument("--home", default=None if top else argparse.SUPPRESS,
                   help="labdeck home (default $LABDECK_HOME or ~/.labdeck); private to"
                        " you (0700/0600) unless <home>/home.json says {\"shared\": true}"
                        " (group-readable 0750/0640)")
    p.add_argument("--json", action="store_true", default=False if top else argparse.SUPPRESS,
                   help="machine-readable output")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="labdeck", description="Terminal-first ML experiments. No subcommand: open the TUI.")
    _common(parser, top=True)
    sub = parser.add_subparsers(dest="cmd", metavar="COMMAND")

    def add(name: str, help: str, parent=sub) -> argparse.ArgumentParser:
        p = parent.add_parser(name, help=help, description=help)
        _common(p)
        return p

    p = add("serve", "run the scheduler headless (jobs survive the TUI closing)")
    p.add_argument("--max-concurrency", type=int)
    p.set_defaults(func="serve")
    p = add("demo", "create the demo home (--home, else $LABDECK_HOME, else ~/.labdeck-demo) "
                    "and open labdeck on it")
    p.add_argument("--headless", action="store_true", help="run the demo loop without the TUI")
    p.set_defaults(func="demo")
    p = add("tui", "open the TUI (same as no subcommand)")
    p.set_defaults(func="tui")

    exp = add("exp", "experiments").add_subparsers(dest="sub", metavar="ACTION", required=True)
    p = add("create", "create an experiment", exp)
    p.add_argument("name")
    p.add_argument("--adapter", required=True)
    p.add_argument("--config", help="JSON file with config values")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--objective")
    p.add_argument("--direction", choices=["minimize", "maximize"])
    p.add_argument("--tag", action="append", default=[])
    p.add_argument("--notes", default="")
    p.set_defaults(func="exp_create")
    p = add("list", "list experiments", exp)
    p.set_defaults(func="exp_list")
    p = add("show", "show an experiment", exp)
    p.add_argument("name")
    p.set_defaults(func="exp_show")
    p = add("delete", "delete an experiment and its runs", exp)
    p.add_argument("name")
    p.add_argument("--yes", action="store_true")
    p.set_defaults(func="exp_delete")
    p = add("adapters", "list adapters and their config schema", exp)
    p.set_defaults(func="adapters")

    run = add("run", "runs").add_subparsers(dest="sub", metavar="ACTION", required=True)
    p = add("start", "launch a training run of an experiment", run)
    p.add_argument("experiment")
    p.add_argument("--wait", action="store_true", help="wait for the end; exit 1 unless completed")
    p.add_argument(
        "--resume-from", metavar="RUN:NAME",
        help="continue training from checkpoint NAME of an earlier run; RUN is a run id or"
             " EXPERIMENT/NUMBER (e.g. lr-sweep/3:last.pt). A bare NAME takes the latest run"
             " of this experiment that has it (and says which). Names are file names inside"
             " that run's checkpoints/, never paths. Only adapters that declare the `resume`"
             " capability can resume (see `exp adapters`).")
    p.set_defaults(func="run_start")
    p = add("show", "status, summary and worker pid of a run", run)
    p.add_argument("run")
    p.set_defaults(func="run_show")
    p = add("metrics", "metric points of a run", run)
    p.add_argument("run")
    p.add_argument("--key", action="append")
    p.add_argument("--max-points", type=int, default=0, help="downsample to at most N per key")
    p.set_defaults(func="run_metrics")
    p = add("logs", "the run's log", run)
    p.add_argument("run")
    p.add_argument("--follow", "-f", action="store_true")
    p.add_argument("--lines", "-n", type=int, default=100)
    p.set_defaults(func="run_logs")
    p = add("cancel", "cancel a run's active job", run)
    p.add_argument("run")
    p.add_argument("--no-wait", action="store_true")
    p.set_defaults(func="run_cancel")
    p = add("checkpoints", "list (or delete) a run's checkpoints", run)
    p.add_argument("run")
    p.add_argument("--delete", metavar="NAME")
    p.set_defaults(func="run_checkpoints")
    p = add("list", "list runs", run)
    p.add_argument("--experiment")
    p.set_defaults(func="run_list")

    jobs = add("jobs", "jobs").add_subparsers(dest="sub", metavar="ACTION", required=True)
    p = add("list", "list jobs", jobs)
    p.add_argument("--status")
    p.add_argument("--type")
    p.set_defaults(func="jobs_list")
    p = add("show", "show a job", jobs)
    p.add_argument("job", type=int)
    p.set_defaults(func="jobs_show")
    p = add("cancel", "cancel a job", jobs)
    p.add_argument("job", type=int)
    p.add_argument("--no-wait", action="store_true")
    p.set_defaults(func="jobs_cancel")

    p = add("compare", "config diff and final metrics of experiments or runs")
    p.add_argument("targets", nargs="+")
    p.add_argument("--diff-only", action="store_true")
    p.add_argument("--best", action="store_true", help="compare best values instead of last")
    p.set_defaults(func="compare")

    p = add("eval", "evaluate a run's checkpoint")
    p.add_argument("run")
    p.add_argument("--checkpoint")
    p.add_argument("--wait", action="store_true")
    p.set_defaults(func="eval")
    idx = add("index", "search indexes").add_subparsers(dest="sub", metavar="ACTION", required=True)
    p = add("build", "build a search index from a run's checkpoint", idx)
    p.add_argument("run")
    p.add_argument("--checkpoint")
    p.add_argument("--wait", action="store_true")
    p.set_defaults(func="index_build")
    search = add("search", "query a run's index").add_subparsers(dest="sub", metavar="KIND",
                                                                  required=True)
    for kind in ("text", "image"):
        p = add(kind, f"search by {kind}", search)
        p.add_argument("query", help="query text" if kind == "text" else "image path")
        p.add_argument("--run", required=True)
        p.add_argument("--checkpoint")
        p.add_argument("--k", type=int, default=10)
        p.add_argument("--opt", action="append", default=[], metavar="NAME=VALUE",
                       help="adapter search option (e.g. bits=64)")
        p.add_argument("--bits", type=int)
        p.add_argument("--method")
        p.add_argument("--show", action="store_true", help="draw result thumbnails")
        p.set_defaults(func=f"search_{kind}")

    from . import study_cmds

    study_cmds.add_parsers(add, sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command. Whatever a user can cause ends in one line on stderr and an exit code:
    1 for errors, 2 for usage (argparse), 130 for Ctrl-C (jobs keep running: workers live in
    their own sessions), 141 when the reader of our output went away (``| head``)."""
    try:
        return _dispatch(argv)
    except KeyboardInterrupt:
        _quiet_stdout()
        print("labdeck: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        _quiet_stdout()
        return 141
    except Exception as exc:  # noqa: BLE001 - the last line of defence: no tracebacks
        from .output import clean

        expected = _user_errors()
        msg = clean(str(exc).splitlines()[0]) if str(exc) else type(exc).__name__
        if isinstance(exc, expected):
            print(f"labdeck: error: {msg}", file=sys.stderr)
            return 1
        if os.environ.get("LABDECK_DEBUG"):
            raise
        print(f"labdeck: internal error: {type(exc).__name__}: {msg} "
              "(LABDECK_DEBUG=1 shows the traceback)", file=sys.stderr)
        return 1


def _dispatch(argv: list[str] | None) -> int:
    import asyncio

    from . import commands, study_cmds  # noqa: F401 - registers handlers

    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        args.func = "tui"
    fn = HANDLERS[args.func]
    return asyncio.run(fn(args)) or 0


def _user_errors() -> tuple[type[BaseException], ...]:
    import sqlite3

    from adapters.base import ConfigError

    from ..experiments import ConflictError, NotFoundError
    from ..paths import UnsafePathError
    from ..registry import UnknownAdapterError
    from ..schema import SchemaTooNewError

    return (ConfigError, ConflictError, NotFoundError, UnknownAdapterError, UnsafePathError,
            SchemaTooNewError, OSError, ValueError, LookupError, TimeoutError, RuntimeError,
            sqlite3.Error)


def _quiet_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush cannot raise again (the
    pattern the Python docs give for SIGPIPE)."""
    try:
        sys.stdout.flush()
    except (BrokenPipeError, OSError, ValueError):
        pass
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
