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
                assert hasattr(target, alias.name) or importlib.util.find_spec(f"{node.module}.{alias.name}"), (
                    name,
                    node.module,
                    alias.name,
                )
    assert module.__name__ == f"benchmarks.{name}"


def test_every_peer_selector_keeps_the_budget_on_a_small_view():
    import dataclasses

    import numpy as np

    from benchmarks.selectors import SELECTORS, View

    rng = np.random.default_rng(0)
    n, k = 60, 12
    probs = rng.dirichlet(np.ones(4), size=n)
    view = View(
        rows=[{"instruction": "w " * int(i), "output": "o", "source_domain": "abcd"[i % 4]} for i in rng.integers(1, 30, n)],
        features=rng.normal(size=(n, 8)).astype(np.float32),
        entropy=-(probs * np.log(probs)).sum(1),
        reward=rng.random(n),
        probs=probs,
        domains=[["a", "b", "c", "d"][i] for i in probs.argmax(1)],
        subdomains=rng.integers(0, 6, n),
        domain_names=["a", "b", "c", "d"],
        upstream=lambda: None,
        noise=rng.random(n),
    )
    redrawn = dataclasses.replace(view, noise=rng.random(n))
    for name, run in SELECTORS.items():
        if name.startswith("k-means"):
            continue  # the upstream selector keeps max(1, int(ratio * size)) per cluster, not exactly k
        picked = np.asarray(run(view, k, 3))
        assert len(picked) == k and len(set(picked.tolist())) == k and picked.min() >= 0 and picked.max() < n, name
        if name in ("random", "kMQ-style (bundle sub-domains)", "CCS-style (10 score bins)", "importance weight w(x)"):
            assert not np.array_equal(picked, np.asarray(run(redrawn, k, 3))), f"{name} ignores its row keys"
        if "random inside" in name:
            assert not np.array_equal(picked, np.asarray(run(redrawn, k, 3))), f"{name} ignores its row keys"
        if name == "random":  # the rows of lowest key: common random numbers
            assert picked.tolist() == sorted(np.argsort(view.noise)[:k].tolist())


def test_render_names_the_recipe_selector(tmp_path):
    import dataclasses
    import json

    from benchmarks.downstream_proxy import QUICK, recipe_selector, rerender

    cell = {"mean": 0.1, "sd": 0.01}
    row = {k: cell for k in ("in_source", "in_source_vs_random", "out_of_source", "out_of_source_vs_random", "rows_seen")}
    path = tmp_path / "r.json"
    path.write_text(
        json.dumps({"config": dataclasses.asdict(QUICK), "default": "old", "selectors": {"random": row, recipe_selector(): row}})
    )
    rerender(path)
    assert json.loads(path.read_text())["default"] == recipe_selector()
    assert f"| **{recipe_selector()}** (shipped recipe) |" in path.with_suffix(".md").read_text()


def test_merge_pools_runs_of_other_seeds(tmp_path, monkeypatch):
    import dataclasses
    import json

    import benchmarks.common
    from benchmarks import downstream_proxy

    monkeypatch.setattr(benchmarks.common, "RESULTS", tmp_path)
    monkeypatch.setattr(downstream_proxy, "__file__", str(tmp_path / "x" / "downstream_proxy.py"))
    (tmp_path / "x" / "results").mkdir(parents=True)

    def run(seed: int, gain: float) -> dict:
        return {"seed": seed, "rows": 200, "in_source": {"relative_gain": gain}, "out_of_source": {"relative_gain": gain / 2}}

    base = {
        "machine": "m",
        "device": "cpu",
        "mode": "quick",
        "pool": "demo",
        "eval": "held_out",
        "default": "daar",
        "random": "random",
        "config": {**dataclasses.asdict(downstream_proxy.QUICK), "seeds": [0, 1]},
    }
    first = {
        **base,
        "runs": {"random": [run(0, 0.3), run(1, 0.2)], "daar": [run(0, 0.4), run(1, 0.1)], "only here": [run(0, 0.0), run(1, 0.0)]},
    }
    second = {**base, "config": {**base["config"], "seeds": [2]}, "runs": {"random": [run(2, 0.1)], "daar": [run(2, 0.3)]}}
    paths = [tmp_path / "a.json", tmp_path / "b.json"]
    for path, result in zip(paths, (first, second)):
        path.write_text(json.dumps(result))
    downstream_proxy.merge(paths, "merged")
    merged = json.loads((tmp_path / "merged.json").read_text())
    assert set(merged["selectors"]) == {"random", "daar"}  # only the selectors every file holds
    assert merged["config"]["seeds"] == [0, 1, 2]
    paired = merged["selectors"]["daar"]["in_source_vs_random"]
    assert abs(paired["mean"] - (0.1 - 0.1 + 0.2) / 3) < 1e-12  # seed by seed against random
    assert "| **daar** (shipped recipe) |" in (tmp_path / "x" / "results" / "merged.md").read_text()
    with pytest.raises(SystemExit, match="share seeds"):
        downstream_proxy.merge([paths[0], paths[0]], "twice")


