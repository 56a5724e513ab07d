import math
from collections import Counter

import numpy as np
import pytest
from loguru import logger

from data_juicer_daar.method.selection import TopkSpec, budget, equal_shares, quotas, select, validate_ratios, water_fill

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
    # k=4 balanced over a,b,c: c has no rows, so its part is water-filled to a and b equally: 2 / 2
    assert select(scores, domains, 4, equal_shares(DOMAINS)).tolist() == [0, 1, 3, 4]
    # b has only 2 rows: at k=5 a takes the rest
    assert select(scores, domains, 5, equal_shares(DOMAINS)).tolist() == [0, 1, 2, 3, 4]


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
    spec = TopkSpec.build(None, 0.1, "overall", None, DOMAINS, coverage=False)
    spec.warn_if_empty(5, "sel")  # 10 % of 5 rounds down to 0
    spec.warn_if_empty(0, "sel")  # an earlier filter kept nothing
    spec.warn_if_empty(50, "sel")  # keeps 5: nothing to say
    assert warnings == [
        "sel: top_ratio 0.1 of 5 rows rounds down to 0: the selection is empty",
        "sel: no rows reached the selector (an earlier op kept none): the selection is empty",
    ]


# share rules: tempered parts, the rate cap and water-filling, on pools whose right counts are known


def skewed(sizes: dict[str, int]) -> list[str]:
    return [d for d, count in sizes.items() for _ in range(count)]


def counts(domains: list[str], picked) -> dict[str, int]:
    return dict(Counter(domains[i] for i in picked))


@pytest.mark.parametrize(
    "exponent, expected",
    [
        (0.0, {"a": 10, "b": 10, "c": 10, "d": 10}),  # equal
        (1.0, {"a": 24, "b": 8, "c": 4, "d": 4}),  # proportional: a random sample's mix
        (0.5, {"a": 16, "b": 9, "c": 8, "d": 7}),  # sqrt: 600:300:100:100 ** 0.5 = 24.5 : 14.1 : 10 : 10 ... of 40, water-filled
    ],
)
def test_tempered_shares_give_each_domain_rows_to_the_power(exponent, expected):
    domains = skewed({"a": 600, "b": 200, "c": 100, "d": 100})
    spec = TopkSpec.build(40, None, "balanced", None, ["a", "b", "c", "d"], coverage=False, share_exponent=exponent)
    picked = spec.pick(np.zeros(len(domains)), domains)
    got = counts(domains, picked)
    assert sum(got.values()) == 40
    weights = {d: n**exponent for d, n in {"a": 600, "b": 200, "c": 100, "d": 100}.items()}
    assert got == quotas(40, {d: w / sum(weights.values()) for d, w in weights.items()})
    if exponent != 0.5:
        assert got == expected


def test_the_rate_cap_bounds_a_one_source_domain_and_water_fills_the_rest():
    # d is one small source: equal parts would give it 25 of 100 rows (a rate of 0.5 on its 50 rows);
    # with cap 1.5 at an overall rate of 100 / 1000 it gives at most ceil(1.5 * 0.1 * 50) = 8
    domains = skewed({"a": 700, "b": 150, "c": 100, "d": 50})
    for cap in (1.0, 1.5, 2.0, 3.0):
        spec = TopkSpec.build(100, None, "balanced", None, ["a", "b", "c", "d"], coverage=False, share_exponent=0.0, rate_cap=cap)
        got = counts(domains, spec.pick(np.random.default_rng(0).random(1000), domains))
        assert sum(got.values()) == 100  # the quotas sum to the budget
        for d, size in {"a": 700, "b": 150, "c": 100, "d": 50}.items():
            assert got.get(d, 0) <= math.ceil(cap * 0.1 * size)  # never above c x its random share
        # water-filling: what the capped small domains cannot take goes to the ones with room, equally
        room = {d: min(size, math.ceil(cap * 0.1 * size - 1e-9)) for d, size in {"a": 700, "b": 150, "c": 100, "d": 50}.items()}
        assert got == water_fill(100, dict.fromkeys(room, 1.0), room)
    equal_capped = TopkSpec.build(100, None, "balanced", None, ["a", "b", "c", "d"], coverage=False, share_exponent=0.0, rate_cap=1.5)
    capped = counts(domains, equal_capped.pick(np.zeros(1000), domains))
    assert capped == {"a": 54, "b": 23, "c": 15, "d": 8}  # 25 each; c and d full at 15 and 8, b at 23; a takes the rest


