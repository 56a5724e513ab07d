"""Sub-domains: k-means clusters of the probe set in the probe's cosine space, kept in the bundle.

A pseudo-domain is broad (all of "reasoning"); a sub-domain is one of ``count`` finer clusters of
the same features (standardised with the probe set's statistics, then L2-normalised), which on
real pools follow sources and answer formats. Selecting by score alone passes over whole
sub-domains whose rows all score low; quotas per sub-domain keep every one of them in the
selection (``selection.select``'s ``groups``). A row's sub-domain is its nearest centroid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.cluster import KMeans

from .pseudo_labels import CosineSpace

NO_SUBDOMAIN = -1  # the sub-domain of a row without usable text


@dataclass
class Subdomains:
    mean: np.ndarray  # (d,) probe-set feature mean
    scale: np.ndarray  # (d,) probe-set feature std
    centroids: np.ndarray  # (S, d) unit-length cluster centres in the cosine space

    @classmethod
    def fit(cls, features: np.ndarray, count: int, seed: int) -> tuple[Subdomains, np.ndarray]:
        """``count`` clusters (fewer when the probe set is smaller) of (n, d) ``features``; returns
        the sub-domains and each probe row's sub-domain."""
        space = CosineSpace(features)
        x = space(features.astype(np.float64))
        km = KMeans(n_clusters=min(count, len(x)), init="k-means++", n_init=1, random_state=seed).fit(x)
        c = km.cluster_centers_ / (np.linalg.norm(km.cluster_centers_, axis=1, keepdims=True) + 1e-12)
        subs = cls(space.mean.astype(np.float32), space.scale.astype(np.float32), c.astype(np.float32))
        return subs, subs.assign(features)

    @property
    def count(self) -> int:
        return len(self.centroids)

    def assign(self, features: np.ndarray) -> np.ndarray:
        """(n,) int64: the sub-domain (nearest centroid by cosine) of each row of (n, d) ``features``."""
        z = (features.astype(np.float64) - self.mean) / self.scale
        return np.argmax(z @ self.centroids.T.astype(np.float64), axis=1).astype(np.int64)

    def tensors(self) -> dict[str, np.ndarray]:
        """What the bundle's weights file stores (names without the ``subdomains.`` prefix)."""
        return {"mean": self.mean, "scale": self.scale, "centroids": self.centroids}
