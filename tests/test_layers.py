"""DESIGN §2: dependencies point one way, and --batch runs where Textual is absent."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def imported_roots(where: str) -> set[str]:
    """Top-level names of every absolute import in a package directory or one module file."""
    target = ROOT / where
    roots = set()
    for path in ([target] if target.is_file() else target.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                roots |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                roots.add(node.module.split(".")[0])
    return roots


def test_model_imports_only_torch_numpy_and_itself():
    foreign = imported_roots("model") & {"labconsole", "metrics", "textual", "rich", "umap", "cv2", "sklearn", "socket"}
    assert not foreign


# Every module of labconsole/ outside app/ (new ones included, without editing this list).
NON_UI = sorted(p.stem for p in (ROOT / "labconsole").glob("*.py") if p.stem != "__init__")


@pytest.mark.parametrize("module", NON_UI)
def test_non_ui_modules_never_import_textual(module):
    assert not imported_roots(f"labconsole/{module}.py") & {"textual", "textual_plotext"}


def test_batch_runs_with_textual_unimportable(tmp_path):
    code = (
        "import sys\n"
        "sys.modules['textual'] = None  # any import of textual now raises ImportError\n"
        "from labconsole.cli import main\n"
        f"sys.exit(main(['--batch', r'{ROOT / 'presets' / 'overlap.toml'}']))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "neighbour overlap" in result.stdout


# matplotlib draws the report's figures only (labconsole.figures, optional): never in the console
# process nor in the worker, which must start fast and run where matplotlib is absent.
FIGURES_MODULES = {"figures"}


@pytest.mark.parametrize("module", NON_UI)
def test_no_module_but_the_figures_imports_matplotlib(module):
    if module not in FIGURES_MODULES:
        assert "matplotlib" not in imported_roots(f"labconsole/{module}.py")


def test_app_never_imports_matplotlib():
    assert "matplotlib" not in imported_roots("labconsole/app")


def test_console_worker_batch_and_report_run_with_matplotlib_unimportable(tmp_path):
    code = (
        "import sys\n"
        "sys.modules['matplotlib'] = None  # any import of matplotlib now raises ImportError\n"
        "import labconsole.app, labconsole.worker, labconsole.batch, labconsole.report, labconsole.aggregate\n"
        "from labconsole.report import write_figures\n"
        "print(write_figures(None, '.')[1][0])\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("figures: ")  # none, or skipped: said, not raised
