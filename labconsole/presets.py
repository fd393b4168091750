"""Presets: TOML files -> typed, validated RunConfigs, one per run of a sweep (DESIGN §6).

This module reads preset FILES (top keys, sections, ``--set`` overrides, the sweep and its run
labels, the tables of the no-training kinds); building, validating and serialising one RunConfig is
``labconsole.runconfig``'s job, and ``PresetError`` comes from there.

A preset file::

    name = "increments"          # optional; default: the file's stem (used in run-dir names)
    title = "Fig. 4"             # optional: the paper figure it reproduces
    description = "dx = dy ..."  # optional: one line on what varies
    kind = "train"               # optional: "train" (default) | "overlap" (no training, App. A.5)
                                 #   | "percolation" (no training, the follow-up's Figs. 6c, 14b)
    order = 4                    # optional: where the console lists it (by order, then file name; default 100)
    mini = "increments-mini"     # optional: its CPU miniature, a preset file beside it (named by cost estimates)

    [data] / [model] / [diffusion] / [train] / [eval]   # fields of RunConfig's parts

    [sweep]                      # the grid: the cartesian product of every list below
    "data.sigma" = [0.5, 1.0]    # a dotted config path and its values
    "data.dx,data.dy" = [[0.1, 0.1], [0.5, 0.5]]   # linked keys: swept together, one tuple per run
    seeds = [0, 1, 2]            # shorthand for "train.seed"; seeds vary fastest

A value in a section is the base of every run; a swept key's sweep values win over it.

Overrides (``--set PATH=VALUE``, the value read as TOML, else as a bare string) apply after the
file and before the sweep expands:

- ``--set train.steps=2000`` fixes that key in every run. If the key is swept, its sweep entry is
  removed (the override *replaces* the sweep for that key: fewer runs). A key swept together with
  others (a linked entry) can only be overridden together with all of them; otherwise the
  override is rejected, naming the others. ``--set train.seed=3`` replaces ``seeds``.
- ``--set sweep.PATH=[...]`` replaces (or adds) the sweep entry ``PATH`` itself, e.g.
  ``--set sweep.seeds=[0]`` or ``--set 'sweep.data.dx,data.dy=[[0.5,0.5]]'``.
- ``--set name=...``, ``title=...``, ``description=...`` replace the top-level strings.

Every problem raises ``PresetError``, whose text is one line naming the file, the key and what is
allowed, e.g. ``presets/x.toml: train.steps: expected a positive integer, got -5``.
"""
from __future__ import annotations

import copy
import itertools
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

from labconsole.config import RunConfig
from labconsole.runconfig import (  # the one route for a run config; PresetError re-exported here
    SECTIONS, ConfigProblem, PresetError, build_config, build_dataclass, field_hint, read_toml, require, show,
)

TOP_KEYS = ("name", "title", "description", "kind", "order", "mini")
DEFAULT_ORDER = 100  # presets without an ``order`` are listed after ours, by file name
KINDS = ("train", "overlap", "percolation")  # the last two: one [<kind>] table, no runs
SEEDS = "seeds"  # [sweep] shorthand for train.seed
SEED_PATH = "train.seed"
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


# ---------------------------------------------------------------------------------------------
# Public types
# ---------------------------------------------------------------------------------------------



@dataclass(frozen=True)
class OverlapConfig:
    """The App. A.5 / Fig. 7b table: overlap of neighbouring bumps vs increment, per sigma."""

    sigmas: tuple[float, ...] = (0.5, 1.0, 2.0, 3.0)  # bump spreads, pixels (ours: the figure's values are lost)
    increments: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)  # neighbour offsets, pixels
    size: int = 32  # canvas side, pixels (paper)
    centre: tuple[float, float] = (16.0, 16.0)  # (x, y) of the reference bump (ours)