def test_grid_cells_are_keyed_by_what_changes_them_and_the_report_pairs_seeds(tmp_path, monkeypatch):
    import json

    import benchmarks.grid as grid

    monkeypatch.setattr(grid, "CELLS", tmp_path / "grid")
    monkeypatch.setattr(grid, "RESULTS", tmp_path)
    shared = {"condition": "demo", "pool": "p", "eval": "e", "proxy": {"crn": True}}
    first = grid.cell_path(shared, "random", 0)
    assert first != grid.cell_path(shared, "random", 1) != grid.cell_path(shared, grid.SHIPPED, 0)
    assert first != grid.cell_path({**shared, "pool": "q"}, "random", 0)  # another pool file: another cell
    assert grid.cell_path({**shared, "proxy": {"crn": False}}, "random", 0).name.startswith("random-nocrn-s0-")

    def cell(selector, seed, gain, math):
        base = {"by_domain": {"mathematics": 1.0, "coding": 1.0}}
        out = {"relative_gain": gain, "by_domain": {"mathematics": 1.0 - math, "coding": 1.0 - gain}, "mc_accuracy": 0.5}
        payload = {**shared, "selector": selector, "seed": seed, "agreement": 0.7, "base": {"in_source": base, "out_of_source": base}}
        payload.update(in_source={"relative_gain": gain, "by_domain": base["by_domain"]}, out_of_source=out)
        grid.write_cell(grid.cell_path(shared, selector, seed), payload)

    for seed, (r, s) in enumerate([(0.10, 0.12), (0.20, 0.21), (0.30, 0.29)]):
        cell("random", seed, r, 0.1)
        cell(grid.SHIPPED, seed, s, 0.05)
    cell(grid.SHIPPED, 3, 0.5, 0.5)  # no random cell of seed 3: not paired
    table = grid.summary(grid.load_cells())["demo"]
    delta = table[grid.SHIPPED]["out_of_source_vs_random"]
    assert delta["n"] == 3 and delta["ahead"] == 2
    assert abs(delta["mean"] - (0.02 + 0.01 - 0.01) / 3) < 1e-12
    assert abs(delta["se"] - delta["sd"] / 3**0.5) < 1e-12
    worst = table[grid.SHIPPED]["worst_domain_vs_random"]
    assert worst[0] == "mathematics" and abs(worst[1]["mean"] + 0.05) < 1e-12
    text = grid.report()
    assert "## demo (pseudo-domain agreement 0.700)" in text and json.loads((tmp_path / "grid.json").read_text())["demo"]


