"""Presets: TOML files -> typed, validated RunConfigs, one per run of a sweep (DESIGN §6).

A preset file::

    name = "increments"          # optional; default: the file's stem (used in run-dir names)
    title = "Fig. 4"             # optional: the paper figure it reproduces
    description = "dx = dy ..."  # optional: one line on what varies
    kind = "train"               # optional: "train" (default) | "overlap" (no training, App. A.5)
    order = 4                    # optional: where the console lists it (by order, then file name; default 100)

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
import dataclasses
import itertools
import math
import re
import sys
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

from labconsole.config import CAPTURES, RunConfig
from model.config import DEVICES, PRECISIONS, PREDICTIONS, SAMPLERS

SECTIONS = tuple(f.name for f in dataclasses.fields(RunConfig))  # data, model, diffusion, train, eval
TOP_KEYS = ("name", "title", "description", "kind", "order")
DEFAULT_ORDER = 100  # presets without an ``order`` are listed after ours, by file name
KINDS = ("train", "overlap")
SEEDS = "seeds"  # [sweep] shorthand for train.seed
SEED_PATH = "train.seed"
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_BARE_KEY_RE = re.compile(r"[A-Za-z0-9_-]+")


# ---------------------------------------------------------------------------------------------
# Public types
# ---------------------------------------------------------------------------------------------


class PresetError(ValueError):
    """A preset or config that cannot be used. ``str()`` is one line: file, key, what is allowed.

    Attributes: ``source`` (the file, or ``--set``), ``key`` (dotted, "" when none applies),
    ``detail`` (the message after the source).
    """

    def __init__(self, source: str, detail: str, key: str = ""):
        self.source, self.detail, self.key = source, _one_line(detail), key
        super().__init__(f"{source}: {self.detail}" if source else self.detail)


@dataclass(frozen=True)
class OverlapConfig:
    """The App. A.5 / Fig. 7b table: overlap of neighbouring bumps vs increment, per sigma."""

    sigmas: tuple[float, ...] = (0.5, 1.0, 2.0, 3.0)  # bump spreads, pixels (ours: the figure's values are lost)
    increments: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)  # neighbour offsets, pixels
    size: int = 32  # canvas side, pixels (paper)
    centre: tuple[float, float] = (16.0, 16.0)  # (x, y) of the reference bump (ours)


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
    runs: list[RunSpec] = field(default_factory=list)
    sweep: tuple[str, ...] = ()  # the sweep entries after overrides, in file order ("seeds" last)
    overlap: OverlapConfig | None = None  # set when kind == "overlap"
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
        the Preset, with one RunSpec per run of the sweep (none for ``kind = "overlap"``).
    Raises:
        PresetError: unreadable file, TOML syntax, unknown section or key, wrong type,
            out-of-range value, bad sweep or override. Its text is one line.
    """
    source = str(path)
    pairs = [parse_override(o) if isinstance(o, str) else tuple(o) for o in overrides]
    pairs = [(f"sweep.{SEEDS}" if p == SEEDS else p, v) for p, v in pairs]  # --set seeds=[0] too
    try:
        with open(path, "rb") as fh:
            raw = tomllib.load(fh)
    except OSError as exc:
        raise PresetError(source, f"cannot read: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise PresetError(source, f"TOML syntax error: {exc}") from None
    loader = _Loader(source, {p for p, _ in pairs})
    try:
        return loader.load(Path(path), raw, pairs)
    except _Problem as problem:
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
                order=top.get("order", DEFAULT_ORDER))


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


def config_to_dict(cfg: RunConfig) -> dict[str, Any]:
    """A RunConfig as nested plain dicts / lists / scalars: for config.toml, checkpoints, events."""
    return _plain(dataclasses.asdict(cfg))


def config_from_dict(data: Mapping[str, Any], source: str = "config") -> RunConfig:
    """Inverse of ``config_to_dict``, with the same checks as a preset; missing keys take the
    current defaults (a checkpoint from before a field was added still loads).

    Raises:
        PresetError: unknown section or key, wrong type, out-of-range value.
    """
    loader = _Loader(source, set())
    try:
        unknown = [k for k in data if k not in SECTIONS]
        if unknown:
            raise _Problem(unknown[0], f"expected one of: {', '.join(SECTIONS)}", unknown=True)
        return loader.run_config(data)
    except _Problem as problem:
        raise loader.error(problem) from None


