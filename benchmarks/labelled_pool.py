"""The labelled pool both quality benchmarks use: the demo corpus with its true source domains hidden
from every selector, its features, the demo bundle's scores, and each selector's choice at a ratio.

Features, embeddings and the upstream selector's embeddings are cached under ``outputs/bench/``
(keyed by the rendered texts, and the features also by the bundle's backbone settings), so a second
benchmark reuses the first one's passes.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import numpy as np

from common import OUT, demo_bundle, demo_rows
from peers import longest_select, random_select, upstream_embed, upstream_kmeans_select

if TYPE_CHECKING:
    from data_juicer_daar.scoring import Scorer

DOMAINS = ["common_sense", "reasoning", "mathematics", "coding"]
SELECTORS = ["random", "longest instruction", "k-means inter", "k-means intra", "k-means global", "DaaR overall", "DaaR balanced"]


def cached(name: str, key: str, compute: Callable[[], np.ndarray]) -> np.ndarray:
    path = OUT / f"{name}-{hashlib.sha256(key.encode()).hexdigest()[:12]}.npy"
    if path.is_file():
        return np.load(path)
    value = compute()
    OUT.mkdir(parents=True, exist_ok=True)
    np.save(path, value)
    return value


@dataclass
class Pool:
    rows: list[dict]
    truth: list[str]  # true source domain per row (never shown to a selector)
    texts: list[str]
    features: np.ndarray  # (n, d) block-L features (DaaR's probe input)
    embeddings: np.ndarray  # (n, d) token-embedding means (DaaR's stage 1)
    upstream: np.ndarray  # (n, d) the upstream k-means selector's embeddings
    reward: np.ndarray  # (n,) DaaR predicted diversity reward
    domains: list[str]  # DaaR probe's domain per row
    scorer: "Scorer"  # the demo bundle's scorer (its backbone is loaded)


def load_pool() -> Pool:
    """The demo corpus with everything each selector needs (computed once, then cached)."""
    from data_juicer_daar.scoring import Scorer
    from data_juicer_daar.text import render

    rows = demo_rows()
    texts = [render(r).text for r in rows]
    key = hashlib.sha256("\n".join(texts).encode()).hexdigest()
    bundle_dir = demo_bundle()
    scorer = Scorer(bundle_dir)
    encoded = {}

    def encode(kind: str) -> np.ndarray:
        if not encoded:
            enc = scorer.backbone.encode(texts, progress=True)
            encoded.update(features=enc.features, embeddings=enc.embeddings)
        return encoded[kind]

    def upstream_vectors() -> np.ndarray:
        from transformers import AutoModel, AutoTokenizer

        from data_juicer_daar.models import prepare_default_model, quiet_loading

        with quiet_loading():
            model = AutoModel.from_pretrained(prepare_default_model()).eval()
        # batched here to bound the benchmark's time; per-sample (the upstream way) is what
        # scoring_speed.py times; left padding makes the last position each text's last token
        return upstream_embed(model, AutoTokenizer.from_pretrained(prepare_default_model()), texts, max_length=1024, batch_size=8)

    backbone_key = key + json.dumps(scorer.bundle.manifest["backbone"], sort_keys=True)
    features = cached("features", backbone_key, lambda: encode("features"))
    embeddings = cached("embeddings", backbone_key, lambda: encode("embeddings"))
    upstream = cached("upstream_embeddings", key, upstream_vectors)
    scores = scorer.score_features(features, np.array([bool(t) for t in texts]))
    return Pool(rows, [r["source_domain"] for r in rows], texts, features, embeddings, upstream, scores.reward, scores.domains, scorer)


def selections(pool: Pool, ratio: float, among: np.ndarray | None = None) -> dict[str, list[int]]:
    """Each selector's choice of ``ratio`` of the rows ``among`` (default: all); indices into the pool."""
    from data_juicer_daar.selection import select, shares_for

    among = np.arange(len(pool.rows)) if among is None else np.asarray(among)
    k = int(ratio * len(among))
    domains = [pool.domains[i] for i in among]
    balanced = shares_for("balanced", pool.scorer.bundle.domains)
    local = {
        "random": random_select(len(among), k),
        "longest instruction": longest_select([pool.rows[i] for i in among], k),
        **{f"k-means {s}": upstream_kmeans_select(pool.upstream[among], ratio, s) for s in ("inter", "intra", "global")},
        "DaaR overall": select(pool.reward[among], domains, k).tolist(),
        "DaaR balanced": select(pool.reward[among], domains, k, balanced).tolist(),
    }
    return {name: sorted(int(among[i]) for i in local[name]) for name in SELECTORS}
