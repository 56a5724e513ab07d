from collections import Counter

import pytest

from data_juicer_daar.method.selection import TopkSpec, budget, equal_shares, quotas, select, validate_ratios

DOMAINS = ["a", "b", "c"]


@pytest.mark.parametrize(
    "n, topk, ratio, expected",
    [(10, 3, None, 3), (10, None, 0.25, 2), (10, 5, 0.2, 2), (10, 1, 0.9, 1), (10, 50, None, 10), (10, None, 0.0, 0), (10, None, 0.3, 3)],
)
def test_budget(n, topk, ratio, expected):
    assert budget(n, topk, ratio) == expected


def test_quotas_largest_remainder():
    assert quotas(10, {"a": 1 / 3, "b": 1 / 3, "c": 1 / 3}) == {"a": 4, "b": 3, "c": 3}
    assert quotas(7, {"a": 0.5, "b": 0.25, "c": 0.25}) == {"a": 3, "b": 2, "c": 2}


def test_overall_top_k_in_input_order_ties_by_position():
    scores = [0.1, 0.9, 0.5, 0.9, 0.5, 0.0]
    assert select(scores, DOMAINS * 2, 3).tolist() == [1, 2, 3]
    assert select(scores, DOMAINS * 2, 0).tolist() == []
    assert select(scores, DOMAINS * 2, 99).tolist() == [0, 1, 2, 3, 4, 5]


def test_balanced_equal_share_best_first_within_domain():
    scores = [0.9, 0.8, 0.7, 0.1, 0.2, 0.3]
    domains = ["a", "a", "a", "b", "b", "c"]
    # k=3: one per domain -> best a (0), best b (4), the only c (5)
    assert select(scores, domains, 3, equal_shares(DOMAINS)).tolist() == [0, 4, 5]


def test_short_domain_quota_goes_to_best_remaining():
    scores = [0.9, 0.8, 0.7, 0.1, 0.2]
    domains = ["a", "a", "a", "b", "b"]
    # k=4 balanced over a,b,c: quotas 2/1/1; c has no rows -> its 1 goes to the best remaining (a, 0.7)
    assert select(scores, domains, 4, equal_shares(DOMAINS)).tolist() == [0, 1, 2, 4]


def test_custom_ratios():
    scores = [0.5, 0.4, 0.3, 0.9, 0.8, 0.7]
    domains = ["a", "a", "a", "b", "b", "b"]
    shares = validate_ratios({"a": 0.75, "b": 0.25}, ["a", "b"])
    assert select(scores, domains, 4, shares).tolist() == [0, 1, 2, 3]


def test_no_text_rows_only_fill_leftovers():
    scores = [0.0, 0.5, 0.4]
    domains = ["<no text>", "a", "a"]
    assert select(scores, domains, 2, equal_shares(["a", "b"])).tolist() == [1, 2]


@pytest.mark.parametrize(
    "ratios, message",
    [
        ({"a": 0.5, "z": 0.5}, "unknown domain"),
        ({"a": 0.5, "b": 0.4}, "must sum to 1"),
        ({"a": -0.5, "b": 1.5}, "non-negative"),
        ({"a": "half", "b": 0.5}, "non-negative numbers"),
        ([0.5, 0.5], "must map domain names"),
        ({}, "must map domain names"),
    ],
)
def test_bad_ratios(ratios, message):
    with pytest.raises(ValueError, match=message):
        validate_ratios(ratios, DOMAINS)


def test_unknown_mode():
    with pytest.raises(ValueError, match="mode must be one of"):
        TopkSpec.build(3, None, "random", None, DOMAINS)


def test_coverage_quotas_proportional_to_subdomains_best_first():
    # sub-domain 0: 6 rows (high scores), 1: 3 rows, 2: 1 row (lowest scores); k=5 -> 3 / 1.5 / 0.5
    # largest remainder: 3 / 2 / 0 ... ties of remainder 0.5 go to the earlier sub-domain
    scores = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05]
    groups = [0, 0, 0, 0, 0, 0, 1, 1, 1, 2]
    picked = select(scores, ["a"] * 10, 5, groups=groups).tolist()
    assert picked == [0, 1, 2, 6, 7]  # best 3 of sub-domain 0, best 2 of sub-domain 1
    assert select(scores, ["a"] * 10, 5).tolist() == [0, 1, 2, 3, 4]  # without coverage: sub-domain 0 only
    # k=10 takes every row; a sub-domain that cannot fill its quota hands it to the best remaining
    assert select(scores, ["a"] * 10, 10, groups=groups).tolist() == list(range(10))


