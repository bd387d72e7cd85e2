"""One GPU as the Resources area draws it (nvitop-like): name, temperature and power; bars for
utilisation and memory coloured by level; the labdeck job that holds it, foreign processes,
and why the scheduler may not use it. A Rich renderable that fills the width it is given."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from rich.console import Console, ConsoleOptions, RenderResult
from rich.measure import Measurement
from rich.text import Text

from engine.resources import GpuState

EIGHTHS = " ▏▎▍▌▋▊▉"


def level_style(fraction: float | None) -> str:
    """Green while there is room, yellow past half, red past 80%."""
    if fraction is None:
        return "dim"
    return "red" if fraction >= 0.8 else "yellow" if fraction >= 0.5 else "green"


def meter(fraction: float | None, width: int) -> Text:
    """A bar of ``width`` cells filled to ``fraction`` in eighths of a cell; the empty part
    dotted, so an idle device still shows its scale."""
    width = max(1, width)
    if fraction is None:
        return Text("·" * width, "dim")
    eighths = round(max(0.0, min(1.0, fraction)) * width * 8)
    full, part = divmod(eighths, 8)
    bar = "█" * full + (EIGHTHS[part] if part else "")
    return Text.assemble((bar, level_style(fraction)), ("·" * (width - len(bar)), "dim"))


def fmt_mb(mb: float | None) -> str:
    if mb is None:
        return "?"
    return f"{mb / 1024:.1f} GiB" if mb >= 1024 else f"{mb:.0f} MiB"


def fmt_mem(used_mb: float, total_mb: float) -> str:
    """``10.0/40.0 GiB`` (both in the unit of the total)."""
    if total_mb >= 1024:
        return f"{used_mb / 1024:.1f}/{total_mb / 1024:.1f} GiB"
    return f"{used_mb:.0f}/{total_mb:.0f} MiB"


def blocked(gpu: GpuState) -> bool:
    """Unusable for a reason other than the labdeck job that holds it (excluded, filled by
    foreign processes); the engine leaves a held device's note empty: ``held_by`` says it."""
    return not gpu.usable and (bool(gpu.note) or not gpu.held_by)


@dataclass(frozen=True)
class GpuCard:
    """``gpu`` as three or four lines; ``jobs`` names the labdeck jobs that hold devices
    (job id -> "train  lr-sweep › run 3")."""

    gpu: GpuState
    jobs: Mapping[int, str] = field(default_factory=dict)

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement(40, options.max_width)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = options.max_width
        for line in self.lines(width):
            line.truncate(width, overflow="ellipsis")
            yield line

    def lines(self, width: int) -> list[Text]:
        return [self._title(width), self._bars(width), *self._holders(), *self._foreign()]

    def _title(self, width: int) -> Text:
        g = self.gpu
        sensors = "  ".join(s for s in (
            f"{g.temp_c:.0f}°C" if g.temp_c is not None else "",
            f"{g.power_w:.0f} W" if g.power_w is not None else "") if s)
        head = Text.assemble((f"GPU {g.index}", "bold"), "  ", g.name)
        if blocked(g):
            head.stylize("dim")
        gap = width - head.cell_len - len(sensors)
        if sensors and gap >= 2:
            head.append(" " * gap + sensors, "dim")
        return head

    def _bars(self, width: int) -> Text:
        g = self.gpu
        util = g.util_pct / 100 if g.util_pct is not None else None
        mem = g.mem_used_mb / g.mem_total_mb if g.mem_total_mb else None
        util_text = f"{g.util_pct:3.0f}%" if g.util_pct is not None else " n/a"
        mem_text = fmt_mem(g.mem_used_mb, g.mem_total_mb)
        # "util " bar " 55%" "   mem " bar " 10.0/40.0 GiB": the two bars share what is left
        bars = max(2, width - len("util ") - len(util_text) - 1 - len("   mem ")
                   - len(mem_text) - 1)
        return Text.assemble(
            ("util ", "dim"), meter(util, bars // 2), " ", (util_text, level_style(util)),
            ("   mem ", "dim"), meter(mem, bars - bars // 2), " ", (mem_text, level_style(mem)))

    def _holders(self) -> list[Text]:
        g = self.gpu
        out = []
        # the jobs assigned this device, and any other labdeck job found running on it
        seen = [p.job_id for p in g.processes if p.job_id is not None]
        for job_id in dict.fromkeys([*g.held_by, *seen]):
            used = sum(p.used_mb or 0.0 for p in g.processes if p.job_id == job_id)
            line = Text.assemble(("▶ ", "bold cyan"), (f"job {job_id}", "bold cyan"), "  ",
                                 self.jobs.get(job_id, ""))
            if used:
                line.append(f"  {fmt_mb(used)}", "dim")
            out.append(line)
        if blocked(g):
            out.append(Text(f"⚠ {g.note or 'not usable now'}", "yellow"))
        elif g.note:  # "shared (LABDECK_GPU_SHARE)"
            out.append(Text(g.note, "dim"))
        if not out:
            out.append(Text("free", "green"))
        return out

    def _foreign(self) -> list[Text]:
        procs = [p for p in self.gpu.processes if p.job_id is None]
        if not procs:
            return []
        line = Text.assemble(("foreign  ", "dim"))
        for i, p in enumerate(procs):
            line.append(("  " if i else "") + f"pid {p.pid} ")
            line.append(fmt_mb(p.used_mb), "dim")
        return [line]
