"""`labdeck` / `labdeck tui` open the TUI; `labdeck demo` seeds the demo home and opens it (or
runs its jobs headless). The TUI is imported only here, when it opens, so headless commands
never load textual."""

from __future__ import annotations

import os
from pathlib import Path

from engine.api import Engine

from .job_control import wait_jobs


def add_parsers(sub, add) -> None:
    p = add(sub, "demo", "create the demo home (--home, else $LABDECK_HOME, else"
                         " ~/.labdeck-demo) and open labdeck on it")
    p.add_argument("--headless", action="store_true", help="run the demo loop without the TUI")
    p.set_defaults(func=demo)
    p = add(sub, "tui", "open the TUI (same as no subcommand)")
    p.set_defaults(func=tui)


async def tui(args) -> int:
    try:
        from tui.app import run_async
    except ImportError as exc:
        raise RuntimeError(f"the TUI is not available: {exc}") from None
    await run_async(home=args.home)
    return 0


def default_demo_home() -> Path:
    """--home wins, then $LABDECK_HOME (as for every command), else ~/.labdeck-demo, so the
    demo never touches a real ~/.labdeck by accident."""
    from engine.settings import HOME_ENV

    return Path(os.environ.get(HOME_ENV) or "~/.labdeck-demo").expanduser()


async def demo(args) -> int:
    from engine.demo import seed_demo

    home = args.home or str(default_demo_home())
    async with Engine.session(home) as engine:
        notes = await seed_demo(engine)
        if args.headless:
            for n in notes:
                print(n)
            jobs = await engine.list_jobs(status="queued") + await engine.list_jobs(
                status="running")
            done = await wait_jobs(engine, [j.id for j in jobs], quiet=args.json)
            for j in done:
                print(f"job {j.id} {j.type} {j.target}: {j.status}")
            return 0
    args.home = home
    return await tui(args)
