"""Data kinds of the follow-up paper (issue 16): bumps, sums of stripes, stripes; per-axis widths,
tori, latent canvases; held-out regions; a kept fraction of the grid; their validation.

Every image is checked against ``reference``, a per-pixel loop written here from the formulas
(model/render.py's docstring), which calls none of the code under test.
"""
from __future__ import annotations

import dataclasses
import math
import sys

import numpy as np
import pytest
import torch

from labconsole.config import RunConfig
from labconsole.presets import load_preset
from labconsole.runconfig import PresetError, config_from_dict, config_to_dict, dumps_config, load_config
from model.data import (DataConfig, bump_images, frame_offset, grid_centres, held_out_regions, in_frame, keep_split,
                        make_dataset, render, to_model_scale, training_centres)

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib


def reference(mx: float, my: float, kind: str = "bump", sx: float = 1.0, sy: float = 1.0, size: int = 32,
              canvas: int = 0, periodic: bool = False) -> np.ndarray:
    """(size, size) image of one label, pixel by pixel, straight from the formulas."""
    side = canvas or size
    off = (side - size) / 2
    x_in, y_in = off <= mx < off + size, off <= my < off + size
    img = np.ones((size, size))
    for i in range(size):  # row -> y
        for j in range(size):  # column -> x
            px, py = off + j + 0.5, off + i + 0.5
            dx, dy = px - mx, py - my
            if periodic:  # the nearest of the label's copies one period away
                dx = min((dx + k * side for k in (-1, 0, 1)), key=abs)
                dy = min((dy + k * side for k in (-1, 0, 1)), key=abs)
            gx, gy = math.exp(-dx * dx / (2 * sx * sx)), math.exp(-dy * dy / (2 * sy * sy))
            if kind == "bump":
                dark = gx * gy
            elif kind == "sos":
                dark = min(gx + gy, 1.0)
            else:  # stripe: 2D bump, 1D stripe or blank, by which coordinates lie in the frame
                dark = {(True, True): gx * gy, (True, False): gx, (False, True): gy, (False, False): 0.0}[x_in, y_in]
            img[i, j] = 1.0 - dark
    return img


def one(mx: float, my: float, cfg: DataConfig) -> np.ndarray:
    return render(torch.tensor([[mx, my]]), cfg)[0].double().numpy()


# --------------------------------------------------------------------------- images


def test_the_default_config_renders_bump_images_bit_for_bit():
    mu = torch.from_numpy(np.random.default_rng(0).uniform(-3, 35, size=(500, 2)).astype(np.float32))
    for sigma in (0.5, 1.0, 1.7, 3.0):
        assert torch.equal(render(mu, DataConfig(sigma=sigma)), bump_images(mu, sigma, 32))
    cfg = DataConfig(dx=2.0, dy=2.0, sigma=3.0, holes=((12.0, 12.0, 20.0, 20.0),))
    data = make_dataset(cfg)
    train, hole = grid_centres(cfg)
    assert np.array_equal(data.mu.numpy(), train) and np.array_equal(data.hole_mu.numpy(), hole)
    assert torch.equal(data.images, to_model_scale(bump_images(data.mu, 3.0, 32)))


@pytest.mark.parametrize("mu", [(7.3, 21.8), (16.0, 16.0), (30.7, 0.4)])
def test_bump_with_per_axis_widths_matches_the_formula(mu):
    cfg = DataConfig(sigma=9.0, sigma_x=1.0, sigma_y=2.5)  # sigma is unused once both are set
    got = one(*mu, cfg)
    np.testing.assert_allclose(got, reference(*mu, sx=1.0, sy=2.5), atol=1e-6)
    assert got.min(axis=0).std() < got.min(axis=1).std()  # wider along y: columns vary less than rows
    half = one(*mu, DataConfig(sigma=2.5, sigma_x=1.0))  # one axis set, the other falls back to sigma
    np.testing.assert_allclose(half, reference(*mu, sx=1.0, sy=2.5), atol=1e-6)


