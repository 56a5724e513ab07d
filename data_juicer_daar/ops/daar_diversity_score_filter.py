"""daar_diversity_score_filter: the DaaR diversity reward as a stat, with an optional keep range."""

from __future__ import annotations

from data_juicer.ops.base_op import OPERATORS, Filter
from data_juicer.utils.constant import Fields

from .. import keys
from ..dj.op_base import ScoringOp, choice, finite_number, guarded
from ..errors import ConfigError

OP_NAME = "daar_diversity_score_filter"


@OPERATORS.register_module(OP_NAME)
class DaarDiversityScoreFilter(ScoringOp, Filter):
    """Computes the two scores of ``keys.SCORES`` from one backbone pass: stats
    ``daar_probe_entropy`` (``probe_entropy``, the domain probe's own calibrated entropy; the
    default score) and ``daar_diversity`` (``predictor``, the bundle's predicted diversity reward,
    the paper's selection score, in [0, ln K]); plus stats
    ``daar_bundle``, the tag of the heads and text settings that computed them. Keeps samples whose
    ``score_source`` score lies in ``[min_score, max_score]`` (each bound optional). Reuses the ``daar_domain_probe_mapper`` meta
    and stats already present only when they carry this op's tag, so the backbone runs once per
    sample and a row scored with another bundle or text setting is scored again (the count is
    logged). A sample without usable text scores 0."""

    _batched_op = True

    def __init__(
        self,
        min_score: float | None = None,
        max_score: float | None = None,
        score_source: str = keys.DEFAULT_SCORE,
        *args,
        **kwargs,
    ):
        """
        Initialization method (the parameters every DaaR op takes: ``ScoringOp.__init__``).

        :param min_score: keep samples scoring at least this; ``None`` = no lower bound.
        :param max_score: keep samples scoring at most this; ``None`` = no upper bound.
        :param score_source: the score ``min_score``/``max_score`` apply to: "probe_entropy"
            (stats ``daar_probe_entropy``; default, as for the selectors: ``keys.DEFAULT_SCORE``)
            or "predictor" (the reward head, stats ``daar_diversity``). Both stats are written
            either way.
        """
        choice(OP_NAME, "score_source", score_source, tuple(keys.SCORES))
        finite_number(OP_NAME, "min_score", min_score)
        finite_number(OP_NAME, "max_score", max_score)
        if min_score is not None and max_score is not None and min_score > max_score:
            raise ConfigError(f"{OP_NAME}: min_score ({min_score}) is greater than max_score ({max_score})")
        super().__init__(*args, **kwargs)
        self.min_score, self.max_score, self.score_source = min_score, max_score, score_source
        self.stat_key = keys.SCORES[score_source].stats_key

    @guarded
    def compute_stats_batched(self, samples, rank=None, **kwargs):
        values = self.batch_values(tuple(keys.SCORES), samples, rank)
        for stat, v in zip(samples[Fields.stats], values):
            stat.update({score.stats_key: float(v[name]) for name, score in keys.SCORES.items()}, **{keys.BUNDLE: v["bundle"]})
        return samples

    def process_batched(self, samples):
        return [self.get_keep_boolean(stat[self.stat_key], self.min_score, self.max_score) for stat in samples[Fields.stats]]
