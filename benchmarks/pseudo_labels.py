"""Pseudo-labelling methods x evaluation pools: how well each label-free cut recovers the true domains.

For every pool of ``eval_pools.py`` and every method of ``data_juicer_daar.method.pseudo_labels`` (over-clustering
at several clusters-per-domain counts), the Hungarian-matched agreement of the pseudo-labels with the
true domains, averaged over k-means seeds 0-4 (sd alongside), with the default domain file's seed
examples as anchors, and the mean and minimum over the pools (the default is the best mean); it also
tries the first 5 seeds per domain only (the old domain file) and a bundle's synthetic examples.
Self-training on top of the over-clustered labels is tried too (benchmark only). A supervised linear
probe on the same features is the ceiling.

``--variants`` instead tries changes to the default cut (overcluster_cosine x3, 12 seeds per
domain) on all three pools: soft cluster votes, the anchor probe's regularisation, dropping the
top principal components, label spreading from the anchors, block-L features joined with the
embedding layer. The trunk runs in float32 (the format the tables were measured in).

Usage: python -m benchmarks.pseudo_labels [--layers 3] [--bundle outputs/demo/probe] [--variants]
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
    key = json.dumps([backbone.fingerprint, backbone.num_layers, backbone.max_length, backbone.dtype, texts])
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


def overcluster_variant(
    features: np.ndarray,
    anchors: list[np.ndarray],
    seed: int,
    *,
    per: int = 3,
    soft: bool = False,
    c: float = 1.0,
    drop_pcs: int = 0,
    spread: bool = False,
    vote: bool = True,
) -> np.ndarray:
    """The default cut with one change: ``soft`` votes (each member adds its domain probabilities),
    anchor probe strength ``c``, ``drop_pcs`` top principal components removed, ``spread`` (label
    spreading over a 10-NN graph from the anchors instead of the probe), ``vote=False`` (no clusters)."""
    from sklearn.cluster import KMeans
    from sklearn.linear_model import LogisticRegression
    from sklearn.semi_supervised import LabelSpreading

    from data_juicer_daar.method.pseudo_labels import CosineSpace

    space = CosineSpace(features)
    x, marks = space(features.astype(np.float64)), [space(a.astype(np.float64)) for a in anchors]
    if drop_pcs:
        mean = x.mean(0)
        top = np.linalg.svd(x - mean, full_matrices=False)[2][:drop_pcs]  # (m, d)

        def project(z: np.ndarray) -> np.ndarray:
            z = (z - mean) - ((z - mean) @ top.T) @ top
            return z / np.linalg.norm(z, axis=1, keepdims=True)

        x, marks = project(x), [project(a) for a in marks]
    k = len(marks)
    owners = np.concatenate([np.full(len(a), i) for i, a in enumerate(marks)])
    if spread:
        unlabelled = np.full(len(x), -1)
        model = LabelSpreading(kernel="knn", n_neighbors=10, alpha=0.2, max_iter=200)
        probs = model.fit(np.vstack(marks + [x]), np.concatenate([owners, unlabelled])).label_distributions_[len(owners) :]
    else:
        probs = LogisticRegression(class_weight="balanced", max_iter=2000, C=c).fit(np.vstack(marks), owners).predict_proba(x)
    guess = probs.argmax(1)
    if not vote:
        return guess
    members = KMeans(n_clusters=k * per, n_init=1, random_state=seed).fit(x).labels_
    votes = np.zeros((k * per, k))
    if soft:
        np.add.at(votes, members, probs)
    else:
        np.add.at(votes, (members, guess), 1)
    return votes.argmax(1)[members]


VARIANTS = {
    "default (overcluster_cosine x3)": {},
    "no clusters: each row's own likeliest domain": {"vote": False},
    "soft votes x3": {"soft": True},
    "soft votes x5": {"soft": True, "per": 5},
    "anchor probe C=0.1": {"c": 0.1},
    "anchor probe C=10": {"c": 10.0},
    "top principal component dropped": {"drop_pcs": 1},
    "top 3 principal components dropped": {"drop_pcs": 3},
    "label spreading from the anchors x3": {"spread": True},
    "label spreading, no clusters": {"spread": True, "vote": False},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layers", type=int, default=3, help="decoder blocks kept, L (default: 3)")
    parser.add_argument("--bundle", default=None, help="also try this bundle's synthetic examples as anchors")
    parser.add_argument("--variants", action="store_true", help="try changes to the default cut instead")
    args = parser.parse_args()

    from data_juicer_daar.method.backbone import Backbone
    from data_juicer_daar.method.bundle import read_synthetic
    from data_juicer_daar.method.corpus import read_jsonl
    from data_juicer_daar.method.domains import load_domains
    from data_juicer_daar.method.pseudo_labels import METHODS, pseudo_labels
    from data_juicer_daar.method.text import render

    backbone = Backbone(None, num_layers=args.layers, dtype="float32")
    domains = load_domains()
    if args.variants:
        return try_variants(backbone, domains, args.layers)
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
    anchors = {name: [encode_cached(backbone, texts, "anchors") for texts in per_domain] for name, per_domain in anchor_sets.items()}
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
                        pseudo_labels(
                            method, features, embeddings, [f for f, _ in enc], [e for _, e in enc], seed, per or 3
                        ).labels.tolist(),
                        truth,
                    )
                    for seed in SEEDS
                ]
                table.setdefault(name, {})[pool] = {"mean": float(np.mean(scores)), "sd": float(np.std(scores))}
                print(f"{pool:10s} {name:55s} {np.mean(scores):.3f} ± {np.std(scores):.3f}", flush=True)
            name = f"overcluster_cosine x3 + self-training (3 rounds) · {anchor_name}"
            scores = [
                hungarian_accuracy(
                    self_train(
                        features,
                        pseudo_labels("overcluster_cosine", features, embeddings, [f for f, _ in enc], [e for _, e in enc], seed, 3).labels,
                    ).tolist(),
                    truth,
                )
                for seed in SEEDS
            ]
            table.setdefault(name, {})[pool] = {"mean": float(np.mean(scores)), "sd": float(np.std(scores))}
            print(f"{pool:10s} {name:55s} {np.mean(scores):.3f} ± {np.std(scores):.3f}", flush=True)
    for scores in table.values():
        means = [scores[p]["mean"] for p in POOLS]
        scores["mean over pools"], scores["min over pools"] = float(np.mean(means)), min(means)
    write_table(f"pseudo_labels_L{args.layers}", f"method (L={args.layers}) · anchors", table, {"layers": args.layers})


def try_variants(backbone, domains, layers: int) -> None:
    """Agreement of each of ``VARIANTS`` per pool, mean ± sd over k-means seeds 0-4."""
    from data_juicer_daar.method.corpus import read_jsonl
    from data_juicer_daar.method.text import render

    encoded = [encode_cached(backbone, [render(e).text for e in d.examples], "anchors") for d in domains]
    anchors = [f for f, _ in encoded]
    pools = {}
    for pool in POOLS:
        rows = read_jsonl(pool_path(pool))
        features, embeddings = encode_cached(backbone, [render(r).text for r in rows], pool)
        pools[pool] = (features, embeddings, [r["source_domain"] for r in rows])
    cuts = {name: (lambda f, e, seed, kw=kw: overcluster_variant(f, anchors, seed, **kw)) for name, kw in VARIANTS.items()}

    def joined(f: np.ndarray, e: np.ndarray, seed: int) -> np.ndarray:
        from data_juicer_daar.method.pseudo_labels import CosineSpace

        fs, es = CosineSpace(f), CosineSpace(e)
        marks = [np.hstack([fs(a), es(b)]) for a, b in encoded]
        return overcluster_variant(np.hstack([fs(f), es(e)]), marks, seed)

    cuts["block-L features joined with the embedding layer"] = joined
    table: dict = {}
    for name, cut in cuts.items():
        for pool, (features, embeddings, truth) in pools.items():
            scores = [hungarian_accuracy(cut(features, embeddings, seed).tolist(), truth) for seed in SEEDS]
            table.setdefault(name, {})[pool] = {"mean": float(np.mean(scores)), "sd": float(np.std(scores))}
        means = [table[name][p]["mean"] for p in POOLS]
        table[name]["mean over pools"], table[name]["min over pools"] = float(np.mean(means)), min(means)
        print(f"{name:55s} " + "  ".join(f"{table[name][p]['mean']:.3f}" for p in POOLS), flush=True)
    write_table(f"pseudo_labels_L{layers}_variants", f"change to the default cut (L={layers})", table, {"layers": layers})


def write_table(name: str, title: str, table: dict, facts: dict) -> None:
    """``table`` (row -> pool -> mean/sd, plus the mean and minimum over pools) to results JSON and MD."""
    save(name, {"machine": machine(), **facts, "table": table})
    lines = [f"| {title} | " + " | ".join(POOLS) + " | mean | min |", "|---" * (len(POOLS) + 3) + "|"]
    for row, scores in table.items():
        cells = " | ".join(f"{scores[p]['mean']:.3f} ± {scores[p]['sd']:.3f}" for p in POOLS)
        lines.append(f"| {row} | {cells} | {scores['mean over pools']:.3f} | {scores['min over pools']:.3f} |")
    (RESULTS / f"{name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
