"""A sweep: what one ``labconsole --batch PRESET`` launches, recorded beside its runs (DESIGN §7).

    <runs_dir>/sweeps/<sweep id>/sweep.json   the manifest (this module)
    <runs_dir>/sweeps/<sweep id>/report/      its report (``labconsole.report``)
    <runs_dir>/<run id>/                      its runs, unchanged: each is readable alone

The manifest names the preset (and the ``--set`` overrides it was given), the swept config keys,
the grid (one ``Setting`` per combination of swept values, seeds excluded) and every planned run
with its setting, seed, swept values and — once created — its run dir. It is written atomically
before the first run starts and again as each run dir is created, so a sweep cut short still
knows which runs it has and which it never started (``labconsole --batch --resume SWEEP``).

Every preset makes a sweep, a preset without a [sweep] table a sweep of one run: one shape for
the batch, the report and the console.

No Textual, no torch.
"""
from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from labconsole.presets import Preset, parse_override
from labconsole.rundir import CONFIG, LIVE, SWEEPS, new_run_id, write_atomic
from labconsole.runview import RunView, read_run

SCHEMA_VERSION = 1
MANIFEST = "sweep.json"
REPORT = "report"
SEED_KEY = "train.seed"


class SweepError(ValueError):
    """A sweep that cannot be read or resumed; its text is one line naming the path and the problem."""


@dataclass(frozen=True)
class Setting:
    """One point of the grid: the swept values shared by its seeds."""

    label: str  # e.g. "dx=dy=0.5"; "" for a preset without a sweep
    values: dict[str, Any]  # swept config path -> value, seed excluded


@dataclass(frozen=True)
class PlannedRun:
    """One run of the sweep: planned from the start, its run dir named once it is created."""

    label: str  # e.g. "dx=dy=0.5 seed=1" (as in meta.json)
    setting: str  # the Setting's label
    seed: int
    params: dict[str, Any]  # its overrides on top of the sweep's: swept path -> value, seed included
    run_dir: str = ""  # the run dir's name under the runs dir; "" until created


@dataclass(frozen=True)
class Manifest:
    """The contents of sweep.json. ``to_json`` / ``from_dict`` are its one encoder and decoder."""

    id: str
    preset: str
    preset_path: str  # absolute, to rebuild a never-started run on resume
    title: str
    created: float  # unix seconds
    swept: tuple[str, ...]  # swept config paths, seed excluded, in the preset's order
    overrides: tuple[str, ...]  # the --set arguments the sweep was made with
    grid: tuple[Setting, ...]
    runs: tuple[PlannedRun, ...]
    version: int = SCHEMA_VERSION

    def to_json(self) -> str:
        """The manifest as sweep.json text (indented: a person may read it)."""
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=False) + "\n"

    @classmethod
    def from_dict(cls, data: Any) -> Manifest:
        """Decode sweep.json's object.

        Raises:
            ValueError: not an object, a newer schema, or a missing or ill-typed key (named).
        """
        if not isinstance(data, Mapping):
            raise ValueError("expected a JSON object")
        if data.get("version") != SCHEMA_VERSION:
            raise ValueError(f"schema version {data.get('version')!r}; this labconsole reads {SCHEMA_VERSION}")
        top = {k: _field(data, k, t) for k, t in
               (("id", str), ("preset", str), ("preset_path", str), ("title", str), ("created", (int, float)),
                ("swept", list), ("overrides", list), ("grid", list), ("runs", list))}
        grid = tuple(Setting(_field(s, "label", str, f"grid[{i}]"), dict(_field(s, "values", dict, f"grid[{i}]")))
                     for i, s in enumerate(top.pop("grid")))
        runs = tuple(_planned_run(r, f"runs[{i}]") for i, r in enumerate(top.pop("runs")))
        swept, overrides = tuple(top.pop("swept")), tuple(top.pop("overrides"))
        return cls(**top, swept=swept, overrides=overrides, grid=grid, runs=runs)

    def planned_overrides(self, run: PlannedRun) -> list[tuple[str, Any]]:
        """The overrides that rebuild ``run`` alone from the preset: the sweep's, then the run's
        swept values (which replace every sweep entry they name)."""
        return [parse_override(o) for o in self.overrides] + list(run.params.items())


