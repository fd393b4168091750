"""The one route in and out of a RunConfig: build and validate it, serialise it (DESIGN §6).

``labconsole.config`` declares what a run config *is* (frozen dataclasses with their paper / ours
tags); this module is the edge where untyped data meets it:

- ``config_from_dict`` / ``build_config``: a mapping (a preset's tables, a checkpoint's ``config``,
  a ``config.toml``) -> RunConfig. Unknown keys and wrong types are rejected, ints are accepted as
  floats and lists as tuples, then the ``_check_*`` validators enforce the ranges and relations
  the types cannot express.
- ``config_to_dict``: the inverse, plain dicts / lists / scalars for events and checkpoints.
- ``dumps_config`` / ``write_config`` / ``load_config``: ``config.toml``, written with tomli-w and
  read with tomllib; a config is validated before it is written, so every file written loads.

Every problem raises ``PresetError``: one line naming the source, the key and what is allowed,
e.g. ``presets/x.toml: train.steps: expected a positive integer, got -5``. ``presets.py`` loads
preset files on top of this and reuses ``ConfigProblem``, ``build_dataclass``, ``field_hint``,
``require``, ``read_toml`` and ``show`` for the keys only a preset has (sweeps, overlap tables).
"""
from __future__ import annotations

import dataclasses
import math
import sys
import typing
from pathlib import Path
from typing import Any, Iterable, Mapping

import tomli_w

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

from labconsole.config import CAPTURES, RunConfig
from labconsole.rundir import CONFIG
from model.config import DEVICES, KINDS, PRECISIONS, PREDICTIONS, SAMPLERS

SECTIONS = tuple(f.name for f in dataclasses.fields(RunConfig))  # data, model, diffusion, train, eval
MAX_UMAP_SEEDS = 25  # eval.umap_seeds above this buys no precision worth its time (each fit ~0.5 s)


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------


class PresetError(ValueError):
    """A preset or config that cannot be used. ``str()`` is one line: file, key, what is allowed.

    Attributes: ``source`` (the file, or ``--set``), ``key`` (dotted, "" when none applies),
    ``detail`` (the message after the source).
    """

    def __init__(self, source: str, detail: str, key: str = ""):
        self.source, self.detail, self.key = source, _one_line(detail), key
        super().__init__(f"{source}: {self.detail}" if source else self.detail)


class ConfigProblem(Exception):
    """What is wrong at a dotted key, before the caller knows the source to name.

    Raised by the builders and validators; the caller turns it into a PresetError with ``error``.
    ``unknown`` marks a key that does not exist (its detail lists the keys that do).
    """

    def __init__(self, key: str, detail: str, *, unknown: bool = False):
        super().__init__(detail)
        self.key, self.detail, self.unknown = key, detail, unknown

    def error(self, source: str, *, tag: str = "", context: str = "") -> PresetError:
        """The PresetError for ``source``; ``tag`` follows the key (" (--set)"), ``context`` ends the line."""
        if self.unknown:
            detail = f"unknown key '{self.key}'{tag}; {self.detail}"
        elif self.key:
            detail = f"{self.key}{tag}: {self.detail}"
        else:
            detail = self.detail
        return PresetError(source, detail + context, self.key)


# ---------------------------------------------------------------------------------------------
# Public functions
# ---------------------------------------------------------------------------------------------


def config_to_dict(cfg: RunConfig) -> dict[str, Any]:
    """A RunConfig as nested plain dicts / lists / scalars: for config.toml, checkpoints, events."""
    return _plain(dataclasses.asdict(cfg))


def config_from_dict(data: Mapping[str, Any], source: str = "config") -> RunConfig:
    """Inverse of ``config_to_dict``, with the same checks as a preset; missing keys take the
    current defaults (a checkpoint from before a field was added still loads).

    Raises:
        PresetError: unknown section or key, wrong type, out-of-range value; named after ``source``.
    """
    try:
        unknown = [k for k in data if k not in SECTIONS]
        if unknown:
            raise ConfigProblem(unknown[0], f"expected one of: {', '.join(SECTIONS)}", unknown=True)
        return build_config(data)
    except ConfigProblem as problem:
        raise problem.error(source) from None


