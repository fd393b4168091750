"""Presets: TOML files -> RunConfigs, sweeps, overrides, and one-line errors that name file and key.

Building and serialising one RunConfig (labconsole.runconfig) is tested in test_config.py.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from labconsole.presets import PresetError, list_presets, load_preset, parse_override

PRESETS = Path(__file__).resolve().parent.parent / "presets"


def write(tmp_path: Path, text: str, name: str = "x.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def error_of(path: Path, overrides=()) -> str:
    with pytest.raises(PresetError) as info:
        load_preset(path, overrides)
    text = str(info.value)
    assert "\n" not in text
    assert text.startswith(f"{path}: ")
    return text


# -- loading, sweeps, labels ----------------------------------------------------------------------


SWEEP = """
title = "Fig. X"
description = "what varies"
[data]
sigma = 2
[train]
steps = 100
[sweep]
"data.dx,data.dy" = [[0.5, 0.5], [1, 0.5]]
data.sigma = [1, 3]
seeds = [0, 1, 2]
"""


def test_sweep_is_the_grid_with_linked_keys_and_seeds_fastest(tmp_path):
    preset = load_preset(write(tmp_path, SWEEP))
    assert (preset.name, preset.title, preset.description) == ("x", "Fig. X", "what varies")
    assert preset.sweep == ("data.dx,data.dy", "data.sigma", "seeds")
    assert len(preset.runs) == 2 * 2 * 3
    first, last = preset.runs[0], preset.runs[-1]
    assert first.label == "dx=dy=0.5 sigma=1.0 seed=0" and first.setting == "dx=dy=0.5 sigma=1.0"
    assert last.label == "dx=1.0 dy=0.5 sigma=3.0 seed=2" and last.setting == "dx=1.0 dy=0.5 sigma=3.0"
    assert [r.config.train.seed for r in preset.runs[:3]] == [0, 1, 2]
    assert isinstance(last.config.data.dx, float) and last.config.data.dx == 1.0  # int accepted as float
    assert last.params == {"data.dx": 1.0, "data.dy": 0.5, "data.sigma": 3.0, "train.seed": 2}
    assert all(r.config.train.steps == 100 for r in preset.runs)
    assert len({r.setting for r in preset.runs}) == 4


def test_unswept_preset_is_one_unlabelled_run(tmp_path):
    preset = load_preset(write(tmp_path, "[train]\nsteps = 7\n"))
    assert [(r.label, r.setting, r.config.train.steps) for r in preset.runs] == [("", "", 7)]


def test_sweep_key_colliding_short_names_use_full_paths(tmp_path):
    preset = load_preset(write(tmp_path, '[sweep]\n"eval.seed" = [5]\nseeds = [1]\n'))
    assert preset.runs[0].label == "eval.seed=5 train.seed=1"


def test_overrides_fix_keys_and_replace_sweeps(tmp_path):
    path = write(tmp_path, SWEEP)
    p = load_preset(path, ["train.steps=2000", "model.size=paper"])
    assert {r.config.train.steps for r in p.runs} == {2000} and len(p.runs) == 12
    p = load_preset(path, ["data.sigma=0.7"])  # a swept key: the override replaces its sweep
    assert len(p.runs) == 6 and {r.config.data.sigma for r in p.runs} == {0.7}
    assert p.sweep == ("data.dx,data.dy", "seeds") and p.runs[0].label == "dx=dy=0.5 seed=0"
    p = load_preset(path, ["train.seed=9"])
    assert len(p.runs) == 4 and {r.config.train.seed for r in p.runs} == {9}
    p = load_preset(path, ["data.dx=0.25", "data.dy=0.25"])  # all keys of a linked entry
    assert len(p.runs) == 6 and {(r.config.data.dx, r.config.data.dy) for r in p.runs} == {(0.25, 0.25)}
    p = load_preset(path, ["seeds=[4]", "sweep.data.sigma=[1, 2, 3]", "sweep.data.dx,data.dy=[[2, 2]]"])
    assert len(p.runs) == 3 and p.runs[-1].label == "dx=dy=2.0 sigma=3.0 seed=4"
    p = load_preset(path, [("title", "T"), ("eval.sampler", "ddim")])  # parsed pairs work too
    assert p.title == "T" and p.runs[0].config.eval.sampler == "ddim"


def test_parse_override_reads_toml_values_else_bare_strings():
    assert parse_override("train.steps=2000") == ("train.steps", 2000)
    assert parse_override(" data.sigma = 1.5 ") == ("data.sigma", 1.5)
    assert parse_override("train.compile=true") == ("train.compile", True)
    assert parse_override("data.holes=[[1, 2, 3, 4]]") == ("data.holes", [[1, 2, 3, 4]])
    assert parse_override("model.size=small") == ("model.size", "small")
    assert parse_override('model.size="a=b"') == ("model.size", "a=b")
    for bad in ("train.steps", "=3", "train steps=3"):
        with pytest.raises(PresetError, match=r"^--set: expected PATH=VALUE"):
            parse_override(bad)


# -- every error class: one line, the file, the key, what is allowed --------------------------


@pytest.mark.parametrize("text, expected", [
    ("[train\nsteps = 1\n", "TOML syntax error: "),
    ("[trian]\nsteps = 1\n", "unknown key 'trian'; expected one of: name, title, description, kind, order, mini, data, model"),
    ("[train]\nstepz = 1\n", "unknown key 'train.stepz'; expected one of: steps, batch_size, lr,"),
    ("train = 3\n", "train: expected a table [train], got 3"),
    ("[overlap]\nsigmas = [1]\n", "unknown key 'overlap'; expected one of: "),
    ('kind = "plot"\n', "kind: expected one of: train, overlap, percolation, got 'plot'"),
    ("title = 4\n", "title: expected a string, got 4"),
    ('name = "a b"\n', "name: expected letters, digits"),
    ('[train]\nsteps = "2000"\n', "train.steps: expected an integer, got '2000' (a string)"),
    ("[train]\nsteps = 1.5\n", "train.steps: expected an integer, got 1.5"),
    ("[train]\nsteps = true\n", "train.steps: expected an integer, got True"),
    ("[train]\ncompile = 1\n", "train.compile: expected true or false, got 1"),
    ("[data]\nsigma = true\n", "data.sigma: expected a number, got True"),
    ("[data]\nsigma = nan\n", "data.sigma: expected a number, got nan"),
    ("[model]\nsize = 3\n", "model.size: expected a string, got 3"),
    ('[train]\neval_at = [1, "x"]\n', "train.eval_at[1]: expected an integer, got 'x'"),
    ("[train]\neval_at = 5\n", "train.eval_at: expected a list of integers, got 5"),
    ("[data]\nholes = [1, 2, 3, 4]\n", "data.holes[0]: expected a list of 4 numbers, got 1"),
    ("[data]\nholes = 5\n", "data.holes: expected a list of [x0, y0, x1, y1] rectangles, got 5"),
    ("[data]\nholes = [[1, 2, 3]]\n", "data.holes[0]: expected a list of 4 numbers, got [1, 2, 3]"),
    ("[train]\nsteps = -5\n", "train.steps: expected a positive integer, got -5"),
    ("[train]\nbatch_size = 0\n", "train.batch_size: expected a positive integer, got 0"),
    ("[data]\nsigma = 0\n", "data.sigma: expected a positive number, got 0.0"),
    ("[data]\ndx = 0\n", "data.dx: expected a positive number below data.size (32), got 0.0"),
    ("[data]\ndy = 40\n", "data.dy: expected a positive number below data.size (32), got 40.0"),
    ("[data]\nsize = 30\n", "data.size: expected a positive multiple of 8"),
    ("[data]\nholes = [[20, 12, 12, 20]]\n", "data.holes[0]: expected [x0, y0, x1, y1] with 0 <= x0 < x1 <= 32"),
    ("[data]\nholes = [[12, 12, 20, 40]]\n", "data.holes[0]: expected [x0, y0, x1, y1] with"),
    ("[train]\nema = 1\n", "train.ema: expected a number in [0, 1) (0 = off), got 1.0"),
    ("[train]\ndevice = \"gpu\"\n", "train.device: expected one of: auto, cpu, cuda, got 'gpu'"),
    ('[train]\nprecision = "fp16"\n', "train.precision: expected one of: auto, fp32, bf16, got 'fp16'"),
    ("[train]\nsteps = 100\neval_at = [50, -2]\n", "train.eval_at[1]: expected a step >= 0, got -2"),
    ("[diffusion]\nT = 1\n", "diffusion.T: expected an integer >= 2, got 1"),
    ("[diffusion]\nbeta_end = 1e-5\n", "diffusion.beta_end: expected a number in (beta_start = 0.0001, 1)"),
    ('[diffusion]\nprediction = "noise"\n', "diffusion.prediction: expected one of: eps, x0, v, got 'noise'"),
    ('[eval]\nsampler = "ddmi"\n', "eval.sampler: expected one of: ddpm, ddim, got 'ddmi'"),
    ("[eval]\nddim_steps = 5000\n", "eval.ddim_steps: expected an integer in [1, diffusion.T = 1000]"),
    ("[eval]\nn_samples = 10\numap_neighbors = 15\n", "eval.umap_neighbors: expected an integer in [2, eval.n_samples = 10)"),
    ("[eval]\nphase_r2_min = 1.5\n", "eval.phase_r2_min: expected a number in [0, 1], got 1.5"),
    ("[sweep]\ndata.dz = [1]\n", "unknown key 'sweep.data.dz'; expected one of: dx, dy, sigma"),
    ("[sweep]\nseed = [1]\n", "unknown key 'sweep.seed'; expected SECTION.KEY with SECTION one of: data, model"),
    ("[sweep]\nseeds = 3\n", "sweep.seeds: expected a non-empty list of values, got 3"),
    ("[sweep]\nseeds = []\n", "sweep.seeds: expected a non-empty list of values, got []"),
    ('[sweep]\n"data.dx,data.dy" = [[1, 1], [2]]\n', "sweep.data.dx,data.dy[1]: expected a list of 2 values (data.dx, data.dy)"),
    ('[sweep]\n"data.dx,data.dy" = [[1, 1]]\n"data.dx" = [2]\n', "sweep.data.dx: data.dx is already swept by 'data.dx,data.dy'"),
    ("[sweep]\nseeds = [0, -1]\n", "train.seed: expected an integer >= 0, got -1 (sweep run 'seed=-1')"),
    ('[sweep]\ndata.sigma = [1, "a"]\n', "data.sigma: expected a number, got 'a' (sweep run 'sigma=a')"),
])
def test_errors_are_one_line_naming_file_key_and_allowed(tmp_path, expected, text):
    assert expected in error_of(write(tmp_path, text))


@pytest.mark.parametrize("overrides, expected", [
    (["train.steps=-5"], "train.steps (--set): expected a positive integer, got -5"),
    (["train.stepz=5"], "unknown key 'train.stepz' (--set); expected one of: steps,"),
    (["trian.steps=5"], "unknown key 'trian.steps' (--set); expected SECTION.KEY with SECTION one of"),
    (["data.dx=0.5"], "data.dx (--set): is swept together with data.dy in [sweep] 'data.dx,data.dy'; "
                      "override all of them, or replace the sweep with --set 'sweep.data.dx,data.dy=[...]'"),
    (["sweep.data.sigma=2"], "sweep.data.sigma (--set): expected a non-empty list of values, got 2"),
    (["kind=overlap"], "kind (--set): cannot be overridden"),
])
def test_override_errors_name_the_key_and_say_it_came_from_set(tmp_path, overrides, expected):
    assert expected in error_of(write(tmp_path, SWEEP), overrides)


def test_unreadable_file_is_a_preset_error(tmp_path):
    assert "cannot read: No such file or directory" in error_of(tmp_path / "missing.toml")


def test_model_size_is_checked_against_the_registry(tmp_path):
    path = write(tmp_path, '[model]\nsize = "huge"\n')
    assert "model.size: expected one of: paper, w32, w16, tiny, got 'huge'" in error_of(path)


def test_overlap_kind_loads_its_table_and_validates_it(tmp_path):
    path = write(tmp_path, 'kind = "overlap"\n[overlap]\nsigmas = [1, 2]\nincrements = [0.5]\n')
    preset = load_preset(path, ["overlap.size=64"])
    assert preset.kind == "overlap" and preset.runs == []
    assert (preset.overlap.sigmas, preset.overlap.increments, preset.overlap.size) == ((1.0, 2.0), (0.5,), 64)
    assert "overlap.sigmas: expected a non-empty list of positive numbers, got [1.0, -2.0]" in \
        error_of(write(tmp_path, 'kind = "overlap"\n[overlap]\nsigmas = [1, -2]\n', "y.toml"))
    assert "unknown key 'train'; expected one of: name, title, description, kind, order, mini, overlap" in \
        error_of(write(tmp_path, 'kind = "overlap"\n[train]\nsteps = 1\n', "z.toml"))
    assert "unknown key 'train.steps' (--set); expected overlap.<key>" in error_of(path, ["train.steps=1"])


def test_list_presets_reports_broken_files_instead_of_raising(tmp_path):
    write(tmp_path, "[train]\nsteps = 3\n", "good.toml")
    write(tmp_path, "[train]\nsteps = -3\n", "bad.toml")
    write(tmp_path, "not toml at all [", "worse.toml")
    presets = {p.name: p for p in list_presets(tmp_path)}
    assert sorted(presets) == ["bad", "good", "worse"]
    assert presets["good"].error == "" and len(presets["good"].runs) == 1
    assert presets["bad"].error.endswith("bad.toml: train.steps: expected a positive integer, got -3")
    assert "TOML syntax error" in presets["worse"].error and presets["worse"].runs == []


def test_list_presets_orders_by_order_then_file_name(tmp_path):
    write(tmp_path, "order = 2\n[train]\nsteps = 3\n", "a.toml")
    write(tmp_path, "[train]\nsteps = 3\n", "b.toml")  # no order: after the ordered ones
    write(tmp_path, "order = 0\n[train]\nsteps = 3\n", "c.toml")
    write(tmp_path, "order = 2\n[train]\nsteps = 3\n", "0.toml")
    assert [p.name for p in list_presets(tmp_path)] == ["c", "0", "a", "b"]


def test_order_must_be_an_integer_and_cannot_be_overridden(tmp_path):
    path = write(tmp_path, 'order = "first"\n[train]\nsteps = 3\n')
    assert "order: expected an integer (where the console lists the preset), got 'first'" in error_of(path)
    path = write(tmp_path, "order = 1\n[train]\nsteps = 3\n")
    assert "order (--set): cannot be overridden" in error_of(path, ["order=0"])


# -- the shipped presets -------------------------------------------------------------------------


EXPECTED_RUNS = {
    "phases": 1, "increments": 10 * 3, "imbalance-strong": 3, "imbalance-weak": 3, "sigma": 3 * 4 * 3,
    "hole": 3, "hole-big": 3, "overlap": 0,
    # the follow-up's (issue 16)
    "torus": 2 * 3, "sos-cross": 3, "sos-compose": 3, "sample-efficiency": 2 * 6 * 3, "stripes": 3, "stripes-rim": 3,
    "lesion": 3 * 3, "hole-edge": 2 * 6 * 3,
}
MINI_RUNS = {  # the CPU miniatures of docs/findings.md (issue 14), and the objective's comparison
    "phases-mini": 3, "increments-mini": 4 * 3, "imbalance-strong-mini": 3, "imbalance-weak-mini": 3,
    "sigma-mini": 2 * 3 * 2, "hole-mini": 3, "hole-big-mini": 3, "target": 2 * 3,
    # the follow-up's (issue 16)
    "torus-mini": 2 * 3, "sos-cross-mini": 3, "sos-compose-mini": 3, "sample-efficiency-mini": 2 * 2 * 2, "stripes-mini": 3,
    "stripes-rim-mini": 3, "lesion-mini": 3 * 2, "hole-edge-mini": 4 * 2,
}


def test_every_shipped_preset_loads():
    presets = list_presets(PRESETS)
    assert [p.error for p in presets if p.error] == []
    assert set(EXPECTED_RUNS) <= {p.name for p in presets}
    # The console's list: the CPU demo first, then the paper's figures in their order.
    names = [p.name for p in presets]
    assert names[0] == "quick"
    assert names.index("phases") < names.index("increments") < names.index("imbalance-strong") \
        < names.index("overlap") < names.index("sigma") < names.index("hole") < names.index("hole-big")


@pytest.mark.parametrize("name, n_runs", sorted(EXPECTED_RUNS.items()))
def test_paper_presets_expand_to_the_expected_runs(name, n_runs):
    preset = load_preset(PRESETS / f"{name}.toml")
    assert preset.name == name and preset.title.startswith("Fig. ") and preset.description
    assert len(preset.runs) == n_runs
    assert len({r.label for r in preset.runs}) == n_runs  # every run distinguishable
    for run in preset.runs:  # paper scale (App. A.6)
        assert run.config.model.size == "paper"
        assert (run.config.train.steps, run.config.train.batch_size) == (320_000, 16)
        assert run.config.eval.n_samples == 500 and run.config.diffusion.prediction == "eps"
    if n_runs > 1:
        assert sorted({r.config.train.seed for r in preset.runs}) == [0, 1, 2]


@pytest.mark.parametrize("name, n_runs", sorted(MINI_RUNS.items()))
def test_cpu_miniatures_expand_to_the_expected_runs(name, n_runs):
    preset = load_preset(PRESETS / f"{name}.toml")
    assert len(preset.runs) == n_runs and len({r.label for r in preset.runs}) == n_runs
    assert {r.config.model.size for r in preset.runs} == {"w16"} and not preset.mini
    paper = PRESETS / f"{name.removesuffix('-mini')}.toml"
    if name.endswith("-mini"):  # listed beside its paper preset, which names it
        assert load_preset(paper).mini == name and load_preset(paper).order == preset.order


def test_increments_sweep_dx_and_dy_together():
    runs = load_preset(PRESETS / "increments.toml").runs
    assert all(r.config.data.dx == r.config.data.dy for r in runs)
    assert sorted({r.config.data.dx for r in runs}) == pytest.approx([i / 10 for i in range(1, 11)])
    holes = [load_preset(PRESETS / f"{n}.toml").runs[0].config.data.holes for n in ("hole", "hole-big")]
    (small,), (big,) = holes
    assert (small[2] - small[0]) < (big[2] - big[0])  # the big hole is bigger


def test_every_preset_value_is_marked_paper_or_ours():
    for name in EXPECTED_RUNS:
        for line in (PRESETS / f"{name}.toml").read_text().splitlines():
            code = line.split("#", 1)[0].strip()
            if "=" in code and not code.startswith(("name", "title", "description", "kind", "order", "mini")):
                assert "(paper" in line or "(ours" in line or "(inferred" in line, f"{name}.toml: {line}"


def test_eval_steps_past_the_end_are_allowed_so_a_preset_can_be_shrunk():
    # quick.toml evaluates at steps 50 and 100; a 40-step smoke run of it must still load.
    from model.train import eval_steps

    run = load_preset(Path(__file__).resolve().parents[1] / "presets" / "quick.toml", ["train.steps=40"]).runs[0]
    assert sorted(eval_steps(run.config.train)) == [0, 40]
