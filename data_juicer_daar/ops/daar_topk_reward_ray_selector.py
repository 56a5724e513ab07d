"""daar_topk_reward_ray_selector: DaaR top-k selection that also runs under Data-Juicer's Ray executor."""

from __future__ import annotations

from data_juicer.ops.base_op import OPERATORS, Pipeline
from datasets import Dataset

from ..dj.topk import TopkOp, select_on_ray

OP_NAME = "daar_topk_reward_ray_selector"


@OPERATORS.register_module(OP_NAME)
class DaarTopkRewardRaySelector(TopkOp, Pipeline):
    """The same selection as ``daar_topk_reward_selector`` (same parameters, modes and result), as an
    op type that Data-Juicer's Ray executor runs (Selectors are refused there). Under Ray it tags
    rows with their input position, gathers only (position, score, domain, sub-domain) per row on the driver,
    picks the rows there, and filters the distributed dataset by position: whole rows never reach the
    driver. It needs ``daar_diversity_score_filter`` before it, and ``daar_domain_probe_mapper`` unless
    ``mode: overall`` and ``coverage: false``. Under the default executor it behaves like the Selector op."""

    def run(self, dataset, *args, **kwargs):
        self.preflight()
        if isinstance(dataset, Dataset):  # the default executor's (Hugging Face) dataset
            return self.select_dataset(dataset)
        return select_on_ray(
            dataset, spec=self.spec, source=self.score_source, tag=self.tag, wanted=self.wanted, domains=self.domain_names, who=OP_NAME
        )
