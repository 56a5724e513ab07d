"""Wall time of the Ray recipe vs the default executor on the demo corpus (same bundle, same rows).

Usage: python benchmarks/ray_speed.py   (starts a local Ray for the Ray run: `ray_address: local`)
"""

from __future__ import annotations

import json
import re
import shutil
import sys
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import OUT, ROOT, demo_bundle, demo_path, machine, measure, save  # noqa: E402


def run(recipe_name: str, tag: str) -> dict:
    work = OUT / f"ray_speed_{tag}"
    shutil.rmtree(work, ignore_errors=True)  # Ray appends shards to an existing export folder
    work.mkdir(parents=True)
    config = yaml.safe_load((ROOT / "recipes" / recipe_name).read_text())
    config.update(dataset_path=str(demo_path()), export_path=str(work / "selected.jsonl"), use_cache=False)
    for op in config["process"]:
        params = next(iter(op.values()))
        params["probe_path"] = str(demo_bundle())
        params.pop("stats_export_path", None)
    recipe = work / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(config))
    t = time.perf_counter()
    log, rss = measure([str(Path(sys.executable).parent / "dj-process"), "--config", str(recipe)], cwd=work)
    wall = time.perf_counter() - t
    ops = {m.group(1): float(m.group(2)) for m in re.finditer(r"OP \[(\w+)\] Done in ([\d.]+)s", log)}
    batches = [float(x) for x in re.findall(r"backbone embedded \d+ samples in ([\d.]+) s", log)]
    embedded = sum(int(x) for x in re.findall(r"backbone embedded (\d+) samples", log))
    loads = [float(x) for x in re.findall(r"model load ([\d.]+) s", log)]
    files = [work / "selected.jsonl"] if (work / "selected.jsonl").is_file() else sorted((work / "selected.jsonl").glob("*.json*"))
    ids = sorted(json.loads(line)["id"] for f in files for line in f.read_text().splitlines() if line.strip())
    return {"wall_s": wall, "ops_s": ops, "backbone_s": sum(batches), "samples_embedded": embedded, "model_loads": len(loads), "model_load_s": sum(loads),
            "peak_rss_mib_driver": rss, "selected_ids": ids}


def main() -> None:
    default = run("daar_select.yaml", "default")
    ray = run("daar_select_ray.yaml", "ray")
    same = default["selected_ids"] == ray["selected_ids"]
    for r in (default, ray):
        r["n_selected"] = len(r.pop("selected_ids"))
    result = {"machine": machine(), "default": default, "ray": ray, "same_selection": same}
    save("ray_speed", result)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
