"""daar_diversity_score_filter: the DaaR diversity reward as a stat, with an optional keep range."""

from __future__ import annotations

from data_juicer.ops.base_op import OPERATORS, Filter
from data_juicer.utils.constant import Fields

from .. import keys
from ..op_scoring import ScoringOp, probs_entropy

OP_NAME = "daar_diversity_score_filter"
SOURCES = ("predictor", "probe_entropy")


@OPERATORS.register_module(OP_NAME)
class DaarDiversityScoreFilter(ScoringOp, Filter):
    """Computes stats ``daar_diversity``: the bundle's predicted diversity reward (the paper's
    selection score, in [0, ln K]) or, with ``score_source: probe_entropy``, the domain probe's own
    entropy. Keeps samples with ``min_score <= daar_diversity <= max_score`` (each bound optional).
    Reuses the ``daar_domain_probe_mapper`` meta of the same bundle when present, so the backbone
    runs once per sample; stats already present are not recomputed. A sample without usable text
    scores 0."""

    _batched_op = True

    def __init__(
        self,
        probe_path: str = "",
        min_score: float | None = None,
        max_score: float | None = None,
        score_source: str = "predictor",
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
        :param min_score: keep samples scoring at least this; ``None`` = no lower bound.
        :param max_score: keep samples scoring at most this; ``None`` = no upper bound.
        :param score_source: "predictor" (the reward head, default) or "probe_entropy".
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
        if score_source not in SOURCES:
            raise ValueError(f"{OP_NAME}: score_source must be one of {', '.join(SOURCES)}, got {score_source!r}")
        for name, bound in (("min_score", min_score), ("max_score", max_score)):
            if bound is not None and (isinstance(bound, bool) or not isinstance(bound, (int, float))):
                raise ValueError(f"{OP_NAME}: {name} must be a number or null, got {bound!r}")
        if min_score is not None and max_score is not None and min_score > max_score:
            raise ValueError(f"{OP_NAME}: min_score ({min_score}) is greater than max_score ({max_score})")
        self.min_score, self.max_score, self.score_source = min_score, max_score, score_source
        self._init_scoring(probe_path, model_path, model_batch_size, text_format, input_key, output_key, messages_key)

    def _from_meta(self, meta) -> float:
        if self.score_source == "predictor":
            return float(meta[keys.DIVERSITY])
        return probs_entropy(meta[keys.DOMAIN_PROBS])

    def compute_stats_batched(self, samples, rank=None, **kwargs):
        stats = samples[Fields.stats]
        metas = self.meta_column(samples)
        todo = []
        for i, stat in enumerate(stats):
            if stat.get(keys.DIVERSITY) is not None:
                continue
            if self.reusable_meta(metas[i]):
                stat[keys.DIVERSITY] = self._from_meta(metas[i])
            else:
                todo.append(i)
        if todo:
            scored = self.score_rows(samples, todo, rank)
            values = scored.reward if self.score_source == "predictor" else scored.entropy
            for j, i in enumerate(todo):
                stats[i][keys.DIVERSITY] = float(values[j])
        return samples

    def process_batched(self, samples):
        return [self.get_keep_boolean(stat[keys.DIVERSITY], self.min_score, self.max_score) for stat in samples[Fields.stats]]
