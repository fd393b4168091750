"""The diffusion math against Ho et al. 2020 and Song et al. 2021, computed independently in float64."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from model.data import bump_images, to_model_scale
from model.diffusion import (
    DiffusionConfig,
    Schedule,
    ddim_step,
    ddpm_step,
    eps_from_x0,
    q_sample,
    sample,
    target,
    timesteps,
    to_x0,
)
from model.unet import ModelConfig, UNet


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread: on 2 shared cores, 2 threads ran these small models 5-60x slower (measured)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def reference_schedule(T: int, rescale: bool = True) -> dict[str, np.ndarray]:
    """Linear betas 1e-4..0.02, scaled by 1000/T (DESIGN §5), in float64."""
    scale = 1000.0 / T if rescale else 1.0
    betas = np.linspace(1e-4 * scale, 0.02 * scale, T)
    alpha_bar = np.cumprod(1.0 - betas)
    return dict(betas=betas, alphas=1.0 - betas, alpha_bar=alpha_bar, alpha_bar_prev=np.r_[1.0, alpha_bar[:-1]])


def as64(s: Schedule) -> dict[str, np.ndarray]:
    return {k: getattr(s, k).double().numpy() for k in ("betas", "alphas", "alpha_bar", "alpha_bar_prev")}


def bump_x0(n: int = 1) -> torch.Tensor:
    return to_model_scale(bump_images(torch.tensor([[12.3, 19.6]] * n), 2.0))  # (n, 1, 32, 32)


# --------------------------------------------------------------------------- schedule


@pytest.mark.parametrize("T", [1000, 200, 50])
def test_schedule_identities(T):
    s = Schedule.from_config(DiffusionConfig(T=T))
    got, ref = as64(s), reference_schedule(T)
    assert s.T == T and all(v.shape == (T,) for v in got.values())
    for name in ref:
        np.testing.assert_allclose(got[name], ref[name], rtol=2e-6, err_msg=name)
    # The identities hold on the stored values themselves.
    np.testing.assert_allclose(got["alphas"], 1.0 - got["betas"], atol=1e-7)
    np.testing.assert_allclose(got["alpha_bar"], np.cumprod(got["alphas"]), rtol=1e-5)
    assert got["alpha_bar_prev"][0] == 1.0
    np.testing.assert_array_equal(got["alpha_bar_prev"][1:], got["alpha_bar"][:-1])
    assert np.all(np.diff(got["alpha_bar"]) < 0)


def test_betas_rescaled_for_short_T_reach_pure_noise():
    scaled = Schedule.from_config(DiffusionConfig(T=200))
    assert float(scaled.betas[0]) == pytest.approx(5e-4) and float(scaled.betas[-1]) == pytest.approx(0.1)
    assert float(scaled.alpha_bar[-1]) < 1e-3
    unscaled = Schedule.from_config(DiffusionConfig(T=200, rescale_betas=False))
    assert float(unscaled.alpha_bar[-1]) > 0.1  # ~13% of the signal would survive the last step
    full = Schedule.from_config(DiffusionConfig(T=1000))
    assert float(full.betas[0]) == pytest.approx(1e-4) and float(full.betas[-1]) == pytest.approx(0.02)
    assert float(full.alpha_bar[-1]) < 1e-3


def test_schedule_is_frozen():
    s = Schedule.from_config(DiffusionConfig(T=10))
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.T = 11  # type: ignore[misc]


# --------------------------------------------------------------------------- forward process


@pytest.mark.parametrize("t", [0, 10, 100, 500, 999])
def test_q_sample_mean_and_variance(t):
    s = Schedule.from_config(DiffusionConfig(T=1000))
    n = 4000
    x0 = bump_x0(1).expand(n, -1, -1, -1)
    eps = torch.randn(x0.shape, generator=torch.Generator().manual_seed(t))
    x_t = q_sample(s, x0, torch.full((n,), t), eps).double()
    ab = reference_schedule(1000)["alpha_bar"][t]
    mean, var = x_t.mean(0), x_t.var(0)  # per pixel, over the eps draws
    se = np.sqrt((1 - ab) / n)
    assert float((mean - np.sqrt(ab) * x0[0].double()).abs().max()) < 5 * se + 1e-5
    # Pixel-pooled variance: relative standard error sqrt(2 / n) / 32 ~ 0.07%.
    assert float(var.mean()) == pytest.approx(1 - ab, rel=0.01)
    assert float((var / (1 - ab) - 1).abs().max()) < 6 * np.sqrt(2 / n)


def test_q_sample_uses_each_sample_s_own_t():
    s = Schedule.from_config(DiffusionConfig(T=100))
    x0 = bump_x0(3)
    eps = torch.randn(x0.shape, generator=torch.Generator().manual_seed(0))
    t = torch.tensor([0, 50, 99])
    together = q_sample(s, x0, t, eps)
    for i in range(3):
        torch.testing.assert_close(together[i : i + 1], q_sample(s, x0[i : i + 1], t[i : i + 1], eps[i : i + 1]))
    ab = float(s.alpha_bar[50])
    torch.testing.assert_close(together[1], ab**0.5 * x0[1] + (1 - ab) ** 0.5 * eps[1])


@pytest.mark.parametrize("prediction", ["eps", "x0", "v"])
def test_target_and_to_x0_round_trip(prediction):
    s = Schedule.from_config(DiffusionConfig(T=1000))
    g = torch.Generator().manual_seed(3)
    x0 = bump_x0(6)
    eps = torch.randn(x0.shape, generator=g)
    t = torch.tensor([0, 1, 100, 500, 900, 999])
    x_t = q_sample(s, x0, t, eps)
    out = target(s, prediction, x0, t, eps)
    torch.testing.assert_close(to_x0(s, prediction, out, x_t, t), x0, atol=1e-4, rtol=0)
    torch.testing.assert_close(eps_from_x0(s, x0, x_t, t), eps, atol=1e-4, rtol=0)
    if prediction == "v":  # v = sqrt(ab) eps - sqrt(1 - ab) x0 (Salimans & Ho 2022)
        ab = torch.from_numpy(reference_schedule(1000)["alpha_bar"])[t].view(-1, 1, 1, 1)
        torch.testing.assert_close(out.double(), ab.sqrt() * eps - (1 - ab).sqrt() * x0, atol=1e-5, rtol=0)


def test_unknown_prediction_names_the_choices():
    s = Schedule.from_config(DiffusionConfig(T=10))
    x = torch.zeros(1, 1, 32, 32)
    t = torch.zeros(1, dtype=torch.long)
    with pytest.raises(ValueError, match="eps, x0, v"):
        target(s, "epsilon", x, t, x)
    with pytest.raises(ValueError, match="eps, x0, v"):
        to_x0(s, "epsilon", x, x, t)


# --------------------------------------------------------------------------- reverse steps


def draws(seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(8, 1, 32, 32, generator=g) for _ in range(3))  # x_t, eps, z


# The closed forms use the schedule's stored values (cast to float64): they test the step's
# formula. The stored values are checked against an independent float64 schedule above.
@pytest.mark.parametrize("T", [1000, 200])
@pytest.mark.parametrize("t", [0, 1, 2, 37, "mid", "last"])
def test_ddpm_step_is_ho_et_al_algorithm_2(T, t):
    t = {"mid": T // 2, "last": T - 1}.get(t, t)
    s = Schedule.from_config(DiffusionConfig(T=T))
    r = as64(s)
    x_t, eps, z = draws(t)
    beta, alpha, ab, ab_prev = r["betas"][t], r["alphas"][t], r["alpha_bar"][t], r["alpha_bar_prev"][t]
    # Alg. 2: x_{t-1} = 1/sqrt(alpha_t) (x_t - beta_t / sqrt(1 - ab_t) eps) + sigma_t z,
    # sigma_t^2 = beta~_t = (1 - ab_{t-1}) / (1 - ab_t) beta_t; z = 0 at the last step (t = 0 here).
    sigma = np.sqrt((1 - ab_prev) / (1 - ab) * beta)
    want = (x_t.double() - beta / np.sqrt(1 - ab) * eps.double()) / np.sqrt(alpha)
    if t > 0:
        want = want + sigma * z.double()
    got = ddpm_step(s, x_t, t, eps, z if t > 0 else None)
    assert got.shape == x_t.shape
    assert float((got.double() - want).abs().max()) < 1e-6
    # Against the fully independent float64 schedule: float32 storage of alpha_bar costs ~1e-5 near t = 0.
    ref = reference_schedule(T)
    b, a, ab, abp = (ref[k][t] for k in ("betas", "alphas", "alpha_bar", "alpha_bar_prev"))
    want_ref = (x_t.double() - b / np.sqrt(1 - ab) * eps.double()) / np.sqrt(a)
    if t > 0:
        want_ref = want_ref + np.sqrt((1 - abp) / (1 - ab) * b) * z.double()
    assert float((got.double() - want_ref).abs().max()) < 2e-5


def test_ddpm_step_adds_no_noise_at_t0():
    s = Schedule.from_config(DiffusionConfig(T=100))
    x_t, eps, z = draws(0)
    torch.testing.assert_close(ddpm_step(s, x_t, 0, eps, z), ddpm_step(s, x_t, 0, eps, 100 * z))


@pytest.mark.parametrize("T", [1000, 200])
@pytest.mark.parametrize("t, t_prev", [(999, 979), (500, 480), (20, 0), (1, 0), (0, -1), (20, -1), (999, -1)])
def test_ddim_step_is_song_et_al_eq_12(T, t, t_prev):
    t, t_prev = min(t, T - 1), min(t_prev, T - 2)
    s = Schedule.from_config(DiffusionConfig(T=T))
    r = as64(s)
    x_t, eps, _ = draws(t + 7)
    ab = r["alpha_bar"][t]
    ab_prev = r["alpha_bar"][t_prev] if t_prev >= 0 else 1.0  # the last step lands on alpha_bar = 1
    # Eq. 12, eta = 0: x_prev = sqrt(ab_prev) x0_pred + sqrt(1 - ab_prev) eps.
    x0_pred = (x_t.double() - np.sqrt(1 - ab) * eps.double()) / np.sqrt(ab)
    want = np.sqrt(ab_prev) * x0_pred + np.sqrt(1 - ab_prev) * eps.double()
    got = ddim_step(s, x_t, t, t_prev, eps)
    # Relative to the output's size: at t = T-1, x0_pred is ~1/sqrt(ab) ~ 150x larger than x_t.
    scale = max(1.0, float(want.abs().max()))
    assert float((got.double() - want).abs().max()) < 1e-6 * scale


# --------------------------------------------------------------------------- samplers


def test_timesteps():
    s = Schedule.from_config(DiffusionConfig(T=200))
    assert timesteps(s, "ddpm", None) == list(range(199, -1, -1))
    ts = timesteps(s, "ddim", 25)
    assert len(ts) == 25 and ts[0] == 199 and ts[-1] == 0 and ts == sorted(set(ts), reverse=True)
    assert timesteps(s, "ddim", 10_000) == list(range(199, -1, -1))
    with pytest.raises(ValueError, match="ddpm, ddim"):
        timesteps(s, "ddmi", 10)


class Oracle(torch.nn.Module):
    """A 'network' that knows the data: it outputs the exact target for the one image x0."""

    def __init__(self, s: Schedule, x0: torch.Tensor, prediction: str):
        super().__init__()
        self.s, self.x0, self.prediction = s, x0, prediction
        self.calls: list[int] = []

    def forward(self, x_t, t, mu):
        self.calls.append(int(t[0]))
        x0 = self.x0.expand_as(x_t)
        eps = eps_from_x0(self.s, x0, x_t, t)
        return target(self.s, self.prediction, x0, t, eps)


@pytest.mark.parametrize("prediction", ["eps", "x0", "v"])
@pytest.mark.parametrize("sampler, steps", [("ddpm", None), ("ddim", 20)])
def test_samplers_recover_the_data_from_an_oracle(prediction, sampler, steps):
    s = Schedule.from_config(DiffusionConfig(T=100))
    x0 = bump_x0(1)
    oracle = Oracle(s, x0, prediction)
    noise = torch.randn(4, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    seen = []
    out = sample(
        oracle, s, torch.zeros(4, 2), noise, prediction=prediction, sampler=sampler, steps=steps,
        generator=torch.Generator().manual_seed(1), callback=lambda t, x: seen.append(t),
    )
    assert out.shape == (4, 1, 32, 32)
    torch.testing.assert_close(out, x0.expand(4, -1, -1, -1), atol=2e-3, rtol=0)
    assert oracle.calls == seen == timesteps(s, sampler, steps)


def test_ddim_is_reproducible_at_any_batch_size_and_ddpm_from_its_generator():
    torch.manual_seed(0)
    model = UNet(ModelConfig("tiny")).eval()
    s = Schedule.from_config(DiffusionConfig(T=20))
    mu = torch.tensor([[8.0, 8.0], [20.0, 12.0], [16.0, 24.0], [4.0, 28.0]])
    noise = torch.randn(4, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    whole = sample(model, s, mu, noise, sampler="ddim", steps=5)
    part = sample(model, s, mu[1:3], noise[1:3], sampler="ddim", steps=5)
    torch.testing.assert_close(part, whole[1:3], atol=1e-4, rtol=0)

    def ddpm(seed):
        return sample(model, s, mu, noise, sampler="ddpm", generator=torch.Generator().manual_seed(seed))

    torch.testing.assert_close(ddpm(5), ddpm(5))
    assert not torch.allclose(ddpm(5), ddpm(6))


def test_cpu_sampling_in_equal_slices_draws_what_one_call_draws(monkeypatch):
    import model.diffusion as diffusion

    torch.manual_seed(0)
    net = UNet(ModelConfig(size="tiny")).eval()
    s = Schedule.from_config(DiffusionConfig(T=20), torch.device("cpu"))
    mu, noise = torch.rand(10, 2) * 32, torch.randn(10, 1, 32, 32)
    calls = []
    real_forward = net.forward
    monkeypatch.setattr(net, "forward", lambda x, t, m: calls.append(len(x)) or real_forward(x, t, m))
    # x0-prediction: with eps the first step divides the network's rounding by sqrt(alpha_bar) ~ 0.01
    whole = sample(net, s, mu, noise, prediction="x0", sampler="ddim", steps=2)
    assert calls == [10, 10]
    calls.clear()
    monkeypatch.setattr(diffusion, "CPU_BATCH", 4)
    sliced = sample(net, s, mu, noise, prediction="x0", sampler="ddim", steps=2)
    assert calls == [3, 3, 4] * 2  # 10 images in equal slices of at most 4, not 4 + 4 + 2
    torch.testing.assert_close(sliced, whole, atol=1e-4, rtol=0)  # float rounding of another batch size
