"""`labdeck gpus`: the machine's GPUs as the scheduler sees them (one row each: utilisation and
memory bars, the labdeck job that holds it, foreign processes, why it cannot be given), then
the jobs waiting in the queue and why. The same as the TUI's Resources view."""

from __future__ import annotations

from dataclasses import asdict

from engine.api import Engine
from engine.resources import GpuState, Resources

from .output import emit_json, say, table

BAR = 10


def add_parsers(sub, add) -> None:
    p = add(sub, "gpus", "GPUs, who holds them, and the jobs waiting for them")
    p.set_defaults(func=gpus)


async def gpus(args) -> int:
    async with Engine.session(args.home) as engine:
        res = await engine.resources()
        settings = engine.settings
    if args.json:
        emit_json(to_json(res))
        return 0
    if not res.gpus:
        say(f"no GPU ({res.nvml}): jobs run on the CPU, {settings.max_concurrency} at a time"
            " (LABDECK_MAX_CONCURRENCY)")
    else:
        rules = [f"sharing {'on' if settings.gpu_share else 'off'}",
                 f"foreign limit {settings.gpu_foreign_max:.0%}"]
        if settings.gpus_allowed is not None:
            rules.insert(0, "LABDECK_GPUS=" + (",".join(settings.gpus_allowed) or "none"))
        say(f"GPUs: {res.busy} of {res.total} busy  ({'; '.join(rules)})")
        say(table(["gpu", "name", "util", "memory", "temp", "power", "held by", "foreign",
                   "note"], [_row(g) for g in res.gpus]))
    if res.waiting:
        say("")
        say(f"waiting: {len(res.waiting)} job{'' if len(res.waiting) == 1 else 's'}")
        say(table(["job", "type", "target", "asks", "reason"],
                  [[str(w.job_id), w.type, w.target,
                    f"{w.gpus} GPU{'' if w.gpus == 1 else 's'}" if w.gpus else "CPU", w.reason]
                   for w in res.waiting]))
    return 0


def to_json(res: Resources) -> dict:
    return {"nvml": res.nvml, "total": res.total, "busy": res.busy,
            "gpus": [{**asdict(g), "mem_free_mb": g.mem_free_mb, "foreign_mb": g.foreign_mb()}
                     for g in res.gpus],
            "waiting": [asdict(w) for w in res.waiting]}


def bar(fraction: float | None) -> str:
    """``███░░░░░░░``; blank where the value is unknown."""
    if fraction is None:
        return " " * BAR
    full = round(max(0.0, min(1.0, fraction)) * BAR)
    return "█" * full + "░" * (BAR - full)


def _gb(mb: float) -> str:
    return f"{mb / 1024:.1f}"


def _row(g: GpuState) -> list[str]:
    util = (f"{bar(g.util_pct / 100)} {g.util_pct:3.0f}%" if g.util_pct is not None
            else f"{bar(None)}    -")
    mem = g.mem_used_mb / g.mem_total_mb if g.mem_total_mb else None
    foreign = [p for p in g.processes if p.job_id is None]
    return [str(g.index), g.name, util,
            f"{bar(mem)} {_gb(g.mem_used_mb)}/{_gb(g.mem_total_mb)} GiB",
            "-" if g.temp_c is None else f"{g.temp_c:.0f}°C",
            "-" if g.power_w is None else f"{g.power_w:.0f} W",
            ", ".join(f"job {j}" for j in g.held_by) or "-",
            ", ".join(f"pid {p.pid}" + ("" if p.used_mb is None else f" {_gb(p.used_mb)} GiB")
                      for p in foreign) or "-",
            g.note]
