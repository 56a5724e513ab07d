"""Selection quality on a labelled pool (``eval_pools.py``) with its source domains hidden from the method.

Reports (1) how well pseudo-domains agree with the true domains (Hungarian-matched accuracy), for the
pseudo-labels of training (the bundle's method, and the paper's k-means on embedding-layer means with
the same anchors) and for the trained probe's predictions, and the reward's spread; (2) for each selector at
20 %: the true-domain distribution of the selection, its normalised domain entropy and its mean
pairwise cosine distance (in the L=3 feature space, the same for every selector). Writes a JSON,
a markdown table and a PNG plot.

Usage: python -m benchmarks.selection_quality [--ratio 0.2] [--pool demo|imbalanced|held_out]
"""

from __future__ import annotations

import argparse
import math
from collections import Counter

import numpy as np
from scipy.stats import spearmanr

from benchmarks.common import RESULTS, machine, ratio, save
from benchmarks.eval_pools import POOLS
from benchmarks.labelled_pool import DOMAINS, hungarian_accuracy, load_pool, selections


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
    parser.add_argument("--pool", default="demo", choices=POOLS, help="labelled pool of eval_pools.py (default: demo)")
    args = parser.parse_args()

    from data_juicer_daar.method.bundle import read_synthetic
    from data_juicer_daar.method.pseudo_labels import pseudo_labels
    from data_juicer_daar.method.text import render
    from data_juicer_daar.method.training import Seeds

    pool = load_pool(args.pool)
    truth, features = pool.truth, pool.features
    bundle = pool.scorer.bundle
    training = bundle.manifest.training
    synthetic = read_synthetic(bundle.path)
    anchors = [pool.scorer.backbone.encode([render(s).text for s in synthetic if s["domain"] == d]) for d in bundle.domains]

    def agreement_of(method: str) -> float:
        labels = pseudo_labels(
            method,
            features,
            pool.embeddings,
            [a.features for a in anchors],
            [a.embeddings for a in anchors],
            Seeds(training["seed"])("clusters"),
            training["clusters_per_domain"],
        ).labels
        return hungarian_accuracy(labels.tolist(), truth)

    agreement = {
        f"pseudo_labels ({training['pseudo_labels']})": agreement_of(training["pseudo_labels"]),
        "pseudo_labels (kmeans_embedding, the paper's)": agreement_of("kmeans_embedding"),
        "probe_predictions": hungarian_accuracy(pool.domains, truth),
        "probe_named_domain_accuracy": float(np.mean([p == t for p, t in zip(pool.domains, truth)])),
    }
    k = int(args.ratio * len(truth))
    top = np.argsort(-pool.reward, kind="stable")[:k]
    spread = {
        "reward_below_0.1_nats": int((pool.reward < 0.1).sum()),
        f"top_{k}_rows_with_reward_below_0.1": int((pool.reward[top] < 0.1).sum()),
        "reward_mean": float(pool.reward.mean()),
        "entropy_reward_spearman": float(spearmanr(pool.reward, pool.entropy).statistic),
    }
    selected = selections(pool, args.ratio)
    table = {name: describe(idx, truth, features) for name, idx in selected.items()}
    table["whole pool"] = describe(list(range(len(truth))), truth, features)
    result = {
        "machine": machine(),
        "pool": args.pool,
        "ratio": args.ratio,
        "agreement": agreement,
        "reward_spread": spread,
        "selectors": table,
        "bundle_metrics": bundle.manifest["metrics"],
    }
    save(f"selection_quality_{args.pool}", result)

    lines = ["| selector | n | " + " | ".join(DOMAINS) + " | norm. entropy | mean pairwise cos. dist. |", "|---" * (len(DOMAINS) + 4) + "|"]
    for name, d in table.items():
        lines.append(
            f"| {name} | {d['n']} | "
            + " | ".join(f"{100 * d['shares'][x]:.1f} %" for x in DOMAINS)
            + f" | {d['norm_entropy']:.3f} | {d['mean_pairwise_cos_dist']:.4f} |"
        )
    (RESULTS / f"selection_quality_{args.pool}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print({k: round(v, 4) for k, v in {**agreement, **spread}.items()})

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
    ax.set_title(f"True-domain mix of each {int(100 * args.ratio)} % selection ({args.pool} pool)")
    ax.tick_params(axis="x", rotation=25)
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    fig.savefig(RESULTS / f"selection_quality_{args.pool}.png", dpi=110)


if __name__ == "__main__":
    main()
