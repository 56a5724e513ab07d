"""Names of every field the DaaR ops read or write (one place, so ops and tools agree)."""

#: meta: predicted pseudo-domain name (str); ``NO_TEXT_DOMAIN`` for a sample with no usable text.
DOMAIN = "daar_domain"
#: meta: the sample's sub-domain (int index into the bundle's sub-domain clusters; -1 without text).
SUBDOMAIN = "daar_subdomain"
#: meta: the domain probe's softmax, K floats in the bundle's domain order.
DOMAIN_PROBS = "daar_domain_probs"
#: stats (filter) and meta (mapper): the diversity reward predicted by the bundle's predictor.
DIVERSITY = "daar_diversity"
#: stats (filter with ``score_source: probe_entropy``): the domain probe's own entropy, in nats.
PROBE_ENTROPY = "daar_probe_entropy"
#: what an op can rank or filter by, and the stats key each one is stored under
SCORE_KEYS = {"predictor": DIVERSITY, "probe_entropy": PROBE_ENTROPY}
#: meta and stats: tag of the heads and text settings that wrote that row's DaaR keys; a later op
#: reuses a value only when the tag equals its own (see ``op_scoring.reusable``).
BUNDLE = "daar_bundle"
#: meta: why a sample's text was unusual ("" when it was not), see ``text.Issue``.
ISSUE = "daar_issue"

#: domain name given to samples without any usable text (they score 0 and all-zero probs).
NO_TEXT_DOMAIN = "<no text>"
