"""Stage 1b: domain centroids and k-means pseudo-labels.

A domain's centroid is the mean embedding-layer vector of its accepted examples. The probe set
(a seeded random sample of the pool) is clustered with k-means initialised at those centroids (one
init, seeded); each probe sample's cluster is its pseudo-domain. The centroids only initialise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.cluster import KMeans


@dataclass
class PseudoLabels:
    labels: np.ndarray  # (n,) int: pseudo-domain per probe sample
    cluster_sizes: list[int]  # samples per domain, bundle order
    centroid_shift: list[float]  # cosine distance between each initial centroid and its final centre


def centroids(vectors_per_domain: list[np.ndarray]) -> np.ndarray:
    """(K, d) mean vector of each domain's examples."""
    return np.stack([v.mean(axis=0) for v in vectors_per_domain]).astype(np.float64)


def pseudo_labels(embeddings: np.ndarray, init: np.ndarray, seed: int) -> PseudoLabels:
    """k-means over ``embeddings`` (n, d) started at ``init`` (K, d)."""
    k = init.shape[0]
    if embeddings.shape[0] < k:
        raise ValueError(f"need at least K={k} probe samples for {k} domains, got {embeddings.shape[0]}")
    km = KMeans(n_clusters=k, init=init, n_init=1, random_state=seed).fit(embeddings.astype(np.float64))
    final = km.cluster_centers_
    cos = (final * init).sum(1) / (np.linalg.norm(final, axis=1) * np.linalg.norm(init, axis=1) + 1e-12)
    return PseudoLabels(
        labels=km.labels_.astype(np.int64),
        cluster_sizes=np.bincount(km.labels_, minlength=k).tolist(),
        centroid_shift=[round(float(1 - c), 6) for c in cos],
    )
