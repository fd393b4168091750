"""The Evaluator (paper App. A.3, A.6): fixed labels and noise, layer 4 read where the docs say."""
import dataclasses

import numpy as np
import pytest
import torch

from labconsole.config import EvalConfig, RunConfig
from labconsole.evaluate import Evaluator
from model.config import DataConfig, DiffusionConfig, ModelConfig
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
