"""Parallel coordinates in the terminal: one vertical axis per parameter plus the objective,
each trial a polyline across them, in braille dots.

Drawn with numpy, not plotext: plotext walks every point of every line in Python (1,000
polylines took 4.7 s); here all the lines between two axes are a few array operations, and
1,000 trials draw in about the time of 10 (bench/parallel_coords.py). Log axes are spaced by
log10, categorical axes put their levels evenly from bottom to top. Lines are shaded by
objective rank, brightest best (a cell takes the shade of the best line through it). The
best trial and the highlighted one are drawn over the rest in their own colours and marked
on every axis with a glyph that reads without colour (★ best, ◆ highlighted); the
highlighted trial's values are printed under the chart.

The widget has no keys of its own: a screen lists its keys (footer, help, keymap) and calls
``step_axis`` / ``step_trial``; the widget posts ``Highlighted`` when the trial changes."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from rich.cells import cell_len
from rich.console import Console
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.message import Message
from textual.strip import Strip
from textual.widget import Widget

BEST = (255, 167, 38)  # the objective chart's best-so-far colour
PICKED = (236, 64, 122)
LEVELS = 6  # shades of the lines, best to worst
BRIGHT, DIM = (100, 181, 246), (78, 96, 110)
# the bit of each dot of a braille cell: rows 0-3, columns 0-1
DOT_BITS = np.array([[0x01, 0x08], [0x02, 0x10], [0x04, 0x20], [0x40, 0x80]], dtype=np.uint16)
AXIS, AXIS_FOCUSED, BEST_MARK, PICKED_MARK = "│", "┃", "★", "◆"
# a cell's style: a shade 0..LEVELS-1, then these
S_BLANK, S_BEST, S_PICKED, S_AXIS, S_AXIS_FOCUSED, S_LABEL = range(LEVELS, LEVELS + 6)


@dataclass(frozen=True)
class Axis:
    """One vertical axis. ``kind`` is float, int or categorical; ``low``/``high`` are the
    searched range (widened to the data when a value lies outside); ``note`` follows the name
    (an objective's ↓ or ↑)."""

    name: str
    kind: str = "float"
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple[Any, ...] = ()
    note: str = ""


@dataclass(frozen=True)
class TrialLine:
    """One trial: its number and one value per axis (None where it has none)."""

    number: int
    values: tuple[Any, ...]


def _rgb(c: tuple[int, int, int]) -> str:
    return f"rgb({c[0]},{c[1]},{c[2]})"


def _shade(i: int) -> tuple[int, int, int]:
    f = i / max(1, LEVELS - 1)
    r, g, b = (round(x + (y - x) * f) for x, y in zip(BRIGHT, DIM, strict=True))
    return r, g, b


# turns the label lines' Rich text into segments (the plot's rows are built as segments)
_CONSOLE = Console(width=1000, color_system=None, legacy_windows=False)


def _strip(text: Text) -> Strip:
    text.end = ""
    return Strip(text.render(_CONSOLE))


SHADES = [Style.parse(_rgb(_shade(i))) for i in range(LEVELS)]


def short_num(v: float, kind: str = "float") -> str:
    """An axis tick: few characters (1e-3, 0.25, 120, 3.2e+04)."""
    if kind == "int" and float(v).is_integer():
        return str(int(v))
    if v == 0:
        return "0"
    a = abs(v)
    if a < 1e-2 or a >= 1e5:
        m, e = f"{v:.1e}".split("e")
        m = m.rstrip("0").rstrip(".")
        return f"{m}e{int(e)}"
    return f"{v:.3g}"


def value_text(v: Any) -> str:
    if isinstance(v, float):
        return short_num(v) if math.isfinite(v) else str(v)
    return "-" if v is None else str(v)


# ------------------------------------------------------------------ where lines go


class Scale:
    """Where an axis puts a value, as a fraction of its height (0 bottom, 1 top)."""

    def __init__(self, axis: Axis, values: list[Any]) -> None:
        self.axis = axis
        self.levels: list[str] = []
        self.lo = self.hi = 0.0
        if axis.kind == "categorical":
            self.levels = [str(c) for c in axis.choices]
            for v in values:  # a value outside the choices gets a level of its own
                if v is not None and str(v) not in self.levels:
                    self.levels.append(str(v))
            return
        nums = [self._fwd(float(v)) for v in values if self._number(v)]
        nums = [x for x in nums if math.isfinite(x)]
        ends = [self._fwd(float(b)) for b in (axis.low, axis.high) if self._number(b)]
        ends = [x for x in ends if math.isfinite(x)]
        span = nums + ends
        if span:
            self.lo, self.hi = min(span), max(span)

    @staticmethod
    def _number(v: Any) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)

    def _fwd(self, v: float) -> float:
        if self.axis.log:
            return math.log10(v) if v > 0 else math.nan
        return v

    def positions(self, values: list[Any]) -> np.ndarray:
        if self.levels:
            index = {k: i for i, k in enumerate(self.levels)}
            n = len(self.levels)
            return np.array([math.nan if v is None else
                             (0.5 if n == 1 else index[str(v)] / (n - 1)) for v in values],
                            dtype=float)
        out = np.array([self._fwd(float(v)) if self._number(v) else math.nan for v in values],
                       dtype=float)
        if self.hi == self.lo:
            return np.where(np.isnan(out), math.nan, 0.5)
        return (out - self.lo) / (self.hi - self.lo)

    def ends(self) -> tuple[str, str]:
        """The labels at the top and bottom of the axis (empty for categorical: its levels
        are labelled where they are)."""
        if self.levels:
            return "", ""
        if self.axis.log:
            return short_num(10 ** self.hi), short_num(10 ** self.lo)
        return short_num(self.hi, self.axis.kind), short_num(self.lo, self.axis.kind)


