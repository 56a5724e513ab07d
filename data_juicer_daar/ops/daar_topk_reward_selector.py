"""daar_topk_reward_selector: keep the samples with the highest DaaR diversity reward."""

from __future__ import annotations

from data_juicer.ops.base_op import OPERATORS, Selector
from data_juicer.utils.constant import Fields
from loguru import logger

from .. import keys
from ..op_scoring import SCORE_KEYS, ScoringOp, reusable, stored_score
from ..selection import TopkSpec

OP_NAME = "daar_topk_reward_selector"
_CHUNK = 1000  # rows rendered and scored together when the selector scores by itself


@OPERATORS.register_module(OP_NAME)
class DaarTopkRewardSelector(ScoringOp, Selector):
    """Keeps ``topk`` samples, or a ``top_ratio`` of them (the smaller when both are set), ranked by
    stats ``daar_probe_entropy`` (default) or ``daar_diversity`` (``score_source: predictor``), read
    only when tagged with this op's bundle and text settings. ``mode: overall`` ranks the whole pool (the paper); ``balanced`` gives
    every domain of the bundle an equal share of the budget; ``custom`` gives each domain the share in
    ``domain_ratios`` (the paper's customised selection). Domains come from meta ``daar_domain``.
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
        model_path: str | None = None,
        model_batch_size: int = 32,
        text_format: str = "auto",
        input_key: str = "input",
        output_key: str = "output",
        messages_key: str = "messages",
        *args,
        **kwargs,
    ):
        """
        Initialization method.

        :param probe_path: bundle directory written by ``daar train`` (required).
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
        :param model_path: backbone directory to use instead of the bundle's (same weights, checked).
        :param model_batch_size: texts per backbone forward pass (default 32).
        :param text_format: "auto", "alpaca", "messages" or "text" (see the mapper).
        :param input_key: Alpaca input field; the instruction field is ``instruction_key``.
        :param output_key: Alpaca output field.
        :param messages_key: chat field holding a list of role/content dicts.
        :param args: extra args
        :param kwargs: extra args
        """
        super().__init__(*args, **kwargs)
        self._init_scoring(probe_path, model_path, model_batch_size, text_format, input_key, output_key, messages_key)
        self.spec = TopkSpec.build(OP_NAME, topk, top_ratio, mode, domain_ratios, self.domain_names)
        self.score_source = check_score_source(OP_NAME, score_source)

    def process(self, dataset):
        return select_rows(self, dataset)


def select_rows(op: ScoringOp, dataset):
    """The selection on a Data-Juicer dataset; rewards/domains earlier ops did not write are computed."""
    if op.spec.budget(len(dataset)) >= len(dataset):
        return dataset
    rewards, domains = _rewards_and_domains(op, dataset)
    return dataset.select(op.spec.pick(rewards, domains).tolist())


def check_score_source(op_name: str, score_source: str) -> str:
    if score_source not in SCORE_KEYS:
        raise ValueError(f"{op_name}: score_source must be one of {', '.join(SCORE_KEYS)}, got {score_source!r}")
    return score_source


def _rewards_and_domains(op: ScoringOp, dataset) -> tuple[list[float], list[str]]:
    n = len(dataset)
    stats = dataset[Fields.stats] if Fields.stats in dataset.column_names else [None] * n
    metas = dataset[Fields.meta] if Fields.meta in dataset.column_names else [None] * n
    rewards, domains, todo = [0.0] * n, [""] * n, []
    for i in range(n):
        reward = stored_score(stats[i], metas[i], op.tag, op.score_source)
        domain = reusable(metas[i], op.tag, keys.DOMAIN)
        if reward is None or (op.spec.shares and domain is None):
            todo.append(i)
            continue
        rewards[i], domains[i] = reward, domain or ""
    if todo:
        logger.info(
            f"{op._name}: {len(todo)} of {n} samples lack {SCORE_KEYS[op.score_source]} stats or daar_domain meta of this "
            "bundle and text settings; scoring them here (put daar_domain_probe_mapper / daar_diversity_score_filter "
            "with the same settings before the selector to reuse their pass)"
        )
        for start in range(0, len(todo), _CHUNK):
            rows = todo[start : start + _CHUNK]
            scored = op.score_rows(dataset.select(rows).to_dict(), range(len(rows)))
            values = scored.reward if op.score_source == "predictor" else scored.entropy
            for j, i in enumerate(rows):
                rewards[i], domains[i] = float(values[j]), scored.domains[j]
    return rewards, domains
