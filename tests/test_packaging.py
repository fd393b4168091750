"""A built wheel carries every package and the console's stylesheet, not only an editable install."""
from __future__ import annotations

import sys
from pathlib import Path

import setuptools

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def test_every_python_dir_of_the_code_is_a_listed_package():
    # Any folder holding .py files under the three top-level packages must be a package that the
    # find rule picks up (a folder without __init__.py would be silently left out of the wheel).
    expected = {
        ".".join(d.relative_to(ROOT).parts)
        for top in ("labconsole", "model", "metrics")
        for d in [ROOT / top, *(p for p in (ROOT / top).rglob("*") if p.is_dir())]
        if any(d.glob("*.py")) and "__pycache__" not in d.parts
    }
    found = set(setuptools.find_packages(str(ROOT), include=CONFIG["packages"]["find"]["include"]))
    assert expected <= found, f"left out of a wheel: {sorted(expected - found)}"
    assert not {p for p in found if p.split(".")[0] not in ("labconsole", "model", "metrics")}


def test_the_stylesheet_ships_with_the_app():
    data = CONFIG["package-data"]["labconsole.app"]
    tcss = sorted(p.name for p in (ROOT / "labconsole" / "app").glob("*.tcss"))
    assert tcss and all(any(Path(name).match(pattern) for pattern in data) for name in tcss)
