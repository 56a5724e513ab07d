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


def test_every_peer_selector_keeps_the_budget_on_a_small_view():
    import numpy as np

    from benchmarks.selectors import SELECTORS, View

    rng = np.random.default_rng(0)
    n, k = 60, 12
    probs = rng.dirichlet(np.ones(4), size=n)
    view = View(
        rows=[{"instruction": "w " * int(i), "output": "o"} for i in rng.integers(1, 30, n)],
        features=rng.normal(size=(n, 8)).astype(np.float32), entropy=-(probs * np.log(probs)).sum(1), reward=rng.random(n),
        probs=probs, domains=[["a", "b", "c", "d"][i] for i in probs.argmax(1)], subdomains=rng.integers(0, 6, n),
        domain_names=["a", "b", "c", "d"], upstream=lambda: None,
    )
    for name, run in SELECTORS.items():
        if name.startswith("k-means"):
            continue  # the upstream selector keeps max(1, int(ratio * size)) per cluster, not exactly k
        picked = np.asarray(run(view, k, 3))
        assert len(picked) == k and len(set(picked.tolist())) == k and picked.min() >= 0 and picked.max() < n, name
        if name in ("random", "kMQ-style (bundle sub-domains)", "CCS-style (10 score bins)", "importance weight w(x)"):
            assert not np.array_equal(picked, np.asarray(run(view, k, 4))), f"{name} ignores its seed"


def test_render_names_the_recipe_selector(tmp_path):
    import dataclasses
    import json

    from benchmarks.downstream_proxy import QUICK, recipe_selector, rerender

    cell = {"mean": 0.1, "sd": 0.01}
    row = {k: cell for k in ("in_source", "in_source_vs_random", "out_of_source", "out_of_source_vs_random", "rows_seen")}
    path = tmp_path / "r.json"
    path.write_text(json.dumps({"config": dataclasses.asdict(QUICK), "default": "old", "selectors": {"random": row, recipe_selector(): row}}))
    rerender(path)
    assert json.loads(path.read_text())["default"] == recipe_selector()
    assert f"| **{recipe_selector()}** (shipped recipe) |" in path.with_suffix(".md").read_text()
