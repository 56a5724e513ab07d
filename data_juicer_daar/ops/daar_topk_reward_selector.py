"""daar_topk_reward_selector: keep the samples with the highest DaaR score."""

from __future__ import annotations

from data_juicer.ops.base_op import OPERATORS, Selector

from ..dj.topk import TopkOp

OP_NAME = "daar_topk_reward_selector"


@OPERATORS.register_module(OP_NAME)
class DaarTopkRewardSelector(TopkOp, Selector):
    """Keeps ``topk`` samples, or a ``top_ratio`` of them (the smaller when both are set), ranked by
    the score ``score_source`` names (stats ``daar_probe_entropy`` by default, ``daar_diversity``
    with ``predictor``), read only when tagged with this op's bundle and text settings. ``mode:
    balanced`` (default) gives every domain of the bundle a part of the budget in proportion to the
    square root of its rows (``share_exponent`` 0.5; 0 is an equal part); ``overall`` ranks the
    whole pool (the paper); ``custom`` gives each domain the share in ``domain_ratios`` (the paper's
    customised selection). Domains come from meta ``daar_domain``. ``coverage: true`` (default)
    also spreads each of those budgets over the sub-domains (meta ``daar_subdomain``) in proportion to their rows, the best samples of each
    filling its part. Quota a domain cannot fill is shared over the domains that still have samples,
    by their shares. Selected samples keep their input order; equal scores are broken by input
    position. Scores or domains that earlier ops did not write are computed here from the bundle
    (one backbone pass over those samples). Parameters: ``TopkOp.__init__``."""

    def process(self, dataset):
        return self.select_dataset(dataset)
