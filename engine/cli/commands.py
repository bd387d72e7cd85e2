"""Handlers of the headless commands."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from ..api import Engine
from ..jobs import FINAL
from .main import handler
from .output import clean, emit_json, fmt_age, fmt_duration, fmt_num, say, table


async def kick(engine: Engine) -> None:
    """Launch queued work now when no scheduler serves the home: one scheduler tick claims and
    starts workers (detached sessions), then gives the lease back."""
    status = await engine.scheduler_status()
    if status["serving"]:
        return
    from ..scheduler import Scheduler

    sched = Scheduler(engine.settings, mode="cli")
    try:
        await asyncio.to_thread(sched.tick)
    except Exception as exc:  # noqa: BLE001 - the work is queued; any scheduler will start it
        print(f"labdeck: could not start it now ({exc}); it stays queued until a scheduler"
              " runs (labdeck serve, or the TUI)", file=sys.stderr)
    finally:
        await asyncio.to_thread(sched._release)


async def wait_jobs(engine: Engine, job_ids: list[int], quiet: bool) -> list:
    """Wait for jobs, running an embedded scheduler while no other serves the home."""
    sched = await engine.ensure_scheduler()
    last = ""
    jobs = []
    for jid in job_ids:
        while True:
            job = await engine.get_job(jid)
            if job.status in FINAL:
                jobs.append(job)
                break
            if sched.state.stopped:  # nobody here will start or watch it any more
                raise RuntimeError(f"scheduler stopped: {sched.state.stopped}")
            if not quiet and sys.stderr.isatty():
                line = f"\r job {jid} {job.status} {job.progress * 100:5.1f}% {clean(job.message[:60])}"
                if line != last:
                    sys.stderr.write(line.ljust(90))
                    sys.stderr.flush()
                    last = line
            await asyncio.sleep(0.25)
    if last:
        sys.stderr.write("\n")
    return jobs


# ------------------------------------------------------------------ serve / demo / tui


@handler("serve")
async def serve(args) -> int:
    from ..settings import load_settings

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


def default_demo_home() -> Path:
    """--home wins, then $LABDECK_HOME (as for every command), else ~/.labdeck-demo, so the
    demo never touches a real ~/.labdeck by accident."""
    from ..settings import HOME_ENV

    return Path(os.environ.get(HOME_ENV) or "~/.labdeck-demo").expanduser()


@handler("demo")
async def demo(args) -> int:
    from ..demo import seed_demo

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


@handler("tui")
async def tui(args) -> int:
    import importlib

    try:
        app_mod = importlib.import_module("tui.app")
    except ImportError as exc:
        raise RuntimeError(f"the TUI is not available: {exc}") from None
    await app_mod.run_async(home=args.home)
    return 0


# ------------------------------------------------------------------ experiments


@handler("exp_create")
async def exp_create(args) -> int:
    from ..registry import get_adapter_class

    cls = get_adapter_class(args.adapter)
    config: dict[str, Any] = {}
    if args.config:
        try:
            config = json.loads(Path(args.config).read_text())
        except (OSError, ValueError) as exc:
            raise ValueError(f"--config {args.config}: {exc}") from None
        if not isinstance(config, dict):
            raise ValueError(f"--config {args.config}: expected a JSON object")
    config.update(cls.parse_assignments(args.set))
    async with Engine.session(args.home) as engine:
        exp = await engine.create_experiment(
            args.name, args.adapter, config, objective=args.objective, direction=args.direction,
            tags=args.tag, notes=args.notes)
    if args.json:
        emit_json(exp.to_json())
    else:
        say(f"created experiment {exp.name} (id {exp.id}, adapter {exp.adapter})")
    return 0


@handler("exp_list")
async def exp_list(args) -> int:
    async with Engine.session(args.home) as engine:
        exps = await engine.list_experiments()
    if args.json:
        emit_json([e.to_json() for e in exps])
        return 0
    rows = []
    for e in exps:
        best = "-"
        if e.objective and e.best_value is not None:
            arrow = "↓" if e.direction == "minimize" else "↑"
            best = f"{e.objective} {arrow} {fmt_num(e.best_value)}"
        rows.append([e.name, e.adapter, str(e.runs), e.last_status or "-", best,
                     fmt_age(e.updated)])
    say(table(["name", "adapter", "runs", "last run", "best objective", "updated"], rows))
    return 0


@handler("exp_show")
async def exp_show(args) -> int:
    async with Engine.session(args.home) as engine:
        exp = await engine.get_experiment(args.name)
        runs = await engine.list_runs(exp.id)
    if args.json:
        emit_json({**exp.to_json(), "run_list": [r.to_json() for r in runs]})
        return 0
    say(f"{exp.name}  (id {exp.id})  adapter {exp.adapter}")
    say(f"objective: {exp.objective or '-'} ({exp.direction or '-'})  tags: {', '.join(exp.tags)}")
    if exp.origin:
        say(f"origin: {exp.origin}")
    say("config:")
    for k, v in exp.config.items():
        say(f"  {clean(k)} = {v!r}")
    if runs:
        say(table(["run", "status", "steps", "duration"],
                  [[f"#{r.number} (id {r.id})", r.status, fmt_num(r.steps),
                    fmt_duration(r.duration)] for r in runs]))
    return 0


@handler("exp_delete")
async def exp_delete(args) -> int:
    async with Engine.session(args.home) as engine:
        exp = await engine.get_experiment(args.name)
        if not args.yes and sys.stdin.isatty():
            answer = input(f"delete experiment {exp.name} and its {exp.runs} run(s)? [y/N] ")
            if answer.strip().lower() not in ("y", "yes"):
                say("not deleted", file=sys.stderr)
                return 1
        await engine.delete_experiment(exp.id)
    if args.json:
        emit_json({"deleted": exp.name})
    else:
        say(f"deleted experiment {exp.name}")
    return 0


@handler("adapters")
async def adapters(args) -> int:
    from ..registry import adapter_names, get_adapter_class

    out = []
    for name in adapter_names():
        cls = get_adapter_class(name)
        out.append({"name": name, "description": cls.description,
                    "capabilities": sorted(cls.capabilities),
                    "fields": [{"name": f.name, "type": f.type, "default": f.default,
                                "min": f.min, "max": f.max, "choices": f.choices, "help": f.help}
                               for f in cls.config_schema().fields]})
    if args.json:
        emit_json(out)
    else:
        for a in out:
            say(f"{a['name']}: {a['description']}  [{', '.join(a['capabilities'])}]")
            for f in a["fields"]:
                say(f"  {f['name']} ({f['type']}, default {f['default']!r}) {f['help']}")
    return 0


from . import run_cmds, search_cmds  # noqa: E402,F401 - register the other handlers
