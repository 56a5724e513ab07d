"""Does the backbone's precision change the selection? Scores the demo corpus under one bundle in
two (device, dtype) settings and compares: ``bash scripts/bench.sh precision`` runs bfloat16 against
float32 on the CPU; ``benchmarks/gpu_check.sh`` runs bfloat16 on CUDA against float32 on the CPU.

Writes benchmarks/results/precision.json: per score (probe entropy, predictor reward) the Spearman
correlation, the largest difference, and the overlap of the top-20 % selections (overall and
balanced), plus the predicted-domain agreement and each run's seconds.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from benchmarks.common import demo_bundle, demo_rows, machine, save


def agreement(a: tuple[str, str], b: tuple[str, str], ratio: float = 0.2, limit: int | None = None) -> dict:
    """Compare the demo corpus's scores under settings ``a`` and ``b`` (each (device, dtype))."""
    from scipy.stats import spearmanr

    from data_juicer_daar.method.scoring import Scorer
    from data_juicer_daar.method.selection import TopkSpec
    from data_juicer_daar.method.text import render

    bundle = demo_bundle()
    texts = [render(r).text for r in demo_rows()][:limit]
    runs, out = [], {"rows": len(texts), "a": "/".join(a), "b": "/".join(b)}
    for side, (device, dtype) in (("a", a), ("b", b)):
        scorer = Scorer(bundle, device=device, dtype=dtype)
        start = time.perf_counter()
        runs.append(scorer.score(texts, progress=True))
        out[f"{side}_s"] = round(time.perf_counter() - start, 1)
        out[f"{side}_samples_per_s"] = round(len(texts) / out[f"{side}_s"], 1)
    x, y = runs
    out["domain_agreement"] = float(np.mean([p == q for p, q in zip(x.domains, y.domains)]))
    for score in ("probe_entropy", "predictor"):
        u, v = getattr(x, score), getattr(y, score)
        out[f"{score}_spearman"] = round(float(spearmanr(u, v).statistic), 4)
        out[f"{score}_max_abs_diff"] = float(np.abs(u - v).max())
        for mode in ("overall", "balanced"):
            spec = TopkSpec.build(None, ratio, mode, None, scorer.domains, coverage=False)
            keep_x, keep_y = set(spec.pick(u, x.domains).tolist()), set(spec.pick(v, y.domains).tolist())
            out[f"{score}_{mode}_overlap"] = round(len(keep_x & keep_y) / max(len(keep_x), 1), 4)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=None, help="score only the first N rows (default: all 2,000)")
    args = parser.parse_args()
    from data_juicer_daar.method.backbone import resolve_dtype

    result = {
        "machine": machine(),
        "auto_on_this_cpu": resolve_dtype("auto", "cpu"),
        **agreement(("cpu", "float32"), ("cpu", "bfloat16"), limit=args.limit),
    }
    print(result)
    print(f"written to {save('precision', result)}")


if __name__ == "__main__":
    main()
