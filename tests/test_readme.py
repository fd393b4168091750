"""The README is the front door: its commands must be the ones CI and users actually run."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def shell_lines() -> list[str]:
    blocks = re.findall(r"```(?:bash|sh|console)\n(.*?)```", README, flags=re.S)
    return [line.strip() for block in blocks for line in block.splitlines() if line.strip() and not line.startswith("#")]


def test_ci_runs_exactly_the_readme_test_command():
    ci = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if "-m pytest" in line]
    assert len(ci) == 1
    assert ci[0] in shell_lines(), "the README must show the test command .ci/run runs"
    assert "torch==2.13.0" in ci[0]


def test_ci_leaves_the_users_venv_alone(tmp_path):
    # A user who runs .ci/run in their own clone keeps their environment: CI builds its .venv in a
    # temporary copy of the checkout and removes that copy when it ends. A stand-in python3 records
    # where the README command runs and what it sees there, then fails (nothing is installed).
    marker = tmp_path / "seen"
    stub = tmp_path / "bin" / "python3"
    stub.parent.mkdir()
    stub.write_text(f"#!/bin/sh\npwd > {marker}\nls >> {marker}\nexit 3\n")
    stub.chmod(0o755)
    env = {**os.environ, "PATH": f"{stub.parent}{os.pathsep}{os.environ['PATH']}", "TMPDIR": str(tmp_path)}
    done = subprocess.run(["bash", str(ROOT / ".ci" / "run")], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    where, *listing = marker.read_text().split()
    assert Path(where).parent == tmp_path and Path(where).name.startswith("labconsole-ci.")
    assert {"README.md", "pyproject.toml", "labconsole", "tests"} <= set(listing)
    assert ".venv" not in listing and "runs" not in listing  # ignored paths stay behind
    assert not Path(where).exists(), "the temporary copy is removed when CI ends"


def test_every_preset_the_readme_names_exists():
    for name in set(re.findall(r"presets/([\w.-]+\.toml)", README)):
        assert (ROOT / "presets" / name).exists(), name


def test_every_script_the_readme_runs_exists():
    for script in set(re.findall(r"((?:bench|scripts)/[\w./-]+\.(?:py|sh))", README)):
        assert (ROOT / script).exists(), script


def test_the_cli_flags_the_readme_uses_exist():
    def help_of(*args: str) -> str:
        return subprocess.run([sys.executable, "-m", "labconsole.cli", *args, "--help"], capture_output=True,
                              text=True, cwd=ROOT).stdout

    helps = {"": help_of(), "report": help_of("report")}
    for sub, flag in set(re.findall(r"labconsole (report )?[^\n`]*?(--[a-z-]+)", README)):
        assert flag in helps[sub.strip()], f"labconsole {sub}{flag}"