def load_config(path: str | Path) -> RunConfig:
    """Read a run's ``config.toml`` (as written with ``dump_toml(config_to_dict(cfg))``).

    Raises:
        PresetError: unreadable file, TOML syntax, or any problem ``config_from_dict`` reports.
    """
    try:
        with open(path, "rb") as fh:
            raw = tomllib.load(fh)
    except OSError as exc:
        raise PresetError(str(path), f"cannot read: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise PresetError(str(path), f"TOML syntax error: {exc}") from None
    return config_from_dict(raw, source=str(path))


def dump_toml(data: Mapping[str, Any]) -> str:
    """Write nested dicts of scalars and lists as TOML (enough for configs; no new dependency).

    Scalars come first, then one ``[table]`` per nested dict (``[a.b]`` for deeper ones); dicts
    inside lists become inline tables. ``tomllib.loads(dump_toml(d)) == d`` with tuples as lists.

    Raises:
        TypeError: a value TOML cannot hold (None, objects).
    """
    lines: list[str] = []
    _dump_table(data, (), lines)
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# Loading: raw TOML dicts -> typed dataclasses
# ---------------------------------------------------------------------------------------------


class _Problem(Exception):
    """Internal: what is wrong at a dotted key; ``_Loader.error`` adds the file and context."""

    def __init__(self, key: str, detail: str, *, unknown: bool = False):
        super().__init__(detail)
        self.key, self.detail, self.unknown = key, detail, unknown


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

    def error(self, problem: _Problem) -> PresetError:
        key = problem.key
        base = key.split("[", 1)[0]
        tag = " (--set)" if base in self.override_keys or f"sweep.{base}" in self.override_keys else ""
        if problem.unknown:
            detail = f"unknown key '{key}'{tag}; {problem.detail}"
        elif key:
            detail = f"{key}{tag}: {problem.detail}"
        else:
            detail = problem.detail
        return PresetError(self.source, detail + self.context, key)

    # -- the file ---------------------------------------------------------------------------

    def load(self, path: Path, raw: dict[str, Any], overrides: list[tuple[str, Any]]) -> Preset:
        top = {k: raw.pop(k) for k in TOP_KEYS if k in raw}
        kind = top.get("kind", "train")
        if kind not in KINDS:
            raise _Problem("kind", f"expected one of: {', '.join(KINDS)}, got {_show(kind)}")
        for key in ("name", "title", "description"):
            if key in top and not isinstance(top[key], str):
                raise _Problem(key, f"expected a string, got {_show(top[key])}")
        order = top.get("order", DEFAULT_ORDER)
        if isinstance(order, bool) or not isinstance(order, int):
            raise _Problem("order", f"expected an integer (where the console lists the preset), got {_show(order)}")
        sections = SECTIONS + ("sweep",) if kind == "train" else ("overlap",)
        for key, value in raw.items():
            if key not in sections:
                hint = " (or set kind = \"overlap\")" if key == "overlap" else ""
                allowed = ", ".join(TOP_KEYS + sections)
                raise _Problem(key, f"expected one of: {allowed}{hint}", unknown=True)
            if not isinstance(value, dict):
                raise _Problem(key, f"expected a table [{key}], got {_show(value)}")
        if kind == "overlap":
            return self._load_overlap(path, top, raw, overrides)
        return self._load_train(path, top, raw, overrides)

    def _load_train(self, path, top, raw, overrides) -> Preset:
        axes = self._sweep_axes(_flatten(raw.pop("sweep", {})), overrides)
        fixed = set()
        for opath, value in overrides:
            if opath.startswith("sweep."):
                continue  # applied by _sweep_axes
            if opath in TOP_KEYS:
                top[opath] = self._top_override(opath, value)
                continue
            _field_hint(opath)  # unknown key -> _Problem
            section, key = opath.split(".", 1)
            raw.setdefault(section, {})[key] = value
            fixed.add(opath)
        axes = self._drop_overridden(axes, fixed)
        name = _check_name(top.get("name", path.stem))
        base = self.run_config(raw)  # a bad base value is reported without a sweep context
        runs = self._expand(raw, axes) if axes else [RunSpec(base, "", "")]
        return Preset(**_header(name, path, top), kind="train", runs=runs, sweep=tuple(a.key for a in axes))

    def _top_override(self, key: str, value: Any) -> str:
        if key in ("kind", "order"):
            raise _Problem(key, "cannot be overridden")
        return _expect_str(key, value)

    def _load_overlap(self, path, top, raw, overrides) -> Preset:
        table = dict(raw.get("overlap", {}))
        for opath, value in overrides:
            if opath in TOP_KEYS:
                top[opath] = self._top_override(opath, value)
            elif opath.startswith("overlap.") and opath.count(".") == 1:
                table[opath.split(".", 1)[1]] = value
            else:
                raise _Problem(opath, "expected overlap.<key>, name, title or description for kind = \"overlap\"",
                               unknown=True)
        overlap = _build(OverlapConfig, table, "overlap")
        _check_overlap(overlap)
        name = _check_name(top.get("name", path.stem))
        return Preset(**_header(name, path, top), kind="overlap", overlap=overlap)

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
                _field_hint(p)
            except _Problem as problem:
                raise _Problem(f"sweep.{problem.key}", problem.detail, unknown=True) from None
        if len(set(paths)) != len(paths):
            raise _Problem(f"sweep.{key}", "names a key twice")
        if not isinstance(values, list) or not values:
            raise _Problem(f"sweep.{key}", f"expected a non-empty list of values, got {_show(values)}")
        if len(paths) == 1:
            return _Axis(key, paths, [(v,) for v in values])
        for i, v in enumerate(values):
            if not isinstance(v, list) or len(v) != len(paths):
                raise _Problem(f"sweep.{key}[{i}]",
                               f"expected a list of {len(paths)} values ({', '.join(paths)}), got {_show(v)}")
        return _Axis(key, paths, [tuple(v) for v in values])

    def _drop_overridden(self, axes: list[_Axis], fixed: set[str]) -> list[_Axis]:
        kept = []
        for axis in axes:
            hit = [p for p in axis.paths if p in fixed]
            if not hit:
                kept.append(axis)
            elif len(hit) < len(axis.paths):
                others = ", ".join(p for p in axis.paths if p not in fixed)
                raise _Problem(hit[0], f"is swept together with {others} in [sweep] '{axis.key}'; "
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
            cfg = self.run_config(run_raw)
            typed = tuple(tuple(_get(cfg, p) for p in a.paths) for a in axes)  # 1 -> 1.0, lists -> tuples
            params = {p: v for a, vals in zip(axes, typed) for p, v in zip(a.paths, vals)}
            runs.append(RunSpec(cfg, _label(axes, typed, names, skip=()),
                                _label(axes, typed, names, skip=(SEED_PATH,)), params))
        self.context = ""
        return runs

    # -- one config ---------------------------------------------------------------------------

    def run_config(self, raw: Mapping[str, Any]) -> RunConfig:
        parts = {}
        for section in SECTIONS:
            table = raw.get(section, {})
            if not isinstance(table, Mapping):
                raise _Problem(section, f"expected a table [{section}], got {_show(table)}")
            cls = typing.get_type_hints(RunConfig)[section]
            parts[section] = _build(cls, table, section)
        cfg = RunConfig(**parts)
        _check_run(cfg)
        return cfg


def _build(cls: type, table: Mapping[str, Any], where: str) -> Any:
    """Build the frozen dataclass ``cls`` from a dict, checking keys and types by its hints."""
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in table.items():
        if key not in hints:
            raise _Problem(f"{where}.{key}", f"expected one of: {', '.join(names)}", unknown=True)
        kwargs[key] = _coerce(value, hints[key], f"{where}.{key}")
    return cls(**kwargs)


def _coerce(value: Any, hint: Any, key: str) -> Any:
    """Check ``value`` against a field's type hint; ints are accepted as floats, lists as tuples."""
    if hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
    elif hint is str:
        if isinstance(value, str):
            return value
    elif typing.get_origin(hint) is tuple:
        args = typing.get_args(hint)
        if isinstance(value, (list, tuple)):
            if len(args) == 2 and args[1] is Ellipsis:
                return tuple(_coerce(v, args[0], f"{key}[{i}]") for i, v in enumerate(value))
            if len(value) == len(args):
                return tuple(_coerce(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
    else:
        raise TypeError(f"config field {key} has a type presets cannot load: {hint!r}")
    raise _Problem(key, f"expected {_describe(hint, key)}, got {_show(value)}")


_TYPE_NAMES = {bool: ("true or false", "booleans"), int: ("an integer", "integers"),
               float: ("a number", "numbers"), str: ("a string", "strings")}
_FIELD_NAMES = {"data.holes": "a list of [x0, y0, x1, y1] rectangles"}  # clearer than the type


def _describe(hint: Any, key: str = "", plural: bool = False) -> str:
    if key in _FIELD_NAMES:
        return _FIELD_NAMES[key]
    if hint in _TYPE_NAMES:
        return _TYPE_NAMES[hint][plural]
    args = typing.get_args(hint)
    if len(args) == 2 and args[1] is Ellipsis:
        inner = f"list of {_describe(args[0], plural=True)}"
    elif len(set(args)) == 1:
        inner = f"list of {len(args)} {_describe(args[0], plural=True)}"
    else:
        inner = f"list [{', '.join(_describe(a) for a in args)}]"
    return f"{inner}s" if plural else f"a {inner}"


def _field_hint(path: str) -> Any:
    """The type hint of a dotted RunConfig path, e.g. ``train.steps`` -> int."""
    section, _, key = path.partition(".")
    if section not in SECTIONS or not key:
        raise _Problem(path, f"expected SECTION.KEY with SECTION one of: {', '.join(SECTIONS)} "
                             f"(or seeds in [sweep])", unknown=True)
    cls = typing.get_type_hints(RunConfig)[section]
    hints = typing.get_type_hints(cls)
    if key not in hints:
        names = [f.name for f in dataclasses.fields(cls)]
        raise _Problem(path, f"expected one of: {', '.join(names)}", unknown=True)
    return hints[key]


def _get(cfg: RunConfig, path: str) -> Any:
    section, key = path.split(".", 1)
    return getattr(getattr(cfg, section), key)


def _check_disjoint(axes: list[_Axis]) -> None:
    owner: dict[str, str] = {}
    for axis in axes:
        for p in axis.paths:
            if p in owner:
                raise _Problem(f"sweep.{axis.key}", f"{p} is already swept by '{owner[p]}'; sweep each key once")
            owner[p] = axis.key


# ---------------------------------------------------------------------------------------------
# Validation: ranges and relations the types cannot express
# ---------------------------------------------------------------------------------------------


def _require(key: str, value: Any, ok: bool, allowed: str) -> None:
    if not ok:
        raise _Problem(key, f"expected {allowed}, got {_show(value)}")


def _one_of(key: str, value: Any, choices: Iterable[str]) -> None:
    choices = tuple(choices)
    _require(key, value, value in choices, f"one of: {', '.join(choices)}")


def _positive_int(key: str, value: int) -> None:
    _require(key, value, value > 0, "a positive integer")


def _fraction(key: str, value: float) -> None:
    _require(key, value, 0.0 <= value <= 1.0, "a number in [0, 1]")


def _check_run(cfg: RunConfig) -> None:
    _check_data(cfg.data)
    _check_model(cfg.model)
    _check_diffusion(cfg.diffusion)
    _check_train(cfg.train)
    _check_eval(cfg.eval, cfg.diffusion.T)


def _check_data(d) -> None:
    _require("data.size", d.size, d.size >= 8 and d.size % 8 == 0,
             "a positive multiple of 8 (the UNet halves the image 3 times)")
    for key in ("dx", "dy"):
        value = getattr(d, key)
        _require(f"data.{key}", value, 0 < value < d.size, f"a positive number below data.size ({d.size})")
    _require("data.sigma", d.sigma, d.sigma > 0, "a positive number")
    _require("data.margin", d.margin, 0 <= d.margin < d.size / 2, f"a number in [0, {d.size / 2:g})")
    for i, (x0, y0, x1, y1) in enumerate(d.holes):
        inside = all(0 <= v <= d.size for v in (x0, y0, x1, y1))
        _require(f"data.holes[{i}]", [x0, y0, x1, y1], inside and x0 < x1 and y0 < y1,
                 f"[x0, y0, x1, y1] with 0 <= x0 < x1 <= {d.size} and 0 <= y0 < y1 <= {d.size}")


def _check_model(m) -> None:
    _one_of("model.size", m.size, _model_sizes())


def _model_sizes() -> tuple[str, ...]:
    """The named UNet sizes (model.config: torch-free, so validating a preset loads no torch)."""
    from model.config import SIZES

    return tuple(SIZES)


def _check_diffusion(df) -> None:
    _require("diffusion.T", df.T, df.T >= 2, "an integer >= 2")
    _require("diffusion.beta_start", df.beta_start, 0 < df.beta_start < 1, "a number in (0, 1)")
    _require("diffusion.beta_end", df.beta_end, df.beta_start < df.beta_end < 1,
             f"a number in (beta_start = {df.beta_start:g}, 1)")
    _one_of("diffusion.prediction", df.prediction, PREDICTIONS)


def _check_train(t) -> None:
    for key in ("steps", "batch_size", "eval_every", "checkpoint_every", "log_every"):
        _positive_int(f"train.{key}", getattr(t, key))
    _require("train.lr", t.lr, t.lr > 0, "a positive number")
    for key in ("warmup_steps", "threads", "seed"):
        _require(f"train.{key}", getattr(t, key), getattr(t, key) >= 0, "an integer >= 0")
    for key in ("weight_decay", "grad_clip"):
        _require(f"train.{key}", getattr(t, key), getattr(t, key) >= 0, "a number >= 0")
    _require("train.ema", t.ema, 0 <= t.ema < 1, "a number in [0, 1) (0 = off)")
    for i, step in enumerate(t.eval_at):
        # Steps past train.steps are allowed and simply never reached, like an eval_every larger
        # than the run: `--set train.steps=40` must shrink a preset with dense early evals.
        _require(f"train.eval_at[{i}]", step, step >= 0, "a step >= 0")
    _one_of("train.device", t.device, DEVICES)
    _one_of("train.precision", t.precision, PRECISIONS)


def _check_eval(e, T: int) -> None:
    _positive_int("eval.n_samples", e.n_samples)
    _require("eval.n_ood", e.n_ood, e.n_ood >= 0, "an integer >= 0")
    _one_of("eval.sampler", e.sampler, SAMPLERS)
    _require("eval.ddim_steps", e.ddim_steps, 1 <= e.ddim_steps <= T, f"an integer in [1, diffusion.T = {T}]")
    _require("eval.capture_t", e.capture_t, 0 <= e.capture_t < T, f"an integer in [0, diffusion.T = {T})")
    _one_of("eval.capture", e.capture, CAPTURES)
    _require("eval.tolerance", e.tolerance, e.tolerance > 0, "a positive number of pixels")
    _require("eval.umap_neighbors", e.umap_neighbors, 2 <= e.umap_neighbors < e.n_samples,
             f"an integer in [2, eval.n_samples = {e.n_samples})")
    _fraction("eval.umap_min_dist", e.umap_min_dist)
    _require("eval.seed", e.seed, e.seed >= 0, "an integer >= 0")
    for key in ("phase_single_min", "phase_accuracy_frac", "phase_r2_min"):
        _fraction(f"eval.{key}", getattr(e, key))


def _check_overlap(o: OverlapConfig) -> None:
    _require("overlap.size", o.size, o.size > 0, "a positive integer")
    _require("overlap.sigmas", list(o.sigmas), len(o.sigmas) > 0 and all(s > 0 for s in o.sigmas),
             "a non-empty list of positive numbers")
    _require("overlap.increments", list(o.increments),
             len(o.increments) > 0 and all(0 < v < o.size for v in o.increments),
             f"a non-empty list of numbers in (0, overlap.size = {o.size})")
    _require("overlap.centre", list(o.centre), all(0 <= v <= o.size for v in o.centre),
             f"[x, y] inside the canvas [0, {o.size}]")


# ---------------------------------------------------------------------------------------------
# Small helpers: labels, display, TOML writing
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


def _show(value: Any, limit: int = 60) -> str:
    """A value for an error message: short, one line, with its type when it is not obvious."""
    text = repr(value)
    if isinstance(value, str):
        text = f"{text} (a string)" if value.strip() and _looks_numeric(value) else text
    elif isinstance(value, dict):
        text = "a table"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _looks_numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return text.lower() in ("true", "false")
    return True


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _check_name(name: str) -> str:
    if not _NAME_RE.fullmatch(name):
        raise _Problem("name", f"expected letters, digits, '.', '_' or '-' (a run-dir name), got {name!r}")
    return name


def _expect_str(key: str, value: Any) -> str:
    if not isinstance(value, str):
        raise _Problem(key, f"expected a string, got {_show(value)}")
    return value


def _flatten(table: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"data": {"dx": [..]}}`` (TOML's unquoted dotted keys) -> ``{"data.dx": [..]}``."""
    out: dict[str, Any] = {}
    for key, value in table.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _dump_table(table: Mapping[str, Any], prefix: tuple[str, ...], lines: list[str]) -> None:
    scalars = [(k, v) for k, v in table.items() if not isinstance(v, Mapping)]
    tables = [(k, v) for k, v in table.items() if isinstance(v, Mapping)]
    if prefix and (scalars or not tables):  # an empty table still gets its header, so it exists
        if lines:
            lines.append("")
        lines.append("[" + ".".join(_toml_key(k) for k in prefix) + "]")
    for key, value in scalars:
        lines.append(f"{_toml_key(key)} = {_toml_value(value)}")
    for key, value in tables:
        _dump_table(value, prefix + (key,), lines)


def _toml_key(key: str) -> str:
    return key if _BARE_KEY_RE.fullmatch(key) else _toml_str(key)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)  # shortest round-trip form; inf / nan / 1e-05 are valid TOML
    if isinstance(value, str):
        return _toml_str(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {type(value).__name__} {value!r} as TOML")


_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def _toml_str(text: str) -> str:
    out = []
    for ch in text:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:  # TOML forbids raw control characters
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'

