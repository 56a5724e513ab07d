"""``daar report``, step 1: read a scored pool and its selection into a ``Selection``.

The scored pool is the filter's ``stats_export_path`` output (every row with its DaaR meta and
stats); the selection is what ``dj-process`` wrote. Rows are matched by an id field or as whole rows.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ... import keys
from ...errors import CorpusError
from ...method.corpus import data_files, read_jsonl
from ...method.text import render


def _row_key(row: dict, id_key: str | None) -> str:
    if id_key:
        return json.dumps(row.get(id_key), sort_keys=True, default=str)
    return json.dumps({k: v for k, v in row.items() if not k.startswith(keys.DJ_PREFIX)}, sort_keys=True, default=str)


@dataclass
class Selection:
    """A scored pool with, per row, its score, predicted domain, text and whether it was selected."""

    pool_path: str
    selection_path: str
    score: keys.Score  # the score the selector ranked by
    n_selected: int
    scores: np.ndarray
    domains: list[str]
    picked: np.ndarray
    texts: list[str]
    issues: Counter
    subdomains: list[int | None]  # meta daar_subdomain per row (None: not tagged by the mapper)
    classes: int | None = None  # K, from the rows' daar_domain_probs (None: not tagged)

    @property
    def scale(self) -> float:
        """A power of ten the plots divide scores by, so any finite range draws (1 for ordinary scores)."""
        top = float(np.abs(self.scores).max()) if len(self.scores) else 0.0
        return 1.0 if top < 1e6 else 10.0 ** math.floor(math.log10(top))

    def mean(self, mask: np.ndarray | None = None) -> float:
        """Mean score of the rows in ``mask`` (all rows by default), without overflow."""
        chosen = self.scores if mask is None else self.scores[mask]
        return float((chosen / self.scale).mean() * self.scale)

    def subdomain_coverage(self) -> tuple[int, int] | None:
        """(sub-domains with a selected row, sub-domains in the pool), or None when rows carry none."""
        pool = {g for g in self.subdomains if g is not None and g >= 0}
        if not pool:
            return None
        return len({g for g, p in zip(self.subdomains, self.picked) if p and g in pool}), len(pool)

    def domain_counts(self) -> tuple[Counter, Counter]:
        """Rows per predicted domain in the pool and in the selection."""
        return Counter(self.domains), Counter(d for d, p in zip(self.domains, self.picked) if p)

    def passed_over(self) -> dict[str, int] | None:
        """Unselected rows scoring above their domain's cut-off, by why (rows carry sub-domains: a
        coverage selection): "tiny sub-domain" (too few rows for one whole row of its proportional
        part, so none was selected there) or "sub-domain part full" (its part went to its better rows)."""
        if all(g is None for g in self.subdomains) or not self.picked.any():
            return None
        rate = self.picked.sum() / len(self.picked)
        sizes = Counter(self.subdomains)
        chosen = Counter(g for g, p in zip(self.subdomains, self.picked) if p)
        cut = self.cutoffs()
        out: Counter = Counter()
        for d, score, kept, g in zip(self.domains, self.scores, self.picked, self.subdomains):
            if not kept and d in cut and score > cut[d]:
                out["tiny sub-domain" if not chosen[g] and sizes[g] * rate < 1 else "sub-domain part full"] += 1
        return dict(out)

    def cutoffs(self) -> dict[str, float]:
        """Lowest selected score per domain: the cut-off each domain's rows had to reach."""
        out: dict[str, float] = {}
        for d, score, kept in zip(self.domains, self.scores, self.picked):
            if kept:
                out[d] = min(out.get(d, float(score)), float(score))
        return out


def _bad_value(row: dict, score_key: str) -> str | None:
    """What in a scored row the report cannot use (None: nothing)."""
    stats = row.get(keys.STATS) or {}
    value = stats.get(score_key) if isinstance(stats, dict) else None
    if value is None:
        return f"has no {score_key} stats; pass the scored pool written by the filter's stats_export_path"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"has {score_key} {value!r}, not a number"
    if not math.isfinite(value):
        return f"has {score_key} {value!r}, not a finite number"
    meta = row.get(keys.META) or {}
    if not isinstance(meta, dict):
        return f"has {keys.META} {meta!r}, not a mapping"
    if not isinstance(meta.get(keys.DOMAIN, ""), str):
        return f"has {keys.DOMAIN} {meta[keys.DOMAIN]!r}, not a domain name"
    issue = meta.get(keys.ISSUE)
    if issue is not None and not isinstance(issue, str):
        return f"has {keys.ISSUE} {issue!r}, not a text issue name"
    probs = meta.get(keys.DOMAIN_PROBS)
    if probs is not None and (
        not isinstance(probs, list) or not all(isinstance(p, (int, float)) and not isinstance(p, bool) for p in probs)
    ):
        return f"has {keys.DOMAIN_PROBS} {probs!r}, not a list of numbers"
    group = meta.get(keys.SUBDOMAIN)
    if group is not None and (isinstance(group, bool) or not isinstance(group, int)):
        return f"has {keys.SUBDOMAIN} {group!r}, not a sub-domain number"
    return None


