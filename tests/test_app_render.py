"""Renderers of the bump grid and the manifold: exact cell colours, layout, marks."""
from __future__ import annotations

import numpy as np
import pytest
from rich.console import Console
from rich.segment import Segments

from labconsole.app.samples import load_samples
from labconsole.app.widgets.bumps import (
    UPPER_HALF,
    bump_lines,
    caption,
    choose_scale,
    grid_lines,
    halve,
    to_gray,
)
from labconsole.app.widgets.manifold import canvas_lines, colormap, scatter_canvas
from test_app_helpers import bump_image, write_samples


def rgb(color):
    return color.get_truecolor().red, color.get_truecolor().green, color.get_truecolor().blue


def test_to_gray_maps_minus_one_to_black_and_one_to_white():
    assert list(to_gray(np.array([-1.0, 0.0, 1.0, 2.0]))) == [0, 128, 255, 255]


def test_half_block_cell_is_upper_pixel_on_lower_pixel():
    image = -np.ones((4, 4), dtype=np.float32)  # black
    image[0, 1] = 1.0  # row 0, col 1 white (upper half of cell (0, 1))
    image[3, 2] = 0.0  # row 3, col 2 mid grey (lower half of cell (1, 2))
    lines = bump_lines(image)
    assert len(lines) == 2 and all(len(line) == 4 for line in lines)
    cell = lines[0][1]
    assert cell.text == UPPER_HALF
    assert rgb(cell.style.color) == (255, 255, 255) and rgb(cell.style.bgcolor) == (0, 0, 0)
    cell = lines[1][2]
    assert rgb(cell.style.color) == (0, 0, 0) and rgb(cell.style.bgcolor) == (128, 128, 128)
    for segment in (s for line in lines for s in line):  # true grayscale everywhere
        assert len(set(rgb(segment.style.color))) == 1 and len(set(rgb(segment.style.bgcolor))) == 1


def test_a_32_pixel_bump_is_32_columns_by_16_rows_or_16_by_8_halved():
    image = bump_image(16.0, 16.0)
    assert [len(bump_lines(image)), len(bump_lines(image)[0])] == [16, 32]
    assert [len(bump_lines(image, scale=2)), len(bump_lines(image, scale=2)[0])] == [8, 16]
    assert halve(np.arange(16.0).reshape(4, 4)).tolist() == [[2.5, 4.5], [10.5, 12.5]]
    with pytest.raises(ValueError, match="scale must be 1 or 2"):
        bump_lines(image, scale=3)


def test_the_dark_bump_lands_where_its_label_says():
    x, y = 20.5, 9.5  # pixel column 20, row 9 -> cell row 4, lower half
    lines = bump_lines(bump_image(x, y, sigma=1.0))
    darkest = min(((r, c) for r in range(16) for c in range(32)), key=lambda rc: rgb(lines[rc[0]][rc[1]].style.bgcolor)[0])
    assert darkest == (4, 20)


def test_target_and_prediction_marks():
    image = bump_image(16.0, 16.0)
    lines = bump_lines(image, target=(4.2, 6.9), pred=(30.0, 30.0))
    assert lines[3][4].text == "+"  # x 4.2 -> col 4, y 6.9 -> row 6 -> cell row 3
    assert lines[15][30].text == "x"
    both = bump_lines(image, target=(4.2, 6.9), pred=(4.9, 6.1))
    assert both[3][4].text == "*"
    halved = bump_lines(image, target=(4.2, 6.9), scale=2)
    assert halved[1][2].text == "+"  # 2x2 blocks: col 2, pixel row 3 -> cell row 1
    edge = bump_lines(image, pred=(32.0, 32.0))  # on the border: clamped into the picture
    assert edge[15][31].text == "x"


def test_caption_lists_target_prediction_and_extra_blobs():
    assert caption((1.25, 2.0), (3.0, 4.5), 1, 32) == ["+1.2,2.0 x3.0,4.5"]
    assert caption((11.25, 12.0), (13.0, 14.5), 3, 16) == ["+11.2,12.0", "x13.0,14.5 b3"]