def test_sum_of_stripes_matches_the_formula_and_is_clipped():
    cfg = DataConfig(kind="sos", sigma_x=1.2, sigma_y=2.0)
    got = one(9.5, 20.5, cfg)
    np.testing.assert_allclose(got, reference(9.5, 20.5, "sos", sx=1.2, sy=2.0), atol=1e-6)
    assert got[:, 9].max() == pytest.approx(0.0, abs=1e-6)  # the vertical stripe: fully dark down its column
    assert got[20, :].max() == pytest.approx(0.0, abs=1e-6)  # the horizontal one along its row
    assert got.min() >= 0.0  # clipped at the crossing


@pytest.mark.parametrize("mu, case", [
    ((22.0, 19.3), "2D"),  # both inside the frame [6, 38): a bump
    ((20.5, 2.0), "1D x"),  # mu_y in the margin: a vertical stripe at mu_x
    ((40.0, 10.5), "1D y"),  # mu_x in the margin: a horizontal stripe at mu_y
    ((3.0, 41.0), "0D"),  # both in the margin: blank
])
def test_stripes_render_2d_1d_or_blank_by_the_frame(mu, case):
    cfg = DataConfig(kind="stripe", sigma=1.5, canvas=44)
    got = one(*mu, cfg)
    np.testing.assert_allclose(got, reference(*mu, "stripe", sx=1.5, sy=1.5, canvas=44), atol=1e-6)
    rows_equal, cols_equal = np.ptp(got, axis=0).max() < 1e-9, np.ptp(got, axis=1).max() < 1e-9
    assert (rows_equal, cols_equal) == {"2D": (False, False), "1D x": (True, False), "1D y": (False, True),
                                        "0D": (True, True)}[case]
    assert (got.min() < 0.1) == (case != "0D")
    if case == "1D x":
        assert got[:, int(mu[0] - 6)].max() == pytest.approx(0.0, abs=1e-6)  # column 14 + .5 = canvas 20.5


def test_a_stripe_label_inside_the_frame_is_the_bump():
    mu = torch.tensor([[6.0, 37.9], [22.0, 22.0], [10.3, 30.1]])  # on and near the frame's edges
    stripe, bump = render(mu, DataConfig(kind="stripe", canvas=44)), render(mu, DataConfig(canvas=44))
    assert torch.equal(stripe, bump)


def test_in_frame_is_the_half_open_frame_of_the_canvas():
    cfg = DataConfig(canvas=44)
    assert frame_offset(cfg) == 6 and frame_offset(DataConfig()) == 0
    mu = np.array([[5.9, 6.0], [37.9, 38.0], [0.0, 43.9]])
    np.testing.assert_array_equal(in_frame(mu, cfg), [[False, True], [True, False], [False, False]])
    inside = in_frame(torch.tensor([[0.0, 31.9], [16.0, 32.0]]), DataConfig())  # no margin: the frame is [0, 32)
    assert isinstance(inside, torch.Tensor) and inside.tolist() == [[True, True], [True, False]]


def test_a_bump_at_the_canvas_centre_shows_at_the_frame_centre():
    got = one(22.0, 22.0, DataConfig(sigma=2.0, canvas=44))
    np.testing.assert_allclose(got, reference(22.0, 22.0, sx=2.0, sy=2.0, canvas=44), atol=1e-6)
    np.testing.assert_allclose(got, reference(16.0, 16.0, sx=2.0, sy=2.0), atol=1e-6)  # frame centre 16
    darkest = np.argwhere(got == got.min())
    assert {tuple(p) for p in darkest} == {(15, 15), (15, 16), (16, 15), (16, 16)}  # the 4 pixels around 16


