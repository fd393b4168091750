"""The conditional UNet (DESIGN §5; paper App. A.1): shapes, named sizes, the layer-4 capture."""
from __future__ import annotations

import pytest
import torch

from model.unet import LAYER4, SIZES, ModelConfig, UNet, capture, coordinate_grid, count_parameters


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread: on 2 shared cores, 2 threads ran these small models 5-60x slower (measured)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def inputs(b: int = 3, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x_t = torch.randn(b, 1, 32, 32, generator=g)
    t = torch.randint(0, 1000, (b,), generator=g)
    mu = torch.rand(b, 2, generator=g) * 32
    return x_t, t, mu


def tiny(**kw) -> UNet:
    torch.manual_seed(0)
    return UNet(ModelConfig("tiny", **kw)).eval()


@torch.no_grad()
def test_output_has_the_input_shape():
    model = tiny()
    out = model(*inputs(3))
    assert out.shape == (3, 1, 32, 32) and out.dtype == torch.float32
    assert torch.isfinite(out).all()


@torch.no_grad()
def test_output_depends_on_t_and_on_mu():
    model = tiny()
    x_t, t, mu = inputs(2)
    out = model(x_t, t, mu)
    assert not torch.allclose(out, model(x_t, t, mu + torch.tensor([1.0, 0.0])), atol=1e-5)  # mu_x
    assert not torch.allclose(out, model(x_t, t, mu + torch.tensor([0.0, 1.0])), atol=1e-5)  # mu_y
    assert not torch.allclose(out, model(x_t, (t + 100) % 1000, mu), atol=1e-5)


@torch.no_grad()
def test_samples_do_not_interact_within_a_batch():
    model = tiny()
    x_t, t, mu = inputs(4)
    torch.testing.assert_close(model(x_t, t, mu)[1:2], model(x_t[1:2], t[1:2], mu[1:2]), atol=1e-5, rtol=1e-4)


@torch.no_grad()
def test_mu_none_runs_unconditioned():
    model = tiny()
    x_t, t, mu = inputs(2)
    out = model(x_t, t, None)
    assert out.shape == (2, 1, 32, 32) and torch.isfinite(out).all()
    assert not torch.allclose(out, model(x_t, t, mu), atol=1e-5)


@torch.no_grad()
def test_coord_channels_run():
    model = tiny(coord_channels=True)
    out = model(*inputs(2))
    assert out.shape == (2, 1, 32, 32) and torch.isfinite(out).all()
    assert count_parameters(model) > count_parameters(tiny())  # the stem sees 3 channels


def test_coordinate_grid_holds_x_then_y():
    grid = coordinate_grid(torch.zeros(2, 1, 32, 32))
    assert grid.shape == (2, 2, 32, 32)
    x, y = grid[0, 0], grid[0, 1]
    assert torch.all(x[:, 1:] > x[:, :-1]) and torch.all(x[1:] == x[:-1])  # x grows along columns
    assert torch.all(y[1:] > y[:-1]) and torch.all(y[:, 1:] == y[:, :-1])  # y grows along rows
    assert float(grid.min()) == -1.0 and float(grid.max()) == 1.0


@pytest.mark.parametrize(
    "size, lo, hi",
    [("paper", 20e6, 26e6), ("w32", 5e6, 7e6), ("w16", 1.2e6, 1.8e6), ("tiny", 0.3e6, 0.5e6)],
)
def test_named_sizes_have_their_parameter_counts(size, lo, hi):
    n = count_parameters(UNet(ModelConfig(size)))
    assert lo <= n <= hi, f"{size}: {n:,} parameters"


def test_unknown_size_names_the_choices():
    with pytest.raises(ValueError, match="paper, w32, w16, tiny"):
        UNet(ModelConfig("huge"))


@torch.no_grad()
def test_capture_yields_layer4_once_per_forward_and_removes_its_hook():
    model = tiny()
    width = SIZES["tiny"]["widths"][3]
    layer = model.get_submodule(LAYER4)
    x_t, t, mu = inputs(5)
    with capture(model) as acts:
        assert acts == []
        model(x_t, t, mu)
        assert len(acts) == 1 and acts[0].shape == (5, width, 4, 4)
        model(x_t[:2], t[:2], mu[:2])
        assert len(acts) == 2 and acts[1].shape == (2, width, 4, 4)
    torch.testing.assert_close(acts[1], acts[0][:2], atol=1e-5, rtol=1e-4)
    assert len(layer._forward_hooks) == 0
    model(x_t, t, mu)
    assert len(acts) == 2  # nothing recorded after the context closed


def test_capture_is_detached_and_removes_its_hook_on_error():
    model = tiny()
    with pytest.raises(RuntimeError, match="boom"):
        with capture(model) as acts:
            model(*inputs(2)).sum().backward()
            raise RuntimeError("boom")
    assert len(acts) == 1 and not acts[0].requires_grad
    assert len(model.get_submodule(LAYER4)._forward_hooks) == 0


@torch.no_grad()
def test_capture_layer4_depends_on_the_label():
    """Layer 4 is conditioned (the label is added inside the block), so it must move with mu."""
    model = tiny()
    x_t, t, mu = inputs(2)
    with capture(model) as acts:
        model(x_t, t, mu)
        model(x_t, t, mu + 3.0)
    assert not torch.allclose(acts[0], acts[1], atol=1e-5)
