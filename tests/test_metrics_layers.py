"""metrics imports only what DESIGN §2 allows it (numpy, opencv, scikit-learn, umap-learn, scipy)."""

import ast
import sys
from pathlib import Path

import metrics

# numba is umap-learn's compiler: metrics only configures it for umap (its cache, its threading layer).
ALLOWED = {"numpy", "cv2", "sklearn", "umap", "numba", "scipy", "metrics"}
# The topology extra, imported inside metrics.persistence's function only (the worker never loads it:
# tests/test_metrics_persistence.py).
ALSO_ALLOWED = {"persistence.py": {"gudhi"}}
PACKAGE = Path(metrics.__file__).parent


def imported_roots(path):
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            yield node.module.split(".")[0]


def test_metrics_imports_only_allowed_packages():
    stdlib = set(sys.stdlib_module_names)
    for path in sorted(PACKAGE.glob("*.py")):
        outside = {root for root in imported_roots(path) if root not in stdlib} - ALLOWED - ALSO_ALLOWED.get(path.name, set())
        assert not outside, f"{path.name} imports {sorted(outside)}"


def test_metrics_never_prints():
    for path in sorted(PACKAGE.glob("*.py")):
        calls = [
            node
            for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "print"
        ]
        assert not calls, f"{path.name} calls print() on line {calls[0].lineno}"
