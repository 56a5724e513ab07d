"""daar_diversity_score_filter: the DaaR diversity reward as a stat, with an optional keep range."""

from __future__ import annotations

from dataclasses import dataclass

from data_juicer.ops.base_op import OPERATORS, Filter
from data_juicer.utils.constant import Fields

from .. import keys
from ..dj.op_base import ScoringOp
from ..errors import ConfigError
from ..options import Number, Settings, declared, option, settings

OP_NAME = "daar_diversity_score_filter"


@dataclass(frozen=True)
class ScoreRange(Settings):
    """The filter's own parameters: the score it keeps by and the range it keeps."""

    min_score: float | None = option(None, check=Number(nullable=True))
    max_score: float | None = option(None, check=Number(nullable=True))
    score_source: str = option(keys.DEFAULT_SCORE, check=keys.SCORE_SOURCE)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.min_score is not None and self.max_score is not None and self.min_score > self.max_score:
            raise ConfigError(f"min_score ({self.min_score}) is greater than max_score ({self.max_score})", option="min_score")


@OPERATORS.register_module(OP_NAME)
class DaarDiversityScoreFilter(ScoringOp, Filter):
    """Writes both scores of ``keys.SCORES`` from one backbone pass, as stats ``daar_probe_entropy``
    (the probe's calibrated entropy, the default score) and ``daar_diversity`` (the reward head's
    prediction), with ``daar_bundle`` (their scoring tag), and keeps the samples whose
    ``score_source`` score lies in ``[min_score, max_score]``.

    Values the ``daar_domain_probe_mapper`` stored under this op's tag are reused, so the backbone
    runs once per sample. A sample without usable text scores 0. Parameters: docs/ops.md."""

    _batched_op = True
    wanted = tuple(keys.SCORES)

    def __init__(
        self,
        min_score: float | None = declared(ScoreRange, "min_score"),
        max_score: float | None = declared(ScoreRange, "max_score"),
        score_source: str = declared(ScoreRange, "score_source"),
        *args,
        **kwargs,
    ):
        """
        Initialization method (the parameters every DaaR op takes: ``ScoringOp.__init__``).

        :param min_score: keep samples scoring at least this; ``None`` = no lower bound.
        :param max_score: keep samples scoring at most this; ``None`` = no upper bound.
        :param score_source: the score the bounds apply to: "probe_entropy" (default) or "predictor".
            Both stats are written either way.
        """
        keep = settings(OP_NAME, ScoreRange, min_score=min_score, max_score=max_score, score_source=score_source)
        super().__init__(*args, **kwargs)
        self.min_score, self.max_score, self.score_source = keep.min_score, keep.max_score, keep.score_source
        self.stat_key = keys.SCORES[score_source].stats_key

    def compute_stats_batched(self, samples, rank=None, **kwargs):
        values = self.batch_values(self.wanted, samples, rank)
        for stat, v in zip(samples[Fields.stats], values):
            stat.update({score.stats_key: float(v[name]) for name, score in keys.SCORES.items()}, **{keys.SCORING_TAG: v["bundle"]})
        return samples

    def process_batched(self, samples):
        return [self.get_keep_boolean(stat[self.stat_key], self.min_score, self.max_score) for stat in samples[Fields.stats]]
