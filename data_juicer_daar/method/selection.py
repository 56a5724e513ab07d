"""Top-k selection by score: overall (the paper), balanced, or custom per-domain quotas, each
optionally spread over sub-domains (``coverage``).

Pure functions over (score, domain, sub-domain) per row, shared by the selector ops and the
benchmarks. Ties are broken by input position; the result is sorted by input position.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
from loguru import logger

from ..errors import ConfigError
from ..keys import DEFAULT_SCORE, SCORE_SOURCE
from ..options import Flag, Number, OneOf, Settings, option

MODES = ("overall", "balanced", "custom")
SHARE = Number(low=0)  # a domain's share of the budget


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
    out = {d: math.floor(v + 1e-9) for d, v in raw.items()}  # 2.9999999999999996 is 3
    order = sorted(ratios, key=lambda d: (-(raw[d] - out[d]), list(ratios).index(d)))
    for d in order[: total - sum(out.values())]:
        out[d] += 1
    return out


def validate_ratios(ratios: object, domains: Sequence[str]) -> dict[str, float]:
    """``ratios`` as {domain: share} naming only known domains and summing to 1, else ``ConfigError``."""
    if not isinstance(ratios, Mapping) or not ratios:
        raise ConfigError(f"domain_ratios must map domain names to shares, got {ratios!r}", option="domain_ratios")
    unknown = [d for d in ratios if d not in domains]
    if unknown:
        raise ConfigError(
            f"domain_ratios names unknown domain(s) {unknown}; the bundle's domains are {list(domains)}", option="domain_ratios"
        )
    if not all(SHARE.ok(v) for v in ratios.values()):
        raise ConfigError(f"domain_ratios values must be finite non-negative numbers, got {dict(ratios)}", option="domain_ratios")
    total = float(sum(ratios.values()))
    if abs(total - 1.0) > 1e-6:
        raise ConfigError(f"domain_ratios must sum to 1, they sum to {total:g}", option="domain_ratios")
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
    their rows (within the domain), and each sub-domain's part is filled with its best rows. Quota a
    sub-domain cannot fill goes to its domain's best remaining rows; quota a domain cannot fill is
    shared over the domains that still have rows, by their shares; then to the best remaining rows.
    """
    scores = np.asarray(scores, dtype=np.float64)
    n = len(scores)
    k = max(0, min(k, n))
    ranked = np.lexsort((np.arange(n), -scores))  # best first, earlier row first on ties
    if (not shares and groups is None) or k == 0:
        return np.sort(ranked[:k])
    taken = np.zeros(n, dtype=bool)
    labels = np.asarray(domains, dtype=object)[ranked]
    cells = None if groups is None else np.asarray(groups)[ranked]

    def take(inside: np.ndarray, q: int) -> None:
        """Mark the best ``q`` untaken rows among ``inside`` (a mask over ``ranked``)."""
        taken[ranked[inside & ~taken[ranked]][:q]] = True

    for d, q in (quotas(k, shares) if shares else {None: k}).items():
        inside = np.ones(n, dtype=bool) if d is None else labels == d
        if cells is not None:
            names, sizes = np.unique(cells[inside & (cells >= 0)], return_counts=True)  # rows without a sub-domain get no quota
            for g, qg in quotas(q, {g: c / max(1, sizes.sum()) for g, c in zip(names.tolist(), sizes)}).items():
                take(inside & (cells == g), qg)
        take(inside, q - int(taken[ranked][inside].sum()))  # what the sub-domains could not fill: the domain's best rest
    # quota a domain cannot fill is shared over the domains that still have rows, by their shares
    while shares and k > taken.sum():
        spare = {d: r for d, r in shares.items() if r > 0 and (~taken[ranked] & (labels == d)).any()}
        if not spare:
            break
        for d, q in quotas(k - int(taken.sum()), {d: r / sum(spare.values()) for d, r in spare.items()}).items():
            take(labels == d, q)
    take(np.ones(n, dtype=bool), k - int(taken.sum()))  # still short (rows of no share's domain): the best rest
    return np.flatnonzero(taken)


@dataclass(frozen=True)
class TopkSpec(Settings):
    """A checked top-k request: how many rows, how the budget is shared over domains, and whether
    each share is spread over sub-domains. Build it with ``TopkSpec.build``."""

    topk: int | None = option(None, check=Number(integer=True, low=1, nullable=True, what="a positive integer"))
    top_ratio: float | None = option(None, check=Number(low=0, high=1, open_low=True, nullable=True, what="a number in (0, 1]"))
    mode: str = option("overall", check=OneOf(MODES))
    shares: dict[str, float] | None = None  # per domain, from ``mode`` (None: the whole pool's budget)
    coverage: bool = option(False, check=Flag())
    score_source: str = option(DEFAULT_SCORE, check=SCORE_SOURCE)  # the score the caller ranks by (``keys.SCORES``)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.topk is None and self.top_ratio is None:
            raise ConfigError("set topk or top_ratio (or both)", option="topk")

    @classmethod
    def build(
        cls, topk, top_ratio, mode, domain_ratios, domains: Sequence[str], coverage: bool = False, score_source: str = DEFAULT_SCORE
    ) -> TopkSpec:
        """The request of a selector's parameters; ``domain_ratios`` (mode ``custom`` only) is checked
        against the bundle's ``domains``. Each problem is one ``ConfigError`` line."""
        request = cls(topk, top_ratio, mode, None, coverage, score_source)
        if (mode == "custom") != (domain_ratios is not None):
            raise ConfigError("domain_ratios is required with mode 'custom' and only allowed there", option="domain_ratios")
        if mode == "overall":
            return request
        return replace(request, shares=equal_shares(domains) if mode == "balanced" else validate_ratios(domain_ratios, domains))

    def budget(self, n: int) -> int:
        return budget(n, self.topk, self.top_ratio)

    def warn_if_empty(self, n: int, who: str) -> None:
        """Warn when the selection of ``n`` rows keeps none (no rows came in, or the ratio rounds to 0)."""
        if n == 0:
            logger.warning(f"{who}: no rows reached the selector (an earlier op kept none): the selection is empty")
        elif self.budget(n) == 0:
            logger.warning(f"{who}: top_ratio {self.top_ratio} of {n} rows rounds down to 0: the selection is empty")

    def pick(self, scores: Sequence[float], domains: Sequence[str], groups: Sequence[int] | None = None) -> np.ndarray:
        """Indices (ascending) of the rows to keep (``groups``: the sub-domains, read with coverage)."""
        if self.coverage and groups is None:
            raise ConfigError("coverage selection needs each row's sub-domain")
        return select(scores, domains, self.budget(len(scores)), self.shares, groups if self.coverage else None)
