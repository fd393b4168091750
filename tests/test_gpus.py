"""The local executor spreads a sweep over GPUs (issue 15): ``--gpus`` / ``--runs-per-gpu``, the
slots, and each worker's CUDA_VISIBLE_DEVICES, tested against a stated device list on this CPU
box (a worker given "GPU 1" here finds no CUDA and trains on the CPU, but its meta.json and the
batch's lines say which GPU it was given, and no GPU ever holds more than K live runs)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from labconsole.batch import BadInput, gpu_slots
from labconsole.gpus import GpuError, GpuSlots, parse_gpus, visible_gpus

REPO = Path(__file__).resolve().parents[1]
TINY = ["model.size=tiny", "diffusion.T=20", "train.batch_size=4", "train.steps=3", "train.eval_every=3",
        "train.eval_at=[]", "train.checkpoint_every=3", "train.log_every=1", "eval.n_samples=8",
        "eval.umap_neighbors=4", "eval.ddim_steps=3", "train.device=auto"]


def test_visible_gpus_follow_cuda_visible_devices():
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "2,3"}) == ["2", "3"]
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": ""}) == []
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "-1"}) == []
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "GPU-8a1b2c3d-0000-1111-2222-333344445555"}) == [
        "GPU-8a1b2c3d-0000-1111-2222-333344445555"]


@pytest.mark.parametrize("text, expected", [("0,1", ["0", "1"]), (" 3 ", ["3"]), ("none", [])])
def test_parse_gpus(text, expected):
    assert parse_gpus(text, {}) == expected


@pytest.mark.parametrize("text, named", [("", "expected all, none"), ("0,,1", "expected all"), ("a", "got 'a'"),
                                         ("1,1", "named twice"), ("all", "no GPU is visible")])
def test_bad_gpu_lists_are_one_line(text, named):
    with pytest.raises(GpuError, match=named):
        parse_gpus(text, {"CUDA_VISIBLE_DEVICES": ""})


def test_slots_pack_k_runs_on_each_gpu_least_loaded_first():
    slots = GpuSlots(["0", "1"], per_gpu=2)
    assert slots.capacity == 4
    taken = [slots.take() for _ in range(4)]
    assert taken == ["0", "1", "0", "1"] and slots.take() is None
    slots.give("1")
    assert slots.take() == "1" and slots.take() is None
    with pytest.raises(ValueError):
        GpuSlots(["0"]).give("0")
    with pytest.raises(GpuError, match="--runs-per-gpu"):
        GpuSlots(["0"], per_gpu=0)


def test_a_run_pinned_to_the_cpu_gets_no_gpu():
    assert gpu_slots("0,1", 1, {"auto"}).capacity == 2
    assert gpu_slots("0,1", 1, {"auto", "cpu"}) is None
    assert gpu_slots("none", 3, {"auto"}) is None
    with pytest.raises(BadInput, match="--runs-per-gpu"):
        gpu_slots("0", 0, {"auto"})


def test_a_sweep_spreads_over_the_stated_gpus(tmp_path):
    """Six runs, --gpus 0,1 --runs-per-gpu 2: each worker is given one GPU (meta.json), both GPUs
    are used, and at no time does a GPU hold more than two live runs (from the batch's lines)."""
    sets = [a for s in TINY + ["sweep.seeds=[0,1,2,3,4,5]"] for a in ("--set", s)]
    runs_dir = tmp_path / "runs"
    done = subprocess.run([sys.executable, "-m", "labconsole.cli", "--batch", str(REPO / "presets" / "quick.toml"),
                           *sets, "--gpus", "0,1", "--runs-per-gpu", "2", "--no-figures", "--runs-dir", str(runs_dir)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600, env=_no_gpu_env())
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    metas = [json.loads(p.read_text()) for p in runs_dir.glob("*/meta.json")]
    assert len(metas) == 6 and {m["gpu"] for m in metas} == {"0", "1"}
    assert all(m["status"] == "completed" for m in metas)
    assert sum(" on GPU " in line for line in done.stdout.splitlines()) == 6
    # Replay launches and ends in order: a GPU's live count never exceeds 2.
    live, worst = {"0": set(), "1": set()}, 0
    for line in done.stdout.splitlines():
        label = line.split("]", 1)[0].lstrip("[")
        if " on GPU " in line:
            live[line.rsplit(" ", 1)[-1]].add(label)
        elif "] completed at step" in line:
            for gpu in live.values():
                gpu.discard(label)
        worst = max(worst, *(len(v) for v in live.values()))
    assert worst == 2  # packed: two per GPU at the busiest, never three


def _no_gpu_env() -> dict:
    import os

    env = dict(os.environ)
    env.pop("CUDA_VISIBLE_DEVICES", None)
    return env


def test_least_loaded_counts_the_live_runs_of_every_starter(tmp_path):
    import os
    import socket
    import time

    from labconsole.gpus import least_loaded
    from labconsole.rundir import Meta, write_meta

    def run(name, gpu, status="running"):
        (tmp_path / name).mkdir()
        write_meta(tmp_path / name, Meta(run_id=name, status=status, gpu=gpu, pid=os.getpid(),
                                         host=socket.gethostname(), heartbeat=time.time()))

    assert least_loaded(["0", "1"], tmp_path / "missing") == "0"  # ties: the first listed
    run("a", "0")
    run("b", "0")
    run("c", "1")
    run("d", "1", status="completed")  # over: no load
    assert least_loaded(["0", "1"], tmp_path) == "1"
    assert least_loaded(["0", "1", "2"], tmp_path) == "2"
    with pytest.raises(GpuError):
        least_loaded([], tmp_path)
