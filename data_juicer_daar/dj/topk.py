"""Top-k selection inside Data-Juicer: the one signature and path both selector ops share, and the
Ray executor's version of the same pick (``select_on_ray``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from data_juicer.utils.constant import Fields
from loguru import logger
from tqdm import tqdm

from .. import keys
from ..errors import ConfigError
from ..method.selection import TopkSpec
from ..options import declared, settings
from .op_base import ScoringOp
from .reuse import stored_values

POSITION = "__daar_position__"  # temporary Ray column: each row's input position
_BATCH = 1000  # rows read at a time into the selection's columns


class Columns:
    """The three columns a pick reads, one fixed-size entry per row (no object per row): the score,
    the domain as a code into ``names`` and the sub-domain (-1 where not asked for).

    :param n: rows.
    :param names: the bundle's domain names; other names met (the no-text domain) are added.
    """

    def __init__(self, n: int, names: Sequence[str]) -> None:
        self.scores = np.zeros(n, dtype=np.float64)
        self.codes = np.zeros(n, dtype=np.int32)
        self.groups = np.full(n, -1, dtype=np.int64)
        self.names = ["", *names]  # code 0: no domain asked for
        self._code = {name: i for i, name in enumerate(self.names)}

    def code(self, name: str) -> int:
        if name not in self._code:
            self._code[name] = len(self.names)
            self.names.append(name)
        return self._code[name]

    def put(self, at: np.ndarray | slice, values: Sequence[dict[str, Any]], source: str) -> None:
        """Fill rows ``at`` from ``ScoringOp.values`` / ``stored_values`` dicts."""
        self.scores[at] = [float(v[source]) for v in values]
        self.codes[at] = [self.code(v.get("domain") or "") for v in values]
        self.groups[at] = [int(v.get("subdomain", -1)) for v in values]

    def pick(self, spec: TopkSpec, who: str) -> np.ndarray:
        """Indices (ascending) of the rows to keep. The domain column is one reference per row to the
        few name strings."""
        domains = np.asarray(self.names, dtype=object)[self.codes]
        logger.info(f"{who}: selecting by {spec.describe()}")
        return spec.pick(self.scores, domains, self.groups, who=who)


class TopkOp(ScoringOp):
    """Base of the two selector ops (Data-Juicer's Selector, and a Pipeline op for Ray): one
    signature, the validated top-k request, the values it needs and the pick."""

    reuse_hint = "put daar_domain_probe_mapper / daar_diversity_score_filter with the same settings before the selector to reuse their pass"

    def __init__(
        self,
        topk: int | None = declared(TopkSpec, "topk"),
        top_ratio: float | None = declared(TopkSpec, "top_ratio"),
        mode: str = declared(TopkSpec, "mode"),
        domain_ratios: dict | None = None,
        score_source: str = declared(TopkSpec, "score_source"),
        coverage: bool = declared(TopkSpec, "coverage"),
        share_exponent: float = declared(TopkSpec, "share_exponent"),
        rate_cap: float | None = declared(TopkSpec, "rate_cap"),
        *args,
        **kwargs,
    ):
        """
        Initialization method (the parameters every DaaR op takes: ``ScoringOp.__init__``).

        :param topk: number of samples to keep (positive integer); ``None`` = no count limit.
        :param top_ratio: fraction of the samples to keep, in (0, 1] (rounded down; a warning when
            it rounds to 0); ``None`` = no ratio limit. At least one of ``topk`` and ``top_ratio`` must be set; with both, the
            smaller selection applies.
        :param mode: "balanced" (default: a part of the budget per bundle domain, by
            ``share_exponent``), "overall" (the paper's: the whole pool) or "custom" (the shares in
            ``domain_ratios``).
        :param domain_ratios: for ``custom`` only: {domain name: share of the budget}, bundle domain
            names only, shares summing to 1. Domains left out get no quota.
        :param score_source: the score that ranks the samples: "probe_entropy" (the probe's own
            calibrated entropy, stats ``daar_probe_entropy``; default, see ``keys.DEFAULT_SCORE``)
            or "predictor" (the paper's reward head, stats ``daar_diversity``).
        :param coverage: spread each budget (the pool's, or each domain's quota) over the bundle's
            sub-domains (meta ``daar_subdomain``) in proportion to their rows, and fill each
            sub-domain's part with its best samples (default true). A sub-domain too small for a
            whole row of its proportional part (fewer than about 1 / rate rows) gets none, and its rows
            compete for the rows the parts leave over.
        :param share_exponent: ``balanced`` only: each domain's part of the budget is proportional
            to its rows to this power: 0 gives every domain an equal part, 1 a part in proportion
            to its rows (a random sample's mix), 0.5 (default) the compromise between them, the rule
            the selection grid chose (docs/results.md).
        :param rate_cap: no domain and, with ``coverage``, no sub-domain gives more than
            ceil(rate_cap x the selection's overall rate x its rows) samples; the budget a capped
            group cannot take goes to the others by their parts (water-filling). A number >= 1;
            null (default) for no cap. It bounds how far a small pseudo-domain (often one source,
            where the domains are wrong) can be over-sampled.
        """
        super().__init__(*args, **kwargs)
        self.spec = settings(
            self._name,
            TopkSpec.build,
            topk=topk,
            top_ratio=top_ratio,
            mode=mode,
            domain_ratios=domain_ratios,
            domains=self.domain_names,
            coverage=coverage,
            score_source=score_source,
            share_exponent=share_exponent,
            rate_cap=rate_cap,
        )
        self.score_source = self.spec.score_source

    @property
    def wanted(self) -> tuple[str, ...]:
        """The values the selection reads per row: the score, the domain when domain quotas apply
        and the sub-domain with coverage."""
        return (self.score_source, *(("domain",) if self.spec.needs_domains else ()), *(("subdomain",) if self.spec.coverage else ()))

    def select_dataset(self, dataset):
        """The selection on a Data-Juicer dataset, read a batch at a time into ``Columns`` (the
        driver holds the columns, never the rows); values earlier ops did not store are scored here."""
        n = len(dataset)
        self.spec.warn_if_empty(n, self._name)
        if self.spec.budget(n) >= n:
            return dataset
        columns = Columns(n, self.domain_names)
        for start in tqdm(range(0, n, _BATCH), desc=f"{self._name}: reading scores", unit="batch", disable=n <= _BATCH):
            batch = dataset[start : start + _BATCH]
            columns.put(slice(start, start + _BATCH), self.batch_values(self.wanted, batch), self.score_source)
        return dataset.select(columns.pick(self.spec, self._name).tolist())


def select_on_ray(dataset, *, spec: TopkSpec, source: str, tag: str, wanted: Sequence[str], domains: Sequence[str], who: str):
    """The selection on a Ray dataset whose rows an earlier op scored under ``tag``: only (position,
    score, domain, sub-domain) per row reaches the driver, which picks; the rows are then filtered
    on the nodes that hold them."""
    import pyarrow as pa
    import ray

    # Ray Data is lazy: without this, every later consumption (count, zip, export) would rerun
    # the upstream ops, backbone included
    dataset = dataset.materialize()
    columns = set(dataset.columns())  # cheap once materialized
    needs_meta = spec.needs_domains or spec.coverage
    if Fields.stats not in columns or (needs_meta and Fields.meta not in columns):
        needed = "daar_domain_probe_mapper and daar_diversity_score_filter" if needs_meta else "daar_diversity_score_filter"
        raise ConfigError(f"{who}: under Ray, put {needed} (same bundle_path) before this op")
    n = dataset.count()
    spec.warn_if_empty(n, who)
    if spec.budget(n) >= n:
        return dataset
    logger.info(f"{who}: gathering the {source} score, domain and sub-domain of {n} rows on the driver (the rows stay on their nodes)")
    positions = ray.data.range(n).rename_columns({"id": POSITION})
    tagged = dataset.zip(positions).materialize()  # fixed blocks: positions travel with the rows

    def extract(table: pa.Table) -> pa.Table:
        stats = table.column(Fields.stats).to_pylist()
        metas = table.column(Fields.meta).to_pylist() if Fields.meta in table.column_names else [None] * len(stats)
        values = [stored_values(stat, meta, tag, wanted) for stat, meta in zip(stats, metas)]
        if None in values:
            raise ConfigError(
                f"{who}: a row has no {keys.SCORES[source].stats_key} stats of this bundle and text settings; "
                "put daar_diversity_score_filter (same bundle_path and text settings) before this op"
            )
        return pa.table(
            {
                POSITION: table.column(POSITION),
                "score": [float(v[source]) for v in values],
                "domain": [v.get("domain") or "" for v in values],
                "subdomain": [int(v.get("subdomain", -1)) for v in values],
            }
        )

    columns = Columns(n, domains)
    for batch in tagged.map_batches(extract, batch_format="pyarrow").iter_batches(batch_format="pyarrow"):
        pos = batch.column(POSITION).to_numpy()
        columns.scores[pos] = batch.column("score").to_numpy()
        columns.codes[pos] = [columns.code(d) for d in batch.column("domain").to_pylist()]
        columns.groups[pos] = batch.column("subdomain").to_numpy()
    keep = np.zeros(n, dtype=bool)
    keep[columns.pick(spec, who)] = True
    keep_ref = ray.put(keep)
    logger.info(f"{who}: keeping {int(keep.sum())} of {n} rows, filtered on the nodes that hold them")

    def keep_rows(table: pa.Table) -> pa.Table:
        mask = ray.get(keep_ref)[table.column(POSITION).to_numpy()]
        return table.filter(pa.array(mask)).drop_columns([POSITION])

    return tagged.map_batches(keep_rows, batch_format="pyarrow")
