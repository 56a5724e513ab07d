"""Top-k selection inside Data-Juicer: the one path both selector ops (default and Ray) share."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from data_juicer.utils.constant import Fields

from ..keys import SCORE_KEYS
from .op_base import ScoringOp, choice
from ..method.selection import TopkSpec


def ranking(values: Sequence[dict[str, Any]], source: str) -> tuple[list[float], list[str], list[int]]:
    """(score, domain, sub-domain) per row from ``ScoringOp.values`` / ``stored_values`` dicts
    ("" and -1 = not asked for)."""
    return [float(v[source]) for v in values], [v.get("domain") or "" for v in values], [int(v.get("subdomain", -1)) for v in values]


class TopkOp(ScoringOp):
    """Mixin of the selector ops: validated top-k request, the score and domains it needs, the pick."""

    reuse_hint = "put daar_domain_probe_mapper / daar_diversity_score_filter with the same settings before the selector to reuse their pass"

    def _init_topk(self, topk, top_ratio, mode: str, domain_ratios, score_source: str, coverage: bool) -> None:
        self.spec = TopkSpec.build(self._name, topk, top_ratio, mode, domain_ratios, self.domain_names, coverage)
        choice(self._name, "score_source", score_source, tuple(SCORE_KEYS))
        self.score_source = score_source

    @property
    def wanted(self) -> tuple[str, ...]:
        """The values the selection reads per row: the score, the domain when domain quotas apply
        and the sub-domain with coverage."""
        return (self.score_source, *(("domain",) if self.spec.shares else ()), *(("subdomain",) if self.spec.coverage else ()))

    def pick(self, values: Sequence[dict[str, Any]]) -> np.ndarray:
        """Indices (ascending) of the rows to keep."""
        scores, domains, groups = ranking(values, self.score_source)
        return self.spec.pick(scores, domains, groups)

    def select_dataset(self, dataset):
        """The selection on a Data-Juicer dataset; values earlier ops did not store are scored here."""
        n = len(dataset)
        if self.spec.budget(n) >= n:
            return dataset
        stats = dataset[Fields.stats] if Fields.stats in dataset.column_names else [None] * n
        metas = dataset[Fields.meta] if Fields.meta in dataset.column_names else [None] * n
        values = self.values(self.wanted, stats, metas, lambda rows: dataset.select(rows).to_list())
        return dataset.select(self.pick(values).tolist())
