"""Every choice is visible (DESIGN §5): each training preset states every RunConfig key with its tag.

The keys come from the dataclasses themselves, so a field added to a config section later fails
here until it is written, tagged, into every training preset. A stated key is a line
``key = value  # (tag) ...`` in its section, the tag one of (paper), (ours), (inferred), (quick) or (mini) (a CPU miniature's change, issue 14);
a key the preset sweeps counts as stated (``seeds`` names ``train.seed``).
"""
from __future__ import annotations

import dataclasses
import re
import sys
import typing
from pathlib import Path

import pytest

from labconsole.config import EvalConfig, RunConfig
from labconsole.presets import load_preset
from model.data import grid_centres

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

PRESETS = Path(__file__).resolve().parent.parent / "presets"
TAGS = ("paper", "ours", "inferred", "quick", "mini")
# `key = value  # (tag...`: the value is everything before the comment (no '#' inside values here).
STATED = re.compile(r"^(?P<key>[A-Za-z_]\w*)\s*=\s*(?P<value>[^#]*?)\s*#\s*(?P<comment>.*)$")
HEADER = re.compile(r"^\[(?P<name>[^\]]+)\]\s*$")
TAGGED = re.compile(r"^\((?:%s)\b" % "|".join(TAGS))


def training_presets() -> list[Path]:
    """Every preset file except those of another kind (overlap.toml has no RunConfig)."""
    paths = sorted(PRESETS.glob("*.toml"))
    return [p for p in paths if tomllib.loads(p.read_text()).get("kind", "train") == "train"]


def config_keys(run_cls: type = RunConfig) -> dict[str, list[str]]:
    """Section -> its field names, read from the dataclasses (new fields are picked up here)."""
    hints = typing.get_type_hints(run_cls)
    return {f.name: [g.name for g in dataclasses.fields(hints[f.name])] for f in dataclasses.fields(run_cls)}


def swept_paths(parsed: dict) -> set[str]:
    """The dotted config paths a preset's [sweep] names; ``seeds`` is ``train.seed``."""
    paths = set()
    for key in _flatten(parsed.get("sweep", {})):
        paths.update("train.seed" if p.strip() == "seeds" else p.strip() for p in key.split(","))
    return paths


def _flatten(table: dict, prefix: str = "") -> list[str]:
    """Keys of a TOML table with unquoted dotted keys (``data.sigma = [...]``) joined back."""
    out = []
    for key, value in table.items():
        out += _flatten(value, f"{prefix}{key}.") if isinstance(value, dict) else [f"{prefix}{key}"]
    return out


def stated_lines(text: str) -> dict[str, tuple[str, str]]:
    """Dotted path -> (value text, comment) of every ``key = value  # comment`` line of a section."""
    section, out = "", {}
    for line in text.splitlines():
        header = HEADER.match(line)
        if header:
            section = header.group("name").strip()
            continue
        m = STATED.match(line)
        if m:
            out[f"{section}.{m.group('key')}"] = (m.group("value"), m.group("comment"))
    return out


def problems(text: str, run_cls: type = RunConfig) -> list[str]:
    """What a preset's text fails to state: one line per config key that is missing or untagged."""
    parsed = tomllib.loads(text)
    swept, lines, out = swept_paths(parsed), stated_lines(text), []
    for section, keys in config_keys(run_cls).items():
        for key in keys:
            path = f"{section}.{key}"
            if path not in lines:
                if path not in swept:
                    out.append(f"{path}: not stated on a line `{key} = value  # (tag) ...` in [{section}]")
                continue
            value, comment = lines[path]
            if not TAGGED.match(comment):
                out.append(f"{path}: its comment starts with none of ({'), ('.join(TAGS)}): {comment!r}")
            elif _value(value) != parsed.get(section, {}).get(key, _MISSING):
                out.append(f"{path}: the line's value {value!r} is not the file's value (write it on one line)")
    return out


_MISSING = object()


def _value(text: str):
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return _MISSING


# -- the shipped presets ------------------------------------------------------------------------


def test_the_training_presets_are_found():
    names = {p.stem for p in training_presets()}
    assert {"quick", "phases", "increments", "sigma", "hole", "hole-big", "target"} <= names
    assert "overlap" not in names


@pytest.mark.parametrize("path", training_presets(), ids=lambda p: p.stem)
def test_preset_states_every_config_key_with_its_tag(path):
    assert problems(path.read_text()) == []


@pytest.mark.parametrize("name, centres, share", [("hole", 81, "1.98"), ("hole-big", 289, "7.06")])
def test_hole_comments_give_the_share_of_grid_centres_left_out(name, centres, share):
    path = PRESETS / f"{name}.toml"
    train, hole = grid_centres(load_preset(path).runs[0].config.data)
    total = len(train) + len(hole)
    assert (len(hole), f"{100 * len(hole) / total:.2f}") == (centres, share)
    assert f"{len(hole)} of the {total:,} grid centres ({share} %)" in path.read_text()


# -- the checker itself fails where it should ---------------------------------------------------


def _phases() -> str:
    return (PRESETS / "phases.toml").read_text()


def test_checker_reports_a_missing_key_an_untagged_one_and_a_commented_out_one():
    text = _phases()
    text = re.sub(r"^grad_clip = .*\n", "", text, flags=re.M)
    text = re.sub(r"^(ema = 0\.0\s*)# \(ours\)", r"\1# off", text, flags=re.M)
    text = re.sub(r"^(capture_t = .*)$", r"# \1", text, flags=re.M)
    found = problems(text)
    assert len(found) == 3, found
    assert found[0] == ("train.ema: its comment starts with none of (paper), (ours), (inferred), (quick), (mini): "
                        "'off off: evaluation reads the trained weights themselves'")
    assert found[1].startswith("train.grad_clip: not stated on a line `grad_clip = value  # (tag) ...` in [train]")
    assert found[2].startswith("eval.capture_t: not stated")


def test_checker_accepts_a_swept_key_and_rejects_a_multiline_value():
    text = re.sub(r"^seed = 0 .*\n", "", _phases(), count=1, flags=re.M) + "\n[sweep]\nseeds = [0, 1]\n"
    assert problems(text) == []  # train.seed is swept, eval.seed still stated
    text = re.sub(r"^eval_at = .*$", "eval_at = [  # (ours) early evals\n    400, 800,\n]", _phases(), flags=re.M)
    assert problems(text) == ["train.eval_at: the line's value '[' is not the file's value (write it on one line)"]


def test_a_new_config_field_is_picked_up_and_demanded():
    new_eval = dataclasses.make_dataclass("NewEval", [("umap_knobs", int, 1)], bases=(EvalConfig,), frozen=True)
    new_run = dataclasses.make_dataclass(
        "NewRun", [("eval", new_eval, dataclasses.field(default_factory=new_eval))], bases=(RunConfig,), frozen=True)
    assert config_keys(new_run)["eval"][-1] == "umap_knobs"
    assert problems(_phases(), new_run) == [
        "eval.umap_knobs: not stated on a line `umap_knobs = value  # (tag) ...` in [eval]"]
    stated = _phases().replace("\nphase_r2_min", "\numap_knobs = 1          # (ours) a new knob\nphase_r2_min")
    assert problems(stated, new_run) == []
