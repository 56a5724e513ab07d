"""daar_topk_reward_selector: keep the samples with the highest DaaR diversity reward."""

from __future__ import annotations

from data_juicer.ops.base_op import OPERATORS, Selector

from ..dj.topk import TopkOp

OP_NAME = "daar_topk_reward_selector"


@OPERATORS.register_module(OP_NAME)
class DaarTopkRewardSelector(TopkOp, Selector):
    """Keeps ``topk`` samples, or a ``top_ratio`` of them (the smaller when both are set), ranked by
    stats ``daar_probe_entropy`` (default) or ``daar_diversity`` (``score_source: predictor``), read
    only when tagged with this op's bundle and text settings. ``mode: overall`` ranks the whole pool (the paper); ``balanced`` gives
    every domain of the bundle an equal share of the budget; ``custom`` gives each domain the share in
    ``domain_ratios`` (the paper's customised selection). Domains come from meta ``daar_domain``.
    ``coverage: true`` also spreads each of those budgets over the sub-domains (meta
    ``daar_subdomain``) in proportion to their rows, the best samples of each filling its part.
    Quota a domain cannot fill goes to the best remaining samples. Selected samples keep their input
    order; equal rewards are broken by input position. Rewards or domains that earlier ops did not
    write are computed here from the bundle (one backbone pass over those samples)."""

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
        Initialization method.

        :param topk: number of samples to keep (positive integer); ``None`` = no count limit.
        :param top_ratio: fraction of the samples to keep, in [0, 1] (rounded down); ``None`` = no
            ratio limit. At least one of ``topk`` and ``top_ratio`` must be set; with both, the
            smaller selection applies.
        :param mode: "overall" (default), "balanced" or "custom".
        :param domain_ratios: for ``custom`` only: {domain name: share of the budget}, bundle domain
            names only, shares summing to 1. Domains left out get no quota.
        :param score_source: which score ranks the samples: "probe_entropy" (the probe's own
            calibrated entropy, stats ``daar_probe_entropy``; default: it selected better than the
            predictor in the benchmarks) or "predictor" (the paper's reward head, ``daar_diversity``).
        :param coverage: spread each budget (the pool's, or each domain's quota) over the bundle's
            sub-domains (meta ``daar_subdomain``) in proportion to their rows, and fill each
            sub-domain's part with its best samples, so no sub-domain is passed over (default false).
        """
        super().__init__(*args, **kwargs)
        self._init_scoring(probe_path, model_path, model_batch_size, model_dtype, text_format, input_key, output_key, messages_key, conversations_key)
        self._init_topk(topk, top_ratio, mode, domain_ratios, score_source, coverage)

    def process(self, dataset):
        return self.select_dataset(dataset)
