"""The latest eval's numbers of the follow-up paper's experiments (issue 16), under the failure strip:

    PCA layer 4 @1,200: top-4 62% · PR 3.9 · n90 7
    held out: vertical arm 0.40 (x 0.55 y 0.60, n 38) · horizontal arm 0.35 (x 0.50 y 0.61, n 40) · ...

The PCA line reads ``Eval.pca_top4`` / ``pca_pr`` / ``pca_n90``, the held-out lines ``Eval.regions``
(model.data.held_out_regions: e.g. a cross's arms and their intersection), packed into as many lines
as the width needs; when they need more than two, the x / y accuracies are dropped, then the counts
(80 columns: "vertical arm 0.40 · horizontal arm 0.35", then their intersection). Evals written
before these fields show nothing here (the widget takes no height). Nothing here computes a metric.
"""
from __future__ import annotations

from rich.text import Text
from textual.app import RenderResult
from textual.widget import Widget

from labconsole.app.state import format_step
from labconsole.events import Eval

SEP = " · "
REGION_LINES = 2  # at most, before the x / y accuracies are dropped


def _fixed(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def pca_line(e: Eval) -> Text | None:
    """'PCA layer 4 @1,200: top-4 62% · PR 3.9 · n90 7', or None for an eval without a spectrum."""
    if e.pca_top4 is None:
        return None
    return Text.assemble(("PCA layer 4", "bold"), f" @{format_step(e.step)}: top-4 {e.pca_top4:.0%}{SEP}"
                         f"PR {e.pca_pr:.1f}{SEP}n90 {e.pca_n90}")


def region_item(name: str, r: dict, detail: int) -> str:
    """One region, in ``detail`` 2: 'vertical arm 0.40 (x 0.55 y 0.60, n 38)', 1: 'vertical arm
    0.40 (n 38)', 0: 'vertical arm 0.40'."""
    acc = f"{name} {_fixed(r.get('accuracy'))}"
    if detail == 0:
        return acc
    axes = f"x {_fixed(r.get('accuracy_x'))} y {_fixed(r.get('accuracy_y'))}, " if detail == 2 else ""
    return f"{acc} ({axes}n {r.get('n', 0)})"


def pack(items: list[str], width: int, head: str) -> list[str]:
    """Items joined by SEP into lines of at most ``width`` characters (an item longer than a line
    gets a line of its own), the first line starting with ``head``."""
    lines, line, indent = [], "", " " * len(head)
    for item in items:
        if not line:
            line = (indent if lines else head) + item
        elif len(line) + len(SEP) + len(item) <= width:
            line += SEP + item
        else:
            lines.append(line)
            line = indent + item
    return lines + [line] if line else lines


def region_lines(e: Eval, width: int) -> list[Text]:
    """The held-out regions' accuracies packed into lines of ``width``; [] without regions."""
    if not e.regions:
        return []
    head = "held out: "
    for detail in (2, 1, 0):  # the most detail that fits in REGION_LINES (the last one regardless)
        lines = pack([region_item(n, r, detail) for n, r in e.regions.items()], width, head)
        if len(lines) <= REGION_LINES:
            break
    return [Text.assemble((line[:len(head)], "bold"), line[len(head):]) for line in lines]


def detail_lines(e: Eval | None, width: int) -> list[Text]:
    """The PCA line and the held-out lines of eval ``e`` (none for None or an older eval)."""
    if e is None:
        return []
    lines = [line for line in (pca_line(e),) if line is not None] + region_lines(e, width)
    for line in lines:
        line.no_wrap, line.overflow = True, "ellipsis"
    return lines


class EvalDetail(Widget):
    """Shows ``detail_lines`` of the latest eval (set by the run monitor); as tall as its lines."""

    DEFAULT_CSS = """
    EvalDetail { height: auto; max-height: 3; padding: 0 1; color: $text-muted; }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.eval: Eval | None = None

    def set_eval(self, e: Eval | None) -> None:
        """Show eval ``e`` (the attached run's latest); redraws, and resizes, only on a new one."""
        if e is not self.eval:
            self.eval = e
            self.refresh(layout=True)

    def get_content_height(self, container, viewport, width: int) -> int:
        return len(detail_lines(self.eval, width))

    def render(self) -> RenderResult:
        return Text("\n").join(detail_lines(self.eval, self.content_size.width))