@dataclass(frozen=True)
class PercolationConfig:
    """The follow-up's Figs. 6c / 14b (``labconsole.percolation``): the share of the data in the
    largest connected cluster against lambda, the fraction of lattice sites kept, per sigma and
    overlap threshold; two kept sites are joined when their bumps overlap more than the threshold."""

    sigmas: tuple[float, ...] = (0.5, 1.0, 2.0, 3.0)  # bump spreads, pixels (ours: the figures' values are lost)
    thresholds: tuple[float, ...] = (0.005, 0.05)  # join above this overlap (paper: Fig. 6c, Fig. 14b)
    lambdas: tuple[float, ...] = (0.01, 0.02, 0.03, 0.05, 0.07, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.7,
                                  0.8, 0.9, 1.0)  # fractions of the lattice kept (ours: the grid is lost)
    d: float = 1.0  # lattice spacing = the data increment, pixels (ours)
    size: int = 32  # canvas side, pixels (paper)
    draws: int = 20  # random subsets per lambda (ours)
    seed: int = 0  # the subsets' seed (ours)
    overlap: str = "images"  # a pair's overlap: "images" (rendered pixels) | "gaussian" (closed form) (ours)
    denominator: str = "kept"  # the share's denominator: "kept" sites | "all" lattice sites (ours)


@dataclass(frozen=True)
class RunSpec:
    """One run of a preset: its config and what distinguishes it from the other runs."""

    config: RunConfig
    label: str  # what varies, e.g. "dx=dy=0.5 seed=1"; "" for a preset without a sweep
    setting: str  # the label without the seed: runs sharing it are seeds of one setting
    params: Mapping[str, Any] = field(default_factory=dict)  # swept dotted path -> this run's value


@dataclass(frozen=True)
class Preset:
    """A loaded preset file. ``error`` is set (and ``runs`` empty) only by ``list_presets``."""

    name: str
    path: Path
    title: str = ""
    description: str = ""
    kind: str = "train"
    order: int = DEFAULT_ORDER
    mini: str = ""  # the stem of its CPU miniature's file, beside it ("" = none: it is CPU-sized itself)
    runs: list[RunSpec] = field(default_factory=list)
    sweep: tuple[str, ...] = ()  # the sweep entries after overrides, in file order ("seeds" last)
    overlap: OverlapConfig | None = None  # set when kind == "overlap"
    percolation: PercolationConfig | None = None  # set when kind == "percolation"
    error: str = ""


# ---------------------------------------------------------------------------------------------
# Public functions
# ---------------------------------------------------------------------------------------------


def load_preset(path: str | Path, overrides: Iterable[str | tuple[str, Any]] = ()) -> Preset:
    """Read, override, validate and expand a preset file (see the module docstring).

    Args:
        path: the TOML file.
        overrides: ``"PATH=VALUE"`` strings (as given to ``--set``) or parsed ``(path, value)`` pairs.
    Returns:
        the Preset, with one RunSpec per run of the sweep (none for ``kind = "overlap"`` or
        ``"percolation"``).
    Raises:
        PresetError: unreadable file, TOML syntax, unknown section or key, wrong type,
            out-of-range value, bad sweep or override. Its text is one line.
    """
    source = str(path)
    pairs = [parse_override(o) if isinstance(o, str) else tuple(o) for o in overrides]
    pairs = [(f"sweep.{SEEDS}" if p == SEEDS else p, v) for p, v in pairs]  # --set seeds=[0] too
    raw = read_toml(path)
    loader = _Loader(source, {p for p, _ in pairs})
    try:
        return loader.load(Path(path), raw, pairs)
    except ConfigProblem as problem:
        raise loader.error(problem) from None


def parse_override(text: str) -> tuple[str, Any]:
    """Split ``"train.steps=2000"`` into ``("train.steps", 2000)``.

    The value is read as a TOML value (``2000``, ``0.5``, ``true``, ``[0, 1]``, ``"x"``); one that is
    not valid TOML is taken as a bare string (``model.size=small`` -> ``"small"``).

    Raises:
        PresetError: no ``=`` or an empty path.
    """
    path, sep, value = text.partition("=")
    path = path.strip()
    if not sep or not path or not re.fullmatch(r"[A-Za-z0-9_.,-]+", path):
        raise PresetError("--set", f"expected PATH=VALUE (e.g. train.steps=2000), got {text!r}")
    value = value.strip()
    try:
        return path, tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        return path, value


def _header(name: str, path: Path, top: dict[str, Any]) -> dict[str, Any]:
    """The Preset fields every kind takes from the file's top-level keys (checked by the loader)."""
    return dict(name=name, path=path, title=top.get("title", ""), description=top.get("description", ""),
                order=top.get("order", DEFAULT_ORDER), mini=top.get("mini", ""))


