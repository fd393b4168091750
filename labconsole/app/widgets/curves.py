"""A plotext plot of one ``Chart`` (curves against step plus reference lines).

Its owner (the run monitor, or Compare) sets ``chart``; the widget redraws only when it gets a
different chart object, and the monitor hands charts down at most a few times a second. Each curve is thinned to about two points per
braille column at draw time (``downsample``): the view is downsampled, never the data.
"""
from __future__ import annotations

from rich.text import Text
from textual.app import RenderResult
from textual_plotext import PlotextPlot

from labconsole.app.charts import Chart
from labconsole.app.state import downsample


class ChartPlot(PlotextPlot):
    """Draws ``chart``; ``points_drawn`` counts the points of the last draw (for tests)."""

    DEFAULT_CSS = """
    ChartPlot { height: 1fr; width: 1fr; min-height: 6; }
    """

    def __init__(self, chart: Chart | None = None, *, id: str | None = None, classes: str | None = None):
        super().__init__(id=id, classes=classes)
        self._chart = chart or Chart("")
        self.points_drawn = 0

    @property
    def chart(self) -> Chart:
        return self._chart

    @chart.setter
    def chart(self, chart: Chart) -> None:
        if chart != self._chart:
            self._chart = chart
            self.refresh()

    def render(self) -> RenderResult:
        chart, plt = self._chart, self.plt
        plt.clear_data()
        plt.title(chart.title)
        plt.xlabel("step")
        # clear_data keeps the axis scale: set it on every draw (Compare reuses one plot).
        plt.yscale("log" if chart.ylog else "linear")
        if not chart.n_points:
            self.points_drawn = 0
            return Text(f"{chart.title}: {chart.empty}", style="dim")
        max_points = max(8, 2 * 2 * self.size.width)  # braille: 2 dots per column, min+max per bucket
        drawn = 0
        for curve in chart.curves:
            if not curve.steps:
                continue
            xs, ys = downsample(curve.steps, curve.values, max_points)
            # One point alone draws nothing as a line; a scatter marker shows it.
            draw = plt.plot if len(xs) > 1 else plt.scatter
            draw(xs, ys, label=curve.label, color=curve.colour, marker="braille")
            drawn += len(xs)
        for line in chart.hlines:
            plt.hline(line.value, color=line.colour)
        if chart.ylim is not None:
            plt.ylim(*chart.ylim)
        self.points_drawn = drawn
        return self._titled(super().render(), chart.title)

    def _titled(self, plot: Text, title: str) -> Text:
        """The plot with ``title`` on its first row, cut to the widget's width.

        Plotext leaves out a title wider than its plot area (at 80x24 every title is) but keeps
        its row; writing the title there ourselves keeps the ceiling and baseline readable.
        """
        lines = plot.split("\n", allow_blank=True)
        if not lines:
            return plot
        background = lines[0].spans[0].style if lines[0].spans else ""
        head = Text(title, style=background, no_wrap=True)
        head.truncate(self.size.width, overflow="ellipsis")
        head.align("center", self.size.width)
        head.stylize("bold")
        lines[0] = head
        return Text("\n").join(lines)