# ------------------------------------------------------------------ drawing


def axis_columns(n_axes: int, width: int) -> list[int]:
    """The column of each axis: the middle of equal slots across the width."""
    slot = width / max(1, n_axes)
    return [int(slot * i + slot / 2) for i in range(n_axes)]


def rasterise(pos: np.ndarray, shade: np.ndarray, cols: list[int], width: int,
              rows: int, shaded: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """Braille dots of the polylines through ``pos`` (lines x axes, fractions; NaN: no
    value) between the axis columns ``cols``; ``shade`` (ascending) is each line's. Returns
    each cell's dot bits (rows x width) and the lowest (best) shade of a line through it
    (S_BLANK where none passes; None unless ``shaded``)."""
    hpx, wpx = rows * 4, width * 2
    # each dot keeps the best shade that passed it: lines are written worst shade first
    dots = np.full(hpx * wpx, S_BLANK, dtype=np.int8)
    if len(pos) and len(cols) > 1:
        ypx = ((1.0 - np.clip(pos, 0.0, 1.0)) * (hpx - 1)).astype(np.float32)
        xs = [2 * c + 1 for c in cols]
        cuts = np.searchsorted(shade, np.arange(LEVELS + 1))
        for g in range(len(cols) - 1):
            y0, y1 = ypx[:, g], ypx[:, g + 1]
            ok = ~(np.isnan(y0) | np.isnan(y1))
            if not ok.any():
                continue
            dx = xs[g + 1] - xs[g]
            dy = y1 - y0
            # one sample per dot along the longer side, so a steep line has no gaps
            steps = int(max(dx, float(np.nanmax(np.abs(dy))))) + 1
            t = np.linspace(0.0, 1.0, steps, dtype=np.float32)
            px = (xs[g] + t * dx + 0.5).astype(np.int32)
            for level in range(LEVELS - 1, -1, -1):
                a, b = cuts[level], cuts[level + 1]
                sel = ok[a:b]
                if a == b or not sel.any():
                    continue
                py = np.multiply.outer(dy[a:b][sel], t)
                py += y0[a:b][sel, None] + 0.5
                flat = py.astype(np.int32)
                flat *= wpx
                flat += px
                dots[flat.ravel()] = level
    cells = dots.reshape(rows, 4, width, 2)
    bits = ((cells < S_BLANK) * DOT_BITS[None, :, None, :]).sum(axis=(1, 3), dtype=np.uint16)
    return bits, cells.min(axis=(1, 3)).astype(np.int16) if shaded else None


@dataclass
class Layout:
    width: int
    rows: int  # the plot's
    cols: list[int]  # each axis's column


class ParallelCoords(Widget, can_focus=True):
    """Parallel coordinates of trials (see the module docstring)."""

    DEFAULT_CSS = """
    ParallelCoords {
        width: 1fr;
        height: 1fr;
        min-height: 10;
    }
    """

    class Highlighted(Message):
        """The highlighted trial changed (``number`` None: no trial is drawn)."""

        def __init__(self, widget: ParallelCoords, number: int | None) -> None:
            super().__init__()
            self.widget = widget
            self.number = number

        @property
        def control(self) -> ParallelCoords:
            return self.widget

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.axes: list[Axis] = []
        self.lines: list[TrialLine] = []  # best first
        self.best: int | None = None
        self.note = ""
        self.focus_axis = 0
        self.highlighted: int | None = None
        self.scales: list[Scale] = []
        self.pos = np.zeros((0, 0))
        self._index: dict[int, int] = {}
        self._raster: tuple[tuple, np.ndarray, np.ndarray | None] | None = None
        self._strips: tuple[tuple, list[Strip]] | None = None
        self._version = 0  # counts show()s that changed the data
        self._signature: tuple | None = None

    # ------------------------------------------------------------------ data in

    def show(self, axes: list[Axis], lines: list[TrialLine], best: int | None,
             note: str = "") -> bool:
        """Draw ``lines`` (ordered best first: the order shades them) across ``axes``.
        Keeps the focused axis (by name) and the highlighted trial when they are still
        there; else the last axis (the objective) and the best trial. Returns redrawn."""
        sig = (tuple(axes), tuple(lines), best, note)
        if sig == self._signature:
            return False
        self._signature = sig
        focused = self.axes[self.focus_axis].name if self.axes else None
        self.axes, self.lines, self.best, self.note = list(axes), list(lines), best, note
        names = [a.name for a in axes]
        self.focus_axis = names.index(focused) if focused in names else max(0, len(axes) - 1)
        self.scales = [Scale(a, [ln.values[i] for ln in lines]) for i, a in enumerate(axes)]
        self.pos = (np.column_stack([s.positions([ln.values[i] for ln in lines])
                                     for i, s in enumerate(self.scales)])
                    if lines and axes else np.zeros((len(lines), len(axes))))
        self._index = {ln.number: i for i, ln in enumerate(lines)}
        self._raster = None
        self._version += 1
        if self.highlighted not in self._index:
            self._set_highlight(best if best in self._index else
                                (lines[0].number if lines else None))
        self.refresh()
        return True

    # ------------------------------------------------------------------ keys (the screen's)

    def step_axis(self, delta: int) -> None:
        if self.axes:
            self.focus_axis = max(0, min(len(self.axes) - 1, self.focus_axis + delta))
            self.refresh()

    def trial_order(self) -> list[int]:
        """Trial numbers bottom to top along the focused axis: the best first among equal
        values (a categorical level), those without a value on it last."""
        if not self.lines:
            return []
        col = self.pos[:, self.focus_axis]
        ranks = np.arange(len(self.lines))
        missing = np.isnan(col)
        order = np.lexsort((ranks, np.where(missing, 0.0, col), missing))
        return [self.lines[i].number for i in order]

    def step_trial(self, delta: int) -> None:
        """Highlight the trial ``delta`` places up (positive) or down along the focused
        axis."""
        order = self.trial_order()
        if not order:
            return
        i = order.index(self.highlighted) if self.highlighted in order else 0
        self._set_highlight(order[max(0, min(len(order) - 1, i + delta))])

    def _set_highlight(self, number: int | None) -> None:
        if number != self.highlighted:
            self.highlighted = number
            self.post_message(self.Highlighted(self, number))
        self.refresh()

    # ------------------------------------------------------------------ drawing

    def render_line(self, y: int) -> Strip:
        width, height = self.content_size
        key = (width, height, self._version, self.focus_axis, self.highlighted, self.has_focus,
               self.rich_style)
        if self._strips is None or self._strips[0] != key:
            base = self.rich_style
            self._strips = (key, [s.apply_style(base).crop_extend(0, width, base)
                                  for s in self.draw(width, height)])
        strips = self._strips[1]
        return strips[y] if y < len(strips) else Strip.blank(width, self.rich_style)

    def draw(self, width: int, height: int) -> list[Strip]:
        """The whole view, ``width`` x ``height`` cells at most: a title line, the axis
        names, their top ends, the plot, their bottom ends, the highlighted trial's values."""
        if width < 8 or height < 3:
            return []
        head = self.title_line(width)
        readout = self.readout_lines(width)[:max(0, height - 8)]
        rows = height - 4 - len(readout)
        if not self.lines or not self.axes or rows < 2:
            msg = ("no complete trial to draw yet" if not self.lines
                   else "too small: make the terminal taller")
            return [_strip(head), _strip(Text(msg, "dim"))]
        lay = Layout(width, rows, axis_columns(len(self.axes), width))
        return [_strip(head), _strip(self._names(lay)), _strip(self._ends(lay, top=True)),
                *self._plot(lay), _strip(self._ends(lay, top=False)),
                *[_strip(t) for t in readout]]

    def title_line(self, width: int) -> Text:
        n = len(self.lines)
        line = Text(f"{n:,} trial{'s' if n != 1 else ''}", "bold")
        if self.note:
            line.append(f"  {self.note}")
        legend = Text.assemble(("best ", "dim"),
                               *[("█", _rgb(_shade(i))) for i in range(LEVELS)],
                               (" worst  ", "dim"), (BEST_MARK, f"bold {_rgb(BEST)}"),
                               (" best  ", "dim"), (PICKED_MARK, f"bold {_rgb(PICKED)}"),
                               (" picked", "dim"))
        if line.cell_len + 2 + legend.cell_len <= width:
            line.append(" " * (width - line.cell_len - legend.cell_len))
            line.append_text(legend)
        line.truncate(width, overflow="ellipsis")
        return line

    def _label_width(self, lay: Layout) -> int:
        """Room right of an axis for a categorical level's label."""
        if len(lay.cols) < 2:
            return lay.width
        return max(3, lay.cols[1] - lay.cols[0] - 1)

    @staticmethod
    def _room(lay: Layout, i: int) -> tuple[int, int]:
        """The columns a label centred on axis ``i`` may take: halfway to its neighbours
        (to the edge for the first and last)."""
        cols, col = lay.cols, lay.cols[i]
        left = (col - cols[i - 1] - 1) // 2 if i > 0 else col
        right = (cols[i + 1] - col - 1) // 2 if i + 1 < len(cols) else lay.width - 1 - col
        return col - left, col + right

    def _centred(self, lay: Layout, texts: list[Text]) -> Text:
        """One label per axis, centred on it, cut to its room."""
        line = Text(no_wrap=True)
        cursor = 0
        for i, t in enumerate(texts):
            lo, hi = self._room(lay, i)
            t = t.copy()
            t.truncate(hi - lo + 1, overflow="ellipsis")
            start = max(cursor, lo, min(hi + 1 - t.cell_len, lay.cols[i] - t.cell_len // 2))
            line.append(" " * (start - cursor))
            line.append_text(t)
            cursor = start + t.cell_len
        return line

    def _names(self, lay: Layout) -> Text:
        """Each axis's name (with ↓/↑ and "log" where they fit), the focused one in reverse
        (underlined while the widget has no focus)."""
        texts = []
        for i, a in enumerate(self.axes):
            lo, hi = self._room(lay, i)
            name = a.name + (f" {a.note}" if a.note else "")
            if a.log and cell_len(name) + 4 <= hi - lo + 1:
                name += " log"
            focused = i == self.focus_axis
            texts.append(Text(name, ("bold reverse" if self.has_focus else "bold underline")
                              if focused else "bold"))
        return self._centred(lay, texts)

    def _ends(self, lay: Layout, top: bool) -> Text:
        return self._centred(lay, [Text(s.ends()[0 if top else 1], "dim")
                                   for s in self.scales])

    def _plot(self, lay: Layout) -> list[Strip]:
        key = (lay.width, lay.rows)
        if self._raster is None or self._raster[0] != key:
            n = len(self.lines)
            shade = (np.arange(n) * LEVELS // max(1, n)).astype(np.int16)
            bits, shades = rasterise(self.pos, shade, lay.cols, lay.width, lay.rows)
            self._raster = (key, bits, shades)
        _, bits, shades = self._raster
        chars = np.where(bits > 0, bits.astype(np.int32) + 0x2800, ord(" "))
        style = shades.copy()  # a shade, or BLANK where no line passes
        # the best line, then the highlighted one, over the rest (their own dots only)
        for number, st in ((self.best, S_BEST), (self.highlighted, S_PICKED)):
            if number in self._index:
                over = self._overlay(lay, number)
                chars = np.where(over > 0, over.astype(np.int32) + 0x2800, chars)
                style = np.where(over > 0, st, style)
        self._axes_over(lay, chars, style)
        self._level_labels(lay, chars, style)
        styles = [*SHADES, Style(), Style.parse(f"bold {_rgb(BEST)}"),
                  Style.parse(f"bold {_rgb(PICKED)}"), Style(dim=True),
                  Style(bold=True), Style(italic=True)]
        out = []
        for r in range(lay.rows):
            text = chars[r].astype("<u4").tobytes().decode("utf-32-le")
            row_style = style[r]
            ends = [*(np.flatnonzero(np.diff(row_style)) + 1).tolist(), lay.width]
            starts = [0, *ends[:-1]]
            out.append(Strip([Segment(text[a:b], styles[row_style[a]])
                              for a, b in zip(starts, ends, strict=True)], lay.width))
        return out

    def _overlay(self, lay: Layout, number: int) -> np.ndarray:
        i = self._index[number]
        bits, _ = rasterise(self.pos[i:i + 1], np.zeros(1, dtype=np.int16), lay.cols,
                            lay.width, lay.rows, shaded=False)
        return bits

    def _row_of(self, lay: Layout, frac: float) -> int:
        return int(np.rint((1.0 - min(1.0, max(0.0, frac))) * (lay.rows * 4 - 1))) >> 2

    def _axes_over(self, lay: Layout, chars: np.ndarray, style: np.ndarray) -> None:
        """Each axis as a column of its own, with the best trial (★) and the highlighted one
        (◆; ★ in the highlight's colour when it is the best) marked where they cross it;
        where both cross at the same cell, ◆ sits just left of the axis."""
        for a, col in enumerate(lay.cols):
            focused = a == self.focus_axis
            chars[:, col] = ord(AXIS_FOCUSED if focused else AXIS)
            style[:, col] = S_AXIS_FOCUSED if focused else S_AXIS
            best_row = self._crossing(lay, self.best, a)
            picked_row = self._crossing(lay, self.highlighted, a)
            if self.highlighted == self.best:
                if best_row is not None:
                    chars[best_row, col], style[best_row, col] = ord(BEST_MARK), S_PICKED
                continue
            if best_row is not None:
                chars[best_row, col], style[best_row, col] = ord(BEST_MARK), S_BEST
            if picked_row is not None:
                c = col - 1 if picked_row == best_row and col > 0 else col
                chars[picked_row, c], style[picked_row, c] = ord(PICKED_MARK), S_PICKED

    def _crossing(self, lay: Layout, number: int | None, axis: int) -> int | None:
        """The plot row where trial ``number`` crosses ``axis`` (None: not drawn there)."""
        if number not in self._index:
            return None
        frac = self.pos[self._index[number], axis]
        return None if math.isnan(frac) else self._row_of(lay, frac)

    def _level_labels(self, lay: Layout, chars: np.ndarray, style: np.ndarray) -> None:
        """A categorical axis's levels, written just right of it where they sit (when each
        level has a row of its own)."""
        room = self._label_width(lay) - 1
        for s, col in zip(self.scales, lay.cols, strict=True):
            n = len(s.levels)
            if not n or n > lay.rows or room < 1:
                continue
            rows = [self._row_of(lay, 0.5 if n == 1 else i / (n - 1)) for i in range(n)]
            if len(set(rows)) < n:
                continue
            for r, level in zip(rows, s.levels, strict=True):
                for j, ch in enumerate(level[:room]):
                    c = col + 1 + j
                    if c >= lay.width or cell_len(ch) != 1:
                        break
                    chars[r, c], style[r, c] = ord(ch), S_LABEL

    def readout_lines(self, width: int) -> list[Text]:
        """The highlighted trial: number, rank, then each axis's value (the focused axis's in
        reverse), packed into as few lines of ``width`` as they fit."""
        number = self.highlighted
        if number not in self._index:
            return []
        line = self.lines[self._index[number]]
        items = [Text.assemble((f"{PICKED_MARK} #{number}", f"bold {_rgb(PICKED)}"),
                               (f" {BEST_MARK} best" if number == self.best else "",
                                f"bold {_rgb(BEST)}"),
                               (f" rank {self._index[number] + 1}/{len(self.lines)}", "dim"))]
        for i, (a, v) in enumerate(zip(self.axes, line.values, strict=True)):
            items.append(Text(f"{a.name} {value_text(v)}",
                              "bold reverse" if i == self.focus_axis else ""))
        out = [Text(no_wrap=True)]
        for item in items:
            item.truncate(width, overflow="ellipsis")
            if out[-1].cell_len and out[-1].cell_len + 2 + item.cell_len > width:
                out.append(Text(no_wrap=True))
            if out[-1].cell_len:
                out[-1].append("  ")
            out[-1].append_text(item)
        return out

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()
