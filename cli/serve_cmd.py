"""`labdeck serve`: the scheduler, headless, for as long as the process lives."""

from __future__ import annotations

import sys

from engine.api import Engine


def add_parsers(sub, add) -> None:
    p = add(sub, "serve", "run the scheduler headless (jobs survive the TUI closing)")
    p.add_argument("--max-concurrency", type=int)
    p.set_defaults(func=serve)


async def serve(args) -> int:
    from engine.settings import load_settings

    overrides = {}
    if args.max_concurrency:
        overrides["max_concurrency"] = args.max_concurrency
    engine = Engine(load_settings(args.home, **overrides))
    try:
        await engine.store.open()
        sched = await engine.ensure_scheduler(mode="serve")
        if sched.state.holds_lease or sched.state.problem:
            print(f"labdeck: serving {engine.home} (max {engine.settings.max_concurrency} jobs)",
                  file=sys.stderr)
        elif not sched.state.stopped:
            print(f"labdeck: another scheduler (pid {sched.state.owner_pid}, "
                  f"{sched.state.owner_mode}) serves {engine.home}; standing by",
                  file=sys.stderr)
        # one line per event and per change of state (fault, retry, recovery); the process
        # lives exactly as long as its scheduler
        while True:
            ended = await sched.wait_ended(1.0)
            for ev in sched.take_events():
                print(f"labdeck: {ev}", file=sys.stderr, flush=True)
            if ended:
                break
        raise RuntimeError(f"scheduler stopped: {sched.state.stopped or 'its task ended'}")
    finally:
        await engine.close()
