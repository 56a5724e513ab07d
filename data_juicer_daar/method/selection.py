"""Top-k selection by score: overall (the paper), balanced, or custom per-domain quotas, each
optionally spread over sub-domains (``coverage``).

Pure functions over (score, domain, sub-domain) per row, shared by the selector ops and the
benchmarks. Ties are broken by input position; the result is sorted by input position.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from collections.abc import Mapping, Sequence

import numpy as np

MODES = ("overall", "balanced", "custom")


def budget(n: int, topk: int | None, top_ratio: float | None) -> int:
    """Rows to keep: ``topk``, ``floor(top_ratio * n)``, or the smaller when both are set."""
    candidates = [n]
    if topk is not None:
        candidates.append(topk)
    if top_ratio is not None:
        candidates.append(math.floor(top_ratio * n + 1e-9))
    return min(candidates)


def quotas(total: int, ratios: Mapping[str, float]) -> dict[str, int]:
    """Split ``total`` by ``ratios`` (largest remainder; ties go to the earlier domain)."""
    raw = {d: total * r for d, r in ratios.items()}
    out = {d: math.floor(v) for d, v in raw.items()}
    order = sorted(ratios, key=lambda d: (-(raw[d] - out[d]), list(ratios).index(d)))
    for d in order[: total - sum(out.values())]:
        out[d] += 1
    return out


def validate_ratios(ratios: object, domains: Sequence[str], who: str) -> dict[str, float]:
    """``ratios`` as {domain: share} naming only known domains and summing to 1, else ValueError."""
    if not isinstance(ratios, Mapping) or not ratios:
        raise ValueError(f"{who}: domain_ratios must map domain names to shares, got {ratios!r}")
    unknown = [d for d in ratios if d not in domains]
    if unknown:
        raise ValueError(f"{who}: domain_ratios names unknown domain(s) {unknown}; the bundle's domains are {list(domains)}")
    if any(isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0 for v in ratios.values()):
        raise ValueError(f"{who}: domain_ratios values must be finite non-negative numbers, got {dict(ratios)}")
    total = float(sum(ratios.values()))
    if abs(total - 1.0) > 1e-6:
        raise ValueError(f"{who}: domain_ratios must sum to 1, they sum to {total:g}")
    return {d: float(ratios[d]) for d in domains if d in ratios}


def equal_shares(domains: Sequence[str]) -> dict[str, float]:
    """The balanced mode's shares: every domain the same part of the budget."""
    return {d: 1.0 / len(domains) for d in domains}


def select(
    scores: Sequence[float],
    domains: Sequence[str],
    k: int,
    shares: Mapping[str, float] | None = None,
    groups: Sequence[int] | None = None,
) -> np.ndarray:
    """Indices (ascending) of the ``k`` rows to keep.

    Without ``shares`` the budget is the whole pool's; with ``shares`` each domain gets its quota
    of it. Without ``groups`` a budget is filled with its best rows; with ``groups`` (a sub-domain
    per row; negative = none, e.g. no text) it is first split over the sub-domains in proportion to
    their rows (within the domain), and each sub-domain's part is filled with its best rows. Quota
    that cannot be filled goes to the best remaining rows.
    """
    scores = np.asarray(scores, dtype=np.float64)
    n = len(scores)
    k = max(0, min(k, n))
    ranked = np.lexsort((np.arange(n), -scores))  # best first, earlier row first on ties
    if (not shares and groups is None) or k == 0:
        return np.sort(ranked[:k])
    taken = np.zeros(n, dtype=bool)
    labels = np.asarray(domains, dtype=object)[ranked]
    budgets = quotas(k, shares) if shares else {None: k}
    cells = None if groups is None else np.asarray(groups)[ranked]
    for d, q in budgets.items():
        inside = np.ones(n, dtype=bool) if d is None else labels == d
        if cells is None:
            taken[ranked[inside][:q]] = True
            continue
        names, sizes = np.unique(cells[inside & (cells >= 0)], return_counts=True)  # rows without a sub-domain get no quota
        for g, qg in quotas(q, {g: c / max(1, sizes.sum()) for g, c in zip(names.tolist(), sizes)}).items():
            taken[ranked[inside & (cells == g)][:qg]] = True
    leftover = k - int(taken.sum())
    taken[ranked[~taken[ranked]][:leftover]] = True
    return np.flatnonzero(taken)


@dataclass(frozen=True)
class TopkSpec:
    """A validated top-k request: how many rows, how the budget is shared over domains, and whether
    each share is spread over sub-domains."""

    topk: int | None
    top_ratio: float | None
    mode: str
    shares: dict[str, float] | None
    coverage: bool = False

    @classmethod
    def build(cls, who: str, topk, top_ratio, mode, domain_ratios, domains: Sequence[str], coverage: bool = False) -> TopkSpec:
        """Validate op parameters (cheapest first); each problem is one ValueError line."""
        if topk is not None and (isinstance(topk, bool) or not isinstance(topk, int) or topk < 1):
            raise ValueError(f"{who}: topk must be a positive integer or null, got {topk!r}")
        if top_ratio is not None and (isinstance(top_ratio, bool) or not isinstance(top_ratio, (int, float)) or not 0 <= top_ratio <= 1):
            raise ValueError(f"{who}: top_ratio must be a number in [0, 1] or null, got {top_ratio!r}")
        if topk is None and top_ratio is None:
            raise ValueError(f"{who}: set topk or top_ratio (or both)")
        if not isinstance(mode, str) or mode not in MODES:
            raise ValueError(f"{who}: mode must be one of {', '.join(MODES)}, got {mode!r}")
        if (mode == "custom") != (domain_ratios is not None):
            raise ValueError(f"{who}: domain_ratios is required with mode 'custom' and only allowed there")
        if not isinstance(coverage, bool):
            raise ValueError(f"{who}: coverage must be true or false, got {coverage!r}")
        if mode == "overall":
            return cls(topk, top_ratio, mode, None, coverage)
        shares = equal_shares(domains) if mode == "balanced" else validate_ratios(domain_ratios, domains, who)
        return cls(topk, top_ratio, mode, shares, coverage)

    def budget(self, n: int) -> int:
        return budget(n, self.topk, self.top_ratio)

    def pick(self, scores: Sequence[float], domains: Sequence[str], groups: Sequence[int] | None = None) -> np.ndarray:
        """Indices (ascending) of the rows to keep (``groups``: the sub-domains, read with coverage)."""
        if self.coverage and groups is None:
            raise ValueError("coverage selection needs each row's sub-domain")
        return select(scores, domains, self.budget(len(scores)), self.shares, groups if self.coverage else None)
