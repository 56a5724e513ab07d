"""Data-Juicer's Ray executor on a local Ray cluster started and stopped here: same rows selected."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from helpers import HOSTILE, dj, embedded, gone, run_until_killed, theme_rows, write_jsonl

BIN = Path(sys.executable).parent


def run_env() -> dict:
    """The environment subprocesses run in (read at each call: each test has its own score store)."""
    return {**os.environ, "HF_HUB_OFFLINE": "1", "RAY_DEDUP_LOGS": "0"}


pytestmark = pytest.mark.slow  # a Ray cluster and dj-process in subprocesses


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory):
    temp = tmp_path_factory.mktemp("ray")
    start = [
        str(BIN / "ray"),
        "start",
        "--head",
        "--num-cpus",
        "2",
        "--include-dashboard=false",
        f"--temp-dir={temp}",
        "--disable-usage-stats",
    ]
    subprocess.run(start, check=True, env=run_env(), capture_output=True, timeout=300)
    yield "auto"
    subprocess.run([str(BIN / "ray"), "stop", "--force"], env=run_env(), capture_output=True, timeout=300)


def exported_rows(path: Path) -> list[dict]:
    # the default executor writes one file; Ray may write a folder of shards at the export path
    files = [path] if path.is_file() else sorted(p for p in path.glob("*.json*") if p.is_file())
    return [json.loads(line) for f in files for line in f.read_text().splitlines() if line.strip()]


def run_recipe(tmp_path, name, pool, bundle, selector, extra=None, export_stats=True, store=None, **params):
    stats = {"stats_export_path": str(tmp_path / f"{name}-scored.jsonl")} if export_stats else {}
    # float32: these tests compare executors row for row, and bfloat16 rounds by batch shape (another
    # executor batches rows differently, which moved a near-tie at the cut-off: docs/ops.md, number format)
    fp32 = {"bundle_path": str(bundle), "model_dtype": "float32"}
    process = [
        {"daar_domain_probe_mapper": fp32},
        {"daar_diversity_score_filter": {**fp32, **stats}},
        {selector: {**fp32, **params}},
    ]
    config = {
        "project_name": name,
        "dataset_path": str(pool),
        "export_path": str(tmp_path / f"{name}-out" / "selected.jsonl"),
        "text_keys": "instruction",
        "process": process,
        **(extra or {}),
    }
    recipe = tmp_path / f"{name}.yaml"
    recipe.write_text(yaml.safe_dump(config))
    # a store of its own unless given: each run here scores every row itself
    store = store or tmp_path / f"{name}-store"
    result = dj("dj-process", recipe, tmp_path, env={**run_env(), "DAAR_SCORE_STORE": str(store)}, timeout=900)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    embedded = sum(int(n) for n in re.findall(r"backbone embedded (\d+) samples", result.stdout + result.stderr))
    return exported_rows(tmp_path / f"{name}-out" / "selected.jsonl"), embedded


@pytest.mark.parametrize(
    "params, export_stats",
    [
        ({"top_ratio": 0.2}, True),
        ({"topk": 50, "mode": "custom", "domain_ratios": {"coding": 0.5, "mathematics": 0.5}, "coverage": True}, False),
        ({"top_ratio": 0.3, "mode": "balanced", "share_exponent": 0.5, "rate_cap": 1.25, "coverage": True}, False),
    ],
)
def test_ray_and_default_select_the_same_rows(ray_cluster, tiny_bundle, tmp_path, params, export_stats):
    # ~300 rows, odd ones included; a column mixing JSON types (NON_STRING) is refused by Ray's own
    # pyarrow JSON reader before any op runs, so it is exercised under the default executor only
    rows = theme_rows(72) + HOSTILE[:-1]
    pool = write_jsonl(tmp_path / "pool.jsonl", rows)
    default, _ = run_recipe(tmp_path, "default", pool, tiny_bundle, "daar_topk_reward_selector", **params)
    ray, embedded = run_recipe(
        tmp_path,
        "ray",
        pool,
        tiny_bundle,
        "daar_topk_reward_ray_selector",
        {"executor_type": "ray", "ray_address": ray_cluster},
        export_stats=export_stats,
        **params,
    )
    expected = params.get("topk") or int(params["top_ratio"] * len(rows))
    assert len(default) == expected
    assert sorted(r["id"] for r in ray) == sorted(r["id"] for r in default)
    if not export_stats:
        # Ray Data is lazy, yet the backbone ran once per sample. (Data-Juicer's stats export
        # executes the lazy pipeline once more by itself, so it is left out of this count.)
        assert embedded == len(rows)
        return
    scored = exported_rows(tmp_path / "ray-scored.jsonl")
    assert sorted(r["id"] for r in scored) == sorted(r["id"] for r in rows)  # nothing lost under Ray
    by_id = {r["id"]: r for r in scored}
    assert by_id["empty"]["__dj__meta__"]["daar_domain"] == "<no text>"
    assert by_id["huge"]["__dj__meta__"]["daar_domain"] != "<no text>"


def test_ray_selector_without_scores_fails_with_one_line(ray_cluster, tiny_bundle, tmp_path):
    pool = write_jsonl(tmp_path / "pool.jsonl", theme_rows(5))
    config = {
        "project_name": "x",
        "dataset_path": str(pool),
        "export_path": str(tmp_path / "out" / "s.jsonl"),
        "text_keys": "instruction",
        "executor_type": "ray",
        "ray_address": ray_cluster,
        "process": [{"daar_topk_reward_ray_selector": {"bundle_path": str(tiny_bundle), "topk": 3}}],
    }
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump(config))
    result = dj("dj-process", recipe, tmp_path, env=run_env(), timeout=900)
    assert result.returncode != 0
    # the default rule (balanced + coverage) reads each row's domain and sub-domain too
    assert "put daar_domain_probe_mapper and daar_diversity_score_filter (same bundle_path) before this op" in result.stdout + result.stderr


def write_shards(folder: Path, rows: list[dict], fmt: str, shards: int = 3) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder.mkdir()
    size = -(-len(rows) // shards)
    for i in range(shards):
        part = rows[i * size : (i + 1) * size]
        if fmt == "jsonl":
            write_jsonl(folder / f"part-{i}.jsonl", part)
        else:
            pq.write_table(pa.Table.from_pylist(part), folder / f"part-{i}.parquet")
    return folder


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_pool_in_shards_selects_like_one_file(ray_cluster, tiny_bundle, tmp_path, fmt):
    rows = theme_rows(60)
    params = {"top_ratio": 0.2, "mode": "balanced", "coverage": True}
    one_file, _ = run_recipe(
        tmp_path, "file", write_jsonl(tmp_path / "pool.jsonl", rows), tiny_bundle, "daar_topk_reward_selector", **params
    )
    folder = write_shards(tmp_path / "shards", rows, fmt)
    default, _ = run_recipe(tmp_path, "default", folder, tiny_bundle, "daar_topk_reward_selector", **params)
    ray, _ = run_recipe(
        tmp_path,
        "ray",
        folder,
        tiny_bundle,
        "daar_topk_reward_ray_selector",
        {"executor_type": "ray", "ray_address": ray_cluster},
        export_stats=False,
        **params,
    )
    assert len(one_file) == 48
    assert sorted(r["id"] for r in default) == sorted(r["id"] for r in one_file)
    assert sorted(r["id"] for r in ray) == sorted(r["id"] for r in one_file)


def test_folder_mixing_formats_is_refused_at_start(tiny_bundle, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = theme_rows(10)
    folder = tmp_path / "mixed"
    folder.mkdir()
    write_jsonl(folder / "a.jsonl", rows[:30])
    pq.write_table(pa.Table.from_pylist(rows[30:]), folder / "b.parquet")
    config = {
        "project_name": "x",
        "dataset_path": str(folder),
        "export_path": str(tmp_path / "out" / "s.jsonl"),
        "text_keys": "instruction",
        "process": [{"daar_domain_probe_mapper": {"bundle_path": str(tiny_bundle)}}],
    }
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump(config))
    result = dj("dj-process", recipe, tmp_path, env=run_env(), timeout=900)
    assert result.returncode != 0
    assert f"{folder} holds 1 JSON file(s) and 1 Parquet file(s): Data-Juicer reads one format per folder" in result.stdout + result.stderr
    assert not (tmp_path / "out" / "s.jsonl").exists()


def test_ray_started_by_the_run_itself(tiny_bundle, tmp_path):
    # `ray_address: local`, as the shipped Ray recipe: Data-Juicer starts Ray and shuts it down at the
    # end; the ops' head watch must take that for the end of the run, not a lost head
    rows = theme_rows(25)
    ray, _ = run_recipe(
        tmp_path,
        "local",
        write_jsonl(tmp_path / "pool.jsonl", rows),
        tiny_bundle,
        "daar_topk_reward_ray_selector",
        {"executor_type": "ray", "ray_address": "local"},
        export_stats=False,
        top_ratio=0.2,
    )
    assert len(ray) == 20


@pytest.mark.parametrize("runner", ["dj-process", "daar process"])
def test_the_shipped_ray_recipe_runs_as_written(tiny_bundle, tmp_path, runner):
    # recipes/daar_select_ray.yaml with only its paths changed: a folder export (no suffix), Ray started by the run
    config = yaml.safe_load((Path(__file__).resolve().parents[2] / "recipes" / "daar_select_ray.yaml").read_text())
    config["dataset_path"] = str(write_jsonl(tmp_path / "demo_corpus.jsonl", theme_rows(25)))
    config["export_path"] = str(tmp_path / "outputs" / "selected_ray")
    for op in config["process"]:
        next(iter(op.values()))["bundle_path"] = str(tiny_bundle)
    recipe = tmp_path / "daar_select_ray.yaml"
    recipe.write_text(yaml.safe_dump(config))
    command = [str(BIN / "dj-process")] if runner == "dj-process" else [str(BIN / "daar"), "process"]
    result = subprocess.run([*command, "--config", str(recipe)], cwd=tmp_path, env=run_env(), capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    selected = exported_rows(tmp_path / "outputs" / "selected_ray")
    assert len(selected) == 20 and len({r["id"] for r in selected}) == 20
    assert not [p.name for p in (tmp_path / "outputs").iterdir() if p.name.startswith(".")]  # nothing left aside


def test_a_killed_ray_run_resumes_from_the_score_store(ray_cluster, tiny_bundle, tmp_path):
    rows = theme_rows(500)[:2000]
    pool = write_jsonl(tmp_path / "pool.jsonl", rows)
    op = {"bundle_path": str(tiny_bundle), "model_dtype": "float32", "batch_size": 10}
    config = {
        "project_name": "resume",
        "dataset_path": str(pool),
        "export_path": str(tmp_path / "out" / "selected.jsonl"),
        "text_keys": "instruction",
        "executor_type": "ray",
        "ray_address": ray_cluster,
        "process": [
            {"daar_domain_probe_mapper": op},
            {"daar_diversity_score_filter": op},
            {"daar_topk_reward_ray_selector": {**op, "top_ratio": 0.1, "mode": "balanced", "coverage": True}},
        ],
    }
    recipe = tmp_path / "resume.yaml"
    recipe.write_text(yaml.safe_dump(config))
    env = {**run_env(), "DAAR_PROGRESS_SECONDS": "0.5"}
    first = run_until_killed([str(BIN / "dj-process"), "--config", str(recipe)], tmp_path, env, lines=2)
    assert re.search(r"daar_domain_probe_mapper: [\d,]+ of 2,000 rows \(.*rows/s, ETA", first), first[-3000:]
    assert gone(str(recipe), seconds=30)
    done = embedded(first)
    again = dj("dj-process", recipe, tmp_path, env=env, timeout=900)
    assert again.returncode == 0, (again.stdout + again.stderr)[-4000:]
    rescored = embedded(again.stdout + again.stderr) - (len(rows) - done)
    assert 0 < done < len(rows) and rescored <= 2 * 10  # at most the batch in flight on each of the 2 CPUs
    # the default executor over the same store scores nothing (one store for both executors) and selects the same rows
    default = tmp_path / "default"
    default.mkdir()
    reference, scored = run_recipe(
        default,
        "default",
        pool,
        tiny_bundle,
        "daar_topk_reward_selector",
        store=os.environ["DAAR_SCORE_STORE"],
        top_ratio=0.1,
        mode="balanced",
        coverage=True,
    )
    assert scored == 0
    assert sorted(r["id"] for r in exported_rows(tmp_path / "out" / "selected.jsonl")) == sorted(r["id"] for r in reference)
