"""Stage 1b: domain centroids and pseudo-labels for the probe set.

A domain's centroid is the mean vector of its accepted examples (seeds, plus synthetic ones when
generation runs). Three ways of cutting the probe set into K pseudo-domains, selectable by name:

* ``kmeans_embedding`` (the paper's): k-means on embedding-layer means, one init at the centroids.
* ``kmeans_cosine``: the same on block-L features in cosine geometry (standardised with the probe
  set's statistics, then L2-normalised).
* ``overcluster_cosine`` (default): k-means++ into ``clusters_per_domain`` x K clusters in that
  geometry; a logistic regression fitted on the domains' examples names each probe sample's likeliest
  domain, and each cluster takes the domain most of its members were given. A big
  domain may then span several clusters and a small one keep its own (a K-cluster cut splits the big
  one instead), and a cluster votes as a whole, so single ambiguous rows follow their neighbours.

The default is the measured winner over three labelled pools (``benchmarks/pseudo_labels.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.cluster import KMeans
from sklearn.linear_model import LogisticRegression

from ..errors import ConfigError
from ..options import OneOf

METHODS = ("overcluster_cosine", "kmeans_cosine", "kmeans_embedding")
#: the rule of the method setting (``TrainConfig.pseudo_labels`` declares it as its check)
METHOD = OneOf(METHODS)


@dataclass
class PseudoLabels:
    labels: np.ndarray  # (n,) int: pseudo-domain per probe sample
    cluster_sizes: list[int]  # samples per domain, bundle order
    clusters: int  # k-means clusters the probe set was cut into (K unless over-clustering)
    guesses: np.ndarray  # (n,) int: each sample's own likeliest domain (over-clustering), else ``labels``


def centroids(vectors_per_domain: list[np.ndarray]) -> np.ndarray:
    """(K, d) mean vector of each domain's examples."""
    return np.stack([v.mean(axis=0) for v in vectors_per_domain]).astype(np.float64)


class CosineSpace:
    """Standardise with the probe set's mean/std, then project to the unit sphere."""

    def __init__(self, probe: np.ndarray) -> None:
        self.mean = probe.mean(0, dtype=np.float64)  # (d,)
        self.scale = probe.std(0, dtype=np.float64) + 1e-6  # (d,)

    def __call__(self, x: np.ndarray) -> np.ndarray:  # (n, d) -> (n, d), unit rows
        z = (x - self.mean) / self.scale
        return z / (np.linalg.norm(z, axis=1, keepdims=True) + 1e-12)


def _kmeans(x: np.ndarray, init: np.ndarray | int, seed: int) -> KMeans:
    seeded = not isinstance(init, int)
    n_clusters = init.shape[0] if seeded else init
    return KMeans(n_clusters=n_clusters, init=init if seeded else "k-means++", n_init=1, random_state=seed).fit(x)


def pseudo_labels(
    method: str,
    features: np.ndarray,
    embeddings: np.ndarray,
    anchor_features: list[np.ndarray],
    anchor_embeddings: list[np.ndarray],
    seed: int,
    clusters_per_domain: int = 3,
) -> PseudoLabels:
    """Pseudo-domain of each probe sample.

    ``features``/``embeddings`` are the probe set's (n, d) block-L and embedding-layer vectors;
    ``anchor_*`` hold one (m_k, d) array of example vectors per domain.
    """
    k = len(anchor_features)
    METHOD.check("pseudo_labels", method)
    if features.shape[0] < k:
        raise ConfigError(f"need at least K={k} probe samples for {k} domains, got {features.shape[0]}")
    if method == "kmeans_embedding":
        km = _kmeans(embeddings.astype(np.float64), centroids(anchor_embeddings), seed)
        labels, clusters = km.labels_, k
        guess = labels
    else:
        space = CosineSpace(features)
        x = space(features.astype(np.float64))  # (n, d)
        anchors = [space(a.astype(np.float64)) for a in anchor_features]  # K x (m_k, d)
        if method == "kmeans_cosine":
            labels, clusters = _kmeans(x, centroids(anchors), seed).labels_, k
            guess = labels
        else:
            clusters = min(k * clusters_per_domain, x.shape[0])
            members = _kmeans(x, clusters, seed).labels_  # (n,)
            owners = np.concatenate([np.full(len(a), i) for i, a in enumerate(anchors)])
            guess = LogisticRegression(class_weight="balanced", max_iter=2000).fit(np.vstack(anchors), owners).predict(x)  # (n,)
            votes = np.zeros((clusters, k))  # each member votes for its likeliest domain
            np.add.at(votes, (members, guess), 1)
            labels = votes.argmax(1)[members]
    labels = np.asarray(labels, dtype=np.int64)
    return PseudoLabels(labels, np.bincount(labels, minlength=k).tolist(), int(clusters), np.asarray(guess, dtype=np.int64))
