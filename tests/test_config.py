"""labconsole.runconfig: one RunConfig built, validated and serialised (config.toml via tomli-w)."""
from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pytest

from labconsole.config import RunConfig
from labconsole.presets import list_presets, load_preset
from labconsole.runconfig import (PresetError, config_from_dict, config_to_dict, dumps_config, load_config,
                                  write_config)
from labconsole.runner import create_run

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

PRESETS = Path(__file__).resolve().parent.parent / "presets"


def nondefault_config() -> RunConfig:
    cfg = RunConfig()
    return dataclasses.replace(
        cfg,
        data=dataclasses.replace(cfg.data, dx=0.5, dy=1.0, holes=((12.0, 12.0, 20.0, 20.0), (1.0, 2.5, 3.0, 4.0))),
        train=dataclasses.replace(cfg.train, steps=1234, lr=3e-3, eval_at=(10, 20), compile=True, device="cpu"),
        eval=dataclasses.replace(cfg.eval, sampler="ddim", umap_min_dist=0.25),
    )


def replace_in(cfg: RunConfig, path: str, value) -> RunConfig:
    """``cfg`` with the dotted field ``path`` set to ``value``, bypassing every check."""
    section, key = path.split(".")
    return dataclasses.replace(cfg, **{section: dataclasses.replace(getattr(cfg, section), **{key: value})})


# -- round trips ------------------------------------------------------------------------------


@pytest.mark.parametrize("cfg", [RunConfig(), nondefault_config()])
def test_config_round_trips_through_dict_and_toml(cfg, tmp_path):
    d = config_to_dict(cfg)
    assert config_from_dict(d) == cfg
    text = dumps_config(cfg)
    assert tomllib.loads(text) == d
    assert write_config(tmp_path, cfg) == tmp_path / "config.toml"
    assert (tmp_path / "config.toml").read_text() == text
    assert load_config(tmp_path / "config.toml") == cfg
    assert load_config(tmp_path) == cfg  # the run dir names its config.toml too


def test_every_shipped_preset_run_config_round_trips_through_tomli_w(tmp_path):
    presets = [p for p in list_presets(PRESETS) if p.kind == "train"]
    runs = [run for p in presets for run in p.runs]
    assert len(presets) >= 8 and len(runs) >= 80  # every paper sweep, every seed
    for i, run in enumerate(runs):
        text = dumps_config(run.config)
        assert tomllib.loads(text) == config_to_dict(run.config), run.label
        path = write_config(tmp_path / f"{i}.toml", run.config)
        assert load_config(path) == run.config, run.label


def test_floats_and_nested_lists_round_trip_exactly():
    awkward = (3e-3, 1e-4, 2e-5, 1 / 3, 0.1 + 0.2, 1e16, 123456789.123456789, 5e-324)
    for lr in awkward:
        cfg = replace_in(nondefault_config(), "train.lr", lr)
        read = tomllib.loads(dumps_config(cfg))
        assert read["train"]["lr"] == lr and type(read["train"]["lr"]) is float, lr
    text = dumps_config(nondefault_config())
    assert "lr = 0.003" in text and "beta_start = 0.0001" in text  # shortest form, not 0.0030000000000000001
    read = tomllib.loads(text)
    assert read["data"]["holes"] == [[12.0, 12.0, 20.0, 20.0], [1.0, 2.5, 3.0, 4.0]]
    assert read["train"]["eval_at"] == [10, 20] and read["data"]["holes"][1][1] == 2.5


def test_runner_writes_config_toml_that_load_config_reads_back(tmp_path):
    spec = load_preset(PRESETS / "hole.toml").runs[-1]  # holes, a sweep, seed 2
    run_dir = create_run(spec, "hole", tmp_path)
    assert load_config(run_dir / "config.toml") == spec.config
    assert tomllib.loads((run_dir / "config.toml").read_text()) == config_to_dict(spec.config)


# -- bad input: one line naming the source, the key and what is allowed -----------------------


@pytest.mark.parametrize("path, value, expected", [
    ("data.sigma", None, "data.sigma: expected a number, got None"),  # TOML has no null
    ("train.steps", -5, "train.steps: expected a positive integer, got -5"),
    ("train.eval_at", (1, None), "train.eval_at[1]: expected an integer, got None"),
    ("eval.sampler", object, "eval.sampler: expected a string, got <class 'object'>"),
])
def test_writing_an_invalid_config_names_the_key_and_writes_nothing(tmp_path, path, value, expected):
    cfg = replace_in(RunConfig(), path, value)
    with pytest.raises(PresetError) as info:
        dumps_config(cfg)
    assert str(info.value) == f"config: {expected}"
    with pytest.raises(PresetError) as info:
        write_config(tmp_path, cfg)
    assert str(info.value) == f"{tmp_path / 'config.toml'}: {expected}"
    assert info.value.key == expected.split(":")[0]  # the key, e.g. train.eval_at[1]
    assert not (tmp_path / "config.toml").exists()


def test_config_from_dict_fills_missing_keys_and_rejects_unknown():
    d = config_to_dict(RunConfig())
    del d["train"]["lr"]
    assert config_from_dict(d).train.lr == RunConfig().train.lr  # an older checkpoint still loads
    d["train"]["lrr"] = 1.0
    with pytest.raises(PresetError, match=r"^ckpt: unknown key 'train.lrr'; expected one of: steps, batch_size"):
        config_from_dict(d, source="ckpt")
    with pytest.raises(PresetError, match=r"^ckpt: unknown key 'sweep'; expected one of: data, model, diffusion, "
                                          r"train, eval$"):
        config_from_dict({"sweep": {}}, source="ckpt")


def test_load_config_reports_unreadable_files_and_syntax_in_one_line(tmp_path):
    with pytest.raises(PresetError, match=r"config.toml: cannot read: No such file or directory$"):
        load_config(tmp_path / "config.toml")
    (tmp_path / "config.toml").write_text("[train\nsteps = 1\n")
    with pytest.raises(PresetError) as info:
        load_config(tmp_path)
    assert str(info.value).startswith(f"{tmp_path / 'config.toml'}: TOML syntax error: ")
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("text, expected", [
    ('[train]\nsteps = "2000"\n', "train.steps: expected an integer, got '2000' (a string)"),
    ("[data]\nholes = [[1, 2, 3]]\n", "data.holes[0]: expected a list of 4 numbers, got [1, 2, 3]"),
    ("[data]\nholes = [[20, 12, 12, 20]]\n", "data.holes[0]: expected [x0, y0, x1, y1] with 0 <= x0 < x1 <= 32"),
    ("[train]\ndevice = \"gpu\"\n", "train.device: expected one of: auto, cpu, cuda, got 'gpu'"),
    ("[diffusion]\nbeta_end = 1e-5\n", "diffusion.beta_end: expected a number in (beta_start = 0.0001, 1)"),
    ("[eval]\nn_samples = 10\numap_neighbors = 15\n", "eval.umap_neighbors: expected an integer in [2, "),
    ("train = 3\n", "train: expected a table [train], got 3"),
])
def test_a_config_and_a_preset_give_the_same_one_line_message(tmp_path, text, expected):
    path = tmp_path / "x.toml"
    path.write_text(text)
    with pytest.raises(PresetError) as from_preset:
        load_preset(path)
    with pytest.raises(PresetError) as from_config:
        load_config(path)
    assert str(from_config.value) == str(from_preset.value)
    assert str(from_config.value).startswith(f"{path}: {expected}")
