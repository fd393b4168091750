"""The Evaluator (paper App. A.3, A.6): fixed labels and noise, layer 4 read where the docs say."""
import dataclasses

import numpy as np
import pytest
import torch

from labconsole.config import EvalConfig, RunConfig
from labconsole.evaluate import Evaluator, draw_labels, spread_draw, transfer_r2, umap_rows
from labconsole.runconfig import PresetError, config_from_dict
from metrics import MIN_DEPTH, MIN_SNR, manifold_r2
from model.config import DataConfig, DiffusionConfig, ModelConfig
from model.data import bump_images, grid_centres
from model.diffusion import sample
from model.train import build_model
from model.unet import capture

CPU = torch.device("cpu")


def tiny_config(**eval_kw) -> RunConfig:
    ec = EvalConfig(n_samples=24, sampler="ddim", ddim_steps=4, **eval_kw)
    return RunConfig(data=DataConfig(dx=4.0, dy=4.0, sigma=2.0), model=ModelConfig(size="tiny"),
                     diffusion=DiffusionConfig(T=40, prediction="x0"), eval=ec)


@pytest.fixture(scope="module")
def net():
    torch.set_num_threads(1)
    return build_model(ModelConfig(size="tiny"), 3, CPU)


def trajectory_layer4(cfg: RunConfig, ev: Evaluator, net, mu_given: bool) -> np.ndarray:
    """Layer 4 of a separate forward on the x_t the sampler visits at capture_t (what the docs promise)."""
    states = {}
    mu = torch.from_numpy(ev.labels)
    sample(net.eval(), ev.schedule, mu, ev.noise, prediction=cfg.diffusion.prediction, sampler="ddim",
           steps=cfg.eval.ddim_steps, callback=lambda t, x: states.setdefault(t, x.clone()))
    x_t = states[ev.capture_t]
    with torch.no_grad(), capture(net) as out:
        net(x_t, torch.full((len(x_t),), ev.capture_t), mu if mu_given else None)
    return out[0].flatten(1).numpy()


@pytest.mark.parametrize("capture_t", [0, 20])
def test_block_capture_is_layer4_of_the_samplers_forward_at_capture_t(net, capture_t):
    cfg = tiny_config(capture_t=capture_t)
    ev = Evaluator(cfg, CPU)
    _, features = ev._sample(net)
    assert features.shape == (24, 32 * 4 * 4)  # tiny: 32 channels at 4x4
    np.testing.assert_allclose(features, trajectory_layer4(cfg, ev, net, mu_given=True), atol=1e-5)


def test_no_label_capture_zeroes_the_label_encoding_on_the_same_x_t(net):
    cfg = tiny_config(capture="no_label")
    ev = Evaluator(cfg, CPU)
    _, features = ev._sample(net)
    np.testing.assert_allclose(features, trajectory_layer4(cfg, ev, net, mu_given=False), atol=1e-5)
    block = Evaluator(dataclasses.replace(cfg, eval=dataclasses.replace(cfg.eval, capture="block")), CPU)._sample(net)[1]
    assert np.abs(features - block).max() > 1e-2  # the label is really left out


def test_capture_t_snaps_to_a_step_the_sampler_visits():
    ev = Evaluator(tiny_config(capture_t=17), CPU)  # DDIM-4 of T=40 visits 39, 26, 13, 0
    assert ev.capture_t == 13 and ev.sampler_name == "ddim-4"


def test_two_evals_of_one_model_read_the_same_numbers(net):
    ev = Evaluator(tiny_config(), CPU)
    a, b = ev(5, net), ev(5, net)
    drop = {"eval_seconds"}
    assert {k: v for k, v in a.numbers().items() if k not in drop} == {k: v for k, v in b.numbers().items() if k not in drop}
    np.testing.assert_array_equal(a.samples.images, b.samples.images)


def test_the_evaluator_restores_training_mode(net):
    net.train()
    Evaluator(tiny_config(), CPU)(0, net)
    assert net.training


def test_bf16_precision_evaluates_under_autocast_and_reads_float32_arrays(net):
    cfg = tiny_config()
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, precision="bf16"))
    images, features = Evaluator(cfg, CPU)._sample(net)
    fp32_images, fp32_features = Evaluator(tiny_config(), CPU)._sample(net)
    assert images.dtype == features.dtype == np.float32
    assert 0 < np.abs(features - fp32_features).max() < 0.1 * np.abs(fp32_features).max()


# --------------------------------------------------------------------------- labels


