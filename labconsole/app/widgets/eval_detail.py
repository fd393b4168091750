"""The latest eval's numbers of the follow-up paper's experiments (issue 16), under the failure strip:

    PCA layer 4 @1,200: top-4 62% · PR 3.9 · n90 7 · rings x⊥y 0.02 · x∥x 0.99 · y∥y 0.98
    held out: vertical arm 0.40 (x 0.55 y 0.60, n 38) · horizontal arm 0.35 (x 0.50 y 0.61, n 40) · ...

The PCA line reads ``Eval.pca_top4`` / ``pca_pr`` / ``pca_n90`` and the ring-plane overlaps
``pca_overlap_xy`` / ``_xx`` / ``_yy`` (orthogonality of x- and y-rings, parallelism of x-rings and
of y-rings: metrics.spectrum), headed "PCA @1,200:" where the width needs it, the rings on a line
of their own where it needs more (left out when the held-out lines need that line: the console's
80 columns give the monitor ~50). The held-out lines read ``Eval.regions`` (model.data.
held_out_regions: e.g. a cross's arms and their intersection), packed into as many lines as the
width needs; when they need more than two, the x / y accuracies are dropped, then the counts
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
MAX_LINES = 3  # the widget's max-height


def _fixed(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


RINGS = (("x⊥y", "pca_overlap_xy"), ("x∥x", "pca_overlap_xx"), ("y∥y", "pca_overlap_yy"))


def rings_item(e: Eval) -> str:
    """'rings x⊥y 0.02 · x∥x 0.99 · y∥y 0.98' ('n/a' for one without enough rings); '' for an eval
    without ring overlaps (none computable, or written before them)."""
    values = [(name, getattr(e, field)) for name, field in RINGS]
    if all(v is None for _, v in values):
        return ""
    return "rings " + SEP.join(f"{name} {_fixed(v)}" for name, v in values)


def pca_lines(e: Eval, width: int) -> list[Text]:
    """'PCA layer 4 @1,200: top-4 62% · PR 3.9 · n90 7 · rings x⊥y 0.02 · x∥x 0.99 · y∥y 0.98' in one
    line of ``width`` if it fits, else headed 'PCA @1,200: ...', else the rings on a line of their own;
    [] for an eval without a spectrum."""
    if e.pca_top4 is None:
        return []
    numbers = f" @{format_step(e.step)}: top-4 {e.pca_top4:.0%}{SEP}PR {e.pca_pr:.1f}{SEP}n90 {e.pca_n90}"
    rings = rings_item(e)
    for head in ("PCA layer 4", "PCA"):
        body = numbers + (SEP + rings if rings else "")
        if len(head + body) <= width:
            return [Text.assemble((head, "bold"), body)]
    head = "PCA layer 4" if len("PCA layer 4" + numbers) <= width else "PCA"
    return [Text.assemble((head, "bold"), numbers), Text.assemble(("rings", "bold"), rings[len("rings"):])]


def region_item(name: str, r: dict, detail: int) -> str:
    """One region, in ``detail`` 2: 'vertical arm 0.40 (x 0.55 y 0.60, ceiling 0.89, n 38)' (no
    ceiling in an eval written before it), 1: 'vertical arm 0.40 (n 38)', 0: 'vertical arm 0.40'."""
    acc = f"{name} {_fixed(r.get('accuracy'))}"
    if detail == 0:
        return acc
    axes = f"x {_fixed(r.get('accuracy_x'))} y {_fixed(r.get('accuracy_y'))}, " if detail == 2 else ""
    ceiling = f"ceiling {_fixed(r.get('ceiling'))}, " if detail == 2 and "ceiling" in r else ""
    return f"{acc} ({axes}{ceiling}n {r.get('n', 0)})"


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
    """The PCA line(s) and the held-out lines of eval ``e`` (none for None or an older eval), at most
    MAX_LINES: where they need more, the rings' own line is left out."""
    if e is None:
        return []
    pca, regions = pca_lines(e, width), region_lines(e, width)
    if len(pca) + len(regions) > MAX_LINES:  # the held-out regions first: the rings show at a wider width
        pca = pca[:1]
    lines = pca + regions
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
        text = Text("\n").join(detail_lines(self.eval, self.content_size.width))
        text.no_wrap, text.overflow = True, "ellipsis"  # join keeps neither from its lines
        return text