def list_presets(directory: str | Path) -> list[Preset]:
    """Every ``*.toml`` of a directory, by ``order`` then file name (the quick demo first, then the
    paper's figures in their order). A file that does not load is returned with its one-line
    ``error`` (and no runs), never raised: the console shows it."""
    out = []
    for path in sorted(Path(directory).glob("*.toml")):
        try:
            out.append(load_preset(path))
        except PresetError as exc:
            out.append(Preset(name=path.stem, path=path, error=str(exc)))
    return sorted(out, key=lambda p: p.order)  # stable: file names order equal ``order``s


# ---------------------------------------------------------------------------------------------
# Loading: a file's raw dicts -> a Preset (one config is built by labconsole.runconfig)
# ---------------------------------------------------------------------------------------------


@dataclass
class _Axis:
    """One [sweep] entry: its key as written, the config paths it sets, one tuple per value."""

    key: str
    paths: tuple[str, ...]
    values: list[tuple[Any, ...]]


class _Loader:
    """Turns one file's raw dicts into a Preset; remembers the file and the --set keys for errors."""

    def __init__(self, source: str, override_keys: set[str]):
        self.source = source
        self.override_keys = override_keys
        self.context = ""  # " (sweep run '...')" while expanding a sweep

    def error(self, problem: ConfigProblem) -> PresetError:
        """The PresetError of ``problem``: this file, " (--set)" after a key that came from an
        override, and the sweep run being expanded."""
        base = problem.key.split("[", 1)[0]
        tag = " (--set)" if base in self.override_keys or f"sweep.{base}" in self.override_keys else ""
        return problem.error(self.source, tag=tag, context=self.context)

    # -- the file ---------------------------------------------------------------------------

    def load(self, path: Path, raw: dict[str, Any], overrides: list[tuple[str, Any]]) -> Preset:
        top = {k: raw.pop(k) for k in TOP_KEYS if k in raw}
        kind = top.get("kind", "train")
        if kind not in KINDS:
            raise ConfigProblem("kind", f"expected one of: {', '.join(KINDS)}, got {show(kind)}")
        for key in ("name", "title", "description", "mini"):
            if key in top and not isinstance(top[key], str):
                raise ConfigProblem(key, f"expected a string, got {show(top[key])}")
        order = top.get("order", DEFAULT_ORDER)
        if isinstance(order, bool) or not isinstance(order, int):
            raise ConfigProblem("order", "expected an integer (where the console lists the preset), "
                                         f"got {show(order)}")
        sections = SECTIONS + ("sweep",) if kind == "train" else (kind,)
        for key, value in raw.items():
            if key not in sections:
                hint = f" (or set kind = \"{key}\")" if key in KINDS[1:] else ""
                allowed = ", ".join(TOP_KEYS + sections)
                raise ConfigProblem(key, f"expected one of: {allowed}{hint}", unknown=True)
            if not isinstance(value, dict):
                raise ConfigProblem(key, f"expected a table [{key}], got {show(value)}")
        if kind != "train":
            return self._load_table(kind, path, top, raw, overrides)
        return self._load_train(path, top, raw, overrides)

    def _load_train(self, path, top, raw, overrides) -> Preset:
        axes = self._sweep_axes(flatten(raw.pop("sweep", {})), overrides)
        fixed = set()
        for opath, value in overrides:
            if opath.startswith("sweep."):
                continue  # applied by _sweep_axes
            if opath in TOP_KEYS:
                top[opath] = self._top_override(opath, value)
                continue
            field_hint(opath)  # unknown key -> ConfigProblem
            section, key = opath.split(".", 1)
            raw.setdefault(section, {})[key] = value
            fixed.add(opath)
        axes = self._drop_overridden(axes, fixed)
        name = _check_name(top.get("name", path.stem))
        base = build_config(raw)  # a bad base value is reported without a sweep context
        runs = self._expand(raw, axes) if axes else [RunSpec(base, "", "")]
        return Preset(**_header(name, path, top), kind="train", runs=runs, sweep=tuple(a.key for a in axes))

    def _top_override(self, key: str, value: Any) -> str:
        if key in ("kind", "order", "mini"):
            raise ConfigProblem(key, "cannot be overridden")
        return _expect_str(key, value)

    def _load_table(self, kind, path, top, raw, overrides) -> Preset:
        """A no-training kind: its one [<kind>] table (``_TABLES``), with ``--set <kind>.KEY=...``."""
        table = dict(raw.get(kind, {}))
        for opath, value in overrides:
            if opath in TOP_KEYS:
                top[opath] = self._top_override(opath, value)
            elif opath.startswith(f"{kind}.") and opath.count(".") == 1:
                table[opath.split(".", 1)[1]] = value
            else:
                raise ConfigProblem(opath, f"expected {kind}.<key>, name, title or description for "
                                           f"kind = \"{kind}\"", unknown=True)
        cls, check = _TABLES[kind]
        cfg = build_dataclass(cls, table, kind)
        check(cfg)
        name = _check_name(top.get("name", path.stem))
        return Preset(**_header(name, path, top), kind=kind, **{kind: cfg})

    # -- the sweep --------------------------------------------------------------------------

    def _sweep_axes(self, table: dict[str, Any], overrides: list[tuple[str, Any]]) -> list[_Axis]:
        """The [sweep] entries, with ``--set sweep.KEY=[...]`` replacing or adding entries."""
        axes = [self._axis(key, values) for key, values in table.items()]
        for opath, value in overrides:
            if opath.startswith("sweep."):
                new = self._axis(opath[len("sweep."):], value)
                same = [i for i, a in enumerate(axes) if set(a.paths) == set(new.paths)]
                if same:
                    axes[same[0]] = new  # keep the file's order of sweep entries
                else:
                    axes.append(new)
        axes.sort(key=lambda a: a.paths == (SEED_PATH,))  # seeds last: they vary fastest
        _check_disjoint(axes)
        return axes

    def _axis(self, key: str, values: Any) -> _Axis:
        paths = tuple(SEED_PATH if p.strip() == SEEDS else p.strip() for p in key.split(","))
        for p in paths:
            try:
                field_hint(p)
            except ConfigProblem as problem:
                raise ConfigProblem(f"sweep.{problem.key}", problem.detail, unknown=True) from None
        if len(set(paths)) != len(paths):
            raise ConfigProblem(f"sweep.{key}", "names a key twice")
        if not isinstance(values, list) or not values:
            raise ConfigProblem(f"sweep.{key}", f"expected a non-empty list of values, got {show(values)}")
        if len(paths) == 1:
            return _Axis(key, paths, [(v,) for v in values])
        for i, v in enumerate(values):
            if not isinstance(v, list) or len(v) != len(paths):
                raise ConfigProblem(f"sweep.{key}[{i}]",
                                    f"expected a list of {len(paths)} values ({', '.join(paths)}), got {show(v)}")
        return _Axis(key, paths, [tuple(v) for v in values])

    def _drop_overridden(self, axes: list[_Axis], fixed: set[str]) -> list[_Axis]:
        kept = []
        for axis in axes:
            hit = [p for p in axis.paths if p in fixed]
            if not hit:
                kept.append(axis)
            elif len(hit) < len(axis.paths):
                others = ", ".join(p for p in axis.paths if p not in fixed)
                raise ConfigProblem(hit[0], f"is swept together with {others} in [sweep] '{axis.key}'; "
                                            f"override all of them, or replace the sweep with "
                                            f"--set 'sweep.{axis.key}=[...]'")
        return kept

    def _expand(self, raw: dict[str, Any], axes: list[_Axis]) -> list[RunSpec]:
        names = _short_names([p for a in axes for p in a.paths])
        runs = []
        for combo in itertools.product(*(a.values for a in axes)):
            self.context = f" (sweep run '{_label(axes, combo, names, skip=())}')"
            run_raw = copy.deepcopy(raw)
            for axis, values in zip(axes, combo):
                for p, v in zip(axis.paths, values):
                    section, key = p.split(".", 1)
                    run_raw.setdefault(section, {})[key] = v
            cfg = build_config(run_raw)
            typed = tuple(tuple(_get(cfg, p) for p in a.paths) for a in axes)  # 1 -> 1.0, lists -> tuples
            params = {p: v for a, vals in zip(axes, typed) for p, v in zip(a.paths, vals)}
            runs.append(RunSpec(cfg, _label(axes, typed, names, skip=()),
                                _label(axes, typed, names, skip=(SEED_PATH,)), params))
        self.context = ""
        return runs