def test_water_fill_gives_a_full_groups_rest_to_the_others_by_weight():
    assert water_fill(10, {"x": 1.0, "y": 1.0, "z": 2.0}, {"x": 1, "y": 9, "z": 9}) == {"x": 1, "y": 3, "z": 6}
    assert water_fill(10, {"x": 1.0, "y": 0.0}, {"x": 4, "y": 9}) == {"x": 4, "y": 0}  # weight 0: nothing, even when short
    assert water_fill(0, {"x": 1.0}, {"x": 3}) == {"x": 0}


def test_the_rate_cap_also_bounds_sub_domains_and_the_overall_mode():
    rng = np.random.default_rng(1)
    domains = skewed({"a": 300, "b": 100})
    scores = np.r_[rng.random(300) * 0.5, 0.5 + rng.random(100)]  # b scores higher: overall would take b first
    uncapped = counts(domains, select(scores, domains, 80))
    assert uncapped == {"b": 80}
    capped = counts(domains, select(scores, domains, 80, cap=2.0))  # rate 0.2: b gives at most 40
    assert capped == {"b": 40, "a": 40}
    groups = np.r_[np.zeros(290, dtype=int), np.ones(10, dtype=int), np.full(100, 2)]
    picked = select(scores, domains, 80, {"a": 1.0, "b": 1.0}, groups, cap=1.5)
    per_group = Counter(int(groups[i]) for i in picked)
    assert len(picked) == 80
    assert per_group[1] <= math.ceil(1.5 * 0.2 * 10) and per_group[2] <= math.ceil(1.5 * 0.2 * 100)


def test_share_rules_are_deterministic_and_identical_for_a_copy_of_the_input():
    rng = np.random.default_rng(2)
    domains = list(rng.choice(["a", "b", "c", "d"], size=500, p=[0.6, 0.25, 0.1, 0.05]))
    scores, groups = rng.random(500), rng.integers(0, 12, size=500)
    spec = TopkSpec.build(None, 0.2, "balanced", None, ["a", "b", "c", "d"], coverage=True, share_exponent=0.5, rate_cap=2.0)
    first = spec.pick(scores, domains, groups)
    assert first.tolist() == spec.pick(scores.copy(), list(domains), groups.copy()).tolist()
    assert len(first) == 100 and len(set(first.tolist())) == 100


def test_custom_never_takes_rows_of_a_domain_left_out_and_warns_when_short():
    # 4 reasoning rows, topk 10, reasoning only: 4 rows, no mathematics, one warning
    domains = ["reasoning"] * 4 + ["mathematics"] * 20
    spec = TopkSpec.build(10, None, "custom", {"reasoning": 1.0}, ["reasoning", "mathematics"], coverage=False)
    said: list[str] = []
    sink = logger.add(lambda m: said.append(m.record["message"]), level="WARNING")
    try:
        picked = spec.pick(np.linspace(0, 1, 24), domains, who="daar_topk_reward_selector")
    finally:
        logger.remove(sink)
    assert counts(domains, picked) == {"reasoning": 4}
    assert len(said) == 1 and "keeps 4 of the 10 rows" in said[0]
    # a listed domain that runs out hands its part to the other listed ones only
    spec = TopkSpec.build(
        10, None, "custom", {"reasoning": 0.5, "mathematics": 0.5}, ["reasoning", "mathematics", "coding"], coverage=False
    )
    picked = spec.pick(np.zeros(44), domains + ["coding"] * 20)
    assert counts(domains + ["coding"] * 20, picked) == {"reasoning": 4, "mathematics": 6}
