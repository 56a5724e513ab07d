"""Top-k selection by score: overall (the paper), balanced, or custom per-domain quotas, each
optionally spread over sub-domains (``coverage``).

Pure functions over (score, domain, sub-domain) per row, shared by the selector ops and the
benchmarks. Ties are broken by input position; the result is sorted by input position.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import numpy as np
from loguru import logger

from ..errors import ConfigError
from ..keys import DEFAULT_SCORE, SCORE_SOURCE
from ..options import Flag, Number, OneOf, Settings, option

MODES = ("overall", "balanced", "custom")
SHARE = Number(low=0)  # a domain's share of the budget
K = TypeVar("K", bound=Hashable)


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
    """Every domain the same part of the budget (``balanced`` with ``share_exponent`` 0)."""
    return {d: 1.0 / len(domains) for d in domains}


def tempered_shares(sizes: Mapping[str, float], exponent: float) -> dict[str, float]:
    """Each group's weight: its size to the power ``exponent`` (0: equal, 1: proportional); empty groups 0."""
    return {g: float(size) ** exponent if size > 0 else 0.0 for g, size in sizes.items()}


def water_fill(total: int, weights: Mapping[K, float], room: Mapping[K, int]) -> dict[K, int]:
    """Split ``total`` by ``weights`` with no group above its ``room``: what a full group cannot take
    goes to the others by their weights, round after round (largest remainder in each). Groups of
    weight 0 get nothing; the parts sum to ``total`` unless the open groups' rooms are smaller."""
    out = dict.fromkeys(weights, 0)
    open_ = [g for g, w in weights.items() if w > 0 and room[g] > 0]
    while (left := total - sum(out.values())) > 0 and open_:
        weight = sum(weights[g] for g in open_)
        for g, q in quotas(left, {g: weights[g] / weight for g in open_}).items():
            out[g] += min(q, room[g] - out[g])
        open_ = [g for g in open_ if out[g] < room[g]]
    return out


def rate_room(sizes: np.ndarray, rate: float, cap: float | None) -> np.ndarray:
    """The most rows a group of each size may give: all of them, or with a rate cap ``c`` at most
    ceil(c x the selection's overall rate x its rows)."""
    sizes = np.asarray(sizes, dtype=np.int64)
    return sizes if cap is None else np.minimum(sizes, np.ceil(cap * rate * sizes - 1e-9).astype(np.int64))


def rank_in_group(codes: np.ndarray) -> np.ndarray:
    """Each element's position among the earlier elements of its own code (0 for the first)."""
    order = np.argsort(codes, kind="stable")
    sorted_codes = codes[order]
    starts = np.flatnonzero(np.r_[True, sorted_codes[1:] != sorted_codes[:-1]])
    first = np.repeat(starts, np.diff(np.r_[starts, len(codes)]))
    ranks = np.empty(len(codes), dtype=np.int64)
    ranks[order] = np.arange(len(codes)) - first
    return ranks


