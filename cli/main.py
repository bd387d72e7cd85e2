"""The top parser and the dispatch. Every command takes --home and --json; each command module
adds its own parsers (``add_parsers(sub, add)``) with its handlers as ``func``. A failure
prints one line on stderr and exits non-zero (1 for errors, 2 for usage)."""

from __future__ import annotations

import argparse
import os
import sys


def _common(p: argparse.ArgumentParser, top: bool = False) -> None:
    # Subcommands repeat the options with SUPPRESS defaults, so `labdeck --home X run ...` and
    # `labdeck run ... --home X` both work (a sub-parser default would erase the top value).
    p.add_argument("--home", default=None if top else argparse.SUPPRESS,
                   help="labdeck home (default $LABDECK_HOME or ~/.labdeck); private to"
                        " you (0700/0600) unless <home>/home.json says {\"shared\": true}"
                        " (group-readable 0750/0640)")
    p.add_argument("--json", action="store_true", default=False if top else argparse.SUPPRESS,
                   help="machine-readable output")


def add_command(parent, name: str, help: str) -> argparse.ArgumentParser:
    """A (sub)command parser under ``parent`` (a subparsers action), with --home and --json.
    Command modules receive it as ``add`` and set ``func`` to their handler, an async
    ``fn(args) -> int``."""
    p = parent.add_parser(name, help=help, description=help)
    _common(p)
    return p


def build_parser() -> argparse.ArgumentParser:
    # the command modules load here, not at import, so a Ctrl-C while they load is still
    # caught by main()
    from . import (
        compare_cmd,
        eval_cmds,
        exp_cmds,
        gpus_cmd,
        jobs_cmds,
        run_cmds,
        search_cmds,
        serve_cmd,
        study_cmds,
        tui_cmds,
    )

    parser = argparse.ArgumentParser(
        prog="labdeck", description="Terminal-first ML experiments. No subcommand: open the TUI.")
    _common(parser, top=True)
    parser.set_defaults(func=tui_cmds.tui)
    sub = parser.add_subparsers(dest="cmd", metavar="COMMAND")
    for module in (serve_cmd, tui_cmds, exp_cmds, run_cmds, jobs_cmds, gpus_cmd, compare_cmd,
                   eval_cmds, search_cmds, study_cmds):
        module.add_parsers(sub, add_command)
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

    args = build_parser().parse_args(argv)
    return asyncio.run(args.func(args)) or 0


def _user_errors() -> tuple[type[BaseException], ...]:
    import sqlite3

    from adapters.base import ConfigError
    from engine.experiments import ConflictError, NotFoundError
    from engine.paths import UnsafePathError
    from engine.registry import UnknownAdapterError
    from engine.schema import SchemaTooNewError

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