def test_balanced_coverage_splits_each_domain_over_its_subdomains():
    scores = [0.9, 0.8, 0.1, 0.7, 0.6, 0.5, 0.4]
    domains = ["a", "a", "a", "b", "b", "b", "b"]
    groups = [0, 0, 1, 2, 2, 3, 3]
    # k=4 balanced: 2 for a (its sub-domains 0 and 1: 2/3 and 1/3 -> 1 and 1), 2 for b (2 and 3: 1 and 1)
    assert select(scores, domains, 4, equal_shares(["a", "b"]), groups).tolist() == [0, 2, 3, 5]
    spec = TopkSpec.build(4, None, "balanced", None, ["a", "b"], coverage=True)
    assert spec.pick(scores, domains, groups).tolist() == [0, 2, 3, 5]
    with pytest.raises(ValueError, match="coverage must be true or false"):
        TopkSpec.build(4, None, "balanced", None, ["a", "b"], coverage="yes")


def test_coverage_gives_rows_without_a_subdomain_no_quota():
    # rows 4-7 have no text (sub-domain -1, score 0): with coverage they only fill leftovers, never a quota
    scores = [0.9, 0.8, 0.7, 0.6, 0.0, 0.0, 0.0, 0.0]
    groups = [0, 0, 1, 1, -1, -1, -1, -1]
    assert select(scores, ["a"] * 4 + ["<no text>"] * 4, 4, groups=groups).tolist() == [0, 1, 2, 3]
    assert select(scores, ["a"] * 4 + ["<no text>"] * 4, 6, groups=groups).tolist() == [0, 1, 2, 3, 4, 5]


def test_quota_a_domain_cannot_fill_is_spread_over_the_others_not_given_to_the_earliest_rows():
    domains = ["a"] * 10 + ["b"] * 10 + ["c"] * 10  # no row of d; every score equal
    picked = select([0.0] * 30, domains, 12, equal_shares(["a", "b", "c", "d"]))
    assert Counter(domains[i] for i in picked) == {"a": 4, "b": 4, "c": 4}  # d's 3 go one to each, not 3 more to a


def test_custom_shares_spill_by_their_ratios():
    domains = ["a"] * 20 + ["b"] * 20 + ["c"] * 2
    shares = validate_ratios({"a": 0.6, "b": 0.2, "c": 0.2}, ["a", "b", "c"])
    picked = select([0.0] * 42, domains, 10, shares)  # quotas 6 / 2 / 2: c has its 2 rows, nothing to spill
    assert Counter(domains[i] for i in picked) == {"a": 6, "b": 2, "c": 2}
    picked = select([0.0] * 40, domains[:40], 20, shares)  # quotas 12 / 4 / 4, no row of c: its 4 go 3 : 1 to a and b
    assert Counter(domains[i] for i in picked) == {"a": 15, "b": 5}


@pytest.fixture
def warnings():
    from loguru import logger

    said: list[str] = []
    sink = logger.add(lambda m: said.append(m.record["message"]), level="WARNING")
    yield said
    logger.remove(sink)


def test_a_selection_that_keeps_nothing_says_so(warnings):
    spec = TopkSpec.build(None, 0.1, "overall", None, DOMAINS)
    spec.warn_if_empty(5, "sel")  # 10 % of 5 rounds down to 0
    spec.warn_if_empty(0, "sel")  # an earlier filter kept nothing
    spec.warn_if_empty(50, "sel")  # keeps 5: nothing to say
    assert warnings == [
        "sel: top_ratio 0.1 of 5 rows rounds down to 0: the selection is empty",
        "sel: no rows reached the selector (an earlier op kept none): the selection is empty",
    ]
