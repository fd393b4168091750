"""The headless training loop: overfitting, exact resume, NaN handling, checkpoints, eval hook, EMA."""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
import torch

import model.train as train_module
from model.checkpoint import latest_checkpoint
from model.data import DataConfig, grid_centres
from model.diffusion import DiffusionConfig, Schedule, sample
from model.device import autocast, precision_label
from model.train import CheckpointSaved, NonFiniteLoss, TrainConfig, TrainProgress, TrainResult, ema_decay, train
from model.unet import ModelConfig, UNet


@dataclass(frozen=True)
class RunParts:
    """What ``train`` reads (labconsole's RunConfig plays this role in the app)."""

    data: DataConfig
    model: ModelConfig
    diffusion: DiffusionConfig
    train: TrainConfig


@pytest.fixture(autouse=True)
def restore_threads():
    """``train`` sets torch's thread count for the process; give the next test back what it had."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


# One thread: on 2 shared cores, 2 threads ran the tiny UNet 5-60x slower when another process
# held a core (measured); one thread costs at most ~1.5x on idle cores.
SMALL = RunParts(
    data=DataConfig(dx=4.0, dy=4.0, sigma=2.0),  # 8 x 8 = 64 images
    model=ModelConfig("tiny"),
    diffusion=DiffusionConfig(T=100),
    train=TrainConfig(
        steps=12, batch_size=6, lr=1e-3, warmup_steps=5, ema=0.9, ema_warmup=True, seed=3, log_every=1,
        eval_every=4, eval_at=(3,), checkpoint_every=5, device="cpu", threads=1,
    ),
)


def with_train(cfg: RunParts, **changes) -> RunParts:
    return replace(cfg, train=replace(cfg.train, **changes))


class Recorder:
    """Collects train events, checkpoint events and evaluation calls; can ask to stop after k steps."""

    def __init__(self, stop_after: int | None = None):
        self.losses: list[tuple[int, float]] = []
        self.checkpoints: list[int] = []
        self.evals: list[int] = []
        self.models: dict[int, UNet] = {}
        self.polls, self.stop_after = 0, stop_after

    def on_event(self, event):
        if isinstance(event, TrainProgress):
            self.losses.append((event.step, event.loss))
        else:
            assert isinstance(event, CheckpointSaved) and event.path.exists()  # announced once complete
            self.checkpoints.append(event.step)

    def should_stop(self) -> bool:
        self.polls += 1  # polled once after every step
        return self.stop_after is not None and self.polls >= self.stop_after

    def evaluate(self, step, model):
        self.evals.append(step)
        self.models[step] = model


def run(cfg: RunParts, ckpt_dir: Path, rec: Recorder, **kw) -> TrainResult:
    return train(
        cfg, checkpoint_dir=ckpt_dir, on_event=rec.on_event, should_stop=rec.should_stop,
        evaluate=rec.evaluate, **kw,
    )


def load(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def centroids(x: torch.Tensor) -> torch.Tensor:
    """(B, 1, H, W) samples in [-1, 1] -> (B, 2) intensity-weighted centroids (x, y) of the dark bump."""
    inv = ((1 - x[:, 0]) / 2).clamp(0, 1)  # bright bump on black
    w = (inv - 0.25).clamp(min=0)  # drop faint background speckle, which would pull to the middle
    c = torch.arange(x.shape[-1], dtype=torch.float32) + 0.5  # pixel centres
    total = w.sum((1, 2)).clamp(min=1e-8)
    return torch.stack([(w * c).sum((1, 2)) / total, (w * c[:, None]).sum((1, 2)) / total], dim=1)


# --------------------------------------------------------------------------- learning


def test_small_model_overfits_four_bumps_and_both_samplers_draw_them(tmp_path):
    """x0-prediction: eps-prediction (the paper's) still drew no bump after 300 steps here (~50 s);
    DESIGN §5 and notes/quick-preset-prototype.md report the same gap at larger scale."""
    data = DataConfig(dx=10.0, dy=10.0, sigma=2.5, margin=5.0)  # centres 10 and 20 on each axis
    labels, _ = grid_centres(data)
    assert len(labels) == 4
    cfg = RunParts(
        data=data,
        model=ModelConfig("tiny"),
        diffusion=DiffusionConfig(T=200, prediction="x0"),
        train=TrainConfig(
            steps=150, batch_size=8, lr=3e-3, warmup_steps=20, seed=0, log_every=5,
            eval_every=0, checkpoint_every=10_000, device="cpu", threads=1,
        ),
    )
    rec = Recorder()
    result = run(cfg, tmp_path, rec)
    assert result == TrainResult("completed", 150)

    losses = [v for _, v in rec.losses]
    first, last = losses[0], sum(losses[-3:]) / 3
    assert first / last >= 10, f"loss only fell from {first:.4f} to {last:.4f}"

    model = rec.models[150].eval()
    s = Schedule.from_config(cfg.diffusion)
    mu = torch.from_numpy(labels)
    noise = torch.randn(4, 1, 32, 32, generator=torch.Generator().manual_seed(1))
    for sampler, steps in (("ddpm", None), ("ddim", 20)):
        x = sample(model, s, mu, noise, prediction="x0", sampler=sampler, steps=steps,
                   generator=torch.Generator().manual_seed(2))
        err = (centroids(x) - mu).abs()
        assert err.max() <= 1.0, f"{sampler}: centres {centroids(x).tolist()} for labels {mu.tolist()}"
        assert (x.flatten(1).min(1).values < -0.5).all(), f"{sampler}: no dark bump drawn"
        assert (x.flatten(1).median(1).values > 0.8).all(), f"{sampler}: background is not white"


# --------------------------------------------------------------------------- resume


def test_resume_replays_the_straight_run_exactly(tmp_path):
    straight = Recorder()
    assert run(SMALL, tmp_path / "a", straight) == TrainResult("completed", 12)

    first = Recorder(stop_after=7)
    assert run(SMALL, tmp_path / "b", first) == TrainResult("stopped", 7)
    stopped_at = latest_checkpoint(tmp_path / "b")
    assert stopped_at is not None and load(stopped_at)["step"] == 7  # checkpointed on stop
    second = Recorder()
    assert run(SMALL, tmp_path / "b", second, resume_from=stopped_at) == TrainResult("completed", 12)

    # Same loss at every step (log_every = 1): same batches, same t and eps, same optimiser state.
    assert [s for s, _ in straight.losses] == list(range(1, 13))
    assert first.losses + second.losses == straight.losses
    # Each eval exactly once across the two halves: step 0, every 4, eval_at 3, the end.
    assert straight.evals == [0, 3, 4, 8, 12]
    assert first.evals + second.evals == straight.evals

    a, b = load(latest_checkpoint(tmp_path / "a")), load(latest_checkpoint(tmp_path / "b"))
    assert a["step"] == b["step"] == 12
    for part in ("model", "ema"):
        for name, value in a[part].items():
            torch.testing.assert_close(b[part][name], value, rtol=1e-6, atol=1e-7, msg=f"{part}.{name}")
    assert a["optimizer"]["state"].keys() == b["optimizer"]["state"].keys()


def test_resume_between_train_events_logs_the_same_averages(tmp_path):
    # log_every = 5 and a stop at step 7: the two unlogged steps' losses travel in the checkpoint.
    cfg = with_train(SMALL, log_every=5)
    straight = Recorder()
    run(cfg, tmp_path / "a", straight)
    first = Recorder(stop_after=7)
    run(cfg, tmp_path / "b", first)
    second = Recorder()
    run(cfg, tmp_path / "b", second, resume_from=latest_checkpoint(tmp_path / "b"))
    assert [s for s, _ in straight.losses] == [5, 10, 12]
    assert first.losses + second.losses == straight.losses


# --------------------------------------------------------------------------- failure


def test_huge_learning_rate_raises_and_checkpoints_stop_before_the_nan(tmp_path):
    cfg = with_train(SMALL, lr=1e6, ema=0.0, steps=50, checkpoint_every=1, eval_every=1)
    rec = Recorder()
    with pytest.raises(NonFiniteLoss, match="train.lr"):
        run(cfg, tmp_path, rec)
    good = [s for s, v in rec.losses if math.isfinite(v)]
    assert len(good) == len(rec.losses) >= 1  # every emitted loss was finite; the NaN raised instead
    last_good = max(good)
    assert last_good < 50
    written = sorted(int(p.stem.split("-")[1]) for p in tmp_path.glob("step-*.pt"))
    assert written == rec.checkpoints == list(range(1, last_good + 1))  # none after the NaN
    assert rec.evals == list(range(0, last_good + 1))  # the NaN model is never evaluated
    newest = load(latest_checkpoint(tmp_path))
    assert newest["step"] == last_good
    assert all(torch.isfinite(v).all() for v in newest["model"].values())


def test_nan_data_raises_before_any_checkpoint(tmp_path, monkeypatch):
    real = train_module.make_dataset

    def poisoned(cfg, device="cpu"):
        ds = real(cfg, device)
        ds.images[:, 0, 5, 5] = float("nan")  # one bad pixel per image
        return ds

    monkeypatch.setattr(train_module, "make_dataset", poisoned)
    # Long log and checkpoint intervals: the stop check and the end must catch it on their own.
    cfg = with_train(SMALL, steps=6, log_every=100, checkpoint_every=100, eval_every=0, ema=0.0)
    rec = Recorder(stop_after=3)
    with pytest.raises(NonFiniteLoss):
        run(cfg, tmp_path, rec)
    assert rec.losses == [] and rec.checkpoints == []
    assert list(tmp_path.glob("step-*.pt")) == [] and latest_checkpoint(tmp_path) is None
    assert rec.evals == [0]


# --------------------------------------------------------------------------- checkpoints, evals, EMA


def test_checkpoints_are_plain_weights_with_the_resolved_config(tmp_path):
    resolved = {"data": {"dx": 4.0, "holes": [[1.0, 2.0, 3.0, 4.0]]}, "train": {"steps": 5}, "name": "t"}
    cfg = with_train(SMALL, steps=5, checkpoint_every=2, ema=0.0)
    rec = Recorder()
    run(cfg, tmp_path, rec, resolved_config=resolved)

    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["latest", "step-0000002.pt", "step-0000004.pt", "step-0000005.pt"]  # no temp files
    assert rec.checkpoints == [2, 4, 5]
    assert (tmp_path / "latest").read_text().strip() == "step-0000005.pt"
    assert latest_checkpoint(tmp_path) == tmp_path / "step-0000005.pt"

    state = load(tmp_path / "step-0000005.pt")  # weights_only=True: no code is unpickled
    assert state["step"] == 5 and state["config"] == resolved and state["ema"] is None
    fresh = UNet(cfg.model)
    fresh.load_state_dict(state["model"])  # strict: the checkpoint alone rebuilds the network
    assert load(tmp_path / "step-0000002.pt")["step"] == 2


def test_eval_hook_steps_with_defaults(tmp_path):
    cfg = with_train(SMALL, steps=7, eval_every=3, eval_at=(1, 3, 99), checkpoint_every=100, ema=0.0)
    rec = Recorder()
    run(cfg, tmp_path, rec)
    assert rec.evals == [0, 1, 3, 6, 7]  # step 0, eval_at, every 3, the end; each once, 99 ignored


def test_ema_weights_are_the_running_average_and_what_evaluate_sees(tmp_path):
    decay = 0.5
    cfg = with_train(SMALL, steps=3, ema=decay, ema_warmup=False, checkpoint_every=1, eval_every=100)
    rec = Recorder()
    run(cfg, tmp_path, rec)
    states = [load(tmp_path / f"step-{k:07d}.pt") for k in (1, 2, 3)]
    final = states[-1]
    differs = [not torch.equal(final["ema"][k], final["model"][k]) for k in final["model"]]
    assert sum(differs) > len(differs) // 2, "EMA weights should differ from the raw weights"

    # ema_k = decay ema_{k-1} + (1 - decay) w_k, from the seeded initial weights.
    torch.manual_seed(cfg.train.seed)
    ema = {k: v.clone() for k, v in UNet(cfg.model).state_dict().items()}
    for st in states:
        ema = {k: decay * ema[k] + (1 - decay) * st["model"][k] for k in ema}
    for k, v in final["ema"].items():
        torch.testing.assert_close(v, ema[k], rtol=1e-5, atol=1e-6, msg=k)

    seen = rec.models[3].state_dict()  # evaluate gets the EMA weights when EMA is on
    for k, v in final["ema"].items():
        torch.testing.assert_close(seen[k], v, rtol=0, atol=0, msg=k)


@pytest.mark.parametrize("warmup, shares", [
    (False, {50: 0.7783, 100: 0.6058, 150: 0.4715, 300: 0.2223}),  # 0.995^s: the 78/61/47/22 %
    (True, {50: 7.958e-11, 100: 2.346e-13, 150: 7.036e-15, 300: 1.589e-17}),  # 1 / C(s + 9, 9)
])
def test_share_of_the_initial_weights_left_in_the_ema_at_early_steps(warmup, shares):
    tc = TrainConfig(ema=0.995, ema_warmup=warmup)
    for steps, share in shares.items():
        left = math.prod(ema_decay(tc, t) for t in range(steps))  # each update keeps decay x the EMA
        assert left == pytest.approx(share, rel=1e-3), steps
        if warmup:
            assert left == pytest.approx(1 / math.comb(steps + 9, 9), rel=1e-9)
    assert [round(ema_decay(TrainConfig(ema=0.995, ema_warmup=True), t), 4) for t in (0, 1, 2, 1789, 1790, 5000)] == [
        0.1, 0.1818, 0.25, 0.995, 0.995, 0.995]  # (1 + t) / (10 + t) until it reaches ema at step 1,790
    assert ema_decay(TrainConfig(ema=0.0, ema_warmup=True), 100) == 0.0  # off stays off


def test_a_real_training_applies_the_warm_up_decays_to_its_ema(tmp_path):
    cfg = with_train(SMALL, steps=4, ema=0.995, ema_warmup=True, checkpoint_every=1, eval_every=100)
    run(cfg, tmp_path, Recorder())
    states = [load(tmp_path / f"step-{k:07d}.pt") for k in (1, 2, 3, 4)]
    torch.manual_seed(cfg.train.seed)
    initial = UNet(cfg.model).state_dict()

    def ema_after(decays):  # ema_k = d_k ema_{k-1} + (1 - d_k) w_k, from the seeded initial weights
        ema = {k: v.clone() for k, v in initial.items()}
        for d, st in zip(decays, states):
            ema = {k: d * ema[k] + (1 - d) * st["model"][k] for k in ema}
        return ema

    warm, fixed = ema_after([0.1, 2 / 11, 0.25, 4 / 13]), ema_after([0.995] * 4)
    moved = [k for k, v in initial.items() if v.is_floating_point() and not torch.equal(v, states[-1]["model"][k])]
    assert len(moved) > len(initial) // 2
    for k in moved:
        torch.testing.assert_close(states[-1]["ema"][k], warm[k], rtol=1e-5, atol=1e-6, msg=k)
    # The check can fail: without warm-up the EMA would still be ~98 % the initial weights.
    far = [k for k in moved if not torch.allclose(states[-1]["ema"][k], fixed[k], rtol=1e-5, atol=1e-6)]
    assert len(far) == len(moved)


def test_bf16_precision_trains_under_autocast_on_the_cpu_and_keeps_fp32_weights(tmp_path):
    cfg = with_train(SMALL, steps=4, checkpoint_every=4, eval_every=100, ema=0.0)
    fp32, bf16 = Recorder(), Recorder()
    run(with_train(cfg, precision="fp32"), tmp_path / "fp32", fp32)
    run(with_train(cfg, precision="bf16"), tmp_path / "bf16", bf16)
    # Same batches and noise: the losses agree to bf16's rounding (~3 digits), but not exactly.
    for (s1, a), (s2, b) in zip(fp32.losses, bf16.losses):
        assert s1 == s2 and math.isfinite(b) and abs(a - b) < 0.02 * a
    assert [a for _, a in fp32.losses] != [b for _, b in bf16.losses], "bf16 autocast had no effect"
    weights = load(tmp_path / "bf16" / "step-0000004.pt")["model"]
    assert all(v.dtype == torch.float32 for v in weights.values() if v.is_floating_point())


@pytest.mark.parametrize("precision, device, dtype", [
    ("auto", "cpu", torch.float32), ("fp32", "cpu", torch.float32), ("bf16", "cpu", torch.bfloat16),
])
def test_autocast_follows_the_precision_setting(precision, device, dtype):
    conv = torch.nn.Conv2d(1, 2, 3)
    with autocast(precision, torch.device(device)):
        assert conv(torch.randn(1, 1, 5, 5)).dtype == dtype
    assert precision_label(precision, torch.device(device)) == ("fp32" if dtype == torch.float32 else "bf16 autocast")
    with pytest.raises(ValueError, match="expected one of: auto, fp32, bf16"):
        autocast("fp16", torch.device(device))