def test_grid_chooses_full_size_when_two_fit_and_halves_otherwise(tmp_path):
    samples = load_samples(tmp_path / write_samples(tmp_path, 100, n=12))
    assert choose_scale(12, 66, 17) == 1 and choose_scale(12, 50, 17) == 2 and choose_scale(1, 33, 17) == 1
    lines, shown, scale = grid_lines(samples, 100, 36)
    assert scale == 1 and shown == 6  # 3 across (33 cols each), 2 down (16 rows + caption)
    assert all(sum(len(s.text) for s in line) <= 100 for line in lines)
    lines, shown, scale = grid_lines(samples, 52, 18)
    assert scale == 2 and shown == 3 * 1  # 80x24's main area: 3 across, one row of 8 + 2 captions
    assert grid_lines(samples, 0, 10)[1] == 0


def test_load_samples_reads_the_eval_file_and_rejects_bad_ones(tmp_path):
    rel = write_samples(tmp_path, 6400, n=5)
    samples = load_samples(tmp_path / rel, 6400)
    assert len(samples) == 5 and samples.images.shape == (5, 32, 32) and samples.embedding.shape == (5, 3)
    np.savez(tmp_path / "bad.npz", images=np.zeros((2, 32, 32)))
    with pytest.raises(ValueError, match="no 'labels' array"):
        load_samples(tmp_path / "bad.npz")
    with pytest.raises(FileNotFoundError):
        load_samples(tmp_path / "missing.npz")


def test_colormap_is_ordered_and_clipped():
    colours = colormap(np.array([-5.0, 0.0, 16.0, 32.0, 99.0]), 0.0, 32.0)
    assert colours[0].tolist() == colours[1].tolist() == [68, 1, 84]  # viridis' dark end
    assert colours[-1].tolist() == colours[-2].tolist() == [253, 231, 37]  # its bright end
    brightness = colormap(np.linspace(0, 32, 20), 0, 32).astype(int).sum(axis=1)
    assert (np.diff(brightness) > 0).all()


def test_scatter_fills_the_canvas_and_keeps_point_colours():
    points = np.array([[0.0, 0.0], [10.0, 5.0], [5.0, 2.5]])
    colours = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255]], dtype=np.uint8)
    canvas = scatter_canvas(points, colours, width=11, height=3)  # 11 x 6 pixels
    assert canvas[5, 0].tolist() == [255, 0, 0]  # min x, min y -> bottom-left
    assert canvas[0, 10].tolist() == [0, 255, 0]  # max -> top-right
    assert (canvas[..., 0] >= 0).sum() == 3
    lines = canvas_lines(canvas)
    assert len(lines) == 3
    assert lines[2][0].text == "▄" and rgb(lines[2][0].style.color) == (255, 0, 0)
    assert lines[0][10].text == "▀" and rgb(lines[0][10].style.color) == (0, 255, 0)
    assert lines[0][1].text == " "


def test_half_blocks_stay_grey_in_256_colours():
    """Over SSH without true colour, Rich maps each grey to the 256-colour palette's greys."""
    line = bump_lines(bump_image(16, 16))[8]
    console = Console(color_system="256", force_terminal=True, width=40, record=True)
    with console.capture() as capture:
        console.print(Segments(line), end="")
    out = capture.get()
    assert "38;5;" in out and "48;5;" in out  # 256-colour escapes
    assert "38;2;" not in out  # no truecolor escapes leak through


def test_stripes_with_an_axis_read_absent_draw_on_a_frame_of_a_larger_canvas():
    from labconsole.samples import Samples

    labels = np.array([[22.5, 3.0], [3.0, 3.0]], dtype=np.float32)  # canvas 44, frame offset 6: y off the frame
    pred = np.array([[22.4, np.nan], [np.nan, np.nan]], dtype=np.float32)  # y read absent; a blank read blank
    s = Samples(np.ones((2, 32, 32), dtype=np.float32), labels, pred, np.ones(2, dtype=int), offset=6.0)
    lines, shown, _ = grid_lines(s, 80, 40)
    assert shown == 2
    marks = [(r, c, seg.text) for r, line in enumerate(lines[:16]) for c, seg in enumerate(line) if seg.text in "+x*"]
    # targets shifted into the frame (22.5 - 6 = column 16; y off the frame: the edge), no prediction mark
    # where an axis read absent (segment 33: the second image's first column, after the gap)
    assert marks == [(0, 16, "+"), (0, 33, "+")]
    assert caption(labels[0], pred[0], 1, 32) == ["+22.5,3.0 x22.4,-"]
