"""What every report figure shares: the style, the font, a figure on its own Agg canvas, saving
as PNG and PDF. matplotlib is imported by ``labconsole.figures`` alone (tests/test_layers.py).

pyplot is never imported: figures are ``Figure`` objects on a ``FigureCanvasAgg``, so no global
backend or figure registry is touched, and the style applies only inside ``style()``.
"""
from __future__ import annotations

import contextlib
import functools
import io
import textwrap
import warnings
from pathlib import Path
from typing import Iterator

import matplotlib
import numpy as np
from matplotlib import font_manager
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from labconsole.aggregate import Curve
from labconsole.rundir import write_atomic

ONE_COLUMN, TWO_COLUMNS = 3.4, 7.0  # inches: a paper's column and page widths
DPI = 200  # the preset's figures
RUN_DPI = 150  # per-run figures: many, looked at on a screen; 150 dpi is 56% of the pixels to draw
STYLE = {
    "pdf.fonttype": 42, "ps.fonttype": 42,  # TrueType embedded: text stays text, journals accept it
    "font.size": 7, "axes.titlesize": 7, "axes.labelsize": 7, "legend.fontsize": 6,
    "xtick.labelsize": 6, "ytick.labelsize": 6, "axes.spines.top": False, "axes.spines.right": False,
    "lines.linewidth": 1.0, "legend.frameon": False, "figure.dpi": 100, "image.interpolation": "nearest",
}
FONT = "DejaVu Sans"  # matplotlib's own: present wherever matplotlib is
CUT_FONT = "DejaVu Sans Report"  # FONT cut to what a report writes (``report_font``)
CUT_CHARS = [*range(0x20, 0x7F), *range(0xA0, 0x180), *range(0x391, 0x3CA), 0x2013, 0x2014, 0x2026, 0x2192,
             0x2212, 0x2264, 0x2265]  # ASCII, Latin-1 + Latin Extended-A, Greek, dashes, arrow, minus, <= >=
STEP_TICKS = FuncFormatter(lambda v, _: f"{v / 1000:g}k" if abs(v) >= 1000 else f"{v:g}")


@contextlib.contextmanager
def style() -> Iterator[None]:
    """The report style (``STYLE`` and ``report_font``) for the figures made inside."""
    with matplotlib.rc_context({**STYLE, "font.family": [report_font(), FONT]}):
        yield


@functools.cache
def report_font() -> str:
    """The font family of the figures: DejaVu Sans cut once to ``CUT_CHARS``, renamed, kept in
    matplotlib's cache dir and registered; DejaVu Sans itself when that dir is not writable.

    Why: a PDF embeds a subset of its TrueType font, which matplotlib has fontTools make from the
    whole font file at every save: ~0.1 s a PDF from DejaVu Sans (756 KB, with its layout tables),
    ~9 ms from the cut one (62 KB), the same glyphs and spacing. A report writes dozens of PDFs. Characters
    outside the cut fall back to DejaVu Sans glyph by glyph. (The fonts' licence allows a modified
    copy under a name without "Bitstream" or "Vera".)
    """
    source = Path(font_manager.findfont(FONT, fallback_to_default=False))
    path = Path(matplotlib.get_cachedir()) / f"labconsole-sans-v2-{source.stat().st_size}-{len(CUT_CHARS)}.ttf"
    try:
        if not path.is_file():
            _cut_font(source, path)
        font_manager.fontManager.addfont(str(path))
    except (OSError, RuntimeError) as exc:  # an unwritable cache dir, a file FreeType cannot read
        warnings.warn(f"labconsole.figures: the whole {FONT} font is embedded, PDFs are slower ({exc})", stacklevel=2)
        return FONT
    return CUT_FONT


def _cut_font(source: Path, path: Path) -> None:
    from fontTools import subset  # a dependency of matplotlib

    # matplotlib lays text out with the old 'kern' table (kept: the same spacing as the whole font);
    # the OpenType layout tables it never reads are what make fontTools slow.
    options = subset.Options(layout_features=[], name_IDs=["*"], notdef_outline=True, legacy_kern=True)
    options.drop_tables += ["GSUB", "GPOS", "GDEF", "MATH", "FFTM"]
    font = subset.load_font(str(source), options)
    cutter = subset.Subsetter(options)
    cutter.populate(unicodes=CUT_CHARS)
    cutter.subset(font)
    for record in font["name"].names:  # a new family name, so it never stands in for the whole font
        if record.nameID in (1, 4, 16):
            record.string = CUT_FONT
        elif record.nameID == 6:
            record.string = CUT_FONT.replace(" ", "")
    buf = io.BytesIO()
    font.save(buf)
    write_atomic(path, buf.getvalue(), fsync=False)  # two reports at once: each writes whole files


