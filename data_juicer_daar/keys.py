"""Names of every field the DaaR ops read or write, and the one table of the scores (ops, the reuse
rule, the CLI and the report all read it)."""

from __future__ import annotations

from dataclasses import dataclass

from .options import OneOf

#: meta: predicted pseudo-domain name (str); ``NO_TEXT_DOMAIN`` for a sample with no usable text.
DOMAIN = "daar_domain"
#: meta: the sample's sub-domain (int index into the bundle's sub-domain clusters; -1 without text).
SUBDOMAIN = "daar_subdomain"
#: meta: the domain probe's softmax, K floats in the bundle's domain order.
DOMAIN_PROBS = "daar_domain_probs"
#: stats (filter) and meta (mapper): the score ``predictor``, the bundle's predicted diversity reward.
DIVERSITY = "daar_diversity"
#: stats (filter): the score ``probe_entropy``, the domain probe's own entropy, in nats.
PROBE_ENTROPY = "daar_probe_entropy"
#: meta and stats: tag of the heads, text settings and number format that wrote that row's DaaR
#: keys; a later op reuses a value only when the tag equals its own (``dj.reuse.stored_values``).
#: (The stored name is older than the tag's meaning; it stays so that scored pools keep matching.)
SCORING_TAG = "daar_bundle"
#: meta: why a sample's text was unusual ("" when it was not), see ``method.text.Rendered``.
ISSUE = "daar_issue"

#: Data-Juicer's row fields that hold the meta and the stats dicts (``data_juicer.utils.constant.Fields``;
#: spelled here so the tools read exported rows without importing Data-Juicer, checked by a test)
DJ_PREFIX = "__dj__"
META = "__dj__meta__"
STATS = "__dj__stats__"

#: domain name given to samples without any usable text (they score 0 and all-zero probs).
NO_TEXT_DOMAIN = "<no text>"


@dataclass(frozen=True)
class Score:
    """A per-row score the ops write and the selectors rank by. ``name`` is its one name: the value
    of ``score_source``, of ``daar report --score`` and the report's plot file (``<name>.png``)."""

    name: str
    stats_key: str  # where the filter stores it
    meta_key: str | None  # where the mapper stores it; None: derived from the mapper's DOMAIN_PROBS
    about: str


#: every score, by name
SCORES = {
    s.name: s
    for s in (
        Score("predictor", DIVERSITY, DIVERSITY, "the reward head's prediction of the probe entropy (the paper's reward)"),
        Score("probe_entropy", PROBE_ENTROPY, None, "the domain probe's calibrated entropy, in nats"),
    )
}
#: the score every op ranks or filters by unless told otherwise: it selected better than the
#: predictor in every measured setting (benchmarks/README.md, sections 3 and 5)
DEFAULT_SCORE = "probe_entropy"
#: the rule of every ``score_source`` setting: a score of the table
SCORE_SOURCE = OneOf(tuple(SCORES))
#: the other per-row values the mapper stores (value name -> meta key)
META_VALUES = {"domain": DOMAIN, "subdomain": SUBDOMAIN, "probs": DOMAIN_PROBS, "issue": ISSUE}
