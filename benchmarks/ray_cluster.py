"""The Ray recipe on a multi-node Ray cluster beside one raylet and the default executor, and the
driver's memory as the pool grows.

Usage: python -m benchmarks.ray_cluster [--part demo|growth|all] [--sizes 2000,8000,32000]

* ``demo``: the demo corpus with the demo bundle (default model), as one JSONL file and as the same
  rows in 8 JSONL shards: the default executor, one raylet (``ray_address: local``) and a cluster of
  a head and two worker nodes (Ray's ``cluster_utils.Cluster`` on this machine, each node its own
  raylet): wall time, rows and model loads per node, the driver's peak RSS, same selection; and
  the default executor on file and shards in float32 (the default format is bfloat16 on this CPU).
* ``growth``: pools of 2k/8k/32k themed rows in 8 shards scored by a tiny random model through the
  cluster: the driver's peak RSS (it holds position, score, domain and sub-domain per row only).

Writes benchmarks/results/ray_cluster.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import tempfile
from collections import Counter
from pathlib import Path

from benchmarks.common import OUT, demo_bundle, demo_path, demo_rows, machine, run_recipe, save

SHARDS = 8
os.environ["RAY_DEDUP_LOGS"] = "0"  # every worker's log line reaches the driver: rows per node are counted from them


@contextlib.contextmanager
def ray_cluster(workers: int = 2, cpus: int = 2):
    """A head and ``workers`` worker nodes with ``cpus`` logical CPUs each; yields its address."""
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": cpus, "include_dashboard": False})
    for _ in range(workers):
        cluster.add_node(num_cpus=cpus)
    cluster.wait_for_nodes()
    try:
        yield cluster.address
    finally:
        cluster.shutdown()


def write_shards(rows: list[dict], folder: Path, shards: int = SHARDS) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    size = -(-len(rows) // shards)
    for i in range(shards):
        part = rows[i * size : (i + 1) * size]
        (folder / f"part-{i:02d}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in part), encoding="utf-8")
    return folder


def selected_ids(work: Path) -> list[str]:
    out = work / "selected.jsonl"
    files = [out] if out.is_file() else sorted(out.glob("*.json*"))
    return [json.loads(line)["id"] for f in files for line in f.read_text().splitlines() if line.strip()]


def per_node(log: str) -> dict:
    """Rows the mapper embedded and models loaded, per Ray node (from the ops' log lines)."""
    rows, loads = Counter(), Counter()
    for m in re.finditer(r"backbone embedded (\d+) samples in [\d.]+ s \([^)]*?(, model load [\d.]+ s)?\) on Ray node (\w+)", log):
        rows[m.group(3)] += int(m.group(1))
        loads[m.group(3)] += bool(m.group(2))
    return {"rows_per_node": dict(rows), "model_loads_per_node": dict(loads)}


def run(tag: str, recipe: str, dataset: Path, bundle: Path, op_params: dict | None = None, **overrides) -> dict:
    work = OUT / f"ray_cluster_{tag}"
    result = run_recipe(recipe, work, dataset, bundle, op_params, **overrides)
    log = result.pop("log")
    ids = selected_ids(work)
    return {
        "wall_s": round(result["wall_s"], 1),
        "driver_peak_rss_mib": round(result["peak_rss_mib"]),
        **per_node(log),
        "n_selected": len(ids),
        "ids": ids,
    }


def demo_part() -> dict:
    bundle, pool = demo_bundle(), demo_path()
    shards = write_shards(demo_rows(), OUT / "ray_cluster_demo_shards")
    out = {"default": run("default", "daar_select.yaml", pool, bundle), "one_raylet": run("local", "daar_select_ray.yaml", pool, bundle)}
    with ray_cluster() as address:
        out["cluster_file"] = run("cluster_file", "daar_select_ray.yaml", pool, bundle, ray_address=address)
        out["cluster_shards"] = run("cluster_shards", "daar_select_ray.yaml", shards, bundle, ray_address=address)
    out["default_shards"] = run("default_shards", "daar_select.yaml", shards, bundle)
    # float32 beside: is a difference between file and shards the number format's rounding?
    fp32 = {"model_dtype": "float32"}
    out["default_float32"] = run("default_float32", "daar_select.yaml", pool, bundle, fp32)
    out["default_shards_float32"] = run("default_shards_float32", "daar_select.yaml", shards, bundle, fp32)
    for name, r in out.items():
        reference = out["default_float32" if name.endswith("float32") else "default"]["ids"]
        r["same_ids_and_order"] = r["ids"] == reference
        r["same_ids"] = sorted(r["ids"]) == sorted(reference)
        r["rows_not_in_reference"] = len(set(r["ids"]) - set(reference))
    for r in out.values():
        r.pop("ids")
    return out


def growth_part(sizes: list[int]) -> dict:
    from data_juicer_daar.method.corpus import read_jsonl
    from data_juicer_daar.method.training import DaarTrainer, HeadConfig, TrainConfig
    from tests.tiny import build_tiny_model, theme_rows

    tmp = Path(tempfile.mkdtemp(prefix="daar-growth-"))
    model = build_tiny_model(tmp / "model")
    corpus = write_shards(theme_rows(30), tmp / "corpus", shards=1) / "part-00.jsonl"
    bundle = tmp / "bundle"
    DaarTrainer(TrainConfig(model=str(model), num_layers=2, max_length=64, heads=HeadConfig(max_epochs=30), folds=3)).fit(
        read_jsonl(corpus)
    ).save(bundle)
    out = {}
    with ray_cluster() as address:
        for n in sizes:
            pool = write_shards(theme_rows(n // 4), tmp / f"pool_{n}")
            r = run(f"growth_{n}", "daar_select_ray.yaml", pool, bundle, ray_address=address)
            r.pop("ids")
            out[str(n)] = r
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=("demo", "growth", "all"), default="all")
    parser.add_argument("--sizes", default="2000,8000,32000", help="pool sizes of the growth part")
    args = parser.parse_args()
    result = {"machine": machine()}
    if args.part in ("demo", "all"):
        result["demo"] = demo_part()
    if args.part in ("growth", "all"):
        result["growth"] = growth_part([int(x) for x in args.sizes.split(",")])
    save("ray_cluster" if args.part == "all" else f"ray_cluster_{args.part}", result)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
