"""What the selection itself costs: time and peak memory of the pick for every share rule on
synthetic score columns of 10^5 and 10^6 rows.

Both selector ops pick with the same ``TopkSpec.pick`` on three columns (score, pseudo-domain,
sub-domain): the default executor's op reads them from the rows, the Ray op's driver gathers them
from the nodes (``dj.topk.select_on_ray``), so this measures the part both share. Each rule runs in
a fresh process, so its peak RSS is its own (minus the interpreter and numpy baseline, measured
the same way with no pick).

Usage: python -m benchmarks.selection_cost [--rows 100000,1000000]   (results/selection_cost.json)
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

from benchmarks.common import machine, save
from data_juicer_daar.options import int_list

RULES = {
    "baseline (columns only, no pick)": None,
    "overall": {"mode": "overall", "coverage": False},
    "overall + coverage": {"mode": "overall", "coverage": True},
    "balanced + coverage (shipped)": {"mode": "balanced", "coverage": True},
    "balanced α=0.5 cap=1.5 + coverage": {"mode": "balanced", "coverage": True, "share_exponent": 0.5, "rate_cap": 1.5},
    "custom + coverage": {"mode": "custom", "coverage": True, "domain_ratios": {"a": 0.5, "b": 0.3, "c": 0.2}},
}


def one(rows: int, rule: dict | None) -> dict:
    """In this process: build the columns, pick, report time and peak RSS."""
    import numpy as np

    from data_juicer_daar.method.selection import TopkSpec

    rng = np.random.default_rng(0)
    scores = rng.random(rows)
    domains = rng.choice(np.array(["a", "b", "c", "d"], dtype=object), size=rows, p=[0.6, 0.25, 0.1, 0.05]).tolist()
    groups = rng.integers(0, 48, size=rows)
    t = time.perf_counter()
    kept = 0
    if rule is not None:
        params = dict(rule)
        mode = params.pop("mode")
        ratios = params.pop("domain_ratios", None)
        spec = TopkSpec.build(None, 0.2, mode, ratios, ["a", "b", "c", "d"], **params)
        kept = len(spec.pick(scores, domains, groups))
    return {"seconds": time.perf_counter() - t, "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "kept": kept}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int_list, default=[100000, 1000000], help="pool sizes, comma-separated")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        rows, name = json.loads(args.child)
        print(json.dumps(one(rows, RULES[name])))
        return
    results = {}
    for rows in args.rows:
        for name in RULES:
            out = subprocess.run(
                [sys.executable, "-m", "benchmarks.selection_cost", "--child", json.dumps([rows, name])],
                capture_output=True,
                text=True,
                check=True,
            )
            results.setdefault(str(rows), {})[name] = json.loads(out.stdout.strip().splitlines()[-1])
        base = results[str(rows)]["baseline (columns only, no pick)"]["peak_rss_mib"]
        print(f"\n{rows:,} rows (20 % kept; 4 pseudo-domains 60/25/10/5 %, 48 sub-domains)")
        print("| rule | seconds | peak RSS MiB | over the columns' baseline | bytes per row |")
        print("|---|---:|---:|---:|---:|")
        for name, r in results[str(rows)].items():
            extra = r["peak_rss_mib"] - base
            print(f"| {name} | {r['seconds']:.2f} | {r['peak_rss_mib']:.0f} | {extra:+.0f} | {extra * 2**20 / rows:.0f} |")
    save("selection_cost", {"machine": machine(), "results": results})


if __name__ == "__main__":
    main()