def select(
    scores: Sequence[float],
    domains: Sequence[str],
    k: int,
    weights: Mapping[str, float] | None = None,
    groups: Sequence[int] | None = None,
    cap: float | None = None,
    fill: bool = True,
) -> np.ndarray:
    """Indices (ascending) of up to ``k`` rows to keep, best scores first.

    Without ``weights`` the budget is the whole pool's; with ``weights`` (per domain, any scale)
    each domain gets its part by water-filling: a domain that cannot fill its part (too few rows,
    or its cap) hands the rest to the others by their weights. With ``groups`` (a sub-domain per
    row; negative = none) a budget is first split over the sub-domains in proportion to their rows,
    each part filled with its best rows; what they cannot fill goes to the domain's best rest.
    ``cap`` (the rate cap c >= 1): no domain and no sub-domain gives more than ceil(c x k / n x its
    rows). ``fill``: rows still missing come from the best rest of any domain (``custom`` keeps
    only its domains, so its selection can be smaller than ``k``).
    """
    scores = np.asarray(scores, dtype=np.float64)
    n = len(scores)
    k = max(0, min(k, n))
    ranked = np.lexsort((np.arange(n), -scores))  # best first, earlier row first on ties
    if (weights is None and groups is None and cap is None) or k == 0:
        return np.sort(ranked[:k])
    rate = k / n
    taken = np.zeros(n, dtype=bool)  # over ranked positions
    labels = np.asarray(domains, dtype=object)[ranked]
    cells = None if groups is None else np.asarray(groups, dtype=np.int64)[ranked]

    def take(inside: np.ndarray, q: int, codes: np.ndarray | None = None, room: Mapping[int, int] | None = None) -> None:
        """Mark the best ``q`` untaken rows among ``inside``; with ``codes``/``room``, no code above its room."""
        free = np.flatnonzero(inside & ~taken)
        if codes is not None and len(free):
            present, which = np.unique(codes[free], return_inverse=True)
            left = np.array([room.get(g, n) - int((taken & (codes == g)).sum()) for g in present.tolist()])
            free = free[rank_in_group(which) < left[which]]
        taken[free[: max(0, q)]] = True

    names, sizes = np.unique(labels.astype(str), return_counts=True)
    if weights is not None:
        room = dict(zip(names.tolist(), rate_room(sizes, rate, cap).tolist()))
        order = [d for d in weights if d in room] + [d for d in room if d not in weights]  # ties go to the earlier domain
        budgets = water_fill(k, {d: float(weights.get(d, 0.0)) for d in order}, room)
    elif cap is not None and cells is None:  # overall with a cap: the best rows, no domain above its room
        codes = np.unique(labels.astype(str), return_inverse=True)[1]
        take(np.ones(n, dtype=bool), k, codes, dict(enumerate(rate_room(sizes, rate, cap).tolist())))
        budgets = {}
    else:
        budgets = {None: k}
    for d, q in budgets.items():
        inside = np.ones(n, dtype=bool) if d is None else labels == d
        if cells is not None:
            subs, counts = np.unique(cells[inside & (cells >= 0)], return_counts=True)  # rows without a sub-domain get no part
            room = dict(zip(subs.tolist(), rate_room(counts, rate, cap).tolist()))
            for g, qg in water_fill(q, dict(zip(subs.tolist(), counts.tolist())), room).items():
                take(inside & (cells == g), qg)
            take(inside, q - int(taken[inside].sum()), cells, room)  # what the sub-domains could not fill
        else:
            take(inside, q)
    if fill:
        take(np.ones(n, dtype=bool), k - int(taken.sum()))  # still short (rows of no weighted domain): the best rest
    return np.sort(ranked[taken])


