"""daar_domain_probe_mapper: tag each sample with its DaaR pseudo-domain and domain probabilities."""

from __future__ import annotations

from data_juicer.ops.base_op import OPERATORS, TAGGING_OPS, Mapper
from data_juicer.utils.constant import Fields

from .. import keys
from ..dj.op_base import ScoringOp

OP_NAME = "daar_domain_probe_mapper"


@TAGGING_OPS.register_module(OP_NAME)
@OPERATORS.register_module(OP_NAME)
class DaarDomainProbeMapper(ScoringOp, Mapper):
    """Runs the bundle's frozen backbone and domain probe over each sample and writes in meta
    ``daar_domain`` (the predicted domain), ``daar_domain_probs`` (K floats, bundle order),
    ``daar_subdomain`` (an int; -1 without text), ``daar_diversity`` (the predicted reward),
    ``daar_bundle`` (the scoring tag) and ``daar_issue`` ("" or why the text was unusual).

    Later DaaR ops reuse these values, so the backbone runs once per sample. A sample without usable
    text gets domain "<no text>", all-zero probabilities and reward 0: kept, never dropped.
    Parameters: ``ScoringOp.__init__`` (docs/ops.md)."""

    _batched_op = True
    wanted = ("domain", "subdomain", "probs", "predictor", "issue")

    def process_batched(self, samples, rank=None):
        values = self.batch_values(self.wanted, samples, rank)
        samples[Fields.meta] = [
            {
                **(meta or {}),
                keys.DOMAIN: v["domain"],
                keys.SUBDOMAIN: int(v["subdomain"]),
                keys.DOMAIN_PROBS: v["probs"],
                keys.DIVERSITY: v["predictor"],
                keys.SCORING_TAG: v["bundle"],  # the heads that scored it, even if the bundle was replaced mid-run
                keys.ISSUE: v["issue"],
            }
            for meta, v in zip(samples[Fields.meta], values)
        ]
        return samples
