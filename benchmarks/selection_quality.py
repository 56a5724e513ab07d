"""Selection quality on a labelled pool: the demo corpus with its source domains hidden from the method.

Reports (1) how well pseudo-domains agree with the true domains (Hungarian-matched accuracy), for the
k-means pseudo-labels of training and for the trained probe's predictions; (2) for each selector at
20 %: the true-domain distribution of the selection, its normalised domain entropy and its mean
pairwise cosine distance (in the L=3 feature space, the same for every selector). Writes a JSON,
a markdown table and a PNG plot.

Usage: python benchmarks/selection_quality.py [--ratio 0.2]
"""

from __future__ import annotations

import argparse
import math
import sys
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, machine, ratio, save  # noqa: E402
from labelled_pool import DOMAINS, load_pool, selections  # noqa: E402


def hungarian_accuracy(pred: list, truth: list) -> float:
    from scipy.optimize import linear_sum_assignment

    p_names, t_names = sorted(set(pred)), sorted(set(truth))
    table = np.zeros((len(p_names), len(t_names)))
    for p, t in zip(pred, truth):
        table[p_names.index(p), t_names.index(t)] += 1
    rows, cols = linear_sum_assignment(-table)
    return float(table[rows, cols].sum() / len(pred))


def describe(idx: list[int], truth: list[str], features: np.ndarray) -> dict:
    counts = Counter(truth[i] for i in idx)
    shares = np.array([counts[d] / len(idx) for d in DOMAINS])
    nz = shares[shares > 0]
    unit = features[idx] / np.linalg.norm(features[idx], axis=1, keepdims=True)
    cos = unit @ unit.T
    n = len(idx)
    return {
        "n": n,
        "shares": dict(zip(DOMAINS, shares.round(4).tolist())),
        "norm_entropy": float(-(nz * np.log(nz)).sum() / math.log(len(DOMAINS))),
        "mean_pairwise_cos_dist": float(1 - (cos.sum() - n) / (n * (n - 1))),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ratio", type=ratio, default=0.2, help="fraction each selector keeps, in (0, 1]")
    args = parser.parse_args()

    from data_juicer_daar.bundle import read_synthetic
    from data_juicer_daar.centroids import centroids, pseudo_labels
    from data_juicer_daar.text import render

    pool = load_pool()
    truth, features = pool.truth, pool.features
    bundle = pool.scorer.bundle
    synthetic = read_synthetic(bundle.path)
    backbone = pool.scorer.backbone
    per_domain = [[render(s).text for s in synthetic if s["domain"] == d] for d in bundle.domains]
    cents = centroids([backbone.encode(t).embeddings for t in per_domain])
    kmeans = pseudo_labels(pool.embeddings, cents, seed=bundle.manifest["training"]["seed"])
    agreement = {
        "kmeans_pseudo_labels": hungarian_accuracy(kmeans.labels.tolist(), truth),
        "probe_predictions": hungarian_accuracy(pool.domains, truth),
        "probe_named_domain_accuracy": float(np.mean([p == t for p, t in zip(pool.domains, truth)])),
    }
    selected = selections(pool, args.ratio)
    table = {name: describe(idx, truth, features) for name, idx in selected.items()}
    table["whole pool"] = describe(list(range(len(truth))), truth, features)
    result = {"machine": machine(), "ratio": args.ratio, "agreement": agreement, "selectors": table, "bundle_metrics": bundle.manifest["metrics"]}
    save("selection_quality", result)

    lines = ["| selector | n | " + " | ".join(DOMAINS) + " | norm. entropy | mean pairwise cos. dist. |", "|---" * (len(DOMAINS) + 4) + "|"]
    for name, d in table.items():
        lines.append(f"| {name} | {d['n']} | " + " | ".join(f"{100 * d['shares'][x]:.1f} %" for x in DOMAINS) + f" | {d['norm_entropy']:.3f} | {d['mean_pairwise_cos_dist']:.4f} |")
    (RESULTS / "selection_quality.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print({k: round(v, 4) for k, v in agreement.items()})

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4))
    names = list(table)
    bottom = np.zeros(len(names))
    for d in DOMAINS:
        vals = np.array([table[n]["shares"][d] for n in names])
        ax.bar(names, vals, bottom=bottom, label=d)
        bottom += vals
    ax.set_ylabel("share of selection (true domain)")
    ax.set_title(f"True-domain mix of each {int(100 * args.ratio)} % selection (demo corpus)")
    ax.tick_params(axis="x", rotation=25)
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    fig.savefig(RESULTS / "selection_quality.png", dpi=110)


if __name__ == "__main__":
    main()
