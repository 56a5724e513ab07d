"""Wall time of the Ray recipe vs the default executor on the demo corpus (same bundle, same rows).

Usage: python -m benchmarks.ray_speed   (starts a local Ray for the Ray run: `ray_address: local`)
"""

from __future__ import annotations

import json
import re

from benchmarks.common import OUT, demo_bundle, demo_path, machine, run_recipe, save


def run(recipe_name: str, tag: str) -> dict:
    work = OUT / f"ray_speed_{tag}"
    result = run_recipe(recipe_name, work, demo_path(), demo_bundle())
    log = result.pop("log")
    batches = [float(x) for x in re.findall(r"backbone embedded \d+ samples in ([\d.]+) s", log)]
    loads = [float(x) for x in re.findall(r"model load ([\d.]+) s", log)]
    out = work / "selected.jsonl"
    files = [out] if out.is_file() else sorted(out.glob("*.json*"))
    ids = sorted(json.loads(line)["id"] for f in files for line in f.read_text().splitlines() if line.strip())
    return {
        **result,
        "backbone_s": sum(batches),
        "samples_embedded": sum(int(x) for x in re.findall(r"backbone embedded (\d+) samples", log)),
        "model_loads": len(loads),
        "model_load_s": sum(loads),
        "selected_ids": ids,
    }


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
