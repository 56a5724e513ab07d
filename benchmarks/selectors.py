"""Every selector the quality benchmarks compare, by name: DaaR's modes and the peers a user would
pick instead, each re-implemented here from its description (never inside the product).

A selector is ``f(view, k, seed) -> indices into the view``, where ``view`` is a pool restricted to
the rows a selection may use. Seeded selectors draw from ``view.noise``, one random key per row for
the seed: with common random numbers (the default) every selector of a seed reads the same keys, so
a paired difference measures the rule, not the draw. The others are deterministic and vary only by
the fine-tune's row order downstream.

Peers:
* random: a seeded 20 % (the rows of lowest key). Stratified: the same, an equal share per DaaR pseudo-domain.
* kMQ-style (k-means clusters of the same features, a quota per cluster proportional to its size,
  random within): the bundle's sub-domains with random scores.
* CCS-style: the score range cut into equal-width bins; the budget spread over the bins as evenly
  as their sizes allow (a bin smaller than its share gives the rest to the others); random within.
* importance weight: rows sampled without replacement in proportion to the paper's
  w(x) = sum_k lambda_k p(k|x), lambda_k = target share (1/K) / pool share of domain k.
* blend: half the budget the top of the score (balanced), half a sub-domain-stratified random
  sample of the rest.
* longest instruction; the upstream k-means selector (its embeddings are a long pass, computed on
  first use).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from benchmarks.peers import longest_select, upstream_kmeans_select
from data_juicer_daar import keys
from data_juicer_daar.method.selection import TopkSpec, equal_shares, quotas, select
from data_juicer_daar.method.subdomains import Subdomains


@dataclass
class View:
    """The selectable rows of a pool: DaaR's outputs per row, and what the peers need."""

    rows: list[dict]
    features: np.ndarray  # (n, d) block-L features
    entropy: np.ndarray  # (n,) the probe's calibrated entropy
    reward: np.ndarray  # (n,) the predictor's reward
    probs: np.ndarray  # (n, K) the probe's softmax
    domains: list[str]  # DaaR pseudo-domain per row
    subdomains: np.ndarray  # (n,) the bundle's sub-domain per row
    domain_names: list[str]
    upstream: Callable[[], np.ndarray]  # the upstream selector's embeddings (lazy)
    noise: np.ndarray  # (n,) the seed's random key per row, in [0, 1)

    @property
    def scores(self) -> dict[str, np.ndarray]:
        """Each score of ``keys.SCORES`` by its name."""
        return {"probe_entropy": self.entropy, "predictor": self.reward}


def _groups(view: View, count: int | None) -> np.ndarray:
    """The bundle's sub-domains, or ``count`` clusters fitted here on the same features."""
    if count is None:
        return view.subdomains
    subs, _ = Subdomains.fit(view.features, count, seed=0)
    return subs.assign(view.features)


def random_sel(view: View, k: int, seed: int) -> np.ndarray:
    return np.sort(np.argsort(view.noise, kind="stable")[:k])


def stratified(view: View, k: int, seed: int) -> np.ndarray:
    return select(-view.noise, view.domains, k, equal_shares(view.domain_names))


def kmq(count: int | None = None) -> Callable:
    def run(view: View, k: int, seed: int) -> np.ndarray:
        return select(-view.noise, view.domains, k, groups=_groups(view, count))

    return run


def score_bins(bins: int = 10) -> Callable:
    def run(view: View, k: int, seed: int) -> np.ndarray:
        s = view.entropy
        edges = np.linspace(s.min(), s.max() + 1e-12, bins + 1)
        cell = np.clip(np.digitize(s, edges) - 1, 0, bins - 1)
        sizes = np.bincount(cell, minlength=bins)
        share = np.zeros(bins, dtype=int)
        left, open_bins = k, [b for b in range(bins) if sizes[b]]
        while left and open_bins:  # even shares; a bin that fills up hands its rest to the others
            q = quotas(left, {b: 1 / len(open_bins) for b in open_bins})
            for b in open_bins:
                share[b] += min(q[b], sizes[b] - share[b])
            left = k - int(share.sum())
            open_bins = [b for b in open_bins if share[b] < sizes[b]]
        keep = []
        for b in range(bins):
            members = np.flatnonzero(cell == b)
            keep.extend(members[np.argsort(view.noise[members], kind="stable")[: share[b]]].tolist())
        return np.sort(np.array(keep, dtype=int))

    return run