def test_grid_decision_picks_finalists_from_round_one_and_applies_the_rule(monkeypatch):
    import benchmarks.grid as grid

    def entry(n, out, inside=0.0, se=0.01, worst=0.0):
        p = lambda mean: {"mean": mean, "sd": se * n**0.5, "se": se, "ahead": 0, "n": n}  # noqa: E731
        return {"n": n, "out_of_source_vs_random": p(out), "in_source_vs_random": p(inside), "worst_domain_vs_random": ("coding", p(worst))}

    candidates = [s for s in grid.SETS["round1"] if s not in grid.BASELINES]
    good, second, *rest = candidates
    table = {c: {s: entry(6, 0.0) for s in grid.SETS["round1"]} for c in grid.ROUND1[0]}
    table["demo"][rest[0]] = entry(5, 0.5)  # one seed short: round 1 is not done
    with pytest.raises(ValueError, match="round 1 is not complete"):
        grid.finalists(table)
    assert grid.decision(table)[-1].startswith("Pending: round 1 is not complete")
    for cond in grid.ROUND1[0]:
        table[cond].update({good: entry(6, 0.03), second: entry(6, 0.02), rest[0]: entry(6, -0.01)})
    table["demo"][rest[1]] = entry(6, 0.5)  # best on one condition, level on the others: worst case 0
    assert grid.finalists(table) == [*grid.BASELINES, good, second]

    def merged(round2: dict) -> dict:  # one table holds both rounds' cells
        return {c: {**table.get(c, {}), **round2.get(c, {})} for c in {*table, *round2}}

    full = {c: {s: entry(9, 0.0) for s in grid.finalists(table)} for c in grid.ROUND2[0]}
    assert grid.decision(merged(full))[-1].startswith("Pending: not every finalist")
    for cond in grid.ROUND2[0]:
        full[cond].update({s: entry(10, 0.0) for s in grid.BASELINES} | {good: entry(10, 0.04), second: entry(10, 0.01)})
    full["demo"][good] = entry(10, 0.04, inside=-0.02)  # in-source below random by 2 se: out
    assert grid.verdict(merged(full), good)[0] == ["demo in-source -0.0200 (se 0.0100)"]
    said = grid.decision(merged(full))
    assert f"Default: **{second}** (the best worst-case out-of-source Δ of those that pass)." in said
    assert grid.chosen(merged(full)) == second
    # then the check where the pseudo-domains are right: a real gain is more than one standard error above random
    assert said[-1].startswith(f"Check pending: 10 seeds of it on {grid.LABELLED}")
    full[grid.LABELLED] = {grid.RANDOM: entry(10, 0.0), grid.SHIPPED: entry(10, 0.03), second: entry(10, 0.005)}
    assert grid.decision(merged(full))[-1].endswith(f"a real gain there: {grid.SHIPPED}.")
    full[grid.LABELLED][grid.SHIPPED] = entry(10, 0.01)  # level with its standard error: no real gain
    fallback = f"no rule keeps a real gain there, so the default becomes {grid.KMQ}, balancing an opt-in."
    assert grid.decision(merged(full))[-1].endswith(fallback)
    full["demo"][second] = entry(10, 0.01, worst=-0.03)  # its worst domain 3 se below random: out too
    for sel in (grid.KMQ, grid.SHIPPED):
        full["unseen_skewed"][sel] = entry(10, -0.02)
    assert grid.decision(merged(full))[-1] == f"Default: **{grid.KMQ}** (no finalist passes)."


def test_grid_crn_effect_compares_paired_sd_over_the_seeds_both_runs_have():
    import benchmarks.grid as grid

    def cell(sel, seed, crn, out, inside):
        gains = {"out_of_source": {"relative_gain": out}, "in_source": {"relative_gain": inside}}
        return {"condition": "demo", "proxy": {"crn": crn}, "selector": sel, "seed": seed, **gains}

    shared = [cell(grid.RANDOM, s, True, 0.0, 0.0) for s in range(4)] + [cell("x", s, True, 0.01 * s, 0.0) for s in range(4)]
    alone = [cell(grid.RANDOM, s, False, 0.0, 0.0) for s in range(3)] + [cell("x", s, False, 0.02 * s, 0.01) for s in range(3)]
    assert grid.crn_effect(shared) == []  # no run without CRN: nothing to compare
    rows = grid.crn_effect(shared + alone)
    assert rows == ["| demo | x | in-source | 0.0000 | 0.0000 | 3 |", "| demo | x | out-of-source | 0.0100 | 0.0200 | 3 |"]
