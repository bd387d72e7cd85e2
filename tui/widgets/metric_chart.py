"""A line chart of one or more series (textual-plotext), drawing only what it is handed:
callers pass downsampled points, so a million-point metric redraws as fast as a small one.
It draws no legend: plotext puts one over the data, so a caller with several series says
which colour is which on a line of its own (Compare's legend line).

The title is the widget's own top line (a border title), not plotext's: plotext leaves out a
title that does not fit centred over the canvas (a long options line, a narrow chart, wide
y labels), so the curve showed with no name. Here the title is always drawn, cut with an
ellipsis where it is too long."""

from __future__ import annotations

import math
from dataclasses import dataclass

from textual.content import Content
from textual_plotext import PlotextPlot


@dataclass
class Series:
    label: str
    x: list[float]
    y: list[float]
    rgb: tuple[int, int, int] = (66, 165, 245)


def ema(values: list[float], alpha: float) -> list[float]:
    """Exponential moving average with weight ``alpha`` on the past (0 = no smoothing)."""
    if not alpha or not values:
        return values
    out, acc = [], values[0]
    for v in values:
        acc = alpha * acc + (1 - alpha) * v
        out.append(acc)
    return out


class MetricChart(PlotextPlot):
    DEFAULT_CSS = """
    MetricChart {
        border-top: blank;
        border-title-align: center;
        border-title-color: $foreground;
    }
    """

    def __init__(self, key: str = "", **kw) -> None:
        super().__init__(**kw)
        self.key = key
        self.title = key
        self.border_title = Content(key)  # plain text: a metric name is no markup
        self.series: list[Series] = []
        self.smoothing = 0.0
        self.log_y = False
        self.x_label = "step"
        self._signature: tuple | None = None

    def show(self, series: list[Series], *, smoothing: float = 0.0, log_y: bool = False,
             x_label: str = "step", title: str | None = None, force: bool = False) -> bool:
        """Replace the data; redraw only when something visible changed. Returns redrawn."""
        sig = (tuple((s.label, len(s.x), s.x[-1] if s.x else None, s.y[-1] if s.y else None)
                     for s in series), smoothing, log_y, x_label, title)
        if sig == self._signature and not force:
            return False
        self._signature = sig
        self.series, self.smoothing, self.log_y, self.x_label = series, smoothing, log_y, x_label
        if title is not None:
            self.title = title
            self.border_title = Content(title)
        self.replot()
        return True

    def replot(self) -> None:
        plt = self.plt
        plt.clear_figure()
        plt.xlabel(self.x_label)
        drawn = False
        for s in self.series:
            ys = ema(s.y, self.smoothing)
            xs = s.x
            if self.log_y:
                pairs = [(x, y) for x, y in zip(xs, ys, strict=False) if y > 0 and math.isfinite(y)]
                xs, ys = [p[0] for p in pairs], [p[1] for p in pairs]
            if xs:
                plt.plot(xs, ys, color=s.rgb, marker="braille")
                drawn = True
        if self.log_y and drawn:
            plt.yscale("log")
        self.refresh()