def test_a_periodic_bump_wraps_around_the_edges():
    cfg = DataConfig(sigma=1.5, periodic=True)
    got = one(0.2, 16.5, cfg)
    np.testing.assert_allclose(got, reference(0.2, 16.5, sx=1.5, sy=1.5, periodic=True), atol=1e-6)
    # The same bump, unwrapped, 16 px to the right, rolled back 16 columns.
    shifted = np.roll(reference(16.2, 16.5, sx=1.5, sy=1.5), -16, axis=1)
    np.testing.assert_allclose(got, shifted, atol=1e-6)
    mass = 1.0 - got
    left, right = mass[:, :16].sum(), mass[:, 16:].sum()
    assert 0.3 < right / (left + right) < 0.5  # x = 0.2: a bit less than half wraps to the right edge
    flat = np.abs(got - one(0.2, 16.5, DataConfig(sigma=1.5))).max()
    assert flat > 0.3  # not periodic: the half beyond the left edge is lost


def test_a_periodic_canvas_wraps_with_the_canvas_period():
    cfg = DataConfig(kind="sos", sigma=2.0, canvas=40, periodic=True)
    for mu in [(1.0, 39.0), (20.0, 3.5)]:
        want = reference(*mu, "sos", sx=2.0, sy=2.0, canvas=40, periodic=True)
        np.testing.assert_allclose(one(*mu, cfg), want, atol=1e-6)


def test_an_unknown_kind_is_refused_by_name():
    with pytest.raises(ValueError, match=r"unknown data kind 'blob'; expected one of: bump, sos, stripe"):
        render(torch.zeros(1, 2), DataConfig(kind="blob"))


def test_make_dataset_renders_its_kind_on_the_canvas_grid():
    cfg = DataConfig(kind="stripe", dx=4.0, dy=4.0, sigma=2.0, canvas=44)
    data = make_dataset(cfg)
    assert len(data) == 11 * 11  # 0, 4, ..., 40 on the 44 px canvas
    assert data.images.shape == (121, 1, 32, 32)
    for k in (0, 5, 60, 120):  # blank, a stripe, a bump, blank
        mx, my = data.mu[k].tolist()
        want = reference(mx, my, "stripe", sx=2.0, sy=2.0, canvas=44) * 2 - 1
        np.testing.assert_allclose(data.images[k, 0].double().numpy(), want, atol=1e-5)


# --------------------------------------------------------------------------- regions


def cross(**kw) -> DataConfig:
    """dx = dy = 4 on 32 px: 8 x 8 centres 0..28; a vertical strip x in [12, 20], a horizontal y in [12, 20]."""
    return DataConfig(dx=4.0, dy=4.0, holes=((12.0, 0.0, 20.0, 32.0), (0.0, 12.0, 32.0, 20.0)), **kw)


def test_a_cross_splits_into_two_arms_and_their_intersection():
    cfg = cross(hole_names=("vertical", "horizontal"))
    regions = held_out_regions(cfg)
    # By hand: x in {12, 16, 20} (3 columns) x 8 rows = 24 in the vertical strip, 24 in the horizontal
    # one, 3 x 3 = 9 in both; 64 - (24 + 24 - 9) = 25 training centres.
    assert [(name, len(mu)) for name, mu in regions] == [("vertical", 15), ("horizontal", 15),
                                                        ("vertical ∩ horizontal", 9)]
    middle = {(x, y) for x in (12, 16, 20) for y in (12, 16, 20)}
    assert {tuple(p) for p in regions[2][1].tolist()} == middle
    assert set(regions[0][1][:, 0].tolist()) == {12, 16, 20} and not set(regions[0][1][:, 1].tolist()) & {12, 16, 20}
    assert len(training_centres(cfg)) == 25
    names = [name for name, _ in held_out_regions(cross())]
    assert names == ["hole 1", "hole 2", "hole 1 ∩ hole 2"]