def _field(data: Any, key: str, kind: type | tuple[type, ...], where: str = "") -> Any:
    name = f"{where}.{key}" if where else key
    if not isinstance(data, Mapping) or key not in data:
        raise ValueError(f"{name}: missing")
    value = data[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ValueError(f"{name}: expected {getattr(kind, '__name__', 'a number')}, got {value!r}")
    return value


def _planned_run(data: Any, where: str) -> PlannedRun:
    return PlannedRun(label=_field(data, "label", str, where), setting=_field(data, "setting", str, where),
                      seed=_field(data, "seed", int, where), params=dict(_field(data, "params", dict, where)),
                      run_dir=_field(data, "run_dir", str, where))


# ---------------------------------------------------------------------------------------------
# A sweep on disk


@dataclass
class Sweep:
    """A sweep dir and its manifest; ``record`` rewrites sweep.json as run dirs are created."""

    dir: Path
    manifest: Manifest

    @property
    def runs_dir(self) -> Path:
        """Where its runs are: the sweep dir is ``<runs_dir>/sweeps/<id>``."""
        return self.dir.parent.parent

    @property
    def report_dir(self) -> Path:
        """Where its report goes by default: ``<sweep dir>/report``."""
        return self.dir / REPORT

    def run_path(self, index: int) -> Path | None:
        """The run dir of planned run ``index``, or None when it was never created."""
        name = self.manifest.runs[index].run_dir
        return self.runs_dir / name if name else None

    def record(self, index: int, run_dir: Path) -> None:
        """Note that planned run ``index`` now has ``run_dir``; rewrites sweep.json atomically."""
        runs = list(self.manifest.runs)
        runs[index] = dataclasses.replace(runs[index], run_dir=Path(run_dir).name)
        self.manifest = dataclasses.replace(self.manifest, runs=tuple(runs))
        save(self)


def manifest_of(preset: Preset, overrides: list[str], sweep_id: str, now: float | None = None) -> Manifest:
    """The manifest of a (training) preset's runs, none created yet."""
    swept = tuple(p for p in (preset.runs[0].params if preset.runs else {}) if p != SEED_KEY)
    grid: dict[str, Setting] = {}
    runs = []
    for spec in preset.runs:
        values = {p: _plain(spec.params[p]) for p in swept}
        grid.setdefault(spec.setting, Setting(spec.setting, values))
        params = {p: _plain(v) for p, v in spec.params.items()}
        runs.append(PlannedRun(spec.label, spec.setting, spec.config.train.seed, params))
    return Manifest(id=sweep_id, preset=preset.name, preset_path=str(Path(preset.path).resolve()),
                    title=preset.title, created=time.time() if now is None else now, swept=swept,
                    overrides=tuple(overrides), grid=tuple(grid.values()), runs=tuple(runs))


def _plain(value: Any) -> Any:
    """A config value as JSON keeps it (tuples become lists), so a manifest compares equal to its reload."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def create(preset: Preset, overrides: list[str], runs_dir: str | Path) -> Sweep:
    """Make ``<runs_dir>/sweeps/<id>/`` and write the manifest of ``preset`` (no run created yet).

    Raises:
        OSError: from the filesystem.
    """
    parent = Path(runs_dir) / SWEEPS
    parent.mkdir(parents=True, exist_ok=True)
    while True:  # the id's 24 random bits collide only within one second: retry
        sweep_id = new_run_id(preset.name)
        try:
            (parent / sweep_id).mkdir()
            break
        except FileExistsError:
            continue
    sweep = Sweep(parent / sweep_id, manifest_of(preset, overrides, sweep_id))
    save(sweep)
    return sweep


def save(sweep: Sweep) -> None:
    """Atomically (re)write the sweep's sweep.json."""
    write_atomic(sweep.dir / MANIFEST, sweep.manifest.to_json())


def is_sweep(path: str | Path) -> bool:
    """Whether ``path`` is a sweep dir (holds sweep.json) or a sweep.json file."""
    path = Path(path)
    return (path / MANIFEST).is_file() or (path.name == MANIFEST and path.is_file())


def load(path: str | Path) -> Sweep:
    """Read a sweep from its dir or its sweep.json.

    Raises:
        SweepError: no such path, no sweep.json, not JSON, or not a manifest (one line).
    """
    path = Path(path)
    file = path if path.name == MANIFEST and not path.is_dir() else path / MANIFEST
    if not path.exists():
        raise SweepError(f"{path}: no such file or directory")
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SweepError(f"{path}: not a sweep (no {MANIFEST})") from None
    except OSError as exc:
        raise SweepError(f"{file}: unreadable ({exc.strerror})") from None
    try:
        return Sweep(file.parent, Manifest.from_dict(json.loads(text)))
    except json.JSONDecodeError as exc:
        raise SweepError(f"{file}: not JSON ({exc})") from None
    except ValueError as exc:
        raise SweepError(f"{file}: {exc}") from None


@dataclass(frozen=True)
class SweepListing:
    """One row of the sweep list; ``sweep`` is None (with ``error``) for an unreadable one."""

    id: str
    path: Path
    sweep: Sweep | None = None
    error: str = ""


def list_sweeps(runs_dir: str | Path) -> list[SweepListing]:
    """Every sweep under ``<runs_dir>/sweeps``, oldest first. Never raises for a broken manifest:
    it is listed with its error. No sweeps dir gives an empty list."""
    parent = Path(runs_dir) / SWEEPS
    if not parent.is_dir():
        return []
    out = []
    for path in sorted(p for p in parent.iterdir() if p.is_dir() and not p.name.startswith(".")):
        try:
            out.append(SweepListing(path.name, path, load(path)))
        except SweepError as exc:
            out.append(SweepListing(path.name, path, error=str(exc)))
    return out


# ---------------------------------------------------------------------------------------------
# The runs' status, read from their run dirs


def read_views(sweep: Sweep, now: float | None = None) -> list[RunView | None]:
    """The view of each planned run (``runview.read_run``), None for one never created."""
    paths = [sweep.run_path(i) for i in range(len(sweep.manifest.runs))]
    return [read_run(p, now) if p is not None else None for p in paths]


def statuses(views: list[RunView | None]) -> list[str]:
    """Each run's status: ``planned`` when never created, else its liveness (``read_views``)."""
    return [v.status if v is not None else "planned" for v in views]


def plan_resume(sweep: Sweep, views: list[RunView | None] | None = None) -> list[str]:
    """What ``--batch --resume SWEEP`` does with each planned run: ``skip`` (completed),
    ``resume`` (stopped, crashed or failed: from its latest checkpoint, a new segment), or
    ``start`` (never created, or its run dir is gone).

    Raises:
        SweepError: a run is still live (its worker runs), or every run already completed.
    """
    views = read_views(sweep) if views is None else views
    actions = []
    for i, (run, view) in enumerate(zip(sweep.manifest.runs, views)):
        if view is None or not (sweep.run_path(i) / CONFIG).is_file():
            actions.append("start")
        elif view.status in LIVE:
            raise SweepError(f"{sweep.dir}: run '{run.label or run.run_dir}' ({run.run_dir}) is still "
                             f"{view.status}; stop it (or wait) before resuming the sweep")
        else:
            actions.append("skip" if view.status == "completed" else "resume")
    if all(a == "skip" for a in actions):
        raise SweepError(f"{sweep.dir}: every run of the sweep already completed; nothing to resume "
                         f"(labconsole report {sweep.dir} rewrites its report)")
    return actions
