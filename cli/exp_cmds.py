"""`labdeck exp ...`: create, edit, list, show and delete experiments; list the adapters."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from engine.api import Engine

from .job_control import resources_text
from .output import (
    add_paging_options,
    clean,
    emit_json,
    fmt_age,
    fmt_duration,
    fmt_num,
    print_listing,
    say,
    table,
)


def add_parsers(sub, add) -> None:
    exp = add(sub, "exp", "experiments").add_subparsers(dest="sub", metavar="ACTION",
                                                        required=True)
    p = add(exp, "create", "create an experiment")
    p.add_argument("name")
    p.add_argument("--adapter", required=True)
    p.add_argument("--config", help="JSON file with config values")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--objective")
    p.add_argument("--direction", choices=["minimize", "maximize"])
    p.add_argument("--tag", action="append", default=[])
    p.add_argument("--notes", default="")
    _resource_options(p, "its jobs ask for (default 0: the CPU)")
    p.set_defaults(func=exp_create)
    p = add(exp, "edit", "change what an experiment's jobs ask for")
    p.add_argument("name")
    _resource_options(p, "its jobs ask for (eval and index jobs: what their run's training"
                         " job asked)")
    p.set_defaults(func=exp_edit)
    p = add(exp, "list", "list experiments, the latest changed first")
    add_paging_options(p, "experiments")
    p.set_defaults(func=exp_list)
    p = add(exp, "show", "show an experiment")
    p.add_argument("name")
    p.set_defaults(func=exp_show)
    p = add(exp, "delete", "delete an experiment and its runs")
    p.add_argument("name")
    p.add_argument("--yes", action="store_true")
    p.set_defaults(func=exp_delete)
    p = add(exp, "adapters", "list adapters and their config schema")
    p.set_defaults(func=exp_adapters)


def _resource_options(p, what: str) -> None:
    p.add_argument("--gpus", type=int, metavar="N", help=f"GPUs {what}")
    p.add_argument("--gpu-mem", type=int, metavar="MB", dest="gpu_mem",
                   help="free memory each of those GPUs must have (0: any)")


async def exp_create(args) -> int:
    from engine.registry import get_adapter_class

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
            tags=args.tag, notes=args.notes, gpus=args.gpus or 0, gpu_mem_mb=args.gpu_mem)
    if args.json:
        emit_json(exp.to_json())
    else:
        say(f"created experiment {exp.name} (id {exp.id}, adapter {exp.adapter})")
    return 0


async def exp_edit(args) -> int:
    if args.gpus is None and args.gpu_mem is None:
        raise ValueError("nothing to change (give --gpus and/or --gpu-mem)")
    async with Engine.session(args.home) as engine:
        exp = await engine.update_experiment(args.name, gpus=args.gpus, gpu_mem_mb=args.gpu_mem)
    if args.json:
        emit_json(exp.to_json())
    else:
        say(f"experiment {exp.name}: jobs ask for {resources_text(exp.gpus, exp.gpu_mem_mb)}")
    return 0


async def exp_list(args) -> int:
    async with Engine.session(args.home) as engine:
        return await print_listing(
            args, engine.iter_experiments(offset=args.offset, limit=args.limit),
            headers=["name", "adapter", "runs", "last run", "best objective", "updated"],
            row=_exp_row, as_json=lambda e: e.to_json(), count=engine.count_experiments,
            noun="experiment")


def _exp_row(e) -> list[str]:
    best = "-"
    if e.objective and e.best_value is not None:
        arrow = "↓" if e.direction == "minimize" else "↑"
        best = f"{e.objective} {arrow} {fmt_num(e.best_value)}"
    return [e.name, e.adapter, str(e.runs), e.last_status or "-", best, fmt_age(e.updated)]


async def exp_show(args) -> int:
    async with Engine.session(args.home) as engine:
        exp = await engine.get_experiment(args.name)
        runs = await engine.list_runs(exp.id)
    if args.json:
        emit_json({**exp.to_json(), "run_list": [r.to_json() for r in runs]})
        return 0
    say(f"{exp.name}  (id {exp.id})  adapter {exp.adapter}")
    say(f"objective: {exp.objective or '-'} ({exp.direction or '-'})  tags: {', '.join(exp.tags)}")
    say(f"resources: {resources_text(exp.gpus, exp.gpu_mem_mb)}")
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


async def exp_adapters(args) -> int:
    from engine.registry import adapter_names, get_adapter_class

    out: list[dict[str, Any]] = []
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