def check_pool(pool: list[dict], pool_path: str | Path, score_key: str, id_key: str | None) -> None:
    """One-line ``CorpusError`` naming the first pool row the report cannot use, or a repeated id."""
    for number, row in enumerate(pool, 1):
        problem = _bad_value(row, score_key)
        if problem:
            raise CorpusError(f"{pool_path}: row {number} {problem}")
    if id_key is not None:
        seen: dict[str, int] = {}
        for number, row in enumerate(pool, 1):
            key = _row_key(row, id_key)
            if key in seen:
                raise CorpusError(
                    f"{id_key!r} is not unique in {pool_path}: rows {seen[key]} and {number} both have {key}; pass a field unique "
                    "per row, or none to match whole rows",
                    option="id_key",
                )
            seen[key] = number


def load_selection(
    pool_path: str | Path, selection_path: str | Path, id_key: str | None = None, score: str = keys.DEFAULT_SCORE
) -> Selection:
    """Read the scored pool and the selection; mark each pool row that was selected."""
    # a folder is read as dj-process reads one (the Ray executor exports a folder of shards)
    pool = [row for f in data_files(pool_path) for row in read_jsonl(f, allow_empty=True)]
    selection = [row for f in data_files(selection_path) for row in read_jsonl(f, allow_empty=True)]
    if not pool:
        raise CorpusError(f"corpus {pool_path} is empty")
    if id_key is not None:
        for name, rows in (("pool", pool), ("selection", selection)):
            lacking = sum(id_key not in r for r in rows)
            if lacking:
                raise CorpusError(
                    f"{id_key!r}: {lacking} of {len(rows)} {name} rows have no such field; pass a field every row has, "
                    "or none to match whole rows",
                    option="id_key",
                )
    score_key = keys.SCORES[score].stats_key
    check_pool(pool, pool_path, score_key, id_key)
    chosen = Counter(_row_key(r, id_key) for r in selection)
    picked = []
    for row in pool:
        key = _row_key(row, id_key)
        picked.append(chosen[key] > 0)
        if chosen[key]:
            chosen[key] -= 1
    unmatched = sum(chosen.values())
    if unmatched:
        by = f"by {id_key!r}" if id_key else "as whole rows"
        raise CorpusError(
            f"{selection_path}: {unmatched} of {len(selection)} selected rows are not in the pool {pool_path} (matched {by}): "
            "is the selection from another pool?"
        )
    meta = [r.get(keys.META) or {} for r in pool]
    return Selection(
        pool_path=str(pool_path),
        selection_path=str(selection_path),
        score=keys.SCORES[score],
        n_selected=len(selection),
        scores=np.array([r[keys.STATS][score_key] for r in pool], dtype=float),
        domains=[m.get(keys.DOMAIN, "<not tagged>") for m in meta],
        picked=np.array(picked, dtype=bool),
        texts=[render(r).text for r in pool],
        issues=Counter(m.get(keys.ISSUE) for m in meta if m.get(keys.ISSUE)),
        subdomains=[m.get(keys.SUBDOMAIN) for m in meta],
        classes=max((len(m.get(keys.DOMAIN_PROBS) or []) for m in meta), default=0) or None,
    )


def score_edges(sel: Selection) -> np.ndarray:
    """The 10 equal histogram bins of the report, from 0 (or the lowest score, when negative) to the
    highest score; any finite range (the width is computed from halves, so it cannot overflow)."""
    lo = min(0.0, float(sel.scores.min())) if len(sel.scores) else 0.0
    hi = max(float(sel.scores.max()) if len(sel.scores) else 0.0, lo + 1e-6)
    edges = lo + (hi / 2 - lo / 2) / 5 * np.arange(11)
    edges[-1] = hi
    return edges


def outside_range(sel: Selection, classes: int | None) -> str | None:
    """One line on the scores outside [0, ln K] (an entropy over K domains cannot be), or None."""
    if not classes or not len(sel.scores):
        return None
    top = math.log(classes)
    out = int(((sel.scores < 0) | (sel.scores > top + 1e-6)).sum())
    if not out:
        return None
    return (
        f"{out} of {len(sel.scores)} rows score outside [0, ln {classes} = {top:.4f}], the range of an entropy over "
        f"{classes} domains: the predictor's estimate overshot, or the scores are not DaaR's; they rank, but read them with care"
    )
