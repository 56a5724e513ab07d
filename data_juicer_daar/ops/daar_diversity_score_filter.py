"""daar_diversity_score_filter: the DaaR diversity reward as a stat, with an optional keep range."""

from __future__ import annotations

from data_juicer.ops.base_op import OPERATORS, Filter
from data_juicer.utils.constant import Fields

from .. import keys
from ..keys import SCORE_KEYS
from ..dj.op_base import ScoringOp, choice, finite_number, guarded

OP_NAME = "daar_diversity_score_filter"


@OPERATORS.register_module(OP_NAME)
class DaarDiversityScoreFilter(ScoringOp, Filter):
    """Computes stats ``daar_diversity``, the bundle's predicted diversity reward (the paper's
    selection score, in [0, ln K]), and ``daar_probe_entropy``, the domain probe's own calibrated
    entropy (the selectors' default ranking), both from one backbone pass; plus stats
    ``daar_bundle``, the tag of the heads and text settings that computed them. Keeps samples whose
    ``score_source`` score lies in ``[min_score, max_score]`` (each bound optional). Reuses the ``daar_domain_probe_mapper`` meta
    and stats already present only when they carry this op's tag, so the backbone runs once per
    sample and a row scored with another bundle or text setting is scored again (the count is
    logged). A sample without usable text scores 0."""

    _batched_op = True

    def __init__(
        self,
        probe_path: str = "",
        min_score: float | None = None,
        max_score: float | None = None,
        score_source: str = "predictor",
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

        :param min_score: keep samples scoring at least this; ``None`` = no lower bound.
        :param max_score: keep samples scoring at most this; ``None`` = no upper bound.
        :param score_source: which stat ``min_score``/``max_score`` apply to: "predictor" (the
            reward head, stats ``daar_diversity``; default) or "probe_entropy" (stats
            ``daar_probe_entropy``). Both stats are written either way.
        """
        super().__init__(*args, **kwargs)
        choice(OP_NAME, "score_source", score_source, tuple(SCORE_KEYS))
        finite_number(OP_NAME, "min_score", min_score)
        finite_number(OP_NAME, "max_score", max_score)
        if min_score is not None and max_score is not None and min_score > max_score:
            raise ValueError(f"{OP_NAME}: min_score ({min_score}) is greater than max_score ({max_score})")
        self.min_score, self.max_score, self.score_source = min_score, max_score, score_source
        self.stat_key = SCORE_KEYS[score_source]
        self._init_scoring(probe_path, model_path, model_batch_size, model_dtype, text_format, input_key, output_key, messages_key, conversations_key)

    @guarded
    def compute_stats_batched(self, samples, rank=None, **kwargs):
        values = self.batch_values(tuple(SCORE_KEYS), samples, rank)
        for stat, v in zip(samples[Fields.stats], values):
            stat.update({key: float(v[source]) for source, key in SCORE_KEYS.items()}, **{keys.BUNDLE: v["bundle"]})
        return samples

    def process_batched(self, samples):
        return [self.get_keep_boolean(stat[self.stat_key], self.min_score, self.max_score) for stat in samples[Fields.stats]]