def test_regions_come_in_a_stable_order_and_leave_out_empty_ones():
    holes = ((0.0, 0.0, 4.0, 4.0), (20.0, 20.0, 28.0, 28.0), (24.0, 24.0, 28.0, 28.0))  # hole 3 inside hole 2
    cfg = DataConfig(dx=4.0, dy=4.0, holes=holes, hole_names=("a", "b", "c"))
    assert [(n, len(mu)) for n, mu in held_out_regions(cfg)] == [("a", 4), ("b", 5), ("b ∩ c", 4)]
    _, hole = grid_centres(cfg)
    assert sum(len(mu) for _, mu in held_out_regions(cfg)) == len(hole)
    assert held_out_regions(DataConfig(dx=4.0, dy=4.0)) == []


def test_holes_and_grids_are_in_canvas_coordinates():
    cfg = DataConfig(dx=4.0, dy=4.0, canvas=44, margin=2.0, holes=((36.0, 0.0, 44.0, 44.0),))
    train, hole = grid_centres(cfg)
    assert np.isin(train, np.arange(4, 41, 4)).all()  # 0 is within the margin of 2, 40 is not
    assert len(hole) == 2 * 10 and set(hole[:, 0].tolist()) == {36, 40}


# --------------------------------------------------------------------------- keep


def test_keep_draws_the_share_asked_evenly_over_the_grid():
    cfg = DataConfig(dx=0.5, dy=0.5, keep=0.3, keep_seed=7)
    kept, dropped = keep_split(cfg)
    grid, _ = grid_centres(cfg)
    assert len(kept) == round(0.3 * 4096) and len(kept) + len(dropped) == len(grid)
    assert {tuple(p) for p in kept.tolist()} | {tuple(p) for p in dropped.tolist()} == {tuple(p) for p in grid.tolist()}
    for quadrant in ((kept < 16).all(axis=1), (kept >= 16).all(axis=1), (kept[:, 0] < 16) & (kept[:, 1] >= 16)):
        share = quadrant.sum() / 1024  # each quadrant holds 1,024 grid centres
        assert abs(share - 0.3) < 0.06  # binomial-like sd ~ 0.013: 4.5 sd
    np.testing.assert_array_equal(training_centres(cfg), kept)
    assert held_out_regions(cfg) == []  # the dropped centres are in distribution, not a held-out region


def test_keep_is_seeded_and_seeds_differ():
    cfg = DataConfig(dx=1.0, dy=1.0, keep=0.5, keep_seed=3)
    a, b = training_centres(cfg), training_centres(dataclasses.replace(cfg))
    np.testing.assert_array_equal(a, b)
    c = training_centres(dataclasses.replace(cfg, keep_seed=4))
    shared = len({tuple(p) for p in a.tolist()} & {tuple(p) for p in c.tolist()}) / len(a)
    assert 0.35 < shared < 0.65  # independent halves share about half


def test_keep_leaves_holes_out_first_and_keeps_at_least_one_centre():
    cfg = cross(keep=1e-6)
    assert len(training_centres(cfg)) == 1
    assert [len(mu) for _, mu in held_out_regions(cfg)] == [15, 15, 9]  # the holes do not change
    data = make_dataset(cross(keep=0.4))
    assert len(data) == 10 and len(data.hole_mu) == 39  # round(0.4 * 25)
    assert np.array_equal(training_centres(cross(keep=1.0)), grid_centres(cross())[0])


# --------------------------------------------------------------------------- config


