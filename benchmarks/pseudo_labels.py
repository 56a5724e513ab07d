"""Pseudo-labelling methods x evaluation pools: how well each label-free cut recovers the true domains.

For every pool of ``eval_pools.py`` and every method of ``data_juicer_daar.centroids`` (over-clustering
at several clusters-per-domain counts), the Hungarian-matched agreement of the pseudo-labels with the
true domains, averaged over k-means seeds 0-4 (sd alongside), with the default domain file's seed
examples as anchors, and the mean and minimum over the pools (the default is the best mean); ``--anchors`` also tries the first 5 seeds per domain only (the old domain file)
and a bundle's synthetic examples. Self-training on top of the over-clustered labels is tried too
(benchmark only). A supervised linear probe on the same features is the ceiling.

Usage: python -m benchmarks.pseudo_labels [--layers 3] [--bundle outputs/demo/probe]
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np

from benchmarks.common import OUT, RESULTS, machine, save
from benchmarks.eval_pools import POOLS, pool_path
from benchmarks.labelled_pool import hungarian_accuracy

SEEDS = range(5)


def encode_cached(backbone, texts: list[str], tag: str) -> tuple[np.ndarray, np.ndarray]:
    """(features, embeddings) of ``texts`` under ``backbone``, cached by texts and backbone settings."""
    key = json.dumps([backbone.fingerprint, backbone.num_layers, backbone.max_length, texts])
    path = OUT / "encoded" / f"{tag}-{hashlib.sha256(key.encode()).hexdigest()[:12]}.npz"
    if not path.is_file():
        enc = backbone.encode(texts, progress=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, features=enc.features, embeddings=enc.embeddings)
    data = np.load(path)
    return data["features"], data["embeddings"]


def self_train(features: np.ndarray, labels: np.ndarray, rounds: int = 3) -> np.ndarray:
    """Self-training from ``labels``: fit a linear probe, keep each domain's more confident half of
    its predictions as the new labels, refit; ``rounds`` times. Returns the final predictions."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    x = StandardScaler().fit_transform(features)
    keep = np.ones(len(x), dtype=bool)
    for _ in range(rounds):
        probe = LogisticRegression(max_iter=2000).fit(x[keep], labels[keep])
        probs = probe.predict_proba(x)
        labels, confidence = probe.classes_[probs.argmax(1)], probs.max(1)
        keep = np.zeros(len(x), dtype=bool)
        for k in np.unique(labels):
            members = labels == k
            keep |= members & (confidence >= np.median(confidence[members]))
    return labels


def linear_ceiling(features: np.ndarray, truth: list[str]) -> float:
    """5-fold accuracy of a logistic regression trained on the TRUE domains (what the features hold)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    return float(cross_val_score(model, features, truth, cv=5).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layers", type=int, default=3, help="decoder blocks kept, L (default: 3)")
    parser.add_argument("--bundle", default=None, help="also try this bundle's synthetic examples as anchors")
    args = parser.parse_args()

    from data_juicer_daar.backbone import Backbone
    from data_juicer_daar.bundle import read_synthetic
    from data_juicer_daar.centroids import METHODS, pseudo_labels
    from data_juicer_daar.corpus import read_jsonl
    from data_juicer_daar.domains import load_domains
    from data_juicer_daar.text import render

    backbone = Backbone(None, num_layers=args.layers)
    domains = load_domains()
    anchor_sets = {
        "seeds (12/domain)": [[render(e).text for e in d.examples] for d in domains],
        "seeds (first 5/domain)": [[render(e).text for e in d.examples[:5]] for d in domains],
    }
    if args.bundle:
        synthetic = read_synthetic(Path(args.bundle))
        anchor_sets["seeds + synthetic"] = [
            anchor_sets["seeds (12/domain)"][i] + [render(s).text for s in synthetic if s["domain"] == d.name and s["origin"] != "seed"]
            for i, d in enumerate(domains)
        ]
    anchors = {
        name: [encode_cached(backbone, texts, "anchors") for texts in per_domain] for name, per_domain in anchor_sets.items()
    }
    variants = [("kmeans_embedding", 0), ("kmeans_cosine", 0)] + [("overcluster_cosine", c) for c in (2, 3, 4, 5)]
    assert {m for m, _ in variants} == set(METHODS)
    table: dict = {}
    for pool in POOLS:
        rows = read_jsonl(pool_path(pool))
        truth = [r["source_domain"] for r in rows]
        features, embeddings = encode_cached(backbone, [render(r).text for r in rows], pool)
        table.setdefault("supervised linear probe (ceiling)", {})[pool] = {"mean": linear_ceiling(features, truth), "sd": 0.0}
        for anchor_name, enc in anchors.items():
            for method, per in variants:
                name = f"{method}{f' x{per}' if per else ''} · {anchor_name}"
                scores = [
                    hungarian_accuracy(
                        pseudo_labels(method, features, embeddings, [f for f, _ in enc], [e for _, e in enc], seed, per or 3).labels.tolist(),
                        truth,
                    )
                    for seed in SEEDS
                ]
                table.setdefault(name, {})[pool] = {"mean": float(np.mean(scores)), "sd": float(np.std(scores))}
                print(f"{pool:10s} {name:55s} {np.mean(scores):.3f} ± {np.std(scores):.3f}", flush=True)
            name = f"overcluster_cosine x3 + self-training (3 rounds) · {anchor_name}"
            scores = [
                hungarian_accuracy(self_train(features, pseudo_labels("overcluster_cosine", features, embeddings, [f for f, _ in enc], [e for _, e in enc], seed, 3).labels).tolist(), truth)
                for seed in SEEDS
            ]
            table.setdefault(name, {})[pool] = {"mean": float(np.mean(scores)), "sd": float(np.std(scores))}
            print(f"{pool:10s} {name:55s} {np.mean(scores):.3f} ± {np.std(scores):.3f}", flush=True)
    for scores in table.values():
        means = [scores[p]["mean"] for p in POOLS]
        scores["mean over pools"], scores["min over pools"] = float(np.mean(means)), min(means)
    save(f"pseudo_labels_L{args.layers}", {"machine": machine(), "layers": args.layers, "table": table})
    lines = [f"| method (L={args.layers}) · anchors | " + " | ".join(POOLS) + " | mean | min |", "|---" * (len(POOLS) + 3) + "|"]
    for name, scores in table.items():
        lines.append(f"| {name} | " + " | ".join(f"{scores[p]['mean']:.3f} ± {scores[p]['sd']:.3f}" for p in POOLS) + f" | {scores['mean over pools']:.3f} | {scores['min over pools']:.3f} |")
    (RESULTS / f"pseudo_labels_L{args.layers}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
