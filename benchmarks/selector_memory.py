"""What the two selector ops add to the driver's memory, per row, on pools of 10^5 and 10^6 scored rows.

Each run builds, in a fresh process, a pool whose rows already carry the filter's stats and the
mapper's meta (as in the shipped recipe, so nothing is scored), then runs one selector
(``balanced + coverage``, 10 %) and samples the process's resident anonymous memory (``RssAnon``)
every 10 ms. The growth over the memory held before the selector ran, divided by the rows, is the
selector's cost per row in the driver:

* ``default``: ``daar_topk_reward_selector`` on the default executor's dataset.
* ``ray``: ``daar_topk_reward_ray_selector``'s driver side under a local Ray (one node, 2 CPUs): the
  (position, score, domain, sub-domain) columns gathered from the blocks, and the pick.

Usage: python -m benchmarks.selector_memory [--rows 100000,1000000]   (results/selector_memory.json)
"""

from __future__ import annotations

import argparse
import gc
import json
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

from benchmarks.common import machine, save
from data_juicer_daar.options import int_list

DOMAINS = ["mathematics", "coding", "reasoning", "common_sense"]


def anon_mib() -> float:
    text = Path("/proc/self/status").read_text()
    return int(re.search(r"^RssAnon:\s+(\d+)", text, re.M).group(1)) / 1024


class Peak:
    def __init__(self) -> None:
        self.peak, self._stop = anon_mib(), threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, anon_mib())

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return max(self.peak, anon_mib())


def table(rows: int, tag: str):
    """A scored pool as Arrow columns: text, the filter's stats and the mapper's meta."""
    import numpy as np
    import pyarrow as pa

    from data_juicer_daar import keys

    rng = np.random.default_rng(0)
    domain = rng.choice(len(DOMAINS), size=rows, p=[0.6, 0.25, 0.1, 0.05])
    stats = pa.StructArray.from_arrays(
        [pa.array(rng.random(rows) * 1.38), pa.array(rng.random(rows)), pa.array([tag] * rows)],
        names=[keys.SCORES["probe_entropy"].stats_key, keys.SCORES["predictor"].stats_key, keys.SCORING_TAG],
    )
    meta = pa.StructArray.from_arrays(
        [pa.array(np.asarray(DOMAINS, dtype=object)[domain]), pa.array(rng.integers(0, 48, size=rows)), pa.array([tag] * rows)],
        names=[keys.DOMAIN, keys.SUBDOMAIN, keys.SCORING_TAG],
    )
    text = pa.array([f"row {i}" for i in range(rows)])
    from data_juicer.utils.constant import Fields

    return pa.table({"text": text, Fields.stats: stats, Fields.meta: meta})


def one(rows: int, kind: str, bundle: str) -> dict:
    from data_juicer_daar.ops import DaarTopkRewardRaySelector, DaarTopkRewardSelector

    params = {"bundle_path": bundle, "top_ratio": 0.1, "mode": "balanced", "coverage": True, "score_store": False}
    if kind == "default":
        from data_juicer.core.data import NestedDataset
        from datasets import Dataset

        op = DaarTopkRewardSelector(**params)
        ds = NestedDataset(Dataset(table(rows, op.tag)))
        gc.collect()
        base, peak, t = anon_mib(), Peak(), time.perf_counter()
        kept = len(op.run(ds))
    else:
        import ray

        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        op = DaarTopkRewardRaySelector(**params, watch_ray_head=False)
        ds = ray.data.from_arrow(table(rows, op.tag)).materialize()
        gc.collect()
        base, peak, t = anon_mib(), Peak(), time.perf_counter()
        kept = op.run(ds).count()
    seconds, top = time.perf_counter() - t, peak.stop()
    return {"seconds": seconds, "before_mib": base, "peak_mib": top, "bytes_per_row": (top - base) * 2**20 / rows, "kept": kept}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int_list, default=[100000, 1000000], help="pool sizes, comma-separated")
    parser.add_argument("--bundle", default=None, help="a bundle (default: the million-row benchmark's tiny bundle)")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        rows, kind, bundle = json.loads(args.child)
        print(json.dumps(one(rows, kind, bundle)))
        return
    if args.bundle is None:
        from benchmarks.million_rows import WORK, setup

        WORK.mkdir(parents=True, exist_ok=True)
        bundle = str(setup())
    else:
        bundle = args.bundle
    results = {}
    print("| selector | rows | seconds | memory before MiB | peak MiB | added bytes per row |")
    print("|---|---:|---:|---:|---:|---:|")
    for rows in args.rows:
        for kind in ("default", "ray"):
            out = subprocess.run(
                [sys.executable, "-m", "benchmarks.selector_memory", "--child", json.dumps([rows, kind, bundle])],
                capture_output=True,
                text=True,
            )
            if out.returncode:
                raise SystemExit(out.stderr[-3000:])
            r = json.loads(out.stdout.strip().splitlines()[-1])
            results.setdefault(kind, {})[str(rows)] = r
            print(f"| {kind} | {rows:,} | {r['seconds']:.1f} | {r['before_mib']:.0f} | {r['peak_mib']:.0f} | {r['bytes_per_row']:.0f} |")
    save("selector_memory", {"machine": machine(), "results": results})


if __name__ == "__main__":
    main()