def coarse_config(n_samples: int, n_ood: int = 0, holes=(), **eval_kw) -> RunConfig:
    """An 8 x 8 grid (dx = 4): 64 centres, fewer than the labels asked for N > 64."""
    ec = EvalConfig(n_samples=n_samples, n_ood=n_ood, sampler="ddim", ddim_steps=4, **eval_kw)
    return RunConfig(data=DataConfig(dx=4.0, dy=4.0, sigma=2.0, holes=holes), model=ModelConfig(size="tiny"),
                     diffusion=DiffusionConfig(T=40), eval=ec)


def counts_per_centre(labels: np.ndarray) -> np.ndarray:
    return np.sort(np.unique(labels, axis=0, return_counts=True)[1])


def test_labels_are_drawn_without_replacement_while_the_grid_has_enough_centres():
    plan = draw_labels(coarse_config(64))
    assert len(plan.labels) == 64 and counts_per_centre(plan.labels).tolist() == [1] * 64 and plan.notes == ()
    # The same draw as runs made before the rule: one rng.choice without replacement.
    train_mu, _ = grid_centres(coarse_config(64).data)
    picked = train_mu[np.random.default_rng(0).choice(64, 40, replace=False)]
    np.testing.assert_array_equal(draw_labels(coarse_config(40)).labels, picked)


def test_a_coarse_grid_uses_each_centre_as_evenly_as_possible_and_says_so():
    plan = draw_labels(coarse_config(100))
    counts = counts_per_centre(plan.labels)
    assert len(counts) == 64 and sorted(set(counts.tolist())) == [1, 2] and (counts == 2).sum() == 36
    assert len(np.unique(plan.labels[:64], axis=0)) == 64  # one full round first: the rows UMAP reads
    assert plan.notes == ("eval labels: the training grid has 64 centres for eval.n_samples = 100: each is used "
                          "at most twice; UMAP reads one sample per centre",)
    assert counts_per_centre(draw_labels(coarse_config(300)).labels).tolist() == sorted([5] * 44 + [4] * 20)


def test_hole_labels_follow_the_same_rule_and_the_first_sample_of_each_label_is_its_representative():
    # dx = 4 with the hole [12, 20]^2: 9 hole centres for 12 OOD labels, 55 training centres for 20.
    plan = draw_labels(coarse_config(20, n_ood=12, holes=((12.0, 12.0, 20.0, 20.0),)))
    assert plan.ood.tolist() == [False] * 20 + [True] * 12
    assert counts_per_centre(plan.labels[plan.ood]).tolist() == sorted([2] * 3 + [1] * 6)
    assert plan.notes == ("eval labels: the hole has 9 centres for eval.n_ood = 12: each is used at most twice; "
                          "UMAP reads one sample per centre",)
    rows, representative = umap_rows(plan.labels)
    assert len(rows) == 29 and (np.diff(rows) > 0).all()
    np.testing.assert_array_equal(plan.labels[representative], plan.labels)  # same label ...
    assert all(representative[i] <= i for i in range(32)) and set(representative) == set(rows)  # ... its first row