def importance(view: View, k: int, seed: int) -> np.ndarray:
    pool_share = view.probs.mean(0)  # (K,)
    lam = (1.0 / len(pool_share)) / np.maximum(pool_share, 1e-9)
    w = view.probs @ lam + 1e-12  # (n,)
    # weighted sampling without replacement from the row keys: the k largest log(u) / w
    return np.sort(np.argsort(-(np.log(np.maximum(view.noise, 1e-300)) / w), kind="stable")[:k])


def blend(view: View, k: int, seed: int) -> np.ndarray:
    top = select(view.entropy, view.domains, k // 2, equal_shares(view.domain_names))
    rest = np.setdiff1d(np.arange(len(view.rows)), top)
    noise = -view.noise[rest]
    picked = select(noise, [view.domains[i] for i in rest], k - len(top), groups=view.subdomains[rest])
    return np.sort(np.concatenate([top, rest[picked]]))


def daar(
    mode: str = "balanced",
    coverage: bool = False,
    score: str = keys.DEFAULT_SCORE,
    count: int | None = None,
    exponent: float = 0.0,
    cap: float | None = None,
    inside: str = "score",
    labels: str = "pseudo",
) -> Callable:
    """DaaR's selector op with these settings, through the op's own ``TopkSpec`` (``count``:
    sub-domains fitted here, not the bundle's; ``inside="random"``: the row keys rank inside the
    parts instead of the score; ``labels="true"``: the oracle, the pool's true domains for the
    pseudo-domains)."""

    def run(view: View, k: int, seed: int) -> np.ndarray:
        rule = {"coverage": coverage, "score_source": score, "share_exponent": exponent, "rate_cap": cap}
        spec = TopkSpec.build(k, None, mode, None, view.domain_names, **rule)
        ranking = -view.noise if inside == "random" else view.scores[spec.score_source]
        domains = [r["source_domain"] for r in view.rows] if labels == "true" else view.domains
        return spec.pick(ranking, domains, _groups(view, count) if coverage else None)

    return run


def upstream(strategy: str) -> Callable:
    def run(view: View, k: int, seed: int) -> np.ndarray:
        return np.array(upstream_kmeans_select(view.upstream(), k / len(view.rows), strategy))

    return run


SHARE_EXPONENTS = (0.0, 0.3, 0.5, 0.7, 1.0)
RATE_CAPS = (None, 1.25, 1.5, 2.0, 3.0)


def share_name(exponent: float, cap: float | None, inside: str = "score") -> str:
    """The benchmark's name of ``balanced + coverage`` with a share exponent and a rate cap."""
    rest = f" cap={cap:g}" if cap is not None else ""
    return f"DaaR balanced α={exponent:g}{rest} + coverage ({'random inside' if inside == 'random' else 'probe entropy'})"


def daar_name(mode: str, coverage: bool, score: str) -> str:
    """The benchmark's name of DaaR's selector op under these settings."""
    return f"DaaR {mode}{' + coverage' if coverage else ''} ({score.replace('_', ' ')})"


SELECTORS: dict[str, Callable] = {
    "random": random_sel,
    "stratified random (pseudo-domains)": stratified,
    "kMQ-style (bundle sub-domains)": kmq(),
    "CCS-style (10 score bins)": score_bins(10),
    "importance weight w(x)": importance,
    "blend (top half + sub-domain random half)": blend,
    "longest instruction": lambda view, k, seed: np.array(longest_select(view.rows, k)),
    **{f"k-means {s}": upstream(s) for s in ("inter", "intra", "global")},
    **{daar_name(m, c, s): daar(m, c, s) for m in ("overall", "balanced") for c in (False, True) for s in ("probe_entropy", "predictor")},
    **{f"DaaR overall + coverage ({n} sub-domains)": daar("overall", True, "probe_entropy", n) for n in (12, 24, 96)},
    **{f"kMQ-style ({n} clusters)": kmq(n) for n in (12, 24, 96)},
    **{
        share_name(a, c, inside): daar("balanced", True, exponent=a, cap=c, inside=inside)
        for a in SHARE_EXPONENTS
        for c in RATE_CAPS
        for inside in ("score", "random")
    },
    "DaaR balanced + coverage on the true domains (oracle)": daar("balanced", True, labels="true"),
}

#: what ``downstream_proxy`` compares when no selectors are named: all but the upstream k-means
#: ones (a long embedding pass) and the grid's share-rule variants (``benchmarks/grid.py``)
DEFAULT_SET = [n for n in SELECTORS if not n.startswith(("k-means", "DaaR balanced α=")) and "oracle" not in n]