def test_a_config_written_before_these_keys_loads_with_todays_behaviour(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text("[data]\ndx = 0.5\ndy = 0.5\nsigma = 1.0\nsize = 32\nmargin = 0.0\n"
                    "holes = [[14.0, 14.0, 18.0, 18.0]]\n")
    data = load_config(path).data
    assert data == DataConfig(dx=0.5, dy=0.5, holes=((14.0, 14.0, 18.0, 18.0),))
    assert (data.kind, data.sigma_x, data.canvas, data.periodic, data.keep, data.hole_names) == ("bump", 0, 0, False, 1, ())


def test_the_new_keys_round_trip_through_config_toml():
    data = DataConfig(kind="stripe", sigma_x=1.5, sigma_y=0.5, periodic=True, canvas=44, keep=0.25, keep_seed=9,
                      holes=((13.0, 0.0, 19.0, 44.0), (0.0, 13.0, 44.0, 19.0)), hole_names=("x arm", "y arm"))
    cfg = dataclasses.replace(RunConfig(), data=data)
    assert config_from_dict(tomllib.loads(dumps_config(cfg))) == cfg
    assert config_to_dict(cfg)["data"]["hole_names"] == ["x arm", "y arm"]


@pytest.mark.parametrize("text, expected", [
    ('kind = "blob"', "data.kind: expected one of: bump, sos, stripe, got 'blob'"),
    ("sigma_x = -1", "data.sigma_x: expected a number >= 0 (0 = data.sigma), got -1.0"),
    ("sigma_y = -0.5", "data.sigma_y: expected a number >= 0 (0 = data.sigma), got -0.5"),
    ("canvas = 24", "data.canvas: expected 0 (= data.size) or an integer >= data.size (32) with canvas - size even"),
    ("canvas = 45", "data.canvas: expected 0 (= data.size) or an integer >= data.size (32) with canvas - size even"),
    ("canvas = 44.0", "data.canvas: expected an integer, got 44.0"),
    ("periodic = 1", "data.periodic: expected true or false, got 1"),
    ("canvas = 44\ndx = 44", "data.dx: expected a positive number below data.canvas (44), got 44.0"),
    ("canvas = 44\nmargin = 22", "data.margin: expected a number in [0, 22), got 22.0"),
    ("canvas = 44\nholes = [[0, 0, 45, 10]]", "data.holes[0]: expected [x0, y0, x1, y1] with 0 <= x0 < x1 <= 44"),
    ("holes = [[0, 0, 40, 10]]", "data.holes[0]: expected [x0, y0, x1, y1] with 0 <= x0 < x1 <= 32"),
    ('holes = [[0, 0, 4, 4]]\nhole_names = ["a", "b"]', "data.hole_names: expected [] or one name per hole (1), "
                                                        "got ['a', 'b']"),
    ('holes = [[0, 0, 4, 4], [8, 8, 9, 9]]\nhole_names = ["a", "a"]',
     "data.hole_names: expected distinct, non-empty names (they name the eval regions), got ['a', 'a']"),
    ("hole_names = 3", "data.hole_names: expected a list of names, one per hole, got 3"),
    ("keep = 0", "data.keep: expected a number in (0, 1] (the share of the training grid kept), got 0.0"),
    ("keep = 1.5", "data.keep: expected a number in (0, 1]"),
    ("keep_seed = -1", "data.keep_seed: expected an integer >= 0, got -1"),
])
def test_bad_data_keys_are_named_in_one_line(tmp_path, text, expected):
    path = tmp_path / "x.toml"
    path.write_text(f"[data]\n{text}\n")
    with pytest.raises(PresetError) as from_preset:
        load_preset(path)
    with pytest.raises(PresetError) as from_config:
        load_config(path)
    assert str(from_config.value) == str(from_preset.value)
    assert str(from_config.value).startswith(f"{path}: {expected}")
    assert "\n" not in str(from_config.value)


def test_the_follow_up_canvas_and_cross_validate():
    text = ('[data]\nkind = "sos"\ncanvas = 44\nperiodic = true\nkeep = 0.5\n'
            'holes = [[13, 0, 19, 44], [0, 13, 44, 19]]\nhole_names = ["vertical", "horizontal"]\n')
    data = config_from_dict(tomllib.loads(text)).data
    assert (data.kind, data.canvas, data.hole_names) == ("sos", 44, ("vertical", "horizontal"))