@dataclass(frozen=True)
class TopkSpec(Settings):
    """A checked top-k request: how many rows, how the budget is shared over domains, and whether
    each share is spread over sub-domains. Build it with ``TopkSpec.build``."""

    topk: int | None = option(None, check=Number(integer=True, low=1, nullable=True, what="a positive integer"))
    top_ratio: float | None = option(None, check=Number(low=0, high=1, open_low=True, nullable=True, what="a number in (0, 1]"))
    mode: str = option("balanced", check=OneOf(MODES))
    shares: dict[str, float] | None = None  # per domain, from ``mode`` (None: the whole pool's budget)
    coverage: bool = option(True, check=Flag())
    score_source: str = option(DEFAULT_SCORE, check=SCORE_SOURCE)  # the score the caller ranks by (``keys.SCORES``)
    share_exponent: float = option(0.5, check=Number(low=0, high=1))  # balanced: a domain's part ∝ its rows ** exponent
    rate_cap: float | None = option(None, check=Number(low=1, nullable=True))  # no group above cap x the overall rate

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.topk is None and self.top_ratio is None:
            raise ConfigError("set topk or top_ratio (or both)", option="topk")

    @classmethod
    def build(cls, topk, top_ratio, mode, domain_ratios, domains: Sequence[str], **rule: Any) -> TopkSpec:
        """The request of a selector's parameters (``rule``: the other fields, by name; those left
        out keep their declared defaults); ``domain_ratios`` (mode ``custom`` only) is checked
        against the bundle's ``domains``. Each problem is one ``ConfigError`` line."""
        request = cls(topk, top_ratio, mode, **rule)
        if (mode == "custom") != (domain_ratios is not None):
            raise ConfigError("domain_ratios is required with mode 'custom' and only allowed there", option="domain_ratios")
        if mode == "overall":
            return request
        return replace(request, shares=equal_shares(domains) if mode == "balanced" else validate_ratios(domain_ratios, domains))

    def describe(self) -> str:
        """The rule in one line (the selector's start line, ``daar report``)."""
        limits = [f"topk {self.topk}"] if self.topk is not None else []
        limits += [f"top_ratio {self.top_ratio:g}"] if self.top_ratio is not None else []
        size = f"the smaller of {' and '.join(limits)}" if len(limits) == 2 else limits[0]
        if self.mode == "overall":
            parts = "one budget over the whole pool"
        elif self.mode == "custom":
            parts = "the parts in domain_ratios" + (f" ({', '.join(f'{d} {r:g}' for d, r in self.shares.items())})" if self.shares else "")
        else:
            power = f"its rows to the power {self.share_exponent:g}"
            by = {0.5: "the square root of its rows", 1: "its rows"}.get(self.share_exponent, power)
            parts = "an equal part per domain" if self.share_exponent == 0 else f"a part per domain in proportion to {by}"
        spread = (
            f", {'spread' if self.mode == 'overall' else 'each part spread'} over its sub-domains in proportion to their rows"
            if self.coverage
            else ""
        )
        cap = f", no domain{' or sub-domain' if self.coverage else ''} above {self.rate_cap:g} x the overall rate" if self.rate_cap else ""
        return f"{self.mode}: {size}, {parts}{spread}{cap}, highest {self.score_source} first"

    @property
    def needs_domains(self) -> bool:
        """Whether the pick reads each row's domain (domain parts, or a cap on them)."""
        return self.shares is not None or self.rate_cap is not None

    def budget(self, n: int) -> int:
        return budget(n, self.topk, self.top_ratio)

    def warn_if_empty(self, n: int, who: str) -> None:
        """Warn when the selection of ``n`` rows keeps none (no rows came in, or the ratio rounds to 0)."""
        if n == 0:
            logger.warning(f"{who}: no rows reached the selector (an earlier op kept none): the selection is empty")
        elif self.budget(n) == 0:
            logger.warning(f"{who}: top_ratio {self.top_ratio} of {n} rows rounds down to 0: the selection is empty")

    def weights(self, domains: Sequence[str]) -> dict[str, float] | None:
        """Each domain's weight in the budget: ``custom``'s ratios, or ``balanced``'s rows ** ``share_exponent``."""
        if self.mode != "balanced":
            return self.shares
        names, counts = np.unique(np.asarray(domains, dtype=object).astype(str), return_counts=True)
        sizes = dict(zip(names.tolist(), counts.tolist()))
        return tempered_shares({d: sizes.get(d, 0) for d in self.shares}, self.share_exponent)

    def pick(self, scores: Sequence[float], domains: Sequence[str], groups: Sequence[int] | None = None, who: str = "") -> np.ndarray:
        """Indices (ascending) of the rows to keep (``groups``: the sub-domains, read with coverage)."""
        if self.coverage and groups is None:
            raise ConfigError("coverage selection needs each row's sub-domain")
        k = self.budget(len(scores))
        weights = self.weights(domains) if self.shares is not None else None
        kept = select(scores, domains, k, weights, groups if self.coverage else None, self.rate_cap, fill=self.mode != "custom")
        if len(kept) < k:
            listed = sorted(d for d, r in self.shares.items() if r > 0)
            logger.warning(
                f"{who or 'selector'}: mode custom keeps {len(kept)} of the {k} rows asked for: the listed domains "
                f"{listed} have no more rows{' within the rate cap' if self.rate_cap else ''} (domains left out of domain_ratios give none)"
            )
        return kept