def _get(cfg: RunConfig, path: str) -> Any:
    section, key = path.split(".", 1)
    return getattr(getattr(cfg, section), key)


def _check_disjoint(axes: list[_Axis]) -> None:
    owner: dict[str, str] = {}
    for axis in axes:
        for p in axis.paths:
            if p in owner:
                raise ConfigProblem(f"sweep.{axis.key}",
                                    f"{p} is already swept by '{owner[p]}'; sweep each key once")
            owner[p] = axis.key


# ---------------------------------------------------------------------------------------------
# Validation of the no-training kinds' tables (a run config's checks are in labconsole.runconfig)
# ---------------------------------------------------------------------------------------------


def _check_overlap(o: OverlapConfig) -> None:
    require("overlap.size", o.size, o.size > 0, "a positive integer")
    require("overlap.sigmas", list(o.sigmas), len(o.sigmas) > 0 and all(s > 0 for s in o.sigmas),
            "a non-empty list of positive numbers")
    require("overlap.increments", list(o.increments),
            len(o.increments) > 0 and all(0 < v < o.size for v in o.increments),
            f"a non-empty list of numbers in (0, overlap.size = {o.size})")
    require("overlap.centre", list(o.centre), all(0 <= v <= o.size for v in o.centre),
            f"[x, y] inside the canvas [0, {o.size}]")


