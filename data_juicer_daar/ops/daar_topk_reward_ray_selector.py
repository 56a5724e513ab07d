"""daar_topk_reward_ray_selector: DaaR top-k selection that also runs under Data-Juicer's Ray executor."""

from __future__ import annotations

from data_juicer.ops.base_op import OPERATORS, Pipeline
from data_juicer.utils.constant import Fields
from loguru import logger

from ..keys import SCORE_KEYS
from ..dj.op_base import stored_values
from ..dj.topk import TopkOp, ranking

OP_NAME = "daar_topk_reward_ray_selector"
POSITION = "__daar_position__"  # temporary column: each row's input position


@OPERATORS.register_module(OP_NAME)
class DaarTopkRewardRaySelector(TopkOp, Pipeline):
    """The same selection as ``daar_topk_reward_selector`` (same parameters, modes and result), as an
    op type that Data-Juicer's Ray executor runs (Selectors are refused there). Under Ray it tags
    rows with their input position, gathers only (position, score, domain, sub-domain) per row on the driver,
    picks the rows there, and filters the distributed dataset by position: whole rows never reach the
    driver. It needs ``daar_diversity_score_filter`` before it (and ``daar_domain_probe_mapper`` for
    ``balanced``/``custom``). Under the default executor it behaves like the Selector op."""

    def __init__(
        self,
        probe_path: str = "",
        topk: int | None = None,
        top_ratio: float | None = None,
        mode: str = "overall",
        domain_ratios: dict | None = None,
        score_source: str = "probe_entropy",
        coverage: bool = False,
        model_path: str | None = None,
        model_batch_size: int = 32,
        model_dtype: str = "auto",
        text_format: str = "auto",
        input_key: str = "input",
        output_key: str = "output",
        messages_key: str = "messages",
        conversations_key: str = "conversations",
        *args,
        **kwargs,
    ):
        """
        Initialization method: the parameters of ``daar_topk_reward_selector``.

        :param topk: number of samples to keep (positive integer); ``None`` = no count limit.
        :param top_ratio: fraction of the samples to keep, in [0, 1] (rounded down); ``None`` = no
            ratio limit. At least one must be set; with both, the smaller selection applies.
        :param mode: "overall" (default), "balanced" or "custom".
        :param domain_ratios: for ``custom`` only: {domain name: share}, shares summing to 1.
        :param score_source: "probe_entropy" (default) or "predictor": which score ranks the samples.
        :param coverage: spread each budget over the bundle's sub-domains (meta ``daar_subdomain``),
            in proportion to their rows (default false).
        """
        super().__init__(*args, **kwargs)
        self._init_scoring(probe_path, model_path, model_batch_size, model_dtype, text_format, input_key, output_key, messages_key, conversations_key)
        self._init_topk(topk, top_ratio, mode, domain_ratios, score_source, coverage)

    def run(self, dataset, *args, **kwargs):
        if hasattr(dataset, "select"):  # a Hugging Face / Data-Juicer dataset: the default executor
            return self.select_dataset(dataset)
        return self._run_ray(dataset)

    def _run_ray(self, dataset):
        import numpy as np
        import pyarrow as pa
        import ray

        # Ray Data is lazy: without this, every later consumption (count, zip, export) would rerun
        # the upstream ops, backbone included
        dataset = dataset.materialize()
        columns = set(dataset.columns())  # cheap once materialized
        needs_meta = bool(self.spec.shares) or self.spec.coverage
        if Fields.stats not in columns or (needs_meta and Fields.meta not in columns):
            needed = "daar_domain_probe_mapper and daar_diversity_score_filter" if needs_meta else "daar_diversity_score_filter"
            raise ValueError(f"{OP_NAME}: under Ray, put {needed} (same probe_path) before this op")
        n = dataset.count()
        source = self.score_source
        if self.spec.budget(n) >= n:
            return dataset
        logger.info(f"{OP_NAME}: gathering the {source} score, domain and sub-domain of {n} rows on the driver (the rows stay on their nodes)")
        positions = ray.data.range(n).rename_columns({"id": POSITION})
        tagged = dataset.zip(positions).materialize()  # fixed blocks: positions travel with the rows
        tag, wanted = self.tag, self.wanted

        def extract(table: pa.Table) -> pa.Table:
            stats = table.column(Fields.stats).to_pylist()
            metas = table.column(Fields.meta).to_pylist() if Fields.meta in table.column_names else [None] * len(stats)
            values = [stored_values(stat, meta, tag, wanted) for stat, meta in zip(stats, metas)]
            if None in values:
                raise ValueError(
                    f"{OP_NAME}: a row has no {SCORE_KEYS[source]} stats of this bundle and text settings; "
                    "put daar_diversity_score_filter (same probe_path and text settings) before this op"
                )
            scores, domains, groups = ranking(values, source)
            return pa.table({POSITION: table.column(POSITION), "score": scores, "domain": domains, "subdomain": groups})

        scores = np.zeros(n)
        domains = np.empty(n, dtype=object)
        groups = np.full(n, -1, dtype=np.int64)
        for batch in tagged.map_batches(extract, batch_format="pyarrow").iter_batches(batch_format="pyarrow"):
            pos = batch.column(POSITION).to_numpy()
            scores[pos] = batch.column("score").to_numpy()
            domains[pos] = batch.column("domain").to_pylist()
            groups[pos] = batch.column("subdomain").to_numpy()
        keep = np.zeros(n, dtype=bool)
        keep[self.spec.pick(scores, domains.tolist(), groups)] = True
        keep_ref = ray.put(keep)
        logger.info(f"{OP_NAME}: keeping {int(keep.sum())} of {n} rows, filtered on the nodes that hold them")

        def keep_rows(table: pa.Table) -> pa.Table:
            mask = ray.get(keep_ref)[table.column(POSITION).to_numpy()]
            return table.filter(pa.array(mask)).drop_columns([POSITION])

        return tagged.map_batches(keep_rows, batch_format="pyarrow")