def build_config(raw: Mapping[str, Any]) -> RunConfig:
    """Build and validate a RunConfig from its section tables (absent sections take defaults).

    Keys outside SECTIONS are the caller's to reject (a preset also has top keys and a sweep).

    Raises:
        ConfigProblem: a section that is not a table, unknown key, wrong type, out-of-range value.
    """
    parts = {}
    for section in SECTIONS:
        table = raw.get(section, {})
        if not isinstance(table, Mapping):
            raise ConfigProblem(section, f"expected a table [{section}], got {show(table)}")
        parts[section] = build_dataclass(typing.get_type_hints(RunConfig)[section], table, section)
    cfg = RunConfig(**parts)
    _check_run(cfg)
    return cfg


def read_toml(path: str | Path) -> dict[str, Any]:
    """The parsed TOML file at ``path``.

    Raises:
        PresetError: unreadable file or TOML syntax, naming the file.
    """
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except OSError as exc:
        raise PresetError(str(path), f"cannot read: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise PresetError(str(path), f"TOML syntax error: {exc}") from None


def load_config(path: str | Path) -> RunConfig:
    """Read a run's ``config.toml`` (``path`` is the file or its run dir), as ``write_config`` wrote it.

    Raises:
        PresetError: unreadable file, TOML syntax, or any problem ``config_from_dict`` reports.
    """
    path = _config_file(path)
    return config_from_dict(read_toml(path), source=str(path))


def dumps_config(cfg: RunConfig, source: str = "config") -> str:
    """``cfg`` as the text of a ``config.toml``: ``tomllib.loads(text) == config_to_dict(cfg)``.

    The config is validated first, so a value TOML cannot hold (None, an object) or a value a
    preset would refuse is reported by key instead of being written into a file that cannot load.

    Raises:
        PresetError: what ``config_from_dict`` reports, named after ``source``.
    """
    data = config_to_dict(cfg)
    config_from_dict(data, source)
    return tomli_w.dumps(data)


def write_config(path: str | Path, cfg: RunConfig) -> Path:
    """Write ``cfg`` to ``path`` (a run dir: its ``config.toml``; else the file itself).

    Returns:
        the file written.
    Raises:
        PresetError: as ``dumps_config``; nothing is written then.
    """
    path = _config_file(path)
    text = dumps_config(cfg, source=str(path))
    path.write_text(text, encoding="utf-8")
    return path


def _config_file(path: str | Path) -> Path:
    path = Path(path)
    return path / CONFIG if path.is_dir() else path


# ---------------------------------------------------------------------------------------------
# Building: raw dicts -> typed dataclasses
# ---------------------------------------------------------------------------------------------


def build_dataclass(cls: type, table: Mapping[str, Any], where: str) -> Any:
    """Build the frozen dataclass ``cls`` from a dict, checking keys and types by its hints.

    Args:
        cls: a dataclass whose fields are bool, int, float, str or tuples of those.
        table: its values by field name; missing fields take their defaults.
        where: the dotted prefix of its keys in messages (``train``, ``overlap``).
    Raises:
        ConfigProblem: unknown key or wrong type.
    """
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in table.items():
        if key not in hints:
            raise ConfigProblem(f"{where}.{key}", f"expected one of: {', '.join(names)}", unknown=True)
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
    raise ConfigProblem(key, f"expected {_describe(hint, key)}, got {show(value)}")


_TYPE_NAMES = {bool: ("true or false", "booleans"), int: ("an integer", "integers"),
               float: ("a number", "numbers"), str: ("a string", "strings")}
_FIELD_NAMES = {  # clearer than the type
    "data.holes": "a list of [x0, y0, x1, y1] rectangles",
    "data.hole_names": "a list of names, one per hole",
}


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


def field_hint(path: str) -> Any:
    """The type hint of a dotted RunConfig path, e.g. ``train.steps`` -> int.

    Raises:
        ConfigProblem: not ``SECTION.KEY``, or no such key (the detail lists the allowed ones).
    """
    section, _, key = path.partition(".")
    if section not in SECTIONS or not key:
        raise ConfigProblem(path, f"expected SECTION.KEY with SECTION one of: {', '.join(SECTIONS)} "
                                  f"(or seeds in [sweep])", unknown=True)
    cls = typing.get_type_hints(RunConfig)[section]
    hints = typing.get_type_hints(cls)
    if key not in hints:
        names = [f.name for f in dataclasses.fields(cls)]
        raise ConfigProblem(path, f"expected one of: {', '.join(names)}", unknown=True)
    return hints[key]


# ---------------------------------------------------------------------------------------------
# Validation: ranges and relations the types cannot express
# ---------------------------------------------------------------------------------------------


def require(key: str, value: Any, ok: bool, allowed: str) -> None:
    """Raise ``ConfigProblem(key, "expected <allowed>, got <value>")`` unless ``ok``."""
    if not ok:
        raise ConfigProblem(key, f"expected {allowed}, got {show(value)}")


def _one_of(key: str, value: Any, choices: Iterable[str]) -> None:
    choices = tuple(choices)
    require(key, value, value in choices, f"one of: {', '.join(choices)}")


def _positive_int(key: str, value: int) -> None:
    require(key, value, value > 0, "a positive integer")


def _fraction(key: str, value: float) -> None:
    require(key, value, 0.0 <= value <= 1.0, "a number in [0, 1]")


def _check_run(cfg: RunConfig) -> None:
    _check_data(cfg.data)
    _check_model(cfg.model)
    _check_diffusion(cfg.diffusion)
    _check_train(cfg.train)
    _check_eval(cfg.eval, cfg.diffusion.T)


def _check_data(d) -> None:
    require("data.size", d.size, d.size >= 8 and d.size % 8 == 0,
            "a positive multiple of 8 (the UNet halves the image 3 times)")
    _one_of("data.kind", d.kind, KINDS)
    require("data.canvas", d.canvas, d.canvas == 0 or (d.canvas >= d.size and (d.canvas - d.size) % 2 == 0),
            f"0 (= data.size) or an integer >= data.size ({d.size}) with canvas - size even (a centred frame)")
    side = d.canvas or d.size  # grids and holes are in canvas coordinates
    bound = f"data.size ({d.size})" if side == d.size else f"data.canvas ({side})"
    for key in ("dx", "dy"):
        value = getattr(d, key)
        require(f"data.{key}", value, 0 < value < side, f"a positive number below {bound}")
    require("data.sigma", d.sigma, d.sigma > 0, "a positive number")
    for key in ("sigma_x", "sigma_y"):
        require(f"data.{key}", getattr(d, key), getattr(d, key) >= 0, "a number >= 0 (0 = data.sigma)")
    require("data.margin", d.margin, 0 <= d.margin < side / 2, f"a number in [0, {side / 2:g})")
    _check_holes(d, side)
    require("data.keep", d.keep, 0 < d.keep <= 1, "a number in (0, 1] (the share of the training grid kept)")
    require("data.keep_seed", d.keep_seed, d.keep_seed >= 0, "an integer >= 0")


def _check_holes(d, side: int) -> None:
    for i, (x0, y0, x1, y1) in enumerate(d.holes):
        inside = all(0 <= v <= side for v in (x0, y0, x1, y1))
        require(f"data.holes[{i}]", [x0, y0, x1, y1], inside and x0 < x1 and y0 < y1,
                f"[x0, y0, x1, y1] with 0 <= x0 < x1 <= {side} and 0 <= y0 < y1 <= {side}")
    names = d.hole_names
    require("data.hole_names", list(names), len(names) in (0, len(d.holes)),
            f"[] or one name per hole ({len(d.holes)})")
    require("data.hole_names", list(names), all(n.strip() for n in names) and len(set(names)) == len(names),
            "distinct, non-empty names (they name the eval regions)")


def _check_model(m) -> None:
    from model.config import SIZES  # torch-free: validating a preset loads no torch

    _one_of("model.size", m.size, tuple(SIZES))


def _check_diffusion(df) -> None:
    require("diffusion.T", df.T, df.T >= 2, "an integer >= 2")
    require("diffusion.beta_start", df.beta_start, 0 < df.beta_start < 1, "a number in (0, 1)")
    require("diffusion.beta_end", df.beta_end, df.beta_start < df.beta_end < 1,
            f"a number in (beta_start = {df.beta_start:g}, 1)")
    _one_of("diffusion.prediction", df.prediction, PREDICTIONS)


def _check_train(t) -> None:
    for key in ("steps", "batch_size", "eval_every", "checkpoint_every", "log_every"):
        _positive_int(f"train.{key}", getattr(t, key))
    require("train.lr", t.lr, t.lr > 0, "a positive number")
    for key in ("warmup_steps", "threads", "seed"):
        require(f"train.{key}", getattr(t, key), getattr(t, key) >= 0, "an integer >= 0")
    for key in ("weight_decay", "grad_clip"):
        require(f"train.{key}", getattr(t, key), getattr(t, key) >= 0, "a number >= 0")
    require("train.ema", t.ema, 0 <= t.ema < 1, "a number in [0, 1) (0 = off)")
    require("train.stall_after", t.stall_after, t.stall_after > 0, "a positive number of seconds")
    for i, step in enumerate(t.eval_at):
        # Steps past train.steps are allowed and simply never reached, like an eval_every larger
        # than the run: `--set train.steps=40` must shrink a preset with dense early evals.
        require(f"train.eval_at[{i}]", step, step >= 0, "a step >= 0")
    _one_of("train.device", t.device, DEVICES)
    _one_of("train.precision", t.precision, PRECISIONS)


def _check_eval(e, T: int) -> None:
    _positive_int("eval.n_samples", e.n_samples)
    require("eval.n_ood", e.n_ood, e.n_ood >= 0, "an integer >= 0")
    _one_of("eval.sampler", e.sampler, SAMPLERS)
    require("eval.ddim_steps", e.ddim_steps, 1 <= e.ddim_steps <= T, f"an integer in [1, diffusion.T = {T}]")
    require("eval.capture_t", e.capture_t, 0 <= e.capture_t < T, f"an integer in [0, diffusion.T = {T})")
    _one_of("eval.capture", e.capture, CAPTURES)
    require("eval.tolerance", e.tolerance, e.tolerance > 0, "a positive number of pixels")
    require("eval.umap_neighbors", e.umap_neighbors, 2 <= e.umap_neighbors < e.n_samples,
            f"an integer in [2, eval.n_samples = {e.n_samples})")
    _fraction("eval.umap_min_dist", e.umap_min_dist)
    require("eval.umap_seeds", e.umap_seeds, 1 <= e.umap_seeds <= MAX_UMAP_SEEDS,
            f"an integer in [1, {MAX_UMAP_SEEDS}] (UMAP fits per eval, ~0.5 s each at N = 500)")
    for key in ("min_depth", "min_snr"):
        require(f"eval.{key}", getattr(e, key), getattr(e, key) >= 0,
                "a number >= 0 (min_depth = min_snr = 0: no contrast floor, the paper's detector)")
    require("eval.seed", e.seed, e.seed >= 0, "an integer >= 0")
    for key in ("phase_single_min", "phase_accuracy_frac", "phase_r2_min"):
        _fraction(f"eval.{key}", getattr(e, key))


# ---------------------------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------------------------


def show(value: Any, limit: int = 60) -> str:
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


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