def _check_percolation(p: PercolationConfig) -> None:
    require("percolation.size", p.size, p.size > 0, "a positive integer")
    require("percolation.d", p.d, 0 < p.d < p.size, f"a number in (0, percolation.size = {p.size})")
    require("percolation.sigmas", list(p.sigmas), len(p.sigmas) > 0 and all(s > 0 for s in p.sigmas),
            "a non-empty list of positive numbers")
    require("percolation.thresholds", list(p.thresholds),
            len(p.thresholds) > 0 and all(0 < t < 1 for t in p.thresholds), "a non-empty list of numbers in (0, 1)")
    lams = list(p.lambdas)
    require("percolation.lambdas", lams, len(lams) > 0 and all(0 < v <= 1 for v in lams)
            and all(a < b for a, b in zip(lams, lams[1:])), "a non-empty increasing list of numbers in (0, 1]")
    require("percolation.draws", p.draws, p.draws > 0, "a positive integer")
    require("percolation.seed", p.seed, p.seed >= 0, "a non-negative integer")
    require("percolation.overlap", p.overlap, p.overlap in ("images", "gaussian"), "one of: images, gaussian")
    require("percolation.denominator", p.denominator, p.denominator in ("kept", "all"), "one of: kept, all")


_TABLES = {"overlap": (OverlapConfig, _check_overlap), "percolation": (PercolationConfig, _check_percolation)}


# ---------------------------------------------------------------------------------------------
# Small helpers: labels, names, dotted keys
# ---------------------------------------------------------------------------------------------


def _short_names(paths: list[str]) -> dict[str, str]:
    """``data.dx`` -> ``dx`` unless two swept paths share a last part; then the full path."""
    last = [p.rsplit(".", 1)[-1] for p in paths]
    return {p: (n if last.count(n) == 1 else p) for p, n in zip(paths, last)}


def _label(axes: list[_Axis], combo: tuple, names: dict[str, str], skip: tuple[str, ...]) -> str:
    parts = []
    for axis, values in zip(axes, combo):
        kept = [(p, v) for p, v in zip(axis.paths, values) if p not in skip]
        if not kept:
            continue
        if len(kept) > 1 and all(v == kept[0][1] for _, v in kept):
            parts.append("=".join(names[p] for p, _ in kept) + f"={_fmt(kept[0][1])}")
        else:
            parts.extend(f"{names[p]}={_fmt(v)}" for p, v in kept)
    return " ".join(parts)


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_fmt(v) for v in value) + "]"
    return str(value)


def _check_name(name: str) -> str:
    if not _NAME_RE.fullmatch(name):
        raise ConfigProblem("name", f"expected letters, digits, '.', '_' or '-' (a run-dir name), got {name!r}")
    return name


def _expect_str(key: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ConfigProblem(key, f"expected a string, got {show(value)}")
    return value


def flatten(table: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"data": {"dx": [..]}}`` (TOML's unquoted dotted keys) -> ``{"data.dx": [..]}``."""
    out: dict[str, Any] = {}
    for key, value in table.items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