def save(fig: Figure, base: Path, dpi: int = DPI) -> list[Path]:
    """Write ``fig`` as ``base.png`` (at ``dpi``) and ``base.pdf``, each atomically; returns the paths."""
    base.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    for ext in ("png", "pdf"):
        buf = io.BytesIO()
        fig.savefig(buf, format=ext, dpi=dpi)
        # The layout is solved by the first draw; solving it again for the PDF would cost as much.
        fig.set_layout_engine("none")
        path = base.with_name(f"{base.name}.{ext}")
        write_atomic(path, buf.getvalue(), fsync=False)  # a reader never sees half a figure
        paths.append(path)
    return paths


def new_figure(width: float, height: float, nrows: int = 1, ncols: int = 1, *,
               margins: tuple[float, float, float, float] | None = None, **kw) -> tuple[Figure, np.ndarray]:
    """A figure on its own Agg canvas (no pyplot) and its (nrows, ncols) axes. ``margins`` (left,
    right, bottom, top, in inches) fix the layout; without them it is solved once, at the first
    draw (constrained layout: slower, for figures whose legends and labels vary)."""
    fig = Figure(figsize=(width, height), layout=None if margins else "constrained")
    FigureCanvasAgg(fig)
    if margins:
        left, right, bottom, top = margins
        fig.subplots_adjust(left=left / width, right=1 - right / width, bottom=bottom / height, top=1 - top / height,
                            wspace=kw.pop("wspace", 0.3), hspace=kw.pop("hspace", 0.3))
    return fig, fig.subplots(nrows, ncols, squeeze=False, **kw)


def panel_title(ax, text: str, width: float) -> None:
    """Title a panel about ``width`` inches wide, wrapped at spaces (a long word broken) to fit it:
    a sweep's setting labels ("holes=[[0.0,12.0,8.0,20.0]] hole_names=[edge]") ran into their
    neighbours' on one line."""
    chars = max(12, int(width * 72 / (0.6 * ax.title.get_fontsize())))  # ~0.6 em a character
    ax.set_title("\n".join(textwrap.wrap(text, chars)))


def colors(n: int) -> list:
    cmap = matplotlib.colormaps["tab10" if n <= 10 else "viridis"]
    return [cmap(i) if n <= 10 else cmap(i / max(n - 1, 1)) for i in range(n)]


def band(ax, c: Curve, color, label: str, ls: str = "-") -> None:
    """A curve's mean over seeds with its min-max band (a single seed: the line alone)."""
    ax.plot(c.steps, c.mean, color=color, ls=ls, label=label)
    if max(c.n) > 1:
        ax.fill_between(c.steps, c.lo, c.hi, color=color, alpha=0.2, lw=0)


class Mosaic:
    """A grid of image tiles drawn as one image (far cheaper than an axes per tile), with the
    targets marked +: what the samples grid (Fig. 3) and the held-out regions figure share. The
    figure's height follows the mosaic's aspect at a fixed width (at least ``min_height``)."""

    def __init__(self, width: float, margins: tuple[float, float, float, float], min_height: float = 0.0) -> None:
        self.margins, self.min_height = margins, min_height
        self.fig, axes = new_figure(width, 2.0, margins=margins)
        self.ax = axes[0, 0]
        cmap = matplotlib.colormaps["gray"].with_extremes(bad="0.8")  # the gaps between tiles
        self.image = self.ax.imshow(np.ones((2, 2)), cmap=cmap, vmin=-1, vmax=1)
        self.marks = self.ax.scatter([], [], marker="+", s=10, color="tab:red", lw=0.6)
        self.ax.tick_params(length=0)
        for side in self.ax.spines.values():
            side.set_visible(False)
        self.title = self.ax.set_title("", fontsize=6)

    def show(self, image: np.ndarray, marks: np.ndarray) -> None:
        """Draw ``image`` (NaN between tiles) with ``marks`` (K, 2) in its pixel coordinates."""
        left, right, bottom, top = self.margins
        width = self.fig.get_figwidth()
        height = max(self.min_height, (width - left - right) * image.shape[0] / image.shape[1] + bottom + top)
        self.fig.set_size_inches(width, height)
        self.fig.subplots_adjust(bottom=bottom / height, top=1 - top / height)
        self.image.set_data(image)
        self.image.set_extent((0, image.shape[1], image.shape[0], 0))
        self.marks.set_offsets(np.asarray(marks).reshape(-1, 2))
