"""The typed seams: eval result -> Eval event, the samples file, old events files, the device decision."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from labconsole import events as ev
from labconsole.config import EvalConfig, RunConfig
from labconsole.evaluate import EvalResult, Evaluator
from labconsole.samples import Samples, read_samples, write_samples
from model.config import DataConfig, DiffusionConfig, ModelConfig, TrainConfig
from model.device import place
from model.train import build_model

CPU = torch.device("cpu")


# --------------------------------------------------------------------------- eval result -> event


def test_eval_event_carries_the_capture_step_actually_used_and_how_it_was_read(one_thread):
    # DDIM-4 of T = 40 visits 39, 26, 13, 0: capture_t = 7 is read at 13, the nearest visited step.
    data = DataConfig(dx=4.0, dy=4.0, sigma=2.0, holes=((12.0, 12.0, 20.0, 20.0),))
    ec = EvalConfig(n_samples=20, n_ood=6, sampler="ddim", ddim_steps=4, capture_t=7, capture="no_label", seed=5)
    cfg = RunConfig(data=data, model=ModelConfig(size="tiny"), diffusion=DiffusionConfig(T=40, prediction="x0"), eval=ec)
    result = Evaluator(cfg, CPU)(9, build_model(cfg.model, 0, CPU))

    event = ev.decode(ev.encode(result.to_event("samples/step-0000009.npz", segment=2)))
    assert isinstance(event, ev.Eval) and event.step == 9 and event.segment == 2
    assert (event.capture_t, event.capture, event.sampler) == (13, "no_label", "ddim-4")
    assert (event.n_samples, event.n_ood, event.umap_seed) == (20, 6, 5)
    assert event.accuracy_ood is not None and event.samples_path == "samples/step-0000009.npz"
    ood_numbers = (event.blobs_0_ood, event.blobs_1_ood, event.blobs_many_ood, event.r2_ood, event.r2_all)
    assert None not in ood_numbers
    assert event.blobs_0_ood + event.blobs_1_ood + event.blobs_many_ood == pytest.approx(1.0)
    assert event.umap_fits == 1 and event.r2_mean_min == event.r2_mean == event.r2_mean_max  # one fit
    assert {k: getattr(event, k) for k in result.numbers()} == result.numbers()  # nothing lost on the way
    assert len(result.samples) == 26 and result.samples.ood.sum() == 6 and result.samples.step == 9


def test_eval_result_numbers_are_exactly_the_eval_event_fields():
    wire_only = {"time", "segment", "samples_path"}  # set by whoever emits and writes the file
    event_fields = {f.name for f in dataclasses.fields(ev.Eval)} - wire_only
    result_fields = {f.name for f in dataclasses.fields(EvalResult)} - {"samples"}
    assert result_fields == event_fields


def test_an_eval_line_written_before_the_capture_fields_still_decodes():
    old = {"v": 1, "type": "eval", "time": 1.7e9, "segment": 0, "step": 600, "accuracy": 0.5, "accuracy_x": 0.6,
           "accuracy_y": 0.7, "ceiling": 0.9, "ceiling_x": 0.95, "ceiling_y": 0.95, "r2_x": 0.8, "r2_y": 0.7,
           "r2_mean": 0.75, "r2_pca_mean": 0.6, "r2_shuffled": 0.01, "blobs_0": 0.0, "blobs_1": 0.9,
           "blobs_many": 0.1, "phase": "B", "phase_reason": "B: 90% single bumps, accuracy 0.50",
           "eval_seconds": 1.5, "n_samples": 100, "sampler": "ddim-15", "accuracy_ood": None, "ceiling_ood": None,
           "samples_path": "samples/step-0000600.npz"}
    event = ev.decode(json.dumps(old))
    assert isinstance(event, ev.Eval) and event.step == 600 and event.sampler == "ddim-15"
    assert (event.capture_t, event.capture, event.n_ood, event.umap_seed) == (None, "", None, None)
    later = ("r2_mean_min", "r2_mean_max", "umap_fits", "blobs_0_ood", "blobs_1_ood", "blobs_many_ood",
             "r2_ood", "r2_all")
    assert [getattr(event, name) for name in later] == [None] * len(later)


def test_an_eval_without_a_hole_has_no_ood_numbers(one_thread):
    cfg = RunConfig(data=DataConfig(dx=4.0, dy=4.0, sigma=2.0), model=ModelConfig(size="tiny"),
                    diffusion=DiffusionConfig(T=40, prediction="x0"),
                    eval=EvalConfig(n_samples=20, sampler="ddim", ddim_steps=4))
    event = ev.decode(ev.encode(Evaluator(cfg, CPU)(0, build_model(cfg.model, 0, CPU)).to_event("s.npz")))
    ood = ("accuracy_ood", "ceiling_ood", "blobs_0_ood", "blobs_1_ood", "blobs_many_ood", "r2_ood", "r2_all")
    assert [getattr(event, name) for name in ood] == [None] * len(ood) and event.n_ood == 0
    assert event.blobs_0 + event.blobs_1 + event.blobs_many == pytest.approx(1.0) and event.umap_fits == 1


# --------------------------------------------------------------------------- the samples file


def some_samples(n: int = 7, *, embedding: bool = True) -> Samples:
    rng = np.random.default_rng(0)
    labels = rng.uniform(2, 30, (n, 2)).astype(np.float32)
    return Samples(
        images=rng.uniform(-1, 1, (n, 32, 32)).astype(np.float32), labels=labels,
        pred=(labels + 0.5).astype(np.float32), blobs=rng.integers(0, 3, n),
        embedding=rng.normal(size=(n, 3)).astype(np.float32) if embedding else None,
        ood=np.arange(n) >= n - 2, step=0,
    )


def test_samples_round_trip_through_the_file(tmp_path):
    written = some_samples()
    path = write_samples(tmp_path, 6400, written)
    assert path == tmp_path / "samples" / "step-0006400.npz"
    assert sorted(p.name for p in path.parent.iterdir()) == ["step-0006400.npz"]  # no temp file left behind
    read = read_samples(path, 6400)
    assert (read.step, read.path, len(read)) == (6400, path, 7)
    for name, array in written.arrays().items():
        np.testing.assert_array_equal(getattr(read, name), array, err_msg=name)
        assert getattr(read, name).dtype == array.dtype, name


def test_samples_without_an_embedding_read_back_without_one(tmp_path):
    read = read_samples(write_samples(tmp_path, 3, some_samples(embedding=False)), 3)
    assert read.embedding is None and len(read) == 7


def test_a_samples_file_with_wrong_arrays_is_refused_with_its_name(tmp_path):
    np.savez(tmp_path / "no-pred.npz", images=np.zeros((2, 32, 32)), labels=np.zeros((2, 2)))
    with pytest.raises(ValueError, match="no-pred.npz: no 'pred' array; has: images, labels"):
        read_samples(tmp_path / "no-pred.npz")
    np.savez(tmp_path / "short.npz", images=np.zeros((2, 32, 32)), labels=np.zeros((3, 2)), pred=np.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"labels must be \(2, 2\) for 2 images, got shape \(3, 2\)"):
        read_samples(tmp_path / "short.npz")


# --------------------------------------------------------------------------- device and threads


def test_place_sets_the_threads_and_says_what_the_start_line_shows(one_thread):
    placed = place(TrainConfig(device="cpu", threads=2, precision="bf16"))
    assert torch.get_num_threads() == 2
    assert (placed.device.type, placed.threads, placed.precision) == ("cpu", 2, "bf16 autocast")
    assert placed.describe() == "cpu (2 threads, bf16 autocast)"
    assert place(TrainConfig(device="cpu", threads=0, precision="auto")).describe() == "cpu (2 threads, fp32)"
    with pytest.raises(ValueError, match="unknown device 'tpu'; expected one of: auto, cpu, cuda"):
        place(TrainConfig(device="tpu"))
