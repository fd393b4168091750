"""A plotext plot of one sweep ``Chart``: like ``ChartPlot``, plus what a sweep's charts need.

A swept value on x (``Chart.xlabel``, ``xticks`` for values that are not numbers, ``xlim``) and
points drawn as points (``Curve.points``: a seed, a censored seed) with their own marker. Lines are
drawn first and points last, so a point is never hidden under a line through it.
"""
from __future__ import annotations

from rich.text import Text
from textual.app import RenderResult
from textual_plotext import PlotextPlot

from labconsole.app.state import downsample
from labconsole.app.widgets.curves import ChartPlot


class SweepPlot(ChartPlot):
    """Draws ``chart`` (set by the sweep screen; redrawn only when it is a different chart)."""

    def render(self) -> RenderResult:
        chart, plt = self.chart, self.plt
        plt.clear_data()
        plt.title(chart.title)
        plt.xlabel(chart.xlabel)
        plt.yscale("log" if chart.ylog else "linear")
        if not chart.n_points:
            self.points_drawn = 0
            return Text(f"{chart.title}: {chart.empty}", style="dim")
        max_points = max(8, 4 * self.size.width)  # as ChartPlot: min+max per braille dot column
        drawn = 0
        for curve in sorted((c for c in chart.curves if c.steps), key=lambda c: c.points):
            xs, ys = (curve.steps, curve.values) if curve.points else downsample(curve.steps, curve.values, max_points)
            draw = plt.scatter if curve.points or len(xs) == 1 else plt.plot
            draw(list(xs), list(ys), label=curve.label or None, color=curve.colour, marker=curve.marker)
            drawn += len(xs)
        for line in chart.hlines:
            plt.hline(line.value, color=line.colour)
        if chart.xticks:
            plt.xticks([x for x, _ in chart.xticks], [t for _, t in chart.xticks])
        if chart.xlim is not None:
            plt.xlim(*chart.xlim)
        if chart.ylim is not None:
            plt.ylim(*chart.ylim)
        self.points_drawn = drawn
        return self._titled(PlotextPlot.render(self), chart.title)
