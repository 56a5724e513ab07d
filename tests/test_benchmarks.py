"""Every benchmark module imports as part of the ``benchmarks`` package (``python -m benchmarks.NAME``),
its function-level imports included."""

import ast
import importlib
import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MODULES = sorted(p.stem for p in (ROOT / "benchmarks").glob("*.py") if p.stem != "__init__")


@pytest.mark.parametrize("name", MODULES)
def test_benchmark_module_and_its_local_imports_resolve(name):
    module = importlib.import_module(f"benchmarks.{name}")
    tree = ast.parse((ROOT / "benchmarks" / f"{name}.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            target = importlib.import_module(node.module)  # a sibling must be reached as benchmarks.<name>
            for alias in node.names:
                assert hasattr(target, alias.name) or importlib.util.find_spec(f"{node.module}.{alias.name}"), (name, node.module, alias.name)
    assert module.__name__ == f"benchmarks.{name}"