def test_spread_draw_counts():
    rng = np.random.default_rng(1)
    for m, n in ((10, 3), (10, 10), (10, 25), (3, 100)):
        counts = np.bincount(spread_draw(rng, m, n), minlength=m)
        assert counts.sum() == n and counts.max() == -(-n // m) and counts.min() == n // m, (m, n)


def test_too_few_distinct_centres_leave_r2_undefined_instead_of_failing():
    cfg = dataclasses.replace(coarse_config(40), data=DataConfig(dx=12.0, dy=12.0, sigma=2.0))  # 3 x 3 = 9 centres
    ev = Evaluator(cfg, CPU)
    assert ev.notes[-1] == "eval labels: 9 distinct training centres, UMAP needs 10: R² is not computed (NaN)"
    numbers, embedding = ev._manifold(np.random.default_rng(0).normal(size=(40, 16)).astype(np.float32))
    assert embedding is None and all(np.isnan(v) for v in numbers.values())


def test_duplicate_labels_no_longer_pull_r2_down_on_a_linear_representation():
    """Features = a linear map of (x, y) + 1 % noise, 300 labels on 64 centres (each 4-5 times)."""
    ev = Evaluator(coarse_config(300), CPU)
    rng = np.random.default_rng(0)
    linear = ev.labels @ rng.normal(size=(2, 64))
    features = (linear + 0.01 * linear.std() * rng.normal(size=linear.shape)).astype(np.float32)
    numbers, embedding = ev._manifold(features)
    assert numbers["r2_mean"] > 0.95  # measured 0.985 (UMAP seeds 0-4: 0.982-0.986)
    every_row = manifold_r2(features, ev.labels, seed=0).r2_mean
    assert every_row < 0.8  # measured 0.729 (seeds 0-4: 0.652-0.738): the copies' cliques miss phase C's 0.8
    assert embedding.shape == (300, 3)
    np.testing.assert_array_equal(embedding, embedding[ev.representative])  # a copy shares its label's point


def test_umap_seeds_give_the_median_fit_and_its_range(net):
    ev = Evaluator(tiny_config(umap_seeds=3), CPU)
    result = ev(0, net)
    assert result.umap_fits == 3 and result.r2_mean_min <= result.r2_mean <= result.r2_mean_max
    assert result.r2_mean_min < result.r2_mean_max  # three seeds, three different fits


def test_transfer_r2_is_sklearns_out_of_sample_score():
    from sklearn.linear_model import LinearRegression

    rng = np.random.default_rng(2)
    embedding = rng.normal(size=(60, 3))
    labels = embedding[:, :2] @ np.array([[2.0, 0.5], [-1.0, 1.5]]) + rng.normal(0, 0.4, size=(60, 2))
    held = np.arange(60) >= 45
    fit = [LinearRegression().fit(embedding[~held], labels[~held, k]) for k in (0, 1)]
    expected = np.mean([f.score(embedding[held], labels[held, k]) for k, f in enumerate(fit)])
    assert transfer_r2(embedding, labels, held) == pytest.approx(expected, abs=1e-12)
    assert 0.5 < expected < 1
    assert np.isnan(transfer_r2(embedding, np.ones((60, 2)), held))  # a constant held-out axis


# --------------------------------------------------------------------------- reading ID and OOD apart


def test_the_phase_reads_in_distribution_samples_and_ood_is_reported_beside(net):
    """True bumps and an ordered layer 4 for ID labels, blank images and random rows for the hole's."""
    cfg = coarse_config(40, n_ood=9, holes=((12.0, 12.0, 20.0, 20.0),), umap_neighbors=10)
    ev = Evaluator(cfg, CPU)
    ood = ev.ood
    images = bump_images(torch.from_numpy(ev.labels), cfg.data.sigma, 32).numpy() * 2 - 1
    images[ood] = 1.0  # white: no bump
    rng = np.random.default_rng(0)
    features = (ev.labels @ rng.normal(size=(2, 32))).astype(np.float32)
    features[ood] = rng.normal(0, features.std(), size=(ood.sum(), 32))
    result = ev._read(7, images, features, 0.0)
    assert (result.blobs_0, result.blobs_1, result.blobs_many) == (0.0, 1.0, 0.0)
    assert (result.blobs_0_ood, result.blobs_1_ood, result.blobs_many_ood) == (1.0, 0.0, 0.0)
    assert result.accuracy == result.ceiling and result.ceiling_ood == 1.0
    assert result.accuracy_ood == 1 / 9  # a blank image reads as the canvas centre: the label (16, 16) only
    assert result.r2_mean > 0.9 and result.phase == "C", result.phase_reason
    assert result.r2_all < 0.8 and result.r2_ood < 0.5  # the hole's rows are noise: read on all rows, B
    assert (result.n_samples, result.n_ood) == (40, 9) and result.samples.embedding.shape == (49, 3)


# --------------------------------------------------------------------------- the new keys


def test_the_contrast_floor_defaults_are_the_calibrated_ones():
    assert (EvalConfig().min_depth, EvalConfig().min_snr) == (MIN_DEPTH, MIN_SNR)


@pytest.mark.parametrize("key, value, expected", [
    ("eval.umap_seeds", 0, "expected an integer in [1, 25] (UMAP fits per eval, ~0.5 s each at N = 500), got 0"),
    ("eval.min_depth", -0.1, "expected a number >= 0 (min_depth = min_snr = 0: no contrast floor, the paper's "
                             "detector), got -0.1"),
    ("eval.min_snr", "10", "expected a number, got '10' (a string)"),
    ("train.ema_warmup", 1, "expected true or false, got 1"),
])
def test_the_new_keys_are_refused_with_one_line_naming_them(key, value, expected):
    section, name = key.split(".")
    with pytest.raises(PresetError) as err:
        config_from_dict({section: {name: value}}, source="x.toml")
    assert str(err.value) == f"x.toml: {key}: {expected}"
