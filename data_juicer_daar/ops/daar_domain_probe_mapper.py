"""daar_domain_probe_mapper: tag each sample with its DaaR pseudo-domain and domain probabilities."""

from __future__ import annotations

from data_juicer.ops.base_op import OPERATORS, TAGGING_OPS, Mapper
from data_juicer.utils.constant import Fields

from .. import keys
from ..dj.op_base import ScoringOp, guarded

OP_NAME = "daar_domain_probe_mapper"


@TAGGING_OPS.register_module(OP_NAME)
@OPERATORS.register_module(OP_NAME)
class DaarDomainProbeMapper(ScoringOp, Mapper):
    """Runs the bundle's frozen backbone and domain probe over each sample and writes, in meta:
    ``daar_domain`` (predicted domain name, str), ``daar_domain_probs`` (K floats in the bundle's
    domain order), ``daar_subdomain`` (the sample's sub-domain cluster, an int; -1 without text),
    plus ``daar_diversity`` (the predicted reward, reused by
    ``daar_diversity_score_filter`` so the backbone runs once), ``daar_bundle`` (tag of the heads
    and text settings that wrote these keys) and ``daar_issue`` ("" or why the text was unusual). A sample without usable text
    gets domain "<no text>", all-zero probabilities and reward 0; it is kept, never dropped.
    Samples already tagged under the same bundle and text settings are not scored again; any other
    tag is scored afresh."""

    _batched_op = True

    @guarded
    def process_batched(self, samples, rank=None):
        values = self.batch_values(("domain", "subdomain", "probs", "predictor", "issue"), samples, rank)
        samples[Fields.meta] = [
            {
                **(meta or {}),
                keys.DOMAIN: v["domain"],
                keys.SUBDOMAIN: int(v["subdomain"]),
                keys.DOMAIN_PROBS: v["probs"],
                keys.DIVERSITY: v["predictor"],
                keys.BUNDLE: v["bundle"],  # the heads that scored it, even if the bundle was replaced mid-run
                keys.ISSUE: v["issue"],
            }
            for meta, v in zip(samples[Fields.meta], values)
        ]
        return samples
