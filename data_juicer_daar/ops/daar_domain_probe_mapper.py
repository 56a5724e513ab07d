"""daar_domain_probe_mapper: tag each sample with its DaaR pseudo-domain and domain probabilities."""

from __future__ import annotations

from data_juicer.ops.base_op import OPERATORS, TAGGING_OPS, Mapper
from data_juicer.utils.constant import Fields

from .. import keys
from ..op_scoring import ScoringOp, guarded, reusable

OP_NAME = "daar_domain_probe_mapper"


@TAGGING_OPS.register_module(OP_NAME)
@OPERATORS.register_module(OP_NAME)
class DaarDomainProbeMapper(ScoringOp, Mapper):
    """Runs the bundle's frozen backbone and domain probe over each sample and writes, in meta:
    ``daar_domain`` (predicted domain name, str), ``daar_domain_probs`` (K floats in the bundle's
    domain order), plus ``daar_diversity`` (the predicted reward, reused by
    ``daar_diversity_score_filter`` so the backbone runs once), ``daar_bundle`` (tag of the heads
    and text settings that wrote these keys) and ``daar_issue`` ("" or why the text was unusual). A sample without usable text
    gets domain "<no text>", all-zero probabilities and reward 0; it is kept, never dropped.
    Samples already tagged under the same bundle and text settings are not scored again; any other
    tag is scored afresh."""

    _batched_op = True

    def __init__(
        self,
        probe_path: str = "",
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
        :param model_path: backbone directory to use instead of the one the bundle names; it must
            hold the same weights (checked). ``None`` uses the bundle's model.
        :param model_batch_size: texts per backbone forward pass (default 32).
        :param text_format: "auto" recognises Alpaca (instruction/output present), then
            ``messages``, then ``text_key``, per sample; or force "alpaca", "messages", "text".
        :param input_key: Alpaca input field; the instruction field is ``instruction_key``.
        :param output_key: Alpaca output field.
        :param messages_key: chat field holding a list of role/content dicts.
        :param args: extra args
        :param kwargs: extra args
        """
        super().__init__(*args, **kwargs)
        self._init_scoring(probe_path, model_path, model_batch_size, text_format, input_key, output_key, messages_key)

    @guarded
    def process_batched(self, samples, rank=None):
        metas = samples[Fields.meta]
        todo = [i for i, meta in enumerate(metas) if reusable(meta, self.tag, keys.DOMAIN_PROBS) is None]
        if not todo:
            return samples
        scored = self.score_rows(samples, todo, rank)
        for j, i in enumerate(todo):
            meta = dict(metas[i] or {})
            meta[keys.DOMAIN] = scored.domains[j]
            meta[keys.DOMAIN_PROBS] = scored.probs[j]
            meta[keys.DIVERSITY] = scored.reward[j]
            meta[keys.BUNDLE] = scored.tag  # the heads that scored it, even if the bundle was replaced mid-run
            meta[keys.ISSUE] = scored.issues[j]
            metas[i] = meta
        samples[Fields.meta] = metas
        return samples
